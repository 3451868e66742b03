// The Swagger 2.0 document of /openapi/v2 in the protobuf form stock kubectl asks for.
//
// kubectl (client-go's DiscoveryClient.OpenAPISchema) requests /openapi/v2 with
// `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and unmarshals the body
// as gnostic's `openapi.v2.Document` (github.com/google/gnostic-models, openapiv2/OpenAPIv2.proto).
// It needs that document for client-side validation whenever the server cannot validate a kind
// itself, e.g. the items of a `kind: List` manifest: definitions are found by their
// x-kubernetes-group-version-kind vendor extension.
//
// The encoder maps the JSON document field by field onto the proto's field numbers, without
// generated code:
//   - every message of the proto is written (Document, Info, Paths/PathItem/Operation,
//     parameters body/header/formData/query/path and $ref, Responses/ResponseValue/Response,
//     Schema and FileSchema, Definitions, security, tags, ...); fields in field-number order;
//   - maps become repeated Named* {name = 1, value = 2} pairs in the JSON's key order;
//   - free-form values (default, example, enum entries, vendor extensions `x-*`, examples) become
//     `Any { yaml = 2 }` holding the value as JSON text (JSON is YAML, so Go's yaml readers get
//     the same value gnostic's YAML would give);
//   - Schema.type is TypeItem {repeated value}, items ItemsItem {repeated Schema},
//     additionalProperties AdditionalPropertiesItem {schema = 1 | boolean = 2} (a `false` is
//     written: it is a oneof member);
//   - scalars at their proto3 default (empty string, false, 0) are left out, as proto3 does;
//     keys the proto has no field for, and values of the wrong JSON type, are skipped;
//   - nesting deeper than kMaxPbDepth messages is cut off (our documents stay under 30).
// Thread-safe: the functions are pure except openapi_v2_protobuf(), which encodes once.
#pragma once

#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::schema {

// The media type kubectl sends (deprecated spelling with '@') and the current one. A response is
// always labelled with the current one, as upstream does: client-go parses the response's
// Content-Type with Go's mime package, which rejects the '@'.
inline constexpr std::string_view kOpenApiV2ProtobufDeprecated =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
inline constexpr std::string_view kOpenApiV2Protobuf =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

inline constexpr int kMaxPbDepth = 128;

// Encodes a Swagger 2.0 document as a serialized openapi.v2.Document.
std::string encode_openapi_v2_protobuf(const json::object& doc);

// openapi_v2_document() encoded (first call encodes; the reference lives for the process).
const std::string& openapi_v2_protobuf();

// Content negotiation of /openapi/v2. Media ranges are ordered by q (ties: as listed); the first
// one the server can produce wins: the protobuf types above, or JSON for application/json (or
// any type containing "json"), application/* and */*. An empty Accept is JSON; q=0 excludes.
enum class OpenApiV2Encoding { kJson, kProtobuf, kUnacceptable };
OpenApiV2Encoding openapi_v2_encoding(std::string_view accept);

}  // namespace podwarp::schema
