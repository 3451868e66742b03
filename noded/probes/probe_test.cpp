#include "probes/probe.h"

#include "podwarp/asio_run.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "probes/prober.h"

namespace podwarp::noded::probes {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

// The io_context is never destroyed (Boost 1.81 io_uring, see notes/common.md).
asio::io_context& new_io() { return *new asio::io_context; }

template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await std::move(a); }, asio::detached);
  for (int i = 0; i < 400 && !out; ++i) {
    io.restart();
    podwarp::run_for(io, 10ms);
  }
  EXPECT_TRUE(out.has_value());
  return out.value_or(T{});
}

// A tiny HTTP server on a free loopback port answering every request with `status`;
// status 0: accept and never answer.
struct HttpServer {
  tcp::acceptor acc;
  int status;
  std::vector<std::string> requests;
  HttpServer(asio::io_context& io, int st) : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), status(st) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  int port() const { return acc.local_endpoint().port(); }
  asio::awaitable<void> serve() {
    for (;;) {
      auto s = std::make_shared<tcp::socket>(co_await acc.async_accept(asio::use_awaitable));
      std::string buf;
      co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n\r\n", asio::use_awaitable);
      requests.push_back(buf);
      if (status == 0) {
        held.push_back(s);
        continue;
      }
      std::string resp = fmt::format("HTTP/1.1 {} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
      co_await asio::async_write(*s, asio::buffer(resp), asio::use_awaitable);
    }
  }
  std::vector<std::shared_ptr<tcp::socket>> held;
};

Handler http(int port, std::string path = "/healthz") {
  Handler h;
  h.kind = HandlerKind::kHttpGet;
  h.port = port;
  h.path = std::move(path);
  h.headers = {{"X-Probe", "yes"}};
  return h;
}

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // nothing listens there now
  return ntohs(a.sin_port);
}

TEST(Probe, HttpGetStatusCodes) {
  auto& io = new_io();
  HttpServer ok(io, 200), bad(io, 500), redirect(io, 302);
  Target t;
  auto r = run(io, run_handler(http(ok.port()), t, 1000ms));
  EXPECT_TRUE(r.success) << r.message;
  ASSERT_EQ(ok.requests.size(), 1u);
  EXPECT_TRUE(ok.requests[0].starts_with("GET /healthz HTTP/1.1\r\n"));
  EXPECT_NE(ok.requests[0].find("User-Agent: kube-probe/"), std::string::npos);
  EXPECT_NE(ok.requests[0].find("X-Probe: yes"), std::string::npos);
  r = run(io, run_handler(http(bad.port()), t, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "HTTP probe failed with statuscode: 500");
  EXPECT_TRUE(run(io, run_handler(http(redirect.port()), t, 1000ms)).success);
}

TEST(Probe, HttpTimeout) {
  auto& io = new_io();
  HttpServer silent(io, 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(io, run_handler(http(silent.port()), Target{}, 100ms));
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("timed out"), std::string::npos) << r.message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(Probe, TcpSocket) {
  auto& io = new_io();
  HttpServer srv(io, 200);
  Handler h;
  h.kind = HandlerKind::kTcpSocket;
  h.port = srv.port();
  EXPECT_TRUE(run(io, run_handler(h, Target{}, 1000ms)).success);
  h.port = closed_port();
  auto r = run(io, run_handler(h, Target{}, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("connect"), std::string::npos) << r.message;
}

TEST(Probe, ExecGoesThroughTheGivenFunction) {
  auto& io = new_io();
  Target t;
  std::vector<std::string> seen;
  t.exec = [&](const std::vector<std::string>& argv, std::chrono::milliseconds) -> asio::awaitable<Outcome> {
    seen = argv;
    co_return Outcome{argv.size() == 2, "out"};
  };
  Handler h;
  h.command = {"cat", "/tmp/healthy"};
  EXPECT_TRUE(run(io, run_handler(h, t, 1000ms)).success);
  EXPECT_EQ(seen, h.command);
  EXPECT_FALSE(run(io, run_handler(h, Target{}, 1000ms)).success);  // no exec available
}

TEST(Probe, StatusLine) {
  EXPECT_EQ(parse_http_status_line("HTTP/1.1 204 No Content"), 204);
  EXPECT_EQ(parse_http_status_line("HTTP/1.0 404"), 404);
  EXPECT_EQ(parse_http_status_line("SSH-2.0"), -1);
  EXPECT_EQ(parse_http_status_line("HTTP/1.1 2x0"), -1);
}

TEST(ProbeWorker, ThresholdsAndInitialResults) {
  auto& io = new_io();
  int calls = 0;
  bool healthy = true;
  std::vector<bool> changes;
  ProbeWorker::Options o;
  o.type = ProbeType::kLiveness;
  o.spec.handler.command = {"x"};
  o.spec.period_seconds = 1;
  o.spec.failure_threshold = 3;
  o.spec.success_threshold = 1;
  o.second = 5ms;
  o.target.exec = [&](const std::vector<std::string>&, std::chrono::milliseconds) -> asio::awaitable<Outcome> {
    ++calls;
    co_return Outcome{healthy, ""};
  };
  o.on_change = [&](bool ok, const std::string&) { changes.push_back(ok); };
  auto w = ProbeWorker::start(io.get_executor(), o);
  EXPECT_TRUE(w->result());  // liveness starts as success
  for (int i = 0; i < 20; ++i) podwarp::run_one_for(io, 10ms);
  EXPECT_TRUE(changes.empty());
  healthy = false;
  int before = calls;
  while (changes.empty() && calls < before + 20) podwarp::run_one_for(io, 10ms);
  ASSERT_EQ(changes, std::vector<bool>{false});
  EXPECT_EQ(calls - before, 3);  // failureThreshold consecutive failures
  healthy = true;
  while (changes.size() < 2 && calls < before + 40) podwarp::run_one_for(io, 10ms);
  EXPECT_EQ(changes, (std::vector<bool>{false, true}));
  w->stop();
}

TEST(ProbeWorker, ReadinessStartsFalseAndGateHolds) {
  auto& io = new_io();
  bool open = false;
  int calls = 0;
  ProbeWorker::Options o;
  o.type = ProbeType::kReadiness;
  o.spec.period_seconds = 1;
  o.second = 5ms;
  o.gate = [&] { return open; };
  o.target.exec = [&](const std::vector<std::string>&, std::chrono::milliseconds) -> asio::awaitable<Outcome> {
    ++calls;
    co_return Outcome{true, ""};
  };
  bool ready = false;
  o.on_change = [&](bool ok, const std::string&) { ready = ok; };
  auto w = ProbeWorker::start(io.get_executor(), o);
  EXPECT_FALSE(w->result());
  for (int i = 0; i < 10; ++i) podwarp::run_one_for(io, 10ms);
  EXPECT_EQ(calls, 0);
  open = true;
  for (int i = 0; i < 50 && !ready; ++i) podwarp::run_one_for(io, 10ms);
  EXPECT_TRUE(ready);
  w->stop();
}

// Root only: a listener inside a fresh network namespace is reachable through socket_in_netns
// and not from the test's own namespace.
TEST(Probe, ConnectsInsideThePodNetns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare CLONE_NEWNET)";
  char dir[] = "/tmp/podwarp-netns-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  std::string pin = std::string(dir) + "/net";
  int lfd = -1, port = 0;
  std::string err;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) { err = "unshare"; return; }
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = "lo up";
    ::close(s);
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(lfd, 4);
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    int pf = ::open(pin.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ::close(pf);
    if (::mount("/proc/thread-self/ns/net", pin.c_str(), nullptr, MS_BIND, nullptr) != 0) err = "pin";
  });
  t.join();
  ASSERT_EQ(err, "");
  auto& io = new_io();
  Handler h;
  h.kind = HandlerKind::kTcpSocket;
  h.port = port;
  Target in;
  in.netns_path = pin;
  auto r_in = run(io, run_handler(h, in, 1000ms));
  auto r_out = run(io, run_handler(h, Target{}, 1000ms));
  ::close(lfd);
  ::umount2(pin.c_str(), MNT_DETACH);
  ::unlink(pin.c_str());
  ::rmdir(dir);
  EXPECT_TRUE(r_in.success) << r_in.message;
  EXPECT_FALSE(r_out.success);
}

}  // namespace
}  // namespace podwarp::noded::probes
