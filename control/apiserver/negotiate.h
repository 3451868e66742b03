// Content negotiation: which representation a client asked for in Accept.
#pragma once

#include <string_view>

namespace podwarp::apiserver {

enum class Format { kJson, kTable, kPartialMetadata, kUnacceptable };

// Picks the first media range in accept that the server can produce: meta.k8s.io Table or
// PartialObjectMetadata(List) (v1 or v1beta1), or JSON (also for */* and protobuf-or-JSON
// lists). kUnacceptable when nothing fits (e.g. protobuf only).
Format negotiate(std::string_view accept);

}  // namespace podwarp::apiserver
