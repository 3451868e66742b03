// ServiceSync: Service and EndpointSlice events (API JSON, all namespaces) -> ServiceMap
// calls, one service at a time. Pure: no I/O of its own, no Asio (the informer wiring is in
// service_informers.h).
//
// Index: the services by "<ns>/<name>", the EndpointSlices of each service (label
// kubernetes.io/service-name in the slice's namespace). An event recomputes the ServiceDesc of
// the one service it concerns (service_desc_from_json over that service's slices) and applies
// it: upsert_service(), or delete_service() when the service is gone or is not load-balanced
// (headless, ExternalName). A desc equal to the last applied one costs no map operation; a
// changed one costs what ServiceMap::upsert_service() changes (O(changed)). No full reloads.
//
// Start (noded restart without traffic interruption): construct after ServiceMap::recover().
// Until mark_synced() (both informers listed completely) events only update the index: a
// service applied before its slices arrived would briefly have no backends. mark_synced()
// applies every known service once, then prune_unclaimed() removes what no service claims
// (services deleted while noded was down). After that, every event is applied at once.
//
// Failures: a failing apply is logged and the service key is kept in failed(); retry_failed()
// (the owner calls it from a timer) applies those again from the index.
//
// Threading: one owner (noded's io_context thread), like ServiceMap.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "lb/service_map.h"
#include "podwarp/json.h"

namespace podwarp::noded::lb {

class ServiceSync {
 public:
  ServiceSync(ServiceMap& map, std::string node_name);

  // A Service was added or changed (informer on_add/on_update).
  void service_changed(const json::value& service);
  void service_deleted(const json::value& service);
  // An EndpointSlice was added (old = nullptr) or changed.
  void slice_changed(const json::value* old_slice, const json::value& slice);
  void slice_deleted(const json::value& slice);

  // Both informers completed their first list: apply everything once, then prune. Idempotent.
  void mark_synced();
  bool synced() const { return synced_; }

  // Applies the services whose last apply failed again; returns how many still fail.
  std::size_t retry_failed();
  const std::set<std::string, std::less<>>& failed() const { return failed_; }

  struct Stats {
    std::uint64_t applies = 0;   // upsert_service/delete_service calls
    std::uint64_t skipped = 0;   // recomputed, equal to what was applied: no call
    std::uint64_t failures = 0;  // applies that returned an error
  };
  const Stats& stats() const { return stats_; }

 private:
  using JsonPtr = std::shared_ptr<const json::value>;
  struct Entry {
    JsonPtr service;                                      // null: no such Service (yet)
    std::map<std::string, JsonPtr, std::less<>> slices;   // slice name -> object
    bool applied = false;                                 // `last` is in the map
    std::optional<ServiceDesc> last;                      // last applied (nullopt: deleted)
  };

  // "<ns>/<service>" of a slice, "" when it names no service.
  static std::string slice_service_key(const json::value& slice);
  void remove_slice(const std::string& svc_key, std::string_view slice_name);
  void apply(const std::string& key);

  ServiceMap& map_;
  std::string node_name_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::set<std::string, std::less<>> failed_;
  bool synced_ = false;
  Stats stats_;
};

}  // namespace podwarp::noded::lb
