// Workload controllers and disruption budgets: upstream's printDeployment, printReplicaSet,
// printDaemonSet, printStatefulSet, printJob, printCronJob and printPodDisruptionBudget.
// spec.replicas is printed as the API defaults it (1) when absent.
#include <fmt/format.h>

#include <string>

#include "tables/format.h"
#include "tables/printer.h"
#include "tables/timestamps.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

constexpr std::string_view kReadyPodsDoc = "Number of the pod with ready state";

std::int64_t desired_replicas(const json::value& obj) {
  const json::value* r = find_path(obj, {"spec", "replicas"});
  if (r == nullptr || r->is_null()) return 1;
  return get_int(obj, {"spec", "replicas"}, 1);
}

// The Containers and Images cells of a pod template's containers.
void add_template_cells(json::array& cells, const json::value& obj,
                        std::initializer_list<std::string_view> containers_path = {
                            "spec", "template", "spec", "containers"}) {
  auto [names, images] = container_cells(array_at(obj, containers_path));
  cells.emplace_back(names);
  cells.emplace_back(images);
}

// ---- Deployment ----

constexpr Column kDeploymentColumns[] = {
    kNameColumn,
    {"Ready", "string", "", kReadyPodsDoc},
    {"Up-to-date", "string", "",
     "Total number of non-terminated pods targeted by this deployment that have the desired "
     "template spec."},
    {"Available", "string", "",
     "Total number of available pods (ready for at least minReadySeconds) targeted by this "
     "deployment."},
    kAgeColumn,
    kContainersColumn,
    kImagesColumn,
    {"Selector", "string", "",
     "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
     "ones affected by this deployment.",
     1},
};

json::array deployment_cells(const json::value& d, TimePoint now) {
  // Deployments print selector.String() ("" when empty), not FormatLabelSelector.
  auto selector = label_selector_string(find_path(d, {"spec", "selector"}));
  json::array cells;
  cells.emplace_back(name_of(d));
  cells.emplace_back(
      fmt::format("{}/{}", get_int(d, {"status", "readyReplicas"}), desired_replicas(d)));
  cells.emplace_back(get_int(d, {"status", "updatedReplicas"}));
  cells.emplace_back(get_int(d, {"status", "availableReplicas"}));
  cells.emplace_back(age_of(d, now));
  add_template_cells(cells, d);
  cells.emplace_back(selector ? *selector : std::string("<invalid>"));
  return cells;
}

// ---- ReplicaSet ----

constexpr Column kReplicaSetColumns[] = {
    kNameColumn,
    {"Desired", "integer", "",
     "Replicas is the number of desired replicas. This is a pointer to distinguish between "
     "explicit zero and unspecified. Defaults to 1. More info: "
     "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
     "#what-is-a-replicationcontroller"},
    {"Current", "integer", "",
     "Replicas is the most recently observed number of replicas. More info: "
     "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/"
     "#what-is-a-replicationcontroller"},
    {"Ready", "integer", "", "The number of ready replicas for this replica set."},
    kAgeColumn,
    kContainersColumn,
    kImagesColumn,
    {"Selector", "string", "",
     "Selector is a label query over pods that should match the replica count. If the selector "
     "is empty, it is defaulted to the labels present on the pod template.",
     1},
};

json::array replica_set_cells(const json::value& rs, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(rs));
  cells.emplace_back(desired_replicas(rs));
  cells.emplace_back(get_int(rs, {"status", "replicas"}));
  cells.emplace_back(get_int(rs, {"status", "readyReplicas"}));
  cells.emplace_back(age_of(rs, now));
  add_template_cells(cells, rs);
  cells.emplace_back(format_label_selector(find_path(rs, {"spec", "selector"})));
  return cells;
}

// ---- DaemonSet ----

constexpr Column kDaemonSetColumns[] = {
    kNameColumn,
    {"Desired", "integer", "",
     "The total number of nodes that should be running the daemon pod (including nodes "
     "correctly running the daemon pod). More info: "
     "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"},
    {"Current", "integer", "",
     "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
     "daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"},
    {"Ready", "integer", "",
     "The number of nodes that should be running the daemon pod and have one or more of the "
     "daemon pod running and ready."},
    {"Up-to-date", "integer", "", "The total number of nodes that are running updated daemon pod"},
    {"Available", "integer", "",
     "The number of nodes that should be running the daemon pod and have one or more of the "
     "daemon pod running and available (ready for at least spec.minReadySeconds)"},
    {"Node Selector", "string", "",
     "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which "
     "must match a node's labels for the pod to be scheduled on that node. More info: "
     "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"},
    kAgeColumn,
    kContainersColumn,
    kImagesColumn,
    {"Selector", "string", "",
     "A label query over pods that are managed by the daemon set. Must match in order to be "
     "controlled. If empty, defaulted to labels on Pod template. More info: "
     "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
     1},
};

json::array daemon_set_cells(const json::value& ds, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(ds));
  cells.emplace_back(get_int(ds, {"status", "desiredNumberScheduled"}));
  cells.emplace_back(get_int(ds, {"status", "currentNumberScheduled"}));
  cells.emplace_back(get_int(ds, {"status", "numberReady"}));
  cells.emplace_back(get_int(ds, {"status", "updatedNumberScheduled"}));
  cells.emplace_back(get_int(ds, {"status", "numberAvailable"}));
  cells.emplace_back(format_labels(find_path(ds, {"spec", "template", "spec", "nodeSelector"})));
  cells.emplace_back(age_of(ds, now));
  add_template_cells(cells, ds);
  cells.emplace_back(format_label_selector(find_path(ds, {"spec", "selector"})));
  return cells;
}

// ---- StatefulSet ----

constexpr Column kStatefulSetColumns[] = {
    kNameColumn,
    {"Ready", "string", "", kReadyPodsDoc},
    kAgeColumn,
    // -o wide:
    kContainersColumn,
    kImagesColumn,
};

json::array stateful_set_cells(const json::value& sts, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(sts));
  cells.emplace_back(
      fmt::format("{}/{}", get_int(sts, {"status", "readyReplicas"}), desired_replicas(sts)));
  cells.emplace_back(age_of(sts, now));
  add_template_cells(cells, sts);
  return cells;
}

// ---- Job ----

constexpr std::string_view kJobSelectorDoc =
    "A label query over pods that should match the pod count. Normally, the system sets this "
    "field for you. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";

constexpr Column kJobColumns[] = {
    kNameColumn,
    {"Status", "string", "", "Status of the job."},
    {"Completions", "string", "", "The number of pods which reached phase Succeeded."},
    {"Duration", "string", "", "Time required to complete the job."},
    kAgeColumn,
    kContainersColumn,
    kImagesColumn,
    {"Selector", "string", "", kJobSelectorDoc, 1},
};

// hasJobCondition: the first condition of the type decides.
bool has_job_condition(const json::value& job, std::string_view type) {
  if (const json::array* conditions = array_at(job, {"status", "conditions"})) {
    for (const json::value& c : *conditions) {
      if (get_string(c, {"type"}) == type) return get_string(c, {"status"}) == "True";
    }
  }
  return false;
}

std::string job_status(const json::value& job) {
  if (has_job_condition(job, "Complete")) return "Complete";
  if (has_job_condition(job, "Failed")) return "Failed";
  const json::value* deletion = find_path(job, {"metadata", "deletionTimestamp"});
  if (deletion != nullptr && !deletion->is_null()) return "Terminating";
  if (has_job_condition(job, "Suspended")) return "Suspended";
  if (has_job_condition(job, "FailureTarget")) return "FailureTarget";
  return "Running";
}

json::array job_cells(const json::value& job, TimePoint now) {
  const std::int64_t succeeded = get_int(job, {"status", "succeeded"});
  std::string completions;
  if (const json::value* c = find_path(job, {"spec", "completions"}); c && !c->is_null()) {
    completions = fmt::format("{}/{}", succeeded, get_int(job, {"spec", "completions"}));
  } else if (std::int64_t parallelism = get_int(job, {"spec", "parallelism"}); parallelism > 1) {
    completions = fmt::format("{}/1 of {}", succeeded, parallelism);
  } else {
    completions = fmt::format("{}/1", succeeded);
  }

  std::string duration;  // empty until the job has started
  if (auto start = timestamp(find_path(job, {"status", "startTime"}))) {
    auto end = timestamp(find_path(job, {"status", "completionTime"}));
    duration = human_duration_between(*start, end ? *end : now);
  }

  json::array cells;
  cells.emplace_back(name_of(job));
  cells.emplace_back(job_status(job));
  cells.emplace_back(completions);
  cells.emplace_back(duration);
  cells.emplace_back(age_of(job, now));
  add_template_cells(cells, job);
  cells.emplace_back(format_label_selector(find_path(job, {"spec", "selector"})));
  return cells;
}

// ---- CronJob ----

constexpr Column kCronJobColumns[] = {
    kNameColumn,
    {"Schedule", "string", "",
     "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."},
    {"Timezone", "string", "",
     "The time zone name for the given schedule, see "
     "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will "
     "default to the time zone of the kube-controller-manager process."},
    {"Suspend", "boolean", "",
     "This flag tells the controller to suspend subsequent executions, it does not apply to "
     "already started executions.  Defaults to false."},
    {"Active", "integer", "", "A list of pointers to currently running jobs."},
    {"Last Schedule", "string", "",
     "Information when was the last time the job was successfully scheduled."},
    kAgeColumn,
    kContainersColumn,
    kImagesColumn,
    {"Selector", "string", "", kJobSelectorDoc, 1},
};

json::array cron_job_cells(const json::value& cj, TimePoint now) {
  std::string last_schedule = "<none>";
  if (const json::value* t = find_path(cj, {"status", "lastScheduleTime"}); t && !t->is_null()) {
    last_schedule = since(t, now);
  }
  std::string_view time_zone = "<none>";
  if (const json::value* tz = find_path(cj, {"spec", "timeZone"}); tz && tz->is_string()) {
    time_zone = tz->get_string();
  }
  // printBoolPtr of spec.suspend, which the API defaults to false.
  const json::value* suspend = find_path(cj, {"spec", "suspend"});
  std::string_view suspend_cell = "False";
  if (suspend != nullptr && suspend->is_bool() && suspend->get_bool()) suspend_cell = "True";

  json::array cells;
  cells.emplace_back(name_of(cj));
  cells.emplace_back(get_string(cj, {"spec", "schedule"}));
  cells.emplace_back(time_zone);
  cells.emplace_back(suspend_cell);
  cells.emplace_back(size_at(cj, {"status", "active"}));
  cells.emplace_back(last_schedule);
  cells.emplace_back(age_of(cj, now));
  add_template_cells(cells, cj, {"spec", "jobTemplate", "spec", "template", "spec", "containers"});
  cells.emplace_back(
      format_label_selector(find_path(cj, {"spec", "jobTemplate", "spec", "selector"})));
  return cells;
}

// ---- PodDisruptionBudget ----

constexpr Column kPodDisruptionBudgetColumns[] = {
    kNameColumn,
    {"Min Available", "string", "", "The minimum number of pods that must be available."},
    {"Max Unavailable", "string", "", "The maximum number of pods that may be unavailable."},
    {"Allowed Disruptions", "integer", "",
     "Calculated number of pods that may be disrupted at this time."},
    kAgeColumn,
};

std::string int_or_string_or_na(const json::value& obj,
                                std::initializer_list<std::string_view> path) {
  const json::value* v = find_path(obj, path);
  if (v == nullptr || v->is_null()) return "N/A";
  return int_or_string(*v);
}

json::array pdb_cells(const json::value& pdb, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(pdb));
  cells.emplace_back(int_or_string_or_na(pdb, {"spec", "minAvailable"}));
  cells.emplace_back(int_or_string_or_na(pdb, {"spec", "maxUnavailable"}));
  cells.emplace_back(get_int(pdb, {"status", "disruptionsAllowed"}));
  cells.emplace_back(age_of(pdb, now));
  return cells;
}

constexpr Printer kPrinters[] = {
    {"apps", "Deployment", kDeploymentColumns, &deployment_cells},
    {"apps", "ReplicaSet", kReplicaSetColumns, &replica_set_cells},
    {"apps", "DaemonSet", kDaemonSetColumns, &daemon_set_cells},
    {"apps", "StatefulSet", kStatefulSetColumns, &stateful_set_cells},
    {"batch", "Job", kJobColumns, &job_cells},
    {"batch", "CronJob", kCronJobColumns, &cron_job_cells},
    {"policy", "PodDisruptionBudget", kPodDisruptionBudgetColumns, &pdb_cells},
};

}  // namespace

std::span<const Printer> workload_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
