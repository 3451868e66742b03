// The schema DSL parser: text of one defs/*.schema file → declarations, before any type
// reference is resolved. Private to the schema component; the grammar is in README.md.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::schema::detail {

// Where unqualified type names of a declaration are looked up: the package, then the imports.
struct Scope {
  std::string package;
  std::vector<std::string> imports;
};

struct FieldDecl {
  std::string include;  // non-empty for a "+Mixin" line; nothing else is set then
  std::string name;
  std::string type_expr;  // "string", "[]Container", "map[Quantity]", "io.k8s...ObjectMeta"
  bool required = false;
  std::string patch_strategy;
  std::string patch_merge_key;
  std::string list_type;
  std::vector<std::string> list_map_keys;
  std::string map_type;
  std::vector<std::string> enum_values;
  std::string default_json;  // raw JSON text, empty when absent
  std::string format;        // applies to the innermost primitive of type_expr
  // Protobuf position (`#3`, `#2.1`, `#3*`, `#-`; see README). On a "+Mixin" line: the path
  // prefix of the mixin's fields (`+ContainerFields #1`). Empty with neither flag set when the
  // line carries no number, which the model rejects for fields.
  std::vector<std::uint32_t> protobuf_path;
  bool protobuf_pointer = false;  // `#3*`: a Go pointer, so a zero value on the wire is kept
  bool protobuf_absent = false;   // `#-`: not on the wire
  std::string description;
  std::string source;  // "core.schema:42"
  const Scope* scope = nullptr;
};

struct GvkDecl {
  std::string group, version, kind;
};

struct TypeDecl {
  enum class Form { kStruct, kScalar, kFreeForm, kMixin };
  Form form = Form::kStruct;
  std::string name;  // fully qualified (the mixin's bare name for mixins)
  std::string
      scalar_base;  // kScalar: string, int32, int64, number, boolean, int-or-string, quantity
  std::string format;
  std::string map_type;
  bool with_list = false;
  std::vector<GvkDecl> gvks;
  std::string description;
  std::vector<FieldDecl> fields;
  std::string source;
  const Scope* scope = nullptr;
};

struct Declarations {
  std::vector<TypeDecl> types;
  std::vector<std::unique_ptr<Scope>> scopes;  // owned here; declarations point into them
};

// Appends the declarations of one file. Throws std::logic_error("<file>:<line>: <what>").
void parse_schema_file(std::string_view file_name, std::string_view text, Declarations& out);

struct EmbeddedFile;

// Builds a throwaway model from `files` and discards it: throws std::logic_error exactly where
// load() would for the same definitions. For tests of the DSL's failure modes.
void check_definitions(std::span<const EmbeddedFile> files);

}  // namespace podwarp::schema::detail
