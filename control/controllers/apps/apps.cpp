#include "controllers/apps/apps.h"

namespace podwarp::apps {

loop::ControllerList make_apps_controllers(loop::ControllerContext& ctx) {
  loop::ControllerList list;
  list.push_back(make_replicaset_controller(ctx));
  list.push_back(make_deployment_controller(ctx));
  list.push_back(make_daemonset_controller(ctx));
  list.push_back(make_statefulset_controller(ctx));
  return list;
}

}  // namespace podwarp::apps
