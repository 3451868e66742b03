// Pure helpers of runtime.h: command resolution, $(VAR) expansion, environment, capabilities.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>

#include "runtime/runtime.h"

namespace podwarp::noded::runtime {

std::expected<std::vector<std::string>, std::string> resolve_command(
    const std::vector<std::string>& command, const std::vector<std::string>& args,
    const std::vector<std::string>& image_entrypoint, const std::vector<std::string>& image_cmd) {
  std::vector<std::string> out = command;
  const std::vector<std::string>* rest = &args;
  if (command.empty()) {
    out = image_entrypoint;
    if (args.empty()) rest = &image_cmd;
  }
  out.insert(out.end(), rest->begin(), rest->end());
  if (out.empty()) return std::unexpected(std::string("no command specified"));
  return out;
}

std::string expand_vars(std::string_view in,
                        const std::function<std::optional<std::string>(std::string_view)>& lookup) {
  std::string out;
  size_t checkpoint = 0;
  for (size_t cursor = 0; cursor < in.size(); ++cursor) {
    if (in[cursor] != '$' || cursor + 1 >= in.size()) continue;
    out.append(in.substr(checkpoint, cursor - checkpoint));
    std::string_view rest = in.substr(cursor + 1);
    size_t advance = 1;
    if (rest[0] == '$') {
      out.push_back('$');  // escaped operator
    } else if (rest[0] == '(') {
      size_t close = rest.find(')', 1);
      if (close == std::string_view::npos) {
        out.append("$(");  // incomplete reference: kept
      } else {
        std::string_view name = rest.substr(1, close - 1);
        if (auto v = lookup(name)) {
          out.append(*v);
        } else {
          out.append("$(").append(name).append(")");
        }
        advance = close + 1;
      }
    } else {
      out.push_back('$');
      out.push_back(rest[0]);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < in.size()) out.append(in.substr(checkpoint));
  return out;
}

namespace {
std::map<std::string, std::string, std::less<>> expanded_env_map(const std::vector<EnvVar>& env) {
  std::map<std::string, std::string, std::less<>> defined;
  for (const auto& e : env) {
    std::string v = expand_vars(e.value, [&](std::string_view n) -> std::optional<std::string> {
      auto it = defined.find(n);
      if (it == defined.end()) return std::nullopt;
      return it->second;
    });
    defined[e.name] = std::move(v);
  }
  return defined;
}
}  // namespace

std::vector<std::string> build_env(const std::vector<std::string>& image_env,
                                   const std::vector<EnvVar>& container_env) {
  // Container values, expanded in order (later definitions of a name win).
  std::map<std::string, std::string, std::less<>> defined;
  std::vector<std::string> order;
  for (const auto& e : container_env) {
    std::string v = expand_vars(e.value, [&](std::string_view n) -> std::optional<std::string> {
      auto it = defined.find(n);
      if (it == defined.end()) return std::nullopt;
      return it->second;
    });
    if (!defined.contains(e.name)) order.push_back(e.name);
    defined[e.name] = std::move(v);
  }
  std::vector<std::string> out;
  for (const auto& kv : image_env) {
    std::string_view name = std::string_view(kv).substr(0, kv.find('='));
    if (defined.contains(name)) continue;
    out.push_back(kv);
  }
  for (const auto& n : order) out.push_back(n + "=" + defined[n]);
  return out;
}

std::vector<std::string> expand_args(const std::vector<std::string>& args,
                                     const std::vector<EnvVar>& container_env) {
  auto defined = expanded_env_map(container_env);
  std::vector<std::string> out;
  out.reserve(args.size());
  for (const auto& a : args) {
    out.push_back(expand_vars(a, [&](std::string_view n) -> std::optional<std::string> {
      auto it = defined.find(n);
      if (it == defined.end()) return std::nullopt;
      return it->second;
    }));
  }
  return out;
}

namespace {
constexpr std::string_view kCapNames[] = {"CHOWN",
                                          "DAC_OVERRIDE",
                                          "DAC_READ_SEARCH",
                                          "FOWNER",
                                          "FSETID",
                                          "KILL",
                                          "SETGID",
                                          "SETUID",
                                          "SETPCAP",
                                          "LINUX_IMMUTABLE",
                                          "NET_BIND_SERVICE",
                                          "NET_BROADCAST",
                                          "NET_ADMIN",
                                          "NET_RAW",
                                          "IPC_LOCK",
                                          "IPC_OWNER",
                                          "SYS_MODULE",
                                          "SYS_RAWIO",
                                          "SYS_CHROOT",
                                          "SYS_PTRACE",
                                          "SYS_PACCT",
                                          "SYS_ADMIN",
                                          "SYS_BOOT",
                                          "SYS_NICE",
                                          "SYS_RESOURCE",
                                          "SYS_TIME",
                                          "SYS_TTY_CONFIG",
                                          "MKNOD",
                                          "LEASE",
                                          "AUDIT_WRITE",
                                          "AUDIT_CONTROL",
                                          "SETFCAP",
                                          "MAC_OVERRIDE",
                                          "MAC_ADMIN",
                                          "SYSLOG",
                                          "WAKE_ALARM",
                                          "BLOCK_SUSPEND",
                                          "AUDIT_READ",
                                          "PERFMON",
                                          "BPF",
                                          "CHECKPOINT_RESTORE"};
static_assert(std::size(kCapNames) == CAP_CHECKPOINT_RESTORE + 1);

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

int capability_number(std::string_view name) {
  std::string n = upper(name);
  std::string_view v = n;
  if (v.starts_with("CAP_")) v.remove_prefix(4);
  for (size_t i = 0; i < std::size(kCapNames); ++i) {
    if (kCapNames[i] == v) return static_cast<int>(i);
  }
  return -1;
}

int last_capability() {
  static const int last = [] {
    int fd = ::open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return static_cast<int>(CAP_LAST_CAP);
    char buf[16] = {};
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    int v = n > 0 ? std::atoi(buf) : CAP_LAST_CAP;
    return v > 0 && v < 64 ? v : static_cast<int>(CAP_LAST_CAP);
  }();
  return last;
}

std::uint64_t all_capabilities() {
  int last = last_capability();
  return last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
}

std::expected<std::uint64_t, std::string> compute_capabilities(const std::vector<std::string>& add,
                                                               const std::vector<std::string>& drop,
                                                               bool privileged) {
  if (privileged) return all_capabilities();
  auto is_all = [](const std::string& s) { return upper(s) == "ALL" || upper(s) == "CAP_ALL"; };
  std::uint64_t caps = 0;
  for (auto n : kDefaultCapabilities) caps |= 1ULL << capability_number(n);
  if (std::any_of(add.begin(), add.end(), is_all)) caps = all_capabilities();
  if (std::any_of(drop.begin(), drop.end(), is_all)) caps = 0;
  for (const auto& a : add) {
    if (is_all(a)) continue;
    int n = capability_number(a);
    if (n < 0) return std::unexpected("unknown capability \"" + a + "\"");
    caps |= 1ULL << n;
  }
  for (const auto& d : drop) {
    if (is_all(d)) continue;
    int n = capability_number(d);
    if (n < 0) return std::unexpected("unknown capability \"" + d + "\"");
    caps &= ~(1ULL << n);
  }
  return caps & all_capabilities();
}

const std::vector<std::string>& default_masked_paths() {
  static const std::vector<std::string> v = {"/proc/acpi",
                                             "/proc/asound",
                                             "/proc/kcore",
                                             "/proc/keys",
                                             "/proc/latency_stats",
                                             "/proc/timer_list",
                                             "/proc/timer_stats",
                                             "/proc/sched_debug",
                                             "/proc/scsi",
                                             "/sys/firmware",
                                             "/sys/devices/virtual/powercap"};
  return v;
}

const std::vector<std::string>& default_readonly_paths() {
  static const std::vector<std::string> v = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                             "/proc/sysrq-trigger"};
  return v;
}

namespace {

std::vector<std::vector<std::string_view>> colon_lines(std::string_view text) {
  std::vector<std::vector<std::string_view>> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string_view> f;
    size_t i = 0;
    for (;;) {
      size_t j = line.find(':', i);
      f.push_back(line.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
      if (j == std::string_view::npos) break;
      i = j + 1;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<std::uint32_t> number(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::expected<UserIds, std::string> resolve_user(std::string_view user, std::string_view passwd,
                                                 std::string_view group) {
  UserIds ids;
  if (user.empty()) return ids;
  std::string_view u = user.substr(0, user.find(':'));
  std::optional<std::string_view> g;
  if (user.find(':') != std::string_view::npos) g = user.substr(user.find(':') + 1);
  auto users = colon_lines(passwd);
  std::string_view name;
  if (auto n = number(u)) {
    ids.uid = *n;
    for (const auto& f : users) {
      if (f.size() >= 4 && number(f[2]) == *n) {
        name = f[0];
        ids.gid = number(f[3]).value_or(0);
        break;
      }
    }
  } else {
    bool found = false;
    for (const auto& f : users) {
      if (f.size() >= 4 && f[0] == u) {
        auto uid = number(f[2]);
        if (!uid) continue;
        ids.uid = *uid;
        ids.gid = number(f[3]).value_or(0);
        name = f[0];
        found = true;
        break;
      }
    }
    if (!found) return std::unexpected("no users found for \"" + std::string(u) + "\"");
  }
  auto groups = colon_lines(group);
  if (g) {
    if (auto n = number(*g)) {
      ids.gid = *n;
    } else {
      bool found = false;
      for (const auto& f : groups) {
        if (f.size() >= 3 && f[0] == *g && number(f[2])) {
          ids.gid = *number(f[2]);
          found = true;
          break;
        }
      }
      if (!found) return std::unexpected("no groups found for \"" + std::string(*g) + "\"");
    }
  }
  if (!name.empty()) {
    for (const auto& f : groups) {
      if (f.size() < 4 || !number(f[2])) continue;
      std::string_view members = f[3];
      while (!members.empty()) {
        size_t c = members.find(',');
        if (members.substr(0, c) == name) {
          gid_t gid = *number(f[2]);
          if (gid != ids.gid && std::find(ids.additional_gids.begin(), ids.additional_gids.end(),
                                          gid) == ids.additional_gids.end()) {
            ids.additional_gids.push_back(gid);
          }
          break;
        }
        members = c == std::string_view::npos ? std::string_view() : members.substr(c + 1);
      }
    }
  }
  return ids;
}

namespace {
// Reads <root>/<rel> resolving every symlink inside root; ENOENT -> "".
std::expected<std::string, SysError> read_in_root(int root_fd, const std::string& root,
                                                  const char* rel) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel, &how, sizeof how));
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return std::unexpected(errno_error("openat2 " + root + "/" + rel));
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < (4u << 20)) {
    out.append(buf, static_cast<size_t>(n));
  }
  int err = errno;
  ::close(fd);
  if (n < 0) return std::unexpected(sys_error(err, "read " + root + "/" + rel));
  return out;
}
}  // namespace

std::expected<UserIds, SysError> resolve_user_in_rootfs(const std::string& rootfs,
                                                        std::string_view user) {
  if (user.empty()) return UserIds{};
  int root_fd = ::open(rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return std::unexpected(errno_error("open " + rootfs));
  auto passwd = read_in_root(root_fd, rootfs, "etc/passwd");
  auto group = read_in_root(root_fd, rootfs, "etc/group");
  ::close(root_fd);
  if (!passwd) return std::unexpected(passwd.error());
  if (!group) return std::unexpected(group.error());
  auto ids = resolve_user(user, *passwd, *group);
  if (!ids) return std::unexpected(logic_error(ids.error()));
  return *ids;
}

}  // namespace podwarp::noded::runtime
