// Pod adoption and release (upstream PodControllerRefManager.ClaimPods) for the apps
// controllers: pods controlled by `owner` that match `selector` are kept, matching orphans are
// adopted (controller ownerReference with blockOwnerDeletion), controlled pods that no longer
// match are released. Only active pods (not terminal, not being deleted) are considered unless
// `include_inactive`.
#pragma once

#include <vector>

#include "controllers/apps/common.h"
#include "podwarp/client.h"
#include "podwarp/selector.h"

namespace podwarp::apps {

Awaitable<Result<std::vector<ObjectPtr>>> claim_pods(client::Client client, json::value owner,
                                                     std::string kind, LabelSelector selector,
                                                     std::vector<ObjectPtr> candidates,
                                                     bool include_inactive);

// Pods of `ns` in the informer.
std::vector<ObjectPtr> pods_in(const client::Informer& pods, std::string_view ns);

}  // namespace podwarp::apps
