// Kubernetes protobuf request bodies (Content-Type application/vnd.kubernetes.protobuf) decoded
// into the JSON object the apiserver handles, driven by the schema model.
//
// Stock kubectl and client-go send create/update bodies as protobuf: the 4-byte magic "k8s\0",
// then a runtime.Unknown envelope {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
// contentEncoding = 3, contentType = 4} whose `raw` is the object's message, numbered as
// upstream's generated.proto files number it. The schema carries those numbers (`#<n>` in
// defs/*.schema, Field::protobuf_path), so decoding needs no generated code: the kind type
// comes from kind_type(group, version, kind) and every field from the model.
//
// The JSON is what Go's encoding/json makes of the decoded Go struct, with one documented
// difference: Go writes every non-pointer field on the wire even when it holds its zero value,
// and its JSON tags mostly say omitempty, so a zero string/number/bool of a field that is
// neither a Go pointer (`#3*`) nor required is dropped; pointer and required fields keep it
// (replicas: 0, allowPrivilegeEscalation: false, containerPort: 0). Fields absent from the wire
// are absent from the JSON. A zero metav1.Time (an empty message) is dropped instead of being
// written as null. Other mappings:
//   - string → string (invalid UTF-8 replaced by U+FFFD, as encoding/json does); bytes
//     (format=byte: Secret.data, ConfigMap.binaryData) → standard base64;
//   - int32/int64 → number (varint, two's complement); bool → true/false; double → number;
//   - nested messages → objects; messages that JSON inlines (Probe's handler, Volume's source,
//     the LocalObjectReference of key selectors, EphemeralContainerCommon) → fields of the
//     enclosing object; a message field seen twice is merged, a scalar seen twice keeps the last;
//   - repeated → array (scalars packed or not); map<K, V> → object (entries {key = 1,
//     value = 2}, last key wins);
//   - metav1.Time {seconds = 1, nanos = 2} → "2006-01-02T15:04:05Z" (nanos ignored, as upstream
//     does); MicroTime → "2006-01-02T15:04:05.000000Z";
//   - resource.Quantity {string = 1} → the string; intstr.IntOrString {type = 1, intVal = 2,
//     strVal = 3} → number or string; runtime.RawExtension and FieldsV1 {raw = 1} → the
//     embedded JSON, or a nested protobuf object when it starts with the magic;
//   - unknown field numbers are skipped (upstream ignores them); free-form messages with no
//     known encoding (Patch) are dropped.
// Malformed input (truncated varints, lengths past the end, groups, wrong wire types, a missing
// or wrong magic, an unknown kind, nesting deeper than kMaxDepth, more than kMaxValues JSON
// values, a body over kMaxBodyBytes) is an error naming the JSON path and the byte offset in
// the envelope's `raw`; nothing is read out of bounds.
//
// Thread-safe: the functions only read the immutable schema model (loading it on first use, as
// every schema function does; a defect in the definitions throws std::logic_error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>

#include "podwarp/json.h"
#include "schema/schema.h"

namespace podwarp::schema {

inline constexpr std::string_view kProtobufContentType = "application/vnd.kubernetes.protobuf";

// Limits on hostile input. kMaxDepth counts nested messages (and embedded objects); real kinds
// stay under 20.
inline constexpr std::size_t kMaxBodyBytes = 16u << 20;
inline constexpr int kMaxDepth = 64;
inline constexpr std::size_t kMaxValues = 1u << 20;

// A whole request body: magic, envelope, object. The result is a JSON object with apiVersion and
// kind set from the envelope.
std::expected<json::value, std::string> decode_protobuf(std::span<const std::uint8_t> body);
std::expected<json::value, std::string> decode_protobuf(std::string_view body);

// One message of `type` (a struct type of the model) without magic or envelope: `raw` as the
// envelope carries it. apiVersion and kind are not set.
std::expected<json::value, std::string> decode_protobuf_message(const Type& type,
                                                                std::span<const std::uint8_t> raw);

}  // namespace podwarp::schema
