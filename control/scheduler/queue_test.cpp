#include "scheduler/queue.h"

#include <gtest/gtest.h>

#include "scheduler/test_util.h"

namespace podwarp::scheduler {
namespace {

using namespace std::chrono_literals;

class QueueTest : public ::testing::Test {
 protected:
  PodPtr pod(const std::string& name, int priority = 0,
             const std::string& created = "2026-11-22T00:00:00Z") {
    json::value p =
        testing::pod_json(name, "1m", "1Mi", R"({"priority":)" + std::to_string(priority) + "}");
    p.as_object()["metadata"].as_object()["creationTimestamp"] = created;
    return compile_pod(p, in_);
  }
  std::string pop_name() {
    auto p = q_.pop(now_);
    return p ? (*p)->name : "";
  }

  Interner in_;
  SchedulingQueue q_;
  SchedulingQueue::TimePoint now_ = SchedulingQueue::Clock::now();
};

TEST_F(QueueTest, PopsByPriorityThenCreationThenArrival) {
  q_.add(pod("late", 0, "2026-11-22T00:00:05Z"), now_);
  q_.add(pod("early", 0, "2026-11-22T00:00:01Z"), now_);
  q_.add(pod("high", 100, "2026-11-22T00:00:09Z"), now_);
  q_.add(pod("same1", 0, "2026-11-22T00:00:07Z"), now_);
  q_.add(pod("same2", 0, "2026-11-22T00:00:07Z"), now_);
  EXPECT_EQ(pop_name(), "high");
  EXPECT_EQ(pop_name(), "early");
  EXPECT_EQ(pop_name(), "late");
  EXPECT_EQ(pop_name(), "same1");
  EXPECT_EQ(pop_name(), "same2");
  EXPECT_EQ(pop_name(), "");
  EXPECT_EQ(q_.in_flight_size(), 5u);
}

TEST_F(QueueTest, BackoffDoublesFromOneToTenSeconds) {
  EXPECT_EQ(q_.backoff_duration(1), 1000ms);
  EXPECT_EQ(q_.backoff_duration(2), 2000ms);
  EXPECT_EQ(q_.backoff_duration(3), 4000ms);
  EXPECT_EQ(q_.backoff_duration(4), 8000ms);
  EXPECT_EQ(q_.backoff_duration(5), 10000ms);
  EXPECT_EQ(q_.backoff_duration(50), 10000ms);
}

TEST_F(QueueTest, BackoffAfterError) {
  q_.add(pod("p"), now_);
  ASSERT_EQ(pop_name(), "p");
  q_.backoff("uid-default-p", now_);
  EXPECT_EQ(q_.backoff_size(), 1u);
  EXPECT_EQ(pop_name(), "");
  ASSERT_TRUE(q_.next_backoff_expiry().has_value());
  EXPECT_EQ(*q_.next_backoff_expiry(), now_ + 1s);
  now_ += 999ms;
  EXPECT_EQ(pop_name(), "");
  now_ += 1ms;
  EXPECT_EQ(pop_name(), "p");
  q_.backoff("uid-default-p", now_);
  EXPECT_EQ(*q_.next_backoff_expiry(), now_ + 2s);
  EXPECT_EQ(q_.attempts("uid-default-p"), 2);
}

TEST_F(QueueTest, UnschedulableWaitsForAClusterEvent) {
  q_.add(pod("p"), now_);
  ASSERT_EQ(pop_name(), "p");
  q_.unschedulable("uid-default-p", now_);
  EXPECT_EQ(q_.unschedulable_size(), 1u);
  now_ += 30s;
  EXPECT_EQ(pop_name(), "");  // backoff over, but nothing changed
  q_.move_all(now_);
  EXPECT_EQ(q_.unschedulable_size(), 0u);
  EXPECT_EQ(pop_name(), "p");
  // A move while still backing off goes through backoffQ.
  q_.unschedulable("uid-default-p", now_);
  q_.move_all(now_);
  EXPECT_EQ(q_.backoff_size(), 1u);
  EXPECT_EQ(pop_name(), "");
  now_ += 2s;
  EXPECT_EQ(pop_name(), "p");
}

TEST_F(QueueTest, EventDuringAttemptSendsToBackoff) {
  q_.add(pod("p"), now_);
  ASSERT_EQ(pop_name(), "p");
  q_.move_all(now_);  // e.g. a node was added while p was being scheduled
  q_.unschedulable("uid-default-p", now_);
  EXPECT_EQ(q_.unschedulable_size(), 0u);
  EXPECT_EQ(q_.backoff_size(), 1u);
}

TEST_F(QueueTest, UnschedulableFlushedAfterFiveMinutes) {
  q_.add(pod("p"), now_);
  ASSERT_EQ(pop_name(), "p");
  q_.unschedulable("uid-default-p", now_);
  now_ += 299s;
  EXPECT_EQ(pop_name(), "");
  now_ += 1s;
  EXPECT_EQ(pop_name(), "p");
}

TEST_F(QueueTest, UpdateAndRemove) {
  q_.add(pod("p"), now_);
  ASSERT_EQ(pop_name(), "p");
  q_.unschedulable("uid-default-p", now_);
  now_ += 5s;
  q_.update(pod("p", 7), now_);  // e.g. tolerations added
  EXPECT_EQ(q_.active_size(), 1u);
  auto p = q_.pop(now_);
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)->priority, 7);
  q_.done("uid-default-p");
  EXPECT_FALSE(q_.contains("uid-default-p"));
  q_.add(pod("a"), now_);
  q_.add(pod("a", 3), now_);  // a second add updates
  EXPECT_EQ(q_.active_size(), 1u);
  q_.remove("uid-default-a");
  EXPECT_EQ(q_.active_size(), 0u);
  EXPECT_EQ(pop_name(), "");
}

}  // namespace
}  // namespace podwarp::scheduler
