#include "loop/events.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace podwarp::loop {
namespace {

TEST(EventRecorder, EventHasUpstreamShape) {
  boost::asio::io_context io;
  EventRecorder rec(client::Client(io.get_executor(), client::Config{}), "deployment-controller");
  auto obj = parse_json(R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"prod","uid":"u-1","resourceVersion":"7"}})");
  ASSERT_TRUE(obj);
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  json::object ev = rec.make_event(*obj, "Normal", "ScalingReplicaSet",
                                   "Scaled up replica set web-5d4f to 3", now);
  EXPECT_EQ(get_string(ev, {"metadata", "namespace"}), "prod");
  EXPECT_EQ(get_string(ev, {"metadata", "name"}), "web.17979cfe362a0000");
  EXPECT_EQ(get_string(ev, {"involvedObject", "kind"}), "Deployment");
  EXPECT_EQ(get_string(ev, {"involvedObject", "uid"}), "u-1");
  EXPECT_EQ(get_string(ev, {"involvedObject", "apiVersion"}), "apps/v1");
  EXPECT_EQ(get_string(ev, {"source", "component"}), "deployment-controller");
  EXPECT_EQ(get_string(ev, {"type"}), "Normal");
  EXPECT_EQ(get_string(ev, {"firstTimestamp"}), "2023-11-14T22:13:20Z");
  EXPECT_EQ(get_int(ev, {"count"}), 1);
}

TEST(EventRecorder, ClusterScopedObjectsGetEventsInDefault) {
  boost::asio::io_context io;
  EventRecorder rec(client::Client(io.get_executor(), client::Config{}), "node-controller");
  auto obj = parse_json(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","uid":"x"}})");
  json::object ev = rec.make_event(*obj, "Normal", "RegisteredNode", "m",
                                   std::chrono::system_clock::now());
  EXPECT_EQ(get_string(ev, {"metadata", "namespace"}), "default");
  EXPECT_EQ(ev.at("involvedObject").as_object().count("namespace"), 0u);
}

}  // namespace
}  // namespace podwarp::loop
