#include "apiserver/node_proxy.h"

#include <fmt/format.h>

#include <vector>

#include "apiserver/api.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

bool is_node_proxy_subresource(std::string_view sub) {
  return sub == "log" || sub == "exec" || sub == "attach" || sub == "portforward";
}

std::expected<std::string, ApiError> stream_container(const json::value& pod,
                                                      std::string_view requested) {
  const std::string_view pod_name = get_string(pod, {"metadata", "name"});
  // podutil.VisitContainers order: init containers, containers, ephemeral containers.
  std::vector<std::string> all;
  std::vector<std::string> regular;
  for (std::string_view list : {"initContainers", "containers", "ephemeralContainers"}) {
    const json::value* cs = find_path(pod, {"spec", list});
    if (cs == nullptr || !cs->is_array()) continue;
    for (const json::value& c : cs->get_array()) {
      std::string name(get_string(c, {"name"}));
      all.push_back(name);
      if (list == "containers") regular.push_back(name);
    }
  }
  if (requested.empty()) {
    if (regular.size() == 1) return regular[0];
    if (regular.empty()) {
      return std::unexpected(bad_request(fmt::format("pod {} does not have a container", pod_name)));
    }
    std::string names;
    for (const std::string& n : all) names += (names.empty() ? "" : " ") + n;
    return std::unexpected(bad_request(fmt::format(
        "a container name must be specified for pod {}, choose one of: [{}]", pod_name, names)));
  }
  for (const std::string& n : all) {
    if (n == requested) return n;
  }
  return std::unexpected(
      bad_request(fmt::format("container {} is not valid for pod {}", requested, pod_name)));
}

std::expected<NodeEndpoint, ApiError> node_endpoint(const json::value& node) {
  NodeEndpoint ep;
  std::string hostname;
  if (const json::value* as = find_path(node, {"status", "addresses"}); as && as->is_array()) {
    for (const json::value& a : as->get_array()) {
      std::string_view type = get_string(a, {"type"});
      std::string_view address = get_string(a, {"address"});
      if (address.empty()) continue;
      if (type == "InternalIP" && ep.host.empty()) ep.host = address;
      if (type == "Hostname" && hostname.empty()) hostname = address;
    }
  }
  if (ep.host.empty()) ep.host = hostname;
  const std::string_view name = get_string(node, {"metadata", "name"});
  if (ep.host.empty()) {
    return std::unexpected(service_unavailable(
        fmt::format("no preferred addresses found; known addresses: [] for node {}", name)));
  }
  std::int64_t port = get_int(node, {"status", "daemonEndpoints", "kubeletEndpoint", "Port"});
  if (port > 0 && port < 65536) ep.port = static_cast<std::uint16_t>(port);
  return ep;
}

std::string node_api_path(std::string_view sub, std::string_view ns, std::string_view pod,
                          std::string_view container) {
  if (sub == "portforward") return fmt::format("/portforward/{}/{}", ns, pod);
  std::string_view prefix = sub == "log" ? "containerLogs" : sub;
  return fmt::format("/{}/{}/{}/{}", prefix, ns, pod, container);
}

asio::awaitable<std::expected<Api::NodeTarget, ApiError>> Api::node_target(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource* pods = api::find_resource("", "v1", "pods");
  const api::Resource* nodes = api::find_resource("", "v1", "nodes");
  auto pod = co_await load(*pods, info.namespace_, info.name);
  if (!pod) co_return std::unexpected(pod.error());
  std::string container;
  if (info.subresource != "portforward") {
    auto c = stream_container(pod->object, req.param_or("container", ""));
    if (!c) co_return std::unexpected(c.error());
    container = std::move(*c);
  }
  std::string node_name(get_string(pod->object, {"spec", "nodeName"}));
  if (node_name.empty()) {
    co_return std::unexpected(
        bad_request(fmt::format("pod {} does not have a host assigned", info.name)));
  }
  auto node = co_await load(*nodes, "", node_name);
  if (!node) co_return std::unexpected(node.error());
  auto ep = node_endpoint(node->object);
  if (!ep) co_return std::unexpected(ep.error());
  NodeTarget t;
  t.host = std::move(ep->host);
  t.port = ep->port;
  t.path = node_api_path(info.subresource, info.namespace_, info.name, container);
  co_return t;
}

}  // namespace podwarp::apiserver
