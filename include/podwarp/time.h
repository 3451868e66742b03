// Timestamps and ages as the Kubernetes API and kubectl write them.
//
// metav1.Time is RFC 3339 in UTC at second precision ("2026-11-21T23:44:46Z"); metav1.MicroTime
// always carries six fractional digits ("2026-11-21T23:44:46.123456Z"). Both truncate toward
// the past, as Go's Format does. parse_rfc3339 accepts what Go's time.Parse(RFC3339, ...)
// accepts: 'T' and 'Z' in upper case, any number of fractional digits (nanoseconds kept),
// and numeric offsets ("+05:30"), with Go-like error messages. human_duration renders the
// AGE column exactly as apimachinery's duration.HumanDuration.
//
// All functions are pure and safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace podwarp {

std::string format_rfc3339(std::chrono::system_clock::time_point t);
std::string format_rfc3339_micro(std::chrono::system_clock::time_point t);

// Errors read like Go's: `parsing time "x" as "2006-01-02T15:04:05Z07:00": cannot parse "x"
// as "2006"`, or `parsing time "...": month out of range`. Instants outside the range of
// system_clock (about years 1678-2262) are rejected.
std::expected<std::chrono::system_clock::time_point, std::string> parse_rfc3339(
    std::string_view text);

// "<invalid>" below -1s, "0s" below 0, then "45s", "3m20s", "47m", "5h3m", "36h", "3d4h",
// "400d", "3y100d", "9y".
std::string human_duration(std::chrono::seconds d);
// Go's time.Duration String() at millisecond precision: "0s", "250ms", "1.5s", "2m30s",
// "1h0m5s" (the kubelet's messages print durations so).
std::string go_duration(std::chrono::milliseconds d);

// `unit * count`, capped at a tenth of the duration type's range (~29 years for nanoseconds) so
// that a clock's now() plus it stays representable: grace periods are int64 seconds in the API
// (gracePeriodSeconds=9223372036854775807 is legal input), and a plain product would overflow.
// A negative count gives zero.
template <class Rep, class Period>
std::chrono::duration<Rep, Period> saturated_times(std::chrono::duration<Rep, Period> unit,
                                                   std::int64_t count) {
  using D = std::chrono::duration<Rep, Period>;
  if (count <= 0 || unit.count() <= 0) return D::zero();
  const Rep cap = D::max().count() / 10;
  if (static_cast<Rep>(count) > cap / unit.count()) return D(cap);
  return D(unit.count() * static_cast<Rep>(count));
}

}  // namespace podwarp
