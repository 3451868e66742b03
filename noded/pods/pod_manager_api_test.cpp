// PodManager's API source (noded/agent drives it): pods under their real UIDs, graceful
// removal with a grace override and the terminated callback, adoption by UID across a
// "kill -9", orphan cleanup only once the API source has listed, and the service list that
// API and static pods' starts get.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "podwarp/asio_run.h"
#include "pods/fakes_for_test.h"
#include "pods/manifest_dir.h"
#include "pods/pod_manager.h"

namespace podwarp::noded::pods {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-pm-api-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

// A pod as the API gives it: real UID, no static-pod defaults.
PodDef api_pod(const std::string& name, const std::string& uid) {
  auto d = parse_pod_manifest(
      "kind: Pod\nmetadata: {name: " + name +
          ", namespace: default}\n"
          "spec: {terminationGracePeriodSeconds: 30, containers: [{name: c, image: x:1}]}\n",
      {"", ""});
  EXPECT_TRUE(d);
  d->uid = uid;
  d->pod.as_object()["metadata"].as_object()["uid"] = uid;
  return std::move(*d);
}

struct Terminated {
  std::vector<std::string> uids;
};

PodManagerOptions options(const TmpDir& d, Terminated& t, std::vector<std::string>& changed) {
  PodManagerOptions o;
  o.root_dir = d.path + "/root";
  o.pod_log_dir = d.path + "/logs";
  o.timings.second = 10ms;
  o.timings.backoff_base = 20ms;
  o.api_source = true;
  o.on_pod_terminated = [&t](const std::string&, const std::string&, const std::string& uid) {
    t.uids.push_back(uid);
  };
  o.on_status_changed = [&changed](const std::string& uid) { changed.push_back(uid); };
  return o;
}

TEST(PodManagerApi, RunsUnderRealUidAndStopsWithGraceOverride) {
  TmpDir d;
  auto& io = *new boost::asio::io_context;  // never destroyed (io_uring, see common.md)
  auto& rt = *new testing::FakeRuntime(io);
  auto& images = *new testing::FakeImages;
  rt.script = [](const std::string&, int) { return testing::Behavior{0, -1ms, false, true}; };
  Terminated t;
  std::vector<std::string> changed;
  auto m = make_pod_manager(io.get_executor(), options(d, t, changed), rt, images);
  m->start();
  m->api_synced({});
  ASSERT_TRUE(m->add_api_pod(api_pod("web", "uid-1")));
  EXPECT_FALSE(m->add_api_pod(api_pod("web", "uid-1")));  // already runs
  ASSERT_TRUE(testing::run_until(
      io, [&] { return m->worker("uid-1") && m->worker("uid-1")->phase() == "Running"; }));
  EXPECT_EQ(m->find_pod("default", "web")->def().uid, "uid-1");
  EXPECT_TRUE(std::find(changed.begin(), changed.end(), "uid-1") != changed.end());
  // The container ignores SIGTERM: with grace 1 (x 10ms) it is SIGKILLed quickly, not after 30.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(m->remove_api_pod("uid-1", 1));
  ASSERT_TRUE(testing::run_until(io, [&] { return !t.uids.empty(); }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(t.uids, std::vector<std::string>{"uid-1"});
  EXPECT_EQ(m->worker("uid-1"), nullptr);
  EXPECT_FALSE(m->remove_api_pod("uid-1", std::nullopt));  // nothing known any more
  EXPECT_FALSE(fs::exists(d.path + "/root/pods/uid-1"));
  bool saw_kill = false;
  for (auto& [name, sig] : rt.signals) saw_kill = saw_kill || sig == SIGKILL;
  EXPECT_TRUE(saw_kill);
  (void)m.release();
}

TEST(PodManagerApi, RestartAdoptsByUidAndCleansOnlyAfterSync) {
  TmpDir d;
  auto& io = *new boost::asio::io_context;
  auto& rt = *new testing::FakeRuntime(io);
  auto& images = *new testing::FakeImages;
  Terminated t;
  std::vector<std::string> changed;
  auto o = options(d, t, changed);
  auto m = make_pod_manager(io.get_executor(), o, rt, images);
  m->start();
  m->api_synced({});
  m->add_api_pod(api_pod("a", "uid-a"));
  m->add_api_pod(api_pod("b", "uid-b"));
  m->add_api_pod(api_pod("done", "uid-done"));
  ASSERT_TRUE(testing::run_until(io, [&] {
    for (auto* u : {"uid-a", "uid-b", "uid-done"})
      if (!m->worker(u) || m->worker(u)->phase() != "Running") return false;
    return true;
  }));
  (void)m.release();  // "kill -9"
  auto& io2 = *new boost::asio::io_context;
  auto& rt2 = *new testing::FakeRuntime(io2);
  for (auto& [id, c] : rt.containers) rt2.adopt_results[id] = AdoptResult{AdoptState::kRunning, {}};
  Terminated t2;
  auto o2 = options(d, t2, changed);
  auto m2 = make_pod_manager(io2.get_executor(), o2, rt2, images);
  m2->start();
  // Nothing is cleaned before the API source listed.
  for (int i = 0; i < 5; ++i) podwarp::run_for(io2, 10ms);
  EXPECT_TRUE(rt2.released.empty());
  EXPECT_TRUE(m2->has_record("uid-a") && m2->has_record("uid-b") && m2->has_record("uid-done"));
  // The API has a (running) and done (terminal: not run again, record kept); b is gone.
  ASSERT_TRUE(m2->add_api_pod(api_pod("a", "uid-a")));
  m2->api_synced({"uid-a", "uid-done"});
  ASSERT_TRUE(testing::run_until(io2, [&] {
    return m2->worker("uid-a") && m2->worker("uid-a")->phase() == "Running" &&
           !rt2.released.empty();
  }));
  EXPECT_TRUE(rt2.starts.empty());  // adopted, not restarted
  EXPECT_EQ(rt2.released, std::vector<std::string>{"uid-b"});
  EXPECT_TRUE(t2.uids.empty());  // orphans found by api_synced are not "terminated" API pods
  EXPECT_TRUE(m2->has_record("uid-done"));
  // Deleting the terminal pod later cleans its record and reports it terminated.
  EXPECT_TRUE(m2->remove_api_pod("uid-done", 0));
  ASSERT_TRUE(testing::run_until(io2, [&] { return !t2.uids.empty(); }));
  EXPECT_EQ(t2.uids, std::vector<std::string>{"uid-done"});
  EXPECT_FALSE(fs::exists(d.path + "/root/pods/uid-done"));
  (void)m2.release();
}

// The service list reaches container starts: an API pod's start sees the list's answer (its
// error while the Services are not read yet, which the runtime's env resolution turns into a
// CreateContainerConfigError); a static pod's sees none before they are read, and no error.
TEST(PodManagerApi, ServiceListForApiAndStaticPods) {
  TmpDir d;
  fs::create_directories(d.path + "/m");
  auto& io = *new boost::asio::io_context;
  auto& rt = *new testing::FakeRuntime(io);
  auto& images = *new testing::FakeImages;
  Terminated t;
  std::vector<std::string> changed;
  auto o = options(d, t, changed);
  o.manifest_dir = d.path + "/m";
  o.rescan_interval = 50ms;
  o.api_services = []()  // as the agent's, before its Services informer has synced
      -> std::expected<std::vector<std::shared_ptr<const json::value>>, std::string> {
    return std::unexpected(std::string("services have not yet been read"));
  };
  std::map<std::string, std::vector<std::string>> seen;  // pod name -> each start's view
  rt.start_hook = [&seen](const ContainerStartRequest& req) -> std::optional<std::string> {
    std::string view = "unset";
    if (req.services != nullptr && *req.services) {
      auto r = (*req.services)();
      view = r ? std::to_string(r->size()) + " services" : "error: " + r.error();
    }
    seen[req.pod_name].push_back(view);
    return std::nullopt;
  };
  {
    std::ofstream(o.manifest_dir + "/s.yaml")
        << "kind: Pod\nmetadata: {name: s}\nspec: {containers: [{name: c, image: x:1}]}\n";
  }
  auto m = make_pod_manager(io.get_executor(), o, rt, images);
  m->start();
  m->api_synced({});
  ASSERT_TRUE(m->add_api_pod(api_pod("web", "uid-1")));
  ASSERT_TRUE(testing::run_until(io, [&] { return seen.size() == 2; }));
  ASSERT_TRUE(seen.contains("web"));
  EXPECT_EQ(seen["web"].front(), "error: services have not yet been read");
  for (const auto& [name, views] : seen)
    if (name != "web") {
      EXPECT_EQ(views.front(), "0 services") << name;  // the static pod
    }
  (void)m.release();
}

}  // namespace
}  // namespace podwarp::noded::pods
