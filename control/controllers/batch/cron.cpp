#include "batch/cron.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <charconv>
#include <vector>

namespace podwarp::controllers {

namespace {

using namespace std::chrono;

struct Bounds {
  unsigned min, max;
  const std::array<std::string_view, 13>* names;  // index = value
};

constexpr std::array<std::string_view, 13> kMonths = {"",    "jan", "feb", "mar", "apr",
                                                      "may", "jun", "jul", "aug", "sep",
                                                      "oct", "nov", "dec"};
constexpr std::array<std::string_view, 13> kDays = {"sun", "mon", "tue", "wed", "thu",
                                                    "fri", "sat", "",    "",    "",
                                                    "",    "",    ""};
constexpr Bounds kMinute{0, 59, nullptr}, kHour{0, 23, nullptr}, kDom{1, 31, nullptr},
    kMonth{1, 12, &kMonths}, kDow{0, 6, &kDays};

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::expected<unsigned, std::string> parse_uint(std::string_view s) {
  unsigned v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    return std::unexpected(fmt::format("failed to parse int from {}", s));
  }
  return v;
}

std::expected<unsigned, std::string> parse_value(std::string_view s, const Bounds& b) {
  if (b.names != nullptr) {
    std::string lower;
    for (char c : s) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (unsigned i = 0; i < b.names->size(); ++i) {
      if (!(*b.names)[i].empty() && (*b.names)[i] == lower) return i;
    }
  }
  return parse_uint(s);
}

// One comma-separated term: "*", "?", "a", "a-b", each optionally "/step".
std::expected<std::uint64_t, std::string> parse_range(std::string_view expr, const Bounds& b,
                                                      std::uint64_t star) {
  auto range_and_step = split(expr, '/');
  if (range_and_step.size() > 2) return std::unexpected(fmt::format("too many slashes: {}", expr));
  auto low_high = split(range_and_step[0], '-');
  if (low_high.size() > 2) return std::unexpected(fmt::format("too many hyphens: {}", expr));
  unsigned start = 0, end = 0, step = 1;
  std::uint64_t extra = 0;
  bool single = low_high.size() == 1;
  if (low_high[0] == "*" || low_high[0] == "?") {
    if (!single) return std::unexpected(fmt::format("too many hyphens: {}", expr));
    start = b.min;
    end = b.max;
    extra = star;
  } else {
    auto lo = parse_value(low_high[0], b);
    if (!lo) return std::unexpected(lo.error());
    start = end = *lo;
    if (!single) {
      auto hi = parse_value(low_high[1], b);
      if (!hi) return std::unexpected(hi.error());
      end = *hi;
    }
  }
  if (range_and_step.size() == 2) {
    auto s = parse_uint(range_and_step[1]);
    if (!s) return std::unexpected(s.error());
    step = *s;
    if (single && extra == 0) end = b.max;  // "N/step" means "N-max/step"
    if (step > 1) extra = 0;
  }
  if (start < b.min) {
    return std::unexpected(fmt::format("beginning of range ({}) below minimum ({}): {}", start,
                                       b.min, expr));
  }
  if (end > b.max) {
    return std::unexpected(
        fmt::format("end of range ({}) above maximum ({}): {}", end, b.max, expr));
  }
  if (start > end) {
    return std::unexpected(
        fmt::format("beginning of range ({}) beyond end of range ({}): {}", start, end, expr));
  }
  if (step == 0) return std::unexpected(fmt::format("step of range should be a positive number: {}", expr));
  std::uint64_t bits = 0;
  for (std::uint64_t v = start; v <= end; v += step) bits |= 1ull << v;  // 64 bits: no wrap on a huge step
  return bits | extra;
}

std::expected<std::uint64_t, std::string> parse_field(std::string_view field, const Bounds& b,
                                                      std::uint64_t star) {
  std::uint64_t bits = 0;
  for (std::string_view term : split(field, ',')) {
    auto r = parse_range(term, b, star);
    if (!r) return r;
    bits |= *r;
  }
  return bits;
}

// Go's time.ParseDuration, for @every (units h m s ms us ns; fractions allowed).
std::optional<nanoseconds> parse_go_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return nanoseconds(0);
  double total = 0;
  if (s.empty()) return std::nullopt;
  while (!s.empty()) {
    std::size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return std::nullopt;
    double v = 0;
    auto r = std::from_chars(s.data(), s.data() + i, v);
    if (r.ec != std::errc() || r.ptr != s.data() + i) return std::nullopt;
    s.remove_prefix(i);
    std::size_t j = 0;
    while (j < s.size() && !std::isdigit(static_cast<unsigned char>(s[j])) && s[j] != '.') ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double mult = 0;
    if (unit == "h") mult = 3600e9;
    else if (unit == "m") mult = 60e9;
    else if (unit == "s") mult = 1e9;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "us" || unit == "µs") mult = 1e3;
    else if (unit == "ns") mult = 1;
    else return std::nullopt;
    total += v * mult;
  }
  if (neg) total = -total;
  return nanoseconds(static_cast<std::int64_t>(total));
}

bool has(std::uint64_t bits, unsigned v) { return (bits >> v) & 1u; }

}  // namespace

std::expected<CronSchedule, std::string> CronSchedule::parse(std::string_view spec) {
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.front()))) spec.remove_prefix(1);
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back()))) spec.remove_suffix(1);
  if (spec.empty()) return std::unexpected("empty spec string");
  if (spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=")) {
    return std::unexpected("CRON_TZ or TZ in schedule is not supported; use spec.timeZone");
  }
  CronSchedule s;
  const std::uint64_t star = kStar;
  auto all = [&](const Bounds& b) {
    std::uint64_t bits = 0;
    for (unsigned v = b.min; v <= b.max; ++v) bits |= 1ull << v;
    return bits | star;
  };
  if (spec.starts_with("@")) {
    if (spec.starts_with("@every ")) {
      auto d = parse_go_duration(spec.substr(7));
      if (!d) return std::unexpected(fmt::format("failed to parse duration {}", spec));
      // robfig: below one second rounds up to one second; else truncated to seconds.
      auto secs = duration_cast<seconds>(*d);
      if (*d < seconds(1)) secs = seconds(1);
      s.every_ = secs;
      return s;
    }
    s.minute_ = 1;
    s.hour_ = 1;
    s.dom_ = all(kDom);
    s.month_ = all(kMonth);
    s.dow_ = all(kDow);
    if (spec == "@yearly" || spec == "@annually") {
      s.dom_ = 1ull << 1;
      s.month_ = 1ull << 1;
    } else if (spec == "@monthly") {
      s.dom_ = 1ull << 1;
    } else if (spec == "@weekly") {
      s.dow_ = 1ull << 0;
    } else if (spec == "@daily" || spec == "@midnight") {
    } else if (spec == "@hourly") {
      s.hour_ = all(kHour);
    } else {
      return std::unexpected(fmt::format("unrecognized descriptor: {}", spec));
    }
    return s;
  }
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < spec.size()) {
    while (i < spec.size() && std::isspace(static_cast<unsigned char>(spec[i]))) ++i;
    std::size_t j = i;
    while (j < spec.size() && !std::isspace(static_cast<unsigned char>(spec[j]))) ++j;
    if (j > i) fields.push_back(spec.substr(i, j - i));
    i = j;
  }
  if (fields.size() != 5) {
    return std::unexpected(
        fmt::format("expected exactly 5 fields, found {}: [{}]", fields.size(), fmt::join(fields, " ")));
  }
  const Bounds* bounds[] = {&kMinute, &kHour, &kDom, &kMonth, &kDow};
  std::uint64_t* out[] = {&s.minute_, &s.hour_, &s.dom_, &s.month_, &s.dow_};
  for (int f = 0; f < 5; ++f) {
    auto bits = parse_field(fields[f], *bounds[f], star);
    if (!bits) return std::unexpected(bits.error());
    *out[f] = *bits;
  }
  return s;
}

std::optional<CronSchedule::time_point> CronSchedule::next(time_point t) const {
  if (every_ > seconds(0)) {
    return time_point(floor<seconds>(t) + every_);
  }
  // The next whole minute strictly after t.
  sys_seconds cur = floor<minutes>(t) + minutes(1);
  const int year_limit = static_cast<int>(year_month_day(floor<days>(cur)).year()) + 5;
  auto day_matches = [&](const year_month_day& ymd) {
    bool dom = has(dom_, static_cast<unsigned>(ymd.day()));
    bool dow = has(dow_, weekday(sys_days(ymd)).c_encoding());
    if ((dom_ & kStar) || (dow_ & kStar)) return dom && dow;
    return dom || dow;
  };
  while (true) {
    sys_days day = floor<days>(cur);
    year_month_day ymd(day);
    if (static_cast<int>(ymd.year()) > year_limit) return std::nullopt;
    if (!has(month_, static_cast<unsigned>(ymd.month()))) {
      year_month ym = ymd.year() / ymd.month() + months(1);
      cur = sys_days(ym / 1);
      continue;
    }
    if (!day_matches(ymd)) {
      cur = day + days(1);
      continue;
    }
    hh_mm_ss hms(cur - day);
    if (!has(hour_, static_cast<unsigned>(hms.hours().count()))) {
      cur = day + hms.hours() + hours(1);
      continue;
    }
    if (!has(minute_, static_cast<unsigned>(hms.minutes().count()))) {
      cur += minutes(1);
      continue;
    }
    return time_point(cur);
  }
}

}  // namespace podwarp::controllers
