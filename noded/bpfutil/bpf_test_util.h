// Helpers for the real-kernel tests of noded's BPF users (lb, netpol) and their benchmarks:
// private and anonymous network namespaces, commands, crafted packets (Ethernet + IPv4 +
// TCP/UDP/ICMP echo) for BPF_PROG_TEST_RUN, and a ping. Header-only; everything they create is
// removed by their destructors, also when a test fails.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace podwarp::noded::bpfutil::testing {

inline std::string random_suffix() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d-%08x", static_cast<int>(::getpid()), rd());
  return buf;
}

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

// A network namespace of its own, held by an fd (created by a short-lived thread).
class AnonNetns {
 public:
  AnonNetns() {
    std::thread([this] {
      if (::unshare(CLONE_NEWNET) == 0)
        fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    }).join();
  }
  ~AnonNetns() {
    if (fd_ >= 0) ::close(fd_);
  }
  AnonNetns(const AnonNetns&) = delete;
  AnonNetns& operator=(const AnonNetns&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // The path `ip link set ... netns PATH` takes.
  std::string path() const {
    return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd_);
  }

  // Runs fn on a thread inside this namespace and returns its result.
  template <typename F>
  auto run(F fn) const -> decltype(fn()) {
    using R = decltype(fn());
    std::optional<R> out;
    std::thread([&] {
      if (::setns(fd_, CLONE_NEWNET) == 0) out = fn();
    }).join();
    if (!out) return R{};
    return std::move(*out);
  }

 private:
  int fd_ = -1;
};

inline sockaddr_in sin4(const char* addr, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, addr, &a.sin_addr);
  return a;
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

// Internet checksum: sum of 16-bit big-endian words, then folded and inverted.
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

// ---- packets (Ethernet + IPv4 + TCP/UDP/ICMP echo) for BPF_PROG_TEST_RUN ----

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

// The TCP/UDP checksum over the IPv4 pseudo-header and the L4 bytes (0 when they carry a
// right one).
inline std::uint16_t l4_csum(std::uint32_t saddr, std::uint32_t daddr, std::uint8_t proto,
                             const std::uint8_t* l4, std::size_t l4len) {
  std::uint8_t pseudo[12] = {};
  std::memcpy(pseudo, &saddr, 4);
  std::memcpy(pseudo + 4, &daddr, 4);
  pseudo[9] = proto;
  pseudo[10] = static_cast<std::uint8_t>(l4len >> 8);
  pseudo[11] = static_cast<std::uint8_t>(l4len);
  return csum_fold(csum_add(csum_add(0, pseudo, 12), l4, l4len));
}

// A PacketSpec of this protocol and 4-tuple (addresses in network order, ports in host order).
inline PacketSpec pkt(std::uint8_t proto, std::uint32_t s, std::uint16_t sp, std::uint32_t d,
                      std::uint16_t dp, std::uint8_t tcp_flags = 0x02) {
  PacketSpec p;
  p.proto = proto;
  p.saddr = s;
  p.sport = sp;
  p.daddr = d;
  p.dport = dp;
  p.tcp_flags = tcp_flags;
  return p;
}

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
  std::uint16_t c = l4_csum(s.saddr, s.daddr, s.proto, l4, l4len);
  if (s.proto == IPPROTO_UDP && c == 0) c = 0xffff;
  std::size_t off = s.proto == IPPROTO_TCP ? 16 : 6;
  l4[off] = static_cast<std::uint8_t>(c >> 8);
  l4[off + 1] = static_cast<std::uint8_t>(c);
  return p;
}

inline std::uint16_t icmp_csum(const std::uint8_t* p, std::size_t n) {
  return htons(csum_fold(csum_add(0, p, n)));
}

// One ICMP echo request with `id` to addr (raw socket); the echo reply's identifier, or -1.
inline int ping(const char* addr, std::uint16_t id) {
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return -1;
  std::uint8_t req[16] = {ICMP_ECHO,
                          0,
                          0,
                          0,
                          static_cast<std::uint8_t>(id >> 8),
                          static_cast<std::uint8_t>(id),
                          0,
                          1,
                          'p',
                          'o',
                          'd',
                          'p',
                          'i',
                          'n',
                          'g',
                          0};
  std::uint16_t c = icmp_csum(req, sizeof req);
  std::memcpy(req + 2, &c, 2);
  sockaddr_in to = sin4(addr, 0);
  int result = -1;
  if (::sendto(fd, req, sizeof req, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
      static_cast<ssize_t>(sizeof req)) {
    for (int i = 0; i < 20 && result < 0; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      std::uint8_t buf[256];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 28) continue;
      std::size_t ihl = (buf[0] & 0x0f) * 4u;
      if (static_cast<std::size_t>(n) < ihl + 8 || buf[ihl] != ICMP_ECHOREPLY) continue;
      if (icmp_csum(buf + ihl, static_cast<std::size_t>(n) - ihl) != 0) continue;  // bad checksum
      result = buf[ihl + 4] << 8 | buf[ihl + 5];
    }
  }
  ::close(fd);
  return result;
}

// ---- BPF_PROG_TEST_RUN of a tc program ----

struct RunResult {
  int err = 0;
  std::uint32_t retval = 0;
  std::vector<std::uint8_t> out;
};

// Runs a tc program once on `in` (never transmits); `ifindex` goes into the context.
inline RunResult test_run(int prog_fd, const std::vector<std::uint8_t>& in, int ifindex) {
  RunResult r;
  r.out.resize(in.size() + 256);
  struct __sk_buff ctx {};
  ctx.ifindex = static_cast<__u32>(ifindex);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<__u32>(in.size());
  opts.data_out = r.out.data();
  opts.data_size_out = static_cast<__u32>(r.out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof ctx;
  opts.repeat = 1;
  r.err = bpf_prog_test_run_opts(prog_fd, &opts);
  r.retval = opts.retval;
  r.out.resize(opts.data_size_out);
  return r;
}

}  // namespace podwarp::noded::bpfutil::testing
