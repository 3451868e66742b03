// Pod rows against what `kubectl get pods -o wide` prints from a v1.32 API server.
// The clock reads 2025-01-15T12:00:00Z (test_util.h).
#include <gtest/gtest.h>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::parse;

json::value pod_cells(std::string_view pod) { return testing::cells("", "Pod", pod); }

// The first five cells: NAME READY STATUS RESTARTS AGE.
json::value short_row(std::string_view pod) {
  json::array all = pod_cells(pod).as_array();
  all.resize(5);
  return all;
}

std::string status_of(std::string_view pod) {
  return std::string(pod_cells(pod).as_array()[2].as_string());
}

TEST(PodPrinter, RunningPod) {
  // NAME                  READY   STATUS    RESTARTS   AGE   IP           NODE     NOMINATED NODE
  // web-7d4b9c8f5-x2x9k   1/1     Running   0          5m    10.244.1.5   node-1   <none> ...
  EXPECT_EQ(pod_cells(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-7d4b9c8f5-x2x9k", "namespace": "default",
                 "creationTimestamp": "2025-01-15T11:55:00Z", "labels": {"app": "web"}},
    "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
    "status": {
      "phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
      "conditions": [{"type": "Initialized", "status": "True"},
                     {"type": "Ready", "status": "True"},
                     {"type": "ContainersReady", "status": "True"},
                     {"type": "PodScheduled", "status": "True"}],
      "containerStatuses": [{"name": "nginx", "ready": true, "started": true, "restartCount": 0,
                             "image": "nginx:1.27",
                             "state": {"running": {"startedAt": "2025-01-15T11:55:03Z"}}}]}
  })"),
            parse(R"(["web-7d4b9c8f5-x2x9k", "1/1", "Running", "0", "5m", "10.244.1.5",
                      "node-1", "<none>", "<none>"])"));
}

TEST(PodPrinter, CrashLoopingPodShowsLastRestartAge) {
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "crash", "creationTimestamp": "2025-01-15T11:50:00Z"},
    "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    "status": {
      "phase": "Running",
      "conditions": [{"type": "Ready", "status": "False"}],
      "containerStatuses": [{
        "name": "app", "ready": false, "started": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff",
                              "message": "back-off 2m40s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                     "startedAt": "2025-01-15T11:58:29Z",
                                     "finishedAt": "2025-01-15T11:58:30Z"}}}]}
  })"),
            parse(R"j(["crash", "0/1", "CrashLoopBackOff", "5 (90s ago)", "10m"])j"));
}

TEST(PodPrinter, RestartsWithoutLastTerminationArePlain) {
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "p", "creationTimestamp": "2025-01-15T09:00:00Z"},
    "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Running",
               "containerStatuses": [{"name": "a", "ready": true, "restartCount": 4,
                                      "state": {"running": {}}}]}
  })"),
            parse(R"(["p", "1/1", "Running", "4", "3h"])"));
}

TEST(PodPrinter, PendingPods) {
  // Not yet scheduled: the phase.
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                         "status": {"phase": "Pending",
                                    "conditions": [{"type": "PodScheduled", "status": "False",
                                                    "reason": "Unschedulable"}]}})"),
            "Pending");
  // Scheduling gates.
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                         "status": {"phase": "Pending",
                                    "conditions": [{"type": "PodScheduled", "status": "False",
                                                    "reason": "SchedulingGated"}]}})"),
            "SchedulingGated");
  // Scheduled, containers being created.
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "p", "creationTimestamp": "2025-01-15T11:59:57Z"},
    "spec": {"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]},
    "status": {"phase": "Pending",
               "containerStatuses": [
                 {"name": "a", "ready": false, "restartCount": 0,
                  "state": {"waiting": {"reason": "ContainerCreating"}}},
                 {"name": "b", "ready": false, "restartCount": 0,
                  "state": {"waiting": {"reason": "ContainerCreating"}}}]}
  })"),
            parse(R"(["p", "0/2", "ContainerCreating", "0", "3s"])"));
  // Image pull failure.
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                         "status": {"phase": "Pending", "containerStatuses": [
                           {"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}})"),
            "ImagePullBackOff");
}

TEST(PodPrinter, FirstContainerStateWins) {
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                         "status": {"phase": "Pending", "containerStatuses": [
                           {"name": "a", "state": {"waiting": {"reason": "ErrImagePull"}}},
                           {"name": "b", "state": {"waiting": {"reason": "ContainerCreating"}}}
                         ]}})"),
            "ErrImagePull");
}

TEST(PodPrinter, InitContainersRunning) {
  // NAME   READY   STATUS     RESTARTS   AGE
  // init   0/1     Init:0/2   0          20s
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "init", "creationTimestamp": "2025-01-15T11:59:40Z"},
    "spec": {"initContainers": [{"name": "migrate"}, {"name": "warm-cache"}],
             "containers": [{"name": "app"}]},
    "status": {
      "phase": "Pending",
      "conditions": [{"type": "Initialized", "status": "False",
                      "reason": "ContainersNotInitialized"}],
      "initContainerStatuses": [
        {"name": "migrate", "ready": false, "restartCount": 0,
         "state": {"running": {"startedAt": "2025-01-15T11:59:45Z"}}},
        {"name": "warm-cache", "ready": false, "restartCount": 0,
         "state": {"waiting": {"reason": "PodInitializing"}}}],
      "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
                             "state": {"waiting": {"reason": "PodInitializing"}}}]}
  })"),
            parse(R"(["init", "0/1", "Init:0/2", "0", "20s"])"));
}

TEST(PodPrinter, SecondInitContainerRunning) {
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"},
    "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
    "status": {"phase": "Pending", "initContainerStatuses": [
      {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
      {"name": "b", "state": {"running": {}}}]}})"),
            "Init:1/2");
}

TEST(PodPrinter, InitContainerCrashLooping) {
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "p", "creationTimestamp": "2025-01-15T11:57:00Z"},
    "spec": {"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "c"}]},
    "status": {
      "phase": "Pending",
      "initContainerStatuses": [
        {"name": "a", "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "b", "restartCount": 3,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                      "finishedAt": "2025-01-15T11:59:40Z"}}}],
      "containerStatuses": [{"name": "c", "restartCount": 0,
                             "state": {"waiting": {"reason": "PodInitializing"}}}]}
  })"),
            parse(R"j(["p", "0/1", "Init:CrashLoopBackOff", "3 (20s ago)", "3m"])j"));
}

TEST(PodPrinter, InitContainerFailed) {
  auto pod = [](std::string_view terminated) {
    return "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"initContainers\": [{\"name\": \"a\"}],"
           " \"containers\": [{\"name\": \"c\"}]}, \"status\": {\"phase\": \"Failed\", "
           "\"initContainerStatuses\": [{\"name\": \"a\", \"state\": {\"terminated\": " +
           std::string(terminated) + "}}]}}";
  };
  EXPECT_EQ(status_of(pod(R"({"exitCode": 1, "reason": "Error"})")), "Init:Error");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 137, "reason": "OOMKilled"})")), "Init:OOMKilled");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 2})")), "Init:ExitCode:2");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 137, "signal": 9})")), "Init:Signal:9");
}

TEST(PodPrinter, RestartableInitContainerSidecar) {
  // A sidecar counts in READY once started; its restarts are added to the app's.
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "with-sidecar", "creationTimestamp": "2025-01-14T12:00:00Z"},
    "spec": {"initContainers": [{"name": "setup"},
                                {"name": "proxy", "restartPolicy": "Always"}],
             "containers": [{"name": "app"}]},
    "status": {
      "phase": "Running",
      "conditions": [{"type": "Initialized", "status": "True"},
                     {"type": "Ready", "status": "True"}],
      "initContainerStatuses": [
        {"name": "setup", "ready": false, "restartCount": 2,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-15T11:59:00Z"}}},
        {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
         "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-15T11:00:00Z"}}}],
      "containerStatuses": [
        {"name": "app", "ready": true, "started": true, "restartCount": 2,
         "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-15T10:00:00Z"}}}]}
  })"),
            parse(R"j(["with-sidecar", "2/2", "Running", "3 (60m ago)", "24h"])j"));
}

TEST(PodPrinter, SidecarNotYetStartedBlocksInitialization) {
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "p"},
    "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
             "containers": [{"name": "app"}]},
    "status": {
      "phase": "Pending",
      "initContainerStatuses": [{"name": "proxy", "ready": false, "started": false,
                                 "restartCount": 0, "state": {"running": {}}}],
      "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}
  })"),
            parse(R"(["p", "0/2", "Init:0/1", "0", "<unknown>"])"));
}

TEST(PodPrinter, TerminatingPod) {
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:00:00Z",
                 "deletionTimestamp": "2025-01-15T12:00:30Z", "deletionGracePeriodSeconds": 30},
    "spec": {"containers": [{"name": "nginx"}]},
    "status": {"phase": "Running",
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                                      "state": {"running": {}}}]}
  })"),
            parse(R"(["web", "1/1", "Terminating", "0", "60m"])"));
}

TEST(PodPrinter, FinishedPodsBeingDeletedKeepTheirStatus) {
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p", "deletionTimestamp": "2025-01-15T12:00:00Z"},
                         "spec": {"containers": [{"name": "a"}]},
                         "status": {"phase": "Succeeded", "containerStatuses": [
                           {"name": "a", "state": {"terminated": {"exitCode": 0,
                                                                  "reason": "Completed"}}}]}})"),
            "Completed");
}

TEST(PodPrinter, NodeLost) {
  constexpr std::string_view kLost = R"({"metadata": {"name": "p"},
    "spec": {"containers": [{"name": "a"}]},
    "status": {"phase": "Running", "reason": "NodeLost",
               "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}})";
  EXPECT_EQ(status_of(kLost), "NodeLost");
  json::value deleted = parse(kLost);
  deleted.as_object()["metadata"].as_object()["deletionTimestamp"] = "2025-01-15T11:00:00Z";
  EXPECT_EQ(row_cells(testing::resource("", "Pod"), deleted, testing::now())[2], "Unknown");
}

TEST(PodPrinter, CompletedJobPod) {
  // NAME       READY   STATUS      RESTARTS   AGE
  // pi-8xk2v   0/1     Completed   0          60m
  EXPECT_EQ(short_row(R"({
    "metadata": {"name": "pi-8xk2v", "creationTimestamp": "2025-01-15T11:00:00Z"},
    "spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl:5.34.0"}]},
    "status": {"phase": "Succeeded",
               "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}],
               "containerStatuses": [{"name": "pi", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "finishedAt": "2025-01-15T11:00:12Z"}}}]}
  })"),
            parse(R"(["pi-8xk2v", "0/1", "Completed", "0", "60m"])"));
}

TEST(PodPrinter, FailedContainers) {
  auto pod = [](std::string_view terminated) {
    return "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"containers\": [{\"name\": \"a\"}]},"
           " \"status\": {\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"a\", "
           "\"state\": {\"terminated\": " +
           std::string(terminated) + "}}]}}";
  };
  EXPECT_EQ(status_of(pod(R"({"exitCode": 1, "reason": "Error"})")), "Error");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 137, "reason": "OOMKilled"})")), "OOMKilled");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 3})")), "ExitCode:3");
  EXPECT_EQ(status_of(pod(R"({"exitCode": 143, "signal": 15})")), "Signal:15");
}

TEST(PodPrinter, CompletedContainerBesideRunningOne) {
  constexpr std::string_view kPod = R"({"metadata": {"name": "p"},
    "spec": {"containers": [{"name": "job"}, {"name": "server"}]},
    "status": {"phase": "Running", "conditions": [CONDITIONS],
               "containerStatuses": [
                 {"name": "job", "ready": false,
                  "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                 {"name": "server", "ready": true, "state": {"running": {}}}]}})";
  auto with = [&](std::string_view conditions) {
    std::string s(kPod);
    s.replace(s.find("CONDITIONS"), 10, conditions);
    return s;
  };
  EXPECT_EQ(status_of(with(R"({"type": "Ready", "status": "True"})")), "Running");
  EXPECT_EQ(status_of(with(R"({"type": "Ready", "status": "False"})")), "NotReady");
  EXPECT_EQ(short_row(with("")).as_array()[1], "1/2");
}

TEST(PodPrinter, StatusReasonOverridesPhase) {
  EXPECT_EQ(status_of(R"({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
                         "status": {"phase": "Failed", "reason": "Evicted",
                                    "message": "The node was low on resource: memory."}})"),
            "Evicted");
}

TEST(PodPrinter, WideColumns) {
  EXPECT_EQ(pod_cells(R"({
    "metadata": {"name": "p", "creationTimestamp": "2025-01-15T11:59:00Z"},
    "spec": {"containers": [{"name": "a"}],
             "readinessGates": [{"conditionType": "example.com/lb-ready"},
                                {"conditionType": "example.com/warm"}]},
    "status": {"phase": "Pending", "nominatedNodeName": "node-2",
               "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}],
               "conditions": [{"type": "example.com/lb-ready", "status": "True"},
                              {"type": "example.com/warm", "status": "False"}]}
  })"),
            parse(R"(["p", "0/1", "Pending", "0", "60s", "fd00::5", "<none>", "node-2",
                      "1/2"])"));
}

TEST(PodPrinter, FinishedPodsGetACompletedRowCondition) {
  json::value succeeded = parse(
      R"({"metadata": {"name": "a"}, "spec": {"containers": []}, "status": {"phase": "Succeeded"}})");
  json::value failed = parse(
      R"({"metadata": {"name": "b"}, "spec": {"containers": []}, "status": {"phase": "Failed"}})");
  json::value running = parse(
      R"({"metadata": {"name": "c"}, "spec": {"containers": []}, "status": {"phase": "Running"}})");
  const json::value* list[] = {&succeeded, &failed, &running};
  json::value table = make_table(testing::resource("", "Pod"), list, "7", "", "", testing::now());
  const json::array& rows = table.at("rows").as_array();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].at("conditions"),
            parse(R"([{"type": "Completed", "status": "True", "reason": "Succeeded",
                       "message": "The pod has completed successfully."}])"));
  EXPECT_EQ(rows[1].at("conditions"),
            parse(R"([{"type": "Completed", "status": "True", "reason": "Failed",
                       "message": "The pod failed."}])"));
  EXPECT_FALSE(rows[2].as_object().contains("conditions"));
}

}  // namespace
}  // namespace podwarp::tables
