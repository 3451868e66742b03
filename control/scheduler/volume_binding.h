// VolumeCatalog: the storage objects the scheduler's VolumeBinding filter reads
// (PersistentVolumeClaims, PersistentVolumes, StorageClasses), compiled from their informers,
// and the plugin's checks for a pod's persistentVolumeClaim volumes, as upstream's:
//
//   PreFilter (check_pod)  a claim missing in the pod's namespace: `persistentvolumeclaim "c"
//              not found`; one being deleted: `persistentvolumeclaim "c" is being deleted`; an
//              unbound claim (no spec.volumeName) whose StorageClass is not
//              WaitForFirstConsumer (or has no class, or an unknown one): `pod has unbound
//              immediate PersistentVolumeClaims`. Either makes the pod unschedulable on every
//              node (UnschedulableAndUnresolvable). Unbound WaitForFirstConsumer claims put no
//              constraint on the node: the provisioner follows the pod's node.
//   Filter (fits_node)     every bound claim's PersistentVolume must exist (else "node(s)
//              unavailable due to one or more pvc(s) bound to non-existent pv(s)") and its
//              spec.nodeAffinity.required must match the node (else "node(s) had volume node
//              affinity conflict"), with the pods' node-affinity matcher.
//
// Binding and provisioning are not the scheduler's: the PV controller binds claims and
// provisions volumes for the pod's spec.nodeName.
//
// Threading: not locked; the Snapshot's thread (its Interner).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "podwarp/json.h"
#include "scheduler/model.h"

namespace podwarp::scheduler {

struct ClaimInfo {
  std::string volume_name;    // spec.volumeName ("" = unbound)
  std::string storage_class;  // spec.storageClassName
  bool deleting = false;      // metadata.deletionTimestamp set
};

struct PersistentVolumeInfo {
  bool has_required = false;       // spec.nodeAffinity.required present
  std::vector<NodeTerm> required;  // its nodeSelectorTerms, ORed
};

// What PreFilter found for one pod.
struct PodVolumes {
  std::string error;                               // non-empty: unschedulable everywhere
  bool missing_volume = false;                     // a bound claim's PV is not known
  std::vector<const PersistentVolumeInfo*> bound;  // valid until the catalog changes
};

class VolumeCatalog {
 public:
  void upsert_claim(const json::value& claim);
  void remove_claim(const json::value& claim);
  void upsert_volume(const json::value& pv, Interner& in);
  void remove_volume(std::string_view name);
  void upsert_class(const json::value& storage_class);
  void remove_class(std::string_view name);

  PodVolumes check_pod(const PodInfo& pod) const;
  static bool fits_node(const PersistentVolumeInfo& pv, const Labels& labels,
                        std::uint32_t node_name_id, const Interner& in);

 private:
  std::unordered_map<std::string, ClaimInfo> claims_;  // "<ns>/<name>"
  std::unordered_map<std::string, PersistentVolumeInfo> volumes_;
  std::unordered_map<std::string, bool> wait_for_first_consumer_;  // by StorageClass name
};

}  // namespace podwarp::scheduler
