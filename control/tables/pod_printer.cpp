// Pods: upstream's printPod. The Status cell is the pod's "reason" as kubectl has always shown
// it: the phase, overridden by status.reason, by SchedulingGated, by the first init container
// that has not finished ("Init:0/2", "Init:CrashLoopBackOff", "Init:Error"), then by the first
// app container that is waiting or terminated ("ContainerCreating", "CrashLoopBackOff",
// "Completed", "OOMKilled", "ExitCode:2"), and finally by "Terminating" / "Unknown" for pods
// being deleted. Restartable init containers (sidecars, restartPolicy: Always) count towards
// READY and RESTARTS like app containers once started.
#include <fmt/format.h>

#include <optional>
#include <string>

#include "tables/format.h"
#include "tables/printer.h"
#include "tables/timestamps.h"

namespace podwarp::tables::detail {
namespace {

constexpr Column kPodColumns[] = {
    kNameColumn,
    {"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic."},
    {"Status", "string", "", "The aggregate status of the containers in this pod."},
    {"Restarts", "string", "",
     "The number of times the containers in this pod have been restarted and when the last "
     "container in this pod has restarted."},
    kAgeColumn,
    {"IP", "string", "",
     "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet "
     "allocated.",
     1},
    {"Node", "string", "",
     "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate "
     "for scheduling by the scheduler defined in schedulerName. Once this field is set, the "
     "kubelet for this node becomes responsible for the lifecycle of this pod. This field should "
     "not be used to express a desire for the pod to be scheduled on a specific node. "
     "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
     1},
    {"Nominated Node", "string", "",
     "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot "
     "be scheduled right away as preemption victims receive their graceful termination periods. "
     "This field does not guarantee that the pod will be scheduled on this node.",
     1},
    {"Readiness Gates", "string", "",
     "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when "
     "all its containers are ready AND all conditions specified in the readiness gates have "
     "status equal to \"True\" More info: "
     "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
     1},
};

using TimePoint = std::chrono::system_clock::time_point;

// The first condition of `type` in status.conditions, as upstream's helpers look them up.
const json::object* condition(const json::value& pod, std::string_view type) {
  const json::array* conditions = array_at(pod, {"status", "conditions"});
  if (conditions == nullptr) return nullptr;
  for (const json::value& c : *conditions) {
    const json::object* o = c.if_object();
    if (o != nullptr && str(*o, "type") == type) return o;
  }
  return nullptr;
}

// hasPodReadyCondition: any Ready condition that is True.
bool has_ready_condition(const json::value& pod) {
  const json::array* conditions = array_at(pod, {"status", "conditions"});
  if (conditions == nullptr) return false;
  for (const json::value& c : *conditions) {
    const json::object* o = c.if_object();
    if (o != nullptr && str(*o, "type") == "Ready" && str(*o, "status") == "True") return true;
  }
  return false;
}

bool initialized(const json::value& pod) {
  const json::object* c = condition(pod, "Initialized");
  return c != nullptr && str(*c, "status") == "True";
}

// podutil.IsRestartableInitContainer for the init container named `name`.
bool restartable_init_container(const json::array* init_containers, std::string_view name) {
  if (init_containers == nullptr) return false;
  const json::value* found = nullptr;
  for (const json::value& c : *init_containers) {  // the last of duplicate names wins, as in a map
    if (get_string(c, {"name"}) == name) found = &c;
  }
  return found != nullptr && get_string(*found, {"restartPolicy"}) == "Always";
}

// Keeps the latest lastState.terminated.finishedAt (metav1.Time.Before on the zero time).
void note_last_termination(const json::value& status, std::optional<TimePoint>& latest) {
  auto finished = timestamp(find_path(status, {"lastState", "terminated", "finishedAt"}));
  if (finished && (!latest || *latest < *finished)) latest = finished;
}

// "Signal:9" / "ExitCode:1" for a terminated state without a reason.
std::string exit_reason(const json::object& terminated) {
  if (std::int64_t signal = integer(terminated, "signal"); signal != 0) {
    return fmt::format("Signal:{}", signal);
  }
  return fmt::format("ExitCode:{}", integer(terminated, "exitCode"));
}

json::array pod_cells(const json::value& pod, TimePoint now) {
  const json::array* init_containers = array_at(pod, {"spec", "initContainers"});
  const std::int64_t init_count =
      init_containers == nullptr ? 0 : static_cast<std::int64_t>(init_containers->size());
  std::int64_t total = size_at(pod, {"spec", "containers"});
  std::int64_t ready = 0;
  std::int64_t restarts = 0;
  std::int64_t restartable_restarts = 0;
  std::optional<TimePoint> last_restart;
  std::optional<TimePoint> last_restartable_restart;

  const std::string_view phase = get_string(pod, {"status", "phase"});
  std::string reason(phase);
  if (std::string_view r = get_string(pod, {"status", "reason"}); !r.empty()) reason = r;

  if (const json::array* conditions = array_at(pod, {"status", "conditions"})) {
    for (const json::value& c : *conditions) {
      if (get_string(c, {"type"}) == "PodScheduled" &&
          get_string(c, {"reason"}) == "SchedulingGated") {
        reason = "SchedulingGated";
      }
    }
  }

  if (init_containers != nullptr) {
    for (const json::value& c : *init_containers) {
      if (get_string(c, {"restartPolicy"}) == "Always") ++total;
    }
  }

  bool initializing = false;
  if (const json::array* statuses = array_at(pod, {"status", "initContainerStatuses"})) {
    for (std::size_t i = 0; i < statuses->size(); ++i) {
      const json::value& cs = (*statuses)[i];
      const bool restartable =
          restartable_init_container(init_containers, get_string(cs, {"name"}));
      restarts += get_int(cs, {"restartCount"});
      note_last_termination(cs, last_restart);
      if (restartable) {
        restartable_restarts += get_int(cs, {"restartCount"});
        note_last_termination(cs, last_restartable_restart);
      }
      const json::object* terminated = object_at(cs, {"state", "terminated"});
      const json::object* waiting = object_at(cs, {"state", "waiting"});
      if (terminated != nullptr && integer(*terminated, "exitCode") == 0) continue;
      if (restartable && get_bool(cs, {"started"})) {
        if (get_bool(cs, {"ready"})) ++ready;
        continue;
      }
      if (terminated != nullptr) {
        // Initialization failed.
        std::string_view r = str(*terminated, "reason");
        reason = r.empty() ? "Init:" + exit_reason(*terminated) : "Init:" + std::string(r);
      } else if (waiting != nullptr && !str(*waiting, "reason").empty() &&
                 str(*waiting, "reason") != "PodInitializing") {
        reason = "Init:" + std::string(str(*waiting, "reason"));
      } else {
        reason = fmt::format("Init:{}/{}", i, init_count);
      }
      initializing = true;
      break;
    }
  }

  if (!initializing || initialized(pod)) {
    restarts = restartable_restarts;
    last_restart = last_restartable_restart;
    bool has_running = false;
    if (const json::array* statuses = array_at(pod, {"status", "containerStatuses"})) {
      // Backwards, so that the first container's state is the one shown.
      for (auto it = statuses->rbegin(); it != statuses->rend(); ++it) {
        const json::value& cs = *it;
        restarts += get_int(cs, {"restartCount"});
        note_last_termination(cs, last_restart);
        const json::object* waiting = object_at(cs, {"state", "waiting"});
        const json::object* terminated = object_at(cs, {"state", "terminated"});
        if (waiting != nullptr && !str(*waiting, "reason").empty()) {
          reason = str(*waiting, "reason");
        } else if (terminated != nullptr && !str(*terminated, "reason").empty()) {
          reason = str(*terminated, "reason");
        } else if (terminated != nullptr) {
          reason = exit_reason(*terminated);
        } else if (get_bool(cs, {"ready"}) && object_at(cs, {"state", "running"}) != nullptr) {
          has_running = true;
          ++ready;
        }
      }
    }
    // Back to "Running" while at least one container still runs.
    if (reason == "Completed" && has_running) {
      reason = has_ready_condition(pod) ? "Running" : "NotReady";
    }
  }

  const json::value* deletion = find_path(pod, {"metadata", "deletionTimestamp"});
  const bool deleting = deletion != nullptr && !deletion->is_null();
  if (deleting && get_string(pod, {"status", "reason"}) == "NodeLost") {
    reason = "Unknown";
  } else if (deleting && phase != "Succeeded" && phase != "Failed") {
    reason = "Terminating";
  }

  std::string restarts_cell = std::to_string(restarts);
  if (restarts != 0 && last_restart) {
    restarts_cell =
        fmt::format("{} ({} ago)", restarts, human_duration_between(*last_restart, now));
  }

  // The internal PodStatus takes podIP over podIPs[0] when both are set (v1 conversion).
  std::string_view ip = get_string(pod, {"status", "podIP"});
  if (ip.empty()) {
    if (const json::array* ips = array_at(pod, {"status", "podIPs"}); ips && !ips->empty()) {
      ip = get_string(ips->front(), {"ip"});
    }
  }
  std::string_view node = get_string(pod, {"spec", "nodeName"});
  std::string_view nominated = get_string(pod, {"status", "nominatedNodeName"});

  std::string gates = "<none>";
  if (const json::array* rg = array_at(pod, {"spec", "readinessGates"}); rg && !rg->empty()) {
    std::int64_t true_conditions = 0;
    for (const json::value& gate : *rg) {
      const json::object* c = condition(pod, get_string(gate, {"conditionType"}));
      if (c != nullptr && str(*c, "status") == "True") ++true_conditions;
    }
    gates = fmt::format("{}/{}", true_conditions, rg->size());
  }

  json::array cells;
  cells.emplace_back(name_of(pod));
  cells.emplace_back(fmt::format("{}/{}", ready, total));
  cells.emplace_back(reason);
  cells.emplace_back(restarts_cell);
  cells.emplace_back(age_of(pod, now));
  cells.emplace_back(ip.empty() ? std::string_view("<none>") : ip);
  cells.emplace_back(node.empty() ? std::string_view("<none>") : node);
  cells.emplace_back(nominated.empty() ? std::string_view("<none>") : nominated);
  cells.emplace_back(gates);
  return cells;
}

// Finished pods carry a Completed row condition (upstream's podSuccessConditions and
// podFailedConditions).
json::array pod_conditions(const json::value& pod) {
  std::string_view phase = get_string(pod, {"status", "phase"});
  json::array out;
  if (phase == "Succeeded") {
    out.emplace_back(json::object{{"type", "Completed"},
                                  {"status", "True"},
                                  {"reason", "Succeeded"},
                                  {"message", "The pod has completed successfully."}});
  } else if (phase == "Failed") {
    out.emplace_back(json::object{{"type", "Completed"},
                                  {"status", "True"},
                                  {"reason", "Failed"},
                                  {"message", "The pod failed."}});
  }
  return out;
}

constexpr Printer kPrinters[] = {{"", "Pod", kPodColumns, &pod_cells, &pod_conditions}};

}  // namespace

std::span<const Printer> pod_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
