// CronSchedule: a CronJob's spec.schedule, parsed as upstream parses it (robfig/cron's
// ParseStandard: five fields minute hour day-of-month month day-of-week, with ranges "a-b",
// steps "*/n" and "a/n", lists "a,b", "?" for "*", month and weekday names, and the
// descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly @every <duration>).
//
// Times are UTC: podwarp has no time-zone database here, so spec.timeZone other than UTC/
// Etc/UTC is refused by the controller (see cronjob_controller.h). Day matching follows cron
// and robfig: when day-of-month or day-of-week is "*" (or "?") both must match, otherwise
// either may.
//
// Pure values; safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace podwarp::controllers {

class CronSchedule {
 public:
  using time_point = std::chrono::system_clock::time_point;

  // Errors read like robfig's ("expected exactly 5 fields, found 4: [...]").
  static std::expected<CronSchedule, std::string> parse(std::string_view spec);

  // The first activation strictly after t; nullopt when none falls within five years (e.g.
  // "0 0 30 2 *").
  std::optional<time_point> next(time_point t) const;

 private:
  static constexpr std::uint64_t kStar = 1ull << 63;
  std::uint64_t minute_ = 0, hour_ = 0, dom_ = 0, month_ = 0, dow_ = 0;
  std::chrono::seconds every_{0};  // @every: a constant delay instead of fields
};

}  // namespace podwarp::controllers
