// Deployment, ReplicaSet, DaemonSet, StatefulSet, Job, CronJob and PodDisruptionBudget rows
// against what `kubectl get -o wide` prints. The clock reads 2025-01-15T12:00:00Z.
#include <gtest/gtest.h>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::cells;
using testing::parse;

TEST(WorkloadPrinters, Deployment) {
  // NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES       SELECTOR
  // web    2/3     3            2           5m    nginx        nginx:1.27   app=web
  EXPECT_EQ(cells("apps", "Deployment", R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:55:00Z", "generation": 2},
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
    "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}
  })"),
            parse(R"(["web", "2/3", 3, 2, "5m", "nginx", "nginx:1.27", "app=web"])"));
}

TEST(WorkloadPrinters, DeploymentWithoutStatusOrReplicas) {
  // Just created: replicas defaults to 1, the status is still empty.
  EXPECT_EQ(cells("apps", "Deployment", R"({
    "metadata": {"name": "api", "creationTimestamp": "2025-01-15T11:59:59Z"},
    "spec": {"selector": {"matchLabels": {"tier": "api", "app": "shop"},
                          "matchExpressions": [{"key": "env", "operator": "In",
                                                "values": ["prod", "canary"]}]},
             "template": {"spec": {"containers": [{"name": "api", "image": "shop/api:2"},
                                                  {"name": "log", "image": "fluent-bit:3"}]}}}
  })"),
            parse(R"(["api", "0/1", 0, 0, "1s", "api,log", "shop/api:2,fluent-bit:3",
                      "app=shop,env in (canary,prod),tier=api"])"));
}

TEST(WorkloadPrinters, DeploymentSelectorIsPlainSelectorString) {
  // Deployments print selector.String(): "" for an empty selector, "<invalid>" for a bad one.
  EXPECT_EQ(cells("apps", "Deployment", R"({"metadata": {"name": "d"}, "spec": {"selector": {}}})")
                .as_array()
                .back(),
            "");
  EXPECT_EQ(cells("apps", "Deployment",
                  R"({"metadata": {"name": "d"}, "spec": {"selector": {"matchExpressions": [
                       {"key": "a", "operator": "Like", "values": ["x"]}]}}})")
                .as_array()
                .back(),
            "<invalid>");
}

TEST(WorkloadPrinters, ReplicaSet) {
  EXPECT_EQ(cells("apps", "ReplicaSet", R"({
    "metadata": {"name": "web-7d4b9c8f5", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"replicas": 3,
             "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f5"}},
             "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
    "status": {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2,
               "availableReplicas": 2}
  })"),
            parse(R"(["web-7d4b9c8f5", 3, 3, 2, "5m", "nginx", "nginx:1.27",
                      "app=web,pod-template-hash=7d4b9c8f5"])"));
}

TEST(WorkloadPrinters, ReplicaSetScaledToZero) {
  EXPECT_EQ(cells("apps", "ReplicaSet", R"({
    "metadata": {"name": "old", "creationTimestamp": "2025-01-05T12:00:00Z"},
    "spec": {"replicas": 0, "template": {"spec": {"containers": []}}},
    "status": {"replicas": 0}
  })"),
            parse(R"(["old", 0, 0, 0, "10d", "", "", "<none>"])"));
}

TEST(WorkloadPrinters, DaemonSet) {
  EXPECT_EQ(cells("apps", "DaemonSet", R"({
    "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                 "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"selector": {"matchLabels": {"k8s-app": "kube-proxy"}},
             "template": {"spec": {
               "nodeSelector": {"kubernetes.io/os": "linux"},
               "containers": [{"name": "kube-proxy",
                               "image": "registry.k8s.io/kube-proxy:v1.32.0"}]}}},
    "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberAvailable": 2,
               "numberMisscheduled": 0, "numberReady": 2, "updatedNumberScheduled": 3}
  })"),
            parse(R"(["kube-proxy", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "2d", "kube-proxy",
                      "registry.k8s.io/kube-proxy:v1.32.0", "k8s-app=kube-proxy"])"));
}

TEST(WorkloadPrinters, DaemonSetWithoutNodeSelector) {
  EXPECT_EQ(cells("apps", "DaemonSet", R"({"metadata": {"name": "ds"},
                                          "spec": {"template": {"spec": {}}}})")
                .as_array()[6],
            "<none>");
}

TEST(WorkloadPrinters, StatefulSet) {
  // NAME   READY   AGE   CONTAINERS   IMAGES
  // db     1/3     5m    postgres     postgres:16
  EXPECT_EQ(cells("apps", "StatefulSet", R"({
    "metadata": {"name": "db", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"replicas": 3, "serviceName": "db",
             "selector": {"matchLabels": {"app": "db"}},
             "template": {"spec": {"containers": [{"name": "postgres",
                                                   "image": "postgres:16"}]}}},
    "status": {"replicas": 2, "readyReplicas": 1, "currentReplicas": 2}
  })"),
            parse(R"(["db", "1/3", "5m", "postgres", "postgres:16"])"));
}

TEST(WorkloadPrinters, CompletedJob) {
  // NAME   STATUS     COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES        SELECTOR
  // pi     Complete   1/1           12s        60m   pi           perl:5.34.0
  // batch.kubernetes.io/controller-uid=...
  EXPECT_EQ(cells("batch", "Job", R"({
    "metadata": {"name": "pi", "creationTimestamp": "2025-01-15T11:00:00Z"},
    "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 4,
             "selector": {"matchLabels": {
               "batch.kubernetes.io/controller-uid": "3a7f6f5e-5d2c-4c1e-9a57-1b8f2e0c9d11"}},
             "template": {"spec": {"restartPolicy": "Never",
                                   "containers": [{"name": "pi", "image": "perl:5.34.0"}]}}},
    "status": {"startTime": "2025-01-15T11:00:00Z", "completionTime": "2025-01-15T11:00:12Z",
               "succeeded": 1, "ready": 0,
               "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                              {"type": "Complete", "status": "True"}]}
  })"),
            parse(R"(["pi", "Complete", "1/1", "12s", "60m", "pi", "perl:5.34.0",
                      "batch.kubernetes.io/controller-uid=3a7f6f5e-5d2c-4c1e-9a57-1b8f2e0c9d11"])"));
}

TEST(WorkloadPrinters, RunningParallelJob) {
  EXPECT_EQ(cells("batch", "Job", R"({
    "metadata": {"name": "work", "creationTimestamp": "2025-01-15T11:57:50Z"},
    "spec": {"parallelism": 3, "template": {"spec": {"containers": [{"name": "w",
                                                                       "image": "worker"}]}}},
    "status": {"startTime": "2025-01-15T11:58:00Z", "active": 3}
  })"),
            parse(R"(["work", "Running", "0/1 of 3", "2m", "2m10s", "w", "worker", "<none>"])"));
}

TEST(WorkloadPrinters, JobStatuses) {
  auto status = [](std::string_view job) {
    return std::string(cells("batch", "Job", job).as_array()[1].as_string());
  };
  EXPECT_EQ(status(R"({"metadata": {"name": "j"}, "status": {"conditions": [
                      {"type": "FailureTarget", "status": "True"},
                      {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})"),
            "Failed");
  EXPECT_EQ(status(R"({"metadata": {"name": "j"}, "status": {"conditions": [
                      {"type": "FailureTarget", "status": "True"}]}})"),
            "FailureTarget");
  EXPECT_EQ(status(R"({"metadata": {"name": "j"}, "spec": {"suspend": true},
                      "status": {"conditions": [{"type": "Suspended", "status": "True"}]}})"),
            "Suspended");
  EXPECT_EQ(status(R"({"metadata": {"name": "j", "deletionTimestamp": "2025-01-15T12:00:00Z"},
                      "status": {"conditions": [{"type": "Suspended", "status": "True"}]}})"),
            "Terminating");
  // A resumed job keeps its Suspended condition, now False.
  EXPECT_EQ(status(R"({"metadata": {"name": "j"}, "status": {"conditions": [
                      {"type": "Suspended", "status": "False"}]}})"),
            "Running");
}

TEST(WorkloadPrinters, JobNotStartedHasNoDuration) {
  EXPECT_EQ(cells("batch", "Job", R"({"metadata": {"name": "j"},
                                     "spec": {"completions": 5, "parallelism": 2},
                                     "status": {"succeeded": 2}})")
                .as_array(),
            parse(R"(["j", "Running", "2/5", "", "<unknown>", "", "", "<none>"])").as_array());
}

TEST(WorkloadPrinters, CronJob) {
  // NAME    SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE
  // hello   */5 * * * *   <none>     False     1        3m              2d
  EXPECT_EQ(cells("batch", "CronJob", R"({
    "metadata": {"name": "hello", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"schedule": "*/5 * * * *", "suspend": false, "concurrencyPolicy": "Allow",
             "jobTemplate": {"spec": {"template": {"spec": {
               "containers": [{"name": "hello", "image": "busybox:1.28"}]}}}}},
    "status": {"active": [{"kind": "Job", "name": "hello-28950355"}],
               "lastScheduleTime": "2025-01-15T11:57:00Z"}
  })"),
            parse(R"(["hello", "*/5 * * * *", "<none>", "False", 1, "3m", "2d", "hello",
                      "busybox:1.28", "<none>"])"));
}

TEST(WorkloadPrinters, SuspendedCronJobWithTimeZoneNeverScheduled) {
  EXPECT_EQ(cells("batch", "CronJob", R"({
    "metadata": {"name": "nightly", "creationTimestamp": "2025-01-15T11:00:00Z"},
    "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin", "suspend": true,
             "jobTemplate": {"spec": {"selector": {"matchLabels": {"job": "nightly"}},
                                      "template": {"spec": {"containers": []}}}}}
  })"),
            parse(R"(["nightly", "0 3 * * *", "Europe/Berlin", "True", 0, "<none>", "60m", "", "",
                      "job=nightly"])"));
}

TEST(WorkloadPrinters, PodDisruptionBudget) {
  // NAME    MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE
  // web     2               N/A               1                     5m
  // zk      N/A             25%               0                     5m
  EXPECT_EQ(cells("policy", "PodDisruptionBudget", R"({
    "metadata": {"name": "web", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
    "status": {"currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": 1,
               "expectedPods": 3}
  })"),
            parse(R"(["web", "2", "N/A", 1, "5m"])"));
  EXPECT_EQ(cells("policy", "PodDisruptionBudget", R"({
    "metadata": {"name": "zk", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "spec": {"maxUnavailable": "25%"},
    "status": {"disruptionsAllowed": 0}
  })"),
            parse(R"(["zk", "N/A", "25%", 0, "5m"])"));
}

}  // namespace
}  // namespace podwarp::tables
