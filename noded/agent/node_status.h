// The Node object noded registers and the status it reports, as the kubelet's
// nodestatus setters do (pkg/kubelet/nodestatus): capacity/allocatable, addresses, nodeInfo,
// daemonEndpoints, the four conditions, and the upstream labels.
//
// read_host_facts() reads the machine (/proc, /sys, uname, statvfs); everything else here is
// pure, so the tests feed HostFacts by hand. Safe from any thread.
//
// Allocatable = capacity minus the kubelet's default hard eviction thresholds (no kube- or
// system-reserved): memory - 100Mi (memory.available<100Mi), ephemeral-storage - 10%
// (nodefs.available<10%); cpu and pods as capacity.
//
// Conditions (reasons and messages as upstream):
//   MemoryPressure True when MemAvailable < 100Mi      (KubeletHasInsufficientMemory)
//   DiskPressure   True when the root dir's filesystem has < 10% available
//                                                      (KubeletHasDiskPressure)
//   PIDPressure    True when fewer than 10% of min(pid_max, threads-max) are free; upstream has
//                  no default pid.available threshold, this one is ours (KubeletHasInsufficientPID)
//   Ready          True, "kubelet is posting ready status" (KubeletReady); when the cgroup
//                  manager cannot enforce limits, ". WARNING: ..." is appended as upstream does
//                  for unsupported CPU hardcapping.
// lastTransitionTime is kept from the previous status while a condition's status is the same.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::noded::agent {

struct HostFacts {
  std::int64_t cpus = 0;
  std::int64_t memory_total = 0, memory_available = 0;  // bytes (/proc/meminfo)
  std::int64_t hugepages_2mi = 0, hugepages_1gi = 0;    // bytes
  std::int64_t fs_capacity = 0, fs_available = 0;       // bytes of the root dir's filesystem
  std::int64_t pid_limit = 0, pids_in_use = 0;
  std::string machine_id, system_uuid, boot_id, kernel_version, os_image, architecture;
};

// Reads the facts of this machine; fields that cannot be read stay 0/empty.
HostFacts read_host_facts(const std::string& root_dir);

struct NodeConfig {
  std::string name;
  std::string internal_ip;      // "" = no InternalIP address
  std::string hostname;         // the Hostname address (default: name)
  int kubelet_port = 0;         // daemonEndpoints.kubeletEndpoint.Port
  std::string runtime_version;  // "podwarp://0.1.0"
  std::string kubelet_version;  // "v1.32.0-podwarp"
  std::int64_t max_pods = 110;
  // cgroup limits the manager cannot enforce (CgroupManager's ApplyReport::not_enforced).
  std::vector<std::string> cgroup_not_enforced;
  // Hard eviction thresholds (--eviction-hard): what allocatable leaves out and where the
  // pressure conditions turn True. The kubelet's defaults.
  std::int64_t memory_eviction_bytes = 100LL << 20;  // memory.available<100Mi
  int nodefs_eviction_percent = 10;                  // nodefs.available<10%
};

inline constexpr int kPidEvictionPercent = 10;

// Applies a kubelet --eviction-hard value ("memory.available<100Mi,nodefs.available<10%")
// to c. memory.available takes a quantity, nodefs.available a percentage; other signals, and
// a malformed value, are an error. Test clusters on shared disks set nodefs.available<0%, as
// kind does, so that a host's full disk does not taint the node.
std::expected<void, std::string> parse_eviction_hard(std::string_view spec, NodeConfig& c);

// "amd64" for x86_64, "arm64" for aarch64, else the machine name.
std::string go_arch(std::string_view uname_machine);

// The Node to create: metadata (name, upstream labels, annotations) and an empty spec.
json::object node_object(const NodeConfig& c, const HostFacts& h);

// The labels noded sets on its Node (kubernetes.io/hostname|os|arch, beta.kubernetes.io/os|arch).
json::object node_labels(const NodeConfig& c, const HostFacts& h);

// The Node status. `previous` is the last status (for lastTransitionTime / lastHeartbeatTime);
// `heartbeat`: set lastHeartbeatTime to now (else keep the previous one).
json::object node_status(const NodeConfig& c, const HostFacts& h, const json::value& previous,
                         std::chrono::system_clock::time_point now, bool heartbeat);

// The status without heartbeat times: two statuses with equal keys differ only in heartbeats.
json::value status_change_key(const json::value& status);

// "memory.max (...), cpu.max (...)" -> the Ready message suffix ("" when nothing is missing).
std::string cgroup_warning(const std::vector<std::string>& not_enforced);

}  // namespace podwarp::noded::agent
