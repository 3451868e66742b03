#include "apiserver/http.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <cstdio>
#include <ranges>

namespace podwarp::apiserver {

std::optional<std::string_view> Request::param(std::string_view key) const {
  auto it = query.find(std::string(key));
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::string_view Request::param_or(std::string_view key, std::string_view fallback) const {
  auto v = param(key);
  return v ? *v : fallback;
}

bool Request::flag(std::string_view key) const {
  std::string_view v = param_or(key, "");
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

Response Response::json(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::error(const ApiError& e) {
  return json(static_cast<unsigned>(e.code), podwarp::to_json(e.to_json()));
}

WatchFeed::WatchFeed(boost::asio::any_io_executor consumer)
    : consumer_(consumer), signal_(consumer, std::chrono::steady_clock::time_point::max()) {}

void WatchFeed::wake() {
  if (!sleeping_) return;
  sleeping_ = false;
  if (notify_) {
    notify_();
    return;
  }
  boost::asio::post(consumer_, [self = shared_from_this()] { self->signal_.cancel(); });
}

void WatchFeed::push(std::shared_ptr<const std::string> frame) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  if (sink_ && sleeping_ && queue_.empty() && std::this_thread::get_id() == sink_thread_ &&
      sink_(frame)) {
    return;  // taken at once, on the consumer's own thread
  }
  if (queue_.size() >= kMaxQueued) {
    closed_ = true;  // the client does not keep up: end the stream, it will re-watch
    wake();
    return;
  }
  queue_.push_back(std::move(frame));
  wake();
}

void WatchFeed::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

void WatchFeed::set_sink(std::function<bool(const std::shared_ptr<const std::string>&)> sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
  sink_thread_ = std::this_thread::get_id();
}

void WatchFeed::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  sink_ = nullptr;
  wake();
}

std::vector<std::shared_ptr<const std::string>> WatchFeed::take(bool* ended) {
  std::vector<std::shared_ptr<const std::string>> out;
  const bool end = take(out);
  if (ended != nullptr) *ended = end;
  return out;
}

bool WatchFeed::take(std::vector<std::shared_ptr<const std::string>>& out) {
  out.clear();
  std::lock_guard lock(mu_);
  out.swap(queue_);  // queue_ keeps out's buffer: pushes allocate nothing in steady state
  // A notified consumer takes again only when notified: arm it now. A waiting one arms its
  // wake-up when it finds nothing.
  if ((out.empty() || notify_) && !closed_) sleeping_ = true;
  return closed_;
}

bool WatchFeed::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::size_t WatchFeed::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::chrono::steady_clock::time_point WatchFeed::due() {
  if (!deadline_) {
    const auto now = std::chrono::steady_clock::now();
    deadline_ = now + timeout;
    next_bookmark_ = now + bookmark_interval;
  }
  return bookmarks ? std::min(*deadline_, next_bookmark_) : *deadline_;
}

void WatchFeed::set_progress(std::int64_t revision) {
  // Stored after the events it covers were pushed; read (acquire) before the bookmark is
  // pushed behind them.
  if (revision > progress_.load(std::memory_order_relaxed)) {
    progress_.store(revision, std::memory_order_release);
  }
}

bool WatchFeed::timed_out() {
  const auto now = std::chrono::steady_clock::now();
  if (now >= due()) {
    if (now >= *deadline_) return true;
    if (bookmarks && now >= next_bookmark_) {
      next_bookmark_ = now + bookmark_interval;
      const std::int64_t rev = progress_.load(std::memory_order_acquire);
      if (rev > 0 && make_bookmark) push(std::make_shared<const std::string>(make_bookmark(rev)));
    }
  }
  return false;
}

boost::asio::awaitable<std::vector<std::shared_ptr<const std::string>>> WatchFeed::next() {
  while (true) {
    bool ended = false;
    std::vector<std::shared_ptr<const std::string>> frames = take(&ended);
    if (!frames.empty() || ended) co_return frames;
    const auto wake = due();
    if (wake != armed_) {
      signal_.expires_at(wake);
      armed_ = wake;
    }
    boost::system::error_code ec;
    co_await signal_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    if (timed_out()) co_return frames;  // empty: the stream ends
  }
}

namespace {
thread_local NotifyBatch* t_batch = nullptr;  // this thread's outermost NotifyBatch
}  // namespace

NotifyBatch::NotifyBatch() : outermost_(t_batch == nullptr) {
  if (outermost_) t_batch = this;
}

NotifyBatch::~NotifyBatch() {
  if (!outermost_) return;
  t_batch = nullptr;
  for (auto& fn : pending_) fn();
}

void NotifyBatch::run(std::function<void()> fn) {
  if (t_batch != nullptr) {
    t_batch->pending_.push_back(std::move(fn));
  } else {
    fn();
  }
}

std::string_view chunk_payload(std::string_view chunk) {
  const auto head = chunk.find("\r\n");
  if (head == std::string_view::npos || chunk.size() < head + 4) return {};
  return chunk.substr(head + 2, chunk.size() - head - 4);
}

std::string http_chunk(std::string_view body) {
  char head[24];
  int n = std::snprintf(head, sizeof head, "%zx\r\n", body.size());
  std::string out;
  out.reserve(static_cast<std::size_t>(n) + body.size() + 2);
  out.append(head, static_cast<std::size_t>(n));
  out.append(body);
  out.append("\r\n");
  return out;
}

void set_target(Request& req, std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) {
    req.path = "/";
    return;
  }
  req.path = url->path();
  for (auto p : url->params()) req.query.emplace(p.key, p.value);
}

std::string body_too_large(std::size_t limit) {
  return podwarp::to_json(request_entity_too_large(
                     fmt::format("the request body is larger than the limit of {} bytes", limit))
                     .to_json());
}

bool parse_request_info(Request& req) {
  std::vector<std::string> parts;
  for (auto part : std::views::split(std::string_view(req.path), '/')) {
    std::string_view s(part.begin(), part.end());
    if (!s.empty()) parts.emplace_back(s);
  }
  RequestInfo& info = req.info;
  std::size_t i = 0;
  if (parts.empty()) return false;
  if (parts[0] == "api") {
    if (parts.size() < 2) return false;
    info.api_prefix = "api";
    info.version = parts[1];
    i = 2;
  } else if (parts[0] == "apis") {
    if (parts.size() < 3) return false;
    info.api_prefix = "apis";
    info.group = parts[1];
    info.version = parts[2];
    i = 3;
  } else {
    return false;
  }
  if (i >= parts.size()) return false;  // a discovery path
  bool watch_path = false;
  if (parts[i] == "watch") {  // deprecated /watch/ prefix
    watch_path = true;
    ++i;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<std::ptrdiff_t>(i), parts.end());
  // namespaces/{ns}/{resource}/... unless it is the namespace object itself
  const bool namespace_subresource =
      rest.size() >= 3 && (rest[2] == "status" || rest[2] == "finalize");
  if (rest.size() >= 3 && rest[0] == "namespaces" && !namespace_subresource) {
    info.namespace_ = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  } else if (rest.size() >= 1 && rest[0] == "namespaces") {
    // /api/v1/namespaces, /api/v1/namespaces/{name}[/status|/finalize]
    if (rest.size() >= 2) info.namespace_ = rest[1];
  }
  if (rest.empty()) return false;
  info.resource = rest[0];
  if (rest.size() >= 2) info.name = rest[1];
  if (rest.size() >= 3) info.subresource = rest[2];
  if (rest.size() > 3) {
    // Only proxy-style subresources take a path; none are served.
    return false;
  }
  info.is_resource_request = true;
  info.resource_info = api::find_resource(info.group, info.version, info.resource);

  const bool watch = watch_path || req.flag("watch");
  if (req.method == "GET" || req.method == "HEAD") {
    if (watch) {
      info.verb = "watch";
    } else {
      info.verb = info.name.empty() ? "list" : "get";
    }
  } else if (req.method == "POST") {
    info.verb = "create";
  } else if (req.method == "PUT") {
    info.verb = "update";
  } else if (req.method == "PATCH") {
    info.verb = "patch";
  } else if (req.method == "DELETE") {
    info.verb = info.name.empty() ? "deletecollection" : "delete";
  }
  return true;
}

}  // namespace podwarp::apiserver
