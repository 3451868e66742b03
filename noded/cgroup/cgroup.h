// cgroup v2 management for noded: the pod and container groups, their limits, kill, freeze
// and OOM counters.
//
// Layout: <root>/pod<uid>/<container> where <root> defaults to "<cgroup2 mount>/podwarp".
// Pod groups only hold child groups (the v2 "no internal processes" rule); processes live in
// container groups, which are leaves. The cgroup2 mount is found in /proc/self/mountinfo
// wherever it is (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid ones).
//
// Limits are enforced only where the controller exists. On a hybrid host cpu, memory and pids
// are bound to v1, so cgroup2 has none of them: CgroupManager then still groups, kills and
// freezes, and every limit it could not write is returned in ApplyReport::not_enforced
// ("memory.max (memory controller not available in cgroup2 at /sys/fs/cgroup/unified)").
// It never pretends a limit is in force.
//
// Threads: a CgroupManager is immutable after open(); its methods may be called concurrently
// on distinct cgroups. The kernel sits behind CgroupFs so the logic is unit-testable.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/cgroup_fs.h"
#include "cgroup/sys_error.h"

namespace podwarp::noded::cgroup {

// ---- /proc/self/mountinfo ----

struct MountInfo {
  int mount_id = 0;
  int parent_id = 0;
  std::string root;         // root of the mount within its filesystem
  std::string mount_point;  // octal escapes (\040) decoded
  std::string options;      // per-mount options
  std::string fs_type;
  std::string source;
  std::string super_options;
};

// Parses mountinfo text; malformed lines are skipped.
std::vector<MountInfo> parse_mountinfo(std::string_view text);

// The mount point of the first cgroup2 filesystem, if any.
std::optional<std::string> find_cgroup2_mount(std::string_view mountinfo_text);

// ---- upstream conversions (kubelet cm/cgroup_manager_linux.go, helpers_linux.go) ----

inline constexpr std::int64_t kMinShares = 2;
inline constexpr std::int64_t kMaxShares = 262144;
inline constexpr std::int64_t kCpuPeriodUs = 100000;
inline constexpr std::int64_t kMinQuotaUs = 1000;

// shares = milliCPU*1024/1000, clamped to [2, 262144]; 0 -> 2.
std::int64_t milli_cpu_to_shares(std::int64_t milli_cpu);
// cgroup v2 cpu.weight = 1 + ((shares-2)*9999)/262142; shares 0 -> 0 (not set).
std::int64_t shares_to_weight(std::int64_t shares);
// quota = milliCPU*period/1000 (period 100000), at least 1000; 0 -> 0 (no quota).
std::int64_t milli_cpu_to_quota(std::int64_t milli_cpu, std::int64_t period_us = kCpuPeriodUs);

// What to write into a group. Unset fields are left as the kernel default ("max").
struct Limits {
  std::optional<std::int64_t> cpu_request_milli;   // -> cpu.weight (always written: 0 -> weight 1)
  std::optional<std::int64_t> cpu_limit_milli;     // -> cpu.max "<quota> 100000"
  std::optional<std::int64_t> memory_limit_bytes;  // -> memory.max
  std::optional<std::int64_t> pids_max;            // -> pids.max
};

// The interface files and values for `limits`, in write order: {"cpu.weight", "79"}, ...
// cpu.weight is written whenever the cpu controller exists (BestEffort gets weight 1, as
// upstream's MinShares).
std::vector<std::pair<std::string, std::string>> limit_files(const Limits& limits);

struct ApplyReport {
  std::vector<std::string> applied;       // "cpu.weight=79"
  std::vector<std::string> not_enforced;  // "memory.max (memory controller not available ...)"
};

// ---- the manager ----

class CgroupManager {
 public:
  // Finds the cgroup2 mount through fs.read("/proc/self/mountinfo"). `root` is a path
  // relative to the mount ("podwarp", "podwarp-test-123") or absolute under the mount.
  static std::expected<CgroupManager, SysError> open(CgroupFs& fs,
                                                     std::string_view root = "podwarp");
  CgroupManager(CgroupFs& fs, std::string mount, std::string root_abs);

  const std::string& mount() const { return mount_; }
  const std::string& root() const { return root_; }
  // Absolute path of a group relative to the root ("" is the root itself).
  std::string path_of(std::string_view rel) const;

  // Creates the root group if missing and enables the wanted controllers (cpu memory pids)
  // that the mount offers, on every level from the mount down to the root's subtree.
  std::expected<ApplyReport, SysError> ensure_root();

  // Controllers listed in <path>/cgroup.controllers.
  std::expected<std::set<std::string>, SysError> controllers(const std::string& abs_path);

  // Creates <root>/<rel> (EEXIST is fine), enables controllers for its children when
  // `parent_of_groups`, and writes `limits`. Parents of rel must exist.
  std::expected<ApplyReport, SysError> create(std::string_view rel, const Limits& limits,
                                              bool parent_of_groups);
  // Writes `limits` to an existing group.
  std::expected<ApplyReport, SysError> apply(std::string_view rel, const Limits& limits);

  // cgroup.kill: SIGKILL to every process in the group and its descendants.
  std::expected<void, SysError> kill(std::string_view rel);
  // cgroup.freeze 1/0.
  std::expected<void, SysError> freeze(std::string_view rel, bool frozen);
  // The oom_kill counter of memory.events; nullopt when the memory controller is absent.
  std::expected<std::optional<std::uint64_t>, SysError> oom_kill_count(std::string_view rel);
  // "populated" of cgroup.events: true while any process is in the subtree.
  std::expected<bool, SysError> populated(std::string_view rel);
  // Removes the group and its descendants, deepest first. Groups must be empty (EBUSY
  // otherwise); ENOENT is success. Use destroy() to kill first.
  std::expected<void, SysError> remove(std::string_view rel);
  // kill + wait (up to timeout_ms, polling cgroup.events) until empty + remove.
  std::expected<void, SysError> destroy(std::string_view rel, int timeout_ms = 5000);

 private:
  std::expected<void, SysError> enable_subtree(const std::string& abs_path, ApplyReport& report);
  std::expected<ApplyReport, SysError> write_limits(const std::string& abs_path,
                                                    const Limits& limits);
  std::expected<void, SysError> remove_abs(const std::string& abs_path);

  CgroupFs* fs_;
  std::string mount_;
  std::string root_;
};

// The controllers noded wants in its subtree.
inline constexpr std::string_view kWantedControllers[] = {"cpu", "memory", "pids"};

}  // namespace podwarp::noded::cgroup
