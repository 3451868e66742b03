#include "nodeapi/node_api.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "logs/cri_log.h"
#include "nodeapi/routes.h"
#include "podwarp/log.h"
#include "podwarp/metrics.h"
#include "podwarp/time.h"

namespace podwarp::noded::nodeapi {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;

namespace {

using routes::Reply;
using routes::status_json;

class Server final : public NodeApiServer, public std::enable_shared_from_this<Server> {
 public:
  Server(asio::any_io_executor ex, NodeApiOptions o, pods::PodManager& pods)
      : ex_(ex), o_(std::move(o)), pods_(pods), acc_(ex) {}

  std::expected<void, std::string> listen() {
    ::unlink(o_.socket_path.c_str());
    boost::system::error_code ec;
    acc_.open(local(), ec);
    if (!ec) acc_.bind(local::endpoint(o_.socket_path), ec);
    if (ec) return std::unexpected(fmt::format("bind unix socket {}: {}", o_.socket_path, ec.message()));
    ::chmod(o_.socket_path.c_str(), 0600);
    acc_.listen(64, ec);
    if (ec) return std::unexpected(fmt::format("listen {}: {}", o_.socket_path, ec.message()));
    return {};
  }

  void run(std::shared_ptr<bool> alive) {
    alive_ = alive;
    auto self = shared_from_this();
    asio::co_spawn(ex_, [self, alive]() -> asio::awaitable<void> {
      for (;;) {
        auto [ec, sock] = co_await self->acc_.async_accept(asio::as_tuple(asio::use_awaitable));
        if (!*alive) co_return;
        if (ec) {
          if (ec == asio::error::operation_aborted || !self->acc_.is_open()) co_return;
          continue;
        }
        auto s = std::make_shared<local::socket>(std::move(sock));
        asio::co_spawn(self->ex_, [self, s, alive]() -> asio::awaitable<void> {
          co_await self->session(*s, alive);
        }, asio::detached);
      }
    }, asio::detached);
  }

  void stop() override {
    boost::system::error_code ec;
    acc_.close(ec);
    ::unlink(o_.socket_path.c_str());
  }

 private:
  asio::awaitable<void> session(local::socket& sock, std::shared_ptr<bool> alive) {
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(sock, buf, req, asio::as_tuple(asio::use_awaitable));
      if (ec || !*alive) co_return;
      std::string target(req.target());
      if (req.method() == http::verb::get && target.starts_with("/containerLogs/")) {
        bool keep = co_await routes::serve_logs(sock, target, req.version(), alive, pods_, o_.follow_poll);
        if (!keep) co_return;
        continue;
      }
      Reply r = req.method() != http::verb::get
                    ? Reply{405, "application/json", status_json(405, "MethodNotAllowed", "only GET is served")}
                    : routes::route_basic(pods_, target);
      http::response<http::string_body> res{static_cast<http::status>(r.code), req.version()};
      res.set(http::field::content_type, r.content_type);
      res.body() = std::move(r.body);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !req.keep_alive()) co_return;
    }
  }

  asio::any_io_executor ex_;
  NodeApiOptions o_;
  pods::PodManager& pods_;
  local::acceptor acc_;
  std::shared_ptr<bool> alive_;
};

class Handle final : public NodeApiServer {
 public:
  Handle(std::shared_ptr<Server> s, std::shared_ptr<bool> alive) : s_(std::move(s)), alive_(std::move(alive)) {}
  ~Handle() override {
    *alive_ = false;
    s_->stop();
  }
  void stop() override { s_->stop(); }

 private:
  std::shared_ptr<Server> s_;
  std::shared_ptr<bool> alive_;
};

}  // namespace

std::expected<std::unique_ptr<NodeApiServer>, std::string> start_node_api(asio::any_io_executor ex,
                                                                          NodeApiOptions o,
                                                                          pods::PodManager& pods) {
  auto s = std::make_shared<Server>(ex, std::move(o), pods);
  if (auto l = s->listen(); !l) return std::unexpected(l.error());
  auto alive = std::make_shared<bool>(true);
  s->run(alive);
  return std::make_unique<Handle>(s, alive);
}

}  // namespace podwarp::noded::nodeapi
