// The Beast transport's HTTPS: against `openssl s_server -www` on a free loopback port with a
// throwaway certificate. The server is trusted only when SSL_CERT_FILE names its certificate
// (OpenSSL's default verify paths honour it), so this checks that verification is on, that the
// name (here an IP SAN) is checked, and that a verified exchange works.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "images/http_transport.h"
#include "images/test_support.h"

namespace podwarp::images {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace podwarp::images::testing;

pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

class HttpsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podwarp-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const fs::path log = dir_ / "openssl.log";
    pid_t gen = spawn({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                       "-keyout", (dir_ / "key.pem").string(), "-out", (dir_ / "cert.pem").string(),
                       "-days", "1", "-subj", "/CN=podwarp-test", "-addext",
                       "subjectAltName=IP:127.0.0.1"},
                      log);
    int status = 0;
    ::waitpid(gen, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "openssl req failed";
    port_ = free_port();
    server_ = spawn({"/usr/bin/openssl", "s_server", "-accept", fmt::format("127.0.0.1:{}", port_),
                     "-cert", (dir_ / "cert.pem").string(), "-key", (dir_ / "key.pem").string(),
                     "-www", "-quiet"},
                    log);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!port_open(port_)) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "openssl s_server did not start";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  void TearDown() override {
    ::unsetenv("SSL_CERT_FILE");
    if (server_ > 0) {
      ::kill(server_, SIGKILL);
      ::waitpid(server_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  Result<HttpResponse> get(const std::string& url) {
    std::optional<Result<HttpResponse>> out;
    {
      auto t = make_http_transport(ctx_.get_executor());
      HttpRequest req;
      req.url = url;
      BodySink none;
      asio::co_spawn(ctx_, t->fetch(std::move(req), none),
                     [&](std::exception_ptr, Result<HttpResponse> r) { out = std::move(r); });
      ctx_.restart();
      ctx_.run();
    }
    return std::move(*out);
  }

  asio::io_context ctx_;
  fs::path dir_;
  int port_ = 0;
  pid_t server_ = -1;
};

TEST_F(HttpsTransportTest, VerifiesTheServer) {
  const std::string url = fmt::format("https://127.0.0.1:{}/", port_);
  auto untrusted = get(url);
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().kind, ErrorKind::kNetwork);
  EXPECT_NE(untrusted.error().message.find("TLS handshake with 127.0.0.1"), std::string::npos)
      << untrusted.error().message;
  EXPECT_NE(untrusted.error().message.find("certificate verify failed"), std::string::npos)
      << untrusted.error().message;

  ::setenv("SSL_CERT_FILE", (dir_ / "cert.pem").c_str(), 1);
  auto trusted = get(url);
  ASSERT_TRUE(trusted) << trusted.error().message;
  EXPECT_EQ(trusted->status, 200);
  EXPECT_NE(trusted->body.find("s_server"), std::string::npos) << trusted->body.substr(0, 200);

  // Trusted CA, wrong name: the certificate is for IP 127.0.0.1 only.
  auto wrong_name = get(fmt::format("https://localhost:{}/", port_));
  ASSERT_FALSE(wrong_name);
  EXPECT_NE(wrong_name.error().message.find("certificate verify failed"), std::string::npos)
      << wrong_name.error().message;
}

// A server that accepts (the kernel's backlog does) and never answers: every read deadline
// ends the exchange with a timeout, and the transport stays usable for the next fetch.
TEST(HttpTransportTimeouts, SilentServerTimesOut) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(l, 8), 0);
  ASSERT_EQ(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len), 0);
  asio::io_context ctx;
  TransportOptions o;
  o.read_idle_timeout = std::chrono::milliseconds(200);
  auto t = make_http_transport(ctx.get_executor(), o);
  for (int round = 0; round < 2; ++round) {
    std::optional<Result<HttpResponse>> out;
    HttpRequest req;
    req.url = fmt::format("http://127.0.0.1:{}/v2/", ntohs(a.sin_port));
    BodySink none;
    auto t0 = std::chrono::steady_clock::now();
    asio::co_spawn(ctx, t->fetch(std::move(req), none),
                   [&](std::exception_ptr, Result<HttpResponse> r) { out = std::move(r); });
    ctx.restart();
    ctx.run();
    ASSERT_TRUE(out.has_value());
    ASSERT_FALSE(*out);
    EXPECT_EQ(out->error().kind, ErrorKind::kNetwork);
    EXPECT_NE(out->error().message.find("timeout"), std::string::npos) << out->error().message;
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(190));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  }
  ::close(l);
}

}  // namespace
}  // namespace podwarp::images
