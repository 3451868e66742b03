#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pods/fakes_for_test.h"
#include "pods/manifest_dir.h"
#include "pods/pod_manager.h"

namespace podwarp::noded::pods {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

StaticPodOptions opts() { return {"node1", "/etc/m/p.yaml"}; }

TEST(Manifest, StaticPodDefaults) {
  auto d = parse_pod_manifest("kind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n", opts());
  ASSERT_TRUE(d) << d.error().text();
  EXPECT_EQ(d->name, "web-node1");
  EXPECT_EQ(d->ns, "default");
  EXPECT_EQ(d->uid.size(), 32u);
  EXPECT_EQ(get_string(d->pod, {"metadata", "annotations", "kubernetes.io/config.hash"}), d->uid);
  EXPECT_EQ(get_string(d->pod, {"metadata", "annotations", "kubernetes.io/config.source"}), "file");
  EXPECT_EQ(get_string(d->pod, {"spec", "nodeName"}), "node1");
  EXPECT_EQ(d->containers[0].pull_policy, PullPolicy::kAlways);  // untagged
  // Same content, same uid; another file or node: another uid.
  auto d2 = parse_pod_manifest("kind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n", opts());
  EXPECT_EQ(d2->uid, d->uid);
  auto d3 = parse_pod_manifest("kind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: nginx}]\n", {"node2", "/etc/m/p.yaml"});
  EXPECT_NE(d3->uid, d->uid);
}

TEST(Manifest, PullPolicyDefaults) {
  EXPECT_EQ(default_pull_policy("busybox"), PullPolicy::kAlways);
  EXPECT_EQ(default_pull_policy("busybox:latest"), PullPolicy::kAlways);
  EXPECT_EQ(default_pull_policy("busybox:1.36"), PullPolicy::kIfNotPresent);
  EXPECT_EQ(default_pull_policy("localhost:5000/busybox"), PullPolicy::kAlways);
  EXPECT_EQ(default_pull_policy("busybox@sha256:abc"), PullPolicy::kIfNotPresent);
}

struct Bad {
  const char* text;
  const char* field;
  const char* name;  // identifiable name ("" = none)
};

TEST(Manifest, BadInputNamesTheFieldAndNeverCrashes) {
  std::vector<Bad> bad = {
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]\n  oops: [", "", ""},
      {"[1, 2, 3]", "", ""},
      {"", "", ""},
      {"kind: Deployment\nmetadata: {name: a}\n", "kind", ""},
      {"kind: Pod\nmetadata: {name: a}\nspec: {}\n", "spec.containers", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n", "spec.containers", "a-node1"},
      {"kind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c, image: x}]}\n", "metadata.name", "Bad_Name-node1"},
      {"kind: Pod\nmetadata: {}\nspec: {containers: [{name: c, image: x}]}\n", "metadata.name", ""},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: C!, image: x}]}\n", "spec.containers[0].name", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n", "spec.containers[0].image", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}, {name: c, image: y}]}\n", "spec.containers[1].name", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {restartPolicy: Sometimes, containers: [{name: c, image: x}]}\n", "spec.restartPolicy", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x, livenessProbe: {}}]}\n", "spec.containers[0].livenessProbe", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x, readinessProbe: {httpGet: {port: web}}}]}\n", "spec.containers[0].readinessProbe", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x, volumeMounts: [{name: v, mountPath: /x}]}]}\n", "spec.containers[0].volumeMounts[0].name", "a-node1"},
      {"kind: Pod\nmetadata: {name: a}\nspec: {containers: 5}\n", "spec.containers", "a-node1"},
  };
  for (const auto& b : bad) {
    auto d = parse_pod_manifest(b.text, opts());
    ASSERT_FALSE(d) << b.text;
    EXPECT_EQ(d.error().field, b.field) << b.text << " -> " << d.error().text();
    EXPECT_EQ(d.error().name, b.name) << b.text;
    EXPECT_EQ(d.error().file, "/etc/m/p.yaml");
    EXPECT_FALSE(d.error().message.empty());
  }
}

TEST(Manifest, NamedPortsResolve) {
  auto d = parse_pod_manifest(R"(
kind: Pod
metadata: {name: a}
spec:
  containers:
  - name: c
    image: x
    ports: [{name: web, containerPort: 8081}]
    readinessProbe: {httpGet: {port: web, path: healthz}}
)", opts());
  ASSERT_TRUE(d) << d.error().text();
  EXPECT_EQ(d->containers[0].readiness->handler.port, 8081);
  EXPECT_EQ(d->containers[0].readiness->handler.path, "/healthz");
  EXPECT_EQ(d->containers[0].readiness->period_seconds, 10);
  EXPECT_EQ(d->containers[0].readiness->failure_threshold, 3);
}

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-manifests-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

void write(const std::string& p, const std::string& s) {
  std::ofstream f(p + ".tmp");
  f << s;
  f.close();
  fs::rename(p + ".tmp", p);  // atomic, as editors and deploy tools do
}

const PodWorker* find(const PodManager& m, const std::string& name) { return m.find_pod("default", name); }

TEST(PodManager, ManifestAddUpdateRemoveAndBadFiles) {
  TmpDir d;
  fs::create_directories(d.path + "/m");
  auto& io = *new boost::asio::io_context;  // never destroyed (io_uring, see common.md)
  auto& rt = *new testing::FakeRuntime(io);
  auto& images = *new testing::FakeImages;
  PodManagerOptions o;
  o.manifest_dir = d.path + "/m";
  o.root_dir = d.path + "/root";
  o.pod_log_dir = d.path + "/logs";
  o.timings.second = 10ms;
  o.timings.backoff_base = 20ms;
  o.rescan_interval = 50ms;
  write(o.manifest_dir + "/cfg.yaml", "kind: ConfigMap\nmetadata: {name: cfg}\ndata: {k: v}\n");
  write(o.manifest_dir + "/a.yaml", "kind: Pod\nmetadata: {name: a}\nspec:\n  volumes: [{name: v, configMap: {name: cfg}}]\n  containers: [{name: c, image: x:1}]\n");
  auto m = make_pod_manager(io.get_executor(), o, rt, images);
  m->start();
  ASSERT_TRUE(testing::run_until(io, [&] { return find(*m, "a") && find(*m, "a")->phase() == "Running"; }));
  std::string uid1 = find(*m, "a")->def().uid;
  // Update: new content -> new uid; the old pod stops.
  write(o.manifest_dir + "/a.yaml", "kind: Pod\nmetadata: {name: a, labels: {v: '2'}}\nspec:\n  containers: [{name: c, image: x:2}]\n");
  ASSERT_TRUE(testing::run_until(io, [&] {
    auto* p = find(*m, "a");
    return p && p->def().uid != uid1 && p->phase() == "Running" && m->pod_list().at("items").as_array().size() == 1;
  }));
  EXPECT_EQ(rt.released.size(), 1u);
  EXPECT_EQ(rt.released[0], uid1);
  // Bad files: never a crash; an identifiable pod is Failed with a reason.
  write(o.manifest_dir + "/broken.yaml", "kind: Pod\nmetadata: {name: b\nspec: [");
  write(o.manifest_dir + "/invalid.yaml", "kind: Pod\nmetadata: {name: inv}\nspec: {containers: []}\n");
  write(o.manifest_dir + "/.hidden.yaml", "garbage: [");
  ASSERT_TRUE(testing::run_until(io, [&] { return find(*m, "inv") != nullptr; }));
  auto pj = find(*m, "inv")->pod_json();
  EXPECT_EQ(get_string(pj, {"status", "phase"}), "Failed");
  EXPECT_EQ(get_string(pj, {"status", "reason"}), "InvalidManifest");
  EXPECT_EQ(get_string(pj, {"status", "message"}), "spec.containers: Required value");
  EXPECT_EQ(m->pod_list().at("items").as_array().size(), 2u);
  // Remove: the pod stops and its state goes.
  fs::remove(o.manifest_dir + "/a.yaml");
  fs::remove(o.manifest_dir + "/invalid.yaml");
  ASSERT_TRUE(testing::run_until(io, [&] { return m->pod_list().at("items").as_array().empty(); }));
  EXPECT_EQ(rt.released.size(), 2u);
  EXPECT_TRUE(fs::is_empty(o.root_dir + "/pods"));
  bool done = false;
  m->stop_all([&] { done = true; });
  ASSERT_TRUE(testing::run_until(io, [&] { return done; }));
  (void)m.release();  // leaked with the io_context
}

TEST(PodManager, RestartAdoptsAndCleansOrphans) {
  TmpDir d;
  fs::create_directories(d.path + "/m");
  auto& io = *new boost::asio::io_context;
  auto& rt = *new testing::FakeRuntime(io);
  auto& images = *new testing::FakeImages;
  PodManagerOptions o;
  o.manifest_dir = d.path + "/m";
  o.root_dir = d.path + "/root";
  o.pod_log_dir = d.path + "/logs";
  o.rescan_interval = 50ms;
  write(o.manifest_dir + "/a.yaml", "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x:1}]}\n");
  write(o.manifest_dir + "/b.yaml", "kind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, image: x:1}]}\n");
  auto m = make_pod_manager(io.get_executor(), o, rt, images);
  m->start();
  ASSERT_TRUE(testing::run_until(io, [&] {
    return find(*m, "a") && find(*m, "a")->phase() == "Running" && find(*m, "b") && find(*m, "b")->phase() == "Running";
  }));
  std::string uid_b = find(*m, "b")->def().uid;
  (void)m.release();  // "kill -9": its io_context never runs again, nothing is stopped
  // While down: b's manifest is removed.
  fs::remove(o.manifest_dir + "/b.yaml");
  auto& io2 = *new boost::asio::io_context;
  auto& rt2 = *new testing::FakeRuntime(io2);
  for (auto& [id, c] : rt.containers) rt2.adopt_results[id] = AdoptResult{AdoptState::kRunning, {}};
  auto m2 = make_pod_manager(io2.get_executor(), o, rt2, images);
  m2->start();
  ASSERT_TRUE(testing::run_until(io2, [&] {
    return find(*m2, "a") && find(*m2, "a")->phase() == "Running" && !rt2.released.empty();
  }));
  EXPECT_TRUE(rt2.starts.empty());  // a adopted, not restarted
  EXPECT_EQ(rt2.released, std::vector<std::string>{uid_b});  // orphan b cleaned up
  ASSERT_FALSE(rt2.signals.empty());
  EXPECT_EQ(rt2.signals[0].second, SIGKILL);
  ASSERT_TRUE(testing::run_until(io2, [&] { return !fs::exists(o.root_dir + "/pods/" + uid_b); }));
  (void)m2.release();
}

}  // namespace
}  // namespace podwarp::noded::pods
