// Pure scheduling predicates of the DaemonSet controller (upstream
// pkg/controller/daemon/util and NodeShouldRunDaemonPod): node selector, required node
// affinity, taints and tolerations, the automatic DaemonSet tolerations, and the node
// affinity a DaemonSet pod is created with.
#pragma once

#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::apps {

// One toleration tolerates one taint (upstream Toleration.ToleratesTaint).
bool tolerates(const json::value& toleration, const json::value& taint);
// Whether `tolerations` (array or null) tolerate every taint of `node` whose effect is in
// `effects` ("NoSchedule", "NoExecute").
bool tolerates_taints(const json::value* tolerations, const json::value& node,
                      std::initializer_list<std::string_view> effects);

// spec.nodeSelector and spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
// of `pod_spec` match `node`.
bool node_matches(const json::value& pod_spec, const json::value& node);

// Adds upstream's DaemonSet tolerations (not-ready/unreachable NoExecute, disk/memory/pid
// pressure and unschedulable NoSchedule, network-unavailable for hostNetwork pods) to
// pod_spec.tolerations when missing.
void add_daemon_tolerations(json::object& pod_spec);

// Replaces the required node affinity with one term: matchFields metadata.name In [node].
void set_node_name_affinity(json::object& pod_spec, std::string_view node);

// The node a DaemonSet pod is for: spec.nodeName, else the metadata.name matchFields value of
// its required node affinity; "" when neither.
std::string target_node_name(const json::value& pod);

struct NodeDecision {
  bool should_run = false;            // a pod should be created here
  bool should_continue_running = false;  // an existing pod may stay
};
// upstream NodeShouldRunDaemonPod, for a pod spec that already has the DaemonSet
// tolerations.
NodeDecision node_should_run(const json::value& pod_spec, const json::value& node);

}  // namespace podwarp::apps
