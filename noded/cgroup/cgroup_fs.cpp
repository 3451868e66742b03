#include "cgroup/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace podwarp::noded::cgroup {
namespace {

class RealCgroupFs final : public CgroupFs {
 public:
  std::expected<std::string, SysError> read(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::unexpected(errno_error("open " + path));
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        auto e = errno_error("read " + path);
        ::close(fd);
        return std::unexpected(e);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  std::expected<void, SysError> write(const std::string& path, std::string_view data) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return std::unexpected(errno_error("open " + path));
    ssize_t n;
    do {
      n = ::write(fd, data.data(), data.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      auto e = errno_error("write " + path);
      ::close(fd);
      return std::unexpected(e);
    }
    ::close(fd);
    return {};
  }

  std::expected<void, SysError> make_dir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) < 0) return std::unexpected(errno_error("mkdir " + path));
    return {};
  }

  std::expected<void, SysError> remove_dir(const std::string& path) override {
    if (::rmdir(path.c_str()) < 0) return std::unexpected(errno_error("rmdir " + path));
    return {};
  }

  std::expected<std::vector<std::string>, SysError> list_dirs(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return std::unexpected(errno_error("opendir " + path));
    std::vector<std::string> out;
    while (auto* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      if (e->d_type == DT_DIR) out.emplace_back(n);
    }
    ::closedir(d);
    return out;
  }
};

}  // namespace

CgroupFs& CgroupFs::real() {
  static RealCgroupFs fs;
  return fs;
}

}  // namespace podwarp::noded::cgroup
