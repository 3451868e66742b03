// Root test of the pod spec features end to end, with the real runtime and a real registry:
//  * /usr/bin/docker-registry on a free loopback port, filled by scripts/make-test-images.sh,
//    then restarted with htpasswd (bcrypt) auth: a pull needs the pod's imagePullSecrets
//    (kubernetes.io/dockerconfigjson), resolved by NodeImages through the keyring;
//  * a PodWorker over NodeRuntime runs a busybox pod with a projected volume (token from a
//    fake TokenSource, kube-root-ca.crt, downwardAPI with a mode) and env from a ConfigMap
//    (configMapKeyRef, envFrom with prefix, fieldRef, resourceFieldRef); the container prints
//    what it sees, and the test reads its CRI log.
// Everything lives under /tmp/podwarp-podspec-<pid> and the cgroup podwarp-podspec-<pid>,
// removed at the end; the registry is killed by pid (and by PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "podwarp/asio_run.h"
#include "adapters/node_images.h"
#include "adapters/node_runtime.h"
#include "logs/cri_log.h"
#include "pods/manifest_dir.h"
#include "pods/pod_worker.h"
#include "images/test_support.h"

namespace podwarp::noded::adapters {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace podwarp::images::testing;
using namespace std::chrono_literals;

std::string source_dir() {
  if (const char* e = std::getenv("PODWARP_SOURCE_DIR")) return e;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "scripts/make-test-images.sh")) return p.string();
  return "/work/main";
}

std::string b64(std::string_view s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : s) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(t[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(t[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

struct Suite {
  fs::path dir;
  pid_t registry = -1;
  int port = 0;
  std::string host, error;
};
Suite* suite = nullptr;

pid_t start_registry(const fs::path& cfg, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execl("/usr/bin/docker-registry", "docker-registry", "serve", cfg.c_str(), nullptr);
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!port_open(suite->port)) {
    if (std::chrono::steady_clock::now() > deadline || ::waitpid(pid, nullptr, WNOHANG) != 0) {
      suite->error = "docker-registry did not start: " + read_all(log);
      return -1;
    }
    std::this_thread::sleep_for(50ms);
  }
  return pid;
}

void stop_registry() {
  if (suite->registry <= 0) return;
  ::kill(suite->registry, SIGTERM);
  int status;
  for (int i = 0; i < 100 && ::waitpid(suite->registry, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(50ms);
  ::kill(suite->registry, SIGKILL);
  ::waitpid(suite->registry, &status, 0);
  suite->registry = -1;
}

class PodFeaturesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite;
    if (::geteuid() != 0) return;
    suite->dir = fmt::format("/tmp/podwarp-podspec-{}", ::getpid());
    fs::create_directories(suite->dir / "storage");
    suite->port = free_port();
    suite->host = fmt::format("127.0.0.1:{}", suite->port);
    std::string base = "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                       "storage:\n  filesystem:\n    rootdirectory: " +
                       (suite->dir / "storage").string() + "\nhttp:\n  addr: " + suite->host + "\n";
    std::ofstream(suite->dir / "open.yml") << base;
    // 1. fill the registry without auth
    suite->registry = start_registry(suite->dir / "open.yml", suite->dir / "registry.log");
    if (suite->registry < 0) return;
    fs::create_directories(suite->dir / "images");
    int rc = run_command({"/bin/bash", source_dir() + "/scripts/make-test-images.sh",
                          (suite->dir / "images").string(), "--push", suite->host},
                         suite->dir / "make-images.log");
    stop_registry();
    if (rc != 0) {
      suite->error = "make-test-images.sh failed: " + read_all(suite->dir / "make-images.log");
      return;
    }
    // 2. htpasswd (bcrypt, as the registry requires) and a restart with auth
    rc = run_command({"/usr/bin/python3", "-c",
                      "import crypt,sys; open(sys.argv[1],'w').write('puller:' + "
                      "crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH)) + '\\n')",
                      (suite->dir / "htpasswd").string()},
                     suite->dir / "htpasswd.log");
    if (rc != 0 || read_all(suite->dir / "htpasswd").find("puller:$2") != 0) {
      suite->error = "bcrypt htpasswd: " + read_all(suite->dir / "htpasswd.log");
      return;
    }
    std::ofstream(suite->dir / "auth.yml")
        << base << "auth:\n  htpasswd:\n    realm: podwarp-test\n    path: "
        << (suite->dir / "htpasswd").string() << "\n";
    suite->registry = start_registry(suite->dir / "auth.yml", suite->dir / "registry.log");
  }
  static void TearDownTestSuite() {
    stop_registry();
    std::error_code ec;
    if (!suite->dir.empty()) fs::remove_all(suite->dir, ec);
    delete suite;
    suite = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(suite->error.empty()) << suite->error;
    root_ = suite->dir / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(root_ / "run");
    auto s = images::ImageStore::open(root_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
    images::PullOptions pull;
    pull.registry.insecure_registries = {suite->host};
    images_ = std::make_unique<NodeImages>(*store_, pull);
  }
  void TearDown() override {
    if (store_)
      for (const auto& id : store_->prepared_containers()) (void)store_->release_rootfs(id);
    if (cgroups_) {
      (void)cgroups_->destroy("", 5000);  // the whole test cgroup root, deepest first
    }
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
  }

  template <class T>
  T run(asio::awaitable<T> aw) {
    std::optional<T> out;
    asio::co_spawn(io_, std::move(aw), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    io_.restart();
    io_.run();
    return std::move(*out);
  }

  json::value regcred(std::string_view user, std::string_view pass) {
    std::string cfg = fmt::format(R"({{"auths":{{"{}":{{"auth":"{}"}}}}}})", suite->host,
                                  b64(std::string(user) + ":" + std::string(pass)));
    return json::object{{"type", "kubernetes.io/dockerconfigjson"},
                        {"data", json::object{{".dockerconfigjson", b64(cfg)}}}};
  }

  asio::io_context& io_ = *new asio::io_context(1);  // never destroyed (io_uring, common.md)
  fs::path root_;
  std::unique_ptr<images::ImageStore> store_;
  std::unique_ptr<NodeImages> images_;
  std::optional<cgroup::CgroupManager> cgroups_;
};

TEST_F(PodFeaturesTest, PrivateRegistryPullNeedsThePullSecret) {
  std::string image = suite->host + "/podwarp/busybox:latest";
  auto anon = run(images_->ensure_image(image, pods::PullPolicy::kAlways));
  ASSERT_FALSE(anon);
  EXPECT_NE(anon.error().find("401"), std::string::npos) << anon.error();
  pods::ImagePullRequest bad;
  bad.image = image;
  bad.policy = pods::PullPolicy::kAlways;
  bad.pull_secrets = {regcred("puller", "wrong")};
  auto wrong = run(images_->ensure_image_with_secrets(bad));
  ASSERT_FALSE(wrong);
  pods::ImagePullRequest good = bad;
  good.pull_secrets = {regcred("other", "x"), regcred("puller", "s3cret")};  // tried in turn
  auto ok = run(images_->ensure_image_with_secrets(good));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_TRUE(ok->image_id.starts_with(suite->host + "/podwarp/busybox@sha256:")) << ok->image_id;
}

TEST_F(PodFeaturesTest, PodSeesProjectedVolumeAndConfigMapEnv) {
  std::string cg_name = fmt::format("podwarp-podspec-{}", ::getpid());
  auto cg = cgroup::CgroupManager::open(cgroup::CgroupFs::real(), cg_name);
  ASSERT_TRUE(cg) << cg.error().message;
  cgroups_.emplace(std::move(*cg));
  ASSERT_TRUE(cgroups_->ensure_root());
  NodeRuntime runtime(io_.get_executor(), {.run_dir = (root_ / "run").string(), .resolv_conf = "", .exits = nullptr},
                      *cgroups_, *store_);
  pods::PodStateStore& state = *new pods::PodStateStore((root_ / "pods-root").string());
  std::map<std::string, json::value> objects{
      {"ConfigMap/app", json::object{{"data", json::object{{"LEVEL", "debug"}, {"a", "1"}, {"9x", "skip"}}}}},
      {"ConfigMap/kube-root-ca.crt", json::object{{"data", json::object{{"ca.crt", "TEST-CA"}}}}},
      {"Secret/regcred", regcred("puller", "s3cret")},
  };
  std::vector<std::string> events;
  int token_calls = 0;
  pods::WorkerEnv env;
  env.runtime = &runtime;
  env.images = images_.get();
  env.store = &state;
  env.pod_log_dir = (root_ / "logs").string();
  env.host_ip = "192.0.2.7";
  env.node_allocatable = {{"cpu", "3"}, {"memory", "2Gi"}};
  env.timings.backoff_base = 100ms;
  env.timings.second = 100ms;
  env.lookup = [&](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
    if (ns != "team") return std::nullopt;
    auto it = objects.find(std::string(kind) + "/" + std::string(name));
    if (it == objects.end()) return std::nullopt;
    return it->second;
  };
  env.tokens = [&](pods::ServiceAccountTokenRequest r) -> asio::awaitable<std::expected<pods::ServiceAccountToken, std::string>> {
    ++token_calls;
    co_return pods::ServiceAccountToken{"jwt-for-" + r.service_account + "-" + r.pod_name,
                                        std::chrono::system_clock::now() + 1h};
  };
  env.on_event = [&](std::string_view t, std::string_view reason, const std::string& m) {
    events.push_back(fmt::format("{} {} {}", t, reason, m));
  };
  std::string yaml = fmt::format(R"yaml(
kind: Pod
metadata: {{name: feat, namespace: team, labels: {{app: feat}}}}
spec:
  restartPolicy: Never
  serviceAccountName: robot
  imagePullSecrets: [{{name: regcred}}]
  volumes:
  - name: kube-api-access-test
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken: {{path: token, expirationSeconds: 3607}}
      - configMap: {{name: kube-root-ca.crt, items: [{{key: ca.crt, path: ca.crt}}]}}
      - downwardAPI:
          items:
          - {{path: namespace, fieldRef: {{fieldPath: metadata.namespace}}}}
          - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}, mode: 256}}
  containers:
  - name: c
    image: {}/podwarp/busybox:latest
    imagePullPolicy: Always
    resources: {{limits: {{memory: 64Mi}}}}
    envFrom: [{{prefix: CFG_, configMapRef: {{name: app}}}}]
    env:
    - {{name: LEVEL, valueFrom: {{configMapKeyRef: {{name: app, key: LEVEL}}}}}}
    - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: HOSTIP, valueFrom: {{fieldRef: {{fieldPath: status.hostIP}}}}}}
    - {{name: MEM, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: CPU, valueFrom: {{resourceFieldRef: {{resource: limits.cpu}}}}}}
    - {{name: MSG, value: "level=$(LEVEL)"}}
    command:
    - /bin/sh
    - -c
    - >-
      echo "ENV LEVEL=$LEVEL POD=$POD HOSTIP=$HOSTIP MEM=$MEM CPU=$CPU MSG=$MSG A=$CFG_a";
      echo "TOKEN $(cat /sa/token)"; echo "CA $(cat /sa/ca.crt)"; echo "NS $(cat /sa/namespace)";
      echo "LABELS $(cat /sa/labels)"; echo "MODE $(stat -L -c %a /sa/labels) $(stat -L -c %a /sa/token)";
      echo "DATA $(readlink /sa/..data | cut -c1-3)"; touch /sa/x 2>/dev/null || echo "RO yes"
    volumeMounts:
    - {{name: kube-api-access-test, mountPath: /sa, readOnly: true}}
)yaml", suite->host);
  auto def = pods::parse_pod_manifest(yaml, {"", "/m/feat.yaml"});
  ASSERT_TRUE(def) << def.error().text();
  auto w = pods::PodWorker::create(io_.get_executor(), env, std::move(*def), std::nullopt);
  w->start();
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!w->status().terminal && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    podwarp::run_for(io_, 20ms);
  }
  ASSERT_TRUE(w->status().terminal) << fmt::format("{}", fmt::join(events, "\n"));
  EXPECT_EQ(w->phase(), "Succeeded") << w->status().app[0].state.reason << " " << w->status().app[0].state.message;
  auto log = read_all(logs::container_log_path(env.pod_log_dir, "team", "feat", w->def().uid, "c", 0));
  auto has = [&](const std::string& s) {
    EXPECT_NE(log.find(s), std::string::npos) << "missing \"" << s << "\" in:\n" << log;
  };
  has("ENV LEVEL=debug POD=feat HOSTIP=192.0.2.7 MEM=64 CPU=3 MSG=level=debug A=1");
  has("TOKEN jwt-for-robot-feat");
  has("CA TEST-CA");
  has("NS team");
  has("LABELS app=\"feat\"");
  has("MODE 400 644");
  has("DATA ..2");
  has("RO yes");
  EXPECT_EQ(token_calls, 1);
  bool invalid_event = false;
  for (const auto& e : events) invalid_event = invalid_event || e.find("InvalidEnvironmentVariableNames Keys [CFG_9x]") != std::string::npos;
  EXPECT_FALSE(invalid_event);  // the prefix makes "9x" valid: CFG_9x
  w->stop();
  deadline = std::chrono::steady_clock::now() + 20s;
  while (!w->terminated() && std::chrono::steady_clock::now() < deadline) {
    io_.restart();
    podwarp::run_for(io_, 20ms);
  }
  EXPECT_TRUE(w->terminated());
}

}  // namespace
}  // namespace podwarp::noded::adapters
