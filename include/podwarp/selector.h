// Label and field selectors, as in k8s.io/apimachinery/pkg/labels and pkg/fields.
//
// A LabelSelector is an AND of requirements over an object's labels, written either in the
// string syntax of ?labelSelector= and kubectl -l ("app=web,tier!=db,env in (a,b),!canary",
// plus upstream's "gt"/"lt" forms "replicas>3") or as a metav1.LabelSelector JSON object
// (matchLabels + matchExpressions). Keys and values are validated like upstream and errors
// carry upstream's wording ("unable to parse requirement: ..."). An empty selector matches
// everything; upstream's "nil selector matches nothing" is the caller's concern.
//
// A FieldSelector is an AND of field=value / field!=value terms (?fieldSelector=), with
// upstream's escaping (\\ \, \= in values). It does not know which fields a resource
// supports: callers check fields() against their own list and resolve values with a getter,
// typically object_field().
//
// Both selector types are immutable values after parsing; const methods are safe from any
// number of threads. The free functions are pure.
#pragma once

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"

namespace podwarp {

// Upstream validators (k8s.io/apimachinery/pkg/util/validation); each returns the list of
// problems, empty when the input is valid.
std::vector<std::string> qualified_name_errors(std::string_view value);     // IsQualifiedName
std::vector<std::string> label_value_errors(std::string_view value);        // IsValidLabelValue
std::vector<std::string> dns1123_subdomain_errors(std::string_view value);  // IsDNS1123Subdomain

class LabelSelector {
 public:
  enum class Operator {
    kIn,
    kNotIn,
    kEquals,
    kDoubleEquals,
    kNotEquals,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan,
  };

  struct Requirement {
    std::string key;
    Operator op = Operator::kExists;
    std::vector<std::string> values;  // sorted

    // labels may be nullptr (an object without labels). A label whose value is not a
    // string counts as present with the value "".
    bool matches(const json::object* labels) const;
    std::string to_string() const;
  };

  // The empty selector: matches everything.
  LabelSelector() = default;

  static std::expected<LabelSelector, std::string> parse(std::string_view text);
  // A metav1.LabelSelector object. {} yields the empty selector; null and other non-objects
  // are rejected (upstream treats a nil selector as "nothing", which callers must decide).
  static std::expected<LabelSelector, std::string> from_json(const json::value& selector);

  bool matches(const json::object* labels) const;
  bool matches(const json::value& object_with_metadata) const;  // uses metadata.labels
  bool empty() const { return requirements_.empty(); }
  // Canonical string: requirements sorted by key, values sorted ("a in (x,y),b!=c").
  std::string to_string() const;
  const std::vector<Requirement>& requirements() const { return requirements_; }
  // The single value a requirement on key pins (=, == or "in" with one value), for
  // indexing; nullopt otherwise (upstream RequiresExactMatch).
  std::optional<std::string> exact_value(std::string_view key) const;

 private:
  std::vector<Requirement> requirements_;  // sorted by key (stable)
};

class FieldSelector {
 public:
  struct Term {
    std::string field;
    bool equals = true;  // false: "!="
    std::string value;   // unescaped
  };

  // The empty selector: matches everything.
  FieldSelector() = default;

  // "a=b,c!=d,e==f". Errors like upstream: "invalid selector: '<s>'; can't understand
  // '<term>'", "invalid field selector: invalid escape sequence: \x".
  static std::expected<FieldSelector, std::string> parse(std::string_view text);

  // get returns a field's value; nullopt is treated as "" (upstream fields.Set.Get).
  bool matches(const std::function<std::optional<std::string>(std::string_view field)>& get) const;
  bool matches(const json::value& object) const;  // resolves fields with object_field()

  // The value a field=value term requires (e.g. spec.nodeName for indexing).
  std::optional<std::string> exact_value(std::string_view field) const;
  // Every field named, in term order, so callers can reject unsupported ones.
  std::vector<std::string> fields() const;
  bool empty() const { return terms_.empty(); }
  // Canonical string: terms in the order parsed (sorted as upstream), values escaped.
  std::string to_string() const;
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
};

// Escapes a field selector value: \ , = get a backslash (upstream fields.EscapeValue).
std::string escape_field_value(std::string_view value);

// Resolves a dotted field path ("metadata.name", "spec.nodeName", "involvedObject.uid",
// "type") against a JSON object:
//  - a string is returned as is; booleans and numbers as their JSON text;
//  - an absent field, an absent parent object or null yields "" (Go zero values: upstream
//    field selectors see missing fields as empty strings);
//  - nullopt when the path is malformed (empty or with an empty segment), when obj is not
//    an object, when a parent exists but is not an object, or when the value is an object
//    or array (not a selectable field).
std::optional<std::string> object_field(const json::value& obj, std::string_view field);

}  // namespace podwarp
