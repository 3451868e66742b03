// ApiServer: the HTTPS front of podwarp-control. Beast over Asio (io_uring backend), one
// coroutine per connection, HTTP/1.1 keep-alive. It authenticates each request (client
// certificate signed by the cluster CA, or a bearer token from the token file), routes
// discovery, OpenAPI, health and metrics paths itself and hands resource paths to Api.
//
// Threading: runs on the executor of the io_context it was given; not thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "apiserver/api.h"
#include "apiserver/discovery.h"

namespace podwarp::apiserver {

struct ServerOptions {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: the kernel picks
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  std::string token_file;  // CSV: token,user,uid,"group1,group2"
  std::size_t max_body_bytes = 3 * 1024 * 1024;
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

  void set_ready(bool ready) { ready_ = ready; }
  DiscoveryOptions& discovery_options() { return discovery_; }

 private:
  struct Connection;
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);
  std::optional<UserInfo> authenticate_token(std::string_view authorization) const;

  boost::asio::io_context& io_;
  Api& api_;
  ServerOptions opts_;
  DiscoveryOptions discovery_;
  boost::asio::ssl::context ssl_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, UserInfo, std::less<>> tokens_;
  bool ready_ = false;
};

}  // namespace podwarp::apiserver
