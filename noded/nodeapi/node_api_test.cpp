#include "nodeapi/node_api.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>

#include "pods/fakes_for_test.h"

namespace podwarp::noded::nodeapi {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pods::testing::run_until;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-nodeapi-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

struct Got {
  bool done = false;
  int status = 0;
  std::string body;
  std::string content_type;
};

asio::awaitable<void> get(std::string socket, std::string target, Got& out) {
  asio::local::stream_protocol::socket s(co_await asio::this_coro::executor);
  co_await s.async_connect(asio::local::stream_protocol::endpoint(socket), asio::use_awaitable);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "localhost");
  co_await http::async_write(s, req, asio::use_awaitable);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  auto [ec, n] = co_await http::async_read(s, buf, res, asio::as_tuple(asio::use_awaitable));
  out.status = ec ? -1 : res.result_int();
  (void)n;
  out.body = res.body();
  out.content_type = std::string(res[http::field::content_type]);
  out.done = true;
}

struct Env {
  TmpDir d;
  asio::io_context& io = *new asio::io_context;  // never destroyed (io_uring, notes/common.md)
  pods::testing::FakeRuntime& rt = *new pods::testing::FakeRuntime(io);
  pods::testing::FakeImages& images = *new pods::testing::FakeImages;
  std::unique_ptr<pods::PodManager> m;
  std::unique_ptr<NodeApiServer> api;
  std::string sock;

  Env() {
    fs::create_directories(d.path + "/m");
    pods::PodManagerOptions o;
    o.manifest_dir = d.path + "/m";
    o.root_dir = d.path + "/root";
    o.pod_log_dir = d.path + "/logs";
    o.timings.second = 10ms;
    std::ofstream(o.manifest_dir + "/web.yaml")
        << "kind: Pod\nmetadata: {name: web, namespace: demo}\nspec:\n  containers:\n"
           "  - {name: app, image: 'busybox:1'}\n";
    m = pods::make_pod_manager(io.get_executor(), o, rt, images);
    sock = d.path + "/api.sock";
    auto a = start_node_api(io.get_executor(), NodeApiOptions{sock, 20ms}, *m);
    EXPECT_TRUE(a) << (a ? "" : a.error());
    api = std::move(*a);
  }
  ~Env() {
    api->stop();
    (void)m.release();  // leaked with the io_context
  }
  Got fetch(const std::string& target) {
    Got g;
    asio::co_spawn(io, get(sock, target, g), asio::detached);
    EXPECT_TRUE(run_until(io, [&] { return g.done; })) << target;
    return g;
  }
};

TEST(NodeApi, HealthzPodsMetricsOverUnixSocket) {
  Env e;
  e.rt.script = [](const std::string&, int) { return pods::testing::Behavior{0, -1ms, false, false, false, "line one\nline two\n"}; };
  e.m->start();
  ASSERT_TRUE(run_until(e.io, [&] { auto* p = e.m->find_pod("demo", "web"); return p && p->phase() == "Running"; }));
  EXPECT_EQ(fs::status(e.sock).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  auto h = e.fetch("/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok");
  auto p = e.fetch("/pods");
  EXPECT_EQ(p.status, 200);
  auto v = parse_json(p.body);
  ASSERT_TRUE(v);
  EXPECT_EQ(get_string(*v, {"kind"}), "PodList");
  auto& items = v->at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(get_string(items[0], {"metadata", "name"}), "web");
  EXPECT_EQ(get_string(items[0], {"status", "phase"}), "Running");
  auto& cs = items[0].at("status").at("containerStatuses").as_array();
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_TRUE(cs[0].at("state").as_object().contains("running"));
  EXPECT_TRUE(cs[0].at("ready").as_bool());
  auto mt = e.fetch("/metrics");
  EXPECT_EQ(mt.status, 200);
  EXPECT_NE(mt.body.find("podwarp_pod_start_phase_seconds_bucket{phase=\"sandbox_ready\""), std::string::npos);
  EXPECT_NE(mt.body.find("phase=\"container_started\""), std::string::npos);
  EXPECT_EQ(e.fetch("/nope").status, 404);

  auto l = e.fetch("/containerLogs/demo/web/app");
  EXPECT_EQ(l.status, 200);
  EXPECT_EQ(l.body, "line one\nline two\n");
  EXPECT_EQ(e.fetch("/containerLogs/demo/web/app?tailLines=1").body, "line two\n");
  auto ts = e.fetch("/containerLogs/demo/web/app?tailLines=1&timestamps=true").body;
  EXPECT_TRUE(ts.ends_with("Z line two\n")) << ts;
  EXPECT_EQ(e.fetch("/containerLogs/demo/web/app?sinceSeconds=1").body, "line one\nline two\n");
  EXPECT_EQ(e.fetch("/containerLogs/demo/web/app?tailLines=x").status, 400);
  EXPECT_EQ(e.fetch("/containerLogs/demo/web/nope").status, 404);
  EXPECT_EQ(e.fetch("/containerLogs/demo/web/app?previous=true").status, 404);  // no previous run
  EXPECT_EQ(e.fetch("/containerLogs/demo/other/app").status, 404);
}

TEST(NodeApi, FollowStreamsUntilTheContainerExits) {
  Env e;
  e.rt.script = [](const std::string&, int) { return pods::testing::Behavior{0, 400ms, false, false, false, "first\n"}; };
  std::string restart_yaml = "kind: Pod\nmetadata: {name: web, namespace: demo}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: app, image: 'busybox:1'}\n";
  std::ofstream(e.d.path + "/m/web.yaml") << restart_yaml;
  e.m->start();
  ASSERT_TRUE(run_until(e.io, [&] { auto* p = e.m->find_pod("demo", "web"); return p && p->phase() == "Running"; }));
  auto path = e.m->container_log_path("demo", "web", "app", false);
  ASSERT_TRUE(path);
  ASSERT_TRUE(run_until(e.io, [&] { auto t = logs::read_log_file(*path, {}); return t && *t == "first\n"; }));
  Got g;
  asio::co_spawn(e.io, get(e.sock, "/containerLogs/demo/web/app?follow=true", g), asio::detached);
  run_until(e.io, [] { return false; }, 100ms);
  {
    logs::CriLogWriter w;  // more output while following
    ASSERT_TRUE(w.open(*path, {}));
    w.write(logs::Stream::kStdout, "second\n");
  }
  ASSERT_TRUE(run_until(e.io, [&] { return g.done; }, 5s));
  EXPECT_EQ(g.status, 200);
  EXPECT_EQ(g.body, "first\nsecond\n");
  auto* p = e.m->find_pod("demo", "web");
  EXPECT_EQ(p->phase(), "Succeeded");
}

}  // namespace
}  // namespace podwarp::noded::nodeapi
