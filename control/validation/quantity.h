// Resource quantities ("500m", "1.5Gi", "2e3") as upstream's k8s.io/apimachinery/pkg/api/resource
// parses, compares and prints them.
//
// Private to validation: include/podwarp/quantity.h is being written for the whole project; until
// it lands this is the minimal exact implementation validation needs (exact to 38 significant
// digits, which covers every quantity upstream accepts without its big-decimal fallback).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::validation {

class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  // Parses the canonical or any accepted spelling. Values finer than 1n are rounded up (away from
  // zero) to 1n, as upstream does. The error is upstream's message.
  static std::expected<Quantity, std::string> parse(std::string_view s);
  // A quantity field of a JSON object: a string, or a number as written.
  static std::expected<Quantity, std::string> from_json(const json::value& v);

  Quantity() = default;
  static Quantity from_int(std::int64_t v) { return Quantity(v, 0, Format::kDecimalSI); }

  int sign() const { return mant_ < 0 ? -1 : mant_ > 0 ? 1 : 0; }
  bool is_zero() const { return mant_ == 0; }
  // Compares values (the format is ignored).
  int compare(const Quantity& o) const;
  // Whether the value has no fractional part.
  bool is_integer() const;
  // Rounds up (away from zero) to 10^exp10, e.g. -3 for milli.
  void round_up(int exp10);
  // Adds o (the format of *this is kept).
  void add(const Quantity& o);
  // Whether this value is an exact multiple of `unit`.
  bool is_multiple_of(const Quantity& unit) const;
  Format format() const { return format_; }

  // Canonical spelling (Quantity.String()): "1", "500m", "1Gi", "1536Mi", "1e3".
  std::string str() const;

 private:
  Quantity(__int128 m, int e, Format f) : mant_(m), exp_(e), format_(f) {}
  void normalize();  // strips factors of ten from the mantissa

  __int128 mant_ = 0;  // value = mant_ * 10^exp_
  int exp_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace podwarp::validation
