#include "dns/server.h"


#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "dns/responder.h"
#include "podwarp/log.h"
#include "podwarp/socket_deadline.h"
#include "podwarp/metrics.h"
#include "podwarp/random.h"

namespace podwarp::noded::dns {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
template <class T>
using Awaitable = asio::awaitable<T>;
using Bytes = std::vector<std::uint8_t>;

namespace {

struct Metrics {
  metrics::Counter& requests = metrics::default_registry().counter(
      "podwarp_dns_requests_total", "DNS queries received by noded's cluster DNS", {"proto"});
  metrics::Counter& responses = metrics::default_registry().counter(
      "podwarp_dns_responses_total", "DNS responses sent by noded's cluster DNS, by rcode",
      {"rcode"});
  metrics::Counter& forwards = metrics::default_registry().counter(
      "podwarp_dns_forward_requests_total", "DNS queries forwarded to upstream resolvers");
  metrics::Counter& forward_failures = metrics::default_registry().counter(
      "podwarp_dns_forward_failures_total",
      "forwarded DNS queries that no upstream answered (SERVFAIL sent)");
  metrics::Counter& dropped = metrics::default_registry().counter(
      "podwarp_dns_dropped_total", "DNS messages dropped (too short, responses, overload)");
};
Metrics& m() {
  static Metrics mx;
  return mx;
}

void count_reply(std::span<const std::uint8_t> reply) {
  if (reply.size() < 4) return;
  m().responses.with({rcode_name(reply[3] & 0xF)}).inc();
}

std::uint16_t random_id() {
  unsigned char b[2];
  random_bytes(b);
  return static_cast<std::uint16_t>(b[0] << 8 | b[1]);
}

// Does `reply` answer `query`'s question (QR set, same question)? The ids are checked apart.
bool answers(std::span<const std::uint8_t> reply, const Message& query) {
  auto r = parse_message(reply);
  if (!r || !r->qr || r->questions.size() != 1 || query.questions.size() != 1) return false;
  const auto& a = r->questions.front();
  const auto& q = query.questions.front();
  return a.qtype == q.qtype && a.qclass == q.qclass && names_equal(a.name, q.name);
}

// When the timer fires, shuts the socket down (its pending operations end by themselves: a
// read with 0 bytes or end of stream) and returns true from then on; a destroyed socket is
// left alone. Never close() or cancel() here: with an operation in flight, this Boost's
// io_uring backend sends an untagged cancel whose completion lands on some other operation
// (podwarp/socket_deadline.h); the owner closes the socket after its operation returned.
template <class Socket>
std::shared_ptr<bool> arm_watchdog(asio::steady_timer& t, const std::shared_ptr<Socket>& s,
                                   std::chrono::milliseconds d) {
  t.expires_after(d);
  std::weak_ptr<Socket> w = s;
  auto fired = std::make_shared<bool>(false);
  t.async_wait([w, fired](boost::system::error_code ec) {
    if (ec) return;
    *fired = true;
    if (auto p = w.lock()) shut_down(*p);
  });
  return fired;
}

}  // namespace

std::vector<Upstream> upstreams_from(const ResolvConf& conf,
                                     const std::vector<std::string>& exclude) {
  std::vector<Upstream> out;
  for (const auto& ns : conf.nameservers) {
    std::string addr = ns.substr(0, ns.find('%'));  // no scoped link-local support
    boost::system::error_code ec;
    auto a = asio::ip::make_address(addr, ec);
    if (ec) continue;
    bool skip = false;
    for (const auto& x : exclude) {
      boost::system::error_code ec2;
      auto b = asio::ip::make_address(x, ec2);
      if (!ec2 && a == b) skip = true;
    }
    Upstream u{a.to_string(), 53};
    if (!skip && std::find(out.begin(), out.end(), u) == out.end()) out.push_back(u);
  }
  return out;
}

struct DnsServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor e, DnsServerOptions o, const ClusterRecords& r)
      : ex(std::move(e)), opts(std::move(o)), responder(r), udp_sock(ex), acceptor(ex) {}

  asio::any_io_executor ex;
  DnsServerOptions opts;
  Responder responder;
  udp::socket udp_sock;
  tcp::acceptor acceptor;
  bool stopped = false;
  std::size_t forwards_in_flight = 0;
  std::size_t tcp_connections = 0;

  // --- upstream exchanges ---

  // One UDP exchange with `u`; nullopt on timeout or error.
  Awaitable<std::optional<Bytes>> udp_exchange(const Upstream& u, const Bytes& query,
                                               const Message& parsed) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(u.address, ec);
    if (ec) co_return std::nullopt;
    udp::endpoint to(addr, u.port);
    auto s = std::make_shared<udp::socket>(ex);
    s->open(to.protocol(), ec);
    if (!ec) s->connect(to, ec);
    if (ec) co_return std::nullopt;
    Bytes q = query;
    const std::uint16_t id = random_id();
    write_id(q, id);
    asio::steady_timer watchdog(ex);
    auto timed_out = arm_watchdog(watchdog, s, opts.upstream_timeout);
    auto [sec, sent] = co_await s->async_send(asio::buffer(q), asio::as_tuple(asio::use_awaitable));
    if (sec || *timed_out) co_return std::nullopt;
    Bytes buf(65535);
    for (;;) {
      auto [rec, n] =
          co_await s->async_receive(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (rec || *timed_out) co_return std::nullopt;  // timeout, ICMP unreachable, ...
      std::span<const std::uint8_t> r(buf.data(), n);
      if (n < 12 || read_id(r) != id || !answers(r, parsed)) continue;  // stray: keep waiting
      buf.resize(n);
      co_return buf;
    }
  }

  Awaitable<std::optional<Bytes>> tcp_exchange(const Upstream& u, const Bytes& query,
                                               const Message& parsed) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(u.address, ec);
    if (ec) co_return std::nullopt;
    tcp::endpoint to(addr, u.port);
    auto s = std::make_shared<tcp::socket>(ex);
    asio::steady_timer watchdog(ex);
    arm_watchdog(watchdog, s, opts.upstream_timeout);
    auto [cec] = co_await s->async_connect(to, asio::as_tuple(asio::use_awaitable));
    if (cec) co_return std::nullopt;
    Bytes q = query;
    const std::uint16_t id = random_id();
    write_id(q, id);
    Bytes framed = frame_tcp(q);
    auto [wec, wn] =
        co_await asio::async_write(*s, asio::buffer(framed), asio::as_tuple(asio::use_awaitable));
    if (wec) co_return std::nullopt;
    std::uint8_t len[2];
    auto [lec, ln] =
        co_await asio::async_read(*s, asio::buffer(len), asio::as_tuple(asio::use_awaitable));
    if (lec) co_return std::nullopt;
    Bytes body(static_cast<std::size_t>((len[0] << 8) | len[1]));
    auto [bec, bn] =
        co_await asio::async_read(*s, asio::buffer(body), asio::as_tuple(asio::use_awaitable));
    if (bec || body.size() < 12 || read_id(body) != id || !answers(body, parsed))
      co_return std::nullopt;
    co_return body;
  }

  // Tries every upstream in order; the reply carries the client's id again.
  Awaitable<std::optional<Bytes>> forward(Bytes query, Message parsed, Transport t) {
    m().forwards.inc();
    std::vector<Upstream> ups = opts.upstreams;  // a copy: set_upstreams may run meanwhile
    for (const auto& u : ups) {
      std::optional<Bytes> r;
      if (t == Transport::kUdp) {
        r = co_await udp_exchange(u, query, parsed);
      } else {
        r = co_await tcp_exchange(u, query, parsed);
      }
      if (r) {
        write_id(*r, parsed.id);
        co_return r;
      }
      log::debug("dns: upstream {}:{} did not answer", u.address, u.port);
    }
    m().forward_failures.inc();
    co_return std::nullopt;
  }

  // The reply to a query that needs upstream help (forwarding or an ExternalName chase).
  Awaitable<Bytes> resolve_upstream(Decision d, Bytes query, Transport t) {
    ++forwards_in_flight;
    struct Release {
      std::size_t& n;
      ~Release() { --n; }
    } release{forwards_in_flight};
    if (d.chase) {
      Bytes cq = Responder::make_query(d.chase_target, d.query.questions.front().qtype, 0);
      auto parsed = parse_message(cq);
      std::optional<Bytes> r = co_await forward(cq, *parsed, t);
      if (!r) co_return d.reply;  // the CNAME alone
      co_return Responder::complete_chase(d, *r, t);
    }
    std::optional<Bytes> r = co_await forward(std::move(query), d.query, t);
    if (r) co_return std::move(*r);
    co_return encode(error_response(d.query, rcode::kServFail),
                     t == Transport::kUdp ? udp_limit(d.query) : 0);
  }

  bool needs_upstream(const Decision& d) const {
    return d.kind == Decision::kForward || (d.kind == Decision::kReply && d.chase);
  }

  // --- UDP ---

  Awaitable<void> udp_reply_later(Decision d, Bytes query, udp::endpoint to) {
    auto self = shared_from_this();
    Bytes reply = co_await resolve_upstream(std::move(d), std::move(query), Transport::kUdp);
    if (stopped) co_return;
    count_reply(reply);
    co_await udp_sock.async_send_to(asio::buffer(reply), to, asio::as_tuple(asio::use_awaitable));
  }

  Awaitable<void> udp_loop() {
    auto self = shared_from_this();
    Bytes buf(65535);
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await udp_sock.async_receive_from(asio::buffer(buf), from,
                                                          asio::as_tuple(asio::use_awaitable));
      if (stopped) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
        continue;
      }
      m().requests.with({"udp"}).inc();
      std::span<const std::uint8_t> q(buf.data(), n);
      Decision d = responder.handle(q, Transport::kUdp);
      if (d.kind == Decision::kDrop) {
        m().dropped.inc();
        log::debug("dns: dropped a datagram from {}: {}", from.address().to_string(), d.reason);
        continue;
      }
      if (needs_upstream(d)) {
        if (forwards_in_flight >= opts.max_forwards_in_flight) {
          d = Decision{Decision::kReply, encode(error_response(d.query, rcode::kServFail),
                                                udp_limit(d.query))};
        } else {
          asio::co_spawn(ex, udp_reply_later(std::move(d), Bytes(q.begin(), q.end()), from),
                         asio::detached);
          continue;
        }
      }
      count_reply(d.reply);
      co_await udp_sock.async_send_to(asio::buffer(d.reply), from,
                                      asio::as_tuple(asio::use_awaitable));
    }
  }

  // --- TCP ---

  Awaitable<void> serve_tcp(std::shared_ptr<tcp::socket> s) {
    auto self = shared_from_this();
    ++tcp_connections;
    struct Release {
      std::size_t& n;
      ~Release() { --n; }
    } release{tcp_connections};
    asio::steady_timer idle(ex);
    for (;;) {
      arm_watchdog(idle, s, opts.tcp_idle_timeout);
      std::uint8_t len[2];
      auto [lec, ln] =
          co_await asio::async_read(*s, asio::buffer(len), asio::as_tuple(asio::use_awaitable));
      if (lec || stopped) co_return;
      Bytes q(static_cast<std::size_t>((len[0] << 8) | len[1]));
      auto [bec, bn] =
          co_await asio::async_read(*s, asio::buffer(q), asio::as_tuple(asio::use_awaitable));
      if (bec || stopped) co_return;
      idle.cancel();
      m().requests.with({"tcp"}).inc();
      Decision d = responder.handle(q, Transport::kTcp);
      if (d.kind == Decision::kDrop) {
        m().dropped.inc();
        co_return;  // a peer sending garbage without a header gets the connection closed
      }
      Bytes reply;
      if (needs_upstream(d)) {
        reply = co_await resolve_upstream(std::move(d), std::move(q), Transport::kTcp);
      } else {
        reply = std::move(d.reply);
      }
      if (stopped) co_return;
      count_reply(reply);
      Bytes framed = frame_tcp(reply);
      auto [wec, wn] =
          co_await asio::async_write(*s, asio::buffer(framed), asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }

  Awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (stopped) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
        // EMFILE and friends: do not spin.
        asio::steady_timer t(ex, std::chrono::milliseconds(100));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (tcp_connections >= opts.max_tcp_connections) {
        m().dropped.inc();
        continue;  // closes it
      }
      asio::co_spawn(ex, serve_tcp(std::make_shared<tcp::socket>(std::move(sock))),
                     asio::detached);
    }
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    boost::system::error_code ec;
    udp_sock.close(ec);
    acceptor.close(ec);
  }
};

std::expected<std::unique_ptr<DnsServer>, std::string> DnsServer::start(
    asio::any_io_executor executor, DnsServerOptions options, const ClusterRecords& records) {
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options), records);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(impl->opts.address, ec);
  if (ec) return std::unexpected("cluster DNS address \"" + impl->opts.address + "\": not an IP");
  std::string where = impl->opts.address + ":" + std::to_string(impl->opts.port);
  udp::endpoint uep(addr, impl->opts.port);
  impl->udp_sock.open(uep.protocol(), ec);
  if (!ec) impl->udp_sock.bind(uep, ec);
  if (ec) return std::unexpected("bind udp " + where + ": " + ec.message());
  std::uint16_t port = impl->udp_sock.local_endpoint(ec).port();
  tcp::endpoint tep(addr, port);
  impl->acceptor.open(tep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(tep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return std::unexpected("bind tcp " + impl->opts.address + ":" + std::to_string(port) + ": " +
                           ec.message());
  impl->opts.port = port;
  asio::co_spawn(impl->ex, impl->udp_loop(), asio::detached);
  asio::co_spawn(impl->ex, impl->accept_loop(), asio::detached);
  return std::unique_ptr<DnsServer>(new DnsServer(impl));
}

DnsServer::~DnsServer() { impl_->stop(); }
std::uint16_t DnsServer::port() const { return impl_->opts.port; }
void DnsServer::set_upstreams(std::vector<Upstream> upstreams) {
  impl_->opts.upstreams = std::move(upstreams);
}
void DnsServer::stop() { impl_->stop(); }

}  // namespace podwarp::noded::dns
