// The API schema: one model per kind, built from the DSL files in control/schema/defs/.
//
// The model names every type by its upstream OpenAPI definition name
// ("io.k8s.api.core.v1.PodSpec") and records, per field, its type, whether it is required,
// its default, enum values, description and the list/map/patch metadata upstream publishes
// (x-kubernetes-patch-strategy, -patch-merge-key, -list-type, -list-map-keys, -map-type).
// Strict field validation, type checks, strategic merge (through patch::PatchMeta), the OpenAPI
// documents and `kubectl explain` all read this one model.
//
// The model is parsed from the embedded DSL on first use and is immutable afterwards: every
// function here is safe to call from any thread, and returned pointers live for the whole
// process. A DSL error (syntax, an undefined type reference, a merge key that is not a field
// of the item type) is a build defect: the first use throws std::logic_error naming the file
// and line. Call load() at startup to fail fast.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"
#include "podwarp/patch.h"

namespace podwarp::schema {

enum class TypeKind {
  kString,       // JSON string; `format` may say "byte", "date-time"
  kInteger,      // JSON integer; `format` is "int32" or "int64"
  kNumber,       // JSON number (double)
  kBoolean,      // JSON true/false
  kIntOrString,  // io.k8s.apimachinery.pkg.util.intstr.IntOrString
  kQuantity,     // io.k8s.apimachinery.pkg.api.resource.Quantity: string or number
  kFreeForm,     // any JSON (RawExtension, FieldsV1, Patch); nothing below it is checked
  kStruct,       // object with declared fields
  kArray,        // `items` is the element type
  kMap,          // object with string keys; `items` is the value type
};

struct Field;

struct GroupVersionKind {
  std::string group;  // "" for core
  std::string version;
  std::string kind;
};

struct Type {
  TypeKind kind = TypeKind::kStruct;
  // Upstream definition name for named types; empty for primitives, arrays and maps.
  std::string name;
  std::string format;
  std::string description;
  std::vector<Field> fields;           // kStruct, in declaration order
  const Type* items = nullptr;         // kArray element / kMap value
  std::vector<GroupVersionKind> gvks;  // kinds this type is the body of
  std::string map_type;                // x-kubernetes-map-type of a struct ("atomic")
  std::string source;                  // "core.schema:42", for messages

  const Field* find_field(std::string_view field_name) const;
  bool is_named() const { return !name.empty(); }
  // "PodSpec" for io.k8s.api.core.v1.PodSpec; "string", "[]…", "map[string]…" otherwise.
  std::string short_name() const;
  // The Go spelling upstream decode errors use: "int32", "v1.PodSpec", "[]v1.Container",
  // "map[string]string", "intstr.IntOrString", "resource.Quantity".
  std::string go_name() const;

  // Owned by the model; see patch_meta().
  const patch::PatchMeta* patch_meta_ = nullptr;
};

struct Field {
  std::string name;
  const Type* type = nullptr;
  bool required = false;
  std::string description;
  std::string patch_strategy;  // "", "merge", "replace", "retainKeys", "merge,retainKeys"
  std::string patch_merge_key;
  std::string list_type;  // "", "atomic", "set", "map"
  std::vector<std::string> list_map_keys;
  std::string map_type;  // "", "atomic", "granular"
  std::vector<std::string> enum_values;
  std::optional<json::value> default_value;
  // Where the field sits in upstream's protobuf encoding (generated.proto): its field number,
  // or several when it belongs to an embedded Go struct that JSON inlines but protobuf nests
  // (Probe.exec is {1, 1}: ProbeHandler at 1, exec at 1 in it). Empty for fields that are not
  // on the wire (TypeMeta's apiVersion and kind, carried by the envelope). Every struct field
  // has a number or is explicitly off the wire, and no two fields of a type collide: load()
  // checks both.
  std::vector<std::uint32_t> protobuf_path;
  // A Go pointer field (`*int32`, `*bool`, `*string`): on the wire only when set, so an explicit
  // zero is meaningful (replicas: 0, allowPrivilegeEscalation: false). Go always writes
  // non-pointer fields, zero or not.
  bool protobuf_pointer = false;

  const patch::PatchMeta* patch_meta_ = nullptr;
};

// Parses the embedded DSL if that has not happened yet. Throws std::logic_error on a defect.
void load();

// Named types only; nullptr when unknown.
const Type* find_type(std::string_view definition_name);

// The type whose x-kubernetes-group-version-kind includes (group, version, kind). List kinds
// ("PodList") are synthesized for every kind declared `withlist`. nullptr when unknown.
const Type* kind_type(std::string_view group, std::string_view version, std::string_view kind);

// Every named type, sorted by definition name.
std::span<const Type* const> named_types();

// Strategic-merge metadata rooted at `type` (strategy "" at the root). field() descends into a
// struct field (carrying that field's strategy and merge key) or a map value; items() into a
// list's elements. Free-form and scalar types have no children.
const patch::PatchMeta* patch_meta(const Type& type);

// Paths of fields in `value` that `type` does not declare, shaped like upstream strict
// decoding: "metadata.foo", "spec.template.spec.containers[0].imagePullPolicyy". Top-level
// apiVersion and kind are always known; below a free-form type anything goes. Only walks parts
// whose JSON type matches the schema (type_errors reports the rest).
std::vector<std::string> unknown_fields(const Type& type, const json::value& value);

// JSON type mismatches, as upstream's decoder words them: `json: cannot unmarshal string into
// Go struct field DeploymentSpec.spec.replicas of type int32`. null is accepted anywhere (unset);
// IntOrString takes an int32 or a string; Quantity a string or a number; integer fields reject
// fractions and out-of-range values. The caller adds the "<Kind> in version ... cannot be
// handled" prefix.
std::vector<std::string> type_errors(const Type& type, const json::value& value);

}  // namespace podwarp::schema
