// Routes shared by the unix-socket API (node_api.cpp) and the HTTPS node API (node_https.cpp):
// /healthz, /pods, /metrics and /containerLogs, over any Beast-compatible stream. Internal.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "logs/cri_log.h"
#include "pods/pod_manager.h"
#include "podwarp/metrics.h"
#include "podwarp/time.h"

namespace podwarp::noded::nodeapi::routes {

namespace asio = boost::asio;
namespace http = boost::beast::http;

inline std::string status_json(int code, std::string_view reason, std::string_view message) {
  return to_json(json::object{{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()},
                              {"status", "Failure"}, {"message", message}, {"reason", reason},
                              {"code", code}});
}

struct Reply {
  int code = 200;
  std::string content_type = "application/json";
  std::string body;
};

inline Reply route_basic(pods::PodManager& pods_, const std::string& target) {
  auto path = target.substr(0, target.find('?'));
  if (path == "/healthz")
    return pods_.healthy() ? Reply{200, "text/plain; charset=utf-8", "ok"}
                           : Reply{500, "text/plain; charset=utf-8", "manifest dir unreadable"};
  if (path == "/pods") return Reply{200, "application/json", to_json(pods_.pod_list())};
  if (path == "/metrics")
    return Reply{200, "text/plain; version=0.0.4; charset=utf-8", metrics::default_registry().expose()};
  return Reply{404, "application/json", status_json(404, "NotFound", fmt::format("the server could not find the requested resource ({})", path))};
}


struct LogQuery {
  std::string ns, pod, container;
  bool follow = false, previous = false;
  logs::ReadOptions read;
};

inline bool truthy(std::string_view v) { return v == "true" || v == "1" || v.empty(); }

inline std::expected<LogQuery, std::string> parse_log_query(const std::string& target) {
  auto u = boost::urls::parse_origin_form(target);
  if (!u) return std::unexpected("malformed request target");
  LogQuery q;
  std::vector<std::string> seg;
  for (auto s : u->segments()) seg.emplace_back(s);
  if (seg.size() != 4 || seg[0] != "containerLogs")
    return std::unexpected("expected /containerLogs/<namespace>/<pod>/<container>");
  q.ns = seg[1];
  q.pod = seg[2];
  q.container = seg[3];
  for (auto p : u->params()) {
    std::string k = p.key, v = p.has_value ? std::string(p.value) : "";
    auto num = [&]() -> std::expected<std::int64_t, std::string> {
      try {
        size_t used = 0;
        auto n = std::stoll(v, &used);
        if (used != v.size()) throw std::invalid_argument(v);
        return n;
      } catch (...) {
        return std::unexpected(fmt::format("invalid {} \"{}\"", k, v));
      }
    };
    if (k == "follow") q.follow = truthy(v);
    else if (k == "previous") q.previous = truthy(v);
    else if (k == "timestamps") q.read.timestamps = truthy(v);
    else if (k == "tailLines") {
      auto n = num();
      if (!n) return std::unexpected(n.error());
      q.read.tail_lines = *n;
    } else if (k == "limitBytes") {
      auto n = num();
      if (!n) return std::unexpected(n.error());
      q.read.limit_bytes = *n;
    } else if (k == "sinceSeconds") {
      auto n = num();
      if (!n || *n < 1) return std::unexpected(fmt::format("invalid sinceSeconds \"{}\"", v));
      q.read.since = std::chrono::system_clock::now() - std::chrono::seconds(*n);
    } else if (k == "sinceTime") {
      auto t = parse_rfc3339(v);
      if (!t) return std::unexpected(t.error());
      q.read.since = *t;
    }
  }
  return q;
}

// GET /containerLogs/...: returns whether the connection may serve another request.
template <class Stream>
asio::awaitable<bool> serve_logs(Stream& sock, const std::string& target, unsigned version,
                               std::shared_ptr<bool> alive, pods::PodManager& pods_,
                               std::chrono::milliseconds follow_poll) {
  auto fail = [&](int code, std::string_view reason, std::string msg) -> asio::awaitable<bool> {
    http::response<http::string_body> res{static_cast<http::status>(code), version};
    res.set(http::field::content_type, "application/json");
    res.body() = status_json(code, reason, msg);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  };
  auto q = parse_log_query(target);
  if (!q) co_return co_await fail(400, "BadRequest", q.error());
  auto path = pods_.container_log_path(q->ns, q->pod, q->container, q->previous);
  if (!path) co_return co_await fail(404, "NotFound", path.error());
  auto text = logs::read_log_file(*path, q->read);
  if (!text && !q->follow) co_return co_await fail(404, "NotFound", text.error());
  std::string initial = text ? *text : "";
  if (!q->follow || q->previous) {
    http::response<http::string_body> res{http::status::ok, version};
    res.set(http::field::content_type, "text/plain");
    res.body() = std::move(initial);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(sock, res, asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }
  // follow: chunked, until the run ends.
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
  auto send = [&](std::string data) -> asio::awaitable<bool> {
    std::string chunk = fmt::format("{:x}\r\n{}\r\n", data.size(), data);
    if (data.empty()) chunk = "0\r\n\r\n";
    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  };
  {
    auto [ec, n] = co_await asio::async_write(sock, asio::buffer(head), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return false;
  }
  if (!initial.empty() && !co_await send(initial)) co_return false;
  logs::LogFollower follower(*path);
  follower.seek_end();
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (;;) {
    t.expires_after(follow_poll);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!*alive) co_return false;
    bool running = pods_.container_running(q->ns, q->pod, q->container);
    auto now_path = pods_.container_log_path(q->ns, q->pod, q->container, false);
    std::string out;
    for (const auto& r : follower.poll()) out += logs::render_record(r, q->read.timestamps);
    if (!out.empty() && !co_await send(std::move(out))) co_return false;
    if (out.empty() && (!running || !now_path || *now_path != *path)) break;
  }
  co_return co_await send("");
}


}  // namespace podwarp::noded::nodeapi::routes
