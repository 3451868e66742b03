// Unit tests of the pure logic of the apps controllers, on hand-built JSON.
#include <gtest/gtest.h>

#include "controllers/apps/common.h"
#include "controllers/apps/daemonset_util.h"
#include "controllers/apps/deployment_util.h"

namespace podwarp::apps {
namespace {

json::value J(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << text;
  return v ? *v : json::value();
}

TEST(Hash, Fnv32aKnownVectors) {
  EXPECT_EQ(fnv32a(""), 0x811c9dc5u);
  EXPECT_EQ(fnv32a("a"), 0xe40c292cu);
  EXPECT_EQ(fnv32a("foobar"), 0xbf9cf968u);
}

TEST(Hash, SafeEncodeStringUsesUpstreamAlphabet) {
  // '0' is byte 48, 48 % 27 = 21 -> '4'; '6' is 54 % 27 = 0 -> 'b'.
  EXPECT_EQ(safe_encode_string("0123456789"), "456789bcdf");
}

TEST(Hash, TemplateHashIsStableAndDependsOnCollisionCount) {
  auto a = J(R"({"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx:1"}]}})");
  auto b = J(R"({"spec":{"containers":[{"image":"nginx:1","name":"c"}]},"metadata":{"labels":{"app":"web"}}})");
  auto c = J(R"({"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx:2"}]}})");
  EXPECT_EQ(compute_hash(a, std::nullopt), compute_hash(b, std::nullopt));
  EXPECT_NE(compute_hash(a, std::nullopt), compute_hash(c, std::nullopt));
  EXPECT_NE(compute_hash(a, std::nullopt), compute_hash(a, 1));
  EXPECT_NE(compute_hash(a, 1), compute_hash(a, 2));
  // The rendering is SafeEncodeString of the decimal fnv32a value.
  std::string h = compute_hash(a, std::nullopt);
  EXPECT_EQ(h, safe_encode_string(std::to_string(fnv32a(canonical_json(a)))));
  for (char ch : h) EXPECT_NE(std::string_view("bcdfghjklmnpqrstvwxz2456789").find(ch), std::string_view::npos);
}

TEST(Hash, EqualIgnoreHashIgnoresTheLabelAndNulls) {
  auto d = J(R"({"metadata":{"labels":{"app":"web"},"creationTimestamp":null},"spec":{"containers":[{"name":"c","image":"x"}]}})");
  auto rs = J(R"({"metadata":{"labels":{"app":"web","pod-template-hash":"abc"}},"spec":{"containers":[{"name":"c","image":"x"}]}})");
  auto other = J(R"({"metadata":{"labels":{"app":"web","pod-template-hash":"abc"}},"spec":{"containers":[{"name":"c","image":"y"}]}})");
  EXPECT_TRUE(equal_ignore_hash(d, rs));
  EXPECT_FALSE(equal_ignore_hash(d, other));
}

TEST(IntOrPercent, RoundsAsUpstream) {
  json::value pct = "25%";
  EXPECT_EQ(scaled_value(&pct, 10, true), 3);
  EXPECT_EQ(scaled_value(&pct, 10, false), 2);
  json::value n = 2;
  EXPECT_EQ(scaled_value(&n, 10, true), 2);
  json::value bad = "x%";
  EXPECT_EQ(scaled_value(&bad, 10, true), std::nullopt);
  EXPECT_EQ(scaled_value(nullptr, 10, true), std::nullopt);
}

TEST(IntOrPercent, ResolveFenceposts) {
  json::value zero = 0;
  EXPECT_EQ(resolve_fenceposts(&zero, &zero, 3), (std::pair<std::int64_t, std::int64_t>(0, 1)));
  EXPECT_EQ(resolve_fenceposts(nullptr, nullptr, 10), (std::pair<std::int64_t, std::int64_t>(3, 2)));
  EXPECT_EQ(resolve_fenceposts(nullptr, nullptr, 1), (std::pair<std::int64_t, std::int64_t>(1, 0)));
  json::value s = "50%", u = "50%";
  EXPECT_EQ(resolve_fenceposts(&s, &u, 3), (std::pair<std::int64_t, std::int64_t>(2, 1)));
}

json::value pod(std::string name, std::string node, std::string phase, bool ready,
                std::string ready_since, int restarts, std::string created) {
  json::object p;
  p["metadata"] = json::object{{"name", name}, {"creationTimestamp", created}};
  p["spec"] = json::object{{"nodeName", node}};
  json::object st;
  st["phase"] = phase;
  st["conditions"] = json::array{json::object{{"type", "Ready"},
                                              {"status", ready ? "True" : "False"},
                                              {"lastTransitionTime", ready_since}}};
  st["containerStatuses"] = json::array{json::object{{"restartCount", restarts}}};
  p["status"] = std::move(st);
  return p;
}

TEST(DeletionRanking, FollowsUpstreamOrder) {
  const std::string t0 = "2026-01-01T00:00:00Z", t1 = "2026-01-01T00:01:00Z";
  auto unassigned = pod("unassigned", "", "Pending", false, t0, 0, t0);
  auto pending = pod("pending", "n1", "Pending", false, t0, 0, t0);
  auto unknown = pod("unknown", "n1", "Unknown", false, t0, 0, t0);
  auto running_notready = pod("notready", "n1", "Running", false, t0, 0, t0);
  auto ready_recent = pod("ready-recent", "n1", "Running", true, t1, 0, t0);
  auto ready_old_restarts = pod("ready-restarts", "n1", "Running", true, t0, 5, t0);
  auto ready_old_newer = pod("ready-newer", "n1", "Running", true, t0, 0, t1);
  auto ready_old = pod("ready-old", "n1", "Running", true, t0, 0, t0);
  std::vector<json::value> want = {unassigned,   pending,           unknown,
                                   running_notready, ready_recent, ready_old_restarts,
                                   ready_old_newer, ready_old};
  std::vector<json::value> got = {ready_old, ready_old_newer, unknown, ready_recent,
                                  unassigned, running_notready, ready_old_restarts, pending};
  std::sort(got.begin(), got.end(),
            [](const json::value& a, const json::value& b) { return pod_delete_before(a, b); });
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(name_of(got[i]), name_of(want[i])) << "position " << i;
  }
}

TEST(Expectations, CreationsAndDeletions) {
  Expectations e;
  EXPECT_TRUE(e.satisfied("ns/rs"));
  e.expect_creations("ns/rs", 2);
  EXPECT_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  EXPECT_FALSE(e.satisfied("ns/rs"));
  e.creation_observed("ns/rs");
  EXPECT_TRUE(e.satisfied("ns/rs"));
  e.expect_deletions("ns/rs", {"ns/a", "ns/b"});
  e.deletion_observed("ns/rs", "ns/a");
  e.deletion_observed("ns/rs", "ns/a");
  EXPECT_FALSE(e.satisfied("ns/rs"));
  e.deletion_observed("ns/rs", "ns/b");
  EXPECT_TRUE(e.satisfied("ns/rs"));
  e.expect_creations("ns/rs", 1);
  EXPECT_TRUE(e.satisfied("ns/rs", std::chrono::steady_clock::now() + std::chrono::minutes(6)));
}

DeploymentParams params(std::int64_t replicas, std::int64_t surge, std::int64_t unavailable) {
  DeploymentParams p;
  p.replicas = replicas;
  p.max_surge = surge;
  p.max_unavailable = unavailable;
  return p;
}

TEST(Rollout, DeploymentParamsDefaults) {
  auto p = deployment_params(J(R"({"spec":{"replicas":10}})"));
  EXPECT_EQ(p.replicas, 10);
  EXPECT_EQ(p.max_surge, 3);
  EXPECT_EQ(p.max_unavailable, 2);
  EXPECT_EQ(p.revision_history_limit, 10);
  EXPECT_EQ(p.progress_deadline_seconds, 600);
  EXPECT_FALSE(p.recreate);
  auto r = deployment_params(J(R"({"spec":{"strategy":{"type":"Recreate"},"paused":true}})"));
  EXPECT_EQ(r.replicas, 1);
  EXPECT_TRUE(r.recreate);
  EXPECT_TRUE(r.paused);
}

TEST(Rollout, NewReplicaSetGrowsWithinSurge) {
  auto p = params(4, 1, 1);
  EXPECT_EQ(new_rs_replicas_rolling(p, 4, 0), 1);  // old 4 + new 0 -> new may have 1
  EXPECT_EQ(new_rs_replicas_rolling(p, 5, 1), 1);  // already at 5 = 4 + surge
  EXPECT_EQ(new_rs_replicas_rolling(p, 3, 1), 3);  // old 2 + new 1: new may grow by 2 to reach 5
  EXPECT_EQ(new_rs_replicas_rolling(p, 3, 3), 4);  // never above replicas
  auto big = params(10, 3, 2);
  EXPECT_EQ(new_rs_replicas_rolling(big, 10, 0), 3);
}

TEST(Rollout, OldScaleDownKeepsMinimumAvailable) {
  auto p = params(4, 1, 1);
  // all 5 = old 4 (available 4) + new 1 (not available): may drop 5 - 3 - 1 = 1.
  EXPECT_EQ(max_scaled_down(p, 5, 1, 0), 1);
  RsView old{"old", 4, 4, {}, std::nullopt};
  auto sizes = plan_old_scale_down(p, {old}, 1, 0);
  EXPECT_EQ(sizes, std::vector<std::int64_t>{3});
  // Unavailable old replicas go first, within the budget.
  RsView sick{"sick", 4, 2, {}, std::nullopt};
  sizes = plan_old_scale_down(p, {sick}, 1, 0);
  EXPECT_EQ(sizes, std::vector<std::int64_t>{3});
  // New RS fully available: old may go down to what keeps 3 available.
  sizes = plan_old_scale_down(p, {RsView{"old", 2, 2, {}, std::nullopt}}, 2, 2);
  EXPECT_EQ(sizes, std::vector<std::int64_t>{1});
  // Nothing may go while availability is at the minimum.
  EXPECT_LE(max_scaled_down(params(3, 0, 1), 3, 1, 0), 0);
}

TEST(Rollout, ProportionalScalingDuringARollout) {
  auto p = params(20, 5, 5);
  auto now = std::chrono::system_clock::now();
  RsView newer{"new", 5, 0, now, 13};
  RsView older{"old", 8, 0, now - std::chrono::minutes(1), 13};
  auto sizes = proportional_scale(p, {newer, older}, 13);
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{10, 15}));
  // Scale to zero.
  auto z = params(0, 0, 0);
  sizes = proportional_scale(z, {newer, older}, 13);
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{0, 0}));
}

TEST(DaemonSetPredicates, TaintsAndTolerations) {
  auto taint = J(R"({"key":"dedicated","value":"db","effect":"NoSchedule"})");
  EXPECT_TRUE(tolerates(J(R"({"key":"dedicated","operator":"Equal","value":"db"})"), taint));
  EXPECT_FALSE(tolerates(J(R"({"key":"dedicated","value":"web"})"), taint));
  EXPECT_TRUE(tolerates(J(R"({"operator":"Exists"})"), taint));
  EXPECT_FALSE(tolerates(J(R"({"key":"dedicated","operator":"Exists","effect":"NoExecute"})"), taint));

  auto node = J(R"({"metadata":{"name":"n3","labels":{"disk":"ssd"}},
                    "spec":{"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]}})");
  json::value spec = json::object();
  add_daemon_tolerations(spec.as_object());
  auto d = node_should_run(spec, node);
  EXPECT_FALSE(d.should_run);
  EXPECT_TRUE(d.should_continue_running);  // NoSchedule does not evict

  auto noexec = J(R"({"metadata":{"name":"n4"},"spec":{"taints":[{"key":"k","effect":"NoExecute"}]}})");
  d = node_should_run(spec, noexec);
  EXPECT_FALSE(d.should_run);
  EXPECT_FALSE(d.should_continue_running);

  auto not_ready = J(R"({"metadata":{"name":"n5"},"spec":{"taints":[{"key":"node.kubernetes.io/not-ready","effect":"NoExecute"},{"key":"node.kubernetes.io/unschedulable","effect":"NoSchedule"}]}})");
  EXPECT_TRUE(node_should_run(spec, not_ready).should_run);  // automatic tolerations
}

TEST(DaemonSetPredicates, AutomaticTolerations) {
  json::value spec = J(R"({"hostNetwork":true,"tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute"}]})");
  add_daemon_tolerations(spec.as_object());
  const auto& tols = spec.at("tolerations").as_array();
  EXPECT_EQ(tols.size(), 7u);  // not duplicated, network-unavailable for hostNetwork
  json::value plain = json::object();
  add_daemon_tolerations(plain.as_object());
  EXPECT_EQ(plain.at("tolerations").as_array().size(), 6u);
}

TEST(DaemonSetPredicates, NodeSelectorAndAffinity) {
  auto node = J(R"({"metadata":{"name":"n1","labels":{"disk":"ssd","zone":"a","cpus":"8"}}})");
  EXPECT_TRUE(node_matches(J(R"({"nodeSelector":{"disk":"ssd"}})"), node));
  EXPECT_FALSE(node_matches(J(R"({"nodeSelector":{"disk":"hdd"}})"), node));
  auto aff = [](std::string terms) {
    return J(R"({"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":)" +
             terms + "}}}}");
  };
  EXPECT_TRUE(node_matches(aff(R"([{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}])"), node));
  EXPECT_FALSE(node_matches(aff(R"([{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["a"]}]}])"), node));
  EXPECT_TRUE(node_matches(aff(R"([{"matchExpressions":[{"key":"cpus","operator":"Gt","values":["4"]}]}])"), node));
  EXPECT_TRUE(node_matches(aff(R"([{"matchExpressions":[{"key":"gpu","operator":"DoesNotExist"}]},{"matchFields":[{"key":"metadata.name","operator":"In","values":["x"]}]}])"), node));
  EXPECT_FALSE(node_matches(aff(R"([{"matchFields":[{"key":"metadata.name","operator":"In","values":["n2"]}]}])"), node));

  json::value spec = J(R"({"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}]}}}})");
  set_node_name_affinity(spec.as_object(), "n1");
  json::value p = json::object{{"spec", spec}};
  EXPECT_EQ(target_node_name(p), "n1");
  EXPECT_TRUE(node_matches(spec, node));
  EXPECT_FALSE(node_matches(spec, J(R"({"metadata":{"name":"n2","labels":{"zone":"a"}}})")));
}

}  // namespace
}  // namespace podwarp::apps
