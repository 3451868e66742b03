// The OpenAPI documents served at /openapi/v3 and /openapi/v2, generated from the schema model
// (control/schema/defs) and the resource table (api::resources()).
//
// kubectl reads them for three things (shared/CLIENTS.md): whether the server validates fields
// itself (every `patch` operation carries `x-kubernetes-group-version-kind` and a
// `fieldValidation` query parameter), how to build a strategic merge patch for `apply`
// (x-kubernetes-patch-strategy / -patch-merge-key on properties), and `kubectl explain` (kind
// schemas found by their x-kubernetes-group-version-kind, properties followed through
// allOf/$ref).
//
// All documents are generated together on the first call of any function here (thread-safe)
// and never change afterwards; returned references and pointers live for the whole process.
// The hashes are SHA-512 of the serialized documents, so they are stable across restarts of the
// same build.
#pragma once

#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::schema {

// {"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=<HASH>"},
//           "apis/apps/v1":{...}, ...}} — one entry per served group/version.
json::value openapi_v3_index();

// The OpenAPI 3.0 document of one group/version ("" for core), serialized as JSON; nullptr
// when the group/version is not served.
const std::string* openapi_v3_document(std::string_view group, std::string_view version);

// The uppercase hex hash in that document's serverRelativeURL (for ETag and for telling a
// current ?hash= from a stale one); empty when the group/version is not served.
std::string_view openapi_v3_hash(std::string_view group, std::string_view version);

// The Swagger 2.0 document for every served group/version, serialized as JSON.
const std::string& openapi_v2_document();

}  // namespace podwarp::schema
