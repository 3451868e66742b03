#include "dns/wire.h"

#include <gtest/gtest.h>

#include <random>

#include "dns/responder.h"

namespace podwarp::noded::dns {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes query(std::string_view name, std::uint16_t qtype, std::uint16_t id = 0x1234,
            std::optional<std::uint16_t> edns = std::nullopt) {
  Message q;
  q.id = id;
  q.rd = true;
  q.questions.push_back({name_from_text(name), qtype, kClassIN});
  if (edns) q.edns = Edns{*edns, 0, 0, false};
  return encode(q);
}

TEST(Wire, QueryRoundTrip) {
  Bytes b = query("Web.Default.svc.cluster.local", type::kA, 0xBEEF, 1232);
  auto c = check_query(b);
  ASSERT_EQ(c.kind, QueryCheck::kOk) << c.reason;
  EXPECT_EQ(c.msg.id, 0xBEEF);
  EXPECT_TRUE(c.msg.rd);
  ASSERT_EQ(c.msg.questions.size(), 1u);
  EXPECT_EQ(name_to_text(c.msg.questions[0].name), "Web.Default.svc.cluster.local.");
  ASSERT_TRUE(c.msg.edns);
  EXPECT_EQ(c.msg.edns->udp_size, 1232);
  EXPECT_EQ(udp_limit(c.msg), 1232u);
}

TEST(Wire, CompressionPointsToEarlierNames) {
  Message m;
  m.qr = true;
  m.questions.push_back({name_from_text("a.svc.cluster.local"), type::kSRV, kClassIN});
  SrvData s{0, 100, 80, name_from_text("b.svc.cluster.local")};
  m.answer.push_back({name_from_text("A.SVC.cluster.local"), type::kSRV, kClassIN, 30, s});
  Bytes b = encode(m);
  // Question name 21 bytes at 12; the answer's owner is a 2-byte pointer to it (case-folded
  // match), the target "b" + pointer to "svc.cluster.local".
  auto p = parse_message(b);
  ASSERT_TRUE(p) << p.error().reason;
  ASSERT_EQ(p->answer.size(), 1u);
  // The owner is read back through the pointer, so with the question's spelling.
  EXPECT_EQ(name_to_text(p->answer[0].name), "a.svc.cluster.local.");
  EXPECT_EQ(std::get<SrvData>(p->answer[0].data), s);
  EXPECT_EQ(b[12 + 21 + 4], 0xC0);  // owner compressed
  EXPECT_LT(b.size(), 12u + 21 + 4 + 12 + 6 + 21 + 10);
}

TEST(Wire, LoopingPointerIsFormErr) {
  Bytes b = query("x.y", type::kA);
  // Replace the question name with a pointer to itself (offset 12).
  Bytes loop(b.begin(), b.begin() + 12);
  loop.insert(loop.end(), {0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01});
  EXPECT_EQ(check_query(loop).kind, QueryCheck::kFormErr);
  // A pointer forward (to the type field) is refused too.
  Bytes fwd(b.begin(), b.begin() + 12);
  fwd.insert(fwd.end(), {0xC0, 0x0E, 0x00, 0x01, 0x00, 0x01});
  EXPECT_EQ(check_query(fwd).kind, QueryCheck::kFormErr);
  // Two labels pointing at each other (each pointer target after the previous one).
  Bytes mutual(b.begin(), b.begin() + 12);
  mutual.insert(mutual.end(), {0x01, 'a', 0xC0, 0x0C, 0x00, 0x01, 0x00, 0x01});
  EXPECT_EQ(check_query(mutual).kind, QueryCheck::kFormErr);
}

TEST(Wire, BadLabelsAndCounts) {
  Bytes b = query("x.y", type::kA);
  Bytes reserved = b;
  reserved[12] = 0x41;  // 01xxxxxx label type
  EXPECT_EQ(check_query(reserved).kind, QueryCheck::kFormErr);
  Bytes two = b;
  two[5] = 2;  // QDCOUNT 2 with one question
  EXPECT_EQ(check_query(two).kind, QueryCheck::kFormErr);
  Bytes none = b;
  none[5] = 0;
  EXPECT_EQ(check_query(none).kind, QueryCheck::kFormErr);
  Bytes many = b;
  many[6] = 0xFF;  // ANCOUNT 65280
  EXPECT_EQ(check_query(many).kind, QueryCheck::kFormErr);
  // A 300-byte name.
  Message q;
  q.questions.push_back({Name(6, std::string(50, 'a')), type::kA, kClassIN});
  EXPECT_EQ(check_query(encode(q)).kind, QueryCheck::kFormErr);
}

TEST(Wire, ShortAndResponsesAreDropped) {
  EXPECT_EQ(check_query(Bytes{}).kind, QueryCheck::kDrop);
  EXPECT_EQ(check_query(Bytes(11, 0)).kind, QueryCheck::kDrop);
  Bytes b = query("x.y", type::kA);
  b[2] |= 0x80;  // QR
  EXPECT_EQ(check_query(b).kind, QueryCheck::kDrop);
}

TEST(Wire, OpcodeAndEdnsVersion) {
  Bytes b = query("x.y", type::kA);
  b[2] |= (4 << 3);  // NOTIFY
  EXPECT_EQ(check_query(b).kind, QueryCheck::kNotImp);
  Message q;
  q.questions.push_back({name_from_text("x.y"), type::kA, kClassIN});
  q.edns = Edns{4096, 1, 0, false};
  auto c = check_query(encode(q));
  EXPECT_EQ(c.kind, QueryCheck::kBadVers);
  Bytes r = encode(error_response(c.msg, rcode::kBadVers));
  auto p = parse_message(r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->rcode, rcode::kBadVers);  // 16: low bits 0 in the header, 1 in the OPT
  EXPECT_EQ(r[3] & 0xF, 0);
}

TEST(Wire, TruncationDropsAdditionalThenSetsTc) {
  Message m;
  m.qr = true;
  m.questions.push_back({name_from_text("h.default.svc.cluster.local"), type::kA, kClassIN});
  for (int i = 0; i < 40; ++i) {
    std::array<std::uint8_t, 4> a{10, 0, 0, static_cast<std::uint8_t>(i)};
    m.answer.push_back(make_a(m.questions[0].name, a, 30));
  }
  Bytes full = encode(m);
  EXPECT_GT(full.size(), 512u);
  EXPECT_EQ(full[2] & 0x02, 0);
  Bytes cut = encode(m, 512);
  EXPECT_LE(cut.size(), 512u);
  auto p = parse_message(cut);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->tc);
  EXPECT_TRUE(p->answer.empty());
  EXPECT_EQ(p->questions.size(), 1u);
  // Only additional records too many: dropped without TC.
  Message s;
  s.qr = true;
  s.questions = m.questions;
  s.answer.push_back(m.answer[0]);
  s.additional = m.answer;
  Bytes small = encode(s, 512);
  auto ps = parse_message(small);
  ASSERT_TRUE(ps);
  EXPECT_FALSE(ps->tc);
  EXPECT_EQ(ps->answer.size(), 1u);
  EXPECT_TRUE(ps->additional.empty());
}

TEST(Wire, TcpFraming) {
  Bytes msg{1, 2, 3};
  EXPECT_EQ(frame_tcp(msg), (Bytes{0, 3, 1, 2, 3}));
}

// Fuzz-style: random bytes, truncations and bit flips of valid messages never crash and
// always end in a defined outcome; whatever parses re-encodes and parses again.
TEST(Wire, FuzzNeverCrashes) {
  std::mt19937 rng(12345);
  ClusterRecords records("cluster.local");
  Responder responder(records);
  std::vector<Bytes> seeds = {query("a.b.svc.cluster.local", type::kA),
                              query("_http._tcp.web.ns.svc.cluster.local", type::kSRV, 7, 4096),
                              query("example.com", type::kAAAA)};
  {
    Message m;
    m.qr = true;
    m.questions.push_back({name_from_text("x.cluster.local"), type::kSOA, kClassIN});
    m.answer.push_back({name_from_text("cluster.local"), type::kSOA, kClassIN, 5,
                        SoaData{name_from_text("ns.dns.cluster.local"),
                                name_from_text("hostmaster.cluster.local"), 1, 2, 3, 4, 5}});
    m.answer.push_back({name_from_text("t.cluster.local"), type::kTXT, kClassIN, 5, TxtData{{"hi"}}});
    m.edns = Edns{};
    seeds.push_back(encode(m));
  }
  int parsed = 0;
  for (int iter = 0; iter < 200'000; ++iter) {
    Bytes b;
    int mode = iter % 3;
    if (mode == 0) {
      b.resize(rng() % 80);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    } else {
      b = seeds[rng() % seeds.size()];
      if (mode == 1) {
        b.resize(rng() % (b.size() + 1));
      } else {
        int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips && !b.empty(); ++f)
          b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      }
    }
    auto p = parse_message(b);
    if (p) {
      ++parsed;
      auto again = parse_message(encode(*p));
      EXPECT_TRUE(again) << "re-encode of a parsed message failed";
    }
    Decision d = responder.handle(b, iter % 2 ? Transport::kUdp : Transport::kTcp);
    if (d.kind == Decision::kReply) {
      EXPECT_GE(d.reply.size(), 12u);
      if (b.size() >= 12) {
        EXPECT_EQ(read_id(d.reply), read_id(b));
      }
    }
  }
  EXPECT_GT(parsed, 1000);
}

}  // namespace
}  // namespace podwarp::noded::dns
