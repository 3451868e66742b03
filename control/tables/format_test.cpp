// The shared formatting helpers, and podwarp/time.h as the tables use it.
#include "tables/format.h"

#include <gtest/gtest.h>

#include "tables/test_util.h"
#include "tables/timestamps.h"

namespace podwarp::tables::detail {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::parse;

// Cases from apimachinery's duration_test.go.
TEST(HumanDuration, MatchesApimachinery) {
  struct Case {
    seconds d;
    std::string_view want;
  };
  const Case cases[] = {
      {seconds(-2), "<invalid>"},
      {seconds(-1), "0s"},
      {seconds(0), "0s"},
      {seconds(1), "1s"},
      {seconds(119), "119s"},
      {minutes(2), "2m"},
      {minutes(2) + seconds(1), "2m1s"},
      {minutes(9) + seconds(59), "9m59s"},
      {minutes(10), "10m"},
      {hours(2) + minutes(59), "179m"},
      {hours(3), "3h"},
      {hours(3) + minutes(1), "3h1m"},
      {hours(7) + minutes(59), "7h59m"},
      {hours(8), "8h"},
      {hours(47) + minutes(59), "47h"},
      {hours(48), "2d"},
      {hours(49), "2d1h"},
      {hours(24 * 8 - 1), "7d23h"},
      {hours(24 * 8), "8d"},
      {hours(24 * 365 * 2 - 24), "729d"},
      {hours(24 * 365 * 2), "2y"},
      {hours(24 * 365 * 2 + 24), "2y1d"},
      {hours(24 * 365 * 8 - 24), "7y364d"},
      {hours(24 * 365 * 8), "8y"},
      {hours(24 * 365 * 20), "20y"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(human_duration(c.d), c.want) << c.d.count() << "s";
  }
}

TEST(ParseRfc3339, AcceptsApiTimestamps) {
  using std::chrono::sys_days;
  using namespace std::chrono_literals;
  const auto base = sys_days{std::chrono::year{2025} / 1 / 15};
  EXPECT_EQ(parse_rfc3339("2025-01-15T12:00:00Z").value(), base + 12h);
  EXPECT_EQ(parse_rfc3339("2025-01-15T12:00:00.123456Z").value(), base + 12h + 123456us);
  EXPECT_EQ(parse_rfc3339("2025-01-15T12:00:00.5Z").value(), base + 12h + 500ms);
  EXPECT_EQ(parse_rfc3339("2025-01-15T14:30:00+02:30").value(), base + 12h);
  EXPECT_EQ(parse_rfc3339("2025-01-15T07:00:00-05:00").value(), base + 12h);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z").value().time_since_epoch().count(), 0);
}

TEST(ParseRfc3339, RejectsOthers) {
  for (std::string_view bad :
       {"", "2025-01-15", "2025-01-15 12:00:00Z", "2025-01-15T12:00:00", "2025-02-30T00:00:00Z",
        "2025-01-15T24:00:00Z", "2025-01-15T12:00:00.Z", "2025-01-15T12:00:00Zjunk",
        "0001-01-01T00:00:00Z", "2025-01-15T12:00:00+0200"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST(Since, UnknownForZeroOrMissingTimestamps) {
  const auto now = testing::now();
  json::value v = parse(R"({"a": "2025-01-15T11:59:00Z", "zero": "0001-01-01T00:00:00Z",
                            "null": null, "future": "2025-01-15T12:00:01Z",
                            "far": "2025-01-15T12:05:00Z"})");
  EXPECT_EQ(since(find_path(v, {"a"}), now), "60s");
  EXPECT_EQ(since(find_path(v, {"zero"}), now), "<unknown>");
  EXPECT_EQ(since(find_path(v, {"null"}), now), "<unknown>");
  EXPECT_EQ(since(find_path(v, {"missing"}), now), "<unknown>");
  EXPECT_EQ(since(find_path(v, {"future"}), now), "0s");
  EXPECT_EQ(since(find_path(v, {"far"}), now), "<invalid>");
}

TEST(FormatLabels, SortedOrNone) {
  json::value v = parse(R"({"labels": {"tier": "web", "app": "shop", "empty": ""}, "none": {}})");
  EXPECT_EQ(format_labels(find_path(v, {"labels"})), "app=shop,empty=,tier=web");
  EXPECT_EQ(format_labels(find_path(v, {"none"})), "<none>");
  EXPECT_EQ(format_labels(nullptr), "<none>");
}

TEST(FormatLabelSelector, LikeMetav1) {
  auto show = [](std::string_view selector) {
    json::value v = parse(selector);
    return format_label_selector(&v);
  };
  EXPECT_EQ(show(R"({"matchLabels": {"app": "web"}})"), "app=web");
  EXPECT_EQ(show("{}"), "<none>");
  EXPECT_EQ(show("null"), "<none>");
  EXPECT_EQ(format_label_selector(nullptr), "<none>");
  EXPECT_EQ(show(R"({"matchExpressions": [
                   {"key": "zone", "operator": "In", "values": ["b", "a"]},
                   {"key": "app", "operator": "Exists"},
                   {"key": "gpu", "operator": "DoesNotExist"},
                   {"key": "env", "operator": "NotIn", "values": ["dev"]}]})"),
            "app,env notin (dev),!gpu,zone in (a,b)");
  EXPECT_EQ(show(R"({"matchLabels": {"example.com/team": "a"}})"), "example.com/team=a");
  // Invalid selectors.
  EXPECT_EQ(show(R"({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})"),
            "<error>");
  EXPECT_EQ(show(R"({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})"),
            "<error>");
  EXPECT_EQ(show(R"({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})"),
            "<error>");
  EXPECT_EQ(show(R"({"matchLabels": {"bad key": "x"}})"), "<error>");
  EXPECT_EQ(show(R"({"matchLabels": {"k": "-bad-"}})"), "<error>");
  EXPECT_EQ(show(R"({"matchLabels": {"Example.com/k": "v"}})"), "<error>");
}

TEST(ContainerCells, CommaJoined) {
  json::value v = parse(R"([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}])");
  EXPECT_EQ(container_cells(v.if_array()),
            std::make_pair(std::string("a,b"), std::string("x:1,y")));
  EXPECT_EQ(container_cells(nullptr), std::make_pair(std::string(), std::string()));
}

TEST(Helpers, Misc) {
  EXPECT_EQ(list_with_more({}, false, 0, 3), "<unset>");
  EXPECT_EQ(list_with_more({"a", "b", "c"}, true, 7, 3), "a,b,c + 4 more...");
  EXPECT_EQ(trim_space(" \t msg \r\n"), "msg");
  EXPECT_EQ(trim_space("   "), "");
  EXPECT_EQ(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
  EXPECT_EQ(join_host_port("fd00::1", 443), "[fd00::1]:443");
  EXPECT_EQ(int_or_string(parse("3")), "3");
  EXPECT_EQ(int_or_string(parse(R"("50%")")), "50%");
  EXPECT_EQ(to_lower("HorizontalPodAutoscaler"), "horizontalpodautoscaler");
}

}  // namespace
}  // namespace podwarp::tables::detail
