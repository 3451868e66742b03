// Namespace, Node, Event, Lease, ConfigMap, Secret and ServiceAccount rows against what
// `kubectl get -o wide` prints. The clock reads 2025-01-15T12:00:00Z.
#include <gtest/gtest.h>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::cells;
using testing::parse;

TEST(ClusterPrinters, Namespace) {
  EXPECT_EQ(cells("", "Namespace", R"({"metadata": {"name": "default",
                                      "creationTimestamp": "2025-01-13T12:00:00Z"},
                                      "spec": {"finalizers": ["kubernetes"]},
                                      "status": {"phase": "Active"}})"),
            parse(R"(["default", "Active", "2d"])"));
  EXPECT_EQ(cells("", "Namespace", R"({"metadata": {"name": "old",
                                      "creationTimestamp": "2025-01-15T11:59:00Z",
                                      "deletionTimestamp": "2025-01-15T11:59:30Z"},
                                      "status": {"phase": "Terminating"}})"),
            parse(R"(["old", "Terminating", "60s"])"));
}

TEST(ClusterPrinters, ControlPlaneNode) {
  // NAME   STATUS   ROLES           AGE   VERSION   INTERNAL-IP    EXTERNAL-IP   OS-IMAGE ...
  // cp-1   Ready    control-plane   2d    v1.32.0   192.168.49.2   <none>        Ubuntu 22.04.4 LTS
  // ...
  EXPECT_EQ(cells("", "Node", R"({
    "metadata": {"name": "cp-1", "creationTimestamp": "2025-01-13T12:00:00Z",
                 "labels": {"kubernetes.io/hostname": "cp-1", "kubernetes.io/os": "linux",
                            "node-role.kubernetes.io/control-plane": "",
                            "node.kubernetes.io/exclude-from-external-load-balancers": ""}},
    "spec": {"podCIDR": "10.244.0.0/24",
             "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
    "status": {
      "addresses": [{"type": "InternalIP", "address": "192.168.49.2"},
                    {"type": "Hostname", "address": "cp-1"}],
      "conditions": [{"type": "MemoryPressure", "status": "False"},
                     {"type": "DiskPressure", "status": "False"},
                     {"type": "PIDPressure", "status": "False"},
                     {"type": "Ready", "status": "True", "reason": "KubeletReady"}],
      "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Ubuntu 22.04.4 LTS",
                   "kernelVersion": "6.8.0-1015-gcp", "containerRuntimeVersion": "containerd://1.7.22",
                   "operatingSystem": "linux", "architecture": "amd64"}}
  })"),
            parse(R"(["cp-1", "Ready", "control-plane", "2d", "v1.32.0", "192.168.49.2", "<none>",
                      "Ubuntu 22.04.4 LTS", "6.8.0-1015-gcp", "containerd://1.7.22"])"));
}

TEST(ClusterPrinters, CordonedNotReadyWorker) {
  EXPECT_EQ(cells("", "Node", R"({
    "metadata": {"name": "worker-2", "creationTimestamp": "2025-01-15T09:00:00Z"},
    "spec": {"unschedulable": true},
    "status": {
      "addresses": [{"type": "ExternalIP", "address": "34.1.2.3"},
                    {"type": "InternalIP", "address": "10.128.0.7"},
                    {"type": "InternalIP", "address": "10.128.0.8"}],
      "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
      "nodeInfo": {"kubeletVersion": "v1.31.4"}}
  })"),
            parse(R"(["worker-2", "NotReady,SchedulingDisabled", "<none>", "3h", "v1.31.4",
                      "10.128.0.7", "34.1.2.3", "<unknown>", "<unknown>", "<unknown>"])"));
}

TEST(ClusterPrinters, NodeStatusAndRoles) {
  auto row = [](std::string_view node) { return cells("", "Node", node).as_array(); };
  // No Ready condition yet.
  EXPECT_EQ(row(R"({"metadata": {"name": "n"}})")[1], "Unknown");
  EXPECT_EQ(row(R"({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})")[1],
            "Unknown,SchedulingDisabled");
  EXPECT_EQ(row(R"({"metadata": {"name": "n"}, "status": {"conditions": [
                  {"type": "Ready", "status": "False"}]}})")[1],
            "NotReady");
  // Roles come from node-role.kubernetes.io/<role> keys and the kubernetes.io/role value,
  // sorted and deduplicated.
  EXPECT_EQ(row(R"({"metadata": {"name": "n", "labels": {
                  "node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/infra": "true",
                  "kubernetes.io/role": "worker", "node-role.kubernetes.io/": "x"}}})")[2],
            "infra,worker");
  EXPECT_EQ(row(R"({"metadata": {"name": "n", "labels": {"kubernetes.io/role": ""}}})")[2],
            "<none>");
}

TEST(ClusterPrinters, KubeletEvent) {
  // LAST SEEN   TYPE     REASON   OBJECT      SUBOBJECT                SOURCE           MESSAGE ...
  // 60s         Normal   Pulled   pod/web-x   spec.containers{nginx}   kubelet, node-1  Container
  // image ...
  EXPECT_EQ(cells("", "Event", R"({
    "metadata": {"name": "web-x.17a9d3c1b2e4f5a6", "namespace": "default",
                 "creationTimestamp": "2025-01-15T11:55:00Z"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-x",
                       "apiVersion": "v1", "fieldPath": "spec.containers{nginx}"},
    "reason": "Pulled",
    "message": "Container image \"nginx:1.27\" already present on machine",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": "2025-01-15T11:55:00Z", "lastTimestamp": "2025-01-15T11:59:00Z",
    "count": 3, "type": "Normal", "eventTime": null,
    "reportingComponent": "kubelet", "reportingInstance": "node-1"
  })"),
            parse(R"(["60s", "Normal", "Pulled", "pod/web-x", "spec.containers{nginx}",
                      "kubelet, node-1",
                      "Container image \"nginx:1.27\" already present on machine", "5m", 3,
                      "web-x.17a9d3c1b2e4f5a6"])"));
}

TEST(ClusterPrinters, SchedulerEventFromEventsAPI) {
  // events.k8s.io writers set eventTime and reportingController, not the legacy fields.
  EXPECT_EQ(cells("", "Event", R"({
    "metadata": {"name": "web-x.17a9d3c0", "creationTimestamp": "2025-01-15T11:59:30Z"},
    "involvedObject": {"kind": "Pod", "name": "web-x", "namespace": "default"},
    "reason": "Scheduled", "message": "Successfully assigned default/web-x to node-1",
    "source": {}, "firstTimestamp": null, "lastTimestamp": null, "type": "Normal",
    "eventTime": "2025-01-15T11:59:30.123456Z", "action": "Binding",
    "reportingComponent": "default-scheduler", "reportingInstance": "default-scheduler-cp-1"
  })"),
            parse(R"(["29s", "Normal", "Scheduled", "pod/web-x", "",
                      "default-scheduler, default-scheduler-cp-1",
                      "Successfully assigned default/web-x to node-1", "29s", 1,
                      "web-x.17a9d3c0"])"));
}

TEST(ClusterPrinters, EventSeries) {
  EXPECT_EQ(cells("", "Event", R"({
    "metadata": {"name": "crash.1"},
    "involvedObject": {"kind": "Pod", "name": "crash", "fieldPath": "spec.containers{app}"},
    "reason": "BackOff", "message": "Back-off restarting failed container app in pod crash\n",
    "type": "Warning", "eventTime": "2025-01-15T11:50:00.000000Z",
    "series": {"count": 12, "lastObservedTime": "2025-01-15T11:59:00.500000Z"},
    "reportingComponent": "kubelet", "reportingInstance": "node-1"
  })"),
            parse(R"(["59s", "Warning", "BackOff", "pod/crash", "spec.containers{app}",
                      "kubelet, node-1", "Back-off restarting failed container app in pod crash",
                      "10m", 12, "crash.1"])"));
}

TEST(ClusterPrinters, EventEdgeCases) {
  // Only firstTimestamp: Last Seen repeats it. No involved name: just the kind.
  EXPECT_EQ(cells("", "Event", R"({
    "metadata": {"name": "n.1"},
    "involvedObject": {"kind": "Node"},
    "reason": "RegisteredNode", "message": "  Node n event: Registered Node n in Controller  ",
    "source": {"component": "node-controller"}, "firstTimestamp": "2025-01-13T12:00:00Z",
    "type": "Normal"
  })"),
            parse(R"(["2d", "Normal", "RegisteredNode", "node", "", "node-controller",
                      "Node n event: Registered Node n in Controller", "2d", 1, "n.1"])"));
  // No timestamps at all.
  EXPECT_EQ(cells("", "Event", R"({"metadata": {"name": "e"}})"),
            parse(R"(["<unknown>", "", "", "", "", "", "", "<unknown>", 1, "e"])"));
}

TEST(ClusterPrinters, Lease) {
  EXPECT_EQ(cells("coordination.k8s.io", "Lease", R"({
    "metadata": {"name": "kube-scheduler", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "spec": {"holderIdentity": "cp-1_8e2b5f1c-7d3a-4b8e-9f0a-2c1d3e4f5a6b",
             "leaseDurationSeconds": 15, "renewTime": "2025-01-15T11:59:58.000000Z"}
  })"),
            parse(R"(["kube-scheduler", "cp-1_8e2b5f1c-7d3a-4b8e-9f0a-2c1d3e4f5a6b", "2d"])"));
  EXPECT_EQ(cells("coordination.k8s.io", "Lease", R"({"metadata": {"name": "l"}, "spec": {}})"),
            parse(R"(["l", "", "<unknown>"])"));
}

TEST(ClusterPrinters, PriorityClass) {
  EXPECT_EQ(cells("scheduling.k8s.io", "PriorityClass", R"({
    "metadata": {"name": "system-node-critical", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority",
    "description": "Used for system critical pods that must not be moved from their current node."
  })"),
            parse(R"(["system-node-critical", 2000001000, false, "2d", "PreemptLowerPriority"])"));
  EXPECT_EQ(cells("scheduling.k8s.io", "PriorityClass",
                  R"({"metadata": {"name": "batch"}, "value": -5, "globalDefault": true})"),
            parse(R"(["batch", -5, true, "<unknown>", ""])"));
}

TEST(ClusterPrinters, ComponentStatus) {
  EXPECT_EQ(cells("", "ComponentStatus", R"({"metadata": {"name": "etcd-0"},
    "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]})"),
            parse(R"(["etcd-0", "Healthy", "ok", ""])"));
  EXPECT_EQ(cells("", "ComponentStatus", R"({"metadata": {"name": "scheduler"},
    "conditions": [{"type": "Healthy", "status": "False", "error": "refused"}]})"),
            parse(R"(["scheduler", "Unhealthy", "", "refused"])"));
  EXPECT_EQ(cells("", "ComponentStatus", R"({"metadata": {"name": "x"}})"),
            parse(R"(["x", "Unknown", "", ""])"));
}

TEST(ConfigPrinters, ConfigMap) {
  EXPECT_EQ(cells("", "ConfigMap", R"({
    "metadata": {"name": "kube-root-ca.crt", "creationTimestamp": "2025-01-13T12:00:00Z"},
    "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n..."}})"),
            parse(R"(["kube-root-ca.crt", 1, "2d"])"));
  // binaryData keys count too.
  EXPECT_EQ(cells("", "ConfigMap", R"({"metadata": {"name": "c"},
                                      "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AAE="}})"),
            parse(R"(["c", 3, "<unknown>"])"));
  EXPECT_EQ(cells("", "ConfigMap", R"({"metadata": {"name": "empty"}})"),
            parse(R"(["empty", 0, "<unknown>"])"));
}

TEST(ConfigPrinters, Secret) {
  EXPECT_EQ(cells("", "Secret", R"({
    "metadata": {"name": "web-tls", "creationTimestamp": "2025-01-15T11:55:00Z"},
    "type": "kubernetes.io/tls", "data": {"tls.crt": "LS0t", "tls.key": "LS0t"}})"),
            parse(R"(["web-tls", "kubernetes.io/tls", 2, "5m"])"));
  EXPECT_EQ(cells("", "Secret", R"({"metadata": {"name": "s"}, "data": {"password": "cA=="}})"),
            parse(R"(["s", "Opaque", 1, "<unknown>"])"));
}

TEST(ConfigPrinters, ServiceAccount) {
  EXPECT_EQ(cells("", "ServiceAccount", R"({
    "metadata": {"name": "default", "creationTimestamp": "2025-01-13T12:00:00Z"}})"),
            parse(R"(["default", 0, "2d"])"));
  EXPECT_EQ(cells("", "ServiceAccount", R"({"metadata": {"name": "ci",
                                           "creationTimestamp": "2025-01-15T11:00:00Z"},
                                           "secrets": [{"name": "ci-token"}]})"),
            parse(R"(["ci", 1, "60m"])"));
}

}  // namespace
}  // namespace podwarp::tables
