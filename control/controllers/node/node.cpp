#include "node/node.h"

#include "node/node_ipam_controller.h"
#include "node/node_lifecycle_controller.h"
#include "node/taint_eviction_controller.h"

namespace podwarp::controllers {

loop::ControllerList make_node_controllers(loop::ControllerContext& ctx) {
  loop::ControllerList out;
  out.push_back(std::make_unique<NodeIpamController>(ctx));
  out.push_back(std::make_unique<NodeLifecycleController>(ctx));
  out.push_back(std::make_unique<TaintEvictionController>(ctx));
  return out;
}

}  // namespace podwarp::controllers
