// Client and Informer against an in-process fake API server: Beast over TLS on 127.0.0.1,
// port 0, with certificates from podwarp::pki. Server and client share one io_context run by
// the test thread, so every step is deterministic; waits are bounded only from above.
#include "podwarp/client.h"

#include "podwarp/asio_run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "podwarp/informer.h"
#include "podwarp/pki.h"

namespace podwarp::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto kLimit = 30s;  // upper bound for any wait; normally a few milliseconds

struct TestPki {
  std::string ca_pem, server_cert_pem, server_key_pem, admin_cert_pem, admin_key_pem;
  std::string other_ca_pem;
};

const TestPki& test_pki() {
  static const TestPki p = [] {
    TestPki t;
    auto ca = pki::create_ca();
    auto srv = pki::issue_serving_cert(*ca, "podwarp-apiserver", {{"localhost"}, {"127.0.0.1"}});
    std::vector<std::string> masters{"system:masters"};
    auto admin = pki::issue_client_cert(*ca, "admin", masters);
    auto other = pki::create_ca();
    t.ca_pem = *pki::cert_to_pem(ca->cert.get());
    t.server_cert_pem = *pki::cert_to_pem(srv->cert.get());
    t.server_key_pem = *pki::key_to_pem(srv->key.get());
    t.admin_cert_pem = *pki::cert_to_pem(admin->cert.get());
    t.admin_key_pem = *pki::key_to_pem(admin->key.get());
    t.other_ca_pem = *pki::cert_to_pem(other->cert.get());
    return t;
  }();
  return p;
}

// A request as the fake server saw it.
struct Seen {
  std::string method, target, body, content_type, authorization;
  std::string user;  // from the verified client certificate
  std::vector<std::string> groups;
  int connection = 0;
};

// The body of a streamed (chunked) reply, fed by the test while the client reads it.
class ChunkFeed {
 public:
  explicit ChunkFeed(asio::any_io_executor ex) : wake_(std::move(ex)) {}
  void push(std::string chunk) {
    chunks_.push_back(std::move(chunk));
    wake_.cancel();
  }
  void finish() {
    finished_ = true;
    wake_.cancel();
  }

  asio::awaitable<std::optional<std::string>> next() {
    while (chunks_.empty() && !finished_) {
      wake_.expires_after(1h);
      error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (chunks_.empty()) co_return std::nullopt;
    std::string c = std::move(chunks_.front());
    chunks_.pop_front();
    co_return c;
  }

 private:
  std::deque<std::string> chunks_;
  bool finished_ = false;
  asio::steady_timer wake_;
};

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::shared_ptr<ChunkFeed> stream;  // a chunked body, when set
  bool hang = false;                  // never answer
  bool close_after = false;           // close the connection after answering (keep-alive sent)
};

class FakeApiServer {
 public:
  using Handler = std::function<Reply(const Seen&)>;

  FakeApiServer(asio::io_context& ioc, Handler handler)
      : ioc_(ioc),
        handler_(std::move(handler)),
        tls_(ssl::context::tls_server),
        acceptor_(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    const TestPki& p = test_pki();
    tls_.use_certificate_chain(asio::buffer(p.server_cert_pem));
    tls_.use_private_key(asio::buffer(p.server_key_pem), ssl::context::pem);
    tls_.add_certificate_authority(asio::buffer(p.ca_pem));
    tls_.set_verify_mode(ssl::verify_peer);  // ask for a client certificate; do not require one
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
  }

  std::string url() const {
    return fmt::format("https://127.0.0.1:{}", acceptor_.local_endpoint().port());
  }
  const std::vector<Seen>& requests() const { return requests_; }
  int connections() const { return connections_; }

  // Closes the listener and every session. Run the io_context until idle() before destroying
  // the server: destroying an io_context (io_uring backend, Boost 1.81) while socket operations
  // are still pending touches freed services.
  void shutdown() {
    error_code ec;
    acceptor_.close(ec);
    for (beast::tcp_stream* s : sessions_) s->close();
    for (asio::steady_timer* t : hangs_) t->cancel();
    for (const auto& f : feeds_) f->finish();
  }
  bool idle() const { return !accepting_ && sessions_.empty(); }

 private:
  // Registers a session's socket for shutdown() while the session runs.
  struct Registration {
    std::set<beast::tcp_stream*>& set;
    beast::tcp_stream* s;
    Registration(std::set<beast::tcp_stream*>& set, beast::tcp_stream* s) : set(set), s(s) {
      set.insert(s);
    }
    ~Registration() { set.erase(s); }
  };

  asio::awaitable<void> accept_loop() {
    accepting_ = true;
    struct Done {
      bool& flag;
      ~Done() { flag = false; }
    } done{accepting_};
    for (;;) {
      error_code ec;
      tcp::socket s =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      s.set_option(tcp::no_delay(true), ec);  // as a real apiserver does: no Nagle stalls
      asio::co_spawn(ioc_, session(std::move(s), ++connections_), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket, int id) {
    auto use_ec = [](error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); };
    beast::ssl_stream<beast::tcp_stream> s(std::move(socket), tls_);
    Registration registration(sessions_, &beast::get_lowest_layer(s));
    error_code ec;
    co_await s.async_handshake(ssl::stream_base::server, use_ec(ec));
    if (ec) co_return;
    std::string user;
    std::vector<std::string> groups;
    if (X509* peer = SSL_get0_peer_certificate(s.native_handle());
        peer != nullptr && SSL_get_verify_result(s.native_handle()) == X509_V_OK) {
      if (auto info = pki::user_from_cert(peer)) {
        user = info->user;
        groups = info->groups;
      }
    }
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      co_await http::async_read(s, buffer, req, use_ec(ec));
      if (ec) co_return;
      Seen seen{std::string(req.method_string()),
                std::string(req.target()),
                req.body(),
                std::string(req[http::field::content_type]),
                std::string(req[http::field::authorization]),
                user,
                groups,
                id};
      requests_.push_back(seen);
      Reply r = handler_(seen);
      if (r.hang) {
        asio::steady_timer t(ioc_, 1h);
        hangs_.insert(&t);
        co_await t.async_wait(use_ec(ec));
        hangs_.erase(&t);
        co_return;
      }
      if (r.stream) {
        feeds_.push_back(r.stream);
        http::response<http::empty_body> res{static_cast<http::status>(r.status), 11};
        res.set(http::field::content_type, r.content_type);
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        co_await http::async_write_header(s, sr, use_ec(ec));
        if (ec) co_return;
        for (;;) {
          std::optional<std::string> chunk = co_await r.stream->next();
          if (!chunk) break;
          co_await asio::async_write(s, http::make_chunk(asio::buffer(*chunk)), use_ec(ec));
          if (ec) co_return;
        }
        co_await asio::async_write(s, http::make_chunk_last(), use_ec(ec));
        if (ec) co_return;
      } else {
        http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
        res.set(http::field::content_type, r.content_type);
        res.body() = r.body;
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        co_await http::async_write(s, res, use_ec(ec));
        if (ec) co_return;
      }
      if (r.close_after || !req.keep_alive()) {
        beast::get_lowest_layer(s).close();
        co_return;
      }
    }
  }

  asio::io_context& ioc_;
  Handler handler_;
  ssl::context tls_;
  tcp::acceptor acceptor_;
  std::vector<Seen> requests_;
  int connections_ = 0;
  bool accepting_ = false;
  std::set<beast::tcp_stream*> sessions_;
  std::set<asio::steady_timer*> hangs_;
  std::vector<std::shared_ptr<ChunkFeed>> feeds_;
};

json::value pod(std::string_view name, std::string_view rv, std::string_view ns = "default") {
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", {{"name", name}, {"namespace", ns}, {"resourceVersion", rv}}}};
}

std::string event(std::string_view type, const json::value& obj) {
  return json::serialize(json::object{{"type", type}, {"object", obj}});
}

std::string status_body(int code, std::string_view reason, std::string_view message) {
  return json::serialize(json::object{{"kind", "Status"},
                                      {"apiVersion", "v1"},
                                      {"metadata", json::object{}},
                                      {"status", "Failure"},
                                      {"message", message},
                                      {"reason", reason},
                                      {"code", code}});
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

const api::Resource& pods() { return *api::find_resource("", "v1", "pods"); }

class ClientTest : public ::testing::Test {
 protected:
  void serve(FakeApiServer::Handler h) {
    server_ = std::make_unique<FakeApiServer>(ioc_, std::move(h));
  }

  Config config() const {
    Config c;
    c.server = server_->url();
    c.ca_pem = test_pki().ca_pem;
    c.token = "tok";
    c.request_timeout = kLimit;
    return c;
  }

  // Runs the io_context until pred() holds or kLimit passes.
  bool run_until(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + kLimit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      podwarp::run_one_for(ioc_, 20ms);
      if (ioc_.stopped()) ioc_.restart();
    }
    return pred();
  }

  template <class T>
  T run(asio::awaitable<T> aw) {
    std::optional<T> result;
    asio::co_spawn(ioc_, std::move(aw), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      result.emplace(std::move(v));
    });
    EXPECT_TRUE(run_until([&] { return result.has_value(); })) << "timed out";
    if (!result) throw std::runtime_error("coroutine did not finish");
    return std::move(*result);
  }

  void TearDown() override {
    if (server_) {
      server_->shutdown();
      EXPECT_TRUE(run_until([&] { return server_->idle(); }));
      server_.reset();
    }
    ioc_.restart();
    ioc_.poll();
  }

  asio::io_context ioc_;  // first: outlives the server and every coroutine frame
  std::unique_ptr<FakeApiServer> server_;
};

TEST_F(ClientTest, GetReturnsObjectAndSendsToken) {
  serve([](const Seen&) { return Reply{200, json::serialize(pod("web", "7"))}; });
  Client client(ioc_.get_executor(), config());
  ASSERT_FALSE(client.setup_error());
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(get_string(*r, {"metadata", "name"}), "web");
  ASSERT_EQ(server_->requests().size(), 1u);
  const Seen& s = server_->requests()[0];
  EXPECT_EQ(s.method, "GET");
  EXPECT_EQ(s.target, "/api/v1/namespaces/default/pods/web");
  EXPECT_EQ(s.authorization, "Bearer tok");
  EXPECT_TRUE(s.user.empty());
}

TEST_F(ClientTest, ClientCertificateIdentifiesUser) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Config c = config();
  c.token.clear();
  c.client_cert_pem = test_pki().admin_cert_pem;
  c.client_key_pem = test_pki().admin_key_pem;
  Client client(ioc_.get_executor(), c);
  auto r = run(client.list(*api::find_resource("", "v1", "nodes"), "ignored"));
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(server_->requests().size(), 1u);
  EXPECT_EQ(server_->requests()[0].target, "/api/v1/nodes");
  EXPECT_EQ(server_->requests()[0].user, "admin");
  EXPECT_EQ(server_->requests()[0].groups, std::vector<std::string>{"system:masters"});
  EXPECT_TRUE(server_->requests()[0].authorization.empty());
}

TEST_F(ClientTest, StatusBodyMapsToError) {
  serve([](const Seen&) {
    return Reply{404, status_body(404, "NotFound", "pods \"web\" not found")};
  });
  Client client(ioc_.get_executor(), config());
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 404);
  EXPECT_TRUE(r.error().is_not_found());
  EXPECT_EQ(r.error().reason, "NotFound");
  EXPECT_EQ(r.error().message, "pods \"web\" not found");
  EXPECT_EQ(get_int(r.error().status, {"code"}), 404);
  EXPECT_EQ(r.error().operation, "GET /api/v1/namespaces/default/pods/web");
  EXPECT_TRUE(contains(r.error().to_string(), "404 NotFound")) << r.error().to_string();
}

TEST_F(ClientTest, UnauthorizedWithoutStatusMapsToError) {
  serve([](const Seen&) { return Reply{401, "Unauthorized\n", "text/plain"}; });
  Client client(ioc_.get_executor(), config());
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 401);
  EXPECT_EQ(r.error().reason, "Unauthorized");
  EXPECT_EQ(r.error().message, "Unauthorized");
  EXPECT_TRUE(r.error().status.is_null());

  // The raw call hands back any status.
  auto raw = run(client.request("GET", "/version"));
  ASSERT_TRUE(raw) << raw.error().to_string();
  EXPECT_EQ(raw->status, 401);
  EXPECT_EQ(raw->content_type, "text/plain");
}

TEST_F(ClientTest, KeepAliveReusesOneConnection) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Client client(ioc_.get_executor(), config());
  for (int i = 0; i < 3; ++i) {
    auto r = run(client.get(pods(), "default", "web"));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  EXPECT_EQ(server_->connections(), 1);
  EXPECT_EQ(client.idle_connections(), 1u);
  for (const Seen& s : server_->requests()) EXPECT_EQ(s.connection, 1);
}

TEST_F(ClientTest, ConcurrentRequestsUseSeparateConnections) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Client client(ioc_.get_executor(), config());
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(ioc_, client.get(pods(), "default", fmt::format("p{}", i)),
                   [&](std::exception_ptr, Result<json::value> r) {
                     EXPECT_TRUE(r);
                     ++done;
                   });
  }
  ASSERT_TRUE(run_until([&] { return done == 3; }));
  EXPECT_EQ(server_->connections(), 3);
  EXPECT_EQ(client.idle_connections(), 3u);
}

TEST_F(ClientTest, ServerClosedIdleConnectionIsReplaced) {
  serve([](const Seen&) {
    Reply r{200, "{}"};
    r.close_after = true;
    return r;
  });
  Client client(ioc_.get_executor(), config());
  ASSERT_TRUE(run(client.get(pods(), "default", "a")));
  auto r = run(client.get(pods(), "default", "b"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(server_->requests().size(), 2u);
  EXPECT_EQ(server_->connections(), 2);
}

TEST_F(ClientTest, WritesUseUpstreamMethodsPathsAndContentTypes) {
  serve([](const Seen& s) {
    return Reply{s.method == "POST" ? 201 : 200, json::serialize(pod("web", "1"))};
  });
  Client client(ioc_.get_executor(), config());
  const api::Resource& deploys = *api::find_resource("apps", "v1", "deployments");
  json::value obj = json::object{{"metadata", {{"name", "web"}, {"namespace", "ns1"}}}};
  WriteOptions wo;
  wo.field_manager = "podwarp test";
  ASSERT_TRUE(run(client.create(deploys, "", obj, wo)));
  ASSERT_TRUE(run(client.update(deploys, "", obj)));
  ASSERT_TRUE(run(client.update_status(deploys, "ns1", obj)));
  ASSERT_TRUE(run(client.patch(deploys, "ns1", "web", PatchType::merge,
                               R"({"spec":{"replicas":3}})", {}, "scale")));
  ASSERT_TRUE(run(client.patch(pods(), "ns1", "web", PatchType::strategic, "{}")));
  DeleteOptions del;
  del.propagation_policy = "Background";
  ASSERT_TRUE(run(client.remove(deploys, "ns1", "web", del)));
  ListOptions lo;
  lo.label_selector = "app=web,tier!=db";
  lo.limit = 50;
  lo.continue_token = "abc/+=";
  ASSERT_TRUE(run(client.list(pods(), "", lo)));

  const auto& seen = server_->requests();
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/apis/apps/v1/namespaces/ns1/deployments?fieldManager=podwarp%20test");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(get_string(*parse_json(seen[0].body), {"metadata", "name"}), "web");
  EXPECT_EQ(seen[1].method, "PUT");
  EXPECT_EQ(seen[1].target, "/apis/apps/v1/namespaces/ns1/deployments/web");
  EXPECT_EQ(seen[2].target, "/apis/apps/v1/namespaces/ns1/deployments/web/status");
  EXPECT_EQ(seen[3].method, "PATCH");
  EXPECT_EQ(seen[3].target, "/apis/apps/v1/namespaces/ns1/deployments/web/scale");
  EXPECT_EQ(seen[3].content_type, "application/merge-patch+json");
  EXPECT_EQ(seen[3].body, R"({"spec":{"replicas":3}})");
  EXPECT_EQ(seen[4].content_type, "application/strategic-merge-patch+json");
  EXPECT_EQ(seen[5].method, "DELETE");
  EXPECT_EQ(seen[5].target, "/apis/apps/v1/namespaces/ns1/deployments/web");
  EXPECT_EQ(get_string(*parse_json(seen[5].body), {"propagationPolicy"}), "Background");
  EXPECT_EQ(get_string(*parse_json(seen[5].body), {"kind"}), "DeleteOptions");
  EXPECT_EQ(seen[6].target,
            "/api/v1/pods?labelSelector=app%3Dweb%2Ctier%21%3Ddb&limit=50&continue=abc%2F%2B%3D");
}

TEST_F(ClientTest, UpdateWithoutNameFailsLocally) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Client client(ioc_.get_executor(), config());
  auto r = run(client.update(pods(), "default", json::object{}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 0);
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(ClientTest, WatchDeliversEventsAsChunksArrive) {
  auto feed = std::make_shared<ChunkFeed>(ioc_.get_executor());
  serve([&](const Seen&) {
    Reply r;
    r.stream = feed;
    return r;
  });
  Client client(ioc_.get_executor(), config());
  std::vector<WatchEvent> events;
  std::optional<Result<void>> done;
  ListOptions lo;
  lo.resource_version = "4";
  lo.label_selector = "app=web";
  asio::co_spawn(
      ioc_,
      client.watch(pods(), "default", lo, [&](WatchEvent&& e) { events.push_back(std::move(e)); }),
      [&](std::exception_ptr, Result<void> r) { done = std::move(r); });

  // One event, then the first half of the next one: only the complete event is delivered.
  std::string modified = event("MODIFIED", pod("a", "6"));
  feed->push(event("ADDED", pod("a", "5")) + "\n" + modified.substr(0, 10));
  ASSERT_TRUE(run_until([&] { return events.size() == 1; }));
  EXPECT_EQ(events[0].type, "ADDED");
  EXPECT_EQ(get_string(events[0].object, {"metadata", "resourceVersion"}), "5");
  EXPECT_FALSE(done);

  // The rest of it, back to back with a bookmark and no newline, split mid-token.
  std::string rest = modified.substr(10) +
                     event("BOOKMARK", json::object{{"metadata", {{"resourceVersion", "9"}}}}) +
                     "\n" + event("DELETED", pod("a", "10"));
  feed->push(rest.substr(0, rest.size() - 3));
  feed->push(rest.substr(rest.size() - 3) + "\n");
  feed->finish();
  ASSERT_TRUE(run_until([&] { return done.has_value(); }));
  ASSERT_TRUE(*done) << done->error().to_string();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].type, "MODIFIED");
  EXPECT_EQ(events[2].type, "BOOKMARK");
  EXPECT_EQ(get_string(events[2].object, {"metadata", "resourceVersion"}), "9");
  EXPECT_EQ(events[3].type, "DELETED");

  ASSERT_EQ(server_->requests().size(), 1u);
  const std::string& target = server_->requests()[0].target;
  EXPECT_TRUE(target.starts_with("/api/v1/namespaces/default/pods?")) << target;
  EXPECT_TRUE(contains(target, "watch=true")) << target;
  EXPECT_TRUE(contains(target, "allowWatchBookmarks=true")) << target;
  EXPECT_TRUE(contains(target, "resourceVersion=4")) << target;
  EXPECT_TRUE(contains(target, "labelSelector=app%3Dweb")) << target;
  // The stream ended cleanly, so its connection went back to the pool.
  EXPECT_EQ(client.idle_connections(), 1u);
}

TEST_F(ClientTest, WatchErrorEventEndsWithGone) {
  auto feed = std::make_shared<ChunkFeed>(ioc_.get_executor());
  serve([&](const Seen&) {
    Reply r;
    r.stream = feed;
    return r;
  });
  Client client(ioc_.get_executor(), config());
  feed->push(event("ADDED", pod("a", "5")));
  feed->push(event("ERROR", *parse_json(status_body(410, "Expired", "too old resource version"))));
  int seen = 0;
  auto r = run(client.watch(pods(), "", {}, [&](WatchEvent&&) { ++seen; }));
  ASSERT_FALSE(r);
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(r.error().is_gone());
  EXPECT_EQ(r.error().reason, "Expired");
  EXPECT_EQ(r.error().message, "too old resource version");
  EXPECT_EQ(get_int(r.error().status, {"code"}), 410);
}

TEST_F(ClientTest, WatchHttpGoneIsAnError) {
  serve([](const Seen&) { return Reply{410, status_body(410, "Expired", "gone")}; });
  Client client(ioc_.get_executor(), config());
  auto r = run(client.open_watch(pods(), "default", {}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 410);
  EXPECT_EQ(r.error().reason, "Expired");
}

TEST_F(ClientTest, CancelEndsAPendingWatch) {
  auto feed = std::make_shared<ChunkFeed>(ioc_.get_executor());
  serve([&](const Seen&) {
    Reply r;
    r.stream = feed;
    return r;
  });
  Client client(ioc_.get_executor(), config());
  auto stream = run(client.open_watch(pods(), "default", {}));
  ASSERT_TRUE(stream) << stream.error().to_string();
  std::optional<Result<std::optional<WatchEvent>>> got;
  asio::co_spawn(
      ioc_, (*stream)->next(),
      [&](std::exception_ptr, Result<std::optional<WatchEvent>> r) { got = std::move(r); });
  ioc_.poll();
  EXPECT_FALSE(got);
  (*stream)->cancel();
  ASSERT_TRUE(run_until([&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().reason, "Cancelled");
}

TEST_F(ClientTest, RequestTimesOut) {
  serve([](const Seen&) {
    Reply r;
    r.hang = true;
    return r;
  });
  Config c = config();
  c.request_timeout = 200ms;
  Client client(ioc_.get_executor(), c);
  auto start = std::chrono::steady_clock::now();
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 0);
  EXPECT_EQ(r.error().reason, "Timeout") << r.error().to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
}

// Requests that time out while other connections open and close all the time: the timed-out
// ones end with Timeout, and no other connection loses or mixes bytes (socket_deadline.h).
TEST_F(ClientTest, TimeoutsLeaveOtherConnectionsIntact) {
  serve([](const Seen& seen) {
    Reply r;
    if (contains(seen.target, "/slow-")) {
      r.hang = true;
      return r;
    }
    std::string name(seen.target.substr(seen.target.rfind('/') + 1));
    r.body = json::serialize(pod(name, "1"));
    return r;
  });
  Config c = config();
  c.request_timeout = 40ms;
  c.max_idle_connections = 0;  // a new connection (and server session) per request
  Client client(ioc_.get_executor(), c);
  int timed_out = 0, slow_other = 0, fast_ok = 0, fast_failed = 0, fast_done = 0;
  std::string failures;
  for (int i = 0; i < 8; ++i) {
    asio::co_spawn(ioc_, client.get(pods(), "default", "slow-" + std::to_string(i)),
                   [&](std::exception_ptr, Result<json::value> r) {
                     (!r && r.error().reason == "Timeout" ? timed_out : slow_other)++;
                   });
  }
  constexpr int kFast = 4;
  constexpr int kRounds = 30;
  for (int w = 0; w < kFast; ++w) {
    asio::co_spawn(
        ioc_,
        [&, w]() -> asio::awaitable<void> {
          for (int k = 0; k < kRounds; ++k) {
            std::string name = fmt::format("fast-{}-{}", w, k);
            auto call = client.get(pods(), "default", name);  // (g++ 12: no temporaries in co_await)
            auto r = co_await std::move(call);
            if (r && get_string(*r, {"metadata", "name"}) == name) {
              ++fast_ok;
            } else {
              ++fast_failed;
              failures += "\n  " + name + ": " + (r ? json::serialize(*r) : r.error().to_string());
            }
          }
          ++fast_done;
        },
        asio::detached);
  }
  ASSERT_TRUE(run_until([&] { return timed_out + slow_other == 8 && fast_done == kFast; }));
  EXPECT_EQ(timed_out, 8);
  EXPECT_EQ(fast_ok, kFast * kRounds) << failures;
  EXPECT_EQ(fast_failed, 0) << failures;
}

TEST_F(ClientTest, UntrustedServerIsRejected) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Config c = config();
  c.ca_pem = test_pki().other_ca_pem;
  Client client(ioc_.get_executor(), c);
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, 0);
  EXPECT_EQ(r.error().reason, "ConnectionError");
  EXPECT_TRUE(contains(r.error().message, "TLS handshake")) << r.error().to_string();
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(ClientTest, WrongServerNameIsRejected) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Config c = config();
  c.tls_server_name = "not-the-server.example";
  Client client(ioc_.get_executor(), c);
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, "TLS handshake")) << r.error().to_string();

  // The name the certificate does carry works.
  c.tls_server_name = "localhost";
  Client ok(ioc_.get_executor(), c);
  auto r2 = run(ok.get(pods(), "default", "web"));
  EXPECT_TRUE(r2) << r2.error().to_string();
}

TEST_F(ClientTest, BadConfigurationFailsEveryCall) {
  serve([](const Seen&) { return Reply{200, "{}"}; });
  Config c = config();
  c.server = "http://127.0.0.1:1";
  Client client(ioc_.get_executor(), c);
  ASSERT_TRUE(client.setup_error());
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_TRUE(contains(r.error().message, "https")) << r.error().to_string();

  Config bad_ca = config();
  bad_ca.ca_pem = "garbage";
  EXPECT_TRUE(Client(ioc_.get_executor(), bad_ca).setup_error());
}

TEST_F(ClientTest, ConnectionRefusedIsAConnectionError) {
  // A port that was just free: bind, read the port, close.
  unsigned short port;
  {
    tcp::acceptor a(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  Config c;
  c.server = fmt::format("https://127.0.0.1:{}", port);
  c.ca_pem = test_pki().ca_pem;
  Client client(ioc_.get_executor(), c);
  auto r = run(client.get(pods(), "default", "web"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "ConnectionError");
  EXPECT_TRUE(contains(r.error().message, "connect 127.0.0.1")) << r.error().to_string();
}

// The informer end to end: list, chunked watch, clean end, re-watch, 410, relist with diff.
TEST_F(ClientTest, InformerListsWatchesAndRelistsOnGone) {
  std::vector<std::shared_ptr<ChunkFeed>> feeds;
  int lists = 0;
  int watches = 0;
  serve([&](const Seen& s) -> Reply {
    if (!contains(s.target, "watch=true")) {
      ++lists;
      json::array items;
      std::string rv;
      if (lists == 1) {
        items = {pod("a", "90"), pod("b", "95")};
        rv = "100";
      } else {
        items = {pod("a", "102"), pod("c", "120"), pod("d", "121")};
        rv = lists == 2 ? "130" : "131";
      }
      for (auto& item : items) {  // upstream list items carry no kind/apiVersion
        item.as_object().erase("kind");
        item.as_object().erase("apiVersion");
      }
      return Reply{200, json::serialize(json::object{{"kind", "PodList"},
                                                     {"apiVersion", "v1"},
                                                     {"metadata", {{"resourceVersion", rv}}},
                                                     {"items", items}})};
    }
    ++watches;
    if (watches == 3) return Reply{410, status_body(410, "Expired", "too old")};
    Reply r;
    r.stream = std::make_shared<ChunkFeed>(ioc_.get_executor());
    feeds.push_back(r.stream);
    return r;
  });

  Client client(ioc_.get_executor(), config());
  InformerOptions opts;
  opts.min_backoff = 10ms;
  auto informer = Informer::create(ioc_.get_executor(), client, pods(), "default", opts);
  std::vector<std::string> log;
  informer->on_add([&](const json::value& o) {
    log.push_back(fmt::format("add {}", get_string(o, {"metadata", "name"})));
  });
  informer->on_update([&](const json::value& old, const json::value& now) {
    log.push_back(fmt::format("update {} {}->{}", get_string(now, {"metadata", "name"}),
                              get_string(old, {"metadata", "resourceVersion"}),
                              get_string(now, {"metadata", "resourceVersion"})));
  });
  informer->on_delete([&](const json::value& o) {
    log.push_back(fmt::format("delete {}", get_string(o, {"metadata", "name"})));
  });
  informer->start();

  ASSERT_TRUE(run_until([&] { return informer->has_synced() && feeds.size() == 1; }));
  EXPECT_EQ(log, (std::vector<std::string>{"add a", "add b"}));
  EXPECT_EQ(get_string(*informer->get("default", "a"), {"kind"}), "Pod");

  // Watch 1: events in uneven chunks, then a bookmark, then a clean end.
  std::string body = event("ADDED", pod("c", "101")) + event("MODIFIED", pod("a", "102"));
  feeds[0]->push(body.substr(0, 17));
  feeds[0]->push(body.substr(17));
  feeds[0]->push("\n" +
                 event("BOOKMARK", json::object{{"metadata", {{"resourceVersion", "110"}}}}));
  ASSERT_TRUE(run_until([&] { return informer->resource_version() == "110"; }));
  EXPECT_EQ(log, (std::vector<std::string>{"add a", "add b", "add c", "update a 90->102"}));
  feeds[0]->finish();

  // Watch 2 resumes from the bookmark; an ERROR 410 event makes the informer relist.
  ASSERT_TRUE(run_until([&] { return feeds.size() == 2; }));
  feeds[1]->push(event("ERROR", *parse_json(status_body(410, "Expired", "too old"))));
  // Relist (130) → watch 3 answers HTTP 410 → relist (131) → watch 4 stays open.
  ASSERT_TRUE(run_until([&] { return feeds.size() == 3; }));
  EXPECT_EQ(informer->list_count(), 3u);
  EXPECT_EQ(informer->resource_version(), "131");
  EXPECT_EQ(log, (std::vector<std::string>{"add a", "add b", "add c", "update a 90->102",
                                           "update c 101->120", "add d", "delete b"}));

  std::vector<std::string> watch_rvs;
  for (const Seen& s : server_->requests()) {
    if (!contains(s.target, "watch=true")) continue;
    auto pos = s.target.find("resourceVersion=");
    watch_rvs.push_back(s.target.substr(pos + 16, s.target.find('&', pos) - pos - 16));
  }
  EXPECT_EQ(watch_rvs, (std::vector<std::string>{"100", "110", "130", "131"}));

  feeds[2]->push(event("DELETED", pod("d", "140")));
  ASSERT_TRUE(run_until([&] { return log.size() == 8; }));
  EXPECT_EQ(log.back(), "delete d");
  auto names = informer->list();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(get_string(*names[0], {"metadata", "name"}), "a");
  EXPECT_EQ(get_string(*names[1], {"metadata", "name"}), "c");
  EXPECT_EQ(informer->resource_version(), "140");

  // Stop: the open watch is closed, the loop ends and releases the informer.
  std::weak_ptr<Informer> weak = informer;
  informer->stop();
  informer.reset();
  ASSERT_TRUE(run_until([&] { return weak.expired(); }));
  feeds[2]->push(event("ADDED", pod("e", "150")));
  ioc_.poll();
  EXPECT_EQ(log.size(), 8u);
}

}  // namespace
}  // namespace podwarp::client
