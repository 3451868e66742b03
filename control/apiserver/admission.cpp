#include "apiserver/admission.h"

#include <fmt/format.h>

#include "apiserver/object_meta.h"
#include "tables/tables.h"

namespace podwarp::apiserver {

namespace {

json::value make_token_volume_source() {
  json::array sources;
  sources.push_back(json::object{
      {"serviceAccountToken", json::object{{"expirationSeconds", 3607}, {"path", "token"}}}});
  sources.push_back(json::object{
      {"configMap", json::object{{"name", "kube-root-ca.crt"},
                                 {"items", json::array{json::object{{"key", "ca.crt"},
                                                                    {"path", "ca.crt"}}}}}}});
  sources.push_back(json::object{
      {"downwardAPI",
       json::object{{"items", json::array{json::object{
                                  {"path", "namespace"},
                                  {"fieldRef", json::object{{"apiVersion", "v1"},
                                                            {"fieldPath", "metadata.namespace"}}}}}}}}});
  return json::object{{"defaultMode", 420}, {"sources", std::move(sources)}};
}

// Every pod gets the same source: built once, copied (a copy is cheaper than building it
// from initializer lists on each create).
const json::value& token_volume_source() {
  static const json::value source = make_token_volume_source();
  return source;
}

// The global default PriorityClass: the lowest value among those marked globalDefault.
const json::value* default_priority_class(const std::vector<const json::value*>& classes) {
  const json::value* best = nullptr;
  for (const json::value* c : classes) {
    if (c == nullptr || !get_bool(*c, {"globalDefault"}, false)) continue;
    if (best == nullptr || get_int(*c, {"value"}, 0) < get_int(*best, {"value"}, 0)) best = c;
  }
  return best;
}

}  // namespace

std::optional<std::string> admit_priority(json::value& pod,
                                          const std::vector<const json::value*>& classes) {
  json::object& spec = ensure_object(pod.as_object(), "spec");
  std::string name(get_string(pod, {"spec", "priorityClassName"}));
  std::int64_t priority = 0;
  std::string policy = "PreemptLowerPriority";
  const json::value* pc = nullptr;
  if (name.empty()) {
    pc = default_priority_class(classes);
    if (pc != nullptr) spec["priorityClassName"] = name_of(*pc);
  } else {
    for (const json::value* c : classes) {
      if (c != nullptr && name_of(*c) == name) pc = c;
    }
    if (pc == nullptr) return fmt::format("no PriorityClass with name {} was found", name);
  }
  if (pc != nullptr) {
    priority = get_int(*pc, {"value"}, 0);
    if (std::string_view p = get_string(*pc, {"preemptionPolicy"}); !p.empty()) policy = p;
  }
  if (const json::value* given = spec.if_contains("priority"); given && !given->is_null()) {
    std::int64_t v = get_int(pod, {"spec", "priority"}, 0);
    if (!given->is_number() || v != priority) {
      return fmt::format("the integer value of priority ({}) must not be provided in pod spec; "
                         "priority admission controller computed {} from the given PriorityClass "
                         "name",
                         v, priority);
    }
  }
  spec["priority"] = priority;
  if (std::string_view given = get_string(pod, {"spec", "preemptionPolicy"});
      !given.empty() && given != policy) {
    return fmt::format("the string value of PreemptionPolicy ({}) must not be provided in pod "
                       "spec; priority admission controller computed {} from the given "
                       "PriorityClass name",
                       given, policy);
  }
  spec["preemptionPolicy"] = policy;
  return std::nullopt;
}

std::optional<std::string> admit_priority_class(const json::value& pc, bool creating,
                                                const std::vector<const json::value*>& classes) {
  if (!get_bool(pc, {"globalDefault"}, false)) return std::nullopt;
  const json::value* current = default_priority_class(classes);
  if (current == nullptr || (!creating && name_of(*current) == name_of(pc))) return std::nullopt;
  return fmt::format("PriorityClass {} is already marked as default. Only one default can exist",
                     name_of(*current));
}

void admit_service_account(json::value& pod, const json::value* sa,
                           const std::function<std::string()>& suffix) {
  if (!pod.is_object()) return;
  if (const json::value* a = find_path(pod, {"metadata", "annotations", "kubernetes.io/config.mirror"});
      a != nullptr) {
    return;
  }
  json::object& spec = ensure_object(pod.as_object(), "spec");
  if (!spec.contains("serviceAccountName") || !spec["serviceAccountName"].is_string() ||
      spec["serviceAccountName"].get_string().empty()) {
    spec["serviceAccountName"] = "default";
  }
  // imagePullSecrets of the ServiceAccount when the pod names none.
  const json::value* pull = sa ? find_path(*sa, {"imagePullSecrets"}) : nullptr;
  const json::value* pod_pull = spec.if_contains("imagePullSecrets");
  if (pull && pull->is_array() && !pull->get_array().empty() &&
      (pod_pull == nullptr || !pod_pull->is_array() || pod_pull->get_array().empty())) {
    spec["imagePullSecrets"] = *pull;
  }
  // Automount: the pod's setting, else the ServiceAccount's, else true.
  bool automount = true;
  if (const json::value* sa_auto = sa ? find_path(*sa, {"automountServiceAccountToken"}) : nullptr;
      sa_auto && sa_auto->is_bool()) {
    automount = sa_auto->get_bool();
  }
  if (const json::value* p = spec.if_contains("automountServiceAccountToken"); p && p->is_bool()) {
    automount = p->get_bool();
  }
  if (!automount) return;

  std::string volume_name;
  bool has_volume = false;
  if (const json::value* vs = spec.if_contains("volumes"); vs && vs->is_array()) {
    for (const json::value& v : vs->get_array()) {
      std::string_view n = get_string(v, {"name"});
      if (n.starts_with("kube-api-access-")) {
        volume_name = n;
        has_volume = true;
        break;
      }
    }
  }
  if (volume_name.empty()) volume_name = "kube-api-access-" + suffix();
  bool needs_volume = false;
  for (std::string_view list : {"initContainers", "containers"}) {
    json::value* cs = spec.if_contains(list);
    if (cs == nullptr || !cs->is_array()) continue;
    for (json::value& c : cs->as_array()) {
      if (!c.is_object()) continue;
      json::object& co = c.as_object();
      bool existing = false;
      if (const json::value* ms = co.if_contains("volumeMounts"); ms && ms->is_array()) {
        for (const json::value& m : ms->get_array()) {
          existing = existing || get_string(m, {"mountPath"}) == kServiceAccountMountPath;
        }
      }
      if (existing) continue;
      json::value& mounts = co["volumeMounts"];
      if (!mounts.is_array()) mounts = json::array{};
      mounts.as_array().push_back(json::object{{"name", volume_name},
                                               {"readOnly", true},
                                               {"mountPath", kServiceAccountMountPath}});
      needs_volume = true;
    }
  }
  if (!has_volume && needs_volume) {
    json::value& vols = spec["volumes"];
    if (!vols.is_array()) vols = json::array{};
    vols.as_array().push_back(
        json::object{{"name", volume_name}, {"projected", token_volume_source()}});
  }
}

void admit_default_storage_class(json::value& pvc, const std::vector<const json::value*>& classes) {
  if (find_path(pvc, {"spec", "storageClassName"}) != nullptr ||
      find_path(pvc, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"})) {
    return;
  }
  const json::value* best = nullptr;
  for (const json::value* c : classes) {
    if (c == nullptr || !tables::is_default_storage_class(*c)) continue;
    if (best == nullptr) {
      best = c;
      continue;
    }
    // RFC 3339 timestamps in UTC ("...Z") order as strings.
    std::string_view created = get_string(*c, {"metadata", "creationTimestamp"});
    std::string_view best_created = get_string(*best, {"metadata", "creationTimestamp"});
    if (created > best_created || (created == best_created && name_of(*c) < name_of(*best))) {
      best = c;
    }
  }
  if (best != nullptr) ensure_object(pvc.as_object(), "spec")["storageClassName"] = name_of(*best);
}

}  // namespace podwarp::apiserver
