#include "podwarp/time.h"

#include <gtest/gtest.h>

namespace podwarp {
namespace {

using std::chrono::system_clock;
using namespace std::chrono_literals;

system_clock::time_point at(std::int64_t unix_seconds, std::int64_t nanos = 0) {
  return system_clock::time_point(std::chrono::duration_cast<system_clock::duration>(
      std::chrono::seconds(unix_seconds) + std::chrono::nanoseconds(nanos)));
}

TEST(TimeTest, FormatRfc3339) {
  struct Case {
    system_clock::time_point t;
    std::string_view seconds, micro;
  };
  const Case cases[] = {
      {at(0), "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"},
      {at(1795304686), "2026-11-21T23:44:46Z", "2026-11-21T23:44:46.000000Z"},
      {at(1795304686, 123456789), "2026-11-21T23:44:46Z", "2026-11-21T23:44:46.123456Z"},
      {at(1795304686, 999999999), "2026-11-21T23:44:46Z", "2026-11-21T23:44:46.999999Z"},
      {at(1709208000), "2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000000Z"},
      {at(-2208988800), "1900-01-01T00:00:00Z", "1900-01-01T00:00:00.000000Z"},
      // Truncation is toward the past, also before the epoch.
      {at(0, -1), "1969-12-31T23:59:59Z", "1969-12-31T23:59:59.999999Z"},
      {at(-1, 500000000), "1969-12-31T23:59:59Z", "1969-12-31T23:59:59.500000Z"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(format_rfc3339(c.t), c.seconds);
    EXPECT_EQ(format_rfc3339_micro(c.t), c.micro);
  }
}

TEST(TimeTest, ParseRfc3339) {
  struct Case {
    std::string_view in;
    system_clock::time_point want;
  };
  const Case cases[] = {
      {"2026-11-21T23:44:46Z", at(1795304686)},
      {"2026-11-21T23:44:46.123456Z", at(1795304686, 123456000)},
      {"2026-11-21T23:44:46.123456789Z", at(1795304686, 123456789)},
      {"2026-11-21T23:44:46.1234567891234Z", at(1795304686, 123456789)},
      {"2026-11-21T23:44:46.5Z", at(1795304686, 500000000)},
      {"2026-11-21T23:44:46,5Z", at(1795304686, 500000000)},
      {"2026-11-22T05:14:46+05:30", at(1795304686)},
      {"2026-11-21T15:44:46-08:00", at(1795304686)},
      {"2026-11-21T23:44:46+00:00", at(1795304686)},
      {"2024-02-29T12:00:00Z", at(1709208000)},
      {"1970-01-01T00:00:00Z", at(0)},
      {"1900-01-01T00:00:00Z", at(-2208988800)},
  };
  for (const auto& c : cases) {
    auto t = parse_rfc3339(c.in);
    ASSERT_TRUE(t.has_value()) << c.in << ": " << t.error();
    EXPECT_EQ(*t, c.want) << c.in;
  }
}

TEST(TimeTest, ParseErrorsReadLikeGo) {
  struct Case {
    std::string_view in;
    std::string_view error;
  };
  const Case cases[] = {
      {"", R"(parsing time "" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "2006")"},
      {"yesterday",
       R"(parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006")"},
      {"2026-11-21 23:44:46Z",
       R"(parsing time "2026-11-21 23:44:46Z" as "2006-01-02T15:04:05Z07:00": cannot parse " 23:44:46Z" as "T")"},
      {"2026-11-21t23:44:46Z",
       R"(parsing time "2026-11-21t23:44:46Z" as "2006-01-02T15:04:05Z07:00": cannot parse "t23:44:46Z" as "T")"},
      {"2026-11-21T23:44:46",
       R"(parsing time "2026-11-21T23:44:46" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00")"},
      {"2026-11-21T23:44:46.Z",
       R"(parsing time "2026-11-21T23:44:46.Z" as "2006-01-02T15:04:05Z07:00": cannot parse ".Z" as "Z07:00")"},
      {"2026-11-21T23:44:46+25:00",
       R"(parsing time "2026-11-21T23:44:46+25:00" as "2006-01-02T15:04:05Z07:00": cannot parse "+25:00" as "Z07:00")"},
      {"2026-11-21T23:44:46+0530",
       R"(parsing time "2026-11-21T23:44:46+0530" as "2006-01-02T15:04:05Z07:00": cannot parse "+0530" as "Z07:00")"},
      {"2026-1-21T23:44:46Z",
       R"(parsing time "2026-1-21T23:44:46Z" as "2006-01-02T15:04:05Z07:00": cannot parse "1-21T23:44:46Z" as "01")"},
      {"2026-13-01T00:00:00Z", R"(parsing time "2026-13-01T00:00:00Z": month out of range)"},
      {"2026-00-01T00:00:00Z", R"(parsing time "2026-00-01T00:00:00Z": month out of range)"},
      {"2026-02-29T00:00:00Z", R"(parsing time "2026-02-29T00:00:00Z": day out of range)"},
      {"2026-04-31T00:00:00Z", R"(parsing time "2026-04-31T00:00:00Z": day out of range)"},
      {"2026-04-00T00:00:00Z", R"(parsing time "2026-04-00T00:00:00Z": day out of range)"},
      {"2026-11-21T24:00:00Z", R"(parsing time "2026-11-21T24:00:00Z": hour out of range)"},
      {"2026-11-21T23:60:00Z", R"(parsing time "2026-11-21T23:60:00Z": minute out of range)"},
      {"2026-11-21T23:59:60Z", R"(parsing time "2026-11-21T23:59:60Z": second out of range)"},
      {"2026-11-21T23:44:46Zjunk",
       R"(parsing time "2026-11-21T23:44:46Zjunk": extra text: "junk")"},
      {"9999-12-31T23:59:59Z", R"(parsing time "9999-12-31T23:59:59Z": time out of range)"},
      {"0001-01-01T00:00:00Z", R"(parsing time "0001-01-01T00:00:00Z": time out of range)"},
  };
  for (const auto& c : cases) {
    auto t = parse_rfc3339(c.in);
    ASSERT_FALSE(t.has_value()) << c.in;
    EXPECT_EQ(t.error(), c.error) << c.in;
  }
}

TEST(TimeTest, RoundTrip) {
  for (std::int64_t s : {0LL, 1LL, 86399LL, 951782400LL, 1795304686LL, -86401LL, 4102444799LL}) {
    const auto t = at(s, 123456789);
    auto back = parse_rfc3339(format_rfc3339(t));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, at(s));
    auto back_micro = parse_rfc3339(format_rfc3339_micro(t));
    ASSERT_TRUE(back_micro.has_value());
    EXPECT_EQ(*back_micro, at(s, 123456000));
  }
}

TEST(TimeTest, SaturatedTimes) {
  using namespace std::chrono;
  EXPECT_EQ(saturated_times(seconds(1), 30), seconds(30));
  EXPECT_EQ(saturated_times(milliseconds(10), 3), milliseconds(30));
  EXPECT_EQ(saturated_times(seconds(1), -5), seconds(0));
  EXPECT_EQ(saturated_times(seconds(0), 5), seconds(0));
  // A grace period of 2^63-1 seconds: capped, and now + it is still a valid time point.
  const auto big = saturated_times(duration_cast<system_clock::duration>(seconds(1)), INT64_MAX);
  EXPECT_EQ(big.count(), system_clock::duration::max().count() / 10);
  const auto later = system_clock::now() + big;
  EXPECT_GT(later, system_clock::now() + hours(24 * 365 * 20));
  EXPECT_TRUE(parse_rfc3339(format_rfc3339(later)).has_value());
  const auto steady = saturated_times(duration_cast<steady_clock::duration>(seconds(1)), INT64_MAX / 2);
  EXPECT_GT(steady_clock::now() + steady, steady_clock::now());
}

// upstream TestHumanDuration, plus every boundary of the rules.
TEST(TimeTest, HumanDuration) {
  struct Case {
    std::chrono::seconds d;
    std::string_view want;
  };
  const Case cases[] = {
      {-2s, "<invalid>"},
      {-1000000s, "<invalid>"},
      {-1s, "0s"},
      {0s, "0s"},
      {1s, "1s"},
      {70s, "70s"},
      {119s, "119s"},
      {120s, "2m"},
      {190s, "3m10s"},
      {599s, "9m59s"},
      {600s, "10m"},
      {601s, "10m"},
      {70min, "70m"},
      {179min + 59s, "179m"},
      {180min, "3h"},
      {3h + 30min, "3h30m"},
      {7h + 59min + 59s, "7h59m"},
      {8h, "8h"},
      {47h, "47h"},
      {47h + 59min, "47h"},
      {48h, "2d"},
      {49h, "2d1h"},
      {7 * 24h + 23h, "7d23h"},
      {8 * 24h, "8d"},
      {8 * 24h + 2h, "8d"},
      {367 * 24h, "367d"},
      {365 * 2 * 24h - 1s, "729d"},
      {365 * 2 * 24h, "2y"},
      {365 * 2 * 24h + 25h, "2y1d"},
      {(365 * 3 + 100) * 24h, "3y100d"},
      {365 * 8 * 24h - 1s, "7y364d"},
      {365 * 8 * 24h + 2h, "8y"},
      {365 * 100 * 24h, "100y"},
      {std::chrono::seconds(INT64_MAX), "292471208677y"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(human_duration(c.d), c.want) << c.d.count();
  }
}

}  // namespace
}  // namespace podwarp
