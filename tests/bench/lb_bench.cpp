// lb_bench: podwarp's BPF service load balancer against a kube-proxy-style iptables ruleset,
// same machine, same run (issue 6, acceptance 5). Prints medians and ratios; asserts nothing.
//
//   sudo build/bin/lb_bench [--services 10000] [--endpoints 5] [--connects 2000] [--runs 3]
//                           [--iptables-restore iptables-restore] [--no-iptables]
//                           [--noflush-full]
//
// Everything happens in a network namespace the bench creates for itself (unshare at start;
// it refuses to go on if that failed): the iptables rules (nat table, iptables-restore), the
// addresses (10.96.0.0/16 ClusterIPs and the 10.244.0.0/15 cluster CIDR are local routes on lo
// there, so one listener on a kernel-chosen port serves every endpoint, and the client binds a
// "pod" address in the cluster CIDR, as pod -> ClusterIP traffic has), the servers and clients. The
// BPF programs attach to a cgroup the bench creates (podwarp-bench-lb-<pid>) and the bench
// moves itself into it only for the BPF measurements. Pins live in
// /sys/fs/bpf/podwarp-bench-lb-<pid>, files in /tmp/podwarp-lb-bench-<pid>; all removed.
//
// Measured:
//   1. time to program one more service (5 endpoints) with N services present:
//      BPF: ServiceMap::upsert_service (16 map updates), median of 200;
//      iptables: iptables-restore of the whole nat table with N+1 services (a full sync);
//      --noflush of KUBE-SERVICES + the new chains (kube-proxy's partial sync); --noflush of
//      just the new rule and chains (the smallest possible delta); with --noflush-full also
//      kube-proxy's literal full sync (--noflush, every chain declared), once: very slow with
//      iptables-nft.
//   2. first-connect latency (connect() of a new TCP socket until established) to random
//      services: directly to an endpoint, through the BPF ClusterIP, through iptables DNAT.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "lb/datapath.h"
#include "lb/lb_test_util.h"
#include "lb/service_map.h"

using namespace podwarp::noded::lb;
using podwarp::bench::Clock;

namespace {

struct Options {
  int services = 10000;
  int endpoints = 5;
  int connects = 2000;
  int runs = 3;
  std::string restore = "iptables-restore";
  bool iptables = true;
  bool noflush_full = false;
};

using podwarp::bench::median;
using podwarp::bench::percentile;
using podwarp::bench::us_since;

// Cluster CIDR 10.244.0.0/15: endpoints in 10.244/16, the client "pod" at 10.245.0.1.
constexpr std::uint32_t kClientAddr = 0x0af50001u;
constexpr const char* kClusterCidr = "10.244.0.0/15";

std::uint32_t vip(int i) { return 0x0a600000u + static_cast<std::uint32_t>(i) + 1; }  // 10.96/16
std::uint32_t endpoint(int i, int e, int per) {  // 10.244/16, host order
  return 0x0af40000u + (static_cast<std::uint32_t>(i * per + e) % 65534u) + 1;
}
std::string ip_str(std::uint32_t host) {
  return std::to_string(host >> 24) + "." + std::to_string((host >> 16) & 255) + "." +
         std::to_string((host >> 8) & 255) + "." + std::to_string(host & 255);
}

// kube-proxy names chains KUBE-SVC-/KUBE-SEP- + 16 base32 characters of a hash.
std::string chain(const char* prefix, const std::string& seed) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : seed) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out = prefix;
  for (int i = 0; i < 16; ++i) {
    out += alphabet[h & 31];
    h = (h >> 5) | (h << 59);
    h *= 0x9e3779b97f4a7c15ull;
  }
  return out;
}

struct SvcRules {
  std::vector<std::string> chains;  // declarations ":NAME - [0:0]"
  std::string services_rule;        // its KUBE-SERVICES rule
  std::string body;                 // rules of its own chains
};

// The nat rules kube-proxy (iptables mode) writes for a ClusterIP TCP service port.
SvcRules service_rules(int i, const Options& o, std::uint16_t port) {
  SvcRules r;
  std::string name = "bench/svc-" + std::to_string(i) + ":http";
  std::string svc = chain("KUBE-SVC-", name + "/tcp");
  std::string v = ip_str(vip(i)) + "/32";
  r.chains.push_back(svc);
  r.services_rule = "-A KUBE-SERVICES -d " + v + " -p tcp -m comment --comment \"" + name +
                    " cluster IP\" -m tcp --dport 80 -j " + svc + "\n";
  std::ostringstream b;
  b << "-A " << svc << " ! -s " << kClusterCidr << " -d " << v << " -p tcp -m comment --comment \""
    << name << " cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n";
  for (int e = 0; e < o.endpoints; ++e) {
    std::string ep = ip_str(endpoint(i, e, o.endpoints));
    std::string sep = chain("KUBE-SEP-", name + ep);
    r.chains.push_back(sep);
    b << "-A " << svc << " -m comment --comment \"" << name << " -> " << ep << ":" << port << "\"";
    int left = o.endpoints - e;
    if (left > 1) {
      char prob[32];
      std::snprintf(prob, sizeof prob, "%.11f", 1.0 / left);
      b << " -m statistic --mode random --probability " << prob;
    }
    b << " -j " << sep << "\n";
    b << "-A " << sep << " -s " << ep << "/32 -m comment --comment \"" << name
      << "\" -j KUBE-MARK-MASQ\n";
    b << "-A " << sep << " -p tcp -m comment --comment \"" << name
      << "\" -m tcp -j DNAT --to-destination " << ep << ":" << port << "\n";
  }
  r.body = b.str();
  return r;
}

// The whole nat table as kube-proxy's full sync writes it (with --noflush, every declared
// chain is flushed and refilled). `hooks`: also the jumps from the builtin chains (first load).
std::string full_ruleset(int n, const Options& o, std::uint16_t port, bool hooks) {
  std::ostringstream s;
  s << "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n"
       ":KUBE-MARK-MASQ - [0:0]\n";
  std::vector<SvcRules> all;
  all.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) all.push_back(service_rules(i, o, port));
  for (const auto& r : all)
    for (const auto& c : r.chains) s << ":" << c << " - [0:0]\n";
  if (hooks) {
    s << "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
         "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j "
         "KUBE-POSTROUTING\n";
  }
  s << "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
       "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n"
       "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" "
       "-j MASQUERADE --random-fully\n"
       "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n";
  for (const auto& r : all) s << r.services_rule;
  s << "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must "
       "be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
  for (const auto& r : all) s << r.body;
  s << "COMMIT\n";
  return s.str();
}

// kube-proxy's partial sync: KUBE-SERVICES rewritten in full plus the changed service's chains.
std::string partial_ruleset(int n, const Options& o, std::uint16_t port, int changed) {
  std::ostringstream s;
  SvcRules c = service_rules(changed, o, port);
  s << "*nat\n:KUBE-SERVICES - [0:0]\n";
  for (const auto& ch : c.chains) s << ":" << ch << " - [0:0]\n";
  for (int i = 0; i < n; ++i) s << service_rules(i, o, port).services_rule;
  s << "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must "
       "be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
  s << c.body << "COMMIT\n";
  return s.str();
}

// The smallest delta: the new chains and one KUBE-SERVICES rule inserted at the top.
std::string minimal_delta(const Options& o, std::uint16_t port, int changed) {
  SvcRules c = service_rules(changed, o, port);
  std::string rule = c.services_rule;
  rule.replace(0, 2, "-I");
  std::ostringstream s;
  s << "*nat\n";
  for (const auto& ch : c.chains) s << ":" << ch << " - [0:0]\n";
  s << rule << c.body << "COMMIT\n";
  return s.str();
}

int restore(const Options& o, const std::string& file, bool noflush) {
  return podwarp::bench::run_restore(o.restore, file, noflush);
}

double timed_restore(const Options& o, const std::string& dir, const std::string& text,
                     bool noflush) {
  std::string file = dir + "/rules";
  {
    std::ofstream f(file);
    f << text;
  }
  auto t0 = Clock::now();
  int rc = restore(o, file, noflush);
  double us = us_since(t0);
  if (rc != 0) {
    std::fprintf(stderr, "lb_bench: %s failed (exit %d)\n", o.restore.c_str(), rc);
    return -1;
  }
  return us;
}

// connect() latency of a fresh TCP socket, microseconds; -1 on failure.
double connect_us(std::uint32_t host, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{1, 0};  // a lost SYN must not stall the run: counted as a failure
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // The client is a "pod": its source is in the cluster CIDR, so kube-proxy's rules DNAT
  // without masquerading, as for pod -> ClusterIP traffic. The port is still chosen by connect.
  int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(kClientAddr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(host);
  auto t0 = Clock::now();
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  double us = us_since(t0);
  ::close(fd);
  return rc == 0 ? us : -1;
}

struct Latency {
  std::vector<double> samples;
  int failures = 0;
};

// n connects to random services through their ClusterIP (into `vip`) interleaved one by one
// with n connects straight to a random endpoint (into `direct`), alternating which goes first:
// load changes on a shared machine hit both alike, so their difference is the service path's.
void measure_pair(Latency& vip_l, Latency& direct_l, int n, std::mt19937& rng, const Options& o,
                  std::uint16_t port) {
  std::uniform_int_distribution<int> svc(0, o.services - 1), ep(0, o.endpoints - 1);
  auto one = [&](bool to_vip) {
    int i = svc(rng);
    double us =
        to_vip ? connect_us(vip(i), 80) : connect_us(endpoint(i, ep(rng), o.endpoints), port);
    Latency& l = to_vip ? vip_l : direct_l;
    if (us < 0)
      ++l.failures;
    else
      l.samples.push_back(us);
  };
  for (int k = 0; k < n; ++k) {
    one(k % 2 == 0);
    one(k % 2 != 0);
  }
}

// n direct connects only (the baseline without any BPF program or iptables rule).
void measure_direct(Latency& l, int n, std::mt19937& rng, const Options& o, std::uint16_t port) {
  Latency unused;
  std::uniform_int_distribution<int> svc(0, o.services - 1), ep(0, o.endpoints - 1);
  for (int k = 0; k < n; ++k) {
    int i = svc(rng);
    double us = connect_us(endpoint(i, ep(rng), o.endpoints), port);
    if (us < 0)
      ++l.failures;
    else
      l.samples.push_back(us);
  }
}

// Progress on stderr (the table goes to stdout).
template <typename... A>
void progress(const char* fmt, A... args) {
  std::fprintf(stderr, "lb_bench: ");
  std::fprintf(stderr, fmt, args...);
  std::fprintf(stderr, "\n");
}

ino_t netns_inode() {
  struct stat st {};
  return ::stat("/proc/thread-self/ns/net", &st) == 0 ? st.st_ino : 0;
}

std::string own_cgroup2() {
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "/";
}

int run_bench(const Options& o, pid_t owner) {
  ino_t host_netns = netns_inode();
  if (host_netns == 0 || ::unshare(CLONE_NEWNET) != 0 || netns_inode() == host_netns ||
      netns_inode() == 0) {
    std::printf("lb_bench: cannot create a private network namespace; not touching the host's\n");
    return 1;
  }
  using podwarp::noded::lb::testing::run_cmd;
  if (run_cmd({"ip", "link", "set", "lo", "up"}) != 0 ||
      run_cmd({"ip", "route", "add", "local", "10.96.0.0/16", "dev", "lo"}) != 0 ||
      run_cmd({"ip", "route", "add", "local", "10.244.0.0/15", "dev", "lo"}) != 0) {
    std::printf("lb_bench: netns setup with `ip` failed\n");
    return 1;
  }
  std::string tmp = "/tmp/podwarp-lb-bench-" + std::to_string(owner);
  std::filesystem::create_directories(tmp);

  // One listener for every endpoint address (local routes), port from the kernel.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in la{};
  la.sin_family = AF_INET;
  socklen_t ll = sizeof la;
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || ::listen(lfd, 4096) != 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&la), &ll) != 0) {
    std::printf("lb_bench: listen failed\n");
    return 1;
  }
  std::uint16_t port = ntohs(la.sin_port);
  std::thread([lfd] {
    for (;;) {
      int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) ::close(c);
    }
  }).detach();

  std::printf(
      "%d ClusterIP services x %d endpoints (TCP), %d connects per path, in a private "
      "netns\n",
      o.services, o.endpoints, o.connects);

  // ---- BPF ----
  std::string pins = "/sys/fs/bpf/podwarp-bench-lb-" + std::to_string(owner);
  std::string cg_mount = podwarp::noded::lb::testing::cgroup2_mount();
  std::string cg_parent = cg_mount + "/podwarp-bench-lb-" + std::to_string(owner);
  std::string cg = cg_parent + "/client";
  std::string home_cg = cg_mount + own_cgroup2();
  struct Cleanup {
    std::string pins, cg, cg_parent, tmp;
    void run() {
      if (pins.empty()) return;
      ::rmdir(cg.c_str());
      ::rmdir(cg_parent.c_str());
      Datapath::remove_pins(pins);
      std::error_code ec;
      std::filesystem::remove_all(tmp, ec);
      pins.clear();
    }
    ~Cleanup() { run(); }
  } cleanup{pins, cg, cg_parent, tmp};
  if (cg_mount.empty() || ::mkdir(cg_parent.c_str(), 0755) != 0 || ::mkdir(cg.c_str(), 0755) != 0) {
    std::printf("lb_bench: cannot create cgroup %s\n", cg.c_str());
    return 1;
  }
  DatapathOptions dopts;
  dopts.pin_dir = pins;
  dopts.nodeport = false;
  auto dp = Datapath::open(dopts);
  if (!dp) {
    std::printf("lb_bench: %s\n", dp.error().message.c_str());
    return 1;
  }
  ServiceMap sm((*dp)->maps());
  auto desc = [&](int i) {
    ServiceDesc d;
    d.key = "bench/svc-" + std::to_string(i);
    ServicePort p;
    p.name = "http";
    p.frontends.push_back({FrontendKind::ClusterIP, IpAddr::v4(vip(i)), 80, Protocol::TCP});
    for (int e = 0; e < o.endpoints; ++e)
      p.cluster_backends.push_back(
          {IpAddr::v4(endpoint(i, e, o.endpoints)), port, Protocol::TCP, false, false});
    d.ports.push_back(p);
    return d;
  };
  auto t_all = Clock::now();
  for (int i = 0; i < o.services; ++i) {
    if (auto r = sm.upsert_service(desc(i)); !r) {
      std::printf("lb_bench: upsert: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  double bpf_all_ms = us_since(t_all) / 1000;
  progress("BPF: %d services programmed", o.services);
  std::vector<double> bpf_one;
  for (int k = 0; k < 200; ++k) {
    ServiceDesc d = desc(o.services + k);
    auto t0 = Clock::now();
    auto r = sm.upsert_service(d);
    bpf_one.push_back(us_since(t0));
    if (!r) {
      std::printf("lb_bench: upsert: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  for (int k = 0; k < 200; ++k)
    (void)sm.delete_service("bench/svc-" + std::to_string(o.services + k));
  std::vector<double> bpf_ep;  // one endpoint added to an existing service
  for (int k = 0; k < 200; ++k) {
    ServiceDesc d = desc(k);
    d.ports[0].cluster_backends.push_back({IpAddr::v4(0x0af4ff00u + static_cast<std::uint32_t>(k)),
                                           port, Protocol::TCP, false, false});
    auto t0 = Clock::now();
    (void)sm.upsert_service(d);
    bpf_ep.push_back(us_since(t0));
    (void)sm.upsert_service(desc(k));
  }
  if (auto a = (*dp)->attach_cgroup(cg); !a) {
    std::printf("lb_bench: %s\n", a.error().message.c_str());
    return 1;
  }

  std::mt19937 rng(42);
  Latency direct, bpf, bpf_direct, ipt, ipt_direct;
  auto enter = [&](const std::string& path) {
    return podwarp::noded::lb::testing::write_file(path + "/cgroup.procs",
                                                   std::to_string(::getpid()));
  };
  // Warm up; then blocks of the no-BPF baseline (outside the cgroup) alternate with blocks of
  // interleaved ClusterIP/direct pairs inside the cgroup (where the programs run).
  measure_direct(direct, 200, rng, o, port);
  direct = {};
  int block = std::max(10, o.connects / 10);
  for (int done = 0; done < o.connects; done += block) {
    measure_direct(direct, block, rng, o, port);
    if (!enter(cg)) {
      std::printf("lb_bench: cannot enter %s\n", cg.c_str());
      return 1;
    }
    measure_pair(bpf, bpf_direct, block, rng, o, port);
    enter(home_cg);
  }
  (void)(*dp)->detach_cgroup(cg);
  auto counters = (*dp)->counters();
  progress("BPF: latency measured (%d failed)",
           bpf.failures + direct.failures + bpf_direct.failures);

  // ---- iptables ----
  std::string version;
  {
    std::string vf = tmp + "/version";
    pid_t pid = ::fork();
    if (pid == 0) {
      int out = ::open(vf.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(out, 1);
      ::execlp(o.restore.c_str(), o.restore.c_str(), "--version", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::waitpid(pid, nullptr, 0);
    std::ifstream f(vf);
    std::getline(f, version);
  }
  double first_load =
      o.iptables ? timed_restore(o, tmp, full_ruleset(o.services, o, port, true), false) : -1;
  progress("iptables: initial load %.0f ms", first_load / 1000);
  std::vector<double> ipt_full, ipt_partial, ipt_delta, ipt_noflush_full;
  if (first_load >= 0) {
    // Each run adds three services in a row, each the way kube-proxy would: the whole nat
    // table rewritten (full sync), KUBE-SERVICES + the new chains (partial sync), and the
    // smallest delta. kube-proxy's own full sync uses --noflush with every chain declared,
    // which iptables-nft executes far slower than a table replace (over 20 minutes for 10,000
    // services on the development VM): measured once only with --noflush-full.
    int present = o.services;
    for (int r = 0; r < o.runs; ++r) {
      double us = timed_restore(o, tmp, full_ruleset(present + 1, o, port, true), false);
      if (us >= 0) ipt_full.push_back(us);
      us = timed_restore(o, tmp, partial_ruleset(present + 2, o, port, present + 1), true);
      if (us >= 0) ipt_partial.push_back(us);
      us = timed_restore(o, tmp, minimal_delta(o, port, present + 2), true);
      if (us >= 0) ipt_delta.push_back(us);
      present += 3;
      progress("iptables: run %d: full %.0f ms, partial %.0f ms, delta %.0f ms", r + 1,
               ipt_full.empty() ? -1 : ipt_full.back() / 1000,
               ipt_partial.empty() ? -1 : ipt_partial.back() / 1000,
               ipt_delta.empty() ? -1 : ipt_delta.back() / 1000);
    }
    if (o.noflush_full) {
      double us = timed_restore(o, tmp, full_ruleset(present + 1, o, port, false), true);
      if (us >= 0) ipt_noflush_full.push_back(us);
      ++present;
    }
    progress("iptables: %d programming runs done", o.runs);
    Latency warm;
    measure_pair(warm, warm, 100, rng, o, port);
    measure_pair(ipt, ipt_direct, o.connects, rng, o, port);
  }

  // ---- report ----
  double one = median(bpf_one);
  std::printf("\nprogramming one more service (%d endpoints) with %d present:\n", o.endpoints,
              o.services);
  std::printf("  %-58s %10.1f us  (median of %zu)\n",
              "podwarp BPF maps (ServiceMap::upsert_service)", one, bpf_one.size());
  std::printf("  %-58s %10.1f us\n", "podwarp BPF: one endpoint added to a service",
              median(bpf_ep));
  std::printf("  %-58s %10.1f ms  (%d services, %.1f us each)\n",
              "podwarp BPF: initial programming", bpf_all_ms, o.services,
              bpf_all_ms * 1000 / o.services);
  auto ipt_line = [&](const char* what, const std::vector<double>& v) {
    if (v.empty()) {
      std::printf("  %-58s %10s\n", what, "failed");
      return;
    }
    double m = median(v);
    std::printf("  %-58s %10.1f ms  BPF is %.0fx faster\n", what, m / 1000, m / one);
  };
  std::printf("  [%s]\n", version.c_str());
  if (first_load >= 0)
    std::printf("  %-58s %10.1f ms\n", "iptables-restore: initial load of the full ruleset",
                first_load / 1000);
  ipt_line("iptables-restore, whole nat table with one more (full)", ipt_full);
  ipt_line("iptables-restore --noflush, KUBE-SERVICES+new chains (partial)", ipt_partial);
  ipt_line("iptables-restore --noflush, new rule+chains only (delta)", ipt_delta);
  if (o.noflush_full)
    ipt_line("iptables-restore --noflush, all chains declared (kube-proxy)", ipt_noflush_full);
  std::printf("\nfirst-connect latency (connect() until established; median / p90 of %d each):\n",
              o.connects);
  auto lat_line = [&](const char* what, const Latency& l, const Latency* base) {
    if (l.samples.empty()) {
      std::printf("  %-52s %10s  (%d failures)\n", what, "failed", l.failures);
      return;
    }
    double m = median(l.samples);
    std::printf("  %-52s %7.1f / %7.1f us", what, m, percentile(l.samples, 0.9));
    if (base != nullptr && !base->samples.empty())
      std::printf("  %+6.1f%% vs direct", (m / median(base->samples) - 1) * 100);
    if (l.failures) std::printf("  (%d failed)", l.failures);
    std::printf("\n");
  };
  lat_line("direct to an endpoint, no BPF, no iptables", direct, nullptr);
  std::printf("  podwarp BPF (programs attached, %d services; pairs interleaved):\n", o.services);
  lat_line("  direct to an endpoint (program runs, no match)", bpf_direct, &direct);
  lat_line("  ClusterIP", bpf, &bpf_direct);
  std::printf("  kube-proxy-style iptables (%d services; pairs interleaved):\n", o.services);
  lat_line("  direct to an endpoint (rules traversed)", ipt_direct, &direct);
  lat_line("  ClusterIP (DNAT)", ipt, &ipt_direct);
  std::printf("  (with iptables every new connection walks KUBE-SERVICES: a direct one all of it,\n"
              "   a ClusterIP one until its rule, half of it on average)\n");
  if (!bpf.samples.empty() && !ipt.samples.empty())
    std::printf("  iptables / BPF ClusterIP latency: %.2fx\n",
                median(ipt.samples) / median(bpf.samples));
  if (counters)
    std::printf(
        "  (BPF counters: %lu connects translated, %lu drops)\n",
        static_cast<unsigned long>(counters->event("SockConnectTranslated")),
        static_cast<unsigned long>(counters->drop("NoBackend") + counters->drop("BackendMissing")));
  std::fflush(stdout);
  dp->reset();
  cleanup.run();
  return 0;
}

// Removes what a (possibly killed) run_bench left: its cgroup, pins and files.
void cleanup_after(pid_t owner) {
  std::string id = std::to_string(owner);
  std::string cg_parent = podwarp::noded::lb::testing::cgroup2_mount() + "/podwarp-bench-lb-" + id;
  for (int i = 0; i < 50; ++i) {
    ::rmdir((cg_parent + "/client").c_str());
    if (::rmdir(cg_parent.c_str()) == 0 || errno == ENOENT) break;
    ::usleep(20000);
  }
  Datapath::remove_pins("/sys/fs/bpf/podwarp-bench-lb-" + id);
  std::error_code ec;
  std::filesystem::remove_all("/tmp/podwarp-lb-bench-" + id, ec);
}

}  // namespace

// The bench runs in a child process (its own netns, threads, cgroup moves); this parent only
// waits and then removes whatever the child left, also when it was killed or crashed.
int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--services")
      o.services = std::max(1, std::atoi(next().c_str()));
    else if (a == "--endpoints")
      o.endpoints = std::max(1, std::atoi(next().c_str()));
    else if (a == "--connects")
      o.connects = std::max(10, std::atoi(next().c_str()));
    else if (a == "--runs")
      o.runs = std::max(1, std::atoi(next().c_str()));
    else if (a == "--iptables-restore")
      o.restore = next();
    else if (a == "--no-iptables")
      o.iptables = false;
    else if (a == "--noflush-full")
      o.noflush_full = true;
    // Other flags belong to other benchmarks of scripts/bench.sh.
  }
  std::printf("\n== service load balancing: podwarp BPF vs kube-proxy-style iptables ==\n");
  if (::geteuid() != 0) {
    std::printf("lb_bench: skipped (needs root: BPF, cgroups, a private netns)\n");
    return 0;
  }
  pid_t owner = ::getpid();
  return podwarp::bench::run_in_child(
      "lb_bench", [&] { return run_bench(o, owner); }, [&] { cleanup_after(owner); });
}
