// PodNetwork: noded's IPv4 pod network, a routed design without a bridge (as Calico's):
//
//   host namespace                          pod namespace (pinned by the sandbox)
//   pw<11 hex> (veth, no address)  <---->   eth0 (veth) 10.244.1.7/32
//   route 10.244.1.7/32 dev pw...           route 169.254.1.1 dev eth0 scope link
//     scope link proto 151                  route default via 169.254.1.1 dev eth0
//   conf/pw.../forwarding = 1               neigh 169.254.1.1 lladdr <mac of pw...> PERMANENT
//
// Each pod gets a /32 from the node's podCIDR (Ipam, persisted under <state-dir>/ipam). Its
// default gateway is the link-local 169.254.1.1, resolved by a permanent neighbour entry to the
// MAC of the host side, so every packet the pod sends outside itself enters the host through
// its veth and is routed by the host's table (pod to pod on the node: the other pod's /32
// route; across nodes: the other node's podCIDR route via its InternalIP, node_routes.h). No
// proxy ARP and no address on the host side are needed. Forwarding is enabled per veth
// (conf/<veth>/forwarding), which is what lets pods' packets be routed; packets arriving from
// other nodes on the underlay need net.ipv4.ip_forward, which noded sets only when allowed
// (--allow-ip-forward). Egress masquerade is not done here.
//
// The host veth's alias (IFLA_IFALIAS) is the pod UID: `ip link` shows the owner, and a
// name collision between two pods is refused instead of sharing or deleting the other's veth.
//
// Restart safety: everything is named from the pod UID and found again; setup() is idempotent
// (addresses added if missing, routes and the neighbour entry replaced in place), so calling it
// for a running pod after a noded restart changes nothing and interrupts no traffic.
// teardown() deletes the host veth (the pod side and the host route go with it) and releases
// the address. Works in the network namespace of the calling thread (tests run it in a
// namespace they created). Not thread-safe: one owner.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <set>
#include <string>

#include "cgroup/sys_error.h"
#include "net/addr.h"
#include "net/ipam.h"

namespace podwarp::noded::net {

// rtm_protocol of the routes noded creates (pod /32 routes and other nodes' podCIDRs), so that
// they are told apart from everybody else's. Not a registered value (/etc/iproute2/rt_protos).
inline constexpr std::uint8_t kRouteProtocol = 151;
inline constexpr std::string_view kGateway = "169.254.1.1";

struct PodNetworkOptions {
  std::string state_dir;  // <root-dir>/net; the IPAM records live in <state_dir>/ipam
};

struct PodAttachment {
  Ipv4 ip;
  std::string host_ifname;
  bool created = false;  // false: the veth was there already (adopted after a restart)
};

class PodNetwork {
 public:
  static std::expected<PodNetwork, SysError> open(const PodNetworkOptions& o);

  void set_pod_cidr(const Cidr4& c) { ipam_.set_cidr(c); }
  const std::optional<Cidr4>& pod_cidr() const { return ipam_.cidr(); }

  // Wires the pod's network namespace (at `netns_path`) to this namespace. Idempotent.
  std::expected<PodAttachment, SysError> setup(const std::string& pod_uid,
                                               const std::string& netns_path);
  // Removes the pod's veth and releases its address. Idempotent.
  std::expected<void, SysError> teardown(const std::string& pod_uid);
  // Tears down every pod with an address that is not in `live` (pods removed while noded was
  // down and never seen again). Returns how many.
  int release_orphans(const std::set<std::string>& live);

  std::optional<Ipv4> address_of(const std::string& pod_uid) const { return ipam_.lookup(pod_uid); }
  const Ipam& ipam() const { return ipam_; }

 private:
  explicit PodNetwork(Ipam ipam) : ipam_(std::move(ipam)) {}
  Ipam ipam_;
};

// net.ipv4.ip_forward = 1 in the calling thread's namespace.
std::expected<void, SysError> enable_ip_forward();

}  // namespace podwarp::noded::net
