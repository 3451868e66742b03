#include "schema/openapi_v2_pb.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <vector>

#include "schema/openapi.h"

namespace podwarp::schema {
namespace {

// ------------------------------------------------------------------ wire format

class Writer {
 public:
  void tag(int field, int wire_type) { varint((static_cast<std::uint64_t>(field) << 3) | wire_type); }

  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }

  void bytes(int field, std::string_view s) {
    tag(field, 2);
    varint(s.size());
    out_.append(s);
  }

  void uint(int field, std::uint64_t v) {
    tag(field, 0);
    varint(v);
  }

  void fixed64(int field, double d) {
    std::uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    tag(field, 1);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
  }

  std::string& str() { return out_; }

 private:
  std::string out_;
};

// ------------------------------------------------------------------ message tables
//
// A message is a table of fields in field-number order: entry i is field number i + 1. `name`
// is the JSON key the field comes from; the kinds marked "whole" read the enclosing JSON object
// itself (maps and vendor extensions).

enum class K {
  kString,     // string
  kBool,       // bool
  kInt,        // int64
  kDouble,     // double
  kStrings,    // repeated string (a lone string counts as one)
  kAny,        // Any {yaml}
  kAnys,       // repeated Any
  kExt,        // whole: repeated NamedAny of the x-* keys
  kMsg,        // message of table `sub`
  kMsgs,       // repeated message of table `sub`
  kSchema,     // Schema
  kSchemas,    // repeated Schema
  kType,       // TypeItem
  kItems,      // ItemsItem
  kAddProps,   // AdditionalPropertiesItem
  kSchemaItem, // SchemaItem {schema | file_schema}
  kParams,     // repeated ParametersItem
  kSecurity,   // repeated SecurityRequirement
  // whole-object maps: repeated Named* {name = 1, value = 2}
  kNamedSchemas,    // every key → Schema
  kNamedParams,     // every key → Parameter
  kNamedResponses,  // every key → Response
  kNamedHeaders,    // every key → Header
  kNamedAnys,       // every key → Any
  kNamedStrings,    // every key → string
  kNamedSecDefs,    // every key → SecurityDefinitionsItem
  kPathItems,       // non-x keys → PathItem
  kResponseCodes,   // non-x keys → ResponseValue
};

struct Table;
struct F {
  std::string_view name;
  K kind;
  const Table* sub = nullptr;
};
struct Table {
  std::span<const F> fields;
};

extern const Table kExternalDocsT, kPrimitivesItemsT, kXmlT, kPropertiesT, kOperationT,
    kResponsesT, kHeadersT, kExamplesT, kOauth2ScopesT;

const F kExternalDocsF[] = {{"description", K::kString}, {"url", K::kString}, {"", K::kExt}};
const Table kExternalDocsT{kExternalDocsF};

const F kContactF[] = {{"name", K::kString}, {"url", K::kString}, {"email", K::kString}, {"", K::kExt}};
const Table kContactT{kContactF};

const F kLicenseF[] = {{"name", K::kString}, {"url", K::kString}, {"", K::kExt}};
const Table kLicenseT{kLicenseF};

const F kInfoF[] = {{"title", K::kString},          {"version", K::kString},
                    {"description", K::kString},    {"termsOfService", K::kString},
                    {"contact", K::kMsg, &kContactT}, {"license", K::kMsg, &kLicenseT},
                    {"", K::kExt}};
const Table kInfoT{kInfoF};

const F kTagF[] = {{"name", K::kString},
                   {"description", K::kString},
                   {"externalDocs", K::kMsg, &kExternalDocsT},
                   {"", K::kExt}};
const Table kTagT{kTagF};

const F kXmlF[] = {{"name", K::kString},    {"namespace", K::kString}, {"prefix", K::kString},
                   {"attribute", K::kBool}, {"wrapped", K::kBool},     {"", K::kExt}};
const Table kXmlT{kXmlF};

// Schema = 1..31.
const F kSchemaF[] = {
    {"$ref", K::kString},           {"format", K::kString},
    {"title", K::kString},          {"description", K::kString},
    {"default", K::kAny},           {"multipleOf", K::kDouble},
    {"maximum", K::kDouble},        {"exclusiveMaximum", K::kBool},
    {"minimum", K::kDouble},        {"exclusiveMinimum", K::kBool},
    {"maxLength", K::kInt},         {"minLength", K::kInt},
    {"pattern", K::kString},        {"maxItems", K::kInt},
    {"minItems", K::kInt},          {"uniqueItems", K::kBool},
    {"maxProperties", K::kInt},     {"minProperties", K::kInt},
    {"required", K::kStrings},      {"enum", K::kAnys},
    {"additionalProperties", K::kAddProps}, {"type", K::kType},
    {"items", K::kItems},           {"allOf", K::kSchemas},
    {"properties", K::kMsg, &kPropertiesT}, {"discriminator", K::kString},
    {"readOnly", K::kBool},         {"xml", K::kMsg, &kXmlT},
    {"externalDocs", K::kMsg, &kExternalDocsT}, {"example", K::kAny},
    {"", K::kExt}};
const Table kSchemaT{kSchemaF};

const F kPropertiesF[] = {{"", K::kNamedSchemas}};
const Table kPropertiesT{kPropertiesF};

const F kFileSchemaF[] = {{"format", K::kString},   {"title", K::kString},
                          {"description", K::kString}, {"default", K::kAny},
                          {"required", K::kStrings}, {"type", K::kString},
                          {"readOnly", K::kBool},    {"externalDocs", K::kMsg, &kExternalDocsT},
                          {"example", K::kAny},      {"", K::kExt}};
const Table kFileSchemaT{kFileSchemaF};

// The validation keywords shared by PrimitivesItems (from field 1) and the non-body parameter
// sub-schemas (from field 5 or 6).
#define PODWARP_PRIMITIVE_FIELDS(items_table)                                                    \
  {"type", K::kString}, {"format", K::kString}, {"items", K::kMsg, items_table},                \
      {"collectionFormat", K::kString}, {"default", K::kAny}, {"maximum", K::kDouble},           \
      {"exclusiveMaximum", K::kBool}, {"minimum", K::kDouble}, {"exclusiveMinimum", K::kBool},   \
      {"maxLength", K::kInt}, {"minLength", K::kInt}, {"pattern", K::kString},                  \
      {"maxItems", K::kInt}, {"minItems", K::kInt}, {"uniqueItems", K::kBool},                   \
      {"enum", K::kAnys}, {"multipleOf", K::kDouble}

const F kPrimitivesItemsF[] = {PODWARP_PRIMITIVE_FIELDS(&kPrimitivesItemsT), {"", K::kExt}};
const Table kPrimitivesItemsT{kPrimitivesItemsF};

const F kHeaderF[] = {PODWARP_PRIMITIVE_FIELDS(&kPrimitivesItemsT), {"description", K::kString},
                      {"", K::kExt}};
const Table kHeaderT{kHeaderF};

// HeaderParameterSubSchema and PathParameterSubSchema.
const F kHeaderOrPathParamF[] = {{"required", K::kBool},   {"in", K::kString},
                                 {"description", K::kString}, {"name", K::kString},
                                 PODWARP_PRIMITIVE_FIELDS(&kPrimitivesItemsT), {"", K::kExt}};
const Table kHeaderOrPathParamT{kHeaderOrPathParamF};

// FormDataParameterSubSchema and QueryParameterSubSchema.
const F kFormOrQueryParamF[] = {{"required", K::kBool},      {"in", K::kString},
                                {"description", K::kString}, {"name", K::kString},
                                {"allowEmptyValue", K::kBool},
                                PODWARP_PRIMITIVE_FIELDS(&kPrimitivesItemsT), {"", K::kExt}};
const Table kFormOrQueryParamT{kFormOrQueryParamF};

#undef PODWARP_PRIMITIVE_FIELDS

const F kBodyParamF[] = {{"description", K::kString}, {"name", K::kString}, {"in", K::kString},
                         {"required", K::kBool},      {"schema", K::kSchema}, {"", K::kExt}};
const Table kBodyParamT{kBodyParamF};

const F kHeadersF[] = {{"", K::kNamedHeaders}};
const Table kHeadersT{kHeadersF};
const F kExamplesF[] = {{"", K::kNamedAnys}};
const Table kExamplesT{kExamplesF};

const F kResponseF[] = {{"description", K::kString},
                        {"schema", K::kSchemaItem},
                        {"headers", K::kMsg, &kHeadersT},
                        {"examples", K::kMsg, &kExamplesT},
                        {"", K::kExt}};
const Table kResponseT{kResponseF};

const F kResponsesF[] = {{"", K::kResponseCodes}, {"", K::kExt}};
const Table kResponsesT{kResponsesF};

const F kOperationF[] = {{"tags", K::kStrings},
                         {"summary", K::kString},
                         {"description", K::kString},
                         {"externalDocs", K::kMsg, &kExternalDocsT},
                         {"operationId", K::kString},
                         {"produces", K::kStrings},
                         {"consumes", K::kStrings},
                         {"parameters", K::kParams},
                         {"responses", K::kMsg, &kResponsesT},
                         {"schemes", K::kStrings},
                         {"deprecated", K::kBool},
                         {"security", K::kSecurity},
                         {"", K::kExt}};
const Table kOperationT{kOperationF};

const F kPathItemF[] = {{"$ref", K::kString},
                        {"get", K::kMsg, &kOperationT},
                        {"put", K::kMsg, &kOperationT},
                        {"post", K::kMsg, &kOperationT},
                        {"delete", K::kMsg, &kOperationT},
                        {"options", K::kMsg, &kOperationT},
                        {"head", K::kMsg, &kOperationT},
                        {"patch", K::kMsg, &kOperationT},
                        {"parameters", K::kParams},
                        {"", K::kExt}};
const Table kPathItemT{kPathItemF};

const F kPathsF[] = {{"", K::kExt}, {"", K::kPathItems}};
const Table kPathsT{kPathsF};

const F kDefinitionsF[] = {{"", K::kNamedSchemas}};
const Table kDefinitionsT{kDefinitionsF};
const F kParameterDefinitionsF[] = {{"", K::kNamedParams}};
const Table kParameterDefinitionsT{kParameterDefinitionsF};
const F kResponseDefinitionsF[] = {{"", K::kNamedResponses}};
const Table kResponseDefinitionsT{kResponseDefinitionsF};
const F kSecurityDefinitionsF[] = {{"", K::kNamedSecDefs}};
const Table kSecurityDefinitionsT{kSecurityDefinitionsF};

const F kBasicSecurityF[] = {{"type", K::kString}, {"description", K::kString}, {"", K::kExt}};
const Table kBasicSecurityT{kBasicSecurityF};
const F kApiKeySecurityF[] = {{"type", K::kString}, {"name", K::kString}, {"in", K::kString},
                              {"description", K::kString}, {"", K::kExt}};
const Table kApiKeySecurityT{kApiKeySecurityF};
const F kOauth2ScopesF[] = {{"", K::kNamedStrings}};
const Table kOauth2ScopesT{kOauth2ScopesF};
const F kOauth2ImplicitF[] = {{"type", K::kString},
                              {"flow", K::kString},
                              {"scopes", K::kMsg, &kOauth2ScopesT},
                              {"authorizationUrl", K::kString},
                              {"description", K::kString},
                              {"", K::kExt}};
const Table kOauth2ImplicitT{kOauth2ImplicitF};
// Oauth2PasswordSecurity and Oauth2ApplicationSecurity.
const F kOauth2TokenF[] = {{"type", K::kString},
                           {"flow", K::kString},
                           {"scopes", K::kMsg, &kOauth2ScopesT},
                           {"tokenUrl", K::kString},
                           {"description", K::kString},
                           {"", K::kExt}};
const Table kOauth2TokenT{kOauth2TokenF};
const F kOauth2AccessCodeF[] = {{"type", K::kString},
                                {"flow", K::kString},
                                {"scopes", K::kMsg, &kOauth2ScopesT},
                                {"authorizationUrl", K::kString},
                                {"tokenUrl", K::kString},
                                {"description", K::kString},
                                {"", K::kExt}};
const Table kOauth2AccessCodeT{kOauth2AccessCodeF};

const F kDocumentF[] = {{"swagger", K::kString},
                        {"info", K::kMsg, &kInfoT},
                        {"host", K::kString},
                        {"basePath", K::kString},
                        {"schemes", K::kStrings},
                        {"consumes", K::kStrings},
                        {"produces", K::kStrings},
                        {"paths", K::kMsg, &kPathsT},
                        {"definitions", K::kMsg, &kDefinitionsT},
                        {"parameters", K::kMsg, &kParameterDefinitionsT},
                        {"responses", K::kMsg, &kResponseDefinitionsT},
                        {"security", K::kSecurity},
                        {"securityDefinitions", K::kMsg, &kSecurityDefinitionsT},
                        {"tags", K::kMsgs, &kTagT},
                        {"externalDocs", K::kMsg, &kExternalDocsT},
                        {"", K::kExt}};
const Table kDocumentT{kDocumentF};

// ------------------------------------------------------------------ encoder

bool is_extension(std::string_view key) { return key.starts_with("x-"); }

class Encoder {
 public:
  // Writes the message of table t for object o into w.
  void message(Writer& w, const json::object& o, const Table& t, int depth) {
    if (depth > kMaxPbDepth) return;
    int number = 0;
    for (const F& f : t.fields) {
      ++number;
      if (f.name.empty()) {
        whole(w, number, f, o, depth);
        continue;
      }
      const json::value* v = o.if_contains(f.name);
      if (v != nullptr) field(w, number, f, *v, depth);
    }
  }

 private:
  // A nested message written by fn into its own buffer, then length-prefixed into w.
  template <class Fn>
  void nested(Writer& w, int number, Fn&& fn) {
    Writer sub;
    fn(sub);
    w.bytes(number, sub.str());
  }

  void table_msg(Writer& w, int number, const json::object& o, const Table& t, int depth) {
    nested(w, number, [&](Writer& s) { message(s, o, t, depth + 1); });
  }

  static void any(Writer& w, int number, const json::value& v) {
    Writer a;
    a.bytes(2, json::serialize(v));  // Any.yaml; JSON text is YAML
    w.bytes(number, a.str());
  }

  static bool number_value(const json::value& v, double& out) {
    if (v.is_int64()) out = static_cast<double>(v.get_int64());
    else if (v.is_uint64()) out = static_cast<double>(v.get_uint64());
    else if (v.is_double()) out = v.get_double();
    else return false;
    return true;
  }

  static bool int_value(const json::value& v, std::int64_t& out) {
    if (v.is_int64()) out = v.get_int64();
    else if (v.is_uint64()) out = static_cast<std::int64_t>(v.get_uint64());
    else if (v.is_double() && std::fabs(v.get_double()) < 9.2e18) out = static_cast<std::int64_t>(v.get_double());
    else return false;
    return true;
  }

  void schema(Writer& w, int number, const json::value& v, int depth) {
    if (v.is_object()) table_msg(w, number, v.get_object(), kSchemaT, depth);
  }

  // Parameter {body_parameter = 1 | non_body_parameter = 2 {header = 1, formData = 2,
  // query = 3, path = 4}}.
  void parameter(Writer& w, int number, const json::object& p, int depth) {
    const json::value* in = p.if_contains("in");
    std::string_view where = in != nullptr && in->is_string() ? std::string_view(in->get_string())
                                                              : std::string_view();
    nested(w, number, [&](Writer& s) {
      if (where == "body") {
        table_msg(s, 1, p, kBodyParamT, depth + 1);
        return;
      }
      int which = 0;
      const Table* t = nullptr;
      if (where == "header") which = 1, t = &kHeaderOrPathParamT;
      else if (where == "formData") which = 2, t = &kFormOrQueryParamT;
      else if (where == "query") which = 3, t = &kFormOrQueryParamT;
      else if (where == "path") which = 4, t = &kHeaderOrPathParamT;
      if (t == nullptr) return;  // not a valid parameter location: empty Parameter
      nested(s, 2, [&](Writer& nb) { table_msg(nb, which, p, *t, depth + 2); });
    });
  }

  // {json_reference = 2 {_ref = 1, description = 2}} when the object is a $ref, else
  // `value_number` holding what fn writes.
  template <class Fn>
  void ref_or(Writer& w, int number, const json::object& o, int value_number, Fn&& fn) {
    nested(w, number, [&](Writer& s) {
      const json::value* ref = o.if_contains("$ref");
      if (ref != nullptr && ref->is_string()) {
        nested(s, 2, [&](Writer& r) {
          r.bytes(1, ref->get_string());
          const json::value* d = o.if_contains("description");
          if (d != nullptr && d->is_string() && !d->get_string().empty()) r.bytes(2, d->get_string());
        });
        return;
      }
      fn(s, value_number);
    });
  }

  void security_item(Writer& w, int number, const json::object& o, int depth) {
    nested(w, number, [&](Writer& s) {
      const json::value* t = o.if_contains("type");
      const json::value* f = o.if_contains("flow");
      std::string_view type = t != nullptr && t->is_string() ? std::string_view(t->get_string()) : "";
      std::string_view flow = f != nullptr && f->is_string() ? std::string_view(f->get_string()) : "";
      if (type == "basic") table_msg(s, 1, o, kBasicSecurityT, depth + 1);
      else if (type == "apiKey") table_msg(s, 2, o, kApiKeySecurityT, depth + 1);
      else if (type == "oauth2" && flow == "implicit") table_msg(s, 3, o, kOauth2ImplicitT, depth + 1);
      else if (type == "oauth2" && flow == "password") table_msg(s, 4, o, kOauth2TokenT, depth + 1);
      else if (type == "oauth2" && flow == "application") table_msg(s, 5, o, kOauth2TokenT, depth + 1);
      else if (type == "oauth2" && flow == "accessCode") table_msg(s, 6, o, kOauth2AccessCodeT, depth + 1);
    });
  }

  void field(Writer& w, int number, const F& f, const json::value& v, int depth) {
    switch (f.kind) {
      case K::kString:
        if (v.is_string() && !v.get_string().empty()) w.bytes(number, v.get_string());
        break;
      case K::kBool:
        if (v.is_bool() && v.get_bool()) w.uint(number, 1);
        break;
      case K::kInt: {
        std::int64_t i = 0;
        if (int_value(v, i) && i != 0) w.uint(number, static_cast<std::uint64_t>(i));
        break;
      }
      case K::kDouble: {
        double d = 0;
        if (number_value(v, d) && d != 0) w.fixed64(number, d);
        break;
      }
      case K::kStrings:
        if (v.is_string()) {
          w.bytes(number, v.get_string());
        } else if (v.is_array()) {
          for (const json::value& s : v.get_array()) {
            if (s.is_string()) w.bytes(number, s.get_string());
          }
        }
        break;
      case K::kAny:
        any(w, number, v);
        break;
      case K::kAnys:
        if (v.is_array()) {
          for (const json::value& e : v.get_array()) any(w, number, e);
        }
        break;
      case K::kMsg:
        if (v.is_object()) table_msg(w, number, v.get_object(), *f.sub, depth);
        break;
      case K::kMsgs:
        if (v.is_array()) {
          for (const json::value& e : v.get_array()) {
            if (e.is_object()) table_msg(w, number, e.get_object(), *f.sub, depth);
          }
        }
        break;
      case K::kSchema:
        schema(w, number, v, depth);
        break;
      case K::kSchemas:
        if (v.is_array()) {
          for (const json::value& e : v.get_array()) schema(w, number, e, depth);
        }
        break;
      case K::kType:  // TypeItem {repeated string value = 1}
        if (v.is_string() || v.is_array()) {
          nested(w, number, [&](Writer& s) { field(s, 1, F{"", K::kStrings}, v, depth + 1); });
        }
        break;
      case K::kItems:  // ItemsItem {repeated Schema schema = 1}
        if (v.is_object()) {
          nested(w, number, [&](Writer& s) { schema(s, 1, v, depth + 1); });
        } else if (v.is_array()) {
          nested(w, number, [&](Writer& s) {
            for (const json::value& e : v.get_array()) schema(s, 1, e, depth + 1);
          });
        }
        break;
      case K::kAddProps:  // AdditionalPropertiesItem {oneof: Schema schema = 1; bool boolean = 2}
        if (v.is_bool()) {
          nested(w, number, [&](Writer& s) { s.uint(2, v.get_bool() ? 1 : 0); });
        } else if (v.is_object()) {
          nested(w, number, [&](Writer& s) { schema(s, 1, v, depth + 1); });
        }
        break;
      case K::kSchemaItem:  // SchemaItem {oneof: Schema schema = 1; FileSchema file_schema = 2}
        if (v.is_object()) {
          const json::value* t = v.get_object().if_contains("type");
          bool file = t != nullptr && t->is_string() && t->get_string() == "file";
          nested(w, number, [&](Writer& s) {
            if (file) table_msg(s, 2, v.get_object(), kFileSchemaT, depth + 1);
            else schema(s, 1, v, depth + 1);
          });
        }
        break;
      case K::kParams:  // repeated ParametersItem {oneof: Parameter = 1; JsonReference = 2}
        if (v.is_array()) {
          for (const json::value& e : v.get_array()) {
            if (!e.is_object()) continue;
            ref_or(w, number, e.get_object(), 1, [&](Writer& s, int n) {
              parameter(s, n, e.get_object(), depth + 1);
            });
          }
        }
        break;
      case K::kSecurity:  // repeated SecurityRequirement {repeated NamedStringArray = 1}
        if (v.is_array()) {
          for (const json::value& e : v.get_array()) {
            if (!e.is_object()) continue;
            nested(w, number, [&](Writer& s) {
              for (const auto& kv : e.get_object()) {
                nested(s, 1, [&](Writer& n) {
                  n.bytes(1, kv.key());
                  nested(n, 2, [&](Writer& a) { field(a, 1, F{"", K::kStrings}, kv.value(), depth); });
                });
              }
            });
          }
        }
        break;
      default:
        break;  // whole-object kinds never have a key
    }
  }

  void whole(Writer& w, int number, const F& f, const json::object& o, int depth) {
    // Every map entry is a Named* {name = 1, value = 2}.
    auto named = [&](bool skip_extensions, auto&& value) {
      for (const auto& kv : o) {
        if (skip_extensions && is_extension(kv.key())) continue;
        nested(w, number, [&](Writer& n) {
          n.bytes(1, kv.key());
          value(n, kv.value());
        });
      }
    };
    switch (f.kind) {
      case K::kExt:
        for (const auto& kv : o) {
          if (!is_extension(kv.key())) continue;
          nested(w, number, [&](Writer& n) {
            n.bytes(1, kv.key());
            any(n, 2, kv.value());
          });
        }
        break;
      case K::kNamedSchemas:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_object()) schema(n, 2, v, depth + 1);
        });
        break;
      case K::kNamedParams:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_object()) parameter(n, 2, v.get_object(), depth + 1);
        });
        break;
      case K::kNamedResponses:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_object()) table_msg(n, 2, v.get_object(), kResponseT, depth + 1);
        });
        break;
      case K::kNamedHeaders:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_object()) table_msg(n, 2, v.get_object(), kHeaderT, depth + 1);
        });
        break;
      case K::kNamedAnys:
        named(false, [&](Writer& n, const json::value& v) { any(n, 2, v); });
        break;
      case K::kNamedStrings:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_string() && !v.get_string().empty()) n.bytes(2, v.get_string());
        });
        break;
      case K::kNamedSecDefs:
        named(false, [&](Writer& n, const json::value& v) {
          if (v.is_object()) security_item(n, 2, v.get_object(), depth + 1);
        });
        break;
      case K::kPathItems:
        named(true, [&](Writer& n, const json::value& v) {
          if (v.is_object()) table_msg(n, 2, v.get_object(), kPathItemT, depth + 1);
        });
        break;
      case K::kResponseCodes:  // NamedResponseValue {name, ResponseValue {response = 1 | ref = 2}}
        named(true, [&](Writer& n, const json::value& v) {
          if (!v.is_object()) return;
          ref_or(n, 2, v.get_object(), 1, [&](Writer& s, int num) {
            table_msg(s, num, v.get_object(), kResponseT, depth + 1);
          });
        });
        break;
      default:
        break;
    }
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string encode_openapi_v2_protobuf(const json::object& doc) {
  Writer w;
  Encoder().message(w, doc, kDocumentT, 0);
  return std::move(w.str());
}

const std::string& openapi_v2_protobuf() {
  static const std::string kBytes = [] {
    auto doc = parse_json(openapi_v2_document(), 512);
    if (!doc || !doc->is_object()) {
      throw std::logic_error("openapi v2 document does not parse: " +
                             (doc ? std::string("not an object") : doc.error()));
    }
    return encode_openapi_v2_protobuf(doc->get_object());
  }();
  return kBytes;
}

OpenApiV2Encoding openapi_v2_encoding(std::string_view accept) {
  if (trim(accept).empty()) return OpenApiV2Encoding::kJson;
  struct Range {
    std::string type;
    double q;
  };
  std::vector<Range> ranges;
  while (!accept.empty()) {
    std::size_t comma = accept.find(',');
    std::string_view clause = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    std::size_t semi = clause.find(';');
    Range r{lower(trim(clause.substr(0, semi))), 1.0};
    std::string_view params =
        semi == std::string_view::npos ? std::string_view() : clause.substr(semi + 1);
    while (!params.empty()) {
      std::size_t next = params.find(';');
      std::string_view p = trim(params.substr(0, next));
      params = next == std::string_view::npos ? std::string_view() : params.substr(next + 1);
      if (p.size() >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
        try {
          r.q = std::stod(std::string(p.substr(2)));
        } catch (const std::exception&) {
          r.q = 0;
        }
      }
    }
    if (!r.type.empty() && r.q > 0) ranges.push_back(std::move(r));
  }
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const Range& a, const Range& b) { return a.q > b.q; });
  for (const Range& r : ranges) {
    if (r.type == kOpenApiV2ProtobufDeprecated || r.type == kOpenApiV2Protobuf) {
      return OpenApiV2Encoding::kProtobuf;
    }
    if (r.type == "*/*" || r.type == "application/*" ||
        r.type.find("json") != std::string::npos) {
      return OpenApiV2Encoding::kJson;
    }
  }
  return OpenApiV2Encoding::kUnacceptable;
}

}  // namespace podwarp::schema
