// The pods/binding, pods/eviction and */scale subresources of Api.
#include <fmt/format.h>

#include "apiserver/api.h"
#include "apiserver/object_meta.h"
#include "podwarp/patch.h"
#include "podwarp/selector.h"
#include "podwarp/time.h"
#include "validation/validation.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

namespace {

// metav1.FormatLabelSelector of a LabelSelector object.
std::string selector_string(const json::value* sel) {
  if (sel == nullptr || !sel->is_object()) return "";
  std::vector<std::string> parts;
  if (const json::value* ml = sel->get_object().if_contains("matchLabels"); ml && ml->is_object()) {
    std::vector<std::pair<std::string, std::string>> kv;
    for (const auto& e : ml->get_object()) {
      kv.emplace_back(std::string(e.key()), e.value().is_string()
                                                ? std::string(e.value().get_string())
                                                : json::serialize(e.value()));
    }
    std::sort(kv.begin(), kv.end());
    for (auto& [k, v] : kv) parts.push_back(k + "=" + v);
  }
  if (const json::value* me = sel->get_object().if_contains("matchExpressions");
      me && me->is_array()) {
    for (const json::value& e : me->get_array()) {
      std::string key(get_string(e, {"key"}));
      std::string_view op = get_string(e, {"operator"});
      std::vector<std::string> values;
      if (const json::value* vs = find_path(e, {"values"}); vs && vs->is_array()) {
        for (const json::value& v : vs->get_array()) {
          if (v.is_string()) values.emplace_back(v.get_string());
        }
      }
      std::sort(values.begin(), values.end());
      std::string joined;
      for (const auto& v : values) joined += (joined.empty() ? "" : ",") + v;
      if (op == "In") parts.push_back(fmt::format("{} in ({})", key, joined));
      if (op == "NotIn") parts.push_back(fmt::format("{} notin ({})", key, joined));
      if (op == "Exists") parts.push_back(key);
      if (op == "DoesNotExist") parts.push_back("!" + key);
    }
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

json::value scale_of(const json::value& obj) {
  json::object meta;
  for (std::string_view k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (const json::value* v = find_path(obj, {"metadata", k})) meta[k] = *v;
  }
  json::object status{{"replicas", get_int(obj, {"status", "replicas"})}};
  std::string sel = selector_string(find_path(obj, {"spec", "selector"}));
  if (!sel.empty()) status["selector"] = sel;
  return json::object{{"kind", "Scale"},
                      {"apiVersion", "autoscaling/v1"},
                      {"metadata", std::move(meta)},
                      {"spec", json::object{{"replicas", get_int(obj, {"spec", "replicas"})}}},
                      {"status", std::move(status)}};
}

}  // namespace

asio::awaitable<Response> Api::scale(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  const std::string& verb = info.verb;
  if (verb != "get" && verb != "update" && verb != "patch") {
    co_return Response::error(method_not_supported(r, verb));
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = co_await load(r, info.namespace_, info.name);
    if (!cur) co_return Response::error(cur.error());
    json::value current_scale = scale_of(cur->object);
    if (verb == "get") co_return Response::json(200, to_json(current_scale));
    json::value wanted;
    if (verb == "update") {
      auto body = parse_json(req.body);
      if (!body || !body->is_object()) {
        co_return Response::error(bad_request("couldn't get version/kind; json parse error"));
      }
      wanted = std::move(*body);
    } else {
      auto doc = parse_json(req.body);
      if (!doc) co_return Response::error(bad_request(fmt::format("error decoding patch: {}", doc.error())));
      std::string_view ct = req.content_type;
      std::expected<json::value, std::string> patched;
      if (ct.starts_with("application/json-patch+json")) {
        if (auto e = json_patch_too_large(*doc)) co_return Response::error(*e);
        patched = patch::apply_json_patch(current_scale, *doc);
      } else if (ct.starts_with("application/merge-patch+json")) {
        patched = patch::apply_merge_patch(current_scale, *doc);
      } else if (ct.starts_with("application/strategic-merge-patch+json")) {
        patched = patch::apply_strategic_merge_patch(current_scale, *doc, nullptr);
      } else {
        co_return Response::error(unsupported_media_type(ct));
      }
      if (!patched) co_return Response::error(bad_request(patched.error()));
      wanted = std::move(*patched);
    }
    // The body decodes as an autoscaling/v1 Scale, as upstream's: an int32 replicas, not 1.5,
    // 1e300 or 2^40 (which would be stored in the scaled object, where clients cannot decode it).
    if (auto ok = check_fields(req, validation::scale_resource(), wanted, nullptr); !ok) {
      co_return Response::error(ok.error());
    }
    const json::value* replicas = find_path(wanted, {"spec", "replicas"});
    std::int64_t n = get_int(wanted, {"spec", "replicas"}, -1);
    if (replicas == nullptr || !replicas->is_number() || n < 0) {
      std::string msg = "must be greater than or equal to 0";
      co_return Response::error(invalid(
          r, info.name, {{"FieldValueInvalid", fmt::format("Invalid value: {}: {}", n, msg), "spec.replicas"}},
          fmt::format("Scale.autoscaling \"{}\" is invalid: spec.replicas: Invalid value: {}: {}",
                      info.name, n, msg)));
    }
    std::int64_t precondition = resource_version_of(wanted);
    if (precondition != 0 && precondition != cur->revision) {
      co_return Response::error(conflict(r, info.name,
                                         "the object has been modified; please apply your "
                                         "changes to the latest version and try again"));
    }
    json::value next = cur->object;
    ensure_object(next.as_object(), "spec")["replicas"] = n;
    auto res = co_await store_update(req, r, *cur, std::move(next), "");
    if (!res) {
      if (res.error().reason == "Conflict" && precondition == 0) continue;
      co_return Response::error(res.error());
    }
    co_return Response::json(200, to_json(scale_of(res->first)));
  }
  co_return Response::error(conflict(r, info.name, "too many conflicts"));
}

asio::awaitable<Response> Api::binding(const Request& req) {
  const RequestInfo& info = req.info;
  // pods/<name>/binding names the pod in the URL; the top-level bindings in the body.
  static const api::Resource& r = *api::find_resource("", "v1", "pods");
  static const api::Resource& binding_kind = *api::find_resource("", "v1", "bindings");
  auto body = parse_json(req.body);
  if (!body || !body->is_object()) {
    co_return Response::error(bad_request("couldn't get version/kind; json parse error"));
  }
  const std::string name(info.subresource == "binding"
                             ? std::string_view(info.name)
                             : get_string(*body, {"metadata", "name"}));
  if (name.empty()) {
    std::vector<validation::Cause> causes{
        {"FieldValueRequired", "Required value: name or generateName is required",
         "metadata.name"}};
    co_return Response::error(invalid(binding_kind, "", causes));
  }
  std::string_view target = get_string(*body, {"target", "name"});
  if (target.empty()) {
    std::vector<validation::Cause> causes{{"FieldValueRequired", "Required value", "target.name"}};
    co_return Response::error(invalid(binding_kind, name, causes));
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = co_await load(r, info.namespace_, name);
    if (!cur) co_return Response::error(cur.error());
    if (find_path(cur->object, {"metadata", "deletionTimestamp"})) {
      co_return Response::error(conflict(r, name,
          fmt::format("pod {} is being deleted, cannot be assigned to a host", name)));
    }
    std::string_view node = get_string(cur->object, {"spec", "nodeName"});
    if (!node.empty()) {
      co_return Response::error(conflict(r, name,
          fmt::format("pod {} is already assigned to node \"{}\"", name, node)));
    }
    json::value next = cur->object;
    ensure_object(next.as_object(), "spec")["nodeName"] = target;
    json::object& status = ensure_object(next.as_object(), "status");
    json::array conds;
    if (const json::value* c = status.if_contains("conditions"); c && c->is_array()) {
      conds = c->get_array();
    }
    json::array kept;
    for (json::value& c : conds) {
      if (get_string(c, {"type"}) != "PodScheduled") kept.push_back(std::move(c));
    }
    conds = std::move(kept);
    conds.push_back(json::object{{"type", "PodScheduled"},
                                 {"status", "True"},
                                 {"lastProbeTime", nullptr},
                                 {"lastTransitionTime", now_rfc3339()}});
    status["conditions"] = std::move(conds);
    std::string text = to_json(next);
    auto stripped = parse_json(text);
    metadata(*stripped).erase("resourceVersion");
    auto res = co_await etcd_.update(key_for(r, info.namespace_, name), to_json(*stripped),
                                     cur->revision);
    if (!res) {
      if (res.error().code == storage::StorageErrc::kConflict) continue;
      co_return Response::error(internal_error(res.error().message));
    }
    json::object st{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
                    {"status", "Success"}, {"code", 201}};
    co_return Response::json(201, to_json(st));
  }
  co_return Response::error(conflict(r, info.name, "too many conflicts"));
}

asio::awaitable<Response> Api::eviction(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  auto body = parse_json(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
  if (!body || !body->is_object()) {
    co_return Response::error(bad_request("couldn't get version/kind; json parse error"));
  }
  auto cur = co_await load(r, info.namespace_, info.name);
  if (!cur) co_return Response::error(cur.error());
  // PodDisruptionBudgets that select this pod must allow a disruption (upstream
  // pkg/registry/core/pod/storage/eviction.go). Pods not running yet, finished or already
  // being deleted ignore budgets.
  std::string_view phase = get_string(cur->object, {"status", "phase"});
  const bool deleting = find_path(cur->object, {"metadata", "deletionTimestamp"}) != nullptr;
  if (phase != "Succeeded" && phase != "Failed" && phase != "Pending" && !deleting) {
    const api::Resource* pdb_res = api::find_resource("policy", "v1", "poddisruptionbudgets");
    const json::value* labels = find_path(cur->object, {"metadata", "labels"});
    const std::string pod_name(name_of(cur->object));
    bool pod_ready = false;
    if (const json::value* conds = find_path(cur->object, {"status", "conditions"});
        conds && conds->is_array()) {
      for (const json::value& c : conds->get_array()) {
        if (get_string(c, {"type"}) == "Ready") pod_ready = get_string(c, {"status"}) == "True";
      }
    }
    auto budget_error = [](std::string message) {
      ApiError e{429, "TooManyRequests",
                 "Cannot evict pod as it would violate the pod's disruption budget."};
      e.causes.push_back({"DisruptionBudget", std::move(message), ""});
      return e;
    };
    bool done = false;
    for (int attempt = 0; attempt < 5 && !done; ++attempt) {
      std::vector<std::string> names;
      auto match = [&](const std::string&, const ObjectPtr& o) {
        const json::value* sj = find_path(o->value, {"spec", "selector"});
        auto sel = LabelSelector::from_json(sj ? *sj : json::value(nullptr));
        // A PDB with a nil or empty selector matches nothing here (as upstream).
        if (!sel || sel->empty()) return;
        if (!sel->matches(labels && labels->is_object() ? &labels->get_object() : nullptr)) return;
        names.emplace_back(name_of(o->value));
      };
      cache_.list(prefix_for(*pdb_res, info.namespace_), match);
      if (names.empty()) break;
      if (names.size() > 1) {
        co_return Response::error(internal_error(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support."));
      }
      auto pdb = co_await load(*pdb_res, info.namespace_, names.front());
      if (!pdb) {
        if (pdb.error().code == 404) break;
        co_return Response::error(pdb.error());
      }
      const json::value& p = pdb->object;
      const std::int64_t allowed = get_int(p, {"status", "disruptionsAllowed"});
      const std::int64_t healthy = get_int(p, {"status", "currentHealthy"});
      const std::int64_t desired = get_int(p, {"status", "desiredHealthy"});
      // unhealthyPodEvictionPolicy IfHealthyBudget: an unready pod may go while the budget holds.
      if (!pod_ready && healthy >= desired && desired > 0) break;
      if (get_int(p, {"status", "observedGeneration"}) < get_int(p, {"metadata", "generation"})) {
        co_return Response::error(budget_error(fmt::format(
            "The disruption budget {} is still being processed by the server.", name_of(p))));
      }
      if (allowed < 0) {
        co_return Response::error(forbidden(&r, info.name, "pdb disruptions allowed is negative"));
      }
      const json::value* disrupted = find_path(p, {"status", "disruptedPods"});
      if (disrupted && disrupted->is_object() && disrupted->get_object().size() > 2000) {
        co_return Response::error(forbidden(&r, info.name,
                                            "DisruptedPods map too big - too many evictions not "
                                            "confirmed by PDB controller"));
      }
      if (allowed == 0) {
        co_return Response::error(budget_error(
            fmt::format("The disruption budget {} needs {} healthy pods and has {} currently",
                        name_of(p), desired, healthy)));
      }
      // Take one disruption and record the pod, so that concurrent evictions cannot overdraw
      // the budget before the disruption controller recomputes it.
      json::value next = p;
      json::object& st = ensure_object(next.as_object(), "status");
      st["disruptionsAllowed"] = allowed - 1;
      ensure_object(st, "disruptedPods")[pod_name] =
          format_rfc3339(std::chrono::system_clock::now());
      if (allowed - 1 == 0) {
        if (json::value* conds = st.if_contains("conditions"); conds && conds->is_array()) {
          for (json::value& c : conds->as_array()) {
            if (get_string(c, {"type"}) != "DisruptionAllowed" || !c.is_object()) continue;
            if (get_string(c, {"status"}) != "False") {
              c.as_object()["lastTransitionTime"] =
                  format_rfc3339(std::chrono::system_clock::now());
            }
            c.as_object()["status"] = "False";
            c.as_object()["reason"] = "InsufficientPods";
          }
        }
      }
      if (req.param_or("dryRun", "") == "All") break;
      auto res = co_await store_update(req, *pdb_res, *pdb, std::move(next), "status");
      if (res) {
        done = true;
      } else if (res.error().reason != "Conflict") {
        co_return Response::error(res.error());
      }
    }
  }
  json::value options = json::object();
  if (const json::value* d = find_path(*body, {"deleteOptions"}); d && d->is_object()) options = *d;
  auto res = co_await delete_object(req, r, std::move(*cur), options);
  if (!res) co_return Response::error(res.error());
  json::object st{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
                  {"status", "Success"}, {"code", 201}};
  co_return Response::json(201, to_json(st));
}

}  // namespace podwarp::apiserver
