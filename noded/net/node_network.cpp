#include "net/node_network.h"

#include "podwarp/log.h"

namespace podwarp::noded::net {

std::expected<NodeNetwork, std::string> NodeNetwork::open(const NodeNetworkOptions& o) {
  auto p = PodNetwork::open(PodNetworkOptions{o.state_dir});
  if (!p) return std::unexpected(p.error().message);
  if (o.allow_ip_forward) {
    if (auto r = enable_ip_forward(); !r) return std::unexpected(r.error().message);
  }
  NodeNetwork n(o, std::move(*p));
  if (o.static_pod_cidr) n.pods_.set_pod_cidr(*o.static_pod_cidr);
  log::info("net: pod network (routed, /32 per pod, gateway {}), state {}, {} addresses recorded",
            kGateway, o.state_dir, n.pods_.ipam().allocations().size());
  return n;
}

std::expected<std::string, std::string> NodeNetwork::attach(const std::string& pod_uid,
                                                            const std::string& netns_path) {
  if (!has_pod_cidr())
    return std::unexpected("node " + o_.node_name +
                           " has no podCIDR yet (Node.spec.podCIDR is empty): waiting for it");
  auto a = pods_.setup(pod_uid, netns_path);
  if (!a) return std::unexpected(a.error().message);
  log::info("net: pod {}: {} on {} ({})", pod_uid, to_string(a->ip), a->host_ifname,
            a->created ? "created" : "found again");
  if (o_.on_attached) {
    if (auto r = o_.on_attached(pod_uid, *a); !r) return std::unexpected(r.error());
  }
  return to_string(a->ip);
}

void NodeNetwork::detach(const std::string& pod_uid) {
  auto ip = pods_.address_of(pod_uid);
  if (auto r = pods_.teardown(pod_uid); !r) {
    log::warn("net: pod {}: teardown: {}", pod_uid, r.error().message);
  } else if (ip) {
    log::info("net: pod {}: released {}", pod_uid, to_string(*ip));
  }
  if (o_.on_detached) o_.on_detached(pod_uid);
}

void NodeNetwork::on_nodes(const std::vector<const json::value*>& nodes) {
  if (!o_.static_pod_cidr) {
    for (const auto* n : nodes) {
      if (get_string(*n, {"metadata", "name"}) != o_.node_name) continue;
      auto c = node_pod_cidr(*n);
      if (c && (!pods_.pod_cidr() || !(*pods_.pod_cidr() == *c))) {
        log::info("net: node {} podCIDR {}", o_.node_name, to_string(*c));
        pods_.set_pod_cidr(*c);
      }
    }
  }
  auto want = desired_node_routes(nodes, o_.node_name);
  if (applied_ && *applied_ == want) return;
  auto nl = Netlink::open();
  if (!nl) {
    log::warn("net: node routes: {}", nl.error().message);
    return;
  }
  auto r = sync_node_routes(*nl, want);
  if (!r) {
    log::warn("net: node routes: {}", r.error().message);
    return;
  }
  for (const auto& e : r->errors) log::warn("net: node route: {}", e);
  if (r->replaced + r->removed > 0)
    log::info("net: routes to other nodes' pods: {} set, {} removed ({} nodes routed)", r->replaced,
              r->removed, want.size());
  if (r->errors.empty()) {
    applied_ = std::move(want);
  } else {
    applied_.reset();  // retried at the next Node change
  }
}

}  // namespace podwarp::noded::net
