#include "apiserver/reviews.h"

#include <fmt/format.h>

#include <cctype>
#include <string>
#include <vector>

#include "podwarp/quote.h"

namespace podwarp::apiserver {

namespace {

// Go's zero value (what apimachinery's semantic equality takes an absent field for).
bool zero(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return true;
    case json::kind::string:
      return v.get_string().empty();
    case json::kind::array:
      return v.get_array().empty();
    case json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (!zero(kv.value())) return false;
      }
      return true;
    case json::kind::bool_:
      return !v.get_bool();
    case json::kind::int64:
      return v.get_int64() == 0;
    case json::kind::uint64:
      return v.get_uint64() == 0;
    case json::kind::double_:
      return v.get_double() == 0;
  }
  return false;
}

const json::value* field(const json::value& obj, std::string_view a, std::string_view b) {
  const json::value* v = find_path(obj, {a, b});
  return v != nullptr && !v->is_null() ? v : nullptr;
}

// The value as upstream's field.Invalid prints it: Go's %#v of the pointer (nil: "null").
std::string go_value(const json::value* v, std::string_view go_type) {
  if (v == nullptr) return "\"null\"";
  std::string out = fmt::format("&authorization.{}{{", go_type);
  bool first = true;
  if (v->is_object()) {
    for (const auto& kv : v->get_object()) {
      if (!kv.value().is_string()) continue;
      std::string name(kv.key());
      if (!name.empty())
        name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
      out += fmt::format("{}{}:{}", first ? "" : ", ", name, go_quote(kv.value().get_string()));
      first = false;
    }
  }
  return out + "}";
}

struct Causes {
  std::vector<validation::Cause> list;
  void invalid(std::string field, std::string value, std::string_view why) {
    list.push_back(
        {"FieldValueInvalid", fmt::format("Invalid value: {}: {}", value, why), std::move(field)});
  }
};

// Exactly one of resourceAttributes and nonResourceAttributes (upstream's
// ValidateSubjectAccessReviewSpec / ValidateSelfSubjectAccessReviewSpec).
void one_kind_of_attributes(const json::value& obj, Causes& c) {
  const json::value* res = field(obj, "spec", "resourceAttributes");
  const json::value* non = field(obj, "spec", "nonResourceAttributes");
  if (res != nullptr && non != nullptr) {
    c.invalid("spec.nonResourceAttributes", go_value(non, "NonResourceAttributes"),
              "cannot be specified in combination with resourceAttributes");
  }
  if (res == nullptr && non == nullptr) {
    c.invalid("spec.resourceAttributes", go_value(non, "NonResourceAttributes"),
              "exactly one of nonResourceAttributes or resourceAttributes must be specified");
  }
}

void user_or_groups(const json::value& obj, Causes& c) {
  const json::value* groups = field(obj, "spec", "groups");
  if (get_string(obj, {"spec", "user"}).empty() && (groups == nullptr || zero(*groups))) {
    c.invalid("spec.user", "\"\"", "at least one of user or group must be specified");
  }
}

// metadata must be empty (but for `except`): a review is not an object with an identity.
void empty_metadata(const json::value& obj, std::string_view except, Causes& c) {
  const json::value* m = find_path(obj, {"metadata"});
  if (m == nullptr || !m->is_object()) return;
  for (const auto& kv : m->get_object()) {
    if (kv.key() == except || zero(kv.value())) continue;
    c.invalid("metadata", json::serialize(*m),
              except.empty() ? "must be empty" : "must be empty except for namespace");
    return;
  }
}

json::array star() { return json::array{"*"}; }

}  // namespace

json::object user_info(const UserInfo& user) {
  json::array groups;
  for (const std::string& g : user.groups) groups.emplace_back(g);
  json::object info{{"username", user.name}, {"groups", std::move(groups)}};
  if (!user.uid.empty()) info["uid"] = user.uid;
  if (!user.extra.empty()) {
    json::object extra;
    for (const auto& [k, v] : user.extra) extra[k] = json::array{json::value(v)};
    info["extra"] = std::move(extra);
  }
  return info;
}

json::object self_subject_review(const UserInfo& user, std::string_view version) {
  return json::object{{"kind", "SelfSubjectReview"},
                      {"apiVersion", fmt::format("authentication.k8s.io/{}", version)},
                      {"metadata", json::object{{"creationTimestamp", nullptr}}},
                      {"status", json::object{{"userInfo", user_info(user)}}}};
}

std::expected<json::value, ApiError> answer_review(const api::Resource& r, json::value obj,
                                                   const UserInfo& user, std::string_view ns) {
  if (r.kind == "SelfSubjectReview") return json::value(self_subject_review(user, r.version));
  Causes causes;
  json::object& o = obj.as_object();
  if (r.kind == "SelfSubjectRulesReview") {
    if (get_string(obj, {"spec", "namespace"}).empty()) {
      return std::unexpected(bad_request("no namespace on request"));
    }
    o["status"] = json::object{
        {"resourceRules", json::array{json::object{
                              {"verbs", star()}, {"apiGroups", star()}, {"resources", star()}}}},
        {"nonResourceRules",
         json::array{json::object{{"verbs", star()}, {"nonResourceURLs", star()}}}},
        {"incomplete", false}};
  } else {
    if (r.kind == "LocalSubjectAccessReview") {
      // The namespace is the URL's; the resource attributes' must be the same.
      if (ns.empty()) {
        return std::unexpected(bad_request("namespace is required on this type: "));
      }
      if (json::value* attrs = find_path(obj, {"spec", "resourceAttributes"});
          attrs != nullptr && attrs->is_object()) {
        std::string_view attr_ns = get_string(*attrs, {"namespace"});
        if (attr_ns.empty()) {
          attrs->as_object()["namespace"] = ns;
        } else if (attr_ns != ns) {
          return std::unexpected(bad_request(
              fmt::format("spec.resourceAttributes.namespace must match namespace: {}", ns)));
        }
      }
    }
    // In upstream's order: the spec, then the metadata, then what a local review may not ask.
    one_kind_of_attributes(obj, causes);
    if (r.kind != "SelfSubjectAccessReview") user_or_groups(obj, causes);
    if (r.kind == "LocalSubjectAccessReview") {
      empty_metadata(obj, "namespace", causes);
      if (const json::value* non = field(obj, "spec", "nonResourceAttributes")) {
        causes.invalid("spec.nonResourceAttributes", go_value(non, "NonResourceAttributes"),
                       "disallowed on this kind of request");
      }
    } else {
      empty_metadata(obj, "", causes);
    }
    // Every authenticated request is allowed (see reviews.h).
    o["status"] = json::object{{"allowed", true}};
  }
  if (!causes.list.empty()) return std::unexpected(invalid(r, "", causes.list));
  json::object& meta = ensure_object(o, "metadata");
  meta["creationTimestamp"] = nullptr;
  if (r.namespaced) meta["namespace"] = ns;
  return obj;
}

}  // namespace podwarp::apiserver
