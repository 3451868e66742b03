// The endpoints controller (upstream pkg/controller/endpoint): for every Service with a
// selector, an Endpoints object of the same name listing the selected pods' addresses.
//
// Inputs: services, pods (informers). Output: core/v1 Endpoints (created, updated, deleted
// when the service goes). Services without a selector are left alone (their Endpoints are
// someone else's). A pod is listed when it has an IP and is not finished; ready pods go to
// `addresses`, others to `notReadyAddresses`; terminating pods are dropped unless the service
// has publishNotReadyAddresses (then every listed pod counts as ready).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/base.h"
#include "podwarp/informer.h"

namespace podwarp::controllers {

// upstream endpointutil.ShouldPodBeInEndpoints.
bool should_pod_be_in_endpoints(const json::value& pod, bool include_terminating);
// upstream podutil.FindPort: the container port a service port's targetPort names in `pod`.
std::optional<std::int64_t> find_pod_port(const json::value& pod, const json::value& service_port);
// The EndpointPort (name, port, protocol, appProtocol) of a service port for `pod`.
std::optional<json::object> endpoint_port(const json::value& pod, const json::value& service_port);

// The `subsets` of the Endpoints of `svc` over `pods` (every pod of the namespace; the
// service's selector is applied here), repacked and sorted as upstream's RepackSubsets.
json::array build_endpoint_subsets(const json::value& svc,
                                   const std::vector<client::ObjectPtr>& pods);

// The services of `ns` whose selector matches `labels`.
std::vector<std::string> services_selecting(const client::Informer& services, std::string_view ns,
                                            const json::object* labels);
// The keys of the services selecting `pod` or, when given, its previous version `old` (each
// once, sorted): the services whose endpoints a pod change may affect.
std::set<std::string> services_for_pod(const client::Informer& services, const json::value& pod,
                                       const json::value* old);

// Per service key, when it first changed since its last sync: the value of the
// endpoints.kubernetes.io/last-change-trigger-time annotation. Shared by the Endpoints and
// EndpointSlice controllers.
class TriggerTimes {
 public:
  // Notes a change now, unless an earlier unsynced change is already noted.
  void note(const std::string& key);
  // The noted time of `key` ("" when none), forgetting it.
  std::string take(const std::string& key);

 private:
  std::unordered_map<std::string, std::string> first_;
};

std::unique_ptr<loop::Controller> make_endpoints_controller(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
