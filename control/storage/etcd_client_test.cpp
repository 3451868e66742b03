// EtcdClient against a real etcd (EtcdProcess): one server for the suite, one key prefix per
// test. Every test drives an io_context (io_uring backend) with co_spawn; waits are on
// completions with generous deadlines, never on sleeps.
#include "storage/etcd_client.h"

#include "podwarp/asio_run.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <cstring>

#include "storage/etcd_process.h"

namespace podwarp::storage {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// ASSERT_* returns, which a coroutine cannot: record the failure and co_return.
#define CO_ASSERT(cond)                            \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "CO_ASSERT failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (0)
#define CO_ASSERT_OK(expr)                                                 \
  do {                                                                     \
    auto&& co_result_ = (expr);                                            \
    if (!co_result_) {                                                     \
      ADD_FAILURE() << #expr << " failed: " << co_result_.error().message; \
      co_return;                                                           \
    }                                                                      \
  } while (0)

// Runs one coroutine to completion on io. A hang fails loudly instead of blocking ctest.
void run(asio::io_context& io, std::function<awaitable<void>()> body,
         steady_clock::duration timeout = seconds(180)) {
  auto done = std::make_shared<bool>(false);
  auto error = std::make_shared<std::exception_ptr>();
  asio::co_spawn(io, body(), [done, error](std::exception_ptr e) {
    *done = true;
    *error = e;
  });
  io.restart();
  podwarp::run_until(io, [&] { return *done; }, timeout);
  if (!*done) {
    // Pending completions refer to this io_context: leaving would be unsafe.
    std::fprintf(stderr, "test coroutine did not finish within the timeout\n");
    std::abort();
  }
  if (*error) std::rethrow_exception(*error);
}

// Collects a watch's callbacks; a coroutine waits for a condition on them.
struct Inbox {
  explicit Inbox(asio::any_io_executor ex) : timer(ex) {}

  std::vector<WatchEvent> events;
  std::vector<std::int64_t> progress;  // revisions of progress notifications
  std::optional<StorageError> error;
  int error_calls = 0;
  asio::steady_timer timer;

  EtcdClient::EventsFn on_events() {
    return [this](std::vector<WatchEvent> batch, std::int64_t rev) {
      if (batch.empty()) progress.push_back(rev);
      for (auto& e : batch) events.push_back(std::move(e));
      timer.cancel();
    };
  }
  EtcdClient::ErrorFn on_error() {
    return [this](StorageError e) {
      error = std::move(e);
      ++error_calls;
      timer.cancel();
    };
  }
  awaitable<bool> wait(std::function<bool()> ready, steady_clock::duration timeout = seconds(60)) {
    const auto deadline = steady_clock::now() + timeout;
    while (!ready()) {
      if (steady_clock::now() >= deadline) co_return false;
      timer.expires_at(deadline);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return true;
  }
};

awaitable<void> sleep_for(steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

// A loopback port nothing listens on (bound, read and closed).
std::string dead_endpoint() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::address_v4::loopback(), 0});
  const auto port = a.local_endpoint().port();
  return "http://127.0.0.1:" + std::to_string(port);
}

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = EtcdProcess::start();
    ASSERT_TRUE(started) << started.error().what();
    etcd_ = started->release();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    client_ = make_etcd_client(io_.get_executor(), {etcd_->endpoint()});
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix_ = std::string("/podwarp-test/") + info->name() + "/";
  }

  static EtcdProcess* etcd_;
  asio::io_context io_{1};
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
};
EtcdProcess* EtcdClientTest::etcd_ = nullptr;

TEST(PrefixEnd, IncrementsTheLastByteThatCan) {
  EXPECT_EQ(prefix_end("/registry/pods/"), "/registry/pods0");
  EXPECT_EQ(prefix_end("a"), "b");
  EXPECT_EQ(prefix_end("a\xff"), "b");
  EXPECT_EQ(prefix_end("\xff\xff"), std::string(1, '\0'));
  EXPECT_EQ(prefix_end(""), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, CreateTwiceIsAlreadyExistsWithCurrent) {
  run(io_, [&]() -> awaitable<void> {
    const std::string key = prefix_ + "a";
    auto first = co_await client_->create(key, "v1");
    CO_ASSERT_OK(first);
    EXPECT_EQ(first->key, key);
    EXPECT_EQ(first->value, "v1");
    EXPECT_GT(first->mod_revision, 0);
    EXPECT_EQ(first->create_revision, first->mod_revision);

    auto again = co_await client_->create(key, "v2");
    CO_ASSERT(!again);
    EXPECT_EQ(again.error().code, StorageErrc::kAlreadyExists);
    EXPECT_NE(again.error().message.find(key), std::string::npos) << again.error().message;
    CO_ASSERT(again.error().current.has_value());
    EXPECT_EQ(again.error().current->value, "v1");
    EXPECT_EQ(again.error().current->mod_revision, first->mod_revision);

    auto got = co_await client_->range(key);
    CO_ASSERT_OK(got);
    CO_ASSERT(got->kvs.size() == 1);
    EXPECT_EQ(got->kvs[0].value, "v1");
  });
}

TEST_F(EtcdClientTest, UpdateIsCompareAndSwapOnModRevision) {
  run(io_, [&]() -> awaitable<void> {
    const std::string key = prefix_ + "a";
    auto created = co_await client_->create(key, "v1");
    CO_ASSERT_OK(created);

    auto updated = co_await client_->update(key, "v2", created->mod_revision);
    CO_ASSERT_OK(updated);
    EXPECT_GT(updated->mod_revision, created->mod_revision);
    EXPECT_EQ(updated->create_revision, created->create_revision);
    EXPECT_EQ(updated->value, "v2");

    // The same expected revision again: someone (we) changed it since.
    auto stale = co_await client_->update(key, "v3", created->mod_revision);
    CO_ASSERT(!stale);
    EXPECT_EQ(stale.error().code, StorageErrc::kConflict);
    CO_ASSERT(stale.error().current.has_value());
    EXPECT_EQ(stale.error().current->value, "v2");
    EXPECT_EQ(stale.error().current->mod_revision, updated->mod_revision);

    // expected 0: unconditional, on an existing key.
    auto forced = co_await client_->update(key, "v4", 0);
    CO_ASSERT_OK(forced);
    EXPECT_GT(forced->mod_revision, updated->mod_revision);
    EXPECT_EQ(forced->create_revision, created->create_revision);
  });
}

TEST_F(EtcdClientTest, UpdateOfMissingKeyIsNotFound) {
  run(io_, [&]() -> awaitable<void> {
    const std::string key = prefix_ + "missing";
    auto with_rev = co_await client_->update(key, "v", 12345);
    CO_ASSERT(!with_rev);
    EXPECT_EQ(with_rev.error().code, StorageErrc::kNotFound);
    EXPECT_FALSE(with_rev.error().current.has_value());

    auto without_rev = co_await client_->update(key, "v", 0);
    CO_ASSERT(!without_rev);
    EXPECT_EQ(without_rev.error().code, StorageErrc::kNotFound);

    auto got = co_await client_->range(key);
    CO_ASSERT_OK(got);
    EXPECT_TRUE(got->kvs.empty()) << "update must never create";
  });
}

TEST_F(EtcdClientTest, RemoveWithAndWithoutExpectedRevision) {
  run(io_, [&]() -> awaitable<void> {
    const std::string key = prefix_ + "a";
    auto created = co_await client_->create(key, "v1");
    CO_ASSERT_OK(created);

    auto wrong = co_await client_->remove(key, created->mod_revision + 1000);
    CO_ASSERT(!wrong);
    EXPECT_EQ(wrong.error().code, StorageErrc::kConflict);
    CO_ASSERT(wrong.error().current.has_value());
    EXPECT_EQ(wrong.error().current->mod_revision, created->mod_revision);

    auto removed = co_await client_->remove(key, created->mod_revision);
    CO_ASSERT_OK(removed);
    EXPECT_EQ(removed->value, "v1");
    EXPECT_EQ(removed->create_revision, created->create_revision);
    EXPECT_GT(removed->mod_revision, created->mod_revision);  // the deletion's revision

    auto twice = co_await client_->remove(key, created->mod_revision);
    CO_ASSERT(!twice);
    EXPECT_EQ(twice.error().code, StorageErrc::kNotFound);

    auto recreated = co_await client_->create(key, "v2");
    CO_ASSERT_OK(recreated);
    auto unconditional = co_await client_->remove(key, 0);
    CO_ASSERT_OK(unconditional);
    EXPECT_EQ(unconditional->value, "v2");
    EXPECT_GT(unconditional->mod_revision, recreated->mod_revision);

    auto gone = co_await client_->remove(key, 0);
    CO_ASSERT(!gone);
    EXPECT_EQ(gone.error().code, StorageErrc::kNotFound);
  });
}

TEST_F(EtcdClientTest, RangePrefixLimitMoreCountAndRevision) {
  run(io_, [&]() -> awaitable<void> {
    const std::string dir = prefix_ + "pods/";
    std::vector<std::int64_t> revs;
    for (int i = 0; i < 5; ++i) {
      auto r = co_await client_->create(dir + "p" + std::to_string(i), "v" + std::to_string(i));
      CO_ASSERT_OK(r);
      revs.push_back(r->mod_revision);
    }
    // Siblings that share the string prefix but are outside the "directory".
    CO_ASSERT_OK(co_await client_->create(prefix_ + "pods", "x"));
    CO_ASSERT_OK(co_await client_->create(prefix_ + "pods0", "x"));

    const RangeOptions prefixed{.prefix = true};
    auto all = co_await client_->range(dir, prefixed);
    CO_ASSERT_OK(all);
    CO_ASSERT(all->kvs.size() == 5);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(all->kvs[i].key, dir + "p" + std::to_string(i));  // sorted by key
      EXPECT_EQ(all->kvs[i].value, "v" + std::to_string(i));
      EXPECT_EQ(all->kvs[i].mod_revision, revs[i]);
    }
    EXPECT_FALSE(all->more);
    EXPECT_EQ(all->count, 5);
    EXPECT_GE(all->revision, revs.back());

    const RangeOptions first_two{.limit = 2, .prefix = true};
    auto page = co_await client_->range(dir, first_two);
    CO_ASSERT_OK(page);
    EXPECT_EQ(page->kvs.size(), 2u);
    EXPECT_TRUE(page->more);
    EXPECT_EQ(page->count, 5);

    // The next page: from just after the last key to the prefix's end.
    const RangeOptions rest{.limit = 10, .range_end = prefix_end(dir)};
    auto next = co_await client_->range(page->kvs.back().key + std::string(1, '\0'), rest);
    CO_ASSERT_OK(next);
    EXPECT_EQ(next->kvs.size(), 3u);
    EXPECT_FALSE(next->more);

    const RangeOptions count{.prefix = true, .count_only = true};
    auto counted = co_await client_->range(dir, count);
    CO_ASSERT_OK(counted);
    EXPECT_TRUE(counted->kvs.empty());
    EXPECT_EQ(counted->count, 5);

    const RangeOptions keys_only{.prefix = true, .keys_only = true};
    auto keys = co_await client_->range(dir, keys_only);
    CO_ASSERT_OK(keys);
    CO_ASSERT(keys->kvs.size() == 5);
    EXPECT_TRUE(keys->kvs[0].value.empty());

    // A read at an older revision sees the older value.
    auto changed = co_await client_->update(dir + "p0", "new", revs[0]);
    CO_ASSERT_OK(changed);
    const RangeOptions at_first{.revision = revs[0]};
    auto old = co_await client_->range(dir + "p0", at_first);
    CO_ASSERT_OK(old);
    CO_ASSERT(old->kvs.size() == 1);
    EXPECT_EQ(old->kvs[0].value, "v0");
    const RangeOptions dir_at_first{.revision = revs[0], .prefix = true};
    auto before_any = co_await client_->range(dir, dir_at_first);
    CO_ASSERT_OK(before_any);
    EXPECT_EQ(before_any->kvs.size(), 1u);

    auto missing = co_await client_->range(prefix_ + "nope");
    CO_ASSERT_OK(missing);
    EXPECT_TRUE(missing->kvs.empty());
    EXPECT_EQ(missing->count, 0);
  });
}

TEST_F(EtcdClientTest, WatchFromRevisionSeesPutsAndDeletesInOrderWithPrevKv) {
  run(io_, [&]() -> awaitable<void> {
    const std::string key = prefix_ + "a";
    // History before the watch starts: it must be replayed from start_revision.
    auto c = co_await client_->create(key, "v1");
    CO_ASSERT_OK(c);
    auto u = co_await client_->update(key, "v2", c->mod_revision);
    CO_ASSERT_OK(u);
    auto d = co_await client_->remove(key, u->mod_revision);
    CO_ASSERT_OK(d);
    CO_ASSERT_OK(co_await client_->put(prefix_ + "outside-before", "x"));

    Inbox inbox(io_.get_executor());
    auto watch =
        client_->watch(prefix_ + "a", c->mod_revision, /*prev_kv=*/true, inbox.on_events(), inbox.on_error());
    CO_ASSERT(co_await inbox.wait([&] { return inbox.events.size() >= 3 || inbox.error; }));
    CO_ASSERT(!inbox.error);

    // Live events after the backlog.
    auto c2 = co_await client_->create(prefix_ + "a/b", "w1");
    CO_ASSERT_OK(c2);
    CO_ASSERT(co_await inbox.wait([&] { return inbox.events.size() >= 4 || inbox.error; }));
    CO_ASSERT(!inbox.error);
    CO_ASSERT(inbox.events.size() == 4);

    const auto& e = inbox.events;
    EXPECT_EQ(e[0].type, WatchEvent::Type::kPut);
    EXPECT_EQ(e[0].kv.key, key);
    EXPECT_EQ(e[0].kv.value, "v1");
    EXPECT_EQ(e[0].kv.mod_revision, c->mod_revision);
    EXPECT_TRUE(e[0].prev_kv.key.empty());  // a creation has no previous value

    EXPECT_EQ(e[1].type, WatchEvent::Type::kPut);
    EXPECT_EQ(e[1].kv.value, "v2");
    EXPECT_EQ(e[1].kv.mod_revision, u->mod_revision);
    EXPECT_EQ(e[1].kv.create_revision, c->mod_revision);
    EXPECT_EQ(e[1].prev_kv.value, "v1");
    EXPECT_EQ(e[1].prev_kv.mod_revision, c->mod_revision);

    EXPECT_EQ(e[2].type, WatchEvent::Type::kDelete);
    EXPECT_EQ(e[2].kv.key, key);
    EXPECT_EQ(e[2].kv.mod_revision, d->mod_revision);
    EXPECT_EQ(e[2].prev_kv.value, "v2");
    EXPECT_EQ(e[2].prev_kv.mod_revision, u->mod_revision);

    EXPECT_EQ(e[3].type, WatchEvent::Type::kPut);
    EXPECT_EQ(e[3].kv.key, prefix_ + "a/b");
    EXPECT_EQ(e[3].kv.mod_revision, c2->mod_revision);
    for (std::size_t i = 1; i < e.size(); ++i) {
      EXPECT_GT(e[i].kv.mod_revision, e[i - 1].kv.mod_revision);
    }
    EXPECT_EQ(inbox.error_calls, 0);
  });
}

TEST_F(EtcdClientTest, WatchWithoutPrevKvCarriesOnlyTheNewValue) {
  run(io_, [&]() -> awaitable<void> {
    auto c = co_await client_->create(prefix_ + "k", "v1");
    CO_ASSERT_OK(c);
    Inbox inbox(io_.get_executor());
    auto watch =
        client_->watch(prefix_, c->mod_revision + 1, /*prev_kv=*/false, inbox.on_events(), inbox.on_error());
    auto u = co_await client_->update(prefix_ + "k", "v2", c->mod_revision);
    CO_ASSERT_OK(u);
    auto d = co_await client_->remove(prefix_ + "k", u->mod_revision);
    CO_ASSERT_OK(d);
    CO_ASSERT(co_await inbox.wait([&] { return inbox.events.size() >= 2 || inbox.error; }));
    CO_ASSERT(!inbox.error);
    EXPECT_EQ(inbox.events[0].kv.value, "v2");
    EXPECT_TRUE(inbox.events[0].prev_kv.value.empty());
    EXPECT_EQ(inbox.events[1].type, WatchEvent::Type::kDelete);
    EXPECT_TRUE(inbox.events[1].prev_kv.key.empty());
  });
}

TEST_F(EtcdClientTest, WatchAndRangeAtCompactedRevisionAreCompacted) {
  run(io_, [&]() -> awaitable<void> {
    auto r1 = co_await client_->put(prefix_ + "a", "1");
    CO_ASSERT_OK(r1);
    auto r2 = co_await client_->put(prefix_ + "a", "2");
    CO_ASSERT_OK(r2);
    auto compacted = co_await client_->compact(*r2);
    CO_ASSERT_OK(compacted);
    EXPECT_GE(*compacted, *r2);

    Inbox inbox(io_.get_executor());
    auto watch = client_->watch(prefix_, *r1, /*prev_kv=*/true, inbox.on_events(), inbox.on_error());
    CO_ASSERT(co_await inbox.wait([&] { return inbox.error.has_value(); }));
    EXPECT_EQ(inbox.error->code, StorageErrc::kCompacted) << inbox.error->message;
    EXPECT_EQ(inbox.error->compact_revision, *r2);
    EXPECT_TRUE(inbox.events.empty());

    const RangeOptions at_r1{.revision = *r1};
    auto old = co_await client_->range(prefix_ + "a", at_r1);
    CO_ASSERT(!old);
    EXPECT_EQ(old.error().code, StorageErrc::kCompacted) << old.error().message;

    auto again = co_await client_->compact(*r1);
    CO_ASSERT(!again);
    EXPECT_EQ(again.error().code, StorageErrc::kCompacted) << again.error().message;

    // on_error is the last call: nothing more arrives.
    CO_ASSERT_OK(co_await client_->put(prefix_ + "b", "x"));
    co_await sleep_for(milliseconds(200));
    EXPECT_EQ(inbox.error_calls, 1);
    EXPECT_TRUE(inbox.events.empty());
  });
}

// Regression guard for the reactor's lifetime: handles destroyed before, during and after
// events, and from inside their own callback, with a writer running all along. Nothing may
// be called after the handle is gone (and ASan builds see no use-after-free).
TEST_F(EtcdClientTest, DestroyingWatchesMidStreamIsSafe) {
  run(io_, [&]() -> awaitable<void> {
    bool writing = true;
    bool writer_done = false;
    int writes = 0;
    asio::steady_timer writer_stopped(io_.get_executor(), steady_clock::time_point::max());
    asio::co_spawn(
        io_,
        [&]() -> awaitable<void> {
          while (writing) {
            auto r = co_await client_->put(prefix_ + "k" + std::to_string(writes % 7), "x");
            if (!r) ADD_FAILURE() << r.error().message;
            ++writes;
          }
          writer_done = true;
          writer_stopped.cancel();
        },
        asio::detached);

    constexpr int kCycles = 300;
    int late_calls = 0;
    int got_events = 0;
    for (int i = 0; i < kCycles; ++i) {
      auto gone = std::make_shared<bool>(false);
      auto seen = std::make_shared<int>(0);
      std::unique_ptr<EtcdClient::Watch> watch;
      asio::steady_timer wake(io_.get_executor());
      const int mode = i % 4;
      auto on_events = [&, gone, seen, mode](std::vector<WatchEvent>, std::int64_t) {
        if (*gone) {
          ++late_calls;  // and touch nothing of a finished cycle
          return;
        }
        ++*seen;
        wake.cancel();
        if (mode == 3) {  // the callback destroys its own watch
          watch.reset();
          *gone = true;
        }
      };
      auto on_error = [&, gone](StorageError e) {
        if (*gone) {
          ++late_calls;
          return;
        }
        ADD_FAILURE() << "unexpected watch error: " << e.message;
      };
      watch = client_->watch(prefix_, 0, /*prev_kv=*/true, on_events, on_error);
      if (mode == 0) {  // right away, before the stream is even up
        watch.reset();
        *gone = true;
      } else {
        // Wait for an event (modes 1-3) or a little while (to cancel mid-stream).
        const auto deadline = steady_clock::now() + seconds(30);
        while (*seen == 0 && steady_clock::now() < deadline) {
          wake.expires_at(mode == 2 ? steady_clock::now() + milliseconds(1) : deadline);
          co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
          if (mode == 2) break;
        }
        if (mode != 2 && *seen == 0) ADD_FAILURE() << "no event within 30 s in cycle " << i;
        got_events += *seen > 0;
        watch.reset();
        *gone = true;
      }
      // Let anything already in flight drain: it must be dropped.
      co_await sleep_for(milliseconds(i % 10 == 0 ? 20 : 0));
    }
    writing = false;
    while (!writer_done) {
      co_await writer_stopped.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await sleep_for(milliseconds(200));  // a late callback would show up here
    EXPECT_EQ(late_calls, 0);
    EXPECT_GT(got_events, kCycles / 2);
    EXPECT_GT(writes, 0);
  });
}

// Starts every (key, value) create at once on io and waits for all of them; results in the
// same order.
awaitable<std::vector<Result<KeyValue>>> create_all(
    asio::io_context& io, EtcdClient& client,
    const std::vector<std::pair<std::string, std::string>>& creates) {
  std::vector<std::optional<Result<KeyValue>>> got(creates.size());
  std::size_t finished = 0;
  asio::steady_timer all_done(io.get_executor(), steady_clock::time_point::max());
  for (std::size_t i = 0; i < creates.size(); ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> awaitable<void> {
          got[i] = co_await client.create(creates[i].first, creates[i].second);
          if (++finished == creates.size()) all_done.cancel();
        },
        asio::detached);
  }
  while (finished < creates.size()) {
    co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  std::vector<Result<KeyValue>> out;
  for (auto& g : got) out.push_back(std::move(*g));
  co_return out;
}

// Every create succeeds and returns the revision etcd stored it at. Under the default group
// commit, creates made while one is out share Txns (and so revisions); without it each
// create has a revision of its own.
TEST_F(EtcdClientTest, ThousandConcurrentCreatesAllSucceed) {
  for (int in_flight : {1, 0}) {
    run(io_, [&]() -> awaitable<void> {
      auto client = make_etcd_client(io_.get_executor(), {etcd_->endpoint()},
                                     EtcdClientOptions{.create_txns_in_flight = in_flight});
      const std::string prefix = prefix_ + std::to_string(in_flight) + "/";
      constexpr int kCreates = 1000;
      std::vector<std::pair<std::string, std::string>> creates;
      for (int i = 0; i < kCreates; ++i) creates.emplace_back(prefix + std::to_string(i), "v");
      const auto start = steady_clock::now();
      std::vector<Result<KeyValue>> results = co_await create_all(io_, *client, creates);
      const auto elapsed = steady_clock::now() - start;
      std::printf("[ info ] %d concurrent creates, %d create Txns in flight: %.1f ms total\n",
                  kCreates, in_flight,
                  std::chrono::duration<double, std::milli>(elapsed).count());
      std::map<std::string, std::int64_t> returned;
      std::set<std::int64_t> revisions;
      for (auto& r : results) {
        CO_ASSERT_OK(r);
        EXPECT_EQ(r->create_revision, r->mod_revision);
        returned[r->key] = r->mod_revision;
        revisions.insert(r->mod_revision);
      }
      const RangeOptions all{.prefix = true};
      auto stored = co_await client->range(prefix, all);
      CO_ASSERT_OK(stored);
      CO_ASSERT(stored->kvs.size() == kCreates);
      for (const KeyValue& kv : stored->kvs) {
        EXPECT_EQ(kv.mod_revision, returned[kv.key]) << kv.key;
      }
      EXPECT_GE(stored->revision, *revisions.rbegin());
      if (in_flight == 0) {
        EXPECT_EQ(revisions.size(), static_cast<std::size_t>(kCreates));
      } else {
        // The first create goes alone; the 999 made while it is out are grouped, at most
        // 64 to a Txn.
        EXPECT_LT(revisions.size(), static_cast<std::size_t>(kCreates) / 4);
        EXPECT_GE(revisions.size(), 1u + (kCreates - 1 + 63) / 64);
      }
    });
  }
}

// In one group: a key that exists fails only its own create (with the current value), a key
// asked for twice is created once (the second waits for a later Txn and finds it), and a
// value too large to group goes in a Txn of its own.
TEST_F(EtcdClientTest, GroupedCreatesFailAndSucceedOneByOne) {
  run(io_, [&]() -> awaitable<void> {
    const std::string taken = prefix_ + "taken";
    CO_ASSERT_OK(co_await client_->create(taken, "old"));
    std::vector<std::pair<std::string, std::string>> creates = {
        {prefix_ + "first", "f"},  // goes alone; the others queue behind it
        {prefix_ + "a", "a"},
        {taken, "new"},
        {prefix_ + "twice", "1"},
        {prefix_ + "twice", "2"},
        {prefix_ + "big", std::string(200 * 1024, 'x')},
        {prefix_ + "b", "b"},
    };
    std::vector<Result<KeyValue>> r = co_await create_all(io_, *client_, creates);
    CO_ASSERT(r.size() == creates.size());
    CO_ASSERT_OK(r[0]);
    CO_ASSERT_OK(r[1]);
    CO_ASSERT_OK(r[6]);
    EXPECT_EQ(r[1]->mod_revision, r[6]->mod_revision) << "a and b were grouped";
    EXPECT_GT(r[1]->mod_revision, r[0]->mod_revision);
    CO_ASSERT(!r[2]);
    EXPECT_EQ(r[2].error().code, StorageErrc::kAlreadyExists);
    CO_ASSERT(r[2].error().current.has_value());
    EXPECT_EQ(r[2].error().current->value, "old");
    CO_ASSERT_OK(r[3]);
    EXPECT_EQ(r[3]->mod_revision, r[1]->mod_revision);
    CO_ASSERT(!r[4]);
    EXPECT_EQ(r[4].error().code, StorageErrc::kAlreadyExists);
    CO_ASSERT(r[4].error().current.has_value());
    EXPECT_EQ(r[4].error().current->value, "1");
    CO_ASSERT_OK(r[5]);
    EXPECT_NE(r[5]->mod_revision, r[1]->mod_revision) << "the large value went alone";
    for (const char* k : {"a", "b", "twice", "big", "taken"}) {
      auto got = co_await client_->range(prefix_ + k);
      CO_ASSERT_OK(got);
      CO_ASSERT(got->kvs.size() == 1);
    }
    auto got = co_await client_->range(taken);
    CO_ASSERT_OK(got);
    EXPECT_EQ(got->kvs[0].value, "old");
  });
}

// etcd started with --max-txn-ops=4 refuses a group of more (INVALID_ARGUMENT, nothing
// applied): each of its creates is then sent alone and succeeds.
TEST(EtcdClientOwnServer, GroupsEtcdRefusesAreSentOneByOne) {
  EtcdOptions opts;
  opts.extra_args = {"--max-txn-ops=4"};
  auto etcd = EtcdProcess::start(opts);
  ASSERT_TRUE(etcd) << etcd.error().what();
  asio::io_context io{1};
  run(io, [&]() -> awaitable<void> {
    auto client = make_etcd_client(io.get_executor(), {(*etcd)->endpoint()});
    std::vector<std::pair<std::string, std::string>> creates;
    for (int i = 0; i < 20; ++i) creates.emplace_back("/refused/" + std::to_string(i), "v");
    std::vector<Result<KeyValue>> r = co_await create_all(io, *client, creates);
    std::set<std::int64_t> revisions;
    for (auto& one : r) {
      CO_ASSERT_OK(one);
      revisions.insert(one->mod_revision);
    }
    EXPECT_EQ(revisions.size(), creates.size());
    const RangeOptions count{.prefix = true, .count_only = true};
    auto counted = co_await client->range("/refused/", count);
    CO_ASSERT_OK(counted);
    EXPECT_EQ(counted->count, 20);
  });
}

// A baseline for the lead, not a timed assertion (benchmarks live in tests/bench).
TEST_F(EtcdClientTest, SequentialCreateLatency) {
  run(io_, [&]() -> awaitable<void> {
    constexpr int kCreates = 1000;
    std::vector<double> ms;
    std::int64_t last = 0;
    for (int i = 0; i < kCreates; ++i) {
      const auto t0 = steady_clock::now();
      auto r = co_await client_->create(prefix_ + std::to_string(i), "{\"kind\":\"Pod\"}");
      ms.push_back(std::chrono::duration<double, std::milli>(steady_clock::now() - t0).count());
      CO_ASSERT_OK(r);
      EXPECT_GT(r->mod_revision, last);  // sequential creates: strictly increasing
      last = r->mod_revision;
    }
    std::sort(ms.begin(), ms.end());
    std::printf("[ info ] %d sequential creates: median %.3f ms, p90 %.3f ms, p99 %.3f ms\n",
                kCreates, ms[kCreates / 2], ms[kCreates * 9 / 10], ms[kCreates * 99 / 100]);
    ::testing::Test::RecordProperty("create_median_us", static_cast<int>(ms[kCreates / 2] * 1000));
  });
}

TEST_F(EtcdClientTest, FailsOverToTheNextEndpointAfterUnavailable) {
  auto client = make_etcd_client(io_.get_executor(), {dead_endpoint() + "," + etcd_->endpoint()});
  run(io_, [&]() -> awaitable<void> {
    auto first = co_await client->range(prefix_ + "a");
    CO_ASSERT(!first);
    EXPECT_EQ(first.error().code, StorageErrc::kUnavailable);
    EXPECT_NE(first.error().message.find("Range"), std::string::npos) << first.error().message;
    EXPECT_NE(first.error().message.find(prefix_ + "a"), std::string::npos);

    auto second = co_await client->create(prefix_ + "a", "v");
    CO_ASSERT_OK(second);
  });
}

// 24 values of 1 MiB: the response (24 MiB) is larger than a stream's flow-control window
// (16 MiB), so the client must keep granting window while it reads.
TEST_F(EtcdClientTest, RangeLargerThanTheFlowControlWindow) {
  run(io_, [&]() -> awaitable<void> {
    constexpr int kKeys = 24;
    std::string value(1 << 20, 'v');
    for (int i = 0; i < kKeys; ++i) {
      value[0] = static_cast<char>('a' + i);
      CO_ASSERT_OK(co_await client_->put(prefix_ + std::to_string(100 + i), value));
    }
    const RangeOptions all{.prefix = true};
    auto got = co_await client_->range(prefix_, all);
    CO_ASSERT_OK(got);
    CO_ASSERT(got->kvs.size() == static_cast<std::size_t>(kKeys));
    for (int i = 0; i < kKeys; ++i) {
      EXPECT_EQ(got->kvs[i].value.size(), value.size());
      EXPECT_EQ(got->kvs[i].value[0], static_cast<char>('a' + i));
    }
  });
}

// A host name instead of an address (resolved; each address it resolves to is tried in turn).
TEST_F(EtcdClientTest, ConnectsByHostName) {
  const std::string port = etcd_->endpoint().substr(etcd_->endpoint().rfind(':') + 1);
  auto client = make_etcd_client(io_.get_executor(), {"http://localhost:" + port});
  run(io_, [&]() -> awaitable<void> {
    auto created = co_await client->create(prefix_ + "a", "v");
    CO_ASSERT_OK(created);
    client.reset();  // closes its connection while io_ still runs
  });
}

// A peer that is not etcd (it answers with HTTP/1.1 and hangs up): the call fails with
// kUnavailable and a message naming the RPC and the protocol error; nothing crashes or hangs.
TEST(EtcdClient, APeerThatIsNotEtcdFailsTheCall) {
  asio::io_context io(1);
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  const auto port = acceptor.local_endpoint().port();
  auto client = make_etcd_client(io.get_executor(), {"127.0.0.1:" + std::to_string(port)});
  asio::co_spawn(
      io,
      [&]() -> awaitable<void> {
        auto peer = co_await acceptor.async_accept(asio::use_awaitable);
        static constexpr std::string_view kJunk =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        co_await asio::async_write(peer, asio::buffer(kJunk), asio::use_awaitable);
        peer.shutdown(asio::ip::tcp::socket::shutdown_send);
        std::array<char, 4096> sink{};
        for (;;) {  // read what the client sends until it hangs up
          auto [ec, n] = co_await peer.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
          if (ec) break;
        }
      },
      asio::detached);
  run(io, [&]() -> awaitable<void> {
    auto r = co_await client->range("/x");
    CO_ASSERT(!r);
    EXPECT_EQ(r.error().code, StorageErrc::kUnavailable) << r.error().message;
    EXPECT_NE(r.error().message.find("Range /x"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("HTTP/2"), std::string::npos) << r.error().message;
    client.reset();
  });
}

TEST(EtcdClient, RejectsAnEmptyEndpointList) {
  asio::io_context io;
  EXPECT_THROW(make_etcd_client(io.get_executor(), {}), std::invalid_argument);
  EXPECT_THROW(make_etcd_client(io.get_executor(), {" , "}), std::invalid_argument);
}

// For tests that stop or hang etcd: an etcd of their own, and a client of it on an io_context
// of their own (destroyed in reverse: client, io_context, etcd).
struct OwnEtcd {
  explicit OwnEtcd(EtcdOptions opts = {}) {
    auto started = EtcdProcess::start(opts);
    if (!started) {
      error = started.error().what();
      return;
    }
    etcd = std::move(*started);
    client = make_etcd_client(io.get_executor(), {etcd->endpoint()});
  }
  std::unique_ptr<EtcdProcess> etcd;
  std::string error;  // why etcd did not start
  asio::io_context io{1};
  std::unique_ptr<EtcdClient> client;
};

// Own etcd: it is stopped under the watch, and it sends progress notifications every 500 ms.
TEST(EtcdClientOwnServer, WatchGetsProgressThenUnavailableWhenEtcdStops) {
  OwnEtcd own({.progress_notify_interval = milliseconds(500)});
  ASSERT_TRUE(own.etcd) << own.error;
  auto& [etcd, error, io, client] = own;
  run(io, [&]() -> awaitable<void> {
    auto rev = co_await client->put("/w/a", "1");
    CO_ASSERT_OK(rev);
    Inbox inbox(io.get_executor());
    auto watch = client->watch("/w/", *rev + 1, /*prev_kv=*/true, inbox.on_events(), inbox.on_error());
    CO_ASSERT(co_await inbox.wait([&] { return !inbox.progress.empty() || inbox.error; }));
    CO_ASSERT(!inbox.error);
    EXPECT_GE(inbox.progress.front(), *rev);
    EXPECT_TRUE(inbox.events.empty());

    auto stopped = etcd->stop();
    CO_ASSERT(stopped.has_value());
    CO_ASSERT(co_await inbox.wait([&] { return inbox.error.has_value(); }));
    EXPECT_EQ(inbox.error->code, StorageErrc::kUnavailable) << inbox.error->message;
    EXPECT_EQ(inbox.error_calls, 1);

    auto after = co_await client->range("/w/a");
    CO_ASSERT(!after);
    EXPECT_EQ(after.error().code, StorageErrc::kUnavailable);
  });
}

TEST(EtcdProcessTest, StartsServesAndCleansUp) {
  std::string data_dir;
  pid_t pid = 0;
  {
    auto started = EtcdProcess::start();
    ASSERT_TRUE(started) << started.error().what();
    auto& etcd = **started;
    pid = etcd.pid();
    data_dir = etcd.data_dir();
    EXPECT_GT(pid, 0);
    EXPECT_EQ(::kill(pid, 0), 0);
    EXPECT_TRUE(etcd.endpoint().starts_with("http://127.0.0.1:"));
    EXPECT_TRUE(std::filesystem::exists(etcd.log_path()));
    EXPECT_TRUE(std::filesystem::exists(data_dir + "/member"));
    auto status = etcd.stop();
    ASSERT_TRUE(status) << status.error().what();
    // etcd shuts down on SIGTERM and then re-raises it: 128 + SIGTERM, never SIGKILL.
    EXPECT_TRUE(*status == 0 || *status == 128 + SIGTERM) << "exit status " << *status;
    EXPECT_EQ(etcd.pid(), 0);
    EXPECT_TRUE(etcd.stop().has_value());  // idempotent
    EXPECT_TRUE(std::filesystem::exists(data_dir)) << "removed by the destructor, not stop()";
  }
  EXPECT_FALSE(std::filesystem::exists(data_dir));
  EXPECT_NE(::kill(pid, 0), 0);  // reaped (the pid could be reused, but hardly this fast)
}

// True once every thread of `pid` is stopped (SIGSTOP takes effect asynchronously: a thread
// running on the other core may still answer a request sent right after kill()).
bool all_threads_stopped(pid_t pid) {
  std::error_code ec;
  int threads = 0;
  for (const auto& t : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/task", ec)) {
    std::FILE* f = std::fopen((t.path() / "stat").c_str(), "r");
    if (f == nullptr) return false;
    char buf[512] = {};
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const char* close_paren = std::strrchr(buf, ')');
    if (n == 0 || close_paren == nullptr || close_paren[1] != ' ') return false;
    if (close_paren[2] != 'T' && close_paren[2] != 't') return false;
    ++threads;
  }
  return !ec && threads > 0;
}

// A hung etcd (stopped, its socket still open): unary calls end at their 10 s deadline
// (the client's own once-a-second sweep; etcd, stopped, cannot honor grpc-timeout).
TEST(EtcdClientOwnServer, UnaryCallsTimeOutWhenEtcdHangs) {
  OwnEtcd own;
  ASSERT_TRUE(own.etcd) << own.error;
  auto& [etcd, error, io, client] = own;
  run(io, [&]() -> awaitable<void> {
    CO_ASSERT_OK(co_await client->put("/h/a", "1"));  // connected
    CO_ASSERT(::kill(etcd->pid(), SIGSTOP) == 0);
    for (int i = 0; i < 200 && !all_threads_stopped(etcd->pid()); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CO_ASSERT(all_threads_stopped(etcd->pid()));
    const auto t0 = std::chrono::steady_clock::now();
    auto r = co_await client->range("/h/a");
    const auto waited = std::chrono::steady_clock::now() - t0;
    ::kill(etcd->pid(), SIGCONT);
    CO_ASSERT(!r);
    EXPECT_EQ(r.error().code, StorageErrc::kUnavailable);
    EXPECT_NE(r.error().message.find("DEADLINE_EXCEEDED"), std::string::npos) << r.error().message;
    EXPECT_GE(waited, std::chrono::seconds(9));
    EXPECT_LT(waited, std::chrono::seconds(20));
  });
}

// A hung etcd under a watch: no call is in flight to time out, so only the keepalive notices
// (a ping after 30 s without input, unanswered for 10 s) and ends the watch with kUnavailable.
TEST(EtcdClientOwnServer, WatchOnAHungEtcdEndsAfterTheKeepalive) {
  OwnEtcd own;
  ASSERT_TRUE(own.etcd) << own.error;
  auto& [etcd, error, io, client] = own;
  run(io, [&]() -> awaitable<void> {
    auto rev = co_await client->put("/k/a", "1");
    CO_ASSERT_OK(rev);
    Inbox inbox(io.get_executor());
    auto watch = client->watch("/k/", *rev, /*prev_kv=*/false, inbox.on_events(), inbox.on_error());
    CO_ASSERT(co_await inbox.wait([&] { return !inbox.events.empty() || inbox.error; }));
    CO_ASSERT(!inbox.error);
    CO_ASSERT(::kill(etcd->pid(), SIGSTOP) == 0);
    const auto t0 = steady_clock::now();
    const bool ended = co_await inbox.wait([&] { return inbox.error.has_value(); }, seconds(90));
    const auto waited = steady_clock::now() - t0;
    ::kill(etcd->pid(), SIGCONT);
    CO_ASSERT(ended);
    EXPECT_EQ(inbox.error->code, StorageErrc::kUnavailable) << inbox.error->message;
    EXPECT_NE(inbox.error->message.find("keepalive"), std::string::npos) << inbox.error->message;
    EXPECT_GE(waited, seconds(29));
    EXPECT_LT(waited, seconds(60));
  });
}

// client_unix_socket: the same etcd also serves on a unix socket in its data dir.
TEST(EtcdProcessTest, ServesClientsOnAUnixSocket) {
  auto started = EtcdProcess::start({.client_unix_socket = true});
  ASSERT_TRUE(started) << started.error().what();
  std::unique_ptr<EtcdProcess> etcd = std::move(*started);
  ASSERT_EQ(etcd->unix_endpoint(), "unix:" + etcd->data_dir() + "/client.sock:0");
  EXPECT_TRUE(std::filesystem::is_socket(etcd->data_dir() + "/client.sock:0"));
  asio::io_context io(1);
  auto over_unix = make_etcd_client(io.get_executor(), {etcd->unix_endpoint()});
  auto over_tcp = make_etcd_client(io.get_executor(), {etcd->endpoint()});
  run(io, [&]() -> awaitable<void> {
    auto rev = co_await over_unix->create("/u/a", "1");
    CO_ASSERT_OK(rev);
    auto seen = co_await over_tcp->range("/u/a");
    CO_ASSERT_OK(seen);
    CO_ASSERT(seen->kvs.size() == 1u);
    EXPECT_EQ(seen->kvs[0].value, "1");
    EXPECT_EQ(seen->kvs[0].mod_revision, rev->mod_revision);
  });
}

TEST(EtcdProcessTest, KeepsAGivenDataDirAndReportsABadBinary) {
  const std::string dir = "/tmp/podwarp-etcd-test-" + std::to_string(::getpid());
  {
    auto started = EtcdProcess::start({.data_dir = dir});
    ASSERT_TRUE(started) << started.error().what();
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/member"));
  std::filesystem::remove_all(dir);

  auto bad = EtcdProcess::start({.binary = "/nonexistent/etcd"});
  ASSERT_FALSE(bad);
  EXPECT_NE(std::string(bad.error().what()).find("/nonexistent/etcd"), std::string::npos)
      << bad.error().what();
}

}  // namespace
}  // namespace podwarp::storage
