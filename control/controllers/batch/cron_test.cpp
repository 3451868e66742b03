#include "batch/cron.h"

#include <gtest/gtest.h>

#include "batch/cronjob_controller.h"
#include "podwarp/time.h"

namespace podwarp::controllers {
namespace {

using namespace std::chrono_literals;

std::chrono::system_clock::time_point T(const char* s) { return *parse_rfc3339(s); }

std::string next_after(const char* spec, const char* from) {
  auto s = CronSchedule::parse(spec);
  if (!s) return "error: " + s.error();
  auto n = s->next(T(from));
  return n ? format_rfc3339(*n) : "never";
}

TEST(CronSchedule, NextTimes) {
  EXPECT_EQ(next_after("*/15 * * * *", "2026-01-01T00:07:30Z"), "2026-01-01T00:15:00Z");
  EXPECT_EQ(next_after("*/1 * * * *", "2026-01-01T00:07:00Z"), "2026-01-01T00:08:00Z");
  EXPECT_EQ(next_after("* * * * *", "2026-01-01T00:07:59.999Z"), "2026-01-01T00:08:00Z");
  // Strictly after.
  EXPECT_EQ(next_after("@hourly", "2026-01-01T10:00:00Z"), "2026-01-01T11:00:00Z");
  EXPECT_EQ(next_after("@daily", "2026-01-01T10:00:00Z"), "2026-01-02T00:00:00Z");
  EXPECT_EQ(next_after("@midnight", "2026-01-01T00:00:00Z"), "2026-01-02T00:00:00Z");
  EXPECT_EQ(next_after("@weekly", "2026-11-21T12:00:00Z"), "2026-11-22T00:00:00Z");  // Sunday
  EXPECT_EQ(next_after("@monthly", "2026-01-31T23:59:00Z"), "2026-02-01T00:00:00Z");
  EXPECT_EQ(next_after("@yearly", "2026-06-01T00:00:00Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next_after("@annually", "2026-06-01T00:00:00Z"), "2027-01-01T00:00:00Z");
  // Year and month rollover.
  EXPECT_EQ(next_after("0 0 1 1 *", "2026-12-31T23:59:59Z"), "2027-01-01T00:00:00Z");
  EXPECT_EQ(next_after("59 23 31 12 *", "2026-12-31T23:58:00Z"), "2026-12-31T23:59:00Z");
  EXPECT_EQ(next_after("0 12 31 * *", "2026-04-01T00:00:00Z"), "2026-05-31T12:00:00Z");
  // Leap day, and a day that never comes.
  EXPECT_EQ(next_after("0 0 29 2 *", "2025-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(next_after("0 0 30 2 *", "2025-03-01T00:00:00Z"), "never");
  // Weekdays, names, ranges, steps, lists.
  EXPECT_EQ(next_after("0 9 * * mon-fri", "2026-11-21T10:00:00Z"), "2026-11-23T09:00:00Z");
  EXPECT_EQ(next_after("0 9 * * MON-FRI", "2026-11-23T09:00:00Z"), "2026-11-24T09:00:00Z");
  EXPECT_EQ(next_after("0 0 1 jan,JUL *", "2026-02-01T00:00:00Z"), "2026-07-01T00:00:00Z");
  EXPECT_EQ(next_after("5/20 * * * *", "2026-01-01T00:06:00Z"), "2026-01-01T00:25:00Z");
  EXPECT_EQ(next_after("5/20 * * * *", "2026-01-01T00:46:00Z"), "2026-01-01T01:05:00Z");
  EXPECT_EQ(next_after("10-20/5 3 * * *", "2026-01-01T03:16:00Z"), "2026-01-01T03:20:00Z");
  EXPECT_EQ(next_after("0 0,12 * * *", "2026-01-01T01:00:00Z"), "2026-01-01T12:00:00Z");
  EXPECT_EQ(next_after("0 0 * * 0", "2026-11-21T00:00:00Z"), "2026-11-22T00:00:00Z");
  EXPECT_EQ(next_after("0 0 ? * sun", "2026-11-21T00:00:00Z"), "2026-11-22T00:00:00Z");
  // Day-of-month OR day-of-week when both are restricted: the 13th or any Friday.
  EXPECT_EQ(next_after("0 0 13 * fri", "2026-02-01T00:00:00Z"), "2026-02-06T00:00:00Z");
  // ... but AND when one of them is "*": Fridays only; "*/2" is not "*".
  EXPECT_EQ(next_after("0 0 * * fri", "2026-02-01T00:00:00Z"), "2026-02-06T00:00:00Z");
  EXPECT_EQ(next_after("0 0 */2 * fri", "2026-02-01T00:00:00Z"), "2026-02-03T00:00:00Z");
  // @every: a constant delay from the given second.
  EXPECT_EQ(next_after("@every 90s", "2026-01-01T00:00:10.5Z"), "2026-01-01T00:01:40Z");
  EXPECT_EQ(next_after("@every 1h30m", "2026-01-01T00:00:00Z"), "2026-01-01T01:30:00Z");
  EXPECT_EQ(next_after("  0 0 * * *  ", "2026-01-01T01:00:00Z"), "2026-01-02T00:00:00Z");
  // A step beyond the range gives the start alone (it once wrapped around and set minutes
  // below the start too).
  EXPECT_EQ(next_after("5/4294967295 * * * *", "2026-01-01T00:00:00Z"), "2026-01-01T00:05:00Z");
  EXPECT_EQ(next_after("5/4294967295 * * * *", "2026-01-01T00:05:00Z"), "2026-01-01T01:05:00Z");
}

TEST(CronSchedule, Errors) {
  for (const char* bad : {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *",
                          "* * 32 * *", "* * * 13 *", "* * * * 7", "*/0 * * * *", "5-3 * * * *",
                          "a * * * *", "* * * foo *", "@foo", "@every", "@every x", "1-2-3 * * * *",
                          "1/2/3 * * * *", "TZ=UTC * * * * *", "-1 * * * *"}) {
    EXPECT_FALSE(CronSchedule::parse(bad).has_value()) << bad;
  }
  EXPECT_EQ(CronSchedule::parse("* * * *").error(), "expected exactly 5 fields, found 4: [* * * *]");
  EXPECT_EQ(CronSchedule::parse("60 * * * *").error(),
            "end of range (60) above maximum (59): 60");
}

TEST(MostRecentSchedule, PicksTheLastMissedTime) {
  auto s = *CronSchedule::parse("*/1 * * * *");
  auto r = most_recent_schedule(s, T("2026-01-01T00:00:30Z"), T("2026-01-01T00:05:10Z"));
  ASSERT_TRUE(r.time);
  EXPECT_EQ(format_rfc3339(*r.time), "2026-01-01T00:05:00Z");
  EXPECT_FALSE(r.too_many_missed);
  // None due yet.
  r = most_recent_schedule(s, T("2026-01-01T00:00:30Z"), T("2026-01-01T00:00:59Z"));
  EXPECT_FALSE(r.time);
  // The boundary itself is due.
  r = most_recent_schedule(s, T("2026-01-01T00:00:30Z"), T("2026-01-01T00:01:00Z"));
  ASSERT_TRUE(r.time);
  EXPECT_EQ(format_rfc3339(*r.time), "2026-01-01T00:01:00Z");
  // Days of missed minutes: flagged, and still the most recent.
  r = most_recent_schedule(s, T("2026-01-01T00:00:00Z"), T("2026-01-09T07:33:20Z"));
  ASSERT_TRUE(r.time);
  EXPECT_TRUE(r.too_many_missed);
  EXPECT_EQ(format_rfc3339(*r.time), "2026-01-09T07:33:00Z");
  auto yearly = *CronSchedule::parse("0 0 1 1 *");
  r = most_recent_schedule(yearly, T("1990-06-01T00:00:00Z"), T("2026-03-01T00:00:00Z"));
  ASSERT_TRUE(r.time);
  EXPECT_TRUE(r.too_many_missed == false);  // 36 missed
  EXPECT_EQ(format_rfc3339(*r.time), "2026-01-01T00:00:00Z");
}

}  // namespace
}  // namespace podwarp::controllers
