// Seccomp profiles for containers: RuntimeDefault (an allow-list modeled on the semantics of
// the OCI/moby default profile) or Unconfined.
//
// RuntimeDefault: every syscall not allowed returns EPERM. A fixed list of common syscalls is
// allowed; some syscalls are allowed only when the container holds a capability that makes
// them meaningful (mount/unshare/setns... with CAP_SYS_ADMIN, ptrace family with
// CAP_SYS_PTRACE, reboot with CAP_SYS_BOOT, ...). Without CAP_SYS_ADMIN, clone is allowed
// only without namespace flags and clone3 fails with ENOSYS (so libc falls back to clone,
// whose flags the filter can inspect); personality is limited to the usual values.
// Filters cover the native architecture plus its 32-bit companions (x86 and x32 on x86_64).
//
// The filter is compiled once per capability set into classic BPF in memory (cached,
// thread-safe), so a container start only copies a pointer and the child installs it with a
// raw seccomp(2) call: no allocation after clone.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <vector>

#include "cgroup/sys_error.h"

namespace podwarp::noded::seccomp {

struct BpfProgram {
  std::vector<sock_filter> insns;
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(insns.size()),
                      const_cast<sock_filter*>(insns.data())};
  }
};

// `caps` is the container's capability set as a bit mask (bit n = capability n).
// Returns a shared, immutable program (cached per mask).
std::expected<std::shared_ptr<const BpfProgram>, SysError> runtime_default(std::uint64_t caps);

// The allow-list names, for documentation and tests: unconditional ones.
const std::vector<const char*>& default_allowed_syscalls();

// Installs `prog` on the calling thread with seccomp(SECCOMP_SET_MODE_FILTER). The caller must
// hold CAP_SYS_ADMIN or have set no_new_privs. Async-signal-safe (one syscall).
int install(const sock_fprog* prog);

}  // namespace podwarp::noded::seccomp
