#include "net/node_routes.h"

#include <algorithm>

#include "net/pod_network.h"

namespace podwarp::noded::net {

std::optional<Cidr4> node_pod_cidr(const json::value& node) {
  if (const auto* l = find_path(node, {"spec", "podCIDRs"}); l && l->is_array())
    for (const auto& c : l->as_array())
      if (c.is_string())
        if (auto p = parse_cidr4(c.as_string())) return p;
  return parse_cidr4(get_string(node, {"spec", "podCIDR"}));
}

std::optional<Ipv4> node_internal_ip(const json::value& node) {
  if (const auto* l = find_path(node, {"status", "addresses"}); l && l->is_array())
    for (const auto& a : l->as_array())
      if (get_string(a, {"type"}) == "InternalIP")
        if (auto ip = parse_ipv4(get_string(a, {"address"}))) return ip;
  return std::nullopt;
}

std::vector<NodeRoute> desired_node_routes(const std::vector<const json::value*>& nodes,
                                           const std::string& self) {
  std::vector<NodeRoute> out;
  for (const auto* n : nodes) {
    if (n == nullptr) continue;
    std::string name(get_string(*n, {"metadata", "name"}));
    if (name == self) continue;
    auto cidr = node_pod_cidr(*n);
    auto ip = node_internal_ip(*n);
    if (!cidr || !ip) continue;
    out.push_back(NodeRoute{name, *cidr, *ip});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  // Two nodes claiming one podCIDR (a stale Node object): the first by name wins.
  std::vector<NodeRoute> unique;
  for (auto& r : out) {
    bool dup = false;
    for (const auto& u : unique) dup = dup || u.pod_cidr == r.pod_cidr;
    if (!dup) unique.push_back(std::move(r));
  }
  return unique;
}

RoutePlan plan_node_routes(const std::vector<Route4>& current,
                           const std::vector<NodeRoute>& desired) {
  RoutePlan plan;
  for (const auto& c : current) {
    if (!c.via) continue;  // a pod's /32 route, not ours to manage here
    bool wanted = false;
    for (const auto& d : desired) wanted = wanted || (d.pod_cidr == c.dst && d.via == *c.via);
    if (!wanted) plan.remove.push_back(c);
  }
  for (const auto& d : desired) {
    bool present = false;
    for (const auto& c : current)
      present = present || (c.via && c.dst == d.pod_cidr && *c.via == d.via);
    if (!present) plan.replace.push_back(Route4{d.pod_cidr, d.via, 0, kRouteProtocol});
  }
  return plan;
}

std::expected<SyncResult, SysError> sync_node_routes(Netlink& nl,
                                                     const std::vector<NodeRoute>& desired) {
  auto cur = nl.routes(kRouteProtocol);
  if (!cur) return std::unexpected(cur.error());
  RoutePlan plan = plan_node_routes(*cur, desired);
  SyncResult res;
  // Removals first: a podCIDR that moved to another gateway is removed and added again
  // (replace would also do, but the old route's key includes its gateway only for multipath).
  for (const auto& r : plan.remove) {
    if (auto d = nl.delete_route(r); !d) {
      res.errors.push_back(d.error().message);
    } else {
      ++res.removed;
    }
  }
  for (const auto& r : plan.replace) {
    if (auto d = nl.replace_route(r); !d) {
      res.errors.push_back(d.error().message);
    } else {
      ++res.replaced;
    }
  }
  return res;
}

}  // namespace podwarp::noded::net
