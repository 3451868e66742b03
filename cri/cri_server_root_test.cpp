// Root test: the CRI server on a temporary unix socket over a real NodeRuntime (namespaces,
// cgroups, clone3) and an image store holding the busybox test image
// (scripts/make-test-images.sh), driven with a gRPC client stub built from cri/proto/api.proto
// as crictl would. Everything lives under /tmp/podwarp-cri-root-<pid> and the cgroup
// podwarp-test-cri-<pid>, removed at the end (also on failure).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "adapters/node_images.h"
#include "adapters/node_runtime.h"
#include "api.grpc.pb.h"
#include "cgroup/cgroup.h"
#include "cgroup/cgroup_fs.h"
#include "cri/cri_server.h"
#include "cri/cri_state.h"
#include "images/image_store.h"

namespace podwarp::cri {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
namespace noded = ::podwarp::noded;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class CriRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs /bin/busybox";
    auto cg = noded::cgroup::CgroupManager::open(noded::cgroup::CgroupFs::real(),
                                                 "podwarp-test-cri-" + std::to_string(::getpid()));
    if (!cg) GTEST_SKIP() << "no cgroup2: " << cg.error().message;
    cgroups_.emplace(std::move(*cg));
    ASSERT_TRUE(cgroups_->ensure_root());
    tmp_ = "/tmp/podwarp-cri-root-" + std::to_string(::getpid());
    fs::create_directories(tmp_ + "/root/run");
    std::string cmd = "/bin/bash " + std::string(PODWARP_SOURCE_DIR) +
                      "/scripts/make-test-images.sh " + tmp_ + "/img >" + tmp_ + "/img.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0)
        << "make-test-images.sh failed, see " << tmp_ << "/img.log";
    auto store = images::ImageStore::open(tmp_ + "/root");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    auto refs = store_->import_archive(tmp_ + "/img/busybox-oci.tar", "podwarp.test/busybox");
    ASSERT_TRUE(refs) << refs.error().message;
    runtime_ = new noded::adapters::NodeRuntime(io_.get_executor(), {.run_dir = tmp_ + "/root/run"},
                                                *cgroups_, *store_);
    images_ = new noded::adapters::NodeImages(*store_, {});
    socket_ = tmp_ + "/cri.sock";
    auto s = CriServer::start(
        io_.get_executor(),
        {.socket_path = socket_, .state_dir = tmp_ + "/cri", .network_ready = false}, *runtime_,
        *images_, *store_);
    ASSERT_TRUE(s) << s.error();
    server_ = std::move(*s);
    loop_ = std::thread([this] { io_.run(); });
    auto ch = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    rt_ = v1::RuntimeService::NewStub(ch);
    img_ = v1::ImageService::NewStub(ch);
  }

  void TearDown() override {
    if (rt_) {
      // Whatever a failed test left: removed through the server, as a client would.
      v1::ListPodSandboxResponse list;
      grpc::ClientContext ctx;
      if (rt_->ListPodSandbox(&ctx, {}, &list).ok()) {
        for (const auto& p : list.items()) {
          grpc::ClientContext c2;
          v1::RemovePodSandboxRequest rq;
          v1::RemovePodSandboxResponse rs;
          rq.set_pod_sandbox_id(p.id());
          (void)rt_->RemovePodSandbox(&c2, rq, &rs);
        }
      }
    }
    if (server_) server_->stop();
    work_.reset();
    if (loop_.joinable()) {
      io_.stop();
      loop_.join();
    }
    if (cgroups_) {
      auto d = cgroups_->destroy("");
      EXPECT_TRUE(d) << d.error().message;
    }
    if (store_) {
      for (const auto& hex : store_->prepared_containers()) (void)store_->release_rootfs(hex);
    }
    if (!tmp_.empty()) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }

  template <class Req, class Resp, class Fn>
  grpc::Status call(Fn fn, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    return fn(&ctx, req, resp);
  }
#define RT(method, req, resp)                                                                     \
  call([&](grpc::ClientContext* c, const auto& q, auto* r) { return rt_->method(c, q, r); }, req, \
       resp)
#define IMG(method, req, resp)                                                                     \
  call([&](grpc::ClientContext* c, const auto& q, auto* r) { return img_->method(c, q, r); }, req, \
       resp)

  // A new server over the same state dir (and, with new_runtime, a new NodeRuntime over the same
  // root, as after a restart of noded). start() wants the loop thread: run it there.
  void restart_server(bool new_runtime) {
    server_->stop();
    server_.reset();
    std::promise<std::expected<std::unique_ptr<CriServer>, std::string>> p;
    asio::post(io_, [&] {
      if (new_runtime)  // the old one is leaked, as the first (its loop objects stay valid)
        runtime_ = new noded::adapters::NodeRuntime(
            io_.get_executor(), {.run_dir = tmp_ + "/root/run"}, *cgroups_, *store_);
      p.set_value(CriServer::start(io_.get_executor(),
                                   {.socket_path = socket_, .state_dir = tmp_ + "/cri"}, *runtime_,
                                   *images_, *store_));
    });
    auto s = p.get_future().get();
    ASSERT_TRUE(s) << s.error();
    server_ = std::move(*s);
    auto ch = grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials());
    rt_ = v1::RuntimeService::NewStub(ch);
  }

  // RunPodSandbox of a sandbox "name" in namespace default; its id ("" on failure).
  std::string run_sandbox(const std::string& name) {
    v1::RunPodSandboxRequest rq;
    rq.mutable_config()->mutable_metadata()->set_name(name);
    rq.mutable_config()->mutable_metadata()->set_namespace_("default");
    v1::RunPodSandboxResponse rs;
    auto st = RT(RunPodSandbox, rq, &rs);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return rs.pod_sandbox_id();
  }

  // CreateContainer of the busybox test image running argv; its id ("" on failure).
  std::string create_container(const std::string& sandbox_id, const std::string& name,
                               const std::vector<std::string>& argv) {
    v1::CreateContainerRequest rq;
    rq.set_pod_sandbox_id(sandbox_id);
    rq.mutable_config()->mutable_metadata()->set_name(name);
    rq.mutable_config()->mutable_image()->set_image("podwarp.test/busybox:latest");
    for (const auto& a : argv) rq.mutable_config()->add_command(a);
    v1::CreateContainerResponse rs;
    auto st = RT(CreateContainer, rq, &rs);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return rs.container_id();
  }

  // RemovePodSandbox, then: no containers listed, no namespace pins, no pod cgroup, no rootfs.
  void remove_sandbox_and_check(const std::string& sandbox_id) {
    v1::RemovePodSandboxRequest rq;
    v1::RemovePodSandboxResponse rs;
    rq.set_pod_sandbox_id(sandbox_id);
    ASSERT_TRUE(RT(RemovePodSandbox, rq, &rs).ok());
    v1::ListContainersResponse lcr;
    ASSERT_TRUE(RT(ListContainers, v1::ListContainersRequest{}, &lcr).ok());
    EXPECT_EQ(lcr.containers_size(), 0);
    const std::string uid = pod_uid_for(sandbox_id);
    EXPECT_FALSE(fs::exists(tmp_ + "/root/run/ns/" + uid));
    EXPECT_FALSE(fs::exists(cgroups_->path_of("pod" + uid)));
    EXPECT_TRUE(store_->prepared_containers().empty());
  }

  v1::ContainerStatus container_status(const std::string& id) {
    v1::ContainerStatusRequest rq;
    v1::ContainerStatusResponse rs;
    rq.set_container_id(id);
    auto st = RT(ContainerStatus, rq, &rs);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return rs.status();
  }

  // Leaked with the loop on purpose (io_uring, as the other root tests); stopped in TearDown.
  asio::io_context& io_ = *new asio::io_context(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::thread loop_;
  std::string tmp_, socket_;
  std::unique_ptr<images::ImageStore> store_;
  std::optional<noded::cgroup::CgroupManager> cgroups_;
  noded::adapters::NodeRuntime* runtime_ = nullptr;
  noded::adapters::NodeImages* images_ = nullptr;
  std::unique_ptr<CriServer> server_;
  std::unique_ptr<v1::RuntimeService::Stub> rt_;
  std::unique_ptr<v1::ImageService::Stub> img_;
};

TEST_F(CriRootTest, PodLifecycleOverGrpc) {
  struct stat sb {};
  ASSERT_EQ(::stat(socket_.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0660u);

  v1::VersionResponse ver;
  ASSERT_TRUE(RT(Version, v1::VersionRequest{}, &ver).ok());
  EXPECT_EQ(ver.runtime_name(), "podwarp");
  EXPECT_EQ(ver.runtime_api_version(), "v1");
  v1::StatusResponse status;
  ASSERT_TRUE(RT(Status, v1::StatusRequest{}, &status).ok());
  ASSERT_EQ(status.status().conditions_size(), 2);
  EXPECT_TRUE(status.status().conditions(0).status());

  // Images: the imported test image.
  const std::string image = "podwarp.test/busybox:latest";
  v1::ImageStatusRequest isq;
  isq.mutable_image()->set_image(image);
  v1::ImageStatusResponse isr;
  ASSERT_TRUE(IMG(ImageStatus, isq, &isr).ok());
  EXPECT_TRUE(isr.image().id().starts_with("sha256:")) << isr.DebugString();
  const std::string isr_id = isr.image().id();
  v1::ListImagesResponse imgs;
  ASSERT_TRUE(IMG(ListImages, v1::ListImagesRequest{}, &imgs).ok());
  EXPECT_GE(imgs.images_size(), 1);
  isq.mutable_image()->set_image("podwarp.test/absent:1");
  ASSERT_TRUE(IMG(ImageStatus, isq, &isr).ok());
  EXPECT_FALSE(isr.has_image());
  v1::ImageFsInfoResponse fsi;
  ASSERT_TRUE(IMG(ImageFsInfo, v1::ImageFsInfoRequest{}, &fsi).ok());
  ASSERT_EQ(fsi.image_filesystems_size(), 1);
  EXPECT_GT(fsi.image_filesystems(0).used_bytes().value(), 0u);

  // Sandbox.
  v1::RunPodSandboxRequest rps;
  auto* cfg = rps.mutable_config();
  cfg->mutable_metadata()->set_name("cri-test");
  cfg->mutable_metadata()->set_namespace_("default");
  cfg->mutable_metadata()->set_uid("uid-1");
  cfg->set_log_directory(tmp_ + "/logs/default_cri-test_uid-1");
  (*cfg->mutable_labels())["app"] = "cri";
  v1::RunPodSandboxResponse rpr;
  auto st = RT(RunPodSandbox, rps, &rpr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string sid = rpr.pod_sandbox_id();
  ASSERT_EQ(sid.size(), 64u);
  const std::string uid = pod_uid_for(sid);
  EXPECT_TRUE(fs::exists(tmp_ + "/root/run/ns/" + uid));
  v1::PodSandboxStatusRequest psq;
  psq.set_pod_sandbox_id(sid.substr(0, 12));  // a truncated id, as crictl shows
  v1::PodSandboxStatusResponse psr;
  ASSERT_TRUE(RT(PodSandboxStatus, psq, &psr).ok());
  EXPECT_EQ(psr.status().id(), sid);
  EXPECT_EQ(psr.status().state(), v1::SANDBOX_READY);
  EXPECT_EQ(psr.status().metadata().name(), "cri-test");
  EXPECT_GT(psr.status().created_at(), 0);

  // Bad input.
  v1::CreateContainerRequest ccq;
  ccq.set_pod_sandbox_id(sid);
  ccq.mutable_config()->mutable_metadata()->set_name("app");
  v1::CreateContainerResponse ccr;
  st = RT(CreateContainer, ccq, &ccr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  ccq.mutable_config()->mutable_image()->set_image(image);
  ccq.set_pod_sandbox_id(std::string(64, 'f'));
  st = RT(CreateContainer, ccq, &ccr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  v1::ContainerStatusRequest csq;
  v1::ContainerStatusResponse csr;
  csq.set_container_id(std::string(64, 'e'));
  st = RT(ContainerStatus, csq, &csr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("not found"), std::string::npos) << st.error_message();
  v1::StartContainerRequest scq;
  v1::StartContainerResponse scr;
  scq.set_container_id(std::string(64, 'e'));
  EXPECT_EQ(RT(StartContainer, scq, &scr).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::StopPodSandboxRequest spq;
  v1::StopPodSandboxResponse spr;
  spq.set_pod_sandbox_id(std::string(64, 'e'));
  EXPECT_EQ(RT(StopPodSandbox, spq, &spr).error_code(), grpc::StatusCode::NOT_FOUND);

  // Container.
  ccq.set_pod_sandbox_id(sid);
  auto* cc = ccq.mutable_config();
  cc->add_command("/bin/sh");
  cc->add_args("-c");
  cc->add_args("echo hi; sleep 1000");
  cc->set_log_path("app/0.log");
  (*cc->mutable_labels())["role"] = "main";
  *ccq.mutable_sandbox_config() = *cfg;
  st = RT(CreateContainer, ccq, &ccr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  const std::string cid = ccr.container_id();
  ASSERT_EQ(cid.size(), 64u);
  EXPECT_EQ(container_status(cid).state(), v1::CONTAINER_CREATED);

  scq.set_container_id(cid);
  st = RT(StartContainer, scq, &scr);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(RT(StartContainer, scq, &scr).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::ListContainersRequest lcq;
  lcq.mutable_filter()->mutable_state()->set_state(v1::CONTAINER_RUNNING);
  lcq.mutable_filter()->set_pod_sandbox_id(sid);
  (*lcq.mutable_filter()->mutable_label_selector())["role"] = "main";
  v1::ListContainersResponse lcr;
  ASSERT_TRUE(RT(ListContainers, lcq, &lcr).ok());
  ASSERT_EQ(lcr.containers_size(), 1);
  EXPECT_EQ(lcr.containers(0).id(), cid);
  EXPECT_EQ(lcr.containers(0).state(), v1::CONTAINER_RUNNING);

  auto cs = container_status(cid);
  EXPECT_EQ(cs.state(), v1::CONTAINER_RUNNING);
  EXPECT_GT(cs.started_at(), 0);
  EXPECT_EQ(cs.metadata().name(), "app");
  EXPECT_EQ(cs.image_id(), isr_id);
  EXPECT_NE(cs.image_ref().find("sha256:"), std::string::npos) << cs.image_ref();
  const std::string log_path = cfg->log_directory() + "/app/0.log";
  EXPECT_EQ(cs.log_path(), log_path);

  // The CRI log file: "<time> stdout F hi".
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (read_file(log_path).find(" stdout F hi\n") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  EXPECT_NE(read_file(log_path).find(" stdout F hi\n"), std::string::npos) << read_file(log_path);

  // Stop with a 2 s timeout: SIGTERM (sh as pid 1 may ignore it), then SIGKILL.
  v1::StopContainerRequest stq;
  v1::StopContainerResponse str;
  stq.set_container_id(cid);
  stq.set_timeout(2);
  auto t0 = std::chrono::steady_clock::now();
  st = RT(StopContainer, stq, &str);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  cs = container_status(cid);
  EXPECT_EQ(cs.state(), v1::CONTAINER_EXITED);
  EXPECT_TRUE(cs.exit_code() == 137 || cs.exit_code() == 143) << cs.exit_code();
  EXPECT_EQ(cs.reason(), "Error");
  EXPECT_GE(cs.finished_at(), cs.started_at());

  v1::RemoveContainerRequest rcq;
  v1::RemoveContainerResponse rcr;
  rcq.set_container_id(cid);
  ASSERT_TRUE(RT(RemoveContainer, rcq, &rcr).ok());
  ASSERT_TRUE(RT(RemoveContainer, rcq, &rcr).ok());  // idempotent
  ASSERT_TRUE(RT(ListContainers, v1::ListContainersRequest{}, &lcr).ok());
  EXPECT_EQ(lcr.containers_size(), 0);
  csq.set_container_id(cid);
  EXPECT_EQ(RT(ContainerStatus, csq, &csr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(store_->prepared_containers().empty());

  // Sandbox stop and removal.
  spq.set_pod_sandbox_id(sid);
  ASSERT_TRUE(RT(StopPodSandbox, spq, &spr).ok());
  psq.set_pod_sandbox_id(sid);
  ASSERT_TRUE(RT(PodSandboxStatus, psq, &psr).ok());
  EXPECT_EQ(psr.status().state(), v1::SANDBOX_NOTREADY);
  v1::RemovePodSandboxRequest rpq;
  v1::RemovePodSandboxResponse rpsr;
  rpq.set_pod_sandbox_id(sid);
  ASSERT_TRUE(RT(RemovePodSandbox, rpq, &rpsr).ok());
  ASSERT_TRUE(RT(RemovePodSandbox, rpq, &rpsr).ok());  // idempotent
  v1::ListPodSandboxResponse lpr;
  ASSERT_TRUE(RT(ListPodSandbox, v1::ListPodSandboxRequest{}, &lpr).ok());
  EXPECT_EQ(lpr.items_size(), 0);

  // Nothing left: namespace pins, pod cgroup, rootfs mounts, records.
  EXPECT_FALSE(fs::exists(tmp_ + "/root/run/ns/" + uid));
  EXPECT_FALSE(fs::exists(cgroups_->path_of("pod" + uid)));
  EXPECT_TRUE(store_->prepared_containers().empty());
  EXPECT_TRUE(fs::is_empty(tmp_ + "/cri/sandboxes"));
  EXPECT_TRUE(fs::is_empty(tmp_ + "/cri/containers"));
}

// A restarted server reads the records back: sandboxes and exited containers are listed
// and can be removed.
TEST_F(CriRootTest, RecordsSurviveAServerRestart) {
  std::string sid = run_sandbox("persist");
  ASSERT_FALSE(sid.empty());
  std::string cid = create_container(sid, "c", {"true"});
  ASSERT_FALSE(cid.empty());

  ASSERT_NO_FATAL_FAILURE(restart_server(false));

  v1::ListPodSandboxResponse lpr;
  ASSERT_TRUE(RT(ListPodSandbox, v1::ListPodSandboxRequest{}, &lpr).ok());
  ASSERT_EQ(lpr.items_size(), 1);
  EXPECT_EQ(lpr.items(0).id(), sid);
  EXPECT_EQ(lpr.items(0).metadata().name(), "persist");
  EXPECT_EQ(container_status(cid).state(), v1::CONTAINER_CREATED);
  remove_sandbox_and_check(sid);
}

// A restart of noded: a new runtime and server over the same root adopt the running
// container (by pid and start time) and can stop and remove it.
TEST_F(CriRootTest, AdoptsARunningContainerAfterRestart) {
  std::string sid = run_sandbox("adopt");
  ASSERT_FALSE(sid.empty());
  std::string cid = create_container(sid, "sleeper", {"sleep", "1000"});
  ASSERT_FALSE(cid.empty());
  v1::StartContainerRequest scq;
  v1::StartContainerResponse scr;
  scq.set_container_id(cid);
  auto st = RT(StartContainer, scq, &scr);
  ASSERT_TRUE(st.ok()) << st.error_message();

  // "Restart": a new runtime (as a new noded would have) and server over the same root.
  ASSERT_NO_FATAL_FAILURE(restart_server(true));

  EXPECT_EQ(container_status(cid).state(), v1::CONTAINER_RUNNING);
  v1::StopContainerRequest stq;
  v1::StopContainerResponse str;
  stq.set_container_id(cid);
  stq.set_timeout(0);
  st = RT(StopContainer, stq, &str);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(container_status(cid).state(), v1::CONTAINER_RUNNING);
  remove_sandbox_and_check(sid);
}

}  // namespace
}  // namespace podwarp::cri
