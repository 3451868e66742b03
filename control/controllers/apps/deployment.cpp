// Deployment controller (upstream pkg/controller/deployment): new/old ReplicaSets by template
// hash, RollingUpdate and Recreate, revisions, proportional scaling, pause, history cleanup,
// progress conditions.
#include <fmt/format.h>

#include <algorithm>

#include "controllers/apps/apps.h"
#include "controllers/apps/common.h"
#include "controllers/apps/deployment_util.h"
#include "loop/enqueue.h"
#include "loop/work_queue.h"
#include "podwarp/log.h"
#include "podwarp/selector.h"
#include "podwarp/time.h"

namespace podwarp::apps {
namespace {

constexpr std::string_view kProgressing = "Progressing";
constexpr std::string_view kAvailable = "Available";
constexpr std::string_view kReplicaFailure = "ReplicaFailure";

std::int64_t rs_replicas(const json::value& rs) { return get_int(rs, {"spec", "replicas"}, 1); }

std::int64_t revision_of(const json::value& rs) {
  std::string r = annotation(rs, kRevisionAnnotation);
  try {
    return r.empty() ? 0 : std::stoll(r);
  } catch (...) {
    return 0;
  }
}

Clock::time_point created(const json::value& o) {
  return creation_time(o).value_or(Clock::time_point{});
}

bool created_before(const json::value& a, const json::value& b) {
  auto ta = created(a), tb = created(b);
  if (ta != tb) return ta < tb;
  return name_of(a) < name_of(b);
}

json::object new_condition(std::string_view type, std::string_view status, std::string_view reason,
                           std::string message) {
  std::string now = format_rfc3339(Clock::now());
  json::object c;
  c["type"] = type;
  c["status"] = status;
  c["lastUpdateTime"] = now;
  c["lastTransitionTime"] = now;
  c["reason"] = reason;
  c["message"] = std::move(message);
  return c;
}

json::array& conditions(json::object& status) {
  json::value& c = status["conditions"];
  if (!c.is_array()) c = json::array();
  return c.as_array();
}

const json::object* get_condition(const json::object& status, std::string_view type) {
  const json::value* c = status.if_contains("conditions");
  if (!c || !c->is_array()) return nullptr;
  for (const json::value& e : c->get_array()) {
    if (e.is_object() && get_string(e, {"type"}) == type) return &e.get_object();
  }
  return nullptr;
}

void remove_condition(json::object& status, std::string_view type) {
  json::array& cs = conditions(status);
  json::array out;
  for (json::value& e : cs) {
    if (get_string(e, {"type"}) != type) out.push_back(std::move(e));
  }
  cs = std::move(out);
}

// upstream SetDeploymentCondition.
void set_condition(json::object& status, json::object cond) {
  std::string type(cond["type"].as_string());
  if (const json::object* cur = get_condition(status, type)) {
    json::value cv(*cur);
    if (get_string(cv, {"status"}) == cond["status"].as_string() &&
        get_string(cv, {"reason"}) == cond["reason"].as_string()) {
      return;
    }
    if (get_string(cv, {"status"}) == cond["status"].as_string() &&
        cur->if_contains("lastTransitionTime")) {
      cond["lastTransitionTime"] = cur->at("lastTransitionTime");
    }
  }
  remove_condition(status, type);
  conditions(status).push_back(std::move(cond));
}

std::string cond_reason(const json::object* c) {
  if (!c) return {};
  const json::value* r = c->if_contains("reason");
  return r && r->is_string() ? std::string(r->get_string()) : std::string();
}

class DeploymentController : public loop::Controller {
 public:
  explicit DeploymentController(loop::ControllerContext& ctx)
      : client_(ctx.client),
        recorder_(ctx.recorder("deployment-controller")),
        queue_(ctx.executor, "deployment",
               [this](std::string key) { return sync(std::move(key)); }, ctx.options.workers) {
    auto& inf = ctx.informers;
    d_inf_ = &inf.informer(deployments_resource());
    rs_inf_ = &inf.informer(replicasets_resource());
    pod_inf_ = &inf.informer(pods_resource());
    loop::on_object_change(inf, deployments_resource(),
                           [this](const json::value& d) { queue_.add(key_of(d)); });
    inf.on_add(replicasets_resource(), [this](const json::value& rs) { rs_changed(rs); });
    inf.on_update(replicasets_resource(), [this](const json::value& o, const json::value& rs) {
      if (get_string(o, {"metadata", "resourceVersion"}) ==
          get_string(rs, {"metadata", "resourceVersion"})) {
        return;
      }
      rs_changed(o);
      rs_changed(rs);
    });
    inf.on_delete(replicasets_resource(), [this](const json::value& rs) { rs_changed(rs); });
    inf.on_delete(pods_resource(), [this](const json::value& pod) {
      // Recreate waits for the old pods to be gone.
      const json::object* ref = controller_ref(pod);
      if (!ref || get_string(json::value(*ref), {"kind"}) != "ReplicaSet") return;
      ObjectPtr rs = rs_inf_->get(namespace_of(pod), get_string(json::value(*ref), {"name"}));
      if (rs) rs_changed(*rs);
    });
  }

  std::string_view name() const override { return "deployment"; }
  void start() override { queue_.start(); }
  void stop() override { queue_.stop(); }

 private:
  void rs_changed(const json::value& rs) {
    if (controller_ref(rs)) {
      if (ObjectPtr d = loop::cached_controller(*d_inf_, rs, "Deployment")) queue_.add(key_of(*d));
      return;
    }
    loop::for_each_selecting(*d_inf_, rs, [this](const json::value& d) { queue_.add(key_of(d)); });
  }

  // --- the state of one sync ---------------------------------------------------------------
  struct State {
    std::string key, ns, name;
    json::value d;
    DeploymentParams p;
    std::vector<json::value> rss;  // owned replica sets (copies, updated after each write)
    int new_index = -1;
    json::value* new_rs() { return new_index >= 0 ? &rss[new_index] : nullptr; }
    std::vector<json::value*> olds() {
      std::vector<json::value*> out;
      for (std::size_t i = 0; i < rss.size(); ++i) {
        if (static_cast<int>(i) != new_index) out.push_back(&rss[i]);
      }
      std::sort(out.begin(), out.end(),
                [](const json::value* a, const json::value* b) { return created_before(*a, *b); });
      return out;
    }
  };

  Awaitable<Result<void>> sync(std::string key) {
    State s;
    s.key = key;
    std::tie(s.ns, s.name) = split_key(key);
    ObjectPtr dp = d_inf_->get(s.ns, s.name);
    if (!dp) co_return Result<void>{};
    s.d = *dp;
    ensure_kind(s.d, "apps/v1", "Deployment");
    s.p = deployment_params(s.d);
    const json::value* sel_json = find_path(s.d, {"spec", "selector"});
    auto selector = sel_json ? LabelSelector::from_json(*sel_json)
                             : std::expected<LabelSelector, std::string>(
                                   std::unexpected(std::string("no selector")));
    if (!selector || selector->empty()) {
      recorder_.record(s.d, "Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.");
      co_return Result<void>{};
    }
    // Claim replica sets.
    for (const ObjectPtr& rs : rs_inf_->list()) {
      if (namespace_of(*rs) != s.ns) continue;
      const json::object* ref = controller_ref(*rs);
      bool matches = selector->matches(*rs);
      if (ref) {
        json::value r(*ref);
        if (get_string(r, {"uid"}) != uid_of(s.d)) continue;
        if (matches) {
          s.rss.push_back(*rs);
        } else if (!being_deleted(s.d)) {
          json::array refs;
          for (const json::value& e :
               find_path(*rs, {"metadata", "ownerReferences"})->get_array()) {
            if (get_string(e, {"uid"}) != uid_of(s.d)) refs.push_back(e);
          }
          auto res = co_await patch_rs_meta_refs(*rs, std::move(refs));
          if (!res) co_return std::unexpected(res.error());
        }
      } else if (matches && !being_deleted(s.d) && !being_deleted(*rs)) {
        json::array refs;
        if (const json::value* old = find_path(*rs, {"metadata", "ownerReferences"});
            old && old->is_array()) {
          refs = old->get_array();
        }
        refs.push_back(make_controller_ref(s.d, "apps/v1", "Deployment"));
        auto res = co_await patch_rs_meta_refs(*rs, std::move(refs));
        if (!res) co_return std::unexpected(res.error());
        s.rss.push_back(std::move(*res));
      }
    }

    if (being_deleted(s.d)) {
      co_return co_await sync_status_only(s);
    }
    if (auto r = co_await check_paused_conditions(s); !r) co_return r;
    if (s.p.paused) co_return co_await sync_scale(s);
    if (is_scaling_event(s)) co_return co_await sync_scale(s);
    if (s.p.recreate) co_return co_await rollout_recreate(s);
    co_return co_await rollout_rolling(s);
  }

  Awaitable<Result<json::value>> patch_rs_meta_refs(const json::value& rs, json::array refs) {
    json::object meta;
    meta["ownerReferences"] = std::move(refs);
    meta["resourceVersion"] = get_string(rs, {"metadata", "resourceVersion"});
    json::object patch;
    patch["metadata"] = std::move(meta);
    co_return co_await loop::api_patch(client_, replicasets_resource(),
                                       std::string(namespace_of(rs)), std::string(name_of(rs)),
                                       to_json(patch));
  }

  // isScalingEvent: an active RS whose desired-replicas annotation differs from the spec.
  bool is_scaling_event(State& s) {
    s.new_index = find_new(s);
    for (const json::value& rs : s.rss) {
      if (rs_replicas(rs) == 0) continue;
      std::string desired = annotation(rs, kDesiredReplicasAnnotation);
      if (desired.empty()) continue;
      if (desired != std::to_string(s.p.replicas)) return true;
    }
    return false;
  }

  int find_new(const State& s) const {
    const json::value* tmpl = find_path(s.d, {"spec", "template"});
    if (!tmpl) return -1;
    int best = -1;
    for (std::size_t i = 0; i < s.rss.size(); ++i) {
      const json::value* t = find_path(s.rss[i], {"spec", "template"});
      if (!t || !equal_ignore_hash(*t, *tmpl)) continue;
      if (best < 0 || created_before(s.rss[i], s.rss[best])) best = static_cast<int>(i);
    }
    return best;
  }

  // --- writes -------------------------------------------------------------------------------

  Awaitable<Result<void>> write_status(State& s, json::object status) {
    static const json::value kEmpty = json::object();
    const json::value* old = find_path(s.d, {"status"});
    if (canonical(json::value(status)) == canonical(old ? *old : kEmpty)) {
      co_return Result<void>{};
    }
    if (status.contains("conditions") && status["conditions"].as_array().empty()) {
      status["conditions"] = nullptr;
    }
    json::object patch;
    patch["status"] = std::move(status);
    auto r = co_await loop::api_patch_status(client_, deployments_resource(), s.ns, s.name,
                                             to_json(patch));
    if (!r) co_return std::unexpected(r.error());
    s.d = std::move(*r);
    co_return Result<void>{};
  }

  json::object current_status(const State& s) const {
    const json::value* st = find_path(s.d, {"status"});
    return st && st->is_object() ? st->get_object() : json::object();
  }

  // Sets the deployment's revision annotation through the status subresource, as upstream's
  // controller does (UpdateStatus): an annotation change on the Deployment itself would bump
  // its generation.
  Awaitable<Result<void>> set_deployment_revision(State& s, const std::string& revision) {
    if (annotation(s.d, kRevisionAnnotation) == revision) co_return Result<void>{};
    json::object ann;
    ann[kRevisionAnnotation] = revision;
    json::object meta;
    meta["annotations"] = std::move(ann);
    json::object patch;
    patch["metadata"] = std::move(meta);
    auto r = co_await loop::api_patch_status(client_, deployments_resource(), s.ns, s.name,
                                             to_json(patch));
    if (!r) co_return std::unexpected(r.error());
    s.d = std::move(*r);
    co_return Result<void>{};
  }

  // Annotations copied from the deployment to its RSs (SetNewReplicaSetAnnotations).
  static bool skip_copy(std::string_view k) {
    return k == "kubectl.kubernetes.io/last-applied-configuration" || k == kRevisionAnnotation ||
           k == kRevisionHistoryAnnotation || k == kDesiredReplicasAnnotation ||
           k == kMaxReplicasAnnotation || k == "deprecated.deployment.rollback.to";
  }

  // The annotations the new RS should carry; true when they differ from the current ones.
  bool new_rs_annotations(const State& s, const json::value& rs, std::int64_t new_revision,
                          bool exists, json::object& out) const {
    const json::value* cur = find_path(rs, {"metadata", "annotations"});
    out = cur && cur->is_object() ? cur->get_object() : json::object();
    bool changed = false;
    if (const json::value* da = find_path(s.d, {"metadata", "annotations"});
        da && da->is_object()) {
      for (const auto& kv : da->get_object()) {
        if (skip_copy(kv.key())) continue;
        const json::value* v = out.if_contains(kv.key());
        if (!v || *v != kv.value()) {
          out[kv.key()] = kv.value();
          changed = true;
        }
      }
    }
    std::int64_t old_rev = revision_of(rs);
    if (old_rev < new_revision) {
      std::string old_str = annotation(rs, kRevisionAnnotation);
      out[kRevisionAnnotation] = std::to_string(new_revision);
      if (!old_str.empty()) {
        std::string hist = annotation(rs, kRevisionHistoryAnnotation);
        out[kRevisionHistoryAnnotation] = hist.empty() ? old_str : hist + "," + old_str;
      }
      changed = true;
    }
    if (!exists) {
      out[kDesiredReplicasAnnotation] = std::to_string(s.p.replicas);
      out[kMaxReplicasAnnotation] = std::to_string(s.p.replicas + s.p.max_surge);
      changed = true;
    }
    return changed;
  }

  Awaitable<Result<void>> patch_rs(json::value& rs, json::object patch) {
    patch["metadata"].as_object()["resourceVersion"] =
        get_string(rs, {"metadata", "resourceVersion"});
    auto r =
        co_await loop::api_patch(client_, replicasets_resource(), std::string(namespace_of(rs)),
                                 std::string(name_of(rs)), to_json(patch));
    if (!r) co_return std::unexpected(r.error());
    rs = std::move(*r);
    co_return Result<void>{};
  }

  // scaleReplicaSet: size and the desired/max replicas annotations.
  Awaitable<Result<bool>> scale_rs(State& s, json::value& rs, std::int64_t new_scale) {
    std::int64_t old_scale = rs_replicas(rs);
    bool size_changed = old_scale != new_scale;
    std::string desired = std::to_string(s.p.replicas);
    std::string max = std::to_string(s.p.replicas + s.p.max_surge);
    bool ann_changed = annotation(rs, kDesiredReplicasAnnotation) != desired ||
                       annotation(rs, kMaxReplicasAnnotation) != max;
    if (!size_changed && !ann_changed) co_return false;
    json::object ann;
    ann[kDesiredReplicasAnnotation] = desired;
    ann[kMaxReplicasAnnotation] = max;
    json::object meta;
    meta["annotations"] = std::move(ann);
    json::object spec;
    spec["replicas"] = new_scale;
    json::object patch;
    patch["metadata"] = std::move(meta);
    patch["spec"] = std::move(spec);
    auto r = co_await patch_rs(rs, std::move(patch));
    if (!r) co_return std::unexpected(r.error());
    if (size_changed) {
      recorder_.record(s.d, "Normal", "ScalingReplicaSet",
                       fmt::format("Scaled {} replica set {} from {} to {}",
                                   new_scale > old_scale ? "up" : "down", name_of(rs), old_scale,
                                   new_scale));
    }
    co_return size_changed;
  }

  // scaleReplicaSetAndRecordEvent: no-op when the size is right.
  Awaitable<Result<bool>> scale_rs_event(State& s, json::value& rs, std::int64_t new_scale) {
    if (rs_replicas(rs) == new_scale) co_return false;
    co_return co_await scale_rs(s, rs, new_scale);
  }

  // getAllReplicaSetsAndSyncRevision / getNewReplicaSet.
  Awaitable<Result<void>> get_new_rs(State& s, bool create) {
    s.new_index = find_new(s);
    std::int64_t max_old = 0;
    for (json::value* o : s.olds()) max_old = std::max(max_old, revision_of(*o));
    std::int64_t new_revision = max_old + 1;
    if (json::value* nrs = s.new_rs()) {
      json::object ann;
      bool changed = new_rs_annotations(s, *nrs, new_revision, true, ann);
      bool mrs_changed = get_int(*nrs, {"spec", "minReadySeconds"}) != s.p.min_ready_seconds;
      if (changed || mrs_changed) {
        json::object meta;
        meta["annotations"] = std::move(ann);
        json::object spec;
        spec["minReadySeconds"] = s.p.min_ready_seconds;
        json::object patch;
        patch["metadata"] = std::move(meta);
        patch["spec"] = std::move(spec);
        auto r = co_await patch_rs(*nrs, std::move(patch));
        if (!r) co_return r;
        co_return Result<void>{};  // upstream returns here; the RS update requeues us
      }
      if (auto r = co_await set_deployment_revision(s, annotation(*nrs, kRevisionAnnotation)); !r) {
        co_return r;
      }
      json::object st = current_status(s);
      if (s.p.progress_deadline_seconds && !get_condition(st, kProgressing)) {
        set_condition(st, new_condition(kProgressing, "True", "FoundNewReplicaSet",
                                        fmt::format("Found new replica set \"{}\"", name_of(*nrs))));
        if (auto r = co_await write_status(s, std::move(st)); !r) co_return r;
      }
      co_return Result<void>{};
    }
    if (!create) co_return Result<void>{};

    const json::value* tmpl_ptr = find_path(s.d, {"spec", "template"});
    if (!tmpl_ptr || !tmpl_ptr->is_object()) co_return Result<void>{};
    const json::value tmpl_in = *tmpl_ptr;
    std::optional<std::int64_t> collision;
    if (const json::value* c = find_path(s.d, {"status", "collisionCount"}); c && c->is_number()) {
      collision = get_int(s.d, {"status", "collisionCount"});
    }
    std::string hash = compute_hash(tmpl_in, collision);
    json::value tmpl = tmpl_in;
    {
      json::object& tm = ensure_object(tmpl.as_object(), "metadata");
      ensure_object(tm, "labels")[kPodTemplateHashLabel] = hash;
    }
    json::value selector = *find_path(s.d, {"spec", "selector"});
    ensure_object(selector.as_object(), "matchLabels")[kPodTemplateHashLabel] = hash;
    std::int64_t all = 0;
    for (const json::value& rs : s.rss) all += rs_replicas(rs);
    std::int64_t replicas = new_rs_replicas_rolling(s.p, all, 0);

    json::object rs;
    rs["apiVersion"] = "apps/v1";
    rs["kind"] = "ReplicaSet";
    json::object meta;
    std::string rs_name = s.name + "-" + hash;
    meta["name"] = rs_name;
    meta["namespace"] = s.ns;
    meta["labels"] = tmpl.at("metadata").at("labels");
    json::array refs;
    refs.push_back(make_controller_ref(s.d, "apps/v1", "Deployment"));
    meta["ownerReferences"] = std::move(refs);
    rs["metadata"] = std::move(meta);
    json::object spec;
    spec["replicas"] = replicas;
    spec["minReadySeconds"] = s.p.min_ready_seconds;
    spec["selector"] = selector;
    spec["template"] = tmpl;
    rs["spec"] = std::move(spec);
    json::value rsv(std::move(rs));
    json::object ann;
    new_rs_annotations(s, rsv, new_revision, false, ann);
    rsv.as_object()["metadata"].as_object()["annotations"] = std::move(ann);

    auto created = co_await loop::api_create(client_, replicasets_resource(), s.ns, rsv);
    bool already = false;
    if (!created) {
      if (created.error().code == 409 && created.error().reason == "AlreadyExists") {
        already = true;
        ObjectPtr existing = rs_inf_->get(s.ns, rs_name);
        const json::object* ref = existing ? controller_ref(*existing) : nullptr;
        const json::value* et = existing ? find_path(*existing, {"spec", "template"}) : nullptr;
        if (ref && get_string(json::value(*ref), {"uid"}) == uid_of(s.d) && et &&
            equal_ignore_hash(*et, tmpl_in)) {
          created = *existing;
        } else {
          json::object st = current_status(s);
          st["collisionCount"] = collision.value_or(0) + 1;
          (void)co_await write_status(s, std::move(st));
          co_return std::unexpected(created.error());
        }
      } else {
        std::string msg =
            fmt::format("Failed to create new replica set \"{}\": {}", rs_name, created.error().message);
        if (s.p.progress_deadline_seconds) {
          json::object st = current_status(s);
          set_condition(st, new_condition(kProgressing, "False", "ReplicaSetCreateError", msg));
          (void)co_await write_status(s, std::move(st));
        }
        recorder_.record(s.d, "Warning", "ReplicaSetCreateError", msg);
        co_return std::unexpected(created.error());
      }
    }
    if (!already && replicas > 0) {
      recorder_.record(s.d, "Normal", "ScalingReplicaSet",
                       fmt::format("Scaled up replica set {} from 0 to {}", rs_name, replicas));
    }
    s.rss.push_back(std::move(*created));
    s.new_index = static_cast<int>(s.rss.size()) - 1;
    if (auto r = co_await set_deployment_revision(s, std::to_string(new_revision)); !r) co_return r;
    if (!already && s.p.progress_deadline_seconds) {
      json::object st = current_status(s);
      set_condition(st, new_condition(kProgressing, "True", "NewReplicaSetCreated",
                                      fmt::format("Created new replica set \"{}\"", rs_name)));
      if (auto r = co_await write_status(s, std::move(st)); !r) co_return r;
    }
    co_return Result<void>{};
  }

  // --- status ----------------------------------------------------------------------------

  json::object calculate_status(State& s) {
    std::int64_t available = 0, total_spec = 0, actual = 0, ready = 0, updated = 0;
    for (const json::value& rs : s.rss) {
      available += get_int(rs, {"status", "availableReplicas"});
      total_spec += rs_replicas(rs);
      actual += get_int(rs, {"status", "replicas"});
      ready += get_int(rs, {"status", "readyReplicas"});
    }
    if (json::value* n = s.new_rs()) updated = get_int(*n, {"status", "replicas"});
    json::object st = current_status(s);
    st["observedGeneration"] = get_int(s.d, {"metadata", "generation"});
    st["replicas"] = actual;
    st["updatedReplicas"] = updated;
    st["readyReplicas"] = ready;
    st["availableReplicas"] = available;
    st["unavailableReplicas"] = std::max<std::int64_t>(total_spec - available, 0);
    if (available >= s.p.replicas - s.p.max_unavailable) {
      set_condition(st, new_condition(kAvailable, "True", "MinimumReplicasAvailable",
                                      "Deployment has minimum availability."));
    } else {
      set_condition(st, new_condition(kAvailable, "False", "MinimumReplicasUnavailable",
                                      "Deployment does not have minimum availability."));
    }
    return st;
  }

  static bool deployment_complete(const State& s, const json::object& st) {
    json::value v(st);
    return get_int(v, {"updatedReplicas"}) == s.p.replicas &&
           get_int(v, {"replicas"}) == s.p.replicas &&
           get_int(v, {"availableReplicas"}) == s.p.replicas &&
           get_int(v, {"observedGeneration"}) >= get_int(s.d, {"metadata", "generation"});
  }

  static bool deployment_progressing(const State& s, const json::object& st) {
    json::value n(st);
    const json::value* old = find_path(s.d, {"status"});
    static const json::value kEmpty = json::object();
    const json::value& o = old ? *old : kEmpty;
    auto oldn = [&](const json::value& v) {
      return get_int(v, {"replicas"}) - get_int(v, {"updatedReplicas"});
    };
    return get_int(n, {"updatedReplicas"}) > get_int(o, {"updatedReplicas"}) ||
           oldn(n) < oldn(o) || get_int(n, {"readyReplicas"}) > get_int(o, {"readyReplicas"}) ||
           get_int(n, {"availableReplicas"}) > get_int(o, {"availableReplicas"});
  }

  bool timed_out(const State& s, const json::object& st) const {
    if (!s.p.progress_deadline_seconds) return false;
    const json::object* c = get_condition(st, kProgressing);
    if (!c) return false;
    std::string reason = cond_reason(c);
    if (reason == "NewReplicaSetAvailable") return false;
    if (reason == "ProgressDeadlineExceeded") return true;
    auto t = parse_rfc3339(get_string(json::value(*c), {"lastUpdateTime"}));
    if (!t) return false;
    return *t + std::chrono::seconds(*s.p.progress_deadline_seconds) < Clock::now();
  }

  Awaitable<Result<void>> sync_rollout_status(State& s) {
    json::object st = calculate_status(s);
    const json::object old_st = current_status(s);
    const json::object* cur = get_condition(old_st, kProgressing);
    bool complete_cond = get_int(json::value(st), {"replicas"}) ==
                             get_int(json::value(st), {"updatedReplicas"}) &&
                         cur && cond_reason(cur) == "NewReplicaSetAvailable";
    std::string rs_name = s.new_rs() ? std::string(name_of(*s.new_rs())) : std::string();
    if (s.p.progress_deadline_seconds && !complete_cond) {
      if (deployment_complete(s, st)) {
        std::string msg = rs_name.empty()
                              ? fmt::format("Deployment \"{}\" has successfully progressed.", s.name)
                              : fmt::format("ReplicaSet \"{}\" has successfully progressed.", rs_name);
        set_condition(st, new_condition(kProgressing, "True", "NewReplicaSetAvailable", msg));
      } else if (deployment_progressing(s, st)) {
        std::string msg = rs_name.empty()
                              ? fmt::format("Deployment \"{}\" is progressing.", s.name)
                              : fmt::format("ReplicaSet \"{}\" is progressing.", rs_name);
        json::object c = new_condition(kProgressing, "True", "ReplicaSetUpdated", msg);
        if (cur) {
          json::value cv(*cur);
          if (get_string(cv, {"status"}) == "True" && cur->if_contains("lastTransitionTime")) {
            c["lastTransitionTime"] = cur->at("lastTransitionTime");
          }
          remove_condition(st, kProgressing);
        }
        set_condition(st, std::move(c));
      } else if (timed_out(s, st)) {
        std::string msg = rs_name.empty()
                              ? fmt::format("Deployment \"{}\" has timed out progressing.", s.name)
                              : fmt::format("ReplicaSet \"{}\" has timed out progressing.", rs_name);
        set_condition(st, new_condition(kProgressing, "False", "ProgressDeadlineExceeded", msg));
      }
    }
    // ReplicaFailure from the replica sets (new one first).
    std::optional<json::object> failure;
    std::vector<json::value*> order;
    if (s.new_rs()) order.push_back(s.new_rs());
    for (json::value* o : s.olds()) order.push_back(o);
    for (json::value* rs : order) {
      const json::value* rst = find_path(*rs, {"status"});
      const json::object* c = rst ? find_condition(*rst, "ReplicaFailure") : nullptr;
      if (c && get_string(json::value(*c), {"status"}) == "True") {
        json::value cv(*c);
        failure = new_condition(kReplicaFailure, "True", get_string(cv, {"reason"}),
                                std::string(get_string(cv, {"message"})));
        break;
      }
    }
    if (failure) {
      set_condition(st, std::move(*failure));
    } else {
      remove_condition(st, kReplicaFailure);
    }
    bool changed;
    {
      static const json::value kEmpty = json::object();
      const json::value* old = find_path(s.d, {"status"});
      changed = canonical(json::value(st)) != canonical(old ? *old : kEmpty);
    }
    bool complete = deployment_complete(s, st);
    if (changed) {
      if (auto r = co_await write_status(s, std::move(st)); !r) co_return r;
    }
    requeue_stuck(s, complete);
    co_return Result<void>{};
  }

  void requeue_stuck(const State& s, bool complete) {
    if (!s.p.progress_deadline_seconds || complete) return;
    json::object st = current_status(s);
    const json::object* c = get_condition(st, kProgressing);
    if (!c) return;
    std::string reason = cond_reason(c);
    if (reason == "ProgressDeadlineExceeded" || reason == "NewReplicaSetAvailable") return;
    auto t = parse_rfc3339(get_string(json::value(*c), {"lastUpdateTime"}));
    if (!t) return;
    auto after = *t + std::chrono::seconds(*s.p.progress_deadline_seconds) - Clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(after);
    if (ms < std::chrono::seconds(1)) {
      queue_.add_after(s.key, std::chrono::milliseconds(200));
    } else {
      queue_.add_after(s.key, ms + std::chrono::seconds(1));
    }
  }

  Awaitable<Result<void>> sync_status_only(State& s) {
    if (auto r = co_await get_new_rs(s, false); !r) co_return r;
    co_return co_await write_status(s, calculate_status(s));
  }

  Awaitable<Result<void>> check_paused_conditions(State& s) {
    if (!s.p.progress_deadline_seconds) co_return Result<void>{};
    json::object st = current_status(s);
    const json::object* c = get_condition(st, kProgressing);
    std::string reason = cond_reason(c);
    if (reason == "ProgressDeadlineExceeded") co_return Result<void>{};
    bool paused_cond = reason == "DeploymentPaused";
    if (s.p.paused && !paused_cond) {
      set_condition(st, new_condition(kProgressing, "Unknown", "DeploymentPaused",
                                      "Deployment is paused"));
    } else if (!s.p.paused && paused_cond) {
      set_condition(st, new_condition(kProgressing, "Unknown", "DeploymentResumed",
                                      "Deployment is resumed"));
    } else {
      co_return Result<void>{};
    }
    co_return co_await write_status(s, std::move(st));
  }

  // --- scaling (paused deployments and scaling events) -------------------------------------

  Awaitable<Result<void>> sync_scale(State& s) {
    if (auto r = co_await get_new_rs(s, false); !r) co_return r;
    if (auto r = co_await scale(s); !r) co_return std::unexpected(r.error());
    if (s.p.paused) {
      if (auto r = co_await cleanup(s); !r) co_return r;
    }
    co_return co_await write_status(s, calculate_status(s));
  }

  Awaitable<Result<void>> scale(State& s) {
    // FindActiveOrLatest
    std::vector<json::value*> active;
    for (json::value& rs : s.rss) {
      if (rs_replicas(rs) > 0) active.push_back(&rs);
    }
    json::value* target = nullptr;
    if (active.size() == 1) {
      target = active[0];
    } else if (active.empty()) {
      if (s.new_rs()) {
        target = s.new_rs();
      } else if (!s.rss.empty()) {
        auto olds = s.olds();
        target = olds.back();  // the newest
      }
    }
    if (target) {
      if (rs_replicas(*target) == s.p.replicas) co_return Result<void>{};
      auto r = co_await scale_rs(s, *target, s.p.replicas);
      if (!r) co_return std::unexpected(r.error());
      co_return Result<void>{};
    }
    // IsSaturated: the new RS runs everything, scale the old ones down.
    if (json::value* n = s.new_rs(); n && rs_replicas(*n) == s.p.replicas &&
                                     annotation(*n, kDesiredReplicasAnnotation) ==
                                         std::to_string(s.p.replicas) &&
                                     get_int(*n, {"status", "availableReplicas"}) == s.p.replicas) {
      for (json::value* o : s.olds()) {
        if (auto r = co_await scale_rs_event(s, *o, 0); !r) co_return std::unexpected(r.error());
      }
      co_return Result<void>{};
    }
    if (s.p.recreate || active.empty()) co_return Result<void>{};
    std::vector<RsView> views;
    for (json::value* rs : active) {
      RsView v;
      v.name = std::string(name_of(*rs));
      v.replicas = rs_replicas(*rs);
      v.created = created(*rs);
      std::string m = annotation(*rs, kMaxReplicasAnnotation);
      if (!m.empty()) {
        try {
          v.max_replicas_annotation = std::stoll(m);
        } catch (...) {
        }
      }
      views.push_back(std::move(v));
    }
    auto sizes = proportional_scale(s.p, views, get_int(s.d, {"status", "replicas"}));
    for (std::size_t i = 0; i < active.size(); ++i) {
      // upstream scales every RS (so annotations follow) and records an event on size changes.
      if (auto r = co_await scale_rs(s, *active[i], sizes[i]); !r) co_return std::unexpected(r.error());
    }
    co_return Result<void>{};
  }

  // cleanupDeployment: delete old, fully scaled-down RSs beyond revisionHistoryLimit.
  Awaitable<Result<void>> cleanup(State& s) {
    if (!s.p.revision_history_limit) co_return Result<void>{};
    std::vector<json::value*> cleanable;
    for (json::value* o : s.olds()) {
      if (!being_deleted(*o)) cleanable.push_back(o);
    }
    std::int64_t diff = static_cast<std::int64_t>(cleanable.size()) - *s.p.revision_history_limit;
    if (diff <= 0) co_return Result<void>{};
    std::sort(cleanable.begin(), cleanable.end(), [](const json::value* a, const json::value* b) {
      if (revision_of(*a) != revision_of(*b)) return revision_of(*a) < revision_of(*b);
      return created_before(*a, *b);
    });
    for (std::int64_t i = 0; i < diff; ++i) {
      const json::value& rs = *cleanable[i];
      if (get_int(rs, {"status", "replicas"}) != 0 || rs_replicas(rs) != 0 ||
          get_int(rs, {"metadata", "generation"}) > get_int(rs, {"status", "observedGeneration"})) {
        continue;
      }
      auto r = co_await loop::api_delete(client_, replicasets_resource(), s.ns,
                                         std::string(name_of(rs)));
      if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
    }
    co_return Result<void>{};
  }

  // --- strategies ----------------------------------------------------------------------------

  Awaitable<Result<void>> rollout_rolling(State& s) {
    if (auto r = co_await get_new_rs(s, true); !r) co_return r;
    json::value* n = s.new_rs();
    if (!n) co_return Result<void>{};  // the RS update requeues us
    // reconcileNewReplicaSet
    bool scaled = false;
    std::int64_t all = 0;
    for (const json::value& rs : s.rss) all += rs_replicas(rs);
    if (rs_replicas(*n) > s.p.replicas) {
      auto r = co_await scale_rs_event(s, *n, s.p.replicas);
      if (!r) co_return std::unexpected(r.error());
      scaled = *r;
    } else if (rs_replicas(*n) < s.p.replicas) {
      std::int64_t want = new_rs_replicas_rolling(s.p, all, rs_replicas(*n));
      auto r = co_await scale_rs_event(s, *n, want);
      if (!r) co_return std::unexpected(r.error());
      scaled = *r;
    }
    if (scaled) co_return co_await sync_rollout_status(s);
    // reconcileOldReplicaSets
    auto olds = s.olds();
    std::int64_t old_count = 0;
    for (json::value* o : olds) old_count += rs_replicas(*o);
    if (old_count > 0) {
      n = s.new_rs();
      std::int64_t new_avail =
          std::min(get_int(*n, {"status", "availableReplicas"}), rs_replicas(*n));
      std::int64_t budget = max_scaled_down(s.p, all, rs_replicas(*n),
                                            get_int(*n, {"status", "availableReplicas"}));
      if (budget > 0) {
        std::vector<RsView> views;
        for (json::value* o : olds) {
          RsView v;
          v.name = std::string(name_of(*o));
          v.replicas = rs_replicas(*o);
          // Guard against a stale status right after our own scale-down.
          v.available = std::min(get_int(*o, {"status", "availableReplicas"}), v.replicas);
          v.created = created(*o);
          views.push_back(std::move(v));
        }
        auto sizes = plan_old_scale_down(s.p, views, budget, new_avail);
        bool down = false;
        for (std::size_t i = 0; i < olds.size(); ++i) {
          auto r = co_await scale_rs_event(s, *olds[i], sizes[i]);
          if (!r) co_return std::unexpected(r.error());
          down = down || *r;
        }
        if (down) co_return co_await sync_rollout_status(s);
      }
    }
    {
      json::object st = calculate_status(s);
      if (deployment_complete(s, st)) {
        if (auto r = co_await cleanup(s); !r) co_return r;
      }
    }
    co_return co_await sync_rollout_status(s);
  }

  bool old_pods_running(State& s) {
    std::set<std::string> old_uids;
    for (json::value* o : s.olds()) {
      if (get_int(*o, {"status", "replicas"}) > 0) return true;
      old_uids.insert(std::string(uid_of(*o)));
    }
    for (const ObjectPtr& p : pod_inf_->list()) {
      if (namespace_of(*p) != s.ns) continue;
      const json::object* ref = controller_ref(*p);
      if (!ref) continue;
      if (!old_uids.contains(std::string(get_string(json::value(*ref), {"uid"})))) continue;
      std::string_view phase = get_string(*p, {"status", "phase"});
      if (phase == "Failed" || phase == "Succeeded") continue;
      return true;
    }
    return false;
  }

  Awaitable<Result<void>> rollout_recreate(State& s) {
    if (auto r = co_await get_new_rs(s, false); !r) co_return r;
    bool scaled_down = false;
    for (json::value* o : s.olds()) {
      if (rs_replicas(*o) == 0) continue;
      auto r = co_await scale_rs_event(s, *o, 0);
      if (!r) co_return std::unexpected(r.error());
      scaled_down = scaled_down || *r;
    }
    if (scaled_down) co_return co_await sync_rollout_status(s);
    if (old_pods_running(s)) co_return co_await sync_rollout_status(s);
    if (!s.new_rs()) {
      if (auto r = co_await get_new_rs(s, true); !r) co_return r;
      if (!s.new_rs()) co_return Result<void>{};
    }
    if (auto r = co_await scale_rs_event(s, *s.new_rs(), s.p.replicas); !r) {
      co_return std::unexpected(r.error());
    }
    {
      json::object st = calculate_status(s);
      if (deployment_complete(s, st)) {
        if (auto r = co_await cleanup(s); !r) co_return r;
      }
    }
    co_return co_await sync_rollout_status(s);
  }

  client::Client client_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer* d_inf_ = nullptr;
  client::Informer* rs_inf_ = nullptr;
  client::Informer* pod_inf_ = nullptr;
};

}  // namespace

std::unique_ptr<loop::Controller> make_deployment_controller(loop::ControllerContext& ctx) {
  return std::make_unique<DeploymentController>(ctx);
}

}  // namespace podwarp::apps
