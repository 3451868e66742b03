// Brings the loopback interface up inside a pinned network namespace. Standalone pods have
// loopback only, and probes/hooks without a host dial 127.0.0.1 inside the pod netns, so "lo"
// must be up before the first container starts.
#pragma once

#include <expected>
#include <string>

#include "cgroup/sys_error.h"

namespace podwarp::noded::adapters {

// A short-lived thread setns()es into the namespace pinned at `netns_path` (network
// namespaces are per-thread, so noded's other threads are never moved) and sets IFF_UP on
// "lo" with SIOCSIFFLAGS. Errors: "setns <path>: EINVAL", "SIOCSIFFLAGS lo in <path>: EPERM".
std::expected<void, SysError> bring_up_loopback(const std::string& netns_path);

}  // namespace podwarp::noded::adapters
