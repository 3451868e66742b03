// The core controllers of podwarp-control's controller manager, with upstream
// kube-controller-manager semantics: garbagecollector, namespace, serviceaccount, endpoints,
// endpointslice, disruption, root-ca-cert-publisher, clusterrole-aggregation,
// persistentvolume-binder.
//
// make_core_controllers registers every controller's informer handlers on ctx.informers (call
// it before ctx.informers.start()); start() each controller once the informers have synced.
// Threading: everything runs on ctx.executor (one thread).
#pragma once

#include "loop/controller.h"

namespace podwarp::controllers {

loop::ControllerList make_core_controllers(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
