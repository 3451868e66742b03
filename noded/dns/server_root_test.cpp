// Root test of the DNS server on real sockets, entirely inside a private network namespace
// that a test thread unshares (the namespace, its dummy link and sockets vanish with the
// thread). The responder answers from a fake cache (ClusterRecords fed with objects) on
// 169.254.20.10:53 (a `podwarp-dns` dummy link made by ensure_local_address), and forwards to
// fake upstream servers on 127.0.0.1 in the same namespace. Nothing is sent from, or to, the
// machine's own namespace or its resolvers.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "dns/local_address.h"
#include "dns/server.h"
#include "net/netlink.h"

namespace podwarp::noded::dns {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;
using Bytes = std::vector<std::uint8_t>;
constexpr auto kTok = asio::as_tuple(asio::use_awaitable);

json::value js(std::string_view text) { return *parse_json(text); }

// Answers every A query with 192.0.2.7 (UDP and TCP on one port); counts what it saw.
struct FakeUpstream {
  explicit FakeUpstream(asio::io_context& io, bool answer)
      : udp_sock(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        acceptor(io), answer(answer) {
    port = udp_sock.local_endpoint().port();
    if (answer) {
      acceptor.open(tcp::v4());
      acceptor.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      acceptor.listen();
    }
  }
  udp::socket udp_sock;
  tcp::acceptor acceptor;
  bool answer;
  std::uint16_t port = 0;
  int udp_queries = 0, tcp_queries = 0;
  std::vector<std::uint16_t> ids;

  Bytes reply_to(std::span<const std::uint8_t> q) {
    auto m = parse_message(q);
    if (!m || m->questions.size() != 1) return {};
    ids.push_back(m->id);
    Message r;
    r.id = m->id;
    r.qr = r.rd = r.ra = true;
    r.questions = m->questions;
    if (m->questions[0].qtype == type::kA) {
      std::array<std::uint8_t, 4> a{192, 0, 2, 7};
      r.answer.push_back(make_a(m->questions[0].name, a, 60));
    }
    return encode(r);
  }

  asio::awaitable<void> serve_udp() {
    Bytes buf(4096);
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await udp_sock.async_receive_from(asio::buffer(buf), from, kTok);
      if (ec) co_return;
      ++udp_queries;
      if (!answer) continue;  // a black hole: the server must time out and go on
      Bytes r = reply_to({buf.data(), n});
      co_await udp_sock.async_send_to(asio::buffer(r), from, kTok);
    }
  }
  asio::awaitable<void> serve_tcp() {
    for (;;) {
      auto [ec, s] = co_await acceptor.async_accept(kTok);
      if (ec) co_return;
      std::uint8_t len[2];
      auto [e1, n1] = co_await asio::async_read(s, asio::buffer(len), kTok);
      if (e1) continue;
      Bytes q(static_cast<std::size_t>((len[0] << 8) | len[1]));
      auto [e2, n2] = co_await asio::async_read(s, asio::buffer(q), kTok);
      if (e2) continue;
      ++tcp_queries;
      Bytes r = frame_tcp(reply_to(q));
      co_await asio::async_write(s, asio::buffer(r), kTok);
    }
  }
  void close() {
    boost::system::error_code ec;
    udp_sock.close(ec);
    acceptor.close(ec);
  }
};

Bytes make_query(std::string_view name, std::uint16_t qtype, std::uint16_t id) {
  Message q;
  q.id = id;
  q.rd = true;
  q.questions.push_back({name_from_text(name), qtype, kClassIN});
  return encode(q);
}

asio::awaitable<std::optional<Message>> ask_udp(asio::io_context& io, const Bytes& q,
                                                std::uint16_t port) {
  udp::socket s(io, udp::v4());
  udp::endpoint to(asio::ip::make_address("169.254.20.10"), port);
  co_await s.async_send_to(asio::buffer(q), to, kTok);
  Bytes buf(65535);
  asio::steady_timer guard(io, std::chrono::seconds(5));
  guard.async_wait([&s](boost::system::error_code ec) {
    if (!ec) s.close();
  });
  auto [ec, n] = co_await s.async_receive(asio::buffer(buf), kTok);
  guard.cancel();
  if (ec) co_return std::nullopt;
  auto m = parse_message({buf.data(), n});
  if (!m) co_return std::nullopt;
  co_return *m;
}

asio::awaitable<std::optional<Message>> ask_tcp(asio::io_context& io, const Bytes& q,
                                                std::uint16_t port) {
  tcp::socket s(io);
  auto [c] = co_await s.async_connect(tcp::endpoint(asio::ip::make_address("169.254.20.10"), port), kTok);
  if (c) co_return std::nullopt;
  Bytes f = frame_tcp(q);
  co_await asio::async_write(s, asio::buffer(f), kTok);
  std::uint8_t len[2];
  auto [e1, n1] = co_await asio::async_read(s, asio::buffer(len), kTok);
  if (e1) co_return std::nullopt;
  Bytes body(static_cast<std::size_t>((len[0] << 8) | len[1]));
  auto [e2, n2] = co_await asio::async_read(s, asio::buffer(body), kTok);
  if (e2) co_return std::nullopt;
  auto m = parse_message(body);
  if (!m) co_return std::nullopt;
  co_return *m;
}

std::string first_a(const Message& m) {
  for (const auto& rr : m.answer) {
    if (rr.type != type::kA) continue;
    const auto& b = std::get<RawData>(rr.data).bytes;
    return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
           std::to_string(b[3]);
  }
  return "";
}

TEST(DnsServerRoot, AnswersFromCacheAndForwardsInPrivateNetns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
  std::vector<std::string> failures;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      failures.push_back("unshare(CLONE_NEWNET) failed");
      return;
    }
    {
      auto nl = net::Netlink::open();
      if (!nl || !nl->set_up("lo")) {
        failures.push_back("lo up failed");
        return;
      }
    }
    ASSERT_FALSE(is_local_address("169.254.20.10"));
    auto local = ensure_local_address("169.254.20.10");
    ASSERT_TRUE(local) << local.error();
    EXPECT_TRUE(local->created_link);
    EXPECT_TRUE(is_local_address("169.254.20.10"));
    auto again = ensure_local_address("169.254.20.10");
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->created_link);
    EXPECT_TRUE(again->on_dummy_link);

    ClusterRecords records("cluster.local");
    records.upsert_service(js(R"({"metadata":{"namespace":"default","name":"web"},
        "spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":80}]}})"));
    records.upsert_service(js(R"({"metadata":{"namespace":"default","name":"ext"},
        "spec":{"type":"ExternalName","externalName":"www.example.com"}})"));
    records.upsert_service(js(R"({"metadata":{"namespace":"default","name":"many"},
        "spec":{"clusterIP":"None"}})"));
    std::string eps;
    for (int i = 0; i < 50; ++i)
      eps += std::string(i ? "," : "") + R"({"addresses":["10.2.0.)" + std::to_string(i) + R"("]})";
    records.upsert_slice(js(R"({"metadata":{"namespace":"default","name":"many-x",
        "labels":{"kubernetes.io/service-name":"many"}},"addressType":"IPv4","endpoints":[)" +
                            eps + "]}"));

    asio::io_context io(1);
    FakeUpstream hole(io, false), up(io, true);
    asio::co_spawn(io, hole.serve_udp(), asio::detached);
    asio::co_spawn(io, up.serve_udp(), asio::detached);
    asio::co_spawn(io, up.serve_tcp(), asio::detached);
    DnsServerOptions o;
    o.address = "169.254.20.10";
    o.port = 53;
    o.upstreams = {{"127.0.0.1", hole.port}, {"127.0.0.1", up.port}};
    o.upstream_timeout = std::chrono::milliseconds(300);
    auto srv = DnsServer::start(io.get_executor(), o, records);
    ASSERT_TRUE(srv) << srv.error();
    std::uint16_t port = (*srv)->port();
    EXPECT_EQ(port, 53);

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          // From the cache.
          auto a = co_await ask_udp(io, make_query("Web.Default.svc.cluster.local", type::kA, 1), port);
          EXPECT_TRUE(a && a->aa && a->id == 1 && first_a(*a) == "10.96.0.10");
          auto nx = co_await ask_udp(io, make_query("nope.default.svc.cluster.local", type::kA, 2), port);
          EXPECT_TRUE(nx && nx->rcode == rcode::kNxDomain && nx->authority.size() == 1);
          EXPECT_EQ(hole.udp_queries + up.udp_queries, 0) << "cluster names are never forwarded";
          // Forwarded over UDP: the black hole times out, the next upstream answers; the
          // client's id comes back.
          auto f = co_await ask_udp(io, make_query("example.com", type::kA, 0x4242), port);
          EXPECT_TRUE(f && f->id == 0x4242 && f->rcode == 0 && first_a(*f) == "192.0.2.7");
          EXPECT_EQ(hole.udp_queries, 1);
          EXPECT_EQ(up.udp_queries, 1);
          // Forwarded over TCP.
          auto ft = co_await ask_tcp(io, make_query("example.org", type::kA, 0x1111), port);
          EXPECT_TRUE(ft && ft->id == 0x1111 && first_a(*ft) == "192.0.2.7");
          EXPECT_EQ(up.tcp_queries, 1);
          // ExternalName: CNAME, then the target's address from upstream.
          auto ext = co_await ask_udp(io, make_query("ext.default.svc.cluster.local", type::kA, 5), port);
          EXPECT_TRUE(ext && ext->answer.size() == 2 && ext->answer[0].type == type::kCNAME &&
                      first_a(*ext) == "192.0.2.7");
          // 50 endpoints do not fit 512 bytes: TC over UDP, complete over TCP.
          auto tc = co_await ask_udp(io, make_query("many.default.svc.cluster.local", type::kA, 6), port);
          EXPECT_TRUE(tc && tc->tc && tc->answer.empty());
          auto full = co_await ask_tcp(io, make_query("many.default.svc.cluster.local", type::kA, 7), port);
          EXPECT_TRUE(full && !full->tc && full->answer.size() == 50);
          // Garbage with a header: FORMERR with the same id; the server keeps serving.
          Bytes junk = make_query("x.y", type::kA, 0x0BAD);
          junk[12] = 0xC0;
          junk[13] = 0x0C;  // the question name points at itself
          auto fe = co_await ask_udp(io, junk, port);
          EXPECT_TRUE(fe && fe->id == 0x0BAD && fe->rcode == rcode::kFormErr);
          auto still = co_await ask_udp(io, make_query("web.default.svc.cluster.local", type::kA, 9), port);
          EXPECT_TRUE(still && first_a(*still) == "10.96.0.10");
          // All upstreams silent: SERVFAIL.
          (*srv)->set_upstreams({{"127.0.0.1", hole.port}});
          auto sf = co_await ask_udp(io, make_query("example.net", type::kA, 10), port);
          EXPECT_TRUE(sf && sf->rcode == rcode::kServFail);
          (*srv)->stop();
          hole.close();
          up.close();
        },
        asio::detached);
    io.run();  // returns when every socket is closed and every coroutine ended
  });
  t.join();
  for (const auto& f : failures) ADD_FAILURE() << f;
}

}  // namespace
}  // namespace podwarp::noded::dns
