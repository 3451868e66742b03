#include "scheduler/snapshot.h"

#include <algorithm>

namespace podwarp::scheduler {

namespace {

void append_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void dec_node(std::unordered_map<std::uint32_t, std::uint32_t>& m, std::uint32_t node) {
  auto it = m.find(node);
  if (it == m.end()) return;
  if (--it->second == 0) m.erase(it);
}

}  // namespace

std::uint32_t Snapshot::node_index(const std::string& name, bool create) {
  auto it = node_by_name_.find(name);
  if (it != node_by_name_.end()) return it->second;
  if (!create) return kNoValue;
  std::uint32_t idx;
  if (!free_nodes_.empty()) {
    idx = free_nodes_.back();
    free_nodes_.pop_back();
    nodes_[idx] = NodeInfo{};
  } else {
    idx = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  NodeInfo& n = nodes_[idx];
  n.index = idx;
  n.name = name;
  n.name_id = interner_.intern(name);
  n.spec.name = name;
  node_by_name_.emplace(name, idx);
  return idx;
}

void Snapshot::rebuild_live() {
  live_.clear();
  for (const auto& n : nodes_) {
    if (n.live) live_.push_back(n.index);
  }
  ++node_epoch_;
}

void Snapshot::upsert_node(NodeSpec spec) {
  std::uint32_t idx = node_index(spec.name, true);
  NodeInfo& n = nodes_[idx];
  bool was_live = n.live;
  n.spec = std::move(spec);
  n.live = true;
  n.prefer_no_schedule_taints = 0;
  for (const auto& t : n.spec.taints) {
    if (t.effect == Toleration::Effect::kPreferNoSchedule) ++n.prefer_no_schedule_taints;
  }
  ++n.generation;
  if (!was_live) {
    rebuild_live();
  } else {
    ++node_epoch_;
  }
}

void Snapshot::remove_node(const std::string& name) {
  std::uint32_t idx = node_index(name, false);
  if (idx == kNoValue) return;
  NodeInfo& n = nodes_[idx];
  if (!n.pods.empty()) {
    // Keep a placeholder for the pods still bound to it.
    n.live = false;
    n.spec = NodeSpec{};
    n.spec.name = name;
    ++n.generation;
  } else {
    n.live = false;
    node_by_name_.erase(name);
    free_nodes_.push_back(idx);
  }
  rebuild_live();
}

const NodeInfo* Snapshot::find_node(std::string_view name) const {
  auto it = node_by_name_.find(std::string(name));
  return it == node_by_name_.end() ? nullptr : &nodes_[it->second];
}

std::uint32_t Snapshot::intern_group(const PodInfo& pod) {
  std::string key;
  key.reserve(4 + pod.labels.size() * 8);
  append_u32(key, pod.ns_id);
  key.push_back(pod.terminating ? 'T' : 'R');
  for (const auto& [k, v] : pod.labels) {
    append_u32(key, k);
    append_u32(key, v);
  }
  auto it = group_ids_.find(key);
  if (it != group_ids_.end()) return it->second;
  std::uint32_t id;
  if (!free_groups_.empty()) {
    id = free_groups_.back();
    free_groups_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(groups_.size());
    groups_.emplace_back();
  }
  PodGroup& g = groups_[id];
  g = PodGroup{};
  g.ns_id = pod.ns_id;
  g.terminating = pod.terminating;
  g.labels = pod.labels;
  g.key = key;
  group_ids_.emplace(std::move(key), id);
  return id;
}

std::uint32_t Snapshot::intern_term(TermGroup::Kind kind, const AffinityTerm& term) {
  std::string key;
  key.push_back(static_cast<char>(kind));
  term.append_signature(key);
  auto it = term_ids_.find(key);
  if (it != term_ids_.end()) return it->second;
  std::uint32_t id;
  if (!free_terms_.empty()) {
    id = free_terms_.back();
    free_terms_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(terms_.size());
    terms_.emplace_back();
  }
  TermGroup& t = terms_[id];
  t = TermGroup{};
  t.kind = kind;
  t.term = term;
  t.key = key;
  term_ids_.emplace(std::move(key), id);
  return id;
}

void Snapshot::add_pod(PodPtr pod, const std::string& node_name) {
  if (pod == nullptr || node_name.empty()) return;
  remove_pod(pod->uid);
  if (pod->finished) return;
  Assigned a;
  a.node = node_index(node_name, true);
  NodeInfo& n = nodes_[a.node];
  n.requested.add(pod->requests);
  n.nonzero_cpu += pod->nonzero_cpu;
  n.nonzero_memory += pod->nonzero_memory;
  n.used_ports.insert(n.used_ports.end(), pod->ports.begin(), pod->ports.end());
  n.pods.push_back(pod.get());
  ++n.generation;

  a.group = intern_group(*pod);
  PodGroup& g = groups_[a.group];
  ++g.count;
  ++g.nodes[a.node];

  auto add_terms = [&](TermGroup::Kind kind, const std::vector<AffinityTerm>& terms) {
    for (const auto& t : terms) {
      std::uint32_t id = intern_term(kind, t);
      ++terms_[id].count;
      ++terms_[id].nodes[a.node];
      a.terms.push_back(id);
    }
  };
  add_terms(TermGroup::Kind::kAffinity, pod->affinity);
  add_terms(TermGroup::Kind::kAntiAffinity, pod->anti_affinity);
  add_terms(TermGroup::Kind::kPrefAffinity, pod->pref_affinity);
  add_terms(TermGroup::Kind::kPrefAntiAffinity, pod->pref_anti_affinity);
  if (pod->has_pod_affinity_terms()) ++pods_with_affinity_;
  a.pod = std::move(pod);
  std::string uid = a.pod->uid;
  pods_.emplace(std::move(uid), std::move(a));
}

bool Snapshot::remove_pod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return false;
  Assigned& a = it->second;
  NodeInfo& n = nodes_[a.node];
  const PodInfo& pod = *a.pod;
  n.requested.sub(pod.requests);
  n.nonzero_cpu -= pod.nonzero_cpu;
  n.nonzero_memory -= pod.nonzero_memory;
  for (const auto& hp : pod.ports) {
    auto pit = std::find(n.used_ports.begin(), n.used_ports.end(), hp);
    if (pit != n.used_ports.end()) n.used_ports.erase(pit);
  }
  auto pit = std::find(n.pods.begin(), n.pods.end(), &pod);
  if (pit != n.pods.end()) n.pods.erase(pit);
  ++n.generation;
  PodGroup& g = groups_[a.group];
  --g.count;
  dec_node(g.nodes, a.node);
  if (g.count == 0) {  // recycle the slot (label sets like job or statefulset pod names are unique)
    group_ids_.erase(g.key);
    free_groups_.push_back(a.group);
  }
  for (auto t : a.terms) {
    TermGroup& tg = terms_[t];
    --tg.count;
    dec_node(tg.nodes, a.node);
    if (tg.count == 0) {
      term_ids_.erase(tg.key);
      free_terms_.push_back(t);
    }
  }
  if (pod.has_pod_affinity_terms()) --pods_with_affinity_;
  std::uint32_t node = a.node;
  pods_.erase(it);
  // A placeholder without pods goes away.
  NodeInfo& nn = nodes_[node];
  if (!nn.live && nn.pods.empty()) {
    node_by_name_.erase(nn.name);
    free_nodes_.push_back(node);
  }
  return true;
}

const NodeInfo* Snapshot::node_of_pod(const std::string& uid) const {
  auto it = pods_.find(uid);
  return it == pods_.end() ? nullptr : &nodes_[it->second.node];
}

PodPtr Snapshot::pod(const std::string& uid) const {
  auto it = pods_.find(uid);
  return it == pods_.end() ? nullptr : it->second.pod;
}

void Snapshot::set_namespace_labels(std::string_view ns, Labels labels) {
  ns_labels_[interner_.intern(ns)] = std::move(labels);
}

void Snapshot::remove_namespace(std::string_view ns) {
  std::uint32_t id = interner_.find(ns);
  if (id != kNoValue) ns_labels_.erase(id);
}

const Labels* Snapshot::namespace_labels(std::uint32_t ns_id) const {
  auto it = ns_labels_.find(ns_id);
  return it == ns_labels_.end() ? nullptr : &it->second;
}

bool Snapshot::term_matches(const AffinityTerm& term, std::uint32_t ns_id,
                            const Labels& labels) const {
  bool ns_ok = std::binary_search(term.namespaces.begin(), term.namespaces.end(), ns_id);
  if (!ns_ok && term.has_ns_selector) {
    if (term.ns_selector.requirements.empty() && !term.ns_selector.invalid) {
      ns_ok = true;  // {} selects every namespace
    } else {
      static const Labels kNone;
      const Labels* nl = namespace_labels(ns_id);
      ns_ok = term.ns_selector.matches(nl != nullptr ? *nl : kNone);
    }
  }
  return ns_ok && term.selector.matches(labels);
}

const std::unordered_map<std::uint32_t, std::uint32_t>& Snapshot::domains(std::uint32_t key) {
  if (domains_epoch_ != node_epoch_) {
    domains_.clear();
    domains_epoch_ = node_epoch_;
  }
  auto it = domains_.find(key);
  if (it != domains_.end()) return it->second;
  auto& m = domains_[key];
  for (auto idx : live_) {
    std::uint32_t v = label_value(nodes_[idx].spec.labels, key);
    if (v != kNoValue) ++m[v];
  }
  return m;
}

}  // namespace podwarp::scheduler
