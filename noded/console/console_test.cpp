#include "console/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <string>

namespace podwarp::noded::console {
namespace {

using ::testing::HasSubstr;

// Reads what is there within 2 s (the fd may be nonblocking).
std::string read_some(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 2000) <= 0) return {};
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

TEST(Console, NeitherStdinNorTtyIsNone) {
  auto c = Console::open({});
  ASSERT_TRUE(c.has_value()) << c.error();
  EXPECT_EQ(*c, nullptr);
}

TEST(Console, StdinPipeCarriesInputAndStdinOnceClosesIt) {
  auto c = Console::open({.tty = false, .stdin = true, .stdin_once = true});
  ASSERT_TRUE(c.has_value()) << c.error();
  auto& con = **c;
  EXPECT_FALSE(con.tty());
  EXPECT_EQ(con.dup_output(), -1);
  int child = ::fcntl(con.child_fd(), F_DUPFD_CLOEXEC, 3);  // what the container keeps
  con.started();
  EXPECT_EQ(con.child_fd(), -1);
  ASSERT_GE(con.input_fd(), 0);
  ASSERT_EQ(::write(con.input_fd(), "hi\n", 3), 3);
  EXPECT_EQ(read_some(child), "hi\n");
  con.input_ended();
  EXPECT_EQ(con.input_fd(), -1);
  char b;
  EXPECT_EQ(::read(child, &b, 1), 0);  // the container sees end of file
  ::close(child);
}

TEST(Console, StdinWithoutStdinOnceStaysOpenAcrossAttaches) {
  auto c = Console::open({.tty = false, .stdin = true, .stdin_once = false});
  ASSERT_TRUE(c.has_value()) << c.error();
  (*c)->input_ended();
  EXPECT_GE((*c)->input_fd(), 0);
}

TEST(Console, TtyIsOnePtyForInputAndOutput) {
  auto c = Console::open({.tty = true, .stdin = true, .stdin_once = true});
  ASSERT_TRUE(c.has_value()) << c.error();
  auto& con = **c;
  EXPECT_TRUE(con.tty());
  ASSERT_TRUE(::isatty(con.child_fd()));
  int slave = ::fcntl(con.child_fd(), F_DUPFD_CLOEXEC, 3);
  con.started();
  int out = con.dup_output();
  ASSERT_GE(out, 0);
  // Input typed at the master reaches the slave (canonical mode: a whole line).
  ASSERT_EQ(::write(con.input_fd(), "ls\n", 3), 3);
  EXPECT_THAT(read_some(slave), HasSubstr("ls"));
  // Output of the process comes out of the master (with the terminal's CR LF).
  ASSERT_EQ(::write(slave, "out\n", 4), 4);
  std::string got;
  for (int i = 0; i < 5 && got.find("out\r\n") == std::string::npos; ++i) got += read_some(out);
  EXPECT_THAT(got, HasSubstr("out\r\n"));
  ASSERT_TRUE(con.resize(120, 40).has_value());
  winsize ws{};
  ASSERT_EQ(::ioctl(slave, TIOCGWINSZ, &ws), 0);
  EXPECT_EQ(ws.ws_col, 120);
  EXPECT_EQ(ws.ws_row, 40);
  con.input_ended();  // a terminal stays: the process reads on
  EXPECT_GE(con.input_fd(), 0);
  ::close(slave);
  ::close(out);
}

TEST(Console, TtyWithoutStdinTakesNoInput) {
  auto c = Console::open({.tty = true, .stdin = false});
  ASSERT_TRUE(c.has_value()) << c.error();
  EXPECT_EQ((*c)->input_fd(), -1);
  int out = (*c)->dup_output();
  EXPECT_GE(out, 0);
  ::close(out);
}

TEST(Console, EnsureTermKeepsAGivenTerm) {
  std::vector<std::string> env{"A=1"};
  ensure_term(env);
  EXPECT_EQ(env.back(), "TERM=xterm");
  std::vector<std::string> set{"TERM=vt100"};
  ensure_term(set);
  EXPECT_EQ(set, std::vector<std::string>{"TERM=vt100"});
}

TEST(Console, SendEofEndsACanonicalRead) {
  auto p = open_pty();
  ASSERT_TRUE(p.has_value()) << p.error();
  send_eof(p->master.get());
  pollfd pf{p->slave.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 2000), 1);
  char b[8];
  EXPECT_EQ(::read(p->slave.get(), b, sizeof b), 0);
}

}  // namespace
}  // namespace podwarp::noded::console
