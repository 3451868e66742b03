#include "cri/cri_server.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>

#include "api.grpc.pb.h"
#include "cri/cri_state.h"
#include "logs/log_pump.h"
#include "podwarp/log.h"

namespace podwarp::cri {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace logs = ::podwarp::noded::logs;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

template <class Resp>
struct Reply {
  grpc::Status status = grpc::Status::OK;
  Resp resp;
};

template <class Resp>
Reply<Resp> failure(StatusCode code, std::string message) {
  return Reply<Resp>{grpc::Status(code, std::move(message)), {}};
}

std::string sandbox_not_found(const std::string& id) {
  return "an error occurred when try to find sandbox \"" + id + "\": not found";
}
std::string container_not_found(const std::string& id) {
  return "an error occurred when try to find container \"" + id + "\": not found";
}

// Writes a record as <dir>/<id>.json (temporary file, then rename).
void write_record(const std::string& dir, const std::string& id, const json::value& v) {
  std::string path = dir + "/" + id + ".json";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << to_json(v);
    if (!out) {
      log::warn("cri: write {}.tmp failed", path);
      return;
    }
  }
  std::error_code ec;
  fs::rename(path + ".tmp", path, ec);
  if (ec) log::warn("cri: rename {}.tmp: {}", path, ec.message());
}

void drop_record(const std::string& dir, const std::string& id) {
  std::error_code ec;
  fs::remove(dir + "/" + id + ".json", ec);
}

// Every readable record of a state dir folder.
std::vector<json::value> read_records(const std::string& dir) {
  std::vector<json::value> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    auto v = parse_json(text);
    if (!v) {
      log::warn("cri: {}: {}", e.path().string(), v.error());
      continue;
    }
    out.push_back(std::move(*v));
  }
  return out;
}

// What the runtime needs to create (or find again) a sandbox; `pod` is pod_object(s).
pods::SandboxRequest sandbox_request(const SandboxRecord& s, const json::value& pod) {
  const auto& md = s.config.metadata();
  return {s.pod_uid, md.namespace_(), md.name(),
          s.config.hostname().empty() ? md.name() : s.config.hostname(), &pod};
}

}  // namespace

struct SandboxEntry {
  SandboxRecord rec;
};

struct ContainerEntry {
  ContainerRecord rec;
  bool starting = false;
  // Never expires; cancelled when the container's process exits (wakes stop waiters).
  std::shared_ptr<asio::steady_timer> exit_signal;
};

class RuntimeSvc;
class ImageSvc;

struct CriServer::Impl {
  Impl(asio::any_io_executor e, CriServerOptions o, pods::ContainerRuntime& r,
       pods::ImageService& is, images::ImageStore& s)
      : ex(std::move(e)), opts(std::move(o)), runtime(r), image_service(is), store(s) {}

  asio::any_io_executor ex;
  CriServerOptions opts;
  pods::ContainerRuntime& runtime;
  pods::ImageService& image_service;
  images::ImageStore& store;
  std::map<std::string, std::shared_ptr<SandboxEntry>> sandboxes;     // loop thread only
  std::map<std::string, std::shared_ptr<ContainerEntry>> containers;  // loop thread only
  std::atomic<bool> stopping{false};
  // Coroutines that outlive a call (container watchers) check it after resuming.
  std::shared_ptr<int> alive = std::make_shared<int>(0);
  std::unique_ptr<RuntimeSvc> runtime_svc;
  std::unique_ptr<ImageSvc> image_svc;
  std::unique_ptr<grpc::Server> server;

  std::string sandbox_dir() const { return opts.state_dir + "/sandboxes"; }
  std::string container_dir() const { return opts.state_dir + "/containers"; }
  void persist(const SandboxRecord& r) { write_record(sandbox_dir(), r.id, to_json_value(r)); }
  void persist(const ContainerRecord& r) { write_record(container_dir(), r.id, to_json_value(r)); }

  // From a gRPC thread: runs fn on the loop and waits for its reply.
  template <class Req, class Resp>
  grpc::Status serve(asio::awaitable<Reply<Resp>> (Impl::*fn)(Req), const Req& req, Resp* out) {
    static const grpc::Status kStopping(StatusCode::UNAVAILABLE, "the CRI server is stopping");
    if (stopping) return kStopping;
    auto fut = asio::co_spawn(ex, (this->*fn)(req), asio::use_future);
    while (fut.wait_for(100ms) != std::future_status::ready) {
      if (stopping) return kStopping;
    }
    try {
      Reply<Resp> r = fut.get();
      *out = std::move(r.resp);
      return r.status;
    } catch (const std::exception& e) {
      return grpc::Status(StatusCode::INTERNAL, e.what());
    }
  }

  template <class Map>
  typename Map::mapped_type find(Map& m, const std::string& id_or_prefix) {
    std::vector<std::string> ids;
    ids.reserve(m.size());
    for (const auto& kv : m) ids.push_back(kv.first);
    auto id = resolve_id(id_or_prefix, ids);
    if (id.empty()) return nullptr;
    return m.at(id);
  }

  std::vector<std::shared_ptr<ContainerEntry>> containers_of(const std::string& sandbox_id) {
    std::vector<std::shared_ptr<ContainerEntry>> out;
    for (auto& kv : containers)
      if (kv.second->rec.sandbox_id == sandbox_id) out.push_back(kv.second);
    return out;
  }

  void load();
  asio::awaitable<void> adopt();

  // --- RuntimeService ---
  asio::awaitable<Reply<v1::VersionResponse>> version(v1::VersionRequest req);
  asio::awaitable<Reply<v1::StatusResponse>> status(v1::StatusRequest req);
  asio::awaitable<Reply<v1::RunPodSandboxResponse>> run_pod_sandbox(v1::RunPodSandboxRequest req);
  asio::awaitable<Reply<v1::StopPodSandboxResponse>> stop_pod_sandbox(
      v1::StopPodSandboxRequest req);
  asio::awaitable<Reply<v1::RemovePodSandboxResponse>> remove_pod_sandbox(
      v1::RemovePodSandboxRequest req);
  asio::awaitable<Reply<v1::PodSandboxStatusResponse>> pod_sandbox_status(
      v1::PodSandboxStatusRequest req);
  asio::awaitable<Reply<v1::ListPodSandboxResponse>> list_pod_sandbox(
      v1::ListPodSandboxRequest req);
  asio::awaitable<Reply<v1::CreateContainerResponse>> create_container(
      v1::CreateContainerRequest req);
  asio::awaitable<Reply<v1::StartContainerResponse>> start_container(v1::StartContainerRequest req);
  asio::awaitable<Reply<v1::StopContainerResponse>> stop_container(v1::StopContainerRequest req);
  asio::awaitable<Reply<v1::RemoveContainerResponse>> remove_container(
      v1::RemoveContainerRequest req);
  asio::awaitable<Reply<v1::ListContainersResponse>> list_containers(v1::ListContainersRequest req);
  asio::awaitable<Reply<v1::ContainerStatusResponse>> container_status(
      v1::ContainerStatusRequest req);
  // --- ImageService ---
  asio::awaitable<Reply<v1::ListImagesResponse>> list_images(v1::ListImagesRequest req);
  asio::awaitable<Reply<v1::ImageStatusResponse>> image_status(v1::ImageStatusRequest req);
  asio::awaitable<Reply<v1::PullImageResponse>> pull_image(v1::PullImageRequest req);
  asio::awaitable<Reply<v1::RemoveImageResponse>> remove_image(v1::RemoveImageRequest req);
  asio::awaitable<Reply<v1::ImageFsInfoResponse>> image_fs_info(v1::ImageFsInfoRequest req);

  // --- shared steps ---
  asio::awaitable<void> watch(std::shared_ptr<ContainerEntry> c);
  asio::awaitable<bool> wait_exit(const std::shared_ptr<ContainerEntry>& c,
                                  std::chrono::steady_clock::time_point deadline);
  asio::awaitable<void> stop_entry(const std::shared_ptr<ContainerEntry>& c,
                                   std::int64_t timeout_s);
  asio::awaitable<void> remove_entry(const std::shared_ptr<ContainerEntry>& c);
  asio::awaitable<std::expected<void, std::string>> stop_sandbox(
      const std::shared_ptr<SandboxEntry>& s);
  std::map<std::string, std::vector<images::ImageRef>> images_by_id();
};

// ------------------------------------------------------------------ gRPC services

class RuntimeSvc final : public v1::RuntimeService::Service {
 public:
  explicit RuntimeSvc(CriServer::Impl& i) : i_(i) {}
  using Ctx = grpc::ServerContext;
  using Impl = CriServer::Impl;
  grpc::Status Version(Ctx*, const v1::VersionRequest* r, v1::VersionResponse* o) override {
    return i_.serve(&Impl::version, *r, o);
  }
  grpc::Status Status(Ctx*, const v1::StatusRequest* r, v1::StatusResponse* o) override {
    return i_.serve(&Impl::status, *r, o);
  }
  grpc::Status RunPodSandbox(Ctx*, const v1::RunPodSandboxRequest* r,
                             v1::RunPodSandboxResponse* o) override {
    return i_.serve(&Impl::run_pod_sandbox, *r, o);
  }
  grpc::Status StopPodSandbox(Ctx*, const v1::StopPodSandboxRequest* r,
                              v1::StopPodSandboxResponse* o) override {
    return i_.serve(&Impl::stop_pod_sandbox, *r, o);
  }
  grpc::Status RemovePodSandbox(Ctx*, const v1::RemovePodSandboxRequest* r,
                                v1::RemovePodSandboxResponse* o) override {
    return i_.serve(&Impl::remove_pod_sandbox, *r, o);
  }
  grpc::Status PodSandboxStatus(Ctx*, const v1::PodSandboxStatusRequest* r,
                                v1::PodSandboxStatusResponse* o) override {
    return i_.serve(&Impl::pod_sandbox_status, *r, o);
  }
  grpc::Status ListPodSandbox(Ctx*, const v1::ListPodSandboxRequest* r,
                              v1::ListPodSandboxResponse* o) override {
    return i_.serve(&Impl::list_pod_sandbox, *r, o);
  }
  grpc::Status CreateContainer(Ctx*, const v1::CreateContainerRequest* r,
                               v1::CreateContainerResponse* o) override {
    return i_.serve(&Impl::create_container, *r, o);
  }
  grpc::Status StartContainer(Ctx*, const v1::StartContainerRequest* r,
                              v1::StartContainerResponse* o) override {
    return i_.serve(&Impl::start_container, *r, o);
  }
  grpc::Status StopContainer(Ctx*, const v1::StopContainerRequest* r,
                             v1::StopContainerResponse* o) override {
    return i_.serve(&Impl::stop_container, *r, o);
  }
  grpc::Status RemoveContainer(Ctx*, const v1::RemoveContainerRequest* r,
                               v1::RemoveContainerResponse* o) override {
    return i_.serve(&Impl::remove_container, *r, o);
  }
  grpc::Status ListContainers(Ctx*, const v1::ListContainersRequest* r,
                              v1::ListContainersResponse* o) override {
    return i_.serve(&Impl::list_containers, *r, o);
  }
  grpc::Status ContainerStatus(Ctx*, const v1::ContainerStatusRequest* r,
                               v1::ContainerStatusResponse* o) override {
    return i_.serve(&Impl::container_status, *r, o);
  }

 private:
  CriServer::Impl& i_;
};

class ImageSvc final : public v1::ImageService::Service {
 public:
  explicit ImageSvc(CriServer::Impl& i) : i_(i) {}
  using Ctx = grpc::ServerContext;
  using Impl = CriServer::Impl;
  grpc::Status ListImages(Ctx*, const v1::ListImagesRequest* r,
                          v1::ListImagesResponse* o) override {
    return i_.serve(&Impl::list_images, *r, o);
  }
  grpc::Status ImageStatus(Ctx*, const v1::ImageStatusRequest* r,
                           v1::ImageStatusResponse* o) override {
    return i_.serve(&Impl::image_status, *r, o);
  }
  grpc::Status PullImage(Ctx*, const v1::PullImageRequest* r, v1::PullImageResponse* o) override {
    return i_.serve(&Impl::pull_image, *r, o);
  }
  grpc::Status RemoveImage(Ctx*, const v1::RemoveImageRequest* r,
                           v1::RemoveImageResponse* o) override {
    return i_.serve(&Impl::remove_image, *r, o);
  }
  grpc::Status ImageFsInfo(Ctx*, const v1::ImageFsInfoRequest* r,
                           v1::ImageFsInfoResponse* o) override {
    return i_.serve(&Impl::image_fs_info, *r, o);
  }

 private:
  CriServer::Impl& i_;
};

// ------------------------------------------------------------------ state dir

void CriServer::Impl::load() {
  for (const auto& v : read_records(sandbox_dir())) {
    auto s = sandbox_from_json(v);
    if (!s) {
      log::warn("cri: {}", s.error());
      continue;
    }
    auto e = std::make_shared<SandboxEntry>();
    e->rec = std::move(*s);
    sandboxes[e->rec.id] = e;
  }
  for (const auto& v : read_records(container_dir())) {
    auto c = container_from_json(v);
    if (!c) {
      log::warn("cri: {}", c.error());
      continue;
    }
    auto e = std::make_shared<ContainerEntry>();
    e->rec = std::move(*c);
    e->exit_signal =
        std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
    containers[e->rec.id] = e;
  }
  if (!sandboxes.empty() || !containers.empty())
    log::info("cri: loaded {} sandboxes and {} containers from {}", sandboxes.size(),
              containers.size(), opts.state_dir);
}

// After a restart of noded: READY sandboxes get their runtime state back (the runtime finds the
// namespace pins again), and containers recorded RUNNING are adopted by pid and start time
// (NodeRuntime::adopt_container), or marked with how they ended.
asio::awaitable<void> CriServer::Impl::adopt() {
  std::vector<std::shared_ptr<SandboxEntry>> ready;
  for (auto& kv : sandboxes)
    if (kv.second->rec.state == v1::SANDBOX_READY) ready.push_back(kv.second);
  for (auto& s : ready) {
    json::value pod = pod_object(s->rec);
    pods::SandboxRequest sr = sandbox_request(s->rec, pod);
    auto sb = co_await runtime.create_sandbox(sr);
    if (!sb) log::warn("cri: sandbox {}: re-adopt: {}", s->rec.id, sb.error());
  }
  std::vector<std::shared_ptr<ContainerEntry>> running;
  for (auto& kv : containers)
    if (kv.second->rec.state == v1::CONTAINER_RUNNING) running.push_back(kv.second);
  for (auto& c : running) {
    auto s = sandboxes.find(c->rec.sandbox_id);
    std::string uid =
        s != sandboxes.end() ? s->second->rec.pod_uid : pod_uid_for(c->rec.sandbox_id);
    pods::ContainerHandle h = c->rec.handle;
    auto a = co_await runtime.adopt_container(uid, h);
    if (a.state == pods::AdoptState::kRunning) {
      log::info("cri: container {} adopted (pid {})", c->rec.id, h.pid);
      asio::co_spawn(ex, watch(c), asio::detached);
      continue;
    }
    pods::ExitInfo e = a.exit;
    if (a.state == pods::AdoptState::kGone) e.code_known = false;
    mark_exited(c->rec, e);
    if (containers.contains(c->rec.id)) persist(c->rec);
  }
}

// ------------------------------------------------------------------ runtime info

asio::awaitable<Reply<v1::VersionResponse>> CriServer::Impl::version(v1::VersionRequest) {
  Reply<v1::VersionResponse> r;
  r.resp.set_version("0.1.0");
  r.resp.set_runtime_name("podwarp");
  r.resp.set_runtime_version(PODWARP_VERSION);
  r.resp.set_runtime_api_version("v1");
  co_return r;
}

asio::awaitable<Reply<v1::StatusResponse>> CriServer::Impl::status(v1::StatusRequest) {
  Reply<v1::StatusResponse> r;
  auto* st = r.resp.mutable_status();
  auto* ready = st->add_conditions();
  ready->set_type("RuntimeReady");
  ready->set_status(true);
  auto* net = st->add_conditions();
  net->set_type("NetworkReady");
  net->set_status(opts.network_ready);
  if (!opts.network_ready) {
    net->set_reason("NetworkNotConfigured");
    net->set_message("noded runs without a pod network: sandboxes get loopback only");
  }
  co_return r;
}

// ------------------------------------------------------------------ sandboxes

asio::awaitable<Reply<v1::RunPodSandboxResponse>> CriServer::Impl::run_pod_sandbox(
    v1::RunPodSandboxRequest req) {
  using R = v1::RunPodSandboxResponse;
  const auto& md = req.config().metadata();
  if (!req.has_config() || md.name().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT, "sandbox config metadata name is required");
  if (!req.runtime_handler().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT,
                         "runtime handler \"" + req.runtime_handler() + "\" is not supported");
  auto e = std::make_shared<SandboxEntry>();
  e->rec.id = new_id();
  e->rec.pod_uid = pod_uid_for(e->rec.id);
  e->rec.config = req.config();
  e->rec.created_at = now_ns();
  json::value pod = pod_object(e->rec);
  pods::SandboxRequest sr = sandbox_request(e->rec, pod);
  auto sb = co_await runtime.create_sandbox(sr);
  if (!sb) {
    auto rel = co_await runtime.release_sandbox(e->rec.pod_uid);
    if (!rel) log::warn("cri: sandbox {}: {}", e->rec.id, rel.error());
    co_return failure<R>(StatusCode::UNKNOWN,
                         "failed to create sandbox for pod \"" + md.name() + "\": " + sb.error());
  }
  e->rec.ip = sb->pod_ip;
  sandboxes[e->rec.id] = e;
  persist(e->rec);
  log::info("cri: sandbox {} ({}/{}) ready as pod {}", e->rec.id, md.namespace_(), md.name(),
            e->rec.pod_uid);
  Reply<R> r;
  r.resp.set_pod_sandbox_id(e->rec.id);
  co_return r;
}

asio::awaitable<std::expected<void, std::string>> CriServer::Impl::stop_sandbox(
    const std::shared_ptr<SandboxEntry>& s) {
  // Containers are killed (upstream: forcibly terminated), then the sandbox released.
  auto list = containers_of(s->rec.id);
  for (const auto& c : list) co_await stop_entry(c, 0);
  if (s->rec.state == v1::SANDBOX_READY) {
    auto rel = co_await runtime.release_sandbox(s->rec.pod_uid);
    if (!rel) co_return std::unexpected(rel.error());
    s->rec.state = v1::SANDBOX_NOTREADY;
    if (sandboxes.contains(s->rec.id)) persist(s->rec);
  }
  co_return std::expected<void, std::string>{};
}

asio::awaitable<Reply<v1::StopPodSandboxResponse>> CriServer::Impl::stop_pod_sandbox(
    v1::StopPodSandboxRequest req) {
  using R = v1::StopPodSandboxResponse;
  auto s = find(sandboxes, req.pod_sandbox_id());
  if (!s) co_return failure<R>(StatusCode::NOT_FOUND, sandbox_not_found(req.pod_sandbox_id()));
  auto st = co_await stop_sandbox(s);
  if (!st)
    co_return failure<R>(StatusCode::UNKNOWN,
                         "failed to stop sandbox \"" + s->rec.id + "\": " + st.error());
  co_return Reply<R>{};
}

asio::awaitable<Reply<v1::RemovePodSandboxResponse>> CriServer::Impl::remove_pod_sandbox(
    v1::RemovePodSandboxRequest req) {
  using R = v1::RemovePodSandboxResponse;
  auto s = find(sandboxes, req.pod_sandbox_id());
  if (!s) co_return Reply<R>{};  // upstream: removing a removed sandbox is not an error
  auto st = co_await stop_sandbox(s);
  if (!st)
    co_return failure<R>(StatusCode::UNKNOWN,
                         "failed to stop sandbox \"" + s->rec.id + "\": " + st.error());
  auto list = containers_of(s->rec.id);
  for (const auto& c : list) co_await remove_entry(c);
  sandboxes.erase(s->rec.id);
  drop_record(sandbox_dir(), s->rec.id);
  log::info("cri: sandbox {} removed", s->rec.id);
  co_return Reply<R>{};
}

asio::awaitable<Reply<v1::PodSandboxStatusResponse>> CriServer::Impl::pod_sandbox_status(
    v1::PodSandboxStatusRequest req) {
  using R = v1::PodSandboxStatusResponse;
  auto s = find(sandboxes, req.pod_sandbox_id());
  if (!s) co_return failure<R>(StatusCode::NOT_FOUND, sandbox_not_found(req.pod_sandbox_id()));
  Reply<R> r;
  *r.resp.mutable_status() = to_sandbox_status(s->rec);
  co_return r;
}

asio::awaitable<Reply<v1::ListPodSandboxResponse>> CriServer::Impl::list_pod_sandbox(
    v1::ListPodSandboxRequest req) {
  Reply<v1::ListPodSandboxResponse> r;
  for (const auto& kv : sandboxes)
    if (matches(kv.second->rec, req.filter())) *r.resp.add_items() = to_pod_sandbox(kv.second->rec);
  co_return r;
}

// ------------------------------------------------------------------ containers

asio::awaitable<Reply<v1::CreateContainerResponse>> CriServer::Impl::create_container(
    v1::CreateContainerRequest req) {
  using R = v1::CreateContainerResponse;
  const auto& cfg = req.config();
  if (!req.has_config() || cfg.metadata().name().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT,
                         "container config metadata name is required");
  if (cfg.image().image().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT, "container config image is required");
  auto s = find(sandboxes, req.pod_sandbox_id());
  if (!s) co_return failure<R>(StatusCode::NOT_FOUND, sandbox_not_found(req.pod_sandbox_id()));
  if (s->rec.state != v1::SANDBOX_READY)
    co_return failure<R>(StatusCode::FAILED_PRECONDITION,
                         "sandbox \"" + s->rec.id + "\" is not ready");
  std::string image = cfg.image().image();
  auto img = co_await image_service.ensure_image(image, pods::PullPolicy::kNever);
  if (!img)
    co_return failure<R>(StatusCode::NOT_FOUND,
                         "failed to get image \"" + image + "\": " + img.error());
  if (!sandboxes.contains(s->rec.id))
    co_return failure<R>(StatusCode::NOT_FOUND, sandbox_not_found(req.pod_sandbox_id()));
  auto c = std::make_shared<ContainerEntry>();
  c->rec.id = new_id();
  c->rec.sandbox_id = s->rec.id;
  c->rec.config = cfg;
  c->rec.image_name = img->image_ref;
  c->rec.image_ref = img->image_id;
  auto stored = store.find(img->image_ref);
  c->rec.image_id = stored ? stored->id : img->image_id;
  c->rec.created_at = now_ns();
  const std::string& dir = s->rec.config.log_directory();
  if (!cfg.log_path().empty())
    c->rec.log_path = dir.empty() || cfg.log_path().starts_with('/')
                          ? cfg.log_path()
                          : (fs::path(dir) / cfg.log_path()).string();
  c->exit_signal = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  containers[c->rec.id] = c;
  persist(c->rec);
  Reply<R> r;
  r.resp.set_container_id(c->rec.id);
  co_return r;
}

asio::awaitable<Reply<v1::StartContainerResponse>> CriServer::Impl::start_container(
    v1::StartContainerRequest req) {
  using R = v1::StartContainerResponse;
  auto c = find(containers, req.container_id());
  if (!c) co_return failure<R>(StatusCode::NOT_FOUND, container_not_found(req.container_id()));
  if (c->rec.state != v1::CONTAINER_CREATED || c->starting)
    co_return failure<R>(StatusCode::FAILED_PRECONDITION,
                         "container \"" + c->rec.id + "\" is in " +
                             v1::ContainerState_Name(c->rec.state) + " state");
  auto s = find(sandboxes, c->rec.sandbox_id);
  if (!s || s->rec.state != v1::SANDBOX_READY)
    co_return failure<R>(StatusCode::FAILED_PRECONDITION,
                         "sandbox \"" + c->rec.sandbox_id + "\" is not ready");
  c->starting = true;
  auto fail_start = [&](const std::string& msg) {
    c->starting = false;
    mark_start_failed(c->rec, msg, now_ns());
    if (containers.contains(c->rec.id)) persist(c->rec);
    return failure<R>(StatusCode::UNKNOWN,
                      "failed to start container \"" + c->rec.id + "\": " + msg);
  };
  auto img = co_await image_service.ensure_image(c->rec.image_name, pods::PullPolicy::kNever);
  if (!img) co_return fail_start(img.error());
  // Output: pipes pumped into the CRI log file (as the pod workers do), or /dev/null.
  std::shared_ptr<logs::CriLogWriter> writer;
  logs::PipeFds out, err;
  if (!c->rec.log_path.empty()) {
    writer = std::make_shared<logs::CriLogWriter>();
    if (auto o = writer->open(c->rec.log_path, {}); !o) co_return fail_start(o.error());
    auto po = logs::make_pipe();
    if (!po) co_return fail_start(po.error());
    out = *po;
    auto pe = logs::make_pipe();
    if (!pe) {
      ::close(out.read_fd);
      ::close(out.write_fd);
      co_return fail_start(pe.error());
    }
    err = *pe;
  }
  json::value pod = pod_object(s->rec);
  json::value container = container_object(c->rec);
  pods::ContainerStartRequest sr;
  sr.pod_uid = s->rec.pod_uid;
  sr.pod_namespace = s->rec.config.metadata().namespace_();
  sr.pod_name = s->rec.config.metadata().name();
  sr.container_name = c->rec.config.metadata().name();
  sr.attempt = static_cast<int>(c->rec.config.metadata().attempt());
  sr.pod = &pod;
  sr.container = &container;
  sr.image = &*img;
  sr.mounts = mount_requests(c->rec.config);
  sr.stdout_fd = out.write_fd;
  sr.stderr_fd = err.write_fd;
  if (!s->rec.ip.empty()) sr.pod_ips = {s->rec.ip};
  auto h = co_await runtime.start_container(sr);
  if (writer) {
    ::close(out.write_fd);
    ::close(err.write_fd);
    asio::co_spawn(ex, logs::pump(out.read_fd, writer, logs::Stream::kStdout), asio::detached);
    asio::co_spawn(ex, logs::pump(err.read_fd, writer, logs::Stream::kStderr), asio::detached);
  }
  if (!h) co_return fail_start(h.error());
  c->starting = false;
  mark_started(c->rec, *h, now_ns());
  if (containers.contains(c->rec.id)) persist(c->rec);
  asio::co_spawn(ex, watch(c), asio::detached);
  co_return Reply<R>{};
}

asio::awaitable<void> CriServer::Impl::watch(std::shared_ptr<ContainerEntry> c) {
  std::string rid = c->rec.handle.id;
  std::weak_ptr<int> alive_while = alive;
  pods::ExitInfo e = co_await runtime.wait_container(rid);
  if (alive_while.expired()) co_return;
  mark_exited(c->rec, e);
  if (containers.contains(c->rec.id)) persist(c->rec);
  c->exit_signal->cancel();
}

asio::awaitable<bool> CriServer::Impl::wait_exit(const std::shared_ptr<ContainerEntry>& c,
                                                 std::chrono::steady_clock::time_point deadline) {
  while (c->rec.state == v1::CONTAINER_RUNNING && std::chrono::steady_clock::now() < deadline) {
    asio::steady_timer timer(ex, deadline);
    auto signal = c->exit_signal;
    auto exited = signal->async_wait(asio::as_tuple(asio::use_awaitable));
    auto timeout = timer.async_wait(asio::as_tuple(asio::use_awaitable));
    auto either = std::move(exited) || std::move(timeout);
    co_await std::move(either);
  }
  co_return c->rec.state != v1::CONTAINER_RUNNING;
}

asio::awaitable<void> CriServer::Impl::stop_entry(const std::shared_ptr<ContainerEntry>& c,
                                                  std::int64_t timeout_s) {
  // As the pod workers: SIGTERM, SIGKILL (the whole container cgroup) after the timeout.
  if (c->rec.state != v1::CONTAINER_RUNNING) co_return;
  std::string rid = c->rec.handle.id;
  if (timeout_s > 0) {
    if (auto r = runtime.signal_container(rid, SIGTERM); !r)
      log::warn("cri: container {}: SIGTERM: {}", c->rec.id, r.error());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    if (co_await wait_exit(c, deadline)) co_return;
  }
  if (auto r = runtime.signal_container(rid, SIGKILL); !r)
    log::warn("cri: container {}: SIGKILL: {}", c->rec.id, r.error());
  auto deadline = std::chrono::steady_clock::now() + 30s;
  if (!co_await wait_exit(c, deadline))
    log::warn("cri: container {} did not exit 30s after SIGKILL", c->rec.id);
}

asio::awaitable<void> CriServer::Impl::remove_entry(const std::shared_ptr<ContainerEntry>& c) {
  co_await stop_entry(c, 0);
  if (!c->rec.handle.id.empty()) runtime.remove_container(c->rec.handle.id);
  containers.erase(c->rec.id);
  drop_record(container_dir(), c->rec.id);
}

asio::awaitable<Reply<v1::StopContainerResponse>> CriServer::Impl::stop_container(
    v1::StopContainerRequest req) {
  using R = v1::StopContainerResponse;
  auto c = find(containers, req.container_id());
  if (!c) co_return failure<R>(StatusCode::NOT_FOUND, container_not_found(req.container_id()));
  co_await stop_entry(c, req.timeout());
  co_return Reply<R>{};
}

asio::awaitable<Reply<v1::RemoveContainerResponse>> CriServer::Impl::remove_container(
    v1::RemoveContainerRequest req) {
  using R = v1::RemoveContainerResponse;
  auto c = find(containers, req.container_id());
  if (!c) co_return Reply<R>{};  // upstream: removing a removed container is not an error
  co_await remove_entry(c);
  co_return Reply<R>{};
}

asio::awaitable<Reply<v1::ListContainersResponse>> CriServer::Impl::list_containers(
    v1::ListContainersRequest req) {
  Reply<v1::ListContainersResponse> r;
  for (const auto& kv : containers)
    if (matches(kv.second->rec, req.filter()))
      *r.resp.add_containers() = to_container(kv.second->rec);
  co_return r;
}

asio::awaitable<Reply<v1::ContainerStatusResponse>> CriServer::Impl::container_status(
    v1::ContainerStatusRequest req) {
  using R = v1::ContainerStatusResponse;
  auto c = find(containers, req.container_id());
  if (!c) co_return failure<R>(StatusCode::NOT_FOUND, container_not_found(req.container_id()));
  Reply<R> r;
  *r.resp.mutable_status() = to_container_status(c->rec);
  co_return r;
}

// ------------------------------------------------------------------ images

std::map<std::string, std::vector<images::ImageRef>> CriServer::Impl::images_by_id() {
  std::map<std::string, std::vector<images::ImageRef>> by_id;
  for (auto& ref : store.list()) by_id[ref.id].push_back(std::move(ref));
  return by_id;
}

asio::awaitable<Reply<v1::ListImagesResponse>> CriServer::Impl::list_images(
    v1::ListImagesRequest req) {
  Reply<v1::ListImagesResponse> r;
  std::string only;
  if (!req.filter().image().image().empty()) {
    auto f = store.find(req.filter().image().image());
    if (!f) co_return r;
    only = f->id;
  }
  for (const auto& [id, refs] : images_by_id())
    if (only.empty() || id == only) *r.resp.add_images() = to_image(refs);
  co_return r;
}

asio::awaitable<Reply<v1::ImageStatusResponse>> CriServer::Impl::image_status(
    v1::ImageStatusRequest req) {
  using R = v1::ImageStatusResponse;
  if (req.image().image().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT, "image is required");
  Reply<R> r;
  auto f = store.find(req.image().image());
  if (!f) co_return r;  // upstream: an absent image is an empty reply, not an error
  auto all = images_by_id();
  *r.resp.mutable_image() = to_image(all[f->id]);
  co_return r;
}

asio::awaitable<Reply<v1::PullImageResponse>> CriServer::Impl::pull_image(
    v1::PullImageRequest req) {
  using R = v1::PullImageResponse;
  std::string image = req.image().image();
  if (image.empty()) co_return failure<R>(StatusCode::INVALID_ARGUMENT, "image is required");
  auto img = co_await image_service.ensure_image(image, pods::PullPolicy::kAlways);
  if (!img)
    co_return failure<R>(StatusCode::UNKNOWN,
                         "failed to pull image \"" + image + "\": " + img.error());
  Reply<R> r;
  // As containerd: the image id (config digest).
  auto stored = store.find(img->image_ref);
  r.resp.set_image_ref(stored ? stored->id : img->image_id);
  co_return r;
}

asio::awaitable<Reply<v1::RemoveImageResponse>> CriServer::Impl::remove_image(
    v1::RemoveImageRequest req) {
  using R = v1::RemoveImageResponse;
  if (req.image().image().empty())
    co_return failure<R>(StatusCode::INVALID_ARGUMENT, "image is required");
  auto rm = store.remove(req.image().image());
  if (!rm && rm.error().kind == images::ErrorKind::kInUse)
    co_return failure<R>(StatusCode::FAILED_PRECONDITION, rm.error().message);
  if (!rm && rm.error().kind != images::ErrorKind::kNotFound)
    co_return failure<R>(StatusCode::UNKNOWN, rm.error().message);
  co_return Reply<R>{};
}

asio::awaitable<Reply<v1::ImageFsInfoResponse>> CriServer::Impl::image_fs_info(
    v1::ImageFsInfoRequest) {
  Reply<v1::ImageFsInfoResponse> r;
  std::uint64_t used = 0;
  for (const auto& [id, refs] : images_by_id()) used += refs.front().size;
  auto* u = r.resp.add_image_filesystems();
  u->set_timestamp(now_ns());
  u->mutable_fs_id()->set_mountpoint(store.dir().string());
  u->mutable_used_bytes()->set_value(used);
  u->mutable_inodes_used()->set_value(0);
  co_return r;
}

// ------------------------------------------------------------------ CriServer

CriServer::CriServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CriServer::~CriServer() { stop(); }

std::expected<std::unique_ptr<CriServer>, std::string> CriServer::start(
    asio::any_io_executor ex, CriServerOptions options, pods::ContainerRuntime& runtime,
    pods::ImageService& image_service, images::ImageStore& store) {
  auto impl =
      std::make_unique<Impl>(std::move(ex), std::move(options), runtime, image_service, store);
  std::error_code ec;
  for (const auto& d : {impl->sandbox_dir(), impl->container_dir()}) {
    fs::create_directories(d, ec);
    if (ec) return std::unexpected("mkdir " + d + ": " + ec.message());
  }
  impl->load();
  asio::co_spawn(impl->ex, impl->adopt(), asio::detached);
  const std::string& path = impl->opts.socket_path;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  fs::remove(path, ec);
  impl->runtime_svc = std::make_unique<RuntimeSvc>(*impl);
  impl->image_svc = std::make_unique<ImageSvc>(*impl);
  grpc::ServerBuilder b;
  b.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  b.RegisterService(impl->runtime_svc.get());
  b.RegisterService(impl->image_svc.get());
  impl->server = b.BuildAndStart();
  if (!impl->server) return std::unexpected("CRI: listen on unix:" + path + " failed");
  if (::chmod(path.c_str(), 0660) != 0)
    log::warn("cri: chmod 0660 {}: {}", path, std::strerror(errno));
  log::info("cri: serving runtime.v1 on unix:{}", path);
  return std::unique_ptr<CriServer>(new CriServer(std::move(impl)));
}

std::set<std::string> CriServer::images_in_use() const {
  std::set<std::string> out;
  for (const auto& kv : impl_->containers) out.insert(kv.second->rec.image_name);
  return out;
}

void CriServer::stop() {
  if (!impl_ || !impl_->server) return;
  impl_->stopping = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + 2s);
  impl_->server.reset();
  std::error_code ec;
  fs::remove(impl_->opts.socket_path, ec);
}

}  // namespace podwarp::cri
