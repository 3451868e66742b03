// Pure rollout arithmetic of the Deployment controller (upstream
// pkg/controller/deployment/util and rolling.go), over a small view of each ReplicaSet, so the
// step planning is unit-testable with hand-built values.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::apps {

inline constexpr std::string_view kRevisionAnnotation = "deployment.kubernetes.io/revision";
inline constexpr std::string_view kRevisionHistoryAnnotation =
    "deployment.kubernetes.io/revision-history";
inline constexpr std::string_view kDesiredReplicasAnnotation =
    "deployment.kubernetes.io/desired-replicas";
inline constexpr std::string_view kMaxReplicasAnnotation = "deployment.kubernetes.io/max-replicas";
inline constexpr std::string_view kPodTemplateHashLabel = "pod-template-hash";

struct RsView {
  std::string name;
  std::int64_t replicas = 0;   // spec.replicas
  std::int64_t available = 0;  // status.availableReplicas
  std::chrono::system_clock::time_point created;
  std::optional<std::int64_t> max_replicas_annotation;
};

// The Deployment's rollout parameters, defaults applied (apps/v1 defaulting).
struct DeploymentParams {
  std::int64_t replicas = 1;
  bool recreate = false;
  std::int64_t max_surge = 0;        // resolved
  std::int64_t max_unavailable = 0;  // resolved
  std::int64_t min_ready_seconds = 0;
  std::optional<std::int64_t> revision_history_limit = 10;
  std::optional<std::int64_t> progress_deadline_seconds = 600;
  bool paused = false;
};
DeploymentParams deployment_params(const json::value& d);

// NewRSNewReplicas for RollingUpdate: how big the new RS may be now.
std::int64_t new_rs_replicas_rolling(const DeploymentParams& p, std::int64_t all_rs_replicas,
                                     std::int64_t new_rs_replicas);

// reconcileOldReplicaSets' budget: how many old replicas may go now (may be <= 0).
std::int64_t max_scaled_down(const DeploymentParams& p, std::int64_t all_rs_replicas,
                             std::int64_t new_rs_replicas, std::int64_t new_rs_available);

// cleanupUnhealthyReplicas then scaleDownOldReplicaSetsForRollingUpdate: the new size of each
// old RS (same order as `olds`). `total_available` is the available count over all RSs.
std::vector<std::int64_t> plan_old_scale_down(const DeploymentParams& p, std::vector<RsView> olds,
                                              std::int64_t max_scale_down,
                                              std::int64_t new_rs_available);

// Proportional scaling (deployment sync.go scale()): the new size of each active RS (order of
// `active`) when the deployment's size changed in the middle of a rollout. `status_replicas`
// is deployment.status.replicas (used when an RS lacks the max-replicas annotation).
std::vector<std::int64_t> proportional_scale(const DeploymentParams& p, std::vector<RsView> active,
                                             std::int64_t status_replicas);

}  // namespace podwarp::apps
