#include "core/disruption.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

std::vector<client::ObjectPtr> pdb_pods(const json::value& pdb,
                                        const std::vector<client::ObjectPtr>& pods) {
  std::vector<client::ObjectPtr> out;
  const json::value* sel_json = find_path(pdb, {"spec", "selector"});
  if (sel_json == nullptr || !sel_json->is_object()) return out;
  auto sel = LabelSelector::from_json(*sel_json);
  if (!sel) return out;
  for (const client::ObjectPtr& p : pods) {
    if (namespace_of(*p) == namespace_of(pdb) && sel->matches(*p)) out.push_back(p);
  }
  return out;
}

PdbComputation compute_pdb(const json::value& pdb, const std::vector<client::ObjectPtr>& pods,
                           const ScaleFinder& scale_of, std::chrono::system_clock::time_point now) {
  PdbComputation c;
  const json::value* max_unavailable = find_path(pdb, {"spec", "maxUnavailable"});
  const json::value* min_available = find_path(pdb, {"spec", "minAvailable"});
  if (max_unavailable && max_unavailable->is_null()) max_unavailable = nullptr;
  if (min_available && min_available->is_null()) min_available = nullptr;

  // The sum of the scales of the pods' controllers (each counted once).
  auto expected_scale = [&]() -> std::optional<std::int64_t> {
    std::map<std::string, std::int64_t> scales;  // controller uid -> replicas
    for (const client::ObjectPtr& p : pods) {
      const json::value* ref = controller_ref(*p);
      if (ref == nullptr) {
        c.error = fmt::format("found no controller ref for pod \"{}\"", name_of(*p));
        return std::nullopt;
      }
      if (scales.contains(std::string(get_string(*ref, {"uid"})))) continue;
      auto scale = scale_of(*p);
      if (!scale) {
        c.error = fmt::format("found no controllers for pod \"{}\"", name_of(*p));
        return std::nullopt;
      }
      scales[scale->uid] = scale->replicas;
    }
    std::int64_t sum = 0;
    for (const auto& [_, n] : scales) sum += n;
    return sum;
  };

  if (max_unavailable != nullptr) {
    auto scale = expected_scale();
    if (!scale) return c;
    c.expected_pods = *scale;
    auto mu = scaled_int_or_percent(*max_unavailable, c.expected_pods, true);
    if (!mu) {
      c.error = "invalid maxUnavailable";
      return c;
    }
    c.desired_healthy = std::max<std::int64_t>(0, c.expected_pods - *mu);
  } else if (min_available != nullptr) {
    if (min_available->is_number()) {
      c.desired_healthy = get_int(pdb, {"spec", "minAvailable"});
      c.expected_pods = static_cast<std::int64_t>(pods.size());
    } else {
      auto scale = expected_scale();
      if (!scale) return c;
      c.expected_pods = *scale;
      auto ma = scaled_int_or_percent(*min_available, c.expected_pods, true);
      if (!ma) {
        c.error = "invalid minAvailable";
        return c;
      }
      c.desired_healthy = *ma;
    }
  }

  // disruptedPods: entries of evicted pods that are not deleting yet, for 2 minutes.
  std::set<std::string> disrupted;
  if (const json::value* d = find_path(pdb, {"status", "disruptedPods"}); d && d->is_object()) {
    for (const auto& [pod_name, ts] : d->get_object()) {
      auto pod = std::find_if(pods.begin(), pods.end(),
                              [&](const client::ObjectPtr& p) { return name_of(*p) == pod_name; });
      if (pod == pods.end() || being_deleted(**pod)) continue;
      auto t = ts.is_string() ? parse_rfc3339(ts.get_string())
                              : std::expected<std::chrono::system_clock::time_point, std::string>(
                                    std::unexpected("not a string"));
      if (!t) continue;
      auto expires = *t + kDisruptedPodTimeout;
      if (expires < now) continue;
      c.disrupted_pods[pod_name] = ts;
      disrupted.insert(std::string(pod_name));
      if (!c.recheck || expires < *c.recheck) c.recheck = expires;
    }
  }
  for (const client::ObjectPtr& p : pods) {
    if (being_deleted(*p) || disrupted.contains(std::string(name_of(*p)))) continue;
    if (pod_ready(*p)) ++c.current_healthy;
  }
  c.disruptions_allowed = c.current_healthy - c.desired_healthy;
  if (c.expected_pods <= 0 || c.disruptions_allowed <= 0) c.disruptions_allowed = 0;
  return c;
}

json::object pdb_status(const json::value& pdb, const PdbComputation& c,
                        std::chrono::system_clock::time_point now) {
  json::object st;
  if (const json::value* old = find_path(pdb, {"status"}); old && old->is_object()) {
    st = old->get_object();
  }
  const std::int64_t generation = get_int(pdb, {"metadata", "generation"});
  st["observedGeneration"] = generation;
  std::string_view cond_status, reason;
  std::string message;
  if (!c.error.empty()) {
    // upstream failSafe: no disruption allowed, counts untouched.
    st["disruptionsAllowed"] = 0;
    cond_status = "False";
    reason = "SyncFailed";
    message = c.error;
  } else {
    st["expectedPods"] = c.expected_pods;
    st["desiredHealthy"] = c.desired_healthy;
    st["currentHealthy"] = c.current_healthy;
    st["disruptionsAllowed"] = c.disruptions_allowed;
    if (c.disrupted_pods.empty()) {
      st.erase("disruptedPods");
    } else {
      st["disruptedPods"] = c.disrupted_pods;
    }
    cond_status = c.disruptions_allowed > 0 ? "True" : "False";
    reason = c.disruptions_allowed > 0 ? "SufficientPods" : "InsufficientPods";
  }
  for (const char* f : {"expectedPods", "desiredHealthy", "currentHealthy", "disruptionsAllowed"}) {
    if (!st.contains(f)) st[f] = 0;
  }
  json::array conds;
  std::string transition = format_rfc3339(now);
  if (const json::value* old = st.if_contains("conditions"); old && old->is_array()) {
    for (const json::value& cnd : old->get_array()) {
      if (get_string(cnd, {"type"}) == "DisruptionAllowed") {
        if (get_string(cnd, {"status"}) == cond_status) {
          transition = std::string(get_string(cnd, {"lastTransitionTime"}, transition));
        }
        continue;
      }
      conds.push_back(cnd);
    }
  }
  conds.push_back(json::object{{"type", "DisruptionAllowed"},
                               {"status", cond_status},
                               {"reason", reason},
                               {"message", message},
                               {"observedGeneration", generation},
                               {"lastTransitionTime", transition}});
  st["conditions"] = std::move(conds);
  return st;
}

namespace {

class DisruptionController : public ControllerBase {
 public:
  explicit DisruptionController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "disruption"),
        pdbs_res_(resource("policy", "poddisruptionbudgets")),
        pods_res_(resource("", "pods")),
        rs_res_(resource("apps", "replicasets")),
        deploy_res_(resource("apps", "deployments")),
        sts_res_(resource("apps", "statefulsets")),
        pdbs_(informers_.informer(pdbs_res_)),
        pods_(informers_.informer(pods_res_)),
        rs_(informers_.informer(rs_res_)),
        deploy_(informers_.informer(deploy_res_)),
        sts_(informers_.informer(sts_res_)) {}

  void init() override {
    std::weak_ptr<DisruptionController> w =
        std::static_pointer_cast<DisruptionController>(shared_from_this());
    using Self = DisruptionController;
    using V = const json::value&;
    loop::on_object_change(informers_, pdbs_res_,
                           guarded(w, [](Self& s, V o) { s.queue().add(key_of(o)); }), false);
    informers_.on_add(pods_res_, guarded(w, [](Self& s, V o) { s.pod_changed(o); }));
    informers_.on_update(pods_res_, guarded(w, [](Self& s, V old, V o) {
                           s.pod_changed(old);
                           s.pod_changed(o);
                         }));
    informers_.on_delete(pods_res_, guarded(w, [](Self& s, V o) { s.pod_changed(o); }));
    for (const api::Resource* r : {&rs_res_, &deploy_res_, &sts_res_}) {
      informers_.on_update(*r, guarded(w, [](Self& s, V old, V o) {
        if (get_int(old, {"spec", "replicas"}, 1) != get_int(o, {"spec", "replicas"}, 1)) {
          s.namespace_changed(namespace_of(o));
        }
      }));
      informers_.on_add(*r, guarded(w, [](Self& s, V o) { s.namespace_changed(namespace_of(o)); }));
      informers_.on_delete(*r,
                           guarded(w, [](Self& s, V o) { s.namespace_changed(namespace_of(o)); }));
    }
  }

  void on_start() override {
    for (const client::ObjectPtr& p : pdbs_.list()) queue().add(key_of(*p));
  }

  void pod_changed(const json::value& pod) {
    std::vector<client::ObjectPtr> one{std::make_shared<const json::value>(pod)};
    for (const client::ObjectPtr& pdb : pdbs_.list()) {
      if (namespace_of(*pdb) != namespace_of(pod)) continue;
      if (!pdb_pods(*pdb, one).empty()) queue().add(key_of(*pdb));
    }
  }

  void namespace_changed(std::string_view ns) {
    for (const client::ObjectPtr& pdb : pdbs_.list()) {
      if (namespace_of(*pdb) == ns) queue().add(key_of(*pdb));
    }
  }

  std::optional<ControllerScale> scale_of(const json::value& pod) const {
    const json::value* ref = controller_ref(pod);
    if (ref == nullptr) return std::nullopt;
    std::string_view ns = namespace_of(pod);
    std::string_view kind = get_string(*ref, {"kind"});
    std::string_view group = api::split_api_version(get_string(*ref, {"apiVersion"})).first;
    std::string_view name = get_string(*ref, {"name"});
    std::string_view uid = get_string(*ref, {"uid"});
    auto scale = [](const json::value& o) {
      return ControllerScale{std::string(uid_of(o)), get_int(o, {"spec", "replicas"}, 1)};
    };
    if (group != "apps") return std::nullopt;
    if (kind == "ReplicaSet") {
      client::ObjectPtr rs = rs_.get(ns, name);
      if (!rs || uid_of(*rs) != uid) return std::nullopt;
      if (const json::value* dref = controller_ref(*rs);
          dref && get_string(*dref, {"kind"}) == "Deployment") {
        client::ObjectPtr d = deploy_.get(ns, get_string(*dref, {"name"}));
        if (!d || uid_of(*d) != get_string(*dref, {"uid"})) return std::nullopt;
        return scale(*d);
      }
      return scale(*rs);
    }
    if (kind == "StatefulSet") {
      client::ObjectPtr s = sts_.get(ns, name);
      if (!s || uid_of(*s) != uid) return std::nullopt;
      return scale(*s);
    }
    if (kind == "Deployment") {
      client::ObjectPtr d = deploy_.get(ns, name);
      if (!d || uid_of(*d) != uid) return std::nullopt;
      return scale(*d);
    }
    return std::nullopt;
  }

  Awaitable<Result<void>> sync(std::string key) override {
    auto [ns, name] = split_key(key);
    client::ObjectPtr pdb = pdbs_.get(ns, name);
    if (!pdb || being_deleted(*pdb)) co_return Result<void>{};
    auto now = std::chrono::system_clock::now();
    std::vector<client::ObjectPtr> pods = pdb_pods(*pdb, pods_.list());
    PdbComputation c = compute_pdb(
        *pdb, pods, [this](const json::value& p) { return scale_of(p); }, now);
    if (c.recheck) {
      auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*c.recheck - now);
      queue().add_after(key, delay + std::chrono::milliseconds(100));
    }
    json::object status = pdb_status(*pdb, c, now);
    const json::value* old = find_path(*pdb, {"status"});
    if (old != nullptr && old->is_object() && old->get_object() == status) co_return Result<void>{};
    json::value next = *pdb;
    next.as_object()["status"] = std::move(status);
    auto r = co_await loop::api_update_status(client_, pdbs_res_, ns, std::move(next));
    if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
    co_return Result<void>{};
  }

 private:
  const api::Resource& pdbs_res_;
  const api::Resource& pods_res_;
  const api::Resource& rs_res_;
  const api::Resource& deploy_res_;
  const api::Resource& sts_res_;
  client::Informer& pdbs_;
  client::Informer& pods_;
  client::Informer& rs_;
  client::Informer& deploy_;
  client::Informer& sts_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_disruption_controller(loop::ControllerContext& ctx) {
  return make_controller<DisruptionController>(ctx);
}

}  // namespace podwarp::controllers
