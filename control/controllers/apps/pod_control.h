// The pod writes of the apps controllers (upstream's PodControl): create and delete a pod on
// behalf of an owner, recording the upstream events on the owner, and patch a pod's
// ownerReferences (adoption and release).
//
// Threading: coroutines on the controllers' executor; the references passed in must stay
// valid until the returned awaitable completes (callers co_await at once).
#pragma once

#include <string>

#include "controllers/apps/common.h"
#include "loop/events.h"

namespace podwarp::apps {

// Merge-patches metadata.ownerReferences of `pod` to `refs`, guarded by the pod's
// resourceVersion (409 when the pod changed meanwhile).
Awaitable<Result<json::value>> patch_owner_refs(client::Client& client, const json::value& pod,
                                                json::array refs);

// Creates `pod` in `ns`. Records SuccessfulCreate ("Created pod: <name>") or FailedCreate
// ("Error creating: <message>") on `owner`.
Awaitable<Result<void>> create_owned_pod(client::Client& client, loop::EventRecorder& recorder,
                                         const json::value& owner, std::string ns, json::value pod);

// Deletes `pod`. Records SuccessfulDelete ("Deleted pod: <name>") or FailedDelete on `owner`.
// When the delete fails (including 404, which counts as done), the expected deletion of `pod`
// under `key` is marked observed, since no watch event will show it.
Awaitable<Result<void>> delete_owned_pod(client::Client& client, loop::EventRecorder& recorder,
                                         Expectations& expectations, const std::string& key,
                                         const json::value& owner, const json::value& pod);

}  // namespace podwarp::apps
