// WatchCache against a real etcd: state, history replay after a restart, filtered delivery
// (objects leaving a watcher's filter are deleted for it), and 410 for revisions older
// than the history.
#include "apiserver/watch_cache.h"

#include "podwarp/asio_run.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "storage/etcd_process.h"

namespace podwarp::apiserver {
namespace {

namespace asio = boost::asio;

class Recorder : public CacheWatcher {
 public:
  explicit Recorder(std::string prefix, std::string label = "")
      : prefix_(std::move(prefix)), label_(std::move(label)) {}
  const std::string& prefix() const override { return prefix_; }
  bool matches(const json::value& obj) const override {
    if (label_.empty()) return true;
    return get_string(obj, {"metadata", "labels", "app"}) == label_;
  }
  void deliver(const CacheEvent& ev, EventType as) override {
    events.emplace_back(std::string(event_type_name(as)) + " " +
                        std::string(get_string(ev.object->value, {"metadata", "name"})));
  }
  void terminate(std::string) override { terminated = true; }
  std::vector<std::string> events;
  bool terminated = false;

 private:
  std::string prefix_;
  std::string label_;
};

std::string obj(std::string_view name, std::string_view app) {
  return json::serialize(json::object{
      {"kind", "ConfigMap"},
      {"metadata", json::object{{"name", name}, {"labels", json::object{{"app", app}}}}}});
}

std::string fmt_key(int i) { return "/registry/configmaps/ns/k" + std::to_string(i); }

// A connection thread for watch groups: an io_context run on a thread of its own.
class ConnThread {
 public:
  ConnThread() : thread_([this] { io_.run(); }) {}
  ~ConnThread() { join(); }
  asio::any_io_executor executor() { return io_.get_executor(); }
  std::thread::id id() const { return thread_.get_id(); }
  // Lets the thread finish what was posted and end.
  void join() {
    guard_.reset();
    if (thread_.joinable()) thread_.join();
  }
  // read() run on the thread, after what was posted before it; again every 10 ms until
  // done(value) holds or 2 s have passed. Returns the last value.
  template <typename Read, typename Done>
  auto read_until(Read read, Done done) {
    decltype(read()) value;
    for (int i = 0; i < 200; ++i) {
      std::promise<decltype(read())> p;
      asio::post(io_, [&] { p.set_value(read()); });
      value = p.get_future().get();
      if (done(value)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return value;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::thread thread_;
};

class WatchCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = storage::EtcdProcess::start();
    ASSERT_TRUE(e) << e.error().what();
    etcd_ = std::move(*e);
    client_ = storage::make_etcd_client(io_.get_executor(), {etcd_->endpoint()});
  }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return podwarp::run_to_completion(io_, std::move(aw));
  }
  // Runs the loop until pred holds (or fails after 10 s).
  void until(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      podwarp::run_one_for(io_, std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(pred());
  }
  std::int64_t put(std::string key, std::string value) {
    auto r = run(client_->put(std::move(key), std::move(value)));
    EXPECT_TRUE(r);
    return r ? *r : 0;
  }

  asio::io_context io_;
  // Keeps the loop from running out of work between etcd's posted completions.
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  std::unique_ptr<storage::EtcdProcess> etcd_;
  std::unique_ptr<storage::EtcdClient> client_;
};

TEST_F(WatchCacheTest, LoadsStateAndFollows) {
  put("/registry/configmaps/ns/a", obj("a", "x"));
  put("/other/key", "{}");
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  auto started = run(cache.start());
  ASSERT_TRUE(started);
  ASSERT_TRUE(cache.get("/registry/configmaps/ns/a"));
  EXPECT_EQ(cache.get("/other/key"), nullptr);
  std::int64_t rev = put("/registry/configmaps/ns/b", obj("b", "x"));
  until([&] { return cache.revision() >= rev; });
  std::vector<std::string> names;
  cache.list("/registry/configmaps/ns/", [&](const std::string&, const ObjectPtr& o) {
    names.emplace_back(get_string(o->value, {"metadata", "name"}));
    EXPECT_EQ(get_string(o->value, {"metadata", "resourceVersion"}).empty(), false);
  });
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
}

TEST_F(WatchCacheTest, ReplaysHistoryAfterRestart) {
  std::int64_t rv0 = put("/registry/configmaps/ns/a", obj("a", "x"));
  put("/registry/configmaps/ns/b", obj("b", "x"));
  run(client_->remove("/registry/configmaps/ns/a", 0));
  // A new cache (as after a restart) can still replay everything after rv0.
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  auto w = std::make_shared<Recorder>("/registry/configmaps/");
  ASSERT_TRUE(cache.add_watcher(w, rv0));
  EXPECT_EQ(w->events, (std::vector<std::string>{"ADDED b", "DELETED a"}));
  cache.remove_watcher(w.get());
}

TEST_F(WatchCacheTest, FilterTransitionsAreAddsAndDeletes) {
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  auto w = std::make_shared<Recorder>("/registry/configmaps/", "x");
  ASSERT_TRUE(cache.add_watcher(w, 0));
  put("/registry/configmaps/ns/a", obj("a", "y"));  // not matching: nothing
  put("/registry/configmaps/ns/a", obj("a", "x"));  // starts matching: ADDED
  put("/registry/configmaps/ns/a", obj("a", "x2")); // stops matching: DELETED
  std::int64_t last = put("/registry/configmaps/ns/a", obj("a", "x"));
  until([&] { return cache.revision() >= last; });
  EXPECT_EQ(w->events, (std::vector<std::string>{"ADDED a", "DELETED a", "ADDED a"}));
  cache.remove_watcher(w.get());
}

// The cache's own watchers, kept by prefix: each gets the events under its prefix (one
// prefix inside another, two watchers on one); one that leaves while an event is delivered
// (its own delivery removes it and another) gets nothing after, and the rest keep theirs.
TEST_F(WatchCacheTest, DirectWatchersByPrefixAndLeavingDuringDelivery) {
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  class Leaver : public Recorder {
   public:
    Leaver(WatchCache& cache, std::string prefix) : Recorder(std::move(prefix)), cache_(cache) {}
    void deliver(const CacheEvent& ev, EventType as) override {
      Recorder::deliver(ev, as);
      for (CacheWatcher* w : leave) cache_.remove_watcher(w);
      leave.clear();
    }
    std::vector<CacheWatcher*> leave;

   private:
    WatchCache& cache_;
  };
  auto all = std::make_shared<Recorder>("/registry/configmaps/");
  auto leaver = std::make_shared<Leaver>(cache, "/registry/configmaps/");
  auto ns = std::make_shared<Recorder>("/registry/configmaps/ns/");
  auto other = std::make_shared<Recorder>("/registry/configmaps/ns/");
  auto secrets = std::make_shared<Recorder>("/registry/secrets/");
  for (const auto& w : {std::shared_ptr<Recorder>(all), std::shared_ptr<Recorder>(leaver), ns,
                        other, secrets}) {
    ASSERT_TRUE(cache.add_watcher(w, 0));
  }
  put("/registry/configmaps/ns/a", obj("a", "x"));
  std::int64_t rev = put("/registry/configmaps/elsewhere/b", obj("b", "x"));
  until([&] { return cache.revision() >= rev; });
  leaver->leave = {leaver.get(), other.get()};
  rev = put("/registry/configmaps/ns/c", obj("c", "x"));  // leaver (and other) go during it
  until([&] { return cache.revision() >= rev; });
  rev = put("/registry/configmaps/ns/d", obj("d", "x"));
  put("/registry/secrets/ns/s", obj("s", "x"));
  rev = put("/registry/configmaps/ns/e", obj("e", "x"));
  until([&] { return cache.revision() >= rev; });
  using V = std::vector<std::string>;
  EXPECT_EQ(all->events, (V{"ADDED a", "ADDED b", "ADDED c", "ADDED d", "ADDED e"}));
  EXPECT_EQ(leaver->events, (V{"ADDED a", "ADDED b", "ADDED c"}));
  EXPECT_EQ(ns->events, (V{"ADDED a", "ADDED c", "ADDED d", "ADDED e"}));
  // other's bucket comes after leaver's: removed before c reached it.
  EXPECT_EQ(other->events, (V{"ADDED a"}));
  EXPECT_EQ(secrets->events, (V{"ADDED s"}));
  for (const auto& w : {std::shared_ptr<Recorder>(all), ns, secrets}) cache.remove_watcher(w.get());
}

// Watchers registered for another executor get the replay at once (on the cache's thread),
// then every later event on that executor's thread, in order; after remove_watcher, none.
TEST_F(WatchCacheTest, WatchersOfAnotherThreadGetEventsThere) {
  std::int64_t rv0 = put("/registry/configmaps/ns/a", obj("a", "x"));
  put("/registry/configmaps/ns/b", obj("b", "x"));
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  ConnThread conn;
  struct OnThread : Recorder {
    using Recorder::Recorder;
    void deliver(const CacheEvent& ev, EventType as) override {
      if (std::this_thread::get_id() != thread) wrong_thread = true;
      Recorder::deliver(ev, as);
    }
    std::thread::id thread;
    bool wrong_thread = false;
  };
  auto all = std::make_shared<OnThread>("/registry/configmaps/");
  auto labelled = std::make_shared<OnThread>("/registry/configmaps/", "y");
  all->thread = labelled->thread = conn.id();
  all->thread = std::this_thread::get_id();  // the replay comes here
  ASSERT_TRUE(cache.add_watcher(all, rv0, conn.executor()));
  EXPECT_EQ(all->events, (std::vector<std::string>{"ADDED b"}));
  all->thread = conn.id();
  ASSERT_TRUE(cache.add_watcher(labelled, 0, conn.executor()));
  put("/registry/configmaps/ns/c", obj("c", "x"));
  put("/registry/configmaps/ns/a", obj("a", "y"));
  std::int64_t last = put("/registry/configmaps/ns/d", obj("d", "y"));
  until([&] { return cache.revision() >= last; });
  // What the connection thread saw, read on that thread once it has run what was posted.
  auto seen = [&](const std::shared_ptr<OnThread>& w, std::size_t n) {
    return conn.read_until([&] { return w->events; },
                           [&](const std::vector<std::string>& got) { return got.size() >= n; });
  };
  EXPECT_EQ(seen(all, 4), (std::vector<std::string>{"ADDED b", "ADDED c", "MODIFIED a", "ADDED d"}));
  EXPECT_EQ(seen(labelled, 2), (std::vector<std::string>{"ADDED a", "ADDED d"}));
  cache.remove_watcher(all.get());
  std::int64_t after = put("/registry/configmaps/ns/e", obj("e", "y"));
  until([&] { return cache.revision() >= after; });
  EXPECT_EQ(seen(labelled, 3), (std::vector<std::string>{"ADDED a", "ADDED d", "ADDED e"}));
  EXPECT_EQ(seen(all, 5).size(), 4u);
  cache.remove_watcher(labelled.get());
  conn.join();
  EXPECT_FALSE(all->wrong_thread);
  EXPECT_FALSE(labelled->wrong_thread);
}

// Watchers join a group while its thread is still delivering earlier events: each one gets
// exactly the events after the cache's revision when it joined, in order, none twice.
TEST_F(WatchCacheTest, GroupJoinsInterleavedWithEventsMissNothing) {
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  ConnThread conn;
  struct Revisions : CacheWatcher {
    const std::string& prefix() const override { return prefix_; }
    bool matches(const json::value&) const override { return true; }
    void deliver(const CacheEvent& ev, EventType) override { seen.push_back(ev.revision); }
    void terminate(std::string) override {}
    std::string prefix_ = "/registry/configmaps/";
    std::vector<std::int64_t> seen;  // the connection thread's
  };
  constexpr int kWrites = 40;
  std::vector<std::pair<std::shared_ptr<Revisions>, std::int64_t>> watchers;
  int done = 0;
  for (int i = 0; i < kWrites; ++i) {
    asio::co_spawn(io_, client_->put(fmt_key(i), obj("k", "x")),
                   [&](std::exception_ptr, storage::Result<std::int64_t>) { ++done; });
    // Let some completions and watch events in, then join at whatever the revision is.
    for (int k = 0; k < i % 4; ++k) podwarp::run_one_for(io_, std::chrono::milliseconds(5));
    auto w = std::make_shared<Revisions>();
    watchers.emplace_back(w, cache.revision());
    ASSERT_TRUE(cache.add_watcher(w, 0, conn.executor()));
  }
  until([&] { return done == kWrites; });
  auto last = run(client_->range("/registry/", storage::RangeOptions{.limit = 1, .count_only = true}));
  ASSERT_TRUE(last);
  until([&] { return cache.revision() >= last->revision; });
  std::vector<std::int64_t> all;  // every write's revision, from the first watcher's view
  for (const auto& [w, joined] : watchers) {
    // Until the connection thread has caught up.
    std::vector<std::int64_t> seen = conn.read_until(
        [&] { return w->seen; },
        [&](const std::vector<std::int64_t>& got) {
          return joined >= last->revision || (!got.empty() && got.back() >= last->revision);
        });
    if (all.empty()) all = seen;
    std::vector<std::int64_t> expected;
    for (std::int64_t r : all) {
      if (r > joined) expected.push_back(r);
    }
    EXPECT_EQ(seen, expected) << "watcher that joined at revision " << joined;
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kWrites));
  for (const auto& [w, joined] : watchers) cache.remove_watcher(w.get());
}

// Creates grouped into one etcd Txn share a revision. A watcher on a connection thread gets
// them all, and its progress (what BOOKMARKs name) never falls inside a revision: every event
// before a progress mark is at or below it, every event after it above it.
TEST_F(WatchCacheTest, GroupedCreatesNeverStraddleAProgressMark) {
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  ConnThread conn;
  struct Marks : CacheWatcher {
    const std::string& prefix() const override { return prefix_; }
    bool matches(const json::value&) const override { return true; }
    void deliver(const CacheEvent& ev, EventType) override { seen.emplace_back(ev.revision, false); }
    void progress(std::int64_t rev) override { seen.emplace_back(rev, true); }
    void terminate(std::string) override {}
    std::string prefix_ = "/registry/configmaps/";
    std::vector<std::pair<std::int64_t, bool>> seen;  // (revision, is a progress mark)
  };
  auto w = std::make_shared<Marks>();
  ASSERT_TRUE(cache.add_watcher(w, 0, conn.executor()));
  constexpr int kCreates = 300;
  int done = 0;
  std::set<std::int64_t> revisions;
  for (int i = 0; i < kCreates; ++i) {
    asio::co_spawn(io_, client_->create(fmt_key(i), obj("k", "x")),
                   [&](std::exception_ptr, storage::Result<storage::KeyValue> r) {
                     ASSERT_TRUE(r);
                     revisions.insert(r->mod_revision);
                     ++done;
                   });
  }
  until([&] { return done == kCreates; });
  EXPECT_LT(revisions.size(), static_cast<std::size_t>(kCreates)) << "no create was grouped";
  until([&] { return cache.revision() >= *revisions.rbegin(); });
  auto seen = conn.read_until([&] { return w->seen; }, [&](const auto& got) {
    return !got.empty() && got.back().second && got.back().first >= *revisions.rbegin();
  });
  std::size_t events = 0;
  std::int64_t mark = 0;
  std::int64_t last_event = 0;
  for (const auto& [rev, is_mark] : seen) {
    if (is_mark) {
      EXPECT_GE(rev, last_event) << "a progress mark below an event before it";
      mark = rev;
    } else {
      ++events;
      EXPECT_GT(rev, mark) << "an event at or below the progress mark before it";
      EXPECT_GE(rev, last_event);
      last_event = rev;
    }
  }
  EXPECT_EQ(events, static_cast<std::size_t>(kCreates));
  cache.remove_watcher(w.get());
}

// An event's frame is made once, whichever thread asks first, and shared; making it takes
// the object's text (made once too) under the event's lock.
TEST(CacheEventTest, FrameIsMadeOnceForAllThreads) {
  std::vector<std::shared_ptr<CacheEvent>> events;
  for (int e = 0; e < 200; ++e) {  // many addresses: any pairing of their locks
    auto ev = std::make_shared<CacheEvent>();
    ev->object = std::make_shared<const StoredObject>(json::value(json::object{{"n", e}}));
    events.push_back(std::move(ev));
  }
  std::atomic<int> made{0};
  std::vector<std::vector<const std::string*>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      for (const auto& ev : events) {
        got[i].push_back(ev->frame(EventType::kModified, 3, [&] {
                            ++made;
                            return "frame " + ev->object->text();
                          }).get());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(made.load(), 200);
  for (const auto& g : got) EXPECT_EQ(g, got[0]);
  EXPECT_EQ(*got[0][7], R"(frame {"n":7})");
}

// A write registered before it is sent stands for the parse of exactly its bytes at its
// key, whether its event comes before etcd's reply or after it.
TEST_F(WatchCacheTest, ExpectedWriteStandsForItsBytesOnly) {
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  const std::string key = "/registry/configmaps/ns/w";
  auto marked = [](const std::string& text) {
    json::value v = parse_json(text).value();
    v.as_object()["marked"] = true;  // not in the stored bytes: tells the two apart
    return v;
  };
  auto is_marked = [&](const std::string& k) {
    ObjectPtr o = cache.get(k);
    return o && o->value.as_object().if_contains("marked") != nullptr;
  };

  // The event first, then the reply: both get the same object, at the event's revision.
  const std::string x = obj("w", "x");
  auto w1 = cache.expect_write(key, x, marked(x));
  auto other = cache.expect_write("/registry/configmaps/ns/other", x, marked(x));  // other key
  std::int64_t r1 = put(key, x);
  until([&] { return cache.revision() >= r1; });
  ASSERT_TRUE(is_marked(key));
  EXPECT_EQ(get_string(cache.get(key)->value, {"metadata", "resourceVersion"}),
            std::to_string(r1));
  EXPECT_EQ(cache.write_done(w1, r1), cache.get(key));
  cache.write_failed(other);

  // The reply first (the event not in yet), then the event: the same object again.
  const std::string y = obj("w", "y");
  auto w2 = cache.expect_write(key, y, marked(y));
  ObjectPtr done = cache.write_done(w2, cache.revision() + 1);  // nothing else writes
  std::int64_t r2 = put(key, y);
  until([&] { return cache.revision() >= r2; });
  EXPECT_EQ(cache.get(key), done);
  EXPECT_EQ(get_string(done->value, {"metadata", "labels", "app"}), "y");

  // Other bytes at the key are parsed, and a registration whose write failed is not used.
  const std::string z = obj("w", "z");
  auto w3 = cache.expect_write(key, z, marked(z));
  std::int64_t r3 = put(key, obj("w", "q"));
  until([&] { return cache.revision() >= r3; });
  EXPECT_FALSE(is_marked(key));
  EXPECT_EQ(get_string(cache.get(key)->value, {"metadata", "labels", "app"}), "q");
  cache.write_failed(w3);
  EXPECT_TRUE(w3->unstored().as_object().contains("marked"));  // given back to the writer
  std::int64_t r4 = put(key, z);
  until([&] { return cache.revision() >= r4; });
  EXPECT_FALSE(is_marked(key));
  EXPECT_EQ(get_string(cache.get(key)->value, {"metadata", "labels", "app"}), "z");

  // The same bytes at two revisions: each gets its own object with its own resourceVersion.
  const std::string v = obj("w", "v");
  auto w5 = cache.expect_write(key, v, marked(v));
  std::int64_t r5 = put(key, v);
  until([&] { return cache.revision() >= r5; });
  ObjectPtr at5 = cache.get(key);
  ObjectPtr at6 = w5->at(r5 + 1);
  EXPECT_NE(at5, at6);
  EXPECT_EQ(get_string(at5->value, {"metadata", "resourceVersion"}), std::to_string(r5));
  EXPECT_EQ(get_string(at6->value, {"metadata", "resourceVersion"}), std::to_string(r5 + 1));
  EXPECT_FALSE(w5->unstored().as_object().at("metadata").as_object().contains("resourceVersion"));
  EXPECT_EQ(cache.get("/registry/configmaps/ns/other"), nullptr);
}

TEST_F(WatchCacheTest, TooOldRevisionIsRefused) {
  // Fill more history than the cache replays at start, then ask for revision 1.
  std::int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = put(fmt_key(i), obj("a", "x"));
  auto r = run(client_->compact(last));
  ASSERT_TRUE(r);
  WatchCache cache(io_.get_executor(), *client_, "/registry/");
  ASSERT_TRUE(run(cache.start()));
  auto w = std::make_shared<Recorder>("/registry/configmaps/");
  auto added = cache.add_watcher(w, 1);
  ASSERT_FALSE(added);
  EXPECT_NE(added.error().find("too old resource version: 1"), std::string::npos);
}

}  // namespace
}  // namespace podwarp::apiserver
