// The node controllers of podwarp-control, with upstream kube-controller-manager semantics:
//   - "node-lifecycle" (node_lifecycle_controller.h): node health from Leases and status
//     heartbeats, conditions Unknown, condition taints, pods marked not ready;
//   - "taint-eviction-controller" (taint_eviction_controller.h): deletes pods that do not
//     tolerate their node's NoExecute taints (upstream's NoExecuteTaintManager);
//   - "node-ipam" (node_ipam_controller.h): spec.podCIDR from options.cluster_cidr.
//
// Threading: everything runs on ctx.executor (one thread); nothing is locked.
#pragma once

#include "loop/controller.h"

namespace podwarp::controllers {

loop::ControllerList make_node_controllers(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
