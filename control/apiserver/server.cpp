#include "apiserver/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url.hpp>
#include <fmt/format.h>
#include <openssl/x509.h>
#include <pthread.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "apiserver/node_proxy.h"
#include "apiserver/proxy_stream.h"
#include "apiserver/reviews.h"
#include "apiserver/tokens.h"
#include "podwarp/log.h"
#include "podwarp/pki.h"
#include "podwarp/socket_deadline.h"
#include "podwarp/metrics.h"
#include "schema/openapi.h"
#include "schema/openapi_v2_pb.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

metrics::Counter& request_counter() {
  static auto& c = metrics::default_registry().counter(
      "apiserver_request_total", "Counter of apiserver requests by verb, resource and code.",
      {"verb", "resource", "code"});
  return c;
}

metrics::Histogram& request_latency() {
  static auto& h = metrics::default_registry().histogram(
      "apiserver_request_duration_seconds",
      "Response latency distribution in seconds for each verb and resource.",
      {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
      {"verb", "resource"});
  return h;
}

std::optional<UserInfo> user_from_peer(SSL* ssl) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::unique_ptr<X509, decltype(&X509_free)> guard(cert, X509_free);
  if (SSL_get_verify_result(ssl) != X509_V_OK) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(cert);
  UserInfo u;
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) continue;
    std::string value(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    if (nid == NID_commonName) u.name = value;
    if (nid == NID_organizationName) u.groups.push_back(value);
  }
  if (u.name.empty()) return std::nullopt;
  u.groups.emplace_back("system:authenticated");
  return u;
}

// How long a write may wait for the client to read before the connection is closed.
constexpr std::chrono::seconds kStalledWrite{60};

using Deadline = SocketDeadline<tcp::socket>;

// Streams a watch feed as a chunked body, on the connection's executor.
//
// Per-frame cost matters here (one event fans out to every watcher), so the loop arms no
// timer per write: the connection's deadline is off while it runs and one watchdog shuts the
// connection down if the stream outlives its deadline (a client that stopped reading blocks a
// write; the watchdog ends it).
asio::awaitable<void> stream_feed(TlsStream& stream, Deadline& deadline_timer, unsigned version,
                                  WatchFeed& feed) {
  http::response<http::empty_body> res{http::status::ok, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-cache, private");
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  auto& tcp = beast::get_lowest_layer(stream);
  deadline_timer.expires_after(std::chrono::seconds(60));
  boost::system::error_code ec;
  co_await http::async_write_header(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  const auto deadline = std::chrono::steady_clock::now() + feed.timeout;
  deadline_timer.cancel();
  asio::steady_timer watchdog(co_await asio::this_coro::executor,
                              deadline + std::chrono::seconds(30));
  auto streaming = std::make_shared<bool>(true);  // the watchdog touches tcp only while set
  watchdog.async_wait([&tcp, streaming](boost::system::error_code wec) {
    if (!wec && *streaming) shut_down(tcp.socket());
  });
  std::vector<asio::const_buffer> bufs;
  while (true) {
    std::vector<std::shared_ptr<const std::string>> frames = co_await feed.next();
    if (frames.empty()) break;
    bufs.clear();
    for (const auto& f : frames) bufs.emplace_back(f->data(), f->size());
    // Frames are whole chunks already: one buffer (the usual case) goes to TLS uncopied.
    co_await asio::async_write(stream, bufs, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  if (!ec) {
    // A feed closed for a slow reader still has up to the socket buffers queued ahead of the
    // last chunk: give the reader time to drain them, so it sees a clean end of stream.
    deadline_timer.expires_after(kStalledWrite);
    co_await asio::async_write(stream, http::make_chunk_last(),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  *streaming = false;
  watchdog.cancel();
}

std::string plain(std::string_view s) { return std::string(s); }

// The client chose HTTP/2 in the TLS handshake (ALPN "h2").
bool negotiated_h2(SSL* ssl) {
  const unsigned char* proto = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &proto, &len);
  return len == 2 && proto[0] == 'h' && proto[1] == '2';
}

// ALPN: "h2" when the client offers it, else "http/1.1"; no protocol when it offers neither.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void*) {
  static constexpr unsigned char kProtocols[] = "\x02h2\x08http/1.1";  // server preference
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kProtocols, sizeof kProtocols - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Writes a whole response with a deadline per write rather than for the whole response: a
// client reading a list of tens of megabytes slowly (a busy informer relisting) is served as
// long as it keeps reading; one that reads nothing for kStalledWrite is cut off.
asio::awaitable<void> write_response(TlsStream& stream, Deadline& deadline,
                                     http::response<http::string_body>& res,
                                     boost::system::error_code& ec) {
  http::response_serializer<http::string_body> sr{res};
  while (!sr.is_done()) {
    deadline.expires_after(kStalledWrite);
    co_await http::async_write_some(stream, sr, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }
}

}  // namespace

ApiServer::ApiServer(asio::io_context& io, Api& api, ServerOptions opts)
    : io_(io), api_(api), opts_(std::move(opts)), ssl_(asio::ssl::context::tls_server),
      node_tls_(asio::ssl::context::tls_client), acceptor_(io) {
  node_tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
  if (!opts_.kubelet_client_cert_file.empty()) {
    node_tls_.use_certificate_chain_file(opts_.kubelet_client_cert_file);
    node_tls_.use_private_key_file(opts_.kubelet_client_key_file, asio::ssl::context::pem);
  }
  if (!opts_.kubelet_ca_file.empty()) {
    node_tls_.load_verify_file(opts_.kubelet_ca_file);
  } else {
    node_tls_.set_default_verify_paths();
  }
  node_tls_.set_verify_mode(asio::ssl::verify_peer);
  ssl_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  SSL_CTX_set_alpn_select_cb(ssl_.native_handle(), select_alpn, nullptr);
  ssl_.use_certificate_chain_file(opts_.cert_file);
  ssl_.use_private_key_file(opts_.key_file, asio::ssl::context::pem);
  if (!opts_.client_ca_file.empty()) {
    // Ask for a client certificate but accept connections without one: those requests are
    // anonymous (401) unless they carry a bearer token.
    auto requested = pki::request_client_certs(ssl_.native_handle(), opts_.client_ca_file,
                                               "podwarp-apiserver");
    if (!requested) throw std::runtime_error(requested.error());
  }
  if (!opts_.token_file.empty()) {
    std::ifstream in(opts_.token_file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      // token,user,uid,"g1,g2"
      std::vector<std::string> cols;
      std::string cur;
      bool quoted = false;
      for (char c : line) {
        if (c == '"') {
          quoted = !quoted;
        } else if (c == ',' && !quoted) {
          cols.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
      cols.push_back(cur);
      if (cols.size() < 2 || cols[0].empty()) continue;
      UserInfo u{cols[1], {}};
      if (cols.size() >= 3) u.uid = cols[2];
      if (cols.size() >= 4) {
        std::stringstream gs(cols[3]);
        std::string g;
        while (std::getline(gs, g, ',')) {
          if (!g.empty()) u.groups.push_back(g);
        }
      }
      u.groups.emplace_back("system:authenticated");
      tokens_[cols[0]] = std::move(u);
    }
  }
  // The Api outlives this server but gets requests only through it.
  api_.set_static_tokens([this](std::string_view token) { return static_token(token); });
}

ApiServer::~ApiServer() { stop(); }

asio::any_io_executor ApiServer::next_worker() {
  if (workers_.empty()) return io_.get_executor();
  return workers_[next_++ % workers_.size()]->get_executor();
}

std::expected<std::uint16_t, std::string> ApiServer::listen() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts_.bind_address, ec);
  if (ec) return std::unexpected(fmt::format("--bind-address {}: {}", opts_.bind_address, ec.message()));
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return std::unexpected(fmt::format("listen on {}:{}: {}", opts_.bind_address, opts_.port,
                                       ec.message()));
  }
  return acceptor_.local_endpoint().port();
}

void ApiServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  guards_.clear();
  for (auto& w : workers_) w->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

asio::awaitable<void> ApiServer::run() {
  for (unsigned i = 0; i < opts_.workers; ++i) {
    workers_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(workers_.back()->get_executor());
    threads_.emplace_back([ctx = workers_.back().get(), i] {
      // Named for top/perf: "api-conn-<i>" (the Api's thread keeps the process's name).
      std::string name = fmt::format("api-conn-{}", i);
      pthread_setname_np(pthread_self(), name.c_str());
      ctx->run();
    });
  }
  while (acceptor_.is_open()) {
    boost::system::error_code ec;
    auto worker = next_worker();
    tcp::socket socket = co_await acceptor_.async_accept(
        worker, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      log::warn("accept: {}", ec.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(worker, serve(std::move(socket)), asio::detached);
  }
}

std::optional<UserInfo> ApiServer::authenticate_token(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return std::nullopt;
  std::string_view token = authorization.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return static_token(token);
}

std::optional<UserInfo> ApiServer::static_token(std::string_view token) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

asio::awaitable<std::optional<UserInfo>> ApiServer::authenticate_service_account(
    std::string authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (!opts_.tokens || !std::string_view(authorization).starts_with(kBearer)) co_return std::nullopt;
  std::string_view token = std::string_view(authorization).substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (!TokenIssuer::looks_like_jwt(token)) co_return std::nullopt;
  auto id = opts_.tokens->authenticate(token, std::chrono::system_clock::now());
  if (!id) {
    log::debug("service account token rejected: {}", id.error());
    co_return std::nullopt;
  }
  TokenIdentity identity = std::move(*id);
  bool current = co_await asio::co_spawn(
      io_,
      [this, &identity]() -> asio::awaitable<bool> {
        co_return api_.token_objects_current(identity);
      },
      asio::use_awaitable);
  if (!current) {
    log::debug("service account token of {} rejected: its objects are gone", identity.username());
    co_return std::nullopt;
  }
  UserInfo u;
  u.name = identity.username();
  u.groups = identity.groups();
  u.uid = identity.service_account_uid;
  if (!identity.pod_name.empty()) {
    u.extra.emplace_back("authentication.kubernetes.io/pod-name", identity.pod_name);
    u.extra.emplace_back("authentication.kubernetes.io/pod-uid", identity.pod_uid);
  }
  co_return u;
}

asio::awaitable<Response> ApiServer::health_check(const HealthPath& path, const Request& req) {
  const std::vector<std::string>& names = health_check_names(path.endpoint);
  if (!path.check.empty() && std::find(names.begin(), names.end(), path.check) == names.end())
    co_return Response::error(plain_not_found());
  std::vector<HealthResult> results;
  std::optional<std::optional<std::string>> etcd;  // one probe for etcd and etcd-readiness
  for (const std::string& name : names) {
    if (!path.check.empty() && name != path.check) continue;
    HealthResult r{.name = name, .failure = std::nullopt};
    bool excluded = false;  // an excluded check is not run
    for (auto [it, end] = req.query.equal_range("exclude"); it != end; ++it)
      excluded = excluded || (path.check.empty() && it->second == name);
    if (!excluded && (name == "etcd" || name == "etcd-readiness")) {
      if (!etcd) etcd = co_await asio::co_spawn(io_, api_.etcd_health(), asio::use_awaitable);
      r.failure = *etcd;
    } else if (!excluded && name == "informer-sync" && !ready_.load()) {
      r.failure = "the watch cache has not synced with etcd yet";
    }
    results.push_back(std::move(r));
  }
  if (!path.check.empty()) co_return single_health_response(results.front());
  co_return health_response(path.endpoint, results, req);
}

asio::awaitable<Routed> ApiServer::route(Request& req, const std::optional<UserInfo>& cert_user,
                                         std::string_view authorization) {
  Routed routed;
  std::optional<Response>& response = routed.response;
  // Authentication.
  std::optional<UserInfo> user = cert_user;
  if (!authorization.empty()) {
    user = authenticate_token(authorization);
    if (!user) {
      std::string auth(authorization);
      user = co_await authenticate_service_account(std::move(auth));
    }
  }
  const std::optional<HealthPath> health = parse_health_path(req.path);
  // Upstream's system:public-info-viewer: the health endpoints themselves, not their checks.
  const bool public_path = (health && health->check.empty()) || req.path == "/version" ||
                           req.path == "/version/";
  bool resource_path = false;
  if (!user && !public_path) {
    response = Response::error(unauthorized());
    co_return routed;
  }
  if (user) req.user = *user;
  if (health) {
    response = co_await health_check(*health, req);
  } else if (req.path == "/metrics") {
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics::default_registry().expose();
    response = std::move(r);
  } else if (req.path == "/openapi/v3" || req.path == "/openapi/v3/") {
    response = Response::json(200, to_json(schema::openapi_v3_index()));
  } else if (req.path.starts_with("/openapi/v3/")) {
    std::string_view rest = std::string_view(req.path).substr(12);
    const std::string* doc = nullptr;
    if (rest.starts_with("api/")) {
      doc = schema::openapi_v3_document("", rest.substr(4));
    } else if (rest.starts_with("apis/")) {
      std::string_view gv = rest.substr(5);
      auto slash = gv.find('/');
      if (slash != std::string_view::npos) {
        doc = schema::openapi_v3_document(gv.substr(0, slash), gv.substr(slash + 1));
      }
    }
    if (doc) {
      Response r = Response::json(200, *doc);
      r.headers.emplace_back("Cache-Control", "public, immutable");
      response = std::move(r);
    } else {
      response = Response::error(plain_not_found());
    }
  } else if (req.path == "/openapi/v2") {
    // kubectl asks for gnostic's protobuf Document (schema/openapi_v2_pb.h); others get JSON.
    const schema::OpenApiV2Encoding encoding = schema::openapi_v2_encoding(req.accept);
    if (encoding == schema::OpenApiV2Encoding::kUnacceptable) {
      response = Response::error(not_acceptable(fmt::format(
          "only the following media types are accepted: application/json, {}, {}",
          schema::kOpenApiV2Protobuf, schema::kOpenApiV2ProtobufDeprecated)));
    } else {
      Response r;
      if (encoding == schema::OpenApiV2Encoding::kJson) {
        r = Response::json(200, schema::openapi_v2_document());
      } else {
        r.content_type = schema::kOpenApiV2Protobuf;
        r.body = schema::openapi_v2_protobuf();
      }
      r.headers.emplace_back("Vary", "Accept");
      response = std::move(r);
    }
  } else if (req.path == "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews") {
    // v1beta1 for kubectl before 1.28 (v1 is in the resource table).
    if (req.method != "POST") {
      response = Response::error(plain_not_found());
    } else {
      response = Response::json(201, to_json(self_subject_review(req.user, "v1beta1")));
    }
  } else if (auto d = discovery(req, discovery_)) {
    response = std::move(d);
  } else if ((resource_path = parse_request_info(req)) && req.info.group.empty() &&
             req.info.resource == "pods" && !req.info.name.empty() &&
             is_node_proxy_subresource(req.info.subresource)) {
    // pods/log|exec|attach|portforward: relayed to the node by the transport.
    routed.verb = req.method == "POST" ? "create" : "get";
    routed.resource = "pods/" + req.info.subresource;
    const bool method_ok = req.method == "GET" ||
                           (req.method == "POST" && req.info.subresource != "log");
    if (!method_ok) {
      response = Response::error(method_not_supported(*req.info.resource_info, req.info.verb));
      co_return routed;
    }
    std::expected<Api::NodeTarget, ApiError> target =
        std::unexpected(internal_error("no target"));
    try {
      target = co_await asio::co_spawn(io_, api_.node_target(req), asio::use_awaitable);
    } catch (const std::exception& e) {
      log::error("{} {}: {}", routed.verb, routed.resource, e.what());
      target = std::unexpected(internal_error(e.what()));
    }
    if (!target) {
      response = Response::error(target.error());
    } else {
      routed.node = NodeRequest{target->host, target->port, target->path};
    }
  } else if (resource_path) {
    routed.verb = req.info.verb;
    routed.resource = req.info.resource;
    if (!req.info.subresource.empty()) routed.resource += "/" + req.info.subresource;
    auto here = co_await asio::this_coro::executor;
    Reply reply;
    try {
      reply = co_await asio::co_spawn(io_, api_.handle(std::move(req), here), asio::use_awaitable);
    } catch (const std::exception& e) {
      // A bug, not bad input (that is answered with a Status): report it, keep serving.
      log::error("{} {}: {}", routed.verb, routed.resource, e.what());
      reply.response = Response::error(internal_error(e.what()));
    }
    if (reply.feed) {
      routed.feed = std::move(reply.feed);
    } else {
      response = std::move(reply.response);
    }
  } else {
    response = Response::error(plain_not_found());
  }
  co_return routed;
}

void ApiServer::count(const Routed& routed, unsigned status,
                      std::optional<std::chrono::steady_clock::time_point> started) {
  request_counter().with({routed.verb, routed.resource, std::to_string(status)}).inc();
  if (started) {
    request_latency()
        .with({routed.verb, routed.resource})
        .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - *started).count());
  }
}

asio::awaitable<void> ApiServer::serve(tcp::socket socket) {
  TlsStream stream(std::move(socket), ssl_);
  // Timeouts shut the connection down (never Beast's closing expires_after, socket_deadline.h).
  Deadline deadline(beast::get_lowest_layer(stream).socket());
  deadline.expires_after(std::chrono::seconds(10));
  boost::system::error_code ec;
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  const std::optional<UserInfo> cert_user = user_from_peer(stream.native_handle());
  if (negotiated_h2(stream.native_handle())) {
    deadline.cancel();
    co_await serve_h2(stream, cert_user);
    co_return;
  }
  beast::flat_buffer buffer;
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(opts_.max_body_bytes);
    deadline.expires_after(std::chrono::seconds(120));
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::body_limit) {
      // Refuse without reading the rest: answer 413 and close.
      http::response<http::string_body> res{http::status::payload_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = body_too_large(opts_.max_body_bytes);
      res.keep_alive(false);
      res.prepare_payload();
      deadline.expires_after(std::chrono::seconds(5));
      co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) break;
    auto started = std::chrono::steady_clock::now();
    http::request<http::string_body> hreq = parser.release();
    Request req;
    req.method = std::string(hreq.method_string());
    set_target(req, hreq.target());
    req.accept = plain(hreq[http::field::accept]);
    req.content_type = plain(hreq[http::field::content_type]);
    req.body = std::move(hreq.body());
    const bool keep_alive = hreq.keep_alive();
    const std::string_view authorization = hreq[http::field::authorization];
    Routed routed = co_await route(req, cert_user, authorization);
    if (routed.node) {
      NodeRequest& node = *routed.node;
      std::string_view raw_target = hreq.target();
      if (auto q = raw_target.find('?'); q != std::string_view::npos) {
        node.target += raw_target.substr(q);
      }
      deadline.cancel();  // the relay sets its own (setup) timeouts, then none
      unsigned status = co_await relay_to_node(stream, buffer, hreq, node, node_tls_);
      count(routed, status);
      break;  // the relay used the connection up
    }
    if (routed.feed) {
      count(routed, 200);
      co_await stream_feed(stream, deadline, hreq.version(), *routed.feed);
      if (routed.feed->on_finish) routed.feed->on_finish();
      break;  // the stream used the connection up; close it
    }
    Response& response = *routed.response;
    http::response<http::string_body> res{static_cast<http::status>(response.status),
                                          hreq.version()};
    res.set(http::field::content_type, response.content_type);
    res.set(http::field::cache_control, "no-cache, private");
    for (auto& [k, v] : response.headers) res.insert(k, v);
    res.keep_alive(keep_alive);
    res.body() = std::move(response.body);
    res.prepare_payload();
    co_await write_response(stream, deadline, res, ec);
    count(routed, response.status, started);
    if (ec || !keep_alive) break;
  }
  deadline.expires_after(std::chrono::seconds(2));
  co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace podwarp::apiserver
