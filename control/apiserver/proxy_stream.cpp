#include "apiserver/proxy_stream.h"

#include "podwarp/socket_deadline.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <memory>

#include "apiserver/status.h"
#include "podwarp/log.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kSetupTimeout = std::chrono::seconds(10);
constexpr std::size_t kChunk = 16 * 1024;

void close_lowest(TlsStream& s) {
  boost::system::error_code ec;
  beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(s).socket().close(ec);
}

// Copies bytes from one TLS stream to the other until either fails or ends.
asio::awaitable<void> pump(TlsStream& from, TlsStream& to) {
  std::array<char, kChunk> buf;
  boost::system::error_code ec;
  while (true) {
    std::size_t n = co_await from.async_read_some(asio::buffer(buf),
                                                  asio::redirect_error(asio::use_awaitable, ec));
    if (n > 0) {
      boost::system::error_code wec;
      co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                 asio::redirect_error(asio::use_awaitable, wec));
      if (wec) break;
    }
    if (ec) break;
  }
}

// Runs `a` here and `b` beside it; when either ends both connections are shut down (which
// ends the other's pending read or write without closing a socket that has an operation in
// flight, see podwarp/socket_deadline.h), and once both ended both are closed.
asio::awaitable<void> both_until_one_ends(TlsStream& x, TlsStream& y,
                                          asio::awaitable<void> a, asio::awaitable<void> b) {
  auto ex = co_await asio::this_coro::executor;
  auto state = std::make_shared<std::pair<bool, asio::steady_timer>>(
      false, asio::steady_timer(ex, asio::steady_timer::time_point::max()));
  auto& xs = beast::get_lowest_layer(x).socket();
  auto& ys = beast::get_lowest_layer(y).socket();
  asio::co_spawn(ex, std::move(b), [state, &xs, &ys](std::exception_ptr) {
    shut_down(xs);
    shut_down(ys);
    state->first = true;
    state->second.cancel();
  });
  try {
    co_await std::move(a);
  } catch (const std::exception& e) {
    log::warn("node proxy: {}", e.what());
  }
  shut_down(xs);
  shut_down(ys);
  while (!state->first) {
    boost::system::error_code ec;
    co_await state->second.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  close_lowest(x);  // both have returned: nothing is in flight
  close_lowest(y);
}

// Waits until the client sends something or closes (a log stream's client only closes).
asio::awaitable<void> until_client_closes(TlsStream& client) {
  std::array<char, 512> buf;
  boost::system::error_code ec;
  while (!ec) {
    co_await client.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Streams the body of the node's response to the client as HTTP chunks.
asio::awaitable<void> relay_body(TlsStream& node, beast::flat_buffer& node_buffer,
                                 http::response_parser<http::buffer_body>& parser,
                                 TlsStream& client) {
  std::array<char, kChunk> buf;
  boost::system::error_code ec;
  while (!parser.is_done()) {
    parser.get().body().data = buf.data();
    parser.get().body().size = buf.size();
    co_await http::async_read_some(node, node_buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    const std::size_t n = buf.size() - parser.get().body().size;
    if (n > 0) {
      std::string head = fmt::format("{:x}\r\n", n);
      std::array<asio::const_buffer, 3> out = {asio::buffer(head), asio::buffer(buf.data(), n),
                                               asio::buffer("\r\n", 2)};
      boost::system::error_code wec;
      co_await asio::async_write(client, out, asio::redirect_error(asio::use_awaitable, wec));
      if (wec) co_return;
    }
    if (ec) break;
  }
  boost::system::error_code wec;
  co_await asio::async_write(client, asio::buffer("0\r\n\r\n", 5),
                             asio::redirect_error(asio::use_awaitable, wec));
}

asio::awaitable<unsigned> fail(TlsStream& client, unsigned version, const ApiError& err) {
  http::response<http::string_body> res{static_cast<http::status>(err.code), version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-cache, private");
  res.keep_alive(false);
  res.body() = to_json(err.to_json());
  res.prepare_payload();
  // Deadlines shut down, never close with a write in flight (podwarp/socket_deadline.h).
  SocketDeadline<tcp::socket> deadline(beast::get_lowest_layer(client).socket());
  deadline.expires_after(kSetupTimeout);
  boost::system::error_code ec;
  co_await http::async_write(client, res, asio::redirect_error(asio::use_awaitable, ec));
  co_return static_cast<unsigned>(err.code);
}

bool hop_by_hop(http::field f, std::string_view name, bool upgrade) {
  if (upgrade && (f == http::field::connection || f == http::field::upgrade)) return false;
  return f == http::field::connection || f == http::field::keep_alive ||
         f == http::field::proxy_authorization || f == http::field::te ||
         f == http::field::trailer || f == http::field::transfer_encoding ||
         f == http::field::upgrade || f == http::field::authorization ||
         f == http::field::host || f == http::field::content_length ||
         std::string_view(name).starts_with("Impersonate-");
}

// The node end of a relay: its TLS stream and the parser of its response.
struct NodeUpstream {
  NodeUpstream(const asio::any_io_executor& ex, asio::ssl::context& tls) : stream(ex, tls) {
    parser.body_limit(boost::none);
  }
  TlsStream stream;
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
};

// Connects to the node (verifying its serving certificate for its address), forwards the
// request (end-to-end headers, plus Upgrade/Connection for an upgrade) and reads the response
// header. Each step has kSetupTimeout; none is left armed afterwards.
asio::awaitable<std::optional<ApiError>> open_node(NodeUpstream& up,
                                                   const http::request<http::string_body>& request,
                                                   const NodeRequest& node, bool upgrade) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(node.host, std::to_string(node.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return service_unavailable(
        fmt::format("error dialing backend: resolve {}: {}", node.host, ec.message()));
  }
  SocketDeadline<tcp::socket> setup_deadline(beast::get_lowest_layer(up.stream).socket());
  setup_deadline.expires_after(kSetupTimeout);
  co_await beast::get_lowest_layer(up.stream).async_connect(
      endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    SSL_set_tlsext_host_name(up.stream.native_handle(), node.host.c_str());
    up.stream.set_verify_callback(asio::ssl::host_name_verification(node.host));
    co_await up.stream.async_handshake(asio::ssl::stream_base::client,
                                       asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    co_return service_unavailable(fmt::format("error dialing backend: dial tcp {}:{}: {}",
                                              node.host, node.port, ec.message()));
  }
  http::request<http::string_body> out{request.method(), node.target, 11};
  for (const auto& f : request) {
    if (hop_by_hop(f.name(), f.name_string(), upgrade)) continue;
    out.insert(f.name_string(), f.value());
  }
  out.set(http::field::host, fmt::format("{}:{}", node.host, node.port));
  if (!upgrade) out.keep_alive(false);
  out.body() = request.body();
  out.prepare_payload();
  co_await http::async_write(up.stream, out, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    co_await http::async_read_header(up.stream, up.buffer, up.parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    close_lowest(up.stream);
    co_return service_unavailable(fmt::format("error talking to node {}:{}: {}", node.host,
                                              node.port, ec.message()));
  }
  co_return std::nullopt;
}

}  // namespace

asio::awaitable<unsigned> relay_to_node(TlsStream& client, beast::flat_buffer& client_buffer,
                                        const http::request<http::string_body>& request,
                                        const NodeRequest& node, asio::ssl::context& node_tls) {
  auto ex = co_await asio::this_coro::executor;
  const unsigned version = request.version();
  const bool upgrade = request.find(http::field::upgrade) != request.end();
  boost::system::error_code ec;
  NodeUpstream up(ex, node_tls);
  if (auto err = co_await open_node(up, request, node, upgrade)) {
    co_return co_await fail(client, version, *err);
  }
  TlsStream& upstream = up.stream;
  beast::flat_buffer& node_buffer = up.buffer;
  http::response_parser<http::buffer_body>& parser = up.parser;
  // From here on the exchange lasts as long as both sides want.
  const auto& head = parser.get();
  const unsigned status = head.result_int();

  if (status == 101) {
    std::string raw = fmt::format("HTTP/1.1 101 {}\r\n", std::string_view(head.reason()));
    for (const auto& f : head) {
      raw += fmt::format("{}: {}\r\n", std::string_view(f.name_string()), std::string_view(f.value()));
    }
    raw += "\r\n";
    co_await asio::async_write(client, asio::buffer(raw), asio::redirect_error(asio::use_awaitable, ec));
    // Bytes that arrived behind the headers on either side go first.
    if (!ec && node_buffer.size() > 0) {
      co_await asio::async_write(client, node_buffer.data(), asio::redirect_error(asio::use_awaitable, ec));
      node_buffer.consume(node_buffer.size());
    }
    if (!ec && client_buffer.size() > 0) {
      co_await asio::async_write(upstream, client_buffer.data(), asio::redirect_error(asio::use_awaitable, ec));
      client_buffer.consume(client_buffer.size());
    }
    if (!ec) {
      co_await both_until_one_ends(client, upstream, pump(upstream, client), pump(client, upstream));
    } else {
      close_lowest(upstream);
    }
    co_return status;
  }

  // A plain response: the node's status and end-to-end headers, the body as chunks.
  std::string raw = fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view(head.reason()));
  for (const auto& f : head) {
    if (hop_by_hop(f.name(), f.name_string(), false)) continue;
    raw += fmt::format("{}: {}\r\n", std::string_view(f.name_string()), std::string_view(f.value()));
  }
  raw += "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  co_await asio::async_write(client, asio::buffer(raw), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    close_lowest(upstream);
    co_return status;
  }
  co_await both_until_one_ends(client, upstream, relay_body(upstream, node_buffer, parser, client),
                               until_client_closes(client));
  co_return status;
}

asio::awaitable<std::expected<NodeStream, ApiError>> open_node_stream(
    const http::request<http::string_body>& request, const NodeRequest& node,
    asio::ssl::context& node_tls) {
  auto ex = co_await asio::this_coro::executor;
  auto up = std::make_shared<NodeUpstream>(ex, node_tls);
  if (auto err = co_await open_node(*up, request, node, false)) co_return std::unexpected(*err);
  NodeStream out;
  const auto& head = up->parser.get();
  out.status = head.result_int();
  for (const auto& f : head) {
    if (hop_by_hop(f.name(), f.name_string(), false)) continue;
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  out.body = std::make_shared<WatchFeed>(ex);
  out.body->timeout = std::chrono::hours(24 * 365);  // as long as the node sends (logs -f)
  auto finished = std::make_shared<bool>(false);
  out.body->on_finish = [up, finished] {
    *finished = true;
    shut_down(beast::get_lowest_layer(up->stream).socket());
  };
  asio::co_spawn(ex, [up, feed = out.body, finished]() -> asio::awaitable<void> {
    std::array<char, kChunk> buf;
    boost::system::error_code ec;
    asio::steady_timer backoff(co_await asio::this_coro::executor);
    while (!up->parser.is_done() && !*finished) {
      if (feed->queued() >= 64) {  // the client reads slower than the node writes
        backoff.expires_after(std::chrono::milliseconds(5));
        co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      up->parser.get().body().data = buf.data();
      up->parser.get().body().size = buf.size();
      co_await http::async_read_some(up->stream, up->buffer, up->parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t n = buf.size() - up->parser.get().body().size;
      if (n > 0) feed->push(std::make_shared<const std::string>(http_chunk({buf.data(), n})));
      if (ec) break;
    }
    feed->close();
    close_lowest(up->stream);  // nothing is in flight on it now
  }, asio::detached);
  co_return out;
}

}  // namespace podwarp::apiserver
