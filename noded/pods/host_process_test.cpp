// The pod lifecycle against real processes: a minimal ContainerRuntime that runs the
// container's command as a plain host child process (no namespaces), waited on through a pidfd
// on the io_context. It checks what fakes cannot: the FIFO stdout/stderr design with real
// writers, real exit codes and signals, and adoption of a still-running process by a second
// "noded" whose predecessor vanished.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <cstring>
#include <fstream>

#include "pods/fakes_for_test.h"
#include "pods/pod_manager.h"
#include "pods/state_store.h"

namespace podwarp::noded::pods {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

class HostRuntime : public ContainerRuntime {
 public:
  explicit HostRuntime(asio::io_context& io) : io_(io) {}
  // Kills what this runtime still tracks (by pidfd: never a recycled pid). Tests call it at
  // the end, also on failure.
  void kill_all() {
    for (auto& [id, p] : procs_)
      if (!p->exited) ::syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, nullptr, 0);
  }
  std::vector<pid_t> pids;

  Awaitable<std::expected<Sandbox, std::string>> create_sandbox(const SandboxRequest&) override {
    co_return Sandbox{};
  }
  Awaitable<std::expected<void, std::string>> release_sandbox(const std::string&) override {
    co_return std::expected<void, std::string>{};
  }
  Awaitable<std::expected<ContainerHandle, std::string>> start_container(const ContainerStartRequest& req) override {
    std::vector<std::string> args;
    for (const char* k : {"command", "args"})
      if (auto* a = find_path(*req.container, {k}); a && a->is_array())
        for (const auto& s : a->as_array()) args.emplace_back(s.as_string());
    if (args.empty()) co_return std::unexpected("no command specified");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(req.stdout_fd, 1);
      ::dup2(req.stderr_fd, 2);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    auto p = std::make_shared<Proc>();
    p->pid = pid;
    p->pidfd = pidfd_open(pid);
    std::string id = fmt::format("host://{}", pid);
    procs_[id] = p;
    pids.push_back(pid);
    co_return ContainerHandle{id, pid, process_start_ticks(pid).value_or(0)};
  }
  Awaitable<ExitInfo> wait_container(const std::string& id) override {
    auto p = procs_.at(id);
    asio::posix::stream_descriptor sd(io_, ::dup(p->pidfd));
    co_await sd.async_wait(asio::posix::descriptor_base::wait_read, asio::as_tuple(asio::use_awaitable));
    siginfo_t si{};
    ExitInfo e;
    if (::waitid(static_cast<idtype_t>(P_PIDFD), p->pidfd, &si, WEXITED) == 0) {
      if (si.si_code == CLD_EXITED) {
        e.exit_code = si.si_status;
      } else {
        e.signal = si.si_status;
        e.exit_code = 128 + si.si_status;
      }
    } else {
      e.code_known = false;
    }
    e.finished_at = std::chrono::system_clock::now();
    p->exited = true;
    co_return e;
  }
  std::expected<void, std::string> signal_container(const std::string& id, int sig) override {
    auto it = procs_.find(id);
    if (it == procs_.end()) return std::unexpected("unknown container " + id);
    signals.push_back(sig);
    if (::syscall(SYS_pidfd_send_signal, it->second->pidfd, sig, nullptr, 0) != 0)
      return std::unexpected(fmt::format("pidfd_send_signal: {}", std::strerror(errno)));
    return {};
  }
  void remove_container(const std::string& id) override {
    auto it = procs_.find(id);
    if (it != procs_.end() && it->second->exited) {
      ::close(it->second->pidfd);
      procs_.erase(it);
    }
  }
  Awaitable<ExecResult> exec_in_container(const std::string&, const std::vector<std::string>& argv,
                                          std::chrono::milliseconds) override {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    co_return ExecResult{WEXITSTATUS(std::system(cmd.c_str())), false, ""};
  }
  Awaitable<AdoptResult> adopt_container(const std::string&, const ContainerHandle& h) override {
    if (!same_process(h.pid, h.start_ticks)) co_return AdoptResult{};
    auto p = std::make_shared<Proc>();
    p->pid = h.pid;
    p->pidfd = pidfd_open(h.pid);
    procs_[h.id] = p;
    co_return AdoptResult{AdoptState::kRunning, {}};
  }
  std::vector<int> signals;

 private:
  struct Proc {
    pid_t pid = -1;
    int pidfd = -1;
    bool exited = false;
  };
  asio::io_context& io_;
  std::map<std::string, std::shared_ptr<Proc>> procs_;
};

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-hostproc-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

struct Node {
  asio::io_context& io = *new asio::io_context;  // never destroyed (io_uring, notes/common.md)
  HostRuntime& rt = *new HostRuntime(io);
  testing::FakeImages& images = *new testing::FakeImages;
  std::unique_ptr<PodManager> m;
  Node(const std::string& dir) {
    PodManagerOptions o;
    o.manifest_dir = dir + "/m";
    o.root_dir = dir + "/root";
    o.pod_log_dir = dir + "/logs";
    o.timings.second = 50ms;
    o.timings.backoff_base = 50ms;
    m = make_pod_manager(io.get_executor(), o, rt, images);
    m->start();
  }
  ~Node() {
    rt.kill_all();
    (void)m.release();
  }
  const PodWorker* pod(const std::string& name) { return m->find_pod("default", name); }
};

void write(const std::string& p, const std::string& s) {
  std::ofstream(p + ".tmp") << s;
  fs::rename(p + ".tmp", p);
}

std::string read_log(const std::string& p) {
  auto r = logs::read_log_file(p, {});
  return r ? *r : "";
}

TEST(HostProcess, ExitCodeAndCriLogsFromARealProcess) {
  TmpDir t;
  fs::create_directories(t.path + "/m");
  write(t.path + "/m/p.yaml", R"(
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: x:1
    command: [/bin/sh, -c, 'echo hello; echo oops >&2; printf partial; exit 3']
)");
  Node n(t.path);
  ASSERT_TRUE(testing::run_until(n.io, [&] { return n.pod("p") && n.pod("p")->phase() == "Failed"; }));
  const auto& cs = n.pod("p")->status().app[0];
  EXPECT_EQ(cs.state.exit_code, 3);
  EXPECT_EQ(cs.state.reason, "Error");
  auto path = *n.pod("p")->log_path("c", false);
  // stdout and stderr are separate pipes: their relative order is not defined.
  ASSERT_TRUE(testing::run_until(n.io, [&] { return read_log(path).size() == 19; })) << read_log(path);
  std::ifstream f(path);
  std::string raw((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(raw.find(" stdout F hello\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find(" stderr F oops\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find(" stdout F partial\n"), std::string::npos) << raw;
}

TEST(HostProcess, SigtermIgnoredEscalatesToSigkill) {
  TmpDir t;
  fs::create_directories(t.path + "/m");
  write(t.path + "/m/p.yaml", R"(
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: x:1
    command: [/bin/sh, -c, 'trap "" TERM; echo ready; while :; do sleep 0.05; done']
)");
  Node n(t.path);
  ASSERT_TRUE(testing::run_until(n.io, [&] { return n.pod("p") && n.pod("p")->phase() == "Running"; }));
  auto path = *n.pod("p")->log_path("c", false);
  ASSERT_TRUE(testing::run_until(n.io, [&] { return read_log(path) == "ready\n"; }));
  fs::remove(t.path + "/m/p.yaml");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::run_until(n.io, [&] { return n.pod("p") == nullptr; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);  // waited the grace period
  EXPECT_EQ(n.rt.signals, (std::vector<int>{SIGTERM, SIGKILL}));
  EXPECT_FALSE(same_process(n.rt.pids[0], 0));
  EXPECT_NE(::kill(n.rt.pids[0], 0), 0);  // gone (and reaped)
  EXPECT_TRUE(fs::is_empty(t.path + "/logs"));  // the removed pod's log dir went with it
}

TEST(HostProcess, SecondNodedAdoptsARunningProcessAndItsOutput) {
  TmpDir t;
  fs::create_directories(t.path + "/m");
  write(t.path + "/m/p.yaml", R"(
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: x:1
    command: [/bin/sh, -c, 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.02; done']
)");
  auto* first = new Node(t.path);
  ASSERT_TRUE(testing::run_until(first->io, [&] { return first->pod("p") && first->pod("p")->phase() == "Running"; }));
  auto path = *first->pod("p")->log_path("c", false);
  ASSERT_TRUE(testing::run_until(first->io, [&] { return read_log(path).find("tick 3\n") != std::string::npos; }));
  pid_t pid = first->rt.pids.at(0);
  struct KillOnExit {  // whatever happens below, the process does not outlive the test
    int fd;
    ~KillOnExit() {
      ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
      ::close(fd);
    }
  } guard{pidfd_open(pid)};
  // "kill -9" of the first noded: its loop never runs again; the FIFO keeps the container alive.
  testing::run_until(first->io, [] { return false; }, 200ms);  // (nothing: just let time pass)
  Node second(t.path);
  ASSERT_TRUE(testing::run_until(second.io, [&] { return second.pod("p") && second.pod("p")->phase() == "Running"; }));
  EXPECT_TRUE(second.rt.pids.empty());  // adopted, not started
  EXPECT_EQ(second.pod("p")->status().app[0].restart_count, 0);
  EXPECT_EQ(::kill(pid, 0), 0);
  // Output keeps flowing into the same log file, through the new noded.
  auto before = read_log(path).size();
  ASSERT_TRUE(testing::run_until(second.io, [&] { return read_log(path).size() > before + 40; }));
  fs::remove(t.path + "/m/p.yaml");
  ASSERT_TRUE(testing::run_until(second.io, [&] { return second.pod("p") == nullptr; }));
  EXPECT_EQ(second.rt.signals, std::vector<int>{SIGTERM});
  EXPECT_NE(::kill(pid, 0), 0);
}

}  // namespace
}  // namespace podwarp::noded::pods
