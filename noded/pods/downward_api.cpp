#include "pods/downward_api.h"

#include <fmt/format.h>

#include <cmath>

#include "podwarp/quantity.h"

namespace podwarp::noded::pods {

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += fmt::format("\\x{:02x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
  }
  out += "\"";
  return out;
}

namespace {

std::string format_map(const json::value* m) {
  std::string out;
  if (m == nullptr || !m->is_object()) return out;
  std::map<std::string, std::string> sorted;
  for (const auto& kv : m->as_object())
    sorted[std::string(kv.key())] = kv.value().is_string() ? std::string(kv.value().as_string()) : "";
  for (const auto& [k, v] : sorted) out += k + "=" + go_quote(v) + "\n";
  if (!out.empty()) out.pop_back();
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// metadata.labels['key'] -> key (also with double quotes, as fieldpath.SplitMaybeSubscriptedPath)
bool subscript(std::string_view path, std::string_view prefix, std::string& key) {
  if (!path.starts_with(prefix) || path.size() < prefix.size() + 4) return false;
  std::string_view rest = path.substr(prefix.size());
  if (rest[0] != '[' || rest.back() != ']') return false;
  rest = rest.substr(1, rest.size() - 2);
  if (rest.size() < 2 || (rest.front() != '\'' && rest.front() != '"') || rest.back() != rest.front())
    return false;
  key = std::string(rest.substr(1, rest.size() - 2));
  return true;
}

}  // namespace

std::expected<std::string, std::string> pod_field_value(const json::value& pod,
                                                        std::string_view path,
                                                        const DownwardContext& ctx) {
  if (path == "metadata.name") return std::string(get_string(pod, {"metadata", "name"}));
  if (path == "metadata.namespace") return std::string(get_string(pod, {"metadata", "namespace"}));
  if (path == "metadata.uid") return std::string(get_string(pod, {"metadata", "uid"}));
  if (path == "metadata.labels") return format_map(find_path(pod, {"metadata", "labels"}));
  if (path == "metadata.annotations") return format_map(find_path(pod, {"metadata", "annotations"}));
  std::string key;
  if (subscript(path, "metadata.labels", key))
    return std::string(get_string(pod, {"metadata", "labels", key}));
  if (subscript(path, "metadata.annotations", key))
    return std::string(get_string(pod, {"metadata", "annotations", key}));
  if (path == "spec.nodeName") return std::string(get_string(pod, {"spec", "nodeName"}));
  if (path == "spec.serviceAccountName")
    return std::string(get_string(pod, {"spec", "serviceAccountName"}));
  if (path == "status.hostIP") return ctx.host_ips.empty() ? std::string() : ctx.host_ips[0];
  if (path == "status.hostIPs") return join(ctx.host_ips);
  if (path == "status.podIP") return ctx.pod_ips.empty() ? std::string() : ctx.pod_ips[0];
  if (path == "status.podIPs") return join(ctx.pod_ips);
  return std::unexpected(fmt::format("unsupported fieldPath: {}", path));
}

const json::value* find_container(const json::value& pod, std::string_view name) {
  for (auto* key : {"containers", "initContainers"}) {
    auto* list = find_path(pod, {"spec", key});
    if (list == nullptr || !list->is_array()) continue;
    for (const auto& c : list->as_array())
      if (get_string(c, {"name"}) == name) return &c;
  }
  return nullptr;
}

std::expected<std::string, std::string> container_resource_value(const json::value& container,
                                                                 std::string_view resource,
                                                                 const json::value* divisor,
                                                                 const DownwardContext& ctx) {
  auto dot = resource.find('.');
  if (dot == std::string_view::npos)
    return std::unexpected(fmt::format("unsupported container resource : {}", resource));
  std::string_view kind = resource.substr(0, dot), name = resource.substr(dot + 1);
  bool known = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
               name.starts_with("hugepages-");
  if ((kind != "limits" && kind != "requests") || !known)
    return std::unexpected(fmt::format("unsupported container resource : {}", resource));
  Quantity div = Quantity::from_int(1);
  if (divisor != nullptr && !divisor->is_null()) {
    auto d = Quantity::from_json(*divisor);
    if (!d) return std::unexpected(fmt::format("invalid divisor for {}: {}", resource, d.error()));
    div = *d;
  }
  std::optional<Quantity> q;
  if (auto* v = find_path(container, {"resources", kind, name}); v != nullptr && !v->is_null()) {
    auto p = Quantity::from_json(*v);
    if (!p) return std::unexpected(fmt::format("invalid {}: {}", resource, p.error()));
    q = *p;
  }
  if (!q && kind == "limits" && !name.starts_with("hugepages-")) {
    // The kubelet's defaultPodLimitsForDownwardAPI: no limit -> node allocatable.
    if (auto it = ctx.node_allocatable.find(std::string(name)); it != ctx.node_allocatable.end())
      if (auto p = Quantity::parse(it->second)) q = *p;
  }
  if (!q) q = Quantity::from_int(0);
  std::int64_t out = 0;
  if (name == "cpu") {
    auto dm = div.milli_value();
    if (dm <= 0) return std::unexpected(fmt::format("invalid divisor for {}", resource));
    out = static_cast<std::int64_t>(std::ceil(static_cast<double>(q->milli_value()) / static_cast<double>(dm)));
  } else {
    auto dv = div.value();
    if (dv <= 0) return std::unexpected(fmt::format("invalid divisor for {}", resource));
    out = static_cast<std::int64_t>(std::ceil(static_cast<double>(q->value()) / static_cast<double>(dv)));
  }
  return fmt::format("{}", out);
}

}  // namespace podwarp::noded::pods
