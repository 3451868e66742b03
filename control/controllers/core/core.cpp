#include "core/core.h"

#include "core/clusterrole_aggregation.h"
#include "core/disruption.h"
#include "core/endpoint_slice.h"
#include "core/endpoints.h"
#include "core/garbage_collector.h"
#include "core/namespace.h"
#include "core/persistent_volume.h"
#include "core/root_ca_publisher.h"
#include "core/service_account.h"

namespace podwarp::controllers {

loop::ControllerList make_core_controllers(loop::ControllerContext& ctx) {
  loop::ControllerList list;
  list.push_back(make_garbage_collector(ctx));
  list.push_back(make_namespace_controller(ctx));
  list.push_back(make_service_account_controller(ctx));
  list.push_back(make_endpoints_controller(ctx));
  list.push_back(make_endpoint_slice_controller(ctx));
  list.push_back(make_disruption_controller(ctx));
  list.push_back(make_root_ca_publisher(ctx));
  list.push_back(make_clusterrole_aggregation_controller(ctx));
  list.push_back(make_persistent_volume_controller(ctx));
  return list;
}

}  // namespace podwarp::controllers
