// The downward API's values, shared by env (adapters/container_spec.cpp) and downwardAPI /
// projected volumes (projected.cpp), as the kubelet computes them:
//   fieldRef          metadata.name|namespace|uid, metadata.labels, metadata.annotations (the
//                     whole map as sorted `k="v"` lines), metadata.labels['k'],
//                     metadata.annotations['k'], spec.nodeName, spec.serviceAccountName,
//                     status.hostIP(s), status.podIP(s) (the plural ones comma-joined)
//   resourceFieldRef  limits|requests.cpu|memory|ephemeral-storage (and hugepages-*), divided by
//                     the divisor (default 1) and rounded up; limits.cpu/memory/ephemeral-storage
//                     default to the node's allocatable when the container sets no limit.
// Pure functions; safe from any thread.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::noded::pods {

struct DownwardContext {
  std::vector<std::string> host_ips, pod_ips;
  std::map<std::string, std::string> node_allocatable;  // "cpu" -> "4", "memory" -> "8Gi"
};

// The value of a fieldRef.fieldPath. Error: "unsupported fieldPath: <path>".
std::expected<std::string, std::string> pod_field_value(const json::value& pod,
                                                        std::string_view path,
                                                        const DownwardContext& ctx);

// The value of a resourceFieldRef for `container` (a container object of the pod spec).
// `divisor` may be null (1). Error: "unsupported container resource : <name>".
std::expected<std::string, std::string> container_resource_value(const json::value& container,
                                                                 std::string_view resource,
                                                                 const json::value* divisor,
                                                                 const DownwardContext& ctx);

// Finds a container of the pod by name among containers and initContainers (null: none).
const json::value* find_container(const json::value& pod, std::string_view name);

// Go's %q of a string (used by the labels/annotations map format).
std::string go_quote(std::string_view s);

}  // namespace podwarp::noded::pods
