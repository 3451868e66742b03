#include "tables/timestamps.h"

#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <optional>

namespace podwarp::tables::detail {

std::string human_duration(std::chrono::seconds d) {
  const std::int64_t seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return fmt::format("{}s", seconds);
  const std::int64_t minutes = seconds / 60;
  if (minutes < 10) {
    const std::int64_t s = seconds % 60;
    if (s == 0) return fmt::format("{}m", minutes);
    return fmt::format("{}m{}s", minutes, s);
  }
  if (minutes < 60 * 3) return fmt::format("{}m", minutes);
  const std::int64_t hours = seconds / 3600;
  if (hours < 8) {
    const std::int64_t m = minutes % 60;
    if (m == 0) return fmt::format("{}h", hours);
    return fmt::format("{}h{}m", hours, m);
  }
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) {
    const std::int64_t h = hours % 24;
    if (h == 0) return fmt::format("{}d", hours / 24);
    return fmt::format("{}d{}h", hours / 24, h);
  }
  if (hours < 24 * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < 24 * 365 * 8) {
    const std::int64_t dy = (hours / 24) % 365;
    if (dy == 0) return fmt::format("{}y", hours / 24 / 365);
    return fmt::format("{}y{}d", hours / 24 / 365, dy);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

namespace {

// Reads exactly n decimal digits at pos; nullopt otherwise.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::expected<Clock::time_point, std::string> parse_rfc3339(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::unexpected(fmt::format("parse RFC 3339 time \"{}\": {}", text, why));
  };
  // 2006-01-02T15:04:05[.frac](Z|±07:00)
  auto year = digits(text, 0, 4);
  auto month = digits(text, 5, 2);
  auto day = digits(text, 8, 2);
  auto hour = digits(text, 11, 2);
  auto minute = digits(text, 14, 2);
  auto second = digits(text, 17, 2);
  if (!year || !month || !day || !hour || !minute || !second || text[4] != '-' || text[7] != '-' ||
      text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return bad("not in the form 2006-01-02T15:04:05Z07:00");
  }
  if (*hour > 23 || *minute > 59 || *second > 59) return bad("time of day out of range");
  const std::chrono::year_month_day ymd{std::chrono::year{*year},
                                        std::chrono::month{static_cast<unsigned>(*month)},
                                        std::chrono::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return bad("date out of range");

  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (n < 9) {
        nanos = nanos * 10 + (text[pos] - '0');
        ++n;
      }
      ++pos;
    }
    if (n == 0) return bad("empty fraction");
    for (; n < 9; ++n) nanos *= 10;
  }
  std::int64_t offset_seconds = 0;
  if (pos < text.size() && text[pos] == 'Z') {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    auto oh = digits(text, pos + 1, 2);
    auto om = digits(text, pos + 4, 2);
    if (!oh || !om || text[pos + 3] != ':' || *oh > 23 || *om > 59) return bad("bad zone offset");
    offset_seconds = (*oh * 3600 + *om * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad("missing zone");
  }
  if (pos != text.size()) return bad("trailing characters");

  // system_clock counts nanoseconds in an int64: roughly the years 1678 to 2261.
  if (*year < 1678 || *year > 2261) return bad("year out of range");
  const std::chrono::sys_days days{ymd};
  const std::int64_t secs = static_cast<std::int64_t>(days.time_since_epoch().count()) * 86400 +
                            *hour * 3600 + *minute * 60 + *second - offset_seconds;
  return Clock::time_point{std::chrono::duration_cast<Clock::duration>(
      std::chrono::seconds{secs} + std::chrono::nanoseconds{nanos})};
}

std::optional<Clock::time_point> timestamp(const json::value* field) {
  if (field == nullptr || !field->is_string()) return std::nullopt;
  const json::string& s = field->get_string();
  auto t = parse_rfc3339(std::string_view(s.data(), s.size()));
  if (!t) return std::nullopt;
  return *t;
}

std::string human_duration_between(Clock::time_point from, Clock::time_point to) {
  return human_duration(std::chrono::duration_cast<std::chrono::seconds>(to - from));
}

std::string since(const json::value* field, Clock::time_point now) {
  auto t = timestamp(field);
  if (!t) return "<unknown>";
  return human_duration_between(*t, now);
}

}  // namespace podwarp::tables::detail
