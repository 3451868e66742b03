// The Beast transport: HTTP/1.1 over TCP or TLS, idle keep-alive connections pooled per origin.
#include "images/http_transport.h"

#include "podwarp/socket_deadline.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <map>
#include <vector>

namespace podwarp::images {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

auto use_ec(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

constexpr std::size_t kChunk = 256 * 1024;

// Timeouts shut the connection down and never close it with an operation in flight
// (podwarp/socket_deadline.h: Beast's expires_after would, which this Boost's io_uring backend
// does not survive).
struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  std::unique_ptr<SocketDeadline<asio::ip::tcp::socket>> deadline;  // after the stream
  beast::flat_buffer buffer;

  beast::tcp_stream& tcp() { return plain ? *plain : beast::get_lowest_layer(*tls); }
  error_code outcome(error_code ec) const { return deadline->outcome(ec); }
};

struct Target {
  bool https = false;
  std::string host;  // to resolve (IPv6 without brackets)
  std::string port;
  std::string authority;  // Host header
  std::string target;     // path?query
  bool host_is_ip = false;
  std::string origin() const { return fmt::format("{}://{}", https ? "https" : "http", authority); }
};

Result<Target> parse_target(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return fail(ErrorKind::kNetwork, fmt::format("bad URL \"{}\"", url));
  Target t;
  if (u->scheme() == "https") {
    t.https = true;
  } else if (u->scheme() != "http") {
    return fail(ErrorKind::kNetwork, fmt::format("URL \"{}\": scheme must be http or https", url));
  }
  t.host = u->host_address();
  if (t.host.empty()) return fail(ErrorKind::kNetwork, fmt::format("URL \"{}\": no host", url));
  t.host_is_ip = u->host_type() == boost::urls::host_type::ipv4 ||
                 u->host_type() == boost::urls::host_type::ipv6;
  t.port = u->has_port() ? std::string(u->port()) : (t.https ? "443" : "80");
  t.authority = std::string(u->encoded_host_and_port());
  t.target = std::string(u->encoded_path());
  if (t.target.empty()) t.target = "/";
  if (u->has_query()) t.target += "?" + std::string(u->encoded_query());
  return t;
}

Error net_error(const std::string& what, const error_code& ec) {
  return Error{ErrorKind::kNetwork, fmt::format("{}: {}", what, ec.message())};
}

class BeastTransport final : public HttpTransport {
 public:
  BeastTransport(asio::any_io_executor ex, TransportOptions opts)
      : executor_(std::move(ex)), opts_(std::move(opts)), tls_(ssl::context::tls_client) {
    SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
    error_code ec;
    tls_.set_verify_mode(ssl::verify_peer, ec);
    tls_.set_default_verify_paths(ec);
    if (ec) tls_error_ = fmt::format("load system CA certificates: {}", ec.message());
  }

  Awaitable<Result<HttpResponse>> fetch(HttpRequest request, BodySink sink) override {
    auto target = parse_target(request.url);
    if (!target) co_return std::unexpected(std::move(target.error()));
    const std::string op = fmt::format("{} {}", request.method, request.url);
    if (target->https && !tls_error_.empty()) co_return fail(ErrorKind::kNetwork, op + ": " + tls_error_);

    http::request<http::empty_body> req{http::string_to_verb(request.method), target->target, 11};
    req.set(http::field::host, target->authority);
    req.set(http::field::user_agent, opts_.user_agent);
    for (const auto& [k, v] : request.headers) req.set(k, v);
    req.keep_alive(true);

    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> conn = take_idle(target->origin());
      const bool reused = conn != nullptr;
      if (!conn) {
        auto fresh = co_await connect(*target, op);
        if (!fresh) co_return std::unexpected(std::move(fresh.error()));
        conn = std::move(*fresh);
      }
      error_code ec;
      conn->deadline->expires_after(opts_.read_idle_timeout);
      if (conn->plain) {
        co_await http::async_write(*conn->plain, req, use_ec(ec));
      } else {
        co_await http::async_write(*conn->tls, req, use_ec(ec));
      }
      ec = conn->outcome(ec);
      if (ec) {
        if (reused && attempt == 0) continue;
        co_return std::unexpected(net_error(op + ": write request", ec));
      }
      bool got_some = false;
      bool keep_alive = false;
      // (No co_await inside ?: — g++ 12 miscompiles that.)
      Result<HttpResponse> r;
      if (conn->plain) {
        r = co_await exchange(*conn->plain, *conn, op, sink, got_some, keep_alive);
      } else {
        r = co_await exchange(*conn->tls, *conn, op, sink, got_some, keep_alive);
      }
      if (!r && reused && attempt == 0 && !got_some && r.error().kind == ErrorKind::kNetwork) {
        continue;  // a pooled connection the server had closed
      }
      if (r && keep_alive) put_idle(target->origin(), std::move(conn));
      co_return r;
    }
  }

 private:
  Awaitable<Result<std::unique_ptr<Connection>>> connect(const Target& t, const std::string& op) {
    auto conn = std::make_unique<Connection>();
    if (t.https) {
      conn->tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(executor_, tls_);
    } else {
      conn->plain = std::make_unique<beast::tcp_stream>(executor_);
    }
    conn->deadline = std::make_unique<SocketDeadline<tcp::socket>>(conn->tcp().socket());
    error_code ec;
    std::vector<tcp::endpoint> endpoints;
    if (auto ip = asio::ip::make_address(t.host, ec); !ec) {
      endpoints.emplace_back(ip, static_cast<unsigned short>(std::stoi(t.port)));
    } else {
      ec.clear();
      tcp::resolver resolver(executor_);
      auto results = co_await resolver.async_resolve(t.host, t.port, use_ec(ec));
      if (ec) co_return std::unexpected(net_error(fmt::format("{}: resolve {}", op, t.host), ec));
      for (const auto& e : results) endpoints.push_back(e.endpoint());
    }
    conn->deadline->expires_after(opts_.connect_timeout);
    co_await conn->tcp().async_connect(endpoints, use_ec(ec));
    ec = conn->outcome(ec);
    if (ec) co_return std::unexpected(net_error(fmt::format("{}: connect {}", op, t.authority), ec));
    conn->tcp().socket().set_option(tcp::no_delay(true), ec);
    if (conn->tls) {
      SSL* s = conn->tls->native_handle();
      if (!t.host_is_ip) SSL_set_tlsext_host_name(s, t.host.c_str());
      X509_VERIFY_PARAM* param = SSL_get0_param(s);
      if (t.host_is_ip) {
        X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_host(param, t.host.c_str(), 0);
      }
      co_await conn->tls->async_handshake(ssl::stream_base::client, use_ec(ec));
      ec = conn->outcome(ec);
      if (ec) {
        co_return std::unexpected(
            net_error(fmt::format("{}: TLS handshake with {}", op, t.authority), ec));
      }
    }
    co_return conn;
  }

  template <class Stream>
  Awaitable<Result<HttpResponse>> exchange(Stream& stream, Connection& conn, const std::string& op,
                                           const BodySink& sink, bool& got_some,
                                           bool& keep_alive) {
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    error_code ec;
    conn.deadline->expires_after(opts_.read_idle_timeout);
    co_await http::async_read_header(stream, conn.buffer, parser, use_ec(ec));
    ec = conn.outcome(ec);
    got_some = parser.got_some();
    if (ec) co_return std::unexpected(net_error(op + ": read response", ec));
    HttpResponse out;
    auto& msg = parser.get();
    out.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    const bool to_sink = out.status == 200 && sink;
    std::vector<char> chunk(kChunk);
    while (!parser.is_done()) {
      msg.body().data = chunk.data();
      msg.body().size = chunk.size();
      conn.deadline->expires_after(opts_.read_idle_timeout);
      co_await http::async_read(stream, conn.buffer, parser, use_ec(ec));
      if (ec == http::error::need_buffer) ec = {};
      ec = conn.outcome(ec);
      if (ec) co_return std::unexpected(net_error(op + ": read body", ec));
      std::string_view data(chunk.data(), chunk.size() - msg.body().size);
      if (data.empty()) continue;
      if (to_sink) {
        if (auto r = sink(data); !r) co_return std::unexpected(std::move(r.error()));
      } else if (out.body.size() + data.size() <= opts_.max_buffered_body) {
        out.body.append(data);
      } else {
        co_return fail(ErrorKind::kNetwork, op + ": reply body too large");
      }
    }
    keep_alive = msg.keep_alive();
    co_return out;
  }

  std::unique_ptr<Connection> take_idle(const std::string& origin) {
    auto it = idle_.find(origin);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    return c;
  }

  void put_idle(const std::string& origin, std::unique_ptr<Connection> c) {
    if (c->buffer.size() != 0) return;
    c->deadline->cancel();
    auto& list = idle_[origin];
    if (list.size() >= opts_.max_idle_per_origin) list.erase(list.begin());
    list.push_back(std::move(c));
  }

  asio::any_io_executor executor_;
  TransportOptions opts_;
  ssl::context tls_;
  std::string tls_error_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

}  // namespace

std::unique_ptr<HttpTransport> make_http_transport(asio::any_io_executor executor,
                                                   TransportOptions options) {
  return std::make_unique<BeastTransport>(std::move(executor), std::move(options));
}

}  // namespace podwarp::images
