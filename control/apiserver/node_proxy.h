// The pods/log, pods/exec, pods/attach and pods/portforward subresources: the apiserver
// resolves the pod's node and forwards the request to that node's API (the kubelet paths
// /containerLogs, /exec, /attach, /portforward), presenting its kubelet client certificate.
//
// This header holds the pure part (which container, which node address, which path), used
// by Api::node_target on the Api's thread; the byte relay is in proxy_stream.h.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "apiserver/status.h"
#include "podwarp/json.h"

namespace podwarp::apiserver {

// Is `sub` one of the subresources proxied to the node?
bool is_node_proxy_subresource(std::string_view sub);

// The container a log/exec/attach request addresses, as upstream's validateContainer: the
// only container when none is named; 400 "a container name must be specified for pod P,
// choose one of: [a b]" when there are several; 400 "container c is not valid for pod P" when
// the name is none of the pod's containers, init containers or ephemeral containers.
std::expected<std::string, ApiError> stream_container(const json::value& pod,
                                                      std::string_view requested);

struct NodeEndpoint {
  std::string host;
  std::uint16_t port = 10250;
};

// The node API address of a Node object: status.addresses InternalIP, else Hostname, and
// status.daemonEndpoints.kubeletEndpoint.Port (10250 when unset).
std::expected<NodeEndpoint, ApiError> node_endpoint(const json::value& node);

// The node API path (without query) for a subresource request:
// /containerLogs/{ns}/{pod}/{container}, /exec/{ns}/{pod}/{container},
// /attach/{ns}/{pod}/{container}, /portforward/{ns}/{pod}.
std::string node_api_path(std::string_view sub, std::string_view ns, std::string_view pod,
                          std::string_view container);

}  // namespace podwarp::apiserver
