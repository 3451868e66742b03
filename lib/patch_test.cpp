#include "podwarp/patch.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <span>
#include <string>

namespace podwarp::patch {
namespace {

// A hand-built schema tree standing in for the real OpenAPI-backed PatchMeta.
class TestMeta final : public PatchMeta {
 public:
  const PatchMeta* field(std::string_view name) const override {
    auto it = fields_.find(name);
    return it == fields_.end() ? nullptr : it->second.get();
  }
  const PatchMeta* items() const override { return items_.get(); }
  std::string_view patch_strategy() const override { return strategy_; }
  std::string_view patch_merge_key() const override { return merge_key_; }

  TestMeta& f(const std::string& name) {
    auto& slot = fields_[name];
    if (!slot) slot = std::make_unique<TestMeta>();
    return *slot;
  }
  TestMeta& list(std::string strategy, std::string merge_key = "") {
    strategy_ = std::move(strategy);
    merge_key_ = std::move(merge_key);
    return *this;
  }
  TestMeta& item() {
    if (!items_) items_ = std::make_unique<TestMeta>();
    return *items_;
  }

 private:
  std::map<std::string, std::unique_ptr<TestMeta>, std::less<>> fields_;
  std::unique_ptr<TestMeta> items_;
  std::string strategy_, merge_key_;
};

void build_pod_spec(TestMeta& spec) {
  for (const char* name : {"containers", "initContainers"}) {
    TestMeta& c = spec.f(name).list("merge", "name").item();
    c.f("ports").list("merge", "containerPort");
    c.f("env").list("merge", "name");
    c.f("volumeMounts").list("merge", "mountPath");
  }
  spec.f("volumes").list("merge,retainKeys", "name");
  spec.f("imagePullSecrets").list("merge", "name");
  spec.f("tolerations");  // atomic list: replaced
}

void build_metadata(TestMeta& md) {
  md.f("finalizers").list("merge");
  md.f("ownerReferences").list("merge", "uid");
}

// Pod-like and Deployment-like schemas, plus a few odd fields for error cases.
const TestMeta& pod_meta() {
  static const TestMeta* meta = [] {
    auto* m = new TestMeta();
    build_metadata(m->f("metadata"));
    build_pod_spec(m->f("spec"));
    m->f("widgets").list("merge");  // a merge list of maps without a merge key
    m->f("broken").list("merge,replace");
    TestMeta& dspec = m->f("deploymentSpec");
    dspec.f("strategy").list("retainKeys");
    build_metadata(dspec.f("template").f("metadata"));
    build_pod_spec(dspec.f("template").f("spec"));
    return m;
  }();
  return *meta;
}

json::value J(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.has_value()) << text << ": " << (v ? "" : v.error());
  return v.value_or(json::value());
}

// True when any object key starts with '$' (a directive leaked into a result).
bool has_directive(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    for (const auto& kv : *o) {
      if (kv.key().starts_with("$") || has_directive(kv.value())) return true;
    }
  } else if (const json::array* a = v.if_array()) {
    for (const auto& e : *a) {
      if (has_directive(e)) return true;
    }
  }
  return false;
}

json::value deep(int levels, const json::value& leaf) {
  json::value v = leaf;
  for (int i = 0; i < levels; ++i) {
    json::object o;
    o["a"] = std::move(v);
    v = std::move(o);
  }
  return v;
}

// ----------------------------------------------------------------------------------------
// JSON Patch

struct JsonPatchCase {
  std::string_view name, doc, patch, want;  // want empty: error expected (see want_error)
  std::string_view want_error = "";
};

TEST(JsonPatchTest, Rfc6902AppendixAndMore) {
  const JsonPatchCase cases[] = {
      {"A.1 add object member", R"({"foo":"bar"})", R"([{"op":"add","path":"/baz","value":"qux"}])",
       R"({"foo":"bar","baz":"qux"})"},  // members keep their order; new ones go last
      {"A.2 add array element", R"({"foo":["bar","baz"]})",
       R"([{"op":"add","path":"/foo/1","value":"qux"}])", R"({"foo":["bar","qux","baz"]})"},
      {"A.3 remove member", R"({"baz":"qux","foo":"bar"})", R"([{"op":"remove","path":"/baz"}])",
       R"({"foo":"bar"})"},
      {"A.4 remove element", R"({"foo":["bar","qux","baz"]})",
       R"([{"op":"remove","path":"/foo/1"}])", R"({"foo":["bar","baz"]})"},
      {"A.5 replace", R"({"baz":"qux","foo":"bar"})",
       R"([{"op":"replace","path":"/baz","value":"boo"}])", R"({"baz":"boo","foo":"bar"})"},
      {"A.6 move member", R"({"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}})",
       R"([{"op":"move","from":"/foo/waldo","path":"/qux/thud"}])",
       R"({"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}})"},
      {"A.7 move element", R"({"foo":["all","grass","cows","eat"]})",
       R"([{"op":"move","from":"/foo/1","path":"/foo/3"}])",
       R"({"foo":["all","cows","eat","grass"]})"},
      {"A.8 test success", R"({"baz":"qux","foo":["a",2,"c"]})",
       R"([{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}])",
       R"({"baz":"qux","foo":["a",2,"c"]})"},
      {"A.9 test failure", R"({"baz":"qux"})", R"([{"op":"test","path":"/baz","value":"bar"}])", "",
       "testing value /baz failed: test failed"},
      {"A.10 add nested member", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/child","value":{"grandchild":{}}}])",
       R"({"foo":"bar","child":{"grandchild":{}}})"},
      {"A.11 unrecognized members ignored", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/baz","value":"qux","xyz":123}])", R"({"foo":"bar","baz":"qux"})"},
      {"A.12 add to nonexistent target", R"({"foo":"bar"})",
       R"([{"op":"add","path":"/baz/bat","value":"qux"}])", "",
       R"(add operation does not apply: doc is missing path: "/baz/bat": missing value)"},
      {"A.14 escape ordering", R"({"/":9,"~1":10})", R"([{"op":"test","path":"/~01","value":10}])",
       R"({"/":9,"~1":10})"},
      {"A.15 string is not number", R"({"/":9,"~1":10})",
       R"([{"op":"test","path":"/~01","value":"10"}])", "",
       "testing value /~01 failed: test failed"},
      {"A.16 add array value", R"({"foo":["bar"]})",
       R"([{"op":"add","path":"/foo/-","value":["abc","def"]}])",
       R"({"foo":["bar",["abc","def"]]})"},
      {"escaped slash key", R"({"a/b":1})", R"([{"op":"replace","path":"/a~1b","value":2}])",
       R"({"a/b":2})"},
      {"copy", R"({"a":{"b":[1,2]}})", R"([{"op":"copy","from":"/a/b","path":"/c"}])",
       R"({"a":{"b":[1,2]},"c":[1,2]})"},
      {"copy into array", R"({"a":[1,2]})", R"([{"op":"copy","from":"/a/0","path":"/a/-"}])",
       R"({"a":[1,2,1]})"},
      {"replace root", R"({"a":1})", R"([{"op":"replace","path":"","value":[1]}])", "[1]"},
      {"add root", R"({"a":1})", R"([{"op":"add","path":"","value":{"b":2}}])", R"({"b":2})"},
      {"test root", R"({"a":1})", R"([{"op":"test","path":"","value":{"a":1}}])", R"({"a":1})"},
      {"add at end index", R"({"a":[1]})", R"([{"op":"add","path":"/a/1","value":2}])",
       R"({"a":[1,2]})"},
      {"negative index add (evanphx)", R"({"a":[1,2]})",
       R"([{"op":"add","path":"/a/-1","value":3}])", R"({"a":[1,2,3]})"},
      {"negative index remove (evanphx)", R"({"a":[1,2,3]})", R"([{"op":"remove","path":"/a/-1"}])",
       R"({"a":[1,2]})"},
      {"remove keeps member order", R"({"a":1,"b":2,"c":3,"d":4})",
       R"([{"op":"remove","path":"/b"}])", R"({"a":1,"c":3,"d":4})"},
      {"test null", R"({"a":null})", R"([{"op":"test","path":"/a","value":null}])",
       R"({"a":null})"},
      {"move to same place", R"({"a":1})", R"([{"op":"move","from":"/a","path":"/a"}])",
       R"({"a":1})"},
      {"ops apply in sequence", R"({})",
       R"([{"op":"add","path":"/a","value":{}},{"op":"add","path":"/a/b","value":1},
           {"op":"test","path":"/a/b","value":1},{"op":"remove","path":"/a/b"}])",
       R"({"a":{}})"},
      {"null patch", R"({"a":1})", "null", R"({"a":1})"},
      {"empty patch", R"({"a":1})", "[]", R"({"a":1})"},
      // Errors.
      {"add out of range", R"({"a":[1]})", R"([{"op":"add","path":"/a/5","value":2}])", "",
       "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index "
       "referenced"},
      {"add bad index", R"({"a":[1]})", R"([{"op":"add","path":"/a/x","value":2}])", "",
       "error in add for path: '/a/x': value was not a proper array index: 'x'"},
      {"remove missing member", R"({"a":1})", R"([{"op":"remove","path":"/b"}])", "",
       "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value"},
      {"remove out of range", R"({"a":[1]})", R"([{"op":"remove","path":"/a/1"}])", "",
       "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index "
       "referenced"},
      {"remove under missing parent", R"({"a":1})", R"([{"op":"remove","path":"/x/y"}])", "",
       R"(remove operation does not apply: doc is missing path: "/x/y": missing value)"},
      {"remove root", R"({"a":1})", R"([{"op":"remove","path":""}])", "",
       R"(remove operation does not apply: doc is missing path: "": missing value)"},
      {"replace missing member", R"({"a":1})", R"([{"op":"replace","path":"/b","value":1}])", "",
       "replace operation does not apply: doc is missing key: /b: missing value"},
      {"replace under missing parent", R"({"a":1})",
       R"([{"op":"replace","path":"/x/y","value":1}])", "",
       "replace operation does not apply: doc is missing path: /x/y: missing value"},
      {"test missing member", R"({"a":1})", R"([{"op":"test","path":"/b","value":1}])", "",
       "testing value /b failed: test failed"},
      {"test under missing parent", R"({"a":1})", R"([{"op":"test","path":"/x/y","value":1}])", "",
       "test operation does not apply: is missing path: /x/y: missing value"},
      {"move missing source", R"({"a":{}})", R"([{"op":"move","from":"/a/b","path":"/c"}])", "",
       "error in move for path: 'b': Unable to remove nonexistent key: b: missing value"},
      {"move from missing parent", R"({"a":1})", R"([{"op":"move","from":"/x/y","path":"/c"}])", "",
       "move operation does not apply: doc is missing from path: /x/y: missing value"},
      {"move into own child", R"({"a":{"b":1}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])",
       "", "move operation does not apply: cannot move /a into its own child /a/b/c"},
      {"move to missing parent", R"({"a":1})", R"([{"op":"move","from":"/a","path":"/x/y"}])", "",
       "move operation does not apply: doc is missing destination path: /x/y: missing value"},
      {"copy missing source", R"({"a":{}})", R"([{"op":"copy","from":"/a/b","path":"/c"}])", "",
       "error in copy for from: '/a/b': missing value"},
      {"move without from", R"({"a":1})", R"([{"op":"move","path":"/b"}])", "",
       "move operation failed to decode from: operation, missing from field: missing value"},
      {"add without path", R"({"a":1})", R"([{"op":"add","value":1}])", "",
       "add operation failed to decode path: missing value"},
      {"path not a string", R"({"a":1})", R"([{"op":"remove","path":5}])", "",
       "remove operation failed to decode path: json: cannot unmarshal number into Go value of "
       "type string"},
      {"add without value", R"({"a":1})", R"([{"op":"add","path":"/b"}])", "",
       "add operation failed to decode value: missing value"},
      {"unknown op", R"({"a":1})", R"([{"op":"frobnicate","path":"/a"}])", "",
       "Unexpected kind: frobnicate"},
      {"missing op", R"({"a":1})", R"([{"path":"/a"}])", "", "Unexpected kind: unknown"},
      {"pointer without slash", R"({"a":1})", R"([{"op":"add","path":"a","value":1}])", "",
       R"(add operation does not apply: doc is missing path: "a": missing value)"},
      {"bad escape", R"({"a":1})", R"([{"op":"add","path":"/~2","value":1}])", "",
       R"(add operation does not apply: doc is missing path: "/~2": missing value)"},
      {"add through a scalar", R"({"a":1})", R"([{"op":"add","path":"/a/b","value":1}])", "",
       R"(add operation does not apply: doc is missing path: "/a/b": missing value)"},
      {"patch is an object", R"({"a":1})", R"({"op":"add"})", "",
       "json: cannot unmarshal object into Go value of type jsonpatch.Patch"},
      {"operation is a string", R"({"a":1})", R"(["add"])", "",
       "json: cannot unmarshal string into Go value of type jsonpatch.Operation"},
      {"failure after success is atomic", R"({"a":1})",
       R"([{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}])", "",
       "testing value /a failed: test failed"},
  };
  for (const auto& c : cases) {
    const json::value doc = J(c.doc);
    auto got = apply_json_patch(doc, J(c.patch));
    if (c.want_error.empty()) {
      ASSERT_TRUE(got.has_value()) << c.name << ": " << got.error();
      EXPECT_EQ(json::serialize(*got), json::serialize(J(c.want))) << c.name;
    } else {
      ASSERT_FALSE(got.has_value()) << c.name << " gave " << json::serialize(*got);
      EXPECT_EQ(got.error(), c.want_error) << c.name;
      EXPECT_EQ(doc, J(c.doc)) << c.name;  // the input is never modified
    }
  }
}

TEST(JsonPatchTest, HostileInput) {
  // Deep documents and huge indexes fail or succeed without crashing.
  const json::value d = deep(200, json::value(1));
  std::string path;
  for (int i = 0; i < 200; ++i) path += "/a";
  json::array ops;
  ops.push_back(json::object{{"op", "replace"}, {"path", path}, {"value", 2}});
  auto got = apply_json_patch(d, ops);
  ASSERT_TRUE(got.has_value()) << got.error();
  EXPECT_EQ(*got, deep(200, json::value(2)));
  auto huge = apply_json_patch(
      J(R"({"a":[1]})"), J(R"([{"op":"add","path":"/a/99999999999999999999999","value":1}])"));
  EXPECT_FALSE(huge.has_value());
  auto neg = apply_json_patch(J(R"({"a":[1]})"), J(R"([{"op":"remove","path":"/a/-5"}])"));
  ASSERT_FALSE(neg.has_value());
  EXPECT_EQ(neg.error(),
            "error in remove for path: '/a/-5': Unable to access invalid index: -5: invalid index "
            "referenced");
}

TEST(JsonPatchTest, CopiesCannotBlowTheDocumentUp) {
  // Each copy of /x to its own end doubles it: 30 copies in a 1 KiB body would make 2^30 values
  // (the apiserver ran out of memory). As upstream's apiserver (JSONPatchMaxCopyBytes), copies
  // may add 3 MiB in all.
  json::array ops;
  ops.push_back(json::object{{"op", "add"}, {"path", "/x"}, {"value", json::array{"s"}}});
  for (int i = 0; i < 30; ++i) {
    ops.push_back(json::object{{"op", "copy"}, {"from", "/x"}, {"path", "/x/-"}});
  }
  auto got = apply_json_patch(J(R"({"a":1})"), ops);
  ASSERT_FALSE(got.has_value());
  EXPECT_TRUE(got.error().starts_with(
      "Unable to complete the copy, the accumulated size increase of copy is "))
      << got.error();
  EXPECT_TRUE(got.error().ends_with(", exceeding the limit 3145728")) << got.error();
  // Copying the whole document counts too.
  json::array root_ops{json::object{{"op", "add"}, {"path", "/x"}, {"value", "0123456789"}}};
  for (int i = 0; i < 30; ++i) {
    root_ops.push_back(
        json::object{{"op", "copy"}, {"from", ""}, {"path", "/y" + std::to_string(i)}});
  }
  EXPECT_FALSE(apply_json_patch(J(R"({"a":1})"), root_ops).has_value());
  // A few copies are fine.
  ops.resize(4);
  auto few = apply_json_patch(J(R"({"a":1})"), ops);
  ASSERT_TRUE(few.has_value()) << few.error();
  EXPECT_EQ(json::serialize(few->at("x")), R"(["s",["s"],["s",["s"]],["s",["s"],["s",["s"]]]])");
}

TEST(JsonPatchTest, CannotNestDeeperThanParseJsonReads) {
  // Copying a chain to its own end doubles its depth: 17 copies in a 500 KiB body nested 262143
  // levels, and the recursive copy of Boost.JSON values overflowed the stack. 127 levels did not
  // crash but were stored, and the object could no longer be read (parse_json stops at 64).
  json::array ops;
  ops.push_back(json::object{{"op", "add"}, {"path", "/x"}, {"value", J(R"({"a":{}})")}});
  int chain = 1;
  for (int i = 0; i < 17; ++i) {
    std::string path = "/x";
    for (int k = 0; k <= chain; ++k) path += "/a";
    ops.push_back(json::object{{"op", "copy"}, {"from", "/x"}, {"path", path}});
    chain = 2 * chain + 1;
  }
  auto got = apply_json_patch(J(R"({"kind":"ConfigMap"})"), ops);
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error(),
            "copy operation does not apply: the document would nest deeper than 64 levels");

  // 64 levels as parse_json counts them are fine, 65 are not, whatever the operation.
  const json::value doc = J(R"({"b":{"c":{}}})");
  auto add = [&](int levels) {
    return apply_json_patch(
        doc, json::array{json::object{{"op", "add"}, {"path", "/a"}, {"value", deep(levels, 1)}}});
  };
  ASSERT_TRUE(add(63).has_value());
  ASSERT_TRUE(parse_json(json::serialize(*add(63))).has_value());
  ASSERT_FALSE(add(64).has_value());
  EXPECT_EQ(add(64).error(),
            "add operation does not apply: the document would nest deeper than 64 levels");
  auto replace = apply_json_patch(
      doc, json::array{json::object{{"op", "replace"}, {"path", "/b/c"}, {"value", deep(63, 1)}}});
  EXPECT_FALSE(replace.has_value());
  auto root = apply_json_patch(
      doc, json::array{json::object{{"op", "replace"}, {"path", ""}, {"value", deep(65, 1)}}});
  EXPECT_FALSE(root.has_value());
  const json::value two = J(R"({"a":{"a":{}},"b":{"c":{}}})");
  auto move_ok = apply_json_patch(
      two, json::array{json::object{{"op", "move"}, {"from", "/a"}, {"path", "/b/c/d"}}});
  ASSERT_TRUE(move_ok.has_value()) << move_ok.error();
  EXPECT_EQ(*move_ok, J(R"({"b":{"c":{"d":{"a":{}}}}})"));
  json::value tall = J(R"({"b":{"c":{}}})");
  tall.as_object()["a"] = deep(62, 1);
  auto move_deep = apply_json_patch(
      tall, json::array{json::object{{"op", "move"}, {"from", "/a"}, {"path", "/b/c/d"}}});
  ASSERT_FALSE(move_deep.has_value());
  EXPECT_EQ(move_deep.error(),
            "move operation does not apply: the document would nest deeper than 64 levels");
}

// ----------------------------------------------------------------------------------------
// JSON Merge Patch

TEST(MergePatchTest, Rfc7386Appendix) {
  struct Case {
    std::string_view doc, patch, want;
  };
  const Case cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
      {R"({"a":1,"b":2,"c":3})", R"({"b":null,"d":4})", R"({"a":1,"c":3,"d":4})"},
  };
  for (const auto& c : cases) {
    auto got = apply_merge_patch(J(c.doc), J(c.patch));
    ASSERT_TRUE(got.has_value()) << c.patch << ": " << got.error();
    EXPECT_EQ(json::serialize(*got), json::serialize(J(c.want))) << c.doc << " + " << c.patch;
  }
  EXPECT_FALSE(apply_merge_patch(J("{}"), deep(1000, json::value(1))).has_value());
}

TEST(MergePatchTest, CreateRoundTrips) {
  struct Case {
    std::string_view original, modified, want;
  };
  const Case cases[] = {
      {R"({"a":1,"b":{"c":1,"d":2}})", R"({"a":1,"b":{"c":2}})", R"({"b":{"c":2,"d":null}})"},
      {R"({"a":[1,2]})", R"({"a":[2]})", R"({"a":[2]})"},
      {R"({"a":1})", R"({"a":1})", R"({})"},
      {R"({"a":{"b":1}})", R"({"a":"x"})", R"({"a":"x"})"},
      {R"({})", R"({"n":{"m":1}})", R"({"n":{"m":1}})"},
  };
  for (const auto& c : cases) {
    auto p = create_merge_patch(J(c.original), J(c.modified));
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(*p, J(c.want)) << json::serialize(*p);
    auto back = apply_merge_patch(J(c.original), *p);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, J(c.modified));
  }
}

// ----------------------------------------------------------------------------------------
// Strategic Merge Patch

struct SmpCase {
  std::string_view name, doc, patch, want;
};

void run_smp_cases(std::span<const SmpCase> cases, const PatchMeta* meta) {
  for (const auto& c : cases) {
    auto got = apply_strategic_merge_patch(J(c.doc), J(c.patch), meta);
    ASSERT_TRUE(got.has_value()) << c.name << ": " << got.error();
    // Lists compare in order; objects by content.
    EXPECT_EQ(*got, J(c.want)) << c.name << "\n got: " << json::serialize(*got);
    EXPECT_FALSE(has_directive(*got)) << c.name << ": " << json::serialize(*got);
  }
}

TEST(StrategicMergePatchTest, MapsAndNulls) {
  const SmpCase cases[] = {
      {"maps merge recursively, null deletes",
       R"({"metadata":{"name":"p","labels":{"a":"1","b":"2"}}})",
       R"({"metadata":{"labels":{"b":null,"c":"3"}}})",
       R"({"metadata":{"name":"p","labels":{"a":"1","c":"3"}}})"},
      {"unmatched nulls are ignored, also inside new subtrees", R"({"a":1})",
       R"({"x":null,"spec":{"y":null,"z":{"w":null,"v":1}}})", R"({"a":1,"spec":{"z":{"v":1}}})"},
      {"a type change replaces", R"({"a":{"b":1},"c":[1]})", R"({"a":[1],"c":{"d":1}})",
       R"({"a":[1],"c":{"d":1}})"},
      {"scalars replace", R"({"a":1,"b":"x"})", R"({"a":"one","b":2.5})", R"({"a":"one","b":2.5})"},
      {"$patch: replace on a map", R"({"metadata":{"labels":{"a":"1","b":"2"}}})",
       R"({"metadata":{"labels":{"$patch":"replace","c":"3"}}})",
       R"({"metadata":{"labels":{"c":"3"}}})"},
      {"$patch: delete on a map",
       R"({"spec":{"securityContext":{"runAsUser":1},"hostNetwork":true}})",
       R"({"spec":{"securityContext":{"$patch":"delete"}}})",
       R"({"spec":{"securityContext":{},"hostNetwork":true}})"},
      {"$patch: merge on a map is the default", R"({"metadata":{"labels":{"a":"1"}}})",
       R"({"metadata":{"$patch":"merge","labels":{"b":"2"}}})",
       R"({"metadata":{"labels":{"a":"1","b":"2"}}})"},
      {"$patch: replace at the root", R"({"a":1,"b":2})", R"({"$patch":"replace","c":3})",
       R"({"c":3})"},
      {"a new subtree loses its directives", R"({"spec":{}})",
       R"({"spec":{"containers":[{"name":"n","image":"i","$setElementOrder/ports":[{"containerPort":1}],
           "ports":[{"containerPort":1}],"env":[{"name":"e","$patch":"delete"}]}]}})",
       R"({"spec":{"containers":[{"name":"n","image":"i","ports":[{"containerPort":1}],"env":[]}]}})"},
      {"a null document is {}", "null", R"({"a":1})", R"({"a":1})"},
      {"a null patch changes nothing", R"({"a":1})", "null", R"({"a":1})"},
  };
  run_smp_cases(cases, &pod_meta());
}

TEST(StrategicMergePatchTest, ListsOfMaps) {
  const SmpCase cases[] = {
      {"update a container by name",
       R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"}]}})",
       R"({"spec":{"containers":[{"name":"b","image":"z"}]}})",
       R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"z"}]}})"},
      // kubernetes.io "Update API Objects in Place Using kubectl patch": the new container
      // comes first.
      {"add a container (kubectl patch docs)",
       R"({"spec":{"containers":[{"name":"patch-demo-ctr","image":"nginx"}]}})",
       R"({"spec":{"containers":[{"name":"patch-demo-ctr-2","image":"redis"}]}})",
       R"({"spec":{"containers":[{"name":"patch-demo-ctr-2","image":"redis"},{"name":"patch-demo-ctr","image":"nginx"}]}})"},
      {"patch items keep patch order, server items fill in",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}})",
       R"({"spec":{"containers":[{"name":"b","image":"B"},{"name":"d"}]}})",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b","image":"B"},{"name":"d"},{"name":"c"}]}})"},
      {"$patch: delete removes by merge key",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"a","image":"dup"}]}})",
       R"({"spec":{"containers":[{"name":"a","$patch":"delete"}]}})",
       R"({"spec":{"containers":[{"name":"b"}]}})"},
      {"$patch: replace replaces the list",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
       R"({"spec":{"containers":[{"$patch":"replace"},{"name":"z","image":"zz"}]}})",
       R"({"spec":{"containers":[{"name":"z","image":"zz"}]}})"},
      {"numeric merge keys (ports by containerPort)",
       R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":443}]}]}})",
       R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"name":"http"}]}]}})",
       R"({"spec":{"containers":[{"name":"a","ports":[{"containerPort":80,"protocol":"TCP","name":"http"},{"containerPort":443}]}]}})"},
      {"nested env merge",
       R"({"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"1"},{"name":"Y","value":"y"}]}]}})",
       R"({"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"2"},{"name":"NEW","value":"n"}]}]}})",
       R"({"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"2"},{"name":"NEW","value":"n"},{"name":"Y","value":"y"}]}]}})"},
      {"null inside a merged item deletes the field",
       R"({"spec":{"containers":[{"name":"a","image":"x","command":["sh"]}]}})",
       R"({"spec":{"containers":[{"name":"a","command":null}]}})",
       R"({"spec":{"containers":[{"name":"a","image":"x"}]}})"},
      {"ownerReferences by uid",
       R"({"metadata":{"ownerReferences":[{"uid":"1","name":"rs-a"},{"uid":"2","name":"rs-b"}]}})",
       R"({"metadata":{"ownerReferences":[{"uid":"1","$patch":"delete"}]}})",
       R"({"metadata":{"ownerReferences":[{"uid":"2","name":"rs-b"}]}})"},
      {"atomic lists are replaced", R"({"spec":{"tolerations":[{"key":"a"},{"key":"b"}]}})",
       R"({"spec":{"tolerations":[{"key":"c"}]}})", R"({"spec":{"tolerations":[{"key":"c"}]}})"},
      {"a merge list that is new to the object", R"({"spec":{}})",
       R"({"spec":{"imagePullSecrets":[{"name":"s"},{"name":"t","$patch":"delete"}]}})",
       R"({"spec":{"imagePullSecrets":[{"name":"s"}]}})"},
      {"deployment template containers",
       R"({"deploymentSpec":{"replicas":1,"template":{"spec":{"containers":[{"name":"app","image":"v1"}]}}}})",
       R"({"deploymentSpec":{"template":{"spec":{"containers":[{"name":"app","image":"v2"}]}}}})",
       R"({"deploymentSpec":{"replicas":1,"template":{"spec":{"containers":[{"name":"app","image":"v2"}]}}}})"},
  };
  run_smp_cases(cases, &pod_meta());
}

TEST(StrategicMergePatchTest, ListsOfPrimitives) {
  const SmpCase cases[] = {
      {"union without duplicates", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"finalizers":["b","c","c"]}})",
       R"({"metadata":{"finalizers":["a","b","c"]}})"},
      {"a new value goes before the server-only ones", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"finalizers":["c"]}})", R"({"metadata":{"finalizers":["c","a","b"]}})"},
      {"$deleteFromPrimitiveList", R"({"metadata":{"finalizers":["a","b","c","b"]}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b","zz"]}})",
       R"({"metadata":{"finalizers":["a","c"]}})"},
      {"$deleteFromPrimitiveList on a missing list is a no-op", R"({"metadata":{}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b"]}})", R"({"metadata":{}})"},
      {"delete and add together", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]}})",
       R"({"metadata":{"finalizers":["c","b"]}})"},
      {"lists of primitives without strategy are replaced", R"({"spec":{"args":["a","b"]}})",
       R"({"spec":{"args":["c"]}})", R"({"spec":{"args":["c"]}})"},
  };
  run_smp_cases(cases, &pod_meta());
}

TEST(StrategicMergePatchTest, SetElementOrder) {
  const SmpCase cases[] = {
      {"primitives follow the order list", R"({"metadata":{"finalizers":["a","b","c"]}})",
       R"({"metadata":{"$setElementOrder/finalizers":["c","a","b","d"],"finalizers":["d"]}})",
       R"({"metadata":{"finalizers":["c","a","b","d"]}})"},
      {"delete with order", R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}],"containers":[{"name":"b","$patch":"delete"}]}})",
       R"({"spec":{"containers":[{"name":"c"},{"name":"a"}]}})"},
      {"append in order", R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"},{"name":"n"}],"containers":[{"name":"n","image":"i"}]}})",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"n","image":"i"}]}})"},
      {"reorder only",
       R"({"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"2"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}})",
       R"({"spec":{"containers":[{"name":"b","image":"2"},{"name":"a","image":"1"}]}})"},
      {"server-only items keep their place",
       R"({"spec":{"containers":[{"name":"a"},{"name":"s"},{"name":"b"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"a","image":"x"}]}})",
       // Upstream interleaves the server-only item by its live position (before b).
       R"({"spec":{"containers":[{"name":"s"},{"name":"b"},{"name":"a","image":"x"}]}})"},
      {"order for a list new to the object", R"({"spec":{}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"name":"b"},{"name":"a","$patch":"delete"}]}})",
       R"({"spec":{"containers":[{"name":"b"}]}})"},
      {"order list for an absent list", R"({"spec":{}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"}]}})", R"({"spec":{}})"},
  };
  run_smp_cases(cases, &pod_meta());
}

TEST(StrategicMergePatchTest, RetainKeys) {
  const SmpCase cases[] = {
      {"deployment strategy switches type",
       R"({"deploymentSpec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})",
       R"({"deploymentSpec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})",
       R"({"deploymentSpec":{"strategy":{"type":"Recreate"}}})"},
      {"volume source switches (merge,retainKeys list items)",
       R"({"spec":{"volumes":[{"name":"v","emptyDir":{}},{"name":"w","emptyDir":{}}]}})",
       R"({"spec":{"volumes":[{"name":"v","hostPath":{"path":"/x"},"$retainKeys":["hostPath","name"]}]}})",
       R"({"spec":{"volumes":[{"name":"v","hostPath":{"path":"/x"}},{"name":"w","emptyDir":{}}]}})"},
      {"retained keys merge as usual",
       R"({"deploymentSpec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}})",
       R"({"deploymentSpec":{"strategy":{"$retainKeys":["type","rollingUpdate"],"rollingUpdate":{"maxSurge":2}}}})",
       R"({"deploymentSpec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":2,"maxUnavailable":0}}}})"},
  };
  run_smp_cases(cases, &pod_meta());
}

TEST(StrategicMergePatchTest, WithoutSchema) {
  const SmpCase cases[] = {
      {"lists are replaced and maps merged",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]},"m":{"x":1}})",
       R"({"spec":{"containers":[{"name":"c"}]},"m":{"y":2}})",
       R"({"spec":{"containers":[{"name":"c"}]},"m":{"x":1,"y":2}})"},
      {"directives still never leak", R"({"a":[1,2]})",
       R"({"a":[{"$patch":"replace"},{"k":1,"x":null}],"$setElementOrder/b":[1],"b":[1]})",
       R"({"a":[{"k":1}],"b":[1]})"},
  };
  run_smp_cases(cases, nullptr);
}

TEST(StrategicMergePatchTest, KeepsMemberOrder) {
  auto got =
      apply_strategic_merge_patch(J(R"({"z":1,"a":{"y":1,"b":2,"x":3},"m":0})"),
                                  J(R"({"a":{"b":null,"n":4},"m":null,"q":5})"), &pod_meta());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(json::serialize(*got), R"({"z":1,"a":{"y":1,"x":3,"n":4},"q":5})");
}

TEST(StrategicMergePatchTest, Errors) {
  struct Case {
    std::string_view name, doc, patch, error;
  };
  const Case cases[] = {
      {"unknown map directive", R"({"metadata":{}})", R"({"metadata":{"$patch":"foo","a":"b"}})",
       "unknown patch type: foo in map: map[$patch:foo a:b]"},
      {"unknown list item directive", R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"containers":[{"name":"a","$patch":"foo"}]}})",
       "unknown patch type: foo in map: map[$patch:foo name:a]"},
      {"patch item without merge key", R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"containers":[{"image":"x"}]}})",
       "map: map[image:x] does not contain declared merge key: name"},
      {"delete without merge key", R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"containers":[{"$patch":"delete"}]}})",
       "map: map[$patch:delete] does not contain declared merge key: name"},
      {"merge list of maps without merge key", R"({"widgets":[{"a":1}]})",
       R"({"widgets":[{"a":2}]})", "cannot merge lists without merge key for type map"},
      {"lists of lists", R"({"metadata":{"finalizers":[["a"]]}})",
       R"({"metadata":{"finalizers":[["b"]]}})", "lists of lists are not supported"},
      {"mixed element types", R"({"metadata":{"finalizers":["a"]}})",
       R"({"metadata":{"finalizers":[1]}})", "list element types are not identical: [[a] [1]]"},
      {"retainKeys not a list", R"({"deploymentSpec":{"strategy":{}}})",
       R"({"deploymentSpec":{"strategy":{"$retainKeys":"type"}}})",
       "invalid patch format of retainKeys"},
      {"patched key missing from retainKeys", R"({"deploymentSpec":{"strategy":{}}})",
       R"({"deploymentSpec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}})",
       "invalid patch format of retainKeys"},
      {"malformed setElementOrder key", R"({"spec":{}})", R"({"spec":{"$setElementOrderfoo":[]}})",
       "invalid patch format of setElementOrder list"},
      {"setElementOrder not a list", R"({"spec":{}})",
       R"({"spec":{"$setElementOrder/containers":"x"}})",
       "expected a []interface {}, but received a string"},
      {"patch list disagrees with setElementOrder",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"b","image":"x"}]}})",
       "The order in patch list:\n[map[image:x name:b]]\n doesn't match $setElementOrder "
       "list:\n[map[name:a]]\n"},
      {"malformed deleteFromPrimitiveList key", R"({"metadata":{"finalizers":["a"]}})",
       R"({"metadata":{"$deleteFromPrimitiveListfinalizers":["a"]}})",
       "invalid patch format of primitive list"},
      {"bad strategy in the schema", R"({"broken":[1]})", R"({"broken":[2]})",
       "unexpected patch strategy: [merge replace]"},
      {"document is not an object", R"([1])", R"({"a":1})", "invalid JSON document"},
      {"patch is not an object", R"({"a":1})", R"([1])", "invalid JSON document"},
      {"server item without merge key", R"({"spec":{"containers":[{"image":"x"}]}})",
       R"({"spec":{"containers":[{"name":"a"}]}})",
       "map: map[image:x] does not contain declared merge key: name"},
      {"server list holds a non-map", R"({"spec":{"containers":["x"]}})",
       R"({"spec":{"containers":[{"name":"a"}]}})",
       "list element types are not identical: [[x] [map[name:a]]]"},
  };
  for (const auto& c : cases) {
    const json::value doc = J(c.doc);
    auto got = apply_strategic_merge_patch(doc, J(c.patch), &pod_meta());
    ASSERT_FALSE(got.has_value()) << c.name << " gave " << json::serialize(*got);
    EXPECT_EQ(got.error(), c.error) << c.name;
    EXPECT_EQ(doc, J(c.doc));
  }
}

TEST(StrategicMergePatchTest, HostileNesting) {
  const json::value d = deep(1000, json::value(1));
  auto got = apply_strategic_merge_patch(d, d, &pod_meta());
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error(), "patch nesting exceeds the maximum depth");
  auto created = create_strategic_merge_patch(d, deep(1000, json::value(2)), nullptr);
  EXPECT_FALSE(created.has_value());
  // Moderate nesting is fine.
  auto ok =
      apply_strategic_merge_patch(deep(100, json::value(1)), deep(100, json::value(2)), nullptr);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, deep(100, json::value(2)));
}

// Two-way patches as kubectl computes them, checked against upstream's expected shapes and
// by applying them back.
TEST(StrategicMergePatchTest, CreateTwoWayPatch) {
  struct Case {
    std::string_view name, original, modified, want;  // want empty: only round-trip
  };
  const Case cases[] = {
      {"identical", R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"containers":[{"name":"a"}]}})", "{}"},
      {"change an image", R"({"spec":{"containers":[{"name":"a","image":"x"}]}})",
       R"({"spec":{"containers":[{"name":"a","image":"y"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"image":"y","name":"a"}]}})"},
      {"add a container", R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"containers":[{"name":"a"},{"name":"b","image":"i"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"name":"b","image":"i"}]}})"},
      {"remove a container", R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
       R"({"spec":{"containers":[{"name":"a"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"$patch":"delete","name":"b"}]}})"},
      {"reorder containers", R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
       R"({"spec":{"containers":[{"name":"b"},{"name":"a"}]}})",
       R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}})"},
      {"finalizers", R"({"metadata":{"finalizers":["a","b"]}})",
       R"({"metadata":{"finalizers":["b","c"]}})",
       R"({"metadata":{"$setElementOrder/finalizers":["b","c"],"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]}})"},
      {"remove a label", R"({"metadata":{"labels":{"a":"1","b":"2"}}})",
       R"({"metadata":{"labels":{"a":"1"}}})", R"({"metadata":{"labels":{"b":null}}})"},
      {"strategy switch builds $retainKeys",
       R"({"deploymentSpec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%"}}}})",
       R"({"deploymentSpec":{"strategy":{"type":"Recreate"}}})",
       R"({"deploymentSpec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}})"},
      {"volume source switch builds $retainKeys per item",
       R"({"spec":{"volumes":[{"name":"v","emptyDir":{}}]}})",
       R"({"spec":{"volumes":[{"name":"v","hostPath":{"path":"/x"}}]}})",
       R"({"spec":{"$setElementOrder/volumes":[{"name":"v"}],"volumes":[{"$retainKeys":["hostPath","name"],"emptyDir":null,"hostPath":{"path":"/x"},"name":"v"}]}})"},
      {"atomic list", R"({"spec":{"tolerations":[{"key":"a"}]}})",
       R"({"spec":{"tolerations":[{"key":"b"}]}})", R"({"spec":{"tolerations":[{"key":"b"}]}})"},
      {"list added to an empty one", R"({"spec":{"containers":[]}})",
       R"({"spec":{"containers":[{"name":"a"}]}})", R"({"spec":{"containers":[{"name":"a"}]}})"},
      {"type change", R"({"a":1})", R"({"a":"x"})", R"({"a":"x"})"},
      {"env and ports inside containers",
       R"({"spec":{"containers":[{"name":"a","env":[{"name":"X","value":"1"},{"name":"Y"}],"ports":[{"containerPort":80},{"containerPort":443}]}]}})",
       R"({"spec":{"containers":[{"name":"a","env":[{"name":"Y"},{"name":"X","value":"2"},{"name":"Z"}],"ports":[{"containerPort":443}]}]}})",
       ""},
      {"many changes at once",
       R"({"metadata":{"name":"web","labels":{"app":"web","old":"x"},"finalizers":["f1"]},
           "spec":{"replicas":1,"containers":[{"name":"a","image":"1","args":["-v"]},{"name":"b"},{"name":"c"}],
                   "volumes":[{"name":"data","emptyDir":{}}]}})",
       R"({"metadata":{"name":"web","labels":{"app":"web","new":"y"},"finalizers":["f2","f1"]},
           "spec":{"containers":[{"name":"c","image":"3"},{"name":"a","image":"2","args":["-q"]},{"name":"d"}],
                   "volumes":[{"name":"data","configMap":{"name":"cm"}},{"name":"tmp","emptyDir":{}}]}})",
       ""},
  };
  for (const auto& c : cases) {
    const json::value original = J(c.original), modified = J(c.modified);
    auto p = create_strategic_merge_patch(original, modified, &pod_meta());
    ASSERT_TRUE(p.has_value()) << c.name << ": " << p.error();
    if (!c.want.empty()) {
      EXPECT_EQ(*p, J(c.want)) << c.name << "\n got: " << json::serialize(*p);
    }
    auto back = apply_strategic_merge_patch(original, *p, &pod_meta());
    ASSERT_TRUE(back.has_value()) << c.name << ": " << back.error();
    EXPECT_EQ(*back, modified) << c.name << "\n patch: " << json::serialize(*p)
                               << "\n got: " << json::serialize(*back);
  }
  // Without a schema lists are replaced wholesale.
  auto p = create_strategic_merge_patch(J(R"({"l":[1,2],"m":{"a":1}})"),
                                        J(R"({"l":[2],"m":{"a":1}})"), nullptr);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, J(R"({"l":[2]})"));
  EXPECT_FALSE(create_strategic_merge_patch(J("[1]"), J("{}"), nullptr).has_value());
}

}  // namespace
}  // namespace podwarp::patch
