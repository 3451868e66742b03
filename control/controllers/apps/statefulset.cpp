// StatefulSet controller (upstream pkg/controller/statefulset): stable pod names
// <set>-<ordinal>, OrderedReady and Parallel pod management, RollingUpdate (reverse ordinal,
// partition) and OnDelete, revisions by controller-revision-hash.
//
// volumeClaimTemplates: before a pod is created, each template's claim
// <template>-<set>-<ordinal> is created when missing (labels: the template's plus the set's
// matchLabels; a controller reference to the set when persistentVolumeClaimRetentionPolicy
// whenDeleted is Delete) and the pod gets a volume named after the template that uses it.
// Existing claims are reused as they are; whenScaled Delete is not implemented (claims of
// scaled-down ordinals stay).
//
// Not implemented: ControllerRevision objects (not served): the revision names are computed from
// the current template ("<set>-<hash>"), so a pod re-created below the partition gets the update
// revision's template (upstream would use the stored current revision).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "controllers/apps/apps.h"
#include "controllers/apps/claim.h"
#include "controllers/apps/common.h"
#include "loop/enqueue.h"
#include "loop/work_queue.h"
#include "podwarp/log.h"
#include "podwarp/selector.h"

namespace podwarp::apps {
namespace {

constexpr std::string_view kRevisionHashLabel = "controller-revision-hash";

// The ordinal of `pod` as a pod of set `set`, or -1.
std::int64_t ordinal_of(std::string_view set, const json::value& pod) {
  std::string_view n = name_of(pod);
  if (n.size() <= set.size() + 1 || n.substr(0, set.size()) != set || n[set.size()] != '-') {
    return -1;
  }
  std::string_view digits = n.substr(set.size() + 1);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size()) return -1;
  return v;
}

bool running_and_ready(const json::value& pod) {
  return get_string(pod, {"status", "phase"}) == "Running" && pod_ready(pod);
}

bool healthy(const json::value& pod, std::int64_t min_ready) {
  return running_and_ready(pod) && !being_deleted(pod) &&
         pod_available(pod, min_ready, Clock::now());
}

class StatefulSetController : public loop::Controller {
 public:
  explicit StatefulSetController(loop::ControllerContext& ctx)
      : client_(ctx.client),
        recorder_(ctx.recorder("statefulset-controller")),
        queue_(ctx.executor, "statefulset",
               [this](std::string key) { return sync(std::move(key)); }, ctx.options.workers) {
    auto& inf = ctx.informers;
    sts_inf_ = &inf.informer(statefulsets_resource());
    pod_inf_ = &inf.informer(pods_resource());
    pvc_inf_ = &inf.informer(pvcs_resource());
    loop::on_object_change(inf, statefulsets_resource(),
                           [this](const json::value& s) { queue_.add(key_of(s)); });
    inf.on_add(pods_resource(), [this](const json::value& p) { pod_changed(p); });
    inf.on_update(pods_resource(), [this](const json::value& o, const json::value& p) {
      pod_changed(o);
      pod_changed(p);
      if (ObjectPtr s = owner_of(p)) {
        std::int64_t mrs = get_int(*s, {"spec", "minReadySeconds"});
        if (mrs > 0 && !pod_ready(o) && pod_ready(p)) {
          queue_.add_after(key_of(*s), std::chrono::seconds(mrs + 1));
        }
      }
    });
    inf.on_delete(pods_resource(), [this](const json::value& p) { pod_changed(p); });
  }

  std::string_view name() const override { return "statefulset"; }
  void start() override { queue_.start(); }
  void stop() override { queue_.stop(); }

 private:
  ObjectPtr owner_of(const json::value& pod) const {
    return loop::cached_controller(*sts_inf_, pod, "StatefulSet");
  }

  void pod_changed(const json::value& pod) {
    if (ObjectPtr s = owner_of(pod)) {
      queue_.add(key_of(*s));
      return;
    }
    if (controller_ref(pod)) return;
    loop::for_each_selecting(*sts_inf_, pod,
                             [this](const json::value& s) { queue_.add(key_of(s)); });
  }

  Awaitable<Result<bool>> create_pod(const json::value& set, const json::value& tmpl,
                                     std::int64_t ordinal, const std::string& revision) {
    const std::string ns(namespace_of(set));
    const std::string set_name(name_of(set));
    std::string pod_name = fmt::format("{}-{}", set_name, ordinal);
    json::value pod = pod_from_template(tmpl, make_controller_ref(set, "apps/v1", "StatefulSet"), ns);
    json::object& meta = pod.as_object()["metadata"].as_object();
    meta["name"] = pod_name;
    json::object& labels = ensure_object(meta, "labels");
    labels["statefulset.kubernetes.io/pod-name"] = pod_name;
    labels["apps.kubernetes.io/pod-index"] = std::to_string(ordinal);
    labels[kRevisionHashLabel] = revision;
    json::object& spec = pod.as_object()["spec"].as_object();
    if (auto r = co_await create_claims(set, ordinal, pod_name, spec); !r) {
      co_return std::unexpected(r.error());
    }
    spec["hostname"] = pod_name;
    std::string_view svc = get_string(set, {"spec", "serviceName"});
    if (!svc.empty()) spec["subdomain"] = svc;
    auto r = co_await loop::api_create(client_, pods_resource(), ns, pod);
    if (!r) {
      if (r.error().code == 409 && r.error().reason == "AlreadyExists") co_return false;
      recorder_.record(set, "Warning", "FailedCreate",
                       fmt::format("create Pod {} in StatefulSet {} failed error: {}", pod_name,
                                   set_name, r.error().message));
      co_return std::unexpected(r.error());
    }
    recorder_.record(set, "Normal", "SuccessfulCreate",
                     fmt::format("create Pod {} in StatefulSet {} successful", pod_name, set_name));
    co_return true;
  }

  // upstream createPersistentVolumeClaims + updateStorage: the missing claims of `ordinal`
  // are created, and `pod_spec` gets one volume per claim template (replacing a volume of the
  // same name).
  Awaitable<Result<void>> create_claims(const json::value& set, std::int64_t ordinal,
                                        const std::string& pod_name, json::object& pod_spec) {
    const json::value* templates = find_path(set, {"spec", "volumeClaimTemplates"});
    if (templates == nullptr || !templates->is_array() || templates->get_array().empty()) {
      co_return Result<void>{};
    }
    const std::string ns(namespace_of(set));
    const std::string set_name(name_of(set));
    const bool owned = get_string(set, {"spec", "persistentVolumeClaimRetentionPolicy",
                                        "whenDeleted"}) == "Delete";
    json::array volumes;
    std::vector<std::string> names;
    for (const json::value& t : templates->get_array()) {
      const std::string tname(name_of(t));
      const std::string claim_name = fmt::format("{}-{}-{}", tname, set_name, ordinal);
      names.push_back(tname);
      volumes.push_back(json::object{
          {"name", tname}, {"persistentVolumeClaim", json::object{{"claimName", claim_name}}}});
      if (pvc_inf_->get(ns, claim_name)) continue;
      json::object meta{{"name", claim_name}, {"namespace", ns}};
      json::object labels;
      if (const json::object* l = labels_of(t)) labels = *l;
      if (const json::value* ml = find_path(set, {"spec", "selector", "matchLabels"});
          ml && ml->is_object()) {
        for (const auto& kv : ml->get_object()) labels[kv.key()] = kv.value();
      }
      if (!labels.empty()) meta["labels"] = std::move(labels);
      if (const json::value* a = find_path(t, {"metadata", "annotations"}))
        meta["annotations"] = *a;
      if (owned) {
        meta["ownerReferences"] = json::array{make_controller_ref(set, "apps/v1", "StatefulSet")};
      }
      const json::value* tspec = find_path(t, {"spec"});
      json::value claim = json::object{{"apiVersion", "v1"},
                                       {"kind", "PersistentVolumeClaim"},
                                       {"metadata", std::move(meta)},
                                       {"spec", tspec ? *tspec : json::object{}}};
      auto r = co_await loop::api_create(client_, pvcs_resource(), ns, std::move(claim));
      if (!r && !(r.error().code == 409 && r.error().reason == "AlreadyExists")) {
        recorder_.record(
            set, "Warning", "FailedCreate",
            fmt::format("create Claim {} for Pod {} in StatefulSet {} failed error: {}", claim_name,
                        pod_name, set_name, r.error().message));
        co_return std::unexpected(r.error());
      }
      if (r) {
        recorder_.record(set, "Normal", "SuccessfulCreate",
                         fmt::format("create Claim {} Pod {} in StatefulSet {} success", claim_name,
                                     pod_name, set_name));
      }
    }
    if (const json::value* current = pod_spec.if_contains("volumes");
        current && current->is_array()) {
      for (const json::value& v : current->get_array()) {
        std::string_view n = get_string(v, {"name"});
        if (std::find(names.begin(), names.end(), n) == names.end()) volumes.push_back(v);
      }
    }
    pod_spec["volumes"] = std::move(volumes);
    co_return Result<void>{};
  }

  Awaitable<Result<void>> delete_pod(const json::value& set, const json::value& pod) {
    auto r = co_await loop::api_delete(client_, pods_resource(), std::string(namespace_of(pod)),
                                       std::string(name_of(pod)));
    if (!r) {
      if (r.error().is_not_found()) co_return Result<void>{};
      recorder_.record(set, "Warning", "FailedDelete",
                       fmt::format("delete Pod {} in StatefulSet {} failed error: {}",
                                   name_of(pod), name_of(set), r.error().message));
      co_return std::unexpected(r.error());
    }
    recorder_.record(set, "Normal", "SuccessfulDelete",
                     fmt::format("delete Pod {} in StatefulSet {} successful", name_of(pod),
                                 name_of(set)));
    co_return Result<void>{};
  }

  Awaitable<Result<void>> sync(std::string key) {
    auto [ns, name] = split_key(key);
    ObjectPtr sp = sts_inf_->get(ns, name);
    if (!sp) co_return Result<void>{};
    json::value set = *sp;
    ensure_kind(set, "apps/v1", "StatefulSet");
    const json::value* sel_json = find_path(set, {"spec", "selector"});
    auto selector = sel_json ? LabelSelector::from_json(*sel_json)
                             : std::expected<LabelSelector, std::string>(
                                   std::unexpected(std::string("no selector")));
    if (!selector || selector->empty()) co_return Result<void>{};
    const json::value* tmpl_ptr = find_path(set, {"spec", "template"});
    if (!tmpl_ptr || !tmpl_ptr->is_object()) co_return Result<void>{};
    const json::value tmpl = *tmpl_ptr;

    std::optional<std::int64_t> collision;
    if (const json::value* c = find_path(set, {"status", "collisionCount"}); c && c->is_number()) {
      collision = get_int(set, {"status", "collisionCount"});
    }
    const std::string update_rev = name + "-" + compute_hash(tmpl, collision);
    std::string current_rev(get_string(set, {"status", "currentRevision"}));
    if (current_rev.empty()) current_rev = update_rev;

    auto claimed = co_await claim_pods(client_, set, "StatefulSet", *selector,
                                       pods_in(*pod_inf_, ns), /*include_inactive=*/true);
    if (!claimed) co_return std::unexpected(claimed.error());

    const std::int64_t replicas = get_int(set, {"spec", "replicas"}, 1);
    const std::int64_t start = get_int(set, {"spec", "ordinals", "start"}, 0);
    const std::int64_t min_ready = get_int(set, {"spec", "minReadySeconds"});
    const bool monotonic = get_string(set, {"spec", "podManagementPolicy"}) != "Parallel";
    const bool on_delete = get_string(set, {"spec", "updateStrategy", "type"}) == "OnDelete";

    std::vector<ObjectPtr> slots(static_cast<std::size_t>(std::max<std::int64_t>(replicas, 0)));
    std::vector<ObjectPtr> condemned;
    for (const ObjectPtr& p : *claimed) {
      std::int64_t ord = ordinal_of(name, *p);
      if (ord >= start && ord < start + replicas) {
        slots[ord - start] = p;
      } else {
        condemned.push_back(p);
      }
    }
    std::sort(condemned.begin(), condemned.end(), [&](const ObjectPtr& a, const ObjectPtr& b) {
      return ordinal_of(name, *a) > ordinal_of(name, *b);
    });

    // Status from what exists now.
    std::int64_t st_replicas = 0, ready = 0, available = 0, current = 0, updated = 0;
    for (const ObjectPtr& p : *claimed) {
      ++st_replicas;
      if (running_and_ready(*p)) {
        ++ready;
        if (pod_available(*p, min_ready, Clock::now())) ++available;
      }
      if (!being_deleted(*p)) {
        std::string_view rev = get_string(*p, {"metadata", "labels", kRevisionHashLabel});
        if (rev == current_rev) ++current;
        if (rev == update_rev) ++updated;
      }
    }

    std::optional<client::Error> err;
    if (!being_deleted(set)) {
      auto r = co_await reconcile(set, tmpl, name, update_rev, slots, condemned, start, min_ready,
                                  monotonic, on_delete);
      if (!r) err = r.error();
    }

    json::object st;
    st["observedGeneration"] = get_int(set, {"metadata", "generation"});
    st["replicas"] = st_replicas;
    st["readyReplicas"] = ready;
    st["availableReplicas"] = available;
    st["currentReplicas"] = current;
    st["updatedReplicas"] = updated;
    st["currentRevision"] = current_rev;
    st["updateRevision"] = update_rev;
    if (collision) st["collisionCount"] = *collision;
    // completeRollingUpdate
    if (!on_delete && updated == st_replicas && ready == st_replicas && st_replicas == replicas) {
      st["currentReplicas"] = updated;
      st["currentRevision"] = update_rev;
    }
    static const json::value kEmpty = json::object();
    const json::value* old = find_path(set, {"status"});
    json::value old_cmp = old ? *old : kEmpty;
    if (old_cmp.is_object()) old_cmp.as_object().erase("conditions");
    if (canonical(json::value(st)) != canonical(old_cmp)) {
      json::object patch;
      patch["status"] = std::move(st);
      auto r = co_await loop::api_patch_status(client_, statefulsets_resource(), ns, name,
                                               to_json(patch));
      if (!r && !r.error().is_not_found() && !err) err = r.error();
    }
    if (min_ready > 0 && ready != available) queue_.add_after(key, std::chrono::seconds(min_ready));
    if (err) co_return std::unexpected(*err);
    co_return Result<void>{};
  }

  Awaitable<Result<void>> reconcile(const json::value& set, const json::value& tmpl,
                                    const std::string& name, const std::string& update_rev,
                                    std::vector<ObjectPtr>& slots,
                                    const std::vector<ObjectPtr>& condemned, std::int64_t start,
                                    std::int64_t min_ready, bool monotonic, bool on_delete) {
    // The first unhealthy pod, in processing order.
    const json::value* first_unhealthy = nullptr;
    for (const ObjectPtr& p : slots) {
      if (p && !healthy(*p, min_ready)) {
        first_unhealthy = p.get();
        break;
      }
    }
    if (!first_unhealthy) {
      for (const ObjectPtr& p : condemned) {
        if (!healthy(*p, min_ready)) {
          first_unhealthy = p.get();
          break;
        }
      }
    }
    std::optional<client::Error> err;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      const std::int64_t ord = start + static_cast<std::int64_t>(i);
      if (slots[i]) {
        std::string_view phase = get_string(*slots[i], {"status", "phase"});
        if ((phase == "Failed" || phase == "Succeeded") && !being_deleted(*slots[i])) {
          if (auto r = co_await delete_pod(set, *slots[i]); !r) co_return r;
          if (monotonic) co_return Result<void>{};
          continue;
        }
      }
      if (!slots[i]) {
        auto r = co_await create_pod(set, tmpl, ord, update_rev);
        if (!r) {
          if (monotonic) co_return std::unexpected(r.error());
          if (!err) err = r.error();
          continue;
        }
        if (monotonic) co_return Result<void>{};
        continue;
      }
      if (being_deleted(*slots[i]) && monotonic) co_return Result<void>{};
      if (!healthy(*slots[i], min_ready) && monotonic) co_return Result<void>{};
    }
    for (const ObjectPtr& p : condemned) {
      if (being_deleted(*p)) {
        if (monotonic) co_return Result<void>{};
        continue;
      }
      if (monotonic && first_unhealthy && first_unhealthy != p.get()) co_return Result<void>{};
      if (auto r = co_await delete_pod(set, *p); !r) {
        if (monotonic) co_return r;
        if (!err) err = r.error();
        continue;
      }
      if (monotonic) co_return Result<void>{};
    }
    if (err) co_return std::unexpected(*err);
    if (on_delete) co_return Result<void>{};
    // RollingUpdate: highest ordinal first, down to the partition, one pod at a time.
    const std::int64_t partition =
        get_int(set, {"spec", "updateStrategy", "rollingUpdate", "partition"}, 0);
    for (std::int64_t i = static_cast<std::int64_t>(slots.size()) - 1; i >= 0; --i) {
      if (start + i < start + partition) break;
      const ObjectPtr& p = slots[i];
      if (!p) co_return Result<void>{};
      if (get_string(*p, {"metadata", "labels", kRevisionHashLabel}) != update_rev &&
          !being_deleted(*p)) {
        co_return co_await delete_pod(set, *p);
      }
      if (!healthy(*p, min_ready)) co_return Result<void>{};
    }
    (void)name;
    co_return Result<void>{};
  }

  client::Client client_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer* sts_inf_ = nullptr;
  client::Informer* pod_inf_ = nullptr;
  client::Informer* pvc_inf_ = nullptr;
};

}  // namespace

std::unique_ptr<loop::Controller> make_statefulset_controller(loop::ControllerContext& ctx) {
  return std::make_unique<StatefulSetController>(ctx);
}

}  // namespace podwarp::apps
