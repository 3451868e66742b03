// NodeAgent: the kubelet half of noded that talks to the API server (API mode).
//
//  - Node: registers (creates, or updates the labels of an existing) Node, then reports its
//    status through nodes/{name}/status every status_interval when it changed, and at least
//    every heartbeat_interval (upstream nodeStatusReportFrequency, 5 min) to refresh
//    lastHeartbeatTime; a Node that disappears is registered again.
//  - Lease kube-node-lease/<node>: renewed every lease_interval (holderIdentity = node name,
//    leaseDurationSeconds 40, ownerReference to the Node).
//  - Pods: an informer on pods with fieldSelector spec.nodeName=<node>; each pod becomes a
//    PodWorker (PodManager::add_api_pod) under its real UID. ConfigMaps and Secrets come from
//    two informers (WorkerEnv::lookup); pods start once those and the pods informer synced.
//    Then api_synced() tells the pod manager which UIDs exist: persisted records of other UIDs
//    are orphans (cleaned), records of existing UIDs were adopted (no restarts).
//  - Status: every worker status change is written through PATCH pods/{name}/status as a JSON
//    patch whose first op tests metadata.uid (a pod re-created under the same name never gets
//    the old pod's status). At most one write in flight per pod; the latest status wins; a
//    status equal to the last written one is not sent. Failures retry (1 s doubling to 10 s).
//    At most max_status_writes pods are written at once; the others wait in FIFO order.
//  - Deletion: a pod with deletionTimestamp is stopped with grace deletionGracePeriodSeconds;
//    once everything of it is gone the object is deleted with gracePeriodSeconds=0 and
//    preconditions.uid. Pods whose objects vanish are stopped and cleaned. Terminal pods
//    (Succeeded/Failed in the API) that noded does not run are never started again.
//  - Nodes (only with AgentOptions::on_nodes): an informer on all Nodes; every change hands the
//    whole cache to on_nodes (the pod network: own podCIDR, routes to other nodes' podCIDRs).
//  - Events: kubelet events through loop::EventRecorder (source.component "kubelet",
//    source.host = node name). Service-account tokens: POST serviceaccounts/{sa}/token.
//
// When the API server is unreachable nothing running is stopped: the informers keep their
// caches and retry (relist on 410), writes retry. Threading: everything on the executor given
// to the constructor (noded's single io_context thread).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/node_status.h"
#include "pods/pod_manager.h"
#include "podwarp/client.h"
#include "podwarp/informer.h"

namespace podwarp::noded::agent {

struct AgentOptions {
  NodeConfig node;
  std::string root_dir;  // its filesystem is the node's ephemeral-storage
  std::chrono::milliseconds status_interval{10'000};
  std::chrono::milliseconds heartbeat_interval{300'000};
  std::chrono::milliseconds lease_interval{10'000};
  std::int64_t lease_duration_seconds = 40;
  // Pod status writes in flight at once, over all pods (more wait, FIFO). A pod waiting for a
  // slot is written with its status of that moment: in a burst of starts its ContainerCreating
  // and Running statuses often become one write (kubelet gets the same from its API QPS limit).
  int max_status_writes = 2;
  // Host facts source (tests inject); default read_host_facts(root_dir).
  std::function<HostFacts()> host_facts;
  // Set: an informer on all Nodes calls this with the whole cache after every change (the
  // pod network learns the node's podCIDR and the other nodes' routes from it).
  std::function<void(const std::vector<const json::value*>& nodes)> on_nodes;
};

class NodeAgent {
 public:
  NodeAgent(boost::asio::any_io_executor ex, client::Client client, AgentOptions o);
  ~NodeAgent();
  NodeAgent(const NodeAgent&) = delete;
  NodeAgent& operator=(const NodeAgent&) = delete;

  // Fills the API-source hooks of the pod manager's options (api_source, api_lookup,
  // on_status_changed, on_pod_terminated, on_event, api_env). Call before make_pod_manager.
  void configure(pods::PodManagerOptions& po);
  // Registers the node and starts the lease, status and pod loops. REQUIRES: configure() was
  // applied to `pods`' options; `pods` outlives the agent.
  void start(pods::PodManager& pods);
  // Sets the kubelet port reported in daemonEndpoints (before start, or the next status write).
  void set_kubelet_port(int port);
  // The Services informer (every namespace; the caller starts it, and may share it with the
  // service load balancer and the cluster DNS) for the pods' service environment variables.
  // Before start. Without one, pods get no such variables.
  void set_services(std::shared_ptr<client::Informer> services);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::agent
