// NodeRuntime: noded's pods::ContainerRuntime over the kernel-facing parts (noded/runtime,
// noded/cgroup, noded/ns) and the image store's rootfs mounts (noded/images).
//
// Naming (deterministic, so that a restarted noded finds everything again):
//   container id     "podwarp://<32 hex>"; <hex> names the rootfs (images/containers/<hex>)
//                    and the container cgroup <cgroup-root>/pod<uid>/<hex>
//   sandbox          pins <run_dir>/ns/<uid>/{net,ipc,uts[,pid]}, files <run_dir>/pods/<uid>/,
//                    cgroup <cgroup-root>/pod<uid> (runtime::PodSandbox's layout)
// The sandbox's network namespace gets "lo" up (loopback.h) and, with attach_network set, the
// pod network (noded/net: veth eth0, /32 podIP, routes) before any container starts.
//
// Restart safety: adopt_container() checks that the recorded pid still has the recorded start
// time (field 22 of /proc/<pid>/stat), opens a pidfd and re-checks (no recycled pid is ever
// adopted). An adopted process is not noded's child, so its exit is seen through its pidfd but
// its exit code cannot be read with waitid: it comes from the pinned BPF exit recorder
// (exitrec/exit_recorder.h: watched at start, taken at exit), which also saw the exits that
// happened while noded was down; then from
// the zombie's /proc/<pid>/stat if not reaped yet; else code_known=false (the pod layer says
// ContainerStatusUnknown). OOM kills are told by memory.events of the kept container cgroup.
// The cgroup and rootfs of a container that exited while noded was down are removed at
// adoption.
//
// Threading: all methods on noded's loop thread. The clone3 (vfork-style) start of a container
// process, which blocks its thread until the child has set up its mounts and exec'd (several
// milliseconds), runs on a small pool of starter threads, so that the starts of many pods
// overlap and the loop keeps serving; everything else that waits is asynchronous.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "cgroup/cgroup.h"
#include "exitrec/exit_recorder.h"
#include "images/image_store.h"
#include "ns/pod_namespaces.h"
#include "pods/runtime_service.h"
#include "runtime/runtime.h"

namespace podwarp::noded::adapters {

struct NodeRuntimeOptions {
  std::string run_dir;      // <root-dir>/run: namespace pins and /etc files
  std::string resolv_conf;  // contents for /etc/resolv.conf; "" = the host's /etc/resolv.conf
  // Per pod (dnsPolicy/dnsConfig, noded/dns/resolv_conf.h, wired by main): the pod's
  // /etc/resolv.conf; "" = `resolv_conf` above; an error fails the sandbox. Unset: every pod
  // gets `resolv_conf`.
  std::function<std::expected<std::string, std::string>(const json::value& pod)> pod_resolv_conf;
  // Exit statuses of processes noded did not reap (after a restart): every started container
  // is watched; null: such exits are reported with code_known=false.
  exitrec::ExitRecorder* exits = nullptr;
  // The pod network (noded/net, wired by main): connects a new or adopted sandbox's network
  // namespace and returns the pod's IP; an error fails the sandbox (the pod worker retries).
  // Unset: sandboxes have loopback only and no podIP. detach_network undoes it in
  // release_sandbox (idempotent).
  std::function<pods::Awaitable<std::expected<std::string, std::string>>(
      const std::string& pod_uid, const std::string& netns_path)>
      attach_network;
  std::function<void(const std::string& pod_uid)> detach_network;
};

class NodeRuntime final : public pods::ContainerRuntime {
 public:
  NodeRuntime(boost::asio::any_io_executor ex, NodeRuntimeOptions opts,
              cgroup::CgroupManager& cgroups, images::ImageStore& images);
  ~NodeRuntime() override;

  pods::Awaitable<std::expected<pods::Sandbox, std::string>> create_sandbox(
      const pods::SandboxRequest& req) override;
  pods::Awaitable<std::expected<void, std::string>> release_sandbox(
      const std::string& pod_uid) override;
  pods::Awaitable<std::expected<pods::ContainerHandle, std::string>> start_container(
      const pods::ContainerStartRequest& req) override;
  pods::Awaitable<pods::ExitInfo> wait_container(const std::string& id) override;
  std::expected<void, std::string> signal_container(const std::string& id, int sig) override;
  void remove_container(const std::string& id) override;
  pods::Awaitable<pods::ExecResult> exec_in_container(const std::string& id,
                                                      const std::vector<std::string>& argv,
                                                      std::chrono::milliseconds timeout) override;
  pods::Awaitable<pods::AdoptResult> adopt_container(const std::string& pod_uid,
                                                     const pods::ContainerHandle& h) override;
  // Node API streams: exec with pipes or a pty (runtime::exec_in with stdin_fd and
  // controlling_tty), and the pod's netns pin for port-forward.
  pods::Awaitable<std::expected<std::unique_ptr<pods::ExecSession>, std::string>>
  start_exec_session(const std::string& id, const pods::ExecSessionRequest& req) override;
  std::expected<std::string, std::string> sandbox_netns(const std::string& pod_uid) const override;

  // At start, before any pod is adopted: releases rootfs mounts of containers that have no
  // cgroup under the cgroup root (a start interrupted by a crash of noded, before the pod layer
  // could persist it). A container that ran has its cgroup until it is removed, so running and
  // not-yet-adopted containers keep their rootfs. Returns how many were released.
  int release_orphan_rootfs();

  // Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); nullopt if gone.
  static std::optional<std::uint64_t> start_ticks(pid_t pid);
  // "podwarp://<hex>" -> "<hex>" when well-formed.
  static std::optional<std::string> id_hex(std::string_view id);

  struct Container;
  struct PodSandboxState;

 private:
  PodSandboxState* sandbox(const std::string& uid);
  void cleanup_container_files(const std::string& uid, const std::string& hex);

  boost::asio::any_io_executor ex_;
  NodeRuntimeOptions opts_;
  cgroup::CgroupManager& cgroups_;
  images::ImageStore& images_;
  std::map<std::string, std::unique_ptr<PodSandboxState>> sandboxes_;  // by pod uid
  std::map<std::string, std::unique_ptr<Container>> containers_;       // by container id
  // Container process starts (runtime::start_container is thread-safe). Never joined: noded
  // ends with _exit().
  std::unique_ptr<boost::asio::thread_pool> starters_;
};

}  // namespace podwarp::noded::adapters
