#include "storage/etcd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "podwarp/log.h"
#include "storage/etcd_client.h"
#include "podwarp/unique_fd.h"

extern char** environ;

namespace podwarp::storage {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::system_error sys_error(int err, std::string what) {
  return std::system_error(err, std::generic_category(), std::move(what));
}

// Owns a file descriptor.
using Fd = UniqueFd;

// Two distinct free loopback ports: bind port 0 twice (both held, so they differ), read the
// ports, close. etcd may still lose a race for them; start() retries on "address in use".
std::expected<std::pair<int, int>, std::system_error> pick_ports() {
  for (int attempt = 0; attempt < 16; ++attempt) {
    Fd socks[2];
    int ports[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      socks[i] = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (socks[i].get() < 0) return std::unexpected(sys_error(errno, "socket AF_INET"));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = 0;
      if (::bind(socks[i].get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return std::unexpected(sys_error(errno, "bind 127.0.0.1:0"));
      }
      socklen_t len = sizeof addr;
      if (::getsockname(socks[i].get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return std::unexpected(sys_error(errno, "getsockname 127.0.0.1:0"));
      }
      ports[i] = ntohs(addr.sin_port);
    }
    auto forbidden = [](int p) { return p == 8080 || p == 2024; };
    if (!forbidden(ports[0]) && !forbidden(ports[1])) return std::pair{ports[0], ports[1]};
  }
  return std::unexpected(sys_error(EADDRNOTAVAIL, "pick free loopback ports"));
}

bool tcp_connects(int port) {
  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  return ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

std::string tail_of(const std::string& path, std::size_t max_bytes = 2048) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log)";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  const std::size_t from = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(from));
  std::string out(size - from, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Waits up to timeout for the process behind pidfd to exit (it does not reap it).
bool wait_exit(int pidfd, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    pollfd p{.fd = pidfd, .events = POLLIN, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (n > 0) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

// Reaps the (exited) child behind pidfd. Returns the exit code, or 128 + signal.
int reap(int pidfd) {
  siginfo_t info{};
  while (::waitid(static_cast<idtype_t>(3) /* P_PIDFD */, static_cast<id_t>(pidfd), &info,
                  WEXITED) != 0) {
    if (errno != EINTR) return -1;
  }
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

struct Spawned {
  pid_t pid = 0;
  Fd pidfd;
};

// fork + execve with stdout/stderr to log_fd. Only async-signal-safe calls in the child:
// this process has gRPC threads.
std::expected<Spawned, std::system_error> spawn(const std::string& binary,
                                                const std::vector<std::string>& args, int log_fd,
                                                bool die_with_parent, const std::string& cwd) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // etcd reads ETCD_* variables as flags; ours are the whole configuration.
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "ETCD_", 5) != 0) envp.push_back(*e);
  }
  envp.push_back(nullptr);

  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return std::unexpected(sys_error(errno, "open /dev/null"));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::unexpected(sys_error(errno, "pipe2"));
  Fd exec_err_r(pipe_fds[0]);
  Fd exec_err_w(pipe_fds[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(sys_error(errno, "fork"));
  if (pid == 0) {
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::setpgid(0, 0);  // a terminal's Ctrl-C goes to us, not straight to etcd
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
    if (::chdir(cwd.c_str()) != 0) {
      const int err = errno;
      [[maybe_unused]] ssize_t n = ::write(exec_err_w.get(), &err, sizeof err);
      ::_exit(127);
    }
    ::dup2(devnull.get(), STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);  // leak nothing into etcd
    ::execve(binary.c_str(), argv.data(), envp.data());
    const int err = errno;
    [[maybe_unused]] ssize_t n = ::write(exec_err_w.get(), &err, sizeof err);
    ::_exit(127);
  }
  exec_err_w.reset();
  Spawned out;
  out.pid = pid;
  out.pidfd = Fd(pidfd_open(pid));  // the child is unreaped, so this is surely it
  const int pidfd_errno = errno;
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(exec_err_r.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof exec_errno || out.pidfd.get() < 0) {
    if (out.pidfd.get() >= 0) {
      reap(out.pidfd.get());
    } else {
      int status;
      ::waitpid(pid, &status, 0);
    }
    if (n == sizeof exec_errno) {
      return std::unexpected(sys_error(exec_errno, "chdir " + cwd + " or execve " + binary));
    }
    return std::unexpected(sys_error(pidfd_errno, fmt::format("pidfd_open {}", pid)));
  }
  return out;
}

enum class Ready { kServing, kExited, kTimedOut };

// Waits until etcd accepts TCP on port and then serves a linearizable read, which it does
// only once it has a leader.
Ready wait_ready(int pidfd, int port, Clock::time_point deadline) {
  // 1. The listener: cheap to poll, and waiting on the pidfd doubles as the sleep.
  while (!tcp_connects(port)) {
    if (Clock::now() >= deadline) return Ready::kTimedOut;
    if (wait_exit(pidfd, milliseconds(20))) return Ready::kExited;
  }
  // 2. Serving: etcd accepts connections before it serves them. Each attempt is bounded by
  // the client's 10 s call deadline.
  Ready ready = Ready::kTimedOut;
  boost::asio::io_context io(1);
  auto client = make_etcd_client(io.get_executor(), {fmt::format("http://127.0.0.1:{}", port)});
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        while (Clock::now() < deadline) {
          auto read = co_await client->range("/podwarp-ready-probe");
          if (read) {
            ready = Ready::kServing;
            break;
          }
          if (wait_exit(pidfd, milliseconds(50))) {
            ready = Ready::kExited;
            break;
          }
        }
        client.reset();  // closes its connection, so that run() returns
      },
      boost::asio::detached);
  io.run();
  return ready;
}

}  // namespace

std::expected<std::unique_ptr<EtcdProcess>, std::system_error> EtcdProcess::start(
    EtcdOptions options) {
  std::unique_ptr<EtcdProcess> proc(new EtcdProcess());
  if (options.data_dir.empty()) {
    std::string tmpl = "/tmp/podwarp-etcd-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return std::unexpected(sys_error(errno, "mkdtemp /tmp/podwarp-etcd-XXXXXX"));
    }
    proc->data_dir_ = tmpl;
    proc->owns_data_dir_ = true;  // from here the destructor removes it, also on failure
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) return std::unexpected(std::system_error(ec, "mkdir " + options.data_dir));
    ::chmod(options.data_dir.c_str(), 0700);  // etcd insists
    // Absolute: etcd runs in its data dir.
    proc->data_dir_ = std::filesystem::absolute(options.data_dir, ec).string();
    if (ec) return std::unexpected(std::system_error(ec, "absolute path of " + options.data_dir));
  }
  const std::string log_path = proc->log_path();
  Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0) return std::unexpected(sys_error(errno, "open " + log_path));

  const auto deadline = Clock::now() + options.start_timeout;
  constexpr int kAttempts = 3;  // another process may grab a port between pick and bind
  for (int attempt = 1;; ++attempt) {
    auto ports = pick_ports();
    if (!ports) return std::unexpected(ports.error());
    const auto [client_port, peer_port] = *ports;
    const std::string client_url = fmt::format("http://127.0.0.1:{}", client_port);
    const std::string peer_url = fmt::format("http://127.0.0.1:{}", peer_port);
    // A unix socket, relative to etcd's working directory (its data dir): etcd takes the
    // "host:port" of a unix:// URL as the path.
    constexpr std::string_view kSocketName = "client.sock:0";
    const std::string listen_urls =
        options.client_unix_socket ? fmt::format("{},unix://{}", client_url, kSocketName)
                                   : client_url;
    std::vector<std::string> args = {
        "--name=default",
        "--data-dir=" + proc->data_dir_,
        "--listen-client-urls=" + listen_urls,
        "--advertise-client-urls=" + client_url,
        "--listen-peer-urls=" + peer_url,
        "--initial-advertise-peer-urls=" + peer_url,
        "--initial-cluster=default=" + peer_url,
        "--initial-cluster-state=new",
        "--initial-cluster-token=podwarp-" + std::to_string(::getpid()),
        "--quota-backend-bytes=-1",  // negative: no space quota
        "--auto-compaction-retention=0",
        std::string(kEtcdBackendBatchLimit),
        "--logger=zap",
        "--log-outputs=stderr",
    };
    if (options.progress_notify_interval.count() > 0) {
      args.push_back(fmt::format("--experimental-watch-progress-notify-interval={}ms",
                                 options.progress_notify_interval.count()));
    }
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());

    auto spawned =
        spawn(options.binary, args, log_fd.get(), options.die_with_parent, proc->data_dir_);
    if (!spawned) return std::unexpected(spawned.error());
    proc->pid_ = spawned->pid;
    proc->pidfd_ = spawned->pidfd.release();
    proc->endpoint_ = client_url;
    if (options.client_unix_socket) {
      proc->unix_endpoint_ = fmt::format("unix:{}/{}", proc->data_dir_, kSocketName);
    }

    switch (wait_ready(proc->pidfd_, client_port, deadline)) {
      case Ready::kServing:
        log::info("etcd: pid {} serving at {} (data dir {})", proc->pid_, client_url,
                  proc->data_dir_);
        return proc;
      case Ready::kTimedOut: {
        auto stopped = proc->stop(milliseconds(2000));
        (void)stopped;
        return std::unexpected(sys_error(
            ETIMEDOUT, fmt::format("etcd at {} did not serve within {} ms; log {}:\n{}", client_url,
                                   options.start_timeout.count(), log_path, tail_of(log_path))));
      }
      case Ready::kExited: {
        auto status = proc->stop();
        const std::string tail = tail_of(log_path);
        if (attempt < kAttempts && tail.find("address already in use") != std::string::npos) {
          log::warn("etcd: port race on {} or {}, retrying", client_port, peer_port);
          continue;
        }
        return std::unexpected(
            sys_error(ECHILD, fmt::format("etcd exited during start (status {}); log {}:\n{}",
                                          status.value_or(-1), log_path, tail)));
      }
    }
  }
}

std::expected<int, std::system_error> EtcdProcess::stop(milliseconds grace) {
  if (pidfd_ < 0) return exit_status_;
  Fd pidfd(std::exchange(pidfd_, -1));
  const pid_t pid = std::exchange(pid_, 0);
  if (pidfd_send_signal(pidfd.get(), SIGTERM) != 0 && errno != ESRCH) {
    return std::unexpected(sys_error(errno, fmt::format("pidfd_send_signal {} SIGTERM", pid)));
  }
  if (!wait_exit(pidfd.get(), grace)) {
    log::warn("etcd: pid {} still running {} ms after SIGTERM, sending SIGKILL", pid,
              grace.count());
    if (pidfd_send_signal(pidfd.get(), SIGKILL) != 0 && errno != ESRCH) {
      return std::unexpected(sys_error(errno, fmt::format("pidfd_send_signal {} SIGKILL", pid)));
    }
  }
  exit_status_ = reap(pidfd.get());
  if (exit_status_ < 0) return std::unexpected(sys_error(errno, fmt::format("waitid {}", pid)));
  return exit_status_;
}

EtcdProcess::~EtcdProcess() {
  if (auto stopped = stop(); !stopped) {
    log::error("etcd: stop: {}", stopped.error().what());
  }
  if (owns_data_dir_ && !data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
    if (ec) log::warn("etcd: remove {}: {}", data_dir_, ec.message());
  }
}

}  // namespace podwarp::storage
