// Pods from the API server as the pod workers see them, and the status noded writes back.
// Pure functions; safe from any thread.
#pragma once

#include <expected>
#include <optional>
#include <string>

#include "pods/pod_spec.h"
#include "podwarp/json.h"

namespace podwarp::noded::agent {

// A Pod object from the API -> PodDef with the object's own name, namespace and UID (none of
// the static-pod defaults: no name suffix, no config.* annotations, the object kept as is).
std::expected<pods::PodDef, pods::ManifestError> pod_def_from_api(const json::value& pod);

// True for phase Succeeded/Failed.
bool is_terminal_phase(const json::value& pod);

// deletionGracePeriodSeconds of a pod being deleted (nullopt when not being deleted; 0 when the
// deletionTimestamp is set without a grace period).
std::optional<std::int64_t> deletion_grace(const json::value& pod);

inline constexpr std::string_view kNetworkConditionType = "podwarp.io/PodNetwork";

// The status to write: the worker's rendered status (`ours`, render_pod_status) merged with
// the API object's current status (`current`, may be null) as the kubelet's status manager
// does: conditions of types noded does not own (DisruptionTarget, readiness gates, ...) and
// fields it does not produce (nominatedNodeName, resize, ...) are kept. hostNetwork pods get
// podIP = hostIP. A pod without a network (no podIP, not hostNetwork) gets the condition
// podwarp.io/PodNetwork=False, reason NoPodNetwork, saying so.
json::object compose_api_status(const json::object& ours, const json::value* current,
                                bool host_network);

// The JSON patch that writes `status` only if the object still has `uid`
// ([{"op":"test","path":"/metadata/uid",...},{"op":"add","path":"/status",...}]).
std::string status_patch(std::string_view uid, const json::object& status);

}  // namespace podwarp::noded::agent
