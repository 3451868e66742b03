// Pod status, computed as the kubelet's status code does (kubelet_pods.go getPhase and
// pkg/kubelet/status/generate.go for conditions), and rendered as v1.PodStatus JSON.
// The pod worker is the only writer of a PodStatus; these functions are pure.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pods/pod_spec.h"

namespace podwarp::noded::pods {

struct ContainerState {
  enum class Kind { kWaiting, kRunning, kTerminated };
  Kind kind = Kind::kWaiting;
  std::string reason, message;
  int exit_code = 0;
  int signal = 0;
  WallTime started_at{}, finished_at{};
  std::string container_id;
};

struct ContainerStatus {
  std::string name, image, image_id, container_id;
  ContainerState state;
  std::optional<ContainerState> last_state;  // the previous termination
  bool ready = false;
  std::optional<bool> started;
  int restart_count = 0;
  bool known = false;  // false until the worker has looked at this container at all
};

struct PodStatus {
  std::vector<ContainerStatus> init, app;  // same order as the spec
  std::vector<ContainerStatus> ephemeral;  // in the order they were added; no part in the phase
  bool sandbox_ready = false;
  bool terminal = false;  // the worker will not start anything again
  // Set when the pod cannot run at all (bad manifest, sandbox error): phase Failed with reason.
  std::string failed_reason, failed_message;
  WallTime start_time{};
  std::string pod_ip, host_ip;
  // condition type -> (status, lastTransitionTime), kept by update_conditions.
  std::map<std::string, std::pair<bool, WallTime>> condition_times;
};

// "Pending", "Running", "Succeeded", "Failed" as upstream's getPhase.
std::string compute_phase(const PodDef& def, const PodStatus& s);

struct Condition {
  std::string type;
  bool status = false;
  std::string reason, message;
};
// PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled.
std::vector<Condition> compute_conditions(const PodDef& def, const PodStatus& s,
                                          const std::string& phase);
// Records lastTransitionTime for conditions whose status changed.
void update_condition_times(PodStatus& s, const std::vector<Condition>& conds, WallTime now);

// The whole v1.PodStatus object, including qosClass.
json::object render_pod_status(const PodDef& def, const PodStatus& s);
json::object render_container_status(const ContainerStatus& c);

}  // namespace podwarp::noded::pods
