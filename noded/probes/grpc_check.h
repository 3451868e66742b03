// grpc.health.v1.Health/Check over an already-connected TCP fd (internal to probes; keeps the
// gRPC headers out of probe.cpp).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "podwarp/time.h"
#include "probes/probe.h"

namespace podwarp::noded::probes {

// Takes ownership of `fd` (a connected stream socket, e.g. made in the pod netns) and runs the
// blocking unary Check(service) with deadline `timeout` on a new detached thread; `done` is
// called exactly once, from that thread, with the kubelet-style outcome:
// SERVING → success "service healthy"; other status → "service unhealthy (responded with
// \"NOT_SERVING\")"; DEADLINE_EXCEEDED → "timeout: health rpc did not complete within 1s";
// UNIMPLEMENTED → "this server does not implement the grpc health protocol
// (grpc.health.v1.Health): ..."; other errors → "error: health rpc probe failed: ...".
// `reported` is the probe's timeoutSeconds named in the timeout message (the deadline itself
// is what is left of it after connecting).
void grpc_health_check_on_fd(int fd, std::string authority, std::string service,
                             std::chrono::milliseconds timeout, std::chrono::milliseconds reported,
                             std::function<void(Outcome)> done);


}  // namespace podwarp::noded::probes
