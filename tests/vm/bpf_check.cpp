// BPF on the guest's kernel (Debian 12's 6.1 in tests/vm/run.sh; the build host runs a newer
// one): every BPF object noded loads passes that kernel's verifier through noded's own loaders
// (CO-RE relocations against the guest's BTF), and the NetworkPolicy program decides packets
// there as on the build host (BPF_PROG_TEST_RUN: no network needed).
#include "bpf_check.h"

#include <arpa/inet.h>
#include <linux/pkt_cls.h>
#include <sys/utsname.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "bpfutil/bpf_test_util.h"
#include "exitrec/exit_recorder.h"
#include "lb/datapath.h"
#include "netpol/datapath.h"

namespace {

namespace np = podwarp::noded::netpol;
namespace lb = podwarp::noded::lb;
namespace bt = podwarp::noded::bpfutil::testing;

int failed = 0;

void check(bool ok, const std::string& what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) ++failed;
}

using bt::v4;

void netpol_check(const std::string& dir) {
  np::DatapathOptions o;
  o.pin_dir = dir + "/netpol";
  o.max_endpoints = 16;
  o.max_peers = 64;
  o.max_ct = 64;
  auto dp = np::Datapath::open(o);
  check(dp.has_value(), "netpol (bpf/netpol.bpf.c) loads: " + (dp ? std::string("yes") : dp.error().message));
  if (!dp) return;
  // The server 10.244.0.3 accepts TCP 80 from 10.244.0.2 only.
  const std::uint32_t server = v4("10.244.0.3"), client = v4("10.244.0.2"), other = v4("10.244.0.9");
  podwarp::netpolicy::EndpointPolicy p;
  p.ingress = podwarp::netpolicy::Table{};
  p.ingress->ranges = {{6, 0, 80, 80}};
  p.ingress->peers = {{podwarp::netpolicy::Prefix{client, 32}, 1}};
  auto w = (*dp)->apply(server, nullptr, p);
  check(w.has_value() && (*dp)->commit().has_value(),
        "a port table and a peer prefix are written" + (w ? std::string() : ": " + w.error().message));
  auto run = [&](std::uint32_t from, std::uint16_t port) {
    auto r = bt::test_run((*dp)->program_fd("to_pod"),
                          bt::make_packet(bt::pkt(IPPROTO_TCP, from, 40000, server, port)), 1);
    return r.err == 0 ? static_cast<int>(r.retval) : -1;
  };
  check(run(client, 80) == TC_ACT_OK, "the allowed client's SYN to port 80 passes");
  check(run(client, 81) == TC_ACT_SHOT, "the client's SYN to port 81 is dropped");
  check(run(other, 80) == TC_ACT_SHOT, "another pod's SYN to port 80 is dropped");
  auto c = (*dp)->counters();
  std::uint64_t denied = 0;
  if (c)
    for (const auto& x : *c)
      if (x.name == "DeniedIngress") denied = x.packets;
  check(denied == 2, "DeniedIngress counted 2 (" + std::to_string(denied) + ")");
  dp->reset();
  (void)np::Datapath::remove_pins(o.pin_dir);
}

void lb_check(const std::string& dir) {
  lb::DatapathOptions o;
  o.pin_dir = dir + "/lb";
  o.sizes.services = 64;
  o.sizes.backends = 64;
  o.sizes.members = 64;
  o.sizes.affinity = 64;
  o.sizes.sock_revnat = 64;
  o.sizes.ct4 = 64;
  o.sizes.sock_slots = 64;
  auto dp = lb::Datapath::open(o);
  check(dp.has_value(), "service LB (bpf/sock_lb.bpf.c, bpf/nodeport.bpf.c) loads: " +
                            (dp ? std::string("yes") : dp.error().message));
  if (dp) dp->reset();
  (void)lb::Datapath::remove_pins(o.pin_dir);
}

void exitrec_check(const std::string& dir) {
  auto r = podwarp::noded::exitrec::ExitRecorder::open(dir + "/exitrec");
  check(r.has_value(), "exit recorder (bpf/exit_recorder.bpf.c) loads: " +
                           (r ? std::string("yes") : r.error().message));
}

}  // namespace

int bpf_checks(const char* pin_dir) {
  utsname u{};
  ::uname(&u);
  std::printf("\n=== BPF objects of noded on kernel %s\n", u.release);
  std::string dir = pin_dir;
  netpol_check(dir);
  lb_check(dir);
  exitrec_check(dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return failed;
}
