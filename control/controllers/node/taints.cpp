#include "node/taints.h"

#include <algorithm>

namespace podwarp::controllers::taints {

bool tolerates(const json::value& toleration, const json::value& taint) {
  std::string_view t_effect = get_string(toleration, {"effect"});
  if (!t_effect.empty() && t_effect != get_string(taint, {"effect"})) return false;
  std::string_view t_key = get_string(toleration, {"key"});
  std::string_view op = get_string(toleration, {"operator"}, "Equal");
  if (!t_key.empty() && t_key != get_string(taint, {"key"})) return false;
  if (op == "Exists") return true;
  if (t_key.empty()) return false;  // empty key requires Exists
  if (op == "Equal" || op.empty()) {
    return get_string(toleration, {"value"}) == get_string(taint, {"value"});
  }
  return false;
}

std::vector<json::value> no_execute(const json::value* node_taints) {
  std::vector<json::value> out;
  if (node_taints == nullptr || !node_taints->is_array()) return out;
  for (const auto& t : node_taints->get_array()) {
    if (get_string(t, {"effect"}) == "NoExecute") out.push_back(t);
  }
  return out;
}

Eviction eviction_for(const json::value* tolerations, const json::value* node_taints) {
  std::vector<json::value> taints = no_execute(node_taints);
  if (taints.empty()) return {};
  std::optional<std::int64_t> min_seconds;
  const json::array* tols = tolerations && tolerations->is_array() ? &tolerations->get_array() : nullptr;
  for (const auto& taint : taints) {
    bool tolerated = false;
    if (tols != nullptr) {
      for (const auto& tol : *tols) {
        if (!tolerates(tol, taint)) continue;
        tolerated = true;
        const json::value* s = tol.is_object() ? tol.get_object().if_contains("tolerationSeconds") : nullptr;
        if (s != nullptr && s->is_number()) {
          std::int64_t v = std::max<std::int64_t>(get_int(tol, {"tolerationSeconds"}), 0);
          min_seconds = min_seconds ? std::min(*min_seconds, v) : v;
        }
      }
    }
    if (!tolerated) return {Eviction::kNow, std::chrono::seconds(0)};
  }
  if (!min_seconds) return {};
  return {Eviction::kAfter, std::chrono::seconds(*min_seconds)};
}

std::vector<Wanted> wanted_taints(const json::value& node) {
  std::vector<Wanted> out;
  std::string_view ready;
  auto cond = [&](std::string_view type) -> std::string_view {
    const json::value* cs = find_path(node, {"status", "conditions"});
    if (cs == nullptr || !cs->is_array()) return {};
    for (const auto& c : cs->get_array()) {
      if (get_string(c, {"type"}) == type) return get_string(c, {"status"});
    }
    return {};
  };
  // A node that never posted a Ready condition gets none of these (upstream skips it).
  if (std::string_view r = cond("Ready"); !r.empty()) ready = r == "True" || r == "False" ? r : "Unknown";
  if (ready == "False") {
    out.push_back({kNotReady, "NoExecute"});
    out.push_back({kNotReady, "NoSchedule"});
  } else if (ready == "Unknown") {
    out.push_back({kUnreachable, "NoExecute"});
    out.push_back({kUnreachable, "NoSchedule"});
  }
  if (cond("MemoryPressure") == "True") out.push_back({kMemoryPressure, "NoSchedule"});
  if (cond("DiskPressure") == "True") out.push_back({kDiskPressure, "NoSchedule"});
  if (cond("PIDPressure") == "True") out.push_back({kPidPressure, "NoSchedule"});
  if (cond("NetworkUnavailable") == "True") out.push_back({kNetworkUnavailable, "NoSchedule"});
  if (get_bool(node, {"spec", "unschedulable"})) out.push_back({kUnschedulable, "NoSchedule"});
  return out;
}

bool managed(std::string_view key, std::string_view effect) {
  if (key == kNotReady || key == kUnreachable) return effect == "NoExecute" || effect == "NoSchedule";
  return effect == "NoSchedule" && (key == kMemoryPressure || key == kDiskPressure ||
                                    key == kPidPressure || key == kNetworkUnavailable ||
                                    key == kUnschedulable);
}

}  // namespace podwarp::controllers::taints
