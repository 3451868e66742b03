#include "core/persistent_volume.h"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "controllers/apps/daemonset_util.h"
#include "podwarp/informer.h"
#include "podwarp/log.h"
#include "podwarp/quantity.h"
#include "podwarp/selector.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kBindCompleted = "pv.kubernetes.io/bind-completed";
constexpr std::string_view kBoundByController = "pv.kubernetes.io/bound-by-controller";
constexpr std::string_view kProvisionedBy = "pv.kubernetes.io/provisioned-by";
constexpr std::string_view kSelectedNode = "volume.kubernetes.io/selected-node";
constexpr std::string_view kStorageProvisioner = "volume.kubernetes.io/storage-provisioner";
constexpr std::string_view kBetaStorageProvisioner =
    "volume.beta.kubernetes.io/storage-provisioner";

std::optional<Quantity> storage_of(const json::value& obj,
                                   std::initializer_list<std::string_view> path) {
  const json::value* v = find_path(obj, path);
  if (v == nullptr) return std::nullopt;
  auto q = Quantity::from_json(*v);
  if (!q) return std::nullopt;
  return *q;
}

std::vector<std::string_view> strings_at(const json::value& obj,
                                         std::initializer_list<std::string_view> path) {
  std::vector<std::string_view> out;
  const json::value* a = find_path(obj, path);
  if (a == nullptr || !a->is_array()) return out;
  for (const json::value& s : a->get_array()) {
    if (s.is_string()) out.push_back(s.get_string());
  }
  return out;
}

std::string_view volume_mode(const json::value& obj) {
  return get_string(obj, {"spec", "volumeMode"}, "Filesystem");
}

// The PV's required node affinity admits `node` (no affinity: every node).
bool affinity_admits(const json::value& pv, const json::value& node) {
  const json::value* req = find_path(pv, {"spec", "nodeAffinity", "required"});
  if (req == nullptr) return true;
  json::value spec = json::object{
      {"affinity",
       json::object{{"nodeAffinity",
                     json::object{{"requiredDuringSchedulingIgnoredDuringExecution", *req}}}}}};
  return apps::node_matches(spec, node);
}

// A node's Ready condition has the pod's shape (status.conditions[type=Ready].status).
bool node_ready(const json::value& node) { return pod_ready(node); }

// upstream's ExternalProvisioning event message.
std::string external_provisioning(std::string_view provisioner) {
  return fmt::format(
      "Waiting for a volume to be created either by the external provisioner '{}' or manually "
      "by the system administrator. If volume creation is delayed, please verify that the "
      "provisioner is running and correctly registered.",
      provisioner);
}

json::value with_kind(const json::value& obj, std::string_view kind) {
  json::value o = obj;
  if (o.is_object()) {
    o.as_object()["apiVersion"] = "v1";
    o.as_object()["kind"] = kind;
  }
  return o;
}

json::object claim_ref(const json::value& claim) {
  return json::object{{"apiVersion", "v1"},
                      {"kind", "PersistentVolumeClaim"},
                      {"namespace", namespace_of(claim)},
                      {"name", name_of(claim)},
                      {"uid", uid_of(claim)},
                      {"resourceVersion", get_string(claim, {"metadata", "resourceVersion"})}};
}

}  // namespace

std::string claim_class(const json::value& claim) {
  if (const json::value* c = find_path(claim, {"spec", "storageClassName"}); c && c->is_string()) {
    return std::string(c->get_string());
  }
  return std::string(
      get_string(claim, {"metadata", "annotations", "volume.beta.kubernetes.io/storage-class"}));
}

bool volume_bound_to_claim(const json::value& pv, const json::value& claim) {
  const json::value* ref = find_path(pv, {"spec", "claimRef"});
  if (ref == nullptr || !ref->is_object()) return false;
  if (get_string(*ref, {"name"}) != name_of(claim) ||
      get_string(*ref, {"namespace"}) != namespace_of(claim)) {
    return false;
  }
  std::string_view uid = get_string(*ref, {"uid"});
  return uid.empty() || uid == uid_of(claim);
}

std::string volume_mismatch(const json::value& pv, const json::value& claim) {
  auto want = storage_of(claim, {"spec", "resources", "requests", "storage"});
  auto have = storage_of(pv, {"spec", "capacity", "storage"});
  if (!have || (want && *have < *want)) return "requested PV is too small";
  std::vector<std::string_view> modes = strings_at(pv, {"spec", "accessModes"});
  for (std::string_view m : strings_at(claim, {"spec", "accessModes"})) {
    if (std::find(modes.begin(), modes.end(), m) == modes.end()) {
      return "incompatible accessMode";
    }
  }
  if (get_string(pv, {"spec", "storageClassName"}) != claim_class(claim)) {
    return "storageClassName does not match";
  }
  if (volume_mode(pv) != volume_mode(claim)) return "incompatible volumeMode";
  return {};
}

client::ObjectPtr best_volume(const json::value& claim, const std::vector<client::ObjectPtr>& pvs,
                              const json::value* node, bool wait_for_node) {
  std::optional<LabelSelector> selector;
  if (const json::value* s = find_path(claim, {"spec", "selector"}); s && s->is_object()) {
    auto parsed = LabelSelector::from_json(*s);
    if (!parsed) return nullptr;  // an invalid selector matches nothing
    selector = std::move(*parsed);
  }
  client::ObjectPtr best;
  std::optional<Quantity> best_size;
  for (const client::ObjectPtr& pv : pvs) {
    if (being_deleted(*pv) || !volume_mismatch(*pv, claim).empty()) continue;
    const bool node_ok = node == nullptr || affinity_admits(*pv, *node);
    if (volume_bound_to_claim(*pv, claim)) return node_ok ? pv : nullptr;
    if (wait_for_node && node == nullptr) continue;
    if (get_string(*pv, {"status", "phase"}) != "Available" ||
        find_path(*pv, {"spec", "claimRef"}) != nullptr || !node_ok) {
      continue;
    }
    if (selector && !selector->matches(*pv)) continue;
    auto size = storage_of(*pv, {"spec", "capacity", "storage"});
    if (!best || *size < *best_size || (*size == *best_size && name_of(*pv) < name_of(*best))) {
      best = pv;
      best_size = size;
    }
  }
  return best;
}

json::value local_path_volume(const json::value& claim, const json::value& sc,
                              std::string_view node) {
  const std::string name = fmt::format("pvc-{}", uid_of(claim));
  std::string base(get_string(sc, {"parameters", "path"}));
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string path =
      fmt::format("{}/{}_{}_{}", base, name, namespace_of(claim), name_of(claim));
  json::object hostname{
      {"key", "kubernetes.io/hostname"}, {"operator", "In"}, {"values", json::array{node}}};
  json::object term{{"matchExpressions", json::array{std::move(hostname)}}};
  json::object required{{"nodeSelectorTerms", json::array{std::move(term)}}};
  const json::value* modes = find_path(claim, {"spec", "accessModes"});
  json::object spec;
  spec["capacity"] =
      json::object{{"storage", get_string(claim, {"spec", "resources", "requests", "storage"})}};
  spec["accessModes"] = modes ? *modes : json::array{};
  spec["volumeMode"] = volume_mode(claim);
  spec["hostPath"] = json::object{{"path", path}, {"type", "DirectoryOrCreate"}};
  spec["nodeAffinity"] = json::object{{"required", std::move(required)}};
  spec["claimRef"] = claim_ref(claim);
  spec["storageClassName"] = name_of(sc);
  spec["persistentVolumeReclaimPolicy"] = get_string(sc, {"reclaimPolicy"}, "Delete");
  json::object meta{{"name", name},
                    {"annotations", json::object{{kProvisionedBy, kLocalPathProvisioner}}},
                    {"finalizers", json::array{kLocalPathCleanupFinalizer}}};
  return json::object{{"apiVersion", "v1"},
                      {"kind", "PersistentVolume"},
                      {"metadata", std::move(meta)},
                      {"spec", std::move(spec)}};
}

namespace {

class PersistentVolumeController : public ControllerBase {
 public:
  explicit PersistentVolumeController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "persistentvolume-binder"),
        pv_res_(resource("", "persistentvolumes")),
        pvc_res_(resource("", "persistentvolumeclaims")),
        sc_res_(resource("storage.k8s.io", "storageclasses")),
        pod_res_(resource("", "pods")),
        node_res_(resource("", "nodes")),
        pvs_(informers_.informer(pv_res_)),
        claims_(informers_.informer(pvc_res_)),
        classes_(informers_.informer(sc_res_)),
        pods_(informers_.informer(pod_res_)),
        nodes_(informers_.informer(node_res_)),
        recorder_(ctx.recorder("persistentvolume-controller")) {}

  void init() override {
    using Self = PersistentVolumeController;
    using V = const json::value&;
    std::weak_ptr<Self> w = std::static_pointer_cast<Self>(shared_from_this());
    loop::on_object_change(informers_, pvc_res_,
                           guarded(w, [](Self& s, V c) { s.add_claim(key_of(c)); }), false);
    informers_.on_delete(pvc_res_, guarded(w, [](Self& s, V c) { s.claim_deleted(c); }));
    loop::on_object_change(informers_, pv_res_, guarded(w, [](Self& s, V v) {
                             s.queue().add("v:" + std::string(name_of(v)));
                             const json::value* ref = find_path(v, {"spec", "claimRef"});
                             if (ref != nullptr && ref->is_object()) {
                               s.add_claim(fmt::format("{}/{}", get_string(*ref, {"namespace"}),
                                                       get_string(*ref, {"name"})));
                             }
                           }));
    loop::on_object_change(informers_, sc_res_,
                           guarded(w, [](Self& s, V) { s.add_unbound_claims(); }), false);
    loop::on_object_change(informers_, node_res_,
                           guarded(w,
                                   [](Self& s, V n) {
                                     if (node_ready(n)) s.add_unbound_claims();
                                   }),
                           false);
    // A node gone: volumes being deleted that waited for it (orphaned_cleanup).
    informers_.on_delete(node_res_, guarded(w, [](Self& s, V) {
                           for (const client::ObjectPtr& pv : s.pvs_.list()) {
                             if (being_deleted(*pv)) s.queue().add("v:" + std::string(name_of(*pv)));
                           }
                         }));
    loop::on_object_change(
        informers_, pod_res_,
        guarded(w,
                [](Self& s, V p) {
                  if (get_string(p, {"spec", "nodeName"}).empty()) return;
                  const json::value* vols = find_path(p, {"spec", "volumes"});
                  if (vols == nullptr || !vols->is_array()) return;
                  for (const json::value& v : vols->get_array()) {
                    std::string_view c = get_string(v, {"persistentVolumeClaim", "claimName"});
                    if (!c.empty()) {
                      s.add_claim(fmt::format("{}/{}", namespace_of(p), c));
                    }
                  }
                }),
        false);
  }

  void on_start() override {
    for (const client::ObjectPtr& c : claims_.list()) add_claim(key_of(*c));
    for (const client::ObjectPtr& v : pvs_.list()) queue().add("v:" + std::string(name_of(*v)));
  }

  Awaitable<Result<void>> sync(std::string key) override {
    if (key.starts_with("c:")) co_return co_await sync_claim(key.substr(2));
    if (key.starts_with("v:")) co_return co_await sync_volume(key.substr(2));
    co_return Result<void>{};
  }

 private:
  void add_claim(const std::string& key) { queue().add("c:" + key); }

  void add_unbound_claims() {
    for (const client::ObjectPtr& c : claims_.list()) {
      if (get_string(*c, {"status", "phase"}) != "Bound") add_claim(key_of(*c));
    }
  }

  void claim_deleted(const json::value& claim) {
    std::string_view vol = get_string(claim, {"spec", "volumeName"});
    if (!vol.empty()) queue().add("v:" + std::string(vol));
    for (const client::ObjectPtr& pv : pvs_.list()) {
      if (volume_bound_to_claim(*pv, claim)) queue().add("v:" + std::string(name_of(*pv)));
    }
  }

  // A write that failed because its object is gone ends the sync (the deletion brings the key
  // back); anything else, a conflict with a newer version included, is retried with backoff
  // from the cache.
  static Result<void> outcome(const Result<json::value>& r) {
    if (r || r.error().is_not_found()) return Result<void>{};
    return std::unexpected(r.error());
  }

  // --- Claims ----------------------------------------------------------------------------
  Awaitable<Result<void>> sync_claim(std::string key) {
    auto [ns, name] = split_key(key);
    client::ObjectPtr cp = claims_.get(ns, name);
    if (!cp) co_return Result<void>{};
    const json::value& claim = *cp;
    std::string_view vol = get_string(claim, {"spec", "volumeName"});
    if (!vol.empty()) {
      client::ObjectPtr pv = pvs_.get("", vol);
      if (!pv) {
        // upstream: a bound claim whose volume is gone is Lost; a pre-bound one waits.
        if (get_string(claim, {"status", "phase"}) == "Bound") {
          auto got = co_await loop::api_get(client_, pv_res_, "", std::string(vol));
          if (!got && got.error().is_not_found()) co_return co_await claim_lost(claim);
        }
        co_return Result<void>{};
      }
      if (volume_bound_to_claim(*pv, claim) && find_path(*pv, {"spec", "claimRef", "uid"})) {
        co_return co_await bind(claim, *pv);
      }
      if (find_path(*pv, {"spec", "claimRef"}) != nullptr && !volume_bound_to_claim(*pv, claim)) {
        co_return Result<void>{};  // taken by another claim: the claim stays Pending
      }
      if (std::string why = volume_mismatch(*pv, claim); !why.empty()) {
        recorder_.record(with_kind(claim, "PersistentVolumeClaim"), "Warning", "VolumeMismatch",
                         fmt::format("Cannot bind to requested volume \"{}\": {}", vol, why));
        co_return Result<void>{};
      }
      co_return co_await bind(claim, *pv);
    }

    const std::string cls = claim_class(claim);
    client::ObjectPtr sc = cls.empty() ? nullptr : classes_.get("", cls);
    const bool delay = sc && get_string(*sc, {"volumeBindingMode"}) == "WaitForFirstConsumer";
    std::string node_name = selected_node(claim, delay);
    client::ObjectPtr node = node_name.empty() ? nullptr : nodes_.get("", node_name);
    client::ObjectPtr pv = best_volume(claim, pvs_.list(), node.get(), delay);
    if (pv) co_return co_await bind(claim, *pv);

    const json::value claim_obj = with_kind(claim, "PersistentVolumeClaim");
    if (!sc) {
      if (cls.empty()) {
        recorder_.record(claim_obj, "Normal", "FailedBinding",
                         "no persistent volumes available for this claim and no storage class "
                         "is set");
      }
      co_return Result<void>{};
    }
    if (delay && node_name.empty()) {
      recorder_.record(claim_obj, "Normal", "WaitForFirstConsumer",
                       "waiting for first consumer to be created before binding");
      co_return Result<void>{};
    }
    std::string_view provisioner = get_string(*sc, {"provisioner"});
    if (provisioner != kLocalPathProvisioner) {
      recorder_.record(claim_obj, "Normal", "ExternalProvisioning",
                       external_provisioning(provisioner));
      co_return Result<void>{};
    }
    if (node_name.empty()) node_name = first_ready_node();
    if (node_name.empty()) {
      recorder_.record(claim_obj, "Warning", "ProvisioningFailed",
                       "no Ready node to provision a local-path volume on");
      co_return Result<void>{};
    }
    co_return co_await provision(claim, *sc, node_name);
  }

  // The node the claim's volume must be on: the selected-node annotation, or (delayed binding)
  // the node of a scheduled pod that uses the claim; "" when none yet.
  std::string selected_node(const json::value& claim, bool from_pods) const {
    std::string_view ann = get_string(claim, {"metadata", "annotations", kSelectedNode});
    if (!ann.empty() || !from_pods) return std::string(ann);
    for (const client::ObjectPtr& p : pods_.list()) {
      if (namespace_of(*p) != namespace_of(claim)) continue;
      std::string_view node = get_string(*p, {"spec", "nodeName"});
      const json::value* vols = find_path(*p, {"spec", "volumes"});
      if (node.empty() || vols == nullptr || !vols->is_array()) continue;
      for (const json::value& v : vols->get_array()) {
        if (get_string(v, {"persistentVolumeClaim", "claimName"}) == name_of(claim)) {
          return std::string(node);
        }
      }
    }
    return {};
  }

  std::string first_ready_node() const {
    std::string best;
    for (const client::ObjectPtr& n : nodes_.list()) {
      if (node_ready(*n) && (best.empty() || name_of(*n) < best)) best = name_of(*n);
    }
    return best;
  }

  Awaitable<Result<void>> provision(const json::value& claim, const json::value& sc,
                                    const std::string& node) {
    const json::value claim_obj = with_kind(claim, "PersistentVolumeClaim");
    json::value current = claim;
    if (get_string(claim, {"metadata", "annotations", kStorageProvisioner}) !=
        kLocalPathProvisioner) {
      json::value next = claim;
      json::object& ann = ensure_object(next.as_object()["metadata"].as_object(), "annotations");
      ann[kStorageProvisioner] = kLocalPathProvisioner;
      ann[kBetaStorageProvisioner] = kLocalPathProvisioner;
      auto r = co_await loop::api_update(client_, pvc_res_, std::string(namespace_of(claim)),
                                         std::move(next));
      if (!r) co_return outcome(r);
      current = *r;
      recorder_.record(claim_obj, "Normal", "ExternalProvisioning",
                       external_provisioning(kLocalPathProvisioner));
    }
    json::value pv = local_path_volume(current, sc, node);
    const std::string pv_name(name_of(pv));
    if (client::ObjectPtr existing = pvs_.get("", pv_name))
      co_return co_await bind(current, *existing);
    recorder_.record(
        claim_obj, "Normal", "Provisioning",
        fmt::format("External provisioner is provisioning volume for claim \"{}\"", key_of(claim)));
    auto created = co_await loop::api_create(client_, pv_res_, "", std::move(pv));
    if (!created) {
      if (created.error().code == 409) co_return Result<void>{};  // made by an earlier sync
      recorder_.record(claim_obj, "Warning", "ProvisioningFailed",
                       fmt::format("failed to provision volume with StorageClass \"{}\": {}",
                                   name_of(sc), created.error().message));
      co_return std::unexpected(created.error());
    }
    recorder_.record(claim_obj, "Normal", "ProvisioningSucceeded",
                     fmt::format("Successfully provisioned volume {}", pv_name));
    co_return co_await bind(current, *created);
  }

  // upstream bind(): volume first (claimRef, then phase Bound), then the claim (volumeName and
  // annotations, then status). Every step is skipped when already done.
  Awaitable<Result<void>> bind(const json::value& claim, const json::value& volume) {
    const std::string ns(namespace_of(claim));
    json::value pv = volume;
    if (!volume_bound_to_claim(pv, claim) || !find_path(pv, {"spec", "claimRef", "uid"})) {
      json::value next = pv;
      json::object& spec = ensure_object(next.as_object(), "spec");
      spec["claimRef"] = claim_ref(claim);
      ensure_object(next.as_object()["metadata"].as_object(), "annotations")[kBoundByController] =
          "yes";
      auto r = co_await loop::api_update(client_, pv_res_, "", std::move(next));
      if (!r) co_return outcome(r);
      pv = *r;
    }
    if (get_string(pv, {"status", "phase"}) != "Bound") {
      json::value next = pv;
      json::object& st = ensure_object(next.as_object(), "status");
      st["phase"] = "Bound";
      st["lastPhaseTransitionTime"] = now_rfc3339();
      auto r = co_await loop::api_update_status(client_, pv_res_, "", std::move(next));
      if (!r) co_return outcome(r);
      pv = *r;
    }
    json::value c = claim;
    const json::value* ann = find_path(c, {"metadata", "annotations"});
    if (get_string(c, {"spec", "volumeName"}) != name_of(pv) || ann == nullptr ||
        get_string(*ann, {kBindCompleted}) != "yes") {
      json::value next = c;
      const bool by_us = get_string(c, {"spec", "volumeName"}).empty();
      ensure_object(next.as_object(), "spec")["volumeName"] = name_of(pv);
      json::object& a = ensure_object(next.as_object()["metadata"].as_object(), "annotations");
      a[kBindCompleted] = "yes";
      if (by_us) a[kBoundByController] = "yes";
      auto r = co_await loop::api_update(client_, pvc_res_, ns, std::move(next));
      if (!r) co_return outcome(r);
      c = *r;
    }
    json::object want{{"phase", "Bound"}};
    if (const json::value* m = find_path(pv, {"spec", "accessModes"})) want["accessModes"] = *m;
    if (const json::value* cap = find_path(pv, {"spec", "capacity"})) want["capacity"] = *cap;
    const json::value* st = find_path(c, {"status"});
    bool same = st != nullptr && st->is_object();
    for (const auto& kv : want) {
      same = same && st->as_object().if_contains(kv.key()) != nullptr &&
             st->as_object().at(kv.key()) == kv.value();
    }
    if (!same) {
      json::value next = c;
      json::object& s = ensure_object(next.as_object(), "status");
      for (auto& kv : want) s[kv.key()] = kv.value();
      auto r = co_await loop::api_update_status(client_, pvc_res_, ns, std::move(next));
      if (!r) co_return outcome(r);
    }
    co_return Result<void>{};
  }

  Awaitable<Result<void>> claim_lost(const json::value& claim) {
    json::value next = claim;
    ensure_object(next.as_object(), "status")["phase"] = "Lost";
    recorder_.record(with_kind(claim, "PersistentVolumeClaim"), "Warning", "ClaimLost",
                     "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
    auto r = co_await loop::api_update_status(client_, pvc_res_, std::string(namespace_of(claim)),
                                              std::move(next));
    co_return outcome(r);
  }

  // --- Volumes ---------------------------------------------------------------------------
  Awaitable<Result<void>> sync_volume(std::string name) {
    client::ObjectPtr pv = pvs_.get("", name);
    if (!pv) co_return Result<void>{};
    if (being_deleted(*pv)) {
      if (auto r = co_await orphaned_cleanup(*pv); !r) co_return r;
    }
    const json::value* ref = find_path(*pv, {"spec", "claimRef"});
    std::string_view phase = get_string(*pv, {"status", "phase"});
    if (ref == nullptr || !ref->is_object() || get_string(*ref, {"uid"}).empty()) {
      // Free, or pre-bound by the administrator to a claim that may not exist yet.
      co_return co_await set_volume_phase(
          *pv, phase == "Pending" || phase.empty() ? "Available" : phase);
    }
    const std::string ns(get_string(*ref, {"namespace"}));
    const std::string claim_name(get_string(*ref, {"name"}));
    client::ObjectPtr claim = claims_.get(ns, claim_name);
    if (!claim || uid_of(*claim) != get_string(*ref, {"uid"})) {
      // The cache may lag behind a claim just created: ask the apiserver.
      auto got = co_await loop::api_get(client_, pvc_res_, ns, claim_name);
      if (got && uid_of(*got) == get_string(*ref, {"uid"})) co_return Result<void>{};
      if (!got && !got.error().is_not_found()) co_return std::unexpected(got.error());
      co_return co_await release(*pv);
    }
    if (get_string(*claim, {"spec", "volumeName"}) == name) {
      co_return co_await set_volume_phase(*pv, "Bound");
    }
    // The claim will bind it (or has not picked it up yet).
    if (phase == "Pending" || phase.empty()) co_return co_await set_volume_phase(*pv, "Available");
    co_return Result<void>{};
  }

  Awaitable<Result<void>> release(const json::value& pv) {
    if (get_string(pv, {"status", "phase"}) != "Released") {
      if (auto r = co_await set_volume_phase(pv, "Released"); !r) co_return r;
      co_return Result<void>{};  // the status update brings the volume back to the queue
    }
    const bool ours =
        get_string(pv, {"metadata", "annotations", kProvisionedBy}) == kLocalPathProvisioner;
    if (get_string(pv, {"spec", "persistentVolumeReclaimPolicy"}) != "Delete" || !ours ||
        being_deleted(pv)) {
      co_return Result<void>{};
    }
    // Its finalizer keeps it until the node's noded has removed the host directory.
    auto r = co_await loop::api_delete(client_, pv_res_, "", std::string(name_of(pv)));
    co_return outcome(r);
  }

  // A local-path volume being deleted whose node no longer exists: nobody is left to remove
  // its directory, so its cleanup finalizer goes (the node and its disk are gone).
  Awaitable<Result<void>> orphaned_cleanup(const json::value& pv) {
    if (!has_finalizer(pv, kLocalPathCleanupFinalizer)) co_return Result<void>{};
    const std::string node(pinned_node(pv));
    if (node.empty() || nodes_.get("", node) != nullptr) co_return Result<void>{};
    auto live = co_await loop::api_get(client_, node_res_, "", node);
    if (live || !live.error().is_not_found()) co_return Result<void>{};
    log::info("persistentvolume-binder: volume {}: node {} is gone, removing finalizer {}",
              name_of(pv), node, kLocalPathCleanupFinalizer);
    json::value next = without_finalizer(pv, kLocalPathCleanupFinalizer);
    auto r = co_await loop::api_update(client_, pv_res_, "", std::move(next));
    co_return outcome(r);
  }

  Awaitable<Result<void>> set_volume_phase(const json::value& pv, std::string_view phase) {
    if (get_string(pv, {"status", "phase"}) == phase) co_return Result<void>{};
    json::value next = pv;
    json::object& st = ensure_object(next.as_object(), "status");
    st["phase"] = phase;
    st["lastPhaseTransitionTime"] = now_rfc3339();
    auto r = co_await loop::api_update_status(client_, pv_res_, "", std::move(next));
    co_return outcome(r);
  }

  const api::Resource& pv_res_;
  const api::Resource& pvc_res_;
  const api::Resource& sc_res_;
  const api::Resource& pod_res_;
  const api::Resource& node_res_;
  client::Informer& pvs_;
  client::Informer& claims_;
  client::Informer& classes_;
  client::Informer& pods_;
  client::Informer& nodes_;
  loop::EventRecorder recorder_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_persistent_volume_controller(loop::ControllerContext& ctx) {
  return make_controller<PersistentVolumeController>(ctx);
}

}  // namespace podwarp::controllers
