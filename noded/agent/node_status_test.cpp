#include "agent/node_status.h"

#include <gtest/gtest.h>

#include "podwarp/time.h"

namespace podwarp::noded::agent {
namespace {

HostFacts facts() {
  HostFacts h;
  h.cpus = 4;
  h.memory_total = 8LL << 30;
  h.memory_available = 4LL << 30;
  h.fs_capacity = 100LL << 30;
  h.fs_available = 50LL << 30;
  h.pid_limit = 4194304;
  h.pids_in_use = 300;
  h.machine_id = "m";
  h.system_uuid = "u";
  h.boot_id = "b";
  h.kernel_version = "6.18.0";
  h.os_image = "Debian GNU/Linux 12 (bookworm)";
  h.architecture = "amd64";
  return h;
}

NodeConfig config() {
  NodeConfig c;
  c.name = "n1";
  c.internal_ip = "10.0.0.5";
  c.kubelet_port = 10250;
  c.runtime_version = "podwarp://0.1.0";
  c.kubelet_version = "v1.32.0-podwarp";
  return c;
}

const json::value& cond(const json::value& st, std::string_view type) {
  for (const auto& c : find_path(st, {"conditions"})->as_array())
    if (get_string(c, {"type"}) == type) return c;
  static json::value none;
  return none;
}

TEST(NodeStatus, CapacityAllocatableInfoAddresses) {
  auto now = std::chrono::system_clock::now();
  json::value st = node_status(config(), facts(), nullptr, now, true);
  EXPECT_EQ(get_string(st, {"capacity", "cpu"}), "4");
  EXPECT_EQ(get_string(st, {"capacity", "memory"}), "8388608Ki");
  EXPECT_EQ(get_string(st, {"allocatable", "memory"}), "8286208Ki");  // - 100Mi
  EXPECT_EQ(get_string(st, {"capacity", "pods"}), "110");
  EXPECT_EQ(get_string(st, {"capacity", "ephemeral-storage"}), "104857600Ki");
  EXPECT_EQ(get_string(st, {"allocatable", "ephemeral-storage"}),
            std::to_string((100LL << 30) - (100LL << 30) / 100 * 10));
  EXPECT_EQ(get_string(st, {"nodeInfo", "containerRuntimeVersion"}), "podwarp://0.1.0");
  EXPECT_EQ(get_string(st, {"nodeInfo", "kubeProxyVersion"}), "");
  EXPECT_EQ(get_int(st, {"daemonEndpoints", "kubeletEndpoint", "Port"}), 10250);
  const auto& addrs = find_path(st, {"addresses"})->as_array();
  ASSERT_EQ(addrs.size(), 2u);
  EXPECT_EQ(get_string(addrs[0], {"type"}), "InternalIP");
  EXPECT_EQ(get_string(addrs[1], {"address"}), "n1");
  EXPECT_EQ(get_string(cond(st, "Ready"), {"reason"}), "KubeletReady");
  EXPECT_EQ(get_string(cond(st, "Ready"), {"message"}), "kubelet is posting ready status");
  EXPECT_EQ(get_string(cond(st, "MemoryPressure"), {"status"}), "False");
  EXPECT_EQ(get_string(cond(st, "DiskPressure"), {"reason"}), "KubeletHasNoDiskPressure");
  EXPECT_EQ(get_string(cond(st, "PIDPressure"), {"reason"}), "KubeletHasSufficientPID");
}

TEST(NodeStatus, PressureThresholds) {
  auto h = facts();
  h.memory_available = 99LL << 20;
  h.fs_available = (100LL << 30) / 100 * 9;
  h.pids_in_use = h.pid_limit - h.pid_limit / 20;
  json::value st = node_status(config(), h, nullptr, std::chrono::system_clock::now(), true);
  EXPECT_EQ(get_string(cond(st, "MemoryPressure"), {"status"}), "True");
  EXPECT_EQ(get_string(cond(st, "MemoryPressure"), {"reason"}), "KubeletHasInsufficientMemory");
  EXPECT_EQ(get_string(cond(st, "DiskPressure"), {"reason"}), "KubeletHasDiskPressure");
  EXPECT_EQ(get_string(cond(st, "PIDPressure"), {"reason"}), "KubeletHasInsufficientPID");
}

// --eviction-hard moves both the pressure conditions and what allocatable leaves out.
TEST(NodeStatus, EvictionHardThresholds) {
  auto h = facts();
  h.memory_available = 99LL << 20;
  h.fs_available = (100LL << 30) / 100 * 9;
  NodeConfig c = config();
  ASSERT_TRUE(parse_eviction_hard("memory.available<50Mi,nodefs.available<0%", c));
  EXPECT_EQ(c.memory_eviction_bytes, 50LL << 20);
  EXPECT_EQ(c.nodefs_eviction_percent, 0);
  json::value st = node_status(c, h, nullptr, std::chrono::system_clock::now(), true);
  EXPECT_EQ(get_string(cond(st, "MemoryPressure"), {"status"}), "False");
  EXPECT_EQ(get_string(cond(st, "DiskPressure"), {"status"}), "False");
  EXPECT_EQ(get_string(st, {"allocatable", "ephemeral-storage"}), std::to_string(100LL << 30));
  EXPECT_EQ(get_string(st, {"allocatable", "memory"}), std::to_string((8LL << 20) - (50LL << 10)) + "Ki");
  // Empty keeps the defaults; bad values change nothing.
  NodeConfig d = config();
  ASSERT_TRUE(parse_eviction_hard("", d));
  EXPECT_EQ(d.nodefs_eviction_percent, 10);
  EXPECT_EQ(d.memory_eviction_bytes, 100LL << 20);
  for (const char* bad : {"nodefs.available<10", "nodefs.available<101%", "nodefs.available<x%",
                          "memory.available<lots", "imagefs.available<5%", "nodefs.available",
                          "memory.available<1Gi,pid.available<5%"}) {
    auto r = parse_eviction_hard(bad, d);
    EXPECT_FALSE(r) << bad;
  }
  EXPECT_EQ(d.memory_eviction_bytes, 100LL << 20);  // the good half of the last one not kept
}

TEST(NodeStatus, CgroupWarningInReadyMessage) {
  auto c = config();
  c.cgroup_not_enforced = {"memory.max (memory controller not available in cgroup2 at /x)"};
  json::value st = node_status(c, facts(), nullptr, std::chrono::system_clock::now(), true);
  EXPECT_EQ(get_string(cond(st, "Ready"), {"message"}),
            "kubelet is posting ready status. WARNING: cgroup v2 controllers missing, pod limits "
            "not enforced: memory.max (memory controller not available in cgroup2 at /x)");
}

TEST(NodeStatus, TransitionAndHeartbeatTimes) {
  auto t0 = std::chrono::system_clock::now() - std::chrono::hours(1);
  auto t1 = t0 + std::chrono::minutes(10);
  json::value s0 = node_status(config(), facts(), nullptr, t0, true);
  // No heartbeat: both times kept; the change key is equal.
  json::value s1 = node_status(config(), facts(), s0, t1, false);
  EXPECT_EQ(s0, s1);
  // Heartbeat: lastHeartbeatTime moves, lastTransitionTime stays; change key equal.
  json::value s2 = node_status(config(), facts(), s0, t1, true);
  EXPECT_EQ(get_string(cond(s2, "Ready"), {"lastHeartbeatTime"}), format_rfc3339(t1));
  EXPECT_EQ(get_string(cond(s2, "Ready"), {"lastTransitionTime"}), format_rfc3339(t0));
  EXPECT_EQ(status_change_key(s0), status_change_key(s2));
  // A condition flips: its transition time is now, and the change key differs.
  auto h = facts();
  h.memory_available = 1;
  json::value s3 = node_status(config(), h, s2, t1, false);
  EXPECT_EQ(get_string(cond(s3, "MemoryPressure"), {"lastTransitionTime"}), format_rfc3339(t1));
  EXPECT_NE(status_change_key(s2), status_change_key(s3));
}

TEST(NodeStatus, LabelsAndObject) {
  json::value n = node_object(config(), facts());
  EXPECT_EQ(get_string(n, {"metadata", "name"}), "n1");
  EXPECT_EQ(get_string(n, {"metadata", "labels", "kubernetes.io/hostname"}), "n1");
  EXPECT_EQ(get_string(n, {"metadata", "labels", "beta.kubernetes.io/arch"}), "amd64");
  EXPECT_EQ(get_string(n, {"metadata", "labels", "kubernetes.io/os"}), "linux");
  EXPECT_EQ(go_arch("aarch64"), "arm64");
}

TEST(NodeStatus, ReadsThisHost) {
  HostFacts h = read_host_facts("/");
  EXPECT_GT(h.cpus, 0);
  EXPECT_GT(h.memory_total, 0);
  EXPECT_GT(h.fs_capacity, 0);
  EXPECT_FALSE(h.kernel_version.empty());
  EXPECT_FALSE(h.boot_id.empty());
  EXPECT_GT(h.pid_limit, 0);
}

}  // namespace
}  // namespace podwarp::noded::agent
