// Real-kernel test of the tc datapath on a "node" interface (bpf/nodeport.bpf.c attached with
// Datapath::attach_tc): NodePort reached from another network namespace, and egress
// masquerade of a pod's traffic to an "external" address. Root only (skipped otherwise).
//
//   pod netns P                 node netns N (the test thread)              external netns X
//   pwnp-p1 10.244.7.2/32 <-> pwnp-p 169.254.1.1/32          pwnp-x 192.168.77.1/24 <-> pwnp-x1
//   default via 169.254.1.1     route 10.244.7.2/32 dev pwnp-p  (tc programs here)    192.168.77.100/24
//                               forwarding on                                        no route to 10.244/16
//
// All three namespaces are created by the test (anonymous: they vanish with their last fd or
// thread, also when the test fails); the pins go with TestPins. No packet leaves them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <future>
#include <optional>
#include <set>
#include <thread>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <fstream>

#include "bpfutil/bpf_util.h"
#include "lb/datapath.h"
#include "lb/lb_test_util.h"
#include "lb/nodeport_setup.h"
#include "lb/service_map.h"

namespace podwarp::noded::lb {
namespace {

using namespace testing;

std::string addr_string(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

// A server in a namespace answering every TCP connection / UDP datagram with the address it
// saw the peer as ("a.b.c.d:port"). Stops (and is joined) at destruction.
class PeerEchoServer {
 public:
  PeerEchoServer(const AnonNetns& ns, int type, const char* addr, std::uint16_t port) {
    std::promise<bool> ready;
    auto started = ready.get_future();
    thread_ = std::thread([&, type, addr, port] {
      if (::setns(ns.fd(), CLONE_NEWNET) != 0) return ready.set_value(false);
      int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a = sin4(addr, port);
      if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          (type == SOCK_STREAM && ::listen(fd, 16) != 0)) {
        if (fd >= 0) ::close(fd);
        return ready.set_value(false);
      }
      sockaddr_in bound{};
      socklen_t bl = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bl);
      port_ = ntohs(bound.sin_port);
      ready.set_value(true);
      serve(fd, type);
      ::close(fd);
    });
    ok_ = started.get();
  }
  ~PeerEchoServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }  // the bound one (port 0: the kernel's choice)

 private:
  void serve(int fd, int type) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      if (type == SOCK_STREAM) {
        int c = ::accept4(fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::string s = addr_string(peer);
        (void)!::write(c, s.data(), s.size());
        ::close(c);
      } else {
        char buf[256];
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
        if (n < 0) continue;
        std::string s = addr_string(peer);
        ::sendto(fd, s.data(), s.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
      }
    }
  }

  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool ok_ = false;
  std::uint16_t port_ = 0;
};

struct Answer {
  std::string error;   // "" on success
  std::string answer;  // what the server said
  std::string local;   // our own address (getsockname)
  std::string peer;    // getpeername
};

// Connects (TCP) or sends one datagram (UDP) to addr:port and reads the answer (2 s timeout).
Answer ask(int type, const char* addr, std::uint16_t port) {
  Answer r;
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in to = sin4(addr, port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  if (type == SOCK_DGRAM && ::send(fd, "hi", 2, 0) != 2) {
    r.error = std::string("send: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  r.local = addr_string(a);
  len = sizeof a;
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
  r.peer = addr_string(a);
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  if (n > 0)
    r.answer.assign(buf, static_cast<size_t>(n));
  else
    r.error = std::string("recv: ") + (n == 0 ? "EOF" : std::strerror(errno));
  ::close(fd);
  return r;
}

// A UDP socket connected to addr:port (in the caller's namespace; usable from any thread).
int udp_connected(const char* addr, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in to = sin4(addr, port);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One datagram on a connected UDP socket and its answer ("" on timeout).
std::string udp_ask(int fd) {
  if (::send(fd, "hi", 2, 0) != 2) return "";
  char buf[256];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

class NodePortRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
    node_.emplace();
    ASSERT_TRUE(node_->ok()) << "unshare(CLONE_NEWNET): " << strerror(errno);
    pod_.emplace();
    ext_.emplace();
    ASSERT_TRUE(pod_->ok() && ext_->ok());
    auto sh = [](const std::vector<std::string>& argv) { return run_cmd(argv); };
    ASSERT_EQ(sh({"ip", "link", "set", "lo", "up"}), 0);
    // node <-> external
    ASSERT_EQ(sh({"ip", "link", "add", "pwnp-x", "type", "veth", "peer", "name", "pwnp-x1"}), 0);
    ASSERT_EQ(sh({"ip", "link", "set", "pwnp-x1", "netns", ext_->path()}), 0);
    ASSERT_EQ(sh({"ip", "addr", "add", "192.168.77.1/24", "dev", "pwnp-x"}), 0);
    ASSERT_EQ(sh({"ip", "link", "set", "pwnp-x", "up"}), 0);
    // node <-> pod, routed as noded/net does it (/32, link-local gateway)
    ASSERT_EQ(sh({"ip", "link", "add", "pwnp-p", "type", "veth", "peer", "name", "pwnp-p1"}), 0);
    ASSERT_EQ(sh({"ip", "link", "set", "pwnp-p1", "netns", pod_->path()}), 0);
    ASSERT_EQ(sh({"ip", "addr", "add", "169.254.1.1/32", "dev", "pwnp-p"}), 0);
    ASSERT_EQ(sh({"ip", "link", "set", "pwnp-p", "up"}), 0);
    ASSERT_EQ(sh({"ip", "route", "add", "10.244.7.2/32", "dev", "pwnp-p"}), 0);
    ASSERT_TRUE(write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1"));
    ASSERT_EQ(ext_->run([&] {
      int r = sh({"ip", "link", "set", "lo", "up"});
      r |= sh({"ip", "addr", "add", "192.168.77.100/24", "dev", "pwnp-x1"});
      r |= sh({"ip", "link", "set", "pwnp-x1", "up"});
      return r;
    }),
              0);
    ASSERT_EQ(pod_->run([&] {
      int r = sh({"ip", "link", "set", "lo", "up"});
      r |= sh({"ip", "addr", "add", "10.244.7.2/32", "dev", "pwnp-p1"});
      r |= sh({"ip", "link", "set", "pwnp-p1", "up"});
      r |= sh({"ip", "route", "add", "169.254.1.1", "dev", "pwnp-p1", "scope", "link"});
      r |= sh({"ip", "route", "add", "default", "via", "169.254.1.1", "dev", "pwnp-p1"});
      return r;
    }),
              0);
    node_if_ = static_cast<int>(::if_nametoindex("pwnp-x"));
    ASSERT_GT(node_if_, 0);

    auto dp = open_small_datapath(pins_.dir);
    ASSERT_TRUE(dp) << dp.error().message;
    dp_ = std::move(*dp);
    sm_.emplace(dp_->maps());
    // What noded does with --nodeport-interfaces pwnp-x --cluster-cidr 10.244.0.0/16.
    ASSERT_TRUE(dp_->attach_tc(node_if_));
    std::vector<IpAddr> addrs{*IpAddr::parse("192.168.77.1")};
    ASSERT_TRUE(dp_->set_node_addresses(addrs));
    NodePortConfig npc;
    npc.snat_v4_net = v4("192.168.77.1");
    ASSERT_TRUE(dp_->set_nodeport_config(npc));
    MasqueradeConfig mc;
    mc.sources = mc.exempt = {*Ipv4Cidr::parse("10.244.0.0/16")};
    ASSERT_TRUE(dp_->set_masquerade(mc));
    std::vector<MasqueradeInterface> ifs{{node_if_, v4("192.168.77.1")}};
    ASSERT_TRUE(dp_->set_masquerade_interfaces(ifs));
  }
  void TearDown() override {
    sm_.reset();
    dp_.reset();
    pod_.reset();
    ext_.reset();
    node_.reset();  // back to the original namespace; N and its links vanish
  }

  std::uint64_t event(const char* name) {
    auto c = dp_->counters();
    return c ? c->event(name) : 0;
  }

  TestPins pins_;
  std::optional<PrivateNetns> node_;
  std::optional<AnonNetns> pod_, ext_;
  int node_if_ = 0;
  std::unique_ptr<Datapath> dp_;
  std::optional<ServiceMap> sm_;
};

TEST_F(NodePortRootTest, NodePortFromAnotherNamespaceAndPodEgressMasquerade) {
  // A NodePort (TCP and UDP) whose backend is the pod, on ports the kernel picked.
  PeerEchoServer pod_tcp(*pod_, SOCK_STREAM, "0.0.0.0", 0);
  PeerEchoServer pod_udp(*pod_, SOCK_DGRAM, "0.0.0.0", 0);
  PeerEchoServer ext_tcp(*ext_, SOCK_STREAM, "192.168.77.100", 9000);
  PeerEchoServer ext_udp(*ext_, SOCK_DGRAM, "192.168.77.100", 9000);
  ASSERT_TRUE(pod_tcp.ok() && pod_udp.ok() && ext_tcp.ok() && ext_udp.ok());
  ServiceDesc d;
  d.key = "ns/web";
  for (Protocol p : {Protocol::TCP, Protocol::UDP}) {
    ServicePort sp;
    sp.proto = p;
    sp.frontends.push_back({FrontendKind::NodePort, IpAddr::any_v4(), 30080, p});
    Backend b{*IpAddr::parse("10.244.7.2"), p == Protocol::TCP ? pod_tcp.port() : pod_udp.port(),
              p, true, false};
    sp.cluster_backends.push_back(b);
    sp.local_backends.push_back(b);
    d.ports.push_back(sp);
  }
  ASSERT_TRUE(sm_->upsert_service(d));

  // NodePort from the external namespace: the pod answers, it saw the client's own address
  // (local backend: no SNAT), and the client's socket sees the NodePort as its peer.
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "NodePort TCP" : "NodePort UDP");
    for (int i = 0; i < 3; ++i) {
      Answer a = ext_->run([&] { return ask(type, "192.168.77.1", 30080); });
      ASSERT_EQ(a.error, "");
      EXPECT_EQ(a.answer, a.local) << "the pod saw the external client's address";
      EXPECT_EQ(a.peer, "192.168.77.1:30080");
    }
  }
  EXPECT_GE(event("NodePortNewFlow"), 6u);
  EXPECT_GE(event("NodePortReverseNat"), 6u);

  // The pod reaches the external address: the server there sees the node's address (a SNAT
  // port), and the answer finds its way back to the pod.
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    SCOPED_TRACE(type == SOCK_STREAM ? "masquerade TCP" : "masquerade UDP");
    for (int i = 0; i < 3; ++i) {
      Answer a = pod_->run([&] { return ask(type, "192.168.77.100", 9000); });
      ASSERT_EQ(a.error, "");
      EXPECT_EQ(a.local.substr(0, a.local.find(':')), "10.244.7.2");
      std::string ip = a.answer.substr(0, a.answer.find(':'));
      EXPECT_EQ(ip, "192.168.77.1") << "the external server saw " << a.answer;
      int port = std::atoi(a.answer.substr(a.answer.find(':') + 1).c_str());
      EXPECT_GE(port, PODWARP_LB_SNAT_PORT_MIN_DEFAULT);
      EXPECT_LE(port, PODWARP_LB_SNAT_PORT_MAX_DEFAULT);
    }
  }
  // ICMP echo: the reply (with a valid checksum) comes back to the pod with its identifier.
  EXPECT_EQ(pod_->run([] { return ping("192.168.77.100", 0x4242); }), 0x4242);
  EXPECT_GE(event("MasqueradeNewFlow"), 7u);
  EXPECT_GE(event("MasqueradeReverseNat"), 7u);

  // The node's own traffic to the external address keeps its address (no masquerade port).
  Answer own = ask(SOCK_STREAM, "192.168.77.100", 9000);
  ASSERT_EQ(own.error, "");
  EXPECT_EQ(own.answer, own.local);

  // A restarted noded: flows (a NodePort one, a masqueraded one) go on while it is gone (the
  // filters hold the programs) and after the new programs replaced the old ones, on the same
  // conntrack entries (the masqueraded flow keeps its port).
  int ext_fd = ext_->run([] { return udp_connected("192.168.77.1", 30080); });
  int pod_fd = pod_->run([] { return udp_connected("192.168.77.100", 9000); });
  ASSERT_TRUE(ext_fd >= 0 && pod_fd >= 0);
  std::string np1 = udp_ask(ext_fd), masq1 = udp_ask(pod_fd);
  EXPECT_NE(np1, "");
  EXPECT_EQ(masq1.substr(0, masq1.find(':')), "192.168.77.1");
  sm_.reset();
  dp_.reset();
  EXPECT_EQ(udp_ask(ext_fd), np1) << "noded down";
  EXPECT_EQ(udp_ask(pod_fd), masq1) << "noded down";
  DatapathOptions o;
  o.pin_dir = pins_.dir;
  auto dp = Datapath::open(o);
  ASSERT_TRUE(dp) << dp.error().message;
  dp_ = std::move(*dp);
  sm_.emplace(dp_->maps());
  ASSERT_TRUE(sm_->recover());
  ASSERT_TRUE(dp_->attach_tc(node_if_));
  EXPECT_EQ(udp_ask(ext_fd), np1) << "after re-attach";
  EXPECT_EQ(udp_ask(pod_fd), masq1) << "after re-attach";
  ::close(ext_fd);
  ::close(pod_fd);
  Answer again = ext_->run([&] { return ask(SOCK_STREAM, "192.168.77.1", 30080); });
  EXPECT_EQ(again.error, "");
  // Detached: nothing is translated any more (the NodePort is closed on the node itself).
  ASSERT_TRUE(dp_->detach_tc(node_if_));
  Answer gone = ext_->run([&] { return ask(SOCK_STREAM, "192.168.77.1", 30080); });
  EXPECT_NE(gone.error, "");
}

// Whether podwarp's filter (handle 0x5057, priority 1) is on clsact ingress and egress.
std::pair<bool, bool> tc_attached(int ifindex) {
  std::pair<bool, bool> r;
  bpfutil::LibbpfLogCapture quiet;  // "Cannot find specified filter chain" when not attached
  for (auto point : {BPF_TC_INGRESS, BPF_TC_EGRESS}) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = PODWARP_LB_TC_HANDLE,
                .priority = PODWARP_LB_TC_PRIORITY);
    bool on = bpf_tc_query(&hook, &opts) == 0 && opts.prog_id != 0;
    (point == BPF_TC_INGRESS ? r.first : r.second) = on;
  }
  return r;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// setup_nodeport() (noded's --nodeport-interfaces/--cluster-cidr) in a private netns with two
// veth links; the state file in a temporary directory.
TEST(NodePortSetup, AttachesRecordsConfiguresAndDetachesOnRestart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (BPF, netns)";
  PrivateNetns ns;
  ASSERT_TRUE(ns.ok());
  TestPins pins;
  std::string dir = "/tmp/podwarp-np-setup-" + random_suffix();
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      ::unlink((dir + "/lb-tc-interfaces").c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir};
  for (std::string l : {"pwns0", "pwns1"}) {  // veths: the dummy module may be missing
    ASSERT_EQ(run_cmd({"ip", "link", "add", l, "type", "veth", "peer", "name", l + "p"}), 0);
    ASSERT_EQ(run_cmd({"ip", "link", "set", l, "up"}), 0);
  }
  ASSERT_EQ(run_cmd({"ip", "addr", "add", "192.168.61.5/24", "dev", "pwns0"}), 0);
  ASSERT_EQ(run_cmd({"ip", "addr", "add", "192.168.61.6/24", "dev", "pwns0"}), 0);
  ASSERT_EQ(run_cmd({"ip", "addr", "add", "192.168.60.1/24", "dev", "pwns1"}), 0);
  int if0 = static_cast<int>(::if_nametoindex("pwns0"));
  int if1 = static_cast<int>(::if_nametoindex("pwns1"));

  DatapathOptions dopt;
  dopt.pin_dir = pins.dir;
  dopt.sizes = MapSizes{512, 512, 512, 512, 512, 512};
  auto dp = Datapath::open(dopt);
  ASSERT_TRUE(dp) << dp.error().message;

  NodePortSetupOptions o;
  o.interfaces = {"pwns0", "pwns1"};
  o.node_ip = "192.168.60.1";
  o.cluster_cidrs = {"10.244.0.0/16"};
  o.state_file = dir + "/lb-tc-interfaces";
  auto s = setup_nodeport(**dp, o);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->masquerade);
  EXPECT_EQ(s->attached, (std::vector<std::string>{"pwns0", "pwns1"}));
  EXPECT_EQ(read_all(o.state_file), "pwns0\npwns1\n");
  EXPECT_EQ(tc_attached(if0), std::make_pair(true, true));
  EXPECT_EQ(tc_attached(if1), std::make_pair(true, true));
  EXPECT_EQ(v4_str(s->snat_v4_net), "192.168.60.1") << "--node-ip is on pwns1";
  std::set<std::string> addrs;
  for (const auto& a : s->node_addrs) addrs.insert(a.to_string());
  EXPECT_EQ(addrs, (std::set<std::string>{"192.168.60.1", "192.168.61.5", "192.168.61.6"}));
  // The maps say the same.
  podwarp_lb_masq_if mif{};
  __u32 k = static_cast<__u32>(if0);
  ASSERT_EQ(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_MASQ_IFS), &k, &mif), 0);
  EXPECT_EQ(v4_str(mif.addr4), "192.168.61.5");
  k = static_cast<__u32>(if1);
  ASSERT_EQ(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_MASQ_IFS), &k, &mif), 0);
  EXPECT_EQ(v4_str(mif.addr4), "192.168.60.1");
  podwarp_lb_lpm4_key lk{32, v4("10.244.9.9")};
  __u8 one = 0;
  EXPECT_EQ(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_MASQ_SRC), &lk, &one), 0);
  EXPECT_EQ(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_NO_MASQ), &lk, &one), 0);
  podwarp_lb_config cfg{};
  __u32 zero = 0;
  ASSERT_EQ(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_CONFIG), &zero, &cfg), 0);
  EXPECT_EQ(v4_str(cfg.snat_addr4), "192.168.60.1");

  // Bad input changes nothing.
  NodePortSetupOptions bad = o;
  bad.cluster_cidrs = {"10.244.0.1/16"};
  EXPECT_FALSE(setup_nodeport(**dp, bad));
  bad = o;
  bad.interfaces = {"pwns-nope"};
  auto nodev = setup_nodeport(**dp, bad);
  ASSERT_FALSE(nodev);
  EXPECT_EQ(nodev.error().code, ENODEV);
  EXPECT_EQ(tc_attached(if0), std::make_pair(true, true));
  EXPECT_EQ(read_all(o.state_file), "pwns0\npwns1\n");

  // A restarted noded (new Datapath on the same pins) named only pwns1: pwns0 is detached and
  // forgotten; without --cluster-cidr there is no masquerade.
  dp->reset();
  dp = Datapath::open(dopt);
  ASSERT_TRUE(dp) << dp.error().message;
  o.interfaces = {"pwns1"};
  o.cluster_cidrs.clear();
  s = setup_nodeport(**dp, o);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_FALSE(s->masquerade);
  EXPECT_EQ(s->detached, (std::vector<std::string>{"pwns0"}));
  EXPECT_EQ(tc_attached(if0), std::make_pair(false, false));
  EXPECT_EQ(tc_attached(if1), std::make_pair(true, true));
  EXPECT_EQ(read_all(o.state_file), "pwns1\n");
  k = static_cast<__u32>(if1);
  EXPECT_NE(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_MASQ_IFS), &k, &mif), 0);
  EXPECT_NE(bpf_map_lookup_elem((*dp)->map_fd(PODWARP_LB_MAP_MASQ_SRC), &lk, &one), 0);

  // No interfaces at all: everything detached, the state file lists none.
  o.interfaces.clear();
  s = setup_nodeport(**dp, o);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(tc_attached(if1), std::make_pair(false, false));
  EXPECT_EQ(read_all(o.state_file), "");
}

}  // namespace
}  // namespace podwarp::noded::lb
