// The namespace controller (upstream pkg/controller/namespace): completes the deletion of a
// namespace. The apiserver marks a deleted namespace (deletionTimestamp, phase Terminating)
// and keeps it while spec.finalizers holds "kubernetes"; this controller deletes everything
// in it and then removes that finalizer through PUT namespaces/<ns>/finalize.
//
// State machine per namespace being deleted, one pass per sync:
//   1. deletecollection (propagationPolicy Background) on every namespaced resource;
//   2. list what remains (live, not from caches: nothing may be left behind) and count the
//      finalizers the remaining objects carry;
//   3. write status.conditions as upstream (NamespaceDeletionDiscoveryFailure,
//      NamespaceDeletionGroupVersionParsingFailure, NamespaceDeletionContentFailure,
//      NamespaceContentRemaining, NamespaceFinalizersRemaining);
//   4. anything left: sync again later (pods terminate gracefully, finalizers run);
//      nothing left: finalize (the apiserver then removes the namespace, once its
//      metadata.finalizers are done too).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/base.h"

namespace podwarp::controllers {

struct NamespaceContent {
  std::vector<std::string> failed;                 // "pods.: <error>" per resource
  std::map<std::string, std::int64_t> remaining;   // "pods." (resource.group) -> count
  std::map<std::string, std::int64_t> finalizers;  // finalizer -> objects carrying it
};

// The namespace's status.conditions after a deletion pass (lastTransitionTime kept for
// conditions whose status did not change).
json::array namespace_deletion_conditions(const json::value& ns, const NamespaceContent& content,
                                          const std::string& now);

std::unique_ptr<loop::Controller> make_namespace_controller(loop::ControllerContext& ctx);

}  // namespace podwarp::controllers
