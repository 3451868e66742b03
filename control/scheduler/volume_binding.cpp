#include "scheduler/volume_binding.h"

namespace podwarp::scheduler {

namespace {

std::string claim_key(std::string_view ns, std::string_view name) {
  std::string k(ns);
  k += '/';
  k += name;
  return k;
}

std::string claim_key(const json::value& claim) {
  return claim_key(get_string(claim, {"metadata", "namespace"}),
                   get_string(claim, {"metadata", "name"}));
}

}  // namespace

void VolumeCatalog::upsert_claim(const json::value& claim) {
  ClaimInfo& c = claims_[claim_key(claim)];
  c.volume_name = get_string(claim, {"spec", "volumeName"});
  c.storage_class = get_string(claim, {"spec", "storageClassName"});
  const json::value* deleted = find_path(claim, {"metadata", "deletionTimestamp"});
  c.deleting = deleted != nullptr && !deleted->is_null();
}

void VolumeCatalog::remove_claim(const json::value& claim) { claims_.erase(claim_key(claim)); }

void VolumeCatalog::upsert_volume(const json::value& pv, Interner& in) {
  PersistentVolumeInfo v;
  if (const json::value* req = find_path(pv, {"spec", "nodeAffinity", "required"});
      req != nullptr && req->is_object()) {
    v.has_required = true;
    if (const json::value* terms = find_path(*req, {"nodeSelectorTerms"});
        terms != nullptr && terms->is_array()) {
      for (const auto& t : terms->get_array()) v.required.push_back(compile_node_term(t, in));
    }
  }
  volumes_[std::string(get_string(pv, {"metadata", "name"}))] = std::move(v);
}

void VolumeCatalog::remove_volume(std::string_view name) { volumes_.erase(std::string(name)); }

void VolumeCatalog::upsert_class(const json::value& storage_class) {
  wait_for_first_consumer_[std::string(get_string(storage_class, {"metadata", "name"}))] =
      get_string(storage_class, {"volumeBindingMode"}) == "WaitForFirstConsumer";
}

void VolumeCatalog::remove_class(std::string_view name) {
  wait_for_first_consumer_.erase(std::string(name));
}

PodVolumes VolumeCatalog::check_pod(const PodInfo& pod) const {
  PodVolumes out;
  bool unbound_immediate = false;
  for (const auto& name : pod.claims) {
    auto c = claims_.find(claim_key(pod.ns, name));
    if (c == claims_.end()) {
      out.error = "persistentvolumeclaim \"" + name + "\" not found";
      return out;
    }
    const ClaimInfo& claim = c->second;
    if (claim.deleting) {
      out.error = "persistentvolumeclaim \"" + name + "\" is being deleted";
      return out;
    }
    if (claim.volume_name.empty()) {
      // No class, or one not known: immediate binding, as upstream's IsDelayBindingMode.
      auto sc = wait_for_first_consumer_.find(claim.storage_class);
      if (sc == wait_for_first_consumer_.end() || !sc->second) unbound_immediate = true;
      continue;
    }
    auto v = volumes_.find(claim.volume_name);
    if (v == volumes_.end()) {
      out.missing_volume = true;
    } else {
      out.bound.push_back(&v->second);
    }
  }
  if (unbound_immediate) out.error = "pod has unbound immediate PersistentVolumeClaims";
  return out;
}

bool VolumeCatalog::fits_node(const PersistentVolumeInfo& pv, const Labels& labels,
                              std::uint32_t node_name_id, const Interner& in) {
  if (!pv.has_required) return true;
  for (const auto& t : pv.required) {
    if (node_term_matches(t, labels, node_name_id, in)) return true;
  }
  return false;
}

}  // namespace podwarp::scheduler
