// NodeIpamController: upstream's node IPAM controller with the RangeAllocator (IPv4 only).
//
// Every node without spec.podCIDR gets the next free /options.node_cidr_mask_size subnet of
// options.cluster_cidr (merge patch of spec.podCIDR and spec.podCIDRs). At start the allocator
// is rebuilt from the podCIDRs the nodes already have; a deleted node's subnet is released.
// Events (as upstream RecordNodeStatusChange, "Node <n> status is now: <reason>"):
// CIDRNotAvailable when the range is exhausted, CIDRAssignmentFailed when the patch fails.
// A bad cluster CIDR disables the controller with an error log.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "loop/controller.h"
#include "loop/work_queue.h"
#include "node/cidr_allocator.h"

namespace podwarp::controllers {

class NodeIpamController : public loop::Controller {
 public:
  explicit NodeIpamController(loop::ControllerContext& ctx);
  std::string_view name() const override { return "node-ipam"; }
  void start() override;
  void stop() override;

 private:
  client::Awaitable<client::Result<void>> sync(std::string node_name);
  void enqueue_unassigned();

  loop::ControllerContext& ctx_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer& nodes_;
  std::optional<CidrAllocator> allocator_;
  std::map<std::string, std::string> pending_;  // node -> subnet being patched in
  bool started_ = false;
};

}  // namespace podwarp::controllers
