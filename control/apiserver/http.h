// The apiserver's view of one HTTP exchange, independent of the transport: the request as
// parsed (path split into RequestInfo, query, headers, body, authenticated user) and either
// a whole response or a watch feed that the connection streams out.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "apiserver/status.h"
#include "podwarp/api/resources.h"

namespace podwarp::apiserver {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
  std::string uid;
  std::vector<std::pair<std::string, std::string>> extra;  // e.g. authentication.kubernetes.io/pod-name
};

// What a request path means, as upstream's RequestInfo.
struct RequestInfo {
  bool is_resource_request = false;
  std::string api_prefix;  // "api" or "apis"
  std::string group;
  std::string version;
  std::string namespace_;
  std::string resource;
  std::string name;
  std::string subresource;
  std::string verb;  // get list watch create update patch delete deletecollection
  const api::Resource* resource_info = nullptr;
};

struct Request {
  std::string method;  // GET POST PUT PATCH DELETE
  std::string path;    // decoded path
  std::multimap<std::string, std::string> query;
  std::string accept;
  std::string content_type;
  std::string body;
  UserInfo user;
  RequestInfo info;

  // The first value of a query parameter, or nullopt.
  std::optional<std::string_view> param(std::string_view key) const;
  std::string_view param_or(std::string_view key, std::string_view fallback) const;
  // A boolean parameter as Go's strconv.ParseBool reads it (1, t, T, TRUE, true, True).
  bool flag(std::string_view key) const;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(unsigned status, std::string body);
  static Response error(const ApiError& e);
};

// The frames of one watch (each already an HTTP chunk, see http_chunk), handed from the Api's thread (producer: the cache delivers
// events) to the connection's thread (consumer: writes them to the socket). push() and
// close() may be called from any thread; the consumer side only from the connection's
// executor.
class WatchFeed : public std::enable_shared_from_this<WatchFeed> {
 public:
  static constexpr std::size_t kMaxQueued = 20000;

  explicit WatchFeed(boost::asio::any_io_executor consumer);

  // Producer side.
  void push(std::shared_ptr<const std::string> frame);
  // A consumer that gathers wake-ups itself (HTTP/2: one post per connection and burst, not
  // one per watcher) sets this once, before its first take(): it is then called, on the
  // producer's thread with the feed's lock held, instead of waking next(), for the first
  // frame (or the close) after each take(); the consumer takes again only when notified. It
  // must not call back into the feed.
  void set_notify(std::function<void()> notify);
  // Such a consumer may also take frames as they are pushed: set on the consumer's thread
  // (whose executor one thread runs), `sink` is called, with the lock held, for a frame pushed
  // on that same thread while nothing is queued and the consumer took everything before:
  // instead of queueing the frame and notifying. It returns false when it cannot take the
  // frame now (it is then queued as usual). Dropped at close().
  void set_sink(std::function<bool(const std::shared_ptr<const std::string>&)> sink);
  void close();  // no more frames; the consumer ends the stream after what is queued

  // Consumer side. take() returns what is queued; when empty (or always, with a notify) it
  // arms the wake-up, so the caller must wait for it (next() does) before calling take()
  // again. `ended`: the feed is closed, so nothing comes after these frames.
  std::vector<std::shared_ptr<const std::string>> take(bool* ended = nullptr);
  // The same into `out` (cleared first), whose buffer the feed keeps for the next frames;
  // returns `ended`.
  bool take(std::vector<std::shared_ptr<const std::string>>& out);
  bool closed() const;
  std::size_t queued() const;
  // Waits for the next frames to write, adding a BOOKMARK frame when one is due (every 60 s
  // with bookmarks on). Empty when the stream should end: the feed is closed and drained, or
  // its timeout (counted from the first call) has passed.
  boost::asio::awaitable<std::vector<std::shared_ptr<const std::string>>> next();
  // The timing under next(), for a consumer with its own timer: when the feed next needs
  // attention (its timeout, or the next bookmark; both counted from the first call), and,
  // once that time passed, whether the timeout did (the stream ends). A BOOKMARK that is due
  // is pushed like any frame, behind the events queued before it.
  std::chrono::steady_clock::time_point due();
  bool timed_out();

  // Producer side: every event up to revision is in the queue (see
  // CacheWatcher::progress); BOOKMARKs name the latest such revision.
  void set_progress(std::int64_t revision);

  // Set by the Api when it creates the feed.
  std::chrono::seconds timeout{1800};
  bool bookmarks = false;
  std::chrono::milliseconds bookmark_interval = std::chrono::seconds(60);
  std::function<std::string(std::int64_t)> make_bookmark;  // a BOOKMARK frame at a revision
  std::function<void()> on_finish;  // the consumer calls it once when done

 private:
  void wake();  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  std::atomic<std::int64_t> progress_{0};
  std::vector<std::shared_ptr<const std::string>> queue_;  // GUARDED_BY(mu_)
  bool closed_ = false;                                    // GUARDED_BY(mu_)
  bool sleeping_ = false;                                  // GUARDED_BY(mu_)
  std::function<void()> notify_;                           // GUARDED_BY(mu_)
  std::function<bool(const std::shared_ptr<const std::string>&)> sink_;  // GUARDED_BY(mu_)
  std::thread::id sink_thread_;                                           // GUARDED_BY(mu_)
  boost::asio::any_io_executor consumer_;
  boost::asio::steady_timer signal_;
  // Consumer side: when the stream ends, the next bookmark, and when signal_ is set to expire.
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::chrono::steady_clock::time_point next_bookmark_;
  std::chrono::steady_clock::time_point armed_ = std::chrono::steady_clock::time_point::min();
};

// Holds back the wake-ups that consumers ask for on this thread (NotifyBatch::run) while it
// lives, and makes them when the outermost one ends. The watch cache holds one across the
// delivery of a batch of etcd events: an HTTP/2 connection with many watchers is then woken
// once, with all their frames queued, and writes them in one pass, instead of being woken by
// the first frame and again for the rest.
class NotifyBatch {
 public:
  NotifyBatch();
  ~NotifyBatch();
  NotifyBatch(const NotifyBatch&) = delete;
  NotifyBatch& operator=(const NotifyBatch&) = delete;
  // Runs fn now, or when this thread's outermost NotifyBatch ends.
  static void run(std::function<void()> fn);

 private:
  std::vector<std::function<void()>> pending_;
  bool outermost_;
};

// The body of a frame made by http_chunk (what a transport that frames bodies itself sends).
std::string_view chunk_payload(std::string_view chunk);

// One HTTP/1.1 chunk holding body ("<hex size>\r\n<body>\r\n"). Watch frames are framed
// once when made, so every watcher writes the same bytes without re-framing or copying.
std::string http_chunk(std::string_view body);

// What the Api answers: a whole response, or a watch feed to stream.
struct Reply {
  std::optional<Response> response;
  std::shared_ptr<WatchFeed> feed;
  unsigned feed_status = 200;
};

// Sets path and query from a request target ("/api/v1/pods?watch=true"; an unparsable one
// becomes "/").
void set_target(Request& req, std::string_view target);

// The metav1.Status body of 413 RequestEntityTooLarge for a body over `limit` bytes.
std::string body_too_large(std::size_t limit);

// Splits a path into RequestInfo (verb from method + whether a name is given + watch=true).
// Returns false when the path is not an API resource path.
bool parse_request_info(Request& req);

}  // namespace podwarp::apiserver
