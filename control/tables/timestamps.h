// Timestamps and ages in table cells, over podwarp::parse_rfc3339 and podwarp::human_duration
// (podwarp/time.h). Pure functions, safe from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "podwarp/json.h"
#include "podwarp/time.h"

namespace podwarp::tables::detail {

using Clock = std::chrono::system_clock;

// A timestamp field as a time point; nullopt when absent, null, zero or malformed (upstream's
// metav1.Time.IsZero()). Times outside the range of Clock::time_point, Go's zero time (year 1)
// among them, count as zero.
std::optional<Clock::time_point> timestamp(const json::value* field);

// HumanDuration(to - from), truncated to whole seconds as Go's int(d.Seconds()).
std::string human_duration_between(Clock::time_point from, Clock::time_point to);

// upstream's translateTimestampSince: "<unknown>" for a zero timestamp, else the age at `now`.
std::string since(const json::value* field, Clock::time_point now);

}  // namespace podwarp::tables::detail
