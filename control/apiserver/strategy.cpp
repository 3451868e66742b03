#include "apiserver/strategy.h"

#include <set>
#include <string_view>
#include <vector>

#include "apiserver/object_meta.h"
#include "podwarp/quantity.h"
#include "podwarp/random.h"

namespace podwarp::apiserver {

bool uses_generation(const api::Resource& r) {
  static const std::set<std::string_view> kKinds = {
      "Deployment", "ReplicaSet", "DaemonSet",     "StatefulSet",        "Job",
      "CronJob",    "Ingress",    "NetworkPolicy", "PodDisruptionBudget"};
  return kKinds.contains(r.kind);
}

bool has_status_subresource(const api::Resource& r) {
  for (const api::Subresource& s : r.subresources) {
    if (s.name == "status") return true;
  }
  return false;
}

namespace {

// Server-owned metadata that clients cannot set or change.
void copy_server_metadata(json::object& next_meta, const json::object& old_meta) {
  for (std::string_view k : {"uid", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "generation", "selfLink"}) {
    auto it = old_meta.find(k);
    if (it != old_meta.end()) {
      next_meta[k] = it->value();
    } else {
      next_meta.erase(k);
    }
  }
}

}  // namespace

// Status integers that upstream's Go types marshal without omitempty, so every response carries
// them, 0 included (clients rely on it: the Python client's models refuse a ReplicaSetStatus
// without replicas).
static void fill_status_zeros(const api::Resource& r, json::object& o) {
  static const std::vector<std::string_view> kNone;
  static const std::vector<std::string_view> kReplicaSet{"replicas"};
  static const std::vector<std::string_view> kStatefulSet{"replicas", "availableReplicas"};
  static const std::vector<std::string_view> kDaemonSet{
      "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady"};
  static const std::vector<std::string_view> kPdb{"disruptionsAllowed", "currentHealthy",
                                                  "desiredHealthy", "expectedPods"};
  const auto& fields = r.kind == "ReplicaSet"            ? kReplicaSet
                       : r.kind == "StatefulSet"         ? kStatefulSet
                       : r.kind == "DaemonSet"           ? kDaemonSet
                       : r.kind == "PodDisruptionBudget" ? kPdb
                                                         : kNone;
  if (fields.empty()) return;
  json::value* st = o.if_contains("status");
  if (!st || !st->is_object()) return;
  for (std::string_view f : fields)
    if (!st->get_object().contains(f)) st->get_object()[f] = 0;
}

void prepare_for_create(const api::Resource& r, json::value& obj) {
  json::object& meta = metadata(obj);
  meta["uid"] = random_uuid();
  meta["creationTimestamp"] = now_rfc3339();
  meta.erase("resourceVersion");
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  meta.erase("selfLink");
  meta.erase("managedFields");
  if (uses_generation(r)) {
    meta["generation"] = 1;
  } else {
    meta.erase("generation");
  }
  json::object& o = obj.as_object();
  if (r.kind == "Pod") {
    json::object status;
    status["phase"] = "Pending";
    status["qosClass"] = pod_qos_class(obj);
    o["status"] = std::move(status);
  } else if (r.kind == "Namespace") {
    json::object status;
    status["phase"] = "Active";
    o["status"] = std::move(status);
  } else if (r.kind == "Service") {
    // LoadBalancer ingress is set by controllers only.
    o["status"] = json::object{{"loadBalancer", json::object()}};
  } else if (has_status_subresource(r) && r.kind != "Node") {
    // Status is the controllers' to write; a new object starts with an empty one, which
    // upstream serializes as "status": {}. Nodes register with their status (the kubelet
    // creates them so).
    o["status"] = json::object();
    fill_status_zeros(r, o);
  }
}

void prepare_for_update(const api::Resource& r, json::value& next, const json::value& old) {
  json::object& meta = metadata(next);
  const json::object* old_meta = nullptr;
  if (const json::value* m = find_path(old, {"metadata"}); m && m->is_object()) {
    old_meta = &m->get_object();
  }
  static const json::object kEmpty;
  copy_server_metadata(meta, old_meta ? *old_meta : kEmpty);
  meta.erase("managedFields");
  json::object& o = next.as_object();
  if (has_status_subresource(r)) {
    const json::value* st = find_path(old, {"status"});
    if (st) {
      o["status"] = *st;
    } else {
      o.erase("status");
    }
  }
  if (uses_generation(r)) {
    const json::value* ns = find_path(next, {"spec"});
    const json::value* os = find_path(old, {"spec"});
    bool changed = (ns == nullptr) != (os == nullptr) || (ns && os && *ns != *os);
    if (r.kind == "Deployment") {
      // Deployments also count annotation changes (rollback and change-cause).
      const json::value* na = find_path(next, {"metadata", "annotations"});
      const json::value* oa = find_path(old, {"metadata", "annotations"});
      changed = changed || ((na == nullptr) != (oa == nullptr)) || (na && oa && *na != *oa);
    }
    std::int64_t gen = get_int(old, {"metadata", "generation"}, 1);
    meta["generation"] = changed ? gen + 1 : gen;
  }
}

void prepare_for_status_update(const api::Resource& r, json::value& next,
                               const json::value& old) {
  json::value merged = old;
  json::object& o = merged.as_object();
  const json::value* st = find_path(next, {"status"});
  if (st) {
    o["status"] = *st;
  } else {
    o.erase("status");
  }
  fill_status_zeros(r, o);
  // The request's metadata (its resourceVersion precondition with it), less what only the
  // server sets.
  const json::object* old_meta = nullptr;
  if (const json::value* m = find_path(old, {"metadata"}); m && m->is_object()) {
    old_meta = &m->get_object();
  }
  static const json::object kEmpty;
  json::object meta;
  if (json::value* m = next.is_object() ? next.as_object().if_contains("metadata") : nullptr;
      m && m->is_object()) {
    meta = std::move(m->as_object());
  }
  copy_server_metadata(meta, old_meta ? *old_meta : kEmpty);
  meta.erase("managedFields");
  auto keep_old = [&](std::string_view field) {
    const json::value* v = old_meta ? old_meta->if_contains(field) : nullptr;
    if (v) {
      meta[field] = *v;
    } else {
      meta.erase(field);
    }
  };
  if (r.kind == "Deployment") keep_old("labels");
  // Old kubelets corrupted ownerReferences through pods/status; upstream ignores them there.
  if (r.group.empty() && r.kind == "Pod") keep_old("ownerReferences");
  o["metadata"] = std::move(meta);
  next = std::move(merged);
}

std::string pod_qos_class(const json::value& pod) {
  bool any = false;
  bool guaranteed = true;
  auto visit = [&](const json::value* containers) {
    if (!containers || !containers->is_array()) return;
    for (const json::value& c : containers->get_array()) {
      const json::value* req = find_path(c, {"resources", "requests"});
      const json::value* lim = find_path(c, {"resources", "limits"});
      for (std::string_view res : {"cpu", "memory"}) {
        const json::value* rq = req && req->is_object() ? req->get_object().if_contains(res)
                                                        : nullptr;
        const json::value* lm = lim && lim->is_object() ? lim->get_object().if_contains(res)
                                                        : nullptr;
        auto parse = [](const json::value* v) -> std::optional<Quantity> {
          if (!v) return std::nullopt;
          std::string s = v->is_string() ? std::string(v->get_string()) : json::serialize(*v);
          auto q = Quantity::parse(s);
          if (!q) return std::nullopt;
          return *q;
        };
        auto rq_q = parse(rq);
        auto lm_q = parse(lm);
        if ((rq_q && !(*rq_q == Quantity())) || (lm_q && !(*lm_q == Quantity()))) any = true;
        if (!lm_q) {
          guaranteed = false;
        } else if (rq_q && !(*rq_q == *lm_q)) {
          guaranteed = false;
        }
      }
    }
  };
  visit(find_path(pod, {"spec", "containers"}));
  visit(find_path(pod, {"spec", "initContainers"}));
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

}  // namespace podwarp::apiserver
