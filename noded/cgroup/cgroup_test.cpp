#include "cgroup/cgroup.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "cgroup/qos.h"

namespace podwarp::noded::cgroup {
namespace {

constexpr std::string_view kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(MountinfoTest, FindsCgroup2OnHybridAndUnifiedHosts) {
  EXPECT_EQ(find_cgroup2_mount(kHybridMountinfo), "/sys/fs/cgroup/unified");
  EXPECT_EQ(find_cgroup2_mount("29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 "
                               "rw,nsdelegate,memory_recursiveprot\n"),
            "/sys/fs/cgroup");
  EXPECT_EQ(find_cgroup2_mount("garbage\n\n1 2\n"), std::nullopt);
}

TEST(MountinfoTest, ParsesOptionalFieldsAndEscapes) {
  auto m = parse_mountinfo(
      "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root "
      "rw,errors=continue\nbad line\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].mount_id, 36);
  EXPECT_EQ(m[0].parent_id, 35);
  EXPECT_EQ(m[0].root, "/mnt1");
  EXPECT_EQ(m[0].mount_point, "/mnt two");
  EXPECT_EQ(m[0].fs_type, "ext3");
  EXPECT_EQ(m[0].source, "/dev/root");
  EXPECT_EQ(m[0].super_options, "rw,errors=continue");
}

TEST(CpuConversionTest, UpstreamFormulas) {
  EXPECT_EQ(milli_cpu_to_shares(0), 2);
  EXPECT_EQ(milli_cpu_to_shares(1), 2);
  EXPECT_EQ(milli_cpu_to_shares(100), 102);
  EXPECT_EQ(milli_cpu_to_shares(1000), 1024);
  EXPECT_EQ(milli_cpu_to_shares(1000000), 262144);
  EXPECT_EQ(shares_to_weight(0), 0);
  EXPECT_EQ(shares_to_weight(2), 1);
  EXPECT_EQ(shares_to_weight(1024), 39);  // 1 + 1022*9999/262142
  EXPECT_EQ(shares_to_weight(102), 4);
  EXPECT_EQ(shares_to_weight(262144), 10000);
  EXPECT_EQ(milli_cpu_to_quota(0), 0);
  EXPECT_EQ(milli_cpu_to_quota(5), 1000);  // at least MinQuotaPeriod
  EXPECT_EQ(milli_cpu_to_quota(250), 25000);
  EXPECT_EQ(milli_cpu_to_quota(2000), 200000);
}

TEST(CpuConversionTest, LimitFiles) {
  Limits l{.cpu_request_milli = 500,
           .cpu_limit_milli = 1500,
           .memory_limit_bytes = 64 << 20,
           .pids_max = 100};
  auto f = limit_files(l);
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0], (std::pair<std::string, std::string>("cpu.weight", "20")));
  EXPECT_EQ(f[1], (std::pair<std::string, std::string>("cpu.max", "150000 100000")));
  EXPECT_EQ(f[2], (std::pair<std::string, std::string>("memory.max", "67108864")));
  EXPECT_EQ(f[3], (std::pair<std::string, std::string>("pids.max", "100")));
  auto best_effort = limit_files(Limits{});
  ASSERT_EQ(best_effort.size(), 1u);
  EXPECT_EQ(best_effort[0].second, "1");
}

json::value pod(std::string_view containers) {
  return json::parse(std::string(R"({"spec":{"containers":)") + std::string(containers) + "}}");
}

TEST(QosTest, Classes) {
  EXPECT_EQ(pod_qos_class(pod(R"([{"name":"a"}])")), QosClass::kBestEffort);
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"limits":{"cpu":"1","memory":"1Gi"}}}])")),
            QosClass::kGuaranteed);  // requests defaulted from limits
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"requests":{"cpu":"1000m","memory":"1Gi"},
                                   "limits":{"cpu":"1","memory":"1024Mi"}}}])")),
            QosClass::kGuaranteed);
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"requests":{"cpu":"500m"},
                                   "limits":{"cpu":"1","memory":"1Gi"}}}])")),
            QosClass::kBurstable);
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"limits":{"cpu":"1"}}}])")), QosClass::kBurstable);
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"limits":{"cpu":"1","memory":"1Gi"}}},
                                  {"name":"b"}])")),
            QosClass::kBurstable);
  // Zero and non-QoS resources are ignored.
  EXPECT_EQ(
      pod_qos_class(pod(R"([{"resources":{"requests":{"cpu":"0","ephemeral-storage":"1Gi"}}}])")),
      QosClass::kBestEffort);
  EXPECT_EQ(qos_class_name(QosClass::kBurstable), "Burstable");
  // Bad input never crashes.
  EXPECT_EQ(pod_qos_class(json::value(42)), QosClass::kBestEffort);
  EXPECT_EQ(pod_qos_class(pod(R"([{"resources":{"limits":{"cpu":"bogus"}}}])")),
            QosClass::kBestEffort);
}

TEST(QosTest, PodLimits) {
  auto p = pod(R"([{"resources":{"requests":{"cpu":"250m"},"limits":{"cpu":"1","memory":"1Gi"}}},
                   {"resources":{"limits":{"cpu":"500m","memory":"1Gi"}}}])");
  Limits l = pod_limits(p);
  EXPECT_EQ(l.cpu_request_milli, 750);
  EXPECT_EQ(l.cpu_limit_milli, 1500);
  EXPECT_EQ(l.memory_limit_bytes, 2LL << 30);
  Limits partial = pod_limits(pod(R"([{"resources":{"limits":{"cpu":"1"}}},{"name":"x"}])"));
  EXPECT_EQ(partial.cpu_request_milli, 1000);
  EXPECT_FALSE(partial.cpu_limit_milli);
  EXPECT_FALSE(partial.memory_limit_bytes);
}

// An in-memory cgroupfs: a directory is a key ending in '/', a file any other key.
class FakeCgroupFs : public CgroupFs {
 public:
  std::map<std::string, std::string> files;
  std::vector<std::string> writes;

  std::expected<std::string, SysError> read(const std::string& p) override {
    auto it = files.find(p);
    if (it == files.end()) return std::unexpected(sys_error(ENOENT, "open " + p));
    return it->second;
  }
  std::expected<void, SysError> write(const std::string& p, std::string_view d) override {
    if (!files.contains(p)) return std::unexpected(sys_error(ENOENT, "open " + p));
    writes.push_back(p + "=" + std::string(d));
    if (p.ends_with("cgroup.subtree_control") && d.starts_with("+")) {
      files[p] += std::string(d.substr(1)) + " ";
    } else {
      files[p] = std::string(d);
    }
    return {};
  }
  std::expected<void, SysError> make_dir(const std::string& p) override {
    if (files.contains(p + "/")) return std::unexpected(sys_error(EEXIST, "mkdir " + p));
    files[p + "/"] = "";
    // The kernel offers a child the controllers its parent enabled.
    std::string parent = p.substr(0, p.rfind('/'));
    files[p + "/cgroup.controllers"] = files[parent + "/cgroup.subtree_control"];
    files[p + "/cgroup.subtree_control"] = "";
    for (auto c : {"cpu", "memory", "pids"}) {
      if (files[p + "/cgroup.controllers"].find(c) != std::string::npos) {
        for (auto f : {".weight", ".max"}) files[p + "/" + c + f] = "";
      }
    }
    return {};
  }
  std::expected<void, SysError> remove_dir(const std::string& p) override {
    if (!files.erase(p + "/")) return std::unexpected(sys_error(ENOENT, "rmdir " + p));
    std::erase_if(files, [&](auto& kv) { return kv.first.starts_with(p + "/"); });
    return {};
  }
  std::expected<std::vector<std::string>, SysError> list_dirs(const std::string& p) override {
    if (!files.contains(p + "/")) return std::unexpected(sys_error(ENOENT, "opendir " + p));
    std::vector<std::string> out;
    for (auto& [k, v] : files) {
      if (k.starts_with(p + "/") && k.ends_with("/") && k.size() > p.size() + 1) {
        std::string rest = k.substr(p.size() + 1, k.size() - p.size() - 2);
        if (rest.find('/') == std::string::npos) out.push_back(rest);
      }
    }
    return out;
  }

  void add_mount(const std::string& mount, const std::string& controllers) {
    files["/proc/self/mountinfo"] = std::string(kHybridMountinfo);
    files[mount + "/"] = "";
    files[mount + "/cgroup.controllers"] = controllers;
    files[mount + "/cgroup.subtree_control"] = "";
  }
};

TEST(CgroupManagerTest, HybridHostReportsEveryLimitNotEnforced) {
  FakeCgroupFs fs;
  fs.add_mount("/sys/fs/cgroup/unified", "hugetlb\n");
  auto m = CgroupManager::open(fs, "podwarp-t");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->root(), "/sys/fs/cgroup/unified/podwarp-t");
  ASSERT_TRUE(m->ensure_root());
  auto r =
      m->create("podabc", Limits{.cpu_request_milli = 100, .memory_limit_bytes = 1 << 20}, true);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->applied.empty());
  ASSERT_EQ(r->not_enforced.size(), 2u);
  EXPECT_EQ(r->not_enforced[0],
            "cpu.weight (cpu controller not available in cgroup2 at /sys/fs/cgroup/unified)");
  EXPECT_EQ(r->not_enforced[1],
            "memory.max (memory controller not available in cgroup2 at /sys/fs/cgroup/unified)");
  // hugetlb is not one of ours: nothing was enabled.
  EXPECT_TRUE(fs.writes.empty());
  auto oom = m->oom_kill_count("podabc");
  ASSERT_TRUE(oom);
  EXPECT_FALSE(oom->has_value());
}

TEST(CgroupManagerTest, UnifiedHostEnablesAndWrites) {
  FakeCgroupFs fs;
  fs.add_mount("/sys/fs/cgroup/unified", "cpuset cpu io memory pids\n");
  auto m = CgroupManager::open(fs, "a/b");
  ASSERT_TRUE(m);
  auto root = m->ensure_root();
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_TRUE(fs.files.contains("/sys/fs/cgroup/unified/a/b/"));
  EXPECT_EQ(fs.files["/sys/fs/cgroup/unified/a/b/cgroup.subtree_control"], "cpu memory pids ");
  auto pod = m->create(
      "pod1",
      Limits{.cpu_request_milli = 1000, .cpu_limit_milli = 2000, .memory_limit_bytes = 1000000},
      true);
  ASSERT_TRUE(pod);
  EXPECT_TRUE(pod->not_enforced.empty());
  EXPECT_EQ(pod->applied, (std::vector<std::string>{"cpu.weight=39", "cpu.max=200000 100000",
                                                    "memory.max=1000000"}));
  auto c = m->create("pod1/c1", Limits{.pids_max = 10}, false);
  ASSERT_TRUE(c);
  EXPECT_EQ(fs.files["/sys/fs/cgroup/unified/a/b/pod1/c1/pids.max"], "10");
  fs.files["/sys/fs/cgroup/unified/a/b/pod1/c1/memory.events"] = "low 0\noom 2\noom_kill 1\n";
  auto oom = m->oom_kill_count("pod1/c1");
  ASSERT_TRUE(oom && oom->has_value());
  EXPECT_EQ(**oom, 1u);
  ASSERT_TRUE(m->remove("pod1"));
  EXPECT_FALSE(fs.files.contains("/sys/fs/cgroup/unified/a/b/pod1/c1/"));
  EXPECT_FALSE(fs.files.contains("/sys/fs/cgroup/unified/a/b/pod1/"));
}

TEST(CgroupManagerTest, RejectsBadNames) {
  FakeCgroupFs fs;
  fs.add_mount("/sys/fs/cgroup/unified", "");
  EXPECT_FALSE(CgroupManager::open(fs, "../etc"));
  EXPECT_FALSE(CgroupManager::open(fs, "/tmp/x"));
  auto m = CgroupManager::open(fs, "p");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->create("../x", {}, false));
  FakeCgroupFs none;
  none.files["/proc/self/mountinfo"] = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n";
  auto e = CgroupManager::open(none);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "no cgroup2 filesystem in /proc/self/mountinfo");
}

// ---- real kernel (root) ----

TEST(CgroupKernelTest, CreateKillRemove) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string name = "podwarp-test-cg-" + std::to_string(::getpid());
  auto m = CgroupManager::open(CgroupFs::real(), name);
  ASSERT_TRUE(m) << m.error().message;
  struct Cleanup {
    CgroupManager& m;
    ~Cleanup() { (void)m.destroy(""); }
  } cleanup{*m};
  auto root = m->ensure_root();
  ASSERT_TRUE(root) << root.error().message;
  auto pod =
      m->create("pod1", Limits{.cpu_request_milli = 100, .memory_limit_bytes = 1 << 24}, true);
  ASSERT_TRUE(pod) << pod.error().message;
  auto c = m->create("pod1/c1", Limits{}, false);
  ASSERT_TRUE(c);
  // Whatever the host offers, each limit is either applied or reported, never dropped.
  EXPECT_EQ(pod->applied.size() + pod->not_enforced.size(), 2u);
  for (auto& s : pod->not_enforced) EXPECT_NE(s.find(m->mount()), std::string::npos) << s;

  pid_t pid = ::fork();
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(CgroupFs::real().write(m->path_of("pod1/c1") + "/cgroup.procs", std::to_string(pid)));
  EXPECT_EQ(m->populated("pod1"), true);
  EXPECT_TRUE(m->freeze("pod1", true));
  EXPECT_TRUE(m->freeze("pod1", false));
  ASSERT_TRUE(m->kill("pod1"));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto d = m->destroy("");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_NE(::access(m->root().c_str(), F_OK), 0);
}

}  // namespace
}  // namespace podwarp::noded::cgroup
