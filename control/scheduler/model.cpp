#include "scheduler/model.h"

#include <algorithm>
#include <charconv>

#include "podwarp/quantity.h"
#include "podwarp/time.h"

namespace podwarp::scheduler {

namespace {

constexpr std::int64_t kDefaultMilliCpu = 100;                // upstream DefaultMilliCPURequest
constexpr std::int64_t kDefaultMemory = 200LL * 1024 * 1024;  // upstream DefaultMemoryRequest

const json::object* as_object(const json::value* v) { return v ? v->if_object() : nullptr; }
const json::array* as_array(const json::value* v) { return v ? v->if_array() : nullptr; }

std::string_view str_of(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  return it->value().get_string();
}

const json::value* field(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  auto it = o->find(key);
  return it == o->end() ? nullptr : &it->value();
}

std::int64_t int_of(const json::value* v, std::int64_t fallback) {
  if (v == nullptr) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  return fallback;
}

bool parse_int64(std::string_view s, std::int64_t& out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

Toleration::Effect parse_effect(std::string_view e) {
  if (e == "NoSchedule") return Toleration::Effect::kNoSchedule;
  if (e == "PreferNoSchedule") return Toleration::Effect::kPreferNoSchedule;
  if (e == "NoExecute") return Toleration::Effect::kNoExecute;
  return Toleration::Effect::kAll;
}

void add_scalar(Resources& r, std::uint32_t name, std::int64_t v) {
  for (auto& [n, amount] : r.scalar) {
    if (n == name) {
      amount += v;
      return;
    }
  }
  r.scalar.emplace_back(name, v);
}

void max_into(Resources& r, const Resources& o) {
  r.milli_cpu = std::max(r.milli_cpu, o.milli_cpu);
  r.memory = std::max(r.memory, o.memory);
  r.ephemeral = std::max(r.ephemeral, o.ephemeral);
  for (const auto& [n, v] : o.scalar) {
    bool found = false;
    for (auto& [m, w] : r.scalar) {
      if (m == n) {
        w = std::max(w, v);
        found = true;
      }
    }
    if (!found) r.scalar.emplace_back(n, v);
  }
}

// Reads a ResourceList ({"cpu": "100m", ...}).
Resources read_resources(const json::object* list, Interner& in, std::int64_t* pods = nullptr) {
  Resources r;
  if (list == nullptr) return r;
  for (const auto& kv : *list) {
    auto q = Quantity::from_json(kv.value());
    if (!q) continue;
    std::string_view name = kv.key();
    if (name == "cpu") {
      r.milli_cpu = q->milli_value();
    } else if (name == "memory") {
      r.memory = q->value();
    } else if (name == "ephemeral-storage") {
      r.ephemeral = q->value();
    } else if (name == "pods") {
      if (pods != nullptr) *pods = q->value();
    } else {
      add_scalar(r, in.intern(name), q->value());
    }
  }
  return r;
}

std::vector<NodeRequirement> compile_node_requirements(const json::value* exprs, Interner& in,
                                                       bool fields, bool& invalid) {
  std::vector<NodeRequirement> out;
  const json::array* arr = as_array(exprs);
  if (arr == nullptr) return out;
  for (const auto& e : *arr) {
    const json::object* o = e.if_object();
    if (o == nullptr) {
      invalid = true;
      continue;
    }
    NodeRequirement r;
    std::string_view key = str_of(*o, "key");
    if (fields && key != "metadata.name") invalid = true;
    r.key = in.intern(key);
    std::string_view op = str_of(*o, "operator");
    if (op == "In")
      r.op = NodeRequirement::Op::kIn;
    else if (op == "NotIn")
      r.op = NodeRequirement::Op::kNotIn;
    else if (op == "Exists")
      r.op = NodeRequirement::Op::kExists;
    else if (op == "DoesNotExist")
      r.op = NodeRequirement::Op::kDoesNotExist;
    else if (op == "Gt")
      r.op = NodeRequirement::Op::kGt;
    else if (op == "Lt")
      r.op = NodeRequirement::Op::kLt;
    else
      invalid = true;
    if (const json::array* vals = as_array(field(o, "values"))) {
      for (const auto& v : *vals) {
        if (!v.is_string()) continue;
        if (r.op == NodeRequirement::Op::kGt || r.op == NodeRequirement::Op::kLt) {
          if (!parse_int64(v.get_string(), r.number) || vals->size() != 1) r.invalid = true;
        } else {
          r.values.push_back(in.intern(v.get_string()));
        }
      }
      if ((r.op == NodeRequirement::Op::kGt || r.op == NodeRequirement::Op::kLt) && vals->empty())
        r.invalid = true;
    } else if (r.op == NodeRequirement::Op::kGt || r.op == NodeRequirement::Op::kLt) {
      r.invalid = true;
    }
    std::sort(r.values.begin(), r.values.end());
    out.push_back(std::move(r));
  }
  return out;
}

bool requirement_matches(const NodeRequirement& r, std::uint32_t value, const Interner& in) {
  if (r.invalid) return false;
  auto has = [&] { return std::binary_search(r.values.begin(), r.values.end(), value); };
  switch (r.op) {
    case NodeRequirement::Op::kIn:
      return value != kNoValue && has();
    case NodeRequirement::Op::kNotIn:
      return value == kNoValue || !has();
    case NodeRequirement::Op::kExists:
      return value != kNoValue;
    case NodeRequirement::Op::kDoesNotExist:
      return value == kNoValue;
    case NodeRequirement::Op::kGt:
    case NodeRequirement::Op::kLt: {
      if (value == kNoValue) return false;
      std::int64_t have = 0;
      if (!parse_int64(in.str(value), have)) return false;
      return r.op == NodeRequirement::Op::kGt ? have > r.number : have < r.number;
    }
  }
  return false;
}

AffinityTerm compile_affinity_term(const json::value& t, const PodInfo& pod, Interner& in,
                                   bool weighted) {
  AffinityTerm term;
  const json::object* o = t.if_object();
  if (weighted && o != nullptr) {
    term.weight = static_cast<std::int32_t>(int_of(field(o, "weight"), 0));
    o = as_object(field(o, "podAffinityTerm"));
  }
  if (o == nullptr) return term;  // null selector: matches nothing
  term.selector = compile_selector(field(o, "labelSelector"), in);
  term.topology_key = in.intern(str_of(*o, "topologyKey"));
  if (const json::array* nss = as_array(field(o, "namespaces"))) {
    for (const auto& n : *nss) {
      if (n.is_string()) term.namespaces.push_back(in.intern(n.get_string()));
    }
  }
  const json::value* nssel = field(o, "namespaceSelector");
  if (nssel != nullptr && nssel->is_object()) {
    term.has_ns_selector = true;
    term.ns_selector = compile_selector(nssel, in);
  }
  if (term.namespaces.empty() && !term.has_ns_selector) term.namespaces.push_back(pod.ns_id);
  std::sort(term.namespaces.begin(), term.namespaces.end());
  term.namespaces.erase(std::unique(term.namespaces.begin(), term.namespaces.end()),
                        term.namespaces.end());
  return term;
}

void compile_affinity_list(const json::value* list, const PodInfo& pod, Interner& in, bool weighted,
                           std::vector<AffinityTerm>& out) {
  if (const json::array* arr = as_array(list)) {
    for (const auto& t : *arr) out.push_back(compile_affinity_term(t, pod, in, weighted));
  }
}

void append_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

}  // namespace

NodeTerm compile_node_term(const json::value& t, Interner& in) {
  NodeTerm term;
  const json::object* o = t.if_object();
  if (o == nullptr) {
    term.invalid = true;
    return term;
  }
  term.expressions =
      compile_node_requirements(field(o, "matchExpressions"), in, false, term.invalid);
  term.fields = compile_node_requirements(field(o, "matchFields"), in, true, term.invalid);
  return term;
}

// --- Interner ---

std::uint32_t Interner::intern(std::string_view s) {
  auto it = ids_.find(s);
  if (it != ids_.end()) return it->second;
  auto id = static_cast<std::uint32_t>(strings_.size());
  strings_.emplace_back(s);
  ids_.emplace(std::string(s), id);
  return id;
}

std::uint32_t Interner::find(std::string_view s) const {
  auto it = ids_.find(s);
  return it == ids_.end() ? kNoValue : it->second;
}

Labels compile_labels(const json::value* labels_obj, Interner& in) {
  Labels out;
  const json::object* o = as_object(labels_obj);
  if (o == nullptr) return out;
  out.reserve(o->size());
  for (const auto& kv : *o) {
    std::string_view v = kv.value().is_string() ? std::string_view(kv.value().get_string()) : "";
    out.emplace_back(in.intern(kv.key()), in.intern(v));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// --- Selector ---

bool Selector::matches(const Labels& labels) const {
  if (null || invalid) return false;
  for (const auto& r : requirements) {
    std::uint32_t v = label_value(labels, r.key);
    bool ok = false;
    switch (r.op) {
      case Op::kIn:
        ok = v != kNoValue && std::binary_search(r.values.begin(), r.values.end(), v);
        break;
      case Op::kNotIn:
        ok = v == kNoValue || !std::binary_search(r.values.begin(), r.values.end(), v);
        break;
      case Op::kExists:
        ok = v != kNoValue;
        break;
      case Op::kDoesNotExist:
        ok = v == kNoValue;
        break;
    }
    if (!ok) return false;
  }
  return true;
}

void Selector::append_signature(std::string& out) const {
  out.push_back(null ? 'N' : (invalid ? 'I' : 'S'));
  append_u32(out, static_cast<std::uint32_t>(requirements.size()));
  for (const auto& r : requirements) {
    append_u32(out, r.key);
    out.push_back(static_cast<char>(r.op));
    append_u32(out, static_cast<std::uint32_t>(r.values.size()));
    for (auto v : r.values) append_u32(out, v);
  }
}

Selector compile_selector(const json::value* selector, Interner& in) {
  Selector s;
  if (selector == nullptr || selector->is_null()) return s;
  s.null = false;
  const json::object* o = selector->if_object();
  if (o == nullptr) {
    s.invalid = true;
    return s;
  }
  if (const json::object* ml = as_object(field(o, "matchLabels"))) {
    for (const auto& kv : *ml) {
      if (!kv.value().is_string()) {
        s.invalid = true;
        continue;
      }
      s.requirements.push_back(
          {in.intern(kv.key()), Selector::Op::kIn, {in.intern(kv.value().get_string())}});
    }
  }
  if (const json::array* me = as_array(field(o, "matchExpressions"))) {
    for (const auto& e : *me) {
      const json::object* eo = e.if_object();
      if (eo == nullptr) {
        s.invalid = true;
        continue;
      }
      Selector::Requirement r{in.intern(str_of(*eo, "key")), Selector::Op::kIn, {}};
      std::string_view op = str_of(*eo, "operator");
      if (op == "In")
        r.op = Selector::Op::kIn;
      else if (op == "NotIn")
        r.op = Selector::Op::kNotIn;
      else if (op == "Exists")
        r.op = Selector::Op::kExists;
      else if (op == "DoesNotExist")
        r.op = Selector::Op::kDoesNotExist;
      else
        s.invalid = true;
      if (const json::array* vals = as_array(field(eo, "values"))) {
        for (const auto& v : *vals) {
          if (v.is_string()) r.values.push_back(in.intern(v.get_string()));
        }
      }
      if ((r.op == Selector::Op::kIn || r.op == Selector::Op::kNotIn) && r.values.empty())
        s.invalid = true;
      std::sort(r.values.begin(), r.values.end());
      s.requirements.push_back(std::move(r));
    }
  }
  return s;
}

// --- taints ---

bool tolerates(const Toleration& t, const Taint& taint) {
  if (t.effect != Toleration::Effect::kAll && t.effect != taint.effect) return false;
  if (!t.key.empty() && t.key != taint.key) return false;
  if (t.exists) return true;
  if (t.key.empty()) return false;  // an empty key requires Exists
  return t.value == taint.value;
}

bool tolerates_any(const std::vector<Toleration>& ts, const Taint& taint) {
  for (const auto& t : ts) {
    if (tolerates(t, taint)) return true;
  }
  return false;
}

// --- Resources ---

std::int64_t Resources::scalar_of(std::uint32_t name) const {
  for (const auto& [n, v] : scalar) {
    if (n == name) return v;
  }
  return 0;
}

void Resources::add(const Resources& r) {
  milli_cpu += r.milli_cpu;
  memory += r.memory;
  ephemeral += r.ephemeral;
  for (const auto& [n, v] : r.scalar) add_scalar(*this, n, v);
}

void Resources::sub(const Resources& r) {
  milli_cpu -= r.milli_cpu;
  memory -= r.memory;
  ephemeral -= r.ephemeral;
  for (const auto& [n, v] : r.scalar) add_scalar(*this, n, -v);
}

bool Resources::empty() const {
  if (milli_cpu != 0 || memory != 0 || ephemeral != 0) return false;
  for (const auto& [n, v] : scalar) {
    if (v != 0) return false;
  }
  return true;
}

void AffinityTerm::append_signature(std::string& out) const {
  append_u32(out, static_cast<std::uint32_t>(weight));
  append_u32(out, topology_key);
  append_u32(out, static_cast<std::uint32_t>(namespaces.size()));
  for (auto n : namespaces) append_u32(out, n);
  out.push_back(has_ns_selector ? 'Y' : 'N');
  if (has_ns_selector) ns_selector.append_signature(out);
  selector.append_signature(out);
}

// --- compile ---

PodPtr compile_pod(const json::value& pod, Interner& in) {
  auto p = std::make_shared<PodInfo>();
  const json::object* meta = as_object(find_path(pod, {"metadata"}));
  const json::object* spec = as_object(find_path(pod, {"spec"}));
  if (meta != nullptr) {
    p->ns = str_of(*meta, "namespace");
    p->name = str_of(*meta, "name");
    p->uid = str_of(*meta, "uid");
    p->labels = compile_labels(field(meta, "labels"), in);
    p->terminating =
        field(meta, "deletionTimestamp") != nullptr && !field(meta, "deletionTimestamp")->is_null();
    if (auto t = parse_rfc3339(str_of(*meta, "creationTimestamp"))) {
      p->created_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count();
    }
  }
  p->key = p->ns + "/" + p->name;
  if (p->uid.empty()) p->uid = p->key;
  p->ns_id = in.intern(p->ns);
  p->nominated_node = get_string(pod, {"status", "nominatedNodeName"});
  std::string_view phase = get_string(pod, {"status", "phase"});
  p->finished = phase == "Succeeded" || phase == "Failed";
  if (spec == nullptr) return p;

  p->node_name = str_of(*spec, "nodeName");
  p->scheduler_name = str_of(*spec, "schedulerName");
  p->priority = static_cast<std::int32_t>(int_of(field(spec, "priority"), 0));
  p->preempt_never = str_of(*spec, "preemptionPolicy") == "Never";

  // Requests: the sum of containers, then init containers (sidecars with restartPolicy
  // Always run alongside and add up; the others run one at a time), then overhead.
  Resources sum;
  std::int64_t nz_cpu = 0, nz_mem = 0;
  auto container_requests = [&](const json::value& c, std::int64_t& cpu0, std::int64_t& mem0) {
    Resources r = read_resources(as_object(find_path(c, {"resources", "requests"})), in);
    cpu0 = r.milli_cpu != 0 ? r.milli_cpu : kDefaultMilliCpu;
    mem0 = r.memory != 0 ? r.memory : kDefaultMemory;
    return r;
  };
  if (const json::array* cs = as_array(field(spec, "containers"))) {
    for (const auto& c : *cs) {
      std::int64_t c0 = 0, m0 = 0;
      sum.add(container_requests(c, c0, m0));
      nz_cpu += c0;
      nz_mem += m0;
      if (const json::array* ports = as_array(find_path(c, {"ports"}))) {
        for (const auto& port : *ports) {
          std::int64_t hp = get_int(port, {"hostPort"}, 0);
          if (hp <= 0) continue;
          HostPort h;
          h.port = static_cast<std::int32_t>(hp);
          std::string_view proto = get_string(port, {"protocol"}, "TCP");
          h.protocol = proto == "UDP" ? 1 : (proto == "SCTP" ? 2 : 0);
          std::string_view ip = get_string(port, {"hostIP"});
          if (!ip.empty() && ip != "0.0.0.0") h.ip = in.intern(ip);
          p->ports.push_back(h);
        }
      }
    }
  }
  Resources init_max, sidecars;
  std::int64_t init_nz_cpu = 0, init_nz_mem = 0, side_nz_cpu = 0, side_nz_mem = 0;
  if (const json::array* ics = as_array(field(spec, "initContainers"))) {
    for (const auto& c : *ics) {
      std::int64_t c0 = 0, m0 = 0;
      Resources r = container_requests(c, c0, m0);
      if (get_string(c, {"restartPolicy"}) == "Always") {
        sum.add(r);
        nz_cpu += c0;
        nz_mem += m0;
        sidecars.add(r);
        side_nz_cpu += c0;
        side_nz_mem += m0;
        r = sidecars;
        c0 = side_nz_cpu;
        m0 = side_nz_mem;
      } else {
        r.add(sidecars);
        c0 += side_nz_cpu;
        m0 += side_nz_mem;
      }
      max_into(init_max, r);
      init_nz_cpu = std::max(init_nz_cpu, c0);
      init_nz_mem = std::max(init_nz_mem, m0);
    }
  }
  max_into(sum, init_max);
  nz_cpu = std::max(nz_cpu, init_nz_cpu);
  nz_mem = std::max(nz_mem, init_nz_mem);
  Resources overhead = read_resources(as_object(field(spec, "overhead")), in);
  sum.add(overhead);
  nz_cpu += overhead.milli_cpu;
  nz_mem += overhead.memory;
  p->requests = std::move(sum);
  p->nonzero_cpu = nz_cpu;
  p->nonzero_memory = nz_mem;

  if (const json::array* tols = as_array(field(spec, "tolerations"))) {
    for (const auto& t : *tols) {
      const json::object* o = t.if_object();
      if (o == nullptr) continue;
      Toleration tol;
      tol.key = str_of(*o, "key");
      tol.exists = str_of(*o, "operator") == "Exists";
      tol.value = str_of(*o, "value");
      tol.effect = parse_effect(str_of(*o, "effect"));
      p->tolerations.push_back(std::move(tol));
    }
  }
  p->node_selector = compile_labels(field(spec, "nodeSelector"), in);
  if (const json::array* vols = as_array(field(spec, "volumes"))) {
    for (const auto& v : *vols) {
      const json::object* pvc = as_object(find_path(v, {"persistentVolumeClaim"}));
      if (pvc == nullptr) continue;
      if (std::string_view claim = str_of(*pvc, "claimName"); !claim.empty())
        p->claims.emplace_back(claim);
    }
  }

  const json::object* aff = as_object(field(spec, "affinity"));
  if (const json::object* na = as_object(field(aff, "nodeAffinity"))) {
    if (const json::object* req =
            as_object(field(na, "requiredDuringSchedulingIgnoredDuringExecution"))) {
      p->has_required_node_affinity = true;
      if (const json::array* terms = as_array(field(req, "nodeSelectorTerms"))) {
        for (const auto& t : *terms) p->required_node_terms.push_back(compile_node_term(t, in));
      }
    }
    if (const json::array* pref =
            as_array(field(na, "preferredDuringSchedulingIgnoredDuringExecution"))) {
      for (const auto& t : *pref) {
        PreferredNodeTerm pt;
        pt.weight = static_cast<std::int32_t>(get_int(t, {"weight"}, 0));
        const json::value* pr = find_path(t, {"preference"});
        if (pr == nullptr) continue;
        pt.term = compile_node_term(*pr, in);
        p->preferred_node_terms.push_back(std::move(pt));
      }
    }
  }
  if (const json::object* pa = as_object(field(aff, "podAffinity"))) {
    compile_affinity_list(field(pa, "requiredDuringSchedulingIgnoredDuringExecution"), *p, in,
                          false, p->affinity);
    compile_affinity_list(field(pa, "preferredDuringSchedulingIgnoredDuringExecution"), *p, in,
                          true, p->pref_affinity);
  }
  if (const json::object* paa = as_object(field(aff, "podAntiAffinity"))) {
    compile_affinity_list(field(paa, "requiredDuringSchedulingIgnoredDuringExecution"), *p, in,
                          false, p->anti_affinity);
    compile_affinity_list(field(paa, "preferredDuringSchedulingIgnoredDuringExecution"), *p, in,
                          true, p->pref_anti_affinity);
  }
  if (const json::array* tsc = as_array(field(spec, "topologySpreadConstraints"))) {
    for (const auto& c : *tsc) {
      const json::object* o = c.if_object();
      if (o == nullptr) continue;
      SpreadConstraint sc;
      sc.max_skew = static_cast<std::int32_t>(int_of(field(o, "maxSkew"), 1));
      sc.topology_key = in.intern(str_of(*o, "topologyKey"));
      sc.do_not_schedule = str_of(*o, "whenUnsatisfiable") != "ScheduleAnyway";
      sc.selector = compile_selector(field(o, "labelSelector"), in);
      sc.min_domains = static_cast<std::int32_t>(int_of(field(o, "minDomains"), 0));
      sc.honor_node_affinity = str_of(*o, "nodeAffinityPolicy") != "Ignore";
      sc.honor_taints = str_of(*o, "nodeTaintsPolicy") == "Honor";
      // matchLabelKeys: the pod's own values of those keys join the selector.
      if (const json::array* mlk = as_array(field(o, "matchLabelKeys"))) {
        if (!sc.selector.null) {
          for (const auto& k : *mlk) {
            if (!k.is_string()) continue;
            std::uint32_t key = in.intern(k.get_string());
            std::uint32_t v = label_value(p->labels, key);
            if (v != kNoValue) sc.selector.requirements.push_back({key, Selector::Op::kIn, {v}});
          }
        }
      }
      p->spread.push_back(std::move(sc));
    }
  }
  return p;
}

NodeSpec compile_node(const json::value& node, Interner& in) {
  NodeSpec n;
  n.name = get_string(node, {"metadata", "name"});
  n.labels = compile_labels(find_path(node, {"metadata", "labels"}), in);
  const json::object* alloc = as_object(find_path(node, {"status", "allocatable"}));
  if (alloc == nullptr) alloc = as_object(find_path(node, {"status", "capacity"}));
  n.allocatable = read_resources(alloc, in, &n.allowed_pods);
  n.unschedulable = get_bool(node, {"spec", "unschedulable"});
  if (const json::array* taints = as_array(find_path(node, {"spec", "taints"}))) {
    for (const auto& t : *taints) {
      const json::object* o = t.if_object();
      if (o == nullptr) continue;
      Taint taint;
      taint.key = str_of(*o, "key");
      taint.value = str_of(*o, "value");
      taint.effect = parse_effect(str_of(*o, "effect"));
      if (taint.effect == Toleration::Effect::kAll) continue;  // invalid effect
      n.taints.push_back(std::move(taint));
    }
  }
  return n;
}

bool node_term_matches(const NodeTerm& term, const Labels& labels, std::uint32_t node_name_id,
                       const Interner& in) {
  if (term.invalid) return false;
  if (term.expressions.empty() && term.fields.empty()) return false;
  for (const auto& r : term.expressions) {
    if (!requirement_matches(r, label_value(labels, r.key), in)) return false;
  }
  for (const auto& r : term.fields) {
    if (!requirement_matches(r, node_name_id, in)) return false;
  }
  return true;
}

bool pod_matches_node_selector(const PodInfo& pod, const Labels& labels, std::uint32_t node_name_id,
                               const Interner& in) {
  for (const auto& [k, v] : pod.node_selector) {
    if (label_value(labels, k) != v) return false;
  }
  if (!pod.has_required_node_affinity) return true;
  for (const auto& t : pod.required_node_terms) {
    if (node_term_matches(t, labels, node_name_id, in)) return true;
  }
  return false;
}

}  // namespace podwarp::scheduler
