#include "controllers/apps/daemonset_util.h"

#include <charconv>

namespace podwarp::apps {

bool tolerates(const json::value& t, const json::value& taint) {
  std::string_view t_effect = get_string(t, {"effect"});
  if (!t_effect.empty() && t_effect != get_string(taint, {"effect"})) return false;
  std::string_view t_key = get_string(t, {"key"});
  std::string_view op = get_string(t, {"operator"}, "Equal");
  if (!t_key.empty() && t_key != get_string(taint, {"key"})) return false;
  if (op == "Exists") return true;
  if (op == "Equal" || op.empty()) {
    if (t_key.empty()) return false;  // an empty key needs Exists
    return get_string(t, {"value"}) == get_string(taint, {"value"});
  }
  return false;
}

bool tolerates_taints(const json::value* tolerations, const json::value& node,
                      std::initializer_list<std::string_view> effects) {
  const json::value* taints = find_path(node, {"spec", "taints"});
  if (!taints || !taints->is_array()) return true;
  for (const json::value& taint : taints->get_array()) {
    std::string_view eff = get_string(taint, {"effect"});
    bool relevant = false;
    for (std::string_view e : effects) relevant = relevant || e == eff;
    if (!relevant) continue;
    bool ok = false;
    if (tolerations && tolerations->is_array()) {
      for (const json::value& t : tolerations->get_array()) {
        if (tolerates(t, taint)) {
          ok = true;
          break;
        }
      }
    }
    if (!ok) return false;
  }
  return true;
}

namespace {

bool requirement_matches(const json::value& req, std::string_view value, bool present) {
  std::string_view op = get_string(req, {"operator"});
  const json::value* vals = find_path(req, {"values"});
  auto in_values = [&] {
    if (!vals || !vals->is_array()) return false;
    for (const json::value& v : vals->get_array()) {
      if (v.is_string() && v.get_string() == value) return true;
    }
    return false;
  };
  auto as_int = [](std::string_view s, long long& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (op == "In") return present && in_values();
  if (op == "NotIn") return !present || !in_values();
  if (op == "Exists") return present;
  if (op == "DoesNotExist") return !present;
  if (op == "Gt" || op == "Lt") {
    if (!present || !vals || !vals->is_array() || vals->get_array().size() != 1 ||
        !vals->get_array()[0].is_string()) {
      return false;
    }
    long long a = 0, b = 0;
    if (!as_int(value, a) || !as_int(vals->get_array()[0].get_string(), b)) return false;
    return op == "Gt" ? a > b : a < b;
  }
  return false;
}

bool term_matches(const json::value& term, const json::value& node) {
  const json::value* exprs = find_path(term, {"matchExpressions"});
  const json::value* fields = find_path(term, {"matchFields"});
  bool any = false;
  if (exprs && exprs->is_array()) {
    const json::value* labels = find_path(node, {"metadata", "labels"});
    for (const json::value& e : exprs->get_array()) {
      any = true;
      std::string_view key = get_string(e, {"key"});
      const json::value* v =
          labels && labels->is_object() ? labels->get_object().if_contains(key) : nullptr;
      std::string_view value = v && v->is_string() ? std::string_view(v->get_string()) : "";
      if (!requirement_matches(e, value, v != nullptr)) return false;
    }
  }
  if (fields && fields->is_array()) {
    for (const json::value& f : fields->get_array()) {
      any = true;
      if (get_string(f, {"key"}) != "metadata.name") return false;
      if (!requirement_matches(f, get_string(node, {"metadata", "name"}), true)) return false;
    }
  }
  return any;  // an empty term matches nothing
}

}  // namespace

bool node_matches(const json::value& pod_spec, const json::value& node) {
  if (const json::value* sel = find_path(pod_spec, {"nodeSelector"}); sel && sel->is_object()) {
    const json::value* labels = find_path(node, {"metadata", "labels"});
    for (const auto& kv : sel->get_object()) {
      const json::value* v =
          labels && labels->is_object() ? labels->get_object().if_contains(kv.key()) : nullptr;
      if (!v || *v != kv.value()) return false;
    }
  }
  const json::value* terms = find_path(
      pod_spec, {"affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                 "nodeSelectorTerms"});
  if (terms && terms->is_array()) {
    for (const json::value& t : terms->get_array()) {
      if (term_matches(t, node)) return true;
    }
    return false;
  }
  return true;
}

void add_daemon_tolerations(json::object& spec) {
  json::value& tv = spec["tolerations"];
  if (!tv.is_array()) tv = json::array();
  json::array& tols = tv.as_array();
  auto add = [&](std::string_view key, std::string_view effect) {
    for (const json::value& t : tols) {
      if (get_string(t, {"key"}) == key && get_string(t, {"effect"}) == effect &&
          get_string(t, {"operator"}) == "Exists") {
        return;
      }
    }
    json::object t;
    t["key"] = key;
    t["operator"] = "Exists";
    t["effect"] = effect;
    tols.push_back(std::move(t));
  };
  add("node.kubernetes.io/not-ready", "NoExecute");
  add("node.kubernetes.io/unreachable", "NoExecute");
  add("node.kubernetes.io/disk-pressure", "NoSchedule");
  add("node.kubernetes.io/memory-pressure", "NoSchedule");
  add("node.kubernetes.io/pid-pressure", "NoSchedule");
  add("node.kubernetes.io/unschedulable", "NoSchedule");
  const json::value* hn = spec.if_contains("hostNetwork");
  if (hn && hn->is_bool() && hn->get_bool()) add("node.kubernetes.io/network-unavailable", "NoSchedule");
}

void set_node_name_affinity(json::object& spec, std::string_view node) {
  json::object req;
  req["key"] = "metadata.name";
  req["operator"] = "In";
  json::array vals;
  vals.push_back(json::string(node));
  req["values"] = std::move(vals);
  json::array fields;
  fields.push_back(std::move(req));
  json::object term;
  term["matchFields"] = std::move(fields);
  json::array terms;
  terms.push_back(std::move(term));
  json::object& aff = ensure_object(spec, "affinity");
  json::object& na = ensure_object(aff, "nodeAffinity");
  json::object& required = ensure_object(na, "requiredDuringSchedulingIgnoredDuringExecution");
  required["nodeSelectorTerms"] = std::move(terms);
}

std::string target_node_name(const json::value& pod) {
  std::string_view n = get_string(pod, {"spec", "nodeName"});
  if (!n.empty()) return std::string(n);
  const json::value* terms = find_path(
      pod, {"spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
            "nodeSelectorTerms"});
  if (!terms || !terms->is_array()) return {};
  for (const json::value& t : terms->get_array()) {
    const json::value* fields = find_path(t, {"matchFields"});
    if (!fields || !fields->is_array()) continue;
    for (const json::value& f : fields->get_array()) {
      const json::value* vals = find_path(f, {"values"});
      if (get_string(f, {"key"}) == "metadata.name" && get_string(f, {"operator"}) == "In" &&
          vals && vals->is_array() && vals->get_array().size() == 1 &&
          vals->get_array()[0].is_string()) {
        return std::string(vals->get_array()[0].get_string());
      }
    }
  }
  return {};
}

NodeDecision node_should_run(const json::value& pod_spec, const json::value& node) {
  NodeDecision d;
  std::string_view want = get_string(pod_spec, {"nodeName"});
  if (!want.empty() && want != get_string(node, {"metadata", "name"})) return d;
  if (!node_matches(pod_spec, node)) return d;
  const json::value* tols = find_path(pod_spec, {"tolerations"});
  if (!tolerates_taints(tols, node, {"NoExecute"})) return d;
  d.should_continue_running = true;
  d.should_run = tolerates_taints(tols, node, {"NoSchedule"});
  return d;
}

}  // namespace podwarp::apps
