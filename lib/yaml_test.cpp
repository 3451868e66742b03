#include "podwarp/yaml.h"

#include <gtest/gtest.h>

namespace podwarp {
namespace {

TEST(YamlToJson, TypesScalarsAsSigsYaml) {
  auto v = yaml_to_json(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  labels: {a: "1"}
data:
  quoted: "true"
  plain: hello
replicas: 3
ratio: 0.5
enabled: yes
none: ~
list: [1, "2", three]
)");
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(json::serialize(*v),
            R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{"a":"1"}},)"
            R"("data":{"quoted":"true","plain":"hello"},"replicas":3,"ratio":5E-1,)"
            R"("enabled":true,"none":null,"list":[1,"2","three"]})");
}

TEST(YamlToJson, MalformedIsAnError) {
  auto v = yaml_to_json("a: [1, 2\nb: {");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().find("yaml: line"), std::string::npos);
}

TEST(YamlToJson, DeepNestingIsRefused) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto v = yaml_to_json(deep, 64);
  ASSERT_FALSE(v);
}

TEST(YamlToJson, IntegersInEveryBaseAsYamlV2) {
  auto v = yaml_to_json("a: 0644\nb: 0o400\nc: 0x1F\nd: 0b101\ne: -010\nf: 0\ng: 089\nh: \"0644\"\n");
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(json::serialize(*v), R"({"a":420,"b":256,"c":31,"d":5,"e":-8,"f":0,"g":89,"h":"0644"})");
}

TEST(YamlToJson, ExcessiveAliasingIsRefused) {
  // Nine lines of anchors and aliases expand into 10^9 values: the conversion ran for hours.
  std::string bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'i'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i > 0 ? "," : "") + "*" + prev;
    bomb += "]\n";
    prev = c;
  }
  auto v = yaml_to_json(bomb);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), "yaml: document contains excessive aliasing");

  // A large scalar repeated by alias counts by its size (100 copies of 1 MiB).
  std::string big = "a: &a " + std::string(1 << 20, 'x') + "\nb: [";
  for (int i = 0; i < 100; ++i) big += std::string(i > 0 ? "," : "") + "*a";
  big += "]\n";
  auto b = yaml_to_json(big);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), "yaml: document contains excessive aliasing");

  // An alias inside its own anchor is a cycle.
  EXPECT_FALSE(yaml_to_json("a: &a [*a, *a]\n"));

  // Anchors reused the ordinary way still expand, and so do large documents without aliases
  // (600000 values and as many scalar bytes: over the fixed part of the budget).
  auto ok = yaml_to_json("x: &l {app: web}\ny: *l\nz: [*l, *l]\n");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(json::serialize(*ok),
            R"({"x":{"app":"web"},"y":{"app":"web"},"z":[{"app":"web"},{"app":"web"}]})");
  std::string many = "a: [";
  for (int i = 0; i < 600000; ++i) many += i > 0 ? ",1" : "1";
  many += "]\n";
  auto m = yaml_to_json(many);
  ASSERT_TRUE(m) << m.error();
  EXPECT_EQ(m->at("a").as_array().size(), 600000u);
}

TEST(YamlToJson, StringsMustBeUtf8) {
  // yaml-cpp let a raw \xff through: the object was stored as JSON text that did not parse
  // back (Boost.JSON reads UTF-8 only), and could no longer be read or deleted.
  auto v = yaml_to_json("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: \"x\xffy\"\n");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), "yaml: line 4: invalid UTF-8 in a string");
  EXPECT_FALSE(yaml_to_json("data:\n  \xc3\x28: 1\n"));        // in a key
  EXPECT_FALSE(yaml_to_json("data:\n  a: \xed\xa0\x80\n"));    // an encoded surrogate
  EXPECT_FALSE(yaml_to_json("data:\n  a: \"\\uD800\"\n"));     // an escaped one
  auto ok = yaml_to_json("a: \"caf\xc3\xa9 \\u00e9 \\U0001F600\"\n");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->at("a").as_string(), "caf\xc3\xa9 \xc3\xa9 \xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace podwarp
