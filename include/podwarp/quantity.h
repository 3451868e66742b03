// Quantity: the fixed-point number behind every resource amount (resource.Quantity upstream).
//
// A Quantity is an exact value held as a signed 128-bit count of nano-units, plus the format
// it was written in (DecimalSI "100m"/"2G", BinarySI "64Mi", DecimalExponent "1e3"). Parsing
// follows k8s.io/apimachinery/pkg/api/resource: the same grammar and quirks (".5", "1.",
// "1.G" are accepted), values more precise than 1n are rounded up away from zero, and
// to_string() emits the upstream canonical form: the input's format is kept, the largest
// suffix that loses no precision is chosen, and fractions are never printed ("1.5" ->
// "1500m", "1024Mi" -> "1Gi", "1.5Gi" -> "1536Mi"). 100m and 0.1 compare equal; the format
// takes no part in comparison.
//
// Bounds: a parsed BinarySI value is capped at 2^63-1 units as upstream. Upstream keeps
// decimal values unbounded (inf.Dec); here they are capped at 10^27 units, which is far
// beyond any real resource and keeps arithmetic exact. Arithmetic saturates at the int128
// range (use checked_add/checked_sub to detect it). Upstream's habit of echoing a
// non-canonical input verbatim ("+1", "01") is not kept: to_string() is always canonical.
//
// Quantity is a small value type: copies are independent; const methods are safe to call
// from any number of threads.
#pragma once

#include <compare>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp {

class Quantity {
 public:
  enum class Format { kDecimalSI, kBinarySI, kDecimalExponent };

  // Zero, DecimalSI.
  Quantity() = default;

  // Parses "<signedNumber><suffix>". Errors carry upstream's messages:
  // "quantities must match the regular expression '...'" or
  // "unable to parse quantity's suffix".
  static std::expected<Quantity, std::string> parse(std::string_view text);

  // Reads the JSON form: a string (surrounding whitespace ignored, as upstream), a number
  // (integers or decimals), or null (zero). A JSON number was already parsed by Boost, so
  // its exponent spelling is lost: 1e3 reads as DecimalSI 1k, not DecimalExponent 1e3.
  static std::expected<Quantity, std::string> from_json(const json::value& v);

  static Quantity from_int(std::int64_t units, Format format = Format::kDecimalSI);
  static Quantity from_milli(std::int64_t milli_units, Format format = Format::kDecimalSI);

  // ceil(q / 10^exponent), rounding away from zero, saturated to the int64 range.
  // value() is scaled_value(0) and milli_value() is scaled_value(-3), as upstream.
  std::int64_t scaled_value(int exponent) const;
  std::int64_t value() const { return scaled_value(0); }
  std::int64_t milli_value() const { return scaled_value(-3); }
  double as_approximate_double() const;

  bool is_zero() const { return nanos_ == 0; }
  int sign() const { return nanos_ < 0 ? -1 : (nanos_ > 0 ? 1 : 0); }
  Format format() const { return format_; }
  void set_format(Format f) { format_ = f; }

  // -1, 0, 1 like upstream Cmp.
  int compare(const Quantity& other) const;
  bool operator==(const Quantity& other) const { return nanos_ == other.nanos_; }
  std::strong_ordering operator<=>(const Quantity& other) const { return nanos_ <=> other.nanos_; }

  // The result keeps the left operand's format, or takes the right one's when the left is
  // zero (upstream Add/Sub). Saturates on int128 overflow.
  Quantity operator+(const Quantity& other) const;
  Quantity operator-(const Quantity& other) const;
  Quantity operator-() const;
  Quantity& operator+=(const Quantity& other) { return *this = *this + other; }
  Quantity& operator-=(const Quantity& other) { return *this = *this - other; }
  std::expected<Quantity, std::string> checked_add(const Quantity& other) const;
  std::expected<Quantity, std::string> checked_sub(const Quantity& other) const;

  // Canonical string ("0" for zero, whatever the format).
  std::string to_string() const;
  json::value to_json() const { return json::value(to_string()); }

 private:
  Quantity(__int128 nanos, Format format) : nanos_(nanos), format_(format) {}

  __int128 nanos_ = 0;
  Format format_ = Format::kDecimalSI;
};

}  // namespace podwarp
