// Request routing and content negotiation, as upstream's RequestInfo and Accept handling.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <thread>

#include "apiserver/http.h"
#include "apiserver/negotiate.h"
#include "apiserver/service_allocator.h"

namespace podwarp::apiserver {
namespace {

struct InfoCase {
  std::string method;
  std::string path;
  std::string query_watch;
  std::string verb, group, version, ns, resource, name, sub;
};

TEST(RequestInfo, SplitsPathsAsUpstream) {
  const InfoCase cases[] = {
      {"GET", "/api/v1/pods", "", "list", "", "v1", "", "pods", "", ""},
      {"GET", "/api/v1/namespaces/default/pods", "", "list", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/namespaces/default/pods/p", "", "get", "", "v1", "default", "pods", "p", ""},
      {"PUT", "/api/v1/namespaces/default/pods/p/status", "", "update", "", "v1", "default", "pods", "p", "status"},
      {"GET", "/api/v1/namespaces/default/pods", "true", "watch", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/watch/namespaces/default/pods", "", "watch", "", "v1", "default", "pods", "", ""},
      {"GET", "/api/v1/namespaces", "", "list", "", "v1", "", "namespaces", "", ""},
      {"GET", "/api/v1/namespaces/kube-system", "", "get", "", "v1", "kube-system", "namespaces", "kube-system", ""},
      {"PUT", "/api/v1/namespaces/x/finalize", "", "update", "", "v1", "x", "namespaces", "x", "finalize"},
      {"PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale", "", "patch", "apps", "v1", "ns", "deployments", "web", "scale"},
      {"POST", "/apis/batch/v1/namespaces/ns/jobs", "", "create", "batch", "v1", "ns", "jobs", "", ""},
      {"DELETE", "/apis/batch/v1/namespaces/ns/jobs", "", "deletecollection", "batch", "v1", "ns", "jobs", "", ""},
      {"DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", "", "delete", "batch", "v1", "ns", "jobs", "j", ""},
  };
  for (const InfoCase& c : cases) {
    Request req;
    req.method = c.method;
    req.path = c.path;
    if (!c.query_watch.empty()) req.query.emplace("watch", c.query_watch);
    ASSERT_TRUE(parse_request_info(req)) << c.path;
    const RequestInfo& i = req.info;
    EXPECT_EQ(i.verb, c.verb) << c.path;
    EXPECT_EQ(i.group, c.group) << c.path;
    EXPECT_EQ(i.version, c.version) << c.path;
    EXPECT_EQ(i.namespace_, c.ns) << c.path;
    EXPECT_EQ(i.resource, c.resource) << c.path;
    EXPECT_EQ(i.name, c.name) << c.path;
    EXPECT_EQ(i.subresource, c.sub) << c.path;
    EXPECT_NE(i.resource_info, nullptr) << c.path;
  }
}

TEST(RequestInfo, DiscoveryPathsAreNotResources) {
  for (std::string path : {"/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version",
                           "/api/v1/namespaces/a/pods/b/c/d"}) {
    Request req;
    req.method = "GET";
    req.path = path;
    EXPECT_FALSE(parse_request_info(req)) << path;
  }
}

TEST(RequestInfo, WatchFlagIsParsedLikeGoParseBool) {
  for (std::string v : {"1", "t", "T", "true", "TRUE", "True"}) {
    Request req;
    req.method = "GET";
    req.path = "/api/v1/pods";
    req.query.emplace("watch", v);
    ASSERT_TRUE(parse_request_info(req));
    EXPECT_EQ(req.info.verb, "watch") << v;
  }
  Request req;
  req.method = "GET";
  req.path = "/api/v1/pods";
  req.query.emplace("watch", "false");
  ASSERT_TRUE(parse_request_info(req));
  EXPECT_EQ(req.info.verb, "list");
}

TEST(Request, TargetSplitsPathAndDecodedQuery) {
  Request req;
  set_target(req, "/api/v1/namespaces/a%20b/pods?labelSelector=app%3Dweb&watch=1");
  EXPECT_EQ(req.path, "/api/v1/namespaces/a b/pods");
  EXPECT_EQ(req.param_or("labelSelector", ""), "app=web");
  EXPECT_TRUE(req.flag("watch"));
  Request bad;
  set_target(bad, "not a target");
  EXPECT_EQ(bad.path, "/");
}

TEST(WatchFeed, ChunkPayloadIsTheBodyOfAChunk) {
  EXPECT_EQ(chunk_payload(http_chunk("{\"type\":\"ADDED\"}\n")), "{\"type\":\"ADDED\"}\n");
  EXPECT_EQ(chunk_payload(http_chunk(std::string(300, 'x'))), std::string(300, 'x'));
  EXPECT_EQ(chunk_payload("garbage"), "");
}

// The HTTP/2 consumer: notified (from the producer's thread) for the first frame after each
// take(), and takes again only when notified.
TEST(WatchFeed, NotifyIsEdgeTriggeredAfterEachTake) {
  boost::asio::io_context io;
  WatchFeed feed(io.get_executor());
  int notified = 0;
  feed.set_notify([&] { ++notified; });
  feed.push(std::make_shared<const std::string>(http_chunk("a")));
  EXPECT_EQ(notified, 0);  // the consumer has not taken yet: it will take() anyway
  bool ended = true;
  EXPECT_EQ(feed.take(&ended).size(), 1u);  // arms the notify although it found a frame
  EXPECT_FALSE(ended);
  feed.push(std::make_shared<const std::string>(http_chunk("b")));
  feed.push(std::make_shared<const std::string>(http_chunk("c")));
  EXPECT_EQ(notified, 1);  // once for the two
  EXPECT_EQ(feed.queued(), 2u);
  EXPECT_EQ(feed.take().size(), 2u);
  feed.push(std::make_shared<const std::string>(http_chunk("d")));
  feed.close();
  EXPECT_EQ(notified, 2);  // the frame; the close after it needs no second notify
  EXPECT_TRUE(feed.closed());
  EXPECT_EQ(feed.take(&ended).size(), 1u);  // what was queued before the close still comes
  EXPECT_TRUE(ended);
  EXPECT_TRUE(feed.take().empty());
  feed.push(std::make_shared<const std::string>(http_chunk("e")));  // after close: dropped
  EXPECT_EQ(feed.queued(), 0u);
}

// The HTTP/2 consumer's sink: a frame pushed on the consumer's own thread, with nothing queued
// and everything taken, goes straight to it; otherwise (not yet taken, refused, another
// thread, closed) the feed queues and notifies as before, keeping the frames' order.
TEST(WatchFeed, SinkTakesFramesPushedOnTheConsumersThreadInOrder) {
  boost::asio::io_context io;
  WatchFeed feed(io.get_executor());
  int notified = 0;
  std::vector<std::string> sunk;
  bool accept = true;
  feed.set_notify([&] { ++notified; });
  feed.set_sink([&](const std::shared_ptr<const std::string>& f) {
    if (accept) sunk.push_back(*f);
    return accept;
  });
  feed.push(std::make_shared<const std::string>("a"));  // not taken yet: queued
  EXPECT_TRUE(sunk.empty());
  EXPECT_EQ(feed.take().size(), 1u);
  feed.push(std::make_shared<const std::string>("b"));
  feed.push(std::make_shared<const std::string>("c"));
  EXPECT_EQ(sunk, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(notified, 0);
  EXPECT_EQ(feed.queued(), 0u);
  accept = false;  // the sink cannot take "d": queued, notified; "e" must not overtake it
  feed.push(std::make_shared<const std::string>("d"));
  accept = true;
  feed.push(std::make_shared<const std::string>("e"));
  EXPECT_EQ(notified, 1);
  EXPECT_EQ(sunk.size(), 2u);
  std::vector<std::string> taken;
  for (const auto& f : feed.take()) taken.push_back(*f);
  EXPECT_EQ(taken, (std::vector<std::string>{"d", "e"}));
  std::thread([&] { feed.push(std::make_shared<const std::string>("f")); }).join();
  EXPECT_EQ(sunk.size(), 2u);  // pushed on another thread: queued
  EXPECT_EQ(notified, 2);
  EXPECT_EQ(feed.take().size(), 1u);
  feed.close();
  feed.push(std::make_shared<const std::string>("g"));  // after close: dropped
  EXPECT_EQ(sunk.size(), 2u);
  EXPECT_EQ(feed.queued(), 0u);
}

// The waiting consumer (HTTP/1.1): next() sleeps until a frame, the close or the timeout.
TEST(WatchFeed, NextEndsAtTheTimeoutAndWhenClosedAndDrained) {
  boost::asio::io_context io;
  auto feed = std::make_shared<WatchFeed>(io.get_executor());
  feed->timeout = std::chrono::seconds(0);
  std::optional<std::size_t> got;
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    auto frames = co_await feed->next();
    got = frames.size();
  }, boost::asio::detached);
  io.run();
  EXPECT_EQ(got, 0u);  // timed out with nothing to send

  io.restart();
  auto open = std::make_shared<WatchFeed>(io.get_executor());
  std::vector<std::size_t> sizes;
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    while (true) {
      auto frames = co_await open->next();
      sizes.push_back(frames.size());
      if (frames.empty()) break;
    }
  }, boost::asio::detached);
  boost::asio::post(io, [&] {
    open->push(std::make_shared<const std::string>(http_chunk("a")));
    open->close();
  });
  io.run();
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 0}));
}

// A BOOKMARK names the feed's progress and goes behind the frames queued before it, so a
// client never records a revision whose events it has not been sent yet.
TEST(WatchFeed, BookmarksNameTheProgressBehindQueuedEvents) {
  boost::asio::io_context io;
  auto feed = std::make_shared<WatchFeed>(io.get_executor());
  feed->bookmarks = true;
  feed->bookmark_interval = std::chrono::milliseconds(0);
  feed->make_bookmark = [](std::int64_t rev) { return http_chunk("B" + std::to_string(rev)); };
  feed->set_progress(5);
  std::vector<std::string> written;
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {
      for (const auto& f : co_await feed->next()) written.emplace_back(chunk_payload(*f));
    }
    feed->push(std::make_shared<const std::string>(http_chunk("e7")));
    feed->push(std::make_shared<const std::string>(http_chunk("e7'")));
    feed->set_progress(7);
    feed->set_progress(6);  // progress never goes back
    for (const auto& f : co_await feed->next()) written.emplace_back(chunk_payload(*f));
    for (const auto& f : co_await feed->next()) written.emplace_back(chunk_payload(*f));
  }, boost::asio::detached);
  io.run();
  ASSERT_GE(written.size(), 4u);
  EXPECT_EQ(written[0], "B5");
  EXPECT_EQ(written[1], "B5");
  EXPECT_EQ(written[2], "e7");
  EXPECT_EQ(written[3], "e7'");
  for (std::size_t i = 4; i < written.size(); ++i) EXPECT_EQ(written[i], "B7");
}

TEST(Negotiate, PicksTheFirstRepresentationWeServe) {
  EXPECT_EQ(negotiate(""), Format::kJson);
  EXPECT_EQ(negotiate("application/json"), Format::kJson);
  EXPECT_EQ(negotiate("*/*"), Format::kJson);
  EXPECT_EQ(negotiate("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;"
                      "v=v1beta1;g=meta.k8s.io,application/json"),
            Format::kTable);
  EXPECT_EQ(negotiate("application/vnd.kubernetes.protobuf,application/json"), Format::kJson);
  EXPECT_EQ(negotiate("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
            Format::kPartialMetadata);
  EXPECT_EQ(negotiate("application/vnd.kubernetes.protobuf"), Format::kUnacceptable);
  EXPECT_EQ(negotiate("application/json;as=Scale;g=autoscaling"), Format::kUnacceptable);
}

TEST(Ipv4Range, ParsesAndContains) {
  auto r = Ipv4Range::parse("10.96.0.0/12");
  ASSERT_TRUE(r);
  EXPECT_EQ(Ipv4Range::format(r->base), "10.96.0.0");
  EXPECT_EQ(r->size(), 1u << 20);
  EXPECT_TRUE(r->contains(*Ipv4Range::parse_ip("10.111.255.254")));
  EXPECT_FALSE(r->contains(*Ipv4Range::parse_ip("10.112.0.1")));
  EXPECT_FALSE(Ipv4Range::parse("10.96.0.0"));
  EXPECT_FALSE(Ipv4Range::parse("10.96.0.0/33"));
  EXPECT_FALSE(Ipv4Range::parse("bogus/12"));
}

}  // namespace
}  // namespace podwarp::apiserver
