#include "pods/state_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "pods/volumes.h"
#include "podwarp/log.h"

namespace podwarp::noded::pods {

namespace fs = std::filesystem;

namespace {

std::int64_t to_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
WallTime from_ns(std::int64_t ns) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

json::object state_to_json(const ContainerState& s) {
  return json::object{{"kind", static_cast<int>(s.kind)}, {"reason", s.reason},
                      {"message", s.message},            {"exitCode", s.exit_code},
                      {"signal", s.signal},              {"startedAt", to_ns(s.started_at)},
                      {"finishedAt", to_ns(s.finished_at)}, {"containerID", s.container_id}};
}

ContainerState state_from_json(const json::value& v) {
  ContainerState s;
  s.kind = static_cast<ContainerState::Kind>(get_int(v, {"kind"}, 2));
  s.reason = get_string(v, {"reason"});
  s.message = get_string(v, {"message"});
  s.exit_code = static_cast<int>(get_int(v, {"exitCode"}));
  s.signal = static_cast<int>(get_int(v, {"signal"}));
  s.started_at = from_ns(get_int(v, {"startedAt"}));
  s.finished_at = from_ns(get_int(v, {"finishedAt"}));
  s.container_id = get_string(v, {"containerID"});
  return s;
}

}  // namespace

ContainerRecord* PodRecord::find(std::string_view n, bool init) {
  for (auto& c : containers)
    if (c.name == n && c.init == init) return &c;
  return nullptr;
}

json::value record_to_json(const PodRecord& r) {
  json::array cs;
  for (const auto& c : r.containers) {
    json::object o{{"name", c.name},
                   {"init", c.init},
                   {"id", c.handle.id},
                   {"pid", c.handle.pid},
                   {"startTicks", c.handle.start_ticks},
                   {"running", c.running},
                   {"restartCount", c.restart_count},
                   {"startedAt", to_ns(c.started_at)},
                   {"imageID", c.image_id}};
    if (c.last_termination) o["lastTermination"] = state_to_json(*c.last_termination);
    if (c.ephemeral) o["ephemeral"] = true;
    cs.push_back(std::move(o));
  }
  return json::object{{"version", 1},        {"uid", r.uid},
                      {"namespace", r.ns},   {"name", r.name},
                      {"sourceFile", r.source_file}, {"sandboxCreated", r.sandbox_created},
                      {"containers", std::move(cs)}};
}

std::expected<PodRecord, std::string> record_from_json(const json::value& v) {
  if (get_int(v, {"version"}) != 1) return std::unexpected("unknown state version");
  PodRecord r;
  r.uid = get_string(v, {"uid"});
  r.ns = get_string(v, {"namespace"});
  r.name = get_string(v, {"name"});
  r.source_file = get_string(v, {"sourceFile"});
  r.sandbox_created = get_bool(v, {"sandboxCreated"});
  if (r.uid.empty()) return std::unexpected("missing uid");
  if (auto* cs = find_path(v, {"containers"}); cs && cs->is_array()) {
    for (const auto& c : cs->as_array()) {
      ContainerRecord cr;
      cr.name = get_string(c, {"name"});
      cr.init = get_bool(c, {"init"});
      cr.ephemeral = get_bool(c, {"ephemeral"});
      cr.handle.id = get_string(c, {"id"});
      cr.handle.pid = static_cast<pid_t>(get_int(c, {"pid"}, -1));
      if (auto* t = find_path(c, {"startTicks"}); t && t->is_number()) cr.handle.start_ticks = t->to_number<std::uint64_t>();
      cr.running = get_bool(c, {"running"});
      cr.restart_count = static_cast<int>(get_int(c, {"restartCount"}));
      cr.started_at = from_ns(get_int(c, {"startedAt"}));
      cr.image_id = get_string(c, {"imageID"});
      if (auto* lt = find_path(c, {"lastTermination"})) cr.last_termination = state_from_json(*lt);
      r.containers.push_back(std::move(cr));
    }
  }
  return r;
}

std::string PodStateStore::pod_dir(std::string_view uid) const {
  return fmt::format("{}/pods/{}", root_, uid);
}

std::expected<void, std::string> PodStateStore::save(const PodRecord& r) const {
  std::string dir = pod_dir(r.uid);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected(fmt::format("mkdir {}: {}", dir, ec.message()));
  std::string tmp = dir + "/state.json.tmp";
  std::string text = to_json(record_to_json(r));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected(fmt::format("open {}: {}", tmp, std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return std::unexpected(fmt::format("write {}: {}", tmp, std::strerror(errno)));
  std::string dst = dir + "/state.json";
  if (::rename(tmp.c_str(), dst.c_str()) != 0)
    return std::unexpected(fmt::format("rename {} to {}: {}", tmp, dst, std::strerror(errno)));
  return {};
}

std::optional<PodRecord> PodStateStore::load(std::string_view uid) const {
  std::string p = pod_dir(uid) + "/state.json";
  std::ifstream f(p);
  if (!f) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(f)), {});
  auto v = parse_json(text);
  if (!v) {
    log::warn("pods: ignoring unreadable state {}: {}", p, v.error());
    return std::nullopt;
  }
  auto r = record_from_json(*v);
  if (!r) {
    log::warn("pods: ignoring state {}: {}", p, r.error());
    return std::nullopt;
  }
  return *r;
}

std::vector<PodRecord> PodStateStore::load_all() const {
  std::vector<PodRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_ + "/pods", ec)) {
    if (!e.is_directory()) continue;
    if (auto r = load(e.path().filename().string())) out.push_back(std::move(*r));
  }
  return out;
}

void PodStateStore::remove(std::string_view uid) const {
  // Volumes on a tmpfs (secrets, projected tokens, memory emptyDirs) that nobody unmounted
  // (an orphan cleaned after a restart): unmounted first, deepest first, so that remove_all
  // neither stops at a busy mount point nor leaves a mount behind.
  std::string dir = pod_dir(uid);
  unmount_all_under(dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::optional<std::uint64_t> process_start_ticks(pid_t pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  if (!f) return std::nullopt;
  std::string s((std::istreambuf_iterator<char>(f)), {});
  auto rp = s.rfind(')');  // comm may contain spaces and parens
  if (rp == std::string::npos) return std::nullopt;
  // Fields after comm start at field 3 (state); starttime is field 22.
  size_t pos = rp + 2;
  for (int field = 3; field < 22; ++field) {
    pos = s.find(' ', pos);
    if (pos == std::string::npos) return std::nullopt;
    ++pos;
  }
  return std::strtoull(s.c_str() + pos, nullptr, 10);
}

bool same_process(pid_t pid, std::uint64_t start_ticks) {
  auto t = process_start_ticks(pid);
  return t && *t == start_ticks;
}

}  // namespace podwarp::noded::pods
