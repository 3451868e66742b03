#include "bpfutil/bpf_util.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

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
