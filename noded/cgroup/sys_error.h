// SysError: the error value of every noded component that talks to the kernel (cgroup, ns,
// seccomp, runtime). It carries the errno (0 when the failure is not a syscall's) and a
// message naming the operation and the path, crun-style: "mkdir /sys/fs/cgroup/x: EEXIST".
// Callers add context on the way up with SysError::wrap ("container start: pivot_root: EINVAL").
// Header-only so that every kernel-facing component can use it without a link dependency.
#pragma once

#include <string.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace podwarp::noded {

// "EINVAL" for EINVAL; "errno 4242" for unknown values.
inline std::string errno_name(int err) {
  const char* n = ::strerrorname_np(err);
  return n != nullptr ? std::string(n) : "errno " + std::to_string(err);
}

struct SysError {
  int code = 0;         // errno, or 0
  std::string message;  // "<operation> <path>: <ERRNO>"

  // A new error with "<context>: " in front of the message.
  SysError wrap(std::string_view context) const {
    return SysError{code, std::string(context) + ": " + message};
  }
  const std::string& to_string() const { return message; }
};

// SysError{err, "<what>: <ERRNO>"}.
inline SysError sys_error(int err, std::string_view what) {
  return SysError{err, std::string(what) + ": " + errno_name(err)};
}
// The same, with the current errno.
inline SysError errno_error(std::string_view what) { return sys_error(errno, what); }
// A failure that is not a syscall's (bad input, malformed kernel file).
inline SysError logic_error(std::string message) { return SysError{0, std::move(message)}; }

}  // namespace podwarp::noded
