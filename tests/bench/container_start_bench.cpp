// container_start_bench: podwarp's in-process container start against `runc run`, same rootfs
// (busybox /bin/true), same machine, same run. Prints medians and the ratio; asserts nothing.
//
//   sudo build/bin/container_start_bench [runs=50]
//
// podwarp, per run: mkdir a container cgroup + start_container (clone3 into it with new
// mnt/pid/net/ipc/uts namespaces, /proc /dev /sys, masked and read-only paths, pivot_root,
// read-only rootfs, default capabilities, seccomp RuntimeDefault) until the child has exec'd
// ("start->exec"), then reap and rmdir the cgroup ("start->exit").
// runc, per run: `runc run` of a `runc spec` bundle (args /bin/true, cgroupsPath under a
// per-bench cgroup), which creates, starts, waits and deletes: compared with start->exit.
// Everything lives under /tmp/podwarp-bench-<pid> and cgroups named podwarp-bench-<pid>,
// removed at the end.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace fs = std::filesystem;
using namespace podwarp::noded;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// CPU time (user+sys, ms) of this process and of its waited-for descendants.
double cpu_ms(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  auto ms = [](timeval t) { return static_cast<double>(t.tv_sec) * 1e3 + t.tv_usec / 1e3; };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}
double cpu_now() { return cpu_ms(RUSAGE_SELF) + cpu_ms(RUSAGE_CHILDREN); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int run_cmd(const std::vector<std::string>& argv, bool quiet = true) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (quiet) {
      int fd = ::open("/dev/null", O_WRONLY);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> a;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    ::execvp(a[0], a.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void make_rootfs(const std::string& dir) {
  fs::create_directories(dir + "/bin");
  fs::copy_file("/bin/busybox", dir + "/bin/busybox");
  fs::create_symlink("busybox", dir + "/bin/true");
  fs::create_symlink("busybox", dir + "/bin/sh");
  for (auto d : {"proc", "dev", "sys", "tmp", "etc"}) fs::create_directories(dir + "/" + d);
}

// `runc spec` and edit: args, no terminal, cgroupsPath.
bool make_runc_bundle(const std::string& bundle, const std::string& cgroups_path) {
  if (run_cmd({"runc", "spec", "--bundle", bundle}) != 0) return false;
  std::ifstream in(bundle + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string cfg = ss.str();
  auto replace = [&](const std::string& from, const std::string& to) {
    auto p = cfg.find(from);
    if (p == std::string::npos) return false;
    cfg.replace(p, from.size(), to);
    return true;
  };
  bool ok = replace("\"terminal\": true", "\"terminal\": false") &&
            replace("\"sh\"", "\"/bin/true\"") &&
            replace("\"linux\": {", "\"linux\": {\n\t\t\"cgroupsPath\": \"" + cgroups_path + "\",");
  std::ofstream(bundle + "/config.json") << cfg;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "container_start_bench: needs root\n");
    return 2;
  }
  std::string id = std::to_string(::getpid());
  std::string tmp = "/tmp/podwarp-bench-" + id;
  std::string name = "podwarp-bench-" + id;
  make_rootfs(tmp + "/rootfs");

  auto cg = cgroup::CgroupManager::open(cgroup::CgroupFs::real(), name);
  if (!cg || !cg->ensure_root()) {
    std::fprintf(stderr, "cgroup setup failed\n");
    fs::remove_all(tmp);
    return 1;
  }

  runtime::ContainerSpec spec;
  spec.name = "bench";
  spec.rootfs = tmp + "/rootfs";
  spec.hostname = "bench";
  spec.readonly_rootfs = true;
  spec.process.argv = {"/bin/true"};
  spec.process.env = {"PATH=/bin"};
  spec.process.capabilities = *runtime::compute_capabilities({}, {}, false);

  // One series: `sandbox` set -> net/ipc/uts joined from a PodSandbox's pins (noded's real
  // per-container path); unset -> the container creates its own (what runc's spec does).
  int failures = 0;
  auto series = [&](runtime::PodSandbox* sandbox, std::vector<double>& to_exec,
                    std::vector<double>& to_exit) {
    for (int i = -3; i < runs; ++i) {  // 3 warm-up runs (seccomp filter compile, page cache)
      std::string rel = "c" + std::to_string(i + 3);
      runtime::ContainerSpec s = spec;
      auto t0 = Clock::now();
      std::expected<cgroup::ApplyReport, SysError> created;
      if (sandbox != nullptr) {
        created = sandbox->create_container_cgroup(rel, {});
        sandbox->configure(s, rel);
        s.hosts_file = s.hostname_file = s.resolv_conf_file = "";
      } else {
        created = cg->create(rel, {}, false);
        s.cgroup = cg->path_of(rel);
      }
      auto p = created
                   ? runtime::start_container(s)
                   : std::expected<runtime::Process, SysError>(std::unexpected(created.error()));
      double exec_ms = ms_since(t0);
      if (!p) {
        std::fprintf(stderr, "start failed: %s\n", p.error().message.c_str());
        ++failures;
        continue;
      }
      auto st = p->wait();
      if (sandbox != nullptr) {
        (void)sandbox->remove_container_cgroup(rel);
      } else {
        (void)cg->remove(rel);
      }
      double exit_ms = ms_since(t0);
      if (!st || st->signaled || st->code != 0) ++failures;
      if (i >= 0) {
        to_exec.push_back(exec_ms);
        to_exit.push_back(exit_ms);
      }
    }
  };
  std::vector<double> to_exec, to_exit, pod_exec, pod_exit;
  // CPU per container (load-independent, unlike wall time on a shared machine): this process
  // plus its reaped descendants, over all runs including warm-up, divided by the run count.
  double c0 = cpu_now();
  series(nullptr, to_exec, to_exit);
  double cpu_own = (cpu_now() - c0) / (runs + 3);
  double cpu_pod = 0;
  runtime::SandboxConfig sc{.run_dir = tmp + "/run", .pod_uid = "bench", .hostname = "bench"};
  auto sandbox = runtime::PodSandbox::create(*cg, sc);
  if (sandbox) {
    double c1 = cpu_now();
    series(&*sandbox, pod_exec, pod_exit);
    cpu_pod = (cpu_now() - c1) / (runs + 3);
    (void)sandbox->release();
  } else {
    std::fprintf(stderr, "sandbox: %s\n", sandbox.error().message.c_str());
    ++failures;
  }

  std::vector<double> runc;
  double c2 = cpu_now();
  std::string bundle = tmp + "/bundle";
  fs::create_directories(bundle);
  make_rootfs(bundle + "/rootfs");
  std::string runc_root = tmp + "/runc-state";
  bool runc_ok = make_runc_bundle(bundle, "/" + name + "/runc");
  if (runc_ok) {
    for (int i = -3; i < runs; ++i) {
      auto t0 = Clock::now();
      int rc = run_cmd({"runc", "--root", runc_root, "run", "--bundle", bundle,
                        "pwbench-" + id + "-" + std::to_string(i + 3)});
      double ms = ms_since(t0);
      if (rc != 0) {
        std::fprintf(stderr, "runc run exited %d\n", rc);
        runc_ok = false;
        break;
      }
      if (i >= 0) runc.push_back(ms);
    }
  }
  // runc create + runc start: the container set up to the point of exec, then exec'd; the
  // counterpart of podwarp's start->exec. Delete (not timed) once /bin/true is done.
  double cpu_runc = (cpu_now() - c2) / (runs + 3);
  std::vector<double> runc_cs;
  if (runc_ok) {
    for (int i = -3; i < runs; ++i) {
      std::string cid = "pwbench-cs-" + id + "-" + std::to_string(i + 3);
      auto t0 = Clock::now();
      int rc = run_cmd({"runc", "--root", runc_root, "create", "--bundle", bundle, cid});
      if (rc == 0) rc = run_cmd({"runc", "--root", runc_root, "start", cid});
      double ms = ms_since(t0);
      for (int k = 0; k < 100; ++k) {
        if (run_cmd({"runc", "--root", runc_root, "delete", cid}) == 0) break;
        ::usleep(5000);
      }
      if (rc != 0) {
        std::fprintf(stderr, "runc create/start exited %d\n", rc);
        runc_ok = false;
        break;
      }
      if (i >= 0) runc_cs.push_back(ms);
    }
  }

  std::printf("container start, %d runs each (busybox /bin/true)\n", runs);
  std::printf("  podwarp, own namespaces (like runc's spec):\n");
  std::printf("  podwarp start->exec   p50 %7.2f ms  p90 %7.2f ms\n", percentile(to_exec, 0.5),
              percentile(to_exec, 0.9));
  std::printf("  podwarp start->exit   p50 %7.2f ms  p90 %7.2f ms\n", percentile(to_exit, 0.5),
              percentile(to_exit, 0.9));
  std::printf(
      "  podwarp in a pod sandbox (net/ipc/uts joined from pins, as noded starts containers):\n");
  std::printf("  podwarp start->exec   p50 %7.2f ms  p90 %7.2f ms\n", percentile(pod_exec, 0.5),
              percentile(pod_exec, 0.9));
  std::printf("  podwarp start->exit   p50 %7.2f ms  p90 %7.2f ms\n", percentile(pod_exit, 0.5),
              percentile(pod_exit, 0.9));
  if (runc_ok) {
    std::printf("  runc run              p50 %7.2f ms  p90 %7.2f ms\n", percentile(runc, 0.5),
                percentile(runc, 0.9));
    std::printf("  runc create+start     p50 %7.2f ms  p90 %7.2f ms\n", percentile(runc_cs, 0.5),
                percentile(runc_cs, 0.9));
    std::printf(
        "  ratio (p50) runc create+start / podwarp start->exec: %.1fx (own ns), %.1fx (pod)\n",
        percentile(runc_cs, 0.5) / percentile(to_exec, 0.5),
        percentile(runc_cs, 0.5) / percentile(pod_exec, 0.5));
    std::printf(
        "  ratio (p50) runc run / podwarp start->exit:          %.1fx (own ns), %.1fx (pod)\n",
        percentile(runc, 0.5) / percentile(to_exit, 0.5),
        percentile(runc, 0.5) / percentile(pod_exit, 0.5));
  } else {
    std::printf("  runc: not measured (runc spec/run failed)\n");
  }
  std::printf(
      "  CPU per container (user+sys incl. children): podwarp %.2f ms (own ns), %.2f ms (pod);"
      " runc run %.2f ms\n",
      cpu_own, cpu_pod, runc_ok ? cpu_runc : 0.0);
  if (failures) std::printf("  podwarp failures: %d\n", failures);

  // Cleanup: runc state, cgroups (runc's v1 groups too), files.
  (void)cg->destroy("");
  for (auto v1 :
       {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd"}) {
    std::string d = std::string("/sys/fs/cgroup/") + v1 + "/" + name;
    ::rmdir((d + "/runc").c_str());
    ::rmdir(d.c_str());
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return failures == 0 && runc_ok ? 0 : 1;
}
