#include "pods/pod_worker.h"

#include "podwarp/asio_run.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "pods/fakes_for_test.h"
#include "pods/manifest_dir.h"

namespace podwarp::noded::pods {
namespace {

using namespace std::chrono_literals;
using testing::Behavior;
using testing::FakeImages;
using testing::FakeRuntime;
using testing::run_until;
namespace fs = std::filesystem;
using K = ContainerState::Kind;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-pods-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

// The io_context is never destroyed: Boost 1.81's io_uring backend must not be destroyed with
// operations pending (see notes/common.md).
struct Fixture {
  boost::asio::io_context& io = *new boost::asio::io_context;
  FakeRuntime& rt = *new FakeRuntime(io);
  FakeImages& images = *new FakeImages;
  TmpDir dir;
  PodStateStore& store = *new PodStateStore(dir.path + "/root");
  std::vector<std::string> terminated;

  WorkerEnv env() {
    WorkerEnv e;
    e.runtime = &rt;
    e.images = &images;
    e.store = &store;
    e.pod_log_dir = dir.path + "/logs";
    e.timings.backoff_base = 40ms;
    e.timings.backoff_max = 320ms;
    e.timings.backoff_reset = 10s;
    e.timings.second = 20ms;
    e.on_terminated = [this](const std::string& uid) { terminated.push_back(uid); };
    return e;
  }
  std::shared_ptr<PodWorker> make(const std::string& yaml, std::optional<PodRecord> adopt = std::nullopt) {
    auto def = parse_pod_manifest(yaml, {"", "/m/pod.yaml"});
    EXPECT_TRUE(def) << (def ? "" : def.error().text());
    auto w = PodWorker::create(io.get_executor(), env(), std::move(*def), std::move(adopt));
    w->start();
    return w;
  }
};

const ContainerStatus& app(const PodWorker& w, size_t i = 0) { return w.status().app.at(i); }

bool condition(const PodWorker& w, const std::string& type) {
  auto v = w.pod_json();
  for (const auto& c : v.at("status").at("conditions").as_array())
    if (c.at("type").as_string() == type) return c.at("status").as_string() == "True";
  return false;
}

const char* kInitPod = R"(
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  initContainers:
  - {name: init-a, image: busybox:1}
  - {name: init-b, image: busybox:1}
  containers:
  - {name: app, image: busybox:1}
)";

TEST(PodWorker, InitContainersRunInOrderBeforeApps) {
  Fixture f;
  f.rt.script = [](const std::string& n, int) {
    return n == "app" ? Behavior{} : Behavior{0, 10ms};
  };
  auto w = f.make(kInitPod);
  EXPECT_EQ(w->phase(), "Pending");
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  EXPECT_EQ(f.rt.starts, (std::vector<std::string>{"init-a", "init-b", "app"}));
  EXPECT_EQ(w->status().init[0].state.reason, "Completed");
  EXPECT_EQ(w->status().init[1].state.kind, K::kTerminated);
  EXPECT_TRUE(condition(*w, "Initialized"));
  EXPECT_TRUE(condition(*w, "Ready"));
  EXPECT_TRUE(condition(*w, "PodReadyToStartContainers"));
  EXPECT_EQ(w->pod_json().at("status").at("qosClass").as_string(), "BestEffort");
}

TEST(PodWorker, FailedInitWithRestartNeverFailsThePod) {
  Fixture f;
  f.rt.script = [](const std::string& n, int) { return n == "init-a" ? Behavior{3, 5ms} : Behavior{}; };
  std::string y = kInitPod;
  y.replace(y.find("spec:\n"), 6, "spec:\n  restartPolicy: Never\n");
  auto w = f.make(y);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed"; }));
  EXPECT_EQ(f.rt.starts, std::vector<std::string>{"init-a"});
  EXPECT_EQ(w->status().init[0].state.exit_code, 3);
  EXPECT_EQ(w->status().init[0].state.reason, "Error");
  EXPECT_EQ(app(*w).state.reason, "PodInitializing");
  EXPECT_FALSE(condition(*w, "Initialized"));
  ASSERT_TRUE(run_until(f.io, [&] { return !f.rt.released.empty(); }));  // terminal: sandbox released
}

TEST(PodWorker, FailedInitIsRetriedWithOnFailure) {
  Fixture f;
  f.rt.script = [](const std::string& n, int attempt) {
    if (n == "init-a") return Behavior{attempt < 2 ? 1 : 0, 5ms};
    return n == "app" ? Behavior{} : Behavior{0, 5ms};
  };
  std::string y = kInitPod;
  y.replace(y.find("spec:\n"), 6, "spec:\n  restartPolicy: OnFailure\n");
  auto w = f.make(y);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  EXPECT_EQ(w->status().init[0].restart_count, 2);
  EXPECT_EQ(f.rt.starts, (std::vector<std::string>{"init-a", "init-a", "init-a", "init-b", "app"}));
}

const char* kOnePod = R"(
apiVersion: v1
kind: Pod
metadata: {name: one, namespace: team}
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:1
    resources: {limits: {cpu: 100m, memory: 64Mi}}
)";

std::string one_pod(const char* policy) {
  std::string s = kOnePod;
  s.replace(s.find("%s"), 2, policy);
  return s;
}

TEST(PodWorker, OnFailureCompletedIsNotRestartedAndSucceeds) {
  Fixture f;
  f.rt.script = [](const std::string&, int) { return Behavior{0, 5ms}; };
  auto w = f.make(one_pod("OnFailure"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Succeeded"; }));
  podwarp::run_for(f.io, 100ms);
  EXPECT_EQ(f.rt.starts.size(), 1u);
  EXPECT_EQ(app(*w).state.reason, "Completed");
  EXPECT_EQ(app(*w).restart_count, 0);
  EXPECT_EQ(w->pod_json().at("status").at("qosClass").as_string(), "Guaranteed");
}

TEST(PodWorker, NeverWithErrorFails) {
  Fixture f;
  f.rt.script = [](const std::string&, int) { return Behavior{2, 5ms}; };
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed"; }));
  EXPECT_EQ(app(*w).state.exit_code, 2);
  EXPECT_EQ(f.rt.starts.size(), 1u);
}

// spec.activeDeadlineSeconds: once it has passed since startTime the pod is Failed with reason
// DeadlineExceeded, its running container is stopped (grace period) and nothing restarts it,
// though restartPolicy is Always; a crash-looping container waiting in its back-off is not
// started again either.
TEST(PodWorker, ActiveDeadlineFailsThePodAndStopsItsContainers) {
  Fixture f;
  f.rt.script = [](const std::string& name, int) {
    return name == "c" ? Behavior{} : Behavior{1, 5ms};  // "crash" fails at once, again and again
  };
  auto t0 = std::chrono::steady_clock::now();
  auto w = f.make(R"(
apiVersion: v1
kind: Pod
metadata: {name: limited, namespace: team}
spec:
  activeDeadlineSeconds: 1
  terminationGracePeriodSeconds: 2
  containers:
  - {name: c, image: busybox:1}
  - {name: crash, image: busybox:1}
)");
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).state.kind == K::kRunning; }));
  EXPECT_EQ(w->phase(), "Running");
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed" && w->status().terminal; }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1s);
  auto status = w->pod_json().at("status");
  EXPECT_EQ(status.at("reason"), "DeadlineExceeded");
  EXPECT_EQ(status.at("message"), "Pod was active on the node longer than the specified deadline");
  EXPECT_EQ(app(*w).state.kind, K::kTerminated);
  const auto crash_starts = std::count(f.rt.starts.begin(), f.rt.starts.end(), "crash");
  podwarp::run_for(f.io, 400ms);  // longer than the largest back-off (320 ms)
  EXPECT_EQ(std::count(f.rt.starts.begin(), f.rt.starts.end(), "c"), 1);
  EXPECT_EQ(std::count(f.rt.starts.begin(), f.rt.starts.end(), "crash"), crash_starts);
  EXPECT_EQ(w->phase(), "Failed");
}

// The deadline counts from the API pod's startTime (a pod adopted after a noded restart keeps
// it): one that already passed fails the pod before any container starts.
TEST(PodWorker, ActiveDeadlineCountsFromTheApiStartTime) {
  Fixture f;
  auto w = f.make(R"(
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: team}
spec:
  activeDeadlineSeconds: 30
  containers:
  - {name: c, image: busybox:1}
status:
  startTime: "2026-01-01T00:00:00Z"
)");
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed" && w->status().terminal; }, 5s));
  EXPECT_EQ(w->pod_json().at("status").at("reason"), "DeadlineExceeded");
  EXPECT_EQ(w->pod_json().at("status").at("startTime"), "2026-01-01T00:00:00Z");
  EXPECT_LE(f.rt.starts.size(), 1u);  // at most one start raced the deadline, and it was stopped
  EXPECT_NE(app(*w).state.kind, K::kRunning);
}

// pods/ephemeralcontainers: an added ephemeral container starts in the running pod, joins its
// target's pid namespace, runs once (no restart though it fails under restartPolicy
// OnFailure), is never ready, and has no part in the phase; one whose target is not running
// cannot run.
TEST(PodWorker, EphemeralContainersRunOnceBesideTheApp) {
  Fixture f;
  std::map<std::string, std::string> targets;  // container -> target id it was started with
  f.rt.start_hook = [&](const ContainerStartRequest& req) -> std::optional<std::string> {
    targets[req.container_name] = req.target_container_id;
    return std::nullopt;
  };
  f.rt.script = [](const std::string& name, int) {
    if (name == "c") return Behavior{};          // runs on
    if (name == "short") return Behavior{0, 5ms};  // completes, not restarted (OnFailure)
    return Behavior{1, 20ms};                       // debuggers fail
  };
  auto w = f.make(R"(
apiVersion: v1
kind: Pod
metadata: {name: dbg, namespace: team}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 2
  containers:
  - {name: c, image: busybox:1}
  - {name: short, image: busybox:1}
)");
  ASSERT_TRUE(run_until(f.io, [&] {
    return app(*w).state.kind == K::kRunning && app(*w, 1).state.kind == K::kTerminated;
  }));
  auto pod = w->pod_json();
  pod.at("spec").as_object()["ephemeralContainers"] = json::parse(
      R"([{"name":"dbg","image":"busybox:1","targetContainerName":"c","stdin":true,"tty":true},
          {"name":"loose","image":"busybox:1"},
          {"name":"late","image":"busybox:1","targetContainerName":"short"}])");
  w->add_ephemeral_containers(pod);
  w->add_ephemeral_containers(pod);  // seen again (a status update): nothing new
  auto& eph = w->status().ephemeral;
  ASSERT_TRUE(run_until(f.io, [&] {
    return eph.size() == 3 && eph[0].state.kind == K::kTerminated &&
           eph[1].state.kind == K::kTerminated && eph[2].state.kind == K::kTerminated;
  }));
  podwarp::run_for(f.io, 200ms);
  EXPECT_EQ(std::count(f.rt.starts.begin(), f.rt.starts.end(), "dbg"), 1);
  EXPECT_EQ(std::count(f.rt.starts.begin(), f.rt.starts.end(), "loose"), 1);
  EXPECT_EQ(targets["dbg"], app(*w).container_id);
  EXPECT_EQ(targets["loose"], "");
  EXPECT_EQ(eph[0].state.reason, "Error");
  EXPECT_EQ(eph[0].restart_count, 0);
  EXPECT_FALSE(eph[0].ready);
  EXPECT_FALSE(eph[0].started.has_value());
  EXPECT_EQ(eph[2].state.reason, "ContainerCannotRun");
  EXPECT_EQ(eph[2].state.message, "target container short is not running");
  EXPECT_TRUE(w->container_def("dbg")->tty);
  EXPECT_EQ(w->phase(), "Running");
  auto st = w->pod_json().at("status");
  ASSERT_EQ(st.at("ephemeralContainerStatuses").as_array().size(), 3u);
  ASSERT_EQ(w->pod_json().at("spec").at("ephemeralContainers").as_array().size(), 3u);
  EXPECT_EQ(st.at("ephemeralContainerStatuses").at(0).at("name").as_string(), "dbg");
  // Persisted with the pod, for adoption after a noded restart.
  auto rec = f.store.load_all();
  ASSERT_EQ(rec.size(), 1u);
  int ephemeral = 0;
  for (const auto& c : rec[0].containers) ephemeral += c.ephemeral ? 1 : 0;
  EXPECT_EQ(ephemeral, 3);
}

TEST(PodWorker, CrashLoopBackOffGrowsExponentially) {
  Fixture f;
  std::vector<std::chrono::steady_clock::time_point> starts;
  std::vector<std::string> backoffs;
  f.rt.script = [&](const std::string&, int) {
    starts.push_back(std::chrono::steady_clock::now());
    return Behavior{1, 0ms};
  };
  auto def = parse_pod_manifest(one_pod("Always"), {"", "/m/pod.yaml"});
  WorkerEnv env = f.env();
  env.on_event = [&](std::string_view type, std::string_view reason, const std::string& msg) {
    if (reason != "BackOff") return;  // Pulled/Created/Started/Killing are Normal events
    EXPECT_EQ(type, "Warning");
    backoffs.push_back(msg.substr(0, msg.find(" restarting")));
  };
  auto w = PodWorker::create(f.io.get_executor(), env, std::move(*def), std::nullopt);
  w->start();
  ASSERT_TRUE(run_until(f.io, [&] { return starts.size() >= 6; }));
  // base 40ms doubling, capped at 320ms (10s..5m scaled down).
  EXPECT_EQ(std::vector<std::string>(backoffs.begin(), backoffs.begin() + 5),
            (std::vector<std::string>{"Back-off 40ms", "Back-off 80ms", "Back-off 160ms",
                                      "Back-off 320ms", "Back-off 320ms"}));
  // Each restart waited at least its back-off (upper bounds would be flaky on a loaded machine).
  std::vector<std::chrono::milliseconds> want{40ms, 80ms, 160ms, 320ms, 320ms};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_GE(starts[i + 1] - starts[i], want[i]) << i;
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).state.reason == "CrashLoopBackOff"; }));
  EXPECT_GE(app(*w).restart_count, 5);
  ASSERT_TRUE(app(*w).last_state.has_value());
  EXPECT_EQ(app(*w).last_state->reason, "Error");
  EXPECT_EQ(app(*w).last_state->exit_code, 1);
  EXPECT_TRUE(app(*w).state.message.starts_with("back-off ")) << app(*w).state.message;
  EXPECT_EQ(w->phase(), "Running");  // Always: restarting containers keep the pod Running
}

TEST(PodWorker, GoDurationStrings) {
  EXPECT_EQ(go_duration(10s), "10s");
  EXPECT_EQ(go_duration(300s), "5m0s");
  EXPECT_EQ(go_duration(40ms), "40ms");
  EXPECT_EQ(go_duration(1500ms), "1.5s");
  EXPECT_EQ(go_duration(3600s), "1h0m0s");
}

TEST(PodWorker, StartFailureIsContainerCannotRun) {
  Fixture f;
  f.rt.script = [](const std::string&, int) { return Behavior{0, -1ms, true}; };
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed"; }));
  EXPECT_EQ(app(*w).state.reason, "ContainerCannotRun");
  EXPECT_EQ(app(*w).state.exit_code, 128);
  EXPECT_NE(app(*w).state.message.find("ENOENT"), std::string::npos);
}

TEST(PodWorker, ImagePullFailureBacksOff) {
  Fixture f;
  f.images.failures = 2;
  auto w = f.make(one_pod("Always"));
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).state.reason == "ErrImagePull"; }));
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).state.reason == "ImagePullBackOff"; }));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  EXPECT_EQ(f.images.pulls.size(), 3u);
}

TEST(PodWorker, OomKilledReason) {
  Fixture f;
  f.rt.script = [](const std::string&, int) { return Behavior{137, 5ms, false, false, true}; };
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Failed"; }));
  EXPECT_EQ(app(*w).state.reason, "OOMKilled");
}

const char* kProbePod = R"(
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: c
    image: busybox:1
    livenessProbe:
      exec: {command: [live]}
      periodSeconds: 1
      failureThreshold: 2
    readinessProbe:
      exec: {command: [ready]}
      periodSeconds: 1
)";

TEST(PodWorker, LivenessFailureRestartsTheContainer) {
  Fixture f;
  bool live = true;
  f.rt.exec_script = [&](const std::string&, const std::vector<std::string>& argv) {
    if (argv[0] == "live") return ExecResult{live ? 0 : 1, false, live ? "" : "dead"};
    return ExecResult{0, false, ""};
  };
  auto w = f.make(kProbePod);
  ASSERT_TRUE(run_until(f.io, [&] { return condition(*w, "Ready"); }));
  live = false;
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).restart_count == 1; }));
  live = true;
  ASSERT_TRUE(run_until(f.io, [&] { return f.rt.starts.size() == 2 && app(*w).state.kind == K::kRunning; }));
  ASSERT_FALSE(f.rt.signals.empty());
  EXPECT_EQ(f.rt.signals[0].second, SIGTERM);
  ASSERT_TRUE(app(*w).last_state);
  EXPECT_EQ(app(*w).last_state->exit_code, 128 + SIGTERM);
  EXPECT_EQ(app(*w).last_state->message, "liveness probe failed");
}

TEST(PodWorker, ReadinessFlipsReady) {
  Fixture f;
  bool ready = false;
  f.rt.exec_script = [&](const std::string&, const std::vector<std::string>& argv) {
    if (argv[0] == "ready") return ExecResult{ready ? 0 : 1, false, ""};
    return ExecResult{0, false, ""};
  };
  auto w = f.make(kProbePod);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  f.io.restart();
  podwarp::run_for(f.io, 60ms);
  EXPECT_FALSE(condition(*w, "Ready"));
  EXPECT_FALSE(condition(*w, "ContainersReady"));
  ready = true;
  ASSERT_TRUE(run_until(f.io, [&] { return condition(*w, "Ready"); }));
  EXPECT_TRUE(app(*w).ready);
  ready = false;
  ASSERT_TRUE(run_until(f.io, [&] { return !condition(*w, "Ready"); }));
  EXPECT_EQ(f.rt.starts.size(), 1u);  // readiness never restarts
}

TEST(PodWorker, GracefulStopEscalatesToSigkill) {
  Fixture f;
  f.rt.script = [](const std::string&, int) {
    Behavior b;
    b.ignore_sigterm = true;
    return b;
  };
  auto w = f.make(one_pod("Always"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  auto t0 = std::chrono::steady_clock::now();
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(f.rt.signals.size(), 2u);
  EXPECT_EQ(f.rt.signals[0].second, SIGTERM);
  EXPECT_EQ(f.rt.signals[1].second, SIGKILL);
  EXPECT_GE(took, 40ms);  // grace 2 "seconds" of 20ms
  EXPECT_EQ(f.rt.starts.size(), 1u);  // not restarted while stopping
  EXPECT_EQ(f.terminated, std::vector<std::string>{w->def().uid});
  EXPECT_EQ(f.rt.released, std::vector<std::string>{w->def().uid});
  EXPECT_FALSE(fs::exists(f.store.pod_dir(w->def().uid)));
}

TEST(PodWorker, StopWithSigtermOnlyIsQuick) {
  Fixture f;
  auto w = f.make(one_pod("Always"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
  ASSERT_EQ(f.rt.signals.size(), 1u);
  EXPECT_EQ(f.rt.signals[0].second, SIGTERM);
}

TEST(PodWorker, ContainerOutputReachesCriLogFile) {
  Fixture f;
  f.rt.script = [](const std::string&, int) { return Behavior{0, 20ms, false, false, false, "hello\nworld\n"}; };
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Succeeded"; }));
  auto p = w->log_path("c", false);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, fmt::format("{}/logs/team_one_{}/c/0.log", f.dir.path, w->def().uid));
  std::string got;
  ASSERT_TRUE(run_until(f.io, [&] {
    auto r = logs::read_log_file(*p, {});
    got = r ? *r : "";
    return got == "hello\nworld\n";
  })) << got;
}

TEST(PodWorker, RestartAdoptsRunningContainersWithoutRestart) {
  Fixture f;
  auto w = f.make(kInitPod);
  f.rt.script = [](const std::string& n, int) { return n == "app" ? Behavior{} : Behavior{0, 5ms}; };
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  auto rec = f.store.load(w->def().uid);
  ASSERT_TRUE(rec);
  auto* app_rec = rec->find("app", false);
  ASSERT_TRUE(app_rec);
  EXPECT_TRUE(app_rec->running);
  EXPECT_EQ(app_rec->handle.pid, 4242);
  // A new noded: same manifest, persisted record, the runtime finds the app still running.
  FakeRuntime& rt2 = *new FakeRuntime(f.io);
  rt2.adopt_results[app_rec->handle.id] = AdoptResult{AdoptState::kRunning, {}};
  WorkerEnv env = f.env();
  env.runtime = &rt2;
  auto def = parse_pod_manifest(kInitPod, {"", "/m/pod.yaml"});
  auto w2 = PodWorker::create(f.io.get_executor(), env, std::move(*def), rec);
  w2->start();
  ASSERT_TRUE(run_until(f.io, [&] { return w2->phase() == "Running"; }));
  EXPECT_TRUE(rt2.starts.empty());  // nothing restarted: init containers done, app adopted
  EXPECT_EQ(w2->status().app[0].state.kind, K::kRunning);
  EXPECT_EQ(w2->status().app[0].restart_count, 0);
  EXPECT_EQ(w2->status().init[1].state.reason, "Completed");
}

TEST(PodWorker, RestartReportsExitThatHappenedWhileDown) {
  Fixture f;
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  auto rec = f.store.load(w->def().uid);
  ASSERT_TRUE(rec);
  FakeRuntime& rt2 = *new FakeRuntime(f.io);
  ExitInfo e;
  e.exit_code = 7;
  e.finished_at = std::chrono::system_clock::now();
  rt2.adopt_results[rec->containers[0].handle.id] = AdoptResult{AdoptState::kExited, e};
  WorkerEnv env = f.env();
  env.runtime = &rt2;
  auto def = parse_pod_manifest(one_pod("Never"), {"", "/m/pod.yaml"});
  auto w2 = PodWorker::create(f.io.get_executor(), env, std::move(*def), rec);
  w2->start();
  ASSERT_TRUE(run_until(f.io, [&] { return w2->phase() == "Failed"; }));
  EXPECT_EQ(w2->status().app[0].state.exit_code, 7);
  EXPECT_EQ(w2->status().app[0].state.reason, "Error");
  EXPECT_TRUE(rt2.starts.empty());
}

TEST(PodWorker, UnknownExitAfterRestartIsContainerStatusUnknown) {
  Fixture f;
  auto w = f.make(one_pod("Never"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  auto rec = f.store.load(w->def().uid);
  FakeRuntime& rt2 = *new FakeRuntime(f.io);  // adopt: kGone by default
  WorkerEnv env = f.env();
  env.runtime = &rt2;
  auto def = parse_pod_manifest(one_pod("Never"), {"", "/m/pod.yaml"});
  auto w2 = PodWorker::create(f.io.get_executor(), env, std::move(*def), rec);
  w2->start();
  ASSERT_TRUE(run_until(f.io, [&] { return w2->phase() == "Failed"; }));
  EXPECT_EQ(w2->status().app[0].state.reason, "ContainerStatusUnknown");
  EXPECT_EQ(w2->status().app[0].state.exit_code, 137);
}

TEST(PodWorker, SandboxFailureIsRetried) {
  Fixture f;
  f.rt.sandbox_failures = 2;
  auto w = f.make(one_pod("Always"));
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  EXPECT_EQ(f.rt.sandboxes, 1);
}

TEST(PodWorker, ConfigMapAndEmptyDirVolumes) {
  Fixture f;
  WorkerEnv env = f.env();
  env.lookup = [](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
    if (kind == "ConfigMap" && ns == "default" && name == "cfg")
      return json::object{{"data", json::object{{"a.conf", "x=1"}}}};
    return std::nullopt;
  };
  auto def = parse_pod_manifest(R"(
kind: Pod
metadata: {name: vols}
spec:
  volumes:
  - {name: scratch, emptyDir: {}}
  - name: conf
    configMap: {name: cfg}
  containers:
  - name: c
    image: busybox:1
    volumeMounts:
    - {name: scratch, mountPath: /data}
    - {name: conf, mountPath: /etc/app, readOnly: true}
)", {"", "/m/v.yaml"});
  ASSERT_TRUE(def) << def.error().text();
  auto w = PodWorker::create(f.io.get_executor(), env, std::move(*def), std::nullopt);
  w->start();
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  std::string pd = f.store.pod_dir(w->def().uid);
  EXPECT_TRUE(fs::is_directory(pd + "/volumes/kubernetes.io~empty-dir/scratch"));
  std::ifstream cf(pd + "/volumes/kubernetes.io~configmap/conf/a.conf");
  std::string content((std::istreambuf_iterator<char>(cf)), {});
  EXPECT_EQ(content, "x=1");
}

TEST(PodWorker, MissingConfigMapKeepsPodPending) {
  Fixture f;
  auto w = f.make(R"(
kind: Pod
metadata: {name: vols}
spec:
  volumes: [{name: conf, configMap: {name: nope}}]
  containers: [{name: c, image: busybox:1}]
)");
  f.io.restart();
  podwarp::run_for(f.io, 100ms);
  EXPECT_EQ(w->phase(), "Pending");
  EXPECT_NE(app(*w).state.message.find("configmap \"nope\" not found"), std::string::npos);
  EXPECT_TRUE(f.rt.starts.empty());
}

const char* kHookPod = R"(
apiVersion: v1
kind: Pod
metadata: {name: hooks}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: busybox:1
    lifecycle:
      postStart: {exec: {command: [poststart]}}
      preStop: {exec: {command: [prestop]}}
)";

TEST(PodWorker, PreStopRunsBeforeSigterm) {
  Fixture f;
  auto w = f.make(kHookPod);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running" && f.rt.events.size() >= 2; }));
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
  EXPECT_EQ(f.rt.events, (std::vector<std::string>{"start:c", "exec:poststart", "exec:prestop",
                                                   "signal:c:15"}));
}

TEST(PodWorker, FailedPostStartHookKillsAndRestarts) {
  Fixture f;
  int calls = 0;
  f.rt.exec_script = [&](const std::string&, const std::vector<std::string>& argv) {
    if (argv[0] == "poststart") return ExecResult{++calls == 1 ? 1 : 0, false, "hook failed"};
    return ExecResult{0, false, ""};
  };
  auto w = f.make(kHookPod);
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).restart_count == 1 && app(*w).state.kind == K::kRunning; }));
  ASSERT_TRUE(app(*w).last_state);
  EXPECT_EQ(app(*w).last_state->message, "FailedPostStartHook");
  EXPECT_EQ(f.rt.starts.size(), 2u);
}

TEST(PodWorker, StartupProbeGatesLivenessAndKillsOnFailure) {
  Fixture f;
  bool started = false;
  int live_calls = 0;
  f.rt.exec_script = [&](const std::string&, const std::vector<std::string>& argv) {
    if (argv[0] == "started") return ExecResult{started ? 0 : 1, false, ""};
    if (argv[0] == "live") ++live_calls;
    return ExecResult{0, false, ""};
  };
  auto w = f.make(R"(
kind: Pod
metadata: {name: slow}
spec:
  containers:
  - name: c
    image: busybox:1
    startupProbe: {exec: {command: [started]}, periodSeconds: 1, failureThreshold: 4}
    livenessProbe: {exec: {command: [live]}, periodSeconds: 1}
)");
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).restart_count == 1; }));
  EXPECT_EQ(live_calls, 0);  // liveness waits for startup
  EXPECT_FALSE(app(*w).started.value_or(true));
  started = true;
  ASSERT_TRUE(run_until(f.io, [&] { return app(*w).started.value_or(false) && live_calls > 0; }));
  EXPECT_TRUE(condition(*w, "Ready"));
}

}  // namespace
}  // namespace podwarp::noded::pods
