#include "core/garbage_collector.h"

#include <algorithm>

#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kForeground = "foregroundDeletion";
constexpr std::string_view kOrphan = "orphan";

std::vector<OwnerGraph::Ref> refs_of(const json::value& obj) {
  std::vector<OwnerGraph::Ref> out;
  const json::value* refs = find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return out;
  for (const json::value& r : refs->get_array()) {
    std::string_view uid = get_string(r, {"uid"});
    if (uid.empty()) continue;
    out.push_back({std::string(uid), std::string(get_string(r, {"apiVersion"})),
                   std::string(get_string(r, {"kind"})), std::string(get_string(r, {"name"})),
                   get_bool(r, {"blockOwnerDeletion"})});
  }
  return out;
}

}  // namespace

OwnerGraph::Triggers OwnerGraph::observe(const api::Resource& res, const json::value& obj) {
  Triggers t;
  std::string uid(uid_of(obj));
  if (uid.empty()) return t;
  std::vector<Ref> owners = refs_of(obj);
  std::vector<Ref> old_owners;
  {
    Node& n = nodes_[uid];
    old_owners = std::move(n.owners);
    n.res = &res;
    n.ns = namespace_of(obj);
    n.name = name_of(obj);
    n.observed = true;
    n.known_absent = false;
    n.deleting = being_deleted(obj);
    n.foreground = n.deleting && has_finalizer(obj, kForeground);
    n.orphan = n.deleting && has_finalizer(obj, kOrphan);
    n.owners = owners;
    if (n.orphan) t.orphan.insert(uid);
    if (n.foreground) {
      t.attempt_delete.insert(uid);
      for (const std::string& d : n.dependents) t.attempt_delete.insert(d);
    }
  }
  for (const Ref& o : old_owners) {
    bool kept =
        std::any_of(owners.begin(), owners.end(), [&](const Ref& x) { return x.uid == o.uid; });
    auto it = nodes_.find(o.uid);
    if (it != nodes_.end() && it->second.foreground) t.attempt_delete.insert(o.uid);
    if (!kept) unlink(o.uid, uid);
  }
  for (const Ref& o : owners) {
    Node& owner = nodes_[o.uid];
    owner.dependents.insert(uid);
    if (!owner.observed) t.attempt_delete.insert(uid);
    if (owner.foreground) {
      t.attempt_delete.insert(uid);
      t.attempt_delete.insert(o.uid);
    }
  }
  return t;
}

OwnerGraph::Triggers OwnerGraph::forget(const json::value& obj) {
  Triggers t;
  std::string uid(uid_of(obj));
  auto it = nodes_.find(uid);
  if (it == nodes_.end()) return t;
  for (const std::string& d : it->second.dependents) t.attempt_delete.insert(d);
  std::vector<Ref> owners = std::move(it->second.owners);
  it->second.owners.clear();
  for (const Ref& o : owners) {
    auto ot = nodes_.find(o.uid);
    if (ot != nodes_.end() && ot->second.foreground) t.attempt_delete.insert(o.uid);
    unlink(o.uid, uid);
  }
  it = nodes_.find(uid);
  if (it == nodes_.end()) return t;
  if (it->second.dependents.empty()) {
    nodes_.erase(it);
  } else {
    // Dependents still point here: remember that this owner is gone.
    Node& n = it->second;
    n.observed = false;
    n.known_absent = true;
    n.deleting = n.foreground = n.orphan = false;
  }
  return t;
}

void OwnerGraph::unlink(const std::string& owner, const std::string& dependent) {
  auto it = nodes_.find(owner);
  if (it == nodes_.end()) return;
  it->second.dependents.erase(dependent);
  if (!it->second.observed && it->second.dependents.empty()) nodes_.erase(it);
}

const OwnerGraph::Node* OwnerGraph::find(const std::string& uid) const {
  auto it = nodes_.find(uid);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<std::string> OwnerGraph::blocking_dependents(const std::string& uid) const {
  std::vector<std::string> out;
  const Node* n = find(uid);
  if (n == nullptr) return out;
  for (const std::string& d : n->dependents) {
    const Node* dn = find(d);
    if (dn == nullptr || !dn->observed) continue;
    for (const Ref& r : dn->owners) {
      if (r.uid == uid && r.block) {
        out.push_back(d);
        break;
      }
    }
  }
  return out;
}

GcDecision decide_gc(const json::value& obj,
                     const std::vector<std::pair<std::string, OwnerState>>& owners,
                     bool has_dependents) {
  GcDecision d;
  if (owners.empty()) return d;
  std::vector<std::string> solid, dangling, waiting;
  for (const auto& [uid, state] : owners) {
    switch (state) {
      case OwnerState::kSolid:
        solid.push_back(uid);
        break;
      case OwnerState::kDangling:
        dangling.push_back(uid);
        break;
      case OwnerState::kWaiting:
        waiting.push_back(uid);
        break;
    }
  }
  if (!solid.empty()) {
    if (dangling.empty() && waiting.empty()) return d;
    d.action = GcDecision::Action::kRemoveRefs;
    d.remove_uids = dangling;
    d.remove_uids.insert(d.remove_uids.end(), waiting.begin(), waiting.end());
    return d;
  }
  d.action = GcDecision::Action::kDelete;
  if (!waiting.empty() && has_dependents) {
    d.policy = "Foreground";
  } else if (has_finalizer(obj, kOrphan)) {
    d.policy = "Orphan";
  } else if (has_finalizer(obj, kForeground)) {
    d.policy = "Foreground";
  } else {
    d.policy = "Background";
  }
  return d;
}

namespace {

// The table entry an ownerReference's apiVersion/kind names (any version of the group).
const api::Resource* owner_resource(std::string_view api_version, std::string_view kind) {
  auto [group, version] = api::split_api_version(api_version);
  if (const api::Resource* r = api::find_kind(group, version, kind)) return r;
  for (const api::Resource& r : api::resources()) {
    if (r.group == group && r.kind == kind) return &r;
  }
  return nullptr;
}

class GarbageCollector : public ControllerBase {
 public:
  explicit GarbageCollector(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "garbagecollector") {}

  void init() override {
    std::weak_ptr<GarbageCollector> w =
        std::static_pointer_cast<GarbageCollector>(shared_from_this());
    using Self = GarbageCollector;
    using V = const json::value&;
    for (const api::Resource& r : api::resources()) {
      if (r.kind == "Event" || !r.stored) continue;
      const api::Resource* res = &r;
      informers_.informer(r);
      informers_.on_add(r, guarded(w, [res](Self& s, V o) { s.apply(s.graph_.observe(*res, o)); }));
      informers_.on_update(
          r, guarded(w, [res](Self& s, V, V o) { s.apply(s.graph_.observe(*res, o)); }));
      informers_.on_delete(r, guarded(w, [](Self& s, V o) { s.apply(s.graph_.forget(o)); }));
    }
  }

  void apply(const OwnerGraph::Triggers& t) {
    for (const std::string& u : t.attempt_delete) queue().add("d/" + u);
    for (const std::string& u : t.orphan) queue().add("o/" + u);
  }

  Awaitable<Result<void>> sync(std::string key) override {
    std::string uid = key.substr(2);
    if (key.starts_with("o/")) co_return co_await orphan_dependents(uid);
    co_return co_await attempt_to_delete(uid);
  }

  // Removes `finalizer` from the live object `obj` (re-read on conflict).
  Awaitable<Result<void>> remove_finalizer(const api::Resource& res, json::value obj,
                                           std::string finalizer) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      json::object& meta = ensure_object(obj.as_object(), "metadata");
      json::array kept;
      if (const json::value* f = meta.if_contains("finalizers"); f && f->is_array()) {
        for (const json::value& x : f->get_array()) {
          if (!(x.is_string() && x.get_string() == finalizer)) kept.push_back(x);
        }
        if (kept.size() == f->get_array().size()) co_return Result<void>{};
      } else {
        co_return Result<void>{};
      }
      meta["finalizers"] = std::move(kept);
      std::string ns(namespace_of(obj)), name(name_of(obj)), uid(uid_of(obj));
      auto r = co_await loop::api_update(client_, res, ns, std::move(obj));
      if (r || r.error().is_not_found()) co_return Result<void>{};
      if (!r.error().is_conflict()) co_return std::unexpected(r.error());
      auto fresh = co_await loop::api_get(client_, res, ns, name);
      if (!fresh) {
        if (fresh.error().is_not_found()) co_return Result<void>{};
        co_return std::unexpected(fresh.error());
      }
      if (uid_of(*fresh) != uid) co_return Result<void>{};
      obj = std::move(*fresh);
    }
    co_return std::unexpected(
        client::Error{409, "Conflict", "too many conflicts", "remove finalizer", {}});
  }

  // Removes the ownerReferences to `owner_uids` from the object at res/ns/name.
  Awaitable<Result<void>> remove_owner_refs(const api::Resource& res, std::string ns,
                                            std::string name, std::string uid,
                                            std::vector<std::string> owner_uids) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto cur = co_await loop::api_get(client_, res, ns, name);
      if (!cur) {
        if (cur.error().is_not_found()) co_return Result<void>{};
        co_return std::unexpected(cur.error());
      }
      if (uid_of(*cur) != uid) co_return Result<void>{};
      json::object& meta = ensure_object(cur->as_object(), "metadata");
      const json::value* refs = meta.if_contains("ownerReferences");
      if (refs == nullptr || !refs->is_array()) co_return Result<void>{};
      json::array kept;
      for (const json::value& r : refs->get_array()) {
        std::string_view ru = get_string(r, {"uid"});
        if (std::find(owner_uids.begin(), owner_uids.end(), ru) == owner_uids.end())
          kept.push_back(r);
      }
      if (kept.size() == refs->get_array().size()) co_return Result<void>{};
      if (kept.empty()) {
        meta.erase("ownerReferences");
      } else {
        meta["ownerReferences"] = std::move(kept);
      }
      auto r = co_await loop::api_update(client_, res, ns, std::move(*cur));
      if (r || r.error().is_not_found()) co_return Result<void>{};
      if (!r.error().is_conflict()) co_return std::unexpected(r.error());
    }
    co_return std::unexpected(
        client::Error{409, "Conflict", "too many conflicts", "remove ownerReferences", {}});
  }

  // The state of owner `ref` of a dependent in `ns` (cluster-scoped dependent: ns "").
  Awaitable<Result<OwnerState>> owner_state(OwnerGraph::Ref ref, std::string ns) {
    if (const OwnerGraph::Node* on = graph_.find(ref.uid)) {
      if (on->observed) co_return on->foreground ? OwnerState::kWaiting : OwnerState::kSolid;
      if (on->known_absent) co_return OwnerState::kDangling;
    }
    const api::Resource* res = owner_resource(ref.api_version, ref.kind);
    if (res == nullptr) {
      // A kind this server does not serve: leave the dependent alone (upstream retries).
      log::debug("garbagecollector: owner kind {} {} unknown", ref.api_version, ref.kind);
      co_return OwnerState::kSolid;
    }
    if (res->namespaced && ns.empty()) co_return OwnerState::kDangling;
    std::string owner_ns = res->namespaced ? ns : std::string();
    auto live = co_await loop::api_get(client_, *res, owner_ns, ref.name);
    if (!live) {
      if (live.error().is_not_found()) co_return OwnerState::kDangling;
      co_return std::unexpected(live.error());
    }
    if (uid_of(*live) != ref.uid) co_return OwnerState::kDangling;
    if (being_deleted(*live) && has_finalizer(*live, kForeground)) co_return OwnerState::kWaiting;
    co_return OwnerState::kSolid;
  }

  Awaitable<Result<void>> attempt_to_delete(std::string uid) {
    const OwnerGraph::Node* node = graph_.find(uid);
    if (node == nullptr || !node->observed || node->res == nullptr) co_return Result<void>{};
    bool needed = node->foreground;
    for (const OwnerGraph::Ref& r : node->owners) {
      const OwnerGraph::Node* on = graph_.find(r.uid);
      if (on == nullptr || !on->observed || on->foreground) needed = true;
    }
    if (!needed) co_return Result<void>{};
    const api::Resource& res = *node->res;
    std::string ns = node->ns, name = node->name;

    auto live = co_await loop::api_get(client_, res, ns, name);
    if (!live) {
      if (live.error().is_not_found()) co_return Result<void>{};
      co_return std::unexpected(live.error());
    }
    if (uid_of(*live) != uid) co_return Result<void>{};
    if (being_deleted(*live)) {
      if (!has_finalizer(*live, kForeground)) co_return Result<void>{};
      // Deleting its dependents: done when none blocks any more.
      std::vector<std::string> blocking = graph_.blocking_dependents(uid);
      if (blocking.empty()) {
        std::string foreground(kForeground);
        co_return co_await remove_finalizer(res, std::move(*live), foreground);
      }
      for (const std::string& d : blocking) {
        const OwnerGraph::Node* dn = graph_.find(d);
        if (dn != nullptr && !dn->deleting) queue().add("d/" + d);
      }
      co_return Result<void>{};
    }
    std::vector<OwnerGraph::Ref> refs = refs_of(*live);
    if (refs.empty()) co_return Result<void>{};
    std::vector<std::pair<std::string, OwnerState>> states;
    for (const OwnerGraph::Ref& r : refs) {
      std::string dep_ns = res.namespaced ? ns : std::string();
      auto st = co_await owner_state(r, dep_ns);
      if (!st) co_return std::unexpected(st.error());
      states.emplace_back(r.uid, *st);
    }
    node = graph_.find(uid);
    bool has_dependents = node != nullptr && !node->dependents.empty();
    GcDecision d = decide_gc(*live, states, has_dependents);
    switch (d.action) {
      case GcDecision::Action::kNone:
        co_return Result<void>{};
      case GcDecision::Action::kRemoveRefs:
        co_return co_await remove_owner_refs(res, ns, name, uid, d.remove_uids);
      case GcDecision::Action::kDelete: {
        log::info("garbagecollector: deleting {} {}/{} (propagation {})", res.kind, ns, name,
                  d.policy);
        client::DeleteOptions opts;
        opts.propagation_policy = d.policy;
        opts.precondition_uid = uid;
        auto r = co_await loop::api_delete(client_, res, ns, name, opts);
        if (!r && !r.error().is_not_found() && !r.error().is_conflict()) {
          co_return std::unexpected(r.error());
        }
        co_return Result<void>{};
      }
    }
    co_return Result<void>{};
  }

  Awaitable<Result<void>> orphan_dependents(std::string uid) {
    const OwnerGraph::Node* node = graph_.find(uid);
    if (node == nullptr || !node->observed || node->res == nullptr) co_return Result<void>{};
    const api::Resource& res = *node->res;
    std::string ns = node->ns, name = node->name;
    auto live = co_await loop::api_get(client_, res, ns, name);
    if (!live) {
      if (live.error().is_not_found()) co_return Result<void>{};
      co_return std::unexpected(live.error());
    }
    if (uid_of(*live) != uid || !has_finalizer(*live, kOrphan)) co_return Result<void>{};
    node = graph_.find(uid);
    std::set<std::string> deps = node ? node->dependents : std::set<std::string>{};
    for (const std::string& d : deps) {
      const OwnerGraph::Node* dn = graph_.find(d);
      if (dn == nullptr || !dn->observed || dn->res == nullptr) continue;
      const api::Resource& dres = *dn->res;
      std::vector<std::string> owners{uid};
      auto r = co_await remove_owner_refs(dres, dn->ns, dn->name, d, owners);
      if (!r) co_return std::unexpected(r.error());
    }
    std::string orphan(kOrphan);
    co_return co_await remove_finalizer(res, std::move(*live), orphan);
  }

 private:
  OwnerGraph graph_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_garbage_collector(loop::ControllerContext& ctx) {
  return make_controller<GarbageCollector>(ctx);
}

}  // namespace podwarp::controllers
