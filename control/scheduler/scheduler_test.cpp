// The scheduler loop against a real apiserver and etcd (podwarp-control --components apiserver).
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "scheduler/test_util.h"
#include "testing/api_fixture.h"

namespace podwarp::scheduler {
namespace {

using namespace std::chrono_literals;
using scheduler::testing::node_json;
using scheduler::testing::parse;
using scheduler::testing::pod_json;

const api::Resource& res(std::string_view plural) { return *api::find_resource("", "v1", plural); }

class SchedulerLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> args{"--components", "apiserver"};
    auto f = podwarp::testing::ApiFixture::start(args);
    ASSERT_TRUE(f) << f.error();
    fx_ = std::move(*f);
  }

  void create_node(const std::string& name, const std::string& cpu) {
    json::value n = node_json(name, cpu);
    auto created = fx_->run(fx_->client().create(res("nodes"), "", n));
    ASSERT_TRUE(created) << created.error().to_string();
    json::value withstatus = *created;
    withstatus.as_object()["status"] = n.as_object()["status"];
    auto r = fx_->run(fx_->client().update_status(res("nodes"), "", withstatus));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  void create_pod(const json::value& p) {
    auto r = fx_->run(fx_->client().create(res("pods"), "default", p));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  json::value get_pod(const std::string& name) {
    auto r = fx_->run(fx_->client().get(res("pods"), "default", name));
    return r ? *r : json::value();
  }
  std::string node_of(const std::string& name) {
    return std::string(get_string(get_pod(name), {"spec", "nodeName"}));
  }
  // Messages of the events about a pod with the given reason.
  std::vector<std::string> events(const std::string& pod, const std::string& reason) {
    std::vector<std::string> out;
    auto r = fx_->run(fx_->client().list(res("events"), "default"));
    if (!r) return out;
    for (const auto& e : get_path_array(*r)) {
      if (get_string(e, {"involvedObject", "name"}) == pod && get_string(e, {"reason"}) == reason)
        out.emplace_back(get_string(e, {"message"}));
    }
    return out;
  }
  static const json::array& get_path_array(const json::value& list) {
    static const json::array kEmpty;
    const json::value* items = find_path(list, {"items"});
    return items && items->is_array() ? items->get_array() : kEmpty;
  }

  std::unique_ptr<podwarp::testing::ApiFixture> fx_;
};

TEST_F(SchedulerLoopTest, BindsPodsRecordsEventsAndReportsUnschedulable) {
  create_node("n1", "1");
  create_node("n2", "1");
  Scheduler s(fx_->io().get_executor(), fx_->client());
  s.start();
  create_pod(pod_json("a", "600m"));
  create_pod(pod_json("b", "600m"));
  create_pod(pod_json("other", "1m", "1Mi", R"({"schedulerName":"someone-else"})"));
  ASSERT_TRUE(fx_->eventually([&] { return !node_of("a").empty() && !node_of("b").empty(); }));
  // The assume cache spread them: the second pod saw the first one's request.
  EXPECT_NE(node_of("a"), node_of("b"));
  ASSERT_TRUE(fx_->eventually([&] { return !events("a", "Scheduled").empty(); }));
  EXPECT_EQ(events("a", "Scheduled")[0], "Successfully assigned default/a to " + node_of("a"));

  // Fits nowhere: condition and event with upstream's message.
  create_pod(pod_json("big", "600m"));
  const std::string msg =
      "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No "
      "preemption victims found for incoming pod.";
  ASSERT_TRUE(fx_->eventually([&] {
    json::value p = get_pod("big");
    const json::value* conds = find_path(p, {"status", "conditions"});
    if (conds == nullptr || !conds->is_array()) return false;
    for (const auto& c : conds->get_array()) {
      if (get_string(c, {"type"}) == "PodScheduled" && get_string(c, {"status"}) == "False" &&
          get_string(c, {"reason"}) == "Unschedulable" && get_string(c, {"message"}) == msg)
        return true;
    }
    return false;
  }));
  ASSERT_TRUE(fx_->eventually([&] { return !events("big", "FailedScheduling").empty(); }));
  EXPECT_EQ(events("big", "FailedScheduling")[0], msg);

  // A new node moves it out of the unschedulable set.
  create_node("n3", "2");
  ASSERT_TRUE(fx_->eventually([&] { return node_of("big") == "n3"; }));
  EXPECT_EQ(node_of("other"), "");
  EXPECT_GE(s.stats().scheduled, 3u);
  s.stop();
  fx_->run_for(100ms);
}

TEST_F(SchedulerLoopTest, BindsManyPodsWithBindsInFlight) {
  constexpr int kNodes = 50, kPods = 500;
  for (int i = 0; i < kNodes; ++i) create_node("n" + std::to_string(i), "4");
  for (int i = 0; i < kPods; ++i) create_pod(pod_json("p" + std::to_string(i), "100m"));
  SchedulerOptions opts;
  if (const char* b = std::getenv("PODWARP_SCHED_BINDS")) opts.max_binds_in_flight = std::atoi(b);
  Scheduler s(fx_->io().get_executor(), fx_->client(), opts);
  auto t0 = std::chrono::steady_clock::now();
  s.start();
  ASSERT_TRUE(fx_->eventually([&] { return s.stats().scheduled == kPods; }, 60s))
      << s.stats().scheduled;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "scheduled and bound %d pods on %d nodes in %.2fs (%.0f pods/s, informer sync "
      "included)\n",
      kPods, kNodes, secs, kPods / secs);
  EXPECT_EQ(s.stats().bind_errors, 0u);
  // 40 cpu of requests on 200 cpu: LeastAllocated spreads them, at most a few per node.
  std::map<std::string, int> per_node;
  auto list = fx_->run(fx_->client().list(res("pods"), "default"));
  ASSERT_TRUE(list);
  for (const auto& p : get_path_array(*list))
    ++per_node[std::string(get_string(p, {"spec", "nodeName"}))];
  EXPECT_EQ(per_node.count(""), 0u);
  for (const auto& [n, c] : per_node) EXPECT_LE(c, 20) << n;
  s.stop();
  fx_->run_for(100ms);
}

TEST_F(SchedulerLoopTest, PreemptsLowerPriorityPods) {
  create_node("n1", "1");
  Scheduler s(fx_->io().get_executor(), fx_->client());
  s.start();
  // Pods get their priority from a PriorityClass (the Priority admission).
  for (auto [name, value] : {std::pair{"low", 1}, std::pair{"high", 1000}}) {
    auto pc = fx_->run(fx_->client().create(
        *api::find_resource("scheduling.k8s.io", "v1", "priorityclasses"), "",
        json::object{{"apiVersion", "scheduling.k8s.io/v1"},
                     {"kind", "PriorityClass"},
                     {"metadata", json::object{{"name", name}}},
                     {"value", value}}));
    ASSERT_TRUE(pc) << pc.error().to_string();
  }
  create_pod(pod_json("low", "800m", "1Mi", R"({"priorityClassName":"low"})"));
  ASSERT_TRUE(fx_->eventually([&] { return node_of("low") == "n1"; }));
  create_pod(pod_json("high", "800m", "1Mi", R"({"priorityClassName":"high"})"));
  ASSERT_TRUE(fx_->eventually([&] {
    return get_string(get_pod("high"), {"status", "nominatedNodeName"}) == "n1";
  }));
  // The victim is being deleted (graceful deletion of a bound pod waits for its node).
  ASSERT_TRUE(fx_->eventually([&] {
    json::value low = get_pod("low");
    return low.is_null() || find_path(low, {"metadata", "deletionTimestamp"}) != nullptr;
  }));
  EXPECT_EQ(s.stats().preemptions, 1u);
  s.stop();
  fx_->run_for(100ms);
}

TEST_F(SchedulerLoopTest, ClaimVolumesWaitForTheClaimThenFollowTheirVolume) {
  create_node("n1", "1");
  create_node("n2", "1");
  Scheduler s(fx_->io().get_executor(), fx_->client());
  s.start();
  create_pod(
      pod_json("db", "100m", "1Mi",
               R"({"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]})"));
  const std::string missing =
      "0/2 nodes are available: persistentvolumeclaim \"data\" not found. preemption: 0/2 nodes "
      "are available: 2 Preemption is not helpful for scheduling.";
  ASSERT_TRUE(fx_->eventually([&] {
    auto ev = events("db", "FailedScheduling");
    return !ev.empty() && ev[0] == missing;
  }));
  auto pv = fx_->run(fx_->client().create(res("persistentvolumes"), "", parse(R"({
      "apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"pv-1"},
      "spec":{"capacity":{"storage":"1Gi"},"accessModes":["ReadWriteOnce"],
              "hostPath":{"path":"/var/lib/podwarp/pv-1","type":"DirectoryOrCreate"},
              "nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[
                {"key":"kubernetes.io/hostname","operator":"In","values":["n2"]}]}]}}}})")));
  ASSERT_TRUE(pv) << pv.error().to_string();
  auto claim = fx_->run(fx_->client().create(res("persistentvolumeclaims"), "default", parse(R"({
      "apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},
      "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},
              "volumeName":"pv-1"}})")));
  ASSERT_TRUE(claim) << claim.error().to_string();
  // The claim's event moves the pod out of the unschedulable set; its volume pins it to n2.
  ASSERT_TRUE(fx_->eventually([&] { return node_of("db") == "n2"; }));
  s.stop();
  fx_->run_for(100ms);
}

}  // namespace
}  // namespace podwarp::scheduler
