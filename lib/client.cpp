#include "podwarp/client.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/optional.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <deque>
#include <utility>
#include <vector>

#include "podwarp/kubeconfig.h"
#include "podwarp/socket_deadline.h"

namespace podwarp::client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Stream = beast::ssl_stream<beast::tcp_stream>;

// Idle connections older than this are not reused (servers close idle keep-alives, too).
constexpr std::chrono::seconds kMaxIdleAge{50};
// How much of a non-Status error body goes into Error::message.
constexpr std::size_t kMaxErrorBody = 512;

auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string_view default_reason(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return code >= 500 ? "InternalError" : "Unknown";
  }
}

Error transport_error(std::string operation, std::string_view stage, const error_code& ec) {
  Error e;
  if (ec == beast::error::timeout) {
    e.reason = "Timeout";
  } else if (ec == asio::error::operation_aborted) {
    e.reason = "Cancelled";
  } else {
    e.reason = "ConnectionError";
  }
  e.message = fmt::format("{}: {}", stage, ec.message());
  e.operation = std::move(operation);
  return e;
}

Error local_error(std::string operation, std::string reason, std::string message) {
  Error e;
  e.reason = std::move(reason);
  e.message = std::move(message);
  e.operation = std::move(operation);
  return e;
}

bool unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string percent_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (unreserved(c)) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

void add_param(std::string& q, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  q += q.empty() ? '?' : '&';
  q += key;
  q += '=';
  q += percent_encode(value);
}

std::string write_query(const WriteOptions& o) {
  std::string q;
  add_param(q, "fieldManager", o.field_manager);
  add_param(q, "fieldValidation", o.field_validation);
  if (o.dry_run) add_param(q, "dryRun", "All");
  if (o.force) add_param(q, "force", "true");
  return q;
}

// A connection is closed only when no operation of it is in flight (socket_deadline.h).
struct Connection {
  Connection(const asio::any_io_executor& ex, ssl::context& ctx)
      : stream(ex, ctx), deadline(tcp().socket()) {}
  Stream stream;
  SocketDeadline<asio::ip::tcp::socket> deadline;  // instead of Beast's closing timeouts
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream); }
  void close() {
    deadline.cancel();
    tcp().close();
  }
  error_code outcome(error_code ec) const { return deadline.outcome(ec); }

  // True when the peer closed (or wrote to) the connection while it sat idle: it cannot carry
  // another request. A peek never consumes data, and never blocks.
  bool stale() {
    if (buffer.size() != 0) return true;
    char byte;
    ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
};

}  // namespace

struct Client::Impl {
  asio::any_io_executor executor;
  Config config;
  std::optional<Error> setup_error;
  std::unique_ptr<ssl::context> tls;
  std::string host;  // to resolve and connect (IPv6 without brackets)
  std::string port;
  std::uint16_t port_number = 443;
  std::string host_header;  // "host:port" as written in the URL
  std::string verify_name;  // checked against the server certificate
  bool verify_name_is_ip = false;
  std::string base_path;                          // URL path prefix, without a trailing '/'
  std::vector<std::unique_ptr<Connection>> idle;  // most recently used last

  Impl(asio::any_io_executor ex, Config cfg) : executor(std::move(ex)), config(std::move(cfg)) {
    if (auto err = setup(); !err.empty()) {
      setup_error = local_error("configure client", "BadRequest", std::move(err));
    }
  }

  std::string setup() {
    auto url = boost::urls::parse_uri(config.server);
    if (!url) return fmt::format("server URL \"{}\": {}", config.server, url.error().message());
    if (url->scheme() != "https") {
      return fmt::format("server URL \"{}\": scheme must be https", config.server);
    }
    switch (url->host_type()) {
      case boost::urls::host_type::ipv4:
      case boost::urls::host_type::ipv6:
        verify_name_is_ip = true;
        break;
      case boost::urls::host_type::name:
        break;
      default:
        return fmt::format("server URL \"{}\": no host", config.server);
    }
    host = url->host_address();
    port = url->has_port() ? std::string(url->port()) : "443";
    port_number = url->has_port() ? url->port_number() : 443;
    if (port_number == 0) return fmt::format("server URL \"{}\": bad port", config.server);
    host_header = std::string(url->encoded_host_and_port());
    base_path = std::string(url->encoded_path());
    while (!base_path.empty() && base_path.back() == '/') base_path.pop_back();
    verify_name = host;
    if (!config.tls_server_name.empty()) {
      verify_name = config.tls_server_name;
      error_code ec;
      asio::ip::make_address(verify_name, ec);
      verify_name_is_ip = !ec;
    }

    tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    error_code ec;
    if (config.insecure_skip_tls_verify) {
      tls->set_verify_mode(ssl::verify_none, ec);
    } else {
      tls->set_verify_mode(ssl::verify_peer, ec);
      if (!config.ca_pem.empty()) {
        tls->add_certificate_authority(asio::buffer(config.ca_pem), ec);
        if (ec) return fmt::format("load CA certificate: {}", ec.message());
      } else {
        tls->set_default_verify_paths(ec);
        if (ec) return fmt::format("load system CA certificates: {}", ec.message());
      }
    }
    if (!config.client_cert_pem.empty() || !config.client_key_pem.empty()) {
      tls->use_certificate_chain(asio::buffer(config.client_cert_pem), ec);
      if (ec) return fmt::format("load client certificate: {}", ec.message());
      tls->use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem, ec);
      if (ec) return fmt::format("load client key: {}", ec.message());
    }
    return {};
  }

  template <class Body>
  void set_common_headers(http::request<Body>& req) const {
    req.set(http::field::host, host_header);
    req.set(http::field::user_agent, config.user_agent);
    req.set(http::field::accept, "application/json");
    if (!config.token.empty()) req.set(http::field::authorization, "Bearer " + config.token);
    req.keep_alive(true);
  }

  std::unique_ptr<Connection> take_idle() {
    auto now = std::chrono::steady_clock::now();
    while (!idle.empty()) {
      std::unique_ptr<Connection> c = std::move(idle.back());
      idle.pop_back();
      if (now - c->idle_since < kMaxIdleAge && !c->stale()) return c;
      c->close();
    }
    return nullptr;
  }

  void put_idle(std::unique_ptr<Connection> c) {
    if (config.max_idle_connections == 0 || c->buffer.size() != 0) {
      c->close();
      return;
    }
    c->deadline.cancel();
    c->idle_since = std::chrono::steady_clock::now();
    if (idle.size() >= config.max_idle_connections) {
      idle.front()->close();
      idle.erase(idle.begin());
    }
    idle.push_back(std::move(c));
  }
};

namespace {

using ImplPtr = std::shared_ptr<Client::Impl>;

Awaitable<Result<std::unique_ptr<Connection>>> connect(ImplPtr self, std::string op) {
  auto conn = std::make_unique<Connection>(self->executor, *self->tls);
  std::string where = fmt::format("{}:{}", self->host, self->port);
  error_code ec;
  std::vector<tcp::endpoint> endpoints;
  // IP literals skip the resolver, which would hop through its background thread.
  if (auto ip = asio::ip::make_address(self->host, ec); !ec) {
    endpoints.emplace_back(ip, self->port_number);
  } else {
    ec.clear();
    tcp::resolver resolver(self->executor);
    auto results = co_await resolver.async_resolve(self->host, self->port, use_ec(ec));
    if (ec) co_return std::unexpected(transport_error(op, fmt::format("resolve {}", where), ec));
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }

  conn->deadline.expires_after(self->config.connect_timeout);
  co_await conn->tcp().async_connect(endpoints, use_ec(ec));
  ec = conn->outcome(ec);
  if (ec) co_return std::unexpected(transport_error(op, fmt::format("connect {}", where), ec));
  conn->tcp().socket().set_option(tcp::no_delay(true), ec);

  SSL* ssl = conn->stream.native_handle();
  if (!self->verify_name_is_ip) SSL_set_tlsext_host_name(ssl, self->verify_name.c_str());
  if (!self->config.insecure_skip_tls_verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    int ok = self->verify_name_is_ip
                 ? X509_VERIFY_PARAM_set1_ip_asc(param, self->verify_name.c_str())
                 : X509_VERIFY_PARAM_set1_host(param, self->verify_name.c_str(), 0);
    if (ok != 1) {
      co_return std::unexpected(
          local_error(op, "BadRequest",
                      fmt::format("TLS server name \"{}\" is not usable", self->verify_name)));
    }
  }
  co_await conn->stream.async_handshake(ssl::stream_base::client, use_ec(ec));
  ec = conn->outcome(ec);
  if (ec) {
    co_return std::unexpected(transport_error(op, fmt::format("TLS handshake with {}", where), ec));
  }
  conn->deadline.cancel();
  co_return conn;
}

http::request<http::string_body> make_request(const Client::Impl& self, http::verb verb,
                                              const std::string& target, std::string body,
                                              const std::string& content_type) {
  http::request<http::string_body> req{verb, self.base_path + target, 11};
  self.set_common_headers(req);
  if (!content_type.empty()) req.set(http::field::content_type, content_type);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

// A connection with req written on it: a pooled one when there is one, else a new one. A
// pooled connection the server closed just before the write is retried once on a fresh one.
struct Sent {
  std::unique_ptr<Connection> conn;
  bool reused = false;
};

Awaitable<Result<Sent>> send_request(ImplPtr self, const http::request<http::string_body>& req,
                                     const std::string& op) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> conn = self->take_idle();
    const bool reused = conn != nullptr;
    if (!conn) {
      auto fresh = co_await connect(self, op);
      if (!fresh) co_return std::unexpected(std::move(fresh.error()));
      conn = std::move(*fresh);
    }
    conn->deadline.expires_after(self->config.request_timeout);
    error_code ec;
    co_await http::async_write(conn->stream, req, use_ec(ec));
    ec = conn->outcome(ec);
    if (ec) {
      if (reused && attempt == 0 && ec != beast::error::timeout) continue;
      co_return std::unexpected(transport_error(op, "write request", ec));
    }
    co_return Sent{std::move(conn), reused};
  }
}

// One exchange on a pooled or new connection; the connection goes back to the pool when the
// server keeps it alive.
Awaitable<Result<Response>> do_request(ImplPtr self, http::verb verb, std::string target,
                                       std::string body, std::string content_type) {
  std::string op = fmt::format("{} {}", http::to_string(verb), target);
  if (self->setup_error) {
    Error e = *self->setup_error;
    e.operation = op;
    co_return std::unexpected(std::move(e));
  }
  auto req = make_request(*self, verb, target, std::move(body), content_type);
  // A reused connection may have been closed by the server just before we wrote to it. Retry
  // once on a fresh connection when nothing came back, unless the method is not idempotent and
  // the request may have been processed.
  const bool idempotent = verb != http::verb::post && verb != http::verb::patch;
  for (int attempt = 0;; ++attempt) {
    auto sent = co_await send_request(self, req, op);
    if (!sent) co_return std::unexpected(std::move(sent.error()));
    std::unique_ptr<Connection> conn = std::move(sent->conn);
    const bool reused = sent->reused;
    error_code ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(self->config.max_response_bytes);
    co_await http::async_read(conn->stream, conn->buffer, parser, use_ec(ec));
    ec = conn->outcome(ec);
    if (ec) {
      if (reused && attempt == 0 && idempotent && !parser.got_some() &&
          ec != beast::error::timeout) {
        continue;
      }
      co_return std::unexpected(transport_error(op, "read response", ec));
    }
    auto& res = parser.get();
    Response out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    if (res.keep_alive()) {
      self->put_idle(std::move(conn));
    } else {
      conn->close();
    }
    co_return out;
  }
}

Awaitable<Result<json::value>> do_json(ImplPtr self, http::verb verb, std::string target,
                                       std::string body, std::string content_type) {
  auto r = co_await do_request(self, verb, target, std::move(body), std::move(content_type));
  std::string op = fmt::format("{} {}", http::to_string(verb), target);
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->status < 200 || r->status >= 300) co_return std::unexpected(error_from_response(*r, op));
  if (r->body.empty()) co_return json::value();
  auto v = parse_json(r->body);
  if (!v) co_return std::unexpected(local_error(op, "DecodeError", "decode reply: " + v.error()));
  co_return std::move(*v);
}

// A watch over one connection: the response header is read; the body is parsed as it arrives.
class HttpWatchStream final : public WatchStream {
 public:
  HttpWatchStream(ImplPtr impl, std::unique_ptr<Connection> conn, std::string op)
      : impl_(std::move(impl)),
        conn_(std::move(conn)),
        op_(std::move(op)),
        json_({}, parse_options()) {
    parser_.body_limit(boost::none);  // the body is consumed as it arrives
  }

  http::response_parser<http::string_body>& parser() { return parser_; }
  Connection& connection() { return *conn_; }

  Awaitable<Result<std::optional<WatchEvent>>> next() override {
    for (;;) {
      if (!pending_.empty()) {
        WatchEvent ev = std::move(pending_.front());
        pending_.pop_front();
        co_return std::optional<WatchEvent>(std::move(ev));
      }
      if (failed_) co_return std::unexpected(*failed_);
      if (cancelled_) {
        if (conn_) conn_->close();  // nothing of it is in flight here
        co_return std::unexpected(cancelled_error());
      }
      if (ended_) co_return std::optional<WatchEvent>();

      conn_->deadline.expires_after(impl_->config.watch_idle_timeout);
      error_code ec;
      co_await http::async_read_some(conn_->stream, conn_->buffer, parser_, use_ec(ec));
      ec = conn_->outcome(ec);
      conn_->deadline.cancel();
      if (cancelled_) continue;
      if (ec) {
        failed_ = transport_error(op_, "read watch stream", ec);
        conn_->close();
        continue;
      }
      std::string& body = parser_.get().body();
      feed(body);
      body.clear();
      if (parser_.is_done()) {
        ended_ = true;
        if (partial_ && !failed_) {
          failed_ = local_error(op_, "DecodeError", "watch stream ended inside an event");
        }
        if (!failed_ && parser_.get().keep_alive()) {
          impl_->put_idle(std::move(conn_));
        } else {
          conn_->close();
        }
      }
    }
  }

  // A read in flight ends (the connection is shut down, socket_deadline.h); next() then closes
  // the connection.
  void cancel() override {
    cancelled_ = true;
    if (conn_) shut_down(conn_->tcp().socket());
  }

 private:
  static json::parse_options parse_options() {
    json::parse_options opts;
    opts.max_depth = 64;
    return opts;
  }

  Error cancelled_error() const { return local_error(op_, "Cancelled", "watch cancelled"); }

  // Splits back-to-back JSON texts (with or without whitespace between them).
  void feed(std::string_view data) {
    std::size_t off = 0;
    while (off < data.size() && !failed_) {
      if (!partial_) {
        while (off < data.size() &&
               (data[off] == ' ' || data[off] == '\n' || data[off] == '\r' || data[off] == '\t')) {
          ++off;
        }
        if (off == data.size()) break;
        partial_ = true;
      }
      error_code ec;
      std::size_t n = json_.write_some(data.data() + off, data.size() - off, ec);
      off += n;
      if (ec) {
        failed_ = local_error(op_, "DecodeError", "decode watch event: " + ec.message());
        return;
      }
      if (json_.done()) {
        json::value v = json_.release();
        json_.reset();
        partial_ = false;
        decode(std::move(v));
      } else if (n == 0) {
        break;
      }
    }
  }

  void decode(json::value v) {
    json::object* obj = v.if_object();
    json::value* object = obj != nullptr ? obj->if_contains("object") : nullptr;
    std::string type(get_string(v, {"type"}));
    if (object == nullptr || type.empty()) {
      failed_ = local_error(op_, "DecodeError", "decode watch event: no type or object");
      return;
    }
    if (type == "ERROR") {
      Error e;
      e.code = static_cast<int>(get_int(*object, {"code"}, 500));
      e.reason = std::string(get_string(*object, {"reason"}, default_reason(e.code)));
      e.message = std::string(get_string(*object, {"message"}));
      e.operation = op_;
      e.status = std::move(*object);
      failed_ = std::move(e);
      return;
    }
    pending_.push_back(WatchEvent{std::move(type), std::move(*object)});
  }

  ImplPtr impl_;
  std::unique_ptr<Connection> conn_;
  std::string op_;
  http::response_parser<http::string_body> parser_;
  json::stream_parser json_;
  bool partial_ = false;  // json_ holds the start of an event
  bool ended_ = false;
  bool cancelled_ = false;
  std::optional<Error> failed_;  // reported after the events decoded before it
  std::deque<WatchEvent> pending_;
};

Awaitable<Result<std::shared_ptr<WatchStream>>> do_open_watch(ImplPtr self, std::string target) {
  std::string op = fmt::format("GET {}", target);
  if (self->setup_error) {
    Error e = *self->setup_error;
    e.operation = op;
    co_return std::unexpected(std::move(e));
  }
  auto req = make_request(*self, http::verb::get, target, {}, {});
  for (int attempt = 0;; ++attempt) {
    auto sent = co_await send_request(self, req, op);
    if (!sent) co_return std::unexpected(std::move(sent.error()));
    std::unique_ptr<Connection> conn = std::move(sent->conn);
    const bool reused = sent->reused;
    error_code ec;
    auto stream = std::make_shared<HttpWatchStream>(self, std::move(conn), op);
    Connection& c = stream->connection();
    auto& parser = stream->parser();
    co_await http::async_read_header(c.stream, c.buffer, parser, use_ec(ec));
    ec = c.outcome(ec);
    if (ec) {
      if (reused && attempt == 0 && !parser.got_some() && ec != beast::error::timeout) continue;
      co_return std::unexpected(transport_error(op, "read response", ec));
    }
    if (parser.get().result_int() != 200) {
      // Read the (bounded) error body; the connection is not reused.
      parser.body_limit(self->config.max_response_bytes);
      co_await http::async_read(c.stream, c.buffer, parser, use_ec(ec));
      Response r;
      r.status = static_cast<int>(parser.get().result_int());
      r.content_type = std::string(parser.get()[http::field::content_type]);
      r.body = std::move(parser.get().body());
      c.close();
      co_return std::unexpected(error_from_response(r, op));
    }
    co_return std::shared_ptr<WatchStream>(std::move(stream));
  }
}

Awaitable<Result<void>> do_watch(Awaitable<Result<std::shared_ptr<WatchStream>>> open,
                                 std::function<void(WatchEvent&&)> on_event) {
  auto stream = co_await std::move(open);
  if (!stream) co_return std::unexpected(std::move(stream.error()));
  for (;;) {
    auto ev = co_await (*stream)->next();
    if (!ev) co_return std::unexpected(std::move(ev.error()));
    if (!*ev) co_return Result<void>();
    on_event(std::move(**ev));
  }
}

// The object's name and namespace for update; an Error when the name is missing.
Result<std::pair<std::string, std::string>> object_key(const json::value& obj, std::string ns,
                                                       std::string_view op) {
  std::string name(get_string(obj, {"metadata", "name"}));
  if (name.empty()) {
    return std::unexpected(
        local_error(std::string(op), "BadRequest", "object has no metadata.name"));
  }
  if (ns.empty()) ns = std::string(get_string(obj, {"metadata", "namespace"}));
  return std::pair{std::move(ns), std::move(name)};
}

template <class T>
Awaitable<Result<T>> fail(Error e) {
  co_return std::unexpected(std::move(e));
}

}  // namespace

std::string Error::to_string() const {
  std::string out = operation;
  if (!out.empty()) out += ": ";
  if (code != 0) out += fmt::format("{} ", code);
  out += reason;
  if (!message.empty()) out += ": " + message;
  return out;
}

Config Config::from_kubeconfig(const kubeconfig::Config& kc) {
  Config c;
  c.server = kc.server;
  c.ca_pem = kc.ca_pem;
  c.client_cert_pem = kc.client_cert_pem;
  c.client_key_pem = kc.client_key_pem;
  c.token = kc.token;
  c.tls_server_name = kc.tls_server_name;
  c.insecure_skip_tls_verify = kc.insecure_skip_tls_verify;
  return c;
}

std::string_view content_type(PatchType type) {
  switch (type) {
    case PatchType::json:
      return "application/json-patch+json";
    case PatchType::merge:
      return "application/merge-patch+json";
    case PatchType::strategic:
      return "application/strategic-merge-patch+json";
    case PatchType::apply:
      return "application/apply-patch+yaml";
  }
  return "application/merge-patch+json";
}

std::string resource_path(const api::Resource& res, std::string_view ns, std::string_view name,
                          std::string_view subresource) {
  std::string p = res.group.empty() ? fmt::format("/api/{}", res.version)
                                    : fmt::format("/apis/{}/{}", res.group, res.version);
  if (res.namespaced && !ns.empty()) p += "/namespaces/" + percent_encode(ns);
  p += '/';
  p += res.plural;
  if (!name.empty()) p += "/" + percent_encode(name);
  if (!subresource.empty()) p += "/" + percent_encode(subresource);
  return p;
}

std::string query_string(const ListOptions& o) {
  std::string q;
  add_param(q, "labelSelector", o.label_selector);
  add_param(q, "fieldSelector", o.field_selector);
  if (o.limit > 0) add_param(q, "limit", std::to_string(o.limit));
  add_param(q, "continue", o.continue_token);
  add_param(q, "resourceVersion", o.resource_version);
  add_param(q, "resourceVersionMatch", o.resource_version_match);
  if (o.timeout_seconds > 0) add_param(q, "timeoutSeconds", std::to_string(o.timeout_seconds));
  return q;
}

Error error_from_response(const Response& r, std::string operation) {
  Error e;
  e.code = r.status;
  e.reason = std::string(default_reason(r.status));
  e.operation = std::move(operation);
  if (auto v = parse_json(r.body); v && get_string(*v, {"kind"}) == "Status") {
    if (auto reason = get_string(*v, {"reason"}); !reason.empty()) e.reason = std::string(reason);
    e.message = std::string(get_string(*v, {"message"}));
    e.status = std::move(*v);
    return e;
  }
  std::string_view body = r.body;
  while (!body.empty() && (body.back() == '\n' || body.back() == ' ')) body.remove_suffix(1);
  e.message = body.empty() ? fmt::format("the server responded with status {}", r.status)
                           : std::string(body.substr(0, kMaxErrorBody));
  return e;
}

Client::Client(executor_type executor, Config config)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config))) {}

const Client::executor_type& Client::get_executor() const { return impl_->executor; }
const Config& Client::config() const { return impl_->config; }
const std::optional<Error>& Client::setup_error() const { return impl_->setup_error; }

void Client::close_idle() {
  for (auto& c : impl_->idle) c->close();
  impl_->idle.clear();
}

std::size_t Client::idle_connections() const { return impl_->idle.size(); }

Awaitable<Result<Response>> Client::request(std::string method, std::string path_and_query,
                                            std::string body, std::string content_type) {
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    return fail<Response>(
        local_error(method + " " + path_and_query, "BadRequest", "unknown HTTP method"));
  }
  return do_request(impl_, verb, std::move(path_and_query), std::move(body),
                    std::move(content_type));
}

Awaitable<Result<json::value>> Client::get(const api::Resource& res, std::string ns,
                                           std::string name, ListOptions opts) {
  ListOptions q;
  q.resource_version = opts.resource_version;
  return do_json(impl_, http::verb::get, resource_path(res, ns, name) + query_string(q), {}, {});
}

Awaitable<Result<json::value>> Client::list(const api::Resource& res, std::string ns,
                                            ListOptions opts) {
  return do_json(impl_, http::verb::get, resource_path(res, ns) + query_string(opts), {}, {});
}

Awaitable<Result<json::value>> Client::create(const api::Resource& res, std::string ns,
                                              json::value object, WriteOptions opts) {
  if (ns.empty()) ns = std::string(get_string(object, {"metadata", "namespace"}));
  return do_json(impl_, http::verb::post, resource_path(res, ns) + write_query(opts),
                 to_json(object), "application/json");
}

Awaitable<Result<json::value>> Client::update(const api::Resource& res, std::string ns,
                                              json::value object, WriteOptions opts) {
  auto key = object_key(object, std::move(ns), "PUT");
  if (!key) return fail<json::value>(std::move(key.error()));
  return do_json(impl_, http::verb::put,
                 resource_path(res, key->first, key->second) + write_query(opts), to_json(object),
                 "application/json");
}

Awaitable<Result<json::value>> Client::update_status(const api::Resource& res, std::string ns,
                                                     json::value object, WriteOptions opts) {
  auto key = object_key(object, std::move(ns), "PUT");
  if (!key) return fail<json::value>(std::move(key.error()));
  return do_json(impl_, http::verb::put,
                 resource_path(res, key->first, key->second, "status") + write_query(opts),
                 to_json(object), "application/json");
}

Awaitable<Result<json::value>> Client::patch(const api::Resource& res, std::string ns,
                                             std::string name, PatchType type, std::string patch,
                                             WriteOptions opts, std::string subresource) {
  return do_json(impl_, http::verb::patch,
                 resource_path(res, ns, name, subresource) + write_query(opts), std::move(patch),
                 std::string(content_type(type)));
}

Awaitable<Result<json::value>> Client::remove(const api::Resource& res, std::string ns,
                                              std::string name, DeleteOptions opts) {
  json::object body{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!opts.propagation_policy.empty()) body["propagationPolicy"] = opts.propagation_policy;
  if (opts.grace_period_seconds) body["gracePeriodSeconds"] = *opts.grace_period_seconds;
  if (!opts.precondition_uid.empty() || !opts.precondition_resource_version.empty()) {
    json::object pre;
    if (!opts.precondition_uid.empty()) pre["uid"] = opts.precondition_uid;
    if (!opts.precondition_resource_version.empty()) {
      pre["resourceVersion"] = opts.precondition_resource_version;
    }
    body["preconditions"] = std::move(pre);
  }
  if (opts.dry_run) body["dryRun"] = json::array{"All"};
  return do_json(impl_, http::verb::delete_, resource_path(res, ns, name), json::serialize(body),
                 "application/json");
}

Awaitable<Result<std::shared_ptr<WatchStream>>> Client::open_watch(const api::Resource& res,
                                                                   std::string ns,
                                                                   ListOptions opts) {
  opts.limit = 0;
  opts.continue_token.clear();
  std::string q = query_string(opts);
  q += q.empty() ? '?' : '&';
  q += "watch=true&allowWatchBookmarks=true";
  return do_open_watch(impl_, resource_path(res, ns) + q);
}

Awaitable<Result<void>> Client::watch(const api::Resource& res, std::string ns, ListOptions opts,
                                      std::function<void(WatchEvent&&)> on_event) {
  return do_watch(open_watch(res, std::move(ns), std::move(opts)), std::move(on_event));
}

}  // namespace podwarp::client
