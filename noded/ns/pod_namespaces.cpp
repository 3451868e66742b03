#include "ns/pod_namespaces.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

namespace podwarp::noded::ns {
namespace {

constexpr NsType kPodTypes[] = {NsType::kNet, NsType::kIpc, NsType::kUts};

std::expected<void, SysError> mkdir_p(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      std::string p = path.substr(0, i);
      if (::mkdir(p.c_str(), 0711) < 0 && errno != EEXIST) {
        return std::unexpected(errno_error("mkdir " + p));
      }
    }
  }
  return {};
}

std::expected<void, SysError> touch(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0444);
  if (fd < 0) return std::unexpected(errno_error("create " + path));
  ::close(fd);
  return {};
}

// Unmount (if mounted) and unlink one pin. Missing pins are fine.
std::expected<void, SysError> unpin(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    return std::unexpected(errno_error("umount " + path));
  }
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) {
    return std::unexpected(errno_error("unlink " + path));
  }
  return {};
}

}  // namespace

std::string_view ns_name(NsType t) {
  switch (t) {
    case NsType::kNet:
      return "net";
    case NsType::kIpc:
      return "ipc";
    case NsType::kUts:
      return "uts";
    case NsType::kPid:
      return "pid";
  }
  return "net";
}

bool valid_pod_uid(std::string_view uid) {
  return !uid.empty() && uid != "." && uid != ".." && uid.size() <= 128 &&
         uid.find('/') == std::string_view::npos && uid.find('\0') == std::string_view::npos;
}

std::string PodNamespaces::path(NsType t) const { return dir_ + "/" + std::string(ns_name(t)); }

std::expected<int, SysError> PodNamespaces::open(NsType t) const {
  std::string p = path(t);
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_error("open " + p));
  return fd;
}

bool PodNamespaces::has_pid_ns() const {
  struct stat st {};
  struct stat parent {};
  // A pin is a mount: its device differs from the directory's.
  return ::stat(path(NsType::kPid).c_str(), &st) == 0 && ::stat(dir_.c_str(), &parent) == 0 &&
         st.st_dev != parent.st_dev;
}

std::expected<PodNamespaces, SysError> PodNamespaces::create(const PodNamespaceOptions& opts) {
  if (!valid_pod_uid(opts.pod_uid)) {
    return std::unexpected(logic_error("invalid pod uid \"" + opts.pod_uid + "\""));
  }
  if (opts.hostname.size() > 64) {
    return std::unexpected(logic_error("hostname \"" + opts.hostname + "\" longer than 64 bytes"));
  }
  PodNamespaces pn(opts.run_dir + "/ns/" + opts.pod_uid);
  if (auto r = mkdir_p(pn.dir_); !r) return std::unexpected(r.error());
  for (auto t : kPodTypes) {
    if (auto r = touch(pn.path(t)); !r) return std::unexpected(r.error());
  }
  std::expected<void, SysError> result;
  // unshare() moves only this thread; the thread exits and the bind mounts keep the
  // namespaces. The mounts are made in the (shared) host mount namespace.
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
      result = std::unexpected(errno_error("unshare net,ipc,uts"));
      return;
    }
    if (!opts.hostname.empty() && ::sethostname(opts.hostname.data(), opts.hostname.size()) < 0) {
      result = std::unexpected(errno_error("sethostname " + opts.hostname));
      return;
    }
    for (auto t : kPodTypes) {
      std::string src = "/proc/thread-self/ns/" + std::string(ns_name(t));
      std::string dst = pn.path(t);
      if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) < 0) {
        result = std::unexpected(errno_error("mount " + src + " on " + dst));
        return;
      }
    }
  });
  worker.join();
  if (!result) {
    (void)pn.release();
    return std::unexpected(result.error());
  }
  return pn;
}

std::expected<PodNamespaces, SysError> PodNamespaces::adopt(std::string_view run_dir,
                                                            std::string_view pod_uid) {
  if (!valid_pod_uid(pod_uid)) {
    return std::unexpected(logic_error("invalid pod uid \"" + std::string(pod_uid) + "\""));
  }
  PodNamespaces pn(std::string(run_dir) + "/ns/" + std::string(pod_uid));
  for (auto t : kPodTypes) {
    if (::access(pn.path(t).c_str(), F_OK) < 0) {
      return std::unexpected(errno_error("access " + pn.path(t)));
    }
  }
  return pn;
}

std::expected<void, SysError> PodNamespaces::pin_pid_ns(int pid) {
  std::string dst = path(NsType::kPid);
  if (auto r = touch(dst); !r) return r;
  std::string src = "/proc/" + std::to_string(pid) + "/ns/pid";
  if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) < 0) {
    return std::unexpected(errno_error("mount " + src + " on " + dst));
  }
  return {};
}

std::expected<void, SysError> PodNamespaces::release() {
  if (dir_.empty()) return {};
  for (auto t : {NsType::kNet, NsType::kIpc, NsType::kUts, NsType::kPid}) {
    if (auto r = unpin(path(t)); !r) return r;
  }
  if (::rmdir(dir_.c_str()) < 0 && errno != ENOENT) {
    return std::unexpected(errno_error("rmdir " + dir_));
  }
  return {};
}

}  // namespace podwarp::noded::ns
