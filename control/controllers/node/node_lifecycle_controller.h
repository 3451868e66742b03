// NodeLifecycleController: upstream's node lifecycle controller (pkg/controller/
// nodelifecycle) without zone-based rate limiting (evictions are the taint manager's job, as
// upstream with taint-based eviction).
//
// Health: a node is alive while this process sees its Lease in kube-node-lease
// (spec.renewTime) or its Ready condition's lastHeartbeatTime change; the clock starts when a
// node is first seen. Every options.node_monitor_period each node is checked; one not renewed
// for options.node_monitor_grace_period gets every condition (Ready, MemoryPressure,
// DiskPressure, PIDPressure) set to Unknown, reason NodeStatusUnknown, "Kubelet stopped posting
// node status." (missing ones: NodeStatusNeverUpdated), through nodes/status, and an event
// NodeNotReady.
// Taints (upstream doNoExecuteTaintingPass + TaintNodesByCondition): Ready False →
// node.kubernetes.io/not-ready NoExecute+NoSchedule, Ready Unknown → node.kubernetes.io/
// unreachable NoExecute+NoSchedule, pressure conditions / NetworkUnavailable /
// spec.unschedulable → their NoSchedule taints; taints no longer wanted are removed.
// NoExecute taints get timeAdded. Other taints are kept as they are.
// Pods: pods bound to a node whose Ready is not True get their Ready condition set to False
// (upstream MarkPodsNotReady) and a Warning event NodeNotReady.
#pragma once

#include <map>
#include <set>
#include <string>

#include "loop/controller.h"
#include "loop/key_index.h"
#include "loop/work_queue.h"

namespace podwarp::controllers {

class NodeLifecycleController : public loop::Controller {
 public:
  explicit NodeLifecycleController(loop::ControllerContext& ctx);
  std::string_view name() const override { return "node-lifecycle"; }
  void start() override;
  void stop() override;

 private:
  struct Health {
    std::chrono::steady_clock::time_point probe;  // last time a renewal was observed
    std::string heartbeat;                        // Ready lastHeartbeatTime seen
    std::string lease_renew;                      // Lease spec.renewTime seen
  };
  client::Awaitable<client::Result<void>> sync(std::string node_name);
  void observe_node(const json::value& node);
  void tick();

  loop::ControllerContext& ctx_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer& nodes_;
  client::Informer& pods_;
  std::map<std::string, Health, std::less<>> health_;
  loop::KeyIndex pods_by_node_;
  std::shared_ptr<boost::asio::steady_timer> ticker_;
  bool stopped_ = false;
};

}  // namespace podwarp::controllers
