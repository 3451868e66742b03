// PodWorker: the one coroutine tree that owns a pod's lifecycle, as the kubelet's
// pod_workers.go + kuberuntime SyncPod, on noded's single io_context.
//
// The pod state machine (one per pod):
//
//   [created] --start()--> SANDBOX: create_sandbox (retried with backoff on error; containers
//        |                 wait with reason ContainerCreating / PodInitializing)
//        v
//   VOLUMES: service-account tokens of projected volumes fetched (WorkerEnv::tokens), then
//        |   emptyDir/tmpfs/hostPath/configMap/secret/downwardAPI/projected prepared and
//        |   persistentVolumeClaim ones resolved (claim missing or unbound: wait); a failure
//        |   emits FailedMount ("MountVolume.SetUp failed for volume \"v\" : ...") and is
//        |   retried with backoff while the containers wait in ContainerCreating.
//        |   From here until the pod ends, every WorkerTimings::volume_resync the
//        |   configMap/secret/downwardAPI/projected volumes are rewritten from their sources
//        |   (atomically, only on change; subPath mounts keep the old file) and tokens past 80%
//        |   of their TTL (or 24 h old) are fetched again.
//        v
//   INIT: init containers one at a time, in order; each must exit 0. A failed init container is
//        |  restarted with CrashLoopBackOff unless restartPolicy is Never (then the pod is Failed
//        |  and nothing else starts).
//        v
//   RUNNING: one supervisor per app container (below); all started at once.
//        |   when no supervisor will start anything again (restartPolicy + exits) the pod is
//        |   terminal (Succeeded/Failed): sandbox and volumes are released, status is kept.
//        v
//   stop() from any state --> TERMINATING: backoff sleeps end, each running container gets
//        preStop, SIGTERM, and SIGKILL after terminationGracePeriodSeconds; then sandbox and
//        volumes are released, the persisted state removed --> [terminated] (on_terminated).
//
// A container (its supervisor):
//
//   waiting(ContainerCreating|PodInitializing) --image--> [ErrImagePull -> ImagePullBackOff]*
//     --start--> running --exit--> terminated(Completed|Error|OOMKilled|ContainerCannotRun)
//     --restart per policy--> waiting(CrashLoopBackOff, back-off 10s doubling up to 5m, reset
//     after 10m of running) --> running (restartCount+1) ...
//   Probes run while running: startup gates liveness/readiness; liveness failure kills the
//   container (it then restarts per policy, counting a restart); readiness sets ready.
//   postStart runs right after start (failure kills the container); preStop before SIGTERM.
//
// Restart safety: every start and exit is persisted (state_store.h). A worker created with a
// PodRecord adopts: running containers are waited on again (no restart), exited ones are
// reported with the runtime's exit status (or ContainerStatusUnknown), init containers that
// completed are not rerun. Container stdout/stderr are FIFOs under the pod dir opened O_RDWR
// for the container, so a container never gets SIGPIPE while noded is down and its output is
// picked up again after the restart (up to the pipe buffer, then the writer blocks).
//
// Threading: all methods and callbacks run on the io_context given to create().
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <expected>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/time.h"
#include "console/console.h"
#include "logs/cri_log.h"
#include "pods/pod_spec.h"
#include "pods/pod_status.h"
#include "pods/runtime_service.h"
#include "pods/state_store.h"
#include "pods/volumes.h"
#include "probes/prober.h"

namespace podwarp::noded::pods {

struct WorkerTimings {
  std::chrono::milliseconds backoff_base{10'000};   // first CrashLoopBackOff delay
  std::chrono::milliseconds backoff_max{300'000};   // cap
  std::chrono::milliseconds backoff_reset{600'000}; // a run this long resets the backoff
  std::chrono::milliseconds second{1000};           // unit of the spec's *Seconds fields
  std::chrono::milliseconds volume_resync{60'000};  // configMap/secret/token volume refresh
};

// Contract 6 (issue 5): a service-account token for a projected volume. The API-mode agent
// implements it with a TokenRequest (POST .../serviceaccounts/{sa}/token, boundObjectRef = the
// pod); tests use a fake. Awaited on the worker's loop; must not block it.
struct ServiceAccountTokenRequest {
  std::string ns, service_account;
  std::string audience;               // "" = the API server's default audiences
  std::int64_t expiration_seconds = 3600;
  std::string pod_name, pod_uid;
};
struct ServiceAccountToken {
  std::string token;
  WallTime expiration{};
};
using TokenSource = std::function<boost::asio::awaitable<std::expected<ServiceAccountToken, std::string>>(
    ServiceAccountTokenRequest)>;

// When a token fetched at `issued` and expiring at `expiration` is fetched again: after 80% of
// its TTL, and at the latest 24 h after it was issued (the kubelet's token manager).
WallTime token_refresh_at(WallTime issued, WallTime expiration);

struct WorkerEnv {
  ContainerRuntime* runtime = nullptr;
  ImageService* images = nullptr;
  const PodStateStore* store = nullptr;
  std::string pod_log_dir = "/var/log/pods";
  logs::CriLogWriter::Options log_options;
  ObjectLookup lookup;  // configMap/secret sources (volumes, env, imagePullSecrets), claims, PVs
  ServiceList services;  // service environment variables (API pods); unset: none
  TokenSource tokens;   // serviceAccountToken projections (null: such volumes fail to mount)
  // Node allocatable ("cpu", "memory", "ephemeral-storage"): resourceFieldRef limits.* default
  // (env and downwardAPI volumes) when a container sets no limit.
  std::map<std::string, std::string> node_allocatable;
  WorkerTimings timings;
  std::string host_ip;
  // After stop(): everything of the pod is gone.
  std::function<void(const std::string& uid)> on_terminated;
  // Pod start trace: phase ("sandbox_ready", "image_ready", "container_started", "ready") and
  // seconds since the manifest was seen; each phase once per pod.
  std::function<void(std::string_view phase, double seconds)> on_start_phase;
  // Events as the kubelet records them (type "Normal"/"Warning", reason, message), e.g.
  // ("Warning", "BackOff", "Back-off 40ms restarting failed container c in pod ..."). The
  // standalone node only logs them; tests read them.
  std::function<void(std::string_view type, std::string_view reason, const std::string& message)> on_event;
  // Something of the pod's status may have changed (called on the worker's loop, possibly
  // several times per change: the API status writer coalesces and compares).
  std::function<void(const std::string& uid)> on_status_changed;
};


class PodWorker : public std::enable_shared_from_this<PodWorker> {
 public:
  static std::shared_ptr<PodWorker> create(boost::asio::any_io_executor ex, WorkerEnv env,
                                           PodDef def, std::optional<PodRecord> adopted);
  // A pod that cannot run (invalid manifest): reported Failed with reason and message.
  static std::shared_ptr<PodWorker> create_failed(boost::asio::any_io_executor ex, WorkerEnv env,
                                                  PodDef def, std::string reason,
                                                  std::string message);

  void start();
  void stop();  // graceful; idempotent
  // stop() with a grace period in place of spec.terminationGracePeriodSeconds (API deletion:
  // metadata.deletionGracePeriodSeconds). A shorter grace given later is not applied.
  void stop(std::int64_t grace_seconds) {
    if (!stopping_) def_.grace_seconds = grace_seconds;
    stop();
  }

  const PodDef& def() const { return def_; }
  const PodStatus& status() const { return status_; }
  std::string phase() const { return compute_phase(def_, status_); }
  bool terminated() const { return terminated_; }
  bool stopping() const { return stopping_; }
  // The pod object with its current status.
  json::value pod_json() const;
  // Log file of a container's current run (or previous run); nullopt if unknown.
  std::optional<std::string> log_path(std::string_view container, bool previous) const;
  // The stdin/terminal of a container's running run (spec stdin or tty), for attach; null when
  // it has none, is not running, or was adopted after a noded restart (its console was noded's
  // and ended with it).
  std::shared_ptr<console::Console> console(std::string_view container) const;
  // The spec of a container of any kind (init, app, ephemeral); nullptr when unknown.
  const ContainerDef* container_def(std::string_view container) const;
  // Runs the ephemeral containers of `pod` (the API pod after an update) that this worker does
  // not run yet; known ones are left as they are (the API refuses changes to them).
  void add_ephemeral_containers(const json::value& pod);
  // A PersistentVolumeClaim or PersistentVolume changed: a worker waiting for its claim to be
  // bound looks again now instead of at its next poll.
  void claims_changed();

  struct Run;  // per-container supervisor state (pod_worker.cpp)
  PodWorker(boost::asio::any_io_executor ex, WorkerEnv env, PodDef def);
  ~PodWorker();

 private:
  boost::asio::awaitable<void> run_pod();
  // Fetches due tokens and (re)writes volumes; the first failure (FailedMount emitted) or
  // nullopt. `refresh`: only the refreshing kinds, and failures keep what is there.
  boost::asio::awaitable<std::optional<std::string>> sync_volumes(bool refresh);
  boost::asio::awaitable<void> refresh_volumes();
  VolumeInputs volume_inputs() const;
  boost::asio::awaitable<bool> run_init(Run& r);
  boost::asio::awaitable<void> supervise(Run& r);
  boost::asio::awaitable<std::optional<ExitInfo>> run_once(Run& r);
  boost::asio::awaitable<ExitInfo> watch(Run& r, bool adopted);
  boost::asio::awaitable<void> kill_container(Run& r, std::int64_t grace_seconds, std::string why);
  boost::asio::awaitable<void> terminate();
  boost::asio::awaitable<probes::Outcome> run_hook(Run& r, const probes::Handler& h,
                                                   std::chrono::milliseconds timeout);
  boost::asio::awaitable<bool> sleep(std::chrono::milliseconds d);  // false when stopping
  boost::asio::awaitable<void> wait_changed();
  void notify();
  void changed();  // status changed: conditions, trace
  void persist();
  void start_probes(Run& r);
  void stop_probes(Run& r);
  void record_exit(Run& r, const ExitInfo& e);
  bool should_restart(const Run& r, int exit_code) const;
  std::chrono::milliseconds next_backoff(Run& r);
  std::chrono::milliseconds enter_crash_loop_backoff(Run& r);
  void trace(std::string_view phase);
  ContainerStatus& st(Run& r);
  probes::Target probe_target(Run& r);
  std::string fifo_dir(const Run& r) const;
  Run& add_run(const ContainerDef& c, bool init, bool ephemeral, PodRecord* adopted);
  void start_ephemeral(Run& r);
  struct Stdio {
    int out_r = -1, err_r = -1;  // noded's ends (nonblocking); err_r -1 with a tty
    int out_w = -1, err_w = -1;  // the container's ends
  };
  std::expected<Stdio, std::string> open_stdio(Run& r);

  boost::asio::any_io_executor ex_;
  WorkerEnv env_;
  PodDef def_;
  PodStatus status_;
  PodRecord record_;
  // A list: ephemeral containers are appended while coroutines iterate it across co_await.
  std::list<std::unique_ptr<Run>> runs_;
  std::map<std::string, std::string> volumes_;
  struct TokenState {
    std::string token;
    WallTime refresh_at{};
  };
  std::map<std::string, TokenState> tokens_;  // by token_key(volume, path)
  std::string netns_;
  boost::asio::steady_timer changed_;
  std::vector<boost::asio::steady_timer*> sleepers_;
  bool claim_wait_ = false;  // the volume step sleeps until a claim is bound
  bool stopping_ = false, terminated_ = false, main_done_ = false, failed_only_ = false;
  // spec.activeDeadlineSeconds passed: the pod is Failed (DeadlineExceeded), its containers are
  // stopped and nothing starts again; the worker then ends as a terminal pod does.
  bool deadline_exceeded_ = false;
  bool halted() const { return stopping_ || deadline_exceeded_; }
  boost::asio::awaitable<void> enforce_deadline();
  void deadline_passed();
  bool sandbox_up_ = false;
  int active_supervisors_ = 0;
  bool ephemeral_ready_ = false;  // sandbox and volumes up, not terminal: ephemeral ones may start
  std::chrono::steady_clock::time_point seen_;
  std::set<std::string> traced_;
};

}  // namespace podwarp::noded::pods
