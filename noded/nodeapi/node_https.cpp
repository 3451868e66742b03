#include "nodeapi/node_https.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <map>

#include "logs/log_pump.h"
#include "nodeapi/channel_protocol.h"
#include "nodeapi/routes.h"
#include "nodeapi/spdy.h"
#include "podwarp/log.h"
#include "podwarp/pki.h"
#include "probes/probe.h"

namespace podwarp::noded::nodeapi {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Tls = ssl::stream<tcp::socket>;
using Ws = websocket::stream<Tls>;
using Queue = asio::experimental::channel<void(boost::system::error_code, std::string)>;
using namespace asio::experimental::awaitable_operators;
using routes::status_json;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

// 0: allowed; 401/403 otherwise (contract 3 of issue 5).
int authorize(Tls& tls) {
  X509* cert = SSL_get1_peer_certificate(tls.native_handle());
  if (cert == nullptr) return 401;
  std::unique_ptr<X509, decltype(&X509_free)> guard(cert, X509_free);
  if (SSL_get_verify_result(tls.native_handle()) != X509_V_OK) return 401;
  auto u = pki::user_from_cert(cert);
  if (!u) return 401;
  if (u->user == "kube-apiserver-kubelet-client") return 0;
  for (const auto& g : u->groups)
    if (g == "system:masters") return 0;
  return 403;
}

struct Target {
  std::string kind;  // exec, attach, portforward
  std::vector<std::string> seg;
  std::multimap<std::string, std::string> query;
  std::vector<std::string> all(const std::string& k) const {
    std::vector<std::string> out;
    auto [a, b] = query.equal_range(k);
    for (auto it = a; it != b; ++it) out.push_back(it->second);
    return out;
  }
  bool flag(const std::string& k, bool dflt = false) const {
    auto it = query.find(k);
    return it == query.end() ? dflt : query_bool(it->second);
  }
};

std::optional<Target> parse_target(std::string_view target) {
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return std::nullopt;
  Target t;
  for (auto s : u->segments()) t.seg.emplace_back(s);
  if (t.seg.empty()) return std::nullopt;
  t.kind = t.seg[0];
  for (auto p : u->params()) t.query.emplace(std::string(p.key), p.has_value ? std::string(p.value) : "");
  return t;
}

bool is_spdy_upgrade(const http::request<http::string_body>& req) {
  auto up = req[http::field::upgrade];
  return up.size() >= 8 && (up.substr(0, 8) == "SPDY/3.1" || up.substr(0, 8) == "spdy/3.1");
}

// ---------------------------------------------------------------- WebSocket connection

struct WsConn {
  Ws ws;
  Queue q;
  bool broken = false;
  bool writer_done = false;
  asio::steady_timer done;
  WsConn(Tls&& t, asio::any_io_executor ex) : ws(std::move(t)), q(ex, 64), done(ex) {
    done.expires_at(asio::steady_timer::time_point::max());
  }
  // false when the connection is gone.
  asio::awaitable<bool> send(std::string frame) {
    if (broken) co_return false;
    auto [ec] = co_await q.async_send(boost::system::error_code{}, std::move(frame), kTuple);
    co_return !ec;
  }
  // Ends the writer after what is queued; it then closes the WebSocket.
  asio::awaitable<void> finish() {
    if (!broken) co_await q.async_send(boost::system::error_code{}, std::string(), kTuple);
    while (!writer_done) co_await done.async_wait(kTuple);
  }
};

asio::awaitable<void> ws_writer(std::shared_ptr<WsConn> c) {
  for (;;) {
    auto [ec, msg] = co_await c->q.async_receive(kTuple);
    if (ec || msg.empty()) break;
    auto [wec, n] = co_await c->ws.async_write(asio::buffer(msg), kTuple);
    if (wec) {
      c->broken = true;
      break;
    }
  }
  if (!c->broken) {
    auto [ec] = co_await c->ws.async_close(websocket::close_code::normal, kTuple);
    (void)ec;
  }
  c->broken = true;
  c->q.close();
  c->writer_done = true;
  c->done.cancel();
}

// Accepts the upgrade with `protocol`; the writer runs on its own.
asio::awaitable<std::shared_ptr<WsConn>> ws_accept(Tls&& tls, const http::request<http::string_body>& req,
                                                   std::string protocol) {
  auto ex = co_await asio::this_coro::executor;
  auto c = std::make_shared<WsConn>(std::move(tls), ex);
  c->ws.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, protocol);
    res.set(http::field::server, "podwarp-noded");
  }));
  c->ws.read_message_max(16 * 1024 * 1024);
  auto [ec] = co_await c->ws.async_accept(req, kTuple);
  if (ec) co_return nullptr;
  c->ws.binary(true);
  asio::co_spawn(ex, ws_writer(c), asio::detached);
  co_return c;
}

asio::awaitable<std::optional<std::string>> ws_read(WsConn& c) {
  beast::flat_buffer b;
  auto [ec, n] = co_await c.ws.async_read(b, kTuple);
  if (ec) co_return std::nullopt;
  co_return beast::buffers_to_string(b.data());
}

}  // namespace

// ---------------------------------------------------------------- the server

class HttpsServer final : public NodeHttpsServer, public std::enable_shared_from_this<HttpsServer> {
 public:
  HttpsServer(asio::any_io_executor ex, NodeHttpsOptions o, pods::PodManager& pods,
              pods::ContainerRuntime& rt)
      : ex_(ex), o_(std::move(o)), pods_(pods), rt_(rt), ctx_(ssl::context::tls_server), acc_(ex) {}

  std::expected<void, std::string> listen() {
    boost::system::error_code ec;
    ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx_.use_certificate_chain_file(o_.cert_file, ec);
    if (ec) return std::unexpected(fmt::format("load certificate {}: {}", o_.cert_file, ec.message()));
    ctx_.use_private_key_file(o_.key_file, ssl::context::pem, ec);
    if (ec) return std::unexpected(fmt::format("load key {}: {}", o_.key_file, ec.message()));
    // Ask for a client certificate; requests without one get 401 (not a failed handshake).
    auto requested = pki::request_client_certs(ctx_.native_handle(), o_.client_ca_file,
                                               "podwarp-node-api");
    if (!requested) return std::unexpected(requested.error());
    auto addr = asio::ip::make_address(o_.address, ec);
    if (ec) return std::unexpected(fmt::format("node API address \"{}\": {}", o_.address, ec.message()));
    tcp::endpoint ep(addr, o_.port);
    acc_.open(ep.protocol(), ec);
    if (!ec) acc_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc_.bind(ep, ec);
    if (!ec) acc_.listen(128, ec);
    if (ec) return std::unexpected(fmt::format("bind {}:{}: {}", o_.address, o_.port, ec.message()));
    port_ = acc_.local_endpoint().port();
    return {};
  }

  void run(std::shared_ptr<bool> alive) {
    auto self = shared_from_this();
    asio::co_spawn(ex_, [self, alive]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, sock] = co_await self->acc_.async_accept(kTuple);
        if (!*alive) co_return;
        if (ec) {
          if (ec == asio::error::operation_aborted || !self->acc_.is_open()) co_return;
          continue;
        }
        asio::co_spawn(self->ex_, self->session(std::move(sock), alive), asio::detached);
      }
    }, asio::detached);
  }

  std::uint16_t port() const override { return port_; }
  void stop() override {
    boost::system::error_code ec;
    acc_.close(ec);
  }

 private:
  using Request = http::request<http::string_body>;

  template <class Stream>
  static asio::awaitable<bool> reply(Stream& s, const Request& req, int code, std::string ctype,
                                     std::string body) {
    http::response<http::string_body> res{static_cast<http::status>(code), req.version()};
    res.set(http::field::content_type, ctype);
    res.body() = std::move(body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(s, res, kTuple);
    co_return !ec && req.keep_alive();
  }
  template <class Stream>
  static asio::awaitable<bool> fail(Stream& s, const Request& req, int code, std::string_view reason,
                                    std::string msg) {
    co_return co_await reply(s, req, code, "application/json", status_json(code, reason, msg));
  }

  asio::awaitable<void> session(tcp::socket sock, std::shared_ptr<bool> alive) {
    Tls tls(std::move(sock), ctx_);
    {
      auto [ec] = co_await tls.async_handshake(ssl::stream_base::server, kTuple);
      if (ec) co_return;
    }
    int auth = authorize(tls);
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      auto [ec, n] = co_await http::async_read(tls, buf, parser, kTuple);
      if (ec || !*alive) co_return;
      Request req = parser.release();
      if (auth == 401) {
        co_await fail(tls, req, 401, "Unauthorized", "Unauthorized");
        co_return;
      }
      if (auth == 403) {
        co_await fail(tls, req, 403, "Forbidden", "Forbidden (user is not allowed to use the node API)");
        co_return;
      }
      std::string target(req.target());
      auto t = parse_target(target);
      if (t && (t->kind == "exec" || t->kind == "attach" || t->kind == "portforward" ||
                t->kind == "portForward")) {
        co_await streams(std::move(tls), std::move(req), *t, buf);
        co_return;
      }
      if (req.method() == http::verb::get && target.starts_with("/containerLogs/")) {
        if (!co_await routes::serve_logs(tls, target, req.version(), alive, pods_, o_.follow_poll)) co_return;
        continue;
      }
      bool keep;
      if (req.method() != http::verb::get) {
        keep = co_await fail(tls, req, 405, "MethodNotAllowed", "only GET is served");
      } else {
        auto r = routes::route_basic(pods_, target);
        keep = co_await reply(tls, req, r.code, r.content_type, std::move(r.body));
      }
      if (!keep) co_return;
    }
  }

  // exec / attach / portforward: validation, then the upgrade.
  asio::awaitable<void> streams(Tls tls, Request req, const Target& t, beast::flat_buffer& buf) {
    bool pf = t.kind != "exec" && t.kind != "attach";
    if ((pf && t.seg.size() != 3) || (!pf && t.seg.size() != 4)) {
      co_await fail(tls, req, 404, "NotFound",
                    pf ? "expected /portforward/<namespace>/<pod>"
                       : fmt::format("expected /{}/<namespace>/<pod>/<container>", t.kind));
      co_return;
    }
    auto target = pods_.stream_target(t.seg[1], t.seg[2], pf ? "" : t.seg[3]);
    if (!target) {
      co_await fail(tls, req, target.error().code, target.error().code == 404 ? "NotFound" : "BadRequest",
                    target.error().message);
      co_return;
    }
    bool ws = websocket::is_upgrade(req);
    if (pf) {
      auto netns = rt_.sandbox_netns(target->pod_uid);
      if (!netns) {
        co_await fail(tls, req, 500, "InternalError", netns.error());
        co_return;
      }
      PortForwardCtx ctx{t.seg[2], target->pod_uid, *netns};
      if (ws) {
        auto header = req[http::field::sec_websocket_protocol];
        if (auto p = choose_protocol(header, {kPortForwardTunnelProtocol})) {
          auto c = co_await ws_accept(std::move(tls), req, *p);
          if (c) co_await spdy_over_ws(c, ctx);
          co_return;
        }
        auto p = choose_protocol(header, {kPortForwardProtocols[0], kPortForwardProtocols[1]});
        std::vector<std::string> values = t.all("port");
        for (auto& v : t.all("ports")) values.push_back(v);
        auto ports = parse_ports(values);
        if (!ports || ports->empty()) {
          co_await fail(tls, req, 400, "BadRequest",
                        ports ? "query parameter \"port\" is required" : ports.error());
          co_return;
        }
        auto c = co_await ws_accept(std::move(tls), req, p.value_or(""));
        if (c) co_await portforward_ws(c, ctx, *ports);
        co_return;
      }
      if (is_spdy_upgrade(req)) {
        co_await spdy_over_tls(std::move(tls), req, ctx, buf);
        co_return;
      }
      co_await fail(tls, req, 400, "BadRequest", "Upgrade request required");
      co_return;
    }
    // exec / attach
    if (!ws) {
      co_await fail(tls, req, 400, "BadRequest",
                    is_spdy_upgrade(req)
                        ? "SPDY streams are not supported for exec/attach; use a WebSocket (v5.channel.k8s.io)"
                        : "Upgrade request required");
      co_return;
    }
    std::vector<std::string_view> sup(std::begin(kExecProtocols), std::end(kExecProtocols));
    auto proto = choose_protocol(req[http::field::sec_websocket_protocol], sup);
    int version = proto ? exec_protocol_version(*proto) : 1;
    pods::ExecSessionRequest er;
    er.argv = t.all("command");
    er.tty = t.flag("tty");
    er.want_stdin = t.flag("stdin");
    er.want_stdout = t.flag("stdout");
    er.want_stderr = t.flag("stderr") && !er.tty;
    if (t.kind == "exec" && er.argv.empty()) {
      co_await fail(tls, req, 400, "BadRequest", "you must specify at least one command for the container");
      co_return;
    }
    if (!er.want_stdin && !er.want_stdout && !t.flag("stderr")) {
      co_await fail(tls, req, 400, "BadRequest", "you must specify at least 1 of stdin, stdout, stderr");
      co_return;
    }
    if (!target->running || target->container_id.empty()) {
      co_await fail(tls, req, 500, "InternalError", fmt::format("container not found (\"{}\")", t.seg[3]));
      co_return;
    }
    auto c = co_await ws_accept(std::move(tls), req, proto.value_or(""));
    if (!c) co_return;
    if (t.kind == "exec") {
      co_await exec_ws(c, version, target->container_id, er);
    } else {
      co_await attach_ws(c, version, t, *target, er);
    }
  }

  // ---------------------------------------------------------------- exec

  static asio::awaitable<void> send_status(WsConn& c, int version, std::optional<int> exit_code,
                                           std::string failure = {}) {
    std::string msg;
    if (version >= 4) {
      msg = !failure.empty() ? status_failure_json(failure, "InternalError", 500)
            : exit_code && *exit_code != 0 ? status_exit_code_json(*exit_code)
                                           : status_success_json();
    } else if (!failure.empty()) {
      msg = failure;
    } else if (exit_code && *exit_code != 0) {
      msg = exit_code_error_text(*exit_code);
    }
    if (!msg.empty()) co_await c.send(channel_frame(3, msg));
  }

  asio::awaitable<void> pump_fd(std::shared_ptr<WsConn> c, int fd, std::uint8_t channel) {
    if (fd < 0) co_return;
    asio::posix::stream_descriptor d(ex_, ::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    std::string buf(32 * 1024, '\0');
    for (;;) {
      auto [ec, n] = co_await d.async_read_some(asio::buffer(buf), kTuple);
      if (n > 0 && !co_await c->send(channel_frame(channel, std::string_view(buf.data(), n)))) co_return;
      if (ec) co_return;  // EOF, or EIO on a pty whose slave is gone
    }
  }

  // Client -> process or container, for exec and attach: channel 0 into `input_fd` (a dup of
  // it; -1: input is dropped), channel 4 resizes (v3+), v5's close of channel 0 ends the input.
  // `input_ended` runs once when the input ends: that close, a failed write (the process closed
  // its stdin or exited), or the client leaving. Returns when the client is gone.
  asio::awaitable<void> client_input(std::shared_ptr<WsConn> c, int input_fd, int version,
                                     std::function<void()> input_ended,
                                     std::function<void(std::uint16_t, std::uint16_t)> resize) {
    std::unique_ptr<asio::posix::stream_descriptor> in;
    if (input_fd >= 0)
      in = std::make_unique<asio::posix::stream_descriptor>(ex_, ::fcntl(input_fd, F_DUPFD_CLOEXEC, 3));
    auto end_input = [&] {
      if (!in) return;
      in.reset();
      input_ended();
    };
    for (;;) {
      auto m = co_await ws_read(*c);
      if (!m) break;
      if (m->empty()) continue;
      auto ch = static_cast<std::uint8_t>((*m)[0]);
      std::string_view data = std::string_view(*m).substr(1);
      if (ch == 0 && in && !data.empty()) {
        auto [ec, n] = co_await asio::async_write(*in, asio::buffer(data), kTuple);
        if (ec) end_input();
      } else if (ch == kStreamClose && version >= 5) {
        if (!data.empty() && data[0] == 0) end_input();
      } else if (ch == 4 && version >= 3) {
        if (auto sz = parse_resize(data)) resize(sz->width, sz->height);
      }
    }
    end_input();
  }

  // exec: a gone client kills the process.
  asio::awaitable<void> exec_reader(std::shared_ptr<WsConn> c, std::shared_ptr<pods::ExecSession> s,
                                    std::shared_ptr<bool> ended, int version) {
    // Named, not temporaries in the co_await expression (g++ 12 destroyed those twice).
    std::function<void()> input_ended = [s] { s->close_stdin(); };
    std::function<void(std::uint16_t, std::uint16_t)> resize = [s](std::uint16_t w, std::uint16_t h) {
      (void)s->resize(w, h);
    };
    co_await client_input(c, s->stdin_fd(), version, std::move(input_ended), std::move(resize));
    if (!*ended) s->kill();
  }

  asio::awaitable<void> exec_ws(std::shared_ptr<WsConn> c, int version, std::string id,
                                pods::ExecSessionRequest er) {
    auto started = co_await rt_.start_exec_session(id, er);
    if (!started) {
      co_await send_status(*c, version, std::nullopt,
                           "error executing command in container: " + started.error());
      co_await c->finish();
      co_return;
    }
    std::shared_ptr<pods::ExecSession> s = std::move(*started);
    auto ended = std::make_shared<bool>(false);
    // As the kubelet: an empty message on the lowest writable channel says "connected".
    co_await c->send(channel_frame(er.want_stdout || er.tty ? 1 : er.want_stderr ? 2 : 3, ""));
    asio::co_spawn(ex_, exec_reader(c, s, ended, version), asio::detached);
    std::optional<int> code;
    auto outputs = [&]() -> asio::awaitable<void> {
      co_await (pump_fd(c, s->stdout_fd(), 1) && pump_fd(c, s->stderr_fd(), 2));
    };
    auto exit_then_drain = [&]() -> asio::awaitable<void> {
      int c = co_await s->wait();
      if (c >= 0) code = c;
      asio::steady_timer t(ex_, o_.exit_drain);
      co_await t.async_wait(kTuple);
    };
    co_await (outputs() || exit_then_drain());
    while (!code) {
      int c = co_await s->wait();
      if (c >= 0) code = c;
    }
    *ended = true;
    co_await send_status(*c, version, code);
    co_await c->finish();
  }

  // ---------------------------------------------------------------- attach

  asio::awaitable<void> attach_ws(std::shared_ptr<WsConn> c, int version, const Target& t,
                                  const pods::PodManager::StreamTarget& target,
                                  pods::ExecSessionRequest er) {
    if (er.want_stdin && !target.spec_stdin) {
      co_await send_status(*c, version, std::nullopt,
                           fmt::format("container {} does not have stdin enabled (spec.containers[].stdin is false)", t.seg[3]));
      co_await c->finish();
      co_return;
    }
    // Spec stdin: the run's console holds the pipe (or pty) the input goes to. It is noded's,
    // so a container adopted after a noded restart has lost it.
    std::shared_ptr<console::Console> con = target.console;
    if (er.want_stdin && !con) {
      co_await send_status(*c, version, std::nullopt,
                           fmt::format("the stdin of container {} was lost when podwarp-noded restarted; restart the container to attach to its stdin", t.seg[3]));
      co_await c->finish();
      co_return;
    }
    auto path = pods_.container_log_path(t.seg[1], t.seg[2], t.seg[3], false);
    if (!path) {
      co_await send_status(*c, version, std::nullopt, path.error());
      co_await c->finish();
      co_return;
    }
    struct State {
      int eofs = 0;
      bool gone = false;
      asio::steady_timer wake;
      explicit State(asio::any_io_executor ex) : wake(ex) { wake.expires_at(asio::steady_timer::time_point::max()); }
    };
    auto st = std::make_shared<State>(ex_);
    // As the kubelet: the container's spec decides the terminal, not the request. A terminal
    // carries stdout and stderr as one stream.
    bool out = er.want_stdout, err = er.want_stderr && !target.spec_tty;
    int streams = target.spec_tty ? 1 : 2;
    std::weak_ptr<WsConn> wc = c;
    auto id = logs::LogTaps::instance().subscribe(*path, [st, wc, out, err](logs::Stream s, std::string_view data, bool eof) {
      if (eof) {
        ++st->eofs;
        st->wake.cancel();
        return;
      }
      bool is_out = s == logs::Stream::kStdout;
      if ((is_out && !out) || (!is_out && !err)) return;
      if (auto conn = wc.lock(); conn && !conn->broken)
        (void)conn->q.try_send(boost::system::error_code{}, channel_frame(is_out ? 1 : 2, data));
    });
    co_await c->send(channel_frame(out ? 1 : 2, ""));
    // Client -> container: stdin into the console, which applies stdinOnce when it ends.
    asio::co_spawn(ex_, [this, c, st, con, version, want_stdin = er.want_stdin]() -> asio::awaitable<void> {
      int fd = want_stdin && con ? con->input_fd() : -1;
      std::function<void()> input_ended = [con] { con->input_ended(); };  // named: as in exec_reader
      std::function<void(std::uint16_t, std::uint16_t)> resize = [con](std::uint16_t w, std::uint16_t h) {
        if (con) (void)con->resize(w, h);
      };
      co_await client_input(c, fd, version, std::move(input_ended), std::move(resize));
      st->gone = true;
      st->wake.cancel();
    }, asio::detached);
    while (st->eofs < streams && !st->gone) {
      if (!pods_.container_running(t.seg[1], t.seg[2], t.seg[3]) && st->eofs == 0) {
        // Ended before we subscribed: nothing more will come.
        asio::steady_timer grace(ex_, std::chrono::milliseconds(200));
        co_await grace.async_wait(kTuple);
        if (st->eofs == 0) break;
      }
      st->wake.expires_after(std::chrono::seconds(1));
      co_await st->wake.async_wait(kTuple);
    }
    logs::LogTaps::instance().unsubscribe(id);
    co_await send_status(*c, version, 0);
    co_await c->finish();
  }

  // ---------------------------------------------------------------- port-forward

  struct PortForwardCtx {
    std::string pod, uid, netns;
  };

  // A TCP connection to 127.0.0.1:port in the pod's network namespace.
  static asio::awaitable<std::expected<tcp::socket, std::string>> dial(const PortForwardCtx& ctx,
                                                                        std::uint16_t port) {
    auto ex = co_await asio::this_coro::executor;
    auto fd = probes::socket_in_netns(ctx.netns, AF_INET);
    std::string prefix = fmt::format("error forwarding port {} to pod {}, uid {}: ", port, ctx.pod, ctx.uid);
    if (!fd) co_return std::unexpected(prefix + fd.error());
    tcp::socket s(ex);
    boost::system::error_code ec;
    s.assign(tcp::v4(), *fd, ec);
    if (ec) {
      ::close(*fd);
      co_return std::unexpected(prefix + ec.message());
    }
    auto [cec] = co_await s.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port), kTuple);
    if (cec)
      co_return std::unexpected(prefix + fmt::format("dial tcp 127.0.0.1:{}: connect: {}", port, cec.message()));
    co_return s;
  }

  // The Python client's protocol: one connection per requested port, channels 2i / 2i+1.
  asio::awaitable<void> portforward_ws(std::shared_ptr<WsConn> c, PortForwardCtx ctx,
                                       std::vector<std::uint16_t> ports) {
    struct Port {
      std::uint16_t port;
      std::shared_ptr<tcp::socket> sock;
      std::shared_ptr<Queue> in;
    };
    std::vector<Port> ps;
    for (std::size_t i = 0; i < ports.size(); ++i) {
      ps.push_back({ports[i], nullptr, std::make_shared<Queue>(ex_, 64)});
      co_await c->send(channel_frame(static_cast<std::uint8_t>(2 * i), port_prefix(ports[i])));
      co_await c->send(channel_frame(static_cast<std::uint8_t>(2 * i + 1), port_prefix(ports[i])));
    }
    // Client -> pods.
    auto stop = std::make_shared<bool>(false);
    asio::co_spawn(ex_, [c, ps, stop]() -> asio::awaitable<void> {
      for (;;) {
        auto m = co_await ws_read(*c);
        if (!m) break;
        if (m->empty()) continue;
        std::size_t ch = static_cast<unsigned char>((*m)[0]);
        if (ch % 2 != 0 || ch / 2 >= ps.size() || m->size() == 1) continue;
        auto [ec] = co_await ps[ch / 2].in->async_send(boost::system::error_code{}, m->substr(1), kTuple);
        (void)ec;
      }
      *stop = true;
      for (auto& p : ps) p.in->close();
    }, asio::detached);
    auto forward = [&](std::size_t i) -> asio::awaitable<void> {
      auto ch = static_cast<std::uint8_t>(2 * i);
      auto s = co_await dial(ctx, ps[i].port);
      if (!s) {
        co_await c->send(channel_frame(ch + 1, s.error()));
        co_return;
      }
      auto sock = std::make_shared<tcp::socket>(std::move(*s));
      auto in = ps[i].in;
      auto to_pod = [sock, in]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, data] = co_await in->async_receive(kTuple);
          if (ec) break;
          auto [wec, n] = co_await asio::async_write(*sock, asio::buffer(data), kTuple);
          if (wec) break;
        }
        boost::system::error_code ec;
        sock->shutdown(tcp::socket::shutdown_send, ec);
        // Wait for the other direction (it ends the forward).
        asio::steady_timer t(sock->get_executor(), asio::steady_timer::time_point::max());
        co_await t.async_wait(kTuple);
      };
      auto from_pod = [sock, c, ch]() -> asio::awaitable<void> {
        std::string buf(32 * 1024, '\0');
        for (;;) {
          auto [ec, n] = co_await sock->async_read_some(asio::buffer(buf), kTuple);
          if (n > 0 && !co_await c->send(channel_frame(ch, std::string_view(buf.data(), n)))) break;
          if (ec) break;
        }
      };
      co_await (from_pod() || to_pod());
      boost::system::error_code ec;
      sock->close(ec);
    };
    if (ps.size() == 1) {
      co_await forward(0);
    } else {
      // Several ports: each forward on its own, then wait for all.
      auto left = std::make_shared<std::size_t>(ps.size());
      asio::steady_timer all(ex_, asio::steady_timer::time_point::max());
      for (std::size_t i = 0; i < ps.size(); ++i) {
        asio::co_spawn(ex_, forward(i), [left, &all](std::exception_ptr) {
          if (--*left == 0) all.cancel();
        });
      }
      while (*left > 0) co_await all.async_wait(kTuple);
    }
    co_await c->finish();
  }

  // ---- SPDY/3.1 port-forward (kubectl), over any byte transport ----

  struct SpdyStream {
    std::uint32_t id = 0;
    std::shared_ptr<Queue> in;  // client data (data streams)
    std::shared_ptr<tcp::socket> sock;
    bool remote_fin = false;
  };
  struct SpdySession {
    Queue out;  // wire bytes, in order
    spdy::HeaderCompressor comp;
    spdy::HeaderDecompressor decomp;
    std::map<std::uint32_t, std::shared_ptr<SpdyStream>> streams;
    std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> pending;  // requestID -> (error, data)
    std::map<std::string, std::uint16_t> pending_port;
    bool ended = false;
    explicit SpdySession(asio::any_io_executor ex) : out(ex, 128) {}
    asio::awaitable<bool> send(const spdy::Frame& f) {
      if (ended) co_return false;
      auto [ec] = co_await out.async_send(boost::system::error_code{}, spdy::serialize(f), kTuple);
      co_return !ec;
    }
  };

  asio::awaitable<void> spdy_forward(std::shared_ptr<SpdySession> s, PortForwardCtx ctx, std::uint16_t port,
                                     std::uint32_t error_id, std::shared_ptr<SpdyStream> data) {
    auto finish = [&](std::string msg) -> asio::awaitable<void> {
      if (!msg.empty()) co_await s->send(spdy::data_frame(error_id, msg));
      co_await s->send(spdy::data_frame(data->id, "", true));
      co_await s->send(spdy::data_frame(error_id, "", true));
    };
    if (port == 0) {
      co_await finish("invalid port 0");
      co_return;
    }
    auto sock = co_await dial(ctx, port);
    if (!sock) {
      co_await finish(sock.error());
      co_return;
    }
    data->sock = std::make_shared<tcp::socket>(std::move(*sock));
    auto so = data->sock;
    auto in = data->in;
    auto from_pod = [so, s, data]() -> asio::awaitable<void> {
      std::string buf(32 * 1024, '\0');
      for (;;) {
        auto [ec, n] = co_await so->async_read_some(asio::buffer(buf), kTuple);
        if (n > 0 && !co_await s->send(spdy::data_frame(data->id, std::string_view(buf.data(), n)))) break;
        if (ec) break;
      }
    };
    auto to_pod = [so, in]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, bytes] = co_await in->async_receive(kTuple);
        if (ec) break;
        auto [wec, n] = co_await asio::async_write(*so, asio::buffer(bytes), kTuple);
        if (wec) break;
      }
      boost::system::error_code ec;
      so->shutdown(tcp::socket::shutdown_send, ec);
    };
    auto r = co_await (from_pod() || to_pod());
    if (r.index() == 1) {
      co_await from_pod();  // the client is done sending: read the pod's answer to its end
    } else {
      asio::steady_timer grace(ex_, std::chrono::seconds(1));
      co_await (to_pod() || grace.async_wait(asio::use_awaitable));
    }
    boost::system::error_code ec;
    so->close(ec);
    co_await finish("");
  }

  // Parses and handles every whole frame of `buf` (consumed). False: end the session.
  asio::awaitable<bool> spdy_feed(std::shared_ptr<SpdySession> s, const PortForwardCtx& ctx, std::string& buf) {
    for (;;) {
      auto parsed = spdy::parse_frame(buf);
      if (!parsed) {
        log::warn("nodeapi: port-forward {}: {}", ctx.pod, parsed.error());
        co_return false;
      }
      if (!*parsed) co_return true;
      spdy::Frame f = std::move((*parsed)->first);
      buf.erase(0, (*parsed)->second);
      if (!f.control) {
        auto it = s->streams.find(f.stream_id);
        if (it == s->streams.end() || !it->second->in) continue;
        auto st = it->second;
        if (!f.payload.empty()) {
          auto [ec] = co_await st->in->async_send(boost::system::error_code{}, std::move(f.payload), kTuple);
          (void)ec;
        }
        if (f.flags & spdy::kFlagFin) st->in->close();
        continue;
      }
      switch (static_cast<spdy::Type>(f.type)) {
        case spdy::Type::kSynStream: {
          auto syn = spdy::parse_syn_stream(f.payload);
          if (!syn) co_return false;
          auto headers = s->decomp.decompress(syn->header_block);  // always: shared zlib state
          if (!headers) {
            log::warn("nodeapi: port-forward {}: {}", ctx.pod, headers.error());
            co_return false;
          }
          std::string type = spdy::header_value(*headers, "streamtype");
          std::string port_s = spdy::header_value(*headers, "port");
          std::string key = spdy::header_value(*headers, "requestid");
          if (key.empty()) key = "port:" + port_s;
          if (type != "error" && type != "data") {
            co_await s->send(spdy::rst_stream_frame(syn->stream_id, spdy::kProtocolError));
            continue;
          }
          auto block = s->comp.compress({});
          if (!block) co_return false;
          co_await s->send(spdy::syn_reply_frame(syn->stream_id, *block));
          auto st = std::make_shared<SpdyStream>();
          st->id = syn->stream_id;
          if (type == "data") st->in = std::make_shared<Queue>(ex_, 64);
          s->streams[st->id] = st;
          auto& pair = s->pending[key];
          (type == "error" ? pair.first : pair.second) = st->id;
          auto ports = parse_ports({port_s});
          s->pending_port[key] = ports && ports->size() == 1 ? (*ports)[0] : 0;
          if (pair.first != 0 && pair.second != 0) {
            auto [eid, did] = pair;
            std::uint16_t port = s->pending_port[key];
            s->pending.erase(key);
            s->pending_port.erase(key);
            asio::co_spawn(ex_, spdy_forward(s, ctx, port, eid, s->streams[did]), asio::detached);
          }
          break;
        }
        case spdy::Type::kRstStream: {
          if (f.payload.size() < 8) break;
          auto it = s->streams.find(spdy::get_u32(f.payload, 0) & 0x7fffffff);
          if (it == s->streams.end()) break;
          if (it->second->in) it->second->in->close();
          if (it->second->sock) {
            boost::system::error_code ec;
            it->second->sock->close(ec);
          }
          s->streams.erase(it);
          break;
        }
        case spdy::Type::kPing:
          co_await s->send(f);  // echo
          break;
        case spdy::Type::kGoAway:
          co_return false;
        default:  // SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY: nothing to do here
          break;
      }
    }
  }

  void spdy_end(SpdySession& s) {
    for (auto& [id, st] : s.streams) {
      if (st->in) st->in->close();
      if (st->sock) {
        boost::system::error_code ec;
        st->sock->close(ec);
      }
    }
  }

  asio::awaitable<void> spdy_over_ws(std::shared_ptr<WsConn> c, PortForwardCtx ctx) {
    auto s = std::make_shared<SpdySession>(ex_);
    // Writer: SPDY bytes -> binary messages.
    asio::co_spawn(ex_, [s, c]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, bytes] = co_await s->out.async_receive(kTuple);
        if (ec || bytes.empty() || !co_await c->send(std::move(bytes))) break;
      }
      co_await c->finish();
    }, asio::detached);
    std::string buf;
    for (;;) {
      auto m = co_await ws_read(*c);
      if (!m) break;
      buf += *m;
      if (!co_await spdy_feed(s, ctx, buf)) break;
    }
    spdy_end(*s);
    co_await s->out.async_send(boost::system::error_code{}, std::string(), kTuple);
    s->ended = true;
  }

  asio::awaitable<void> spdy_over_tls(Tls tls, const Request& req, PortForwardCtx ctx, beast::flat_buffer& rest) {
    std::string proto;
    for (auto& f : req.base())
      if (beast::iequals(f.name_string(), "X-Stream-Protocol-Version") && f.value() == "portforward.k8s.io")
        proto = "portforward.k8s.io";
    if (proto.empty()) {
      co_await fail(tls, req, 403, "Forbidden", "unable to upgrade: unable to negotiate protocol: client supports [] server supports [portforward.k8s.io]");
      co_return;
    }
    std::string head =
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n";
    {
      auto [ec, n] = co_await asio::async_write(tls, asio::buffer(head), kTuple);
      if (ec) co_return;
    }
    auto t = std::make_shared<Tls>(std::move(tls));
    auto s = std::make_shared<SpdySession>(ex_);
    auto writer_done = std::make_shared<asio::steady_timer>(ex_, asio::steady_timer::time_point::max());
    auto done_flag = std::make_shared<bool>(false);
    asio::co_spawn(ex_, [s, t, writer_done, done_flag]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, bytes] = co_await s->out.async_receive(kTuple);
        if (ec || bytes.empty()) break;
        auto [wec, n] = co_await asio::async_write(*t, asio::buffer(bytes), kTuple);
        if (wec) break;
      }
      s->ended = true;
      s->out.close();
      *done_flag = true;
      writer_done->cancel();
    }, asio::detached);
    std::string buf = beast::buffers_to_string(rest.data());
    rest.consume(rest.size());
    bool ok = co_await spdy_feed(s, ctx, buf);
    std::string chunk(64 * 1024, '\0');
    while (ok) {
      auto [ec, n] = co_await t->async_read_some(asio::buffer(chunk), kTuple);
      if (n > 0) {
        buf.append(chunk.data(), n);
        ok = co_await spdy_feed(s, ctx, buf);
      }
      if (ec) break;
    }
    spdy_end(*s);
    if (!s->ended) co_await s->out.async_send(boost::system::error_code{}, std::string(), kTuple);
    while (!*done_flag) co_await writer_done->async_wait(kTuple);
    boost::system::error_code ec;
    t->lowest_layer().close(ec);
  }

  asio::any_io_executor ex_;
  NodeHttpsOptions o_;
  pods::PodManager& pods_;
  pods::ContainerRuntime& rt_;
  ssl::context ctx_;
  tcp::acceptor acc_;
  std::uint16_t port_ = 0;
};

namespace {
class HttpsHandle final : public NodeHttpsServer {
 public:
  HttpsHandle(std::shared_ptr<HttpsServer> s, std::shared_ptr<bool> alive)
      : s_(std::move(s)), alive_(std::move(alive)) {}
  ~HttpsHandle() override {
    *alive_ = false;
    s_->stop();
  }
  std::uint16_t port() const override { return s_->port(); }
  void stop() override { s_->stop(); }

 private:
  std::shared_ptr<HttpsServer> s_;
  std::shared_ptr<bool> alive_;
};
}  // namespace

std::expected<std::unique_ptr<NodeHttpsServer>, std::string> start_node_https(
    asio::any_io_executor ex, NodeHttpsOptions o, pods::PodManager& pods,
    pods::ContainerRuntime& runtime) {
  // Writes to a pipe whose reader is gone (exec stdin) must fail with EPIPE, not kill noded.
  ::signal(SIGPIPE, SIG_IGN);
  auto s = std::make_shared<HttpsServer>(ex, std::move(o), pods, runtime);
  if (auto l = s->listen(); !l) return std::unexpected(l.error());
  auto alive = std::make_shared<bool>(true);
  s->run(alive);
  return std::make_unique<HttpsHandle>(s, alive);
}

}  // namespace podwarp::noded::nodeapi
