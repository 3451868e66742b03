// Root test of the pod network on real kernel objects, all inside network namespaces this test
// creates: two "node" namespaces (each the host of a PodNetwork) joined by an underlay veth, and
// three pod namespaces. Traffic only flows between these namespaces (sockets are created inside
// them); nothing is created in, or sent from, the machine's own namespace. The namespaces are
// pinned by bind mounts under /tmp/podwarp-podnet-*, unmounted at the end (also on failure),
// which destroys them and every link in them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "net/names.h"
#include "net/netlink.h"
#include "net/node_network.h"
#include "net/node_routes.h"
#include "net/pod_network.h"

namespace podwarp::noded::net {
namespace {

namespace fs = std::filesystem;

// A new network namespace pinned at `path`.
std::expected<void, std::string> make_netns(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected("create " + path);
  ::close(fd);
  std::expected<void, std::string> r;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      r = std::unexpected("unshare(CLONE_NEWNET): " + errno_name(errno));
      return;
    }
    if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      r = std::unexpected("bind mount netns on " + path + ": " + errno_name(errno));
  });
  t.join();
  return r;
}

void check(const std::expected<void, SysError>& r) { ASSERT_TRUE(r) << r.error().message; }

// Runs fn in the namespace; fails the test on error.
void in_ns(const std::string& ns, const std::function<void()>& fn) {
  auto r = run_in_netns(ns, [&]() -> std::expected<void, SysError> {
    fn();
    return {};
  });
  ASSERT_TRUE(r) << r.error().message;
}

// A socket that lives in the namespace (a socket keeps the namespace it was created in).
int socket_in(const std::string& ns) {
  int fd = -1;
  in_ns(ns, [&] { fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  return fd;
}

sockaddr_in sa(Ipv4 ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip.value);
  a.sin_port = htons(port);
  return a;
}

struct Conn {
  int client = -1, server = -1, listener = -1;
  std::string peer;  // the client address the server saw
  ~Conn() {
    for (int fd : {client, server, listener})
      if (fd >= 0) ::close(fd);
  }
};

// TCP connection from a socket in client_ns to a listener on server_ip in server_ns, then a
// ping/pong exchange. Error text on failure.
std::expected<void, std::string> exchange(Conn& c) {
  char buf[8] = {};
  if (::write(c.client, "ping", 4) != 4) return std::unexpected("write ping: " + errno_name(errno));
  if (::read(c.server, buf, 4) != 4 || std::string(buf, 4) != "ping")
    return std::unexpected("read ping: " + errno_name(errno));
  if (::write(c.server, "pong", 4) != 4) return std::unexpected("write pong: " + errno_name(errno));
  if (::read(c.client, buf, 4) != 4 || std::string(buf, 4) != "pong")
    return std::unexpected("read pong: " + errno_name(errno));
  return {};
}

std::expected<void, std::string> connect_tcp(Conn& c, const std::string& client_ns,
                                             const std::string& server_ns, Ipv4 server_ip) {
  c.listener = socket_in(server_ns);
  c.client = socket_in(client_ns);
  if (c.listener < 0 || c.client < 0) return std::unexpected("socket");
  sockaddr_in a = sa(server_ip, 0);
  if (::bind(c.listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return std::unexpected("bind " + to_string(server_ip) + ": " + errno_name(errno));
  socklen_t len = sizeof a;
  ::getsockname(c.listener, reinterpret_cast<sockaddr*>(&a), &len);
  if (::listen(c.listener, 4) != 0) return std::unexpected("listen: " + errno_name(errno));
  timeval tv{2, 0};
  ::setsockopt(c.client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(c.client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(c.client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return std::unexpected("connect " + to_string(server_ip) + ": " + errno_name(errno));
  pollfd p{c.listener, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return std::unexpected("accept: timeout");
  sockaddr_in peer{};
  len = sizeof peer;
  c.server = ::accept4(c.listener, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
  if (c.server < 0) return std::unexpected("accept: " + errno_name(errno));
  ::setsockopt(c.server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  c.peer = to_string(Ipv4{ntohl(peer.sin_addr.s_addr)});
  return exchange(c);
}

// Peer seen by the server, or the error.
std::string roundtrip(const std::string& client_ns, const std::string& server_ns, Ipv4 server_ip) {
  Conn c;
  auto r = connect_tcp(c, client_ns, server_ns, server_ip);
  return r ? c.peer : "error: " + r.error();
}

json::value node(const std::string& name, const std::string& cidr, const std::string& ip) {
  return json::object{
      {"metadata", json::object{{"name", name}}},
      {"spec", json::object{{"podCIDR", cidr}, {"podCIDRs", json::array{json::value(cidr)}}}},
      {"status", json::object{{"addresses", json::array{json::object{{"type", "InternalIP"},
                                                                     {"address", ip}}}}}}};
}

class PodNetworkRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces)";
    char tmpl[] = "/tmp/podwarp-podnet-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* n : {"nodeA", "nodeB", "a1", "a2", "b1"}) {
      std::string p = dir_ + "/" + n;
      auto r = make_netns(p);
      ASSERT_TRUE(r) << r.error();
      pins_.push_back(p);
    }
  }
  void TearDown() override {
    for (const auto& p : pins_) ::umount2(p.c_str(), MNT_DETACH);
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string ns(const char* n) const { return dir_ + "/" + n; }

  std::string dir_;
  std::vector<std::string> pins_;
};

TEST_F(PodNetworkRootTest, PodsTalkOnANodeAcrossNodesAndSurviveRestart) {
  const std::string A = ns("nodeA"), B = ns("nodeB");
  const Ipv4 ipA = *parse_ipv4("10.99.0.1"), ipB = *parse_ipv4("10.99.0.2");
  // The underlay: a veth between the two node namespaces.
  in_ns(A, [&] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    check(set_ipv4_sysctl("", "ip_forward", "0"));  // pod traffic must not need it on a node
    int fd = ::open(B.c_str(), O_RDONLY | O_CLOEXEC);
    check(nl->add_veth("ul0", "ul0", fd));
    ::close(fd);
    check(nl->set_up("ul0"));
    check(nl->set_up("lo"));
    check(nl->add_address((*nl->link("ul0"))->ifindex, ipA, 24));
  });
  in_ns(B, [&] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    check(nl->set_up("ul0"));
    check(nl->set_up("lo"));
    check(nl->add_address((*nl->link("ul0"))->ifindex, ipB, 24));
  });

  std::optional<PodNetwork> netA, netB;
  std::map<std::string, Ipv4> ip;
  in_ns(A, [&] {
    auto n = PodNetwork::open({.state_dir = dir_ + "/stateA"});
    ASSERT_TRUE(n) << n.error().message;
    netA.emplace(std::move(*n));
    netA->set_pod_cidr(*parse_cidr4("10.244.7.0/24"));
    for (const char* p : {"a1", "a2"}) {
      auto att = netA->setup(std::string("uid-") + p, ns(p));
      ASSERT_TRUE(att) << att.error().message;
      EXPECT_TRUE(att->created);
      EXPECT_EQ(att->host_ifname, host_veth_name(std::string("uid-") + p));
      ip[p] = att->ip;
    }
  });
  in_ns(B, [&] {
    auto n = PodNetwork::open({.state_dir = dir_ + "/stateB"});
    ASSERT_TRUE(n) << n.error().message;
    netB.emplace(std::move(*n));
    netB->set_pod_cidr(*parse_cidr4("10.244.8.0/24"));
    auto att = netB->setup("uid-b1", ns("b1"));
    ASSERT_TRUE(att) << att.error().message;
    ip["b1"] = att->ip;
  });
  ASSERT_EQ(ip.size(), 3u);
  EXPECT_TRUE(parse_cidr4("10.244.7.0/24")->contains(ip["a1"]));
  EXPECT_NE(ip["a1"], ip["a2"]);

  // Pod to pod on one node (no NAT: the server sees the client pod's address), without
  // net.ipv4.ip_forward in the node's namespace.
  EXPECT_EQ(roundtrip(ns("a1"), ns("a2"), ip["a2"]), to_string(ip["a1"]));
  EXPECT_EQ(roundtrip(ns("a2"), ns("a1"), ip["a1"]), to_string(ip["a2"]));
  // Node to pod and pod to node.
  EXPECT_EQ(roundtrip(A, ns("a1"), ip["a1"]), to_string(ipA));
  EXPECT_EQ(roundtrip(ns("a1"), A, ipA), to_string(ip["a1"]));

  // Across nodes: routes to the other node's podCIDR from Node objects; forwarding of what
  // comes in on the underlay needs ip_forward (allowed here: our own namespaces).
  json::value na = node("a", "10.244.7.0/24", "10.99.0.1"),
              nb = node("b", "10.244.8.0/24", "10.99.0.2");
  for (auto [nsp, self] : {std::pair{A, "a"}, std::pair{B, "b"}}) {
    in_ns(nsp, [&, self = self] {
      check(enable_ip_forward());
      auto nl = Netlink::open();
      ASSERT_TRUE(nl);
      auto r = sync_node_routes(*nl, desired_node_routes({&na, &nb}, self));
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->replaced, 1);
      EXPECT_TRUE(r->errors.empty()) << r->errors.front();
      // A second sync changes nothing.
      auto again = sync_node_routes(*nl, desired_node_routes({&na, &nb}, self));
      ASSERT_TRUE(again);
      EXPECT_EQ(again->replaced + again->removed, 0);
    });
  }
  EXPECT_EQ(roundtrip(ns("a1"), ns("b1"), ip["b1"]), to_string(ip["a1"]));
  EXPECT_EQ(roundtrip(ns("b1"), ns("a2"), ip["a2"]), to_string(ip["b1"]));

  // A noded restart: a new PodNetwork over the same state finds the pod again, changes nothing,
  // and a connection open across it keeps working.
  Conn live;
  ASSERT_TRUE(connect_tcp(live, ns("a1"), ns("a2"), ip["a2"]));
  in_ns(A, [&] {
    auto n = PodNetwork::open({.state_dir = dir_ + "/stateA"});
    ASSERT_TRUE(n);
    EXPECT_EQ(n->address_of("uid-a1"), ip["a1"]);
    n->set_pod_cidr(*parse_cidr4("10.244.7.0/24"));
    auto att = n->setup("uid-a1", ns("a1"));
    ASSERT_TRUE(att) << att.error().message;
    EXPECT_FALSE(att->created);
    EXPECT_EQ(att->ip, ip["a1"]);
    netA.emplace(std::move(*n));
  });
  auto still = exchange(live);
  EXPECT_TRUE(still) << still.error();

  // The other node goes away: its route is removed and its pods are unreachable (fast: the
  // node answers "unreachable", no timeout).
  in_ns(A, [&] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto r = sync_node_routes(*nl, desired_node_routes({&na}, "a"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->removed, 1);
  });
  EXPECT_TRUE(roundtrip(ns("a1"), ns("b1"), ip["b1"]).starts_with("error:"));

  // Teardown: nothing of the pods is left in the node namespace, the pod namespace or the state.
  in_ns(A, [&] {
    check(netA->teardown("uid-a1"));
    check(netA->teardown("uid-a2"));
    check(netA->teardown("uid-a2"));  // idempotent
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto links = nl->links();
    ASSERT_TRUE(links);
    for (const auto& l : *links) EXPECT_FALSE(is_host_veth_name(l.name)) << l.name;
    auto routes = nl->routes(kRouteProtocol);
    ASSERT_TRUE(routes);
    EXPECT_TRUE(routes->empty());
  });
  in_ns(ns("a1"), [&] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    auto eth0 = nl->link("eth0");
    ASSERT_TRUE(eth0);
    EXPECT_FALSE(eth0->has_value());
  });
  EXPECT_TRUE(fs::is_empty(dir_ + "/stateA/ipam"));
  EXPECT_TRUE(netA->ipam().allocations().empty());
}

TEST_F(PodNetworkRootTest, ReleaseOrphansAndRefuseForeignLinks) {
  const std::string A = ns("nodeA");
  in_ns(A, [&] {
    auto n = PodNetwork::open({.state_dir = dir_ + "/state"});
    ASSERT_TRUE(n);
    EXPECT_FALSE(n->setup("uid-a1", ns("a1")));  // no podCIDR yet
    n->set_pod_cidr(*parse_cidr4("10.244.9.0/24"));
    ASSERT_TRUE(n->setup("uid-a1", ns("a1")));
    ASSERT_TRUE(n->setup("uid-a2", ns("a2")));
    EXPECT_EQ(n->release_orphans({"uid-a2"}), 1);
    EXPECT_FALSE(n->address_of("uid-a1"));
    EXPECT_TRUE(n->address_of("uid-a2"));
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    EXPECT_FALSE(nl->link(host_veth_name("uid-a1"))->has_value());
    auto a2 = nl->link(host_veth_name("uid-a2"));
    ASSERT_TRUE(a2 && a2->has_value());
    EXPECT_EQ((*a2)->alias, "uid-a2");  // the owner, for `ip link` and collision checks
    // A veth of that name owned by another pod (a hash collision): refused, and never deleted
    // by the other pod's teardown.
    check(nl->set_alias(host_veth_name("uid-a2"), "uid-other"));
    auto clash = n->setup("uid-a2", ns("a2"));
    ASSERT_FALSE(clash);
    EXPECT_NE(clash.error().message.find("belongs to pod uid-other"), std::string::npos)
        << clash.error().message;
    check(n->teardown("uid-a2"));
    EXPECT_TRUE(nl->link(host_veth_name("uid-a2"))->has_value());
    check(nl->set_alias(host_veth_name("uid-a2"), "uid-a2"));
    ASSERT_TRUE(n->setup("uid-a2", ns("a2")));
    // A pod whose namespace is gone: setup fails with a message naming the path.
    auto bad = n->setup("uid-x", dir_ + "/no-such-ns");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("no-such-ns"), std::string::npos);
    check(n->teardown("uid-x"));
    check(n->teardown("uid-a2"));
  });
}

// What noded runs: the node's podCIDR and the other nodes' routes come from Node objects.
TEST_F(PodNetworkRootTest, NodeNetworkFollowsNodeObjects) {
  in_ns(ns("nodeA"), [&] {
    auto nl = Netlink::open();
    ASSERT_TRUE(nl);
    check(nl->set_up("lo"));
    check(nl->add_address((*nl->link("lo"))->ifindex, *parse_ipv4("10.99.0.1"), 32));
    // The other node's InternalIP must be reachable: an on-link route through a dummy veth.
    int fd = ::open(ns("nodeB").c_str(), O_RDONLY | O_CLOEXEC);
    check(nl->add_veth("ul0", "ul0", fd));
    ::close(fd);
    check(nl->set_up("ul0"));
    check(nl->add_address((*nl->link("ul0"))->ifindex, *parse_ipv4("10.99.0.1"), 24));

    auto n = NodeNetwork::open({.node_name = "a", .state_dir = dir_ + "/state"});
    ASSERT_TRUE(n) << n.error();
    auto early = n->attach("uid-a1", ns("a1"));
    ASSERT_FALSE(early);
    EXPECT_NE(early.error().find("node a has no podCIDR yet"), std::string::npos) << early.error();
    json::value a = node("a", "10.244.3.0/24", "10.99.0.1");
    json::value b = node("b", "10.244.4.0/24", "10.99.0.2");
    n->on_nodes({&a, &b});
    ASSERT_TRUE(n->has_pod_cidr());
    auto ip = n->attach("uid-a1", ns("a1"));
    ASSERT_TRUE(ip) << ip.error();
    EXPECT_TRUE(parse_cidr4("10.244.3.0/24")->contains(*parse_ipv4(*ip))) << *ip;
    EXPECT_EQ(n->attach("uid-a1", ns("a1")), ip);  // adoption: same address
    auto routes = nl->routes(kRouteProtocol);
    ASSERT_TRUE(routes);
    int gw_routes = 0;
    for (const auto& r : *routes)
      if (r.via) {
        ++gw_routes;
        EXPECT_EQ(to_string(r.dst), "10.244.4.0/24");
        EXPECT_EQ(to_string(*r.via), "10.99.0.2");
      }
    EXPECT_EQ(gw_routes, 1);
    n->on_nodes({&a});  // node b deleted
    routes = nl->routes(kRouteProtocol);
    ASSERT_TRUE(routes);
    for (const auto& r : *routes) EXPECT_FALSE(r.via) << to_string(r.dst);
    n->detach("uid-a1");
    EXPECT_FALSE(nl->link(host_veth_name("uid-a1"))->has_value());
    EXPECT_TRUE(fs::is_empty(dir_ + "/state/ipam"));
  });
}

}  // namespace
}  // namespace podwarp::noded::net
