// Helpers for the real-kernel tests of noded/lb (datapath_test.cpp, sock_lb_test.cpp) and the
// benchmark: per-test bpffs pin dirs, private network namespaces, test cgroups, packets.
// Everything they create is removed by their destructors, also when a test fails.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <expected>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "lb/datapath.h"

namespace podwarp::noded::lb::testing {

inline std::string random_suffix() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d-%08x", static_cast<int>(::getpid()), rd());
  return buf;
}

// /sys/fs/bpf/podwarp-test-lb-<pid>-<random>, removed (with every pin) at the end.
struct TestPins {
  std::string dir = "/sys/fs/bpf/podwarp-test-lb-" + random_suffix();
  ~TestPins() { Datapath::remove_pins(dir); }
};

// Runs argv (no shell) and returns its exit status; output goes to stderr of the test.
inline int run_cmd(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, 1);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline bool write_file(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  return static_cast<bool>(f);
}

// The calling thread moves into a new network namespace (only lo, down) and back to the
// original one at destruction; the new namespace and its links vanish with the last user.
// Commands run with run_cmd() from this thread inherit it.
class PrivateNetns {
 public:
  PrivateNetns() {
    orig_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_ < 0) return;
    if (::unshare(CLONE_NEWNET) != 0) {
      ::close(orig_);
      orig_ = -1;
      return;
    }
    ok_ = true;
  }
  ~PrivateNetns() {
    if (orig_ >= 0) {
      if (ok_) ::setns(orig_, CLONE_NEWNET);
      ::close(orig_);
    }
  }
  PrivateNetns(const PrivateNetns&) = delete;
  PrivateNetns& operator=(const PrivateNetns&) = delete;
  bool ok() const { return ok_; }

 private:
  int orig_ = -1;
  bool ok_ = false;
};

// The cgroup2 mount point ("" if none), from /proc/self/mountinfo.
inline std::string cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos || line.compare(sep + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line);
    std::string id, parent, devno, root, mnt;
    f >> id >> parent >> devno >> root >> mnt;
    return mnt;
  }
  return "";
}

// <cgroup2>/podwarp-test-lb-<pid>-<random>/<leaf>: created by the test, removed at the end
// (after the processes the test put there have exited: the test waits for them).
struct TestCgroup {
  std::string parent;
  std::string path;
  bool ok = false;
  explicit TestCgroup(const std::string& leaf = "client") {
    std::string mnt = cgroup2_mount();
    if (mnt.empty()) return;
    parent = mnt + "/podwarp-test-lb-" + random_suffix();
    path = parent + "/" + leaf;
    ok = ::mkdir(parent.c_str(), 0755) == 0 && ::mkdir(path.c_str(), 0755) == 0;
  }
  ~TestCgroup() {
    if (!path.empty()) ::rmdir(path.c_str());
    if (!parent.empty()) ::rmdir(parent.c_str());
  }
};

// ---- packets (Ethernet + IPv4 + TCP/UDP/ICMP echo) for BPF_PROG_TEST_RUN ----

inline sockaddr_in sin4(const char* addr, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, addr, &a.sin_addr);
  return a;
}

// A datapath with small maps pinned under `pin_dir` (tests).
inline std::expected<std::unique_ptr<Datapath>, Error> open_small_datapath(
    const std::string& pin_dir) {
  DatapathOptions o;
  o.pin_dir = pin_dir;
  o.sizes = MapSizes{1024, 1024, 1024, 1024, 1024, 1024};
  return Datapath::open(o);
}

inline std::uint32_t v4(const char* s) {
  in_addr a{};
  ::inet_pton(AF_INET, s, &a);
  return a.s_addr;  // network order
}

inline std::string v4_str(std::uint32_t net) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{net};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

inline std::uint32_t csum_add(std::uint32_t sum, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  return sum;
}

inline std::uint16_t csum_fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

constexpr std::size_t kEth = 14;
constexpr std::size_t kIp = 20;

struct PacketSpec {
  std::uint8_t proto = IPPROTO_TCP;
  std::uint32_t saddr = 0, daddr = 0;  // network order
  std::uint16_t sport = 0, dport = 0;  // host order
  std::uint8_t tcp_flags = 0x02;       // SYN
  std::uint16_t frag = 0x4000;         // DF; 0x2000 = MF
  bool udp_zero_csum = false;
  std::uint8_t icmp_type = 8;  // ICMP: 8 echo request, 0 echo reply; the identifier is `sport`
  std::string payload = "hello";
};

inline std::vector<std::uint8_t> make_packet(const PacketSpec& s) {
  std::size_t l4len = (s.proto == IPPROTO_TCP ? 20 : 8) + s.payload.size();
  const bool icmp = s.proto == IPPROTO_ICMP;
  std::vector<std::uint8_t> p(kEth + kIp + l4len, 0);
  const std::uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 1}, smac[6] = {0x02, 0, 0, 0, 0, 2};
  std::memcpy(&p[0], dmac, 6);
  std::memcpy(&p[6], smac, 6);
  p[12] = 0x08;
  p[13] = 0x00;
  std::uint8_t* ip = &p[kEth];
  ip[0] = 0x45;
  std::uint16_t tot = static_cast<std::uint16_t>(kIp + l4len);
  ip[2] = static_cast<std::uint8_t>(tot >> 8);
  ip[3] = static_cast<std::uint8_t>(tot);
  ip[4] = 0x12;
  ip[5] = 0x34;
  ip[6] = static_cast<std::uint8_t>(s.frag >> 8);
  ip[7] = static_cast<std::uint8_t>(s.frag);
  ip[8] = 64;
  ip[9] = s.proto;
  std::memcpy(&ip[12], &s.saddr, 4);
  std::memcpy(&ip[16], &s.daddr, 4);
  std::uint16_t ipc = csum_fold(csum_add(0, ip, kIp));
  ip[10] = static_cast<std::uint8_t>(ipc >> 8);
  ip[11] = static_cast<std::uint8_t>(ipc);
  std::uint8_t* l4 = ip + kIp;
  if (icmp) {
    l4[0] = s.icmp_type;
    l4[4] = static_cast<std::uint8_t>(s.sport >> 8);
    l4[5] = static_cast<std::uint8_t>(s.sport);
    l4[7] = 1;  // sequence
    std::memcpy(l4 + 8, s.payload.data(), s.payload.size());
    std::uint16_t c = csum_fold(csum_add(0, l4, l4len));
    l4[2] = static_cast<std::uint8_t>(c >> 8);
    l4[3] = static_cast<std::uint8_t>(c);
    return p;
  }
  l4[0] = static_cast<std::uint8_t>(s.sport >> 8);
  l4[1] = static_cast<std::uint8_t>(s.sport);
  l4[2] = static_cast<std::uint8_t>(s.dport >> 8);
  l4[3] = static_cast<std::uint8_t>(s.dport);
  std::size_t hdr = 8;
  if (s.proto == IPPROTO_TCP) {
    l4[4] = 0x11;  // seq
    l4[12] = 5 << 4;
    l4[13] = s.tcp_flags;
    l4[14] = 0xff;
    l4[15] = 0xff;
    hdr = 20;
  } else {
    l4[4] = static_cast<std::uint8_t>(l4len >> 8);
    l4[5] = static_cast<std::uint8_t>(l4len);
  }
  std::memcpy(l4 + hdr, s.payload.data(), s.payload.size());
  if (s.proto == IPPROTO_UDP && s.udp_zero_csum) return p;
  std::uint8_t pseudo[12] = {};
  std::memcpy(pseudo, &s.saddr, 4);
  std::memcpy(pseudo + 4, &s.daddr, 4);
  pseudo[9] = s.proto;
  pseudo[10] = static_cast<std::uint8_t>(l4len >> 8);
  pseudo[11] = static_cast<std::uint8_t>(l4len);
  std::uint16_t c = csum_fold(csum_add(csum_add(0, pseudo, 12), l4, l4len));
  if (s.proto == IPPROTO_UDP && c == 0) c = 0xffff;
  std::size_t off = s.proto == IPPROTO_TCP ? 16 : 6;
  l4[off] = static_cast<std::uint8_t>(c >> 8);
  l4[off + 1] = static_cast<std::uint8_t>(c);
  return p;
}

// What a packet says, with its checksums verified independently of the kernel.
struct ParsedPacket {
  std::uint8_t proto = 0;
  std::uint32_t saddr = 0, daddr = 0;
  std::uint16_t sport = 0, dport = 0;  // ICMP echo: both are the identifier
  std::uint8_t icmp_type = 0;
  bool ip_csum_ok = false;
  bool l4_csum_ok = false;
  bool udp_csum_zero = false;
  std::string payload;
  std::string src() const { return v4_str(saddr) + ":" + std::to_string(sport); }
  std::string dst() const { return v4_str(daddr) + ":" + std::to_string(dport); }
};

inline ParsedPacket parse_packet(const std::vector<std::uint8_t>& p) {
  ParsedPacket r;
  if (p.size() < kEth + kIp + 8) return r;
  const std::uint8_t* ip = &p[kEth];
  r.proto = ip[9];
  std::memcpy(&r.saddr, &ip[12], 4);
  std::memcpy(&r.daddr, &ip[16], 4);
  r.ip_csum_ok = csum_fold(csum_add(0, ip, kIp)) == 0;
  std::size_t tot = static_cast<std::size_t>(ip[2] << 8 | ip[3]);
  if (tot > p.size() - kEth || tot < kIp + 8) return r;
  std::size_t l4len = tot - kIp;
  const std::uint8_t* l4 = ip + kIp;
  if (r.proto == IPPROTO_ICMP) {
    r.icmp_type = l4[0];
    r.sport = r.dport = static_cast<std::uint16_t>(l4[4] << 8 | l4[5]);
    r.payload.assign(reinterpret_cast<const char*>(l4 + 8), l4len - 8);
    r.l4_csum_ok = csum_fold(csum_add(0, l4, l4len)) == 0;
    return r;
  }
  r.sport = static_cast<std::uint16_t>(l4[0] << 8 | l4[1]);
  r.dport = static_cast<std::uint16_t>(l4[2] << 8 | l4[3]);
  std::size_t hdr = r.proto == IPPROTO_TCP ? static_cast<std::size_t>((l4[12] >> 4) * 4) : 8;
  if (hdr <= l4len) r.payload.assign(reinterpret_cast<const char*>(l4 + hdr), l4len - hdr);
  if (r.proto == IPPROTO_UDP && l4[6] == 0 && l4[7] == 0) {
    r.udp_csum_zero = true;
    r.l4_csum_ok = true;
    return r;
  }
  std::uint8_t pseudo[12] = {};
  std::memcpy(pseudo, &r.saddr, 4);
  std::memcpy(pseudo + 4, &r.daddr, 4);
  pseudo[9] = r.proto;
  pseudo[10] = static_cast<std::uint8_t>(l4len >> 8);
  pseudo[11] = static_cast<std::uint8_t>(l4len);
  r.l4_csum_ok = csum_fold(csum_add(csum_add(0, pseudo, 12), l4, l4len)) == 0;
  return r;
}

}  // namespace podwarp::noded::lb::testing
