// PersistentVolumes, PersistentVolumeClaims and StorageClasses: upstream's
// printPersistentVolume, printPersistentVolumeClaim and printStorageClass.
#include <array>
#include <string>

#include "tables/format.h"
#include "tables/printer.h"
#include "tables/tables.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

constexpr std::string_view kBetaClassAnnotation = "volume.beta.kubernetes.io/storage-class";

// helper.GetAccessModesAsString: each mode once, in upstream's order, abbreviated.
std::string access_modes(const json::array* modes) {
  constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kModes = {{
      {"ReadWriteOnce", "RWO"},
      {"ReadOnlyMany", "ROX"},
      {"ReadWriteMany", "RWX"},
      {"ReadWriteOncePod", "RWOP"},
  }};
  std::vector<std::string> out;
  for (const auto& [mode, abbrev] : kModes) {
    for (std::size_t i = 0; modes && i < modes->size(); ++i) {
      const json::value& m = (*modes)[i];
      if (m.is_string() && m.get_string() == mode) {
        out.emplace_back(abbrev);
        break;
      }
    }
  }
  return join(out, ",");
}

// The storage quantity of a resource list, "0" without one (Quantity{}.String()).
std::string storage_of(const json::value& obj, std::initializer_list<std::string_view> list) {
  const json::object* l = object_at(obj, list);
  std::string_view s = l ? str(*l, "storage") : std::string_view{};
  return s.empty() ? "0" : std::string(s);
}

// helper.GetPersistentVolume(Claim)Class: the beta annotation wins over spec.storageClassName.
std::string_view storage_class(const json::value& obj) {
  if (const json::object* a = object_at(obj, {"metadata", "annotations"});
      a && a->contains(kBetaClassAnnotation)) {
    return str(*a, kBetaClassAnnotation);
  }
  return get_string(obj, {"spec", "storageClassName"});
}

std::string_view phase_of(const json::value& obj) {
  if (find_path(obj, {"metadata", "deletionTimestamp"})) return "Terminating";
  return get_string(obj, {"status", "phase"});
}

std::string unset_or(const json::value& obj, std::initializer_list<std::string_view> path) {
  const json::value* v = find_path(obj, path);
  return v && v->is_string() ? std::string(v->get_string()) : std::string("<unset>");
}

// ---- PersistentVolume ----

constexpr std::string_view kVolumeModeDoc =
    "volumeMode defines if a volume is intended to be used with a formatted filesystem or to "
    "remain in raw block state. Value of Filesystem is implied when not included in spec.";

constexpr Column kPersistentVolumeColumns[] = {
    kNameColumn,
    {"Capacity", "string", "",
     "capacity is the description of the persistent volume's resources and capacity."},
    {"Access Modes", "string", "", "accessModes contains all ways the volume can be mounted."},
    {"Reclaim Policy", "string", "",
     "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released "
     "from its claim."},
    {"Status", "string", "",
     "phase indicates if a volume is available, bound to a claim, or released by a claim."},
    {"Claim", "string", "",
     "claimRef is part of a bi-directional binding between PersistentVolume and "
     "PersistentVolumeClaim."},
    {"StorageClass", "string", "", "StorageClass of the pv"},
    {"VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pv"},
    {"Reason", "string", "",
     "reason is a brief CamelCase string that describes any failure and is meant for machine "
     "parsing and tidy display in the CLI."},
    kAgeColumn,
    {"VolumeMode", "string", "", kVolumeModeDoc, 1},
};

json::array persistent_volume_cells(const json::value& pv, TimePoint now) {
  std::string claim;
  if (find_path(pv, {"spec", "claimRef"})) {
    claim = std::string(get_string(pv, {"spec", "claimRef", "namespace"})) + "/" +
            std::string(get_string(pv, {"spec", "claimRef", "name"}));
  }
  json::array cells;
  cells.emplace_back(name_of(pv));
  cells.emplace_back(storage_of(pv, {"spec", "capacity"}));
  cells.emplace_back(access_modes(array_at(pv, {"spec", "accessModes"})));
  cells.emplace_back(get_string(pv, {"spec", "persistentVolumeReclaimPolicy"}));
  cells.emplace_back(phase_of(pv));
  cells.emplace_back(claim);
  cells.emplace_back(storage_class(pv));
  cells.emplace_back(unset_or(pv, {"spec", "volumeAttributesClassName"}));
  cells.emplace_back(get_string(pv, {"status", "reason"}));
  cells.emplace_back(age_of(pv, now));
  cells.emplace_back(unset_or(pv, {"spec", "volumeMode"}));
  return cells;
}

// ---- PersistentVolumeClaim ----

constexpr Column kPersistentVolumeClaimColumns[] = {
    kNameColumn,
    {"Status", "string", "", "phase represents the current phase of PersistentVolumeClaim."},
    {"Volume", "string", "",
     "volumeName is the binding reference to the PersistentVolume backing this claim."},
    {"Capacity", "string", "",
     "capacity represents the actual resources of the underlying volume."},
    {"Access Modes", "string", "",
     "accessModes contains the actual access modes the volume backing the PVC has."},
    {"StorageClass", "string", "", "StorageClass of the pvc"},
    {"VolumeAttributesClass", "string", "", "VolumeAttributesClass of the pvc"},
    kAgeColumn,
    {"VolumeMode", "string", "",
     "volumeMode defines what type of volume is required by the claim. Value of Filesystem is "
     "implied when not included in claim spec.",
     1},
};

json::array persistent_volume_claim_cells(const json::value& pvc, TimePoint now) {
  std::string_view volume = get_string(pvc, {"spec", "volumeName"});
  std::string capacity, modes;
  if (!volume.empty()) {
    modes = access_modes(array_at(pvc, {"status", "accessModes"}));
    capacity = storage_of(pvc, {"status", "capacity"});
  }
  std::string vac = unset_or(pvc, {"spec", "volumeAttributesClassName"});
  json::array cells;
  cells.emplace_back(name_of(pvc));
  cells.emplace_back(phase_of(pvc));
  cells.emplace_back(volume);
  cells.emplace_back(capacity);
  cells.emplace_back(modes);
  cells.emplace_back(storage_class(pvc));
  cells.emplace_back(vac.empty() ? "<unset>" : vac);
  cells.emplace_back(age_of(pvc, now));
  cells.emplace_back(unset_or(pvc, {"spec", "volumeMode"}));
  return cells;
}

// ---- StorageClass ----

constexpr Column kStorageClassColumns[] = {
    kNameColumn,
    {"Provisioner", "string", "", "provisioner indicates the type of the provisioner."},
    {"ReclaimPolicy", "string", "",
     "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of "
     "this storage class. Defaults to Delete."},
    {"VolumeBindingMode", "string", "",
     "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  "
     "When unset, VolumeBindingImmediate is used. This field is only honored by servers that "
     "enable the VolumeScheduling feature."},
    {"AllowVolumeExpansion", "string", "",
     "allowVolumeExpansion shows whether the storage class allow volume expand."},
    kAgeColumn,
};

json::array storage_class_cells(const json::value& sc, TimePoint now) {
  std::string name(name_of(sc));
  if (is_default_storage_class(sc)) name += " (default)";
  std::string_view reclaim = get_string(sc, {"reclaimPolicy"});
  std::string_view binding = get_string(sc, {"volumeBindingMode"});
  const json::value* expansion = find_path(sc, {"allowVolumeExpansion"});
  json::array cells;
  cells.emplace_back(name);
  cells.emplace_back(get_string(sc, {"provisioner"}));
  cells.emplace_back(reclaim.empty() ? "Delete" : reclaim);
  cells.emplace_back(binding.empty() ? "Immediate" : binding);
  cells.emplace_back(expansion && expansion->is_bool() && expansion->get_bool());
  cells.emplace_back(age_of(sc, now));
  return cells;
}

constexpr Printer kPrinters[] = {
    {"", "PersistentVolume", kPersistentVolumeColumns, &persistent_volume_cells},
    {"", "PersistentVolumeClaim", kPersistentVolumeClaimColumns, &persistent_volume_claim_cells},
    {"storage.k8s.io", "StorageClass", kStorageClassColumns, &storage_class_cells},
};

}  // namespace

std::span<const Printer> storage_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail

namespace podwarp::tables {

bool is_default_storage_class(const json::value& sc) {
  for (std::string_view key : {"storageclass.kubernetes.io/is-default-class",
                               "storageclass.beta.kubernetes.io/is-default-class"}) {
    if (get_string(sc, {"metadata", "annotations", key}) == "true") return true;
  }
  return false;
}

}  // namespace podwarp::tables
