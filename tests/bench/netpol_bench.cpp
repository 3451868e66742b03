// netpol_bench: NetworkPolicy enforcement, podwarp's tc BPF programs (bpf/netpol.bpf.c fed by
// netpolicy::compile) against the iptables ruleset of the same policy, same machine, same run.
// Prints medians and ratios; asserts nothing.
//
//   sudo build/bin/netpol_bench [--peers 1000] [--connects 2000] [--roundtrips 20000]
//                               [--updates 20] [--runs 3] [--iptables-restore iptables-restore]
//                               [--no-iptables]
//
// The policy: the server pod accepts TCP on its port only from pods labelled role=client
// (`--peers` of them plus the real client), as an ingress NetworkPolicy says it. The iptables
// peer is the classic per-pod chain of iptables-based policy agents without ipsets: FORWARD
// accepts ESTABLISHED,RELATED (conntrack), jumps to the server's chain for packets leaving
// towards its veth, which has one ACCEPT per allowed peer address and a final DROP. The real
// client's rule is the last one (a new flow from it walks the whole chain, as a pod added last
// does).
//
// Everything happens in network namespaces the bench creates (a child process unshares its
// own "node" namespace; the two pods are anonymous namespaces joined to it by veths routed as
// noded/net does): the iptables rules, the veths, the traffic. Pins live in
// /sys/fs/bpf/podwarp-bench-np-<pid> and are removed by the parent, also after a crash.
//
// Measured:
//   1. programming: the whole policy from nothing, and one more allowed peer with the policy in
//      place. BPF: compile() of the cluster (the pods as JSON) + Datapath::apply of the
//      difference + commit; iptables: iptables-restore of the filter table (full), and
//      --noflush of the server's chain rewritten with one more rule (the delta).
//   2. datapath, client pod -> server pod through the node: the latency of connect() of a new
//      TCP connection (a new flow: both policy checks) and the round trip of 1 byte over an
//      established connection (the tracked-flow path), with no filter, BPF, iptables: `--runs`
//      rounds of the three in turn, samples pooled per mode.
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "bench_util.h"
#include "bpfutil/bpf_test_util.h"
#include "netpol/datapath.h"
#include "netpolicy/compile.h"
#include "podwarp/json.h"

using namespace podwarp;
using bench::Clock;
using bench::median;
using bench::percentile;
using bench::us_since;
using noded::bpfutil::testing::AnonNetns;
using noded::bpfutil::testing::run_cmd;
using noded::bpfutil::testing::v4;

namespace {

// Client and server threads share one CPU: a round trip is then two wake-ups on that CPU
// rather than whatever the scheduler's cross-CPU placement gives each mode (noise that is
// larger than the difference measured).
void pin_to_cpu0() {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

struct Options {
  int peers = 1000;
  int connects = 2000;
  int roundtrips = 20000;
  int updates = 20;
  int runs = 3;
  std::string restore = "iptables-restore";
  bool iptables = true;
};

constexpr const char* kClientIp = "10.244.9.2";
constexpr const char* kServerIp = "10.244.9.3";
constexpr const char* kClientVeth = "pwnbench-a";
constexpr const char* kServerVeth = "pwnbench-b";

std::string peer_ip(int i) {  // 10.245.0.0/16 and up: never the client or the server
  std::uint32_t h = 0x0af50000u + static_cast<std::uint32_t>(i) + 1;
  return std::to_string(h >> 24) + "." + std::to_string((h >> 16) & 255) + "." +
         std::to_string((h >> 8) & 255) + "." + std::to_string(h & 255);
}


template <typename... A>
void progress(const char* fmt, A... args) {
  std::fprintf(stderr, "netpol_bench: ");
  std::fprintf(stderr, fmt, args...);
  std::fprintf(stderr, "\n");
}

// ---- the cluster as the informers would hold it ----

json::value pod_json(const std::string& name, const std::string& ip, const char* label_key,
                     const char* label_value) {
  return json::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
                     R"(","namespace":"default","uid":")" + name + R"(","labels":{")" +
                     label_key + R"(":")" + label_value +
                     R"("}},"spec":{"containers":[{"name":"c","image":"x"}]},)"
                     R"("status":{"phase":"Running","podIP":")" +
                     ip + R"(","podIPs":[{"ip":")" + ip + R"("}]}})");
}

struct Cluster {
  std::vector<json::value> objects;  // [0] policy, [1] namespace, [2] server, then clients
  explicit Cluster(int peers, std::uint16_t port) {
    objects.push_back(json::parse(
        R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":)"
        R"({"name":"server","namespace":"default"},"spec":{"podSelector":{"matchLabels":)"
        R"({"app":"server"}},"ingress":[{"from":[{"podSelector":{"matchLabels":)"
        R"({"role":"client"}}}],"ports":[{"protocol":"TCP","port":)" +
        std::to_string(port) + "}]}]}}"));
    objects.push_back(json::parse(
        R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"}})"));
    objects.push_back(pod_json("server", kServerIp, "app", "server"));
    for (int i = 0; i < peers; ++i)
      objects.push_back(pod_json("peer-" + std::to_string(i), peer_ip(i), "role", "client"));
    objects.push_back(pod_json("client", kClientIp, "role", "client"));
  }
  void add_peer(int i) {
    objects.push_back(pod_json("extra-" + std::to_string(i), peer_ip(1000000 + i), "role", "client"));
  }
  netpolicy::Compiled compile() const {
    netpolicy::Cluster c;
    c.policies.push_back(&objects[0]);
    c.namespaces.push_back(&objects[1]);
    for (std::size_t i = 2; i < objects.size(); ++i) c.pods.push_back(&objects[i]);
    return netpolicy::compile(c, {{&objects[2], v4(kServerIp)}});
  }
};

// ---- iptables rules of the same policy ----

std::string chain_rules(int peers, int extra, std::uint16_t port) {
  std::ostringstream s;
  auto accept = [&](const std::string& ip) {
    s << "-A PW-NP-SERVER -s " << ip << "/32 -p tcp -m tcp --dport " << port << " -j ACCEPT\n";
  };
  for (int i = 0; i < peers; ++i) accept(peer_ip(i));
  for (int i = 0; i < extra; ++i) accept(peer_ip(1000000 + i));
  accept(kClientIp);  // last: a new flow from the client walks the chain
  s << "-A PW-NP-SERVER -j DROP\n";
  return s.str();
}

std::string full_table(int peers, std::uint16_t port) {
  return std::string("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                     ":PW-NP-SERVER - [0:0]\n"
                     "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
                     "-A FORWARD -o ") +
         kServerVeth + " -j PW-NP-SERVER\n" + chain_rules(peers, 0, port) + "COMMIT\n";
}

std::string chain_delta(int peers, int extra, std::uint16_t port) {
  return "*filter\n:PW-NP-SERVER - [0:0]\n" + chain_rules(peers, extra, port) + "COMMIT\n";
}

double timed_restore(const Options& o, const std::string& dir, const std::string& text,
                     bool noflush) {
  std::string file = dir + "/rules";
  std::ofstream(file) << text;
  auto t0 = Clock::now();
  int rc = bench::run_restore(o.restore, file, noflush);
  double us = us_since(t0);
  if (rc != 0) {
    std::fprintf(stderr, "netpol_bench: %s failed (exit %d)\n", o.restore.c_str(), rc);
    return -1;
  }
  return us;
}

// ---- traffic ----

struct Server {
  int listen_fd = -1;
  std::uint16_t port = 0;
  std::atomic<bool> stop{false};
  std::thread thread;

  // Listens in `ns` on kServerIp; accepts and echoes until stop.
  bool start(const AnonNetns& ns) {
    listen_fd = ns.run([] {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = v4(kServerIp);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
        ::close(fd);
        return -1;
      }
      return fd;
    });
    if (listen_fd < 0) return false;
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this] {
      std::vector<std::thread> echoers;
      while (!stop) {
        pollfd p{listen_fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        // Echo until the client closes (a connect-only client closes at once).
        echoers.emplace_back([c] {
          pin_to_cpu0();
          char b[64];
          ssize_t n;
          while ((n = ::recv(c, b, sizeof b, 0)) > 0) ::send(c, b, static_cast<size_t>(n), 0);
          ::close(c);
        });
        if (echoers.size() > 64) {
          for (auto& t : echoers) t.join();
          echoers.clear();
        }
      }
      for (auto& t : echoers) t.join();
    });
    return true;
  }
  ~Server() {
    stop = true;
    if (thread.joinable()) thread.join();
    if (listen_fd >= 0) ::close(listen_fd);
  }
};

struct Traffic {
  std::vector<double> connect_us;
  std::vector<double> rtt_us;
  int failures = 0;
};

Traffic measure(const AnonNetns& client, std::uint16_t port, const Options& o) {
  return client.run([&] {
    pin_to_cpu0();
    Traffic t;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = v4(kServerIp);
    for (int i = 0; i < o.connects; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      timeval tv{1, 0};  // a dropped SYN counts as a failure, it does not stall the run
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      auto t0 = Clock::now();
      int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      double us = us_since(t0);
      // RST instead of FIN: no TIME_WAIT pile-up over thousands of connections.
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
      if (rc == 0)
        t.connect_us.push_back(us);
      else
        ++t.failures;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      char c = 'x';
      for (int i = 0; i < o.roundtrips; ++i) {
        auto t0 = Clock::now();
        if (::send(fd, &c, 1, 0) != 1 || ::recv(fd, &c, 1, 0) != 1) {
          ++t.failures;
          break;
        }
        t.rtt_us.push_back(us_since(t0));
      }
    } else {
      ++t.failures;
    }
    ::close(fd);
    return t;
  });
}

bool wire_pod(const AnonNetns& pod, const char* host, const char* ip) {
  std::string peer = std::string(host) + "p";
  int r = run_cmd({"ip", "link", "add", host, "type", "veth", "peer", "name", peer});
  r |= run_cmd({"ip", "link", "set", peer, "netns", pod.path()});
  r |= run_cmd({"ip", "addr", "add", "169.254.1.1/32", "dev", host});
  r |= run_cmd({"ip", "link", "set", host, "up"});
  r |= run_cmd({"ip", "route", "add", std::string(ip) + "/32", "dev", host});
  r |= pod.run([&] {
    int q = run_cmd({"ip", "link", "set", "lo", "up"});
    q |= run_cmd({"ip", "addr", "add", std::string(ip) + "/32", "dev", peer});
    q |= run_cmd({"ip", "link", "set", peer, "up"});
    q |= run_cmd({"ip", "route", "add", "169.254.1.1", "dev", peer, "scope", "link"});
    q |= run_cmd({"ip", "route", "add", "default", "via", "169.254.1.1", "dev", peer});
    return q;
  });
  return r == 0;
}

ino_t netns_inode() {
  struct stat st {};
  return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

std::string pin_dir(pid_t owner) { return "/sys/fs/bpf/podwarp-bench-np-" + std::to_string(owner); }
std::string tmp_dir(pid_t owner) { return "/tmp/podwarp-np-bench-" + std::to_string(owner); }

void row(const char* what, double bpf, double ipt) {
  if (ipt > 0)
    std::printf("  %-44s %12.1f %12.1f %9.2fx\n", what, bpf, ipt, ipt / bpf);
  else
    std::printf("  %-44s %12.1f %12s\n", what, bpf, "-");
}

int run_bench(const Options& o, pid_t owner) {
  ino_t host_netns = netns_inode();
  if (host_netns == 0 || ::unshare(CLONE_NEWNET) != 0 || netns_inode() == host_netns) {
    std::printf("netpol_bench: cannot create a private network namespace; not touching the host's\n");
    return 1;
  }
  AnonNetns client, server_ns;
  if (!client.ok() || !server_ns.ok() || run_cmd({"ip", "link", "set", "lo", "up"}) != 0 ||
      !noded::bpfutil::testing::write_file("/proc/sys/net/ipv4/conf/all/forwarding", "1") ||
      !wire_pod(client, kClientVeth, kClientIp) || !wire_pod(server_ns, kServerVeth, kServerIp)) {
    std::printf("netpol_bench: namespace/veth setup with `ip` failed\n");
    return 1;
  }
  std::filesystem::create_directories(tmp_dir(owner));
  Server server;
  if (!server.start(server_ns)) {
    std::printf("netpol_bench: listen in the server pod failed\n");
    return 1;
  }
  std::printf("policy: the server accepts TCP %u from %d+1 client pods; %d connects, %d round "
              "trips\n",
              server.port, o.peers, o.connects, o.roundtrips);

  // ---- 1. programming ----
  noded::netpol::DatapathOptions dpo;
  dpo.pin_dir = pin_dir(owner);
  auto dp = noded::netpol::Datapath::open(dpo);
  if (!dp) {
    std::printf("netpol_bench: %s\n", dp.error().message.c_str());
    return 1;
  }
  Cluster cluster(o.peers, server.port);
  const std::uint32_t server_ip = v4(kServerIp);
  std::vector<double> compile_us, full_us, delta_us;
  netpolicy::EndpointPolicy held;
  {
    auto t0 = Clock::now();
    auto c = cluster.compile();
    compile_us.push_back(us_since(t0));
    held = c.endpoints.at(server_ip);
    if (auto r = (*dp)->apply(server_ip, nullptr, held); !r || !(*dp)->commit()) {
      std::printf("netpol_bench: apply: %s\n", r ? "commit failed" : r.error().message.c_str());
      return 1;
    }
    full_us.push_back(us_since(t0));
  }
  for (int i = 0; i < o.updates; ++i) {
    cluster.add_peer(i);
    auto t0 = Clock::now();
    auto c = cluster.compile();
    compile_us.push_back(us_since(t0));
    auto& now = c.endpoints.at(server_ip);
    if (auto r = (*dp)->apply(server_ip, &held, now); !r || !(*dp)->commit()) {
      std::printf("netpol_bench: apply: %s\n", r ? "commit failed" : r.error().message.c_str());
      return 1;
    }
    delta_us.push_back(us_since(t0));
    held = now;
  }
  std::vector<double> ipt_full, ipt_delta;
  if (o.iptables) {
    for (int i = 0; i < 3; ++i)
      ipt_full.push_back(timed_restore(o, tmp_dir(owner), full_table(o.peers, server.port), false));
    for (int i = 0; i < o.updates; ++i)
      ipt_delta.push_back(
          timed_restore(o, tmp_dir(owner), chain_delta(o.peers, i + 1, server.port), true));
    // Back to no rules for the datapath runs (and no conntrack hook until iptables' turn).
    timed_restore(o, tmp_dir(owner), "*filter\n:PW-NP-SERVER - [0:0]\nCOMMIT\n", false);
    run_cmd({"iptables", "-F"});
    run_cmd({"iptables", "-X"});
  }

  // ---- 2. datapath ----
  progress("datapath: no filter");
  Options probe = o;
  probe.connects = 10;
  probe.roundtrips = 10;
  if (Traffic t = measure(client, server.port, probe); t.failures > 0) {
    std::printf("netpol_bench: the client pod cannot reach the server pod (routing)\n");
    return 1;
  }
  // Rounds of the three modes in turn (the machine is noisy: a slow phase hits every mode),
  // samples pooled per mode.
  Traffic none, bpf, ipt;
  auto pool = [](Traffic& into, const Traffic& t) {
    into.connect_us.insert(into.connect_us.end(), t.connect_us.begin(), t.connect_us.end());
    into.rtt_us.insert(into.rtt_us.end(), t.rtt_us.begin(), t.rtt_us.end());
    into.failures += t.failures;
  };
  std::vector<int> veths;
  for (const char* veth : {kClientVeth, kServerVeth})
    veths.push_back(static_cast<int>(::if_nametoindex(veth)));
  for (int round = 0; round < o.runs; ++round) {
    progress("datapath round %d/%d: no filter, BPF%s", round + 1, o.runs,
             o.iptables ? ", iptables" : "");
    pool(none, measure(client, server.port, o));
    for (int ifindex : veths) {
      if (auto r = (*dp)->attach_tc(ifindex); !r) {
        std::printf("netpol_bench: attach: %s\n", r.error().message.c_str());
        return 1;
      }
    }
    pool(bpf, measure(client, server.port, o));
    for (int ifindex : veths) (void)(*dp)->detach_tc(ifindex);
    if (o.iptables) {
      if (timed_restore(o, tmp_dir(owner), full_table(o.peers + o.updates, server.port), false) < 0)
        return 1;
      pool(ipt, measure(client, server.port, o));
      run_cmd({"iptables", "-F"});
      run_cmd({"iptables", "-X"});
    }
  }
  auto counters = (*dp)->counters();

  std::printf("\n  %-44s %12s %12s %10s\n", "programming, microseconds (median)", "BPF",
              "iptables", "ratio");
  row("whole policy from nothing", full_us[0], o.iptables ? median(ipt_full) : -1);
  row("one more allowed peer (policy in place)", median(delta_us),
      o.iptables ? median(ipt_delta) : -1);
  std::printf("  (BPF includes compile(): median %.1f us of it)\n", median(compile_us));
  std::printf("\n  %-44s %12s %12s %12s\n", "datapath, microseconds", "no filter", "BPF",
              "iptables");
  std::printf("  %-44s %12.1f %12.1f %12.1f\n", "new connection: connect() median",
              median(none.connect_us), median(bpf.connect_us), median(ipt.connect_us));
  std::printf("  %-44s %12.1f %12.1f %12.1f\n", "new connection: connect() p99",
              percentile(none.connect_us, 0.99), percentile(bpf.connect_us, 0.99),
              percentile(ipt.connect_us, 0.99));
  std::printf("  %-44s %12.1f %12.1f %12.1f\n", "established: 1-byte round trip median",
              median(none.rtt_us), median(bpf.rtt_us), median(ipt.rtt_us));
  std::printf("  %-44s %12d %12d %12d\n", "failures", none.failures, bpf.failures, ipt.failures);
  if (counters) {
    std::printf("  BPF verdicts:");
    for (const auto& c : *counters)
      if (c.packets > 0) std::printf(" %.*s=%llu", static_cast<int>(c.name.size()), c.name.data(),
                                     static_cast<unsigned long long>(c.packets));
    std::printf("\n");
  }
  if (o.iptables && median(bpf.connect_us) > 0)
    std::printf("  ratio iptables/BPF: connect %.2fx, round trip %.2fx (above 1: BPF faster)\n",
                median(ipt.connect_us) / median(bpf.connect_us),
                median(ipt.rtt_us) / median(bpf.rtt_us));
  return 0;
}

}  // namespace

// The bench runs in a child process (its own netns, threads); this parent only waits and then
// removes whatever the child left (pins, files), also when it was killed or crashed.
int main(int argc, char** argv) {
  Options o;
  // Flags of other benchmarks of scripts/bench.sh are ignored.
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto value = [&](std::string_view flag) -> const std::string* {
    for (std::size_t i = 0; i + 1 < args.size(); ++i)
      if (args[i] == flag) return &args[i + 1];
    return nullptr;
  };
  for (auto [flag, field, least] : {std::tuple{"--peers", &o.peers, 1},
                                    std::tuple{"--connects", &o.connects, 10},
                                    std::tuple{"--roundtrips", &o.roundtrips, 10},
                                    std::tuple{"--runs", &o.runs, 1},
                                    std::tuple{"--updates", &o.updates, 1}})
    if (const auto* v = value(flag)) *field = std::max(least, std::atoi(v->c_str()));
  if (const auto* v = value("--iptables-restore")) o.restore = *v;
  o.iptables = std::find(args.begin(), args.end(), "--no-iptables") == args.end();
  std::printf("\n== network policy: podwarp tc BPF vs an iptables per-pod chain ==\n");
  if (::geteuid() != 0) {
    std::printf("netpol_bench: skipped (needs root: BPF, a private netns)\n");
    return 0;
  }
  pid_t owner = ::getpid();
  return bench::run_in_child("netpol_bench", [&] { return run_bench(o, owner); }, [&] {
    (void)noded::netpol::Datapath::remove_pins(pin_dir(owner));
    std::error_code ec;
    std::filesystem::remove_all(tmp_dir(owner), ec);
  });
}
