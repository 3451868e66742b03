#include "cri/cri_state.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>

#include "podwarp/random.h"

namespace podwarp::cri {

namespace {

template <class M>
std::string message_json(const M& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

template <class M>
std::expected<void, std::string> message_from(const json::value& v, std::string_view key, M& m) {
  const auto* f = find_path(v, {key});
  if (f == nullptr) return {};
  auto st = google::protobuf::util::JsonStringToMessage(json::serialize(*f), &m);
  if (!st.ok()) return std::unexpected(std::string(key) + ": " + std::string(st.message()));
  return {};
}

bool id_matches(std::string_view id, const std::string& filter) {
  return filter.empty() || id.starts_with(filter);
}

}  // namespace

std::string new_id() {
  unsigned char b[32];
  random_bytes(b);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string pod_uid_for(std::string_view sandbox_id) {
  return "cri-" + std::string(sandbox_id.substr(0, 32));
}

bool is_cri_pod_uid(std::string_view uid) { return uid.starts_with("cri-"); }

std::int64_t to_ns(pods::WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::int64_t now_ns() { return to_ns(std::chrono::system_clock::now()); }

std::string resolve_id(std::string_view id_or_prefix, const std::vector<std::string>& ids) {
  if (id_or_prefix.empty()) return {};
  std::string found;
  for (const auto& id : ids) {
    if (id == id_or_prefix) return id;
    if (id.starts_with(id_or_prefix)) {
      if (!found.empty()) return {};  // ambiguous
      found = id;
    }
  }
  return found;
}

bool labels_match(const google::protobuf::Map<std::string, std::string>& labels,
                  const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool matches(const SandboxRecord& s, const v1::PodSandboxFilter& f) {
  if (!id_matches(s.id, f.id())) return false;
  if (f.has_state() && f.state().state() != s.state) return false;
  return labels_match(s.config.labels(), f.label_selector());
}

bool matches(const ContainerRecord& c, const v1::ContainerFilter& f) {
  if (!id_matches(c.id, f.id())) return false;
  if (!id_matches(c.sandbox_id, f.pod_sandbox_id())) return false;
  if (f.has_state() && f.state().state() != c.state) return false;
  return labels_match(c.config.labels(), f.label_selector());
}

void mark_started(ContainerRecord& c, const pods::ContainerHandle& h, std::int64_t at) {
  c.handle = h;
  c.state = v1::CONTAINER_RUNNING;
  c.started_at = at;
}

void mark_exited(ContainerRecord& c, const pods::ExitInfo& e) {
  c.finished_at = e.finished_at.time_since_epoch().count() != 0 ? to_ns(e.finished_at) : now_ns();
  if (!e.code_known) {
    c.state = v1::CONTAINER_UNKNOWN;
    c.reason = "Unknown";
    c.message = "the container exited while noded was down; its exit status is unknown";
    return;
  }
  c.state = v1::CONTAINER_EXITED;
  c.exit_code = e.exit_code;
  c.reason = e.oom_killed ? "OOMKilled" : e.exit_code == 0 ? "Completed" : "Error";
}

void mark_start_failed(ContainerRecord& c, const std::string& message, std::int64_t at) {
  c.state = v1::CONTAINER_EXITED;
  c.started_at = at;
  c.finished_at = at;
  c.exit_code = 128;
  c.reason = "StartError";
  c.message = message;
}

namespace {

// The fields PodSandbox and PodSandboxStatus share (same names, different numbers).
template <class M>
void fill_sandbox_fields(M& p, const SandboxRecord& s) {
  p.set_id(s.id);
  *p.mutable_metadata() = s.config.metadata();
  p.set_state(s.state);
  p.set_created_at(s.created_at);
  *p.mutable_labels() = s.config.labels();
  *p.mutable_annotations() = s.config.annotations();
}

// The fields Container and ContainerStatus share.
template <class M>
void fill_container_fields(M& p, const ContainerRecord& c) {
  p.set_id(c.id);
  *p.mutable_metadata() = c.config.metadata();
  *p.mutable_image() = c.config.image();
  p.set_image_ref(c.image_ref);
  p.set_image_id(c.image_id);
  p.set_state(c.state);
  p.set_created_at(c.created_at);
  *p.mutable_labels() = c.config.labels();
  *p.mutable_annotations() = c.config.annotations();
}

}  // namespace

v1::PodSandbox to_pod_sandbox(const SandboxRecord& s) {
  v1::PodSandbox p;
  fill_sandbox_fields(p, s);
  return p;
}

v1::PodSandboxStatus to_sandbox_status(const SandboxRecord& s) {
  v1::PodSandboxStatus p;
  fill_sandbox_fields(p, s);
  if (s.state == v1::SANDBOX_READY) p.mutable_network()->set_ip(s.ip);
  return p;
}

v1::Container to_container(const ContainerRecord& c) {
  v1::Container p;
  fill_container_fields(p, c);
  p.set_pod_sandbox_id(c.sandbox_id);
  return p;
}

v1::ContainerStatus to_container_status(const ContainerRecord& c) {
  v1::ContainerStatus p;
  fill_container_fields(p, c);
  p.set_started_at(c.started_at);
  p.set_finished_at(c.finished_at);
  p.set_exit_code(c.exit_code);
  p.set_reason(c.reason);
  p.set_message(c.message);
  *p.mutable_mounts() = c.config.mounts();
  p.set_log_path(c.log_path);
  return p;
}

v1::Image to_image(const std::vector<images::ImageRef>& same_id) {
  v1::Image img;
  if (same_id.empty()) return img;
  img.set_id(same_id.front().id);
  img.set_size(same_id.front().size);
  for (const auto& r : same_id) {
    std::string_view name = r.name;
    std::size_t slash = name.rfind('/');
    std::size_t at = name.find('@');
    if (at != std::string_view::npos) {
      img.add_repo_digests(r.name);
      continue;
    }
    img.add_repo_tags(r.name);
    if (!r.repo_digest.empty()) {
      std::size_t colon = name.rfind(':');
      std::string_view repo =
          colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)
              ? name.substr(0, colon)
              : name;
      img.add_repo_digests(std::string(repo) + "@" + r.repo_digest);
    }
  }
  img.mutable_spec()->set_image(same_id.front().id);
  return img;
}

json::value to_json_value(const SandboxRecord& s) {
  json::object o;
  o["id"] = s.id;
  o["pod_uid"] = s.pod_uid;
  o["state"] = static_cast<int>(s.state);
  o["created_at"] = s.created_at;
  o["ip"] = s.ip;
  o["config"] = json::parse(message_json(s.config));
  return o;
}

json::value to_json_value(const ContainerRecord& c) {
  json::object o;
  o["id"] = c.id;
  o["sandbox_id"] = c.sandbox_id;
  o["image_name"] = c.image_name;
  o["image_ref"] = c.image_ref;
  o["image_id"] = c.image_id;
  o["state"] = static_cast<int>(c.state);
  o["created_at"] = c.created_at;
  o["started_at"] = c.started_at;
  o["finished_at"] = c.finished_at;
  o["exit_code"] = c.exit_code;
  o["reason"] = c.reason;
  o["message"] = c.message;
  o["log_path"] = c.log_path;
  o["runtime_id"] = c.handle.id;
  o["pid"] = c.handle.pid;
  o["start_ticks"] = static_cast<std::int64_t>(c.handle.start_ticks);
  o["config"] = json::parse(message_json(c.config));
  return o;
}

std::expected<SandboxRecord, std::string> sandbox_from_json(const json::value& v) {
  SandboxRecord s;
  s.id = std::string(get_string(v, {"id"}));
  s.pod_uid = std::string(get_string(v, {"pod_uid"}));
  if (s.id.size() != 64 || s.pod_uid != pod_uid_for(s.id))
    return std::unexpected("sandbox record: bad id \"" + s.id + "\"");
  int st = static_cast<int>(get_int(v, {"state"}));
  if (!v1::PodSandboxState_IsValid(st)) return std::unexpected("sandbox record: bad state");
  s.state = static_cast<v1::PodSandboxState>(st);
  s.created_at = get_int(v, {"created_at"});
  s.ip = std::string(get_string(v, {"ip"}));
  if (auto m = message_from(v, "config", s.config); !m) return std::unexpected(m.error());
  return s;
}

std::expected<ContainerRecord, std::string> container_from_json(const json::value& v) {
  ContainerRecord c;
  c.id = std::string(get_string(v, {"id"}));
  c.sandbox_id = std::string(get_string(v, {"sandbox_id"}));
  if (c.id.size() != 64) return std::unexpected("container record: bad id \"" + c.id + "\"");
  c.image_name = std::string(get_string(v, {"image_name"}));
  c.image_ref = std::string(get_string(v, {"image_ref"}));
  c.image_id = std::string(get_string(v, {"image_id"}));
  int st = static_cast<int>(get_int(v, {"state"}));
  if (!v1::ContainerState_IsValid(st)) return std::unexpected("container record: bad state");
  c.state = static_cast<v1::ContainerState>(st);
  c.created_at = get_int(v, {"created_at"});
  c.started_at = get_int(v, {"started_at"});
  c.finished_at = get_int(v, {"finished_at"});
  c.exit_code = static_cast<int>(get_int(v, {"exit_code"}));
  c.reason = std::string(get_string(v, {"reason"}));
  c.message = std::string(get_string(v, {"message"}));
  c.log_path = std::string(get_string(v, {"log_path"}));
  c.handle.id = std::string(get_string(v, {"runtime_id"}));
  c.handle.pid = static_cast<pid_t>(get_int(v, {"pid"}, -1));
  c.handle.start_ticks = static_cast<std::uint64_t>(get_int(v, {"start_ticks"}));
  if (auto m = message_from(v, "config", c.config); !m) return std::unexpected(m.error());
  return c;
}

json::value pod_object(const SandboxRecord& s) {
  const auto& md = s.config.metadata();
  json::object meta{{"name", md.name()}, {"namespace", md.namespace_()}, {"uid", s.pod_uid}};
  json::object spec;
  if (!s.config.hostname().empty()) spec["hostname"] = s.config.hostname();
  return json::object{{"metadata", std::move(meta)}, {"spec", std::move(spec)}};
}

json::value container_object(const ContainerRecord& c) {
  const auto& cfg = c.config;
  json::object o;
  o["name"] = cfg.metadata().name();
  o["image"] = cfg.image().image();
  if (cfg.command_size() > 0) {
    json::array a;
    for (const auto& s : cfg.command()) a.emplace_back(s);
    o["command"] = std::move(a);
  }
  if (cfg.args_size() > 0) {
    json::array a;
    for (const auto& s : cfg.args()) a.emplace_back(s);
    o["args"] = std::move(a);
  }
  if (!cfg.working_dir().empty()) o["workingDir"] = cfg.working_dir();
  if (cfg.envs_size() > 0) {
    json::array env;
    for (const auto& kv : cfg.envs())
      env.emplace_back(json::object{{"name", kv.key()}, {"value", kv.value()}});
    o["env"] = std::move(env);
  }
  if (cfg.tty()) o["tty"] = true;
  if (cfg.stdin()) o["stdin"] = true;
  return o;
}

std::vector<pods::MountRequest> mount_requests(const v1::ContainerConfig& c) {
  std::vector<pods::MountRequest> out;
  for (const auto& m : c.mounts()) out.push_back({m.host_path(), m.container_path(), m.readonly()});
  return out;
}

}  // namespace podwarp::cri
