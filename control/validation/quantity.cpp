#include "validation/quantity.h"

#include <cstdint>
#include <optional>

namespace podwarp::validation {

namespace {

// q in nano-units; nullopt past 2^63-1 whole units, where value() saturates.
std::optional<__int128> nanos(const Quantity& q) {
  const std::int64_t units = q.value();  // rounded away from zero
  if (units == INT64_MAX || units == INT64_MIN) return std::nullopt;
  // What is left is less than one unit, so its nano count cannot saturate.
  return __int128{units} * 1'000'000'000 + (q - Quantity::from_int(units)).scaled_value(-9);
}

}  // namespace

std::expected<Quantity, std::string> quantity_from_json(const json::value& v) {
  if (v.is_null()) return Quantity::parse("");
  return Quantity::from_json(v);
}

bool is_integer(const Quantity& q) {
  auto n = nanos(q);
  return !n || *n % 1'000'000'000 == 0;
}

bool is_multiple_of(const Quantity& q, const Quantity& unit) {
  auto a = nanos(q), b = nanos(unit);
  return a && b && *b != 0 && *a % *b == 0;
}

Quantity round_up_to_milli(const Quantity& q) {
  const std::int64_t milli = q.milli_value();  // rounded away from zero
  if (milli == INT64_MAX || milli == INT64_MIN) return q;
  return Quantity::from_milli(milli, q.format());
}

}  // namespace podwarp::validation
