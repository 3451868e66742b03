// The disruption controller (upstream pkg/controller/disruption): the status of every
// PodDisruptionBudget, which the apiserver's pods/eviction reads (status.disruptionsAllowed)
// and writes (it decrements disruptionsAllowed and records the pod in status.disruptedPods).
//
// Inputs: poddisruptionbudgets, pods, replicasets, deployments, statefulsets (informers).
// Output: PDB status: expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed,
// observedGeneration, disruptedPods (entries dropped once the pod is deleting or gone, or
// after 2 minutes) and the DisruptionAllowed condition (SufficientPods / InsufficientPods /
// SyncFailed).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base.h"
#include "podwarp/informer.h"

namespace podwarp::controllers {

// How long an eviction's entry in status.disruptedPods blocks the pod from counting as
// healthy when the pod does not get deleted (upstream DeletionTimeout).
inline constexpr std::chrono::minutes kDisruptedPodTimeout{2};

struct ControllerScale {
  std::string uid;
  std::int64_t replicas = 0;
};

// The scale of the workload controlling `pod` (its controllerRef, with a ReplicaSet owned by a
// Deployment resolved to the Deployment); nullopt when there is none.
using ScaleFinder = std::function<std::optional<ControllerScale>(const json::value& pod)>;

struct PdbComputation {
  std::int64_t expected_pods = 0;
  std::int64_t desired_healthy = 0;
  std::int64_t current_healthy = 0;
  std::int64_t disruptions_allowed = 0;
  json::object disrupted_pods;  // kept entries
  // When the earliest kept disrupted-pod entry expires (to sync again then).
  std::optional<std::chrono::system_clock::time_point> recheck;
  std::string error;  // non-empty: SyncFailed (disruptionsAllowed 0)
};

// The pods a PDB selects (policy/v1: an empty selector selects every pod of the namespace, a
// missing one none).
std::vector<client::ObjectPtr> pdb_pods(const json::value& pdb,
                                        const std::vector<client::ObjectPtr>& pods);

PdbComputation compute_pdb(const json::value& pdb, const std::vector<client::ObjectPtr>& pods,
                           const ScaleFinder& scale_of, std::chrono::system_clock::time_point now);

// The PDB's new status from a computation, keeping lastTransitionTime of an unchanged
// condition.
json::object pdb_status(const json::value& pdb, const PdbComputation& c,
                        std::chrono::system_clock::time_point now);

std::unique_ptr<loop::Controller> make_disruption_controller(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
