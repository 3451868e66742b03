// Routes to the other nodes' pods: for every other Node with an IPv4 podCIDR and an InternalIP,
// "<podCIDR> via <InternalIP>" in the main table with protocol kRouteProtocol (the underlay must
// reach the InternalIP directly: one L2 segment, as host-gw routing assumes). Kept in sync from
// Node objects (the agent's informer): desired_node_routes() is pure, sync_node_routes()
// replaces what is wanted and deletes the routes of ours (protocol + gateway) that are not.
#pragma once

#include <string>
#include <vector>

#include "cgroup/sys_error.h"
#include "net/addr.h"
#include "net/netlink.h"
#include "podwarp/json.h"

namespace podwarp::noded::net {

struct NodeRoute {
  std::string node;
  Cidr4 pod_cidr;
  Ipv4 via;
  bool operator==(const NodeRoute&) const = default;
};

// The IPv4 podCIDR of a Node (spec.podCIDRs, else spec.podCIDR); nullopt when none.
std::optional<Cidr4> node_pod_cidr(const json::value& node);
// Its first IPv4 InternalIP (status.addresses).
std::optional<Ipv4> node_internal_ip(const json::value& node);

// Routes for all nodes but `self` (sorted by node name; nodes lacking either part are skipped).
std::vector<NodeRoute> desired_node_routes(const std::vector<const json::value*>& nodes,
                                           const std::string& self);

struct RoutePlan {
  std::vector<Route4> replace, remove;
};
// What to change so that our gateway routes (`current`: protocol kRouteProtocol, with a via)
// become `desired`. Routes already as desired are left alone.
RoutePlan plan_node_routes(const std::vector<Route4>& current,
                           const std::vector<NodeRoute>& desired);

struct SyncResult {
  int replaced = 0, removed = 0;
  std::vector<std::string> errors;  // one per failed route (others are still applied)
};
// Applies the plan in the calling thread's namespace.
std::expected<SyncResult, SysError> sync_node_routes(Netlink& nl,
                                                     const std::vector<NodeRoute>& desired);

}  // namespace podwarp::noded::net
