// Turning informer events into work-queue keys: the handler shapes that many controllers
// share.
//
// - on_object_change: the controller's own objects; each added, updated (new version) and,
//   optionally, deleted object is handed to one callback (usually "enqueue its key").
// - controller references: the ownerReference with controller=true names the object that
//   manages another one (ReplicaSet -> Pod, Job -> Pod, CronJob -> Job). cached_controller
//   resolves it in the owner's informer cache (kind and uid checked); controller_key gives
//   its "<ns>/<name>" without a cache lookup.
// - for_each_selecting: an orphan (no controllerRef) is offered to every owner in its
//   namespace whose spec.selector is non-empty and matches it (upstream's
//   getPodReplicaSets / getPodDaemonSets / ...).
//
// Threading: pure functions over cached objects; call on the informers' executor.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "loop/shared_informers.h"
#include "podwarp/json.h"

namespace podwarp::loop {

// Registers `f` on `res` for added objects, updated objects (called with the new version) and,
// when `deletes`, deleted objects, in that order.
void on_object_change(SharedInformers& informers, const api::Resource& res,
                      std::function<void(const json::value&)> f, bool deletes = true);

// The controllerRef of `obj` (its ownerReference with controller=true) when that reference's
// kind is `kind` and, when `group` is not empty, its apiVersion is "<group>/...";
// else nullptr. (The apiserver allows at most one controller reference.)
const json::value* controller_ref_to(const json::value& obj, std::string_view kind,
                                     std::string_view group = {});

// "<ns of obj>/<name of the controller>" for controller_ref_to(obj, kind, group); "" when none.
std::string controller_key(const json::value& obj, std::string_view kind,
                           std::string_view group = {});

// The object of `owners` (same namespace as `obj`) that controller_ref_to(obj, kind) names,
// when the cached object's uid is the reference's; else nullptr.
ObjectPtr cached_controller(const client::Informer& owners, const json::value& obj,
                            std::string_view kind);

// Calls `f(owner)` for every object of `owners` in obj's namespace whose spec.selector parses,
// is not empty and matches obj's labels.
void for_each_selecting(const client::Informer& owners, const json::value& obj,
                        const std::function<void(const json::value&)>& f);

}  // namespace podwarp::loop
