// The endpointslice controller (upstream pkg/controller/endpointslice): discovery.k8s.io/v1
// EndpointSlices for every Service with a selector.
//
// Inputs: services, pods, nodes (zones), endpointslices (informers). Output: slices labelled
// kubernetes.io/service-name=<svc> and endpointslice.kubernetes.io/managed-by=
// endpointslice-controller.k8s.io, named "<svc>-<random>" (generateName), owned by the
// service (the garbage collector removes them with it). Endpoints are grouped by their port
// set (named targetPorts may resolve differently per pod), at most `max_endpoints` per slice.
// Reconciliation keeps existing slices and endpoints in place: it updates a slice only when
// one of its endpoints changed, fills free room before creating slices, and deletes slices
// that became empty; a service with no endpoints keeps one empty placeholder slice.
//
// Terminating pods are listed with ready=false, serving=<pod ready>, terminating=true.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "core/base.h"
#include "podwarp/informer.h"

namespace podwarp::controllers {

inline constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr std::string_view kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
inline constexpr std::string_view kSliceControllerName = "endpointslice-controller.k8s.io";
inline constexpr int kMaxEndpointsPerSlice = 100;

// "IPv4" or "IPv6" address types a service's slices use (spec.ipFamilies, default IPv4).
std::vector<std::string> slice_address_types(const json::value& svc);

// The slice endpoint of `pod` for `svc` and address type, or nullopt when the pod is not
// listed (no IP of that family, finished). `zone` may be empty.
std::optional<json::object> slice_endpoint(const json::value& svc, const json::value& pod,
                                           std::string_view address_type, std::string_view zone);

struct SlicePlan {
  std::vector<json::value> create;  // complete objects (generateName)
  std::vector<json::value> update;  // existing objects, changed
  std::vector<json::value> remove;  // existing objects
};

// Plans the slices of `svc` (pods: the namespace's pods, selector applied here; existing: the
// slices this controller manages for svc; zone_of: node name -> zone).
SlicePlan plan_endpoint_slices(const json::value& svc, const std::vector<client::ObjectPtr>& pods,
                               const std::vector<client::ObjectPtr>& existing,
                               const std::function<std::string(std::string_view)>& zone_of,
                               const std::string& trigger_time,
                               int max_endpoints = kMaxEndpointsPerSlice);

std::unique_ptr<loop::Controller> make_endpoint_slice_controller(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
