#include "batch/job_logic.h"

#include <gtest/gtest.h>

namespace podwarp::controllers::job {
namespace {

using namespace std::chrono_literals;

TEST(JobLogic, WantActive) {
  // completions 5, parallelism 2.
  EXPECT_EQ(want_active(2, 5, 0, 0), 2);
  EXPECT_EQ(want_active(2, 5, 3, 2), 2);
  EXPECT_EQ(want_active(2, 5, 4, 1), 1);
  EXPECT_EQ(want_active(2, 5, 5, 0), 0);
  EXPECT_EQ(want_active(2, 5, 7, 0), 0);  // never negative
  EXPECT_EQ(want_active(10, 3, 0, 0), 3);
  EXPECT_EQ(want_active(0, 3, 0, 0), 0);
  // Work queue (no completions): parallelism until the first success, then what runs.
  EXPECT_EQ(want_active(3, std::nullopt, 0, 1), 3);
  EXPECT_EQ(want_active(3, std::nullopt, 1, 2), 2);
  EXPECT_EQ(creations_per_sync(3), 3);
  EXPECT_EQ(creations_per_sync(-1), 0);
  EXPECT_EQ(creations_per_sync(100000), 500);
}

TEST(JobLogic, FailureBackoff) {
  EXPECT_EQ(failure_backoff(0, 10s, 360s), 0ms);
  EXPECT_EQ(failure_backoff(1, 10s, 360s), 10s);
  EXPECT_EQ(failure_backoff(2, 10s, 360s), 20s);
  EXPECT_EQ(failure_backoff(6, 10s, 360s), 320s);
  EXPECT_EQ(failure_backoff(7, 10s, 360s), 360s);
  EXPECT_EQ(failure_backoff(1000, 10s, 360s), 360s);
}

TEST(JobLogic, CompletedIndexes) {
  EXPECT_EQ(format_indexes({}), "");
  EXPECT_EQ(format_indexes({1, 3, 4, 5, 7}), "1,3-5,7");
  EXPECT_EQ(format_indexes({0, 1}), "0-1");
  EXPECT_EQ(parse_indexes("1,3-5,7", 10), (std::set<std::int64_t>{1, 3, 4, 5, 7}));
  EXPECT_EQ(parse_indexes("1,3-5,7", 5), (std::set<std::int64_t>{1, 3, 4}));
  EXPECT_EQ(parse_indexes("x,2,5-3,-1,4", 10), (std::set<std::int64_t>{2, 4}));
  EXPECT_EQ(first_pending_indexes(5, {0, 2}, {1}, 2), (std::set<std::int64_t>{3, 4}));
  EXPECT_EQ(first_pending_indexes(5, {0, 2}, {1}, 1), (std::set<std::int64_t>{3}));
  EXPECT_EQ(first_pending_indexes(3, {0, 1, 2}, {}, 2), (std::set<std::int64_t>{}));
}

TEST(JobLogic, Conditions) {
  json::object status;
  EXPECT_TRUE(set_condition(status, "Complete", "True", "CompletionsReached", "m", "t1"));
  EXPECT_FALSE(set_condition(status, "Complete", "True", "CompletionsReached", "m", "t2"));
  json::value v = status;
  ASSERT_NE(find_condition(v, "Complete"), nullptr);
  EXPECT_EQ(find_condition(v, "Complete")->at("lastTransitionTime"), "t1");
  json::value job = json::object{{"status", status}};
  EXPECT_TRUE(job_finished(job));
  EXPECT_TRUE(set_condition(status, "Complete", "False", "x", "m", "t3"));
  job = json::object{{"status", status}};
  EXPECT_FALSE(job_finished(job));
  json::value pod = json::object{
      {"metadata", json::object{{"annotations", json::object{{kCompletionIndex, "3"}}}}}};
  EXPECT_EQ(pod_index(pod), 3);
  pod = json::object{{"metadata", json::object{{"labels", json::object{{kCompletionIndex, "x"}}}}}};
  EXPECT_EQ(pod_index(pod), std::nullopt);
}

}  // namespace
}  // namespace podwarp::controllers::job
