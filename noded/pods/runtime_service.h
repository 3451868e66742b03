// The two services the pod lifecycle asks of the rest of noded: a container runtime and an
// image service. These are narrow on purpose: the pod workers (pod_worker.h) are written and
// tested against them (fakes in tests), and noded/main.cpp adapts them to noded/runtime and
// noded/images.
//
// Threading: every method is called from the pod manager's io_context thread (one loop).
// Methods that wait (sandbox creation, image pulls, container exit, exec) are Asio awaitables
// and must not block the loop for long; the rest are quick, non-blocking calls.
// Errors are human-readable messages naming the step ("create sandbox: mount nsfs on ...: EPERM").
#pragma once

#include <sys/types.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::noded::pods {

template <class T>
using Awaitable = boost::asio::awaitable<T>;
using WallTime = std::chrono::system_clock::time_point;

// ------------------------------------------------------------------ images

// The parts of an OCI image config a container start needs.
struct ImageInfo {
  std::string image_ref;  // as resolved ("docker.io/library/busybox:latest")
  std::string image_id;   // "sha256:..." of the config (status.containerStatuses[].imageID)
  std::vector<std::string> entrypoint, cmd, env;  // env as "K=V"
  std::string working_dir;
  std::string user;
};

enum class PullPolicy { kAlways, kIfNotPresent, kNever };

// Looks up an object by kind ("ConfigMap", "Secret", "PersistentVolumeClaim", and
// "PersistentVolume" with ns ""), namespace and name (manifest folder in standalone mode:
// ConfigMaps and Secrets only; the API server's objects in API mode). nullopt: absent.
using ObjectLookup = std::function<std::optional<json::value>(
    std::string_view kind, std::string_view ns, std::string_view name)>;

// The cluster's Services, every namespace (API mode), for the kubelet's service environment
// variables; an error while they have not been read once yet. Unset (standalone): no such
// variables, as a kubelet without an API server.
using ServiceList = std::function<
    std::expected<std::vector<std::shared_ptr<const json::value>>, std::string>()>;

// A pull with the pod's imagePullSecrets: the Secret objects (type
// kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg) in spec.imagePullSecrets order.
struct ImagePullRequest {
  std::string image;
  PullPolicy policy = PullPolicy::kIfNotPresent;
  std::vector<json::value> pull_secrets;
};

class ImageService {
 public:
  virtual ~ImageService() = default;
  // Makes the image present according to the policy and returns its config. An error is a
  // pull failure (the pod worker reports ErrImagePull, then ImagePullBackOff); with kNever and
  // the image absent the message should start with "ErrImageNeverPull:" (reported as that reason).
  virtual Awaitable<std::expected<ImageInfo, std::string>> ensure_image(const std::string& image,
                                                                        PullPolicy policy) = 0;
  // The same with registry credentials from the pull secrets (matched to the image's registry
  // as the kubelet's credential keyring does; each match tried in turn, then anonymous when
  // none matches). The default ignores the secrets.
  virtual Awaitable<std::expected<ImageInfo, std::string>> ensure_image_with_secrets(
      const ImagePullRequest& req) {
    co_return co_await ensure_image(req.image, req.policy);
  }
};

// ------------------------------------------------------------------ runtime

struct SandboxRequest {
  std::string pod_uid, pod_namespace, pod_name;
  std::string hostname;   // pod name or spec.hostname
  const json::value* pod = nullptr;  // full pod object (spec.securityContext, hostNetwork, ...)
};

struct Sandbox {
  std::string netns_path;  // pinned net namespace ("" = the host's, e.g. hostNetwork or tests)
  std::string pod_ip;      // "" when the sandbox has loopback only (standalone mode)
};

// A volume ready on the host, to be bind-mounted into a container.
struct MountRequest {
  std::string host_path;
  std::string container_path;
  bool read_only = false;
};

struct ContainerStartRequest {
  std::string pod_uid, pod_namespace, pod_name;
  std::string container_name;
  bool is_init = false;
  int attempt = 0;                        // restartCount of this start
  const json::value* pod = nullptr;       // the whole pod (security contexts, hostname, ...)
  const json::value* container = nullptr; // the container object from the pod spec
  const ImageInfo* image = nullptr;
  std::vector<MountRequest> mounts;       // resolved volumeMounts
  int stdout_fd = -1, stderr_fd = -1;     // write ends of pipes; the runtime dups what it keeps
  // spec stdin/tty (console/console.h): the stdin pipe's read end, or with tty the pty slave
  // (then also stdout_fd and stderr_fd), which becomes the controlling terminal; -1: /dev/null.
  int stdin_fd = -1;
  bool tty = false;
  // Ephemeral containers with a targetContainerName: the runtime id of that container's
  // running run, whose pid namespace this one joins (kubectl debug --target).
  std::string target_container_id;
  // Env sources (configMapKeyRef, secretKeyRef, envFrom); null: none can be found.
  const ObjectLookup* lookup = nullptr;
  // Services for the service environment variables; null or unset: none.
  const ServiceList* services = nullptr;
  // The downward API's view of addresses (status.hostIP(s), status.podIP(s)).
  std::vector<std::string> host_ips, pod_ips;
  // Node allocatable ("cpu", "memory", "ephemeral-storage" -> quantity text): the default of
  // resourceFieldRef limits.* when the container sets no limit (as the kubelet).
  std::map<std::string, std::string> node_allocatable;
  // Events found while building the container config (InvalidEnvironmentVariableNames).
  std::function<void(std::string_view type, std::string_view reason, const std::string& message)>
      on_event;
};

// A start error whose message starts with this prefix is a configuration error (a missing
// ConfigMap/Secret or key): the container stays waiting with reason CreateContainerConfigError
// and the message after the prefix, and the start is retried (no restart is counted).
inline constexpr std::string_view kCreateContainerConfigError = "CreateContainerConfigError: ";

// What identifies a running container across noded restarts (persisted by the pod layer).
struct ContainerHandle {
  std::string id;                 // runtime container id ("podwarp://<hex>")
  pid_t pid = -1;                 // host pid of the container's init
  std::uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat: tells a recycled pid apart
};

struct ExitInfo {
  bool code_known = true;  // false: the process exited while noded was down and the runtime
                           // could not recover its status (see README "Restart safety")
  int exit_code = 0;       // 128+signal for signals, as the kubelet reports
  int signal = 0;
  bool oom_killed = false;  // memory.events oom_kill grew during the container's life
  WallTime finished_at{};
};

struct ExecResult {
  int exit_code = -1;
  bool timed_out = false;
  std::string output;  // combined stdout+stderr, truncated by the runtime (10 KiB is plenty)
};

enum class AdoptState { kRunning, kExited, kGone };
struct AdoptResult {
  AdoptState state = AdoptState::kGone;
  ExitInfo exit;  // kExited: how it ended (code_known may be false)
};

// ------------------------------------------------------------------ exec sessions (node API)
// An interactive process in a running container (kubectl exec / attach through the node API).

struct ExecSessionRequest {
  std::vector<std::string> argv;
  bool want_stdin = false;   // a pipe the caller writes (or the pty with tty)
  bool want_stdout = true;   // unset: /dev/null
  bool want_stderr = true;   // unset: /dev/null; with tty stderr is merged into the pty
  bool tty = false;     // one pty for 0/1/2, the process's controlling terminal (setsid)
};

// The process and its stdio. Fds are owned by the session, O_NONBLOCK|O_CLOEXEC, -1 when not
// requested; with tty, stdin_fd() == stdout_fd() == the pty master and stderr_fd() is -1.
// Destroying a session whose process still runs kills it (SIGKILL) and reaps it.
// Threading: the loop thread, as the runtime.
class ExecSession {
 public:
  virtual ~ExecSession() = default;
  virtual int stdin_fd() const = 0;
  virtual int stdout_fd() const = 0;
  virtual int stderr_fd() const = 0;
  // End of input: closes the stdin pipe (with a tty: writes the terminal's EOF character).
  virtual void close_stdin() = 0;
  // TIOCSWINSZ on the pty (no-op without tty).
  virtual std::expected<void, std::string> resize(std::uint16_t width, std::uint16_t height) = 0;
  // Completes when the process exits: its exit code, 128+signal when killed; -1 when the
  // wait was cancelled (the process is not reaped then; wait again).
  virtual Awaitable<int> wait() = 0;
  virtual void kill() = 0;
};

class ContainerRuntime {
 public:
  virtual ~ContainerRuntime() = default;

  // Creates (or, after a restart of noded, finds again) the pod sandbox: namespaces, pod cgroup.
  virtual Awaitable<std::expected<Sandbox, std::string>> create_sandbox(const SandboxRequest&) = 0;
  // Removes everything of the sandbox (pins, cgroups, volumes' tmpfs mounts it made). Only
  // called once all containers have exited. Idempotent.
  virtual Awaitable<std::expected<void, std::string>> release_sandbox(const std::string& pod_uid) = 0;

  // Starts a container and returns once its process exec'd. An error is a start failure
  // (reported as reason ContainerCannotRun / StartError with the message).
  virtual Awaitable<std::expected<ContainerHandle, std::string>> start_container(
      const ContainerStartRequest&) = 0;
  // Completes when the container's process exits (for started and for adopted containers).
  // Called at most once per container.
  virtual Awaitable<ExitInfo> wait_container(const std::string& id) = 0;
  // Sends a signal to the container's init (SIGKILL: kills the whole container cgroup).
  virtual std::expected<void, std::string> signal_container(const std::string& id, int sig) = 0;
  // Frees what remains of an exited container (its cgroup, rootfs mount). Idempotent.
  virtual void remove_container(const std::string& id) = 0;

  // Runs argv inside a running container (exec probes and hooks), with a timeout.
  virtual Awaitable<ExecResult> exec_in_container(const std::string& id,
                                                  const std::vector<std::string>& argv,
                                                  std::chrono::milliseconds timeout) = 0;

  // After a noded restart: is the container recorded before still running (then the runtime
  // takes it over again and wait_container() works for it), did it exit (with its status if
  // the runtime can recover it), or is nothing known of it.
  virtual Awaitable<AdoptResult> adopt_container(const std::string& pod_uid,
                                                 const ContainerHandle& h) = 0;

  // --- node API streams (exec/attach/port-forward); defaults: not supported ---
  // Starts argv in the running container `id` with the requested stdio. Errors as the
  // kubelet's: "container not found (\"<id>\")" when the runtime does not know it running.
  virtual Awaitable<std::expected<std::unique_ptr<ExecSession>, std::string>> start_exec_session(
      const std::string& id, const ExecSessionRequest& req) {
    (void)id;
    (void)req;
    co_return std::unexpected("exec sessions are not supported by this runtime");
  }
  // The network namespace pin of a pod's sandbox ("" = the caller's own namespace, used by
  // tests); error when the pod has no sandbox.
  virtual std::expected<std::string, std::string> sandbox_netns(const std::string& pod_uid) const {
    return std::unexpected("pod " + pod_uid + " has no sandbox known to this runtime");
  }
};

}  // namespace podwarp::noded::pods
