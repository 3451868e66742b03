#include "schema/openapi_v2_pb.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

#include "schema/openapi.h"

namespace podwarp::schema {
namespace {

// A minimal protobuf reader: a message is the list of its fields; length-delimited values keep
// their bytes (a string or a nested message, decided by the test), varints their number.
struct Field {
  int number = 0;
  int wire = 0;
  std::uint64_t varint = 0;
  std::string bytes;
};

std::uint64_t read_varint(std::string_view data, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= data.size()) throw std::runtime_error("truncated varint");
    auto b = static_cast<std::uint8_t>(data[pos++]);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  throw std::runtime_error("varint too long");
}

std::vector<Field> parse(std::string_view data) {
  std::vector<Field> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    std::uint64_t key = read_varint(data, pos);
    Field f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.number <= 0) throw std::runtime_error("field number 0");
    switch (f.wire) {
      case 0:
        f.varint = read_varint(data, pos);
        break;
      case 1:
        if (pos + 8 > data.size()) throw std::runtime_error("truncated fixed64");
        std::memcpy(&f.varint, data.data() + pos, 8);
        pos += 8;
        break;
      case 2: {
        std::uint64_t len = read_varint(data, pos);
        if (len > data.size() - pos) throw std::runtime_error("length past the end");
        f.bytes = std::string(data.substr(pos, len));
        pos += len;
        break;
      }
      default:
        throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<Field> all(const std::vector<Field>& m, int number) {
  std::vector<Field> out;
  for (const Field& f : m) {
    if (f.number == number) out.push_back(f);
  }
  return out;
}

std::optional<Field> one(const std::vector<Field>& m, int number) {
  auto fs = all(m, number);
  if (fs.size() > 1) throw std::runtime_error("field " + std::to_string(number) + " repeated");
  if (fs.empty()) return std::nullopt;
  return fs[0];
}

std::string str(const std::vector<Field>& m, int number) {
  auto f = one(m, number);
  if (!f) return "";
  EXPECT_EQ(f->wire, 2);
  return f->bytes;
}

std::vector<Field> sub(const std::vector<Field>& m, int number) {
  auto f = one(m, number);
  if (!f) throw std::runtime_error("missing message field " + std::to_string(number));
  EXPECT_EQ(f->wire, 2);
  return parse(f->bytes);
}

// Repeated Named* {name = 1, value = 2} → name → value message.
std::map<std::string, std::vector<Field>> named(const std::vector<Field>& m, int number) {
  std::map<std::string, std::vector<Field>> out;
  for (const Field& f : all(m, number)) {
    auto entry = parse(f.bytes);
    out[str(entry, 1)] = one(entry, 2) ? sub(entry, 2) : std::vector<Field>{};
  }
  return out;
}

// The yaml of an Any, parsed back (the encoder writes JSON text).
json::value any_value(const std::vector<Field>& any) {
  auto v = parse_json(str(any, 2));
  if (!v) throw std::runtime_error(v.error());
  return *v;
}

// Schema's field numbers used below.
constexpr int kSchemaRef = 1, kSchemaDescription = 4, kSchemaDefault = 5, kSchemaMaximum = 7,
              kSchemaMaxLength = 11, kSchemaRequired = 19, kSchemaEnum = 20,
              kSchemaAdditionalProperties = 21, kSchemaType = 22, kSchemaItems = 23,
              kSchemaAllOf = 24, kSchemaProperties = 25, kSchemaExtensions = 31;

TEST(OpenApiV2Protobuf, ServedDocumentHasSwaggerDefinitionsAndPaths) {
  const std::string& bytes = openapi_v2_protobuf();
  ASSERT_GT(bytes.size(), 10000u);
  EXPECT_EQ(&bytes, &openapi_v2_protobuf());  // encoded once
  auto doc = parse(bytes);
  EXPECT_EQ(str(doc, 1), "2.0");
  auto info = sub(doc, 2);
  EXPECT_EQ(str(info, 1), "Kubernetes");

  // Definitions {repeated NamedSchema additional_properties = 1}.
  auto defs = named(sub(doc, 9), 1);
  ASSERT_TRUE(defs.contains("io.k8s.api.core.v1.ConfigMap"));
  const auto& cm = defs["io.k8s.api.core.v1.ConfigMap"];
  EXPECT_THAT(str(cm, kSchemaDescription), ::testing::HasSubstr("ConfigMap"));
  auto type = parse(one(cm, kSchemaType)->bytes);
  EXPECT_EQ(str(type, 1), "object");
  auto ext = named(cm, kSchemaExtensions);
  ASSERT_TRUE(ext.contains("x-kubernetes-group-version-kind"));
  json::value gvk = any_value(ext["x-kubernetes-group-version-kind"]);
  ASSERT_TRUE(gvk.is_array());
  ASSERT_EQ(gvk.get_array().size(), 1u);
  EXPECT_EQ(get_string(gvk.get_array()[0], {"group"}), "");
  EXPECT_EQ(get_string(gvk.get_array()[0], {"version"}), "v1");
  EXPECT_EQ(get_string(gvk.get_array()[0], {"kind"}), "ConfigMap");

  // Properties: a $ref (metadata) and a map (data: additionalProperties = string schema).
  auto props = named(sub(cm, kSchemaProperties), 1);
  EXPECT_EQ(str(props["metadata"], kSchemaRef),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  auto data_add = sub(props["data"], kSchemaAdditionalProperties);
  auto data_value = sub(data_add, 1);
  EXPECT_EQ(str(parse(one(data_value, kSchemaType)->bytes), 1), "string");

  // Every definition with a GVK parses, and Deployment is there with apps/v1.
  auto dep_ext = named(defs.at("io.k8s.api.apps.v1.Deployment"), kSchemaExtensions);
  json::value dep_gvk = any_value(dep_ext.at("x-kubernetes-group-version-kind"));
  EXPECT_EQ(get_string(dep_gvk.get_array()[0], {"group"}), "apps");

  // Paths {vendor_extension = 1, repeated NamedPathItem path = 2}.
  auto paths = named(sub(doc, 8), 2);
  ASSERT_TRUE(paths.contains("/api/v1/namespaces/{namespace}/configmaps/{name}"));
  const auto& item = paths["/api/v1/namespaces/{namespace}/configmaps/{name}"];
  auto get = sub(item, 2);  // PathItem.get
  EXPECT_EQ(str(get, 5), "readCoreV1NamespacedConfigMap");  // operation_id
  auto get_ext = named(get, 13);
  EXPECT_EQ(get_string(any_value(get_ext.at("x-kubernetes-group-version-kind")), {"kind"}),
            "ConfigMap");
  // Responses {repeated NamedResponseValue response_code = 1}: 200 → Response.schema.$ref.
  auto responses = named(sub(get, 9), 1);
  auto ok = sub(responses.at("200"), 1);  // ResponseValue.response
  auto ok_schema = sub(sub(ok, 2), 1);    // Response.schema → SchemaItem.schema
  EXPECT_EQ(str(ok_schema, kSchemaRef), "#/definitions/io.k8s.api.core.v1.ConfigMap");

  // The patch operation carries fieldValidation as a query parameter:
  // ParametersItem.parameter → Parameter.non_body_parameter → query_parameter_sub_schema.
  auto patch = sub(item, 8);
  bool field_validation = false;
  for (const Field& p : all(patch, 8)) {
    auto param = sub(parse(p.bytes), 1);
    if (!one(param, 2)) continue;
    auto non_body = sub(param, 2);
    if (!one(non_body, 3)) continue;
    auto query = sub(non_body, 3);
    if (str(query, 4) == "fieldValidation") {
      field_validation = true;
      EXPECT_EQ(str(query, 2), "query");
      EXPECT_EQ(str(query, 6), "string");  // type
    }
  }
  EXPECT_TRUE(field_validation);

  // securityDefinitions: BearerToken as ApiKeySecurity (oneof field 2).
  auto secdefs = named(sub(doc, 13), 1);
  auto api_key = sub(secdefs.at("BearerToken"), 2);
  EXPECT_EQ(str(api_key, 1), "apiKey");
  EXPECT_EQ(str(api_key, 2), "authorization");
  EXPECT_EQ(str(api_key, 3), "header");
  // security: [{BearerToken: []}].
  auto security = all(doc, 12);
  ASSERT_EQ(security.size(), 1u);
  auto req = named(parse(security[0].bytes), 1);
  EXPECT_TRUE(req.contains("BearerToken"));
}

TEST(OpenApiV2Protobuf, EncodesEverySchemaShape) {
  auto doc = parse_json(R"({
    "swagger": "2.0",
    "info": {"title": "t", "version": "1", "x-info": true},
    "x-top": {"a": [1, 2]},
    "paths": {
      "x-paths-ext": "e",
      "/things": {
        "parameters": [{"$ref": "#/parameters/p"}],
        "post": {
          "parameters": [
            {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/T"}},
            {"name": "h", "in": "header", "type": "integer", "maximum": 5},
            {"name": "q", "in": "query", "type": "array", "items": {"type": "string"},
             "allowEmptyValue": true}
          ],
          "responses": {"201": {"description": "created"}, "default": {"$ref": "#/responses/r"},
                        "x-resp": 1},
          "deprecated": true
        }
      }
    },
    "definitions": {
      "T": {
        "type": ["object", "null"],
        "required": ["a"],
        "properties": {
          "a": {"type": "string", "default": "25%", "enum": ["x", "y"], "maxLength": 10},
          "closed": {"type": "object", "additionalProperties": false},
          "tuple": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
          "x-property-named-like-extension": {"type": "boolean"},
          "combo": {"allOf": [{"$ref": "#/definitions/T"}], "default": {}},
          "neg": {"type": "integer", "minimum": -3, "maximum": 2.5}
        },
        "x-kubernetes-group-version-kind": [{"group": "g", "kind": "T", "version": "v1"}],
        "unknownKeyword": 7
      }
    }
  })");
  ASSERT_TRUE(doc) << doc.error();
  auto m = parse(encode_openapi_v2_protobuf(doc->get_object()));
  EXPECT_EQ(str(m, 1), "2.0");
  EXPECT_EQ(any_value(named(m, 16).at("x-top")), json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(any_value(named(sub(m, 2), 7).at("x-info")), json::value(true));

  auto paths_msg = sub(m, 8);
  EXPECT_EQ(any_value(named(paths_msg, 1).at("x-paths-ext")), json::value("e"));
  auto paths = named(paths_msg, 2);
  ASSERT_EQ(paths.size(), 1u);  // the extension is not a path
  const auto& item = paths.at("/things");
  // PathItem.parameters[0] is a JsonReference (ParametersItem field 2).
  auto item_params = all(item, 9);
  ASSERT_EQ(item_params.size(), 1u);
  EXPECT_EQ(str(sub(parse(item_params[0].bytes), 2), 1), "#/parameters/p");

  auto post = sub(item, 4);
  EXPECT_EQ(one(post, 11)->varint, 1u);  // deprecated
  auto params = all(post, 8);
  ASSERT_EQ(params.size(), 3u);
  auto body = sub(sub(parse(params[0].bytes), 1), 1);  // Parameter.body_parameter
  EXPECT_EQ(str(body, 2), "body");
  EXPECT_EQ(one(body, 4)->varint, 1u);
  EXPECT_EQ(str(sub(body, 5), kSchemaRef), "#/definitions/T");
  auto header = sub(sub(sub(parse(params[1].bytes), 1), 2), 1);  // header sub-schema
  EXPECT_EQ(str(header, 4), "h");
  EXPECT_EQ(str(header, 5), "integer");
  double max = 0;
  std::uint64_t bits = one(header, 10)->varint;
  std::memcpy(&max, &bits, 8);
  EXPECT_EQ(max, 5.0);
  auto query = sub(sub(sub(parse(params[2].bytes), 1), 2), 3);
  EXPECT_EQ(one(query, 5)->varint, 1u);  // allowEmptyValue
  EXPECT_EQ(str(query, 6), "array");
  EXPECT_EQ(str(sub(query, 8), 1), "string");  // PrimitivesItems.type

  auto responses_msg = sub(post, 9);
  auto responses = named(responses_msg, 1);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(str(sub(responses.at("201"), 1), 1), "created");
  EXPECT_EQ(str(sub(responses.at("default"), 2), 1), "#/responses/r");
  EXPECT_EQ(any_value(named(responses_msg, 2).at("x-resp")), json::value(1));

  auto defs = named(sub(m, 9), 1);
  const auto& t = defs.at("T");
  auto types = all(parse(one(t, kSchemaType)->bytes), 1);
  ASSERT_EQ(types.size(), 2u);
  EXPECT_EQ(types[0].bytes, "object");
  EXPECT_EQ(types[1].bytes, "null");
  EXPECT_EQ(all(t, kSchemaRequired).size(), 1u);
  EXPECT_EQ(any_value(named(t, kSchemaExtensions).at("x-kubernetes-group-version-kind")),
            json::parse(R"([{"group":"g","kind":"T","version":"v1"}])"));
  EXPECT_EQ(named(t, kSchemaExtensions).size(), 1u);  // unknownKeyword is dropped

  auto props = named(sub(t, kSchemaProperties), 1);
  EXPECT_EQ(props.size(), 6u);  // an x- named property is a property, not an extension
  const auto& a = props.at("a");
  EXPECT_EQ(any_value(sub(a, kSchemaDefault)), json::value("25%"));
  auto enums = all(a, kSchemaEnum);
  ASSERT_EQ(enums.size(), 2u);
  EXPECT_EQ(any_value(parse(enums[1].bytes)), json::value("y"));
  EXPECT_EQ(one(a, kSchemaMaxLength)->varint, 10u);
  // additionalProperties: false is written (oneof boolean = 2 with value 0).
  auto closed = sub(props.at("closed"), kSchemaAdditionalProperties);
  ASSERT_TRUE(one(closed, 2));
  EXPECT_EQ(one(closed, 2)->wire, 0);
  EXPECT_EQ(one(closed, 2)->varint, 0u);
  auto tuple = parse(one(props.at("tuple"), kSchemaItems)->bytes);
  EXPECT_EQ(all(tuple, 1).size(), 2u);
  auto combo = props.at("combo");
  EXPECT_EQ(all(combo, kSchemaAllOf).size(), 1u);
  EXPECT_EQ(any_value(sub(combo, kSchemaDefault)), json::object{});
  // Negative int64 and fractional double.
  auto neg = props.at("neg");
  double min = 0;
  bits = one(neg, 9)->varint;
  std::memcpy(&min, &bits, 8);
  EXPECT_EQ(min, -3.0);
  bits = one(neg, kSchemaMaximum)->varint;
  std::memcpy(&max, &bits, 8);
  EXPECT_EQ(max, 2.5);
}

TEST(OpenApiV2Protobuf, NegativeIntegersAreTenByteVarints) {
  auto doc = parse_json(R"({"definitions": {"N": {"minLength": -1}}})");
  ASSERT_TRUE(doc);
  auto defs = named(sub(parse(encode_openapi_v2_protobuf(doc->get_object())), 9), 1);
  EXPECT_EQ(static_cast<std::int64_t>(one(defs.at("N"), 12)->varint), -1);
}

TEST(OpenApiV2Protobuf, WrongTypesAndDeepNestingDoNotCrash) {
  auto doc = parse_json(R"({"swagger": 2, "paths": [], "definitions": {"A": 5, "B": {"type": 3,
      "properties": "no", "items": true, "additionalProperties": "x"}}})");
  ASSERT_TRUE(doc);
  auto m = parse(encode_openapi_v2_protobuf(doc->get_object()));
  EXPECT_FALSE(one(m, 1));  // swagger is not a string
  auto defs = named(sub(m, 9), 1);
  EXPECT_TRUE(defs.at("A").empty());
  EXPECT_TRUE(defs.at("B").empty());

  // 1000 nested properties: cut off at kMaxPbDepth, no stack overflow.
  json::value deep = json::object{{"type", "string"}};
  for (int i = 0; i < 1000; ++i) {
    deep = json::object{{"properties", json::object{{"p", std::move(deep)}}}};
  }
  json::object d{{"definitions", json::object{{"D", std::move(deep)}}}};
  std::string bytes = encode_openapi_v2_protobuf(d);
  EXPECT_NO_THROW(parse(bytes));
  EXPECT_LT(bytes.size(), 4000u);
}

TEST(OpenApiV2Protobuf, Negotiation) {
  using E = OpenApiV2Encoding;
  EXPECT_EQ(openapi_v2_encoding(""), E::kJson);
  EXPECT_EQ(openapi_v2_encoding("application/json"), E::kJson);
  EXPECT_EQ(openapi_v2_encoding("*/*"), E::kJson);
  EXPECT_EQ(openapi_v2_encoding("application/*"), E::kJson);
  EXPECT_EQ(openapi_v2_encoding("application/com.github.proto-openapi.spec.v2@v1.0+protobuf"),
            E::kProtobuf);
  EXPECT_EQ(openapi_v2_encoding("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
            E::kProtobuf);
  EXPECT_EQ(openapi_v2_encoding(
                "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
            E::kProtobuf);
  EXPECT_EQ(openapi_v2_encoding(
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0, application/json"),
            E::kJson);
  EXPECT_EQ(openapi_v2_encoding("Application/JSON; charset=utf-8"), E::kJson);
  EXPECT_EQ(openapi_v2_encoding("application/vnd.kubernetes.protobuf"), E::kUnacceptable);
  EXPECT_EQ(openapi_v2_encoding("text/html, application/xml;q=0.9"), E::kUnacceptable);
  EXPECT_EQ(openapi_v2_encoding("application/json;q=0"), E::kUnacceptable);
  EXPECT_EQ(openapi_v2_encoding(",,;"), E::kUnacceptable);
}

}  // namespace
}  // namespace podwarp::schema
