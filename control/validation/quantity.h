// Resource quantities in validation: podwarp::Quantity (include/podwarp/quantity.h), plus the few
// operations upstream's validation and defaulting need that the shared type does not offer.
#pragma once

#include <expected>
#include <string>

#include "podwarp/json.h"
#include "podwarp/quantity.h"

namespace podwarp::validation {

// Quantity::from_json, except that null is an error (the "quantities must match ..." one), as
// validation has always reported it. The shared reader takes null for 0, like upstream's
// UnmarshalJSON; this wrapper only keeps the API's answer to {"cpu": null} unchanged.
std::expected<Quantity, std::string> quantity_from_json(const json::value& v);

// Whether q has no fractional part.
bool is_integer(const Quantity& q);
// Whether q is a whole multiple of unit (hugepage sizes); false for a zero unit.
bool is_multiple_of(const Quantity& q, const Quantity& unit);
// q rounded up (away from zero) to whole milli-units, its format kept: upstream's
// RoundUp(resource.Milli) in SetDefaults_ResourceList.
Quantity round_up_to_milli(const Quantity& q);

// is_integer and is_multiple_of are exact up to 2^63-1 whole units (the cap upstream puts on
// every quantity), round_up_to_milli up to 2^63-1 milli-units. Past that the shared type's
// value()/milli_value() saturate, and the value is taken as whole: an integer, a multiple of no
// page size, left as it is by the rounding.

}  // namespace podwarp::validation
