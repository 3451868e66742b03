// Service + EndpointSlices (API JSON) -> ServiceDesc: what one node's load balancer must do
// for a Service. Pure: no I/O, safe from any thread.
//
// Follows kube-proxy's reading of the objects:
//   - ExternalName services and headless ones (clusterIP "None") are not load-balanced
//     (nullopt). A service whose clusterIP is not yet allocated has no ClusterIP frontend.
//   - Frontends per spec.ports entry: each of spec.clusterIPs (or spec.clusterIP), each of
//     spec.externalIPs, each status.loadBalancer.ingress[].ip (not ipMode Proxy), and for
//     NodePort/LoadBalancer services with a nodePort one NodePort frontend per family of
//     spec.ipFamilies (default: the clusterIPs' families, else IPv4).
//   - Endpoints: slices of addressType IPv4/IPv6 labelled kubernetes.io/service-name=<name> in
//     the service's namespace; the slice port matched by name (an unnamed port matches "");
//     the first address of each endpoint. Conditions: ready and serving default to true,
//     terminating to false. Usable = ready; if none is ready, serving && terminating
//     (independently for the cluster-wide and the node-local sets). Duplicates are dropped.
//   - sessionAffinity ClientIP: timeout from sessionAffinityConfig.clientIP.timeoutSeconds
//     (default 10800 s). externalTrafficPolicy/internalTrafficPolicy "Local" as flags.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "lb/lb_types.h"
#include "podwarp/json.h"

namespace podwarp::noded::lb {

// Default sessionAffinityConfig.clientIP.timeoutSeconds (upstream: 3 hours).
inline constexpr std::uint32_t kDefaultAffinityTimeoutSeconds = 10800;

// `service` is a v1 Service, `slices` the discovery.k8s.io/v1 EndpointSlices (others are
// ignored), `node_name` this node (endpoint.nodeName equal to it makes an endpoint local).
// Malformed fields are skipped, never fatal.
std::optional<ServiceDesc> service_desc_from_json(const json::value& service,
                                                  std::span<const json::value> slices,
                                                  std::string_view node_name);

}  // namespace podwarp::noded::lb
