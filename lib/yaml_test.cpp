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

}  // namespace
}  // namespace podwarp
