#include "console/console.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace podwarp::noded::console {

namespace {
std::string sys_error(std::string_view what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}
}  // namespace

void set_nonblock(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::expected<std::pair<UniqueFd, UniqueFd>, std::string> open_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2"));
  return std::pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

std::expected<Pty, std::string> open_pty() {
  Pty p;
  p.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master) return std::unexpected(sys_error("posix_openpt"));
  char name[128];
  if (::grantpt(p.master.get()) != 0 || ::unlockpt(p.master.get()) != 0 ||
      ::ptsname_r(p.master.get(), name, sizeof name) != 0)
    return std::unexpected(sys_error("unlock pty"));
  p.slave = UniqueFd(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.slave) return std::unexpected(sys_error(fmt::format("open {}", name)));
  set_nonblock(p.master.get());
  return p;
}

void send_eof(int master) {
  termios t{};
  char eof = ::tcgetattr(master, &t) == 0 ? static_cast<char>(t.c_cc[VEOF]) : '\x04';
  (void)!::write(master, &eof, 1);
}

std::expected<void, std::string> set_window_size(int master, std::uint16_t width, std::uint16_t height) {
  winsize ws{};
  ws.ws_col = width;
  ws.ws_row = height;
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0) return std::unexpected(sys_error("ioctl TIOCSWINSZ"));
  return {};
}

void ensure_term(std::vector<std::string>& env) {
  for (const auto& e : env)
    if (e.starts_with("TERM=")) return;
  env.emplace_back("TERM=xterm");
}

std::expected<std::shared_ptr<Console>, std::string> Console::open(const Options& o) {
  if (!o.tty && !o.stdin) return nullptr;
  std::shared_ptr<Console> c(new Console(o));
  if (o.tty) {
    auto p = open_pty();
    if (!p) return std::unexpected(p.error());
    c->ours_ = std::move(p->master);
    c->child_ = std::move(p->slave);
    return c;
  }
  auto p = open_pipe();
  if (!p) return std::unexpected(p.error());
  c->child_ = std::move(p->first);
  c->ours_ = std::move(p->second);
  set_nonblock(c->ours_.get());
  return c;
}

int Console::dup_output() const {
  if (!o_.tty || !ours_) return -1;
  return ::fcntl(ours_.get(), F_DUPFD_CLOEXEC, 3);
}

int Console::input_fd() const { return o_.stdin ? ours_.get() : -1; }

void Console::input_ended() {
  if (o_.stdin_once && !o_.tty) ours_.reset();
}

std::expected<void, std::string> Console::resize(std::uint16_t width, std::uint16_t height) const {
  if (!o_.tty || !ours_) return {};
  return set_window_size(ours_.get(), width, height);
}

}  // namespace podwarp::noded::console
