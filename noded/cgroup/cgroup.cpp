#include "cgroup/cgroup.h"

#include <fmt/format.h>
#include <time.h>

#include <charconv>

namespace podwarp::noded::cgroup {
namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto oct = [](char c) { return c >= '0' && c <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size()) {
      if (oct(s[i + 1]) && oct(s[i + 2]) && oct(s[i + 3])) {
        out.push_back(
            static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool to_int(std::string_view s, int& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string_view controller_of(std::string_view file) { return file.substr(0, file.find('.')); }

std::string join_path(std::string_view a, std::string_view b) {
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.empty() || out.back() != '/') out.push_back('/');
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out.append(b);
  return out;
}

}  // namespace

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto f = split_ws(line);
    if (f.size() < 10) continue;
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 2 >= f.size()) continue;
    MountInfo m;
    if (!to_int(f[0], m.mount_id) || !to_int(f[1], m.parent_id)) continue;
    m.root = unescape(f[3]);
    m.mount_point = unescape(f[4]);
    m.options = std::string(f[5]);
    m.fs_type = std::string(f[dash + 1]);
    m.source = unescape(f[dash + 2]);
    if (dash + 3 < f.size()) m.super_options = std::string(f[dash + 3]);
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo_text) {
  for (auto& m : parse_mountinfo(mountinfo_text)) {
    if (m.fs_type == "cgroup2") return m.mount_point;
  }
  return std::nullopt;
}

std::int64_t milli_cpu_to_shares(std::int64_t milli_cpu) {
  if (milli_cpu <= 0) return kMinShares;
  // Avoid overflow for absurd inputs: anything above the max clamps anyway.
  if (milli_cpu > kMaxShares * 1000) return kMaxShares;
  std::int64_t shares = milli_cpu * 1024 / 1000;
  if (shares < kMinShares) return kMinShares;
  if (shares > kMaxShares) return kMaxShares;
  return shares;
}

std::int64_t shares_to_weight(std::int64_t shares) {
  if (shares <= 0) return 0;
  if (shares > kMaxShares) shares = kMaxShares;
  if (shares < kMinShares) shares = kMinShares;
  return 1 + ((shares - 2) * 9999) / 262142;
}

std::int64_t milli_cpu_to_quota(std::int64_t milli_cpu, std::int64_t period_us) {
  if (milli_cpu <= 0) return 0;
  // 2^63 / 100000 bounds the multiplication.
  if (milli_cpu > (INT64_MAX / period_us)) return INT64_MAX / 1000;
  std::int64_t quota = milli_cpu * period_us / 1000;
  return quota < kMinQuotaUs ? kMinQuotaUs : quota;
}

std::vector<std::pair<std::string, std::string>> limit_files(const Limits& l) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back(
      "cpu.weight",
      std::to_string(shares_to_weight(milli_cpu_to_shares(l.cpu_request_milli.value_or(0)))));
  if (l.cpu_limit_milli && *l.cpu_limit_milli > 0) {
    out.emplace_back("cpu.max",
                     fmt::format("{} {}", milli_cpu_to_quota(*l.cpu_limit_milli), kCpuPeriodUs));
  }
  if (l.memory_limit_bytes && *l.memory_limit_bytes > 0) {
    out.emplace_back("memory.max", std::to_string(*l.memory_limit_bytes));
  }
  if (l.pids_max && *l.pids_max > 0) out.emplace_back("pids.max", std::to_string(*l.pids_max));
  return out;
}

std::expected<CgroupManager, SysError> CgroupManager::open(CgroupFs& fs, std::string_view root) {
  auto mi = fs.read("/proc/self/mountinfo");
  if (!mi) return std::unexpected(mi.error());
  auto mount = find_cgroup2_mount(*mi);
  if (!mount) return std::unexpected(logic_error("no cgroup2 filesystem in /proc/self/mountinfo"));
  std::string abs;
  if (!root.empty() && root.front() == '/') {
    if (!root.starts_with(*mount + "/")) {
      return std::unexpected(logic_error(
          fmt::format("cgroup root {} is not under the cgroup2 mount {}", root, *mount)));
    }
    abs = std::string(root);
  } else {
    abs = join_path(*mount, root);
  }
  if (root.find("..") != std::string_view::npos) {
    return std::unexpected(logic_error(fmt::format("cgroup root {}: '..' not allowed", root)));
  }
  return CgroupManager(fs, *mount, abs);
}

CgroupManager::CgroupManager(CgroupFs& fs, std::string mount, std::string root_abs)
    : fs_(&fs), mount_(std::move(mount)), root_(std::move(root_abs)) {}

std::string CgroupManager::path_of(std::string_view rel) const { return join_path(root_, rel); }

std::expected<std::set<std::string>, SysError> CgroupManager::controllers(const std::string& abs) {
  auto text = fs_->read(abs + "/cgroup.controllers");
  if (!text) return std::unexpected(text.error());
  std::set<std::string> out;
  for (auto w : split_ws(*text)) {
    while (!w.empty() && (w.back() == '\n')) w.remove_suffix(1);
    if (!w.empty()) out.emplace(w);
  }
  return out;
}

std::expected<void, SysError> CgroupManager::enable_subtree(const std::string& abs,
                                                            ApplyReport& report) {
  auto have = controllers(abs);
  if (!have) return std::unexpected(have.error());
  auto enabled = fs_->read(abs + "/cgroup.subtree_control");
  if (!enabled) return std::unexpected(enabled.error());
  auto on = split_ws(*enabled);
  for (auto c : kWantedControllers) {
    if (!have->contains(std::string(c))) continue;
    bool already = false;
    for (auto w : on) {
      while (!w.empty() && w.back() == '\n') w.remove_suffix(1);
      if (w == c) already = true;
    }
    if (already) continue;
    // One write per controller: a failure (a controller held by v1) must not block the others.
    auto r = fs_->write(abs + "/cgroup.subtree_control", fmt::format("+{}", c));
    if (!r) {
      report.not_enforced.push_back(fmt::format(
          "{} controller (enable in {}/cgroup.subtree_control: {})", c, abs, r.error().message));
    }
  }
  return {};
}

std::expected<ApplyReport, SysError> CgroupManager::ensure_root() {
  ApplyReport report;
  // Every level from the mount to the root must delegate the controllers downwards.
  std::vector<std::string> levels;
  for (std::string p = root_; p.size() > mount_.size(); p = p.substr(0, p.rfind('/'))) {
    levels.push_back(p);
  }
  std::string parent = mount_;
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
    if (auto r = enable_subtree(parent, report); !r) return std::unexpected(r.error());
    if (auto r = fs_->make_dir(*it); !r && r.error().code != EEXIST) {
      return std::unexpected(r.error());
    }
    parent = *it;
  }
  if (auto r = enable_subtree(root_, report); !r) return std::unexpected(r.error());
  return report;
}

std::expected<ApplyReport, SysError> CgroupManager::create(std::string_view rel,
                                                           const Limits& limits,
                                                           bool parent_of_groups) {
  if (rel.empty() || rel.find("..") != std::string_view::npos) {
    return std::unexpected(logic_error(fmt::format("bad cgroup name \"{}\"", rel)));
  }
  std::string abs = path_of(rel);
  if (auto r = fs_->make_dir(abs); !r && r.error().code != EEXIST) {
    return std::unexpected(r.error());
  }
  auto report = write_limits(abs, limits);
  if (!report) return report;
  if (parent_of_groups) {
    if (auto r = enable_subtree(abs, *report); !r) return std::unexpected(r.error());
  }
  return report;
}

std::expected<ApplyReport, SysError> CgroupManager::apply(std::string_view rel,
                                                          const Limits& limits) {
  return write_limits(path_of(rel), limits);
}

std::expected<ApplyReport, SysError> CgroupManager::write_limits(const std::string& abs,
                                                                 const Limits& limits) {
  ApplyReport report;
  auto have = controllers(abs);
  if (!have) return std::unexpected(have.error());
  std::optional<std::set<std::string>> at_mount;
  for (auto& [file, value] : limit_files(limits)) {
    std::string c(controller_of(file));
    if (!have->contains(c)) {
      if (!at_mount) {
        auto m = controllers(mount_);
        at_mount = m ? *m : std::set<std::string>{};
      }
      if (!at_mount->contains(c)) {
        report.not_enforced.push_back(
            fmt::format("{} ({} controller not available in cgroup2 at {})", file, c, mount_));
      } else {
        report.not_enforced.push_back(
            fmt::format("{} ({} controller not enabled for {})", file, c, abs));
      }
      continue;
    }
    if (auto r = fs_->write(abs + "/" + file, value); !r) return std::unexpected(r.error());
    report.applied.push_back(file + "=" + value);
  }
  return report;
}

std::expected<void, SysError> CgroupManager::kill(std::string_view rel) {
  return fs_->write(path_of(rel) + "/cgroup.kill", "1");
}

std::expected<void, SysError> CgroupManager::freeze(std::string_view rel, bool frozen) {
  return fs_->write(path_of(rel) + "/cgroup.freeze", frozen ? "1" : "0");
}

namespace {
// The value of `key` in a flat-keyed file ("populated 1\nfrozen 0\n").
std::optional<std::uint64_t> keyed_value(std::string_view text, std::string_view key) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto f = split_ws(line);
    if (f.size() == 2 && f[0] == key) {
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(f[1].data(), f[1].data() + f[1].size(), v);
      if (ec == std::errc()) return v;
    }
  }
  return std::nullopt;
}
}  // namespace

std::expected<std::optional<std::uint64_t>, SysError> CgroupManager::oom_kill_count(
    std::string_view rel) {
  auto text = fs_->read(path_of(rel) + "/memory.events");
  if (!text) {
    if (text.error().code == ENOENT) return std::optional<std::uint64_t>();
    return std::unexpected(text.error());
  }
  return keyed_value(*text, "oom_kill").value_or(0);
}

std::expected<bool, SysError> CgroupManager::populated(std::string_view rel) {
  std::string path = path_of(rel) + "/cgroup.events";
  auto text = fs_->read(path);
  if (!text) return std::unexpected(text.error());
  auto v = keyed_value(*text, "populated");
  if (!v) return std::unexpected(logic_error(path + ": no \"populated\" key"));
  return *v != 0;
}

std::expected<void, SysError> CgroupManager::remove_abs(const std::string& abs) {
  auto children = fs_->list_dirs(abs);
  if (!children) {
    if (children.error().code == ENOENT) return {};
    return std::unexpected(children.error());
  }
  for (auto& c : *children) {
    if (auto r = remove_abs(abs + "/" + c); !r) return r;
  }
  if (auto r = fs_->remove_dir(abs); !r && r.error().code != ENOENT) return r;
  return {};
}

std::expected<void, SysError> CgroupManager::remove(std::string_view rel) {
  return remove_abs(path_of(rel));
}

std::expected<void, SysError> CgroupManager::destroy(std::string_view rel, int timeout_ms) {
  auto k = kill(rel);
  if (!k) {
    if (k.error().code == ENOENT) return {};  // already gone
    return k;
  }
  for (int waited = 0;; waited += 2) {
    auto p = populated(rel);
    if (!p) return std::unexpected(p.error());
    if (!*p) break;
    if (waited >= timeout_ms) {
      return std::unexpected(logic_error(fmt::format(
          "cgroup {} still populated {} ms after cgroup.kill", path_of(rel), timeout_ms)));
    }
    timespec ts{0, 2'000'000};
    ::nanosleep(&ts, nullptr);
  }
  return remove(rel);
}

}  // namespace podwarp::noded::cgroup
