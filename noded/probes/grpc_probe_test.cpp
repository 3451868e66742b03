// gRPC health probes and HTTPS httpGet probes against real loopback servers in this process.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <cstring>
#include <optional>
#include <thread>

#include "podwarp/asio_run.h"
#include "health.grpc.pb.h"
#include "podwarp/pki.h"
#include "probes/grpc_check.h"
#include "probes/probe.h"

namespace podwarp::noded::probes {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// The io_context is never destroyed (Boost 1.81 io_uring, see notes/common.md).
asio::io_context& new_io() { return *new asio::io_context; }

template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::optional<T> out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { out = co_await std::move(a); }, asio::detached);
  for (int i = 0; i < 500 && !out; ++i) {
    io.restart();
    podwarp::run_for(io, 10ms);
  }
  EXPECT_TRUE(out.has_value());
  return out.value_or(T{});
}

// Health service: "" and "ok" SERVING, "down" NOT_SERVING, others NOT_FOUND (as the spec).
class HealthImpl final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* ctx, const HealthCheckRequest* req, HealthCheckResponse* resp) override {
    ++calls;
    auto ua = ctx->client_metadata().find("user-agent");
    if (ua != ctx->client_metadata().end() && std::string(ua->second.data(), ua->second.size()).starts_with("kube-probe/"))
      ++kube_agent;
    if (req->service().empty() || req->service() == "ok") {
      resp->set_status(HealthCheckResponse::SERVING);
    } else if (req->service() == "down") {
      resp->set_status(HealthCheckResponse::NOT_SERVING);
    } else {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    }
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0}, kube_agent{0};
};

struct GrpcServer {
  HealthImpl impl;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  GrpcServer() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&impl);
    server = b.BuildAndStart();
  }
  ~GrpcServer() { server->Shutdown(std::chrono::system_clock::now() + 1s); }
};

Handler grpc_handler(int port, std::string service = "") {
  Handler h;
  h.kind = HandlerKind::kGrpc;
  h.port = port;
  h.grpc_service = std::move(service);
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
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST(GrpcProbe, ServingAndNotServing) {
  // Answers, not timing, are checked here: room for a loaded CI machine (a 1 s timeout once
  // expired there on the server's first call).
  constexpr auto kRoomy = 10s;
  GrpcServer srv;
  ASSERT_NE(srv.port, 0);
  auto& io = new_io();
  auto r = run(io, run_handler(grpc_handler(srv.port), Target{}, kRoomy));
  EXPECT_TRUE(r.success) << r.message;
  EXPECT_EQ(r.message, "service healthy");
  r = run(io, run_handler(grpc_handler(srv.port, "ok"), Target{}, kRoomy));
  EXPECT_TRUE(r.success) << r.message;
  r = run(io, run_handler(grpc_handler(srv.port, "down"), Target{}, kRoomy));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "service unhealthy (responded with \"NOT_SERVING\")");
  r = run(io, run_handler(grpc_handler(srv.port, "nope"), Target{}, kRoomy));
  EXPECT_FALSE(r.success);
  EXPECT_TRUE(r.message.starts_with("error: health rpc probe failed: rpc error: code = NotFound")) << r.message;
  EXPECT_EQ(srv.impl.calls.load(), 4);
  EXPECT_EQ(srv.impl.kube_agent.load(), 4);
}

TEST(GrpcProbe, ConnectionRefused) {
  auto& io = new_io();
  int port = closed_port();
  auto r = run(io, run_handler(grpc_handler(port), Target{}, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_TRUE(r.message.starts_with(fmt::format("timeout: failed to connect service \"127.0.0.1:{}\" within 1s", port)))
      << r.message;
  EXPECT_NE(r.message.find("refused"), std::string::npos) << r.message;
}

// A listener that never accepts: the kernel completes the TCP handshake, nobody speaks HTTP/2.
TEST(GrpcProbe, SilentServerTimesOut) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  auto& io = new_io();
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(io, run_handler(grpc_handler(ntohs(a.sin_port)), Target{}, 300ms));
  auto took = std::chrono::steady_clock::now() - t0;
  ::close(lfd);
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "timeout: health rpc did not complete within 300ms");
  EXPECT_LT(took, 2s);
}

TEST(GrpcProbe, NotAGrpcServer) {
  // An HTTP/1 peer that closes at once: the rpc fails (not success, no hang).
  auto& io = new_io();
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (;;) {
      auto s = co_await acc.async_accept(asio::use_awaitable);
      std::string resp = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
      co_await asio::async_write(s, asio::buffer(resp), asio::use_awaitable);
    }
  }, asio::detached);
  auto r = run(io, run_handler(grpc_handler(acc.local_endpoint().port()), Target{}, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_FALSE(r.message.empty());
}

// Root only: a gRPC health server listening inside a fresh network namespace answers the probe
// through the netns pin, and is unreachable from the test's own namespace.
TEST(GrpcProbe, ConnectsInsideThePodNetns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (unshare CLONE_NEWNET)";
  char dir[] = "/tmp/podwarp-grpcns-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  std::string pin = std::string(dir) + "/net";
  std::string err;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) { err = "unshare"; return; }
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_RUNNING;
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = "lo up";
    ::close(s);
    int pf = ::open(pin.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ::close(pf);
    if (::mount("/proc/thread-self/ns/net", pin.c_str(), nullptr, MS_BIND, nullptr) != 0) err = "pin";
  }).join();
  auto cleanup = [&] {
    ::umount2(pin.c_str(), MNT_DETACH);
    ::unlink(pin.c_str());
    ::rmdir(dir);
  };
  if (!err.empty()) cleanup();
  ASSERT_EQ(err, "");
  // The server's listening socket is created by BuildAndStart on a thread inside the netns.
  std::unique_ptr<GrpcServer> srv;
  std::thread([&] {
    int nsfd = ::open(pin.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) err = "setns";
    if (nsfd >= 0) ::close(nsfd);
    if (err.empty()) srv = std::make_unique<GrpcServer>();
  }).join();
  if (!err.empty() || !srv || srv->port == 0) {
    srv.reset();
    cleanup();
    FAIL() << "server in netns: " << err;
  }
  auto& io = new_io();
  Target in;
  in.netns_path = pin;
  auto r_in = run(io, run_handler(grpc_handler(srv->port), in, 1000ms));
  auto r_out = run(io, run_handler(grpc_handler(srv->port), Target{}, 1000ms));
  srv.reset();
  cleanup();
  EXPECT_TRUE(r_in.success) << r_in.message;
  EXPECT_FALSE(r_out.success);
}

TEST(GrpcProbe, GoDuration) {
  EXPECT_EQ(go_duration(1000ms), "1s");
  EXPECT_EQ(go_duration(1500ms), "1.5s");
  EXPECT_EQ(go_duration(250ms), "250ms");
}

// A TLS server with a fresh self-signed chain (podwarp/pki.h) answering `status`.
struct HttpsServer {
  asio::ssl::context ctx{asio::ssl::context::tls_server};
  tcp::acceptor acc;
  int status;
  std::vector<std::string> requests;
  std::string sni;
  HttpsServer(asio::io_context& io, int st) : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), status(st) {
    auto ca = pki::create_ca("podwarp-probe-test-ca");
    EXPECT_TRUE(ca.has_value());
    pki::SubjectAltNames sans;
    sans.dns = {"probe.example"};
    auto leaf = pki::issue_serving_cert(*ca, "probe.example", sans);
    EXPECT_TRUE(leaf.has_value()) << leaf.error();
    auto cert = pki::cert_to_pem(leaf->cert.get());
    auto key = pki::key_to_pem(leaf->key.get());
    ctx.use_certificate_chain(asio::buffer(*cert));
    ctx.use_private_key(asio::buffer(*key), asio::ssl::context::pem);
    asio::co_spawn(io, serve(), asio::detached);
  }
  int port() const { return acc.local_endpoint().port(); }
  asio::awaitable<void> serve() {
    for (;;) {
      auto s = std::make_shared<asio::ssl::stream<tcp::socket>>(co_await acc.async_accept(asio::use_awaitable), ctx);
      auto [hec] = co_await s->async_handshake(asio::ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
      if (hec) continue;
      if (const char* n = SSL_get_servername(s->native_handle(), TLSEXT_NAMETYPE_host_name)) sni = n;
      std::string buf;
      co_await asio::async_read_until(*s, asio::dynamic_buffer(buf), "\r\n\r\n", asio::use_awaitable);
      requests.push_back(buf);
      std::string resp = fmt::format("HTTP/1.1 {} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
      co_await asio::async_write(*s, asio::buffer(resp), asio::use_awaitable);
    }
  }
};

Handler https(int port) {
  Handler h;
  h.kind = HandlerKind::kHttpGet;
  h.scheme = "HTTPS";
  h.port = port;
  h.path = "/healthz";
  return h;
}

TEST(HttpsProbe, StatusCodesWithoutVerification) {
  auto& io = new_io();
  HttpsServer ok(io, 200), bad(io, 500), redirect(io, 301);
  auto r = run(io, run_handler(https(ok.port()), Target{}, 2000ms));
  EXPECT_TRUE(r.success) << r.message;  // untrusted self-signed chain: not verified
  ASSERT_EQ(ok.requests.size(), 1u);
  EXPECT_TRUE(ok.requests[0].starts_with("GET /healthz HTTP/1.1\r\n"));
  EXPECT_NE(ok.requests[0].find("User-Agent: kube-probe/"), std::string::npos);
  EXPECT_EQ(ok.sni, "");  // IP literal host: no SNI
  r = run(io, run_handler(https(bad.port()), Target{}, 2000ms));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.message, "HTTP probe failed with statuscode: 500");
  EXPECT_TRUE(run(io, run_handler(https(redirect.port()), Target{}, 2000ms)).success);
}

TEST(HttpsProbe, PlainHttpPeerFailsHandshake) {
  auto& io = new_io();
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (;;) {
      auto s = co_await acc.async_accept(asio::use_awaitable);
      std::string resp = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
      co_await asio::async_write(s, asio::buffer(resp), asio::use_awaitable);
    }
  }, asio::detached);
  auto r = run(io, run_handler(https(acc.local_endpoint().port()), Target{}, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_TRUE(r.message.starts_with("TLS handshake with 127.0.0.1:")) << r.message;
}

TEST(HttpsProbe, ClosedPortAndSilentServerTimeout) {
  auto& io = new_io();
  auto r = run(io, run_handler(https(closed_port()), Target{}, 1000ms));
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("connect"), std::string::npos) << r.message;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));  // never accepts
  acc.listen();
  r = run(io, run_handler(https(acc.local_endpoint().port()), Target{}, 150ms));
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("timed out"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace podwarp::noded::probes
