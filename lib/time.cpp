#include "podwarp/time.h"

#include <fmt/format.h>

#include <cstdint>
#include <optional>

namespace podwarp {
namespace {

using std::chrono::system_clock;

constexpr std::string_view kLayout = "2006-01-02T15:04:05Z07:00";

struct Civil {
  int year;
  unsigned month, day, hour, minute, second;
};

Civil to_civil(std::chrono::sys_seconds s) {
  const auto day = std::chrono::floor<std::chrono::days>(s);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{s - day};
  return Civil{static_cast<int>(ymd.year()),
               static_cast<unsigned>(ymd.month()),
               static_cast<unsigned>(ymd.day()),
               static_cast<unsigned>(hms.hours().count()),
               static_cast<unsigned>(hms.minutes().count()),
               static_cast<unsigned>(hms.seconds().count())};
}

std::string format_seconds(const Civil& c) {
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour,
                     c.minute, c.second);
}

// Go's quote() in time.ParseError.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text), rest_(text) {}

  std::string cannot_parse(std::string_view elem) const {
    return fmt::format("parsing time {} as {}: cannot parse {} as {}", quote(text_), quote(kLayout),
                       quote(rest_), quote(elem));
  }
  std::string range_error(std::string_view what) const {
    return fmt::format("parsing time {}: {}", quote(text_), what);
  }

  // Exactly n digits.
  std::optional<unsigned> digits(std::size_t n) {
    if (rest_.size() < n) return std::nullopt;
    unsigned v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char c = rest_[i];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    rest_.remove_prefix(n);
    return v;
  }

  bool literal(char c) {
    if (rest_.empty() || rest_[0] != c) return false;
    rest_.remove_prefix(1);
    return true;
  }

  bool peek(char c) const { return !rest_.empty() && rest_[0] == c; }
  bool at_digit(std::size_t i) const {
    return rest_.size() > i && rest_[i] >= '0' && rest_[i] <= '9';
  }
  std::string_view rest() const { return rest_; }

 private:
  std::string_view text_;
  std::string_view rest_;
};

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::string format_rfc3339(system_clock::time_point t) {
  const auto s = std::chrono::floor<std::chrono::seconds>(t);
  return format_seconds(to_civil(s)) + "Z";
}

std::string format_rfc3339_micro(system_clock::time_point t) {
  const auto us = std::chrono::floor<std::chrono::microseconds>(t);
  const auto s = std::chrono::floor<std::chrono::seconds>(us);
  return fmt::format("{}.{:06}Z", format_seconds(to_civil(s)), (us - s).count());
}

std::expected<system_clock::time_point, std::string> parse_rfc3339(std::string_view text) {
  Reader r(text);
  std::optional<unsigned> year, month, day, hour, minute, second;
  if (!(year = r.digits(4))) return std::unexpected(r.cannot_parse("2006"));
  if (!r.literal('-')) return std::unexpected(r.cannot_parse("-"));
  if (!(month = r.digits(2))) return std::unexpected(r.cannot_parse("01"));
  if (*month < 1 || *month > 12) return std::unexpected(r.range_error("month out of range"));
  if (!r.literal('-')) return std::unexpected(r.cannot_parse("-"));
  if (!(day = r.digits(2))) return std::unexpected(r.cannot_parse("02"));
  if (!r.literal('T')) return std::unexpected(r.cannot_parse("T"));
  if (!(hour = r.digits(2))) return std::unexpected(r.cannot_parse("15"));
  if (*hour > 23) return std::unexpected(r.range_error("hour out of range"));
  if (!r.literal(':')) return std::unexpected(r.cannot_parse(":"));
  if (!(minute = r.digits(2))) return std::unexpected(r.cannot_parse("04"));
  if (*minute > 59) return std::unexpected(r.range_error("minute out of range"));
  if (!r.literal(':')) return std::unexpected(r.cannot_parse(":"));
  if (!(second = r.digits(2))) return std::unexpected(r.cannot_parse("05"));
  if (*second > 59) return std::unexpected(r.range_error("second out of range"));

  // Fractional seconds: any number of digits; nanoseconds are kept, the rest truncated.
  std::int64_t nanos = 0;
  if ((r.peek('.') || r.peek(',')) && r.at_digit(1)) {
    r.literal(r.rest()[0]);
    int n = 0;
    while (r.at_digit(0)) {
      const unsigned d = *r.digits(1);
      if (n < 9) nanos = nanos * 10 + d;
      ++n;
    }
    for (; n < 9; ++n) nanos *= 10;
  }

  std::int64_t offset = 0;  // seconds east of UTC
  if (!r.literal('Z')) {
    const std::string_view at = r.rest();
    const bool plus = r.peek('+');
    if (!plus && !r.peek('-')) return std::unexpected(r.cannot_parse("Z07:00"));
    r.literal(at[0]);
    auto oh = r.digits(2);
    const bool colon = oh && r.literal(':');
    auto om = colon ? r.digits(2) : std::nullopt;
    if (!om || *oh > 23 || *om > 59) {
      return std::unexpected(fmt::format("parsing time {} as {}: cannot parse {} as {}",
                                         quote(text), quote(kLayout), quote(at), quote("Z07:00")));
    }
    offset = (plus ? 1 : -1) * static_cast<std::int64_t>(*oh * 3600 + *om * 60);
  }
  if (!r.rest().empty()) {
    return std::unexpected(r.range_error(fmt::format("extra text: {}", quote(r.rest()))));
  }
  if (*day < 1 || *day > days_in_month(static_cast<int>(*year), *month)) {
    return std::unexpected(r.range_error("day out of range"));
  }

  const std::chrono::year_month_day ymd{std::chrono::year{static_cast<int>(*year)},
                                        std::chrono::month{*month}, std::chrono::day{*day}};
  const std::int64_t days = std::chrono::sys_days{ymd}.time_since_epoch().count();
  const std::int64_t secs =
      days * 86400 + *hour * 3600 + *minute * 60 + *second - offset;  // |secs| < 2^39
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(secs, std::int64_t{1'000'000'000}, &ns) ||
      __builtin_add_overflow(ns, nanos, &ns)) {
    return std::unexpected(r.range_error("time out of range"));
  }
  return system_clock::time_point(
      std::chrono::duration_cast<system_clock::duration>(std::chrono::nanoseconds(ns)));
}

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

std::string go_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 1000) return fmt::format("{}ms", ms);
  auto h = ms / 3'600'000, m = ms / 60'000 % 60, sec = ms / 1000 % 60, frac = ms % 1000;
  std::string s = frac ? fmt::format("{}.{:03}", sec, frac) : std::to_string(sec);
  while (frac && s.back() == '0') s.pop_back();
  if (h > 0) return fmt::format("{}h{}m{}s", h, m, s);
  if (m > 0) return fmt::format("{}m{}s", m, s);
  return s + "s";
}

}  // namespace podwarp
