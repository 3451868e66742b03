// The scheduling algorithm: one pod against a Snapshot, with kube-scheduler's default plugins.
//
// Filters, in upstream's order (the first failing one gives a node's reasons):
//   NodeUnschedulable, NodeName, TaintToleration, NodeAffinity (+nodeSelector), NodePorts,
//   NodeResourcesFit, VolumeBinding (pods with persistentVolumeClaim volumes only;
//   volume_binding.h), PodTopologySpread (DoNotSchedule), InterPodAffinity (required).
// A PreFilter failure (VolumeBinding: a claim missing, or unbound with immediate binding) makes
// every node unresolvable with upstream's message ("0/3 nodes are available: pod has unbound
// immediate PersistentVolumeClaims.").
// Scores, normalized to 0..100 and weighted as upstream's defaults:
//   TaintToleration x3 (PreferNoSchedule), NodeAffinity x2 (preferred), NodeResourcesFit x1
//   (LeastAllocated, cpu+memory), NodeResourcesBalancedAllocation x1, InterPodAffinity x2
//   (preferred terms, both directions), PodTopologySpread x2 (ScheduleAnyway).
// The search stops after numFeasibleNodesToFind feasible nodes (upstream's adaptive
// percentageOfNodesToScore: 50 - nodes/125 %, at least 5% and at least 100 nodes), starting
// at a rotating index. Ties between the best nodes are broken at random.
//
// A failure produces upstream's message ("0/5 nodes are available: 2 Insufficient cpu, 3
// node(s) had untolerated taint {k: v}."), with reasons as "<count> <reason>" sorted as
// strings, like Go's sort.Strings. preempt() implements DefaultPreemption's dry run.
//
// Not implemented (differences to upstream): volume plugins other than VolumeBinding's claim
// checks (no binding or provisioning here, no volume limits or zones), ImageLocality, system default
// topology spread constraints, nominated pods' resources on their nominated node, PDBs.
//
// Threading: not locked; the Snapshot's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/snapshot.h"

namespace podwarp::scheduler {

inline constexpr std::string_view kHostnameLabel = "kubernetes.io/hostname";

enum class Reason : std::uint8_t {
  kNodeName,
  kUnschedulable,
  kTaint,  // arg: taint index in the node
  kNodeAffinity,
  kNodePorts,
  kTooManyPods,
  kInsufficientCpu,
  kInsufficientMemory,
  kInsufficientEphemeral,
  kInsufficientScalar,  // arg: resource name id
  kSpreadMissingLabel,
  kSpread,
  kAffinity,
  kAntiAffinity,
  kExistingAntiAffinity,
  kVolumeNodeConflict,
  kVolumeMissing,
  kNoVictims,
  kNotHelpful,
};

// Why one node was rejected.
struct NodeStatus {
  std::uint32_t node = 0;
  bool unresolvable = false;  // UnschedulableAndUnresolvable: preemption cannot help
  std::uint8_t count = 0;
  struct Item {
    Reason reason;
    std::uint32_t arg;
  };
  Item items[6];

  void add(Reason r, std::uint32_t arg = 0) {
    if (count < 6) items[count++] = {r, arg};
  }
};

struct AlgorithmOptions {
  int percentage_of_nodes_to_score = 0;  // 0: adaptive, as upstream
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
};

struct ScheduleResult {
  bool scheduled = false;
  std::uint32_t node = 0;
  std::string node_name;
  std::size_t num_all_nodes = 0;
  std::size_t evaluated = 0;
  std::size_t feasible = 0;
  std::string message;               // on failure: the FitError text (without preemption)
  std::vector<NodeStatus> statuses;  // on failure: one per rejected node
};

struct PreemptionResult {
  bool nominated = false;
  std::string node_name;
  std::vector<PodPtr> victims;
  std::string message;  // "preemption: ..." when no node was found, else empty
};

class Algorithm {
 public:
  explicit Algorithm(Snapshot& snapshot, AlgorithmOptions options = {});
  ~Algorithm();
  Algorithm(const Algorithm&) = delete;
  Algorithm& operator=(const Algorithm&) = delete;

  ScheduleResult schedule(const PodInfo& pod);

  // DefaultPreemption after a failed schedule(): a node where evicting lower-priority pods
  // makes `pod` fit (fewest and least important victims). The snapshot is left unchanged.
  PreemptionResult preempt(const PodInfo& pod, const ScheduleResult& failure);

  // For tests: the filters on one node (nullopt: fits), and the final scores of every
  // feasible node (name, total weighted score).
  std::optional<NodeStatus> filter_node(const PodInfo& pod, std::string_view node);
  std::vector<std::pair<std::string, std::int64_t>> score_nodes(const PodInfo& pod);

  // numFeasibleNodesToFind of upstream.
  std::size_t num_feasible_nodes_to_find(std::size_t num_all_nodes) const;

  // "0/N nodes are available: <count> <reason>, ...." (reasons sorted as strings).
  std::string fit_error(std::size_t num_all_nodes, const std::vector<NodeStatus>& statuses) const;
  std::string reason_text(const NodeStatus& s, const NodeStatus::Item& item) const;

  struct CycleState;

 private:
  void prefilter(const PodInfo& pod, CycleState& st);
  bool filter(const PodInfo& pod, const CycleState& st, const NodeInfo& node, NodeStatus& out);
  void score(const PodInfo& pod, const std::vector<std::uint32_t>& nodes,
             std::vector<std::int64_t>& totals);
  std::uint64_t next_random();

  Snapshot& snap_;
  AlgorithmOptions options_;
  std::size_t next_start_ = 0;
  std::uint64_t rng_;
  std::unique_ptr<CycleState> state_;
  std::vector<std::uint32_t> feasible_;
  std::vector<NodeStatus> statuses_;
  std::vector<std::int64_t> totals_;
  std::vector<std::int64_t> raw_;
  std::uint32_t hostname_key_;
};

}  // namespace podwarp::scheduler
