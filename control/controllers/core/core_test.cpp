// Unit tests of the core controllers' pure logic, on hand-built JSON.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/disruption.h"
#include "core/endpoint_slice.h"
#include "core/endpoints.h"
#include "core/garbage_collector.h"
#include "core/namespace.h"
#include "core/persistent_volume.h"
#include "podwarp/time.h"

namespace podwarp::controllers {
namespace {

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << v.error() << ": " << text;
  return v ? *v : json::value();
}

client::ObjectPtr obj(std::string_view text) {
  return std::make_shared<const json::value>(parse(text));
}

// A pod of namespace "ns" with app=web, a named container port http=8080.
client::ObjectPtr pod(std::string_view name, std::string_view ip, bool ready, bool deleting = false,
                      std::string_view extra_status = "",
                      std::string_view labels = R"({"app":"web"})", std::string_view node = "n1",
                      std::int64_t http_port = 8080) {
  return obj(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"ns","uid":"uid-{}","labels":{}{}}},
          "spec":{{"nodeName":"{}","containers":[{{"name":"c","ports":[{{"name":"http","containerPort":{}}}]}}]}},
          "status":{{"podIP":"{}","phase":"Running"{},
                     "conditions":[{{"type":"Ready","status":"{}"}}]}}}})",
      name, name, labels, deleting ? R"(,"deletionTimestamp":"2026-01-01T00:00:00Z")" : "", node,
      http_port, ip, extra_status, ready ? "True" : "False"));
}

const char* kService = R"({"metadata":{"name":"web","namespace":"ns","uid":"svc-uid"},
  "spec":{"selector":{"app":"web"},"clusterIP":"10.96.0.10",
          "ports":[{"name":"http","port":80,"targetPort":"http","protocol":"TCP"},
                   {"name":"metrics","port":9090,"targetPort":9090,"protocol":"TCP"}]}})";

TEST(Endpoints, SubsetsSplitReadyAndNotReadyAndDropTerminatingAndFinished) {
  std::vector<client::ObjectPtr> pods = {
      pod("b", "10.0.0.2", false),
      pod("a", "10.0.0.1", true),
      pod("term", "10.0.0.3", true, true),
      pod("noip", "", true),
      pod("other", "10.0.0.5", true, false, "", R"({"app":"db"})"),
      obj(R"({"metadata":{"name":"done","namespace":"ns","uid":"u-done","labels":{"app":"web"}},
              "spec":{"restartPolicy":"Never","containers":[]},
              "status":{"podIP":"10.0.0.6","phase":"Succeeded"}})"),
  };
  json::array subsets = build_endpoint_subsets(parse(kService), pods);
  EXPECT_EQ(json::value(subsets), parse(R"([{
    "addresses":[{"ip":"10.0.0.1","nodeName":"n1","targetRef":{"kind":"Pod","namespace":"ns","name":"a","uid":"uid-a"}}],
    "notReadyAddresses":[{"ip":"10.0.0.2","nodeName":"n1","targetRef":{"kind":"Pod","namespace":"ns","name":"b","uid":"uid-b"}}],
    "ports":[{"name":"http","port":8080,"protocol":"TCP"},{"name":"metrics","port":9090,"protocol":"TCP"}]}])"));
}

TEST(Endpoints, PublishNotReadyAddressesCountsEveryListedPodAsReady) {
  json::value svc = parse(kService);
  svc.as_object()["spec"].as_object()["publishNotReadyAddresses"] = true;
  json::array subsets = build_endpoint_subsets(
      svc,
      {pod("a", "10.0.0.1", true), pod("b", "10.0.0.2", false), pod("t", "10.0.0.3", false, true)});
  ASSERT_EQ(subsets.size(), 1u);
  EXPECT_EQ(subsets[0].as_object()["addresses"].as_array().size(), 3u);
  EXPECT_FALSE(subsets[0].as_object().contains("notReadyAddresses"));
}

TEST(Endpoints, NamedTargetPortResolvingDifferentlyMakesTwoSubsets) {
  json::array subsets = build_endpoint_subsets(
      parse(kService), {pod("a", "10.0.0.1", true),
                        pod("b", "10.0.0.2", true, false, "", R"({"app":"web"})", "n1", 8081)});
  // metrics (9090) is shared; http differs: {a,b}:9090, {a}:8080, {b}:8081.
  ASSERT_EQ(subsets.size(), 3u);
  int with_two = 0;
  for (const json::value& s : subsets) {
    if (find_path(s, {"addresses"})->as_array().size() == 2) {
      ++with_two;
      EXPECT_EQ(get_int(s.as_object().at("ports").as_array()[0], {"port"}), 9090);
    }
  }
  EXPECT_EQ(with_two, 1);
}

TEST(Endpoints, UnknownNamedPortSkipsThatPortAndHeadlessWithoutPortsListsAddresses) {
  json::value svc = parse(R"({"metadata":{"name":"h","namespace":"ns"},
      "spec":{"selector":{"app":"web"},"clusterIP":"None"}})");
  json::array subsets = build_endpoint_subsets(svc, {pod("a", "10.0.0.1", true)});
  ASSERT_EQ(subsets.size(), 1u);
  EXPECT_FALSE(subsets[0].as_object().contains("ports"));
  EXPECT_EQ(subsets[0].as_object()["addresses"].as_array().size(), 1u);

  json::value svc2 = parse(R"({"metadata":{"name":"x","namespace":"ns"},
      "spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"nope"}]}})");
  EXPECT_TRUE(build_endpoint_subsets(svc2, {pod("a", "10.0.0.1", true)}).empty());
  EXPECT_EQ(find_pod_port(*pod("a", "1.1.1.1", true), parse(R"({"port":80})")), 80);
}

TEST(EndpointSlice, ConditionsFollowReadinessAndTermination) {
  json::value svc = parse(kService);
  auto cond = [&](client::ObjectPtr p) {
    auto ep = slice_endpoint(svc, *p, "IPv4", "zone-a");
    EXPECT_TRUE(ep);
    return ep ? json::value((*ep)["conditions"]) : json::value();
  };
  EXPECT_EQ(cond(pod("a", "10.0.0.1", true)),
            parse(R"({"ready":true,"serving":true,"terminating":false})"));
  EXPECT_EQ(cond(pod("a", "10.0.0.1", false)),
            parse(R"({"ready":false,"serving":false,"terminating":false})"));
  EXPECT_EQ(cond(pod("a", "10.0.0.1", true, true)),
            parse(R"({"ready":false,"serving":true,"terminating":true})"));
  EXPECT_EQ(cond(pod("a", "10.0.0.1", false, true)),
            parse(R"({"ready":false,"serving":false,"terminating":true})"));
  auto ep = slice_endpoint(svc, *pod("a", "10.0.0.1", true), "IPv4", "zone-a");
  EXPECT_EQ(get_string(*ep, {"zone"}), "zone-a");
  EXPECT_EQ(get_string(*ep, {"nodeName"}), "n1");
  EXPECT_EQ(get_string(*ep, {"targetRef", "name"}), "a");
  EXPECT_FALSE(slice_endpoint(svc, *pod("a", "10.0.0.1", true), "IPv6", ""));
}

std::vector<client::ObjectPtr> many_pods(int n) {
  std::vector<client::ObjectPtr> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        pod(fmt::format("p{:03}", i), fmt::format("10.1.{}.{}", i / 200, i % 200 + 1), true));
  }
  return out;
}

// The slices `plan` would leave (after creates/updates/removes), named s0, s1, ...
std::vector<client::ObjectPtr> apply_plan(const std::vector<client::ObjectPtr>& existing,
                                          SlicePlan& plan, int& counter) {
  std::vector<client::ObjectPtr> out;
  for (const client::ObjectPtr& e : existing) {
    bool removed = std::any_of(plan.remove.begin(), plan.remove.end(),
                               [&](const json::value& r) { return name_of(r) == name_of(*e); });
    if (removed) continue;
    auto upd = std::find_if(plan.update.begin(), plan.update.end(),
                            [&](const json::value& r) { return name_of(r) == name_of(*e); });
    out.push_back(upd != plan.update.end() ? std::make_shared<const json::value>(*upd) : e);
  }
  for (json::value c : plan.create) {
    c.as_object()["metadata"].as_object()["name"] = fmt::format("s{}", counter++);
    out.push_back(std::make_shared<const json::value>(std::move(c)));
  }
  return out;
}

TEST(EndpointSlice, PlanSplitsAt100AndUpdatesInPlace) {
  json::value svc = parse(kService);
  auto no_zone = [](std::string_view) { return std::string(); };
  std::vector<client::ObjectPtr> pods = many_pods(250);
  SlicePlan plan = plan_endpoint_slices(svc, pods, {}, no_zone, "t0");
  ASSERT_EQ(plan.create.size(), 3u);
  EXPECT_TRUE(plan.update.empty());
  std::size_t total = 0;
  for (const json::value& s : plan.create) {
    std::size_t n = find_path(s, {"endpoints"})->as_array().size();
    EXPECT_LE(n, 100u);
    total += n;
    EXPECT_EQ(get_string(s, {"metadata", "labels", "kubernetes.io/service-name"}), "web");
    EXPECT_EQ(get_string(s, {"metadata", "labels", "endpointslice.kubernetes.io/managed-by"}),
              "endpointslice-controller.k8s.io");
    EXPECT_EQ(get_string(s, {"metadata", "generateName"}), "web-");
    EXPECT_EQ(find_path(s, {"metadata", "ownerReferences"})->as_array()[0].as_object().at("uid"),
              "svc-uid");
    EXPECT_EQ(get_string(s, {"addressType"}), "IPv4");
  }
  EXPECT_EQ(total, 250u);
  int counter = 0;
  std::vector<client::ObjectPtr> slices = apply_plan({}, plan, counter);

  // Nothing changed: nothing to do.
  SlicePlan same = plan_endpoint_slices(svc, pods, slices, no_zone, "t1");
  EXPECT_TRUE(same.create.empty() && same.update.empty() && same.remove.empty());

  // One pod turns unready: exactly one slice is updated.
  pods[7] = pod("p007", "10.1.0.8", false);
  SlicePlan one = plan_endpoint_slices(svc, pods, slices, no_zone, "t2");
  EXPECT_TRUE(one.create.empty());
  EXPECT_TRUE(one.remove.empty());
  ASSERT_EQ(one.update.size(), 1u);
  EXPECT_EQ(get_string(one.update[0], {"metadata", "annotations",
                                       "endpoints.kubernetes.io/last-change-trigger-time"}),
            "t2");
  slices = apply_plan(slices, one, counter);

  // Five pods go and three come: the new ones fill the slice that is updated anyway.
  pods.erase(pods.begin(), pods.begin() + 5);
  for (int i = 0; i < 3; ++i)
    pods.push_back(pod(fmt::format("new{}", i), fmt::format("10.2.0.{}", i + 1), true));
  SlicePlan churn = plan_endpoint_slices(svc, pods, slices, no_zone, "t3");
  EXPECT_TRUE(churn.create.empty());
  EXPECT_EQ(churn.update.size(), 1u);
  slices = apply_plan(slices, churn, counter);
  std::size_t n = 0;
  for (const auto& s : slices) n += find_path(*s, {"endpoints"})->as_array().size();
  EXPECT_EQ(n, 248u);

  // All pods gone: one slice is kept as the empty placeholder, the others deleted.
  SlicePlan none = plan_endpoint_slices(svc, {}, slices, no_zone, "t4");
  EXPECT_TRUE(none.create.empty());
  EXPECT_EQ(none.update.size(), 1u);
  EXPECT_EQ(none.remove.size(), 2u);
  EXPECT_TRUE(find_path(none.update[0], {"endpoints"})->as_array().empty());
  // No slices at all: a placeholder is created.
  SlicePlan fresh = plan_endpoint_slices(svc, {}, {}, no_zone, "t5");
  ASSERT_EQ(fresh.create.size(), 1u);
  EXPECT_TRUE(find_path(fresh.create[0], {"endpoints"})->as_array().empty());
}

// PDB arithmetic.
client::ObjectPtr owned_pod(std::string_view name, bool ready, std::string_view rs_uid,
                            bool deleting = false) {
  return obj(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"ns","uid":"u-{}","labels":{{"app":"db"}}{},
          "ownerReferences":[{{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"{}","controller":true}}]}},
          "status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"{}"}}]}}}})",
      name, name, deleting ? R"(,"deletionTimestamp":"2026-01-01T00:00:00Z")" : "", rs_uid,
      ready ? "True" : "False"));
}

json::value pdb(std::string_view spec, std::string_view status = "{}") {
  return parse(fmt::format(
      R"({{"metadata":{{"name":"b","namespace":"ns","generation":3}},
          "spec":{{"selector":{{"matchLabels":{{"app":"db"}}}}{}}},"status":{}}})",
      spec, status));
}

ScaleFinder scale(std::int64_t replicas) {
  return [replicas](const json::value&) { return ControllerScale{"rs-uid", replicas}; };
}

TEST(Disruption, MinAvailableIntCountsSelectedPods) {
  auto now = std::chrono::system_clock::now();
  std::vector<client::ObjectPtr> pods = {
      owned_pod("a", true, "rs-uid"), owned_pod("b", true, "rs-uid"),
      owned_pod("c", false, "rs-uid"), owned_pod("d", true, "rs-uid", true)};
  PdbComputation c = compute_pdb(pdb(R"(,"minAvailable":1)"), pods, scale(5), now);
  EXPECT_EQ(c.expected_pods, 4);
  EXPECT_EQ(c.desired_healthy, 1);
  EXPECT_EQ(c.current_healthy, 2);
  EXPECT_EQ(c.disruptions_allowed, 1);
  json::object st = pdb_status(pdb(R"(,"minAvailable":1)"), c, now);
  EXPECT_EQ(st["observedGeneration"], 3);
  EXPECT_EQ(st["disruptionsAllowed"], 1);
  auto& cond = st["conditions"].as_array()[0];
  EXPECT_EQ(get_string(cond, {"type"}), "DisruptionAllowed");
  EXPECT_EQ(get_string(cond, {"status"}), "True");
  EXPECT_EQ(get_string(cond, {"reason"}), "SufficientPods");
}

TEST(Disruption, PercentagesUseTheControllersScale) {
  auto now = std::chrono::system_clock::now();
  std::vector<client::ObjectPtr> pods;
  for (int i = 0; i < 4; ++i) pods.push_back(owned_pod(fmt::format("p{}", i), true, "rs-uid"));
  // minAvailable 50% of 5 (scale) rounds up to 3.
  PdbComputation c = compute_pdb(pdb(R"(,"minAvailable":"50%")"), pods, scale(5), now);
  EXPECT_EQ(c.expected_pods, 5);
  EXPECT_EQ(c.desired_healthy, 3);
  EXPECT_EQ(c.disruptions_allowed, 1);
  // maxUnavailable 34% of 5 rounds up to 2: desired 3.
  c = compute_pdb(pdb(R"(,"maxUnavailable":"34%")"), pods, scale(5), now);
  EXPECT_EQ(c.desired_healthy, 3);
  // maxUnavailable 0: nothing may go.
  c = compute_pdb(pdb(R"(,"maxUnavailable":0)"), pods, scale(4), now);
  EXPECT_EQ(c.desired_healthy, 4);
  EXPECT_EQ(c.disruptions_allowed, 0);
  json::object st = pdb_status(pdb(R"(,"maxUnavailable":0)"), c, now);
  EXPECT_EQ(get_string(st["conditions"].as_array()[0], {"reason"}), "InsufficientPods");
  // A pod without a controller: SyncFailed, no disruption allowed.
  pods.push_back(obj(R"({"metadata":{"name":"stray","namespace":"ns","labels":{"app":"db"}}})"));
  c = compute_pdb(pdb(R"(,"maxUnavailable":1)"), pods, scale(4), now);
  EXPECT_FALSE(c.error.empty());
  st = pdb_status(pdb(R"(,"maxUnavailable":1)"), c, now);
  EXPECT_EQ(st["disruptionsAllowed"], 0);
  EXPECT_EQ(get_string(st["conditions"].as_array()[0], {"reason"}), "SyncFailed");
}

TEST(Disruption, DisruptedPodsDoNotCountUntilDeletedOrExpired) {
  auto now = std::chrono::system_clock::now();
  std::string recent = format_rfc3339(now - std::chrono::seconds(10));
  std::string old = format_rfc3339(now - std::chrono::minutes(5));
  std::vector<client::ObjectPtr> pods = {owned_pod("a", true, "rs-uid"),
                                         owned_pod("b", true, "rs-uid"),
                                         owned_pod("c", true, "rs-uid")};
  json::value p = pdb(
      R"(,"minAvailable":1)",
      fmt::format(R"({{"disruptedPods":{{"a":"{}","b":"{}","gone":"{}"}}}})", recent, old, recent));
  PdbComputation c = compute_pdb(p, pods, scale(3), now);
  EXPECT_EQ(c.current_healthy, 2);  // a is still recorded as disrupted
  EXPECT_EQ(c.disrupted_pods.size(), 1u);
  EXPECT_TRUE(c.disrupted_pods.contains("a"));
  ASSERT_TRUE(c.recheck);
  EXPECT_GT(*c.recheck, now + std::chrono::seconds(100));
}

TEST(Disruption, EmptySelectorSelectsTheWholeNamespaceMissingSelectsNothing) {
  std::vector<client::ObjectPtr> pods = {owned_pod("a", true, "rs-uid")};
  EXPECT_EQ(
      pdb_pods(parse(R"({"metadata":{"namespace":"ns"},"spec":{"selector":{}}})"), pods).size(),
      1u);
  EXPECT_TRUE(pdb_pods(parse(R"({"metadata":{"namespace":"ns"},"spec":{}})"), pods).empty());
  EXPECT_TRUE(pdb_pods(parse(R"({"metadata":{"namespace":"other"},"spec":{"selector":{}}})"), pods)
                  .empty());
}

// Garbage collector.
TEST(GarbageCollector, GraphLinksOwnersAndDependentsAndTriggers) {
  const api::Resource& pods = resource("", "pods");
  const api::Resource& rss = resource("apps", "replicasets");
  OwnerGraph g;
  json::value p = parse(R"({"metadata":{"name":"p","namespace":"ns","uid":"P",
      "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"R","blockOwnerDeletion":true}]}})");
  // The owner is not observed yet: the dependent must be checked.
  auto t = g.observe(pods, p);
  EXPECT_TRUE(t.attempt_delete.contains("P"));
  ASSERT_NE(g.find("R"), nullptr);
  EXPECT_FALSE(g.find("R")->observed);
  json::value rs = parse(R"({"metadata":{"name":"rs","namespace":"ns","uid":"R"}})");
  t = g.observe(rss, rs);
  EXPECT_TRUE(t.attempt_delete.empty());
  EXPECT_EQ(g.find("R")->dependents.size(), 1u);
  EXPECT_EQ(g.blocking_dependents("R"), std::vector<std::string>{"P"});

  // Foreground deletion of the owner: the owner and its dependents are looked at.
  json::value rs_fg = parse(R"({"metadata":{"name":"rs","namespace":"ns","uid":"R",
      "deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["foregroundDeletion"]}})");
  t = g.observe(rss, rs_fg);
  EXPECT_TRUE(t.attempt_delete.contains("R"));
  EXPECT_TRUE(t.attempt_delete.contains("P"));
  // The dependent goes: the owner is looked at again (nothing blocks any more).
  t = g.forget(p);
  EXPECT_TRUE(t.attempt_delete.contains("R"));
  EXPECT_TRUE(g.blocking_dependents("R").empty());

  // Orphan deletion triggers the orphan pass.
  json::value rs_orphan = parse(R"({"metadata":{"name":"rs","namespace":"ns","uid":"R",
      "deletionTimestamp":"2026-01-01T00:00:00Z","finalizers":["orphan"]}})");
  t = g.observe(rss, rs_orphan);
  EXPECT_TRUE(t.orphan.contains("R"));

  // An owner deleted while dependents point at it is remembered as absent.
  g.observe(pods, p);
  t = g.forget(rs);
  EXPECT_TRUE(t.attempt_delete.contains("P"));
  ASSERT_NE(g.find("R"), nullptr);
  EXPECT_TRUE(g.find("R")->known_absent);
  g.forget(p);
  EXPECT_EQ(g.find("R"), nullptr);
  EXPECT_EQ(g.size(), 0u);
}

TEST(GarbageCollector, Decisions) {
  json::value plain = parse(R"({"metadata":{"name":"p"}})");
  using S = OwnerState;
  using A = GcDecision::Action;
  EXPECT_EQ(decide_gc(plain, {}, false).action, A::kNone);
  EXPECT_EQ(decide_gc(plain, {{"a", S::kSolid}}, false).action, A::kNone);
  GcDecision d =
      decide_gc(plain, {{"a", S::kSolid}, {"b", S::kDangling}, {"c", S::kWaiting}}, false);
  EXPECT_EQ(d.action, A::kRemoveRefs);
  EXPECT_EQ(d.remove_uids, (std::vector<std::string>{"b", "c"}));
  d = decide_gc(plain, {{"b", S::kDangling}}, true);
  EXPECT_EQ(d.action, A::kDelete);
  EXPECT_EQ(d.policy, "Background");
  d = decide_gc(plain, {{"c", S::kWaiting}}, true);
  EXPECT_EQ(d.policy, "Foreground");
  d = decide_gc(plain, {{"c", S::kWaiting}}, false);
  EXPECT_EQ(d.policy, "Background");
  d = decide_gc(parse(R"({"metadata":{"finalizers":["orphan"]}})"), {{"b", S::kDangling}}, true);
  EXPECT_EQ(d.policy, "Orphan");
}

TEST(Namespace, DeletionConditionsAsUpstream) {
  json::value ns = parse(R"({"metadata":{"name":"x"},"status":{"phase":"Terminating"}})");
  NamespaceContent c;
  c.remaining["pods."] = 2;
  c.remaining["deployments.apps"] = 1;
  c.finalizers["example.com/hold"] = 1;
  json::array conds = namespace_deletion_conditions(ns, c, "2026-01-01T00:00:00Z");
  ASSERT_EQ(conds.size(), 5u);
  EXPECT_EQ(get_string(conds[2], {"type"}), "NamespaceDeletionContentFailure");
  EXPECT_EQ(get_string(conds[2], {"status"}), "False");
  EXPECT_EQ(get_string(conds[2], {"reason"}), "ContentDeleted");
  EXPECT_EQ(get_string(conds[3], {"type"}), "NamespaceContentRemaining");
  EXPECT_EQ(get_string(conds[3], {"status"}), "True");
  EXPECT_EQ(get_string(conds[3], {"reason"}), "SomeResourcesRemain");
  EXPECT_EQ(get_string(conds[3], {"message"}),
            "Some resources are remaining: deployments.apps has 1 resource instances, pods. has 2 "
            "resource instances");
  EXPECT_EQ(get_string(conds[4], {"reason"}), "SomeFinalizersRemain");
  EXPECT_EQ(get_string(conds[4], {"message"}),
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
            "resource instances");
  // Unchanged status keeps lastTransitionTime.
  ns.as_object()["status"].as_object()["conditions"] = conds;
  json::array again = namespace_deletion_conditions(ns, c, "2027-01-01T00:00:00Z");
  EXPECT_EQ(get_string(again[3], {"lastTransitionTime"}), "2026-01-01T00:00:00Z");
  json::array done = namespace_deletion_conditions(ns, NamespaceContent{}, "2027-01-01T00:00:00Z");
  EXPECT_EQ(get_string(done[3], {"reason"}), "ContentRemoved");
  EXPECT_EQ(get_string(done[3], {"lastTransitionTime"}), "2027-01-01T00:00:00Z");
}

// --- persistentvolume-binder --------------------------------------------------------------

client::ObjectPtr pv(std::string_view name, std::string_view size, std::string_view extra = "",
                     std::string_view modes = R"(["ReadWriteOnce"])",
                     std::string_view phase = "Available") {
  return obj(fmt::format(
      R"({{"metadata":{{"name":"{}"{}}},
          "spec":{{"capacity":{{"storage":"{}"}},"accessModes":{},"volumeMode":"Filesystem",
                  "hostPath":{{"path":"/srv/{}"}}}},"status":{{"phase":"{}"}}}})",
      name, extra, size, modes, name, phase));
}

json::value claim(std::string_view extra_spec = "",
                  std::string_view modes = R"(["ReadWriteOnce"])") {
  return parse(fmt::format(
      R"({{"metadata":{{"name":"data","namespace":"ns","uid":"claim-uid"}},
          "spec":{{"accessModes":{},"resources":{{"requests":{{"storage":"1Gi"}}}},
                  "volumeMode":"Filesystem"{}}}}})",
      modes, extra_spec));
}

TEST(PersistentVolumeBinder, SmallestFittingVolumeWins) {
  std::vector<client::ObjectPtr> pvs{
      pv("small", "500Mi"),  // too small
      pv("big", "10Gi"),
      pv("rox", "1Gi", "", R"(["ReadOnlyMany"])"),  // wrong access modes
      pv("fit", "2Gi"),
      pv("taken", "1Gi", "", R"(["ReadWriteOnce"])", "Bound"),  // not Available
      pv("classy", "1Gi", R"(,"labels":{"x":"y"})"),
  };
  // "classy" (1Gi, no class, labels the claim does not select on) is the smallest fit; once it
  // has a class of its own, "fit" (2Gi) is.
  auto best = best_volume(claim(), pvs, nullptr, false);
  ASSERT_TRUE(best);
  EXPECT_EQ(name_of(*best), "classy");
  pvs.back() = obj(R"({"metadata":{"name":"classy"},"spec":{"capacity":{"storage":"1Gi"},
      "accessModes":["ReadWriteOnce"],"storageClassName":"fast","hostPath":{"path":"/x"}},
      "status":{"phase":"Available"}})");
  best = best_volume(claim(), pvs, nullptr, false);
  ASSERT_TRUE(best);
  EXPECT_EQ(name_of(*best), "fit");
  EXPECT_EQ(volume_mismatch(*pvs[0], claim()), "requested PV is too small");
  EXPECT_EQ(volume_mismatch(*pvs[2], claim()), "incompatible accessMode");
  EXPECT_EQ(volume_mismatch(*pvs.back(), claim()), "storageClassName does not match");
  // A claim asking for two modes needs a volume with both.
  EXPECT_FALSE(best_volume(claim("", R"(["ReadWriteOnce","ReadOnlyMany"])"), pvs, nullptr, false));
  // Delayed binding without a node: only a pre-bound volume.
  EXPECT_FALSE(best_volume(claim(), pvs, nullptr, true));
}

TEST(PersistentVolumeBinder, SelectorAndPreBinding) {
  std::vector<client::ObjectPtr> pvs{pv("a", "1Gi"),
                                     pv("b", "5Gi", R"(,"labels":{"tier":"gold"})")};
  auto best =
      best_volume(claim(R"(,"selector":{"matchLabels":{"tier":"gold"}})"), pvs, nullptr, false);
  ASSERT_TRUE(best);
  EXPECT_EQ(name_of(*best), "b");
  // A volume whose claimRef names the claim (no uid yet) is taken before any other, even when
  // delayed binding waits for a node; one pre-bound to another claim is never taken.
  pvs.push_back(obj(R"({"metadata":{"name":"mine"},"spec":{"capacity":{"storage":"8Gi"},
      "accessModes":["ReadWriteOnce"],"hostPath":{"path":"/x"},
      "claimRef":{"namespace":"ns","name":"data"}},"status":{"phase":"Available"}})"));
  best = best_volume(claim(), pvs, nullptr, true);
  ASSERT_TRUE(best);
  EXPECT_EQ(name_of(*best), "mine");
  std::vector<client::ObjectPtr> others{obj(R"({"metadata":{"name":"theirs"},
      "spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"hostPath":{"path":"/x"},
      "claimRef":{"namespace":"ns","name":"other","uid":"u2"}},"status":{"phase":"Available"}})")};
  EXPECT_FALSE(best_volume(claim(), others, nullptr, false));
  // Node affinity: a volume pinned to n2 does not serve a claim whose pod is on n1.
  std::vector<client::ObjectPtr> pinned{obj(R"({"metadata":{"name":"pinned"},
      "spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],"local":{"path":"/x"},
      "nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[
        {"key":"kubernetes.io/hostname","operator":"In","values":["n2"]}]}]}}},
      "status":{"phase":"Available"}})")};
  json::value n1 = parse(R"({"metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}}})");
  json::value n2 = parse(R"({"metadata":{"name":"n2","labels":{"kubernetes.io/hostname":"n2"}}})");
  EXPECT_FALSE(best_volume(claim(), pinned, &n1, true));
  EXPECT_TRUE(best_volume(claim(), pinned, &n2, true));
}

TEST(PersistentVolumeBinder, LocalPathVolume) {
  json::value sc = parse(R"({"metadata":{"name":"local-path"},"provisioner":"podwarp.io/local-path",
      "parameters":{"path":"/data/storage/"},"reclaimPolicy":"Retain"})");
  json::value v = local_path_volume(claim(), sc, "n1");
  EXPECT_EQ(name_of(v), "pvc-claim-uid");
  EXPECT_EQ(get_string(v, {"spec", "hostPath", "path"}), "/data/storage/pvc-claim-uid_ns_data");
  EXPECT_EQ(get_string(v, {"spec", "hostPath", "type"}), "DirectoryOrCreate");
  EXPECT_EQ(get_string(v, {"spec", "capacity", "storage"}), "1Gi");
  EXPECT_EQ(get_string(v, {"spec", "storageClassName"}), "local-path");
  EXPECT_EQ(get_string(v, {"spec", "persistentVolumeReclaimPolicy"}), "Retain");
  EXPECT_EQ(get_string(v, {"spec", "claimRef", "uid"}), "claim-uid");
  EXPECT_EQ(get_string(v, {"metadata", "annotations", "pv.kubernetes.io/provisioned-by"}),
            "podwarp.io/local-path");
  EXPECT_EQ(*find_path(v, {"spec", "nodeAffinity"}),
            parse(R"({"required":{"nodeSelectorTerms":[{"matchExpressions":[
                {"key":"kubernetes.io/hostname","operator":"In","values":["n1"]}]}]}})"));
}

}  // namespace
}  // namespace podwarp::controllers
