// Helpers shared by the apps controllers (ReplicaSet, Deployment, DaemonSet, StatefulSet):
// pod state, owner references, conditions, upstream's template hash, int-or-percent
// arithmetic, pod deletion ranking and ControllerExpectations.
//
// Everything here is pure (or, for Expectations, a plain single-threaded value) and takes API
// objects as hand-built or cached JSON, so that it is unit-testable without an apiserver.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "loop/api.h"
#include "loop/meta.h"
#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/informer.h"
#include "podwarp/json.h"

namespace podwarp::apps {

using Clock = std::chrono::system_clock;
using client::Awaitable;
using client::ObjectPtr;
using client::Result;

// The resources the apps controllers work with (from the resource table).
const api::Resource& pods_resource();
const api::Resource& nodes_resource();
const api::Resource& replicasets_resource();
const api::Resource& deployments_resource();
const api::Resource& daemonsets_resource();
const api::Resource& statefulsets_resource();
const api::Resource& pvcs_resource();

using namespace loop::meta;  // name_of, namespace_of, uid_of, being_deleted, ...

// "<ns>/<name>" of an object (its inverse is split_key).
std::string key_of(const json::value& obj);
std::string annotation(const json::value& obj, std::string_view key);

// --- JSON canonical form -------------------------------------------------------------------
// Recursively drops nulls, empty objects and empty arrays (Go's nil/empty equivalence under
// apimachinery's semantic equality) and sorts object keys.
json::value canonical(const json::value& v);
std::string canonical_json(const json::value& v);

// --- Hashing ---------------------------------------------------------------------------------
std::uint32_t fnv32a(std::string_view data, std::uint32_t h = 2166136261u);
// k8s.io/apimachinery rand.SafeEncodeString: each byte maps to alphanums[b % 27] with the
// alphabet "bcdfghjklmnpqrstvwxz2456789".
std::string safe_encode_string(std::string_view s);
// upstream controller.ComputeHash: fnv32a over the template, then (when set) the collision
// count as 8 little-endian bytes of which the low 4 hold the uint32; rendered as
// SafeEncodeString of the decimal Sum32. The template is hashed in canonical JSON (upstream
// hashes the Go struct with spew, so values differ from upstream's, the scheme is the same).
std::string compute_hash(const json::value& pod_template, std::optional<std::int64_t> collision_count);

// Templates equal after removing the pod-template-hash label (upstream EqualIgnoreHash).
bool equal_ignore_hash(const json::value& a, const json::value& b);

// --- int-or-percent ----------------------------------------------------------------------
// intstr.GetScaledValueFromIntOrPercent: an int is itself, "25%" is total*25/100 rounded up or
// down. nullopt for a malformed value.
std::optional<std::int64_t> scaled_value(const json::value* v, std::int64_t total, bool round_up);
// deploymentutil.ResolveFenceposts: (maxSurge, maxUnavailable); when both are 0,
// maxUnavailable becomes 1. Absent values default to 25%.
std::pair<std::int64_t, std::int64_t> resolve_fenceposts(const json::value* max_surge,
                                                         const json::value* max_unavailable,
                                                         std::int64_t desired);

// --- Pods ----------------------------------------------------------------------------------
bool pod_active(const json::value& pod);  // not Succeeded/Failed and not being deleted
bool pod_ready(const json::value& pod);   // condition Ready=True
// Ready for at least min_ready_seconds (by the Ready condition's lastTransitionTime).
bool pod_available(const json::value& pod, std::int64_t min_ready_seconds, Clock::time_point now);
std::int64_t pod_restarts(const json::value& pod);  // max restartCount over containers
// When the pod became ready (lastTransitionTime of Ready=True), if it is ready.
std::optional<Clock::time_point> pod_ready_since(const json::value& pod);
std::optional<Clock::time_point> creation_time(const json::value& obj);

// upstream controller.ActivePods ordering: true when `a` should be deleted before `b`:
// unassigned < assigned; Pending < Unknown < Running; not ready < ready; ready for a shorter
// time first; more restarts first; newer first; then by name for determinism.
bool pod_delete_before(const json::value& a, const json::value& b);

// --- Owner references ----------------------------------------------------------------------
// The ownerReference with controller=true, or nullptr.
const json::object* controller_ref(const json::value& obj);
json::object make_controller_ref(const json::value& owner, std::string_view api_version,
                                 std::string_view kind);

// Sets kind/apiVersion when absent (list items may lack them; events need them).
void ensure_kind(json::value& obj, std::string_view api_version, std::string_view kind);

// --- Conditions ----------------------------------------------------------------------------
const json::object* find_condition(const json::value& status, std::string_view type);

// A pod built from a template: labels/annotations/spec copied, ownerReferences set.
json::value pod_from_template(const json::value& pod_template, const json::object& owner_ref,
                              std::string_view ns);

// --- ControllerExpectations -----------------------------------------------------------------
// Expected creations (counted) and deletions (by pod key) per controller key, so that a sync
// does not act again before the watch has shown the effect of the previous one. Expectations
// expire after 5 minutes, as upstream's ExpectationsTimeout.
class Expectations {
 public:
  bool satisfied(const std::string& key, std::chrono::steady_clock::time_point now =
                                             std::chrono::steady_clock::now()) const;
  void expect_creations(const std::string& key, int n);
  void expect_deletions(const std::string& key, const std::vector<std::string>& pod_keys);
  void creation_observed(const std::string& key);
  void deletion_observed(const std::string& key, const std::string& pod_key);
  void forget(const std::string& key);

 private:
  struct Entry {
    int add = 0;
    std::set<std::string> del;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace podwarp::apps
