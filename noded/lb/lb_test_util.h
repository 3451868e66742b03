// Helpers for the real-kernel tests of noded/lb (datapath_test.cpp, sock_lb_test.cpp) and the
// benchmark: per-test bpffs pin dirs, test cgroups, packet checks; the namespaces, commands
// and packets of every BPF user's tests come from bpfutil/bpf_test_util.h.
// Everything they create is removed by their destructors, also when a test fails.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <expected>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bpfutil/bpf_test_util.h"
#include "lb/datapath.h"

namespace podwarp::noded::lb::testing {

using bpfutil::testing::AnonNetns;
using bpfutil::testing::csum_add;
using bpfutil::testing::csum_fold;
using bpfutil::testing::kEth;
using bpfutil::testing::kIp;
using bpfutil::testing::l4_csum;
using bpfutil::testing::make_packet;
using bpfutil::testing::PacketSpec;
using bpfutil::testing::ping;
using bpfutil::testing::pkt;
using bpfutil::testing::PrivateNetns;
using bpfutil::testing::random_suffix;
using bpfutil::testing::run_cmd;
using bpfutil::testing::RunResult;
using bpfutil::testing::sin4;
using bpfutil::testing::test_run;
using bpfutil::testing::v4;
using bpfutil::testing::v4_str;
using bpfutil::testing::write_file;

// /sys/fs/bpf/podwarp-test-lb-<pid>-<random>, removed (with every pin) at the end.
struct TestPins {
  std::string dir = "/sys/fs/bpf/podwarp-test-lb-" + random_suffix();
  ~TestPins() { Datapath::remove_pins(dir); }
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

// A datapath with small maps pinned under `pin_dir` (tests).
inline std::expected<std::unique_ptr<Datapath>, Error> open_small_datapath(
    const std::string& pin_dir) {
  DatapathOptions o;
  o.pin_dir = pin_dir;
  o.sizes = MapSizes{1024, 1024, 1024, 1024, 1024, 1024};
  return Datapath::open(o);
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
  r.l4_csum_ok = l4_csum(r.saddr, r.daddr, r.proto, l4, l4len) == 0;
  return r;
}

}  // namespace podwarp::noded::lb::testing
