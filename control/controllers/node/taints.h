// Taints and tolerations (upstream k8s.io/api/core/v1 toleration.go and the NoExecute taint
// manager's arithmetic), pure functions over the JSON of Node taints and Pod tolerations.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::controllers::taints {

inline constexpr std::string_view kNotReady = "node.kubernetes.io/not-ready";
inline constexpr std::string_view kUnreachable = "node.kubernetes.io/unreachable";
inline constexpr std::string_view kUnschedulable = "node.kubernetes.io/unschedulable";
inline constexpr std::string_view kMemoryPressure = "node.kubernetes.io/memory-pressure";
inline constexpr std::string_view kDiskPressure = "node.kubernetes.io/disk-pressure";
inline constexpr std::string_view kPidPressure = "node.kubernetes.io/pid-pressure";
inline constexpr std::string_view kNetworkUnavailable = "node.kubernetes.io/network-unavailable";

// Toleration.ToleratesTaint: effects match (an empty toleration effect matches all), keys
// match (an empty key with operator Exists matches every key), and Exists, or Equal (the
// default) with equal values.
bool tolerates(const json::value& toleration, const json::value& taint);

// What the taint manager does with a pod on a node with these NoExecute taints.
struct Eviction {
  enum Kind { kNone, kNow, kAfter } kind = kNone;
  // kAfter: seconds after the taints appeared (the smallest tolerationSeconds of the
  // tolerations used; upstream getMinTolerationTime, negative values count as 0).
  std::chrono::seconds after{0};
};
// kNone when there are no NoExecute taints or every one is tolerated forever; kNow when some
// NoExecute taint is not tolerated.
Eviction eviction_for(const json::value* tolerations, const json::value* node_taints);

// The NoExecute taints of a node's spec.taints.
std::vector<json::value> no_execute(const json::value* node_taints);

// The taints the node lifecycle controller manages, as wanted for a node: from its Ready
// condition (False -> not-ready, Unknown -> unreachable; NoExecute and NoSchedule; none while
// the node has no Ready condition),
// pressure conditions (NoSchedule), NetworkUnavailable and spec.unschedulable.
struct Wanted {
  std::string_view key;
  std::string_view effect;
};
std::vector<Wanted> wanted_taints(const json::value& node);
// True for the (key, effect) pairs wanted_taints() may produce.
bool managed(std::string_view key, std::string_view effect);

}  // namespace podwarp::controllers::taints
