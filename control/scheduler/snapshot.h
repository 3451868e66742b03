// ClusterSnapshot: the scheduler's view of the cluster (upstream's scheduler cache and its
// NodeInfo snapshot in one): every node with its allocatable and the requests, ports and
// pods assigned to it, plus indexes that let inter-pod affinity and topology spread count
// pods per topology domain without scanning every pod:
//
//  - pod groups: assigned pods interned by (namespace, labels); each group knows on which
//    nodes its pods run. A selector is evaluated once per group, not once per pod.
//  - term groups: the required/preferred (anti-)affinity terms of assigned pods, interned by
//    their content; each knows on which nodes pods carrying it run. "Does an existing pod's
//    anti-affinity forbid this node?" becomes one match per distinct term.
//
// The storage objects of the VolumeBinding filter are kept beside (volumes(), volume_binding.h).
//
// Updates are incremental: add/remove a node, add/remove an assigned (or assumed) pod. A pod
// referring to a node that is not known yet is kept on a placeholder node that is not
// schedulable until the node arrives.
//
// Threading: not locked; one thread (the scheduler's loop).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/model.h"
#include "scheduler/volume_binding.h"

namespace podwarp::scheduler {

struct NodeInfo {
  std::uint32_t index = 0;
  std::string name;
  std::uint32_t name_id = kNoValue;
  bool live = false;  // false: a placeholder for pods bound to an unknown node
  NodeSpec spec;
  Resources requested;
  std::int64_t nonzero_cpu = 0;
  std::int64_t nonzero_memory = 0;
  std::vector<HostPort> used_ports;  // a multiset
  std::vector<const PodInfo*> pods;
  std::uint32_t prefer_no_schedule_taints = 0;
  std::uint64_t generation = 0;  // bumped on every change
};

// Assigned pods sharing a namespace and a label set.
struct PodGroup {
  std::uint32_t ns_id = kNoValue;
  bool terminating = false;  // topology spread does not count terminating pods
  Labels labels;
  std::uint32_t count = 0;
  std::unordered_map<std::uint32_t, std::uint32_t> nodes;  // node index -> pods of the group
  std::string key;  // interning key; the slot is recycled when count drops to 0
};

// An (anti-)affinity term carried by assigned pods.
struct TermGroup {
  enum class Kind : std::uint8_t { kAffinity, kAntiAffinity, kPrefAffinity, kPrefAntiAffinity };
  Kind kind = Kind::kAffinity;
  AffinityTerm term;
  std::uint32_t count = 0;
  std::unordered_map<std::uint32_t, std::uint32_t> nodes;  // node index -> pods carrying it
  std::string key;  // interning key; the slot is recycled when count drops to 0
};

class Snapshot {
 public:
  Snapshot() = default;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  Interner& interner() { return interner_; }
  const Interner& interner() const { return interner_; }

  // Adds or replaces a node (labels, allocatable, taints...); its pods stay.
  void upsert_node(NodeSpec spec);
  void remove_node(const std::string& name);

  // Accounts an assigned pod on `node_name` (its spec.nodeName, or the assumed node). A pod
  // already present under the same uid is replaced. Finished pods are ignored.
  void add_pod(PodPtr pod, const std::string& node_name);
  // Returns false when the pod was not present.
  bool remove_pod(const std::string& uid);
  bool has_pod(const std::string& uid) const { return pods_.count(uid) != 0; }
  // The node a pod is accounted on, or nullptr.
  const NodeInfo* node_of_pod(const std::string& uid) const;
  PodPtr pod(const std::string& uid) const;

  // Nodes that can take pods (not placeholders), in a stable order.
  const std::vector<std::uint32_t>& live_nodes() const { return live_; }
  const NodeInfo& node(std::uint32_t index) const { return nodes_[index]; }
  const NodeInfo* find_node(std::string_view name) const;
  std::size_t pod_count() const { return pods_.size(); }

  // Groups with count 0 are unused slots: skip them.
  const std::vector<PodGroup>& pod_groups() const { return groups_; }
  const std::vector<TermGroup>& term_groups() const { return terms_; }
  // Number of assigned pods carrying any (anti-)affinity term.
  std::size_t pods_with_affinity() const { return pods_with_affinity_; }

  // Namespace labels, for namespaceSelector in affinity terms.
  void set_namespace_labels(std::string_view ns, Labels labels);
  void remove_namespace(std::string_view ns);
  const Labels* namespace_labels(std::uint32_t ns_id) const;

  // Whether `term` (of any pod) selects pods of `group` / a given pod.
  bool term_matches(const AffinityTerm& term, std::uint32_t ns_id, const Labels& labels) const;

  // Nodes having label `key`, per value: value id -> number of live nodes. Cached per key,
  // rebuilt after node changes.
  const std::unordered_map<std::uint32_t, std::uint32_t>& domains(std::uint32_t key);

  // Bumped on every node add/update/remove.
  std::uint64_t node_epoch() const { return node_epoch_; }

  // PersistentVolumeClaims, PersistentVolumes and StorageClasses (VolumeBinding).
  VolumeCatalog& volumes() { return volumes_; }
  const VolumeCatalog& volumes() const { return volumes_; }

 private:
  std::uint32_t node_index(const std::string& name, bool create);
  void rebuild_live();
  std::uint32_t intern_group(const PodInfo& pod);
  std::uint32_t intern_term(TermGroup::Kind kind, const AffinityTerm& term);

  struct Assigned {
    PodPtr pod;
    std::uint32_t node = 0;
    std::uint32_t group = 0;
    std::vector<std::uint32_t> terms;
  };

  Interner interner_;
  std::vector<NodeInfo> nodes_;
  std::vector<std::uint32_t> free_nodes_;
  std::unordered_map<std::string, std::uint32_t> node_by_name_;
  std::vector<std::uint32_t> live_;
  std::unordered_map<std::string, Assigned> pods_;
  std::vector<PodGroup> groups_;  // slots with count 0 are free (free_groups_)
  std::unordered_map<std::string, std::uint32_t> group_ids_;
  std::vector<std::uint32_t> free_groups_;
  std::vector<TermGroup> terms_;
  std::unordered_map<std::string, std::uint32_t> term_ids_;
  std::vector<std::uint32_t> free_terms_;
  std::size_t pods_with_affinity_ = 0;
  std::unordered_map<std::uint32_t, Labels> ns_labels_;
  std::unordered_map<std::uint32_t, std::unordered_map<std::uint32_t, std::uint32_t>> domains_;
  std::uint64_t domains_epoch_ = ~0ull;
  std::uint64_t node_epoch_ = 0;
  VolumeCatalog volumes_;
};

}  // namespace podwarp::scheduler
