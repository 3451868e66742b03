// The serviceaccount controller (upstream pkg/controller/serviceaccount): every active
// namespace has a ServiceAccount "default"; it is recreated when deleted.
//
// Inputs: namespaces, serviceaccounts (informers). Output: ServiceAccount creations. Namespaces
// being deleted are skipped (the apiserver refuses new content in them).
#pragma once

#include <memory>

#include "core/base.h"

namespace podwarp::controllers {

std::unique_ptr<loop::Controller> make_service_account_controller(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
