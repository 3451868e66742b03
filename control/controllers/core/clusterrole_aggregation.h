// The clusterrole-aggregation controller (upstream pkg/controller/clusterroleaggregation): a
// ClusterRole with an aggregationRule gets as its rules the union, without duplicates, of the
// rules of every other ClusterRole one of its clusterRoleSelectors matches (the matched roles
// in name order, each selector in turn), so that e.g. a CRD's role labelled
// rbac.authorization.k8s.io/aggregate-to-view extends "view".
//
// Inputs: clusterroles (informer). Output: ClusterRole updates of `rules`. Any ClusterRole change
// re-syncs every aggregated ClusterRole.
#pragma once

#include <memory>

#include "core/base.h"

namespace podwarp::controllers {

std::unique_ptr<loop::Controller> make_clusterrole_aggregation_controller(
    loop::ControllerContext& ctx);

// The aggregated rules of `role` among `all` (exposed for tests).
json::array aggregate_rules(const json::value& role, const std::vector<client::ObjectPtr>& all);

}  // namespace podwarp::controllers
