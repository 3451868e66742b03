// The scheduler's compact object model: pods and nodes converted once from their JSON into
// small structs whose strings (label keys and values, namespaces, resource names) are interned
// into integer ids, so that filters and scores never touch JSON or compare strings in the hot
// path.
//
// compile_pod()/compile_node() read the fields kube-scheduler reads (requests, ports,
// tolerations, nodeSelector, affinity, topologySpreadConstraints, priority, the claims of
// persistentVolumeClaim volumes; labels, taints, allocatable, unschedulable) and ignore the
// rest. Bad input never throws: unparsable quantities count as zero and malformed selectors
// match nothing.
//
// Threading: an Interner and everything compiled with it belong to one thread (the
// scheduler's loop or a test); compiled PodInfo/NodeSpec are immutable afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::scheduler {

inline constexpr std::uint32_t kNoValue = 0xffffffffu;

// Strings to dense ids (0, 1, ...). Ids are never reused.
class Interner {
 public:
  std::uint32_t intern(std::string_view s);
  // kNoValue when the string was never interned.
  std::uint32_t find(std::string_view s) const;
  const std::string& str(std::uint32_t id) const { return strings_[id]; }
  std::size_t size() const { return strings_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> ids_;
  std::vector<std::string> strings_;
};

// A label set: (key id, value id) sorted by key.
using Labels = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

// The value id of `key` in `labels`, or kNoValue.
inline std::uint32_t label_value(const Labels& labels, std::uint32_t key) {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
    if (k > key) break;
  }
  return kNoValue;
}
Labels compile_labels(const json::value* labels_obj, Interner& in);

// A metav1.LabelSelector over interned labels. A null selector (absent) matches nothing, as in
// affinity terms and spread constraints upstream; {} matches everything.
struct Selector {
  enum class Op : std::uint8_t { kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::uint32_t key;
    Op op;
    std::vector<std::uint32_t> values;  // sorted
  };
  bool null = true;
  bool invalid = false;  // a malformed selector matches nothing
  std::vector<Requirement> requirements;

  bool matches(const Labels& labels) const;
  void append_signature(std::string& out) const;
};
Selector compile_selector(const json::value* selector, Interner& in);

// A v1.NodeSelectorRequirement (matchExpressions on labels, or matchFields on metadata.name).
struct NodeRequirement {
  enum class Op : std::uint8_t { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt };
  std::uint32_t key = kNoValue;
  Op op = Op::kIn;
  std::vector<std::uint32_t> values;  // sorted value ids (In/NotIn)
  std::int64_t number = 0;            // Gt/Lt
  bool invalid = false;               // Gt/Lt with a bad value: never matches
};

// A v1.NodeSelectorTerm: expressions AND fields; an empty term matches nothing.
struct NodeTerm {
  std::vector<NodeRequirement> expressions;
  std::vector<NodeRequirement> fields;  // metadata.name only (key ignored)
  bool invalid = false;
};

struct PreferredNodeTerm {
  std::int32_t weight = 0;
  NodeTerm term;
};

struct Toleration {
  enum class Effect : std::uint8_t { kAll, kNoSchedule, kPreferNoSchedule, kNoExecute };
  std::string key;  // empty with Exists: every key
  bool exists = false;
  std::string value;
  Effect effect = Effect::kAll;
};

struct Taint {
  std::string key;
  std::string value;
  Toleration::Effect effect = Toleration::Effect::kNoSchedule;
};

bool tolerates(const Toleration& t, const Taint& taint);
bool tolerates_any(const std::vector<Toleration>& ts, const Taint& taint);

// Resource amounts: cpu in millicores, memory and ephemeral-storage in bytes, extended
// resources (any other name, e.g. nvidia.com/gpu, hugepages-2Mi) in their integer units.
struct Resources {
  std::int64_t milli_cpu = 0;
  std::int64_t memory = 0;
  std::int64_t ephemeral = 0;
  std::vector<std::pair<std::uint32_t, std::int64_t>> scalar;  // (resource name id, amount)

  std::int64_t scalar_of(std::uint32_t name) const;
  void add(const Resources& r);
  void sub(const Resources& r);
  bool empty() const;
};

struct HostPort {
  std::uint8_t protocol = 0;    // 0 TCP, 1 UDP, 2 SCTP
  std::uint32_t ip = kNoValue;  // interned hostIP; kNoValue = 0.0.0.0 (all addresses)
  std::int32_t port = 0;
  bool operator==(const HostPort&) const = default;
};

// A pod (anti-)affinity term with its namespaces resolved: `namespaces` holds the pod's own
// namespace when neither namespaces nor namespaceSelector are given.
struct AffinityTerm {
  std::vector<std::uint32_t> namespaces;  // sorted ids
  bool has_ns_selector = false;
  Selector ns_selector;
  Selector selector;
  std::uint32_t topology_key = kNoValue;
  std::int32_t weight = 0;  // preferred terms only

  void append_signature(std::string& out) const;
};

struct SpreadConstraint {
  std::int32_t max_skew = 1;
  std::uint32_t topology_key = kNoValue;
  bool do_not_schedule = true;
  Selector selector;             // matchLabelKeys already merged in
  std::int32_t min_domains = 0;  // 0: unset
  bool honor_node_affinity = true;
  bool honor_taints = false;
};

// A pod as the scheduler sees it.
struct PodInfo {
  std::string ns;
  std::string name;
  std::string uid;
  std::string key;  // "<ns>/<name>"
  std::uint32_t ns_id = kNoValue;
  Labels labels;
  std::int32_t priority = 0;
  bool preempt_never = false;
  std::int64_t created_ns = 0;  // metadata.creationTimestamp, ns since the epoch
  std::string node_name;        // spec.nodeName
  std::string nominated_node;   // status.nominatedNodeName
  std::string scheduler_name;
  bool terminating = false;
  bool finished = false;  // phase Succeeded/Failed: holds no resources

  Resources requests;               // max(sum of containers, any init container) + overhead
  std::int64_t nonzero_cpu = 0;     // requests with upstream's defaults for scoring
  std::int64_t nonzero_memory = 0;  // (100m cpu, 200Mi memory when unset)
  std::vector<HostPort> ports;
  std::vector<Toleration> tolerations;

  Labels node_selector;                       // spec.nodeSelector (exact matches)
  bool has_required_node_affinity = false;    // requiredDuringScheduling...nodeSelectorTerms
  std::vector<NodeTerm> required_node_terms;  // ORed
  std::vector<PreferredNodeTerm> preferred_node_terms;

  std::vector<AffinityTerm> affinity;            // required pod affinity
  std::vector<AffinityTerm> anti_affinity;       // required pod anti-affinity
  std::vector<AffinityTerm> pref_affinity;       // preferred (weight set)
  std::vector<AffinityTerm> pref_anti_affinity;  // preferred (weight set)
  std::vector<SpreadConstraint> spread;
  std::vector<std::string> claims;  // spec.volumes[].persistentVolumeClaim.claimName

  bool has_pod_affinity_terms() const {
    return !affinity.empty() || !anti_affinity.empty() || !pref_affinity.empty() ||
           !pref_anti_affinity.empty();
  }
};
using PodPtr = std::shared_ptr<const PodInfo>;

struct NodeSpec {
  std::string name;
  Labels labels;
  Resources allocatable;
  std::int64_t allowed_pods = 0;
  std::vector<Taint> taints;
  bool unschedulable = false;
};

// The upstream resource request of a pod (also used by tests).
PodPtr compile_pod(const json::value& pod, Interner& in);
NodeSpec compile_node(const json::value& node, Interner& in);

// A v1.NodeSelectorTerm (pods' node affinity, PersistentVolumes' spec.nodeAffinity).
NodeTerm compile_node_term(const json::value& term, Interner& in);

// Node affinity evaluation (nodeSelector AND required terms) against a node.
bool node_term_matches(const NodeTerm& term, const Labels& labels, std::uint32_t node_name_id,
                       const Interner& in);
bool pod_matches_node_selector(const PodInfo& pod, const Labels& labels, std::uint32_t node_name_id,
                               const Interner& in);

}  // namespace podwarp::scheduler
