// ServiceMap: the desired services of a node -> incremental updates of the load balancer's BPF
// maps (bpf/lib/lb.h), through LbMaps. The only writer of pw_lb_services, pw_lb_backends and
// pw_lb_members.
//
// Each (frontend, scope) is a backend set: a service entry (slot 0) and one slot per backend.
// upsert_service() computes the sets a ServiceDesc needs and changes only what differs:
// adding a backend to a set is 4 map updates (backend, member, slot, count), removing one is
// 5 (its slot gets the last backend, count, delete the last slot, member, backend), whatever
// the size of the set or the number of services. Slots of backends that stay keep their
// position, so in-flight picks and other clients' affinities are undisturbed. Writes are
// ordered so the datapath never sees a slot beyond count or a backend id without its entry.
//
// Sets per frontend (kube-proxy's traffic policies):
//   ClusterIP: SCOPE_EXTERNAL = cluster endpoints, or local ones with internalTrafficPolicy
//              Local;
//   NodePort, externalIP, LoadBalancer IP: SCOPE_EXTERNAL = cluster endpoints, or with
//              externalTrafficPolicy Local the local ones, plus a SCOPE_INTERNAL set with the
//              cluster endpoints for clients on the node (flag TWO_SCOPES).
// A frontend only gets backends of its own family.
//
// Restart: recover() reads what the pinned maps hold; the recovered sets are unowned until an
// upsert_service() claims the same frontend (then only the differences are written); after
// the first full sync, prune_unclaimed() removes what no service claimed.
//
// Errors: the first failing map operation is returned; the set is marked dirty and rewritten
// in full on its next upsert. Not thread-safe: one owner (noded's service loop) calls it.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lb/lb_types.h"
#include "lb/maps.h"

namespace podwarp::noded::lb {

class ServiceMap {
 public:
  explicit ServiceMap(LbMaps& maps) : maps_(maps) {}

  // Loads the state the maps already hold (restart). Call once, before any upsert.
  std::expected<void, Error> recover();

  // Programs the service: its frontends, their backend sets, with O(changed) map updates.
  // Frontends the previous version of the service had and this one has not are removed.
  std::expected<void, Error> upsert_service(const ServiceDesc& desc);
  // Removes every frontend of the service. Unknown keys are fine.
  std::expected<void, Error> delete_service(std::string_view key);
  // Endpoint change of one port (matched by name and protocol) of a service upserted before:
  // ENOENT when there is no such service or port.
  std::expected<void, Error> set_backends(std::string_view key, std::string_view port_name,
                                          Protocol proto, std::vector<Backend> cluster,
                                          std::vector<Backend> local);
  // Deletes recovered frontends no service claimed, unreferenced backends and stale members.
  std::expected<void, Error> prune_unclaimed();

  // What a frontend currently sends to (slot order), for tests and debugging.
  struct SetView {
    std::uint32_t set_id = 0;
    std::uint32_t flags = 0;
    std::uint32_t affinity_timeout = 0;
    std::vector<Backend> slots;
    std::string owner;
  };
  std::optional<SetView> lookup(const Frontend& f,
                                std::uint8_t scope = PODWARP_LB_SCOPE_EXTERNAL) const;
  std::size_t set_count() const { return sets_.size(); }
  std::size_t backend_count() const { return backends_.size(); }
  bool has_service(std::string_view key) const { return services_.contains(std::string(key)); }

 private:
  struct SetKey {
    IpAddr addr;
    std::uint16_t port = 0;
    Protocol proto = Protocol::TCP;
    std::uint8_t scope = 0;
    auto operator<=>(const SetKey&) const = default;
  };
  struct BackendKey {
    IpAddr addr;
    std::uint16_t port = 0;
    Protocol proto = Protocol::TCP;
    auto operator<=>(const BackendKey&) const = default;
  };
  struct DesiredSet {
    std::uint32_t flags = 0;
    std::uint32_t affinity_timeout = 0;
    std::vector<std::pair<BackendKey, std::uint8_t>> backends;  // key, PODWARP_LB_BE_F_*
  };
  struct SetState {
    std::uint32_t set_id = 0;
    std::uint32_t flags = 0;
    std::uint32_t affinity_timeout = 0;
    std::vector<std::uint32_t> slots;      // backend ids of slots 1..n
    std::vector<std::uint8_t> slot_flags;  // the backend flags copied into each slot
    std::uint32_t map_slots = 0;           // slot entries that may exist in the map (to delete)
    std::string owner;                     // service key; empty: recovered, not yet claimed
    bool dirty = true;                     // the map may differ: rewrite everything
  };
  struct BackendState {
    std::uint32_t id = 0;
    std::uint8_t flags = 0;
    std::uint32_t refs = 0;
    bool written = false;
  };

  std::map<SetKey, DesiredSet> desired_sets(const ServiceDesc& desc) const;
  std::expected<void, Error> program_set(const SetKey& key, const DesiredSet& want,
                                         const std::string& owner);
  std::expected<void, Error> remove_set(const SetKey& key);
  std::expected<std::uint32_t, Error> acquire_backend(const BackendKey& k, std::uint8_t flags);
  void release_backend(std::uint32_t id, std::expected<void, Error>& first_error);
  std::uint32_t alloc_set_id();
  std::uint32_t alloc_backend_id();
  static podwarp_lb_svc_key map_key(const SetKey& k, std::uint16_t slot);
  static podwarp_lb_backend backend_value(const BackendKey& k, std::uint8_t flags);

  LbMaps& maps_;
  std::map<SetKey, SetState> sets_;
  std::map<BackendKey, BackendState> backends_;
  std::map<std::uint32_t, BackendKey> backend_by_id_;
  std::map<std::string, ServiceDesc, std::less<>> services_;
  std::map<std::string, std::vector<SetKey>, std::less<>> service_sets_;
  std::vector<podwarp_lb_member_key> stale_members_;  // found by recover(), for prune
  std::vector<std::uint32_t> orphan_backends_;        // duplicate backend entries, for prune
  std::vector<std::uint32_t> free_set_ids_, free_backend_ids_;
  std::uint32_t next_set_id_ = 1, next_backend_id_ = 1;
};

}  // namespace podwarp::noded::lb
