// ApiServer: the HTTPS front of podwarp-control. Beast over Asio (io_uring backend), one
// coroutine per connection, HTTP/1.1 keep-alive. It authenticates each request (client
// certificate signed by the cluster CA, or a bearer token from the token file), routes
// discovery, OpenAPI, health and metrics paths itself and hands resource paths to Api.
//
// Threading: connections are spread over `workers` reactor threads (each its own
// io_context), which do TLS, HTTP and watch streaming; every Api call hops to the Api's
// executor (the io_context passed in), where all API state lives. Construct, listen, run and
// stop from the Api's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <atomic>
#include <chrono>
#include <optional>
#include <map>
#include <thread>
#include <vector>
#include <memory>
#include <string>

#include "apiserver/api.h"
#include "apiserver/discovery.h"
#include "apiserver/health.h"
#include "apiserver/proxy_stream.h"

namespace podwarp::apiserver {

class TokenIssuer;
class H2Session;

struct ServerOptions {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the kernel picks
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  std::string token_file;  // CSV: token,user,uid,"group1,group2"
  // The client certificate presented to node APIs (pods/log, exec, attach, portforward) and
  // the CA that signed the nodes' serving certificates.
  std::string kubelet_client_cert_file;
  std::string kubelet_client_key_file;
  std::string kubelet_ca_file;
  // Verifies service-account JWTs (bearer tokens); nullptr: only the token file.
  std::shared_ptr<const TokenIssuer> tokens;
  std::size_t max_body_bytes = 3 * 1024 * 1024;
  unsigned workers = 2;  // connection threads; 0 serves connections on the Api's thread
  // HTTP/2 serves clients that offer it in ALPN (kubectl and client-go do: their requests and
  // watches share one connection); others, and upgrades (exec, attach, portforward), use
  // HTTP/1.1. SETTINGS_MAX_CONCURRENT_STREAMS per connection, kube-apiserver's default.
  std::uint32_t http2_max_streams = 1000;
};

// Where a request goes, whatever its transport: a whole response, a watch feed to stream, or
// the node API to relay it to (pods/log, exec, attach, portforward; path without the query).
struct Routed {
  std::optional<Response> response;
  std::shared_ptr<WatchFeed> feed;
  std::optional<NodeRequest> node;
  std::string verb = "other";  // for the request metrics
  std::string resource;
};

class ApiServer {
 public:
  ApiServer(boost::asio::io_context& io, Api& api, ServerOptions opts);
  ~ApiServer();

  // Binds and listens; returns the bound port.
  std::expected<std::uint16_t, std::string> listen();
  // Accept loop; returns when the acceptor is closed.
  boost::asio::awaitable<void> run();
  void stop();

  void set_ready(bool ready) { ready_.store(ready); }
  DiscoveryOptions& discovery_options() { return discovery_; }

 private:
  friend class H2Session;
  struct Connection;
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  // HTTP/2 on a connection whose handshake chose "h2" (http2.cpp).
  boost::asio::awaitable<void> serve_h2(TlsStream& stream, const std::optional<UserInfo>& cert_user);
  // Authenticates and routes one request (the Api call runs on the Api's thread).
  // /healthz, /livez, /readyz and their single checks (health.h).
  boost::asio::awaitable<Response> health_check(const HealthPath& path, const Request& req);
  boost::asio::awaitable<Routed> route(Request& req, const std::optional<UserInfo>& cert_user,
                                       std::string_view authorization);
  // apiserver_request_total, and the latency histogram when `started` is given.
  static void count(const Routed& routed, unsigned status,
                    std::optional<std::chrono::steady_clock::time_point> started = std::nullopt);
  boost::asio::any_io_executor next_worker();
  std::optional<UserInfo> authenticate_token(std::string_view authorization) const;
  // The --token-auth-file entry of a bare token (immutable after construction: any thread).
  std::optional<UserInfo> static_token(std::string_view token) const;
  // A service-account JWT: signature and claims here, the objects it names on the Api's thread.
  boost::asio::awaitable<std::optional<UserInfo>> authenticate_service_account(
      std::string authorization);

  boost::asio::io_context& io_;
  Api& api_;
  ServerOptions opts_;
  DiscoveryOptions discovery_;
  boost::asio::ssl::context ssl_;
  boost::asio::ssl::context node_tls_;  // client side, towards node APIs
  boost::asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, UserInfo, std::less<>> tokens_;
  std::atomic<bool> ready_{false};
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  std::vector<std::thread> threads_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::size_t next_ = 0;
};

}  // namespace podwarp::apiserver
