#include "podwarp/selector.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace podwarp {
namespace {

using Op = LabelSelector::Operator;

json::object labels(std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  json::object o;
  for (auto [k, v] : kv) o[k] = v;
  return o;
}

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.has_value()) << text;
  return v.value_or(json::value());
}

// upstream TestSetSelectorParser: input, canonical string (empty when invalid).
TEST(LabelSelectorTest, ParseAndCanonicalString) {
  struct Case {
    std::string_view in;
    bool valid;
    std::string_view canonical;
  };
  const Case cases[] = {
      {"", true, ""},
      {"\rx", true, "x"},
      {"this-is-a-dns.domain.com/key-with-dash", true, "this-is-a-dns.domain.com/key-with-dash"},
      {"this-is-another-dns.domain.com/key-with-dash in (so,what)", true,
       "this-is-another-dns.domain.com/key-with-dash in (so,what)"},
      {"0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)", true,
       "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"},
      {"foo  in\t (abc)", true, "foo in (abc)"},
      {"x notin\n (abc)", true, "x notin (abc)"},
      {"x  notin\t\t(abc,def)", true, "x notin (abc,def)"},
      {"x in (def,abc,def)", true, "x in (abc,def)"},
      {"x in (abc,)", true, "x in (,abc)"},
      {"x in ()", true, "x in ()"},
      {"x notin (abc,,def),bar,z in (),w", true, "bar,w,x notin (,abc,def),z in ()"},
      {"x,y in (a)", true, "x,y in (a)"},
      {"x=a", true, "x=a"},
      {"x==a", true, "x==a"},
      {"x>1", true, "x>1"},
      {"x<7", true, "x<7"},
      {"x=a,y!=b", true, "x=a,y!=b"},
      {"z in (h,i,j),y!=b,x=a", true, "x=a,y!=b,z in (h,i,j)"},
      {"x=", true, "x="},
      {"x= ,z= ", true, "x=,z="},
      {"!x", true, "!x"},
      {"x notin ( )", true, "x notin ()"},
      {"x notin (, a)", true, "x notin (,a)"},
      {"a ", true, "a"},
      {"a in (x,y,notin, z,in)", true, "a in (in,notin,x,y,z)"},
      {"notin=in", true, "notin=in"},
      {"x=a,x!=b", true, "x=a,x!=b"},  // same key: kept in input order
      {"x=a||y=b", false, ""},
      {"x==a==b", false, ""},
      {"!x=a", false, ""},
      {"x<a", false, ""},
      {"x,,y", false, ""},
      {",x,y", false, ""},
      {"x nott in (y)", false, ""},
      {"a in (xyz),", false, ""},
      {"a in (xyz)b notin ()", false, ""},
      {"a in (xyz abc)", false, ""},
      {"a notin(", false, ""},
      {"a (", false, ""},
      {"(", false, ""},
      {"x=a b", false, ""},
      {"-x", false, ""},
      {"x=-a", false, ""},
      {"a/b/c", false, ""},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::parse(c.in);
    ASSERT_EQ(sel.has_value(), c.valid) << c.in << (sel ? "" : ": " + sel.error());
    if (!c.valid) continue;
    EXPECT_EQ(sel->to_string(), c.canonical) << c.in;
    // The canonical string parses to the same selector.
    auto again = LabelSelector::parse(sel->to_string());
    ASSERT_TRUE(again.has_value()) << sel->to_string();
    EXPECT_EQ(again->to_string(), c.canonical);
  }
}

TEST(LabelSelectorTest, ErrorMessagesMatchUpstream) {
  const std::string key_rule =
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
      "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
      "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
  const std::string value_rule =
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
      "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
      "'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  struct Case {
    std::string in;
    std::string error;
  };
  const Case cases[] = {
      {"x=a=b", "found '=', expected: ',' or 'end of string'"},
      {"x=a||y=b",
       "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": " + value_rule},
      {"x,,y", "found ',', expected: identifier after ','"},
      {"(", "found '(', expected: !, identifier, or 'end of string'"},
      {"a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"},
      {"x nott in (y)",
       "unable to parse requirement: found 'nott', expected: in, notin, =, ==, !=, gt, lt"},
      {"a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier"},
      {"a in x", "unable to parse requirement: found 'x' expected: '('"},
      {"a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'"},
      {"!", "unable to parse requirement: found '', expected: identifier"},
      {"-x", "unable to parse requirement: <nil>: Invalid value: \"-x\": " + key_rule},
      {"x=-a", "unable to parse requirement: values[0][x]: Invalid value: \"-a\": " + value_rule},
      {"x<a",
       "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, "
       "the value must be an integer"},
      {"x/=a",
       "unable to parse requirement: <nil>: Invalid value: \"x/\": name part must be "
       "non-empty; " +
           key_rule},
      {"/x",
       "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be "
       "non-empty"},
      {"Example.com/x",
       "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part a "
       "lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
       "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
       "used for validation is "
       "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
      {std::string(64, 'a'), "unable to parse requirement: <nil>: Invalid value: \"" +
                                 std::string(64, 'a') +
                                 "\": name part must be no more than 63 characters"},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::parse(c.in);
    ASSERT_FALSE(sel.has_value()) << c.in;
    EXPECT_EQ(sel.error(), c.error) << c.in;
  }
}

// upstream TestSelectorMatches
TEST(LabelSelectorTest, Matches) {
  struct Case {
    std::string_view selector;
    json::object labels;
    bool match;
  };
  const json::object foo_baz = labels({{"foo", "bar"}, {"baz", "blah"}});
  const Case cases[] = {
      {"", labels({{"x", "y"}}), true},
      {"x=y", labels({{"x", "y"}}), true},
      {"x==y", labels({{"x", "y"}}), true},
      {"x=y,z=w", labels({{"x", "y"}, {"z", "w"}}), true},
      {"x!=y,z!=w", labels({{"x", "z"}, {"z", "a"}}), true},
      {"notin=in", labels({{"notin", "in"}}), true},
      {"x", labels({{"x", "z"}}), true},
      {"!x", labels({{"y", "z"}}), true},
      {"x>1", labels({{"x", "2"}}), true},
      {"x<1", labels({{"x", "0"}}), true},
      {"x in (a,b)", labels({{"x", "b"}}), true},
      {"x notin (a,b)", labels({{"x", "c"}}), true},
      {"x notin (a,b)", labels({}), true},
      {"x!=a", labels({}), true},
      {"x=", labels({{"x", ""}}), true},
      {"x in (,a)", labels({{"x", ""}}), true},
      {"x=z", labels({}), false},
      {"x=y", labels({{"x", "z"}}), false},
      {"x=y,z=w", labels({{"x", "w"}, {"z", "w"}}), false},
      {"x!=y,z!=w", labels({{"x", "z"}, {"z", "w"}}), false},
      {"x", labels({{"y", "z"}}), false},
      {"!x", labels({{"x", "z"}}), false},
      {"x>1", labels({{"x", "0"}}), false},
      {"x<1", labels({{"x", "2"}}), false},
      {"x>1", labels({{"x", "abc"}}), false},
      {"x>1", labels({}), false},
      {"x in (a,b)", labels({}), false},
      {"x=", labels({}), false},
      {"foo=bar", foo_baz, true},
      {"baz=blah", foo_baz, true},
      {"foo=bar,baz=blah", foo_baz, true},
      {"foo=blah", foo_baz, false},
      {"baz=bar", foo_baz, false},
      {"foo=bar,foobar=bar,baz=blah", foo_baz, false},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::parse(c.selector);
    ASSERT_TRUE(sel.has_value()) << c.selector << ": " << sel.error();
    EXPECT_EQ(sel->matches(&c.labels), c.match)
        << c.selector << " vs " << json::serialize(c.labels);
  }
  // No labels at all.
  EXPECT_TRUE(LabelSelector::parse("!x,y!=z")->matches(static_cast<const json::object*>(nullptr)));
  EXPECT_FALSE(LabelSelector::parse("x")->matches(static_cast<const json::object*>(nullptr)));
  // Through an object's metadata.labels.
  const json::value pod = parse(R"({"metadata":{"name":"p","labels":{"app":"web"}}})");
  EXPECT_TRUE(LabelSelector::parse("app=web")->matches(pod));
  EXPECT_FALSE(LabelSelector::parse("app=db")->matches(pod));
  EXPECT_TRUE(LabelSelector::parse("!tier")->matches(parse(R"({"metadata":{}})")));
  EXPECT_TRUE(LabelSelector().matches(pod));
  EXPECT_TRUE(LabelSelector().empty());
}

TEST(LabelSelectorTest, ExactValue) {
  struct Case {
    std::string_view selector, key;
    std::optional<std::string> value;
  };
  const Case cases[] = {
      {"x=a", "x", "a"},           {"x==a", "x", "a"},
      {"x in (a)", "x", "a"},      {"x in (a,b)", "x", std::nullopt},
      {"x!=a", "x", std::nullopt}, {"x", "x", std::nullopt},
      {"y=a", "x", std::nullopt},  {"a=1,x=b,z=2", "x", "b"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(LabelSelector::parse(c.selector)->exact_value(c.key), c.value) << c.selector;
  }
}

TEST(LabelSelectorTest, FromJson) {
  struct Case {
    std::string_view json_text;
    std::string_view canonical;  // when valid
    std::string_view error;      // when invalid
  };
  const Case cases[] = {
      {"{}", "", ""},
      {R"({"matchLabels":null,"matchExpressions":null})", "", ""},
      {R"({"matchLabels":{"b":"2","a":"1"}})", "a=1,b=2", ""},
      {R"({"matchLabels":{"app":"web"},"matchExpressions":[
          {"key":"tier","operator":"In","values":["fe","be"]},
          {"key":"env","operator":"NotIn","values":["prod"]},
          {"key":"canary","operator":"DoesNotExist"},
          {"key":"app","operator":"Exists"}]})",
       "app=web,app,!canary,env notin (prod),tier in (be,fe)", ""},
      {R"({"matchExpressions":[{"key":"a","operator":"Foo"}]})", "",
       R"("Foo" is not a valid label selector operator)"},
      {R"({"matchExpressions":[{"key":"a","operator":"In","values":[]}]})", "",
       "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be "
       "empty"},
      {R"({"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]})", "",
       R"(values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist)"},
      {R"({"matchLabels":{"a b":"c"}})", "",
       "key: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' "
       "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
       "'my.name',  or '123-abc', regex used for validation is "
       "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
      {R"({"matchExpressions":[{"key":"","operator":"In","values":["-"]}]})", "",
       "[key: Invalid value: \"\": name part must be non-empty; name part must consist of "
       "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
       "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
       "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), values[0][]: Invalid value: \"-\": a valid "
       "label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
       "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
       "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"},
      {R"({"matchLabels":{"a":1}})", "", "matchLabels[a]: must be a string"},
      {R"({"matchLabels":[]})", "", "matchLabels: must be an object"},
      {R"({"matchExpressions":{}})", "", "matchExpressions: must be an array"},
      {R"({"matchExpressions":[{"key":"a","operator":"In","values":[1]}]})", "",
       "matchExpressions[0].values: must be an array of strings"},
      {"null", "", "label selector must be an object"},
      {"[]", "", "label selector must be an object"},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::from_json(parse(c.json_text));
    if (c.error.empty()) {
      ASSERT_TRUE(sel.has_value()) << c.json_text << ": " << sel.error();
      EXPECT_EQ(sel->to_string(), c.canonical) << c.json_text;
    } else {
      ASSERT_FALSE(sel.has_value()) << c.json_text;
      EXPECT_EQ(sel.error(), c.error) << c.json_text;
    }
  }
  auto sel = LabelSelector::from_json(parse(
      R"({"matchLabels":{"app":"web"},"matchExpressions":[{"key":"tier","operator":"In","values":["fe","be"]}]})"));
  ASSERT_TRUE(sel.has_value());
  json::object l1 = labels({{"app", "web"}, {"tier", "fe"}});
  json::object l2 = labels({{"app", "web"}, {"tier", "db"}});
  json::object l3 = labels({{"tier", "fe"}});
  EXPECT_TRUE(sel->matches(&l1));
  EXPECT_FALSE(sel->matches(&l2));
  EXPECT_FALSE(sel->matches(&l3));
}

TEST(LabelSelectorTest, HostileInput) {
  // Long and odd inputs fail cleanly.
  EXPECT_FALSE(LabelSelector::parse(std::string(100000, '(')).has_value());
  EXPECT_FALSE(LabelSelector::parse(std::string(100000, '!')).has_value());
  EXPECT_FALSE(LabelSelector::parse("x in (" + std::string(100000, ',')).has_value());
  EXPECT_FALSE(LabelSelector::parse(std::string("a\0b", 3)).has_value());
  EXPECT_FALSE(LabelSelector::parse("\xff\xfe=1").has_value());
  std::string many;
  for (int i = 0; i < 2000; ++i)
    many += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v";
  auto sel = LabelSelector::parse(many);
  ASSERT_TRUE(sel.has_value());
  EXPECT_EQ(sel->requirements().size(), 2000u);
}

TEST(ValidationTest, QualifiedNamesAndLabelValues) {
  struct Case {
    std::string_view in;
    bool key_ok;
    bool value_ok;
  };
  const Case cases[] = {
      {"simple", true, true},
      {"now-with-dashes", true, true},
      {"1-starts-with-num", true, true},
      {"1234", true, true},
      {"simple/simple", true, false},
      {"now-with-dashes/simple", true, false},
      {"example.com/Now-With_Underscores.And.Dots", true, false},
      {"a.b.c/a_b", true, false},
      {"", false, true},
      {"-leading", false, false},
      {"trailing_", false, false},
      {"spa ce", false, false},
      {"a/b/c", false, false},
      {"UPPER.com/x", false, false},
      {"x/", false, false},
      {std::string_view("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), true,
       true},  // 63
      {std::string_view("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), false,
       false},  // 64
  };
  for (const auto& c : cases) {
    EXPECT_EQ(qualified_name_errors(c.in).empty(), c.key_ok) << c.in;
    EXPECT_EQ(label_value_errors(c.in).empty(), c.value_ok) << c.in;
  }
  EXPECT_TRUE(dns1123_subdomain_errors("a.b-c.d").empty());
  EXPECT_FALSE(dns1123_subdomain_errors("a..b").empty());
  EXPECT_FALSE(dns1123_subdomain_errors("-a").empty());
  EXPECT_FALSE(dns1123_subdomain_errors(std::string(254, 'a')).empty());
  EXPECT_EQ(label_value_errors(std::string(64, 'a')).front(), "must be no more than 63 characters");
}

// upstream fields TestSelectorParse / TestSelectorMatches
TEST(FieldSelectorTest, ParseRoundTrips) {
  for (std::string_view good : {"x=a,y=b,z=c", "", "x!=a,y=b", R"(x=a||y\=b)", R"(x=a\=\=b)",
                                "metadata.name=foo", "spec.nodeName=,status.phase!=Running"}) {
    auto sel = FieldSelector::parse(good);
    ASSERT_TRUE(sel.has_value()) << good << ": " << sel.error();
    EXPECT_EQ(sel->to_string(), good);
  }
  struct Case {
    std::string_view in;
    std::string_view canonical;
  };
  const Case normalized[] = {
      {"z=c,x=a", "x=a,z=c"},     {"x==a", "x=a"},          {"x=a,,y=b", "x=a,y=b"},
      {R"(x=a\,b)", R"(x=a\,b)"}, {R"(x=a\\)", R"(x=a\\)"},
  };
  for (const auto& c : normalized) {
    auto sel = FieldSelector::parse(c.in);
    ASSERT_TRUE(sel.has_value()) << c.in;
    EXPECT_EQ(sel->to_string(), c.canonical) << c.in;
  }
}

TEST(FieldSelectorTest, Errors) {
  struct Case {
    std::string_view in;
    std::string_view error;
  };
  const Case cases[] = {
      {"x=a||y=b", "invalid field selector: unescaped character in value: 61"},
      {"x==a==b", "invalid field selector: unescaped character in value: 61"},
      {"x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"},
      {"x in (a)", "invalid selector: 'x in (a)'; can't understand 'x in (a)'"},
      {"x in (a,b,c)", "invalid selector: 'x in (a,b,c)'; can't understand 'b'"},
      {"x", "invalid selector: 'x'; can't understand 'x'"},
      {R"(x=a\b)", R"(invalid field selector: invalid escape sequence: \b)"},
      {R"(x=a\)", R"(invalid field selector: invalid escape sequence: \)"},
  };
  for (const auto& c : cases) {
    auto sel = FieldSelector::parse(c.in);
    ASSERT_FALSE(sel.has_value()) << c.in;
    EXPECT_EQ(sel.error(), c.error) << c.in;
  }
}

TEST(FieldSelectorTest, Matches) {
  const std::map<std::string, std::string> fieldset = {
      {"foo", "bar"}, {"baz", "blah"}, {"complex", R"(=value\,\)"}};
  auto get = [&](std::string_view f) -> std::optional<std::string> {
    auto it = fieldset.find(std::string(f));
    if (it == fieldset.end()) return std::nullopt;
    return it->second;
  };
  struct Case {
    std::string_view selector;
    bool match;
  };
  const Case cases[] = {
      {"", true},
      {"foo=bar", true},
      {"baz=blah", true},
      {"foo=bar,baz=blah", true},
      {R"(foo=bar,baz=blah,complex=\=value\\\,\\)", true},
      {"foo!=blah", true},
      {"missing=", true},
      {"missing!=x", true},
      {"foo=blah", false},
      {"baz=bar", false},
      {"foo=bar,foobar=bar,baz=blah", false},
      {"foo!=bar", false},
      {"missing=x", false},
  };
  for (const auto& c : cases) {
    auto sel = FieldSelector::parse(c.selector);
    ASSERT_TRUE(sel.has_value()) << c.selector;
    EXPECT_EQ(sel->matches(get), c.match) << c.selector;
  }
}

TEST(FieldSelectorTest, ExactValueAndFields) {
  auto sel = FieldSelector::parse("spec.nodeName=node-1,metadata.namespace!=kube-system");
  ASSERT_TRUE(sel.has_value());
  EXPECT_EQ(sel->exact_value("spec.nodeName"), "node-1");
  EXPECT_EQ(sel->exact_value("metadata.namespace"), std::nullopt);  // != pins nothing
  EXPECT_EQ(sel->exact_value("metadata.name"), std::nullopt);
  EXPECT_EQ(sel->fields(), (std::vector<std::string>{"metadata.namespace", "spec.nodeName"}));
  EXPECT_FALSE(sel->empty());
  EXPECT_TRUE(FieldSelector::parse("")->empty());
  // Upstream does not trim: the field name keeps its spaces and callers reject it.
  EXPECT_EQ(FieldSelector::parse("a=b, c=d")->fields(), (std::vector<std::string>{" c", "a"}));
}

TEST(FieldSelectorTest, ObjectField) {
  const json::value pod = parse(R"({
    "metadata": {"name": "web-0", "namespace": "default", "labels": {"a": "b"}},
    "spec": {"nodeName": "node-1", "replicas": 3, "paused": false},
    "status": {"phase": "Running", "podIP": null},
    "type": "Warning",
    "involvedObject": {"name": "web-0", "uid": "123"}
  })");
  struct Case {
    std::string_view field;
    std::optional<std::string> value;
  };
  const Case cases[] = {
      {"metadata.name", "web-0"},
      {"metadata.namespace", "default"},
      {"spec.nodeName", "node-1"},
      {"status.phase", "Running"},
      {"type", "Warning"},
      {"involvedObject.uid", "123"},
      {"spec.replicas", "3"},
      {"spec.paused", "false"},
      {"status.podIP", ""},                   // null
      {"status.nominatedNodeName", ""},       // absent
      {"reason", ""},                         // absent top-level
      {"source.component", ""},               // absent parent
      {"metadata.labels", std::nullopt},      // an object is not a field
      {"metadata.name.first", std::nullopt},  // a string is not an object
      {"", std::nullopt},
      {"metadata..name", std::nullopt},
      {".metadata", std::nullopt},
      {"metadata.", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(object_field(pod, c.field), c.value) << c.field;
  }
  EXPECT_EQ(object_field(json::value("x"), "a"), std::nullopt);
  EXPECT_TRUE(FieldSelector::parse("spec.nodeName=node-1,status.phase!=Failed")->matches(pod));
  EXPECT_FALSE(FieldSelector::parse("metadata.name=web-1")->matches(pod));
  EXPECT_TRUE(FieldSelector::parse("spec.nodeName!=")->matches(pod));
  EXPECT_EQ(escape_field_value(R"(a\b,c=d)"), R"(a\\b\,c\=d)");
}

}  // namespace
}  // namespace podwarp
