#include "loop/work_queue.h"

#include "podwarp/asio_run.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

namespace podwarp::loop {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(WorkQueue, DeduplicatesQueuedKeys) {
  asio::io_context io;
  std::vector<std::string> synced;
  WorkQueue q(io.get_executor(), "test", [&](std::string key) -> client::Awaitable<client::Result<void>> {
    synced.push_back(key);
    co_return client::Result<void>{};
  });
  q.add("a");
  q.add("b");
  q.add("a");
  EXPECT_EQ(q.size(), 2u);
  q.start();
  podwarp::run_for(io, 50ms);
  EXPECT_EQ(synced, (std::vector<std::string>{"a", "b"}));
}

TEST(WorkQueue, KeyAddedDuringSyncIsSyncedAgainAfterwardsNeverConcurrently) {
  asio::io_context io;
  int running = 0, max_running = 0, count = 0;
  WorkQueue* qp = nullptr;
  WorkQueue q(
      io.get_executor(), "test",
      [&](std::string key) -> client::Awaitable<client::Result<void>> {
        ++running;
        max_running = std::max(max_running, running);
        if (++count == 1) qp->add(key);  // re-added while being synced
        asio::steady_timer t(io, 5ms);
        co_await t.async_wait(asio::use_awaitable);
        --running;
        co_return client::Result<void>{};
      },
      4);
  qp = &q;
  q.add("a");
  q.start();
  podwarp::run_for(io, 100ms);
  EXPECT_EQ(count, 2);
  EXPECT_EQ(max_running, 1);
}

TEST(WorkQueue, FailedSyncIsRetriedWithGrowingBackoffAndSuccessForgets) {
  asio::io_context io;
  std::vector<std::chrono::steady_clock::time_point> times;
  WorkQueue* qp = nullptr;
  WorkQueue q(io.get_executor(), "test", [&](std::string) -> client::Awaitable<client::Result<void>> {
    times.push_back(std::chrono::steady_clock::now());
    if (times.size() < 4) co_return std::unexpected(client::Error{.code = 500, .reason = "x"});
    co_return client::Result<void>{};
  });
  qp = &q;
  q.add("k");
  q.start();
  podwarp::run_for(io, 300ms);
  ASSERT_EQ(times.size(), 4u);  // 5 + 10 + 20 ms of backoff
  EXPECT_GE(times[2] - times[1], 9ms);
  EXPECT_GE(times[3] - times[2], 19ms);
  EXPECT_EQ(qp->retries("k"), 0);
}

TEST(WorkQueue, AddAfterDelaysAndStopDropsEverything) {
  asio::io_context io;
  int count = 0;
  WorkQueue q(io.get_executor(), "test", [&](std::string) -> client::Awaitable<client::Result<void>> {
    ++count;
    co_return client::Result<void>{};
  });
  q.start();
  q.add_after("x", 30ms);
  podwarp::run_for(io, 10ms);
  EXPECT_EQ(count, 0);
  podwarp::run_for(io, 60ms);
  EXPECT_EQ(count, 1);
  q.add_after("y", 20ms);
  q.stop();
  podwarp::run_for(io, 50ms);
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace podwarp::loop
