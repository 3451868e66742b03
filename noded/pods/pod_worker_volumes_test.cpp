// PodWorker: the volume phase (tokens, FailedMount, refresh), env config errors and
// imagePullSecrets, with the fakes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "podwarp/asio_run.h"
#include "pods/fakes_for_test.h"
#include "pods/manifest_dir.h"
#include "pods/pod_worker.h"

namespace podwarp::noded::pods {
namespace {

using namespace std::chrono_literals;
using testing::FakeImages;
using testing::FakeRuntime;
using testing::run_until;
namespace fs = std::filesystem;
namespace asio = boost::asio;
using K = ContainerState::Kind;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-podvol-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

struct Event {
  std::string type, reason, message;
};

// Never destroyed: see common.md (io_uring backend).
struct Fixture {
  asio::io_context& io = *new asio::io_context;
  FakeRuntime& rt = *new FakeRuntime(io);
  FakeImages& images = *new FakeImages;
  TmpDir dir;
  PodStateStore& store = *new PodStateStore(dir.path + "/root");
  std::vector<Event> events;
  std::map<std::string, json::value> objects;  // "Kind/name" in namespace team (PVs: cluster)

  WorkerEnv env() {
    WorkerEnv e;
    e.runtime = &rt;
    e.images = &images;
    e.store = &store;
    e.pod_log_dir = dir.path + "/logs";
    e.timings.backoff_base = 40ms;
    e.timings.backoff_max = 160ms;
    e.timings.second = 20ms;
    e.timings.volume_resync = 30ms;
    e.host_ip = "192.0.2.10";
    e.node_allocatable = {{"cpu", "2"}, {"memory", "4Gi"}};
    e.lookup = [this](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
      if (ns != "team" && !(ns.empty() && kind == "PersistentVolume")) return std::nullopt;
      auto it = objects.find(std::string(kind) + "/" + std::string(name));
      if (it == objects.end()) return std::nullopt;
      return it->second;
    };
    e.on_event = [this](std::string_view t, std::string_view r, const std::string& m) {
      events.push_back({std::string(t), std::string(r), m});
    };
    return e;
  }
  std::shared_ptr<PodWorker> make(const std::string& yaml, WorkerEnv e) {
    auto def = parse_pod_manifest(yaml, {"", "/m/pod.yaml"});
    EXPECT_TRUE(def) << (def ? "" : def.error().text());
    auto w = PodWorker::create(io.get_executor(), std::move(e), std::move(*def), std::nullopt);
    w->start();
    return w;
  }
  int count(std::string_view reason) const {
    int n = 0;
    for (const auto& e : events) n += e.reason == reason;
    return n;
  }
  const Event* find(std::string_view reason) const {
    for (const auto& e : events)
      if (e.reason == reason) return &e;
    return nullptr;
  }
};

const char* kTokenPod = R"(
kind: Pod
metadata: {name: api, namespace: team}
spec:
  serviceAccountName: builder
  volumes:
  - name: kube-api-access-xyz
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3607, audience: vault}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
      - downwardAPI: {items: [{path: namespace, fieldRef: {fieldPath: metadata.namespace}}]}
  containers:
  - name: c
    image: busybox:1
    volumeMounts:
    - {name: kube-api-access-xyz, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}
)";

TEST(TokenRefresh, EightyPercentOfTtlAtMost24Hours) {
  WallTime t0 = std::chrono::system_clock::now();
  EXPECT_EQ(token_refresh_at(t0, t0 + 3600s), t0 + 2880s);
  EXPECT_EQ(token_refresh_at(t0, t0 + 600s), t0 + 480s);
  EXPECT_EQ(token_refresh_at(t0, t0 + 48h), t0 + 24h);  // extended tokens: the 24 h bound
  EXPECT_EQ(token_refresh_at(t0, t0 + 24h * 365), t0 + 24h);
}

TEST(PodWorkerVolumes, TokenFailureIsFailedMountThenTheVolumeIsWritten) {
  Fixture f;
  f.objects["ConfigMap/kube-root-ca.crt"] = json::object{{"data", json::object{{"ca.crt", "PEM"}}}};
  int calls = 0;
  std::vector<ServiceAccountTokenRequest> reqs;
  WorkerEnv e = f.env();
  e.tokens = [&](ServiceAccountTokenRequest r) -> asio::awaitable<std::expected<ServiceAccountToken, std::string>> {
    reqs.push_back(r);
    if (++calls <= 2) co_return std::unexpected(std::string("serviceaccounts \"builder\" not found"));
    co_return ServiceAccountToken{"tok-" + std::to_string(calls), std::chrono::system_clock::now() + 3607s};
  };
  auto w = f.make(kTokenPod, e);
  ASSERT_TRUE(run_until(f.io, [&] { return f.count("FailedMount") >= 1; }));
  EXPECT_EQ(w->phase(), "Pending");
  EXPECT_EQ(w->status().app[0].state.kind, K::kWaiting);
  EXPECT_EQ(w->status().app[0].state.reason, "ContainerCreating");
  EXPECT_EQ(f.find("FailedMount")->type, "Warning");
  EXPECT_EQ(f.find("FailedMount")->message,
            "MountVolume.SetUp failed for volume \"kube-api-access-xyz\" : failed to fetch token: "
            "serviceaccounts \"builder\" not found");
  EXPECT_TRUE(f.rt.starts.empty());
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].ns, "team");
  EXPECT_EQ(reqs[0].service_account, "builder");
  EXPECT_EQ(reqs[0].audience, "vault");
  EXPECT_EQ(reqs[0].expiration_seconds, 3607);
  EXPECT_EQ(reqs[0].pod_name, "api");
  EXPECT_EQ(reqs[0].pod_uid, w->def().uid);
  std::string d = f.store.pod_dir(w->def().uid) + "/volumes/kubernetes.io~projected/kube-api-access-xyz";
  EXPECT_EQ(slurp(d + "/token"), "tok-3");
  EXPECT_EQ(slurp(d + "/ca.crt"), "PEM");
  EXPECT_EQ(slurp(d + "/namespace"), "team");
  EXPECT_EQ(calls, 3);  // a valid token is not fetched again on each resync
  f.io.restart();
  podwarp::run_for(f.io, 150ms);
  EXPECT_EQ(calls, 3);
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

TEST(PodWorkerVolumes, ShortLivedTokenAndConfigMapAreRefreshed) {
  Fixture f;
  f.objects["ConfigMap/kube-root-ca.crt"] = json::object{{"data", json::object{{"ca.crt", "PEM-1"}}}};
  int calls = 0;
  std::vector<std::chrono::steady_clock::time_point> fetched;
  WorkerEnv e = f.env();
  e.tokens = [&](ServiceAccountTokenRequest) -> asio::awaitable<std::expected<ServiceAccountToken, std::string>> {
    ++calls;
    fetched.push_back(std::chrono::steady_clock::now());
    // TTL 100 ms: refreshed after 80 ms, i.e. on the 3rd resync (30 ms) after it.
    co_return ServiceAccountToken{"tok-" + std::to_string(calls), std::chrono::system_clock::now() + 100ms};
  };
  auto w = f.make(kTokenPod, e);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  std::string d = f.store.pod_dir(w->def().uid) + "/volumes/kubernetes.io~projected/kube-api-access-xyz";
  EXPECT_EQ(slurp(d + "/token"), "tok-1");
  ASSERT_TRUE(run_until(f.io, [&] { return calls >= 2; }));
  EXPECT_GE(fetched[1] - fetched[0], 79ms);  // not before 80% of the 100 ms TTL
  ASSERT_TRUE(run_until(f.io, [&] { return slurp(d + "/token") == "tok-" + std::to_string(calls); }));
  EXPECT_NE(slurp(d + "/token"), "tok-1");
  f.objects["ConfigMap/kube-root-ca.crt"] = json::object{{"data", json::object{{"ca.crt", "PEM-2"}}}};
  ASSERT_TRUE(run_until(f.io, [&] { return slurp(d + "/ca.crt") == "PEM-2"; }, 2s));
  // Only the current publication remains.
  int ts_dirs = 0;
  for (auto& ent : fs::directory_iterator(d))
    if (ent.path().filename().string().starts_with("..2")) ++ts_dirs;
  EXPECT_EQ(ts_dirs, 1);
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
  int after = calls;
  f.io.restart();
  podwarp::run_for(f.io, 100ms);
  EXPECT_EQ(calls, after);  // the refresh loop ended with the pod
}

TEST(PodWorkerVolumes, SubPathMountPointsIntoTheCurrentPublication) {
  Fixture f;
  f.objects["ConfigMap/app"] = json::object{{"data", json::object{{"app.conf", "v1"}}}};
  auto w = f.make(R"(
kind: Pod
metadata: {name: sp, namespace: team}
spec:
  volumes: [{name: conf, configMap: {name: app}}]
  containers:
  - name: c
    image: busybox:1
    volumeMounts:
    - {name: conf, mountPath: /etc/app.conf, subPath: app.conf}
    - {name: conf, mountPath: /etc/app}
)", f.env());
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  std::string d = f.store.pod_dir(w->def().uid) + "/volumes/kubernetes.io~configmap/conf";
  std::map<std::string, std::string> vols{{"conf", d}};
  auto m = container_mounts(w->def().containers[0], vols);
  ASSERT_EQ(m.size(), 2u);
  // The subPath source is the file inside the timestamped dir (fixed at mount time), the
  // whole-volume mount is the volume dir (follows ..data swaps).
  EXPECT_TRUE(m[0].host_path.starts_with(d + "/..2")) << m[0].host_path;
  EXPECT_EQ(slurp(m[0].host_path), "v1");
  EXPECT_EQ(m[1].host_path, d);
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

TEST(PodWorkerVolumes, CreateContainerConfigErrorWaitsAndRetries) {
  Fixture f;
  int attempts = 0;
  const ContainerStartRequest* seen = nullptr;
  std::vector<std::string> host_ips;
  std::map<std::string, std::string> alloc;
  f.rt.start_hook = [&](const ContainerStartRequest& r) -> std::optional<std::string> {
    seen = &r;
    host_ips = r.host_ips;
    alloc = r.node_allocatable;
    EXPECT_NE(r.lookup, nullptr);
    if (++attempts <= 2)
      return std::string(kCreateContainerConfigError) + "configmap \"app\" not found";
    return std::nullopt;
  };
  auto w = f.make(R"(
kind: Pod
metadata: {name: cfg, namespace: team}
spec:
  containers: [{name: c, image: busybox:1}]
)", f.env());
  ASSERT_TRUE(run_until(f.io, [&] { return attempts >= 1 && w->status().app[0].state.reason == "CreateContainerConfigError"; }));
  const auto& cs = w->status().app[0];
  EXPECT_EQ(cs.state.kind, K::kWaiting);
  EXPECT_EQ(cs.state.message, "configmap \"app\" not found");
  EXPECT_EQ(cs.restart_count, 0);
  ASSERT_NE(f.find("Failed"), nullptr);
  EXPECT_EQ(f.find("Failed")->message, "Error: configmap \"app\" not found");
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(w->status().app[0].restart_count, 0);
  EXPECT_EQ(host_ips, std::vector<std::string>{"192.0.2.10"});
  EXPECT_EQ(alloc.at("memory"), "4Gi");
  (void)seen;
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

class RecordingImages : public FakeImages {
 public:
  std::vector<std::size_t> secrets_seen;
  Awaitable<std::expected<ImageInfo, std::string>> ensure_image_with_secrets(const ImagePullRequest& req) override {
    secrets_seen.push_back(req.pull_secrets.size());
    co_return co_await ensure_image(req.image, req.policy);
  }
};

TEST(PodWorkerVolumes, ImagePullSecretsReachTheImageService) {
  Fixture f;
  auto& imgs = *new RecordingImages;
  f.objects["Secret/regcred"] = json::object{{"type", "kubernetes.io/dockerconfigjson"},
                                             {"data", json::object{{".dockerconfigjson", "e30="}}}};
  WorkerEnv e = f.env();
  e.images = &imgs;
  auto w = f.make(R"(
kind: Pod
metadata: {name: priv, namespace: team}
spec:
  imagePullSecrets: [{name: regcred}, {name: gone}]
  containers: [{name: c, image: 127.0.0.1:5000/private:1}]
)", e);
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  ASSERT_EQ(imgs.secrets_seen.size(), 1u);
  EXPECT_EQ(imgs.secrets_seen[0], 1u);
  ASSERT_NE(f.find("FailedToRetrieveImagePullSecret"), nullptr);
  EXPECT_EQ(f.find("FailedToRetrieveImagePullSecret")->message,
            "Unable to retrieve some image pull secrets (gone); attempting to pull the image may not succeed.");
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

// A claim in namespace team; volume "" and phase Pending: not bound yet.
json::value claim(std::string_view volume, std::string_view phase) {
  return json::object{
      {"metadata", json::object{{"name", "data"}, {"namespace", "team"}, {"uid", "c-1"}}},
      {"spec", json::object{{"volumeName", std::string(volume)}}},
      {"status", json::object{{"phase", std::string(phase)}}}};
}

json::value volume_with(std::string_view source, json::value src) {
  return json::object{
      {"spec",
       json::object{
           {std::string(source), std::move(src)},
           {"accessModes", json::array{"ReadWriteOnce"}},
           {"claimRef", json::object{{"namespace", "team"}, {"name", "data"}, {"uid", "c-1"}}}}}};
}

const char* kClaimPod = R"(
kind: Pod
metadata: {name: db, namespace: team}
spec:
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
  containers:
  - name: c
    image: busybox:1
    volumeMounts: [{name: data, mountPath: /var/lib/db}]
)";

TEST(PodWorkerVolumes, UnboundClaimWaitsThenItsHostPathVolumeIsMounted) {
  Fixture f;
  std::string host = f.dir.path + "/local-path/pvc-1";
  f.objects["PersistentVolumeClaim/data"] = claim("", "Pending");
  std::vector<MountRequest> mounts;
  f.rt.start_hook = [&](const ContainerStartRequest& r) -> std::optional<std::string> {
    mounts = r.mounts;
    return std::nullopt;
  };
  auto w = f.make(kClaimPod, f.env());
  ASSERT_TRUE(run_until(f.io, [&] { return f.count("FailedMount") >= 2; }));
  EXPECT_EQ(f.find("FailedMount")->message,
            "MountVolume.SetUp failed for volume \"data\" : waiting for PersistentVolumeClaim data "
            "to be bound");
  EXPECT_EQ(w->status().app[0].state.reason, "ContainerCreating");
  EXPECT_EQ(w->status().app[0].state.message, f.find("FailedMount")->message);
  EXPECT_TRUE(f.rt.starts.empty());
  f.objects["PersistentVolume/pvc-1"] =
      volume_with("hostPath", json::object{{"path", host}, {"type", "DirectoryOrCreate"}});
  f.objects["PersistentVolumeClaim/data"] = claim("pvc-1", "Bound");
  ASSERT_TRUE(run_until(f.io, [&] { return w->phase() == "Running"; }));
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].host_path, host);
  EXPECT_EQ(mounts[0].container_path, "/var/lib/db");
  EXPECT_FALSE(mounts[0].read_only);
  EXPECT_EQ(fs::status(host).permissions(), fs::perms::all);  // 0777: non-root containers write
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
  EXPECT_TRUE(fs::is_directory(host));  // the claim's data outlives the pod
}

// A claim wait sleeps (here: 500 ms, the cap) until claims_changed() wakes it: the volume
// step looks again at once.
TEST(PodWorkerVolumes, ClaimsChangedEndsAClaimWait) {
  Fixture f;
  f.objects["PersistentVolumeClaim/data"] = claim("", "Pending");
  auto env = f.env();
  env.timings.backoff_base = std::chrono::seconds(60);
  auto w = f.make(kClaimPod, env);
  ASSERT_TRUE(run_until(f.io, [&] { return f.count("FailedMount") >= 1; }));
  const auto first = f.count("FailedMount");
  w->claims_changed();
  const auto woken = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(f.io, [&] { return f.count("FailedMount") > first; }));
  EXPECT_LT(std::chrono::steady_clock::now() - woken, std::chrono::milliseconds(400))
      << "looked again at its next poll, not when woken";
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

TEST(PodWorkerVolumes, MissingClaimThenUnsupportedSourceKeepThePodWaiting) {
  Fixture f;
  auto w = f.make(kClaimPod, f.env());
  ASSERT_TRUE(run_until(f.io, [&] { return f.count("FailedMount") >= 1; }));
  EXPECT_EQ(
      w->status().app[0].state.message,
      "MountVolume.SetUp failed for volume \"data\" : persistentvolumeclaim \"data\" not found");
  f.objects["PersistentVolume/pv-nfs"] =
      volume_with("nfs", json::object{{"server", "nfs.example"}, {"path", "/exports"}});
  f.objects["PersistentVolumeClaim/data"] = claim("pv-nfs", "Bound");
  ASSERT_TRUE(run_until(f.io, [&] {
    return w->status().app[0].state.message.ends_with(
        "unsupported PersistentVolume source for pv-nfs: nfs");
  }));
  EXPECT_EQ(w->phase(), "Pending");
  EXPECT_TRUE(f.rt.starts.empty());
  w->stop();
  ASSERT_TRUE(run_until(f.io, [&] { return w->terminated(); }));
}

}  // namespace
}  // namespace podwarp::noded::pods
