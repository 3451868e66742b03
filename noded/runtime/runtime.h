// The kernel-facing container runtime of noded: what runc and a containerd shim do, in-process.
//
// A pod is a PodSandbox: its net/ipc/uts namespaces pinned by bind mounts (no pause process,
// see ns/pod_namespaces.h) and its cgroup <root>/pod<uid>. A container is one clone3() call:
//   clone3(CLONE_INTO_CGROUP | CLONE_PIDFD | CLONE_NEWNS | CLONE_NEWPID (unless the pod shares
//          a pid namespace))
// whose child joins the pod namespaces, builds the mount namespace (rootfs, /proc, /dev,
// /sys, /etc files, volumes, pivot_root, masked and read-only paths), switches user and
// capabilities, installs seccomp and execs. The result is a Process that owns a pidfd; exit is
// observed through io_uring (Asio) and reaped with waitid(P_PIDFD).
//
// Namespace joining, the chosen approach:
//   - net, ipc, uts (and mnt for exec): setns() in the cloned child, before exec. The child is
//     single-threaded, so per-thread setns semantics do not matter there, and the parent's
//     threads are never moved.
//   - pid (shared pid namespace, and exec): setns(CLONE_NEWPID) only changes the namespace of
//     the caller's future children, so the calling thread enters the target pid namespace
//     just around clone3() and returns to its own right after (pid namespaces are per-thread
//     for this purpose). Other threads are unaffected.
// Child discipline: everything (paths, argv, envp, mount table, seccomp BPF) is prepared
// before clone3; the child only makes raw syscalls (no malloc, no locks, no glibc setxid
// wrappers) and reports a failure as {errno, step} through a CLOEXEC pipe. On x86_64 the clone
// is vfork-style (CLONE_VM|CLONE_VFORK on a private stack, like posix_spawn): no page tables
// are copied whatever noded's size, and the calling thread sleeps until the child execs or
// fails. Signals are blocked around clone3; the child resets dispositions and the mask.
// start_container() returns once the child has exec'd (the pipe closed) or failed: "container
// start: pivot_root: EINVAL". The pod lifecycle code maps such errors to the kubelet reason
// StartError (ContainerCannotRun).
//
// Threads: start_container() and exec_in() are safe to call concurrently from different
// threads (each blocks its thread for the few milliseconds of a start). A Process is owned
// by one thread at a time.
#pragma once

#include <sys/types.h>

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/cgroup.h"
#include "cgroup/sys_error.h"
#include "ns/pod_namespaces.h"

namespace podwarp::noded::runtime {

// ---------------------------------------------------------------- pure spec helpers

// The process args as the kubelet + containerd compute them: with `command` set, command +
// args (the image's Cmd is ignored); otherwise image entrypoint + (args if set, else image
// cmd). Error "no command specified" when that is empty.
std::expected<std::vector<std::string>, std::string> resolve_command(
    const std::vector<std::string>& command, const std::vector<std::string>& args,
    const std::vector<std::string>& image_entrypoint, const std::vector<std::string>& image_cmd);

// $(VAR) expansion as the kubelet's third_party expansion.Expand: $(NAME) is replaced by
// lookup(NAME) when it returns a value and kept verbatim otherwise; $$ is an escaped $; an
// unterminated $( is kept.
std::string expand_vars(std::string_view input,
                        const std::function<std::optional<std::string>(std::string_view)>& lookup);

struct EnvVar {
  std::string name;
  std::string value;
};
// The container environment: image env ("K=V" strings) overridden by the container's env, whose
// values are expanded in order against the container env vars defined before them (kubelet
// makeEnvironmentVariables). Returns "K=V" strings, image order first.
std::vector<std::string> build_env(const std::vector<std::string>& image_env,
                                   const std::vector<EnvVar>& container_env);
// Expands $(VAR) in command/args against the container env (kubelet ExpandContainerCommandAndArgs).
std::vector<std::string> expand_args(const std::vector<std::string>& args,
                                     const std::vector<EnvVar>& container_env);

// containerd's default capability set for containers.
inline constexpr std::string_view kDefaultCapabilities[] = {
    "CHOWN",   "DAC_OVERRIDE", "FSETID",           "FOWNER",
    "MKNOD",   "NET_RAW",      "SETGID",           "SETUID",
    "SETFCAP", "SETPCAP",      "NET_BIND_SERVICE", "SYS_CHROOT",
    "KILL",    "AUDIT_WRITE"};

// Capability number for "NET_ADMIN" or "CAP_NET_ADMIN" (case-insensitive); -1 if unknown.
int capability_number(std::string_view name);
// The bounding/effective set as a mask, as containerd computes it: privileged -> all; else the
// default set, "ALL" in add -> all, "ALL" in drop -> none, then the other adds, then the other
// drops. Unknown names are an error ("unknown capability \"FOO\"").
std::expected<std::uint64_t, std::string> compute_capabilities(const std::vector<std::string>& add,
                                                               const std::vector<std::string>& drop,
                                                               bool privileged);
// Highest capability the kernel knows (/proc/sys/kernel/cap_last_cap), and the mask of all.
int last_capability();
std::uint64_t all_capabilities();

// Defaults of containerd/runc for unprivileged containers.
const std::vector<std::string>& default_masked_paths();
const std::vector<std::string>& default_readonly_paths();

// The identity of an image/config user string, as containerd resolves it (oci.WithUser and
// WithAdditionalGIDs): "" -> root; "uid" -> that uid, gid from its passwd entry (0 if none);
// "name" -> passwd lookup (error if absent); "user:group" with either part numeric or a name
// (group names from /etc/group). additional_gids: groups of /etc/group that list the user name
// as a member. The pod lifecycle code then applies runAsUser/runAsGroup/supplementalGroups.
struct UserIds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  bool operator==(const UserIds&) const = default;
};
std::expected<UserIds, std::string> resolve_user(std::string_view user, std::string_view passwd,
                                                 std::string_view group);
// The same, reading <rootfs>/etc/passwd and /etc/group with openat2(RESOLVE_IN_ROOT), so
// symlinks in the image cannot point at host files. Missing files count as empty.
std::expected<UserIds, SysError> resolve_user_in_rootfs(const std::string& rootfs,
                                                        std::string_view user);

// ---------------------------------------------------------------- specs

struct BindMount {
  std::string source;       // host path (emptyDir dir, hostPath, configMap/secret dir, file)
  std::string destination;  // absolute path in the container; ".." components rejected
  bool readonly = false;    // recursive read-only (mount_setattr AT_RECURSIVE)
};

enum class SeccompProfile { kRuntimeDefault, kUnconfined };

// Identity, privileges and stdio of a process (shared by containers and exec).
struct ProcessSpec {
  std::vector<std::string> argv;  // resolved and expanded; argv[0] without '/' is looked up in
                                  // the PATH of `env` (default PATH if none)
  std::vector<std::string> env;   // "K=V"
  std::string working_dir = "/";  // created if missing (container start only)
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> supplemental_groups;
  // Bounding set, also permitted+effective (uid 0 keeps them across exec; other uids lose them,
  // as with containerd). From compute_capabilities.
  std::uint64_t capabilities = 0;
  bool no_new_privs = false;  // allowPrivilegeEscalation=false
  SeccompProfile seccomp = SeccompProfile::kRuntimeDefault;
  int stdout_fd = -1;  // caller-owned; -1: /dev/null
  int stderr_fd = -1;  // caller-owned; -1: /dev/null
  int stdin_fd = -1;   // caller-owned; -1: /dev/null
  // The child calls setsid() and makes its stdin (a pty slave) its controlling terminal
  // (TIOCSCTTY), as runc does for `terminal: true` (exec -t). REQUIRES: stdin_fd is a tty.
  bool controlling_tty = false;
};

struct ContainerSpec {
  std::string name;    // for messages
  std::string rootfs;  // prepared root directory (overlay mount from the image store)
  ProcessSpec process;
  // Namespaces to join: pin files (PodNamespaces::path). Empty: a new namespace of its own
  // (standalone runs, tests, the benchmark). `hostname` is set only in an own UTS namespace.
  std::string net_ns, ipc_ns, uts_ns;
  std::string pid_ns;  // shared pid ns pin; empty: new pid ns (the process is pid 1)
  std::string hostname;
  std::string cgroup;  // absolute cgroup2 dir to start in (CLONE_INTO_CGROUP); empty: caller's
  std::vector<BindMount> mounts;
  // Files noded wrote, bind-mounted at /etc/hosts, /etc/hostname, /etc/resolv.conf (empty: none);
  // read-only when readonly_rootfs, as containerd.
  std::string hosts_file, hostname_file, resolv_conf_file;
  bool readonly_rootfs = false;
  bool privileged = false;  // sysfs rw, no masked/read-only paths (caps and seccomp: set by caller)
  std::vector<std::string> masked_paths = default_masked_paths();
  std::vector<std::string> readonly_paths = default_readonly_paths();
};

struct ExitStatus {
  bool signaled = false;
  int code = 0;    // exit code when !signaled
  int signal = 0;  // terminating signal when signaled (128+n is the caller's convention)
  bool operator==(const ExitStatus&) const = default;
};

// A started process: owns its pidfd. Destroying a Process closes the pidfd but neither kills nor
// reaps: call wait()/async_wait() (or kill() then wait) to avoid a zombie.
class Process {
 public:
  Process() = default;
  Process(pid_t pid, int pidfd, std::string cgroup);
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }  // in noded's pid namespace
  int pidfd() const { return pidfd_; }
  const std::string& cgroup() const { return cgroup_; }
  bool reaped() const { return exit_.has_value(); }

  // pidfd_send_signal: never hits a recycled pid.
  std::expected<void, SysError> kill(int sig) const;
  // cgroup.kill of the process's cgroup: every process of the container.
  std::expected<void, SysError> kill_cgroup() const;
  // Non-blocking reap: nullopt while running.
  std::expected<std::optional<ExitStatus>, SysError> try_wait();
  // Blocking reap.
  std::expected<ExitStatus, SysError> wait();
  // Waits on the pidfd through the calling coroutine's executor (io_uring poll), then reaps.
  // Cancellable by the executor's cancellation; the Process must outlive the wait.
  boost::asio::awaitable<std::expected<ExitStatus, SysError>> async_wait();

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::string cgroup_;
  std::optional<ExitStatus> exit_;
};

// Starts a container process and returns once it has exec'd. Errors:
// "container start: <step>: <ERRNO>" (steps: "pivot_root", "mount proc on /proc",
// "exec /bin/nope", ...), or a preparation error (bad spec, missing volume source).
std::expected<Process, SysError> start_container(const ContainerSpec& spec);

// Starts a process inside a running container: joins its mnt, pid, net, ipc and uts namespaces
// through its pidfd, and `cgroup` (the container's, empty: caller's), then runs `proc` with its
// own user, capabilities and seccomp. working_dir must exist.
std::expected<Process, SysError> exec_in(const Process& container, const ProcessSpec& proc,
                                         const std::string& cgroup);

// ---------------------------------------------------------------- pod sandbox

struct SandboxConfig {
  std::string run_dir;  // /run/podwarp; pins and etc files go under it
  std::string pod_uid;
  std::string hostname;
  bool share_pid_ns = false;  // shareProcessNamespace: the first container becomes pid 1
  cgroup::Limits limits;      // pod-level limits (cgroup::pod_limits)
  // Contents of /etc/hosts; empty: the kubelet's default without the "<podIP> <hostname>" line.
  std::string hosts;
  std::string resolv_conf;  // contents of /etc/resolv.conf; empty: none is mounted
};

// Owns a pod's pinned namespaces, its cgroup <root>/pod<uid> and the files under
// <run_dir>/pods/<uid>/. Not thread-safe; movable. The destructor does not release (pods
// outlive noded restarts): call release().
class PodSandbox {
 public:
  static std::expected<PodSandbox, SysError> create(cgroup::CgroupManager& cgroups,
                                                    const SandboxConfig& config);

  const ns::PodNamespaces& namespaces() const { return ns_; }
  const cgroup::ApplyReport& cgroup_report() const { return report_; }
  std::string cgroup_path() const { return cgroups_->path_of(cgroup_rel_); }

  // Creates the container's cgroup <pod>/<name> with `limits`; returns its report.
  std::expected<cgroup::ApplyReport, SysError> create_container_cgroup(
      std::string_view name, const cgroup::Limits& limits);
  // Fills spec's namespaces, cgroup (<pod>/<name>) and /etc files. In share_pid_ns mode the
  // first container gets a new pid ns; call adopt_first_container() after it started.
  void configure(ContainerSpec& spec, std::string_view container_name) const;
  // shareProcessNamespace: pins the pid namespace of the pod's first container.
  std::expected<void, SysError> adopt_first_container(const Process& p);
  // Removes the container cgroup (killing what is left in it).
  std::expected<void, SysError> remove_container_cgroup(std::string_view name);

  // Kills everything in the pod cgroup, removes cgroups, unpins namespaces, removes files.
  std::expected<void, SysError> release();

 private:
  PodSandbox(cgroup::CgroupManager& cg, ns::PodNamespaces ns, std::string rel, std::string files,
             bool share_pid)
      : cgroups_(&cg),
        ns_(std::move(ns)),
        cgroup_rel_(std::move(rel)),
        files_dir_(std::move(files)),
        share_pid_(share_pid) {}
  cgroup::CgroupManager* cgroups_;
  ns::PodNamespaces ns_;
  std::string cgroup_rel_;
  std::string files_dir_;
  bool share_pid_ = false;
  bool has_resolv_ = false;
  cgroup::ApplyReport report_;
};

}  // namespace podwarp::noded::runtime
