#include "validation/int_or_percent.h"

#include <charconv>
#include <optional>

#include "validation/json_fields.h"
#include "validation/names.h"

namespace podwarp::validation {

namespace {

std::optional<std::int64_t> percent(const json::value* v) {
  if (v == nullptr || !v->is_string()) return std::nullopt;
  std::string_view s = str(v);
  if (!is_valid_percent(s).empty()) return std::nullopt;
  std::int64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size() - 1, n);
  return n;
}

}  // namespace

Errors positive_int_or_percent(const json::value* v, const Path& p) {
  Errors errs;
  if (v != nullptr && v->is_string()) {
    for (auto& m : is_valid_percent(str(v))) errs.push_back(invalid(p, go_intstr(*v), m));
  } else if (v == nullptr || v->is_number()) {
    std::int64_t n = integer(v).value_or(0);
    if (n < 0) errs.push_back(invalid_int(p, n, kIsNegative));
  } else {
    errs.push_back(invalid(p, go_value(*v), "must be an integer or percentage (e.g '5%%')"));
  }
  return errs;
}

Errors not_more_than_100_percent(const json::value* v, const Path& p) {
  auto pct = percent(v);
  if (!pct || *pct <= 100) return {};
  return {invalid(p, go_intstr(*v), "must not be greater than 100%")};
}

std::int64_t int_or_percent_value(const json::value* v) {
  if (auto pct = percent(v)) return *pct;
  if (v != nullptr && v->is_string()) {
    // IntOrString.IntValue() of a non-percent string: strconv.Atoi, 0 on error.
    std::string_view s = str(v);
    std::int64_t n = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), n);
    return r.ec == std::errc() && r.ptr == s.data() + s.size() ? n : 0;
  }
  return integer(v).value_or(0);
}

}  // namespace podwarp::validation
