// limits_check: proves noded's cgroup v2 limits on a kernel whose cgroup2 has the cpu, memory and
// pids controllers. It runs inside the VM of tests/vm/run.sh (as /init's payload), and also on any
// host, where it stops after printing the ApplyReport if a limit could not be enforced (hybrid
// hosts: "memory.max (memory controller not available ...)").
//
// It takes the same code paths as noded: pod JSON -> cgroup::pod_limits / container_limits ->
// PodSandbox::create (pod cgroup + pinned namespaces) -> create_container_cgroup -> configure ->
// start_container (clone3 into the container cgroup), and reads the results the way noded does
// (CgroupManager::oom_kill_count -> reason OOMKilled, Process::kill_cgroup for cgroup.kill).
// Checks:
//   1. memory.max: a container allocating 96 MiB under a 32Mi limit is OOM-killed (SIGKILL, exit
//      code 137), memory.events oom_kill > 0, so noded's reason is OOMKilled.
//   2. pids.max: a fork bomb in a pod with pids.max 32 gets EAGAIN ("can't fork"), pids.current
//      stays <= 32, pids.events max > 0, and cgroup.kill ends it (the pod cgroup empties).
//   3. cpu.max: a busy loop under a 100m limit for 2 s is throttled (cpu.stat nr_throttled > 0)
//      and uses well under the wall time.
//   4. BPF (bpf_check.cpp): the NetworkPolicy, service LB and exit recorder objects load through
//      noded's loaders on this kernel, and the NetworkPolicy program allows and drops as it does
//      on the build host.
// Prints "LIMITS_CHECK: PASS" and exits 0, or "LIMITS_CHECK: FAIL" and exits 1.
//
// Usage: limits_check [--rootfs DIR] [--run-dir DIR] [--cgroup-root NAME]
// The rootfs holds a static busybox (bin/sh, dd, sleep). Needs root.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bpf_check.h"
#include "cgroup/cgroup.h"
#include "cgroup/qos.h"
#include "podwarp/json.h"
#include "runtime/runtime.h"

namespace {

namespace cg = podwarp::noded::cgroup;
namespace rt = podwarp::noded::runtime;
using Clock = std::chrono::steady_clock;

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("  %s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

std::string read_text(const std::string& path) {
  auto r = cg::CgroupFs::real().read(path);
  return r ? *r : "<" + r.error().message + ">";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "key value" lines (cpu.stat, memory.events, pids.events); -1 when absent.
long long field(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    if (line.starts_with(key + " ")) return std::atoll(line.c_str() + key.size() + 1);
    pos = end + 1;
  }
  return -1;
}

void print_report(const std::string& what, const cg::ApplyReport& r) {
  std::printf("ApplyReport %s:\n", what.c_str());
  for (const auto& a : r.applied) std::printf("    applied: %s\n", a.c_str());
  for (const auto& n : r.not_enforced) std::printf("    NOT ENFORCED: %s\n", n.c_str());
  if (r.applied.empty() && r.not_enforced.empty()) std::printf("    (nothing to write)\n");
  std::fflush(stdout);
}

// Reads everything available from a non-blocking fd.
std::string drain(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

// Blocking reap with a deadline: kills through cgroup.kill when it is exceeded.
std::optional<rt::ExitStatus> wait_for(rt::Process& p, std::chrono::seconds limit) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    auto st = p.try_wait();
    if (!st) return std::nullopt;
    if (st->has_value()) return **st;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("  (timeout: killing the container through cgroup.kill)\n");
  (void)p.kill_cgroup();
  auto st = p.wait();
  return st ? std::optional(*st) : std::nullopt;
}

std::string describe(const rt::ExitStatus& s) {
  return s.signaled ? "killed by signal " + std::to_string(s.signal)
                    : "exited with code " + std::to_string(s.code);
}

// One pod with one container, set up exactly as noded's runtime adapter does.
struct Pod {
  std::optional<rt::PodSandbox> sandbox;
  std::string container;
  std::string container_rel;  // relative to the cgroup root
};

class LimitsCheck {
 public:
  LimitsCheck(cg::CgroupManager& m, std::string rootfs, std::string run_dir)
      : cgroups_(m), rootfs_(std::move(rootfs)), run_dir_(std::move(run_dir)) {}

  ~LimitsCheck() {
    for (auto& p : pods_)
      if (p.sandbox) (void)p.sandbox->release();
  }

  // Creates the sandbox and container cgroup of `pod_json` (one container); pod_pids_limit is
  // the node-level pod pids limit (the kubelet's podPidsLimit), not part of the pod spec.
  Pod* make_pod(const std::string& pod_json, std::optional<long long> pod_pids_limit = {}) {
    auto pod = podwarp::parse_json(pod_json);
    if (!pod) {
      check(false, "parse pod JSON: " + pod.error());
      return nullptr;
    }
    const auto& meta = pod->as_object().at("metadata").as_object();
    const auto& c0 = pod->as_object().at("spec").as_object().at("containers").as_array().at(0);
    std::string uid(meta.at("uid").as_string());
    std::string cname(c0.as_object().at("name").as_string());

    rt::SandboxConfig cfg;
    cfg.run_dir = run_dir_;
    cfg.pod_uid = uid;
    cfg.hostname = std::string(meta.at("name").as_string());
    cfg.limits = cg::pod_limits(*pod);
    if (pod_pids_limit) cfg.limits.pids_max = *pod_pids_limit;
    std::printf("pod %s: qosClass %s\n", cfg.hostname.c_str(),
                std::string(cg::qos_class_name(cg::pod_qos_class(*pod))).c_str());
    auto sb = rt::PodSandbox::create(cgroups_, cfg);
    if (!sb) {
      check(false, "create sandbox: " + sb.error().message);
      return nullptr;
    }
    print_report("pod" + uid, sb->cgroup_report());
    pods_.push_back(Pod{});
    Pod& p = pods_.back();
    p.sandbox.emplace(std::move(*sb));
    p.container = cname;
    p.container_rel = "pod" + uid + "/" + cname;
    auto cr = p.sandbox->create_container_cgroup(cname, cg::container_limits(c0));
    if (!cr) {
      check(false, "create container cgroup: " + cr.error().message);
      return nullptr;
    }
    print_report(p.container_rel, *cr);
    enforced(p.sandbox->cgroup_report());
    enforced(*cr);
    return &p;
  }

  // Starts `script` with busybox sh in the pod's container; stderr goes to *err_fd (read end,
  // non-blocking) when err_fd is given.
  std::optional<rt::Process> start(Pod& pod, const std::string& script, int* err_fd = nullptr) {
    rt::ContainerSpec spec;
    spec.name = pod.container;
    spec.rootfs = rootfs_;
    spec.process.argv = {"/bin/sh", "-c", script};
    spec.process.env = {"PATH=/bin"};
    spec.process.capabilities = *rt::compute_capabilities({}, {}, false);
    pod.sandbox->configure(spec, pod.container);
    int pipe_fds[2] = {-1, -1};
    if (err_fd != nullptr) {
      if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        check(false, "pipe2 failed");
        return std::nullopt;
      }
      ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
      spec.process.stderr_fd = pipe_fds[1];
    }
    auto p = rt::start_container(spec);
    if (pipe_fds[1] >= 0) ::close(pipe_fds[1]);
    if (!p) {
      if (pipe_fds[0] >= 0) ::close(pipe_fds[0]);
      check(false, "start container " + pod.container_rel + ": " + p.error().message);
      return std::nullopt;
    }
    if (err_fd != nullptr) *err_fd = pipe_fds[0];
    std::printf("  started %s (pid %d) in %s\n", pod.container_rel.c_str(), p->pid(),
                p->cgroup().c_str());
    return std::move(*p);
  }

  std::string file(const std::string& rel, const std::string& name) {
    return trim(read_text(cgroups_.path_of(rel) + "/" + name));
  }

  bool all_enforced() const { return not_enforced_.empty(); }
  const std::vector<std::string>& not_enforced() const { return not_enforced_; }

  void memory_test();
  void pids_test();
  void cpu_test();

 private:
  void enforced(const cg::ApplyReport& r) {
    not_enforced_.insert(not_enforced_.end(), r.not_enforced.begin(), r.not_enforced.end());
  }

  cg::CgroupManager& cgroups_;
  std::string rootfs_, run_dir_;
  std::deque<Pod> pods_;  // a deque: the Pod pointers handed out stay valid
  std::vector<std::string> not_enforced_;
};

void LimitsCheck::memory_test() {
  std::printf("\n=== 1. memory.max -> OOMKilled\n");
  Pod* pod = make_pod(R"({"metadata": {"name": "oom", "uid": "vm-oom"},
      "spec": {"containers": [{"name": "hog",
        "resources": {"limits": {"memory": "32Mi", "cpu": "1"}}}]}})");
  if (pod == nullptr || !all_enforced()) return;
  check(file(pod->container_rel, "memory.max") == "33554432",
        "container memory.max = " + file(pod->container_rel, "memory.max") + " (32Mi)");
  // dd reads 96 MiB of zeros into one buffer: every page is touched and charged to the cgroup.
  auto p = start(*pod, "exec dd if=/dev/zero of=/dev/null bs=96M count=1");
  if (!p) return;
  auto st = wait_for(*p, std::chrono::seconds(60));
  check(st && st->signaled && st->signal == SIGKILL,
        "the container is killed by SIGKILL: " + (st ? describe(*st) : std::string("no status")));
  auto n = cgroups_.oom_kill_count(pod->container_rel);
  long long count = n && n->has_value() ? static_cast<long long>(**n) : -1;
  std::string events = file(pod->container_rel, "memory.events");
  for (auto& ch : events)
    if (ch == '\n') ch = ',';
  std::printf("  memory.events: %s\n", events.c_str());
  std::printf("  memory.peak: %s\n", file(pod->container_rel, "memory.peak").c_str());
  check(count > 0, "CgroupManager::oom_kill_count = " + std::to_string(count) + " (> 0)");
  // The pod worker's rule (pods/pod_worker.cpp record_exit): oom_killed -> OOMKilled.
  int exit_code = st ? (st->signaled ? 128 + st->signal : st->code) : -1;
  std::string reason = count > 0 ? "OOMKilled" : (exit_code == 0 ? "Completed" : "Error");
  check(reason == "OOMKilled" && exit_code == 137,
        "noded would report reason " + reason + ", exitCode " + std::to_string(exit_code));
}

void LimitsCheck::pids_test() {
  constexpr long long kPidsMax = 32;
  std::printf("\n=== 2. pids.max stops a fork bomb\n");
  Pod* pod = make_pod(R"({"metadata": {"name": "forkbomb", "uid": "vm-pids"},
      "spec": {"containers": [{"name": "bomb",
        "resources": {"limits": {"memory": "128Mi"}}}]}})",
                      kPidsMax);
  if (pod == nullptr) return;
  const std::string pod_rel = "podvm-pids";
  check(file(pod_rel, "pids.max") == std::to_string(kPidsMax),
        "pod pids.max = " + file(pod_rel, "pids.max"));
  // The inner shell forks sleepers forever; pid 1 outlives it (so the pid namespace stays up)
  // by exec'ing, which needs no fork.
  int err_fd = -1;
  auto p = start(*pod,
                 "sh -c 'while :; do sleep 1000 & done'; echo bomb-stopped rc=$? >&2; "
                 "exec sleep 1000",
                 &err_fd);
  if (!p) return;
  std::string err;
  long long events_max = 0;
  long long peak = 0;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    err += drain(err_fd);
    // Kernels before 6.15 count the refused fork in pids.events of the forking task's cgroup
    // (the container's); newer ones in the cgroup whose limit was hit (the pod's).
    events_max = std::max(field(file(pod_rel, "pids.events"), "max"),
                          field(file(pod->container_rel, "pids.events"), "max"));
    peak = std::max(peak, std::atoll(file(pod_rel, "pids.current").c_str()));
    if (events_max > 0 && err.find("bomb-stopped") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Keep sampling for a second: the limit holds while the bomb's children sit there.
  for (int i = 0; i < 10; ++i) {
    peak = std::max(peak, std::atoll(file(pod_rel, "pids.current").c_str()));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  err += drain(err_fd);
  std::string cur = file(pod_rel, "pids.current");
  std::printf("  pids.current %s, highest seen %lld, pids.events max %lld\n", cur.c_str(), peak,
              events_max);
  std::string first_err = err.substr(0, err.find('\n'));
  std::printf("  container stderr (first line): %s\n", first_err.c_str());
  check(events_max > 0, "pids.events max = " + std::to_string(events_max) + " (forks refused)");
  check(err.find("can't fork") != std::string::npos ||
            err.find("Resource temporarily unavailable") != std::string::npos,
        "fork failed with EAGAIN in the container");
  check(peak > 1 && peak <= kPidsMax, "pids.current stayed <= " + std::to_string(kPidsMax) +
                                          " (highest " + std::to_string(peak) + ")");
  auto k = p->kill_cgroup();
  check(k.has_value(), "cgroup.kill" + (k ? std::string() : ": " + k.error().message));
  auto st = wait_for(*p, std::chrono::seconds(30));
  check(st && st->signaled && st->signal == SIGKILL,
        "the bomb's pid 1 ends by SIGKILL: " + (st ? describe(*st) : std::string("no status")));
  bool emptied = false;
  for (int i = 0; i < 100 && !emptied; ++i) {
    auto pop = cgroups_.populated(pod_rel);
    emptied = pop && !*pop;
    if (!emptied) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  check(emptied, "the pod cgroup is empty after cgroup.kill (pids.current " +
                     file(pod_rel, "pids.current") + ")");
  ::close(err_fd);
}

void LimitsCheck::cpu_test() {
  std::printf("\n=== 3. cpu.max throttles\n");
  Pod* pod = make_pod(R"({"metadata": {"name": "spin", "uid": "vm-cpu"},
      "spec": {"containers": [{"name": "spin",
        "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "100m", "memory": "32Mi"}}}]}})");
  if (pod == nullptr) return;
  check(file(pod->container_rel, "cpu.max") == "10000 100000",
        "container cpu.max = \"" + file(pod->container_rel, "cpu.max") + "\" (100m)");
  std::printf("  container cpu.weight = %s\n", file(pod->container_rel, "cpu.weight").c_str());
  auto t0 = Clock::now();
  auto p = start(*pod, "while :; do :; done");
  if (!p) return;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::string stat = read_text(cgroups_.path_of(pod->container_rel) + "/cpu.stat");
  auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  (void)p->kill_cgroup();
  auto st = wait_for(*p, std::chrono::seconds(30));
  long long usage = field(stat, "usage_usec");
  long long throttled = field(stat, "nr_throttled");
  std::printf(
      "  after %lld ms: usage_usec %lld, nr_periods %lld, nr_throttled %lld, "
      "throttled_usec %lld\n",
      static_cast<long long>(wall_us / 1000), usage, field(stat, "nr_periods"), throttled,
      field(stat, "throttled_usec"));
  check(throttled > 0, "cpu.stat nr_throttled = " + std::to_string(throttled) + " (> 0)");
  check(usage > 0 && usage * 100 < wall_us * 30,
        "cpu usage " + std::to_string(usage / 1000) + " ms < 30% of wall " +
            std::to_string(wall_us / 1000) + " ms (limit 10%)");
  check(st.has_value(), "the busy loop ended through cgroup.kill");
}

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs = "/containers/busybox";
  std::string run_dir = "/run/podwarp-vm";
  std::string root = "podwarp-vm-check";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--rootfs") {
      rootfs = argv[i + 1];
    } else if (a == "--run-dir") {
      run_dir = argv[i + 1];
    } else if (a == "--cgroup-root") {
      root = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: %s [--rootfs DIR] [--run-dir DIR] [--cgroup-root NAME]\n",
                   argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("=== limits_check: cgroup v2 limits through podwarp's runtime\n");
  auto m = cg::CgroupManager::open(cg::CgroupFs::real(), root);
  if (!m) {
    std::printf("cgroup open: %s\nLIMITS_CHECK: FAIL\n", m.error().message.c_str());
    return 1;
  }
  std::printf("cgroup2 mount %s, root %s\n", m->mount().c_str(), m->root().c_str());
  std::printf("cgroup2 controllers at the mount: %s\n",
              trim(read_text(m->mount() + "/cgroup.controllers")).c_str());
  auto er = m->ensure_root();
  if (!er) {
    std::printf("ensure_root: %s\nLIMITS_CHECK: FAIL\n", er.error().message.c_str());
    return 1;
  }
  print_report("root " + m->root(), *er);
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  {
    LimitsCheck lc(*m, rootfs, run_dir);
    lc.memory_test();
    if (!lc.all_enforced()) {
      std::printf("\nlimits are NOT enforced on this kernel (hybrid cgroups?):\n");
      for (const auto& n : lc.not_enforced()) std::printf("  %s\n", n.c_str());
      ++failures;
    } else {
      lc.pids_test();
      lc.cpu_test();
    }
  }
  auto d = m->destroy("");
  if (!d) check(false, "remove cgroup root: " + d.error().message);
  failures += bpf_checks("/sys/fs/bpf/podwarp-vm");
  std::filesystem::remove_all(run_dir, ec);
  std::printf("\nLIMITS_CHECK: %s (%d failed checks)\n", failures == 0 ? "PASS" : "FAIL", failures);
  return failures == 0 ? 0 : 1;
}
