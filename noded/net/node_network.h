// NodeNetwork: the pod network as noded runs it. Owns the PodNetwork (veths, IPAM) of this node
// and follows the Node objects (NodeAgent's on_nodes): the node's own spec.podCIDR feeds the
// IPAM (unless a static --pod-cidr was given), the others' podCIDRs become routes via their
// InternalIPs (node_routes.h), replaced and removed as Nodes change or go.
//
// Pods wait for the podCIDR: attach() fails with "node <name> has no podCIDR yet" until the node
// has one (the caller waits and retries; the pod stays ContainerCreating with that message).
// Threading: noded's loop thread; every call works in the thread's own (the host's) namespace.
#pragma once

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/node_routes.h"
#include "net/pod_network.h"

namespace podwarp::noded::net {

struct NodeNetworkOptions {
  std::string node_name;
  std::string state_dir;                 // <root-dir>/net
  std::optional<Cidr4> static_pod_cidr;  // --pod-cidr: used instead of the Node's
  bool allow_ip_forward = false;         // set net.ipv4.ip_forward=1 (cross-node traffic)
  // Called after a pod's veth is wired and before attach() returns (NetworkPolicy: filters on
  // the host veth, the pod's tables); an error fails the attach (the pod does not start
  // unfiltered). on_detached runs after the veth is gone.
  std::function<std::expected<void, std::string>(const std::string& pod_uid,
                                                 const PodAttachment& a)>
      on_attached;
  std::function<void(const std::string& pod_uid)> on_detached;
};

class NodeNetwork {
 public:
  static std::expected<NodeNetwork, std::string> open(const NodeNetworkOptions& o);

  bool has_pod_cidr() const { return pods_.pod_cidr().has_value(); }
  // The pod's IP (dotted quad) once its namespace is wired; idempotent (adoption).
  std::expected<std::string, std::string> attach(const std::string& pod_uid,
                                                 const std::string& netns_path);
  // Removes the pod's veth and releases its IP; errors are logged.
  void detach(const std::string& pod_uid);
  // All Node objects, after every change.
  void on_nodes(const std::vector<const json::value*>& nodes);

  PodNetwork& pods() { return pods_; }

 private:
  NodeNetwork(NodeNetworkOptions o, PodNetwork p) : o_(std::move(o)), pods_(std::move(p)) {}
  NodeNetworkOptions o_;
  PodNetwork pods_;
  std::optional<std::vector<NodeRoute>> applied_;  // last route set synced without error
};

}  // namespace podwarp::noded::net
