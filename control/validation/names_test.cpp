#include "validation/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/field.h"
#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::kDns1035Msg;
using testing::kLabelMsg;
using testing::kLabelValueMsg;
using testing::kQualifiedNameMsg;
using testing::kSubdomainMsg;

TEST(Names, Dns1123Label) {
  EXPECT_THAT(is_dns1123_label("my-name"), IsEmpty());
  EXPECT_THAT(is_dns1123_label("123-abc"), IsEmpty());
  EXPECT_THAT(is_dns1123_label("Foo"), ElementsAre(kLabelMsg));
  EXPECT_THAT(is_dns1123_label("-a"), ElementsAre(kLabelMsg));
  EXPECT_THAT(is_dns1123_label("a.b"), ElementsAre("must not contain dots"));
  EXPECT_THAT(is_dns1123_label(std::string(64, 'a')),
              ElementsAre("must be no more than 63 characters"));
}

TEST(Names, Dns1123Subdomain) {
  EXPECT_THAT(is_dns1123_subdomain("example.com"), IsEmpty());
  EXPECT_THAT(is_dns1123_subdomain("a..b"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(is_dns1123_subdomain("Web_App"), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(is_dns1123_subdomain(""), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(is_dns1123_subdomain(std::string(254, 'a')),
              ElementsAre("must be no more than 253 characters"));
  EXPECT_THAT(is_dns1123_subdomain(std::string(254, 'A')),
              ElementsAre("must be no more than 253 characters", kSubdomainMsg));
}

TEST(Names, Dns1035Label) {
  EXPECT_THAT(is_dns1035_label("web"), IsEmpty());
  EXPECT_THAT(is_dns1035_label("1web"), ElementsAre(kDns1035Msg));
}

TEST(Names, GenerateNamePrefixMayEndInDash) {
  EXPECT_THAT(name_is_dns_subdomain("web-", true), IsEmpty());
  EXPECT_THAT(name_is_dns_subdomain("web-", false), ElementsAre(kSubdomainMsg));
  EXPECT_THAT(name_is_dns_label("Web-", true), ElementsAre(kLabelMsg));
}

TEST(Names, QualifiedName) {
  EXPECT_THAT(is_qualified_name("app.kubernetes.io/name"), IsEmpty());
  EXPECT_THAT(is_qualified_name("MyName"), IsEmpty());
  EXPECT_THAT(is_qualified_name("-bad"), ElementsAre(kQualifiedNameMsg));
  EXPECT_THAT(is_qualified_name("/name"), ElementsAre("prefix part must be non-empty"));
  EXPECT_THAT(is_qualified_name("example.com/"),
              ElementsAre("name part must be non-empty", kQualifiedNameMsg));
  EXPECT_THAT(is_qualified_name("Example.com/x"),
              ElementsAre(testing::cat("prefix part ", kSubdomainMsg)));
  EXPECT_THAT(
      is_qualified_name("a/b/c"),
      ElementsAre("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
                  "must start and end with an alphanumeric character (e.g. 'MyName',  or "
                  "'my.name',  or '123-abc', regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
                  "prefix and '/' (e.g. 'example.com/MyName')"));
  EXPECT_THAT(is_qualified_name(std::string(64, 'a')),
              ElementsAre("name part must be no more than 63 characters"));
}

TEST(Names, LabelValue) {
  EXPECT_THAT(is_label_value(""), IsEmpty());
  EXPECT_THAT(is_label_value("v1.2_3-x"), IsEmpty());
  EXPECT_THAT(is_label_value("a b"), ElementsAre(kLabelValueMsg));
  EXPECT_THAT(is_label_value(std::string(64, 'a')),
              ElementsAre("must be no more than 63 characters"));
}

TEST(Names, PortName) {
  EXPECT_THAT(is_valid_port_name("http"), IsEmpty());
  EXPECT_THAT(is_valid_port_name("8080"), ElementsAre("must contain at least one letter (a-z)"));
  EXPECT_THAT(is_valid_port_name("HTTP"),
              ElementsAre("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                          "must contain at least one letter (a-z)"));
  EXPECT_THAT(is_valid_port_name("a--b"), ElementsAre("must not contain consecutive hyphens"));
  EXPECT_THAT(is_valid_port_name("-ab"), ElementsAre("must not begin or end with a hyphen"));
  EXPECT_THAT(is_valid_port_name("a-very-long-port-name"),
              ElementsAre("must be no more than 15 characters"));
  EXPECT_THAT(is_valid_port_num(0), ElementsAre("must be between 1 and 65535, inclusive"));
  EXPECT_THAT(is_valid_port_num(65535), IsEmpty());
}

TEST(Names, EnvVarAndConfigKey) {
  EXPECT_THAT(is_env_var_name("MY_ENV.NAME"), IsEmpty());
  EXPECT_THAT(
      is_env_var_name("1BAD"),
      ElementsAre("a valid environment variable name must consist of alphabetic characters, "
                  "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
                  "or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                  "'[-._a-zA-Z][-._a-zA-Z0-9]*')"));
  EXPECT_THAT(is_env_var_name(".."), ElementsAre("must not be '..'"));
  EXPECT_THAT(is_config_map_key("app.properties"), IsEmpty());
  EXPECT_THAT(is_config_map_key("a b"),
              ElementsAre("a valid config key must consist of alphanumeric characters, '-', '_' "
                          "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
                          "for validation is '[-._a-zA-Z0-9]+')"));
  EXPECT_THAT(is_config_map_key("..data"), ElementsAre("must not start with '..'"));
}

TEST(Names, PercentAndHeader) {
  EXPECT_THAT(is_valid_percent("25%"), IsEmpty());
  EXPECT_THAT(is_valid_percent("25"),
              ElementsAre("a valid percent string must be a numeric string followed by an ending "
                          "'%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"));
  EXPECT_THAT(is_http_header_name("X-Custom"), IsEmpty());
  EXPECT_THAT(is_http_header_name("X Custom"),
              ElementsAre("a valid HTTP header must consist of alphanumeric characters or '-' "
                          "(e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')"));
}

TEST(Names, Wildcard) {
  EXPECT_THAT(is_wildcard_dns1123_subdomain("*.example.com"), IsEmpty());
  EXPECT_THAT(is_wildcard_dns1123_subdomain("*.*.example.com"), ::testing::SizeIs(1));
}

TEST(Names, IPs) {
  EXPECT_TRUE(parse_ip("10.0.0.1"));
  EXPECT_TRUE(parse_ip("010.000.000.001"));  // ParseIPSloppy keeps leading zeros
  EXPECT_TRUE(parse_ip("2001:db8::1"));
  EXPECT_TRUE(parse_ip("::ffff:1.2.3.4")->v4);
  EXPECT_FALSE(parse_ip("256.0.0.1"));
  EXPECT_FALSE(parse_ip("1.2.3"));
  EXPECT_FALSE(parse_ip("fe80::1%eth0"));
  auto outer = parse_cidr("10.0.0.0/8");
  ASSERT_TRUE(outer);
  EXPECT_TRUE(cidr_contains(*outer, *parse_ip("10.1.2.3")));
  EXPECT_FALSE(cidr_contains(*outer, *parse_ip("11.0.0.1")));
  EXPECT_FALSE(parse_cidr("10.0.0.0/33"));
  EXPECT_THAT(testing::texts(validate_ip(Path().child("ip"), "x")),
              ElementsAre("ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 "
                          "or 2001:db8::ffff)"));
  EXPECT_THAT(testing::texts(validate_non_special_ip(Path().child("ip"), "127.0.0.1")),
              ElementsAre("ip: Invalid value: \"127.0.0.1\": may not be in the loopback range "
                          "(127.0.0.0/8, ::1/128)"));
}

// A path is kept inline up to 95 characters, past that on the heap: both print alike, and a
// path extended past the limit from an inline one, then extended again, is whole.
TEST(Field, LongPaths) {
  const std::string long_key(80, 'k');
  Path inline_path = Path().child("spec").child("volumes").index(12);  // 16 characters
  Path at_limit = inline_path.key(long_key);                          // 98: heap
  EXPECT_EQ(at_limit.str(), "spec.volumes[12][" + long_key + "]");
  Path longer = at_limit.child("items").index(3).child("path");
  EXPECT_EQ(longer.str(), "spec.volumes[12][" + long_key + "].items[3].path");
  const std::string fits(95 - 5, 'x');
  EXPECT_EQ(Path().child("spec").child(fits).str().size(), 95U);  // exactly inline
  EXPECT_EQ(Path().child("spec").child(fits + "y").str().size(), 96U);
  Path copy = longer;
  EXPECT_EQ(copy.str(), longer.str());
  EXPECT_EQ(required(longer).field, longer.str());
  EXPECT_EQ(Path().index(18446744073709551615ULL).str(), "[18446744073709551615]");
}

TEST(Field, PathsAndBodies) {
  Path p = Path().child("spec").child("containers").index(0).child("env").index(2).key("x");
  EXPECT_EQ(p.str(), "spec.containers[0].env[2][x]");
  EXPECT_EQ(Path::root("").str(), "[]");
  EXPECT_EQ(Path::root("metadata").child("labels").key("app").str(), "metadata.labels[app]");
  EXPECT_EQ(required(p).field, "spec.containers[0].env[2][x]");
  EXPECT_EQ(required(p).message, "Required value");
  EXPECT_EQ(required(p, "must be set").message, "Required value: must be set");
  EXPECT_EQ(invalid_str(p, "a\"b\n", "bad").message, "Invalid value: \"a\\\"b\\n\": bad");
  EXPECT_EQ(not_supported(p, q("X"), {"A", "B"}).message,
            "Unsupported value: \"X\": supported values: \"A\", \"B\"");
  EXPECT_EQ(too_long(p, 262144).message, "Too long: must have at most 262144 bytes");
  EXPECT_EQ(forbidden(p, "nope").reason, "FieldValueForbidden");
  EXPECT_EQ(q("héllo"), "\"héllo\"");
  EXPECT_EQ(q(std::string_view("\xff", 1)), "\"\\xff\"");
}

TEST(Field, GoRenderings) {
  json::value labels = json::parse(R"({"tier":"web","app":"nginx"})");
  EXPECT_EQ(go_string_map(&labels), R"(map[string]string{"app":"nginx", "tier":"web"})");
  EXPECT_EQ(go_string_map(nullptr), "map[string]string(nil)");
  json::value sel = json::parse(R"({"matchLabels":{"app":"web"}})");
  EXPECT_EQ(
      go_label_selector(&sel),
      R"(v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)})");
  json::value pct = "120%";
  EXPECT_EQ(go_intstr(pct), R"(intstr.IntOrString{Type:1, IntVal:0, StrVal:"120%"})");
  json::value zero = 0;
  EXPECT_EQ(go_intstr(zero), R"(intstr.IntOrString{Type:0, IntVal:0, StrVal:""})");
}

}  // namespace
}  // namespace podwarp::validation
