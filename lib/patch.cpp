#include "podwarp/patch.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

namespace podwarp::patch {
namespace {

constexpr int kMaxDepth = 300;
constexpr std::string_view kTooDeep = "patch nesting exceeds the maximum depth";
// JSON Patch builds documents rather than merging two bounded ones: copy and move can nest the
// document in itself (each copy of a chain into its own end doubles its depth) and copy can
// double its size. So results are held to parse_json's default depth, or the input's own when
// deeper (whatever a patch yields must read back, and Boost.JSON copies and destroys values
// recursively), and copies to upstream's apiserver default JSONPatchMaxCopyBytes
// (evanphx/json-patch's AccumulatedCopySizeLimit).
constexpr int kMaxDocumentDepth = 64;
constexpr std::size_t kMaxCopyBytes = 3 * 1024 * 1024;

using Status = std::expected<void, std::string>;

std::unexpected<std::string> fail(std::string msg) { return std::unexpected(std::move(msg)); }

// ---------------------------------------------------------------------------------------
// Shared helpers

// Removes key keeping the order of the other members (object::erase moves the last member
// into the hole). Boost's stable_erase shifts the members after it in place: rebuilding the
// object for every removal (hashing and moving every member) made a 1.8 MB JSON Patch of 40000
// removals from one object run for minutes.
void stable_erase(json::object& o, std::string_view key) { o.stable_erase(key); }

// Keeps only the members for which keep(member) holds, in order.
template <class Pred>
void filter_members(json::object& o, Pred keep) {
  json::object out(o.storage());
  out.reserve(o.size());
  for (auto& kv : o) {
    if (keep(static_cast<const json::key_value_pair&>(kv)))
      out.emplace(kv.key(), std::move(kv.value()));
  }
  o = std::move(out);
}

// The JSON kind as Go's encoding/json names it in "cannot unmarshal X" errors.
std::string_view json_kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::object:
      return "object";
    case json::kind::array:
      return "array";
    case json::kind::string:
      return "string";
    case json::kind::bool_:
      return "bool";
    case json::kind::null:
      return "null";
    default:
      return "number";
  }
}

// Go's %v of a value decoded into interface{} (for error messages).
void go_fmt(const json::value& v, std::string& out, int depth) {
  if (depth > 32) {
    out += "...";
    return;
  }
  switch (v.kind()) {
    case json::kind::null:
      out += "<nil>";
      return;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case json::kind::int64:
      out += fmt::format("{}", v.get_int64());
      return;
    case json::kind::uint64:
      out += fmt::format("{}", v.get_uint64());
      return;
    case json::kind::double_:
      out += fmt::format("{}", v.get_double());
      return;
    case json::kind::string:
      out += std::string_view(v.get_string());
      return;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ' ';
        first = false;
        go_fmt(e, out, depth + 1);
      }
      out += ']';
      return;
    }
    case json::kind::object: {
      std::vector<const json::key_value_pair*> kvs;
      for (const auto& kv : v.get_object()) kvs.push_back(&kv);
      std::sort(kvs.begin(), kvs.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      out += "map[";
      bool first = true;
      for (const auto* kv : kvs) {
        if (!first) out += ' ';
        first = false;
        out += std::string_view(kv->key());
        out += ':';
        go_fmt(kv->value(), out, depth + 1);
      }
      out += ']';
      return;
    }
  }
}

std::string go_fmt(const json::value& v) {
  std::string out;
  go_fmt(v, out, 0);
  return out;
}

// The Go type a value decodes to (k8s.io/apimachinery/pkg/util/json keeps integers int64).
std::string_view go_type(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "<nil>";
    case json::kind::bool_:
      return "bool";
    case json::kind::int64:
    case json::kind::uint64:
      return "int64";
    case json::kind::double_:
      return "float64";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "[]interface {}";
    case json::kind::object:
      return "map[string]interface {}";
  }
  return "<nil>";
}

std::string err_bad_arg_type(std::string_view expected, const json::value& actual) {
  return fmt::format("expected a {}, but received a {}", expected, go_type(actual));
}

std::string err_no_merge_key(const json::value& m, std::string_view key) {
  return fmt::format("map: {} does not contain declared merge key: {}", go_fmt(m), key);
}

// Whether two values have the same Go dynamic type (reflect.TypeOf equality).
bool same_go_type(const json::value& a, const json::value& b) { return go_type(a) == go_type(b); }

// ---------------------------------------------------------------------------------------
// JSON Patch (RFC 6902)

std::optional<std::vector<std::string>> parse_pointer(std::string_view p) {
  std::vector<std::string> tokens;
  if (p.empty()) return tokens;
  if (p[0] != '/') return std::nullopt;
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = p.find('/', start);
    std::string_view raw =
        p.substr(start, slash == std::string_view::npos ? p.npos : slash - start);
    std::string tok;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        tok += raw[i];
        continue;
      }
      if (i + 1 >= raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return std::nullopt;
      tok += raw[i + 1] == '0' ? '~' : '/';
      ++i;
    }
    tokens.push_back(std::move(tok));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return tokens;
}

// Nesting of v as parse_json counts it (0 for a scalar, 1 + its deepest member for an array or
// an object), exact up to cap; any result above cap means "deeper than cap". Recurses at most
// cap + 1 levels.
int nesting(const json::value& v, int cap) {
  int deepest = 0;
  if (const json::object* o = v.if_object()) {
    for (const auto& kv : *o) {
      if (deepest >= cap) break;
      deepest = std::max(deepest, nesting(kv.value(), cap - 1));
    }
    return 1 + deepest;
  }
  if (const json::array* a = v.if_array()) {
    for (const json::value& e : *a) {
      if (deepest >= cap) break;
      deepest = std::max(deepest, nesting(e, cap - 1));
    }
    return 1 + deepest;
  }
  return 0;
}

// Whether putting v at the pointer `tokens` keeps the document within `limit` levels (the
// containers on the way to the new member count one each).
Status check_depth(std::string_view kind, const std::vector<std::string>& tokens,
                   const json::value& v, int limit) {
  const int at = static_cast<int>(std::min<std::size_t>(tokens.size(), limit + 1));
  if (at + nesting(v, limit - at) <= limit) return {};
  return fail(fmt::format(
      "{} operation does not apply: the document would nest deeper than {} levels", kind, limit));
}

// Go's strconv.Atoi.
std::optional<std::int64_t> atoi(std::string_view s) {
  std::string_view d = s;
  if (!d.empty() && d[0] == '+') d.remove_prefix(1);
  if (d.empty() || d[0] == '+' || (s[0] == '+' && d[0] == '-')) return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
  if (ec != std::errc() || ptr != d.data() + d.size()) return std::nullopt;
  return v;
}

// Follows the first n tokens; nullptr when any is missing.
json::value* resolve(json::value& root, const std::vector<std::string>& tokens, std::size_t n) {
  json::value* cur = &root;
  for (std::size_t i = 0; i < n; ++i) {
    if (json::object* o = cur->if_object()) {
      auto it = o->find(tokens[i]);
      if (it == o->end()) return nullptr;
      cur = &it->value();
    } else if (json::array* a = cur->if_array()) {
      auto idx = atoi(tokens[i]);
      if (!idx || *idx < 0 || static_cast<std::uint64_t>(*idx) >= a->size()) return nullptr;
      cur = &(*a)[static_cast<std::size_t>(*idx)];
    } else {
      return nullptr;
    }
  }
  return cur;
}

// The container holding the last token, when it is an object or an array.
json::value* parent_of(json::value& root, const std::vector<std::string>& tokens) {
  json::value* p = resolve(root, tokens, tokens.size() - 1);
  if (p == nullptr || (!p->is_object() && !p->is_array())) return nullptr;
  return p;
}

std::string copy_too_large(std::size_t copied) {
  return fmt::format(
      "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the "
      "limit {}",
      copied, kMaxCopyBytes);
}

std::string invalid_index(std::int64_t idx) {
  return fmt::format("Unable to access invalid index: {}: invalid index referenced", idx);
}

// Inserts value at tokens (parent known to exist). Error text without the op prefix.
Status add_at(json::value& parent, const std::string& key, json::value value) {
  if (json::object* o = parent.if_object()) {
    (*o)[key] = std::move(value);
    return {};
  }
  json::array& a = parent.get_array();
  if (key == "-") {
    a.push_back(std::move(value));
    return {};
  }
  auto idx = atoi(key);
  if (!idx) return fail(fmt::format("value was not a proper array index: '{}'", key));
  const auto sz = static_cast<std::int64_t>(a.size()) + 1;
  std::int64_t i = *idx;
  if (i >= sz || i < -sz) return fail(invalid_index(i));
  if (i < 0) i += sz;  // evanphx/json-patch: negative indexes count from the end
  a.insert(a.begin() + i, std::move(value));
  return {};
}

Status remove_at(json::value& parent, const std::string& key) {
  if (json::object* o = parent.if_object()) {
    if (!o->contains(key)) {
      return fail(fmt::format("Unable to remove nonexistent key: {}: missing value", key));
    }
    stable_erase(*o, key);
    return {};
  }
  json::array& a = parent.get_array();
  auto idx = atoi(key);
  if (!idx) return fail(fmt::format("strconv.Atoi: parsing \"{}\": invalid syntax", key));
  const auto sz = static_cast<std::int64_t>(a.size());
  std::int64_t i = *idx;
  if (i >= sz || i < -sz) return fail(invalid_index(i));
  if (i < 0) i += sz;
  a.erase(a.begin() + i);
  return {};
}

// The member at key of an existing parent, or nullptr.
json::value* child_at(json::value& parent, const std::string& key) {
  if (json::object* o = parent.if_object()) {
    auto it = o->find(key);
    return it == o->end() ? nullptr : &it->value();
  }
  json::array& a = parent.get_array();
  auto idx = atoi(key);
  if (!idx || *idx < 0 || static_cast<std::uint64_t>(*idx) >= a.size()) return nullptr;
  return &a[static_cast<std::size_t>(*idx)];
}

std::expected<std::string, std::string> string_member(const json::object& op, std::string_view name,
                                                      std::string_view kind,
                                                      std::string_view what) {
  auto it = op.find(name);
  if (it == op.end() || it->value().is_null()) {
    return fail(fmt::format("{} operation failed to decode {}: missing value", kind, what));
  }
  if (!it->value().is_string()) {
    return fail(
        fmt::format("{} operation failed to decode {}: json: cannot unmarshal {} into Go "
                    "value of type string",
                    kind, what, json_kind_name(it->value())));
  }
  return std::string(it->value().get_string());
}

Status apply_operation(json::value& doc, const json::object& op, std::size_t& copied,
                       int max_depth) {
  std::string kind = "unknown";
  if (auto it = op.find("op"); it != op.end() && it->value().is_string()) {
    kind = std::string(it->value().get_string());
  }
  if (kind != "add" && kind != "remove" && kind != "replace" && kind != "move" && kind != "copy" &&
      kind != "test") {
    return fail(fmt::format("Unexpected kind: {}", kind));
  }
  const json::value* value = nullptr;
  if (auto it = op.find("value"); it != op.end()) value = &it->value();
  if (value == nullptr && (kind == "add" || kind == "replace" || kind == "test")) {
    return fail(fmt::format("{} operation failed to decode value: missing value", kind));
  }
  auto path = string_member(op, "path", kind, "path");
  if (!path) return fail(path.error());
  auto tokens = parse_pointer(*path);

  if (kind == "add") {
    const auto missing = fmt::format(
        "add operation does not apply: doc is missing path: \"{}\": missing value", *path);
    if (!tokens) return fail(missing);
    if (auto st = check_depth(kind, *tokens, *value, max_depth); !st) return st;
    if (tokens->empty()) {
      doc = *value;
      return {};
    }
    json::value* parent = parent_of(doc, *tokens);
    if (parent == nullptr) return fail(missing);
    if (auto st = add_at(*parent, tokens->back(), *value); !st) {
      return fail(fmt::format("error in add for path: '{}': {}", *path, st.error()));
    }
    return {};
  }
  if (kind == "remove") {
    const auto missing = fmt::format(
        "remove operation does not apply: doc is missing path: \"{}\": missing value", *path);
    if (!tokens || tokens->empty()) return fail(missing);
    json::value* parent = parent_of(doc, *tokens);
    if (parent == nullptr) return fail(missing);
    if (auto st = remove_at(*parent, tokens->back()); !st) {
      return fail(fmt::format("error in remove for path: '{}': {}", *path, st.error()));
    }
    return {};
  }
  if (kind == "replace") {
    if (!tokens) {
      return fail(fmt::format(
          "replace operation does not apply: doc is missing path: {}: missing value", *path));
    }
    if (auto st = check_depth(kind, *tokens, *value, max_depth); !st) return st;
    if (tokens->empty()) {
      doc = *value;
      return {};
    }
    json::value* parent = parent_of(doc, *tokens);
    if (parent == nullptr) {
      return fail(fmt::format(
          "replace operation does not apply: doc is missing path: {}: missing value", *path));
    }
    json::value* target = child_at(*parent, tokens->back());
    if (target == nullptr) {
      return fail(fmt::format(
          "replace operation does not apply: doc is missing key: {}: missing value", *path));
    }
    *target = *value;
    return {};
  }
  if (kind == "test") {
    if (!tokens)
      return fail(
          fmt::format("test operation does not apply: is missing path: {}: missing value", *path));
    const json::value* target = nullptr;
    if (tokens->empty()) {
      target = &doc;
    } else {
      json::value* parent = parent_of(doc, *tokens);
      if (parent == nullptr) {
        return fail(fmt::format("test operation does not apply: is missing path: {}: missing value",
                                *path));
      }
      target = child_at(*parent, tokens->back());
    }
    if (target == nullptr || !(*target == *value)) {
      return fail(fmt::format("testing value {} failed: test failed", *path));
    }
    return {};
  }

  // move and copy
  auto from = string_member(op, "from", kind, "from");
  if (!from) {
    return fail(fmt::format(
        "{} operation failed to decode from: operation, missing from field: missing value", kind));
  }
  auto from_tokens = parse_pointer(*from);
  const auto from_missing = fmt::format(
      "{} operation does not apply: doc is missing from path: {}: missing value", kind, *from);
  if (!from_tokens) return fail(from_missing);
  if (!tokens) {
    return fail(fmt::format(
        "{} operation does not apply: doc is missing destination path: {}: missing value", kind,
        *path));
  }
  json::value moved;
  if (from_tokens->empty()) {
    if (kind == "move" && !tokens->empty()) {
      return fail(fmt::format("move operation does not apply: cannot move {} into its own child {}",
                              *from, *path));
    }
    copied += json::serialize(doc).size();
    if (copied > kMaxCopyBytes) return fail(copy_too_large(copied));
    moved = doc;
  } else {
    json::value* parent = parent_of(doc, *from_tokens);
    if (parent == nullptr) return fail(from_missing);
    json::value* source = child_at(*parent, from_tokens->back());
    if (source == nullptr) {
      if (kind == "copy")
        return fail(fmt::format("error in copy for from: '{}': missing value", *from));
      const std::string& key = from_tokens->back();
      std::string why;
      if (parent->is_object()) {
        why = fmt::format("Unable to remove nonexistent key: {}: missing value", key);
      } else if (auto idx = atoi(key)) {
        why = invalid_index(*idx);
      } else {
        why = fmt::format("strconv.Atoi: parsing \"{}\": invalid syntax", key);
      }
      return fail(fmt::format("error in move for path: '{}': {}", key, why));
    }
    if (kind == "move") {
      if (*path == *from) return {};
      if (path->starts_with(*from + "/")) {
        return fail(fmt::format(
            "move operation does not apply: cannot move {} into its own child {}", *from, *path));
      }
      moved = std::move(*source);
      if (auto st = remove_at(*parent, from_tokens->back()); !st) {
        return fail(
            fmt::format("error in move for path: '{}': {}", from_tokens->back(), st.error()));
      }
    } else {
      copied += json::serialize(*source).size();
      if (copied > kMaxCopyBytes) return fail(copy_too_large(copied));
      moved = *source;
    }
  }
  if (auto st = check_depth(kind, *tokens, moved, max_depth); !st) return st;
  if (tokens->empty()) {
    doc = std::move(moved);
    return {};
  }
  json::value* dest = parent_of(doc, *tokens);
  if (dest == nullptr) {
    return fail(fmt::format(
        "{} operation does not apply: doc is missing destination path: {}: missing value", kind,
        *path));
  }
  if (auto st = add_at(*dest, tokens->back(), std::move(moved)); !st) {
    if (kind == "copy") return fail("error while adding value during copy: " + st.error());
    return fail(fmt::format("error in move for path: '{}': {}", *path, st.error()));
  }
  return {};
}

// ---------------------------------------------------------------------------------------
// JSON Merge Patch (RFC 7386)

Status merge_into(json::value& target, const json::value& patch, int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  if (!patch.is_object()) {
    target = patch;
    return {};
  }
  if (!target.is_object()) target = json::object();
  json::object& t = target.get_object();
  for (const auto& kv : patch.get_object()) {
    if (kv.value().is_null()) {
      stable_erase(t, kv.key());
      continue;
    }
    auto it = t.find(kv.key());
    if (it == t.end()) {
      json::value fresh;
      if (auto st = merge_into(fresh, kv.value(), depth + 1); !st) return st;
      t.emplace(kv.key(), std::move(fresh));
    } else {
      if (auto st = merge_into(it->value(), kv.value(), depth + 1); !st) return st;
    }
  }
  return {};
}

std::expected<json::value, std::string> diff_merge(const json::value& original,
                                                   const json::value& modified, int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  if (!original.is_object() || !modified.is_object()) return modified;
  json::object out;
  const json::object& o = original.get_object();
  for (const auto& kv : modified.get_object()) {
    auto it = o.find(kv.key());
    if (it == o.end()) {
      out.emplace(kv.key(), kv.value());
    } else if (!(it->value() == kv.value())) {
      if (it->value().is_object() && kv.value().is_object()) {
        auto sub = diff_merge(it->value(), kv.value(), depth + 1);
        if (!sub) return sub;
        out.emplace(kv.key(), std::move(*sub));
      } else {
        out.emplace(kv.key(), kv.value());
      }
    }
  }
  for (const auto& kv : o) {
    if (!modified.get_object().contains(kv.key())) out.emplace(kv.key(), nullptr);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Strategic Merge Patch

constexpr std::string_view kDirectiveMarker = "$patch";
constexpr std::string_view kDeleteDirective = "delete";
constexpr std::string_view kReplaceDirective = "replace";
constexpr std::string_view kMergeDirective = "merge";
constexpr std::string_view kRetainKeysDirective = "$retainKeys";
constexpr std::string_view kDeleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList";
constexpr std::string_view kSetElementOrderPrefix = "$setElementOrder";

constexpr std::string_view kErrBadJsonDoc = "invalid JSON document";
constexpr std::string_view kErrNoListOfLists = "lists of lists are not supported";
constexpr std::string_view kErrBadPrimitiveList = "invalid patch format of primitive list";
constexpr std::string_view kErrBadRetainKeys = "invalid patch format of retainKeys";
constexpr std::string_view kErrBadSetElementOrder = "invalid patch format of setElementOrder list";

struct Strategy {
  bool retain_keys = false;
  std::string main;  // "", "merge" or "replace"
};

// Splits "merge,retainKeys" like upstream extractRetainKeysPatchStrategy.
std::expected<Strategy, std::string> parse_strategy(std::string_view s) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (!s.empty()) {
    const std::size_t comma = s.find(',', start);
    parts.push_back(s.substr(start, comma == std::string_view::npos ? s.npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  auto unexpected = [&] {
    std::string list;
    for (std::size_t i = 0; i < parts.size(); ++i) list += (i ? " " : "") + std::string(parts[i]);
    return fail(fmt::format("unexpected patch strategy: [{}]", list));
  };
  Strategy out;
  switch (parts.size()) {
    case 0:
      return out;
    case 1:
      if (parts[0] == "retainKeys") {
        out.retain_keys = true;
      } else {
        out.main = std::string(parts[0]);
      }
      return out;
    case 2:
      if (parts[0] == "retainKeys") {
        out.retain_keys = true;
        out.main = std::string(parts[1]);
      } else if (parts[1] == "retainKeys") {
        out.retain_keys = true;
        out.main = std::string(parts[0]);
      } else {
        return unexpected();
      }
      return out;
    default:
      return unexpected();
  }
}

struct FieldMeta {
  const PatchMeta* meta = nullptr;
  Strategy strategy;
  std::string merge_key;
};

std::expected<FieldMeta, std::string> field_meta(const PatchMeta* parent, std::string_view name) {
  FieldMeta fm;
  if (parent == nullptr) return fm;
  fm.meta = parent->field(name);
  if (fm.meta == nullptr) return fm;
  auto s = parse_strategy(fm.meta->patch_strategy());
  if (!s) return fail(s.error());
  fm.strategy = std::move(*s);
  fm.merge_key = std::string(fm.meta->patch_merge_key());
  return fm;
}

const PatchMeta* items_of(const PatchMeta* m) { return m == nullptr ? nullptr : m->items(); }

bool is_directive_key(std::string_view k) {
  return k == kDirectiveMarker || k == kRetainKeysDirective ||
         k.starts_with(kDeleteFromPrimitiveListPrefix) || k.starts_with(kSetElementOrderPrefix);
}

bool has_directive_marker(const json::value& v) {
  const json::object* o = v.if_object();
  return o != nullptr && o->contains(kDirectiveMarker);
}

// Makes a patch fragment that lands where nothing can be merged into (a new key, a replaced
// value) fit for the result: directive keys go, null members go (the apiserver ignores
// unmatched nulls), "$patch: delete" maps become {}, and list items that are only
// directives ("$patch": delete/replace/merge) are dropped.
Status strip(json::value& v, int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  if (json::object* o = v.if_object()) {
    if (auto it = o->find(kDirectiveMarker); it != o->end()) {
      if (it->value().is_string() && it->value().get_string() == kDeleteDirective) {
        *o = json::object();
        return {};
      }
    }
    filter_members(*o, [](const json::key_value_pair& kv) {
      return !is_directive_key(kv.key()) && !kv.value().is_null();
    });
    for (auto& kv : *o) {
      if (auto st = strip(kv.value(), depth + 1); !st) return st;
    }
  } else if (json::array* a = v.if_array()) {
    json::array out(a->storage());
    out.reserve(a->size());
    for (auto& e : *a) {
      if (has_directive_marker(e)) {
        const json::value& d = e.get_object().at(kDirectiveMarker);
        if (d.is_string() &&
            (d.get_string() == kDeleteDirective || d.get_string() == kReplaceDirective ||
             d.get_string() == kMergeDirective)) {
          continue;
        }
      }
      if (auto st = strip(e, depth + 1); !st) return st;
      out.push_back(std::move(e));
    }
    *a = std::move(out);
  }
  return {};
}

std::expected<json::value, std::string> stripped(const json::value& v, int depth) {
  json::value out = v;
  if (auto st = strip(out, depth); !st) return fail(st.error());
  return out;
}

// reflect.Kind of the elements of some lists: all must agree and none be a list.
enum class ElemKind { kNone, kMap, kOther };

std::expected<ElemKind, std::string> slice_element_kind(
    std::initializer_list<const json::array*> lists) {
  const json::value* first = nullptr;
  for (const json::array* l : lists) {
    if (l == nullptr) continue;
    for (const json::value& v : *l) {
      if (first == nullptr) {
        first = &v;
        if (v.is_array()) return fail(std::string(kErrNoListOfLists));
      } else if (!same_go_type(*first, v)) {
        std::string all = "[";
        bool f = true;
        for (const json::array* l2 : lists) {
          if (!f) all += ' ';
          f = false;
          all += l2 == nullptr ? "[]" : go_fmt(json::value(*l2));
        }
        return fail(fmt::format("list element types are not identical: {}]", all));
      }
    }
  }
  if (first == nullptr) return ElemKind::kNone;
  return first->is_object() ? ElemKind::kMap : ElemKind::kOther;
}

// The merge key's value of a list item: a missing key or a non-map compares as nil, as the
// Go code's interface comparisons do.
const json::value& merge_key_value(const json::value& item, std::string_view merge_key) {
  static const json::value kNil;
  const json::object* o = item.if_object();
  if (o == nullptr) return kNil;
  auto it = o->find(merge_key);
  return it == o->end() ? kNil : it->value();
}

// upstream index(): position of val in l, comparing merge keys for maps.
std::ptrdiff_t index_of(const json::array& l, const json::value& val, std::string_view merge_key,
                        ElemKind kind) {
  for (std::size_t i = 0; i < l.size(); ++i) {
    const bool eq = kind == ElemKind::kMap
                        ? merge_key_value(val, merge_key) == merge_key_value(l[i], merge_key)
                        : val == l[i];
    if (eq) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

Status validate_merge_key_in_lists(std::string_view merge_key,
                                   std::initializer_list<const json::array*> lists) {
  for (const json::array* l : lists) {
    for (const json::value& item : *l) {
      if (!item.is_object()) return fail(err_bad_arg_type("map[string]interface {}", item));
      if (!item.get_object().contains(merge_key)) return fail(err_no_merge_key(item, merge_key));
    }
  }
  return {};
}

// Sorts to_sort by the positions of its items in order (items not in order go last),
// keeping "$patch: delete" items at the end (upstream normalizeSliceOrder).
std::expected<json::array, std::string> normalize_slice_order(json::array to_sort,
                                                              const json::array& order,
                                                              std::string_view merge_key,
                                                              ElemKind kind) {
  json::array to_delete;
  if (kind == ElemKind::kMap) {
    if (auto st = validate_merge_key_in_lists(merge_key, {&to_sort, &order}); !st)
      return fail(st.error());
    json::array keep;
    for (auto& v : to_sort) {
      const json::value* d = v.get_object().if_contains(kDirectiveMarker);
      if (d != nullptr && d->is_string() && d->get_string() == kDeleteDirective) {
        to_delete.push_back(std::move(v));
      } else {
        keep.push_back(std::move(v));
      }
    }
    to_sort = std::move(keep);
  }
  std::vector<std::pair<std::size_t, std::size_t>> keyed;  // (position in order, original index)
  keyed.reserve(to_sort.size());
  for (std::size_t i = 0; i < to_sort.size(); ++i) {
    const std::ptrdiff_t p = index_of(order, to_sort[i], merge_key, kind);
    keyed.emplace_back(p < 0 ? order.size() : static_cast<std::size_t>(p), i);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json::array out;
  out.reserve(to_sort.size() + to_delete.size());
  for (const auto& [pos, i] : keyed) out.push_back(std::move(to_sort[i]));
  for (auto& v : to_delete) out.push_back(std::move(v));
  return out;
}

// upstream mergeSortedSlice: interleaves server-only items (left) into patch items (right)
// using their order in the live list.
json::array merge_sorted_slice(json::array left, json::array right, const json::array& server_order,
                               std::string_view merge_key, ElemKind kind) {
  json::array out;
  out.reserve(left.size() + right.size());
  std::size_t i = 0, j = 0;
  while (i < left.size() || j < right.size()) {
    if (i >= left.size()) {
      out.push_back(std::move(right[j++]));
    } else if (j >= right.size()) {
      out.push_back(std::move(left[i++]));
    } else {
      const auto li = index_of(server_order, left[i], merge_key, kind);
      const auto ri = index_of(server_order, right[j], merge_key, kind);
      if (li >= 0 && ri >= 0 && li < ri) {
        out.push_back(std::move(left[i++]));
      } else {
        out.push_back(std::move(right[j++]));
      }
    }
  }
  return out;
}

std::expected<json::array, std::string> normalize_element_order(
    json::array patch_items, json::array server_only, const json::array& patch_order,
    const json::array& server_order, std::string_view merge_key, ElemKind kind) {
  auto p = normalize_slice_order(std::move(patch_items), patch_order, merge_key, kind);
  if (!p) return p;
  auto s = normalize_slice_order(std::move(server_only), server_order, merge_key, kind);
  if (!s) return s;
  return merge_sorted_slice(std::move(*s), std::move(*p), server_order, merge_key, kind);
}

// Index of the map in l whose merge key equals value; errors when l holds a non-map.
std::expected<std::ptrdiff_t, std::string> find_map_by_key(const json::array& l,
                                                           std::string_view merge_key,
                                                           const json::value& value) {
  for (std::size_t k = 0; k < l.size(); ++k) {
    const json::object* m = l[k].if_object();
    if (m == nullptr) return fail(fmt::format("value for key {} is not a map.", k));
    auto it = m->find(merge_key);
    if (it != m->end() && it->value() == value) return static_cast<std::ptrdiff_t>(k);
  }
  return -1;
}

// Splits merged into (items present in by, the others).
std::expected<std::pair<json::array, json::array>, std::string> partition_by_presence(
    json::array merged, const json::array& by, std::string_view merge_key, bool maps) {
  json::array in, out;
  for (auto& v : merged) {
    bool found = false;
    if (maps) {
      const json::object* m = v.if_object();
      if (m == nullptr) return fail(err_bad_arg_type("map[string]interface {}", v));
      auto it = m->find(merge_key);
      if (it == m->end()) return fail(err_no_merge_key(v, merge_key));
      auto idx = find_map_by_key(by, merge_key, it->value());
      if (!idx) return fail(idx.error());
      found = *idx >= 0;
    } else {
      found = std::find(by.begin(), by.end(), v) != by.end();
    }
    (found ? in : out).push_back(std::move(v));
  }
  return std::pair{std::move(in), std::move(out)};
}

class StrategicMerger {
 public:
  Status merge_map(json::object& original, const json::object& patch, const PatchMeta* meta,
                   int depth);

 private:
  std::expected<json::array, std::string> merge_slice(json::array original,
                                                      const json::array& patch,
                                                      const PatchMeta* item_meta,
                                                      std::string_view merge_key,
                                                      bool is_delete_list, int depth);
  std::expected<json::array, std::string> merge_slice_handler(json::array original,
                                                              const json::array& patch,
                                                              const FieldMeta& fm,
                                                              bool is_delete_list, int depth);
  Status apply_set_element_order(json::object& original, const json::object& patch,
                                 const PatchMeta* meta, std::vector<std::string>& handled,
                                 int depth);
};

std::string extract_key(std::string_view key, std::string_view prefix, bool* ok) {
  const std::size_t slash = key.find('/');
  *ok = slash != std::string_view::npos && key.substr(0, slash) == prefix;
  return *ok ? std::string(key.substr(slash + 1)) : std::string();
}

Status validate_patch_with_set_order_list(const json::array* patch_list,
                                          const json::array& set_order,
                                          std::string_view merge_key) {
  if (patch_list == nullptr || patch_list->empty() || set_order.empty()) return {};
  json::array non_delete;
  if (!merge_key.empty()) {
    for (const auto& v : *patch_list) {
      if (!v.is_object()) return fail(err_bad_arg_type("map[string]interface {}", v));
      const json::value* d = v.get_object().if_contains(kDirectiveMarker);
      if (!(d != nullptr && d->is_string() && d->get_string() == kDeleteDirective))
        non_delete.push_back(v);
    }
  } else {
    non_delete = *patch_list;
  }
  std::size_t p = 0, s = 0;
  while (p < non_delete.size() && s < set_order.size()) {
    if (has_directive_marker(non_delete[p])) {
      ++p;
      continue;
    }
    bool equal = false;
    if (merge_key.empty()) {
      equal = non_delete[p] == set_order[s];
    } else {
      for (const json::value* v :
           {static_cast<const json::value*>(&non_delete[p]), &set_order[s]}) {
        if (!v->is_object()) return fail(err_bad_arg_type("map[string]interface {}", *v));
        if (!v->get_object().contains(merge_key)) return fail(err_no_merge_key(*v, merge_key));
      }
      equal = non_delete[p].get_object().at(merge_key) == set_order[s].get_object().at(merge_key);
    }
    if (equal) ++p;
    ++s;
  }
  if (p < non_delete.size() && s >= set_order.size()) {
    return fail(fmt::format("The order in patch list:\n{}\n doesn't match {} list:\n{}\n",
                            go_fmt(json::value(*patch_list)), kSetElementOrderPrefix,
                            go_fmt(json::value(set_order))));
  }
  return {};
}

std::expected<json::array, std::string> StrategicMerger::merge_slice_handler(
    json::array original, const json::array& patch, const FieldMeta& fm, bool is_delete_list,
    int depth) {
  if (fm.strategy.main == kMergeDirective || is_delete_list) {
    return merge_slice(std::move(original), patch, items_of(fm.meta), fm.merge_key, is_delete_list,
                       depth);
  }
  // Any other strategy replaces the list.
  json::value v = patch;
  if (auto st = strip(v, depth); !st) return fail(st.error());
  return std::move(v.get_array());
}

std::expected<json::array, std::string> StrategicMerger::merge_slice(
    json::array original, const json::array& patch, const PatchMeta* item_meta,
    std::string_view merge_key, bool is_delete_list, int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  if (original.empty() && patch.empty()) return original;
  auto kind = slice_element_kind({&original, &patch});
  if (!kind) return fail(kind.error());

  json::array merged;
  json::array patch_items = patch;  // the patch without special elements
  if (*kind != ElemKind::kMap) {
    if (is_delete_list) {
      json::array kept;
      for (auto& v : original) {
        if (std::find(patch.begin(), patch.end(), v) == patch.end()) kept.push_back(std::move(v));
      }
      return kept;
    }
    merged = original;
    for (const auto& v : patch) {
      if (std::find(merged.begin(), merged.end(), v) == merged.end()) merged.push_back(v);
    }
  } else {
    if (merge_key.empty()) return fail("cannot merge lists without merge key for type map");
    // Special elements: "$patch: delete" items delete by key, "$patch: replace" replaces.
    json::array without_special;
    bool replace = false;
    for (const auto& v : patch) {
      const json::object& m = v.get_object();
      auto d = m.find(kDirectiveMarker);
      if (d == m.end()) {
        without_special.push_back(v);
        continue;
      }
      const json::value& directive = d->value();
      if (directive.is_string() && directive.get_string() == kDeleteDirective) {
        auto key = m.find(merge_key);
        if (key == m.end()) return fail(err_no_merge_key(v, merge_key));
        while (true) {
          auto idx = find_map_by_key(original, merge_key, key->value());
          if (!idx) return fail(idx.error());
          if (*idx < 0) break;
          original.erase(original.begin() + *idx);
        }
      } else if (directive.is_string() && directive.get_string() == kReplaceDirective) {
        replace = true;
      } else if (directive.is_string() && directive.get_string() == kMergeDirective) {
        // Merging is the default; upstream rejects this spelling, it is accepted here.
      } else {
        return fail(fmt::format("unknown patch type: {} in map: {}", go_fmt(directive), go_fmt(v)));
      }
    }
    if (replace) {
      original = std::move(without_special);
      for (auto& v : original) {
        if (auto st = strip(v, depth + 1); !st) return fail(st.error());
      }
      patch_items = json::array();
    } else {
      patch_items = std::move(without_special);
    }
    merged = original;
    for (const auto& v : patch_items) {
      auto key = v.get_object().find(merge_key);
      if (key == v.get_object().end()) return fail(err_no_merge_key(v, merge_key));
      auto idx = find_map_by_key(merged, merge_key, key->value());
      if (!idx) return fail(idx.error());
      if (*idx >= 0) {
        json::value& target = merged[static_cast<std::size_t>(*idx)];
        if (auto st = merge_map(target.get_object(), v.get_object(), item_meta, depth + 1); !st) {
          return fail(st.error());
        }
      } else {
        auto fresh = stripped(v, depth + 1);
        if (!fresh) return fail(fresh.error());
        merged.push_back(std::move(*fresh));
      }
    }
  }
  // Enforce the order: patch items in patch order, server-only items in live order.
  const bool maps = *kind == ElemKind::kMap;
  auto parts = partition_by_presence(std::move(merged), patch_items, merge_key, maps);
  if (!parts) return fail(parts.error());
  return normalize_element_order(std::move(parts->first), std::move(parts->second), patch_items,
                                 original, merge_key, *kind);
}

Status StrategicMerger::apply_set_element_order(json::object& original, const json::object& patch,
                                                const PatchMeta* meta,
                                                std::vector<std::string>& handled, int depth) {
  for (const auto& kv : patch) {
    const std::string_view key = kv.key();
    if (!key.starts_with(kSetElementOrderPrefix)) continue;
    const json::array* order = kv.value().if_array();
    if (order == nullptr) return fail(err_bad_arg_type("[]interface {}", kv.value()));
    bool ok = false;
    const std::string field = extract_key(key, kSetElementOrderPrefix, &ok);
    if (!ok) return fail(std::string(kErrBadSetElementOrder));

    const json::array* original_list = nullptr;
    const json::array* patch_list = nullptr;
    auto oit = original.find(field);
    if (oit != original.end()) {
      original_list = oit->value().if_array();
      if (original_list == nullptr) return fail(err_bad_arg_type("[]interface {}", oit->value()));
    }
    if (auto pit = patch.find(field); pit != patch.end()) {
      patch_list = pit->value().if_array();
      if (patch_list == nullptr) return fail(err_bad_arg_type("[]interface {}", pit->value()));
    }
    auto fm = field_meta(meta, field);
    if (!fm) return fail(fm.error());
    if (auto st = validate_patch_with_set_order_list(patch_list, *order, fm->merge_key); !st)
      return st;
    handled.push_back(field);
    if (original_list == nullptr && patch_list == nullptr) continue;

    json::array original_copy = original_list != nullptr ? *original_list : json::array();
    json::array merged;
    if (original_list != nullptr && patch_list != nullptr) {
      auto m = merge_slice_handler(original_copy, *patch_list, *fm, false, depth + 1);
      if (!m) return fail(m.error());
      merged = std::move(*m);
    } else if (original_list != nullptr) {
      merged = original_copy;
    } else {
      json::value v = *patch_list;
      if (auto st = strip(v, depth + 1); !st) return st;
      merged = std::move(v.get_array());
    }
    if (!merged.empty()) {
      auto kind = slice_element_kind({original_list, patch_list});
      if (!kind) return fail(kind.error());
      const bool maps = !fm->merge_key.empty();
      auto parts = partition_by_presence(std::move(merged), *order, fm->merge_key, maps);
      if (!parts) return fail(parts.error());
      auto both = normalize_element_order(
          std::move(parts->first), std::move(parts->second), *order, original_copy, fm->merge_key,
          *kind == ElemKind::kMap ? ElemKind::kMap : ElemKind::kOther);
      if (!both) return fail(both.error());
      merged = std::move(*both);
    }
    original.insert_or_assign(field, std::move(merged));
  }
  return {};
}

Status StrategicMerger::merge_map(json::object& original, const json::object& patch,
                                  const PatchMeta* meta, int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  if (auto d = patch.find(kDirectiveMarker); d != patch.end()) {
    const json::value& directive = d->value();
    const bool is_string = directive.is_string();
    if (is_string && directive.get_string() == kReplaceDirective) {
      json::value v = patch;
      stable_erase(v.get_object(), kDirectiveMarker);
      if (auto st = strip(v, depth); !st) return st;
      original = std::move(v.get_object());
      return {};
    }
    if (is_string && directive.get_string() == kDeleteDirective) {
      original = json::object();
      return {};
    }
    if (!(is_string && directive.get_string() == kMergeDirective)) {
      return fail(fmt::format("unknown patch type: {} in map: {}", go_fmt(directive),
                              go_fmt(json::value(patch))));
    }
    // "$patch: merge" is the default behaviour (upstream rejects it for maps).
  }

  // $retainKeys: drop what the list does not name; every patched key must be named.
  if (auto rk = patch.find(kRetainKeysDirective); rk != patch.end()) {
    const json::array* keep = rk->value().if_array();
    if (keep == nullptr) return fail(std::string(kErrBadRetainKeys));
    auto listed = [&](std::string_view k) {
      return std::any_of(keep->begin(), keep->end(), [&](const json::value& v) {
        return v.is_string() && v.get_string() == k;
      });
    };
    for (const auto& kv : patch) {
      const std::string_view k = kv.key();
      if (kv.value().is_null() || is_directive_key(k)) continue;
      if (!listed(k)) return fail(std::string(kErrBadRetainKeys));
    }
    filter_members(original, [&](const json::key_value_pair& kv) { return listed(kv.key()); });
  }

  std::vector<std::string> handled;  // list fields already merged by $setElementOrder
  if (auto st = apply_set_element_order(original, patch, meta, handled, depth); !st) return st;

  for (const auto& kv : patch) {
    std::string_view k = kv.key();
    if (k == kDirectiveMarker || k == kRetainKeysDirective || k.starts_with(kSetElementOrderPrefix))
      continue;
    if (std::find(handled.begin(), handled.end(), k) != handled.end()) continue;
    bool is_delete_list = false;
    std::string unprefixed;
    if (k.starts_with(kDeleteFromPrimitiveListPrefix)) {
      bool ok = false;
      unprefixed = extract_key(k, kDeleteFromPrimitiveListPrefix, &ok);
      if (!ok) return fail(std::string(kErrBadPrimitiveList));
      is_delete_list = true;
      k = unprefixed;
    }
    const json::value& pv = kv.value();
    if (pv.is_null()) {
      stable_erase(original, k);  // unmatched nulls are ignored
      continue;
    }
    auto it = original.find(k);
    if (it == original.end() || !same_go_type(it->value(), pv)) {
      if (!is_delete_list) {
        auto fresh = stripped(pv, depth + 1);
        if (!fresh) return fail(fresh.error());
        original.insert_or_assign(k, std::move(*fresh));
      }
      continue;
    }
    json::value& ov = it->value();
    if (ov.is_object()) {
      auto fm = field_meta(meta, k);
      if (!fm) return fail(fm.error());
      if (fm->strategy.main == kReplaceDirective) {
        auto fresh = stripped(pv, depth + 1);
        if (!fresh) return fail(fresh.error());
        ov = std::move(*fresh);
      } else if (auto st = merge_map(ov.get_object(), pv.get_object(), fm->meta, depth + 1); !st) {
        return st;
      }
    } else if (ov.is_array()) {
      auto fm = field_meta(meta, k);
      if (!fm) return fail(fm.error());
      auto merged = merge_slice_handler(std::move(ov.get_array()), pv.get_array(), *fm,
                                        is_delete_list, depth + 1);
      if (!merged) return fail(merged.error());
      ov = std::move(*merged);
    } else if (!is_delete_list) {
      ov = pv;
    }
  }
  return {};
}

// --- two-way diff (CreateTwoWayMergePatch) ---

struct DiffOptions {
  bool build_retain_keys = false;
};

std::expected<json::object, std::string> diff_maps(const json::object& original,
                                                   const json::object& modified,
                                                   const PatchMeta* meta, DiffOptions opts,
                                                   int depth);

// Go's sortScalars: by the %v text of each value (stable here).
json::array sort_scalars(json::array a) {
  std::vector<std::pair<std::string, std::size_t>> keyed;
  for (std::size_t i = 0; i < a.size(); ++i) keyed.emplace_back(go_fmt(a[i]), i);
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  json::array out;
  for (const auto& [s, i] : keyed) out.push_back(std::move(a[i]));
  return out;
}

std::expected<std::pair<json::array, json::array>, std::string> diff_lists_of_maps(
    const json::array& original, const json::array& modified, const PatchMeta* item_meta,
    std::string_view merge_key, DiffOptions opts, int depth) {
  auto sorted =
      [&](const json::array& l) -> std::expected<std::vector<const json::object*>, std::string> {
    std::vector<std::pair<std::string, const json::object*>> keyed;
    for (const auto& v : l) {
      const json::object* m = v.if_object();
      if (m == nullptr) return fail(err_bad_arg_type("map[string]interface {}", v));
      auto it = m->find(merge_key);
      if (it == m->end()) return fail(err_no_merge_key(v, merge_key));
      keyed.emplace_back(go_fmt(it->value()), m);
    }
    std::stable_sort(keyed.begin(), keyed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<const json::object*> out;
    for (auto& [k, m] : keyed) out.push_back(m);
    return out;
  };
  auto os = sorted(original);
  if (!os) return fail(os.error());
  auto ms = sorted(modified);
  if (!ms) return fail(ms.error());
  json::array patch, deletions;
  std::size_t oi = 0, mi = 0;
  while (oi < os->size() || mi < ms->size()) {
    const bool o_in = oi < os->size(), m_in = mi < ms->size();
    std::string ok, mk;
    if (o_in) ok = go_fmt((*os)[oi]->at(merge_key));
    if (m_in) mk = go_fmt((*ms)[mi]->at(merge_key));
    if (o_in && m_in && ok == mk) {
      auto p = diff_maps(*(*os)[oi], *(*ms)[mi], item_meta, opts, depth + 1);
      if (!p) return fail(p.error());
      if (!p->empty()) {
        p->insert_or_assign(merge_key, (*ms)[mi]->at(merge_key));
        patch.push_back(std::move(*p));
      }
      ++oi;
      ++mi;
    } else if (!o_in || (m_in && ok > mk)) {
      patch.push_back(*(*ms)[mi]);  // added
      ++mi;
    } else {
      json::object del;
      del.emplace(merge_key, (*os)[oi]->at(merge_key));
      del.emplace(kDirectiveMarker, kDeleteDirective);
      deletions.push_back(std::move(del));
      ++oi;
    }
  }
  return std::pair{std::move(patch), std::move(deletions)};
}

std::pair<json::array, json::array> diff_lists_of_scalars(const json::array& original,
                                                          const json::array& modified) {
  const json::array os = sort_scalars(original), ms = sort_scalars(modified);
  json::array add, del;
  std::size_t oi = 0, mi = 0;
  while (oi < os.size() || mi < ms.size()) {
    const bool o_in = oi < os.size(), m_in = mi < ms.size();
    const std::string ov = o_in ? go_fmt(os[oi]) : std::string();
    const std::string mv = m_in ? go_fmt(ms[mi]) : std::string();
    if (o_in && m_in && ov == mv) {
      ++oi;
      ++mi;
    } else if (!o_in || (m_in && ov > mv)) {
      add.push_back(ms[mi++]);
    } else {
      if (std::find(del.begin(), del.end(), os[oi]) == del.end()) del.push_back(os[oi]);
      ++oi;
    }
  }
  return {std::move(add), std::move(del)};
}

struct ListDiff {
  json::array patch, deletions, order;
};

std::expected<ListDiff, std::string> diff_lists(const json::array& original,
                                                const json::array& modified,
                                                const PatchMeta* item_meta,
                                                std::string_view merge_key, DiffOptions opts,
                                                int depth) {
  ListDiff out;
  if (original.empty()) {
    out.patch = modified;
    return out;
  }
  auto kind = slice_element_kind({&original, &modified});
  if (!kind) return fail(kind.error());
  if (*kind == ElemKind::kMap) {
    auto d = diff_lists_of_maps(original, modified, item_meta, merge_key, opts, depth);
    if (!d) return fail(d.error());
    auto sorted = normalize_slice_order(std::move(d->first), modified, merge_key, *kind);
    if (!sorted) return fail(sorted.error());
    bool order_same = original.size() == modified.size();
    for (std::size_t i = 0; order_same && i < modified.size(); ++i) {
      order_same = original[i].get_object().at(merge_key) == modified[i].get_object().at(merge_key);
    }
    out.patch = std::move(*sorted);
    for (auto& v : d->second) out.patch.push_back(std::move(v));
    if (!out.patch.empty() || !order_same) {
      for (const auto& v : modified) {
        json::object o;
        o.emplace(merge_key, v.get_object().at(merge_key));
        out.order.push_back(std::move(o));
      }
    }
  } else {
    auto [add, del] = diff_lists_of_scalars(original, modified);
    auto sorted = normalize_slice_order(std::move(add), modified, "", *kind);
    if (!sorted) return fail(sorted.error());
    out.patch = std::move(*sorted);
    if (!del.empty() || !(original == modified)) out.order = modified;
    out.deletions = std::move(del);
  }
  return out;
}

std::expected<json::object, std::string> diff_maps(const json::object& original,
                                                   const json::object& modified,
                                                   const PatchMeta* meta, DiffOptions opts,
                                                   int depth) {
  if (depth > kMaxDepth) return fail(std::string(kTooDeep));
  json::object patch;
  json::array retain;
  for (const auto& kv : modified) {
    const std::string_view key = kv.key();
    const json::value& mv = kv.value();
    if (opts.build_retain_keys && !mv.is_null()) retain.emplace_back(key);
    auto it = original.find(key);
    if (it == original.end()) {
      patch.insert_or_assign(key, mv);
      continue;
    }
    const json::value& ov = it->value();
    if (key == kDirectiveMarker) {
      if (!ov.is_string() || !mv.is_string()) return fail("invalid value for special key: $patch");
      if (!(ov == mv)) patch.insert_or_assign(key, mv);
      continue;
    }
    if (!same_go_type(ov, mv)) {
      patch.insert_or_assign(key, mv);
      continue;
    }
    if (ov.is_object()) {
      auto fm = field_meta(meta, key);
      if (!fm) return fail(fm.error());
      if (fm->strategy.main == kReplaceDirective) {
        if (!(ov == mv)) patch.insert_or_assign(key, mv);
        continue;
      }
      auto sub = diff_maps(ov.get_object(), mv.get_object(), fm->meta,
                           DiffOptions{fm->strategy.retain_keys}, depth + 1);
      if (!sub) return sub;
      if (!sub->empty()) patch.insert_or_assign(key, std::move(*sub));
    } else if (ov.is_array()) {
      auto fm = field_meta(meta, key);
      if (!fm) return fail(fm.error());
      if (fm->strategy.main != kMergeDirective) {
        if (!(ov == mv)) patch.insert_or_assign(key, mv);
        continue;
      }
      auto d = diff_lists(ov.get_array(), mv.get_array(), items_of(fm->meta), fm->merge_key,
                          DiffOptions{fm->strategy.retain_keys}, depth + 1);
      if (!d) return fail(d.error());
      if (!d->patch.empty()) patch.insert_or_assign(key, std::move(d->patch));
      if (!d->deletions.empty()) {
        patch.insert_or_assign(fmt::format("{}/{}", kDeleteFromPrimitiveListPrefix, key),
                               std::move(d->deletions));
      }
      if (!d->order.empty()) {
        patch.insert_or_assign(fmt::format("{}/{}", kSetElementOrderPrefix, key),
                               std::move(d->order));
      }
    } else if (!(ov == mv)) {
      patch.insert_or_assign(key, mv);
    }
  }
  bool additional_in_original = false;
  for (const auto& kv : original) {
    if (!modified.contains(kv.key())) {
      patch.insert_or_assign(kv.key(), nullptr);
      if (!kv.value().is_null()) additional_in_original = true;
    }
  }
  if (!retain.empty() && (!patch.empty() || additional_in_original)) {
    patch.insert_or_assign(kRetainKeysDirective, sort_scalars(std::move(retain)));
  }
  return patch;
}

template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(std::string("internal error while patching: ") + e.what());
  } catch (...) {
    return fail("internal error while patching");
  }
}

}  // namespace

std::expected<json::value, std::string> apply_json_patch(const json::value& doc,
                                                         const json::value& patch) {
  return guarded([&]() -> std::expected<json::value, std::string> {
    if (patch.is_null()) return doc;
    const json::array* ops = patch.if_array();
    if (ops == nullptr) {
      return fail(fmt::format("json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                              json_kind_name(patch)));
    }
    json::value result = doc;
    std::size_t copied = 0;  // bytes duplicated by copy operations so far
    // A document deeper than parse_json allows (from a caller, not a request) may keep its depth.
    const int max_depth = std::max(kMaxDocumentDepth, nesting(doc, kMaxDepth));
    for (const json::value& op : *ops) {
      const json::object* o = op.if_object();
      if (o == nullptr) {
        if (op.is_null()) return fail("Unexpected kind: unknown");
        return fail(
            fmt::format("json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                        json_kind_name(op)));
      }
      if (auto st = apply_operation(result, *o, copied, max_depth); !st) return fail(st.error());
    }
    return result;
  });
}

std::expected<json::value, std::string> apply_merge_patch(const json::value& doc,
                                                          const json::value& patch) {
  return guarded([&]() -> std::expected<json::value, std::string> {
    json::value result = doc;
    if (auto st = merge_into(result, patch, 0); !st) return fail(st.error());
    return result;
  });
}

std::expected<json::value, std::string> create_merge_patch(const json::value& original,
                                                           const json::value& modified) {
  return guarded([&]() { return diff_merge(original, modified, 0); });
}

std::expected<json::value, std::string> apply_strategic_merge_patch(const json::value& doc,
                                                                    const json::value& patch,
                                                                    const PatchMeta* meta) {
  return guarded([&]() -> std::expected<json::value, std::string> {
    if (!doc.is_object() && !doc.is_null()) return fail(std::string(kErrBadJsonDoc));
    if (!patch.is_object() && !patch.is_null()) return fail(std::string(kErrBadJsonDoc));
    json::value result = doc.is_null() ? json::value(json::object()) : doc;
    if (patch.is_null()) return result;
    StrategicMerger merger;
    if (auto st = merger.merge_map(result.get_object(), patch.get_object(), meta, 0); !st) {
      return fail(st.error());
    }
    return result;
  });
}

std::expected<json::value, std::string> create_strategic_merge_patch(const json::value& original,
                                                                     const json::value& modified,
                                                                     const PatchMeta* meta) {
  return guarded([&]() -> std::expected<json::value, std::string> {
    const json::object empty;
    const json::object* o = original.is_null() ? &empty : original.if_object();
    const json::object* m = modified.is_null() ? &empty : modified.if_object();
    if (o == nullptr || m == nullptr) return fail(std::string(kErrBadJsonDoc));
    auto p = diff_maps(*o, *m, meta, DiffOptions{}, 0);
    if (!p) return fail(p.error());
    return json::value(std::move(*p));
  });
}

}  // namespace podwarp::patch
