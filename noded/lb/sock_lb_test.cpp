// Real-kernel test of the socket-layer load balancer (bpf/sock_lb.bpf.c): a child process in a
// test cgroup (with the programs attached) and in its own network namespace (lo only, backends
// on 127.0.0.2/127.0.0.3) connects to ClusterIPs. Root only. The cgroup, the pins and the child
// are removed/reaped at the end, also on failure; nothing leaves the child's namespace.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "lb/datapath.h"
#include "lb/lb_test_util.h"
#include "lb/service_map.h"

namespace podwarp::noded::lb {
namespace {

using namespace testing;
using Clock = std::chrono::steady_clock;

// ---- socket helpers (child side) ----

std::string peer_string(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a->sin6_port));
}

// A TCP server on addr:port (0: any) answering every connection with `name`, in a detached
// thread that dies with the child.
std::uint16_t serve_tcp(const char* addr, std::uint16_t port, std::string name) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = sin4(addr, port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 128) != 0)
    return 0;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread([fd, name] {
    for (;;) {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      (void)!::write(c, name.data(), name.size());
      ::close(c);
    }
  }).detach();
  return ntohs(a.sin_port);
}

std::uint16_t serve_udp(const char* addr, std::uint16_t port, std::string name) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = sin4(addr, port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  std::thread([fd, name] {
    char buf[512];
    for (;;) {
      sockaddr_storage from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) continue;
      std::string reply = name + ":" + std::string(buf, static_cast<size_t>(n));
      ::sendto(fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  }).detach();
  return ntohs(a.sin_port);
}

struct ConnectResult {
  int err = 0;  // errno of connect, 0 on success
  std::string answer;
  std::string peer;  // getpeername
  double ms = 0;
};

ConnectResult tcp_connect(const sockaddr* to, socklen_t len, int family = AF_INET) {
  ConnectResult r;
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto t0 = Clock::now();
  int rc = ::connect(fd, to, len);
  r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (rc != 0) {
    r.err = errno;
    ::close(fd);
    return r;
  }
  sockaddr_storage peer{};
  socklen_t pl = sizeof peer;
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl);
  r.peer = peer_string(peer);
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) r.answer.assign(buf, static_cast<size_t>(n));
  ::close(fd);
  return r;
}

ConnectResult tcp_connect4(const char* addr, std::uint16_t port) {
  sockaddr_in a = sin4(addr, port);
  return tcp_connect(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

bool lo_up() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
  ::close(s);
  return ok;
}

// Runs `body` in a child process placed in `cgroup` and a new network namespace with lo up.
// The child's report ("" = all checks passed) is returned; a child that hangs is killed.
std::string run_in_pod(const std::string& cgroup, const std::function<std::string()>& body,
                       int timeout_s = 60) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "pipe2 failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    std::string report;
    if (!write_file(cgroup + "/cgroup.procs", std::to_string(::getpid())))
      report = "join cgroup " + cgroup + " failed";
    else if (::unshare(CLONE_NEWNET) != 0)
      report = "unshare(CLONE_NEWNET) failed";
    else if (!lo_up())
      report = "lo up failed";
    else
      report = body();
    (void)!::write(p[1], report.data(), report.size());
    ::_exit(report.empty() ? 0 : 1);
  }
  ::close(p[1]);
  if (pid < 0) {
    ::close(p[0]);
    return "fork failed";
  }
  std::string report;
  auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (left <= 0) {
      report += " [child timed out]";
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{p[0], POLLIN, 0};
    if (::poll(&pfd, 1, left) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    report.append(buf, static_cast<size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (report.empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    report = "child died with status " + std::to_string(status);
  return report;
}

// Collects failed checks in the child.
struct Checks {
  std::string failures;
  void check(bool ok, const std::string& what) {
    if (!ok) failures += "\n  FAILED: " + what;
  }
};

ServiceDesc cluster_ip(std::string key, const char* vip, std::uint16_t port, Protocol proto,
                       std::vector<Backend> backends) {
  ServiceDesc d;
  d.key = std::move(key);
  ServicePort sp;
  sp.proto = proto;
  sp.frontends.push_back({FrontendKind::ClusterIP, *IpAddr::parse(vip), port, proto});
  sp.cluster_backends = std::move(backends);
  d.ports.push_back(sp);
  return d;
}

Backend be(const char* addr, std::uint16_t port, Protocol p = Protocol::TCP) {
  return Backend{*IpAddr::parse(addr), port, p, true, false};
}

class SockLbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups, netns)";
    ASSERT_TRUE(cg_.ok) << "cannot create a test cgroup under " << cgroup2_mount();
    DatapathOptions o;
    o.pin_dir = pins_.dir;
    o.sizes = MapSizes{1024, 1024, 1024, 1024, 1024, 1024, slots_};
    o.nodeport = false;
    auto dp = Datapath::open(o);
    ASSERT_TRUE(dp) << dp.error().message;
    dp_ = std::move(*dp);
    auto a = dp_->attach_cgroup(cg_.path);
    ASSERT_TRUE(a) << a.error().message;
    std::vector<IpAddr> node{*IpAddr::parse("10.1.2.3")};
    ASSERT_TRUE(dp_->set_node_addresses(node));
  }
  void TearDown() override {
    if (dp_) {
      auto d = dp_->detach_cgroup(cg_.path);
      EXPECT_TRUE(d) << d.error().message;
    }
    dp_.reset();
  }

  std::uint32_t slots_ = 1024;  // pw_lb_sk_slots
  TestPins pins_;
  TestCgroup cg_;
  std::unique_ptr<Datapath> dp_;
};

// Two slots only: most connected sockets find their slot held by another open socket and keep
// their translation in socket storage instead.
class SockLbTwoSlotsTest : public SockLbTest {
 protected:
  void SetUp() override {
    slots_ = 3;  // rounded up to 4 by the loader; then the test's own mask is 3
    SockLbTest::SetUp();
  }
};

TEST_F(SockLbTest, ClusterIpTcpUdpNoBackendAffinityAndNodePort) {
  std::string report = run_in_pod(cg_.path, [&]() -> std::string {
    Checks c;
    ServiceMap sm(dp_->maps());
    std::uint16_t tp = serve_tcp("127.0.0.2", 0, "b2");
    c.check(tp != 0 && serve_tcp("127.0.0.3", tp, "b3") == tp, "TCP servers");
    std::uint16_t up = serve_udp("127.0.0.2", 0, "b2");
    c.check(up != 0 && serve_udp("127.0.0.3", up, "b3") == up, "UDP servers");
    if (!c.failures.empty()) return c.failures;
    std::vector<Backend> tcp_bes{be("127.0.0.2", tp), be("127.0.0.3", tp)};
    std::vector<Backend> udp_bes{be("127.0.0.2", up, Protocol::UDP),
                                 be("127.0.0.3", up, Protocol::UDP)};
    auto check_ok = [&](std::expected<void, Error> r, const char* what) {
      c.check(static_cast<bool>(r), std::string(what) + (r ? "" : ": " + r.error().message));
    };
    check_ok(sm.upsert_service(cluster_ip("ns/web", "10.96.0.10", 80, Protocol::TCP, tcp_bes)),
             "upsert ns/web");
    check_ok(sm.upsert_service(cluster_ip("ns/dns", "10.96.0.11", 53, Protocol::UDP, udp_bes)),
             "upsert ns/dns");
    check_ok(sm.upsert_service(cluster_ip("ns/empty", "10.96.0.12", 80, Protocol::TCP, {})),
             "upsert ns/empty");
    check_ok(sm.upsert_service(cluster_ip("ns/empty-udp", "10.96.0.12", 53, Protocol::UDP, {})),
             "upsert ns/empty-udp");
    auto sticky = cluster_ip("ns/sticky", "10.96.0.13", 80, Protocol::TCP, tcp_bes);
    sticky.affinity_timeout_s = 60;
    check_ok(sm.upsert_service(sticky), "upsert ns/sticky");
    ServiceDesc np = cluster_ip("ns/np", "10.96.0.14", 80, Protocol::TCP, tcp_bes);
    np.ports[0].frontends.push_back(
        {FrontendKind::NodePort, IpAddr::any_v4(), 30080, Protocol::TCP});
    check_ok(sm.upsert_service(np), "upsert ns/np");

    // 1. TCP to the ClusterIP spreads over both backends; the peer is the ClusterIP.
    std::map<std::string, int> hits;
    for (int i = 0; i < 40; ++i) {
      ConnectResult r = tcp_connect4("10.96.0.10", 80);
      c.check(r.err == 0, "connect 10.96.0.10:80: " + std::string(strerror(r.err)));
      c.check(r.peer == "10.96.0.10:80", "getpeername shows the ClusterIP, got " + r.peer);
      ++hits[r.answer];
    }
    c.check(hits["b2"] > 0 && hits["b3"] > 0,
            "both backends used: b2=" + std::to_string(hits["b2"]) +
                " b3=" + std::to_string(hits["b3"]));

    // 2. A dual-stack IPv6 socket to ::ffff:ClusterIP (connect6) is balanced too.
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(80);
    ::inet_pton(AF_INET6, "::ffff:10.96.0.10", &a6.sin6_addr);
    ConnectResult r6 = tcp_connect(reinterpret_cast<sockaddr*>(&a6), sizeof a6, AF_INET6);
    c.check(r6.err == 0 && (r6.answer == "b2" || r6.answer == "b3"),
            "connect6 ::ffff:10.96.0.10 -> " + r6.answer + " " + strerror(r6.err));
    c.check(r6.peer == "[::ffff:10.96.0.10]:80", "connect6 peer " + r6.peer);

    // 3. UDP: the reply's source is the ClusterIP (recvmsg4), unconnected and connected.
    int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    timeval tv{2, 0};
    ::setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in vip = sin4("10.96.0.11", 53);
    std::string q = "query";
    c.check(::sendto(u, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&vip), sizeof vip) ==
                static_cast<ssize_t>(q.size()),
            "sendto 10.96.0.11:53: " + std::string(strerror(errno)));
    char buf[128];
    sockaddr_storage from{};
    socklen_t fl = sizeof from;
    ssize_t n = ::recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    c.check(n > 0, "UDP reply: " + std::string(strerror(errno)));
    std::string answer = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    c.check(answer == "b2:query" || answer == "b3:query", "UDP answer " + answer);
    c.check(peer_string(from) == "10.96.0.11:53", "UDP reply from " + peer_string(from));
    ::close(u);
    int cu = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ::setsockopt(cu, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    c.check(::connect(cu, reinterpret_cast<sockaddr*>(&vip), sizeof vip) == 0, "UDP connect");
    c.check(::send(cu, q.data(), q.size(), 0) > 0, "UDP send");
    c.check(::recv(cu, buf, sizeof buf, 0) > 0, "UDP recv on a connected socket");
    sockaddr_storage peer{};
    socklen_t pl = sizeof peer;
    ::getpeername(cu, reinterpret_cast<sockaddr*>(&peer), &pl);
    c.check(peer_string(peer) == "10.96.0.11:53", "UDP getpeername " + peer_string(peer));
    ::close(cu);

    // 4. No endpoints: ECONNREFUSED at once (TCP connect and UDP sendto).
    ConnectResult refused = tcp_connect4("10.96.0.12", 80);
    c.check(refused.err == ECONNREFUSED,
            "no-backend connect errno " + std::string(strerrorname_np(refused.err) ?: "0"));
    c.check(refused.ms < 50, "refused within 50 ms, took " + std::to_string(refused.ms) + " ms");
    int eu = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in evip = sin4("10.96.0.12", 53);
    ssize_t sent =
        ::sendto(eu, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&evip), sizeof evip);
    c.check(sent < 0 && errno == ECONNREFUSED, "no-backend UDP sendto refused");
    ::close(eu);

    // 5. sessionAffinity ClientIP: every connection of this pod lands on one backend.
    std::map<std::string, int> sticky_hits;
    for (int i = 0; i < 20; ++i) ++sticky_hits[tcp_connect4("10.96.0.13", 80).answer];
    c.check(sticky_hits.size() == 1 && sticky_hits.begin()->first.size() == 2,
            "affinity: " + std::to_string(sticky_hits.size()) + " backends used");

    // 6. NodePort from the node: loopback and the node's address; not another address.
    c.check(!tcp_connect4("127.0.0.1", 30080).answer.empty(), "127.0.0.1:30080");
    c.check(!tcp_connect4("10.1.2.3", 30080).answer.empty(), "node address 10.1.2.3:30080");
    c.check(tcp_connect4("10.1.2.4", 30080).err == ENETUNREACH,
            "10.1.2.4:30080 is not a node address: untranslated");

    // 7. Direct connections are untouched.
    ConnectResult direct = tcp_connect4("127.0.0.2", tp);
    c.check(direct.answer == "b2" && direct.peer == "127.0.0.2:" + std::to_string(tp),
            "direct connect peer " + direct.peer);

    // 8. A removed backend gets no new connections.
    check_ok(sm.upsert_service(
                 cluster_ip("ns/web", "10.96.0.10", 80, Protocol::TCP, {be("127.0.0.2", tp)})),
             "remove backend b3");
    int b3 = 0;
    for (int i = 0; i < 20; ++i) b3 += tcp_connect4("10.96.0.10", 80).answer == "b3";
    c.check(b3 == 0, "b3 got " + std::to_string(b3) + " connections after removal");
    return c.failures;
  });
  EXPECT_EQ(report, "");
  auto counters = dp_->counters();
  ASSERT_TRUE(counters) << counters.error().message;
  EXPECT_GE(counters->drop("NoBackend"), 2u);
  EXPECT_GE(counters->event("SockConnectTranslated"), 80u);
  EXPECT_GE(counters->event("SockSendmsgTranslated"), 1u);
  EXPECT_GE(counters->event("SockReverseNat"), 3u);
  EXPECT_GE(counters->event("AffinityHit"), 19u);
}

// A restarted noded (new Datapath on the same pins, recover(), attach again) while a client
// connects in a loop: no connection fails, and the recovered state needs no map writes.
TEST_F(SockLbTest, RestartDuringTrafficLosesNoConnection) {
  std::string report = run_in_pod(cg_.path, [&]() -> std::string {
    Checks c;
    std::uint16_t tp = serve_tcp("127.0.0.2", 0, "b2");
    ServiceDesc web = cluster_ip("ns/web", "10.96.0.10", 80, Protocol::TCP, {be("127.0.0.2", tp)});
    {
      ServiceMap sm(dp_->maps());
      c.check(static_cast<bool>(sm.upsert_service(web)), "upsert");
    }
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::thread client([&] {
      while (!stop) {
        ConnectResult r = tcp_connect4("10.96.0.10", 80);
        (r.answer == "b2" ? ok : failed)++;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    for (int round = 0; round < 3; ++round) {
      DatapathOptions o;
      o.pin_dir = pins_.dir;
      o.nodeport = false;
      auto dp2 = Datapath::open(o);
      c.check(static_cast<bool>(dp2), "reopen: " + (dp2 ? std::string() : dp2.error().message));
      if (!dp2) break;
      auto a = (*dp2)->attach_cgroup(cg_.path);
      c.check(static_cast<bool>(a), "re-attach: " + (a ? std::string() : a.error().message));
      ServiceMap sm((*dp2)->maps());
      c.check(static_cast<bool>(sm.recover()), "recover");
      c.check(static_cast<bool>(sm.upsert_service(web)), "resync");
      c.check(static_cast<bool>(sm.prune_unclaimed()), "prune");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    stop = true;
    client.join();
    c.check(failed == 0, std::to_string(failed) + " of " + std::to_string(ok + failed) +
                             " connections failed across restarts");
    c.check(ok > 10, "only " + std::to_string(ok) + " connections made");
    return c.failures;
  });
  EXPECT_EQ(report, "");
  // One link per hook, updated in place (not stacked).
  int links = 0;
  if (DIR* d = ::opendir((pins_.dir + "/links").c_str())) {
    while (dirent* e = ::readdir(d)) links += e->d_name[0] != '.';
    ::closedir(d);
  }
  EXPECT_EQ(links, 9);
}

// connect() keeps its translation in the socket's slot (cookie & mask) when that is free, else in
// socket storage; getpeername shows the ClusterIP either way, and a released socket frees its
// slot for the next one.
TEST_F(SockLbTwoSlotsTest, SlotsSpillToSocketStorageAndAreFreedOnRelease) {
  int slots_fd = dp_->map_fd(PODWARP_LB_MAP_SOCK_SLOTS);
  ASSERT_GE(slots_fd, 0);
  std::string report = run_in_pod(cg_.path, [&]() -> std::string {
    Checks c;
    std::uint16_t tp = serve_tcp("127.0.0.2", 0, "b2");
    ServiceMap sm(dp_->maps());
    c.check(static_cast<bool>(sm.upsert_service(
                cluster_ip("ns/web", "10.96.0.20", 80, Protocol::TCP, {be("127.0.0.2", tp)}))),
            "upsert");
    auto slot_owners = [&] {
      std::vector<std::uint64_t> owners;
      for (__u32 i = 0; i < 4; ++i) {
        podwarp_lb_sock_slot v{};
        owners.push_back(bpf_map_lookup_elem(slots_fd, &i, &v) == 0 ? v.cookie : ~0ull);
      }
      return owners;
    };
    auto cookie_of = [](int fd) {
      std::uint64_t cookie = 0;
      socklen_t len = sizeof cookie;
      ::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
      return cookie;
    };
    auto peer_of = [](int fd) {
      sockaddr_storage peer{};
      socklen_t pl = sizeof peer;
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl);
      return peer_string(peer);
    };
    sockaddr_in vip = sin4("10.96.0.20", 80);
    sockaddr_in direct = sin4("127.0.0.2", tp);
    std::vector<int> open;
    for (int i = 0; i < 12; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in& to = i == 5 ? direct : vip;
      c.check(::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0,
              "connect " + std::to_string(i) + ": " + strerror(errno));
      std::string want = i == 5 ? "127.0.0.2:" + std::to_string(tp) : "10.96.0.20:80";
      c.check(peer_of(fd) == want, "socket " + std::to_string(i) + " peer " + peer_of(fd) +
                                       ", want " + want);
      open.push_back(fd);
    }
    // Each owned slot belongs to an open socket translated through the ClusterIP, at its index.
    std::vector<std::uint64_t> owners = slot_owners();
    int owned = 0;
    for (__u32 i = 0; i < 4; ++i) {
      if (owners[i] == 0) continue;
      ++owned;
      bool found = false;
      for (size_t k = 0; k < open.size(); ++k)
        found = found || (k != 5 && cookie_of(open[k]) == owners[i] && (owners[i] & 3) == i);
      c.check(found, "slot " + std::to_string(i) + " held by cookie " +
                         std::to_string(owners[i]) + ", not one of the translated sockets");
    }
    c.check(owned >= 1, "no slot used");
    c.check(cookie_of(open[5]) != 0 &&
                owners[cookie_of(open[5]) & 3] != cookie_of(open[5]),
            "the direct connection took a slot");
    for (int fd : open) ::close(fd);
    owners = slot_owners();
    for (__u32 i = 0; i < 4; ++i)
      c.check(owners[i] == 0, "slot " + std::to_string(i) + " still held by " +
                                  std::to_string(owners[i]) + " after every socket was closed");
    // The freed slots serve the next sockets.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    c.check(::connect(fd, reinterpret_cast<const sockaddr*>(&vip), sizeof vip) == 0,
            "connect after release");
    c.check(peer_of(fd) == "10.96.0.20:80", "peer after release " + peer_of(fd));
    std::uint64_t cookie = cookie_of(fd);
    c.check(slot_owners()[cookie & 3] == cookie, "a freed slot is taken again");
    ::close(fd);
    return c.failures;
  });
  EXPECT_EQ(report, "");
}

TEST_F(SockLbTest, AttachRefusesNonCgroupDirectories) {
  auto r = dp_->attach_cgroup("/tmp");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a cgroup2 directory"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(dp_->attach_cgroup("/nonexistent/podwarp"));
}

}  // namespace
}  // namespace podwarp::noded::lb
