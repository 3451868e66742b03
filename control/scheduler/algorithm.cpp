#include "scheduler/algorithm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

namespace podwarp::scheduler {

namespace {

constexpr std::int64_t kMaxNodeScore = 100;
constexpr std::int64_t kMinFeasibleNodesToFind = 100;
constexpr std::int64_t kMinFeasibleNodesPercentageToFind = 5;
constexpr std::int64_t kWeightTaint = 3;
constexpr std::int64_t kWeightNodeAffinity = 2;
constexpr std::int64_t kWeightFit = 1;
constexpr std::int64_t kWeightBalanced = 1;
constexpr std::int64_t kWeightInterPod = 2;
constexpr std::int64_t kWeightSpread = 2;
constexpr std::int64_t kHardPodAffinityWeight = 1;

using Counts = std::unordered_map<std::uint32_t, std::int64_t>;

std::int64_t count_of(const Counts& m, std::uint32_t v) {
  auto it = m.find(v);
  return it == m.end() ? 0 : it->second;
}

bool ports_conflict(const std::vector<HostPort>& want, const std::vector<HostPort>& used) {
  for (const auto& w : want) {
    for (const auto& u : used) {
      if (w.port != u.port || w.protocol != u.protocol) continue;
      if (w.ip == kNoValue || u.ip == kNoValue || w.ip == u.ip) return true;
    }
  }
  return false;
}

bool has_all_keys(const Labels& labels, const std::vector<std::uint32_t>& keys) {
  for (auto k : keys) {
    if (label_value(labels, k) == kNoValue) return false;
  }
  return true;
}

bool tolerates_hard_taints(const PodInfo& pod, const NodeInfo& n) {
  for (const auto& t : n.spec.taints) {
    if (t.effect == Toleration::Effect::kPreferNoSchedule) continue;
    if (!tolerates_any(pod.tolerations, t)) return false;
  }
  return true;
}

std::int64_t least_requested(std::int64_t requested, std::int64_t capacity) {
  if (capacity == 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

}  // namespace

struct Algorithm::CycleState {
  struct TermCounts {
    std::uint32_t key = kNoValue;
    Counts counts;
  };
  // InterPodAffinity.
  std::vector<TermCounts> affinity;  // per required affinity term
  bool affinity_counts_empty = true;
  bool self_matches_all = false;
  std::vector<TermCounts> anti;           // per required anti-affinity term
  std::vector<TermCounts> existing_anti;  // existing pods' anti-affinity, per topology key
  // PodTopologySpread (DoNotSchedule).
  struct Spread {
    std::uint32_t key = kNoValue;
    std::int64_t max_skew = 1;
    std::int64_t min_match = 0;
    std::int64_t self = 0;
    Counts counts;
  };
  std::vector<Spread> spread;
  // VolumeBinding.
  PodVolumes volumes;

  void clear() {
    affinity.clear();
    affinity_counts_empty = true;
    self_matches_all = false;
    anti.clear();
    existing_anti.clear();
    spread.clear();
    volumes.error.clear();
    volumes.missing_volume = false;
    volumes.bound.clear();
  }
};

Algorithm::Algorithm(Snapshot& snapshot, AlgorithmOptions options)
    : snap_(snapshot),
      options_(options),
      rng_(options.seed | 1),
      state_(std::make_unique<CycleState>()),
      hostname_key_(snapshot.interner().intern(kHostnameLabel)) {}

Algorithm::~Algorithm() = default;

std::uint64_t Algorithm::next_random() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return rng_;
}

std::size_t Algorithm::num_feasible_nodes_to_find(std::size_t num_all_nodes) const {
  auto n = static_cast<std::int64_t>(num_all_nodes);
  if (n < kMinFeasibleNodesToFind) return num_all_nodes;
  std::int64_t pct = options_.percentage_of_nodes_to_score;
  if (pct >= 100) return num_all_nodes;
  if (pct <= 0) {
    pct = 50 - n / 125;
    if (pct < kMinFeasibleNodesPercentageToFind) pct = kMinFeasibleNodesPercentageToFind;
  }
  std::int64_t num = n * pct / 100;
  if (num < kMinFeasibleNodesToFind) return static_cast<std::size_t>(kMinFeasibleNodesToFind);
  return static_cast<std::size_t>(num);
}

// --- PreFilter ---

void Algorithm::prefilter(const PodInfo& pod, CycleState& st) {
  st.clear();
  // VolumeBinding: a failure ends PreFilter (the cycle fails on every node).
  if (!pod.claims.empty()) {
    st.volumes = snap_.volumes().check_pod(pod);
    if (!st.volumes.error.empty()) return;
  }
  const auto& groups = snap_.pod_groups();

  // InterPodAffinity: required affinity, counted for pods matching all terms.
  if (!pod.affinity.empty()) {
    st.affinity.resize(pod.affinity.size());
    for (std::size_t i = 0; i < pod.affinity.size(); ++i)
      st.affinity[i].key = pod.affinity[i].topology_key;
    for (const auto& g : groups) {
      if (g.count == 0) continue;
      bool all = true;
      for (const auto& t : pod.affinity) {
        if (!snap_.term_matches(t, g.ns_id, g.labels)) {
          all = false;
          break;
        }
      }
      if (!all) continue;
      for (const auto& [node, c] : g.nodes) {
        const Labels& labels = snap_.node(node).spec.labels;
        for (auto& tc : st.affinity) {
          std::uint32_t v = label_value(labels, tc.key);
          if (v == kNoValue) continue;
          tc.counts[v] += c;
          st.affinity_counts_empty = false;
        }
      }
    }
    st.self_matches_all = true;
    for (const auto& t : pod.affinity) {
      if (!snap_.term_matches(t, pod.ns_id, pod.labels)) st.self_matches_all = false;
    }
  }
  // Required anti-affinity of the incoming pod.
  if (!pod.anti_affinity.empty()) {
    st.anti.resize(pod.anti_affinity.size());
    for (std::size_t i = 0; i < pod.anti_affinity.size(); ++i) {
      const AffinityTerm& t = pod.anti_affinity[i];
      auto& tc = st.anti[i];
      tc.key = t.topology_key;
      for (const auto& g : groups) {
        if (g.count == 0 || !snap_.term_matches(t, g.ns_id, g.labels)) continue;
        for (const auto& [node, c] : g.nodes) {
          std::uint32_t v = label_value(snap_.node(node).spec.labels, tc.key);
          if (v != kNoValue) tc.counts[v] += c;
        }
      }
    }
  }
  // Existing pods' required anti-affinity against the incoming pod.
  for (const auto& tg : snap_.term_groups()) {
    if (tg.kind != TermGroup::Kind::kAntiAffinity || tg.count == 0) continue;
    if (!snap_.term_matches(tg.term, pod.ns_id, pod.labels)) continue;
    CycleState::TermCounts* tc = nullptr;
    for (auto& e : st.existing_anti) {
      if (e.key == tg.term.topology_key) tc = &e;
    }
    if (tc == nullptr) {
      st.existing_anti.emplace_back();
      tc = &st.existing_anti.back();
      tc->key = tg.term.topology_key;
    }
    for (const auto& [node, c] : tg.nodes) {
      std::uint32_t v = label_value(snap_.node(node).spec.labels, tc->key);
      if (v != kNoValue) tc->counts[v] += c;
    }
  }

  // PodTopologySpread, DoNotSchedule constraints.
  std::vector<const SpreadConstraint*> hard;
  std::vector<std::uint32_t> keys;
  bool honor_affinity = false, honor_taints = false;
  for (const auto& c : pod.spread) {
    if (!c.do_not_schedule) continue;
    hard.push_back(&c);
    if (std::find(keys.begin(), keys.end(), c.topology_key) == keys.end())
      keys.push_back(c.topology_key);
    honor_affinity |= c.honor_node_affinity;
    honor_taints |= c.honor_taints;
  }
  if (hard.empty()) return;
  bool node_filter =
      (honor_affinity && (!pod.node_selector.empty() || pod.has_required_node_affinity)) ||
      honor_taints;
  const Interner& in = snap_.interner();
  auto eligible = [&](const NodeInfo& n) {
    if (!n.live) return false;
    if (!has_all_keys(n.spec.labels, keys)) return false;
    if (!node_filter) return true;
    for (const auto* c : hard) {
      if (c->honor_node_affinity && !pod_matches_node_selector(pod, n.spec.labels, n.name_id, in))
        return false;
      if (c->honor_taints && !tolerates_hard_taints(pod, n)) return false;
    }
    return true;
  };
  // The domains: every value of each key among eligible nodes.
  std::vector<Counts> domains;  // per constraint: value -> 1 (only in the slow path)
  bool fast = !node_filter && keys.size() == 1;
  if (!fast) {
    domains.resize(hard.size());
    for (auto idx : snap_.live_nodes()) {
      const NodeInfo& n = snap_.node(idx);
      if (!eligible(n)) continue;
      for (std::size_t i = 0; i < hard.size(); ++i)
        domains[i][label_value(n.spec.labels, hard[i]->topology_key)] = 1;
    }
  }
  st.spread.resize(hard.size());
  for (std::size_t i = 0; i < hard.size(); ++i) {
    const SpreadConstraint& c = *hard[i];
    auto& sp = st.spread[i];
    sp.key = c.topology_key;
    sp.max_skew = c.max_skew;
    sp.self = c.selector.matches(pod.labels) ? 1 : 0;
    for (const auto& g : groups) {
      if (g.count == 0 || g.terminating || g.ns_id != pod.ns_id || !c.selector.matches(g.labels))
        continue;
      for (const auto& [node, cnt] : g.nodes) {
        const NodeInfo& n = snap_.node(node);
        if (!eligible(n)) continue;
        sp.counts[label_value(n.spec.labels, sp.key)] += cnt;
      }
    }
    // The minimum over domains (domains without pods count 0).
    std::int64_t min_match = std::numeric_limits<std::int64_t>::max();
    std::size_t num_domains = 0;
    auto visit = [&](std::uint32_t v) {
      ++num_domains;
      min_match = std::min(min_match, count_of(sp.counts, v));
    };
    if (fast) {
      for (const auto& [v, nodes] : snap_.domains(sp.key)) visit(v);
    } else {
      for (const auto& [v, one] : domains[i]) visit(v);
    }
    if (num_domains == 0) min_match = 0;
    if (c.min_domains > 0 && num_domains < static_cast<std::size_t>(c.min_domains)) min_match = 0;
    sp.min_match = min_match;
  }
}

// --- Filter ---

bool Algorithm::filter(const PodInfo& pod, const CycleState& st, const NodeInfo& n,
                       NodeStatus& out) {
  out.node = n.index;
  out.count = 0;
  out.unresolvable = false;
  if (!st.volumes.error.empty()) {  // PreFilter failed: no node fits, no per-node reason
    out.unresolvable = true;
    return false;
  }
  const NodeSpec& spec = n.spec;
  // NodeUnschedulable
  if (spec.unschedulable) {
    static const Taint kUnschedulable{"node.kubernetes.io/unschedulable", "",
                                      Toleration::Effect::kNoSchedule};
    if (!tolerates_any(pod.tolerations, kUnschedulable)) {
      out.unresolvable = true;
      out.add(Reason::kUnschedulable);
      return false;
    }
  }
  // NodeName
  if (!pod.node_name.empty() && pod.node_name != n.name) {
    out.unresolvable = true;
    out.add(Reason::kNodeName);
    return false;
  }
  // TaintToleration
  for (std::size_t i = 0; i < spec.taints.size(); ++i) {
    const Taint& t = spec.taints[i];
    if (t.effect == Toleration::Effect::kPreferNoSchedule) continue;
    if (!tolerates_any(pod.tolerations, t)) {
      out.unresolvable = true;
      out.add(Reason::kTaint, static_cast<std::uint32_t>(i));
      return false;
    }
  }
  // NodeAffinity
  if ((!pod.node_selector.empty() || pod.has_required_node_affinity) &&
      !pod_matches_node_selector(pod, spec.labels, n.name_id, snap_.interner())) {
    out.unresolvable = true;
    out.add(Reason::kNodeAffinity);
    return false;
  }
  // NodePorts
  if (!pod.ports.empty() && ports_conflict(pod.ports, n.used_ports)) {
    out.add(Reason::kNodePorts);
    return false;
  }
  // NodeResourcesFit
  if (static_cast<std::int64_t>(n.pods.size()) + 1 > spec.allowed_pods)
    out.add(Reason::kTooManyPods);
  const Resources& req = pod.requests;
  const Resources& alloc = spec.allocatable;
  if (req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - n.requested.milli_cpu)
    out.add(Reason::kInsufficientCpu);
  if (req.memory > 0 && req.memory > alloc.memory - n.requested.memory)
    out.add(Reason::kInsufficientMemory);
  if (req.ephemeral > 0 && req.ephemeral > alloc.ephemeral - n.requested.ephemeral)
    out.add(Reason::kInsufficientEphemeral);
  for (const auto& [name, v] : req.scalar) {
    if (v > 0 && v > alloc.scalar_of(name) - n.requested.scalar_of(name))
      out.add(Reason::kInsufficientScalar, name);
  }
  if (out.count > 0) return false;
  // VolumeBinding: the PersistentVolumes of bound claims.
  if (!pod.claims.empty()) {
    if (st.volumes.missing_volume) {
      out.unresolvable = true;
      out.add(Reason::kVolumeMissing);
      return false;
    }
    for (const PersistentVolumeInfo* pv : st.volumes.bound) {
      if (!VolumeCatalog::fits_node(*pv, spec.labels, n.name_id, snap_.interner())) {
        out.unresolvable = true;
        out.add(Reason::kVolumeNodeConflict);
        return false;
      }
    }
  }
  // PodTopologySpread
  for (const auto& sp : st.spread) {
    std::uint32_t v = label_value(spec.labels, sp.key);
    if (v == kNoValue) {
      out.unresolvable = true;
      out.add(Reason::kSpreadMissingLabel);
      return false;
    }
    std::int64_t skew = count_of(sp.counts, v) + sp.self - sp.min_match;
    if (skew > sp.max_skew) {
      out.add(Reason::kSpread);
      return false;
    }
  }
  // InterPodAffinity
  if (!pod.affinity.empty()) {
    bool pods_exist = true;
    for (const auto& tc : st.affinity) {
      std::uint32_t v = label_value(spec.labels, tc.key);
      if (v == kNoValue) {
        out.unresolvable = true;
        out.add(Reason::kAffinity);
        return false;
      }
      if (count_of(tc.counts, v) <= 0) pods_exist = false;
    }
    if (!pods_exist && !(st.affinity_counts_empty && st.self_matches_all)) {
      out.unresolvable = true;
      out.add(Reason::kAffinity);
      return false;
    }
  }
  for (const auto& tc : st.anti) {
    std::uint32_t v = label_value(spec.labels, tc.key);
    if (v != kNoValue && count_of(tc.counts, v) > 0) {
      out.add(Reason::kAntiAffinity);
      return false;
    }
  }
  for (const auto& tc : st.existing_anti) {
    std::uint32_t v = label_value(spec.labels, tc.key);
    if (v != kNoValue && count_of(tc.counts, v) > 0) {
      out.add(Reason::kExistingAntiAffinity);
      return false;
    }
  }
  return true;
}

// --- Score ---

void Algorithm::score(const PodInfo& pod, const std::vector<std::uint32_t>& nodes,
                      std::vector<std::int64_t>& totals) {
  const std::size_t n = nodes.size();
  totals.assign(n, 0);
  std::vector<std::int64_t>& raw = raw_;
  raw.assign(n, 0);
  const Interner& in = snap_.interner();

  // TaintToleration: untolerated PreferNoSchedule taints, fewer is better.
  {
    std::vector<const Toleration*> prefer;
    for (const auto& t : pod.tolerations) {
      if (t.effect == Toleration::Effect::kAll || t.effect == Toleration::Effect::kPreferNoSchedule)
        prefer.push_back(&t);
    }
    std::int64_t max = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const NodeInfo& node = snap_.node(nodes[i]);
      std::int64_t c = 0;
      if (node.prefer_no_schedule_taints != 0) {
        for (const auto& t : node.spec.taints) {
          if (t.effect != Toleration::Effect::kPreferNoSchedule) continue;
          bool ok = false;
          for (const auto* tol : prefer) ok = ok || tolerates(*tol, t);
          if (!ok) ++c;
        }
      }
      raw[i] = c;
      max = std::max(max, c);
    }
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t s = max == 0 ? kMaxNodeScore : kMaxNodeScore - raw[i] * kMaxNodeScore / max;
      totals[i] += s * kWeightTaint;
    }
  }
  // NodeAffinity: preferred terms.
  if (!pod.preferred_node_terms.empty()) {
    std::int64_t max = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const NodeInfo& node = snap_.node(nodes[i]);
      std::int64_t s = 0;
      for (const auto& pt : pod.preferred_node_terms) {
        if (pt.weight != 0 && node_term_matches(pt.term, node.spec.labels, node.name_id, in))
          s += pt.weight;
      }
      raw[i] = s;
      max = std::max(max, s);
    }
    if (max > 0) {
      for (std::size_t i = 0; i < n; ++i)
        totals[i] += raw[i] * kMaxNodeScore / max * kWeightNodeAffinity;
    }
  }
  // NodeResourcesFit (LeastAllocated) and NodeResourcesBalancedAllocation.
  for (std::size_t i = 0; i < n; ++i) {
    const NodeInfo& node = snap_.node(nodes[i]);
    const Resources& alloc = node.spec.allocatable;
    std::int64_t sum = 0, weights = 0;
    if (alloc.milli_cpu != 0) {
      sum += least_requested(node.nonzero_cpu + pod.nonzero_cpu, alloc.milli_cpu);
      ++weights;
    }
    if (alloc.memory != 0) {
      sum += least_requested(node.nonzero_memory + pod.nonzero_memory, alloc.memory);
      ++weights;
    }
    totals[i] += (weights == 0 ? 0 : sum / weights) * kWeightFit;

    double fractions[2];
    int nf = 0;
    if (alloc.milli_cpu != 0) {
      fractions[nf++] =
          std::min(1.0, static_cast<double>(node.requested.milli_cpu + pod.requests.milli_cpu) /
                            static_cast<double>(alloc.milli_cpu));
    }
    if (alloc.memory != 0) {
      fractions[nf++] =
          std::min(1.0, static_cast<double>(node.requested.memory + pod.requests.memory) /
                            static_cast<double>(alloc.memory));
    }
    double std_dev = nf == 2 ? std::abs((fractions[0] - fractions[1]) / 2) : 0.0;
    totals[i] += static_cast<std::int64_t>((1 - std_dev) * kMaxNodeScore) * kWeightBalanced;
  }
  // InterPodAffinity: preferred terms of the pod and terms of existing pods.
  bool pod_has_preferred = !pod.pref_affinity.empty() || !pod.pref_anti_affinity.empty();
  if (pod_has_preferred || snap_.pods_with_affinity() > 0) {
    std::unordered_map<std::uint32_t, Counts> topo;  // key -> value -> score
    auto add_nodes = [&](std::uint32_t key,
                         const std::unordered_map<std::uint32_t, std::uint32_t>& on,
                         std::int64_t weight) {
      if (weight == 0) return;
      Counts* m = nullptr;
      for (const auto& [node, c] : on) {
        std::uint32_t v = label_value(snap_.node(node).spec.labels, key);
        if (v == kNoValue) continue;
        if (m == nullptr) m = &topo[key];
        (*m)[v] += weight * c;
      }
    };
    if (pod_has_preferred) {
      for (const auto& g : snap_.pod_groups()) {
        if (g.count == 0) continue;
        for (const auto& t : pod.pref_affinity) {
          if (snap_.term_matches(t, g.ns_id, g.labels))
            add_nodes(t.topology_key, g.nodes, t.weight);
        }
        for (const auto& t : pod.pref_anti_affinity) {
          if (snap_.term_matches(t, g.ns_id, g.labels))
            add_nodes(t.topology_key, g.nodes, -std::int64_t{t.weight});
        }
      }
    }
    for (const auto& tg : snap_.term_groups()) {
      if (tg.count == 0 || tg.kind == TermGroup::Kind::kAntiAffinity) continue;
      if (!snap_.term_matches(tg.term, pod.ns_id, pod.labels)) continue;
      std::int64_t w = 0;
      switch (tg.kind) {
        case TermGroup::Kind::kAffinity:
          w = kHardPodAffinityWeight;
          break;
        case TermGroup::Kind::kPrefAffinity:
          w = tg.term.weight;
          break;
        case TermGroup::Kind::kPrefAntiAffinity:
          w = -std::int64_t{tg.term.weight};
          break;
        default:
          break;
      }
      add_nodes(tg.term.topology_key, tg.nodes, w);
    }
    if (!topo.empty()) {
      std::int64_t min = std::numeric_limits<std::int64_t>::max();
      std::int64_t max = std::numeric_limits<std::int64_t>::min();
      for (std::size_t i = 0; i < n; ++i) {
        const Labels& labels = snap_.node(nodes[i]).spec.labels;
        std::int64_t s = 0;
        for (const auto& [key, values] : topo) {
          std::uint32_t v = label_value(labels, key);
          if (v != kNoValue) s += count_of(values, v);
        }
        raw[i] = s;
        min = std::min(min, s);
        max = std::max(max, s);
      }
      std::int64_t diff = max - min;
      if (diff > 0) {
        for (std::size_t i = 0; i < n; ++i) {
          double f = static_cast<double>(kMaxNodeScore) *
                     (static_cast<double>(raw[i] - min) / static_cast<double>(diff));
          totals[i] += static_cast<std::int64_t>(f) * kWeightInterPod;
        }
      }
    }
  }
  // PodTopologySpread: ScheduleAnyway constraints.
  std::vector<const SpreadConstraint*> soft;
  std::vector<std::uint32_t> keys;
  for (const auto& c : pod.spread) {
    if (c.do_not_schedule) continue;
    soft.push_back(&c);
    if (std::find(keys.begin(), keys.end(), c.topology_key) == keys.end())
      keys.push_back(c.topology_key);
  }
  if (!soft.empty()) {
    std::vector<char> ignored(n, 0);
    std::size_t num_ignored = 0;
    std::vector<Counts> counts(
        soft.size());  // per constraint: value -> pods (domains of feasible nodes)
    std::vector<double> weight(soft.size());
    for (std::size_t i = 0; i < n; ++i) {
      const Labels& labels = snap_.node(nodes[i]).spec.labels;
      if (!has_all_keys(labels, keys)) {
        ignored[i] = 1;
        ++num_ignored;
        continue;
      }
      for (std::size_t c = 0; c < soft.size(); ++c) {
        if (soft[c]->topology_key == hostname_key_) continue;
        counts[c].emplace(label_value(labels, soft[c]->topology_key), 0);
      }
    }
    std::vector<std::vector<const PodGroup*>> matching(soft.size());
    for (std::size_t c = 0; c < soft.size(); ++c) {
      std::size_t size =
          soft[c]->topology_key == hostname_key_ ? n - num_ignored : counts[c].size();
      weight[c] = std::log(static_cast<double>(size + 2));
      for (const auto& g : snap_.pod_groups()) {
        if (g.count == 0 || g.terminating || g.ns_id != pod.ns_id ||
            !soft[c]->selector.matches(g.labels))
          continue;
        matching[c].push_back(&g);
        if (soft[c]->topology_key == hostname_key_) continue;
        for (const auto& [node, cnt] : g.nodes) {
          const NodeInfo& nn = snap_.node(node);
          if (!nn.live || !has_all_keys(nn.spec.labels, keys)) continue;
          if (soft[c]->honor_node_affinity &&
              !pod_matches_node_selector(pod, nn.spec.labels, nn.name_id, in))
            continue;
          if (soft[c]->honor_taints && !tolerates_hard_taints(pod, nn)) continue;
          auto it = counts[c].find(label_value(nn.spec.labels, soft[c]->topology_key));
          if (it != counts[c].end()) it->second += cnt;
        }
      }
    }
    std::int64_t min = std::numeric_limits<std::int64_t>::max(), max = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (ignored[i]) continue;
      const NodeInfo& node = snap_.node(nodes[i]);
      double s = 0;
      for (std::size_t c = 0; c < soft.size(); ++c) {
        std::int64_t cnt = 0;
        if (soft[c]->topology_key == hostname_key_) {
          for (const auto* g : matching[c]) {
            auto it = g->nodes.find(node.index);
            if (it != g->nodes.end()) cnt += it->second;
          }
        } else {
          cnt = count_of(counts[c], label_value(node.spec.labels, soft[c]->topology_key));
        }
        s += static_cast<double>(cnt) * weight[c] + static_cast<double>(soft[c]->max_skew - 1);
      }
      raw[i] = static_cast<std::int64_t>(std::round(s));
      min = std::min(min, raw[i]);
      max = std::max(max, raw[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (ignored[i]) continue;
      std::int64_t s = max == 0 ? kMaxNodeScore : kMaxNodeScore * (max + min - raw[i]) / max;
      totals[i] += s * kWeightSpread;
    }
  }
}

// --- Schedule ---

ScheduleResult Algorithm::schedule(const PodInfo& pod) {
  ScheduleResult r;
  const auto& live = snap_.live_nodes();
  const std::size_t all = live.size();
  r.num_all_nodes = all;
  if (all == 0) {
    r.message = "no nodes available to schedule pods";
    return r;
  }
  CycleState& st = *state_;
  prefilter(pod, st);
  if (!st.volumes.error.empty()) {
    // As upstream's FitError with a PreFilter message; every node is unresolvable.
    r.message = "0/" + std::to_string(all) + " nodes are available: " + st.volumes.error + ".";
    r.statuses.resize(all);
    for (std::size_t i = 0; i < all; ++i) {
      r.statuses[i].node = live[i];
      r.statuses[i].unresolvable = true;
    }
    r.evaluated = all;
    return r;
  }
  const std::size_t want = num_feasible_nodes_to_find(all);
  feasible_.clear();
  statuses_.clear();  // reused across cycles: most are discarded when a node fits
  NodeStatus status;
  std::size_t processed = 0;
  std::size_t start = next_start_ % all;
  for (; processed < all && feasible_.size() < want; ++processed) {
    std::size_t i = start + processed;
    if (i >= all) i -= all;
    const NodeInfo& n = snap_.node(live[i]);
    if (filter(pod, st, n, status)) {
      feasible_.push_back(n.index);
    } else {
      statuses_.push_back(status);
    }
  }
  next_start_ = (start + processed) % all;
  r.evaluated = processed;
  r.feasible = feasible_.size();
  if (feasible_.empty()) {
    r.statuses = statuses_;
    r.message = fit_error(all, r.statuses);
    return r;
  }
  std::size_t best = 0;
  if (feasible_.size() > 1) {
    score(pod, feasible_, totals_);
    std::int64_t best_score = std::numeric_limits<std::int64_t>::min();
    std::uint64_t ties = 0;
    for (std::size_t i = 0; i < feasible_.size(); ++i) {
      if (totals_[i] > best_score) {
        best_score = totals_[i];
        best = i;
        ties = 1;
      } else if (totals_[i] == best_score) {
        ++ties;
        if (next_random() % ties == 0) best = i;
      }
    }
  }
  r.scheduled = true;
  r.node = feasible_[best];
  r.node_name = snap_.node(r.node).name;
  return r;
}

std::optional<NodeStatus> Algorithm::filter_node(const PodInfo& pod, std::string_view node) {
  const NodeInfo* n = snap_.find_node(node);
  if (n == nullptr) return std::nullopt;
  prefilter(pod, *state_);
  NodeStatus st;
  if (filter(pod, *state_, *n, st)) return std::nullopt;
  return st;
}

std::vector<std::pair<std::string, std::int64_t>> Algorithm::score_nodes(const PodInfo& pod) {
  prefilter(pod, *state_);
  std::vector<std::uint32_t> nodes;
  NodeStatus st;
  for (auto idx : snap_.live_nodes()) {
    if (filter(pod, *state_, snap_.node(idx), st)) nodes.push_back(idx);
  }
  std::vector<std::int64_t> totals;
  score(pod, nodes, totals);
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    out.emplace_back(snap_.node(nodes[i]).name, totals[i]);
  return out;
}

// --- messages ---

std::string Algorithm::reason_text(const NodeStatus& s, const NodeStatus::Item& item) const {
  switch (item.reason) {
    case Reason::kNodeName:
      return "node(s) didn't match the requested node name";
    case Reason::kUnschedulable:
      return "node(s) were unschedulable";
    case Reason::kTaint: {
      const auto& taints = snap_.node(s.node).spec.taints;
      if (item.arg < taints.size()) {
        return "node(s) had untolerated taint {" + taints[item.arg].key + ": " +
               taints[item.arg].value + "}";
      }
      return "node(s) had untolerated taint(s)";
    }
    case Reason::kNodeAffinity:
      return "node(s) didn't match Pod's node affinity/selector";
    case Reason::kNodePorts:
      return "node(s) didn't have free ports for the requested pod ports";
    case Reason::kTooManyPods:
      return "Too many pods";
    case Reason::kInsufficientCpu:
      return "Insufficient cpu";
    case Reason::kInsufficientMemory:
      return "Insufficient memory";
    case Reason::kInsufficientEphemeral:
      return "Insufficient ephemeral-storage";
    case Reason::kInsufficientScalar:
      return "Insufficient " + snap_.interner().str(item.arg);
    case Reason::kSpreadMissingLabel:
      return "node(s) didn't match pod topology spread constraints (missing required label)";
    case Reason::kSpread:
      return "node(s) didn't match pod topology spread constraints";
    case Reason::kAffinity:
      return "node(s) didn't match pod affinity rules";
    case Reason::kAntiAffinity:
      return "node(s) didn't match pod anti-affinity rules";
    case Reason::kExistingAntiAffinity:
      return "node(s) didn't satisfy existing pods anti-affinity rules";
    case Reason::kVolumeNodeConflict:
      return "node(s) had volume node affinity conflict";
    case Reason::kVolumeMissing:
      return "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
    case Reason::kNoVictims:
      return "No preemption victims found for incoming pod";
    case Reason::kNotHelpful:
      return "Preemption is not helpful for scheduling";
  }
  return "unknown";
}

std::string Algorithm::fit_error(std::size_t num_all_nodes,
                                 const std::vector<NodeStatus>& statuses) const {
  std::map<std::string, std::size_t> reasons;
  for (const auto& s : statuses) {
    for (std::uint8_t i = 0; i < s.count; ++i) ++reasons[reason_text(s, s.items[i])];
  }
  std::vector<std::string> parts;
  parts.reserve(reasons.size());
  for (const auto& [text, count] : reasons) parts.push_back(std::to_string(count) + " " + text);
  std::sort(parts.begin(), parts.end());  // Go's sort.Strings: byte order
  std::string msg = "0/" + std::to_string(num_all_nodes) + " nodes are available";
  msg += ":";
  if (!parts.empty()) {
    msg += " ";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) msg += ", ";
      msg += parts[i];
    }
    msg += ".";
  }
  return msg;
}

// --- Preemption ---

PreemptionResult Algorithm::preempt(const PodInfo& pod, const ScheduleResult& failure) {
  PreemptionResult r;
  if (failure.scheduled || failure.num_all_nodes == 0) return r;
  if (pod.preempt_never) {
    r.message = "preemption: not eligible due to preemptionPolicy=Never.";
    return r;
  }
  // Victims chosen earlier are still terminating on the nominated node: wait for them.
  if (!pod.nominated_node.empty()) {
    if (const NodeInfo* n = snap_.find_node(pod.nominated_node)) {
      for (const PodInfo* p : n->pods) {
        if (p->terminating && p->priority < pod.priority) {
          r.message = "preemption: not eligible due to a terminating pod on the nominated node.";
          return r;
        }
      }
    }
  }
  struct Candidate {
    std::uint32_t node;
    std::vector<PodPtr> victims;
    std::int64_t highest;
    std::int64_t sum;
  };
  std::vector<Candidate> candidates;
  std::vector<NodeStatus> statuses;
  const std::size_t max_candidates =
      std::max<std::size_t>(100, failure.num_all_nodes / 10);  // upstream's 10%, at least 100

  auto fits = [&](const NodeInfo& n, NodeStatus& st) {
    prefilter(pod, *state_);
    return filter(pod, *state_, n, st);
  };
  for (const auto& s : failure.statuses) {
    if (candidates.size() >= max_candidates) break;
    NodeStatus out;
    out.node = s.node;
    if (s.unresolvable) {
      out.unresolvable = true;
      out.add(Reason::kNotHelpful);
      statuses.push_back(out);
      continue;
    }
    const NodeInfo& n = snap_.node(s.node);
    const std::string node_name = n.name;
    std::vector<PodPtr> potential;
    for (const PodInfo* p : n.pods) {
      if (p->priority < pod.priority) potential.push_back(snap_.pod(p->uid));
    }
    if (potential.empty()) {
      out.unresolvable = true;
      out.add(Reason::kNoVictims);
      statuses.push_back(out);
      continue;
    }
    for (const auto& v : potential) snap_.remove_pod(v->uid);
    NodeStatus st;
    if (!fits(snap_.node(s.node), st)) {
      for (const auto& v : potential) snap_.add_pod(v, node_name);
      statuses.push_back(st);
      continue;
    }
    // Reprieve the most important pods first while the pod still fits.
    std::sort(potential.begin(), potential.end(), [](const PodPtr& a, const PodPtr& b) {
      if (a->priority != b->priority) return a->priority > b->priority;
      return a->created_ns < b->created_ns;
    });
    Candidate c{s.node, {}, std::numeric_limits<std::int64_t>::min(), 0};
    for (const auto& v : potential) {
      snap_.add_pod(v, node_name);
      if (!fits(snap_.node(s.node), st)) {
        snap_.remove_pod(v->uid);
        c.victims.push_back(v);
        c.highest = std::max<std::int64_t>(c.highest, v->priority);
        c.sum += v->priority;
      }
    }
    for (const auto& v : c.victims) snap_.add_pod(v, node_name);
    if (c.victims.empty()) {
      // Fits without evicting anything (the cluster changed since the failure).
      c.highest = std::numeric_limits<std::int64_t>::min();
    }
    candidates.push_back(std::move(c));
  }
  if (candidates.empty()) {
    r.message = "preemption: " + fit_error(statuses.size(), statuses);
    return r;
  }
  // pickOneNodeForPreemption: lowest highest-priority victim, then lowest priority sum, then
  // fewest victims, then the first.
  std::size_t best = 0;
  for (std::size_t i = 1; i < candidates.size(); ++i) {
    const auto& a = candidates[i];
    const auto& b = candidates[best];
    if (a.highest != b.highest) {
      if (a.highest < b.highest) best = i;
      continue;
    }
    if (a.sum != b.sum) {
      if (a.sum < b.sum) best = i;
      continue;
    }
    if (a.victims.size() < b.victims.size()) best = i;
  }
  r.nominated = true;
  r.node_name = snap_.node(candidates[best].node).name;
  r.victims = std::move(candidates[best].victims);
  return r;
}

}  // namespace podwarp::scheduler
