// The garbage collector (upstream pkg/controller/garbagecollector): deletes objects whose
// owners are gone, and completes the "foregroundDeletion" and "orphan" deletion protocols
// the apiserver starts (DELETE with propagationPolicy Foreground / Orphan sets the finalizer
// and deletionTimestamp; the object stays until the finalizer is removed).
//
// Inputs: every resource of the table but events (informers), built into an OwnerGraph:
// uid -> owners (metadata.ownerReferences) and dependents. Outputs: DELETEs of dependents,
// updates removing ownerReferences, updates removing the two finalizers.
//
//  - Background: a dependent all of whose owners are absent (deleted while watched, or a
//    live GET answers 404 / another uid) is deleted with propagationPolicy Background (or
//    the policy its own finalizers ask for). A dependent that still has a live owner only
//    loses the references to absent owners.
//  - Foreground: an owner with deletionTimestamp + "foregroundDeletion" has its dependents
//    deleted (Foreground); once no dependent with blockOwnerDeletion=true remains, the
//    finalizer is removed and the apiserver deletes the owner.
//  - Orphan: an owner with deletionTimestamp + "orphan": the references to it are removed
//    from its dependents, then the finalizer.
// Owners are looked up in the dependent's namespace (cluster-scoped owners cluster-wide); a
// cluster-scoped dependent naming a namespaced owner kind has that reference treated as
// absent, as upstream.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/base.h"

namespace podwarp::controllers {

class OwnerGraph {
 public:
  struct Ref {
    std::string uid;
    std::string api_version;
    std::string kind;
    std::string name;
    bool block = false;  // blockOwnerDeletion
  };
  struct Node {
    const api::Resource* res = nullptr;  // nullptr while virtual
    std::string ns, name;
    bool observed = false;      // seen in an informer (else: only referenced)
    bool known_absent = false;  // its deletion was observed
    bool deleting = false;
    bool foreground = false;  // deleting with the "foregroundDeletion" finalizer
    bool orphan = false;      // deleting with the "orphan" finalizer
    std::vector<Ref> owners;
    std::set<std::string> dependents;
  };
  // uids to look at: attempt_delete (dependents to check, foreground owners to finish) and
  // orphan (owners whose dependents must be orphaned).
  struct Triggers {
    std::set<std::string> attempt_delete;
    std::set<std::string> orphan;
  };

  Triggers observe(const api::Resource& res, const json::value& obj);
  Triggers forget(const json::value& obj);

  const Node* find(const std::string& uid) const;
  // Observed dependents whose reference to `uid` has blockOwnerDeletion=true.
  std::vector<std::string> blocking_dependents(const std::string& uid) const;
  std::size_t size() const { return nodes_.size(); }

 private:
  void unlink(const std::string& owner, const std::string& dependent);
  std::map<std::string, Node> nodes_;
};

enum class OwnerState { kSolid, kDangling, kWaiting };

struct GcDecision {
  enum class Action { kNone, kRemoveRefs, kDelete } action = Action::kNone;
  std::vector<std::string> remove_uids;  // kRemoveRefs
  std::string policy;                    // kDelete: "Background" / "Foreground" / "Orphan"
};

// upstream attemptToDeleteItem's decision for `obj` given the state of each owner (by uid)
// and whether obj has dependents itself.
GcDecision decide_gc(const json::value& obj,
                     const std::vector<std::pair<std::string, OwnerState>>& owners,
                     bool has_dependents);

std::unique_ptr<loop::Controller> make_garbage_collector(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
