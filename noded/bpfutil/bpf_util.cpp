#include "bpfutil/bpf_util.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>

namespace podwarp::noded::bpfutil {
namespace {

thread_local std::string* libbpf_log = nullptr;

int capture_libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || libbpf_log == nullptr) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  if (n > 0) libbpf_log->append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
  return 0;
}

}  // namespace

bool is_bpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 &&
         st.f_type == static_cast<decltype(st.f_type)>(BPF_FS_MAGIC);
}

std::expected<void, SysError> ensure_machine_bpffs(const std::string& path) {
  const std::string_view root = kMachineBpffs;
  if (!path.starts_with(root) || (path.size() > root.size() && path[root.size()] != '/'))
    return {};
  if (is_bpffs(kMachineBpffs)) return {};
  const int fd = ::open(kMachineBpffs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_error(std::string("open ") + kMachineBpffs));
  std::expected<void, SysError> out;
  if (::flock(fd, LOCK_EX) != 0) {
    out = std::unexpected(errno_error(std::string("flock ") + kMachineBpffs));
  } else if (!is_bpffs(kMachineBpffs) && ::mount("bpf", kMachineBpffs, "bpf", 0, "mode=0700") != 0) {
    out = std::unexpected(errno_error(std::string("mount bpf on ") + kMachineBpffs +
                                      " (no bpffs is mounted there; needs CAP_SYS_ADMIN)"));
  }
  ::close(fd);  // also drops the lock
  return out;
}

std::expected<void, SysError> mkdir_p(const std::string& path, mode_t mode) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST)
      return std::unexpected(errno_error("mkdir " + part));
  }
  return {};
}

std::expected<PinDir, SysError> open_pin_dir(const std::string& pin_dir, std::string_view what) {
  PinDir out{pin_dir, UniqueFd()};
  std::string& dir = out.path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir.empty() || dir[0] != '/' || dir == "/")
    return std::unexpected(logic_error(std::string(what) +
                                       " pin dir must be an absolute path below bpffs, got \"" +
                                       pin_dir + "\""));
  if (auto m = ensure_machine_bpffs(dir); !m) return std::unexpected(m.error());
  std::string existing = dir;
  struct stat st {};
  while (existing.size() > 1 && ::stat(existing.c_str(), &st) != 0)
    existing = existing.substr(0, std::max<size_t>(existing.rfind('/'), 1));
  if (!is_bpffs(existing))
    return std::unexpected(sys_error(ENOTSUP, std::string(what) + " pins: " + existing +
                                                  " is not on a bpf filesystem (mount -t bpf "
                                                  "bpf /sys/fs/bpf)"));
  if (auto made = mkdir_p(dir); !made) return std::unexpected(made.error());
  out.lock.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!out.lock) return std::unexpected(errno_error("open " + dir));
  if (::flock(out.lock.get(), LOCK_EX) != 0) return std::unexpected(errno_error("flock " + dir));
  return out;
}

std::expected<bool, SysError> reuse_pinned_map(bpf_map* map, const std::string& dir) {
  const std::string path = dir + "/" + bpf_map__name(map);
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) {
    if (errno == ENOENT) return false;
    return std::unexpected(errno_error("bpf_obj_get " + path));
  }
  struct bpf_map_info info {};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return std::unexpected(errno_error("bpf_obj_get_info_by_fd " + path));
  if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
      info.value_size != bpf_map__value_size(map))
    return std::unexpected(sys_error(
        EPROTO, "pinned map " + path + " has type " + std::to_string(info.type) + ", key size " +
                    std::to_string(info.key_size) + ", value size " +
                    std::to_string(info.value_size) + " (this build wants " +
                    std::to_string(bpf_map__type(map)) + ", " +
                    std::to_string(bpf_map__key_size(map)) + ", " +
                    std::to_string(bpf_map__value_size(map)) +
                    "; pinned by another podwarp version? remove the pins of " + dir + ")"));
  bpf_map__set_max_entries(map, info.max_entries);
  if (bpf_map__reuse_fd(map, fd.get()) != 0)
    return std::unexpected(errno_error("bpf_map__reuse_fd " + path));
  return true;
}

std::expected<void, SysError> attach_tc(int ifindex, std::initializer_list<TcProgram> programs,
                                        std::uint32_t handle, std::uint32_t priority) {
  LibbpfLogCapture log;  // "Exclusivity flag on" for an existing clsact is expected
  for (const TcProgram& p : programs) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = p.point);
    int r = bpf_tc_hook_create(&hook);
    if (r != 0 && r != -EEXIST)
      return std::unexpected(sys_error(-r, "tc clsact on ifindex " + std::to_string(ifindex)));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = p.prog_fd, .flags = BPF_TC_F_REPLACE,
                .handle = handle, .priority = priority);
    r = bpf_tc_attach(&hook, &opts);
    if (r != 0)
      return std::unexpected(sys_error(-r, "tc attach " + std::string(p.name) + " on ifindex " +
                                               std::to_string(ifindex) + log.tail()));
  }
  return {};
}

std::expected<void, SysError> detach_tc(int ifindex, std::uint32_t handle, std::uint32_t priority) {
  LibbpfLogCapture log;
  for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
    int r = bpf_tc_detach(&hook, &opts);
    if (r != 0 && r != -ENOENT && r != -EINVAL)
      return std::unexpected(sys_error(-r, "tc detach on ifindex " + std::to_string(ifindex)));
  }
  return {};
}

LibbpfLogCapture::LibbpfLogCapture() : previous_(libbpf_set_print(capture_libbpf_print)) {
  libbpf_log = &log_;
}

LibbpfLogCapture::~LibbpfLogCapture() {
  libbpf_log = nullptr;
  libbpf_set_print(previous_);
}

std::string LibbpfLogCapture::tail(std::size_t max) const {
  std::string t = log_.size() > max ? "..." + log_.substr(log_.size() - max) : log_;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  std::replace(t.begin(), t.end(), '\n', ' ');
  return t.empty() ? t : " (libbpf: " + t + ")";
}

}  // namespace podwarp::noded::bpfutil
