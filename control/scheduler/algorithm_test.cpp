#include "scheduler/algorithm.h"

#include <gtest/gtest.h>

#include <map>

#include "scheduler/test_util.h"

namespace podwarp::scheduler {
namespace {

using testing::node_json;
using testing::parse;
using testing::pod_json;

class AlgorithmTest : public ::testing::Test {
 protected:
  void add_node(const json::value& n) { snap_.upsert_node(compile_node(n, snap_.interner())); }
  PodPtr pod(const json::value& p) { return compile_pod(p, snap_.interner()); }
  void place(const json::value& p, const std::string& node) { snap_.add_pod(pod(p), node); }
  ScheduleResult schedule(const json::value& p) { return algo_.schedule(*pod(p)); }
  // The full FailedScheduling message: FitError plus the preemption part.
  std::string failure(const json::value& p) {
    PodPtr pp = pod(p);
    ScheduleResult r = algo_.schedule(*pp);
    EXPECT_FALSE(r.scheduled);
    PreemptionResult pr = algo_.preempt(*pp, r);
    return pr.message.empty() ? r.message : r.message + " " + pr.message;
  }
  std::map<std::string, std::int64_t> scores(const json::value& p) {
    std::map<std::string, std::int64_t> m;
    for (auto& [n, s] : algo_.score_nodes(*pod(p))) m[n] = s;
    return m;
  }

  Snapshot snap_;
  Algorithm algo_{snap_};
};

// --- the failure message ---

TEST_F(AlgorithmTest, FitErrorCountsReasonsSortedAsStrings) {
  for (int i = 0; i < 3; ++i) add_node(node_json("small-" + std::to_string(i), "1"));
  for (int i = 0; i < 2; ++i) {
    add_node(node_json("gpu-" + std::to_string(i), "8", "32Gi", "110", "{}",
                       R"({"taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}]})"));
  }
  EXPECT_EQ(failure(pod_json("big", "2")),
            "0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 3 "
            "Insufficient cpu. preemption: 0/5 nodes are available: 2 Preemption is not helpful "
            "for scheduling, 3 No preemption victims found for incoming pod.");
}

TEST_F(AlgorithmTest, NoNodes) {
  EXPECT_EQ(schedule(pod_json("p")).message, "no nodes available to schedule pods");
}

TEST_F(AlgorithmTest, SeveralResourceReasonsOnOneNode) {
  add_node(node_json("n1", "1", "1Gi", "1"));
  place(pod_json("existing", "0", "0"), "n1");
  EXPECT_EQ(failure(pod_json("p", "2", "2Gi")),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 Too many "
            "pods. preemption: 0/1 nodes are available: 1 No preemption victims found for "
            "incoming pod.");
}

TEST_F(AlgorithmTest, PreemptionPolicyNever) {
  add_node(node_json("n1", "1"));
  EXPECT_EQ(failure(pod_json("p", "2", "1Mi", R"({"preemptionPolicy":"Never"})")),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never.");
}

// --- filters ---

TEST_F(AlgorithmTest, ResourcesUseMaxOfInitContainersPlusOverhead) {
  add_node(node_json("n1", "1", "1Gi"));
  json::value p =
      pod_json("p", "200m", "100Mi",
               R"({"initContainers":[{"name":"i","resources":{"requests":{"cpu":"1000m"}}}],
                               "overhead":{"cpu":"50m"}})");
  PodPtr info = pod(p);
  EXPECT_EQ(info->requests.milli_cpu, 1050);
  EXPECT_EQ(info->requests.memory, 100 * 1024 * 1024);
  EXPECT_EQ(schedule(p).message, "0/1 nodes are available: 1 Insufficient cpu.");
  json::value q =
      pod_json("q", "200m", "100Mi",
               R"({"initContainers":[{"name":"i","resources":{"requests":{"cpu":"700m"}}}],
                               "overhead":{"cpu":"50m"}})");
  EXPECT_TRUE(schedule(q).scheduled);
}

TEST_F(AlgorithmTest, SidecarInitContainersAddUp) {
  json::value p = pod_json(
      "p", "200m", "0",
      R"({"initContainers":[{"name":"s","restartPolicy":"Always","resources":{"requests":{"cpu":"300m"}}},
                                                  {"name":"i","resources":{"requests":{"cpu":"400m"}}}]})");
  // containers 200 + sidecar 300 = 500; init phase: sidecar 300 + init 400 = 700.
  EXPECT_EQ(pod(p)->requests.milli_cpu, 700);
}

TEST_F(AlgorithmTest, ExtendedResourcesAndEphemeralStorage) {
  json::value n = node_json("n1");
  n.as_object()["status"].as_object()["allocatable"].as_object()["example.com/gpu"] = "1";
  n.as_object()["status"].as_object()["allocatable"].as_object()["ephemeral-storage"] = "10Gi";
  add_node(n);
  json::value p = pod_json("p");
  auto& req = p.as_object()["spec"]
                  .as_object()["containers"]
                  .as_array()[0]
                  .as_object()["resources"]
                  .as_object()["requests"]
                  .as_object();
  req["example.com/gpu"] = "2";
  req["ephemeral-storage"] = "20Gi";
  EXPECT_EQ(schedule(p).message,
            "0/1 nodes are available: 1 Insufficient ephemeral-storage, 1 Insufficient "
            "example.com/gpu.");
  req["example.com/gpu"] = "1";
  req["ephemeral-storage"] = "1Gi";
  EXPECT_TRUE(schedule(p).scheduled);
}

TEST_F(AlgorithmTest, NodeUnschedulable) {
  add_node(node_json("n1", "4", "32Gi", "110", "{}", R"({"unschedulable":true})"));
  EXPECT_EQ(schedule(pod_json("p")).message,
            "0/1 nodes are available: 1 node(s) were unschedulable.");
  EXPECT_TRUE(
      schedule(
          pod_json(
              "p", "100m", "1Mi",
              R"({"tolerations":[{"key":"node.kubernetes.io/unschedulable","operator":"Exists","effect":"NoSchedule"}]})"))
          .scheduled);
}

TEST_F(AlgorithmTest, NodeName) {
  add_node(node_json("n1"));
  add_node(node_json("n2"));
  json::value p = pod_json("p", "100m", "1Mi", R"({"nodeName":"n2"})");
  auto st = algo_.filter_node(*pod(p), "n1");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(algo_.reason_text(*st, st->items[0]), "node(s) didn't match the requested node name");
  EXPECT_FALSE(algo_.filter_node(*pod(p), "n2").has_value());
}

TEST_F(AlgorithmTest, TaintsAndTolerations) {
  add_node(node_json(
      "n1", "4", "32Gi", "110", "{}",
      R"({"taints":[{"key":"a","value":"1","effect":"NoExecute"},{"key":"b","effect":"PreferNoSchedule"}]})"));
  EXPECT_EQ(schedule(pod_json("p")).message,
            "0/1 nodes are available: 1 node(s) had untolerated taint {a: 1}.");
  EXPECT_FALSE(schedule(pod_json("p", "1m", "1Mi",
                                 R"({"tolerations":[{"key":"a","operator":"Equal","value":"2"}]})"))
                   .scheduled);
  EXPECT_FALSE(
      schedule(pod_json("p", "1m", "1Mi",
                        R"({"tolerations":[{"key":"a","value":"1","effect":"NoSchedule"}]})"))
          .scheduled);
  EXPECT_TRUE(
      schedule(pod_json("p", "1m", "1Mi",
                        R"({"tolerations":[{"key":"a","value":"1","effect":"NoExecute"}]})"))
          .scheduled);
  EXPECT_TRUE(
      schedule(pod_json("p", "1m", "1Mi", R"({"tolerations":[{"operator":"Exists"}]})")).scheduled);
}

TEST_F(AlgorithmTest, NodeSelectorAndRequiredNodeAffinity) {
  add_node(node_json("n1", "4", "32Gi", "110", R"({"disk":"ssd","gen":"5"})"));
  add_node(node_json("n2", "4", "32Gi", "110", R"({"disk":"hdd","gen":"3"})"));
  add_node(node_json("n3", "4", "32Gi", "110", R"({"gen":"x"})"));
  auto where = [&](const std::string& extra) {
    std::vector<std::string> out;
    json::value p = pod_json("p", "1m", "1Mi", extra);
    for (const char* n : {"n1", "n2", "n3"}) {
      if (!algo_.filter_node(*pod(p), n)) out.push_back(n);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(where(R"({"nodeSelector":{"disk":"ssd"}})"), V{"n1"});
  auto affinity = [](const std::string& terms) {
    return R"({"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":)" +
           terms + "}}}}";
  };
  EXPECT_EQ(
      where(affinity(
          R"([{"matchExpressions":[{"key":"disk","operator":"In","values":["ssd","hdd"]}]}])")),
      (V{"n1", "n2"}));
  EXPECT_EQ(where(affinity(
                R"([{"matchExpressions":[{"key":"disk","operator":"NotIn","values":["ssd"]}]}])")),
            (V{"n2", "n3"}));
  EXPECT_EQ(where(affinity(R"([{"matchExpressions":[{"key":"disk","operator":"Exists"}]}])")),
            (V{"n1", "n2"}));
  EXPECT_EQ(where(affinity(R"([{"matchExpressions":[{"key":"disk","operator":"DoesNotExist"}]}])")),
            (V{"n3"}));
  EXPECT_EQ(
      where(affinity(R"([{"matchExpressions":[{"key":"gen","operator":"Gt","values":["4"]}]}])")),
      (V{"n1"}));
  EXPECT_EQ(
      where(affinity(R"([{"matchExpressions":[{"key":"gen","operator":"Lt","values":["4"]}]}])")),
      (V{"n2"}));
  EXPECT_EQ(where(affinity(
                R"([{"matchFields":[{"key":"metadata.name","operator":"In","values":["n3"]}]}])")),
            (V{"n3"}));
  // Terms are ORed; an empty term matches nothing.
  EXPECT_EQ(
      where(affinity(
          R"([{},{"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]}])")),
      (V{"n2"}));
  // nodeSelector AND affinity.
  EXPECT_EQ(
      where(
          R"({"nodeSelector":{"disk":"ssd"},"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"gen","operator":"Lt","values":["4"]}]}]}}}})"),
      V{});
  EXPECT_EQ(schedule(pod_json("p", "1m", "1Mi", R"({"nodeSelector":{"disk":"nvme"}})")).message,
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.");
}

TEST_F(AlgorithmTest, HostPorts) {
  add_node(node_json("n1"));
  add_node(node_json("n2"));
  auto with_port = [](const std::string& name, const std::string& port) {
    json::value p = pod_json(name);
    p.as_object()["spec"].as_object()["containers"].as_array()[0].as_object()["ports"] =
        parse("[" + port + "]");
    return p;
  };
  place(with_port("a", R"({"containerPort":80,"hostPort":8081})"), "n1");
  place(with_port("b", R"({"containerPort":80,"hostPort":8082,"hostIP":"10.0.0.1"})"), "n2");
  EXPECT_TRUE(
      algo_.filter_node(*pod(with_port("c", R"({"containerPort":80,"hostPort":8081})")), "n1"));
  EXPECT_FALSE(algo_.filter_node(
      *pod(with_port("c", R"({"containerPort":80,"hostPort":8081,"protocol":"UDP"})")), "n1"));
  EXPECT_TRUE(
      algo_.filter_node(*pod(with_port("c", R"({"containerPort":80,"hostPort":8082})")), "n2"));
  EXPECT_FALSE(algo_.filter_node(
      *pod(with_port("c", R"({"containerPort":80,"hostPort":8082,"hostIP":"10.0.0.2"})")), "n2"));
  add_node(node_json("n3", "4", "32Gi", "110", "{}", R"({"unschedulable":true})"));
  EXPECT_EQ(schedule(with_port("d", R"({"containerPort":1,"hostPort":8081})")).scheduled, true);
  place(with_port("e", R"({"containerPort":1,"hostPort":8081})"), "n2");
  EXPECT_EQ(schedule(with_port("f", R"({"containerPort":1,"hostPort":8081})")).message,
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't have free "
            "ports for the requested pod ports.");
}

TEST_F(AlgorithmTest, RequiredPodAntiAffinityBothDirections) {
  for (const char* n : {"n1", "n2", "n3"})
    add_node(node_json(n, "4", "32Gi", "110", R"({"zone":"z1"})"));
  const std::string anti =
      R"({"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"}]}}})";
  place(pod_json("w1", "1m", "1Mi", "{}", R"({"app":"web"})"), "n1");
  // The incoming pod's anti-affinity.
  EXPECT_TRUE(algo_.filter_node(*pod(pod_json("w2", "1m", "1Mi", anti, R"({"app":"web"})")), "n1"));
  EXPECT_FALSE(
      algo_.filter_node(*pod(pod_json("w2", "1m", "1Mi", anti, R"({"app":"web"})")), "n2"));
  // Another namespace is not selected by default.
  place(pod_json("w9", "1m", "1Mi", "{}", R"({"app":"web"})", "other"), "n2");
  EXPECT_FALSE(
      algo_.filter_node(*pod(pod_json("w2", "1m", "1Mi", anti, R"({"app":"web"})")), "n2"));
  // Existing pods' anti-affinity against the incoming pod.
  place(pod_json("guard", "1m", "1Mi", anti, R"({"app":"guard"})"), "n3");
  auto st = algo_.filter_node(*pod(pod_json("w3", "1m", "1Mi", "{}", R"({"app":"web"})")), "n3");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(algo_.reason_text(*st, st->items[0]),
            "node(s) didn't satisfy existing pods anti-affinity rules");
  EXPECT_FALSE(algo_.filter_node(*pod(pod_json("x", "1m", "1Mi", "{}", R"({"app":"db"})")), "n3"));
  // Zone-wide anti-affinity blocks every node of the zone.
  const std::string zone_anti =
      R"({"affinity":{"podAntiAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"zone"}]}}})";
  EXPECT_EQ(failure(pod_json("w4", "1m", "1Mi", zone_anti, R"({"app":"web"})")),
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: "
            "0/3 nodes are available: 3 No preemption victims found for incoming pod.");
}

TEST_F(AlgorithmTest, RequiredPodAffinity) {
  add_node(node_json("n1", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("n2", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("n3", "4", "32Gi", "110", R"({"zone":"b"})"));
  add_node(node_json("n4", "4", "32Gi", "110", "{}"));
  const std::string aff =
      R"({"affinity":{"podAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"cache"}},"topologyKey":"zone"}]}}})";
  // No matching pod anywhere and the pod does not match itself: nowhere.
  EXPECT_EQ(schedule(pod_json("p", "1m", "1Mi", aff, R"({"app":"web"})")).message,
            "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.");
  // The first pod of a group that selects itself may go anywhere with the key.
  auto first = schedule(pod_json("c1", "1m", "1Mi", aff, R"({"app":"cache"})"));
  ASSERT_TRUE(first.scheduled);
  EXPECT_NE(first.node_name, "n4");
  place(pod_json("c0", "1m", "1Mi", "{}", R"({"app":"cache"})"), "n3");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(schedule(pod_json("p", "1m", "1Mi", aff, R"({"app":"web"})")).node_name, "n3");
  // namespaceSelector {} selects every namespace.
  const std::string any_ns =
      R"({"affinity":{"podAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"db"}},"namespaceSelector":{},"topologyKey":"zone"}]}}})";
  place(pod_json("db", "1m", "1Mi", "{}", R"({"app":"db"})", "data"), "n1");
  auto r = schedule(pod_json("p", "1m", "1Mi", any_ns, R"({"app":"web"})"));
  ASSERT_TRUE(r.scheduled);
  EXPECT_TRUE(r.node_name == "n1" || r.node_name == "n2");
  // A namespaceSelector with labels uses the namespace's labels.
  const std::string labeled_ns =
      R"({"affinity":{"podAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"db"}},"namespaceSelector":{"matchLabels":{"team":"x"}},"topologyKey":"zone"}]}}})";
  EXPECT_FALSE(schedule(pod_json("p", "1m", "1Mi", labeled_ns, R"({"app":"web"})")).scheduled);
  json::value nsl = parse(R"({"team":"x"})");
  snap_.set_namespace_labels("data", compile_labels(&nsl, snap_.interner()));
  EXPECT_TRUE(schedule(pod_json("p", "1m", "1Mi", labeled_ns, R"({"app":"web"})")).scheduled);
}

TEST_F(AlgorithmTest, TopologySpreadDoNotSchedule) {
  add_node(node_json("a1", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("a2", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("b1", "4", "32Gi", "110", R"({"zone":"b"})"));
  add_node(node_json("x", "4", "32Gi", "110", "{}"));
  const std::string spread =
      R"({"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"web"}}}]})";
  place(pod_json("w1", "1m", "1Mi", "{}", R"({"app":"web"})"), "a1");
  // a: 1, b: 0 -> only zone b.
  auto r = schedule(pod_json("w2", "1m", "1Mi", spread, R"({"app":"web"})"));
  ASSERT_TRUE(r.scheduled);
  EXPECT_EQ(r.node_name, "b1");
  place(pod_json("w2", "1m", "1Mi", "{}", R"({"app":"web"})"), "b1");
  place(pod_json("w3", "1m", "1Mi", "{}", R"({"app":"web"})"), "b1");
  // a: 1, b: 2 -> only zone a; the unlabeled node lacks the key.
  std::map<std::string, bool> fits;
  for (const char* n : {"a1", "a2", "b1", "x"})
    fits[n] = !algo_.filter_node(*pod(pod_json("w4", "1m", "1Mi", spread, R"({"app":"web"})")), n);
  EXPECT_TRUE(fits["a1"]);
  EXPECT_TRUE(fits["a2"]);
  EXPECT_FALSE(fits["b1"]);
  EXPECT_FALSE(fits["x"]);
  // Fill zone a so that both are equal, then make zone b unschedulable: the message.
  place(pod_json("w5", "1m", "1Mi", "{}", R"({"app":"web"})"), "a2");
  add_node(node_json("b1", "4", "32Gi", "110", R"({"zone":"b"})", R"({"unschedulable":true})"));
  place(pod_json("w6", "1m", "1Mi", "{}", R"({"app":"web"})"), "a2");
  // a: 3, b: 2 (b1 unschedulable): a nodes exceed the skew.
  EXPECT_EQ(schedule(pod_json("w7", "1m", "1Mi", spread, R"({"app":"web"})")).message,
            "0/4 nodes are available: 1 node(s) didn't match pod topology spread constraints "
            "(missing required label), 1 node(s) were unschedulable, 2 node(s) didn't match pod "
            "topology spread constraints.");
}

TEST_F(AlgorithmTest, TopologySpreadMinDomains) {
  add_node(node_json("a1", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("b1", "4", "32Gi", "110", R"({"zone":"b"})"));
  place(pod_json("w1", "1m", "1Mi", "{}", R"({"app":"web"})"), "a1");
  place(pod_json("w2", "1m", "1Mi", "{}", R"({"app":"web"})"), "b1");
  const std::string spread =
      R"({"topologySpreadConstraints":[{"maxSkew":1,"minDomains":3,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"web"}}}]})";
  // Fewer domains than minDomains: the global minimum is 0, so 1+1-0 > 1 everywhere.
  EXPECT_FALSE(schedule(pod_json("w3", "1m", "1Mi", spread, R"({"app":"web"})")).scheduled);
  const std::string spread2 =
      R"({"topologySpreadConstraints":[{"maxSkew":1,"minDomains":2,"topologyKey":"zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app":"web"}}}]})";
  EXPECT_TRUE(schedule(pod_json("w3", "1m", "1Mi", spread2, R"({"app":"web"})")).scheduled);
}

// --- scores ---

TEST_F(AlgorithmTest, LeastAllocatedAndBalancedPreferTheEmptierNode) {
  add_node(node_json("busy", "4", "8Gi"));
  add_node(node_json("idle", "4", "8Gi"));
  place(pod_json("x", "2", "4Gi"), "busy");
  auto s = scores(pod_json("p", "1", "1Gi"));
  // idle: cpu (4000-1000)*100/4000=75, mem (8-1)/8*100=87 -> 81; balanced: |0.25-0.125|/2 -> 93.
  // busy: cpu 25, mem 37 -> 31; balanced |0.75-0.625|/2 -> 93. Taint score 100*3 each.
  EXPECT_EQ(s["idle"], 300 + 81 + 93);
  EXPECT_EQ(s["busy"], 300 + 31 + 93);
  EXPECT_EQ(schedule(pod_json("p", "1", "1Gi")).node_name, "idle");
}

TEST_F(AlgorithmTest, PreferredNodeAffinityAndPreferNoScheduleTaints) {
  add_node(node_json("ssd", "4", "32Gi", "110", R"({"disk":"ssd"})"));
  add_node(node_json("hdd", "4", "32Gi", "110", R"({"disk":"hdd"})"));
  add_node(node_json("tainted", "4", "32Gi", "110", R"({"disk":"ssd"})",
                     R"({"taints":[{"key":"k","effect":"PreferNoSchedule"}]})"));
  const std::string pref =
      R"({"affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":10,"preference":{"matchExpressions":[{"key":"disk","operator":"In","values":["ssd"]}]}}]}}})";
  auto s = scores(pod_json("p", "1m", "1Mi", pref));
  EXPECT_EQ(s["ssd"] - s["hdd"], 200);      // NodeAffinity 100 x2
  EXPECT_EQ(s["ssd"] - s["tainted"], 300);  // TaintToleration 100 x3
  EXPECT_EQ(schedule(pod_json("p", "1m", "1Mi", pref)).node_name, "ssd");
}

TEST_F(AlgorithmTest, PreferredInterPodAffinity) {
  add_node(node_json("n1"));
  add_node(node_json("n2"));
  add_node(node_json("n3"));
  place(pod_json("cache", "1m", "1Mi", "{}", R"({"app":"cache"})"), "n2");
  place(pod_json("noisy", "1m", "1Mi", "{}", R"({"app":"noisy"})"), "n3");
  const std::string pref =
      R"({"affinity":{"podAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":50,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"cache"}},"topologyKey":"kubernetes.io/hostname"}}]},
          "podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":50,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"noisy"}},"topologyKey":"kubernetes.io/hostname"}}]}}})";
  auto s = scores(pod_json("p", "1m", "1Mi", pref));
  // raw: n1 0, n2 +50, n3 -50 -> normalized 50, 100, 0 (x2).
  EXPECT_EQ(s["n2"] - s["n1"], 100);
  EXPECT_EQ(s["n1"] - s["n3"], 100);
  // Existing pods' preferred anti-affinity repels the incoming pod.
  Snapshot snap2;
  Algorithm algo2(snap2);
  snap2.upsert_node(compile_node(node_json("m1"), snap2.interner()));
  snap2.upsert_node(compile_node(node_json("m2"), snap2.interner()));
  const std::string repel =
      R"({"affinity":{"podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"kubernetes.io/hostname"}}]}}})";
  snap2.add_pod(compile_pod(pod_json("loner", "1m", "1Mi", repel), snap2.interner()), "m1");
  std::map<std::string, std::int64_t> s2;
  for (auto& [n, v] : algo2.score_nodes(
           *compile_pod(pod_json("w", "1m", "1Mi", "{}", R"({"app":"web"})"), snap2.interner())))
    s2[n] = v;
  EXPECT_EQ(s2["m2"] - s2["m1"], 200);
}

TEST_F(AlgorithmTest, TopologySpreadScheduleAnywayScore) {
  add_node(node_json("a1", "4", "32Gi", "110", R"({"zone":"a"})"));
  add_node(node_json("b1", "4", "32Gi", "110", R"({"zone":"b"})"));
  place(pod_json("w1", "1m", "1Mi", "{}", R"({"app":"web"})"), "a1");
  place(pod_json("w2", "1m", "1Mi", "{}", R"({"app":"web"})"), "a1");
  const std::string spread =
      R"({"topologySpreadConstraints":[{"maxSkew":1,"topologyKey":"zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app":"web"}}}]})";
  auto s = scores(pod_json("w3", "1m", "1Mi", spread, R"({"app":"web"})"));
  // raw: a = round(2*ln(4)) = 3, b = 0 -> normalized a: 100*(3+0-3)/3 = 0, b: 100 (x2).
  EXPECT_EQ(s["b1"] - s["a1"], 200);
}

// --- node sampling ---

TEST_F(AlgorithmTest, NumFeasibleNodesToFind) {
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(50), 50u);
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(100), 100u);
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(1000), 420u);
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(5000), 500u);
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(6000), 300u);
  EXPECT_EQ(algo_.num_feasible_nodes_to_find(20000), 1000u);
}

TEST_F(AlgorithmTest, SearchStartRotates) {
  for (int i = 0; i < 1000; ++i) add_node(node_json("n" + std::to_string(i)));
  auto r1 = schedule(pod_json("p"));
  EXPECT_EQ(r1.evaluated, 420u);
  EXPECT_EQ(r1.feasible, 420u);
  // The second search starts where the first stopped: the two sets do not overlap, so the
  // chosen nodes come from different ranges.
  auto r2 = schedule(pod_json("q"));
  int i1 = std::stoi(r1.node_name.substr(1)), i2 = std::stoi(r2.node_name.substr(1));
  EXPECT_LT(i1, 420);
  EXPECT_GE(i2, 420);
  EXPECT_LT(i2, 840);
}

// --- preemption ---

TEST_F(AlgorithmTest, PreemptsFewestLowestPriorityVictims) {
  add_node(node_json("n1", "2"));
  add_node(node_json("n2", "2"));
  // n1: two 1-cpu pods of priority 10. n2: one 2-cpu pod of priority 5.
  place(pod_json("a", "1", "1Mi", R"({"priority":10})"), "n1");
  place(pod_json("b", "1", "1Mi", R"({"priority":10})"), "n1");
  place(pod_json("c", "2", "1Mi", R"({"priority":5})"), "n2");
  PodPtr p = pod(pod_json("hi", "1", "1Mi", R"({"priority":100})"));
  auto r = algo_.schedule(*p);
  ASSERT_FALSE(r.scheduled);
  auto pr = algo_.preempt(*p, r);
  ASSERT_TRUE(pr.nominated);
  EXPECT_EQ(pr.node_name, "n2");  // the lowest highest-priority victim
  ASSERT_EQ(pr.victims.size(), 1u);
  EXPECT_EQ(pr.victims[0]->name, "c");
  // The snapshot is unchanged.
  EXPECT_EQ(snap_.find_node("n2")->pods.size(), 1u);
  EXPECT_EQ(snap_.find_node("n1")->requested.milli_cpu, 2000);

  // Equal priorities: fewest victims (one of two 1-cpu pods on n1 is reprieved).
  snap_.remove_pod("uid-default-c");
  place(pod_json("c", "2", "1Mi", R"({"priority":10})"), "n2");
  PodPtr p2 = pod(pod_json("hi2", "1", "1Mi", R"({"priority":100})"));
  auto r2 = algo_.schedule(*p2);
  ASSERT_FALSE(r2.scheduled);
  auto pr2 = algo_.preempt(*p2, r2);
  ASSERT_TRUE(pr2.nominated);
  EXPECT_EQ(pr2.victims.size(), 1u);
}

TEST_F(AlgorithmTest, NoSecondPreemptionWhileVictimsTerminate) {
  add_node(node_json("n1", "1"));
  json::value victim = pod_json("v", "1", "1Mi", R"({"priority":1})");
  victim.as_object()["metadata"].as_object()["deletionTimestamp"] = "2026-11-22T00:00:00Z";
  place(victim, "n1");
  json::value p = pod_json("p", "1", "1Mi", R"({"priority":10})");
  p.as_object()["status"] = parse(R"({"nominatedNodeName":"n1"})");
  EXPECT_EQ(failure(p),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to a "
            "terminating pod on the nominated node.");
}

TEST_F(AlgorithmTest, PreemptionNotPossible) {
  add_node(node_json("n1", "2"));
  add_node(node_json("n2", "2", "32Gi", "110", R"({"x":"y"})"));
  place(pod_json("a", "2", "1Mi", R"({"priority":200})"), "n1");
  place(pod_json("b", "1", "1Mi", R"({"priority":1})"), "n2");
  // n2: evicting b is not enough (3 cpu needed): the filter's reason is reported.
  EXPECT_EQ(failure(pod_json("p", "3", "1Mi", R"({"priority":100})")),
            "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
            "1 Insufficient cpu, 1 No preemption victims found for incoming pod.");
}

// --- VolumeBinding ---

json::value claim_json(const std::string& name, const std::string& volume,
                       const std::string& storage_class = "local-path") {
  return parse(R"({"metadata":{"name":")" + name +
               R"(","namespace":"default"},"spec":{"volumeName":")" + volume +
               R"(","storageClassName":")" + storage_class + R"("}})");
}

json::value local_pv_json(const std::string& name, const std::string& node) {
  return parse(
      R"({"metadata":{"name":")" + name +
      R"("},"spec":{"hostPath":{"path":"/var/lib/x"},"nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":[")" +
      node + R"("]}]}]}}}})");
}

json::value class_json(const std::string& name, const std::string& mode) {
  return parse(R"({"metadata":{"name":")" + name + R"("},"volumeBindingMode":")" + mode + R"("})");
}

json::value claim_pod(const std::string& name, const std::string& claim) {
  return pod_json(name, "100m", "100Mi",
                  R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":")" + claim +
                      R"("}},{"name":"tmp","emptyDir":{}}]})");
}

TEST_F(AlgorithmTest, BoundClaimPinsThePodToItsVolumesNode) {
  for (const char* n : {"n1", "n2", "n3"}) add_node(node_json(n));
  snap_.volumes().upsert_claim(claim_json("data", "pv-1"));
  snap_.volumes().upsert_volume(local_pv_json("pv-1", "n2"), snap_.interner());
  for (int i = 0; i < 5; ++i) {
    auto r = schedule(claim_pod("p" + std::to_string(i), "data"));
    ASSERT_TRUE(r.scheduled);
    EXPECT_EQ(r.node_name, "n2");
  }
  auto st = algo_.filter_node(*pod(claim_pod("p", "data")), "n1");
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->unresolvable);
  EXPECT_EQ(algo_.reason_text(*st, st->items[0]), "node(s) had volume node affinity conflict");
  // A volume without nodeAffinity fits everywhere.
  snap_.volumes().upsert_volume(parse(R"({"metadata":{"name":"pv-1"},"spec":{"nfs":{}}})"),
                                snap_.interner());
  EXPECT_FALSE(algo_.filter_node(*pod(claim_pod("p", "data")), "n1"));
}

TEST_F(AlgorithmTest, VolumeNodeAffinityConflictEverywhere) {
  for (const char* n : {"n1", "n2"}) add_node(node_json(n));
  snap_.volumes().upsert_claim(claim_json("data", "pv-1"));
  snap_.volumes().upsert_volume(local_pv_json("pv-1", "gone-node"), snap_.interner());
  EXPECT_EQ(failure(claim_pod("p", "data")),
            "0/2 nodes are available: 2 node(s) had volume node affinity conflict. preemption: "
            "0/2 nodes are available: 2 Preemption is not helpful for scheduling.");
  snap_.volumes().remove_volume("pv-1");
  EXPECT_EQ(schedule(claim_pod("p", "data")).message,
            "0/2 nodes are available: 2 node(s) unavailable due to one or more pvc(s) bound to "
            "non-existent pv(s).");
}

TEST_F(AlgorithmTest, MissingOrUnboundImmediateClaimIsUnschedulableEverywhere) {
  for (const char* n : {"n1", "n2", "n3"}) add_node(node_json(n));
  EXPECT_EQ(failure(claim_pod("p", "data")),
            "0/3 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/3 "
            "nodes are available: 3 Preemption is not helpful for scheduling.");
  // Unbound, class Immediate / unknown class / no class.
  snap_.volumes().upsert_class(class_json("fast", "Immediate"));
  for (const char* cls : {"fast", "unknown", ""}) {
    snap_.volumes().upsert_claim(claim_json("data", "", cls));
    EXPECT_EQ(schedule(claim_pod("p", "data")).message,
              "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
        << cls;
  }
  // Unbound WaitForFirstConsumer: no constraint, the provisioner follows the pod.
  snap_.volumes().upsert_class(class_json("local-path", "WaitForFirstConsumer"));
  snap_.volumes().upsert_claim(claim_json("data", "", "local-path"));
  EXPECT_TRUE(schedule(claim_pod("p", "data")).scheduled);
  // Being deleted.
  json::value deleting = claim_json("data", "", "local-path");
  deleting.as_object()["metadata"].as_object()["deletionTimestamp"] = "2026-11-22T00:00:00Z";
  snap_.volumes().upsert_claim(deleting);
  EXPECT_EQ(schedule(claim_pod("p", "data")).message,
            "0/3 nodes are available: persistentvolumeclaim \"data\" is being deleted.");
  snap_.volumes().remove_claim(deleting);
  EXPECT_FALSE(schedule(claim_pod("p", "data")).scheduled);
  // Claims are per namespace.
  snap_.volumes().upsert_claim(claim_json("data", "", "local-path"));
  EXPECT_EQ(
      schedule(
          pod_json("q", "100m", "100Mi",
                   R"({"volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"data"}}]})",
                   "{}", "other"))
          .message,
      "0/3 nodes are available: persistentvolumeclaim \"data\" not found.");
  // Pods without claims are not affected.
  EXPECT_TRUE(schedule(pod_json("plain")).scheduled);
}

}  // namespace
}  // namespace podwarp::scheduler
