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
