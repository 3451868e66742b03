// Per-pod namespaces held without a pause process.
//
// create() makes a fresh network, IPC and UTS namespace in a short-lived thread (unshare of
// these three is per-thread and allowed in a multithreaded process), sets the UTS hostname,
// and bind-mounts /proc/thread-self/ns/{net,ipc,uts} onto files under
// <run_dir>/ns/<pod_uid>/. The bind mounts keep the namespaces alive after the thread exits;
// containers join them with setns() on fds opened from those files. release() unmounts and
// unlinks the pins: the namespaces die when the last process in them exits.
//
// PID namespace (shareProcessNamespace): a PID namespace cannot outlive its init, and noded
// has no pause process, so the sandbox does not create one up front. The runtime starts the
// pod's first container with CLONE_NEWPID (that process is pid 1 of the pod) and calls
// pin_pid_ns() with it; later containers join it through the pin. When the first container
// exits, the kernel kills the rest of the pod's pid namespace, like upstream when pause dies:
// that is the documented consequence of not having a pause process.
//
// The pins survive a noded restart (they are mounts on the host); adopt() takes them over.
// A PodNamespaces object is movable, not copyable; the destructor does NOT release (the pod
// outlives noded restarts): call release() explicitly. Methods are not thread-safe on one
// object.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "cgroup/sys_error.h"

namespace podwarp::noded::ns {

enum class NsType { kNet, kIpc, kUts, kPid };
std::string_view ns_name(NsType t);  // "net", "ipc", "uts", "pid"

struct PodNamespaceOptions {
  std::string run_dir;   // e.g. /run/podwarp
  std::string pod_uid;   // a directory name: no '/' and not "." / ".."
  std::string hostname;  // pod hostname for the UTS namespace (<= 64 bytes)
};

class PodNamespaces {
 public:
  static std::expected<PodNamespaces, SysError> create(const PodNamespaceOptions& opts);
  // Takes over pins left by an earlier noded (ENOENT if there are none).
  static std::expected<PodNamespaces, SysError> adopt(std::string_view run_dir,
                                                      std::string_view pod_uid);

  PodNamespaces(PodNamespaces&&) = default;
  PodNamespaces& operator=(PodNamespaces&&) = default;

  // <run_dir>/ns/<pod_uid>
  const std::string& dir() const { return dir_; }
  // <dir>/<name>: the pin file of a namespace.
  std::string path(NsType t) const;
  // Opens a pin O_RDONLY|O_CLOEXEC for setns(); the caller owns the fd.
  std::expected<int, SysError> open(NsType t) const;
  bool has_pid_ns() const;

  // Pins the pid namespace of process `pid` (the pod's first container) at <dir>/pid.
  std::expected<void, SysError> pin_pid_ns(int pid);

  // Unmounts and unlinks every pin and removes the directory. Idempotent.
  std::expected<void, SysError> release();

 private:
  explicit PodNamespaces(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Validates a pod uid as a single path component.
bool valid_pod_uid(std::string_view uid);

}  // namespace podwarp::noded::ns
