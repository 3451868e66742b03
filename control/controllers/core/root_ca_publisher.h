// The root-ca-cert-publisher controller (upstream pkg/controller/certificates/rootcacertpublisher):
// every active namespace has a ConfigMap "kube-root-ca.crt" whose data["ca.crt"] is the
// cluster CA bundle (the CA this controller manager trusts for the apiserver); it is created
// when missing and put back when deleted or changed.
//
// Inputs: namespaces, configmaps (informers), the CA bundle (ctx.client's trust anchors).
// Output: ConfigMap creations and updates. Namespaces being deleted are skipped.
#pragma once

#include <memory>

#include "core/base.h"

namespace podwarp::controllers {

inline constexpr std::string_view kRootCaConfigMap = "kube-root-ca.crt";

std::unique_ptr<loop::Controller> make_root_ca_publisher(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
