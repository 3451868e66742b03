#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "runtime/runtime.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace podwarp::noded::runtime {

Process::Process(pid_t pid, int pidfd, std::string cgroup)
    : pid_(pid), pidfd_(pidfd), cgroup_(std::move(cgroup)) {}

Process::Process(Process&& o) noexcept
    : pid_(o.pid_), pidfd_(o.pidfd_), cgroup_(std::move(o.cgroup_)), exit_(o.exit_) {
  o.pidfd_ = -1;
  o.pid_ = -1;
}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (pidfd_ >= 0) ::close(pidfd_);
    pid_ = o.pid_;
    pidfd_ = o.pidfd_;
    cgroup_ = std::move(o.cgroup_);
    exit_ = o.exit_;
    o.pidfd_ = -1;
    o.pid_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::expected<void, SysError> Process::kill(int sig) const {
  if (pidfd_ < 0) return std::unexpected(logic_error("kill: no process"));
  if (::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0) < 0) {
    return std::unexpected(errno_error("pidfd_send_signal " + std::to_string(pid_)));
  }
  return {};
}

std::expected<void, SysError> Process::kill_cgroup() const {
  if (cgroup_.empty()) return std::unexpected(logic_error("kill: process has no cgroup"));
  std::string path = cgroup_ + "/cgroup.kill";
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_error("open " + path));
  ssize_t n = ::write(fd, "1", 1);
  int err = errno;
  ::close(fd);
  if (n != 1) return std::unexpected(sys_error(err, "write " + path));
  return {};
}

namespace {
ExitStatus to_status(const siginfo_t& info) {
  ExitStatus s;
  if (info.si_code == CLD_EXITED) {
    s.code = info.si_status;
  } else {
    s.signaled = true;
    s.signal = info.si_status;
  }
  return s;
}
}  // namespace

std::expected<std::optional<ExitStatus>, SysError> Process::try_wait() {
  if (exit_) return exit_;
  if (pidfd_ < 0) return std::unexpected(logic_error("wait: no process"));
  siginfo_t info{};
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info,
               WEXITED | WNOHANG) < 0) {
    return std::unexpected(errno_error("waitid " + std::to_string(pid_)));
  }
  if (info.si_pid == 0) return std::optional<ExitStatus>();
  exit_ = to_status(info);
  return exit_;
}

std::expected<ExitStatus, SysError> Process::wait() {
  if (exit_) return *exit_;
  if (pidfd_ < 0) return std::unexpected(logic_error("wait: no process"));
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return std::unexpected(errno_error("waitid " + std::to_string(pid_)));
  exit_ = to_status(info);
  return *exit_;
}

boost::asio::awaitable<std::expected<ExitStatus, SysError>> Process::async_wait() {
  if (exit_) co_return *exit_;
  if (pidfd_ < 0) co_return std::unexpected(logic_error("wait: no process"));
  auto ex = co_await boost::asio::this_coro::executor;
  // The descriptor owns a duplicate, so the Process keeps its pidfd.
  int fd = ::fcntl(pidfd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) co_return std::unexpected(errno_error("dup pidfd"));
  boost::asio::posix::stream_descriptor sd(ex, fd);
  boost::system::error_code ec;
  co_await sd.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  if (ec) co_return std::unexpected(SysError{ec.value(), "wait pidfd: " + ec.message()});
  co_return wait();  // readable: exited, waitid does not block
}

}  // namespace podwarp::noded::runtime
