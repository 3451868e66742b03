// intstr.IntOrString fields holding a count or a percentage (maxSurge, maxUnavailable,
// minAvailable): upstream's ValidatePositiveIntOrPercent and IsNotMoreThan100Percent.
#pragma once

#include "podwarp/json.h"
#include "validation/field.h"

namespace podwarp::validation {

// v may be null (Go's zero IntOrString, the integer 0).
Errors positive_int_or_percent(const json::value* v, const Path& p);
Errors not_more_than_100_percent(const json::value* v, const Path& p);
// The number a value stands for: the integer, or the percentage without '%'.
std::int64_t int_or_percent_value(const json::value* v);

}  // namespace podwarp::validation
