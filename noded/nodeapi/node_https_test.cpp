// The HTTPS node API end to end over real TLS + WebSocket clients: auth, exec (pipes, pty,
// exit codes) with host processes standing in for a container, port-forward (v4 channels and
// SPDY/3.1 tunnelled in WebSocket) to a loopback listener of the test's own namespace.
#include "nodeapi/node_https.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <atomic>
#include <sys/socket.h>
#include <netinet/in.h>

#include "nodeapi/channel_protocol.h"
#include "nodeapi/spdy.h"
#include "pods/fakes_for_test.h"
#include "podwarp/json.h"
#include "podwarp/pki.h"

namespace podwarp::noded::nodeapi {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using pods::testing::run_until;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// A host process standing in for a process in a container.
class HostExec final : public pods::ExecSession {
 public:
  HostExec(pid_t pid, int in, int out, int err, bool tty) : pid_(pid), in_(in), out_(out), err_(err), tty_(tty) {}
  ~HostExec() override {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {in_, out_, err_})
      if (fd >= 0 && !(tty_ && fd == in_)) ::close(fd);
  }
  int stdin_fd() const override { return in_; }
  int stdout_fd() const override { return out_; }
  int stderr_fd() const override { return err_; }
  void close_stdin() override {
    if (tty_) {
      (void)!::write(out_, "\x04", 1);
    } else if (in_ >= 0) {
      ::close(in_);
      in_ = -1;
    }
  }
  std::expected<void, std::string> resize(std::uint16_t w, std::uint16_t h) override {
    winsize ws{};
    ws.ws_col = w;
    ws.ws_row = h;
    if (tty_) ::ioctl(out_, TIOCSWINSZ, &ws);
    return {};
  }
  pods::Awaitable<int> wait() override {
    if (!reaped_) {
      int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
      asio::posix::stream_descriptor d(co_await asio::this_coro::executor, pfd);
      auto [ec] = co_await d.async_wait(asio::posix::stream_descriptor::wait_read, kTuple);
      if (ec) co_return -1;  // cancelled
      int st = 0;
      ::waitpid(pid_, &st, 0);
      reaped_ = true;
      code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    co_return code_;
  }
  void kill() override {
    if (!reaped_) ::kill(pid_, SIGKILL);
  }

 private:
  pid_t pid_;
  int in_, out_, err_;
  bool tty_;
  bool reaped_ = false;
  int code_ = 0;
};

class TestRuntime : public pods::testing::FakeRuntime {
 public:
  using FakeRuntime::FakeRuntime;
  std::vector<std::string> exec_ids;
  pods::Awaitable<std::expected<std::unique_ptr<pods::ExecSession>, std::string>> start_exec_session(
      const std::string& id, const pods::ExecSessionRequest& req) override {
    exec_ids.push_back(id);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int master = -1, slave = -1;
    if (req.tty) {
      master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
      ::grantpt(master);
      ::unlockpt(master);
      slave = ::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
    } else {
      if (req.want_stdin) (void)!::pipe2(in, O_CLOEXEC);
      if (req.want_stdout) (void)!::pipe2(out, O_CLOEXEC);
      if (req.want_stderr) (void)!::pipe2(err, O_CLOEXEC);
    }
    std::vector<char*> argv;
    for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      if (req.tty) {
        ::setsid();
        ::dup2(slave, 0), ::dup2(slave, 1), ::dup2(slave, 2);
        ::ioctl(0, TIOCSCTTY, 0);
      } else {
        ::dup2(in[0] >= 0 ? in[0] : devnull, 0);
        ::dup2(out[1] >= 0 ? out[1] : devnull, 1);
        ::dup2(err[1] >= 0 ? err[1] : devnull, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    auto nb = [](int fd) {
      if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      return fd;
    };
    if (req.tty) {
      ::close(slave);
      co_return std::make_unique<HostExec>(pid, nb(master), master, -1, true);
    }
    for (int fd : {in[0], out[1], err[1]})
      if (fd >= 0) ::close(fd);
    co_return std::make_unique<HostExec>(pid, nb(in[1]), nb(out[0]), nb(err[0]), false);
  }
  std::expected<std::string, std::string> sandbox_netns(const std::string&) const override { return ""; }
};

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-nodehttps-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

struct Pem {
  std::string cert, key;
};
Pem pem(const pki::Identity& id) { return {*pki::cert_to_pem(id.cert.get()), *pki::key_to_pem(id.key.get())}; }

struct Env {
  TmpDir d;
  asio::io_context& io = *new asio::io_context;  // never destroyed (io_uring, notes/common.md)
  TestRuntime& rt = *new TestRuntime(io);
  pods::testing::FakeImages& images = *new pods::testing::FakeImages;
  std::unique_ptr<pods::PodManager> m;
  std::unique_ptr<NodeHttpsServer> api;
  Pem admin, kubelet_client, node_user;

  Env() {
    fs::create_directories(d.path + "/m");
    pods::PodManagerOptions o;
    o.manifest_dir = d.path + "/m";
    o.root_dir = d.path + "/root";
    o.pod_log_dir = d.path + "/logs";
    o.timings.second = 10ms;
    std::ofstream(o.manifest_dir + "/web.yaml")
        << "kind: Pod\nmetadata: {name: web, namespace: demo}\nspec:\n  containers:\n"
           "  - {name: app, image: 'busybox:1'}\n";
    m = pods::make_pod_manager(io.get_executor(), o, rt, images);
    auto ca = pki::create_ca();
    auto serving = pki::issue_serving_cert(*ca, "node", {{"localhost"}, {"127.0.0.1"}});
    std::vector<std::string> masters{"system:masters"}, none, nodes{"system:nodes"};
    admin = pem(*pki::issue_client_cert(*ca, "admin", masters));
    kubelet_client = pem(*pki::issue_client_cert(*ca, "kube-apiserver-kubelet-client", none));
    node_user = pem(*pki::issue_client_cert(*ca, "system:node:n1", nodes));
    std::ofstream(d.path + "/ca.crt") << *pki::cert_to_pem(ca->cert.get());
    auto sp = pem(*serving);
    std::ofstream(d.path + "/kubelet.crt") << sp.cert;
    std::ofstream(d.path + "/kubelet.key") << sp.key;
    NodeHttpsOptions ho;
    ho.address = "127.0.0.1";
    ho.port = 0;
    ho.cert_file = d.path + "/kubelet.crt";
    ho.key_file = d.path + "/kubelet.key";
    ho.client_ca_file = d.path + "/ca.crt";
    ho.exit_drain = 300ms;
    auto a = start_node_https(io.get_executor(), ho, *m, rt);
    EXPECT_TRUE(a) << (a ? "" : a.error());
    api = std::move(*a);
    m->start();
    EXPECT_TRUE(run_until(io, [&] {
      auto* p = m->find_pod("demo", "web");
      return p && p->phase() == "Running";
    }));
  }
  ~Env() {
    api->stop();
    (void)m.release();
  }
  std::unique_ptr<ssl::context> client(const Pem* id) {
    auto c = std::make_unique<ssl::context>(ssl::context::tls_client);
    c->load_verify_file(d.path + "/ca.crt");
    c->set_verify_mode(ssl::verify_peer);
    if (id) {
      c->use_certificate(asio::buffer(id->cert), ssl::context::pem);
      c->use_private_key(asio::buffer(id->key), ssl::context::pem);
    }
    return c;
  }
  template <class F>
  void run(F f, std::chrono::milliseconds timeout = 10s) {
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      co_await f();
      done = true;
    }, [&](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          ADD_FAILURE() << "client: " << x.what();
        }
        done = true;
      }
    });
    ASSERT_TRUE(run_until(io, [&] { return done; }, timeout));
  }
};

using Tls = ssl::stream<tcp::socket>;
using Ws = websocket::stream<Tls>;

asio::awaitable<Tls> connect(ssl::context& ctx, std::uint16_t port) {
  Tls t(co_await asio::this_coro::executor, ctx);
  co_await t.next_layer().async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), asio::use_awaitable);
  SSL_set_tlsext_host_name(t.native_handle(), "localhost");
  co_await t.async_handshake(ssl::stream_base::client, asio::use_awaitable);
  co_return t;
}

asio::awaitable<std::pair<int, std::string>> get(ssl::context& ctx, std::uint16_t port, std::string target) {
  auto t = co_await connect(ctx, port);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "localhost");
  co_await http::async_write(t, req, asio::use_awaitable);
  beast::flat_buffer b;
  http::response<http::string_body> res;
  co_await http::async_read(t, b, res, asio::use_awaitable);
  co_return std::pair{res.result_int(), res.body()};
}

// A WebSocket to `target` offering `protocol`; returns the stream and the accepted protocol.
asio::awaitable<std::pair<std::unique_ptr<Ws>, std::string>> ws_connect(ssl::context& ctx, std::uint16_t port,
                                                                        std::string target, std::string protocol) {
  auto ws = std::make_unique<Ws>(co_await connect(ctx, port));
  ws->set_option(websocket::stream_base::decorator([protocol](websocket::request_type& r) {
    r.set(http::field::sec_websocket_protocol, protocol);
  }));
  websocket::response_type res;
  co_await ws->async_handshake(res, "localhost", target, asio::use_awaitable);
  ws->binary(true);
  co_return std::pair{std::move(ws), std::string(res[http::field::sec_websocket_protocol])};
}

struct ExecResult {
  std::string protocol;
  std::map<int, std::string> channels;
  std::vector<std::string> frames;
};

// Runs an exec: sends `input` frames (each already with its channel byte) and reads to the end.
asio::awaitable<ExecResult> exec(ssl::context& ctx, std::uint16_t port, std::string target, std::string protocol,
                                 std::vector<std::string> input) {
  auto conn = co_await ws_connect(ctx, port, target, protocol);
  auto& ws = conn.first;
  ExecResult r;
  r.protocol = conn.second;
  for (auto& m : input) co_await ws->async_write(asio::buffer(m), asio::use_awaitable);
  for (;;) {
    beast::flat_buffer b;
    auto [ec, n] = co_await ws->async_read(b, kTuple);
    if (ec) break;
    auto s = beast::buffers_to_string(b.data());
    r.frames.push_back(s);
    if (!s.empty()) r.channels[static_cast<unsigned char>(s[0])] += s.substr(1);
  }
  co_return r;
}

TEST(NodeHttps, AuthenticatesClientCertificates) {
  Env e;
  auto anon = e.client(nullptr), node = e.client(&e.node_user), admin = e.client(&e.admin),
       kc = e.client(&e.kubelet_client);
  std::pair<int, std::string> a, n, ad, k, logs, nologs;
  e.run([&]() -> asio::awaitable<void> {
    a = co_await get(*anon, e.api->port(), "/healthz");
    n = co_await get(*node, e.api->port(), "/healthz");
    ad = co_await get(*admin, e.api->port(), "/pods");
    k = co_await get(*kc, e.api->port(), "/healthz");
    logs = co_await get(*kc, e.api->port(), "/containerLogs/demo/web/app?tailLines=5");
    nologs = co_await get(*kc, e.api->port(), "/containerLogs/demo/web/nope");
  });
  EXPECT_EQ(logs.first, 200);
  EXPECT_EQ(nologs.first, 404);
  EXPECT_EQ(a.first, 401);
  EXPECT_EQ(n.first, 403);
  EXPECT_EQ(ad.first, 200);
  auto v = parse_json(ad.second);
  ASSERT_TRUE(v);
  EXPECT_EQ(get_string(*v, {"kind"}), "PodList");
  EXPECT_EQ(k.first, 200);
  EXPECT_EQ(k.second, "ok");
}

TEST(NodeHttps, ExecOverV5AndV4WithExitCodes) {
  Env e;
  auto kc = e.client(&e.kubelet_client);
  ExecResult ok, bad, v4;
  std::pair<int, std::string> nopod, nocontainer;
  e.run([&]() -> asio::awaitable<void> {
    // stdin is echoed by cat; v5 closes stdin with {255, 0}.
    std::vector<std::string> in1{std::string("\0hello\n", 7), std::string("\xff\0", 2)}, none;
    std::string t1 = "/exec/demo/web/app?command=/bin/sh&command=-c&command=cat;echo%20err%20%3E%262&stdin=true&stdout=true&stderr=true";
    std::string t2 = "/exec/demo/web/app?command=/bin/sh&command=-c&command=exit%203&stdout=1";
    std::string t3 = "/exec/demo/web/app?command=/bin/false&stdout=1&stderr=1";
    ok = co_await exec(*kc, e.api->port(), t1, "v5.channel.k8s.io", in1);
    bad = co_await exec(*kc, e.api->port(), t2, "v5.channel.k8s.io, v4.channel.k8s.io", none);
    v4 = co_await exec(*kc, e.api->port(), t3, "v4.channel.k8s.io", none);
    nopod = co_await get(*kc, e.api->port(), "/exec/demo/nope/app?command=x&stdout=1");
    nocontainer = co_await get(*kc, e.api->port(), "/exec/demo/web/zzz?command=x&stdout=1");
  });
  EXPECT_EQ(ok.protocol, "v5.channel.k8s.io");
  ASSERT_FALSE(ok.frames.empty());
  EXPECT_EQ(ok.frames[0], std::string("\x01", 1));  // the "connected" message
  EXPECT_EQ(ok.channels[1], "hello\n");
  EXPECT_EQ(ok.channels[2], "err\n");
  EXPECT_EQ(ok.channels[3], R"({"metadata":{},"status":"Success"})");
  EXPECT_EQ(bad.protocol, "v5.channel.k8s.io");
  auto st = parse_json(bad.channels[3]);
  ASSERT_TRUE(st) << bad.channels[3];
  EXPECT_EQ(get_string(*st, {"reason"}), "NonZeroExitCode");
  EXPECT_EQ(get_string(st->at("details").at("causes").at(0), {"message"}), "3");
  EXPECT_EQ(v4.protocol, "v4.channel.k8s.io");
  auto st4 = parse_json(v4.channels[3]);
  ASSERT_TRUE(st4);
  EXPECT_EQ(get_string(st4->at("details").at("causes").at(0), {"message"}), "1");
  EXPECT_EQ(nopod.first, 404);
  EXPECT_EQ(nocontainer.first, 400);
  EXPECT_NE(nocontainer.second.find("container zzz is not valid for pod web"), std::string::npos);
  ASSERT_FALSE(e.rt.exec_ids.empty());
  EXPECT_EQ(e.rt.exec_ids[0], "fake://1");
}

TEST(NodeHttps, ExecWithTtyResizesAndMergesOutput) {
  Env e;
  auto kc = e.client(&e.kubelet_client);
  ExecResult r;
  e.run([&]() -> asio::awaitable<void> {
    std::vector<std::string> in{std::string("\x04{\"Width\":77,\"Height\":22}"), std::string("\0hi\n", 4)};
    std::string t = "/exec/demo/web/app?command=/bin/sh&command=-c&command=read%20x;stty%20size;echo%20got%20$x%20%3E%262;exit%205"
                    "&stdin=true&stdout=true&tty=true";
    r = co_await exec(*kc, e.api->port(), t, "v5.channel.k8s.io", in);
  });
  // The pty echoes the input, then the script's stdout and stderr come merged on channel 1.
  EXPECT_NE(r.channels[1].find("22 77\r\n"), std::string::npos) << r.channels[1];
  EXPECT_NE(r.channels[1].find("got hi\r\n"), std::string::npos) << r.channels[1];
  EXPECT_EQ(r.channels.count(2), 0u);
  auto st = parse_json(r.channels[3]);
  ASSERT_TRUE(st);
  EXPECT_EQ(get_string(st->at("details").at("causes").at(0), {"message"}), "5");
}

// A loopback listener answering "pong:<what it read>" once, then closing.
struct Echo {
  tcp::acceptor acc;
  explicit Echo(asio::io_context& io) : acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    asio::co_spawn(io, [this]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, s] = co_await acc.async_accept(kTuple);
        if (ec) co_return;
        std::string buf(1024, '\0');
        auto [rec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
        std::string out = "pong:" + buf.substr(0, n);
        co_await asio::async_write(s, asio::buffer(out), kTuple);
        s.close();
      }
    }, asio::detached);
  }
  std::uint16_t port() const { return acc.local_endpoint().port(); }
};

TEST(NodeHttps, PortForwardOverV4Channels) {
  Env e;
  Echo echo(e.io);
  auto kc = e.client(&e.kubelet_client);
  std::string proto;
  std::vector<std::string> frames;
  std::string data, err_closed;
  e.run([&]() -> asio::awaitable<void> {
    std::string target = "/portforward/demo/web?ports=" + std::to_string(echo.port()) + ",1";
    auto conn = co_await ws_connect(*kc, e.api->port(), target, "v4.channel.k8s.io");
    auto& ws = conn.first;
    proto = conn.second;
    std::string ping = std::string(1, '\0') + "ping";
    co_await ws->async_write(asio::buffer(ping), asio::use_awaitable);
    for (;;) {
      beast::flat_buffer b;
      auto [ec, n] = co_await ws->async_read(b, kTuple);
      if (ec) break;
      frames.push_back(beast::buffers_to_string(b.data()));
    }
  });
  EXPECT_EQ(proto, "v4.channel.k8s.io");
  ASSERT_GE(frames.size(), 4u);
  EXPECT_EQ(frames[0], std::string(1, '\0') + port_prefix(echo.port()));
  EXPECT_EQ(frames[1], std::string(1, '\1') + port_prefix(echo.port()));
  EXPECT_EQ(frames[2], std::string(1, '\2') + port_prefix(1));
  EXPECT_EQ(frames[3], std::string(1, '\3') + port_prefix(1));
  std::map<int, std::string> ch;
  for (std::size_t i = 4; i < frames.size(); ++i) ch[static_cast<unsigned char>(frames[i][0])] += frames[i].substr(1);
  EXPECT_EQ(ch[0], "pong:ping");
  EXPECT_EQ(ch[1], "");
  EXPECT_NE(ch[3].find("error forwarding port 1 to pod web"), std::string::npos) << ch[3];
  EXPECT_NE(ch[3].find("connect: Connection refused"), std::string::npos) << ch[3];
}

// kubectl 1.32's default: SPDY/3.1 frames in WebSocket binary messages.
TEST(NodeHttps, PortForwardOverSpdyTunnel) {
  Env e;
  Echo echo(e.io);
  auto kc = e.client(&e.kubelet_client);
  std::string proto;
  std::vector<spdy::Frame> got;
  std::vector<spdy::Headers> replies;
  e.run([&]() -> asio::awaitable<void> {
    auto conn = co_await ws_connect(*kc, e.api->port(), "/portforward/demo/web", "SPDY/3.1+portforward.k8s.io");
    auto& ws = conn.first;
    proto = conn.second;
    spdy::HeaderCompressor comp;
    spdy::HeaderDecompressor decomp;
    std::string port = std::to_string(echo.port());
    auto err_block = comp.compress({{"streamType", "error"}, {"port", port}, {"requestID", "0"}});
    auto data_block = comp.compress({{"streamType", "data"}, {"port", port}, {"requestID", "0"}});
    // Split across messages on purpose: the tunnel is a byte stream.
    std::string wire = spdy::serialize(spdy::syn_stream_frame(1, *err_block)) +
                       spdy::serialize(spdy::syn_stream_frame(3, *data_block)) +
                       spdy::serialize(spdy::ping_frame(1)) + spdy::serialize(spdy::data_frame(3, "ping"));
    co_await ws->async_write(asio::buffer(wire.substr(0, 5)), asio::use_awaitable);
    co_await ws->async_write(asio::buffer(wire.substr(5)), asio::use_awaitable);
    std::string buf;
    bool data_fin = false, err_fin = false;
    while (!(data_fin && err_fin)) {
      beast::flat_buffer b;
      auto [ec, n] = co_await ws->async_read(b, kTuple);
      if (ec) break;
      buf += beast::buffers_to_string(b.data());
      for (;;) {
        auto f = spdy::parse_frame(buf);
        if (!f || !*f) break;
        buf.erase(0, (*f)->second);
        auto fr = (*f)->first;
        if (fr.control && fr.type == 2) {
          auto h = decomp.decompress(std::string_view(fr.payload).substr(4));
          if (h) replies.push_back(*h);
        }
        if (!fr.control && (fr.flags & spdy::kFlagFin)) (fr.stream_id == 3 ? data_fin : err_fin) = true;
        got.push_back(std::move(fr));
      }
    }
    co_await ws->async_close(websocket::close_code::normal, kTuple);
  });
  EXPECT_EQ(proto, "SPDY/3.1+portforward.k8s.io");
  std::string data;
  int syn_replies = 0, pings = 0;
  for (const auto& f : got) {
    if (f.control && f.type == 2) ++syn_replies;
    if (f.control && f.type == 6) ++pings;
    if (!f.control && f.stream_id == 3) data += f.payload;
    if (!f.control && f.stream_id == 1) {
      EXPECT_EQ(f.payload, "");
    }
  }
  EXPECT_EQ(syn_replies, 2);
  EXPECT_EQ(replies.size(), 2u);
  EXPECT_EQ(pings, 1);
  EXPECT_EQ(data, "pong:ping");
}

// ---------------------------------------------------------------- real kubectl 1.32

// A child process (started and stopped by pid) whose stdout we read line by line.
struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env_add) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return;
    std::vector<char*> a, envp;
    for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) env.emplace_back(*e);
    for (auto& e : env_add) env.push_back(e);
    for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid = ::fork();
    if (pid == 0) {
      ::dup2(p[1], 1);
      ::execve(a[0], a.data(), envp.data());
      ::_exit(127);
    }
    ::close(p[1]);
    out = ::fdopen(p[0], "r");
  }
  std::string line() {
    char buf[512];
    if (!out || !::fgets(buf, sizeof buf, out)) return "";
    return buf;
  }
  std::string rest() {
    std::string s;
    char buf[512];
    size_t n;
    while (out && (n = ::fread(buf, 1, sizeof buf, out)) > 0) s.append(buf, n);
    return s;
  }
  int wait() {
    int st = 0;
    if (pid > 0 && ::waitpid(pid, &st, 0) == pid) {
      pid = -1;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return -1;
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (out) ::fclose(out);
  }
};

// Runs f on a thread while the loop serves; returns when f returned (or the timeout).
template <class F>
bool beside_loop(asio::io_context& io, F f, std::chrono::milliseconds timeout = 30s) {
  std::atomic<bool> done = false;
  std::thread t([&] {
    f();
    done = true;
  });
  bool ok = run_until(io, [&] { return done.load(); }, timeout);
  t.join();
  return ok;
}

std::string ask(std::uint16_t port, const std::string& msg) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    (void)!::write(s, msg.data(), msg.size());
    char buf[256];
    ssize_t n;
    while ((n = ::read(s, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  }
  ::close(s);
  return got;
}

// Starts the stand-in apiserver (kubectl_relay_for_test.py) for e's pod; writes a kubeconfig
// for it to <tmp>/kubeconfig and returns its path ("" on failure).
std::string start_relay(Env& e, std::unique_ptr<Child>& relay) {
  auto items = e.m->pod_list().at("items").as_array();
  if (items.size() != 1) return "";
  std::ofstream(e.d.path + "/pod.json") << to_json(items[0]);
  std::ofstream(e.d.path + "/client.crt") << e.kubelet_client.cert;
  std::ofstream(e.d.path + "/client.key") << e.kubelet_client.key;
  std::string relay_py = std::string(PODWARP_SOURCE_DIR) + "/noded/nodeapi/kubectl_relay_for_test.py";
  relay = std::make_unique<Child>(
      std::vector<std::string>{"/usr/bin/python3", relay_py, "--node-port", std::to_string(e.api->port()),
                               "--ca", e.d.path + "/ca.crt", "--client-cert", e.d.path + "/client.crt",
                               "--client-key", e.d.path + "/client.key", "--server-cert",
                               e.d.path + "/kubelet.crt", "--server-key", e.d.path + "/kubelet.key",
                               "--pod-json", e.d.path + "/pod.json"},
      std::vector<std::string>{});
  std::string relay_port;
  if (!beside_loop(e.io, [&] { relay_port = relay->line(); }) || relay_port.empty()) return "";
  relay_port.pop_back();
  std::string kubeconfig = e.d.path + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                               "    server: https://127.0.0.1:" << relay_port
                            << "\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n"
                               "current-context: c\nusers:\n- name: u\n  user: {token: x}\n";
  return kubeconfig;
}

// kubectl exec / port-forward (WebSocket tunnel and plain SPDY) through a stand-in apiserver
// that relays to the node API as the real one does (kubectl_relay_for_test.py).
TEST(NodeHttps, RealKubectlThroughARelay) {
  if (::access("/usr/bin/kubectl", X_OK) != 0 || ::access("/usr/bin/python3", X_OK) != 0)
    GTEST_SKIP() << "needs /usr/bin/kubectl and /usr/bin/python3";
  Env e;
  Echo echo(e.io);
  std::unique_ptr<Child> relay;
  std::string kubeconfig = start_relay(e, relay);
  ASSERT_FALSE(kubeconfig.empty());
  std::string kc = "/usr/bin/kubectl --kubeconfig " + kubeconfig + " -n demo ";
  // exec: output, stdin, exit code (WebSocket v5).
  std::string out;
  int code = -1;
  ASSERT_TRUE(beside_loop(e.io, [&] {
    Child k({"/bin/sh", "-c", "echo hello | " + kc + "exec -i web -c app -- /bin/sh -c 'cat; exit 3' 2>&1"}, {});
    out = k.rest();
    code = k.wait();
  }));
  EXPECT_EQ(out, "hello\ncommand terminated with exit code 3\n");  // kubectl's own line on stderr
  EXPECT_EQ(code, 3);
  ASSERT_TRUE(beside_loop(e.io, [&] {
    Child k({"/bin/sh", "-c", kc + "exec web -c app -- /bin/false 2>&1"}, {});
    out = k.rest();
    code = k.wait();
  }));
  EXPECT_EQ(code, 1) << out;
  // exec -it: kubectl on a terminal (script(1) gives it one) asks for a tty.
  if (::access("/usr/bin/script", X_OK) == 0) {
    ASSERT_TRUE(beside_loop(e.io, [&] {
      Child k({"/usr/bin/script", "-qec",
               kc + "exec -it web -c app -- /bin/sh -c 'test -t 0 && test -t 1 && echo istty; exit 7'",
               "/dev/null"},
              {});
      out = k.rest();
      code = k.wait();
    }));
    EXPECT_NE(out.find("istty"), std::string::npos) << out;
    EXPECT_EQ(code, 7) << out;
  }
  // port-forward: kubectl's default (SPDY in a WebSocket), then its SPDY/3.1 fallback.
  for (std::string ws : {"true", "false"}) {
    std::string got, fwd;
    ASSERT_TRUE(beside_loop(e.io, [&] {
      Child k({"/bin/sh", "-c", "exec " + kc + "port-forward pod/web :" + std::to_string(echo.port())},
              {"KUBECTL_PORT_FORWARD_WEBSOCKETS=" + ws});
      fwd = k.line();  // "Forwarding from 127.0.0.1:NNNNN -> PORT"
      auto colon = fwd.find("127.0.0.1:");
      if (colon == std::string::npos) return;
      auto local = static_cast<std::uint16_t>(std::stoi(fwd.substr(colon + 10)));
      got = ask(local, "ping");
      std::string again = ask(local, "ping2");  // a second connection on the same session
      if (again != "pong:ping2") got += " second: " + again;
    })) << ws;
    EXPECT_EQ(got, "pong:ping") << "websockets=" << ws << " kubectl said: " << fwd;
  }
}

}  // namespace
}  // namespace podwarp::noded::nodeapi

namespace podwarp::noded::nodeapi {
namespace {

// python3-kubernetes 22.6: stream() exec (v4.channel.k8s.io) and portforward() through the relay.
TEST(NodeHttps, PythonClientThroughARelay) {
  if (::access("/usr/bin/python3", X_OK) != 0 ||
      std::system("/usr/bin/python3 -c 'import kubernetes.stream' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with the kubernetes client";
  Env e;
  Echo echo(e.io);
  std::unique_ptr<Child> relay;
  std::string kubeconfig = start_relay(e, relay);
  ASSERT_FALSE(kubeconfig.empty());
  std::ofstream(e.d.path + "/client.py") << R"(
import sys
from kubernetes import client, config
from kubernetes.stream import stream, portforward
config.load_kube_config(sys.argv[1])
api = client.CoreV1Api()
r = stream(api.connect_get_namespaced_pod_exec, "web", "demo", container="app",
           command=["/bin/sh", "-c", "echo out; echo err >&2; exit 2"], stderr=True, stdin=False,
           stdout=True, tty=False, _preload_content=False)
r.run_forever(timeout=10)
print("exec", repr(r.read_stdout()), repr(r.read_stderr()), r.returncode)
pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "demo", ports=sys.argv[2])
s = pf.socket(int(sys.argv[2]))
s.sendall(b"ping")
got = b""
while True:
    d = s.recv(100)
    if not d:
        break
    got += d
print("pf", got.decode())
)";
  std::string out;
  ASSERT_TRUE(beside_loop(e.io, [&] {
    Child k({"/usr/bin/python3", e.d.path + "/client.py", kubeconfig, std::to_string(echo.port())}, {});
    out = k.rest();
    k.wait();
  }));
  EXPECT_NE(out.find("exec 'out\\n' 'err\\n' 2"), std::string::npos) << out;
  EXPECT_NE(out.find("pf pong:ping"), std::string::npos) << out;
}

}  // namespace
}  // namespace podwarp::noded::nodeapi
