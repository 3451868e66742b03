#include "validation/field.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <vector>

#include "podwarp/quote.h"
#include "validation/json_fields.h"

namespace podwarp::validation {

Path Path::root(std::string_view name) {
  return Path().joined({name.empty() ? std::string_view("[]") : name});
}

Path Path::joined(std::initializer_list<std::string_view> pieces) const {
  const std::string_view self = view();
  std::size_t n = self.size();
  for (std::string_view piece : pieces) n += piece.size();
  Path p;
  if (n <= kInline) {
    char* out = std::copy(self.begin(), self.end(), p.buf_);
    for (std::string_view piece : pieces) out = std::copy(piece.begin(), piece.end(), out);
    p.len_ = static_cast<std::uint8_t>(n);
  } else {
    p.long_.reserve(n);
    p.long_ = self;
    for (std::string_view piece : pieces) p.long_ += piece;
  }
  return p;
}

Path Path::child(std::string_view name) const {
  return joined({view().empty() ? std::string_view() : std::string_view("."), name});
}

Path Path::index(std::size_t i) const {
  char digits[24];
  const char* end = std::to_chars(digits, digits + sizeof digits, i).ptr;
  return joined({"[", std::string_view(digits, end), "]"});
}

Path Path::key(std::string_view k) const { return joined({"[", k, "]"}); }

namespace {

Cause make(std::string_view reason, const Path& p, std::string body) {
  return Cause{std::string(reason), std::move(body), p.str()};
}

std::string with_detail(std::string s, std::string_view detail) {
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}

}  // namespace

Cause required(const Path& p, std::string_view detail) {
  return make("FieldValueRequired", p, with_detail("Required value", detail));
}

Cause forbidden(const Path& p, std::string_view detail) {
  return make("FieldValueForbidden", p, with_detail("Forbidden", detail));
}

Cause too_long(const Path& p, std::int64_t max_bytes) {
  return make("FieldValueTooLong", p,
              with_detail("Too long", "must have at most " + std::to_string(max_bytes) + " bytes"));
}

Cause too_many(const Path& p, std::int64_t actual, std::int64_t max_items) {
  return make("FieldValueTooMany", p,
              "Too many: " + std::to_string(actual) + ": must have at most " +
                  std::to_string(max_items) + " items");
}

Cause invalid(const Path& p, std::string_view shown, std::string_view detail) {
  return make("FieldValueInvalid", p, with_detail("Invalid value: " + std::string(shown), detail));
}

Cause invalid_omit(const Path& p, std::string_view detail) {
  return make("FieldValueInvalid", p, with_detail("Invalid value", detail));
}

Cause not_supported(const Path& p, std::string_view shown, const std::vector<std::string>& valid) {
  std::string detail;
  if (!valid.empty()) {
    detail = "supported values: ";
    for (std::size_t i = 0; i < valid.size(); ++i) {
      if (i > 0) detail += ", ";
      detail += q(valid[i]);
    }
  }
  return make("FieldValueNotSupported", p,
              with_detail("Unsupported value: " + std::string(shown), detail));
}

Cause not_supported(const Path& p, std::string_view shown,
                    std::initializer_list<std::string_view> valid) {
  std::vector<std::string> v;
  for (std::string_view s : valid) v.emplace_back(s);
  return not_supported(p, shown, v);
}

Cause duplicate(const Path& p, std::string_view shown) {
  return make("FieldValueDuplicate", p, "Duplicate value: " + std::string(shown));
}

Cause not_found(const Path& p, std::string_view shown, std::string_view detail) {
  return make("FieldValueNotFound", p, with_detail("Not found: " + std::string(shown), detail));
}

std::string inclusive_range_error(std::int64_t lo, std::int64_t hi) {
  return "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", inclusive";
}

void nonneg(Errors& errs, const json::object* o, std::string_view k, const Path& p) {
  if (auto v = integer(o, k); v && *v < 0) errs.push_back(invalid_int(p.child(k), *v, kIsNegative));
}

std::string q(std::string_view s) { return go_quote(s); }

std::string num(std::int64_t v) { return std::to_string(v); }

namespace {

// Keys of a string map in Go's %#v order (sorted).
std::vector<std::pair<std::string_view, std::string_view>> sorted_pairs(const json::object& o) {
  std::vector<std::pair<std::string_view, std::string_view>> kv;
  for (const auto& e : o) kv.emplace_back(std::string_view(e.key()), str(&e.value()));
  std::sort(kv.begin(), kv.end());
  return kv;
}

}  // namespace

std::string go_string_map(const json::value* m) {
  const json::object* o = obj(m);
  if (o == nullptr) return "map[string]string(nil)";
  std::string out = "map[string]string{";
  bool first = true;
  for (const auto& [k, v] : sorted_pairs(*o)) {
    if (!first) out += ", ";
    first = false;
    out += q(k);
    out += ':';
    out += q(v);
  }
  out += '}';
  return out;
}

std::string go_string_slice(const json::value* a) {
  const json::array* l = arr(a);
  if (l == nullptr) return "[]string(nil)";
  std::string out = "[]string{";
  for (std::size_t i = 0; i < l->size(); ++i) {
    if (i > 0) out += ", ";
    out += q(str(&(*l)[i]));
  }
  out += '}';
  return out;
}

std::string go_label_selector(const json::value* sel) {
  const json::object* o = obj(sel);
  if (o == nullptr) return "null";
  std::string out = "v1.LabelSelector{MatchLabels:";
  out += go_string_map(field(*o, "matchLabels"));
  out += ", MatchExpressions:";
  const json::array* exprs = arr(*o, "matchExpressions");
  if (exprs == nullptr) {
    out += "[]v1.LabelSelectorRequirement(nil)";
  } else {
    out += "[]v1.LabelSelectorRequirement{";
    for (std::size_t i = 0; i < exprs->size(); ++i) {
      const json::object* e = (*exprs)[i].if_object();
      if (i > 0) out += ", ";
      out += "v1.LabelSelectorRequirement{Key:" + q(str(e, "key")) +
             ", Operator:" + q(str(e, "operator")) +
             ", Values:" + go_string_slice(field(e, "values")) + "}";
    }
    out += '}';
  }
  out += '}';
  return out;
}

std::string go_intstr(const json::value& v) {
  if (v.is_string()) {
    return "intstr.IntOrString{Type:1, IntVal:0, StrVal:" + q(sv(v.get_string())) + "}";
  }
  std::int64_t i = integer(&v).value_or(0);
  return "intstr.IntOrString{Type:0, IntVal:" + std::to_string(i) + ", StrVal:\"\"}";
}

std::string go_value(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return q(sv(v.get_string()));
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::null:
      return "null";
    default:
      return json::serialize(v);
  }
}

}  // namespace podwarp::validation
