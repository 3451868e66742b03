// The pure part of flow_events.h: decoding ring samples and formatting them. (FlowReader on a
// real ring, fed by the BPF program, is tested in datapath_test.cpp's NetpolProgTest.)
#include "netpol/flow_events.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <vector>

#include "lib/netpol.h"
#include "podwarp/json.h"

namespace podwarp::noded::netpol {
namespace {

std::uint32_t v4(const char* s) {
  in_addr a{};
  ::inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

// 2026-11-24T00:31:02.123456789Z as monotonic 5 s + an offset.
constexpr std::uint64_t kMono = 5'000'000'000;
constexpr std::int64_t kWall = 1'795'480'262'123'456'789;

std::vector<std::byte> sample(std::uint8_t proto, std::uint8_t dir, std::uint8_t verdict) {
  podwarp_np_flow_event e{};
  e.ts_ns = kMono;
  e.saddr = v4("10.244.0.5");
  e.daddr = v4("10.244.0.4");
  e.sport = 43512;
  e.dport = 8081;
  e.proto = proto;
  e.dir = dir;
  e.verdict = verdict;
  e.ifindex = 7;
  e.len = 74;
  std::vector<std::byte> out(sizeof e);
  std::memcpy(out.data(), &e, sizeof e);
  return out;
}

Flow decoded(std::uint8_t proto, std::uint8_t dir, std::uint8_t verdict) {
  auto s = sample(proto, dir, verdict);
  auto f = decode_flow(s, kWall - static_cast<std::int64_t>(kMono));
  EXPECT_TRUE(f);
  return f.value_or(Flow{});
}

const PodRef kClient{"default", "client"};
const PodRef kWeb{"default", "web"};

TEST(FlowEventsTest, DecodesEveryField) {
  Flow f = decoded(IPPROTO_TCP, PODWARP_NP_DIR_INGRESS, PODWARP_NP_C_DENIED_INGRESS);
  EXPECT_EQ(f.mono_ns, kMono);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::nanoseconds>(f.time.time_since_epoch()).count(),
            kWall);
  EXPECT_EQ(f.saddr, v4("10.244.0.5"));
  EXPECT_EQ(f.daddr, v4("10.244.0.4"));
  EXPECT_EQ(f.sport, 43512);
  EXPECT_EQ(f.dport, 8081);
  EXPECT_EQ(f.ifindex, 7u);
  EXPECT_EQ(f.bytes, 74u);
  EXPECT_FALSE(f.allowed());
  EXPECT_EQ(f.verdict(), "DENIED");
  EXPECT_EQ(f.reason_name(), "DeniedIngress");
  EXPECT_EQ(f.direction(), "ingress");

  auto short_sample = sample(IPPROTO_TCP, 0, 0);
  short_sample.pop_back();
  EXPECT_FALSE(decode_flow(short_sample, 0)) << "shorter than the event";
}

TEST(FlowEventsTest, TextLines) {
  Flow denied = decoded(IPPROTO_TCP, PODWARP_NP_DIR_INGRESS, PODWARP_NP_C_DENIED_INGRESS);
  EXPECT_EQ(format_flow_text(denied, kClient, kWeb),
            "2026-11-24T00:31:02.123456Z DENIED  ingress default/client 10.244.0.5:43512 -> "
            "default/web 10.244.0.4:8081 TCP (DeniedIngress)");
  Flow allowed = decoded(IPPROTO_UDP, PODWARP_NP_DIR_EGRESS, PODWARP_NP_C_ALLOWED_UNISOLATED);
  EXPECT_EQ(format_flow_text(allowed, kClient, std::nullopt),
            "2026-11-24T00:31:02.123456Z ALLOWED egress default/client 10.244.0.5:43512 -> "
            "10.244.0.4:8081 UDP (Unisolated)");
  Flow icmp = decoded(IPPROTO_ICMP, PODWARP_NP_DIR_INGRESS, PODWARP_NP_C_ALLOWED_NEW);
  EXPECT_EQ(format_flow_text(icmp, std::nullopt, std::nullopt),
            "2026-11-24T00:31:02.123456Z ALLOWED ingress 10.244.0.5 -> 10.244.0.4 ICMP "
            "(AllowedNew)");
  Flow odd = decoded(47, PODWARP_NP_DIR_EGRESS, PODWARP_NP_C_DENIED_EGRESS);
  EXPECT_EQ(format_flow_text(odd, std::nullopt, std::nullopt),
            "2026-11-24T00:31:02.123456Z DENIED  egress 10.244.0.5 -> 10.244.0.4 47 "
            "(DeniedEgress)");
}

TEST(FlowEventsTest, JsonObjects) {
  Flow denied = decoded(IPPROTO_SCTP, PODWARP_NP_DIR_INGRESS, PODWARP_NP_C_DENIED_INGRESS);
  auto v = parse_json(format_flow_json(denied, kClient, std::nullopt));
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(*v, json::parse(R"({"time":"2026-11-24T00:31:02.123456Z","verdict":"DENIED",
      "reason":"DeniedIngress","direction":"ingress","protocol":"SCTP",
      "source":{"ip":"10.244.0.5","port":43512,"namespace":"default","pod":"client"},
      "destination":{"ip":"10.244.0.4","port":8081},"bytes":74,"ifindex":7})"));

  Flow icmp = decoded(IPPROTO_ICMP, PODWARP_NP_DIR_EGRESS, PODWARP_NP_C_ALLOWED_NEW);
  v = parse_json(format_flow_json(icmp, std::nullopt, kWeb));
  ASSERT_TRUE(v);
  EXPECT_EQ(get_string(*v, {"verdict"}), "ALLOWED");
  EXPECT_EQ(get_string(*v, {"reason"}), "AllowedNew");
  EXPECT_EQ(get_string(*v, {"protocol"}), "ICMP");
  EXPECT_EQ(find_path(*v, {"source", "port"}), nullptr) << "no ports for ICMP";
  EXPECT_EQ(get_string(*v, {"destination", "pod"}), "web");
}

TEST(FlowEventsTest, ProtocolNamesAndUnknownReasons) {
  EXPECT_EQ(protocol_name(IPPROTO_TCP), "TCP");
  EXPECT_EQ(protocol_name(IPPROTO_UDP), "UDP");
  EXPECT_EQ(protocol_name(IPPROTO_SCTP), "SCTP");
  EXPECT_EQ(protocol_name(IPPROTO_ICMP), "ICMP");
  EXPECT_EQ(protocol_name(132 + 1), "133");
  Flow f;
  f.reason = 200;  // from a newer BPF object
  EXPECT_EQ(f.reason_name(), "Unknown");
  EXPECT_TRUE(f.allowed());
}

TEST(FlowEventsTest, WallOffsetIsNowMinusUptime) {
  const std::int64_t off = monotonic_to_wall_ns();
  timespec mono{};
  ::clock_gettime(CLOCK_MONOTONIC, &mono);
  const auto wall = std::chrono::system_clock::now().time_since_epoch();
  const std::int64_t want = std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count() -
                            (static_cast<std::int64_t>(mono.tv_sec) * 1'000'000'000 + mono.tv_nsec);
  EXPECT_LT(std::llabs(want - off), 50'000'000) << "within 50 ms";
}

}  // namespace
}  // namespace podwarp::noded::netpol
