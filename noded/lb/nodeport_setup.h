// NodePort interfaces and egress masquerade as noded configures them (--nodeport-interfaces,
// --cluster-cidr, --node-ip): attaches the tc programs to the named interfaces of the calling
// thread's network namespace, sets the node addresses, the NodePort SNAT address and the
// masquerade maps, and records the attached interfaces in a state file so that a restarted
// noded (which detaches interfaces no longer named) and `podwarp down` (which removes podwarp's
// filters, handle PODWARP_LB_TC_HANDLE) find them.
//
// State file (<root-dir>/run/lb-tc-interfaces): one interface name per line, replaced
// atomically (write + rename). Before attaching, it lists the union of the old and the new
// interfaces, so a crash half-way leaves nothing unrecorded.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "lb/datapath.h"
#include "podwarp/json.h"

namespace podwarp::noded::lb {

struct NodePortSetupOptions {
  std::vector<std::string> interfaces;     // --nodeport-interfaces (may be empty)
  std::string node_ip;                     // --node-ip ("" if unknown)
  std::vector<std::string> cluster_cidrs;  // --cluster-cidr: masquerade needs them
  std::string pod_cidr;                    // --pod-cidr, also a masquerade source ("" if none)
  std::string state_file;                  // where the attached interfaces are recorded
};

struct NodePortSetup {
  std::vector<std::string> attached;  // interface names, as given
  std::vector<std::string> detached;  // recorded by an earlier run, not named any more
  std::vector<IpAddr> node_addrs;     // --node-ip + every IPv4 address of the interfaces
  std::uint32_t snat_v4_net = 0;      // NodePort SNAT source (network order; 0: none)
  bool masquerade = false;            // cluster CIDRs given and interfaces attached
  MasqueradeConfig masq_config;       // what was set (empty without masquerade)
};

// The masquerade config plus every other node's InternalIP (IPv4) as an exempt /32: traffic to
// another node (a NodePort flow it SNATed to us, its host processes) stays inside the cluster.
MasqueradeConfig with_node_exemptions(const MasqueradeConfig& base,
                                      const std::vector<const json::value*>& nodes);

// The IPv4 addresses (network order) of interface `name` in the calling thread's netns, in
// the kernel's order.
std::expected<std::vector<std::uint32_t>, Error> interface_ipv4_addrs(const std::string& name);

// Reads a state file (missing: empty list).
std::vector<std::string> read_tc_state(const std::string& path);

std::expected<NodePortSetup, Error> setup_nodeport(Datapath& dp, const NodePortSetupOptions& o);

}  // namespace podwarp::noded::lb
