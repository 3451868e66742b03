// The apps controllers of podwarp-control's controller manager, with upstream
// kube-controller-manager semantics: ReplicaSet, Deployment, DaemonSet, StatefulSet.
//
// Each controller registers handlers on ctx.informers in its constructor (so build them
// before ctx.informers.start()), and syncs keys from its WorkQueue once start() is called.
// Threading: everything runs on ctx.executor (one thread), as the whole loop framework.
#pragma once

#include <memory>

#include "loop/controller.h"

namespace podwarp::apps {

std::unique_ptr<loop::Controller> make_replicaset_controller(loop::ControllerContext& ctx);
std::unique_ptr<loop::Controller> make_deployment_controller(loop::ControllerContext& ctx);
std::unique_ptr<loop::Controller> make_daemonset_controller(loop::ControllerContext& ctx);
std::unique_ptr<loop::Controller> make_statefulset_controller(loop::ControllerContext& ctx);

// All four, in the order above.
loop::ControllerList make_apps_controllers(loop::ControllerContext& ctx);

}  // namespace podwarp::apps
