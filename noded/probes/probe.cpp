#include "probes/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <thread>

#include "probes/grpc_check.h"

namespace podwarp::noded::probes {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// Port: an int, or a name resolved against the container's ports (IntOrString).
std::expected<int, std::string> parse_port(const json::value* p, const json::value& container,
                                           std::string_view field) {
  if (p == nullptr) return std::unexpected(fmt::format("{}: Required value", field));
  if (p->is_int64()) {
    auto n = p->as_int64();
    if (n < 1 || n > 65535)
      return std::unexpected(fmt::format("{}: Invalid value: {}: must be between 1 and 65535", field, n));
    return static_cast<int>(n);
  }
  if (p->is_string()) {
    std::string_view name = p->as_string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string_view::npos)
      return std::stoi(std::string(name));
    if (auto* ports = find_path(container, {"ports"}); ports && ports->is_array()) {
      for (const auto& cp : ports->as_array()) {
        if (get_string(cp, {"name"}) == name) {
          auto n = get_int(cp, {"containerPort"}, 0);
          if (n >= 1 && n <= 65535) return static_cast<int>(n);
        }
      }
    }
    return std::unexpected(fmt::format("{}: no container port named \"{}\"", field, name));
  }
  return std::unexpected(fmt::format("{}: must be an integer or a port name", field));
}

std::expected<std::vector<std::string>, std::string> string_list(const json::value* v,
                                                                 std::string_view field) {
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (!v->is_array()) return std::unexpected(fmt::format("{}: must be a list of strings", field));
  for (const auto& e : v->as_array()) {
    if (!e.is_string()) return std::unexpected(fmt::format("{}: must be a list of strings", field));
    out.emplace_back(e.as_string());
  }
  return out;
}

}  // namespace

std::expected<Handler, std::string> parse_handler(const json::value& v,
                                                  const json::value& container) {
  if (!v.is_object()) return std::unexpected("must be an object");
  Handler h;
  int kinds = 0;
  if (auto* e = find_path(v, {"exec"})) {
    ++kinds;
    h.kind = HandlerKind::kExec;
    auto cmd = string_list(find_path(*e, {"command"}), "exec.command");
    if (!cmd) return std::unexpected(cmd.error());
    if (cmd->empty()) return std::unexpected("exec.command: Required value");
    h.command = std::move(*cmd);
  }
  if (auto* g = find_path(v, {"httpGet"})) {
    ++kinds;
    h.kind = HandlerKind::kHttpGet;
    auto port = parse_port(find_path(*g, {"port"}), container, "httpGet.port");
    if (!port) return std::unexpected(port.error());
    h.port = *port;
    h.host = get_string(*g, {"host"});
    h.path = get_string(*g, {"path"}, "/");
    if (h.path.empty() || h.path[0] != '/') h.path = "/" + h.path;
    h.scheme = get_string(*g, {"scheme"}, "HTTP");
    if (h.scheme != "HTTP" && h.scheme != "HTTPS")
      return std::unexpected(fmt::format("httpGet.scheme: Unsupported value: \"{}\"", h.scheme));
    if (auto* hs = find_path(*g, {"httpHeaders"}); hs && hs->is_array()) {
      for (const auto& e : hs->as_array())
        h.headers.push_back({std::string(get_string(e, {"name"})), std::string(get_string(e, {"value"}))});
    }
  }
  if (auto* t = find_path(v, {"tcpSocket"})) {
    ++kinds;
    h.kind = HandlerKind::kTcpSocket;
    auto port = parse_port(find_path(*t, {"port"}), container, "tcpSocket.port");
    if (!port) return std::unexpected(port.error());
    h.port = *port;
    h.host = get_string(*t, {"host"});
  }
  if (auto* g = find_path(v, {"grpc"})) {
    ++kinds;
    h.kind = HandlerKind::kGrpc;
    auto* p = find_path(*g, {"port"});
    if (p == nullptr || !p->is_int64()) return std::unexpected("grpc.port: Required value");
    h.port = static_cast<int>(p->as_int64());
    h.grpc_service = get_string(*g, {"service"});
  }
  if (auto* s = find_path(v, {"sleep"})) {
    ++kinds;
    h.kind = HandlerKind::kSleep;
    h.sleep_seconds = static_cast<int>(get_int(*s, {"seconds"}, 0));
  }
  if (kinds == 0) return std::unexpected("must specify a handler type");
  if (kinds > 1) return std::unexpected("may not specify more than 1 handler type");
  return h;
}

std::expected<ProbeSpec, std::string> parse_probe(const json::value& v,
                                                  const json::value& container) {
  auto h = parse_handler(v, container);
  if (!h) return std::unexpected(h.error());
  ProbeSpec p;
  p.handler = std::move(*h);
  p.initial_delay_seconds = static_cast<int>(get_int(v, {"initialDelaySeconds"}, 0));
  p.period_seconds = static_cast<int>(get_int(v, {"periodSeconds"}, 10));
  p.timeout_seconds = static_cast<int>(get_int(v, {"timeoutSeconds"}, 1));
  p.success_threshold = static_cast<int>(get_int(v, {"successThreshold"}, 1));
  p.failure_threshold = static_cast<int>(get_int(v, {"failureThreshold"}, 3));
  if (auto* g = find_path(v, {"terminationGracePeriodSeconds"}); g && g->is_int64())
    p.termination_grace_period_seconds = g->as_int64();
  if (p.initial_delay_seconds < 0) return std::unexpected("initialDelaySeconds: must be greater than or equal to 0");
  if (p.period_seconds < 1) return std::unexpected("periodSeconds: must be greater than or equal to 1");
  if (p.timeout_seconds < 1) return std::unexpected("timeoutSeconds: must be greater than or equal to 1");
  if (p.success_threshold < 1) return std::unexpected("successThreshold: must be greater than or equal to 1");
  if (p.failure_threshold < 1) return std::unexpected("failureThreshold: must be greater than or equal to 1");
  return p;
}

std::expected<int, std::string> socket_in_netns(const std::string& netns_path, int family) {
  auto make = [family]() { return ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); };
  if (netns_path.empty()) {
    int fd = make();
    if (fd < 0) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
    return fd;
  }
  // setns(CLONE_NEWNET) applies to the calling thread only: a short-lived thread enters the
  // namespace, creates the socket (which stays in that namespace for its life) and exits.
  std::expected<int, std::string> result = std::unexpected("not run");
  std::thread t([&] {
    int nsfd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      result = std::unexpected(fmt::format("open {}: {}", netns_path, std::strerror(errno)));
      return;
    }
    if (::setns(nsfd, CLONE_NEWNET) != 0) {
      result = std::unexpected(fmt::format("setns {}: {}", netns_path, std::strerror(errno)));
      ::close(nsfd);
      return;
    }
    ::close(nsfd);
    int fd = make();
    if (fd < 0)
      result = std::unexpected(fmt::format("socket in {}: {}", netns_path, std::strerror(errno)));
    else
      result = fd;
  });
  t.join();
  return result;
}

int parse_http_status_line(std::string_view line) {
  if (!line.starts_with("HTTP/")) return -1;
  auto sp = line.find(' ');
  if (sp == std::string_view::npos || line.size() < sp + 4) return -1;
  int code = 0;
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (line[i] < '0' || line[i] > '9') return -1;
    code = code * 10 + (line[i] - '0');
  }
  return code;
}

namespace {

std::string probe_host(const Handler& h, const Target& target) {
  std::string host = h.host.empty() ? target.pod_ip : h.host;
  return host.empty() ? "127.0.0.1" : host;
}

// "ip:port" ("[ip6]:port").
std::string host_port(const std::string& host, int port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

// A TCP connection to host:port from inside the target's netns (socket made by
// socket_in_netns, connected on the io_context). Errors are "dial tcp ...: connect: ...".
asio::awaitable<std::expected<asio::ip::tcp::socket, std::string>> dial(const std::string& host, int port,
                                                                       const Target& target) {
  auto ex = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) co_return std::unexpected(fmt::format("invalid host \"{}\" (names are not resolved)", host));
  auto fd = socket_in_netns(target.netns_path, addr.is_v6() ? AF_INET6 : AF_INET);
  if (!fd) co_return std::unexpected(fd.error());
  asio::ip::tcp::socket sock(ex);
  sock.assign(addr.is_v6() ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), *fd, ec);
  if (ec) {
    ::close(*fd);
    co_return std::unexpected(ec.message());
  }
  asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
  auto [cec] = co_await sock.async_connect(ep, asio::as_tuple(asio::use_awaitable));
  if (cec) co_return std::unexpected(fmt::format("dial tcp {}: connect: {}", host_port(host, port), cec.message()));
  co_return std::move(sock);
}

// GET h.path over a connected stream (plain socket or TLS stream); success: 200 <= status < 400
// (redirects are not followed: a 3xx counts as success).
template <class Stream>
asio::awaitable<Outcome> http_get(Stream& s, const Handler& h, const std::string& where) {
  std::string req = fmt::format(
      "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kube-probe/1.29\r\nAccept: */*\r\n"
      "Connection: close\r\n",
      h.path, where);
  for (const auto& hd : h.headers) req += fmt::format("{}: {}\r\n", hd.name, hd.value);
  req += "\r\n";
  auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), asio::as_tuple(asio::use_awaitable));
  (void)wn;
  if (wec) co_return Outcome{false, fmt::format("write to {}: {}", where, wec.message())};
  std::string buf;
  char chunk[1024];
  while (buf.find("\r\n") == std::string::npos && buf.size() < 8192) {
    auto [rec, n] = co_await s.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    buf.append(chunk, n);
    if (rec) break;
  }
  auto eol = buf.find("\r\n");
  int code = parse_http_status_line(std::string_view(buf).substr(0, eol == std::string::npos ? buf.size() : eol));
  if (code < 0) co_return Outcome{false, fmt::format("malformed HTTP response from {}", where)};
  if (code >= 200 && code < 400) co_return Outcome{true, ""};
  co_return Outcome{false, fmt::format("HTTP probe failed with statuscode: {}", code)};
}

asio::awaitable<Outcome> connect_and_maybe_get(const Handler& h, const Target& target) {
  std::string host = probe_host(h, target);
  std::string where = host_port(host, h.port);
  auto sock = co_await dial(host, h.port, target);
  if (!sock) co_return Outcome{false, sock.error()};
  if (h.kind == HandlerKind::kTcpSocket) co_return Outcome{true, ""};
  if (h.scheme != "HTTPS") co_return co_await http_get(*sock, h, where);
  // HTTPS as the kubelet: TLS without certificate verification; SNI only for a DNS name
  // (never for an IP literal, RFC 6066 and Go's crypto/tls).
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<asio::ip::tcp::socket> tls(std::move(*sock), ctx);
  boost::system::error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (ec) SSL_set_tlsext_host_name(tls.native_handle(), host.c_str());
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
  if (hec) co_return Outcome{false, fmt::format("TLS handshake with {}: {}", where, hec.message())};
  co_return co_await http_get(tls, h, where);
}

// Runs the blocking gRPC check on its own thread (grpc_check.h) and resumes on this
// coroutine's executor with the outcome; the io_context never blocks.
asio::awaitable<Outcome> grpc_check(int fd, std::string authority, std::string service,
                                    std::chrono::milliseconds timeout, std::chrono::milliseconds reported) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Outcome)>(
      [&](auto handler) {
        auto hp = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = std::make_shared<asio::executor_work_guard<asio::any_io_executor>>(ex);
        grpc_health_check_on_fd(fd, authority, service, timeout, reported, [hp, work, ex](Outcome o) {
          asio::post(ex, [hp, work, o = std::move(o)]() mutable { (*hp)(std::move(o)); });
        });
      },
      asio::use_awaitable);
}

asio::awaitable<Outcome> run_grpc(const Handler& h, const Target& target, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto start = std::chrono::steady_clock::now();
  std::string host = probe_host(h, target);
  std::string where = host_port(host, h.port);
  asio::steady_timer t(ex, timeout);
  auto r = co_await (dial(host, h.port, target) || t.async_wait(asio::use_awaitable));
  if (r.index() == 1)
    co_return Outcome{false, fmt::format("timeout: failed to connect service \"{}\" within {}: context deadline exceeded",
                                         where, go_duration(timeout))};
  auto& sock = std::get<0>(r);
  if (!sock)
    co_return Outcome{false, fmt::format("timeout: failed to connect service \"{}\" within {}: {}", where,
                                         go_duration(timeout), sock.error())};
  int fd = ::fcntl(sock->native_handle(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) co_return Outcome{false, fmt::format("dup socket: {}", std::strerror(errno))};
  boost::system::error_code ec;
  sock->close(ec);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(timeout - (std::chrono::steady_clock::now() - start));
  if (left < std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
  co_return co_await grpc_check(fd, where, h.grpc_service, left, timeout);
}

}  // namespace

asio::awaitable<Outcome> run_handler(const Handler& h, const Target& target,
                                     std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  switch (h.kind) {
    case HandlerKind::kExec:
      if (!target.exec) co_return Outcome{false, "exec handler unavailable"};
      co_return co_await target.exec(h.command, timeout);
    case HandlerKind::kSleep: {
      asio::steady_timer t(ex, std::chrono::seconds(h.sleep_seconds));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return Outcome{true, ""};
    }
    case HandlerKind::kGrpc:
      // Bounded by the connect timer and the rpc deadline (not raced: the rpc thread must finish).
      co_return co_await run_grpc(h, target, timeout);
    case HandlerKind::kHttpGet:
    case HandlerKind::kTcpSocket: {
      asio::steady_timer t(ex, timeout);
      auto r = co_await (connect_and_maybe_get(h, target) || t.async_wait(asio::use_awaitable));
      if (r.index() == 0) co_return std::get<0>(r);
      co_return Outcome{false, fmt::format("probe timed out after {}ms", timeout.count())};
    }
  }
  co_return Outcome{false, "unknown handler"};
}

}  // namespace podwarp::noded::probes
