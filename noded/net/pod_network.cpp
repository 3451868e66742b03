#include "net/pod_network.h"

#include <fcntl.h>
#include <unistd.h>

#include "net/names.h"
#include "net/netlink.h"

namespace podwarp::noded::net {

std::expected<PodNetwork, SysError> PodNetwork::open(const PodNetworkOptions& o) {
  auto ipam = Ipam::open(o.state_dir + "/ipam");
  if (!ipam) return std::unexpected(ipam.error());
  return PodNetwork(std::move(*ipam));
}

std::expected<PodAttachment, SysError> PodNetwork::setup(const std::string& pod_uid,
                                                         const std::string& netns_path) {
  auto fail = [&](const SysError& e) {
    return std::unexpected(e.wrap("pod network of " + pod_uid));
  };
  auto ip = ipam_.allocate(pod_uid);
  if (!ip) return fail(ip.error());
  const Ipv4 gw = *parse_ipv4(kGateway);
  PodAttachment att{*ip, host_veth_name(pod_uid), false};
  auto nl = Netlink::open();
  if (!nl) return fail(nl.error());
  auto host = nl->link(att.host_ifname);
  if (!host) return fail(host.error());
  if (*host && (*host)->kind != "veth")
    return fail(logic_error("link " + att.host_ifname + " exists and is not a veth (kind \"" +
                            (*host)->kind + "\")"));
  if (*host && !(*host)->alias.empty() && (*host)->alias != pod_uid)
    return fail(logic_error("veth " + att.host_ifname + " belongs to pod " + (*host)->alias +
                            " (name collision)"));
  if (!*host) {
    int nsfd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) return fail(errno_error("open " + netns_path));
    auto add = nl->add_veth(att.host_ifname, std::string(kPodIfName), nsfd);
    ::close(nsfd);
    if (!add) return fail(add.error());
    att.created = true;
    if (auto r = nl->set_alias(att.host_ifname, pod_uid); !r) return fail(r.error());
    host = nl->link(att.host_ifname);
    if (!host || !*host)
      return fail(host ? logic_error("veth " + att.host_ifname + " vanished after creation")
                       : host.error());
  }
  const LinkInfo hl = **host;
  // Host side: forwarding for the pod's packets, up, the route to the pod.
  if (auto r = set_ipv4_sysctl(hl.name, "forwarding", "1"); !r) return fail(r.error());
  if (auto r = nl->set_up(hl.name); !r) return fail(r.error());
  Route4 to_pod{Cidr4{*ip, 32}, std::nullopt, hl.ifindex, kRouteProtocol};
  if (auto r = nl->replace_route(to_pod); !r) return fail(r.error());
  // Pod side.
  auto inside = run_in_netns(netns_path, [&]() -> std::expected<void, SysError> {
    auto pnl = Netlink::open();
    if (!pnl) return std::unexpected(pnl.error());
    const std::string ifname(kPodIfName);
    auto l = pnl->link(ifname);
    if (!l) return std::unexpected(l.error());
    if (!*l)
      return std::unexpected(
          logic_error("the pod namespace has no " + ifname + " (its veth peer is elsewhere)"));
    if (auto r = pnl->add_address((*l)->ifindex, *ip, 32); !r) return r;
    if (auto r = pnl->set_up(ifname); !r) return r;
    if (auto r = pnl->replace_neighbor((*l)->ifindex, gw, hl.mac); !r) return r;
    if (auto r =
            pnl->replace_route(Route4{Cidr4{gw, 32}, std::nullopt, (*l)->ifindex, kRouteProtocol});
        !r)
      return r;
    return pnl->replace_route(Route4{Cidr4{Ipv4{0}, 0}, gw, (*l)->ifindex, kRouteProtocol});
  });
  if (!inside) return fail(inside.error().wrap("in " + netns_path));
  return att;
}

std::expected<void, SysError> PodNetwork::teardown(const std::string& pod_uid) {
  auto nl = Netlink::open();
  if (!nl) return std::unexpected(nl.error());
  std::string name = host_veth_name(pod_uid);
  auto l = nl->link(name);
  if (!l) return std::unexpected(l.error());
  // Only our veth: not another pod's under a colliding name (its alias names its owner).
  if (*l && (*l)->kind == "veth" && ((*l)->alias.empty() || (*l)->alias == pod_uid)) {
    if (auto d = nl->delete_link(name); !d) return std::unexpected(d.error());
  }
  // The route went with the link; a route left by a crash between steps is removed too.
  if (auto ip = ipam_.lookup(pod_uid)) {
    if (auto rs = nl->routes(kRouteProtocol)) {
      for (const auto& r : *rs)
        if (!r.via && r.dst == Cidr4{*ip, 32}) (void)nl->delete_route(r);
    }
  }
  return ipam_.release(pod_uid);
}

int PodNetwork::release_orphans(const std::set<std::string>& live) {
  std::set<std::string> gone;
  for (const auto& [ip, uid] : ipam_.allocations())
    if (!live.contains(uid)) gone.insert(uid);
  int n = 0;
  for (const auto& uid : gone)
    if (teardown(uid)) ++n;
  return n;
}

std::expected<void, SysError> enable_ip_forward() { return set_ipv4_sysctl("", "ip_forward", "1"); }

}  // namespace podwarp::noded::net
