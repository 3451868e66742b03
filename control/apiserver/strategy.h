// Per-kind strategies applied by the REST handlers before defaulting and validation, as
// upstream's registry strategies: what create resets, what an update may change, when
// metadata.generation moves, and the initial status some kinds get.
#pragma once

#include <string>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::apiserver {

bool uses_generation(const api::Resource& r);
bool has_status_subresource(const api::Resource& r);

// Create: server-owned metadata (uid, creationTimestamp, generation), status reset.
void prepare_for_create(const api::Resource& r, json::value& obj);
// Update of the main resource: status and server-owned metadata come from old; generation
// moves when the spec does.
void prepare_for_update(const api::Resource& r, json::value& next, const json::value& old);
// Update of the status subresource, as upstream's status strategies: the request's status and
// metadata (server-owned metadata from old, as in any update), everything else (spec) from old.
// Per kind, as upstream: a Deployment keeps its labels, a Pod its ownerReferences. So a
// controller can set an annotation with its status (the Deployment controller's revision)
// without moving generation.
void prepare_for_status_update(const api::Resource& r, json::value& next, const json::value& old);

// Upstream's QoS class of a pod spec: Guaranteed, Burstable or BestEffort.
std::string pod_qos_class(const json::value& pod);

}  // namespace podwarp::apiserver
