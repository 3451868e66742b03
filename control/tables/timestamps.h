// Time formatting for table cells.
//
// human_duration and parse_rfc3339 are private copies of what include/podwarp/time.h is meant to
// provide (apimachinery's duration.HumanDuration and metav1.Time parsing); they live here, in
// podwarp::tables::detail, until that header lands, and should then be replaced by it.
// Pure functions, safe from any thread.
#pragma once

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::tables::detail {

using Clock = std::chrono::system_clock;

// apimachinery's duration.HumanDuration: "45s", "3m20s", "5h2m", "3d4h", "2y30d"; "0s" for up to
// one second in the future (clock skew) and "<invalid>" beyond that.
std::string human_duration(std::chrono::seconds d);

// An RFC 3339 timestamp as the API writes them: "2024-05-01T10:00:00Z", with optional fraction
// ("...00.123456Z", MicroTime) and numeric offsets ("+02:00"). Times outside the range of
// Clock::time_point (including Go's zero time, year 1) are errors.
std::expected<Clock::time_point, std::string> parse_rfc3339(std::string_view text);

// A timestamp field as a time point; nullopt when absent, null, zero or malformed (upstream's
// metav1.Time.IsZero()).
std::optional<Clock::time_point> timestamp(const json::value* field);

// HumanDuration(to - from), truncated to whole seconds as Go's int(d.Seconds()).
std::string human_duration_between(Clock::time_point from, Clock::time_point to);

// upstream's translateTimestampSince: "<unknown>" for a zero timestamp, else the age at `now`.
std::string since(const json::value* field, Clock::time_point now);

}  // namespace podwarp::tables::detail
