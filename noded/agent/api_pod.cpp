#include "agent/api_pod.h"

#include <set>

namespace podwarp::noded::agent {

std::expected<pods::PodDef, pods::ManifestError> pod_def_from_api(const json::value& pod) {
  pods::StaticPodOptions o;
  o.source_file = "";
  auto d = pods::pod_from_json(pod, o);
  if (!d) return d;
  d->uid = std::string(get_string(pod, {"metadata", "uid"}));
  d->ns = std::string(get_string(pod, {"metadata", "namespace"}, "default"));
  d->name = std::string(get_string(pod, {"metadata", "name"}));
  d->source_file.clear();
  d->pod = pod;
  if (d->uid.empty()) {
    return std::unexpected(
        pods::ManifestError{"", "metadata.uid", "Required value", d->ns, d->name});
  }
  return d;
}

bool is_terminal_phase(const json::value& pod) {
  auto p = get_string(pod, {"status", "phase"});
  return p == "Succeeded" || p == "Failed";
}

std::optional<std::int64_t> deletion_grace(const json::value& pod) {
  const auto* ts = find_path(pod, {"metadata", "deletionTimestamp"});
  if (ts == nullptr || ts->is_null()) return std::nullopt;
  return get_int(pod, {"metadata", "deletionGracePeriodSeconds"}, 0);
}

json::object compose_api_status(const json::object& ours, const json::value* current,
                                bool host_network) {
  json::object out = ours;
  if (host_network) {
    auto it = out.find("hostIP");
    if (it != out.end() && it->value().is_string() && !it->value().as_string().empty()) {
      out["podIP"] = it->value();
      out["podIPs"] = json::array{json::object{{"ip", it->value()}}};
    }
  }
  json::array conds;
  std::set<std::string> owned;
  if (auto it = out.find("conditions"); it != out.end() && it->value().is_array()) {
    conds = it->value().as_array();
    for (const auto& c : conds) owned.insert(std::string(get_string(c, {"type"})));
  }
  bool no_network = !out.contains("podIP");
  owned.insert(std::string(kNetworkConditionType));
  if (no_network) {
    // Keep the first transition time.
    json::value since = nullptr;
    if (current != nullptr)
      if (const auto* cc = find_path(*current, {"conditions"}); cc && cc->is_array())
        for (const auto& c : cc->as_array())
          if (get_string(c, {"type"}) == kNetworkConditionType)
            if (const auto* t = find_path(c, {"lastTransitionTime"})) since = *t;
    if (since.is_null())
      if (auto it = out.find("startTime"); it != out.end()) since = it->value();
    conds.push_back(
        json::object{{"type", kNetworkConditionType},
                     {"status", "False"},
                     {"lastProbeTime", nullptr},
                     {"lastTransitionTime", since},
                     {"reason", "NoPodNetwork"},
                     {"message",
                      "the pod's network namespace has loopback only, so it has no podIP (noded "
                      "runs with --pod-network=none)"}});
  }
  if (current != nullptr && current->is_object()) {
    if (const auto* cc = find_path(*current, {"conditions"}); cc && cc->is_array())
      for (const auto& c : cc->as_array())
        if (!owned.contains(std::string(get_string(c, {"type"})))) conds.push_back(c);
    for (std::string_view k : {"nominatedNodeName", "resize", "resourceClaimStatuses",
                               "ephemeralContainerStatuses", "observedGeneration"})
      if (const auto* v = find_path(*current, {k}); v && !out.contains(k)) out[k] = *v;
  }
  out["conditions"] = std::move(conds);
  return out;
}

std::string status_patch(std::string_view uid, const json::object& status) {
  json::array ops{json::object{{"op", "test"}, {"path", "/metadata/uid"}, {"value", uid}},
                  json::object{{"op", "add"}, {"path", "/status"}, {"value", status}}};
  return to_json(ops);
}

}  // namespace podwarp::noded::agent
