// Real-kernel tests of the tc NodePort datapath through BPF_PROG_TEST_RUN, with tables of
// crafted packets (issue 6, acceptance 4), plus load/pin/restart behaviour of Datapath.
// Root only (skipped otherwise). Each test pins under its own /sys/fs/bpf/podwarp-test-lb-*
// and runs in a private network namespace (a veth pair inside it gives the FIB lookups of the
// SNAT path a route); both are removed at the end. No packet leaves the namespace: test runs
// never transmit.
#include "lb/datapath.h"
#include "lb/nodeport_setup.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <map>
#include <optional>
#include <set>

#include "lb/lb_test_util.h"
#include "lb/service_map.h"

namespace podwarp::noded::lb {
namespace {

using namespace testing;

constexpr std::uint32_t kActOk = 0, kActShot = 2, kActRedirect = 7;

Backend be(const char* addr, std::uint16_t port, bool local, Protocol p = Protocol::TCP) {
  return Backend{*IpAddr::parse(addr), port, p, local, false};
}

ServiceDesc nodeport_service(std::string key, std::uint16_t node_port, std::vector<Backend> bes,
                             Protocol p = Protocol::TCP, std::vector<Frontend> extra = {}) {
  ServiceDesc d;
  d.key = std::move(key);
  ServicePort sp;
  sp.proto = p;
  sp.frontends.push_back({FrontendKind::NodePort, IpAddr::any_v4(), node_port, p});
  for (auto& f : extra) sp.frontends.push_back(f);
  for (const auto& b : bes) {
    sp.cluster_backends.push_back(b);
    if (b.local) sp.local_backends.push_back(b);
  }
  d.ports.push_back(sp);
  return d;
}

// Root, BPF, a private netns with a veth pair "pwlb0" (192.168.50.10/24, the node's address,
// forwarding on, default route via 192.168.50.1) and the datapath loaded with small maps.
class NodePortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
    netns_.emplace();
    ASSERT_TRUE(netns_->ok()) << "unshare(CLONE_NEWNET): " << strerror(errno);
    ASSERT_EQ(run_cmd({"ip", "link", "set", "lo", "up"}), 0);
    ASSERT_EQ(
        run_cmd({"ip", "link", "add", "name", "pwlb0", "type", "veth", "peer", "name", "pwlb1"}),
        0);
    ASSERT_EQ(run_cmd({"ip", "addr", "add", "192.168.50.10/24", "dev", "pwlb0"}), 0);
    ASSERT_EQ(run_cmd({"ip", "link", "set", "pwlb0", "up"}), 0);
    ASSERT_EQ(run_cmd({"ip", "link", "set", "pwlb1", "up"}), 0);
    ASSERT_EQ(run_cmd({"ip", "route", "add", "default", "via", "192.168.50.1"}), 0);
    ASSERT_TRUE(write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1"));
    ifindex_ = static_cast<int>(::if_nametoindex("pwlb0"));
    ASSERT_GT(ifindex_, 0);

    auto dp = open_small_datapath(pins_.dir);
    ASSERT_TRUE(dp) << dp.error().message;
    dp_ = std::move(*dp);
    sm_.emplace(dp_->maps());
    std::vector<IpAddr> node{*IpAddr::parse("192.168.50.10")};
    ASSERT_TRUE(dp_->set_node_addresses(node));
  }
  void TearDown() override {
    sm_.reset();
    dp_.reset();
    netns_.reset();
  }

  RunResult ingress(const PacketSpec& s) {
    return test_run(dp_->program_fd(Program::NodePortIngress), make_packet(s), ifindex_);
  }
  RunResult egress(const PacketSpec& s) {
    return test_run(dp_->program_fd(Program::NodePortEgress), make_packet(s), ifindex_);
  }
  Counters counters() {
    auto c = dp_->counters();
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : Counters{};
  }

  TestPins pins_;
  std::optional<PrivateNetns> netns_;
  int ifindex_ = 0;
  std::unique_ptr<Datapath> dp_;
  std::optional<ServiceMap> sm_;
};

const std::uint32_t kClient = v4("198.51.100.7");
const std::uint32_t kNode = v4("192.168.50.10");
const std::uint32_t kExtIp = v4("203.0.113.7");

TEST_F(NodePortTest, PacketTable) {
  Frontend ext{FrontendKind::ExternalIP, *IpAddr::parse("203.0.113.7"), 80, Protocol::TCP};
  ASSERT_TRUE(sm_->upsert_service(
      nodeport_service("ns/web", 30080, {be("10.244.1.10", 8080, true)}, Protocol::TCP, {ext})));
  ASSERT_TRUE(sm_->upsert_service(nodeport_service("ns/empty", 30081, {})));
  ASSERT_TRUE(sm_->upsert_service(nodeport_service(
      "ns/dns", 30082, {be("10.244.1.11", 5353, true, Protocol::UDP)}, Protocol::UDP)));
  ASSERT_TRUE(
      sm_->upsert_service(nodeport_service("ns/remote", 30083, {be("10.244.2.20", 8080, false)})));

  struct Row {
    const char* name;
    bool egress;
    PacketSpec in;
    std::uint32_t want_ret;
    std::string want_src, want_dst;  // "" = unchanged
    const char* drop_reason = nullptr;
  };
  auto tcp = [](std::uint32_t s, std::uint16_t sp, std::uint32_t d, std::uint16_t dp,
                std::uint8_t flags = 0x02) { return pkt(IPPROTO_TCP, s, sp, d, dp, flags); };
  auto udp = [](std::uint32_t s, std::uint16_t sp, std::uint32_t d, std::uint16_t dp,
                bool zero = false) {
    PacketSpec p = pkt(IPPROTO_UDP, s, sp, d, dp);
    p.udp_zero_csum = zero;
    return p;
  };
  PacketSpec frag = tcp(kClient, 40009, kNode, 30080);
  frag.frag = 0x2000;  // MF: the first of several fragments
  std::vector<Row> rows = {
      {"SYN to NodePort -> DNAT to the local backend", false, tcp(kClient, 40000, kNode, 30080),
       kActOk, "", "10.244.1.10:8080"},
      {"ACK of the same flow -> same backend (conntrack)", false,
       tcp(kClient, 40000, kNode, 30080, 0x10), kActOk, "", "10.244.1.10:8080"},
      {"reply from the local backend at egress -> source is the NodePort again", true,
       tcp(v4("10.244.1.10"), 8080, kClient, 40000, 0x12), kActOk, "192.168.50.10:30080", ""},
      {"to the externalIP -> DNAT", false, tcp(kClient, 40001, kExtIp, 80), kActOk, "",
       "10.244.1.10:8080"},
      {"externalIP reply -> source is the externalIP", true,
       tcp(v4("10.244.1.10"), 8080, kClient, 40001, 0x12), kActOk, "203.0.113.7:80", ""},
      {"NodePort port on an address that is not the node's -> untouched", false,
       tcp(kClient, 40002, v4("192.168.50.99"), 30080), kActOk, "", ""},
      {"NodePort without endpoints -> dropped, NoBackend", false, tcp(kClient, 40003, kNode, 30081),
       kActShot, "", "", "NoBackend"},
      {"UDP to NodePort -> DNAT", false, udp(kClient, 5000, kNode, 30082), kActOk, "",
       "10.244.1.11:5353"},
      {"UDP without checksum -> DNAT, checksum stays 0", false,
       udp(kClient, 5001, kNode, 30082, true), kActOk, "", "10.244.1.11:5353"},
      {"UDP reply at egress -> reverse NAT", true, udp(v4("10.244.1.11"), 5353, kClient, 5000),
       kActOk, "192.168.50.10:30082", ""},
      {"the node's own TCP port 22 -> untouched", false, tcp(kClient, 40004, kNode, 22), kActOk, "",
       ""},
      {"unrelated egress -> untouched", true, tcp(kNode, 22, kClient, 40004, 0x12), kActOk, "", ""},
      {"first fragment to a NodePort -> dropped, FragmentToService", false, frag, kActShot, "", "",
       "FragmentToService"},
  };

  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    Counters before = counters();
    RunResult r = row.egress ? egress(row.in) : ingress(row.in);
    ASSERT_EQ(r.err, 0) << strerror(errno);
    EXPECT_EQ(r.retval, row.want_ret);
    if (row.want_ret == kActShot) {
      EXPECT_EQ(counters().drop(row.drop_reason), before.drop(row.drop_reason) + 1);
      continue;
    }
    ParsedPacket in = parse_packet(make_packet(row.in));
    ParsedPacket out = parse_packet(r.out);
    EXPECT_EQ(out.src(), row.want_src.empty() ? in.src() : row.want_src);
    EXPECT_EQ(out.dst(), row.want_dst.empty() ? in.dst() : row.want_dst);
    EXPECT_TRUE(out.ip_csum_ok) << "IPv4 header checksum";
    EXPECT_TRUE(out.l4_csum_ok) << "L4 checksum";
    EXPECT_EQ(out.udp_csum_zero, row.in.proto == IPPROTO_UDP && row.in.udp_zero_csum);
    EXPECT_EQ(out.payload, "hello");
  }
  Counters c = counters();
  EXPECT_GE(c.event("NodePortNewFlow"), 4u);
  EXPECT_GE(c.event("NodePortReverseNat"), 3u);
}

TEST_F(NodePortTest, RemoteBackendIsSnatedAndRedirectedBothWays) {
  ASSERT_TRUE(
      sm_->upsert_service(nodeport_service("ns/remote", 30083, {be("10.244.2.20", 8080, false)})));
  PacketSpec syn;
  syn.saddr = kClient;
  syn.sport = 40100;
  syn.daddr = kNode;
  syn.dport = 30083;
  RunResult r = ingress(syn);
  ASSERT_EQ(r.err, 0);
  EXPECT_EQ(r.retval, kActRedirect) << "FIB lookup via 192.168.50.1 + bpf_redirect_neigh";
  ParsedPacket out = parse_packet(r.out);
  EXPECT_EQ(out.dst(), "10.244.2.20:8080");
  EXPECT_EQ(v4_str(out.saddr), "192.168.50.10") << "SNAT to the address the client used";
  EXPECT_GE(out.sport, PODWARP_LB_SNAT_PORT_MIN_DEFAULT);
  EXPECT_TRUE(out.ip_csum_ok);
  EXPECT_TRUE(out.l4_csum_ok);
  EXPECT_EQ(counters().event("NodePortSnatFlow"), 1u);

  // The backend's reply comes back to the node's SNAT port.
  PacketSpec reply;
  reply.saddr = v4("10.244.2.20");
  reply.sport = 8080;
  reply.daddr = kNode;
  reply.dport = out.sport;
  reply.tcp_flags = 0x12;
  RunResult back = ingress(reply);
  ASSERT_EQ(back.err, 0);
  EXPECT_EQ(back.retval, kActRedirect);
  ParsedPacket b = parse_packet(back.out);
  EXPECT_EQ(b.src(), "192.168.50.10:30083");
  EXPECT_EQ(b.dst(), "198.51.100.7:40100");
  EXPECT_TRUE(b.ip_csum_ok);
  EXPECT_TRUE(b.l4_csum_ok);

  // The client's next packet reuses the same SNAT port.
  syn.tcp_flags = 0x10;
  RunResult again = ingress(syn);
  EXPECT_EQ(again.retval, kActRedirect);
  EXPECT_EQ(parse_packet(again.out).sport, out.sport);

  // Another client gets its own port.
  PacketSpec other = syn;
  other.saddr = v4("198.51.100.8");
  other.tcp_flags = 0x02;
  RunResult o = ingress(other);
  EXPECT_EQ(o.retval, kActRedirect);
  EXPECT_NE(parse_packet(o.out).sport, out.sport);

  // Without a route to the backend the packet is dropped with FibLookupFailed.
  ASSERT_EQ(run_cmd({"ip", "route", "del", "default"}), 0);
  PacketSpec third = syn;
  third.saddr = v4("198.51.100.9");
  third.tcp_flags = 0x02;
  RunResult f = ingress(third);
  EXPECT_EQ(f.retval, kActShot);
  EXPECT_EQ(counters().drop("FibLookupFailed"), 1u);
}

TEST_F(NodePortTest, AffinityAndExternalTrafficPolicyLocal) {
  // Three local backends, ClientIP affinity: one client sticks, across new flows.
  auto d = nodeport_service(
      "ns/sticky", 30090,
      {be("10.244.1.1", 80, true), be("10.244.1.2", 80, true), be("10.244.1.3", 80, true)});
  d.affinity_timeout_s = 300;
  ASSERT_TRUE(sm_->upsert_service(d));
  std::map<std::string, int> seen;
  for (std::uint16_t port = 41000; port < 41020; ++port) {
    PacketSpec p;
    p.saddr = kClient;
    p.sport = port;
    p.daddr = kNode;
    p.dport = 30090;
    RunResult r = ingress(p);
    ASSERT_EQ(r.retval, kActOk);
    ++seen[parse_packet(r.out).dst()];
  }
  EXPECT_EQ(seen.size(), 1u) << "sessionAffinity ClientIP";
  EXPECT_GE(counters().event("AffinityHit"), 19u);

  // externalTrafficPolicy Local: only the local endpoint, the client address is kept.
  auto local = nodeport_service(
      "ns/local", 30091,
      {be("10.244.1.5", 80, true), be("10.244.2.5", 80, false), be("10.244.3.5", 80, false)});
  local.external_local = true;
  ASSERT_TRUE(sm_->upsert_service(local));
  for (std::uint16_t port = 42000; port < 42020; ++port) {
    PacketSpec p;
    p.saddr = kClient;
    p.sport = port;
    p.daddr = kNode;
    p.dport = 30091;
    RunResult r = ingress(p);
    ASSERT_EQ(r.retval, kActOk);
    ParsedPacket out = parse_packet(r.out);
    EXPECT_EQ(out.dst(), "10.244.1.5:80");
    EXPECT_EQ(out.saddr, kClient);
  }
  // Spread without affinity: 3 backends all get some of 60 new flows.
  auto spread = nodeport_service(
      "ns/spread", 30092,
      {be("10.244.1.6", 80, true), be("10.244.1.7", 80, true), be("10.244.1.8", 80, true)});
  ASSERT_TRUE(sm_->upsert_service(spread));
  std::map<std::string, int> hits;
  for (std::uint16_t port = 43000; port < 43060; ++port) {
    PacketSpec p;
    p.saddr = kClient;
    p.sport = port;
    p.daddr = kNode;
    p.dport = 30092;
    ++hits[parse_packet(ingress(p).out).dst()];
  }
  EXPECT_EQ(hits.size(), 3u);
}

TEST_F(NodePortTest, BackendRemovalAffectsNewFlowsOnly) {
  ASSERT_TRUE(sm_->upsert_service(nodeport_service(
      "ns/web", 30080, {be("10.244.1.10", 8080, true), be("10.244.1.11", 8080, true)})));
  PacketSpec p;
  p.saddr = kClient;
  p.sport = 45000;
  p.daddr = kNode;
  p.dport = 30080;
  std::string first = parse_packet(ingress(p).out).dst();
  // Remove the other backend... then the chosen one: the established flow keeps its backend
  // (conntrack), new flows go to what is left.
  std::vector<Backend> keep = {first == "10.244.1.10:8080" ? be("10.244.1.11", 8080, true)
                                                           : be("10.244.1.10", 8080, true)};
  ASSERT_TRUE(sm_->upsert_service(nodeport_service("ns/web", 30080, keep)));
  p.tcp_flags = 0x10;
  EXPECT_EQ(parse_packet(ingress(p).out).dst(), first);
  for (std::uint16_t port = 45001; port < 45011; ++port) {
    p.sport = port;
    p.tcp_flags = 0x02;
    EXPECT_EQ(parse_packet(ingress(p).out).dst(),
              keep[0].addr.to_string() + ":" + std::to_string(keep[0].port));
  }
}

// Egress masquerade on pwlb0 (192.168.50.10): pods are 10.244.0.0/16 (also the exempt
// destinations); 198.51.100.0/24 is "outside". Packets only go through BPF_PROG_TEST_RUN.
class MasqueradeTest : public NodePortTest {
 protected:
  void SetUp() override {
    NodePortTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    MasqueradeConfig mc;
    mc.sources = {*Ipv4Cidr::parse("10.244.0.0/16")};
    mc.exempt = {*Ipv4Cidr::parse("10.244.0.0/16")};
    ASSERT_TRUE(dp_->set_masquerade(mc));
    std::vector<MasqueradeInterface> ifs{{ifindex_, kNode}};
    ASSERT_TRUE(dp_->set_masquerade_interfaces(ifs));
  }
};

const std::uint32_t kPod = v4("10.244.1.10");
const std::uint32_t kOutside = v4("198.51.100.20");

TEST_F(MasqueradeTest, PodFlowsToOutsideAreMasqueradedAndRepliesReversed) {
  struct Flow {
    const char* name;
    PacketSpec out;    // the pod's packet at egress
    PacketSpec reply;  // the answer (ports/ids filled in from the translated packet)
  };
  PacketSpec udp0 = pkt(IPPROTO_UDP, kPod, 5001, kOutside, 53);
  udp0.udp_zero_csum = true;
  PacketSpec echo = pkt(IPPROTO_ICMP, kPod, 0x1234, kOutside, 0);
  PacketSpec echo_reply = pkt(IPPROTO_ICMP, kOutside, 0, kNode, 0);
  echo_reply.icmp_type = 0;
  std::vector<Flow> flows = {
      {"TCP", pkt(IPPROTO_TCP, kPod, 40000, kOutside, 443),
       pkt(IPPROTO_TCP, kOutside, 443, kNode, 0, 0x12)},
      {"UDP", pkt(IPPROTO_UDP, kPod, 5000, kOutside, 53),
       pkt(IPPROTO_UDP, kOutside, 53, kNode, 0)},
      {"UDP without checksum", udp0, pkt(IPPROTO_UDP, kOutside, 53, kNode, 0)},
      {"ICMP echo (identifier as port)", echo, echo_reply},
  };
  std::set<std::uint16_t> ports;
  for (Flow& f : flows) {
    SCOPED_TRACE(f.name);
    const bool icmp = f.out.proto == IPPROTO_ICMP;
    RunResult r = egress(f.out);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, kActOk) << "the kernel sends it on";
    ParsedPacket o = parse_packet(r.out);
    EXPECT_EQ(v4_str(o.saddr), "192.168.50.10") << "source is the interface's address";
    EXPECT_EQ(o.daddr, kOutside);
    EXPECT_GE(o.sport, PODWARP_LB_SNAT_PORT_MIN_DEFAULT);
    if (!icmp) {
      EXPECT_EQ(o.dport, f.out.dport);
    }
    EXPECT_TRUE(o.ip_csum_ok) << "IPv4 header checksum";
    EXPECT_TRUE(o.l4_csum_ok) << "L4 checksum";
    EXPECT_EQ(o.udp_csum_zero, f.out.udp_zero_csum);
    EXPECT_EQ(o.payload, "hello");
    ports.insert(o.sport);

    // The next packet of the flow keeps its port.
    PacketSpec again = f.out;
    again.tcp_flags = 0x10;
    EXPECT_EQ(parse_packet(egress(again).out).sport, o.sport);

    // The answer to the node's port goes back to the pod.
    f.reply.udp_zero_csum = f.out.udp_zero_csum;
    if (icmp)
      f.reply.sport = o.sport;  // echo reply: the identifier the outside saw
    else
      f.reply.dport = o.sport;
    RunResult b = ingress(f.reply);
    ASSERT_EQ(b.err, 0);
    EXPECT_EQ(b.retval, kActOk) << "the kernel routes it to the pod";
    ParsedPacket back = parse_packet(b.out);
    EXPECT_EQ(back.daddr, kPod);
    EXPECT_EQ(back.dport, f.out.sport);
    EXPECT_EQ(back.saddr, kOutside);
    if (!icmp) {
      EXPECT_EQ(back.sport, f.out.dport);
    }
    if (icmp) {
      EXPECT_EQ(back.icmp_type, 0);
    }
    EXPECT_TRUE(back.ip_csum_ok);
    EXPECT_TRUE(back.l4_csum_ok);
    EXPECT_EQ(back.udp_csum_zero, f.out.udp_zero_csum);
    EXPECT_EQ(back.payload, "hello");
  }
  Counters c = counters();
  EXPECT_EQ(c.event("MasqueradeNewFlow"), 4u);
  EXPECT_EQ(c.event("MasqueradeForward"), 8u);
  EXPECT_EQ(c.event("MasqueradeReverseNat"), 4u);
}

TEST_F(MasqueradeTest, WhatIsNotMasqueraded) {
  // A NodePort flow to a local pod: its reply is reverse-NATed to the NodePort, not masqueraded.
  ASSERT_TRUE(sm_->upsert_service(
      nodeport_service("ns/web", 30080, {be("10.244.1.10", 8080, true)})));
  ASSERT_EQ(ingress(pkt(IPPROTO_TCP, kClient, 40000, kNode, 30080)).retval, kActOk);

  int other_if = static_cast<int>(::if_nametoindex("pwlb1"));
  ASSERT_GT(other_if, 0);
  struct Row {
    const char* name;
    PacketSpec in;
    std::string want_src;  // "" = unchanged
    int ifindex = 0;       // 0: pwlb0
  };
  std::vector<Row> rows = {
      {"pod -> pod on another node (cluster CIDR)", pkt(IPPROTO_TCP, kPod, 40001, v4("10.244.2.5"), 80),
       ""},
      {"pod -> the node's address", pkt(IPPROTO_TCP, kPod, 40002, kNode, 10250), ""},
      {"the node's own traffic", pkt(IPPROTO_TCP, kNode, 40003, kOutside, 443), ""},
      {"a source outside the cluster CIDRs", pkt(IPPROTO_UDP, v4("172.16.0.5"), 40004, kOutside, 53),
       ""},
      {"pod -> outside through an interface without masquerade",
       pkt(IPPROTO_TCP, kPod, 40005, kOutside, 443), "", other_if},
      {"ICMP other than echo passes", [] {
         PacketSpec p = pkt(IPPROTO_ICMP, kPod, 7, kOutside, 0);
         p.icmp_type = 3;  // destination unreachable
         return p;
       }(), ""},
      {"reply of the local NodePort backend -> the NodePort, not masqueraded",
       pkt(IPPROTO_TCP, kPod, 8080, kClient, 40000, 0x12), "192.168.50.10:30080"},
      {"a pod's SYN-ACK without a flow (a connection opened towards it) passes",
       pkt(IPPROTO_TCP, kPod, 8080, kOutside, 40007, 0x12), ""},
      {"a pod's mid-connection segment without a flow passes",
       pkt(IPPROTO_TCP, kPod, 8080, kOutside, 40008, 0x10), ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    RunResult r = test_run(dp_->program_fd(Program::NodePortEgress), make_packet(row.in),
                           row.ifindex ? row.ifindex : ifindex_);
    ASSERT_EQ(r.err, 0);
    EXPECT_EQ(r.retval, kActOk);
    ParsedPacket in = parse_packet(make_packet(row.in)), out = parse_packet(r.out);
    EXPECT_EQ(out.src(), row.want_src.empty() ? in.src() : row.want_src);
    EXPECT_EQ(out.dst(), in.dst());
    EXPECT_TRUE(out.l4_csum_ok);
  }
  // An answer to a SNAT port nobody holds is the node's business.
  RunResult stray = ingress(pkt(IPPROTO_TCP, kOutside, 443, kNode, 61234, 0x12));
  EXPECT_EQ(stray.retval, kActOk);
  EXPECT_EQ(parse_packet(stray.out).dst(), "192.168.50.10:61234");
  Counters c = counters();
  EXPECT_EQ(c.event("MasqueradeNewFlow"), 0u);
  EXPECT_EQ(c.event("MasqueradeReverseNat"), 0u);

  // Another node's address (from the Node objects) is inside the cluster: a NodePort flow that
  // node SNATed to itself is answered by the pod without masquerade.
  json::value node_b = json::object{
      {"status", json::object{{"addresses", json::array{json::object{{"type", "InternalIP"},
                                                                   {"address", "198.51.100.30"}},
                                                      json::object{{"type", "Hostname"},
                                                                   {"address", "b"}}}}}}};
  std::vector<const json::value*> nodes{&node_b};
  MasqueradeConfig base;
  base.sources = {*Ipv4Cidr::parse("10.244.0.0/16")};
  base.exempt = {*Ipv4Cidr::parse("10.244.0.0/16")};
  MasqueradeConfig with_b = with_node_exemptions(base, nodes);
  ASSERT_EQ(with_b.exempt.size(), 2u);
  ASSERT_TRUE(dp_->set_masquerade(with_b));
  RunResult to_b = egress(pkt(IPPROTO_TCP, kPod, 40009, v4("198.51.100.30"), 61000));
  EXPECT_EQ(parse_packet(to_b.out).saddr, kPod);
  RunResult to_other = egress(pkt(IPPROTO_TCP, kPod, 40010, v4("198.51.100.31"), 443));
  EXPECT_EQ(v4_str(parse_packet(to_other.out).saddr), "192.168.50.10");

  // Turning masquerade off (no interfaces) leaves pod traffic untouched.
  ASSERT_TRUE(dp_->set_masquerade_interfaces({}));
  RunResult off = egress(pkt(IPPROTO_TCP, kPod, 40006, kOutside, 443));
  EXPECT_EQ(parse_packet(off.out).saddr, kPod);
}

TEST_F(MasqueradeTest, PortExhaustionAndFragmentsAreDroppedWithReasons) {
  NodePortConfig npc;
  npc.snat_port_min = 61000;
  npc.snat_port_max = 61001;  // two ports per destination
  ASSERT_TRUE(dp_->set_nodeport_config(npc));
  std::set<std::uint16_t> got;
  for (std::uint16_t sp : {40000, 40001}) {
    RunResult r = egress(pkt(IPPROTO_TCP, kPod, sp, kOutside, 443));
    ASSERT_EQ(r.retval, kActOk);
    got.insert(parse_packet(r.out).sport);
  }
  EXPECT_EQ(got, (std::set<std::uint16_t>{61000, 61001}));
  RunResult full = egress(pkt(IPPROTO_TCP, kPod, 40002, kOutside, 443));
  EXPECT_EQ(full.retval, kActShot);
  EXPECT_EQ(counters().drop("MasqueradePortsExhausted"), 1u);
  // Ports are per destination: another one still has both.
  RunResult other = egress(pkt(IPPROTO_TCP, kPod, 40002, v4("198.51.100.21"), 443));
  EXPECT_EQ(other.retval, kActOk);
  EXPECT_EQ(v4_str(parse_packet(other.out).saddr), "192.168.50.10");

  // Fragments of a pod's flow to outside cannot be translated (no ports in later ones): dropped.
  PacketSpec first = pkt(IPPROTO_UDP, kPod, 5000, kOutside, 53);
  first.frag = 0x2000;  // MF, offset 0
  EXPECT_EQ(egress(first).retval, kActShot);
  PacketSpec later = first;
  later.frag = 0x0003;  // offset 24 bytes, last fragment
  EXPECT_EQ(egress(later).retval, kActShot);
  EXPECT_EQ(counters().drop("MasqueradeFragment"), 2u);
  // ... but a fragment inside the cluster passes.
  later.daddr = v4("10.244.2.5");
  EXPECT_EQ(egress(later).retval, kActOk);
}

TEST(DatapathTypes, Ipv4CidrParse) {
  auto c = Ipv4Cidr::parse("10.244.0.0/16");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix, 16);
  EXPECT_EQ(c->to_string(), "10.244.0.0/16");
  EXPECT_TRUE(c->contains(v4("10.244.3.4")));
  EXPECT_FALSE(c->contains(v4("10.245.0.1")));
  EXPECT_EQ(Ipv4Cidr::parse("192.168.1.5")->prefix, 32);
  EXPECT_TRUE(Ipv4Cidr::parse("0.0.0.0/0")->contains(v4("8.8.8.8")));
  for (const char* bad : {"10.244.1.0/16", "10.0.0.0/33", "10.0.0.0/", "fd00::/8", "x/8", ""})
    EXPECT_FALSE(Ipv4Cidr::parse(bad)) << bad;
}

TEST(DatapathOpen, ReusesPinnedMapsAfterRestartAndRefusesOtherLayouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  TestPins pins;
  DatapathOptions o;
  o.pin_dir = pins.dir;
  o.sizes = MapSizes{512, 512, 512, 512, 512, 512};
  {
    auto dp = Datapath::open(o);
    ASSERT_TRUE(dp) << dp.error().message;
    ServiceMap sm((*dp)->maps());
    ServiceDesc d = nodeport_service("ns/a", 30080, {be("10.244.1.10", 8080, true)});
    ASSERT_TRUE(sm.upsert_service(d));
  }
  struct stat st {};
  EXPECT_EQ(::stat((pins.dir + "/" PODWARP_LB_MAP_SERVICES).c_str(), &st), 0);
  EXPECT_EQ(::stat((pins.dir + "/" PODWARP_LB_MAP_CT4).c_str(), &st), 0);
  // The restarted process sees the same maps (other sizes requested: the pins keep theirs).
  o.sizes = MapSizes{};
  auto dp = Datapath::open(o);
  ASSERT_TRUE(dp) << dp.error().message;
  ServiceMap sm((*dp)->maps());
  ASSERT_TRUE(sm.recover());
  EXPECT_EQ(sm.set_count(), 1u);
  auto view = sm.lookup({FrontendKind::NodePort, IpAddr::any_v4(), 30080, Protocol::TCP});
  ASSERT_TRUE(view);
  ASSERT_EQ(view->slots.size(), 1u);
  EXPECT_EQ(view->slots[0].addr.to_string(), "10.244.1.10");
  struct bpf_map_info info {};
  __u32 len = sizeof info;
  ASSERT_EQ(bpf_obj_get_info_by_fd((*dp)->map_fd(PODWARP_LB_MAP_SERVICES), &info, &len), 0);
  EXPECT_EQ(info.max_entries, 512u);
  dp->reset();

  // A map of another layout in the pin dir is refused, naming it.
  Datapath::remove_pins(pins.dir);
  ASSERT_EQ(::mkdir(pins.dir.c_str(), 0700), 0);
  int bad = bpf_map_create(BPF_MAP_TYPE_HASH, PODWARP_LB_MAP_SERVICES, 8, 8, 16, nullptr);
  ASSERT_GE(bad, 0);
  ASSERT_EQ(bpf_obj_pin(bad, (pins.dir + "/" PODWARP_LB_MAP_SERVICES).c_str()), 0);
  ::close(bad);
  auto refused = Datapath::open(o);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, EPROTO);
  EXPECT_NE(refused.error().message.find(PODWARP_LB_MAP_SERVICES), std::string::npos)
      << refused.error().message;
}

TEST(DatapathOpen, RejectsPinDirOutsideBpffs) {
  DatapathOptions o;
  o.pin_dir = "relative/dir";
  EXPECT_FALSE(Datapath::open(o));
  o.pin_dir = "/tmp/podwarp-lb-not-bpffs-" + random_suffix() + "/pins";
  auto r = Datapath::open(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ENOTSUP);
  struct stat st {};
  EXPECT_NE(::stat(o.pin_dir.c_str(), &st), 0) << "created outside bpffs";
}

TEST(DatapathNames, DropReasonsAndEventsHaveNames) {
  EXPECT_EQ(drop_reason_name(PODWARP_LB_DROP_NO_BACKEND), "NoBackend");
  EXPECT_EQ(drop_reason_name(PODWARP_LB_DROP_FIB), "FibLookupFailed");
  EXPECT_EQ(drop_reason_name(0), "");
  EXPECT_EQ(event_name(PODWARP_LB_EV_SOCK_CONNECT), "SockConnectTranslated");
  for (std::uint32_t i = 1; i < PODWARP_LB_DROP_MAX; ++i)
    for (std::uint32_t j = i + 1; j < PODWARP_LB_DROP_MAX; ++j)
      if (!drop_reason_name(i).empty()) {
        EXPECT_NE(drop_reason_name(i), drop_reason_name(j));
      }
}

}  // namespace
}  // namespace podwarp::noded::lb
