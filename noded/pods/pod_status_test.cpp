#include "pods/pod_status.h"

#include <gtest/gtest.h>

#include "pods/manifest_dir.h"

namespace podwarp::noded::pods {
namespace {

using K = ContainerState::Kind;

PodDef def_with(const std::string& policy, int inits, int apps) {
  std::string y = "kind: Pod\nmetadata: {name: p}\nspec:\n  restartPolicy: " + policy + "\n";
  if (inits > 0) {
    y += "  initContainers:\n";
    for (int i = 0; i < inits; ++i) y += "  - {name: i" + std::to_string(i) + ", image: x:1}\n";
  }
  y += "  containers:\n";
  for (int i = 0; i < apps; ++i) y += "  - {name: c" + std::to_string(i) + ", image: x:1}\n";
  auto d = parse_pod_manifest(y, {"", "f"});
  EXPECT_TRUE(d);
  return *d;
}

ContainerStatus cs(K k, int code = 0, bool last_term = false, int last_code = 0) {
  ContainerStatus s;
  s.known = true;
  s.state.kind = k;
  s.state.exit_code = code;
  if (last_term) {
    ContainerState t;
    t.kind = K::kTerminated;
    t.exit_code = last_code;
    s.last_state = t;
  }
  return s;
}
ContainerStatus unknown() { return ContainerStatus{}; }

struct Row {
  const char* policy;
  std::vector<ContainerStatus> init, app;
  bool terminal;
  const char* phase;
};

TEST(PodPhase, TableAsUpstreamGetPhase) {
  std::vector<Row> rows = {
      {"Always", {}, {cs(K::kWaiting)}, false, "Pending"},
      {"Always", {}, {cs(K::kRunning)}, false, "Running"},
      {"Always", {}, {cs(K::kRunning), cs(K::kWaiting)}, false, "Pending"},
      {"Always", {}, {cs(K::kRunning), unknown()}, false, "Pending"},
      {"Always", {}, {cs(K::kTerminated, 0)}, false, "Running"},
      {"Always", {}, {cs(K::kWaiting, 0, true, 1)}, false, "Running"},  // crash loop
      {"OnFailure", {}, {cs(K::kTerminated, 0)}, false, "Succeeded"},
      {"OnFailure", {}, {cs(K::kTerminated, 1)}, false, "Running"},
      {"Never", {}, {cs(K::kTerminated, 1), cs(K::kTerminated, 0)}, false, "Failed"},
      {"Never", {}, {cs(K::kTerminated, 0), cs(K::kTerminated, 0)}, false, "Succeeded"},
      {"Never", {}, {cs(K::kTerminated, 0), cs(K::kRunning)}, false, "Running"},
      {"Always", {}, {cs(K::kTerminated, 0)}, true, "Succeeded"},
      {"Always", {}, {cs(K::kTerminated, 2)}, true, "Failed"},
      {"Always", {cs(K::kRunning)}, {cs(K::kWaiting)}, false, "Pending"},
      {"Always", {cs(K::kTerminated, 0)}, {cs(K::kRunning)}, false, "Running"},
      {"Never", {cs(K::kTerminated, 1)}, {cs(K::kWaiting)}, false, "Failed"},
      {"OnFailure", {cs(K::kWaiting, 0, true, 1)}, {cs(K::kWaiting)}, false, "Pending"},
      {"Always", {unknown()}, {unknown()}, false, "Pending"},
  };
  int i = 0;
  for (const auto& r : rows) {
    PodDef d = def_with(r.policy, static_cast<int>(r.init.size()), static_cast<int>(r.app.size()));
    PodStatus s;
    s.init = r.init;
    s.app = r.app;
    s.terminal = r.terminal;
    EXPECT_EQ(compute_phase(d, s), r.phase) << "row " << i;
    ++i;
  }
}

TEST(PodPhase, FailedReasonWins) {
  PodDef d = def_with("Always", 0, 1);
  PodStatus s;
  s.app = {cs(K::kRunning)};
  s.failed_reason = "InvalidManifest";
  EXPECT_EQ(compute_phase(d, s), "Failed");
}

TEST(PodConditions, ReadyAndInitialized) {
  PodDef d = def_with("Always", 1, 2);
  PodStatus s;
  s.sandbox_ready = true;
  s.init = {cs(K::kRunning)};
  s.init[0].name = "i0";
  s.app = {cs(K::kWaiting), cs(K::kWaiting)};
  s.app[0].name = "c0";
  s.app[1].name = "c1";
  auto conds = compute_conditions(d, s, compute_phase(d, s));
  ASSERT_EQ(conds.size(), 5u);
  EXPECT_EQ(conds[0].type, "PodReadyToStartContainers");
  EXPECT_TRUE(conds[0].status);
  EXPECT_EQ(conds[1].type, "Initialized");
  EXPECT_FALSE(conds[1].status);
  EXPECT_EQ(conds[1].reason, "ContainersNotInitialized");
  EXPECT_EQ(conds[1].message, "containers with incomplete status: [i0]");
  s.init[0] = cs(K::kTerminated, 0);
  s.app[0] = cs(K::kRunning);
  s.app[0].name = "c0";
  s.app[0].ready = true;
  s.app[1] = cs(K::kRunning);
  s.app[1].name = "c1";
  conds = compute_conditions(d, s, compute_phase(d, s));
  EXPECT_TRUE(conds[1].status);
  EXPECT_EQ(conds[2].type, "Ready");
  EXPECT_FALSE(conds[2].status);
  EXPECT_EQ(conds[2].reason, "ContainersNotReady");
  EXPECT_EQ(conds[2].message, "containers with unready status: [c1]");
  EXPECT_EQ(conds[3].type, "ContainersReady");
  s.app[1].ready = true;
  conds = compute_conditions(d, s, compute_phase(d, s));
  EXPECT_TRUE(conds[2].status);
  EXPECT_TRUE(conds[3].status);
  EXPECT_EQ(conds[4].type, "PodScheduled");
}

TEST(PodStatusJson, RendersContainerStates) {
  PodDef d = def_with("Always", 0, 1);
  PodStatus s;
  s.app = {cs(K::kWaiting, 0, true, 1)};
  s.app[0].name = "c0";
  s.app[0].state.reason = "CrashLoopBackOff";
  s.app[0].restart_count = 3;
  auto j = render_pod_status(d, s);
  auto& c = j.at("containerStatuses").as_array()[0];
  EXPECT_EQ(c.at("state").at("waiting").at("reason").as_string(), "CrashLoopBackOff");
  EXPECT_EQ(c.at("lastState").at("terminated").at("exitCode").as_int64(), 1);
  EXPECT_EQ(c.at("restartCount").as_int64(), 3);
  EXPECT_EQ(j.at("phase").as_string(), "Running");
}

}  // namespace
}  // namespace podwarp::noded::pods
