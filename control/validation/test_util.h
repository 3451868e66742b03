// Helpers shared by the validation tests: JSON literals, resource lookup and "<field>: <message>"
// renderings of causes for exact comparisons.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"
#include "validation/validation.h"

namespace podwarp::validation::testing {

inline json::value J(std::string_view text) { return json::parse(text); }

// The served resource of group/kind; aborts the test binary when it is missing.
inline const api::Resource& R(std::string_view group, std::string_view kind) {
  if (group == "autoscaling" && kind == "Scale") return scale_resource();
  for (const api::Resource& r : api::resources()) {
    if (r.group == group && r.kind == kind) return r;
  }
  std::abort();
}

inline std::vector<std::string> texts(const std::vector<Cause>& causes) {
  std::vector<std::string> out;
  for (const Cause& c : causes) out.push_back(c.field + ": " + c.message);
  return out;
}

// Validates a create after defaulting, like the apiserver does.
inline std::vector<std::string> create(std::string_view group, std::string_view kind,
                                       std::string_view text) {
  json::value v = J(text);
  apply_defaults(R(group, kind), v);
  return texts(validate(R(group, kind), v, nullptr));
}

// Validates an update of `before` (defaulted, as stored) to `after` (defaulted).
inline std::vector<std::string> update(std::string_view group, std::string_view kind,
                                       std::string_view before, std::string_view after) {
  json::value old = J(before);
  json::value now = J(after);
  apply_defaults(R(group, kind), old);
  apply_defaults(R(group, kind), now);
  return texts(validate(R(group, kind), now, &old));
}

// Upstream's regex messages, spelled out once.
inline constexpr std::string_view kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
inline constexpr std::string_view kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
inline constexpr std::string_view kDns1035Msg =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
inline constexpr std::string_view kQualifiedNameMsg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
inline constexpr std::string_view kLabelValueMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

inline std::string cat(std::string_view a, std::string_view b) {
  return std::string(a) + std::string(b);
}

}  // namespace podwarp::validation::testing
