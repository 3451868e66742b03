#include "lb/service_map.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>

namespace podwarp::noded::lb {
namespace {

std::uint32_t kind_flag(FrontendKind k) {
  switch (k) {
    case FrontendKind::ClusterIP:
      return PODWARP_LB_SVC_F_CLUSTER_IP;
    case FrontendKind::NodePort:
      return PODWARP_LB_SVC_F_NODEPORT;
    case FrontendKind::ExternalIP:
      return PODWARP_LB_SVC_F_EXTERNAL_IP;
    case FrontendKind::LoadBalancer:
      return PODWARP_LB_SVC_F_LOADBALANCER;
  }
  return 0;
}

void keep_first(std::expected<void, Error>& first, const std::expected<void, Error>& r) {
  if (first && !r) first = r;
}

}  // namespace

podwarp_lb_svc_key ServiceMap::map_key(const SetKey& k, std::uint16_t slot) {
  podwarp_lb_svc_key key{};
  std::memcpy(key.addr, k.addr.bytes.data(), 16);
  key.port = htons(k.port);
  key.proto = static_cast<__u8>(k.proto);
  key.scope = k.scope;
  key.slot = slot;
  return key;
}

podwarp_lb_backend ServiceMap::backend_value(const BackendKey& k, std::uint8_t flags) {
  podwarp_lb_backend v{};
  std::memcpy(v.addr, k.addr.bytes.data(), 16);
  v.port = htons(k.port);
  v.proto = static_cast<__u8>(k.proto);
  v.flags = flags;
  return v;
}

std::uint32_t ServiceMap::alloc_set_id() {
  if (!free_set_ids_.empty()) {
    std::uint32_t id = free_set_ids_.back();
    free_set_ids_.pop_back();
    return id;
  }
  return next_set_id_++;
}

std::uint32_t ServiceMap::alloc_backend_id() {
  if (!free_backend_ids_.empty()) {
    std::uint32_t id = free_backend_ids_.back();
    free_backend_ids_.pop_back();
    return id;
  }
  return next_backend_id_++;
}

std::map<ServiceMap::SetKey, ServiceMap::DesiredSet> ServiceMap::desired_sets(
    const ServiceDesc& desc) const {
  std::map<SetKey, DesiredSet> out;
  auto backends_of = [](const std::vector<Backend>& from, bool v4, Protocol proto) {
    std::vector<std::pair<BackendKey, std::uint8_t>> r;
    std::set<BackendKey> seen;
    for (const auto& b : from) {
      if (b.addr.is_v4() != v4 || b.proto != proto || b.port == 0) continue;
      BackendKey k{b.addr, b.port, b.proto};
      if (!seen.insert(k).second) continue;
      std::uint8_t flags =
          (b.local ? PODWARP_LB_BE_F_LOCAL : 0) | (b.terminating ? PODWARP_LB_BE_F_TERMINATING : 0);
      r.emplace_back(k, flags);
    }
    return r;
  };
  for (const auto& port : desc.ports) {
    for (const auto& f : port.frontends) {
      if (f.port == 0) continue;
      bool v4 = f.addr.is_v4();
      SetKey key{f.addr, f.port, f.proto, PODWARP_LB_SCOPE_EXTERNAL};
      DesiredSet d;
      d.affinity_timeout = desc.affinity_timeout_s;
      d.flags = kind_flag(f.kind);
      if (f.kind == FrontendKind::ClusterIP) {
        if (desc.internal_local) d.flags |= PODWARP_LB_SVC_F_LOCAL_ONLY;
        d.backends = backends_of(desc.internal_local ? port.local_backends : port.cluster_backends,
                                 v4, f.proto);
        out[key] = std::move(d);
      } else if (desc.external_local) {
        DesiredSet internal = d;
        internal.flags |= PODWARP_LB_SVC_F_TWO_SCOPES;
        internal.backends = backends_of(port.cluster_backends, v4, f.proto);
        d.flags |= PODWARP_LB_SVC_F_TWO_SCOPES | PODWARP_LB_SVC_F_LOCAL_ONLY;
        d.backends = backends_of(port.local_backends, v4, f.proto);
        out[key] = std::move(d);
        key.scope = PODWARP_LB_SCOPE_INTERNAL;
        out[key] = std::move(internal);
      } else {
        d.backends = backends_of(port.cluster_backends, v4, f.proto);
        out[key] = std::move(d);
      }
    }
  }
  return out;
}

std::expected<std::uint32_t, Error> ServiceMap::acquire_backend(const BackendKey& k,
                                                                std::uint8_t flags) {
  auto it = backends_.find(k);
  if (it == backends_.end()) {
    BackendState st;
    st.id = alloc_backend_id();
    st.flags = flags;
    it = backends_.emplace(k, st).first;
    backend_by_id_[st.id] = k;
  }
  BackendState& st = it->second;
  if (!st.written || st.flags != flags) {
    if (auto r = maps_.update_backend(st.id, backend_value(k, flags)); !r) {
      if (st.refs == 0 && !st.written) {
        free_backend_ids_.push_back(st.id);
        backend_by_id_.erase(st.id);
        backends_.erase(it);
      }
      return std::unexpected(
          r.error().wrap("backend " + k.addr.to_string() + ":" + std::to_string(k.port)));
    }
    st.flags = flags;
    st.written = true;
  }
  ++st.refs;
  return st.id;
}

void ServiceMap::release_backend(std::uint32_t id, std::expected<void, Error>& first_error) {
  auto bid = backend_by_id_.find(id);
  if (bid == backend_by_id_.end()) return;
  auto it = backends_.find(bid->second);
  if (it == backends_.end()) return;
  if (it->second.refs > 0) --it->second.refs;
  if (it->second.refs > 0) return;
  keep_first(first_error, maps_.delete_backend(id));
  free_backend_ids_.push_back(id);
  backends_.erase(it);
  backend_by_id_.erase(bid);
}

std::expected<void, Error> ServiceMap::program_set(const SetKey& key, const DesiredSet& want,
                                                   const std::string& owner) {
  // Backend entries first: every id a slot will name must already resolve.
  std::vector<std::uint32_t> ids;
  std::map<std::uint32_t, std::uint8_t> flags_of;
  ids.reserve(want.backends.size());
  for (const auto& [bk, flags] : want.backends) {
    auto id = acquire_backend(bk, flags);
    if (!id) {
      std::expected<void, Error> ignored;
      for (auto got : ids) release_backend(got, ignored);
      return std::unexpected(id.error());
    }
    ids.push_back(*id);
    flags_of[*id] = flags;
  }

  auto [it, created] = sets_.try_emplace(key);
  SetState& st = it->second;
  if (created) st.set_id = alloc_set_id();
  if (!st.owner.empty() && st.owner != owner) {
    // Another service had this frontend (a transient overlap): the newer one takes it.
    auto other = service_sets_.find(st.owner);
    if (other != service_sets_.end()) std::erase(other->second, key);
  }
  st.owner = owner;

  // New slot layout: kept backends stay put, new ones fill holes then append, remaining holes
  // are closed by moving the last slot in (highest hole first).
  std::set<std::uint32_t> wanted(ids.begin(), ids.end());
  std::vector<std::uint32_t> old_slots = st.slots;
  std::vector<std::uint32_t> slots = st.slots;
  std::set<std::uint32_t> have(slots.begin(), slots.end());
  std::vector<std::size_t> holes;
  for (std::size_t i = 0; i < slots.size(); ++i)
    if (!wanted.contains(slots[i])) holes.push_back(i);
  std::vector<std::uint32_t> additions;
  for (auto id : ids)
    if (!have.contains(id)) additions.push_back(id);
  std::set<std::size_t> writes;
  std::size_t h = 0, a = 0;
  for (; h < holes.size() && a < additions.size(); ++h, ++a) {
    slots[holes[h]] = additions[a];
    writes.insert(holes[h]);
  }
  for (; a < additions.size(); ++a) {
    slots.push_back(additions[a]);
    writes.insert(slots.size() - 1);
  }
  for (std::size_t r = holes.size(); r > h; --r) {
    std::size_t p = holes[r - 1];
    if (p + 1 != slots.size()) {
      slots[p] = slots.back();
      writes.insert(p);
    }
    slots.pop_back();
  }
  // A backend whose flags changed (its copy in the slot is stale) is rewritten in place.
  std::vector<std::uint8_t> slot_flags(slots.size());
  for (std::size_t p = 0; p < slots.size(); ++p) {
    slot_flags[p] = flags_of[slots[p]];
    if (p >= st.slot_flags.size() || st.slot_flags[p] != slot_flags[p]) writes.insert(p);
  }
  std::uint32_t old_map_slots = std::max<std::uint32_t>(st.map_slots, old_slots.size());
  bool rewrite = st.dirty;
  // A small set's entry carries copies of its slots: any slot write rewrites it too.
  bool inline_set = !slots.empty() && slots.size() <= PODWARP_LB_INLINE;
  bool entry_changed = rewrite || created || slots.size() != old_slots.size() ||
                       st.flags != want.flags || st.affinity_timeout != want.affinity_timeout ||
                       (inline_set && !writes.empty());
  st.slots = slots;
  st.slot_flags = slot_flags;
  st.flags = want.flags;
  st.affinity_timeout = want.affinity_timeout;

  std::expected<void, Error> result;
  auto step = [&](std::expected<void, Error> r) {
    if (result && !r) result = std::unexpected(r.error());
    return static_cast<bool>(result);
  };
  std::set<std::uint32_t> old_set(old_slots.begin(), old_slots.end());
  // 1. members of backends joining the set (all of them when rewriting).
  for (auto id : slots) {
    if (!rewrite && old_set.contains(id)) continue;
    if (!step(maps_.update_member({st.set_id, id}))) break;
  }
  // 2. slots that changed (beyond the old count they are invisible until step 3).
  if (result) {
    for (std::size_t p = 0; p < slots.size(); ++p) {
      if (!rewrite && !writes.contains(p)) continue;
      podwarp_lb_svc v{};
      v.backend_id = slots[p];
      v.backend = backend_value(backend_by_id_.at(slots[p]), slot_flags[p]);
      if (!step(maps_.update_service(map_key(key, static_cast<std::uint16_t>(p + 1)), v))) break;
    }
  }
  // 3. the service entry: count, flags, affinity.
  if (result && entry_changed) {
    podwarp_lb_svc v{};
    v.count = static_cast<__u32>(slots.size());
    v.set_id = st.set_id;
    v.affinity_timeout = want.affinity_timeout;
    v.flags = want.flags;
    if (inline_set) {
      v.flags |= PODWARP_LB_SVC_F_INLINE;
      for (std::size_t p = 0; p < slots.size(); ++p) {
        v.inl[p].backend_id = slots[p];
        v.inl[p].backend = backend_value(backend_by_id_.at(slots[p]), slot_flags[p]);
      }
    }
    step(maps_.update_service(map_key(key, 0), v));
  }
  // 4. slots beyond the new count, then members of backends that left.
  if (result) {
    for (std::uint32_t p = static_cast<std::uint32_t>(slots.size()); p < old_map_slots; ++p)
      if (!step(maps_.delete_service(map_key(key, static_cast<std::uint16_t>(p + 1))))) break;
  }
  if (result) {
    for (auto id : old_set)
      if (!wanted.contains(id) && !step(maps_.delete_member({st.set_id, id}))) break;
  }
  st.map_slots = result ? static_cast<std::uint32_t>(slots.size())
                        : std::max<std::uint32_t>(old_map_slots, slots.size());
  st.dirty = !result;
  // 5. references: the old set's go, the new set's were taken by acquire_backend().
  for (auto id : old_slots) release_backend(id, result);
  if (!result)
    return std::unexpected(result.error().wrap("service frontend " + key.addr.to_string() + ":" +
                                               std::to_string(key.port) + "/" +
                                               std::string(protocol_name(key.proto))));
  return {};
}

std::expected<void, Error> ServiceMap::remove_set(const SetKey& key) {
  auto it = sets_.find(key);
  if (it == sets_.end()) return {};
  SetState st = std::move(it->second);
  sets_.erase(it);
  std::expected<void, Error> result;
  // The entry first: the frontend stops matching before its slots go.
  keep_first(result, maps_.delete_service(map_key(key, 0)));
  std::uint32_t n = std::max<std::uint32_t>(st.map_slots, st.slots.size());
  for (std::uint32_t p = 1; p <= n; ++p)
    keep_first(result, maps_.delete_service(map_key(key, static_cast<std::uint16_t>(p))));
  for (auto id : std::set<std::uint32_t>(st.slots.begin(), st.slots.end()))
    keep_first(result, maps_.delete_member({st.set_id, id}));
  for (auto id : st.slots) release_backend(id, result);
  free_set_ids_.push_back(st.set_id);
  return result;
}

std::expected<void, Error> ServiceMap::upsert_service(const ServiceDesc& desc) {
  auto desired = desired_sets(desc);
  std::expected<void, Error> result;
  std::vector<SetKey> keys;
  for (const auto& [key, want] : desired) {
    keep_first(result, program_set(key, want, desc.key));
    keys.push_back(key);
  }
  auto old = service_sets_.find(desc.key);
  if (old != service_sets_.end()) {
    for (const auto& key : old->second) {
      if (desired.contains(key)) continue;
      auto s = sets_.find(key);
      if (s != sets_.end() && s->second.owner == desc.key) keep_first(result, remove_set(key));
    }
  }
  service_sets_[desc.key] = std::move(keys);
  services_[desc.key] = desc;
  return result;
}

std::expected<void, Error> ServiceMap::delete_service(std::string_view key) {
  std::expected<void, Error> result;
  auto old = service_sets_.find(key);
  if (old != service_sets_.end()) {
    for (const auto& k : old->second) {
      auto s = sets_.find(k);
      if (s != sets_.end() && s->second.owner == key) keep_first(result, remove_set(k));
    }
    service_sets_.erase(old);
  }
  if (auto s = services_.find(key); s != services_.end()) services_.erase(s);
  return result;
}

std::expected<void, Error> ServiceMap::set_backends(std::string_view key,
                                                    std::string_view port_name, Protocol proto,
                                                    std::vector<Backend> cluster,
                                                    std::vector<Backend> local) {
  auto s = services_.find(key);
  if (s == services_.end())
    return std::unexpected(sys_error(ENOENT, "set_backends: service " + std::string(key)));
  ServiceDesc desc = s->second;
  bool found = false;
  for (auto& p : desc.ports) {
    if (p.name != port_name || p.proto != proto) continue;
    p.cluster_backends = std::move(cluster);
    p.local_backends = std::move(local);
    found = true;
    break;
  }
  if (!found)
    return std::unexpected(sys_error(ENOENT, "set_backends: service " + std::string(key) +
                                                 " port \"" + std::string(port_name) + "\"/" +
                                                 std::string(protocol_name(proto))));
  return upsert_service(desc);
}

std::expected<void, Error> ServiceMap::recover() {
  struct Found {
    bool has_entry = false;
    podwarp_lb_svc entry{};
    std::map<std::uint16_t, podwarp_lb_svc> slots;
  };
  std::map<SetKey, Found> found;
  auto r = maps_.for_each_service([&](const podwarp_lb_svc_key& k, const podwarp_lb_svc& v) {
    SetKey key;
    std::memcpy(key.addr.bytes.data(), k.addr, 16);
    key.port = ntohs(k.port);
    key.proto = static_cast<Protocol>(k.proto);
    key.scope = k.scope;
    Found& f = found[key];
    if (k.slot == 0) {
      f.has_entry = true;
      f.entry = v;
    } else {
      f.slots[k.slot] = v;
    }
  });
  if (!r) return std::unexpected(r.error().wrap("recover services"));
  std::map<std::uint32_t, podwarp_lb_backend> bes;
  r = maps_.for_each_backend(
      [&](std::uint32_t id, const podwarp_lb_backend& v) { bes.emplace(id, v); });
  if (!r) return std::unexpected(r.error().wrap("recover backends"));
  std::set<std::pair<std::uint32_t, std::uint32_t>> members;
  r = maps_.for_each_member(
      [&](const podwarp_lb_member_key& k) { members.emplace(k.set_id, k.backend_id); });
  if (!r) return std::unexpected(r.error().wrap("recover members"));

  for (const auto& [id, v] : bes) {
    BackendKey k;
    std::memcpy(k.addr.bytes.data(), v.addr, 16);
    k.port = ntohs(v.port);
    k.proto = static_cast<Protocol>(v.proto);
    next_backend_id_ = std::max(next_backend_id_, id + 1);
    if (backends_.contains(k)) {  // the same backend twice: slots naming this id get rewritten
      orphan_backends_.push_back(id);
      continue;
    }
    BackendState st;
    st.id = id;
    st.flags = v.flags;
    st.written = true;
    backends_.emplace(k, st);
    backend_by_id_[id] = k;
  }
  std::set<std::uint32_t> used_set_ids;
  for (auto& [key, f] : found) {
    SetState st;
    std::uint32_t max_slot = f.slots.empty() ? 0 : f.slots.rbegin()->first;
    st.map_slots = max_slot;
    if (!f.has_entry || used_set_ids.contains(f.entry.set_id) || f.entry.set_id == 0) {
      // Slots without an entry (or a clashing id): adopt them as a dirty, empty set so the
      // next program or prune removes them.
      st.set_id = 0;
    } else {
      st.set_id = f.entry.set_id;
      st.flags = f.entry.flags & ~PODWARP_LB_SVC_F_INLINE;
      st.affinity_timeout = f.entry.affinity_timeout;
      st.dirty = false;
      for (std::uint32_t s = 1; s <= f.entry.count; ++s) {
        auto slot = f.slots.find(static_cast<std::uint16_t>(s));
        std::uint32_t id = slot == f.slots.end() ? 0 : slot->second.backend_id;
        auto known = backend_by_id_.find(id);
        if (slot == f.slots.end() || known == backend_by_id_.end() ||
            !members.contains({st.set_id, id})) {
          st.dirty = true;
          continue;
        }
        // The slot's copy must be the backend it names (else it is rewritten).
        podwarp_lb_backend want = backend_value(known->second, slot->second.backend.flags);
        if (std::memcmp(&want, &slot->second.backend, sizeof want) != 0) st.dirty = true;
        st.slots.push_back(id);
        st.slot_flags.push_back(slot->second.backend.flags);
      }
      if (max_slot > f.entry.count) st.dirty = true;
      // A small set's entry must carry exactly its slots (else it is rewritten).
      bool want_inline = !st.slots.empty() && st.slots.size() <= PODWARP_LB_INLINE;
      bool has_inline = (f.entry.flags & PODWARP_LB_SVC_F_INLINE) != 0;
      if (want_inline != has_inline) st.dirty = true;
      if (want_inline && has_inline && !st.dirty) {
        for (std::size_t p = 0; p < st.slots.size(); ++p) {
          const podwarp_lb_svc& sv = f.slots.at(static_cast<std::uint16_t>(p + 1));
          if (f.entry.inl[p].backend_id != st.slots[p] ||
              std::memcmp(&f.entry.inl[p].backend, &sv.backend, sizeof sv.backend) != 0)
            st.dirty = true;
        }
      }
      used_set_ids.insert(st.set_id);
      next_set_id_ = std::max(next_set_id_, st.set_id + 1);
    }
    for (auto id : st.slots) ++backends_.at(backend_by_id_.at(id)).refs;
    sets_[key] = std::move(st);
  }
  // Sets without a usable id get a fresh one now that all recovered ids are known.
  for (auto& [key, st] : sets_)
    if (st.set_id == 0) st.set_id = alloc_set_id();
  for (const auto& [set_id, backend_id] : members) {
    bool valid = false;
    if (used_set_ids.contains(set_id)) {
      for (const auto& [key, st] : sets_) {
        if (st.set_id != set_id) continue;
        valid = std::find(st.slots.begin(), st.slots.end(), backend_id) != st.slots.end();
        break;
      }
    }
    if (!valid) stale_members_.push_back({set_id, backend_id});
  }
  return {};
}

std::expected<void, Error> ServiceMap::prune_unclaimed() {
  std::expected<void, Error> result;
  std::vector<SetKey> unclaimed;
  for (const auto& [key, st] : sets_)
    if (st.owner.empty()) unclaimed.push_back(key);
  for (const auto& key : unclaimed) keep_first(result, remove_set(key));
  for (const auto& m : stale_members_) keep_first(result, maps_.delete_member(m));
  stale_members_.clear();
  for (auto id : orphan_backends_) keep_first(result, maps_.delete_backend(id));
  orphan_backends_.clear();
  std::vector<std::uint32_t> orphans;
  for (const auto& [k, st] : backends_)
    if (st.refs == 0) orphans.push_back(st.id);
  for (auto id : orphans) {
    keep_first(result, maps_.delete_backend(id));
    backends_.erase(backend_by_id_.at(id));
    backend_by_id_.erase(id);
    free_backend_ids_.push_back(id);
  }
  return result;
}

std::optional<ServiceMap::SetView> ServiceMap::lookup(const Frontend& f, std::uint8_t scope) const {
  auto it = sets_.find(SetKey{f.addr, f.port, f.proto, scope});
  if (it == sets_.end()) return std::nullopt;
  SetView v;
  v.set_id = it->second.set_id;
  v.flags = it->second.flags;
  v.affinity_timeout = it->second.affinity_timeout;
  v.owner = it->second.owner;
  for (auto id : it->second.slots) {
    const BackendKey& k = backend_by_id_.at(id);
    const BackendState& st = backends_.at(k);
    v.slots.push_back(Backend{k.addr, k.port, k.proto, (st.flags & PODWARP_LB_BE_F_LOCAL) != 0,
                              (st.flags & PODWARP_LB_BE_F_TERMINATING) != 0});
  }
  return v;
}

}  // namespace podwarp::noded::lb
