// ReplicaSet controller (upstream pkg/controller/replicaset).
#include <fmt/format.h>

#include <algorithm>

#include "controllers/apps/apps.h"
#include "controllers/apps/async.h"
#include "controllers/apps/common.h"
#include "controllers/apps/pod_control.h"
#include "loop/enqueue.h"
#include "loop/work_queue.h"
#include "podwarp/log.h"
#include "podwarp/selector.h"
#include "podwarp/time.h"

namespace podwarp::apps {
namespace {

constexpr int kBurstReplicas = 500;

class ReplicaSetController : public loop::Controller {
 public:
  explicit ReplicaSetController(loop::ControllerContext& ctx)
      : ctx_(ctx),
        client_(ctx.client),
        recorder_(ctx.recorder("replicaset-controller")),
        queue_(ctx.executor, "replicaset",
               [this](std::string key) { return sync(std::move(key)); }, ctx.options.workers) {
    auto& inf = ctx.informers;
    rs_inf_ = &inf.informer(replicasets_resource());
    pod_inf_ = &inf.informer(pods_resource());
    loop::on_object_change(
        inf, replicasets_resource(), [this](const json::value& rs) { queue_.add(key_of(rs)); },
        false);
    inf.on_delete(replicasets_resource(), [this](const json::value& rs) {
      expectations_.forget(key_of(rs));
      queue_.add(key_of(rs));
    });
    inf.on_add(pods_resource(), [this](const json::value& p) { pod_added(p); });
    inf.on_update(pods_resource(),
                  [this](const json::value& o, const json::value& n) { pod_updated(o, n); });
    inf.on_delete(pods_resource(), [this](const json::value& p) { pod_deleted(p); });
  }

  std::string_view name() const override { return "replicaset"; }
  void start() override { queue_.start(); }
  void stop() override { queue_.stop(); }

 private:
  // The ReplicaSet controlling `pod` (by controllerRef, uid checked), or nullptr.
  ObjectPtr owner_of(const json::value& pod) const {
    return loop::cached_controller(*rs_inf_, pod, "ReplicaSet");
  }

  void enqueue_matching(const json::value& pod) {
    loop::for_each_selecting(*rs_inf_, pod,
                             [this](const json::value& rs) { queue_.add(key_of(rs)); });
  }

  void pod_added(const json::value& pod) {
    if (being_deleted(pod)) {
      pod_deleted(pod);
      return;
    }
    if (controller_ref(pod)) {
      if (ObjectPtr rs = owner_of(pod)) {
        expectations_.creation_observed(key_of(*rs));
        queue_.add(key_of(*rs));
      }
      return;
    }
    enqueue_matching(pod);
  }

  void pod_updated(const json::value& old_pod, const json::value& pod) {
    if (get_string(old_pod, {"metadata", "resourceVersion"}) ==
        get_string(pod, {"metadata", "resourceVersion"})) {
      return;
    }
    if (being_deleted(pod)) {
      pod_deleted(pod);
      return;
    }
    ObjectPtr old_rs = owner_of(old_pod);
    ObjectPtr rs = owner_of(pod);
    if (old_rs && (!rs || uid_of(*old_rs) != uid_of(*rs))) queue_.add(key_of(*old_rs));
    if (rs) {
      queue_.add(key_of(*rs));
      // A pod turning ready counts towards availableReplicas only after minReadySeconds.
      std::int64_t mrs = get_int(*rs, {"spec", "minReadySeconds"});
      if (mrs > 0 && !pod_ready(old_pod) && pod_ready(pod)) {
        queue_.add_after(key_of(*rs), std::chrono::seconds(mrs) + std::chrono::seconds(1));
      }
      return;
    }
    if (!controller_ref(pod)) enqueue_matching(pod);
  }

  void pod_deleted(const json::value& pod) {
    ObjectPtr rs = owner_of(pod);
    if (!rs) return;
    std::string k = key_of(*rs);
    expectations_.deletion_observed(k, key_of(pod));
    queue_.add(k);
  }

  Awaitable<Result<void>> patch_refs(const json::value& pod, json::array refs) {
    auto r = co_await patch_owner_refs(client_, pod, std::move(refs));
    if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
    co_return Result<void>{};
  }

  Awaitable<Result<void>> sync(std::string key) {
    auto [ns, name] = split_key(key);
    ObjectPtr rsp = rs_inf_->get(ns, name);
    if (!rsp) {
      expectations_.forget(key);
      co_return Result<void>{};
    }
    json::value rs = *rsp;
    ensure_kind(rs, "apps/v1", "ReplicaSet");
    const json::value* sel_json = find_path(rs, {"spec", "selector"});
    auto selector = sel_json ? LabelSelector::from_json(*sel_json)
                             : std::expected<LabelSelector, std::string>(
                                   std::unexpected(std::string("no selector")));
    if (!selector || selector->empty()) {
      log::warn("replicaset {}: invalid selector, skipping", key);
      co_return Result<void>{};
    }
    const bool needs_sync = expectations_.satisfied(key);
    const bool deleting = being_deleted(rs);

    // Claim: keep matching controlled pods, adopt matching orphans, release the rest.
    std::vector<ObjectPtr> owned;
    for (const ObjectPtr& p : pod_inf_->list()) {
      if (namespace_of(*p) != ns || !pod_active(*p)) continue;
      const json::object* ref = controller_ref(*p);
      bool matches = selector->matches(*p);
      if (ref) {
        const json::value* ref_uid = ref->if_contains("uid");
        if (!ref_uid || !ref_uid->is_string() || ref_uid->get_string() != uid_of(rs)) continue;
        if (matches) {
          owned.push_back(p);
        } else if (!deleting) {
          json::array refs;
          for (const json::value& r : find_path(*p, {"metadata", "ownerReferences"})->get_array()) {
            if (get_string(r, {"uid"}) != uid_of(rs)) refs.push_back(r);
          }
          auto r = co_await patch_refs(*p, std::move(refs));
          if (!r) co_return r;
        }
      } else if (matches && !deleting) {
        json::array refs;
        if (const json::value* old = find_path(*p, {"metadata", "ownerReferences"});
            old && old->is_array()) {
          refs = old->get_array();
        }
        refs.push_back(make_controller_ref(rs, "apps/v1", "ReplicaSet"));
        auto r = co_await patch_refs(*p, std::move(refs));
        if (!r) co_return r;
        owned.push_back(p);
      }
    }

    std::optional<client::Error> manage_error;
    std::string failure_reason;
    if (needs_sync && !deleting) {
      auto r = co_await manage_replicas(rs, key, owned, failure_reason);
      if (!r) manage_error = r.error();
    }

    // Status.
    const auto now = Clock::now();
    const std::int64_t min_ready = get_int(rs, {"spec", "minReadySeconds"});
    const json::value* tmpl_labels = find_path(rs, {"spec", "template", "metadata", "labels"});
    std::int64_t fully = 0, ready = 0, available = 0;
    for (const ObjectPtr& p : owned) {
      bool full = true;
      if (tmpl_labels && tmpl_labels->is_object()) {
        const json::object* pl = labels_of(*p);
        for (const auto& kv : tmpl_labels->get_object()) {
          const json::value* v = pl ? pl->if_contains(kv.key()) : nullptr;
          if (!v || *v != kv.value()) full = false;
        }
      }
      if (full) ++fully;
      if (pod_ready(*p)) ++ready;
      if (pod_available(*p, min_ready, now)) ++available;
    }
    json::object status;
    status["replicas"] = static_cast<std::int64_t>(owned.size());
    status["fullyLabeledReplicas"] = fully;
    status["readyReplicas"] = ready;
    status["availableReplicas"] = available;
    status["observedGeneration"] = get_int(rs, {"metadata", "generation"});
    // ReplicaFailure condition.
    json::array conds;
    const json::value* old_status = find_path(rs, {"status"});
    if (old_status) {
      if (const json::value* c = find_path(*old_status, {"conditions"}); c && c->is_array()) {
        for (const json::value& e : c->get_array()) {
          if (get_string(e, {"type"}) != "ReplicaFailure") conds.push_back(e);
        }
      }
    }
    if (manage_error && !failure_reason.empty()) {
      const json::object* prev =
          old_status ? find_condition(*old_status, "ReplicaFailure") : nullptr;
      json::object c;
      c["type"] = "ReplicaFailure";
      c["status"] = "True";
      c["reason"] = failure_reason;
      c["message"] = manage_error->message;
      c["lastTransitionTime"] = prev && prev->if_contains("lastTransitionTime")
                                    ? prev->at("lastTransitionTime")
                                    : json::value(format_rfc3339(now));
      conds.push_back(std::move(c));
    }
    status["conditions"] = conds.empty() ? json::value(nullptr) : json::value(std::move(conds));
    static const json::value kEmpty = json::object();
    if (canonical(json::value(status)) != canonical(old_status ? *old_status : kEmpty)) {
      json::object patch;
      patch["status"] = status;
      auto r = co_await loop::api_patch_status(client_, replicasets_resource(), ns, name,
                                               to_json(patch));
      if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
    }
    if (min_ready > 0 && ready == static_cast<std::int64_t>(owned.size()) && available != ready) {
      queue_.add_after(key, std::chrono::seconds(min_ready));
    }
    if (manage_error) co_return std::unexpected(*manage_error);
    co_return Result<void>{};
  }

  Awaitable<Result<void>> manage_replicas(const json::value& rs, const std::string& key,
                                          std::vector<ObjectPtr> pods, std::string& failure) {
    const std::int64_t want = get_int(rs, {"spec", "replicas"}, 1);
    std::int64_t diff = static_cast<std::int64_t>(pods.size()) - want;
    const std::string ns(namespace_of(rs));
    if (diff < 0) {
      int n = static_cast<int>(std::min<std::int64_t>(-diff, kBurstReplicas));
      expectations_.expect_creations(key, n);
      json::value pod = pod_from_template(find_path(rs, {"spec", "template"})
                                              ? *find_path(rs, {"spec", "template"})
                                              : json::value(json::object()),
                                          make_controller_ref(rs, "apps/v1", "ReplicaSet"), ns);
      pod.as_object()["metadata"].as_object()["generateName"] = std::string(name_of(rs)) + "-";
      // Slow start: batches of 1, 2, 4, ... stop at the first batch with a failure.
      int remaining = n, batch = 1;
      std::optional<client::Error> err;
      while (remaining > 0) {
        int size = std::min(batch, remaining);
        std::vector<std::function<Awaitable<Result<void>>()>> tasks;
        for (int i = 0; i < size; ++i) {
          tasks.push_back([this, pod, ns, rs]() -> Awaitable<Result<void>> {
            co_return co_await create_owned_pod(client_, recorder_, rs, ns, pod);
          });
        }
        auto results = co_await run_all(std::move(tasks));
        remaining -= size;
        int failed = 0;
        for (auto& r : results) {
          if (!r) {
            ++failed;
            if (!err) err = r.error();
          }
        }
        for (int i = 0; i < failed; ++i) expectations_.creation_observed(key);
        if (failed > 0) {
          for (int i = 0; i < remaining; ++i) expectations_.creation_observed(key);
          break;
        }
        batch *= 2;
      }
      if (err) {
        failure = "FailedCreate";
        co_return std::unexpected(*err);
      }
    } else if (diff > 0) {
      int n = static_cast<int>(std::min<std::int64_t>(diff, kBurstReplicas));
      std::sort(pods.begin(), pods.end(),
                [](const ObjectPtr& a, const ObjectPtr& b) { return pod_delete_before(*a, *b); });
      pods.resize(n);
      std::vector<std::string> keys;
      for (const ObjectPtr& p : pods) keys.push_back(key_of(*p));
      expectations_.expect_deletions(key, keys);
      std::vector<std::function<Awaitable<Result<void>>()>> tasks;
      for (const ObjectPtr& p : pods) {
        tasks.push_back([this, p, key, rs]() -> Awaitable<Result<void>> {
          co_return co_await delete_owned_pod(client_, recorder_, expectations_, key, rs, *p);
        });
      }
      auto results = co_await run_all(std::move(tasks));
      for (auto& r : results) {
        if (!r) {
          failure = "FailedDelete";
          co_return std::unexpected(r.error());
        }
      }
    }
    co_return Result<void>{};
  }

  loop::ControllerContext& ctx_;
  client::Client client_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer* rs_inf_ = nullptr;
  client::Informer* pod_inf_ = nullptr;
  Expectations expectations_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_replicaset_controller(loop::ControllerContext& ctx) {
  return std::make_unique<ReplicaSetController>(ctx);
}

}  // namespace podwarp::apps
