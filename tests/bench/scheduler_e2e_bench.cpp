// scheduler_e2e_bench: scheduling through the real apiserver and etcd, pods/s from create to
// bound, against the create-only rate of the same apiserver as its peer.
//
// Each run starts its own etcd and `podwarp-control --components apiserver` (ApiFixture), and
// creates N Node objects through the API (create + status update; 4 cpu, 32Gi, 110 pods, as
// upstream scheduler_perf's node-default.yaml). Then:
//
//  - bound:  podwarp-control is restarted with `--components apiserver,scheduler
//            --leader-elect false` (so the scheduler's first list holds every node), one
//            warm-up pod is created and waited for; then M pods (100m cpu, 500Mi, as
//            pod-default.yaml) are created with C concurrent requests while a watch on the
//            namespace counts pods with spec.nodeName set. Rate: M / (first create sent ->
//            last pod seen bound).
//  - peer:   the same creates with the scheduler off (`--components apiserver`). Rate: M /
//            (first create sent -> last create answered).
//
// The benchmark client (TLS, one thread) shares the machine with etcd and podwarp-control.
// CPU seconds of podwarp-control, etcd and the client during the measured interval come from
// /proc/<pid>/stat (utime + stime). With --split, one more run puts the scheduler in its own
// process (`--components scheduler --kubeconfig admin.kubeconfig`) to show where the CPU goes.
//
// Usage: scheduler_e2e_bench [--nodes N (500)] [--pods M (2000)] [--concurrency C (16)]
//                            [--runs R (3; 0 with --split: only the split run)] [--split]
//                            [--control-log-level warn]
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/json.h"
#include "testing/api_fixture.h"

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using namespace podwarp;
using namespace std::chrono_literals;

namespace {

// --control-log-level: podwarp-control's --log-level (warn keeps logging out of the figures).
std::string g_log_level = "warn";

const api::Resource& res(std::string_view plural) { return *api::find_resource("", "v1", plural); }

double secs_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// utime + stime of a process in seconds; -1 when unreadable.
double cpu_seconds(pid_t pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  // Fields after "(comm)": state(3) ... utime(14) stime(15).
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (in >> field); ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Our child processes with the given command name (etcd, podwarp-control).
std::vector<pid_t> children_named(std::string_view comm) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto open = s.find('('), close = s.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string name = s.substr(open + 1, close - open - 1);
    std::istringstream in(s.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    in >> state >> ppid;
    if (ppid == getpid() && name == comm) out.push_back(pid);
  }
  closedir(d);
  return out;
}

std::string log_tail(const std::string& path) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

json::value node_json(int i) {
  std::string name = fmt::format("node-{}", i);
  json::object labels{{"kubernetes.io/hostname", name},
                      {"topology.kubernetes.io/zone", fmt::format("zone-{}", i % 10)}};
  json::object res{{"cpu", "4"}, {"memory", "32Gi"}, {"pods", "110"}};
  json::object ready{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}};
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Node"},
                      {"metadata", json::object{{"name", name}, {"labels", labels}}},
                      {"status", json::object{{"capacity", res},
                                              {"allocatable", res},
                                              {"conditions", json::array{ready}}}}};
}

json::value pod_json(const std::string& name) {
  json::object container{
      {"name", "c"},
      {"image", "registry.k8s.io/pause:3.9"},
      {"resources",
       json::object{{"requests", json::object{{"cpu", "100m"}, {"memory", "500Mi"}}}}}};
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", name}, {"labels", json::object{{"app", "bench"}}}}},
      {"spec", json::object{{"containers", json::array{container}}}}};
}

struct Options {
  // 500 / 2,000 by default; 10,000 pods run since the io_uring timed-run fix (asio_run.h).
  int nodes = 500;
  int pods = 2000;
  int concurrency = 16;
  int runs = 3;
  bool split = false;
};

enum class Mode { peer, bound, split };

struct RunResult {
  bool ok = false;
  double create_seconds = 0;  // first create sent -> last create answered
  double bound_seconds = 0;   // first create sent -> last pod seen bound (bound modes)
  int bound = 0;
  int create_failures = 0;
  double cpu_control = 0, cpu_scheduler = 0, cpu_etcd = 0, cpu_client = 0;
  double node_seconds = 0;
  int rewatches = 0;  // times the bench's pod watch ended early and was resumed by a relist
  int relist_failures = 0;  // relists that failed and were retried
  std::string load;
};

// Runs `n` jobs with `c` concurrent coroutines; returns the number that failed.
asio::awaitable<int> run_concurrently(int n, int c, std::function<asio::awaitable<bool>(int)> job) {
  auto ex = co_await asio::this_coro::executor;
  int next = 0, failed = 0, running = c;
  asio::steady_timer done(ex, Clock::time_point::max());
  for (int w = 0; w < c; ++w) {
    asio::co_spawn(ex, [&]() -> asio::awaitable<void> {
      while (next < n) {
        int i = next++;
        if (!co_await job(i)) ++failed;
      }
      if (--running == 0) done.cancel();
    }, asio::detached);
  }
  boost::system::error_code ec;
  if (running > 0) co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return failed;
}

// The scheduler as its own process against the fixture's apiserver (for --split).
struct SchedulerProcess {
  pid_t pid = 0;
  ~SchedulerProcess() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(50ms);
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

bool spawn_scheduler(SchedulerProcess& p, const std::string& binary, const std::string& kubeconfig,
                     const std::string& log_path) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execl(binary.c_str(), binary.c_str(), "--components", "scheduler", "--kubeconfig",
          kubeconfig.c_str(), "--leader-elect", "false", "--log-level", g_log_level.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  p.pid = pid;
  return true;
}

RunResult run_once(const Options& o, Mode mode, const std::string& control_bin) {
  RunResult r;
  std::vector<std::string> args{"--components", "apiserver", "--log-level", g_log_level};
  auto fx = testing::ApiFixture::start(args);
  if (!fx) {
    fmt::print(stderr, "start: {}\n", fx.error());
    return r;
  }
  auto& f = **fx;
  client::Config cfg = f.client_config();
  cfg.max_idle_connections = static_cast<std::size_t>(o.concurrency) + 4;
  cfg.request_timeout = 120s;

  // Namespace and nodes.
  {
    client::Client c(f.io().get_executor(), cfg);
    auto t0 = Clock::now();
    json::value ns = json::object{{"apiVersion", "v1"},
                                  {"kind", "Namespace"},
                                  {"metadata", json::object{{"name", "bench"}}}};
    auto nsr = f.run(c.create(res("namespaces"), "", ns));
    if (!nsr) {
      fmt::print(stderr, "namespace: {}\n", nsr.error().to_string());
      return r;
    }
    int failed = f.run(run_concurrently(o.nodes, o.concurrency, [&](int i) -> asio::awaitable<bool> {
      // g++ 12: no temporaries inside co_await expressions; build each awaitable first.
      json::value n = node_json(i);
      std::string cluster;
      client::WriteOptions wo;
      auto create = c.create(res("nodes"), cluster, n, wo);
      auto created = co_await std::move(create);
      if (!created) co_return false;
      json::value with_status = *created;
      with_status.as_object()["status"] = n.as_object()["status"];
      auto update = c.update_status(res("nodes"), cluster, with_status, wo);
      auto st = co_await std::move(update);
      co_return st.has_value();
    }));
    r.node_seconds = secs_since(t0);
    if (failed > 0) {
      fmt::print(stderr, "{} node creates failed\n", failed);
      return r;
    }
  }

  SchedulerProcess sched;
  if (mode == Mode::bound) {
    std::vector<std::string> sargs{"--components", "apiserver,scheduler", "--leader-elect",
                                   "false", "--log-level", g_log_level};
    // restart_control appends to control.log and looks for the "serving on" line in it: move
    // the old log away so that it finds the new process' line, not the old one's.
    std::error_code ec;
    std::filesystem::rename(f.dir() + "/control.log", f.dir() + "/control.log.1", ec);
    auto rs = f.restart_control(sargs);
    if (!rs) {
      fmt::print(stderr, "restart: {}\n", rs.error());
      return r;
    }
    cfg.server = f.client_config().server;
  } else if (mode == Mode::split) {
    if (!spawn_scheduler(sched, control_bin, f.kubeconfig_path(), f.dir() + "/scheduler.log")) {
      fmt::print(stderr, "fork scheduler failed\n");
      return r;
    }
  }
  // One idle connection per concurrent creator: no connection churn (with the default pool
  // of 4, most requests would close a connection and open another).
  cfg.max_idle_connections = static_cast<std::size_t>(o.concurrency) + 4;
  client::Client c(f.io().get_executor(), cfg);

  // Warm-up pod: in the bound modes, wait until it is bound (the scheduler has synced).
  {
    auto w = f.run(c.create(res("pods"), "bench", pod_json("warmup")));
    if (!w) {
      fmt::print(stderr, "warm-up pod: {}\ncontrol.log:\n{}\n", w.error().to_string(),
                 log_tail(f.dir() + "/control.log"));
      return r;
    }
    if (mode != Mode::peer) {
      bool bound = f.eventually([&] {
        auto p = f.run(c.get(res("pods"), "bench", "warmup"));
        return p && !get_string(*p, {"spec", "nodeName"}).empty();
      }, 60s);
      if (!bound) {
        fmt::print(stderr, "warm-up pod not bound within 60 s (logs in {})\n", f.dir());
        return r;
      }
    }
  }

  pid_t control_pid = 0, etcd_pid = 0;
  for (pid_t p : children_named("podwarp-control"))
    if (p != sched.pid) control_pid = p;
  auto etcds = children_named("etcd");
  if (!etcds.empty()) etcd_pid = etcds.front();

  // The watch, from the current resourceVersion.
  auto list = f.run(c.list(res("pods"), "bench"));
  if (!list) {
    fmt::print(stderr, "list: {}\n", list.error().to_string());
    return r;
  }
  std::string rv(get_string(*list, {"metadata", "resourceVersion"}));
  client::ListOptions wopts;
  wopts.resource_version = rv;
  wopts.timeout_seconds = 600;
  auto watch = f.run(c.open_watch(res("pods"), "bench", wopts));
  if (!watch) {
    fmt::print(stderr, "watch: {}\n", watch.error().to_string());
    return r;
  }
  // The server may end a watch whose reader falls behind: then relist (counting the bound pods
  // in the list) and watch again from the list's resourceVersion, as an informer does.
  std::shared_ptr<client::WatchStream> current = *watch;

  const bool expect_bound = mode != Mode::peer;
  std::unordered_set<std::string> bound_names;
  bound_names.reserve(static_cast<std::size_t>(o.pods) * 2);
  Clock::time_point t0, created_at, bound_at;
  bool watching = true, finished = false;
  std::string last_watch_end;
  auto count = [&](const json::value& obj) {
    if (get_string(obj, {"spec", "nodeName"}).empty()) return false;
    std::string name(get_string(obj, {"metadata", "name"}));
    if (name == "warmup") return false;
    if (bound_names.insert(name).second && static_cast<int>(bound_names.size()) == o.pods) {
      bound_at = Clock::now();
      return true;
    }
    return false;
  };
  asio::co_spawn(f.io(), [&]() -> asio::awaitable<void> {
    std::string ns = "bench";
    while (true) {
      auto next = current->next();
      auto ev = co_await std::move(next);
      if (ev && *ev) {
        if (count((*ev)->object)) break;
        continue;
      }
      if (finished) break;
      last_watch_end = ev ? std::string("end of stream") : ev.error().to_string();
      ++r.rewatches;
      fmt::print(stderr, "pod watch ended after {} bound ({}); relisting\n", bound_names.size(),
                 last_watch_end);
      // As an informer: a failed relist is retried (with a pause), not the end of the run.
      client::Result<json::value> listed = std::unexpected(client::Error{});
      for (int attempt = 0; attempt < 20; ++attempt) {
        client::ListOptions lo;
        auto l = c.list(res("pods"), ns, lo);
        listed = co_await std::move(l);
        if (listed) break;
        ++r.relist_failures;
        fmt::print(stderr, "relist failed ({}); retrying\n", listed.error().to_string());
        asio::steady_timer pause(co_await asio::this_coro::executor, 200ms);
        co_await pause.async_wait(asio::use_awaitable);
      }
      if (!listed) {
        last_watch_end = listed.error().to_string();
        break;
      }
      bool done = false;
      if (const json::value* items = find_path(*listed, {"items"}); items && items->is_array())
        for (const auto& item : items->get_array()) done = count(item) || done;
      if (done) break;
      client::ListOptions wo;
      wo.resource_version = std::string(get_string(*listed, {"metadata", "resourceVersion"}));
      wo.timeout_seconds = 600;
      auto w = c.open_watch(res("pods"), ns, wo);
      auto reopened = co_await std::move(w);
      if (!reopened) {
        last_watch_end = reopened.error().to_string();
        break;
      }
      current = *reopened;
    }
    watching = false;
  }, asio::detached);

  double cpu_c0 = cpu_seconds(control_pid), cpu_e0 = cpu_seconds(etcd_pid),
         cpu_s0 = sched.pid > 0 ? cpu_seconds(sched.pid) : 0, cpu_b0 = cpu_seconds(getpid());
  t0 = Clock::now();
  r.create_failures = f.run(run_concurrently(o.pods, o.concurrency, [&](int i) -> asio::awaitable<bool> {
    std::string ns = "bench";
    json::value pod = pod_json(fmt::format("pod-{}", i));
    client::WriteOptions wo;
    auto create = c.create(res("pods"), ns, pod, wo);
    auto p = co_await std::move(create);
    co_return p.has_value();
  }));
  created_at = Clock::now();
  if (expect_bound) {
    f.eventually([&] { return !watching; }, 300s);
  }
  auto end = expect_bound ? Clock::now() : created_at;
  r.cpu_control = cpu_seconds(control_pid) - cpu_c0;
  r.cpu_etcd = cpu_seconds(etcd_pid) - cpu_e0;
  r.cpu_scheduler = sched.pid > 0 ? cpu_seconds(sched.pid) - cpu_s0 : 0;
  r.cpu_client = cpu_seconds(getpid()) - cpu_b0;
  (void)end;
  finished = true;
  current->cancel();
  f.eventually([&] { return !watching; }, 5s);
  r.create_seconds = std::chrono::duration<double>(created_at - t0).count();
  r.bound = static_cast<int>(bound_names.size());
  if (expect_bound) {
    if (r.bound < o.pods) {
      fmt::print(stderr,
                 "only {} of {} pods bound within 300 s (watch: {}); podwarp-control {}\n"
                 "control.log:\n{}\n",
                 r.bound, o.pods, last_watch_end,
                 cpu_seconds(control_pid) < 0 ? "gone" : "still running",
                 log_tail(f.dir() + "/control.log"));
      client::Client fresh(f.io().get_executor(), cfg);
      auto probe = f.run(fresh.get(res("namespaces"), "", "bench"));
      fmt::print(stderr, "a fresh GET of namespace bench: {}\n",
                 probe ? "ok" : probe.error().to_string());
      if (sched.pid > 0)
        fmt::print(stderr, "scheduler.log:\n{}\n", log_tail(f.dir() + "/scheduler.log"));
      if (const char* hold = std::getenv("PODWARP_BENCH_HOLD_SECONDS")) {
        // Keeps the cluster up for a look (kubeconfig in the fixture's dir).
        fmt::print(stderr, "holding {} s: KUBECONFIG={}\n", hold, f.kubeconfig_path());
        std::this_thread::sleep_for(std::chrono::seconds(std::atoi(hold)));
      }
      return r;
    }
    r.bound_seconds = std::chrono::duration<double>(bound_at - t0).count();
  }
  r.load = load_average();
  r.ok = r.create_failures == 0;
  if (r.create_failures > 0) fmt::print(stderr, "{} pod creates failed\n", r.create_failures);
  return r;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string control_bin =
      (std::filesystem::path(argv[0]).parent_path() / "podwarp-control").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--nodes") o.nodes = val();
    else if (a == "--pods") o.pods = val();
    else if (a == "--concurrency") o.concurrency = val();
    else if (a == "--runs") o.runs = val();
    else if (a == "--split") o.split = true;
    else if (a == "--control-log-level" && i + 1 < argc) g_log_level = argv[++i];
  }
  if (o.nodes <= 0 || o.pods <= 0 || o.concurrency <= 0 || o.runs < 0 || (o.runs == 0 && !o.split)) {
    fmt::print(stderr, "usage: scheduler_e2e_bench [--nodes N] [--pods M] [--concurrency C] "
                       "[--runs R] [--split]\n");
    return 2;
  }
  fmt::print("scheduler_e2e_bench: nodes={} pods={} concurrency={} runs={} (load {})\n", o.nodes,
             o.pods, o.concurrency, o.runs, load_average());
  std::vector<double> peer_rates, bound_rates, bound_create_rates, ratios;
  for (int run = 0; run < o.runs; ++run) {
    // The peer first in each run, then the scheduler, alternating so drift hits both.
    RunResult p = run_once(o, Mode::peer, control_bin);
    RunResult b = run_once(o, Mode::bound, control_bin);
    if (!p.ok || !b.ok) {
      fmt::print(stderr, "run {} failed\n", run + 1);
      std::fflush(nullptr);
      _exit(1);
    }
    double pr = o.pods / p.create_seconds, br = o.pods / b.bound_seconds;
    peer_rates.push_back(pr);
    bound_rates.push_back(br);
    bound_create_rates.push_back(o.pods / b.create_seconds);
    ratios.push_back(br / pr);
    fmt::print(
        "run {}: create-only {:.0f} pods/s ({:.2f} s; cpu control {:.1f} s, etcd {:.1f} s, client "
        "{:.1f} s) | create->bound {:.0f} pods/s ({:.2f} s, creates done at {:.2f} s; cpu control "
        "{:.1f} s, etcd {:.1f} s, client {:.1f} s; rewatches {}, failed relists {}) | ratio {:.2f} | "
        "nodes created in {:.1f} s | load {}\n",
        run + 1, pr, p.create_seconds, p.cpu_control, p.cpu_etcd, p.cpu_client, br,
        b.bound_seconds, b.create_seconds, b.cpu_control, b.cpu_etcd, b.cpu_client, b.rewatches, b.relist_failures, br / pr,
        b.node_seconds, b.load);
    std::fflush(stdout);
  }
  if (o.runs > 0) {
  fmt::print("| measure (median of {}) | podwarp | peer (create-only) | ratio |\n|---|---|---|---|\n",
             o.runs);
  fmt::print("| pods/s create -> bound, {} nodes, {} pods | {:.0f} | {:.0f} | {:.2f} |\n", o.nodes,
             o.pods, median(bound_rates), median(peer_rates), median(ratios));
  fmt::print("| creates/s while scheduling | {:.0f} | {:.0f} | {:.2f} |\n", median(bound_create_rates),
             median(peer_rates), median(bound_create_rates) / median(peer_rates));
  }
  std::fflush(stdout);
  if (o.split) {
    RunResult s = run_once(o, Mode::split, control_bin);
    if (s.ok) {
      double total = s.bound_seconds;
      fmt::print(
          "split run (scheduler in its own process): {:.0f} pods/s create->bound ({:.2f} s); CPU "
          "seconds in that interval: apiserver {:.1f}, scheduler {:.1f}, etcd {:.1f}, bench "
          "client {:.1f} (of {:.1f} available on 2 cores); rewatches {}; load {}\n",
          o.pods / total, total, s.cpu_control, s.cpu_scheduler, s.cpu_etcd, s.cpu_client,
          2 * total, s.rewatches, s.load);
    } else {
      fmt::print(stderr, "split run failed\n");
    }
  }
  std::fflush(nullptr);
  _exit(0);  // no io_context teardown with pending io_uring ops
}
