// Informer logic against a scripted ListWatch (no network): ordering of callbacks, cache
// contents, resourceVersion bookkeeping, paging, relist on 410, backoff and stop. The
// end-to-end run over HTTPS is in client_test.cpp.
#include "podwarp/informer.h"

#include "podwarp/asio_run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace podwarp::client {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kLimit = 30s;

Error make_error(int code, std::string reason) {
  Error e;
  e.code = code;
  e.reason = std::move(reason);
  e.message = "scripted";
  return e;
}

// A watch whose events the test pushes.
class ScriptedWatch final : public WatchStream {
 public:
  explicit ScriptedWatch(asio::any_io_executor ex) : wake_(std::move(ex)) {}

  void push(std::string type, json::value obj) {
    items_.push_back(std::optional<WatchEvent>(WatchEvent{std::move(type), std::move(obj)}));
    wake_.cancel();
  }
  void end() {
    items_.push_back(std::optional<WatchEvent>());
    wake_.cancel();
  }
  void fail(Error e) {
    items_.push_back(std::unexpected(std::move(e)));
    wake_.cancel();
  }
  bool cancelled() const { return cancelled_; }

  Awaitable<Result<std::optional<WatchEvent>>> next() override {
    while (items_.empty() && !cancelled_) {
      wake_.expires_after(1h);
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (cancelled_) co_return std::unexpected(make_error(0, "Cancelled"));
    auto item = std::move(items_.front());
    items_.pop_front();
    co_return item;
  }
  void cancel() override {
    cancelled_ = true;
    wake_.cancel();
  }

 private:
  std::deque<Result<std::optional<WatchEvent>>> items_;
  bool cancelled_ = false;
  asio::steady_timer wake_;
};

class ScriptedListWatch final : public ListWatch {
 public:
  explicit ScriptedListWatch(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // Answers to list() in order; when none is left, list() fails with a connection error.
  std::deque<Result<json::value>> lists;
  // Errors for the next watch() calls; when none is left, watch() opens a ScriptedWatch.
  std::deque<Error> watch_errors;
  std::vector<ListOptions> list_calls;
  std::vector<ListOptions> watch_calls;
  std::vector<std::shared_ptr<ScriptedWatch>> opened;

  Awaitable<Result<json::value>> list(ListOptions opts) override {
    list_calls.push_back(opts);
    if (lists.empty()) co_return std::unexpected(make_error(0, "ConnectionError"));
    auto r = std::move(lists.front());
    lists.pop_front();
    co_return r;
  }
  Awaitable<Result<std::shared_ptr<WatchStream>>> watch(ListOptions opts) override {
    watch_calls.push_back(opts);
    if (!watch_errors.empty()) {
      Error e = std::move(watch_errors.front());
      watch_errors.pop_front();
      co_return std::unexpected(std::move(e));
    }
    opened.push_back(std::make_shared<ScriptedWatch>(ex_));
    co_return std::shared_ptr<WatchStream>(opened.back());
  }

 private:
  asio::any_io_executor ex_;
};

json::value pod(std::string_view name, std::string_view rv, std::string_view ns = "default") {
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", rv}}}};
}

json::value pod_list(std::string_view rv, json::array items, std::string_view cont = {}) {
  json::object meta{{"resourceVersion", rv}};
  if (!cont.empty()) meta["continue"] = cont;
  return json::object{
      {"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", meta}, {"items", items}};
}

json::value bookmark(std::string_view rv) {
  return json::object{{"kind", "Pod"}, {"metadata", {{"resourceVersion", rv}}}};
}

class InformerTest : public ::testing::Test {
 protected:
  void SetUp() override { source_ = std::make_shared<ScriptedListWatch>(ioc_.get_executor()); }

  void TearDown() override {
    if (informer_) informer_->stop();
    ioc_.restart();
    ioc_.poll();
  }

  void start(InformerOptions opts = fast()) {
    informer_ = Informer::create(ioc_.get_executor(), source_, opts);
    informer_->on_add([this](const json::value& o) { log_.push_back("add " + name(o)); });
    informer_->on_update([this](const json::value& old, const json::value& now) {
      log_.push_back(fmt::format("update {} {}->{}", name(now), rv(old), rv(now)));
    });
    informer_->on_delete([this](const json::value& o) { log_.push_back("delete " + name(o)); });
    informer_->start();
  }

  static InformerOptions fast() {
    InformerOptions o;
    o.min_backoff = 5ms;
    o.max_backoff = 20ms;
    return o;
  }
  static std::string name(const json::value& o) {
    return std::string(get_string(o, {"metadata", "name"}));
  }
  static std::string rv(const json::value& o) {
    return std::string(get_string(o, {"metadata", "resourceVersion"}));
  }

  bool run_until(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + kLimit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      podwarp::run_one_for(ioc_, 20ms);
      if (ioc_.stopped()) ioc_.restart();
    }
    return pred();
  }
  bool watching(std::size_t n) {
    return run_until([&] { return source_->opened.size() == n; });
  }
  std::shared_ptr<ScriptedWatch> last_watch() { return source_->opened.back(); }

  asio::io_context ioc_;
  std::shared_ptr<ScriptedListWatch> source_;
  std::shared_ptr<Informer> informer_;
  std::vector<std::string> log_;
};

using Log = std::vector<std::string>;

TEST_F(InformerTest, ListsThenWatchesFromTheListsVersion) {
  source_->lists.push_back(pod_list("10", {pod("a", "5"), pod("b", "6")}));
  InformerOptions o = fast();
  o.label_selector = "app=web";
  o.field_selector = "spec.nodeName=n1";
  o.page_size = 100;
  start(o);
  ASSERT_TRUE(watching(1));
  EXPECT_TRUE(informer_->has_synced());
  EXPECT_EQ(log_, (Log{"add a", "add b"}));
  EXPECT_EQ(informer_->resource_version(), "10");

  ASSERT_EQ(source_->list_calls.size(), 1u);
  EXPECT_EQ(source_->list_calls[0].limit, 100);
  EXPECT_EQ(source_->list_calls[0].label_selector, "app=web");
  EXPECT_TRUE(source_->list_calls[0].resource_version.empty());
  const ListOptions& w = source_->watch_calls[0];
  EXPECT_EQ(w.resource_version, "10");
  EXPECT_EQ(w.label_selector, "app=web");
  EXPECT_EQ(w.field_selector, "spec.nodeName=n1");
  EXPECT_GE(w.timeout_seconds, 300);
  EXPECT_LT(w.timeout_seconds, 600);

  auto watch = last_watch();
  watch->push("ADDED", pod("c", "11"));
  watch->push("MODIFIED", pod("a", "12"));
  watch->push("DELETED", pod("b", "13"));
  watch->push("BOOKMARK", bookmark("20"));
  ASSERT_TRUE(run_until([&] { return informer_->resource_version() == "20"; }));
  EXPECT_EQ(log_, (Log{"add a", "add b", "add c", "update a 5->12", "delete b"}));
  EXPECT_EQ(informer_->size(), 2u);
  EXPECT_EQ(rv(*informer_->get("default", "a")), "12");
  EXPECT_EQ(informer_->get("default", "b"), nullptr);
  EXPECT_NE(informer_->get("default", "c"), nullptr);
  EXPECT_EQ(informer_->get("other", "c"), nullptr);
}

TEST_F(InformerTest, SnapshotsSurviveLaterChanges) {
  source_->lists.push_back(pod_list("10", {pod("a", "5")}));
  start();
  ASSERT_TRUE(watching(1));
  ObjectPtr before = informer_->get("default", "a");
  auto all = informer_->list();
  last_watch()->push("MODIFIED", pod("a", "6"));
  ASSERT_TRUE(run_until([&] { return informer_->resource_version() == "6"; }));
  EXPECT_EQ(rv(*before), "5");
  EXPECT_EQ(rv(*all[0]), "5");
  EXPECT_EQ(rv(*informer_->get("default", "a")), "6");
}

TEST_F(InformerTest, PagedListFollowsContinueTokens) {
  json::value a = pod("a", "5");
  a.as_object().erase("kind");
  a.as_object().erase("apiVersion");
  source_->lists.push_back(pod_list("7", {a}, "token-1"));
  source_->lists.push_back(pod_list("7", {pod("b", "6")}));
  InformerOptions o = fast();
  o.page_size = 1;
  start(o);
  ASSERT_TRUE(watching(1));
  ASSERT_EQ(source_->list_calls.size(), 2u);
  EXPECT_TRUE(source_->list_calls[0].continue_token.empty());
  EXPECT_EQ(source_->list_calls[1].continue_token, "token-1");
  EXPECT_EQ(source_->list_calls[1].limit, 1);
  EXPECT_EQ(log_, (Log{"add a", "add b"}));
  EXPECT_EQ(source_->watch_calls[0].resource_version, "7");
  // Items of a list get the list's kind and apiVersion.
  EXPECT_EQ(get_string(*informer_->get("default", "a"), {"kind"}), "Pod");
  EXPECT_EQ(get_string(*informer_->get("default", "a"), {"apiVersion"}), "v1");
}

TEST_F(InformerTest, ExpiredContinueTokenRestartsTheList) {
  source_->lists.push_back(pod_list("7", {pod("a", "5")}, "token-1"));
  source_->lists.push_back(std::unexpected(make_error(410, "Expired")));
  source_->lists.push_back(pod_list("9", {pod("b", "8")}));
  start();
  ASSERT_TRUE(watching(1));
  ASSERT_EQ(source_->list_calls.size(), 3u);
  EXPECT_TRUE(source_->list_calls[2].continue_token.empty());
  // Only the complete, restarted list counts: "a" from the abandoned page never shows up.
  EXPECT_EQ(log_, (Log{"add b"}));
  EXPECT_EQ(informer_->resource_version(), "9");
}

TEST_F(InformerTest, NormalEndRewatchesFromTheLastVersion) {
  source_->lists.push_back(pod_list("10", {}));
  start();
  ASSERT_TRUE(watching(1));
  last_watch()->push("ADDED", pod("a", "11"));
  last_watch()->push("BOOKMARK", bookmark("15"));
  last_watch()->end();
  ASSERT_TRUE(watching(2));
  EXPECT_EQ(source_->watch_calls[1].resource_version, "15");
  EXPECT_EQ(informer_->list_count(), 1u);
  last_watch()->push("MODIFIED", pod("a", "16"));
  ASSERT_TRUE(run_until([&] { return log_.size() == 2; }));
  EXPECT_EQ(log_, (Log{"add a", "update a 11->16"}));
}

TEST_F(InformerTest, GoneEventRelistsAndEmitsTheDifference) {
  source_->lists.push_back(pod_list("10", {pod("a", "1"), pod("b", "2"), pod("c", "3")}));
  source_->lists.push_back(pod_list("50", {pod("a", "1"), pod("c", "40"), pod("d", "41")}));
  start();
  ASSERT_TRUE(watching(1));
  log_.clear();
  last_watch()->fail(make_error(410, "Expired"));
  ASSERT_TRUE(watching(2));
  EXPECT_EQ(informer_->list_count(), 2u);
  EXPECT_EQ(log_, (Log{"update c 3->40", "add d", "delete b"}));
  EXPECT_EQ(source_->watch_calls[1].resource_version, "50");
  EXPECT_EQ(informer_->size(), 3u);
}

TEST_F(InformerTest, GoneOnWatchOpenRelists) {
  source_->lists.push_back(pod_list("10", {pod("a", "1")}));
  source_->lists.push_back(pod_list("20", {}));
  source_->watch_errors.push_back(make_error(410, "Expired"));
  start();
  ASSERT_TRUE(watching(1));
  EXPECT_EQ(informer_->list_count(), 2u);
  EXPECT_EQ(log_, (Log{"add a", "delete a"}));
  EXPECT_EQ(source_->watch_calls.back().resource_version, "20");
}

TEST_F(InformerTest, ErrorsBackOffAndRetry) {
  // Two failed lists, then success; then a failing watch open and a broken stream, each
  // followed by a re-watch from the same version (no relist).
  source_->lists.push_back(std::unexpected(make_error(0, "ConnectionError")));
  source_->lists.push_back(std::unexpected(make_error(503, "ServiceUnavailable")));
  source_->lists.push_back(pod_list("10", {pod("a", "1")}));
  source_->watch_errors.push_back(make_error(0, "ConnectionError"));
  start();
  ASSERT_TRUE(watching(1));
  EXPECT_EQ(source_->list_calls.size(), 3u);
  EXPECT_EQ(source_->watch_calls.size(), 2u);
  EXPECT_FALSE(log_.empty());
  last_watch()->fail(make_error(0, "ConnectionError"));
  ASSERT_TRUE(watching(2));
  EXPECT_EQ(source_->watch_calls.back().resource_version, "10");
  EXPECT_EQ(informer_->list_count(), 1u);
  EXPECT_EQ(log_, (Log{"add a"}));
}

TEST_F(InformerTest, NotSyncedUntilTheFirstListCompletes) {
  source_->lists.push_back(std::unexpected(make_error(0, "ConnectionError")));
  start();
  ASSERT_TRUE(run_until([&] { return source_->list_calls.size() >= 2; }));
  EXPECT_FALSE(informer_->has_synced());
  source_->lists.push_back(pod_list("3", {}));
  ASSERT_TRUE(watching(1));
  EXPECT_TRUE(informer_->has_synced());
}

TEST_F(InformerTest, AddedForKnownKeyIsAnUpdateAndUnknownDeleteIsIgnored) {
  source_->lists.push_back(pod_list("10", {pod("a", "1")}));
  start();
  ASSERT_TRUE(watching(1));
  last_watch()->push("ADDED", pod("a", "11"));
  last_watch()->push("DELETED", pod("zzz", "12"));
  last_watch()->push("ADDED", pod("a", "13", "other-ns"));
  ASSERT_TRUE(run_until([&] { return informer_->resource_version() == "13"; }));
  EXPECT_EQ(log_, (Log{"add a", "update a 1->11", "add a"}));
  EXPECT_EQ(informer_->size(), 2u);
  EXPECT_NE(informer_->get("other-ns", "a"), nullptr);
}

TEST_F(InformerTest, ClusterScopedObjectsAreKeyedByName) {
  json::value node =
      json::object{{"kind", "Node"}, {"metadata", {{"name", "n1"}, {"resourceVersion", "4"}}}};
  EXPECT_EQ(Informer::key_of(node), "n1");
  EXPECT_EQ(Informer::key_of(pod("a", "1", "ns")), "ns/a");
  source_->lists.push_back(json::object{{"kind", "NodeList"},
                                        {"apiVersion", "v1"},
                                        {"metadata", {{"resourceVersion", "5"}}},
                                        {"items", json::array{node}}});
  start();
  ASSERT_TRUE(watching(1));
  EXPECT_NE(informer_->get("", "n1"), nullptr);
}

TEST_F(InformerTest, StopCancelsTheWatchAndSilencesCallbacks) {
  source_->lists.push_back(pod_list("10", {pod("a", "1")}));
  start();
  ASSERT_TRUE(watching(1));
  auto watch = last_watch();
  std::weak_ptr<Informer> weak = informer_;
  informer_->stop();
  EXPECT_TRUE(informer_->stopped());
  EXPECT_TRUE(watch->cancelled());
  informer_.reset();
  ASSERT_TRUE(run_until([&] { return weak.expired(); }));
  EXPECT_EQ(log_, (Log{"add a"}));
  EXPECT_EQ(source_->watch_calls.size(), 1u);
}

TEST_F(InformerTest, StopDuringBackoffEndsTheLoop) {
  start();  // every list fails
  ASSERT_TRUE(run_until([&] { return source_->list_calls.size() >= 2; }));
  std::weak_ptr<Informer> weak = informer_;
  informer_->stop();
  informer_.reset();
  ASSERT_TRUE(run_until([&] { return weak.expired(); }));
}

TEST_F(InformerTest, CallbackMayStopTheInformer) {
  source_->lists.push_back(pod_list("10", {pod("a", "1"), pod("b", "2"), pod("c", "3")}));
  informer_ = Informer::create(ioc_.get_executor(), source_, fast());
  int adds = 0;
  informer_->on_add([&](const json::value&) {
    ++adds;
    informer_->stop();
  });
  informer_->start();
  std::weak_ptr<Informer> weak = informer_;
  ASSERT_TRUE(run_until([&] { return adds > 0; }));
  informer_.reset();
  ASSERT_TRUE(run_until([&] { return weak.expired(); }));
  EXPECT_EQ(adds, 1);
  EXPECT_TRUE(source_->watch_calls.empty());
}

// Two consumers on one informer (noded's service LB and cluster DNS share theirs): both see
// every event, in registration order, from one list and one watch.
TEST_F(InformerTest, SeveralHandlersShareOneListAndWatch) {
  source_->lists.push_back(pod_list("10", {pod("a", "5")}));
  informer_ = Informer::create(ioc_.get_executor(), source_, fast());
  for (const char* who : {"one", "two"}) {
    informer_->on_add(
        [this, who](const json::value& o) { log_.push_back(fmt::format("{} add {}", who, name(o))); });
    informer_->on_update([this, who](const json::value&, const json::value& o) {
      log_.push_back(fmt::format("{} update {}", who, name(o)));
    });
    informer_->on_delete([this, who](const json::value& o) {
      log_.push_back(fmt::format("{} delete {}", who, name(o)));
    });
  }
  informer_->start();
  ASSERT_TRUE(watching(1));
  last_watch()->push("MODIFIED", pod("a", "6"));
  last_watch()->push("DELETED", pod("a", "7"));
  ASSERT_TRUE(run_until([&] { return informer_->resource_version() == "7"; }));
  EXPECT_EQ(log_, (Log{"one add a", "two add a", "one update a", "two update a", "one delete a",
                       "two delete a"}));
  EXPECT_EQ(source_->list_calls.size(), 1u);
  EXPECT_EQ(source_->opened.size(), 1u);
}

}  // namespace
}  // namespace podwarp::client
