// Storage kinds: core/v1 PersistentVolume and PersistentVolumeClaim (upstream's
// ValidatePersistentVolume*, ValidatePersistentVolumeClaim* in pkg/apis/core/validation and
// SetDefaults_PersistentVolume* in pkg/apis/core/v1/defaults.go), and storage.k8s.io/v1
// StorageClass (pkg/apis/storage/validation, pkg/apis/storage/v1/defaults.go).
//
// A volume has a capacity, access modes and exactly one source; its source never changes. A
// claim's spec is fixed at creation except: volumeName once (the binder), storageClassName from
// unset (a default class set later), resources.requests while bound (expansion) and
// volumeAttributesClassName. A class's provisioner, parameters, reclaimPolicy and
// volumeBindingMode never change.
#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"
#include "validation/podspec.h"

namespace podwarp::validation {

namespace {

Errors meta(const json::object& o, const json::object* old, bool namespaced) {
  return old ? object_meta_update(o, *old) : object_meta(o, namespaced, name_is_dns_subdomain);
}

// Upstream's order of the sources of a PersistentVolumeSpec that podwarp serves.
constexpr std::array<std::string_view, 13> kPvSources = {"gcePersistentDisk",
                                                         "awsElasticBlockStore",
                                                         "hostPath",
                                                         "flocker",
                                                         "nfs",
                                                         "quobyte",
                                                         "fc",
                                                         "vsphereVolume",
                                                         "photonPersistentDisk",
                                                         "portworxVolume",
                                                         "azureDisk",
                                                         "local",
                                                         "csi"};

// validateCSIPersistentVolumeSource beyond the driver name (checked as a pod's csi volume).
void csi_pv_source(Errors& errs, const json::object* csi, const Path& p) {
  if (str(csi, "volumeHandle").empty()) errs.push_back(required(p.child("volumeHandle")));
  for (std::string_view ref :
       {"controllerPublishSecretRef", "nodeStageSecretRef", "nodePublishSecretRef",
        "controllerExpandSecretRef", "nodeExpandSecretRef"}) {
    const json::object* r = obj(csi, ref);
    if (r == nullptr) continue;
    Path rp = p.child(ref);
    if (std::string_view name = str(r, "name"); name.empty()) {
      errs.push_back(required(rp.child("name")));
    } else {
      add(errs, name_with(name_is_dns_subdomain, rp.child("name"), name));
    }
    if (std::string_view ns = str(r, "namespace"); ns.empty()) {
      errs.push_back(required(rp.child("namespace")));
    } else {
      add(errs, dns1123_label(rp.child("namespace"), ns));
    }
  }
}

// The single source of a volume: counted as upstream does, then checked.
void pv_source(Errors& errs, const json::object* spec, const Path& p) {
  std::string_view found;
  for (std::string_view source : kPvSources) {
    if (obj(spec, source) == nullptr) continue;
    if (!found.empty()) {
      errs.push_back(forbidden(p.child(source), "may not specify more than 1 volume type"));
    } else {
      found = source;
    }
  }
  if (found.empty()) {
    errs.push_back(required(p, "must specify a volume type"));
    return;
  }
  const json::object* src = obj(spec, found);
  if (found == "local") {
    Path lp = p.child("local", "path");
    if (str(src, "path").empty()) {
      errs.push_back(required(lp));
    } else {
      no_backsteps(errs, str(src, "path"), lp);
    }
    if (obj(spec, "nodeAffinity") == nullptr) {
      errs.push_back(required(p.child("nodeAffinity"), "Local volume requires node affinity"));
    }
    return;
  }
  json::object only;
  only[found] = *field(spec, found);
  add(errs, validate_volume_source(&only, p));
  if (found == "csi") csi_pv_source(errs, src, p.child("csi"));
}

void name_field(Errors& errs, const json::object* spec, std::string_view key, const Path& p) {
  if (std::string_view v = str(spec, key); !v.empty()) {
    add(errs, name_with(name_is_dns_subdomain, p.child(key), v));
  }
}

// ValidatePersistentVolumeSpec for a stored volume.
void pv_spec(Errors& errs, const json::object* spec, const Path& p) {
  const json::array* modes = arr(spec, "accessModes");
  if (size_of(modes) == 0) errs.push_back(required(p.child("accessModes")));
  add(errs, validate_access_modes(modes, p.child("accessModes")));
  const json::object* capacity = obj(spec, "capacity");
  const Path cp = p.child("capacity");
  if (size_of(capacity) == 0) {
    errs.push_back(required(cp));
  } else if (field(capacity, "storage") == nullptr || capacity->size() > 1) {
    errs.push_back(not_supported(cp, go_value(*field(spec, "capacity")), {"storage"}));
  }
  if (capacity) {
    for (const auto& e : *capacity)
      add(errs, validate_storage_quantity(e.value(), cp.key(e.key())));
  }
  if (std::string_view rp = str(spec, "persistentVolumeReclaimPolicy");
      rp != "Delete" && rp != "Recycle" && rp != "Retain") {
    errs.push_back(not_supported(p.child("persistentVolumeReclaimPolicy"), q(rp),
                                 {"Delete", "Recycle", "Retain"}));
  }
  name_field(errs, spec, "storageClassName", p);
  if (const json::value* vm = field(spec, "volumeMode");
      vm && str(vm) != "Block" && str(vm) != "Filesystem") {
    errs.push_back(not_supported(p.child("volumeMode"), q(str(vm)), {"Block", "Filesystem"}));
  }
  if (const json::value* vac = field(spec, "volumeAttributesClassName"); vac && str(vac).empty()) {
    errs.push_back(required(p.child("volumeAttributesClassName"), "an empty string is disallowed"));
  }
  name_field(errs, spec, "volumeAttributesClassName", p);
  if (const json::value* na = field(spec, "nodeAffinity")) {
    const Path np = p.child("nodeAffinity");
    if (const json::object* req = obj(obj(na), "required")) {
      add(errs, validate_node_selector(req, np.child("required")));
    } else {
      errs.push_back(required(np.child("required"), "must specify required node constraints"));
    }
  }
  pv_source(errs, spec, p);
}

Errors pv_validate(const api::Resource&, const json::object& pv, const json::object* old) {
  Errors errs = meta(pv, old, false);
  const json::object* spec = obj(pv, "spec");
  pv_spec(errs, spec, Path().child("spec"));
  if (old) {
    const json::object* old_spec = obj(*old, "spec");
    for (std::string_view source : kPvSources) {
      if (!semantic_equal(field(spec, source), field(old_spec, source))) {
        errs.push_back(forbidden(Path().child("spec", "persistentvolumesource"),
                                 "spec.persistentvolumesource is immutable after creation"));
        break;
      }
    }
    // Upstream's paths, without "spec".
    check_immutable(errs, field(spec, "volumeMode"), field(old_spec, "volumeMode"),
                    Path().child("volumeMode"), q(str(spec, "volumeMode")));
    if (field(old_spec, "nodeAffinity") &&
        !semantic_equal(field(spec, "nodeAffinity"), field(old_spec, "nodeAffinity"))) {
      errs.push_back(invalid(Path().child("nodeAffinity"),
                             go_value(*field(old_spec, "nodeAffinity")), "field is immutable"));
    }
  }
  return errs;
}

// SetDefaults_PersistentVolume, SetDefaults_HostPathVolumeSource; capacity in canonical form.
void pv_defaults(json::object& pv, bool creating) {
  json::object& spec = ensure_obj(pv, "spec");
  set_default(spec, "persistentVolumeReclaimPolicy", "Retain");
  set_default(spec, "volumeMode", "Filesystem");
  if (json::object* capacity = mobj(spec, "capacity")) default_resource_list(*capacity);
  if (json::object* hp = mobj(spec, "hostPath"); hp && !field(*hp, "type")) slot(*hp, "type") = "";
  if (creating) set_default(ensure_obj(pv, "status"), "phase", "Pending");
}

Errors pvc_validate(const api::Resource&, const json::object& pvc, const json::object* old) {
  Errors errs = meta(pvc, old, true);
  const json::object* spec = obj(pvc, "spec");
  add(errs, validate_pvc_spec(spec, Path().child("spec")));
  if (old == nullptr) return errs;
  // ValidatePersistentVolumeClaimUpdate: compare the specs without what may change.
  const json::object* old_spec = obj(*old, "spec");
  json::object now = spec ? *spec : json::object{};
  json::object before = old_spec ? *old_spec : json::object{};
  if (str(before, "volumeName").empty()) copy_fields(before, &now, {"volumeName"});
  if (field(before, "storageClassName") == nullptr) copy_fields(before, &now, {"storageClassName"});
  const bool bound = str(obj(pvc, "status"), "phase") == "Bound";
  if (bound) {
    if (json::object* res = mobj(now, "resources")) {
      if (json::object* req = mobj(*res, "requests")) {
        const json::value* old_storage =
            field(obj(obj(before, "resources"), "requests"), "storage");
        if (old_storage) slot(*req, "storage") = *old_storage;
      }
    }
  }
  now.erase("volumeAttributesClassName");
  before.erase("volumeAttributesClassName");
  const json::value now_v = std::move(now), before_v = std::move(before);
  if (!semantic_equal(&now_v, &before_v)) {
    errs.push_back(forbidden(Path().child("spec"),
                             "spec is immutable after creation except resources.requests and "
                             "volumeAttributesClassName for bound claims"));
  }
  check_immutable(errs, field(spec, "volumeMode"), field(old_spec, "volumeMode"),
                  Path().child("volumeMode"), q(str(spec, "volumeMode")));
  return errs;
}

// SetDefaults_PersistentVolumeClaim(Spec); requests and limits in canonical form.
void pvc_defaults(json::object& pvc, bool creating) {
  json::object& spec = ensure_obj(pvc, "spec");
  set_default(spec, "volumeMode", "Filesystem");
  if (json::object* res = mobj(spec, "resources")) {
    for (std::string_view k : {"limits", "requests"}) {
      if (json::object* l = mobj(*res, k)) default_resource_list(*l);
    }
  }
  if (creating) set_default(ensure_obj(pvc, "status"), "phase", "Pending");
}

void one_of(Errors& errs, const json::object& o, std::string_view key,
            const std::vector<std::string>& valid) {
  const json::value* v = field(o, key);
  if (v == nullptr) {
    errs.push_back(required(Path().child(key)));
  } else if (std::find(valid.begin(), valid.end(), str(v)) == valid.end()) {
    errs.push_back(not_supported(Path().child(key), q(str(v)), valid));
  }
}

Errors storage_class_validate(const api::Resource&, const json::object& sc,
                              const json::object* old) {
  Errors errs = meta(sc, old, false);
  const Path pp = Path().child("provisioner");
  std::string_view provisioner = str(sc, "provisioner");
  if (provisioner.empty()) {
    errs.push_back(required(pp));
  } else {
    std::string lower(provisioner);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (auto& m : is_qualified_name(lower)) errs.push_back(invalid_str(pp, provisioner, m));
  }
  if (const json::object* params = obj(sc, "parameters")) {
    for (const auto& e : *params) {
      if (e.key().empty()) {
        errs.push_back(
            invalid_str(Path().child("parameters"), "", "parameters must contain non-empty keys"));
      }
    }
  }
  if (field(sc, "reclaimPolicy")) one_of(errs, sc, "reclaimPolicy", {"Delete", "Retain"});
  one_of(errs, sc, "volumeBindingMode", {"Immediate", "WaitForFirstConsumer"});
  if (old == nullptr) return errs;
  if (!semantic_equal(field(sc, "parameters"), field(*old, "parameters"))) {
    errs.push_back(forbidden(Path().child("parameters"), "updates to parameters are forbidden."));
  }
  if (provisioner != str(*old, "provisioner")) {
    errs.push_back(forbidden(pp, "updates to provisioner are forbidden."));
  }
  if (str(sc, "reclaimPolicy") != str(*old, "reclaimPolicy")) {
    errs.push_back(
        forbidden(Path().child("reclaimPolicy"), "updates to reclaimPolicy are forbidden."));
  }
  check_immutable(errs, field(sc, "volumeBindingMode"), field(*old, "volumeBindingMode"),
                  Path().child("volumeBindingMode"), q(str(sc, "volumeBindingMode")));
  return errs;
}

// SetDefaults_StorageClass.
void storage_class_defaults(json::object& sc, bool) {
  set_default(sc, "reclaimPolicy", "Delete");
  set_default(sc, "volumeBindingMode", "Immediate");
}

constexpr std::array kStorageKinds = {
    KindRules{"", "PersistentVolume", pv_defaults, pv_validate, nullptr},
    KindRules{"", "PersistentVolumeClaim", pvc_defaults, pvc_validate, nullptr},
    KindRules{"storage.k8s.io", "StorageClass", storage_class_defaults, storage_class_validate,
              nullptr},
};

}  // namespace

std::span<const KindRules> storage_kinds() { return kStorageKinds; }

}  // namespace podwarp::validation
