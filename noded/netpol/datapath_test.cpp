// Real-kernel tests of NetworkPolicy enforcement (bpf/netpol.bpf.c through netpol::Datapath).
// Root only, and only where /sys/fs/bpf is a bpffs (skipped otherwise). Each test pins under its
// own /sys/fs/bpf/podwarp-test-np-<pid>-<n> (removed at the end, also on failure) and runs in
// network namespaces it creates:
//   - NetpolProgTest: BPF_PROG_TEST_RUN with crafted packets (nothing is transmitted);
//   - NetpolMapsTest: apply/read/prune/remove, pins reused, other layouts refused;
//   - NetpolTrafficTest: real TCP and ICMP between two "pods" routed through a "node":
//
//   pod netns A                       node netns N (the test thread)            pod netns B
//   pwnpa1 10.244.9.2/32 <-> pwnpa 169.254.1.1/32     pwnpb 169.254.1.1/32 <-> pwnpb1 10.244.9.3/32
//   default via 169.254.1.1    routes 10.244.9.{2,3}/32 dev pwnp{a,b}, forwarding on    default via
//   ...
//                              from_pod/to_pod on both host veths
//
// The namespaces are anonymous (they vanish with their last fd or thread, also when a test
// fails); no packet leaves them.
#include "netpol/datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "bpfutil/bpf_test_util.h"
#include "bpfutil/bpf_util.h"
#include "lib/netpol.h"
#include "netpol/flow_events.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::netpol {
namespace {

using bpfutil::testing::AnonNetns;
using bpfutil::testing::make_packet;
using bpfutil::testing::PacketSpec;
using bpfutil::testing::ping;
using bpfutil::testing::pkt;
using bpfutil::testing::PrivateNetns;
using bpfutil::testing::run_cmd;
using bpfutil::testing::sin4;
using bpfutil::testing::test_run;
using bpfutil::testing::v4;
using bpfutil::testing::write_file;
using netpolicy::EndpointPolicy;
using netpolicy::Prefix;
using netpolicy::Range;
using netpolicy::Table;

constexpr std::uint32_t kActOk = 0, kActShot = 2;
constexpr std::uint8_t kTcp = IPPROTO_TCP, kUdp = IPPROTO_UDP, kSctp = IPPROTO_SCTP;

// /sys/fs/bpf/podwarp-test-np-<pid>-<n>, removed (with every pin) at the end.
struct TestPins {
  std::string dir;
  TestPins() {
    static std::atomic<int> n{0};
    dir = std::string(bpfutil::kMachineBpffs) + "/podwarp-test-np-" + std::to_string(::getpid()) +
          "-" + std::to_string(++n);
  }
  ~TestPins() { (void)Datapath::remove_pins(dir); }
};

// "" when the tests can run here, else why not.
std::string cannot_run() {
  if (::geteuid() != 0) return "needs root (BPF, netns)";
  if (!bpfutil::is_bpffs(bpfutil::kMachineBpffs)) return "no bpffs on /sys/fs/bpf";
  return "";
}

std::unique_ptr<Datapath> open_small(const std::string& dir, std::uint32_t max_ct = 1024) {
  DatapathOptions o;
  o.pin_dir = dir;
  o.max_endpoints = 64;
  o.max_peers = 1024;
  o.max_ct = max_ct;
  auto dp = Datapath::open(o);
  EXPECT_TRUE(dp) << dp.error().message;
  return dp ? std::move(*dp) : nullptr;
}

Prefix pfx(const char* addr, std::uint8_t len) { return Prefix{v4(addr), len}; }

Table table(std::vector<Range> ranges, std::map<Prefix, std::uint64_t> peers) {
  Table t;
  t.ranges = std::move(ranges);
  t.peers = std::move(peers);
  return t;
}

EndpointPolicy ingress_only(Table t) {
  EndpointPolicy p;
  p.ingress = std::move(t);
  return p;
}

EndpointPolicy egress_only(Table t) {
  EndpointPolicy p;
  p.egress = std::move(t);
  return p;
}

std::uint64_t packets(const Datapath& dp, std::string_view name) {
  auto c = dp.counters();
  EXPECT_TRUE(c) << c.error().message;
  if (c)
    for (const auto& x : *c)
      if (x.name == name) return x.packets;
  return 0;
}

template <typename Key>
std::size_t key_count(int fd) {
  auto keys = bpfutil::map_keys<Key>(fd, "map");
  return keys ? keys->size() : 0;
}

const std::uint32_t kA = v4("10.244.9.2");
const std::uint32_t kB = v4("10.244.9.3");
const std::uint32_t kC = v4("10.244.9.4");
const std::uint32_t kNode = v4("169.254.1.1");

// ---------------------------------------------------------------------------------------------
// BPF_PROG_TEST_RUN

class NetpolProgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
    netns_.emplace();  // test runs use the namespace's loopback device
    ASSERT_TRUE(netns_->ok());
    dp_ = open_small(pins_.dir);
    ASSERT_NE(dp_, nullptr);
  }
  void TearDown() override {
    dp_.reset();
    netns_.reset();
  }

  std::uint32_t run(const char* prog, const PacketSpec& s, bool arp = false) {
    auto p = make_packet(s);
    if (arp) p[13] = 0x06;  // ethertype 0x0806
    auto r = test_run(dp_->program_fd(prog), p, 1);
    EXPECT_EQ(r.err, 0) << "bpf_prog_test_run_opts " << prog;
    return r.retval;
  }
  std::uint32_t from_pod(const PacketSpec& s) { return run("from_pod", s); }
  std::uint32_t to_pod(const PacketSpec& s) { return run("to_pod", s); }

  std::optional<podwarp_np_ct> ct(std::uint32_t saddr, std::uint16_t sport, std::uint32_t daddr,
                                  std::uint16_t dport, std::uint8_t proto = kTcp) {
    podwarp_np_ct_key k{};
    k.saddr = saddr;
    k.daddr = daddr;
    k.sport = sport;
    k.dport = dport;
    k.proto = proto;
    podwarp_np_ct v{};
    if (bpf_map_lookup_elem(dp_->map_fd(PODWARP_NP_MAP_CT), &k, &v) != 0) return std::nullopt;
    return v;
  }

  TestPins pins_;
  std::optional<PrivateNetns> netns_;
  std::unique_ptr<Datapath> dp_;
};

PacketSpec echo(std::uint32_t saddr, std::uint32_t daddr, std::uint16_t id, bool reply = false) {
  PacketSpec s = pkt(IPPROTO_ICMP, saddr, id, daddr, 0);
  s.icmp_type = reply ? 0 : 8;
  return s;
}

TEST_F(NetpolProgTest, DecisionTable) {
  // B's ingress: rule 0 = TCP 80, rule 1 = UDP 5000-5010, rule 2 = everything. A gets rules 0
  // and 1, 10/8 rule 0 but not 10.1/16 (an except: mask 0), 10.2.2.2 rule 2.
  ASSERT_TRUE(
      dp_->apply(kB, nullptr,
                 ingress_only(table({{kTcp, 0, 80, 80}, {kUdp, 1, 5000, 5010}, {0, 2, 0, 0}},
                                    {{pfx("10.244.9.2", 32), 0b011},
                                     {pfx("10.0.0.0", 8), 0b001},
                                     {pfx("10.1.0.0", 16), 0},
                                     {pfx("10.2.2.2", 32), 0b100}}))));
  ASSERT_TRUE(dp_->apply(kC, nullptr, egress_only(Table{})));  // C: egress default deny
  const std::uint32_t kOther = v4("10.244.9.9");               // no tables

  PacketSpec fragment = pkt(kTcp, v4("192.168.5.5"), 1013, kB, 80);
  fragment.frag = 0x0001;  // offset 8: no ports
  PacketSpec first_fragment = pkt(kTcp, v4("192.168.5.5"), 1014, kB, 80);
  first_fragment.frag = 0x2000;  // MF, offset 0: checked like any packet

  struct Row {
    const char* name;
    bool egress;  // from_pod, else to_pod
    PacketSpec in;
    std::uint32_t want;
  } rows[] = {
      {"A -> B tcp/80: rule 0", false, pkt(kTcp, kA, 1001, kB, 80), kActOk},
      {"A -> B tcp/81: no rule", false, pkt(kTcp, kA, 1002, kB, 81), kActShot},
      {"A -> B udp/5005: rule 1", false, pkt(kUdp, kA, 1003, kB, 5005), kActOk},
      {"A -> B udp/5011: above the range", false, pkt(kUdp, kA, 1004, kB, 5011), kActShot},
      {"10.9.9.9 -> B tcp/80: 10/8", false, pkt(kTcp, v4("10.9.9.9"), 1005, kB, 80), kActOk},
      {"10.1.2.3 -> B tcp/80: except", false, pkt(kTcp, v4("10.1.2.3"), 1006, kB, 80), kActShot},
      {"10.9.9.9 -> B udp/5005: not 10/8's rule", false, pkt(kUdp, v4("10.9.9.9"), 1007, kB, 5005),
       kActShot},
      {"10.2.2.2 -> B icmp echo: all protocols", false, echo(v4("10.2.2.2"), kB, 7), kActOk},
      {"10.2.2.2 -> B sctp/9999: all protocols", false, pkt(kSctp, v4("10.2.2.2"), 1, kB, 9999),
       kActOk},
      {"A -> B icmp echo: TCP/UDP rules only", false, echo(kA, kB, 8), kActShot},
      {"192.168.5.5 -> B tcp/80: no prefix", false, pkt(kTcp, v4("192.168.5.5"), 1008, kB, 80),
       kActShot},
      {"A -> other: not isolated", false, pkt(kTcp, kA, 1009, kOther, 80), kActOk},
      {"C -> A tcp/80: C's egress denies", true, pkt(kTcp, kC, 1010, kA, 80), kActShot},
      {"B -> 10.1.2.3: B's egress not isolated", true, pkt(kTcp, kB, 1011, v4("10.1.2.3"), 80),
       kActOk},
      {"later fragment to B", false, fragment, kActOk},
      {"first fragment to B", false, first_fragment, kActShot},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(row.egress ? from_pod(row.in) : to_pod(row.in), row.want);
  }
  EXPECT_EQ(run("to_pod", pkt(kTcp, v4("192.168.5.5"), 1, kB, 1), /*arp=*/true), kActOk);

  EXPECT_EQ(packets(*dp_, "AllowedNew"), 5u);
  EXPECT_EQ(packets(*dp_, "DeniedIngress"), 7u);
  EXPECT_EQ(packets(*dp_, "DeniedEgress"), 1u);
  EXPECT_EQ(packets(*dp_, "Unisolated"), 2u);
  EXPECT_EQ(packets(*dp_, "PassedOther"), 2u);  // the later fragment, the ARP frame
  EXPECT_EQ(packets(*dp_, "Established"), 0u);
  auto c = dp_->counters();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->size(), static_cast<std::size_t>(PODWARP_NP_NUM_COUNTERS));
  EXPECT_GT(c->front().bytes, 0u);
}

TEST_F(NetpolProgTest, TrackedFlowsRepliesAndGenerations) {
  const Table allow_a = table({{kTcp, 0, 80, 80}}, {{pfx("10.244.9.2", 32), 1}});
  EndpointPolicy b_allow;
  b_allow.ingress = allow_a;
  b_allow.egress = Table{};  // B itself may open nothing
  ASSERT_TRUE(dp_->apply(kB, nullptr, b_allow));

  // A new flow allowed by B's ingress is tracked: its flag at generation 0.
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 2000, kB, 80)), kActOk);
  auto e = ct(kA, 2000, kB, 80);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->flags, PODWARP_NP_CT_INGRESS_OK);
  EXPECT_EQ(e->generation, 0u);
  // B's replies pass its default-deny egress; B's own new flows do not.
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 80, kA, 2000)), kActOk);
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 80, kA, 2001)), kActShot);
  EXPECT_EQ(packets(*dp_, "Established"), 1u);

  // B's ingress becomes default deny. Until commit() the flow goes on; new ones do not.
  EndpointPolicy b_deny = b_allow;
  b_deny.ingress = Table{};
  ASSERT_TRUE(dp_->apply(kB, &b_allow, b_deny));
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 2000, kB, 80)), kActOk);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 2002, kB, 80)), kActShot);
  ASSERT_TRUE(dp_->commit());
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 2000, kB, 80)), kActShot) << "checked again after commit()";
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 80, kA, 2000)), kActOk) << "replies stay allowed";

  // Allowed again: the flow's entry is of the new generation.
  ASSERT_TRUE(dp_->apply(kB, &b_deny, b_allow));
  ASSERT_TRUE(dp_->commit());
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 2000, kB, 80)), kActOk);
  e = ct(kA, 2000, kB, 80);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->generation, 2u);

  // One flow, two checks (A's egress, then B's ingress): each needs its own flag. A's check
  // alone does not let the packet through B's.
  EXPECT_EQ(from_pod(pkt(kTcp, kA, 3000, kB, 81)), kActOk);  // A: not isolated
  e = ct(kA, 3000, kB, 81);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->flags, PODWARP_NP_CT_EGRESS_OK);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 3000, kB, 81)), kActShot);
  EXPECT_EQ(from_pod(pkt(kTcp, kA, 3001, kB, 80)), kActOk);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 3001, kB, 80)), kActOk);
  e = ct(kA, 3001, kB, 80);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->flags, PODWARP_NP_CT_EGRESS_OK | PODWARP_NP_CT_INGRESS_OK);

  // ICMP echo: allowed by a rule without ports; the reply (same identifier) is tracked.
  EndpointPolicy b_icmp = b_allow;
  b_icmp.ingress = table({{0, 0, 0, 0}}, {{pfx("10.244.9.2", 32), 1}});
  ASSERT_TRUE(dp_->apply(kB, &b_allow, b_icmp));
  EXPECT_EQ(to_pod(echo(kA, kB, 77)), kActOk);
  EXPECT_EQ(from_pod(echo(kB, kA, 77, /*reply=*/true)), kActOk);
  EXPECT_EQ(from_pod(echo(kB, kA, 78, /*reply=*/true)), kActShot);
  EXPECT_TRUE(ct(kA, 77, kB, 77, IPPROTO_ICMP));
}

TEST_F(NetpolProgTest, HostAddressesAlwaysAllowed) {
  EndpointPolicy deny_all;
  deny_all.ingress = Table{};
  deny_all.egress = Table{};
  ASSERT_TRUE(dp_->apply(kB, nullptr, deny_all));
  EXPECT_EQ(to_pod(pkt(kTcp, kNode, 4000, kB, 80)), kActShot);
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 4001, kNode, 10250)), kActShot);

  std::vector<std::uint32_t> addrs{kNode, v4("192.168.1.10")};
  ASSERT_TRUE(dp_->set_host_addresses(addrs));
  EXPECT_EQ(to_pod(pkt(kTcp, kNode, 4000, kB, 80)), kActOk);
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 4001, kNode, 10250)), kActOk);
  EXPECT_EQ(to_pod(pkt(kTcp, v4("192.168.1.10"), 4002, kB, 80)), kActOk);
  EXPECT_EQ(packets(*dp_, "AllowedHost"), 3u);
  EXPECT_FALSE(ct(kNode, 4000, kB, 80)) << "host traffic is not tracked";

  // Replaces the set: 169.254.1.1 is no node address any more.
  addrs = {v4("192.168.1.10"), v4("192.168.1.11")};
  ASSERT_TRUE(dp_->set_host_addresses(addrs));
  EXPECT_EQ(to_pod(pkt(kTcp, kNode, 4000, kB, 80)), kActShot);
  auto keys = bpfutil::map_keys<__be32>(dp_->map_fd(PODWARP_NP_MAP_HOST), "host");
  ASSERT_TRUE(keys);
  EXPECT_EQ(std::set<__be32>(keys->begin(), keys->end()),
            std::set<__be32>(addrs.begin(), addrs.end()));
}

// ---------------------------------------------------------------------------------------------
// flow events (pw_np_flows through FlowReader)

// Polls `reader` until `want` events were handed or 2 s passed.
void poll_for(FlowReader& reader, const std::vector<Flow>& got, std::size_t want) {
  for (int i = 0; i < 20 && got.size() < want; ++i) {
    auto r = reader.poll(std::chrono::milliseconds(100));
    ASSERT_TRUE(r) << r.error().message;
  }
}

TEST_F(NetpolProgTest, FlowEventsForDecidedNewFlowsOnly) {
  // B's ingress: TCP 80 from A. One drop before the reader opens: a backlog it skips.
  ASSERT_TRUE(dp_->apply(kB, nullptr,
                         ingress_only(table({{kTcp, 0, 80, 80}}, {{pfx("10.244.9.2", 32), 1}}))));
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 4999, kB, 81)), kActShot);
  std::vector<Flow> got;
  auto reader = FlowReader::open(pins_.dir + "/" PODWARP_NP_MAP_FLOWS, [&](const Flow& f) {
    got.push_back(f);
    return true;
  });
  ASSERT_TRUE(reader) << reader.error().message;
  const auto opened = std::chrono::system_clock::now();

  const PacketSpec allowed = pkt(kTcp, kA, 5000, kB, 80);
  EXPECT_EQ(to_pod(allowed), kActOk);                        // AllowedNew: an event
  EXPECT_EQ(to_pod(allowed), kActOk);                        // established: none
  EXPECT_EQ(from_pod(pkt(kTcp, kB, 80, kA, 5000)), kActOk);  // a reply: none
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 5001, kB, 81)), kActShot);  // DeniedIngress: an event
  EXPECT_EQ(from_pod(pkt(kUdp, kA, 5002, kC, 53)), kActOk);  // Unisolated: an event
  std::vector<std::uint32_t> host{kNode};
  ASSERT_TRUE(dp_->set_host_addresses(host));
  EXPECT_EQ(to_pod(pkt(kTcp, kNode, 5003, kB, 81)), kActOk);  // the node: none
  EXPECT_EQ(run("to_pod", allowed, /*arp=*/true), kActOk);    // not IPv4: none

  poll_for(**reader, got, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ((*reader)->skipped(), 1u) << "the drop before open()";
  const Flow& a = got[0];
  EXPECT_EQ(a.reason, PODWARP_NP_C_ALLOWED_NEW);
  EXPECT_TRUE(a.allowed());
  EXPECT_EQ(a.dir, PODWARP_NP_DIR_INGRESS);
  EXPECT_EQ(std::tuple(a.saddr, a.sport, a.daddr, a.dport, a.proto),
            std::tuple(kA, std::uint16_t{5000}, kB, std::uint16_t{80}, kTcp));
  EXPECT_EQ(a.ifindex, 1u);
  EXPECT_EQ(a.bytes, make_packet(allowed).size());
  EXPECT_LT(std::chrono::abs(a.time - opened), std::chrono::seconds(2));
  EXPECT_EQ(got[1].reason, PODWARP_NP_C_DENIED_INGRESS);
  EXPECT_EQ(got[1].verdict(), "DENIED");
  EXPECT_EQ(got[1].dport, 81);
  EXPECT_EQ(got[2].reason, PODWARP_NP_C_ALLOWED_UNISOLATED);
  EXPECT_EQ(got[2].direction(), "egress");
  EXPECT_EQ(std::tuple(got[2].daddr, got[2].proto), std::tuple(kC, kUdp));

  // Nothing more; a callback that says stop leaves the rest in the ring for the next poll.
  ASSERT_TRUE((*reader)->poll(std::chrono::milliseconds(200)));
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 5004, kB, 82)), kActShot);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 5005, kB, 82)), kActShot);
  std::vector<Flow> one;
  auto stopping = FlowReader::open(pins_.dir + "/" PODWARP_NP_MAP_FLOWS, [&](const Flow& f) {
    one.push_back(f);
    return false;
  });
  ASSERT_TRUE(stopping);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 5006, kB, 82)), kActShot);
  EXPECT_EQ(to_pod(pkt(kTcp, kA, 5007, kB, 82)), kActShot);
  poll_for(**stopping, one, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].sport, 5006);
  poll_for(**stopping, one, 2);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_EQ(one[1].sport, 5007);
  EXPECT_EQ(packets(*dp_, "FlowEventsLost"), 0u);
}

TEST_F(NetpolProgTest, AFullRingLosesEventsNotPackets) {
  TestPins pins;
  DatapathOptions o;
  o.pin_dir = pins.dir;
  o.flow_ring_bytes = 4096;  // 102 events of 8 + 32 bytes
  auto dp = Datapath::open(o);
  ASSERT_TRUE(dp) << dp.error().message;
  ASSERT_TRUE((*dp)->apply(kB, nullptr, ingress_only(Table{})));
  for (std::uint16_t port = 1; port <= 150; ++port)
    ASSERT_EQ(
        test_run((*dp)->program_fd("to_pod"), make_packet(pkt(kTcp, kA, port, kB, 80)), 1).retval,
        kActShot);
  EXPECT_EQ(packets(**dp, "DeniedIngress"), 150u);
  EXPECT_EQ(packets(**dp, "FlowEventsLost"), 150u - 4096 / 40);
}

// ---------------------------------------------------------------------------------------------
// maps: apply / read / prune / remove, pins

class NetpolMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
  }

  // Ingress: three prefixes (one a 0-mask except), two rules; egress: everything to anyone.
  static EndpointPolicy first() {
    EndpointPolicy p;
    p.ingress = table(
        {{kTcp, 0, 80, 80}, {kUdp, 1, 53, 53}},
        {{pfx("10.244.9.2", 32), 0b01}, {pfx("10.0.0.0", 8), 0b11}, {pfx("10.1.0.0", 16), 0}});
    p.egress = table({{0, 0, 0, 0}}, {{pfx("0.0.0.0", 0), 1}});
    return p;
  }
  // Ingress: other ranges and prefixes (one kept with another mask); egress: not isolated.
  static EndpointPolicy second() {
    EndpointPolicy p;
    p.ingress =
        table({{kTcp, 0, 443, 443}}, {{pfx("10.244.9.2", 32), 0b10}, {pfx("10.9.0.0", 16), 0b01}});
    return p;
  }

  TestPins pins_;
};

TEST_F(NetpolMapsTest, ApplyReadRoundTripAndDiff) {
  auto dp = open_small(pins_.dir);
  ASSERT_NE(dp, nullptr);
  const int peers = dp->map_fd(PODWARP_NP_MAP_PEERS), ports = dp->map_fd(PODWARP_NP_MAP_PORTS);
  EndpointPolicy p1 = first(), p2 = second();
  p1.policies = {"ns/a"};  // not in the maps
  ASSERT_TRUE(dp->apply(kB, nullptr, p1));
  auto got = dp->read(kB);
  ASSERT_TRUE(got) << got.error().message;
  p1.policies.clear();
  EXPECT_EQ(*got, p1);
  EXPECT_EQ(key_count<podwarp_np_peer_key>(peers), 4u);
  EXPECT_EQ(key_count<podwarp_np_ep_key>(ports), 2u);

  // The change: stale prefixes and the egress table go.
  ASSERT_TRUE(dp->apply(kB, &p1, p2));
  got = dp->read(kB);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, p2);
  EXPECT_EQ(key_count<podwarp_np_peer_key>(peers), 2u);
  EXPECT_EQ(key_count<podwarp_np_ep_key>(ports), 1u);

  // Another endpoint; prune keeps only it.
  ASSERT_TRUE(dp->apply(kC, nullptr, p1));
  std::vector<std::uint32_t> keep{kC, kA};
  auto pruned = dp->prune(keep);
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 1);
  EXPECT_EQ(*dp->read(kB), EndpointPolicy{});
  EXPECT_EQ(*dp->read(kC), p1);

  ASSERT_TRUE(dp->remove(kC, p1));
  EXPECT_EQ(*dp->read(kC), EndpointPolicy{});
  EXPECT_EQ(key_count<podwarp_np_peer_key>(peers), 0u);
  EXPECT_EQ(key_count<podwarp_np_ep_key>(ports), 0u);
}

TEST_F(NetpolMapsTest, TablesTheMapsCannotHoldAreRefusedWholly) {
  auto dp = open_small(pins_.dir);
  ASSERT_NE(dp, nullptr);
  EndpointPolicy bad = first();
  bad.egress->ranges.push_back({kTcp, 64, 1, 1});
  auto r = dp->apply(kB, nullptr, bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
  bad = first();
  bad.ingress->ranges.assign(PODWARP_NP_MAX_RANGES + 1, Range{kTcp, 0, 1, 1});
  r = dp->apply(kB, nullptr, bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, E2BIG);
  EXPECT_EQ(key_count<podwarp_np_peer_key>(dp->map_fd(PODWARP_NP_MAP_PEERS)), 0u);
  EXPECT_EQ(*dp->read(kB), EndpointPolicy{});
}

std::uint32_t map_id(int fd, std::uint32_t* max_entries = nullptr) {
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  if (max_entries != nullptr) *max_entries = info.max_entries;
  return info.id;
}

TEST_F(NetpolMapsTest, OpenTwiceReusesPinsAndRefusesOtherLayouts) {
  auto dp1 = open_small(pins_.dir, 512);
  ASSERT_NE(dp1, nullptr);
  ASSERT_TRUE(dp1->apply(kB, nullptr, first()));
  ASSERT_TRUE(dp1->commit());
  for (const char* m :
       {PODWARP_NP_MAP_PORTS, PODWARP_NP_MAP_PEERS, PODWARP_NP_MAP_CT, PODWARP_NP_MAP_HOST,
        PODWARP_NP_MAP_CONFIG, PODWARP_NP_MAP_COUNTERS, PODWARP_NP_MAP_FLOWS}) {
    struct stat st {};
    EXPECT_EQ(::stat((pins_.dir + "/" + m).c_str(), &st), 0) << m << " is pinned";
  }

  // A restarted noded: the same maps (also their sizes), the same tables and generation.
  auto dp2 = open_small(pins_.dir, 2048);
  ASSERT_NE(dp2, nullptr);
  std::uint32_t size1 = 0, size2 = 0;
  EXPECT_EQ(map_id(dp1->map_fd(PODWARP_NP_MAP_CT), &size1),
            map_id(dp2->map_fd(PODWARP_NP_MAP_CT), &size2));
  EXPECT_EQ(size1, 512u);
  EXPECT_EQ(size2, 512u);
  EXPECT_EQ(map_id(dp1->map_fd(PODWARP_NP_MAP_PEERS)), map_id(dp2->map_fd(PODWARP_NP_MAP_PEERS)));
  EXPECT_EQ(map_id(dp1->map_fd(PODWARP_NP_MAP_FLOWS)), map_id(dp2->map_fd(PODWARP_NP_MAP_FLOWS)));
  EXPECT_EQ(*dp2->read(kB), first());
  podwarp_np_config cfg{};
  __u32 zero = 0;
  ASSERT_EQ(bpf_map_lookup_elem(dp2->map_fd(PODWARP_NP_MAP_CONFIG), &zero, &cfg), 0);
  EXPECT_EQ(cfg.generation, 1u);
  EXPECT_NE(dp2->program_fd("from_pod"), -1);
  EXPECT_EQ(dp2->program_fd("nope"), -1);
  EXPECT_EQ(dp2->map_fd("nope"), -1);
  dp1.reset();
  dp2.reset();

  // A pin of another layout (key size 4) is refused, not misread.
  TestPins other;
  ASSERT_TRUE(bpfutil::mkdir_p(other.dir));
  UniqueFd wrong(bpf_map_create(BPF_MAP_TYPE_LRU_HASH, PODWARP_NP_MAP_CT, 4, 8, 16, nullptr));
  ASSERT_TRUE(wrong);
  ASSERT_EQ(bpf_obj_pin(wrong.get(), (other.dir + "/" PODWARP_NP_MAP_CT).c_str()), 0);
  DatapathOptions o;
  o.pin_dir = other.dir;
  auto refused = Datapath::open(o);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EPROTO) << refused.error().message;
  EXPECT_NE(refused.error().message.find("pw_np_ct"), std::string::npos);

  // remove_pins is the way out: then the folder is gone.
  ASSERT_TRUE(Datapath::remove_pins(other.dir));
  struct stat st {};
  EXPECT_NE(::stat(other.dir.c_str(), &st), 0);

  // Pins off bpffs are refused (nothing is made).
  o.pin_dir = "/tmp/podwarp-np-not-bpffs-" + std::to_string(::getpid()) + "/pins";
  auto off = Datapath::open(o);
  ASSERT_FALSE(off);
  EXPECT_EQ(off.error().code, ENOTSUP);
}

TEST_F(NetpolMapsTest, ACountersMapOfAnOlderBuildIsReused) {
  // Pinned by a build with 8 counters (before FlowEventsLost): the program loads against it and
  // the counter it lacks reads as 0.
  ASSERT_TRUE(bpfutil::mkdir_p(pins_.dir));
  UniqueFd old(bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, PODWARP_NP_MAP_COUNTERS, 4,
                              sizeof(podwarp_np_counter), PODWARP_NP_C_EVENTS_LOST, nullptr));
  ASSERT_TRUE(old);
  ASSERT_EQ(bpf_obj_pin(old.get(), (pins_.dir + "/" PODWARP_NP_MAP_COUNTERS).c_str()), 0);
  auto dp = open_small(pins_.dir);
  ASSERT_NE(dp, nullptr);
  EXPECT_EQ(map_id(dp->map_fd(PODWARP_NP_MAP_COUNTERS)), map_id(old.get()));
  auto c = dp->counters();
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->size(), static_cast<std::size_t>(PODWARP_NP_NUM_COUNTERS));
  EXPECT_EQ(c->back().name, "FlowEventsLost");
  EXPECT_EQ(c->back().packets, 0u);
}

// ---------------------------------------------------------------------------------------------
// real traffic

// A TCP listener on 0.0.0.0 (a port of the kernel's choice) in the calling thread's namespace.
UniqueFd listen_tcp() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in a = sin4("0.0.0.0", 0);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd.get(), 64) != 0)
    return UniqueFd();
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// A TCP connection from the calling thread's namespace to addr:port, or none when the handshake
// does not finish within `ms` (a dropped SYN or SYN-ACK).
UniqueFd connect_tcp(std::uint32_t addr, std::uint16_t port, int ms = 700) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = addr;
  to.sin_port = htons(port);
  if (!fd || (::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 &&
              errno != EINPROGRESS))
    return UniqueFd();
  pollfd p{fd.get(), POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (::poll(&p, 1, ms) != 1 || ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
      err != 0)
    return UniqueFd();
  return fd;
}

// Sends one byte on `from`; whether it arrives on `to` within `ms`.
bool delivers(int from, int to, int ms) {
  if (::send(from, "x", 1, MSG_NOSIGNAL) != 1) return false;
  if (!readable_within(to, ms)) return false;
  char c = 0;
  return ::recv(to, &c, 1, 0) == 1 && c == 'x';
}

class NetpolTrafficTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = cannot_run(); !why.empty()) GTEST_SKIP() << why;
    node_.emplace();
    ASSERT_TRUE(node_->ok()) << "unshare(CLONE_NEWNET): " << strerror(errno);
    a_.emplace();
    b_.emplace();
    ASSERT_TRUE(a_->ok() && b_->ok());
    ASSERT_EQ(run_cmd({"ip", "link", "set", "lo", "up"}), 0);
    ASSERT_TRUE(write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1"));
    // Routed as noded/net does it: a /32 per pod, the link-local gateway on every host veth.
    for (auto [pod, host, ip] :
         {std::tuple{&*a_, "pwnpa", "10.244.9.2"}, std::tuple{&*b_, "pwnpb", "10.244.9.3"}}) {
      std::string peer = std::string(host) + "1";
      ASSERT_EQ(run_cmd({"ip", "link", "add", host, "type", "veth", "peer", "name", peer}), 0);
      ASSERT_EQ(run_cmd({"ip", "link", "set", peer, "netns", pod->path()}), 0);
      ASSERT_EQ(run_cmd({"ip", "addr", "add", "169.254.1.1/32", "dev", host}), 0);
      ASSERT_EQ(run_cmd({"ip", "link", "set", host, "up"}), 0);
      ASSERT_EQ(run_cmd({"ip", "route", "add", std::string(ip) + "/32", "dev", host}), 0);
      ASSERT_EQ(pod->run([&] {
        int r = run_cmd({"ip", "link", "set", "lo", "up"});
        r |= run_cmd({"ip", "addr", "add", std::string(ip) + "/32", "dev", peer});
        r |= run_cmd({"ip", "link", "set", peer, "up"});
        r |= run_cmd({"ip", "route", "add", "169.254.1.1", "dev", peer, "scope", "link"});
        r |= run_cmd({"ip", "route", "add", "default", "via", "169.254.1.1", "dev", peer});
        return r;
      }),
                0);
      int ifindex = static_cast<int>(::if_nametoindex(host));
      ASSERT_GT(ifindex, 0);
      ifindexes_.push_back(ifindex);
    }
    dp_ = open_small(pins_.dir);
    ASSERT_NE(dp_, nullptr);
    for (int ifindex : ifindexes_) {
      auto r = dp_->attach_tc(ifindex);
      ASSERT_TRUE(r) << r.error().message;
    }
    // A listener in each pod and on the node.
    a_listen_ = a_->run(listen_tcp);
    b_listen_ = b_->run(listen_tcp);
    b_listen2_ = b_->run(listen_tcp);
    node_listen_ = listen_tcp();
    ASSERT_TRUE(a_listen_ && b_listen_ && b_listen2_ && node_listen_);
  }
  void TearDown() override {
    a_listen_.reset();
    b_listen_.reset();
    b_listen2_.reset();
    node_listen_.reset();
    dp_.reset();
    a_.reset();
    b_.reset();
    node_.reset();  // back to the original namespace; N and its links vanish
  }

  // A connection from `from` (nullptr: the node) to the listener `to` at `addr`; the accepted
  // end goes to *server when given.
  UniqueFd connect(const AnonNetns* from, std::uint32_t addr, const UniqueFd& to,
                   UniqueFd* server = nullptr) {
    const std::uint16_t port = port_of(to.get());
    UniqueFd c =
        from ? from->run([&] { return connect_tcp(addr, port); }) : connect_tcp(addr, port);
    if (c && readable_within(to.get(), 1000)) {
      UniqueFd s(::accept4(to.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (server != nullptr) *server = std::move(s);
    }
    return c;
  }
  bool connects(const AnonNetns* from, std::uint32_t addr, const UniqueFd& to) {
    return static_cast<bool>(connect(from, addr, to));
  }

  std::uint64_t packets(std::string_view name) { return netpol::packets(*dp_, name); }

  TestPins pins_;
  std::optional<PrivateNetns> node_;
  std::optional<AnonNetns> a_, b_;
  std::vector<int> ifindexes_;
  std::unique_ptr<Datapath> dp_;
  UniqueFd a_listen_, b_listen_, b_listen2_, node_listen_;
};

TEST_F(NetpolTrafficTest, WithoutTablesEverythingFlows) {
  EXPECT_TRUE(connects(&*a_, kB, b_listen_));
  EXPECT_TRUE(connects(&*b_, kA, a_listen_));
  EXPECT_TRUE(connects(nullptr, kB, b_listen_));
  EXPECT_TRUE(connects(&*a_, kNode, node_listen_));
  EXPECT_GT(packets("Unisolated"), 0u);
  EXPECT_GT(packets("Established"), 0u);
  EXPECT_GT(packets("PassedOther"), 0u);  // ARP
  EXPECT_EQ(packets("DeniedIngress") + packets("DeniedEgress"), 0u);
}

TEST_F(NetpolTrafficTest, IngressDefaultDenyAndAnAllowRule) {
  const EndpointPolicy deny = ingress_only(Table{});
  ASSERT_TRUE(dp_->apply(kB, nullptr, deny));
  ASSERT_TRUE(dp_->commit());
  EXPECT_FALSE(connects(&*a_, kB, b_listen_)) << "B's ingress is default deny";
  EXPECT_TRUE(connects(&*b_, kA, a_listen_)) << "B's egress and A's ingress are not isolated";
  EXPECT_FALSE(connects(nullptr, kB, b_listen_)) << "the node is no host address yet";
  EXPECT_GT(packets("DeniedIngress"), 0u);

  // A may reach B on one TCP port.
  const EndpointPolicy allow =
      ingress_only(table({{kTcp, 0, port_of(b_listen_.get()), port_of(b_listen_.get())}},
                         {{pfx("10.244.9.2", 32), 1}}));
  ASSERT_TRUE(dp_->apply(kB, &deny, allow));
  ASSERT_TRUE(dp_->commit());
  EXPECT_TRUE(connects(&*a_, kB, b_listen_));
  EXPECT_FALSE(connects(&*a_, kB, b_listen2_)) << "another port";
  EXPECT_FALSE(connects(nullptr, kB, b_listen_)) << "another peer";
  EXPECT_GT(packets("AllowedNew"), 0u);
}

TEST_F(NetpolTrafficTest, CommitChecksEstablishedFlowsAgain) {
  const std::uint16_t port = port_of(b_listen_.get());
  const EndpointPolicy allow =
      ingress_only(table({{kTcp, 0, port, port}}, {{pfx("10.244.9.2", 32), 1}}));
  const EndpointPolicy deny = ingress_only(Table{});
  ASSERT_TRUE(dp_->apply(kB, nullptr, allow));
  ASSERT_TRUE(dp_->commit());
  UniqueFd server;
  UniqueFd client = connect(&*a_, kB, b_listen_, &server);
  ASSERT_TRUE(client && server);
  EXPECT_TRUE(delivers(client.get(), server.get(), 2000));
  EXPECT_TRUE(delivers(server.get(), client.get(), 2000));

  // Denied, not committed yet: the flow is still tracked as allowed.
  ASSERT_TRUE(dp_->apply(kB, &allow, deny));
  EXPECT_TRUE(delivers(client.get(), server.get(), 2000));
  // Committed: A's data no longer reaches B; B's (replies of an allowed flow) still reach A.
  ASSERT_TRUE(dp_->commit());
  EXPECT_FALSE(delivers(client.get(), server.get(), 700));
  EXPECT_TRUE(delivers(server.get(), client.get(), 2000));
  // Allowed again: the retransmission gets through.
  ASSERT_TRUE(dp_->apply(kB, &deny, allow));
  ASSERT_TRUE(dp_->commit());
  EXPECT_TRUE(readable_within(server.get(), 5000));
}

TEST_F(NetpolTrafficTest, HostAddressesAreAlwaysAllowed) {
  ASSERT_TRUE(dp_->apply(kB, nullptr, ingress_only(Table{})));
  ASSERT_TRUE(dp_->commit());
  EXPECT_FALSE(connects(nullptr, kB, b_listen_));
  std::vector<std::uint32_t> host{kNode};
  ASSERT_TRUE(dp_->set_host_addresses(host));
  EXPECT_TRUE(connects(nullptr, kB, b_listen_));
  EXPECT_FALSE(connects(&*a_, kB, b_listen_));
  EXPECT_GT(packets("AllowedHost"), 0u);
}

TEST_F(NetpolTrafficTest, EgressDefaultDeny) {
  ASSERT_TRUE(dp_->apply(kA, nullptr, egress_only(Table{})));
  ASSERT_TRUE(dp_->commit());
  EXPECT_FALSE(connects(&*a_, kB, b_listen_));
  EXPECT_FALSE(connects(&*a_, kNode, node_listen_));
  EXPECT_TRUE(connects(&*b_, kA, a_listen_)) << "A's replies pass";
  EXPECT_GT(packets("DeniedEgress"), 0u);
  std::vector<std::uint32_t> host{kNode};
  ASSERT_TRUE(dp_->set_host_addresses(host));
  EXPECT_TRUE(connects(&*a_, kNode, node_listen_));
}

TEST_F(NetpolTrafficTest, IcmpEchoNeedsARuleWithoutPorts) {
  const std::uint16_t port = port_of(b_listen_.get());
  const EndpointPolicy tcp_only =
      ingress_only(table({{kTcp, 0, port, port}}, {{pfx("10.244.9.2", 32), 1}}));
  ASSERT_TRUE(dp_->apply(kB, nullptr, tcp_only));
  ASSERT_TRUE(dp_->commit());
  EXPECT_EQ(a_->run([] { return ping("10.244.9.3", 0x4e50); }), -1);
  const EndpointPolicy everything =
      ingress_only(table({{0, 0, 0, 0}}, {{pfx("10.244.9.2", 32), 1}}));
  ASSERT_TRUE(dp_->apply(kB, &tcp_only, everything));
  ASSERT_TRUE(dp_->commit());
  EXPECT_EQ(a_->run([] { return ping("10.244.9.3", 0x4e51); }), 0x4e51);
  EXPECT_TRUE(connects(&*a_, kB, b_listen2_)) << "every protocol and port";
  EXPECT_EQ(b_->run([] { return ping("10.244.9.2", 0x4e52); }), 0x4e52) << "B's egress is open";
}

TEST_F(NetpolTrafficTest, DetachedMeansNotEnforced) {
  ASSERT_TRUE(dp_->apply(kB, nullptr, ingress_only(Table{})));
  ASSERT_TRUE(dp_->commit());
  EXPECT_FALSE(connects(&*a_, kB, b_listen_));
  for (int ifindex : ifindexes_) ASSERT_TRUE(dp_->detach_tc(ifindex));
  EXPECT_TRUE(connects(&*a_, kB, b_listen_));
  // Attaching again (twice: a replace) enforces again.
  for (int ifindex : ifindexes_) {
    ASSERT_TRUE(dp_->attach_tc(ifindex));
    ASSERT_TRUE(dp_->attach_tc(ifindex));
  }
  EXPECT_FALSE(connects(&*a_, kB, b_listen_));
}

}  // namespace
}  // namespace podwarp::noded::netpol
