// Root tests: real busybox containers under a per-test cgroup, run dir and rootfs, all removed
// in TearDown (also when a test fails).
#include "runtime/runtime.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace podwarp::noded::runtime {
namespace {

namespace fs = std::filesystem;

struct Output {
  std::expected<ExitStatus, SysError> status;
  std::string out, err;
};

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "needs /bin/busybox";
    std::string id = std::to_string(::getpid()) + "-" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    tmp_ = "/tmp/podwarp-rt-" + id;
    rootfs_ = tmp_ + "/rootfs";
    run_ = tmp_ + "/run";
    fs::create_directories(rootfs_ + "/bin");
    fs::create_directories(rootfs_ + "/tmp");
    fs::create_directories(run_);
    fs::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    for (auto a : {"sh", "id", "cat", "hostname", "ls", "sleep", "echo", "touch", "unshare", "true",
                   "grep", "wc", "ps", "readlink", "stty"}) {
      fs::create_symlink("busybox", rootfs_ + "/bin/" + a);
    }
    auto m = cgroup::CgroupManager::open(cgroup::CgroupFs::real(), "podwarp-test-rt-" + id);
    ASSERT_TRUE(m) << m.error().message;
    cgroups_.emplace(std::move(*m));
    auto r = cgroups_->ensure_root();
    ASSERT_TRUE(r) << r.error().message;
  }

  void TearDown() override {
    if (cgroups_) {
      auto d = cgroups_->destroy("");
      EXPECT_TRUE(d) << d.error().message;
    }
    for (auto& p : procs_) (void)p.wait();
    for (auto& s : sandboxes_) (void)s.release();
    if (!tmp_.empty()) {
      // Nothing of ours may still be mounted there (pins are released above).
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }

  PodSandbox& sandbox(std::string uid, bool share_pid = false) {
    SandboxConfig cfg{
        .run_dir = run_, .pod_uid = uid, .hostname = "web-0", .share_pid_ns = share_pid};
    auto sb = PodSandbox::create(*cgroups_, cfg);
    EXPECT_TRUE(sb) << sb.error().message;
    sandboxes_.push_back(std::move(*sb));
    return sandboxes_.back();
  }

  ContainerSpec spec(std::string script) {
    ContainerSpec s;
    s.name = "c";
    s.rootfs = rootfs_;
    s.process.argv = {"/bin/sh", "-c", std::move(script)};
    s.process.env = {"PATH=/bin"};
    s.process.capabilities = *compute_capabilities({}, {}, false);
    return s;
  }

  // A container in its own cgroup `name` under the test root (no sandbox).
  ContainerSpec in_cgroup(ContainerSpec s, const std::string& name) {
    auto c = cgroups_->create(name, {}, false);
    EXPECT_TRUE(c) << c.error().message;
    s.cgroup = cgroups_->path_of(name);
    return s;
  }

  std::expected<Process, SysError> start(ContainerSpec s, int out_fd = -1, int err_fd = -1) {
    s.process.stdout_fd = out_fd;
    s.process.stderr_fd = err_fd;
    return start_container(s);
  }

  // Starts, waits through io_uring (Asio), returns the output.
  Output run(ContainerSpec s) {
    if (s.cgroup.empty()) s = in_cgroup(std::move(s), "c" + std::to_string(++counter_));
    int out[2], err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    auto p = start(std::move(s), out[1], err[1]);
    ::close(out[1]);
    ::close(err[1]);
    Output o{std::unexpected(SysError{}), "", ""};
    if (!p) {
      o.status = std::unexpected(p.error());
    } else {
      boost::asio::io_context io;
      boost::asio::co_spawn(
          io, [&]() -> boost::asio::awaitable<void> { o.status = co_await p->async_wait(); },
          boost::asio::detached);
      io.run();
    }
    o.out = read_all(out[0]);
    o.err = read_all(err[0]);
    ::close(out[0]);
    ::close(err[0]);
    return o;
  }

  std::string tmp_, rootfs_, run_;
  std::optional<cgroup::CgroupManager> cgroups_;
  std::vector<PodSandbox> sandboxes_;
  std::vector<Process> procs_;
  int counter_ = 0;
};

#define ASSERT_EXITED(o, c)                              \
  ASSERT_TRUE((o).status) << (o).status.error().message; \
  ASSERT_EQ(*(o).status, (ExitStatus{.code = (c)}))      \
      << "stderr: " << (o).err << " stdout: " << (o).out

TEST_F(ContainerTest, ExitCodeAndOutput) {
  auto o = run(spec("echo hello; echo oops >&2; exit 7"));
  ASSERT_EXITED(o, 7);
  EXPECT_EQ(o.out, "hello\n");
  EXPECT_EQ(o.err, "oops\n");
}

TEST_F(ContainerTest, PidOneProcAndMasks) {
  auto o =
      run(spec("echo pid=$$; cat /proc/self/status | grep -c ^Pid; wc -c < /proc/timer_list; ls "
               "/proc/acpi | wc -l; touch /proc/acpi/x || echo acpi-ro; "
               "echo 1 > /proc/sys/kernel/ns_last_pid || echo sys-ro; "
               "touch /sys/x || echo sysfs-ro; ls /dev; readlink /dev/fd"));
  ASSERT_EXITED(o, 0);
  EXPECT_NE(o.out.find("pid=1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\n0\n0\n"), std::string::npos)
      << "timer_list and /proc/acpi masked: " << o.out;
  EXPECT_NE(o.out.find("acpi-ro"), std::string::npos);
  EXPECT_NE(o.out.find("sys-ro"), std::string::npos);
  EXPECT_NE(o.out.find("sysfs-ro"), std::string::npos);
  for (auto d : {"null", "zero", "urandom", "pts", "shm", "ptmx", "tty"}) {
    EXPECT_NE(o.out.find(d), std::string::npos) << d << " in " << o.out;
  }
  EXPECT_NE(o.out.find("/proc/self/fd"), std::string::npos);
}

TEST_F(ContainerTest, KilledBySignalIsReported) {
  auto s = in_cgroup(spec("sleep 100"), "sig");
  auto p = start(s);
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->kill(SIGKILL));
  auto st = p->wait();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->signaled);
  EXPECT_EQ(st->signal, SIGKILL);
}

TEST_F(ContainerTest, SandboxHostnameAndCgroup) {
  auto& sb = sandbox("pod-a");
  ASSERT_TRUE(sb.create_container_cgroup("app", {}));
  auto s = spec(
      "hostname; cat /etc/hostname; cat /proc/self/cgroup | grep ^0::; "
      "readlink /proc/self/ns/net");
  sb.configure(s, "app");
  auto o = run(s);
  ASSERT_EXITED(o, 0);
  EXPECT_TRUE(o.out.starts_with("web-0\nweb-0\n")) << o.out;
  std::string rel = sb.cgroup_path().substr(cgroups_->mount().size()) + "/app";
  EXPECT_NE(o.out.find("0::" + rel + "\n"), std::string::npos) << o.out << " want " << rel;
  // The container is in the pinned netns.
  struct stat st {};
  ASSERT_EQ(::stat(sb.namespaces().path(ns::NsType::kNet).c_str(), &st), 0);
  EXPECT_NE(o.out.find("net:[" + std::to_string(st.st_ino) + "]"), std::string::npos) << o.out;
}

TEST_F(ContainerTest, ReadOnlyRootFilesystem) {
  auto s = spec("touch /x; echo rc=$?; touch /tmp/x; echo rc=$?");
  s.readonly_rootfs = true;
  auto o = run(s);
  ASSERT_EXITED(o, 0);
  EXPECT_EQ(o.out, "rc=1\nrc=1\n");
  EXPECT_NE(o.err.find("Read-only file system"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(rootfs_ + "/x"));
}

TEST_F(ContainerTest, VolumesAndWorkingDir) {
  fs::create_directories(tmp_ + "/vol-rw");
  fs::create_directories(tmp_ + "/vol-ro");
  std::ofstream(tmp_ + "/vol-ro/config") << "cfg\n";
  auto s = spec("pwd; cat /etc/config/config; touch /etc/config/x || echo ro; echo w > /data/f");
  s.mounts = {{tmp_ + "/vol-ro", "/etc/config", true}, {tmp_ + "/vol-rw", "/data", false}};
  s.process.working_dir = "/work/dir";
  auto o = run(s);
  ASSERT_EXITED(o, 0);
  EXPECT_EQ(o.out, "/work/dir\ncfg\nro\n");
  std::ifstream f(tmp_ + "/vol-rw/f");
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "w");
}

TEST_F(ContainerTest, RunAsUserDropsCapabilities) {
  auto s =
      spec("id -u; id -g; id -G; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");
  s.process.uid = 1000;
  s.process.gid = 2000;
  s.process.supplemental_groups = {3000, 4000};
  s.process.no_new_privs = true;
  auto o = run(s);
  ASSERT_EXITED(o, 0);
  EXPECT_NE(o.out.find("1000\n2000\n2000 3000 4000\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapEff:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapBnd:\t00000000a80425fb"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("NoNewPrivs:\t1"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("Seccomp:\t2"), std::string::npos) << o.out;
}

TEST_F(ContainerTest, RootCapabilitiesAddDrop) {
  auto s = spec("grep -E '^(CapEff|NoNewPrivs):' /proc/self/status");
  s.process.capabilities = *compute_capabilities({"NET_ADMIN"}, {"ALL"}, false);
  auto o = run(s);
  ASSERT_EXITED(o, 0);
  EXPECT_EQ(o.out, "CapEff:\t0000000000001000\nNoNewPrivs:\t0\n");
  auto d = run(spec("grep ^CapEff: /proc/self/status"));
  ASSERT_EXITED(d, 0);
  EXPECT_EQ(d.out, "CapEff:\t00000000a80425fb\n");
}

TEST_F(ContainerTest, SeccompRuntimeDefaultDeniesUnshare) {
  // unshare(CLONE_NEWUSER) needs no capability, so only the profile can refuse it.
  auto denied = run(spec("unshare -U true && echo allowed || echo denied"));
  ASSERT_EXITED(denied, 0);
  EXPECT_EQ(denied.out, "denied\n");
  EXPECT_NE(denied.err.find("Operation not permitted"), std::string::npos) << denied.err;
  auto s = spec("unshare -U true && echo allowed || echo denied; grep ^Seccomp: /proc/self/status");
  s.process.seccomp = SeccompProfile::kUnconfined;
  auto allowed = run(s);
  ASSERT_EXITED(allowed, 0);
  EXPECT_EQ(allowed.out, "allowed\nSeccomp:\t0\n") << allowed.err;
}

TEST_F(ContainerTest, CgroupKillKillsEveryProcess) {
  auto s = in_cgroup(spec("sleep 100 & sleep 100 & sleep 100"), "kill-whole-cgroup");
  auto p = start(s);
  ASSERT_TRUE(p) << p.error().message;
  // Wait until the three processes exist.
  for (int i = 0; i < 500; ++i) {
    std::ifstream procs(s.cgroup + "/cgroup.procs");
    int n = 0;
    for (std::string l; std::getline(procs, l);) ++n;
    if (n >= 3) break;
    ::usleep(2000);
  }
  ASSERT_TRUE(p->kill_cgroup());
  auto st = p->wait();
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->signaled);
  EXPECT_EQ(st->signal, SIGKILL);
  bool empty = false;
  for (int i = 0; i < 500 && !empty; ++i) {
    auto pop = cgroups_->populated("kill-whole-cgroup");
    ASSERT_TRUE(pop);
    empty = !*pop;
    if (!empty) ::usleep(2000);
  }
  EXPECT_TRUE(empty);
}

TEST_F(ContainerTest, ExecSeesPidNamespaceAndFilesystem) {
  auto& sb = sandbox("pod-e");
  ASSERT_TRUE(sb.create_container_cgroup("app", {}));
  auto s = spec("echo marker > /tmp/m; exec sleep 100");
  sb.configure(s, "app");
  auto p = start(s);
  ASSERT_TRUE(p) << p.error().message;
  // Wait until the shell has written the marker and exec'd sleep (host view of its comm).
  auto comm_of = [](pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
    std::string c;
    std::getline(f, c);
    return c;
  };
  for (int i = 0; i < 1000 && comm_of(p->pid()) != "sleep"; ++i) ::usleep(2000);
  ASSERT_EQ(comm_of(p->pid()), "sleep");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  ProcessSpec e;
  e.argv = {"sh", "-c",
            "cat /tmp/m; cat /proc/1/comm; echo $$; hostname; grep ^0:: /proc/self/cgroup"};
  e.env = {"PATH=/bin"};
  e.capabilities = *compute_capabilities({}, {}, false);
  e.stdout_fd = out[1];
  auto x = exec_in(*p, e, s.cgroup);
  ::close(out[1]);
  ASSERT_TRUE(x) << x.error().message;
  auto st = x->wait();
  std::string text = read_all(out[0]);
  ::close(out[0]);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, ExitStatus{});
  std::istringstream in(text);
  std::string marker, comm, pid, host, cg;
  std::getline(in, marker);
  std::getline(in, comm);
  std::getline(in, pid);
  std::getline(in, host);
  std::getline(in, cg);
  EXPECT_EQ(marker, "marker");
  EXPECT_EQ(comm, "sleep");
  EXPECT_NE(pid, std::to_string(x->pid()));  // a pid of the container's namespace
  EXPECT_LT(std::stoi(pid), 100);
  EXPECT_EQ(host, "web-0");
  EXPECT_TRUE(cg.ends_with("/app")) << cg;
  ASSERT_TRUE(p->kill(SIGKILL));
  EXPECT_TRUE(p->wait());
}

TEST_F(ContainerTest, SharedPidNamespace) {
  auto own_pid_ns = fs::read_symlink("/proc/thread-self/ns/pid");
  auto& sb = sandbox("pod-s", /*share_pid=*/true);
  ASSERT_TRUE(sb.create_container_cgroup("first", {}));
  ASSERT_TRUE(sb.create_container_cgroup("second", {}));
  auto s1 = spec("");
  s1.process.argv = {"sleep", "100"};  // comm is "sleep" from the exec on: no race
  sb.configure(s1, "first");
  EXPECT_TRUE(s1.pid_ns.empty());
  auto p1 = start(s1);
  ASSERT_TRUE(p1) << p1.error().message;
  ASSERT_TRUE(sb.adopt_first_container(*p1));
  auto s2 = spec("echo $$; cat /proc/1/comm");
  sb.configure(s2, "second");
  EXPECT_FALSE(s2.pid_ns.empty());
  auto o = run(s2);
  ASSERT_EXITED(o, 0);
  std::istringstream in(o.out);
  std::string pid, comm;
  std::getline(in, pid);
  std::getline(in, comm);
  EXPECT_NE(pid, "1");
  EXPECT_EQ(comm, "sleep");
  // This thread is back in its own pid namespace.
  EXPECT_EQ(fs::read_symlink("/proc/thread-self/ns/pid"), own_pid_ns);
  ASSERT_TRUE(p1->kill(SIGKILL));
  EXPECT_TRUE(p1->wait());
}

TEST_F(ContainerTest, ResolveUserStaysInsideRootfs) {
  fs::create_directories(rootfs_ + "/etc");
  // An image whose /etc/passwd points at the host's must not read the host's file.
  fs::create_symlink("/etc/passwd", rootfs_ + "/etc/passwd");
  // Resolved inside the rootfs, the link points at itself: ELOOP, never the host's root entry.
  auto r = resolve_user_in_rootfs(rootfs_, "root");
  ASSERT_FALSE(r) << "host /etc/passwd was read";
  EXPECT_EQ(r.error().code, ELOOP) << r.error().message;
  fs::remove(rootfs_ + "/etc/passwd");
  std::ofstream(rootfs_ + "/etc/passwd") << "web:x:33:33::/:/bin/sh\n";
  auto ok = resolve_user_in_rootfs(rootfs_, "web");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, (UserIds{33, 33, {}}));
}

TEST_F(ContainerTest, ConcurrentStartsFromManyThreads) {
  constexpr int kThreads = 6;
  std::vector<ContainerSpec> specs;
  for (int i = 0; i < kThreads; ++i) {
    specs.push_back(in_cgroup(spec("exit " + std::to_string(10 + i)), "t" + std::to_string(i)));
  }
  std::vector<std::expected<ExitStatus, SysError>> results(kThreads, std::unexpected(SysError{}));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 5; ++round) {
        auto p = start(specs[i]);
        if (!p) {
          results[i] = std::unexpected(p.error());
          return;
        }
        results[i] = p->wait();
        if (!results[i] || results[i]->code != 10 + i) return;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(results[i]) << results[i].error().message;
    EXPECT_EQ(*results[i], (ExitStatus{.code = 10 + i}));
  }
}

TEST_F(ContainerTest, FailedStartsNameTheStep) {
  auto s = in_cgroup(spec(""), "fail");
  s.process.argv = {"/bin/nope"};
  auto r = start(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: exec /bin/nope: ENOENT");
  EXPECT_EQ(r.error().code, ENOENT);
  s.process.argv = {"nope"};  // PATH lookup
  r = start(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: exec nope: ENOENT");
  s.process.argv = {"/tmp"};
  r = start(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: exec /tmp: EACCES");
  auto bad = in_cgroup(spec("true"), "fail2");
  bad.net_ns = tmp_ + "/no-such-pin";
  r = start(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: open " + tmp_ + "/no-such-pin: ENOENT");
  // Nothing was left behind in the cgroup.
  EXPECT_EQ(cgroups_->populated("fail"), false);
}

// exec with stdin (a pipe), and with a pty as controlling terminal (kubectl exec -i / -it).
TEST_F(ContainerTest, ExecWithStdinPipeAndControllingTty) {
  auto& sb = sandbox("pod-tty");
  ASSERT_TRUE(sb.create_container_cgroup("app", {}));
  auto s = spec("exec sleep 100");
  sb.configure(s, "app");
  auto p = start(s);
  ASSERT_TRUE(p) << p.error().message;
  ProcessSpec e;
  e.env = {"PATH=/bin"};
  e.capabilities = *compute_capabilities({}, {}, false);
  // stdin pipe: what we write comes back through cat; EOF ends it.
  {
    int in[2], out[2];
    ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    e.argv = {"sh", "-c", "test -t 0 || echo notty; cat"};
    e.stdin_fd = in[0];
    e.stdout_fd = out[1];
    auto x = exec_in(*p, e, s.cgroup);
    ::close(in[0]);
    ::close(out[1]);
    ASSERT_TRUE(x) << x.error().message;
    ASSERT_EQ(::write(in[1], "ping\n", 5), 5);
    ::close(in[1]);
    std::string text = read_all(out[0]);
    ::close(out[0]);
    auto st = x->wait();
    ASSERT_TRUE(st);
    EXPECT_EQ(*st, ExitStatus{});
    EXPECT_EQ(text, "notty\nping\n");
  }
  // pty: the shell sees a terminal as stdin/stdout, owns it as its session's controlling
  // tty (/dev/tty opens), and gets the window size we set on the master.
  {
    int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(master, 0);
    ASSERT_EQ(::grantpt(master), 0);
    ASSERT_EQ(::unlockpt(master), 0);
    char name[64];
    ASSERT_EQ(::ptsname_r(master, name, sizeof name), 0);
    int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    ASSERT_GE(slave, 0);
    winsize ws{};
    ws.ws_row = 33;
    ws.ws_col = 101;
    ASSERT_EQ(::ioctl(master, TIOCSWINSZ, &ws), 0);
    e.argv = {"sh", "-c",
              "test -t 0 && test -t 1 && echo istty; echo ctty >/dev/tty && stty size; exit 3"};
    e.stdin_fd = slave;
    e.stdout_fd = slave;
    e.stderr_fd = slave;
    e.controlling_tty = true;
    auto x = exec_in(*p, e, s.cgroup);
    ::close(slave);
    ASSERT_TRUE(x) << x.error().message;
    std::string text;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(master, buf, sizeof buf);  // EIO once the slave side is gone
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    ::close(master);
    auto st = x->wait();
    ASSERT_TRUE(st);
    EXPECT_EQ(*st, ExitStatus{.code = 3});
    EXPECT_EQ(text, "istty\r\nctty\r\n33 101\r\n");
  }
  ASSERT_TRUE(p->kill(SIGKILL));
  EXPECT_TRUE(p->wait());
}

}  // namespace
}  // namespace podwarp::noded::runtime
