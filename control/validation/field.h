// Field paths and errors in the shape of upstream's k8s.io/apimachinery/pkg/util/validation/field:
// Path prints as "spec.containers[0].image", each constructor builds the Cause that the
// corresponding field.Required/Invalid/... would, with ErrorBody() as the message.
//
// Upstream prints the offending value with Go's fmt verbs; the go_* helpers reproduce the few
// renderings users meet (%q strings, %#v label maps and selectors, intstr values).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"
#include "validation/validation.h"

namespace podwarp::validation {

using Errors = std::vector<Cause>;

// Validation walks build a Path for every field they visit, and nearly all of them are never
// printed (only a Cause prints its path). So a Path keeps its text inline, without an
// allocation per step, up to kInline characters; a longer one moves to the heap.
class Path {
 public:
  Path() = default;
  // NewPath(name). An empty name prints as "[]", like upstream's NewPath("").
  static Path root(std::string_view name);

  Path child(std::string_view name) const;
  template <class... More>
  Path child(std::string_view name, More... more) const {
    return child(name).child(more...);
  }
  Path index(std::size_t i) const;
  Path key(std::string_view k) const;

  std::string_view view() const { return long_.empty() ? std::string_view(buf_, len_) : long_; }
  std::string str() const { return std::string(view()); }

 private:
  static constexpr std::size_t kInline = 95;
  // This path followed by the pieces, each after the one before.
  Path joined(std::initializer_list<std::string_view> pieces) const;

  char buf_[kInline] = {};
  std::uint8_t len_ = 0;
  std::string long_;  // the text when longer than kInline (buf_ unused then)
};

// Constructors. `shown` is the offending value already rendered the way upstream prints it
// (use q(), num(), go_* below).
Cause required(const Path& p, std::string_view detail = {});
Cause forbidden(const Path& p, std::string_view detail);
Cause too_long(const Path& p, std::int64_t max_bytes);
Cause too_many(const Path& p, std::int64_t actual, std::int64_t max_items);
Cause invalid(const Path& p, std::string_view shown, std::string_view detail);
// field.Invalid with field.OmitValueType{}: "Invalid value: <detail>".
Cause invalid_omit(const Path& p, std::string_view detail);
Cause not_supported(const Path& p, std::string_view shown, const std::vector<std::string>& valid);
Cause not_supported(const Path& p, std::string_view shown,
                    std::initializer_list<std::string_view> valid);
Cause duplicate(const Path& p, std::string_view shown);
Cause not_found(const Path& p, std::string_view shown, std::string_view detail = {});

// Convenience for the common string/integer values.
inline Cause invalid_str(const Path& p, std::string_view value, std::string_view detail);
inline Cause invalid_int(const Path& p, std::int64_t value, std::string_view detail);

// Go renderings of values.
std::string q(std::string_view s);                      // %q
std::string num(std::int64_t v);                        // %v of an integer
std::string go_string_map(const json::value* m);        // map[string]string{"a":"b"} / (nil)
std::string go_string_slice(const json::value* a);      // []string{"a", "b"} / []string(nil)
std::string go_label_selector(const json::value* sel);  // v1.LabelSelector{...}
std::string go_intstr(const json::value& v);            // intstr.IntOrString{Type:0, ...}
std::string go_value(const json::value& v);  // scalars as Go prints them, compact JSON otherwise

// Appends src to dst.
inline void add(Errors& dst, Errors src) {
  dst.insert(dst.end(), std::make_move_iterator(src.begin()), std::make_move_iterator(src.end()));
}

// Upstream message fragments (k8s.io/apimachinery/pkg/util/validation).
inline constexpr std::string_view kFieldImmutable = "field is immutable";
inline constexpr std::string_view kIsNegative = "must be greater than or equal to 0";
std::string inclusive_range_error(std::int64_t lo, std::int64_t hi);

// ValidateNonnegativeField on the integer o[k], if set: "<p>.<k>: Invalid value: -1: must be
// greater than or equal to 0".
void nonneg(Errors& errs, const json::object* o, std::string_view k, const Path& p);

Cause invalid_str(const Path& p, std::string_view value, std::string_view detail) {
  return invalid(p, q(value), detail);
}
Cause invalid_int(const Path& p, std::int64_t value, std::string_view detail) {
  return invalid(p, num(value), detail);
}

}  // namespace podwarp::validation
