// PolicySync: keeps the NetworkPolicy maps (Datapath) equal to what netpolicy::compile() makes
// of the cluster, for the pods of this node. In noded's API mode with --network-policy.
//
// Inputs: three informers, all namespaces (networking.k8s.io/v1 NetworkPolicies, v1 Pods,
// v1 Namespaces; the Pods and Namespaces ones are shared with whoever else needs them: the
// caller creates them, start() registers the handlers, the caller starts them), and this
// node's endpoints (pod IP -> pod UID, from the pod network's IPAM records). The pod network
// calls pod_attached() when a pod's veth is up, before its containers start: the tc programs
// go on the veth, and if the informers already know the pod its tables are written at once.
//
// Any event schedules one recompute (after `debounce`; events in between are folded in): the
// whole local set is compiled again and only the differences are written (Datapath::apply),
// then the generation is bumped once (commit) so that tracked flows are checked again. Until
// all three informers have synced nothing is written: after a noded restart the pinned maps
// keep enforcing what the previous noded wrote; the first recompute reads them back, writes
// the differences and drops the tables of endpoints that are no longer local (prune).
// Failed writes are retried every `retry_interval`; the node's own addresses (always allowed)
// are refreshed at the same pace.
//
// Threading: everything on `executor` (noded's single loop thread), the informers' too.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "netpol/datapath.h"
#include "podwarp/informer.h"

namespace podwarp::noded::netpol {

struct PolicySyncOptions {
  // This node's pods with an address: IPv4 (network order) -> pod UID.
  std::function<std::map<std::uint32_t, std::string>()> local_endpoints;
  std::chrono::milliseconds debounce{20};
  std::chrono::milliseconds retry_interval{2000};
};

struct PolicySyncStats {
  std::uint64_t recomputes = 0;
  std::uint64_t endpoints_written = 0;  // apply()/remove() calls that changed something
  std::size_t isolated_endpoints = 0;   // local pods with at least one table
  bool synced = false;
};

class PolicySync {
 public:
  PolicySync(boost::asio::any_io_executor executor, Datapath& datapath,
             std::shared_ptr<client::Informer> policies, std::shared_ptr<client::Informer> pods,
             std::shared_ptr<client::Informer> namespaces, PolicySyncOptions options);
  ~PolicySync();
  PolicySync(const PolicySync&) = delete;
  PolicySync& operator=(const PolicySync&) = delete;

  void start();
  void stop();

  // The pod network wired `pod_uid` at `ip` (network order) through host veth `ifname`:
  // attaches the programs there and writes the pod's tables if its Pod is known.
  std::expected<void, std::string> pod_attached(const std::string& pod_uid, std::uint32_t ip,
                                                const std::string& ifname);
  // The pod's veth is gone; its tables go at the next recompute.
  void pod_detached(const std::string& pod_uid);

  PolicySyncStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The IPv4 addresses (network order) of every interface of the calling thread's network
// namespace (getifaddrs), sorted.
std::vector<std::uint32_t> host_ipv4_addresses();

}  // namespace podwarp::noded::netpol
