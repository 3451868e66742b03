// HTTP/2 for the apiserver (RFC 9113, with nghttp2 doing the framing, HPACK and flow control).
//
// kubectl and client-go offer "h2" in ALPN and then send every request and watch of a process
// over one connection. One event of a collection with many watchers on such a connection is
// then one pass of the writer: each watch stream's frame becomes a DATA frame, and all of them
// go out in a few large TLS writes, instead of one TLS record and one send per watcher.
//
// One session per connection, all on the connection's executor (nghttp2 is not thread-safe):
//  - the reader feeds received bytes to nghttp2, whose callbacks collect each request and, at
//    its END_STREAM, start a handler coroutine;
//  - a handler routes the request (ApiServer::route, the same as HTTP/1.1) and submits the
//    response; for a watch (or a relayed node body, pods/log) the feed's producer notes the
//    stream in the session's ready list (one post per burst for the whole connection, not one
//    wake-up per watcher), and the session moves the feed's frames into the stream's pending
//    data; a timer per such stream ends it at its timeout and adds bookmarks;
//  - the writer drains nghttp2 (nghttp2_session_mem_send) into one buffer and writes it; it
//    sleeps until something is submitted or resumed, and ends the session when nghttp2 wants
//    neither to read nor to write.
// A streamed body (a watch, or a relayed node body) does not go through nghttp2's data
// provider: its DATA frames are framed here, straight into the writer's buffer, when the
// frame is taken from the feed. nghttp2's provider costs a resume, a scheduler push and pop
// and a copy per frame and stream, which was most of the CPU of fanning an event out to a
// thousand watch streams. nghttp2 still sends the stream's HEADERS, its end (an empty DATA
// frame with END_STREAM, once every raw frame is out) and everything else; whole responses
// still use its provider. Flow control of the raw frames is kept here:
//  - a raw stream's send window starts as nghttp2's (the peer's initial window and updates so
//    far; nghttp2 sent nothing on it), follows SETTINGS_INITIAL_WINDOW_SIZE changes, and takes
//    the stream's WINDOW_UPDATEs, which nghttp2 does not see (it would count them on a window
//    it never spends, up to an overflow); it is given them only while its own window for the
//    stream is not positive, so that it can send the END_STREAM frame;
//  - the connection window is counted here for both kinds (conn_window_): raw frames and
//    whatever nghttp2's provider hands out (read_body) spend it; a connection WINDOW_UPDATE
//    adds to it, and reaches nghttp2 only as far as it lifts nghttp2's window up to this one,
//    so that nghttp2's never overflows, and never lets it send what the peer did not grant;
//  - a raw frame follows its stream's HEADERS (it is framed only once nghttp2 reports them
//    sent) and precedes nghttp2's END_STREAM (nghttp2 is let end the stream only when nothing
//    raw is left, and the writer puts raw frames before nghttp2's output).
// Limits: request headers 64 KiB, a request body the server's max_body_bytes (413, as
// HTTP/1.1), request bodies buffered on one connection 64 MiB (429), 1 MiB of unsent response
// data per stream before its feed is no longer taken from (the feed then closes a slow watch
// as on HTTP/1.1, and the stream is reset). No stream open for 120 s closes the connection; a
// write that does not progress for 60 s does too.
#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>

#include "apiserver/server.h"
#include "podwarp/log.h"
#include "podwarp/socket_deadline.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBufferedBodies = 64 * 1024 * 1024;
constexpr std::size_t kHighWater = 1024 * 1024;
constexpr std::size_t kWriteBatch = 256 * 1024;
// Raw DATA frames framed ahead of the writer: past this, frames wait in their stream's pending
// data (a client that stops reading then meets kHighWater there, whatever windows it granted).
constexpr std::size_t kRawBacklog = 1024 * 1024;
constexpr std::chrono::seconds kIdle{120};
constexpr std::chrono::seconds kStalledWrite{60};
constexpr std::int32_t kStreamWindow = 1 << 20;

using Frame = std::shared_ptr<const std::string>;

struct H2Stream {
  explicit H2Stream(const asio::any_io_executor& ex, std::int32_t stream_id)
      : id(stream_id), ticker(ex, std::chrono::steady_clock::time_point::max()) {}

  std::int32_t id;
  // A streamed body, framed here (see the top of this file), and its send window.
  bool raw = false;
  bool headers_sent = false;  // nghttp2 sent the response HEADERS
  bool flushing = false;      // in flush_
  bool conn_waiting = false;  // in conn_blocked_
  std::int64_t window = 0;    // raw only
  // The request.
  std::string method, path, accept, content_type, authorization;
  std::vector<std::pair<std::string, std::string>> headers;  // regular ones, for a node relay
  std::size_t header_bytes = 0;
  std::string body;
  bool refused = false;     // answered before its end (body too large)
  bool dispatched = false;  // its handler was started
  // The response body still to send: pieces of frames held by `hold`.
  std::deque<std::pair<Frame, std::string_view>> pending;
  std::size_t pending_bytes = 0;
  bool eof = false;       // nothing after `pending`
  bool deferred = false;  // the data source told nghttp2 to wait
  bool closed = false;    // nghttp2 closed the stream (ended, reset, or the session ended)
  std::shared_ptr<WatchFeed> feed;
  bool stalled = false;   // kHighWater unsent: the feed is not taken from until it drains
  bool finished = false;  // the feed's on_finish was called
  asio::steady_timer ticker;  // the feed's timeout and bookmarks
};

// Streams whose feed has something for them, noted by the producers (any thread).
struct ReadyList {
  std::mutex mu;
  std::vector<std::int32_t> ids;  // GUARDED_BY(mu)
  bool posted = false;            // GUARDED_BY(mu): a drain is on its way
};

}  // namespace

class H2Session : public std::enable_shared_from_this<H2Session> {
 public:
  H2Session(ApiServer& server, TlsStream& stream, const std::optional<UserInfo>& cert_user,
            const asio::any_io_executor& ex)
      : server_(server), stream_(stream), cert_user_(cert_user), ex_(ex),
        wake_writer_(ex, std::chrono::steady_clock::time_point::max()),
        tasks_done_(ex, std::chrono::steady_clock::time_point::max()),
        idle_(beast::get_lowest_layer(stream).socket()),
        stalled_(beast::get_lowest_layer(stream).socket()) {}

  ~H2Session() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  asio::awaitable<void> run();

 private:
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                       std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                       std::uint8_t flags, void* self);
  static int on_data_chunk(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id,
                           const std::uint8_t* data, std::size_t len, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                             void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static ssize_t read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf,
                           std::size_t length, std::uint32_t* flags, nghttp2_data_source* source,
                           void* self);

  H2Stream* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  // Wakes the writer if it waits (a fan-out kicks once per stream: only the first costs).
  void kick() {
    if (!writer_waiting_) return;
    writer_waiting_ = false;
    wake_writer_.cancel();
  }
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  void spawn(asio::awaitable<void> task);
  asio::awaitable<void> handle(std::shared_ptr<H2Stream> s);
  // Streams `feed` on `s` (whose response head was submitted).
  void serve_feed(const std::shared_ptr<H2Stream>& s, std::shared_ptr<WatchFeed> feed,
                  unsigned status, std::string_view content_type,
                  const std::vector<std::pair<std::string, std::string>>& headers);
  void drain_ready();
  void drain(H2Stream& s);  // moves the feed's frames to pending; finishes at its end
  void finish(H2Stream& s);
  asio::awaitable<void> tick(std::shared_ptr<H2Stream> s);
  // Submits the response head; a body (whole, or streamed when `streamed`) follows through
  // read_body. A whole empty body ends the stream with the headers.
  void respond(H2Stream& s, unsigned status, std::string_view content_type,
               const std::vector<std::pair<std::string, std::string>>& headers, std::string body,
               bool streamed);
  void respond_error(H2Stream& s, const ApiError& e) {
    Response r = Response::error(e);
    respond(s, r.status, r.content_type, r.headers, std::move(r.body), false);
  }
  void append(H2Stream& s, const Frame& hold, std::string_view bytes);
  void end_body(H2Stream& s);
  // Raw DATA frames (see the top of this file).
  void frame_data(std::string& out, H2Stream& s, std::string_view bytes);  // windows allow
  std::size_t raw_room(const H2Stream& s) const;  // bytes that may go now, by both windows
  // Frames s's pending data into `out` as far as the windows allow and `out` stays under
  // `limit` (else s is flushed again at the writer's next pass).
  void send_pending(H2Stream& s, std::string& out, std::size_t limit);
  void flush(H2Stream& s);  // send_pending at the writer's next pass
  void wait_for_connection_window(H2Stream& s);
  void take_raw(std::string& out);
  void ended_raw(H2Stream& s);  // nothing raw left: nghttp2 may end the stream
  // Received bytes: everything goes to nghttp2 but the WINDOW_UPDATE frames handled here.
  bool receive(const std::uint8_t* data, std::size_t n);
  bool pass(std::string_view bytes);  // to nghttp2
  bool window_update(const std::uint8_t* frame);  // a whole 13-byte frame
  void settings_received();

  ApiServer& server_;
  TlsStream& stream_;
  const std::optional<UserInfo>& cert_user_;
  asio::any_io_executor ex_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::shared_ptr<H2Stream>> streams_;
  std::size_t buffered_bodies_ = 0;
  asio::steady_timer wake_writer_;
  bool writer_waiting_ = false;  // the writer sleeps on wake_writer_
  asio::steady_timer tasks_done_;
  int tasks_ = 0;  // handler, writer and ticker coroutines still running
  std::shared_ptr<ReadyList> ready_ = std::make_shared<ReadyList>();
  std::vector<std::int32_t> ready_ids_;  // drain_ready's, swapped with ready_->ids
  std::vector<Frame> frames_;             // drain's, swapped with the feeds' queues
  // Raw DATA frames: framed when taken from a feed, written before nghttp2's next output.
  std::string raw_out_;
  std::vector<std::int32_t> flush_;        // raw streams whose pending may go out now
  std::vector<std::int32_t> conn_blocked_;  // streams waiting for the connection window
  std::int64_t conn_window_ = NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
  std::int64_t peer_initial_window_ = NGHTTP2_INITIAL_WINDOW_SIZE;
  std::size_t max_frame_ = 16384;  // the peer's SETTINGS_MAX_FRAME_SIZE (RFC 9113 default)
  // The reader's parse of the frames received (only their bounds, and WINDOW_UPDATEs).
  std::size_t preface_left_ = NGHTTP2_CLIENT_MAGIC_LEN;
  std::size_t frame_left_ = 0;               // payload bytes of the current frame still to come
  std::array<std::uint8_t, 13> head_{};      // a frame header, or a whole WINDOW_UPDATE
  std::size_t head_have_ = 0;
  bool in_header_block_ = false;  // HEADERS without END_HEADERS: only CONTINUATION may follow
  std::string to_nghttp2_;
  bool done_ = false;
  SocketDeadline<tcp::socket> idle_;     // no stream open
  SocketDeadline<tcp::socket> stalled_;  // a write in progress
};

int H2Session::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  self->streams_[frame->hd.stream_id] = std::make_shared<H2Stream>(self->ex_, frame->hd.stream_id);
  self->idle_.cancel();
  return 0;
}

int H2Session::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                         std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                         std::uint8_t, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  H2Stream* s = self->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > kMaxHeaderBytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // reset
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":method") {
    s->method = std::move(v);
  } else if (n == ":path") {
    s->path = std::move(v);
  } else if (!n.empty() && n[0] != ':') {
    if (n == "accept") s->accept = v;
    if (n == "content-type") s->content_type = v;
    if (n == "authorization") s->authorization = v;
    s->headers.emplace_back(n, std::move(v));
  }
  return 0;
}

int H2Session::on_data_chunk(nghttp2_session*, std::uint8_t, std::int32_t stream_id,
                             const std::uint8_t* data, std::size_t len, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  H2Stream* s = self->find(stream_id);
  if (s == nullptr || s->refused) return 0;
  const std::size_t limit = self->server_.opts_.max_body_bytes;
  if (s->body.size() + len > limit || self->buffered_bodies_ + len > kMaxBufferedBodies) {
    // Refuse without buffering the rest; nghttp2 resets the stream (NO_ERROR) once the
    // response is out, so the client stops sending.
    const bool mine = s->body.size() + len > limit;
    self->buffered_bodies_ -= s->body.size();
    std::string().swap(s->body);
    s->refused = true;
    if (mine) {
      Response r{413, "application/json", body_too_large(limit), {}};
      self->respond(*s, r.status, r.content_type, r.headers, std::move(r.body), false);
    } else {
      self->respond_error(*s, ApiError{429, "TooManyRequests",
                                       "too many request bodies in flight on this connection"});
    }
    return 0;
  }
  s->body.append(reinterpret_cast<const char*>(data), len);
  self->buffered_bodies_ += len;
  return 0;
}

int H2Session::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
    self->settings_received();  // (nghttp2 applied them before this call)
    return 0;
  }
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    return 0;
  }
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it == self->streams_.end() || it->second->refused) return 0;
  self->buffered_bodies_ -= it->second->body.size();
  it->second->dispatched = true;
  self->spawn(self->handle(it->second));
  return 0;
}

int H2Session::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t,
                               void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  H2Stream& s = *it->second;
  s.closed = true;
  if (!s.dispatched && !s.refused) self->buffered_bodies_ -= s.body.size();
  self->finish(s);
  self->streams_.erase(it);
  if (self->streams_.empty()) self->idle_.expires_after(kIdle);
  return 0;
}

int H2Session::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Stream* s = self->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  s->headers_sent = true;
  if (s->raw && !s->pending.empty()) self->flush(*s);  // (not framed inside nghttp2's call)
  return 0;
}

ssize_t H2Session::read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                             std::uint32_t* flags, nghttp2_data_source* source, void* self_ptr) {
  auto* self = static_cast<H2Session*>(self_ptr);
  auto* s = static_cast<H2Stream*>(source->ptr);
  if (s->raw) {  // its DATA frames are framed here; nghttp2 only ends the stream
    if (s->pending.empty() && s->eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (self->conn_window_ <= 0 && !s->pending.empty()) {  // raw frames spent it
    s->deferred = true;
    self->wait_for_connection_window(*s);
    return NGHTTP2_ERR_DEFERRED;
  }
  length = std::min(length, static_cast<std::size_t>(std::max<std::int64_t>(self->conn_window_, 0)));
  std::size_t n = 0;
  while (n < length && !s->pending.empty()) {
    auto& [hold, bytes] = s->pending.front();
    const std::size_t k = std::min(bytes.size(), length - n);
    std::memcpy(buf + n, bytes.data(), k);
    bytes.remove_prefix(k);
    n += k;
    s->pending_bytes -= k;
    if (bytes.empty()) s->pending.pop_front();
  }
  self->conn_window_ -= static_cast<std::int64_t>(n);
  if (s->pending.empty()) {
    if (s->eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

void H2Session::respond(H2Stream& s, unsigned status, std::string_view content_type,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        std::string body, bool streamed) {
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back(":status", std::to_string(status));
  if (!content_type.empty()) fields.emplace_back("content-type", content_type);
  fields.emplace_back("cache-control", "no-cache, private");
  for (const auto& [k, v] : headers) {
    std::string name = k;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto same = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.first == name; });
    if (same != fields.end() && (name == "cache-control" || name == "content-type")) {
      same->second = v;  // the handler's value replaces the default
      continue;
    }
    fields.emplace_back(std::move(name), v);
  }
  if (!streamed) fields.emplace_back("content-length", std::to_string(body.size()));
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (auto& [k, v] : fields) {
    nva.push_back({reinterpret_cast<std::uint8_t*>(k.data()), reinterpret_cast<std::uint8_t*>(v.data()),
                   k.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = read_body;
  const bool has_body = streamed || !body.empty();
  if (!body.empty()) {
    auto hold = std::make_shared<const std::string>(std::move(body));
    s.pending.emplace_back(hold, *hold);
    s.pending_bytes += hold->size();
  }
  s.eof = !streamed;
  if (streamed) {  // framed here; its window so far is nghttp2's (which sent nothing on it;
    s.raw = true;  // below zero after a lowered SETTINGS_INITIAL_WINDOW_SIZE)
    if (nghttp2_session_find_stream(session_, s.id) != nullptr) {
      s.window = nghttp2_session_get_stream_remote_window_size(session_, s.id);
    }
  }
  // nghttp2 copies the header fields; the provider's source (the stream) outlives its use:
  // streams_ holds it until nghttp2 closes the stream.
  int rv = nghttp2_submit_response(session_, s.id, nva.data(), nva.size(),
                                   has_body ? &provider : nullptr);
  if (rv != 0) log::debug("http2: response on stream {}: {}", s.id, nghttp2_strerror(rv));
  kick();
}

void H2Session::append(H2Stream& s, const Frame& hold, std::string_view bytes) {
  if (s.closed || bytes.empty()) return;
  // The common case of a watch: nothing waits before this frame and the windows allow it.
  if (s.headers_sent && s.pending.empty() && bytes.size() <= raw_room(s) &&
      bytes.size() <= max_frame_ && raw_out_.size() < kRawBacklog) {
    frame_data(raw_out_, s, bytes);
    kick();
    return;
  }
  s.pending.emplace_back(hold, bytes);
  s.pending_bytes += bytes.size();
  if (s.headers_sent) send_pending(s, raw_out_, kRawBacklog);
}

void H2Session::end_body(H2Stream& s) {
  if (s.closed) return;
  s.eof = true;
  if (s.pending.empty()) ended_raw(s);
}

std::size_t H2Session::raw_room(const H2Stream& s) const {
  return static_cast<std::size_t>(std::max<std::int64_t>(std::min(s.window, conn_window_), 0));
}

void H2Session::frame_data(std::string& out, H2Stream& s, std::string_view bytes) {
  const auto len = static_cast<std::uint32_t>(bytes.size());
  const auto id = static_cast<std::uint32_t>(s.id);
  const std::array<char, 9> head{
      static_cast<char>(len >> 16), static_cast<char>(len >> 8), static_cast<char>(len),
      static_cast<char>(NGHTTP2_DATA), 0,
      static_cast<char>(id >> 24), static_cast<char>(id >> 16), static_cast<char>(id >> 8),
      static_cast<char>(id)};
  out.append(head.data(), head.size());
  out.append(bytes);
  s.window -= len;
  conn_window_ -= len;
}

void H2Session::send_pending(H2Stream& s, std::string& out, std::size_t limit) {
  if (s.closed || !s.headers_sent) return;
  while (!s.pending.empty()) {
    if (out.size() >= limit) {
      flush(s);
      break;
    }
    const std::size_t room = raw_room(s);
    if (room == 0) {
      if (conn_window_ <= 0) wait_for_connection_window(s);
      break;  // (else its stream WINDOW_UPDATE flushes it)
    }
    auto& [hold, bytes] = s.pending.front();
    const std::size_t k = std::min({bytes.size(), room, max_frame_});
    frame_data(out, s, bytes.substr(0, k));
    bytes.remove_prefix(k);
    s.pending_bytes -= k;
    if (bytes.empty()) s.pending.pop_front();
  }
  kick();
  if (s.stalled && s.pending_bytes < kHighWater / 2) {
    s.stalled = false;  // take from the feed again
    asio::post(ex_, [weak = weak_from_this(), id = s.id] {
      auto session = weak.lock();
      if (!session) return;
      if (H2Stream* st = session->find(id)) session->drain(*st);
    });
  }
  if (s.pending.empty() && s.eof) ended_raw(s);
}

void H2Session::flush(H2Stream& s) {
  if (!s.flushing) {
    s.flushing = true;
    flush_.push_back(s.id);
  }
  kick();
}

void H2Session::wait_for_connection_window(H2Stream& s) {
  if (s.conn_waiting) return;
  s.conn_waiting = true;
  conn_blocked_.push_back(s.id);
}

void H2Session::take_raw(std::string& out) {
  if (out.empty()) {
    out.swap(raw_out_);  // (both keep their capacity, turn about)
  } else {
    out.append(raw_out_);
  }
  raw_out_.clear();
  if (flush_.empty()) return;
  std::vector<std::int32_t> ids;
  ids.swap(flush_);
  for (std::int32_t id : ids) {
    H2Stream* s = find(id);
    if (s == nullptr) continue;
    s->flushing = false;
    send_pending(*s, out, kWriteBatch);  // (past it, s is flushed again)
  }
}

void H2Session::ended_raw(H2Stream& s) {
  if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
  }
  kick();
}

bool H2Session::pass(std::string_view bytes) {
  if (bytes.empty()) return true;
  const ssize_t rv = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) {
    log::debug("http2: {}", nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  return true;
}

bool H2Session::receive(const std::uint8_t* data, std::size_t n) {
  to_nghttp2_.clear();
  const char* bytes = reinterpret_cast<const char*>(data);
  std::size_t i = 0;
  while (i < n) {
    if (preface_left_ > 0 || frame_left_ > 0) {  // to nghttp2 as it comes
      std::size_t& left = preface_left_ > 0 ? preface_left_ : frame_left_;
      const std::size_t k = std::min(left, n - i);
      to_nghttp2_.append(bytes + i, k);
      i += k;
      left -= k;
      continue;
    }
    const std::size_t want = head_have_ < 9 ? 9 : head_.size();  // a header; a WINDOW_UPDATE
    const std::size_t k = std::min(want - head_have_, n - i);
    std::memcpy(head_.data() + head_have_, bytes + i, k);
    head_have_ += k;
    i += k;
    if (head_have_ < want) break;  // the rest comes in a later read
    const std::size_t len = (std::size_t{head_[0]} << 16) | (std::size_t{head_[1]} << 8) | head_[2];
    const std::uint8_t type = head_[3], flags = head_[4];
    if (want == 9 && type == NGHTTP2_WINDOW_UPDATE && len == 4 && !in_header_block_) continue;
    head_have_ = 0;
    if (want == head_.size()) {  // a whole WINDOW_UPDATE: what came before it goes first
      if (!pass(to_nghttp2_)) return false;
      to_nghttp2_.clear();
      if (!window_update(head_.data())) return false;
      continue;
    }
    to_nghttp2_.append(reinterpret_cast<const char*>(head_.data()), 9);
    frame_left_ = len;
    if (type == NGHTTP2_HEADERS || type == NGHTTP2_PUSH_PROMISE || type == NGHTTP2_CONTINUATION) {
      in_header_block_ = (flags & NGHTTP2_FLAG_END_HEADERS) == 0;
    }
  }
  return pass(to_nghttp2_);
}

bool H2Session::window_update(const std::uint8_t* frame) {
  constexpr std::int64_t kMaxWindow = NGHTTP2_MAX_WINDOW_SIZE;
  auto u31 = [](const std::uint8_t* p) {
    return ((std::uint32_t{p[0]} & 0x7f) << 24) | (std::uint32_t{p[1]} << 16) |
           (std::uint32_t{p[2]} << 8) | p[3];
  };
  const std::int32_t id = static_cast<std::int32_t>(u31(frame + 5));
  const std::uint32_t increment = u31(frame + 9);
  const std::string_view whole(reinterpret_cast<const char*>(frame), 13);
  if (increment == 0) return pass(whole);  // a protocol error: nghttp2 answers it
  if (id == 0) {
    conn_window_ += increment;
    if (conn_window_ > kMaxWindow) {
      nghttp2_session_terminate_session(session_, NGHTTP2_FLOW_CONTROL_ERROR);
      kick();
      return true;
    }
    // Lift nghttp2's window as far as this one, never past it.
    const std::int64_t lift = std::min<std::int64_t>(
        increment, conn_window_ - nghttp2_session_get_remote_window_size(session_));
    if (lift > 0) {
      std::array<std::uint8_t, 13> copy;
      std::memcpy(copy.data(), frame, copy.size());
      copy[9] = static_cast<std::uint8_t>(lift >> 24);
      copy[10] = static_cast<std::uint8_t>(lift >> 16);
      copy[11] = static_cast<std::uint8_t>(lift >> 8);
      copy[12] = static_cast<std::uint8_t>(lift);
      if (!pass(std::string_view(reinterpret_cast<const char*>(copy.data()), copy.size()))) {
        return false;
      }
    }
    if (conn_window_ > 0 && !conn_blocked_.empty()) {
      std::vector<std::int32_t> ids;
      ids.swap(conn_blocked_);
      for (std::int32_t blocked : ids) {
        H2Stream* s = find(blocked);
        if (s == nullptr || s->closed) continue;
        s->conn_waiting = false;
        if (s->raw) {
          flush(*s);
        } else if (s->deferred) {
          s->deferred = false;
          nghttp2_session_resume_data(session_, s->id);
        }
      }
      kick();
    }
    return true;
  }
  H2Stream* s = find(id);
  if (s == nullptr || !s->raw || s->closed) return pass(whole);  // nghttp2's to count
  s->window += increment;
  if (s->window > kMaxWindow) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
    kick();
    return true;
  }
  // nghttp2 sends this stream only its END_STREAM frame, for which its window must be open.
  if (nghttp2_session_get_stream_remote_window_size(session_, id) <= 0 && !pass(whole)) {
    return false;
  }
  if (!s->pending.empty()) flush(*s);
  return true;
}

void H2Session::settings_received() {
  max_frame_ = nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_FRAME_SIZE);
  const std::int64_t initial =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
  const std::int64_t delta = initial - peer_initial_window_;
  peer_initial_window_ = initial;
  if (delta == 0) return;
  for (auto& [id, s] : streams_) {
    if (!s->raw || s->closed) continue;
    s->window += delta;
    if (s->window > NGHTTP2_MAX_WINDOW_SIZE) {
      nghttp2_session_terminate_session(session_, NGHTTP2_FLOW_CONTROL_ERROR);
      kick();
      return;
    }
    if (delta > 0 && !s->pending.empty()) flush(*s);
  }
}

void H2Session::spawn(asio::awaitable<void> task) {
  ++tasks_;
  asio::co_spawn(ex_, std::move(task), [self = shared_from_this()](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("http2: {}", ex.what());
      }
    }
    if (--self->tasks_ == 0) self->tasks_done_.cancel();
  });
}

void H2Session::serve_feed(const std::shared_ptr<H2Stream>& s, std::shared_ptr<WatchFeed> feed,
                           unsigned status, std::string_view content_type,
                           const std::vector<std::pair<std::string, std::string>>& headers) {
  s->feed = std::move(feed);
  respond(*s, status, content_type, headers, {}, true);
  if (s->closed || done_) {  // the client went away while the request was routed
    s->feed->close();
    finish(*s);
    return;
  }
  s->feed->set_notify([ready = ready_, weak = weak_from_this(), ex = ex_, id = s->id] {
    std::lock_guard lock(ready->mu);
    ready->ids.push_back(id);
    if (ready->posted) return;
    ready->posted = true;
    NotifyBatch::run([ex, weak] {
      asio::post(ex, [weak] {
        if (auto session = weak.lock()) session->drain_ready();
      });
    });
  });
  // A frame the watch cache pushes on this thread (--worker-threads 0) skips the queue, the
  // ready list and drain: framed at once. Not past kHighWater: the feed queues it, and drain
  // notices the stall.
  s->feed->set_sink([this, st = s.get()](const Frame& f) {
    if (st->closed || st->pending_bytes >= kHighWater) return false;
    append(*st, f, chunk_payload(*f));
    return true;
  });
  spawn(tick(s));
  drain(*s);
}

void H2Session::drain_ready() {
  {
    std::lock_guard lock(ready_->mu);
    ready_ids_.swap(ready_->ids);  // both keep their capacity: no allocation per burst
    ready_->posted = false;
  }
  for (std::int32_t id : ready_ids_) {
    if (H2Stream* s = find(id)) drain(*s);
  }
  ready_ids_.clear();
}

void H2Session::drain(H2Stream& s) {
  if (s.finished || !s.feed) return;
  if (s.pending_bytes >= kHighWater) {  // the client is not reading this stream
    s.stalled = true;
    if (s.feed->closed() && !s.closed) {
      // Closed for falling behind (or at its timeout) while the client still does not read:
      // what is queued would never drain, so reset the stream; closing it finishes the feed.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
      kick();
    }
    return;
  }
  // take() arms the feed's notify for the next frame.
  const bool ended = s.feed->take(frames_);
  for (Frame& f : frames_) {
    std::string_view payload = chunk_payload(*f);
    append(s, f, payload);
  }
  frames_.clear();
  if (ended) finish(s);  // after these frames, which go out before the end of the stream
}

void H2Session::finish(H2Stream& s) {
  if (s.finished || !s.feed) return;
  s.finished = true;
  s.feed->close();
  s.ticker.cancel();
  end_body(s);
  if (s.feed->on_finish) s.feed->on_finish();
}

asio::awaitable<void> H2Session::tick(std::shared_ptr<H2Stream> s) {
  WatchFeed& feed = *s->feed;
  boost::system::error_code ec;
  while (!s->finished) {
    s->ticker.expires_at(feed.due());
    co_await s->ticker.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (s->finished) break;
    if (feed.timed_out()) {  // (a BOOKMARK that is due was pushed: its notify takes it)
      feed.close();  // what is queued still goes out, then the stream ends
      drain(*s);     // (or, when the client does not read, it is reset)
      break;
    }
  }
}

asio::awaitable<void> H2Session::handle(std::shared_ptr<H2Stream> s) {
  const auto started = std::chrono::steady_clock::now();
  Request req;
  req.method = s->method;
  set_target(req, s->path);
  req.accept = s->accept;
  req.content_type = s->content_type;
  req.body = std::move(s->body);
  const std::string_view authorization = s->authorization;
  auto routing = server_.route(req, cert_user_, authorization);  // (g++ 12: no temporaries
  Routed routed = co_await std::move(routing);                    //  in a co_await)
  if (routed.feed) {
    ApiServer::count(routed, 200);
    serve_feed(s, std::move(routed.feed), 200, "application/json", {});
    co_return;
  }
  if (routed.node) {
    const std::string_view sub = std::string_view(routed.resource).substr(5);  // "pods/<sub>"
    if (sub != "log") {
      // exec, attach and portforward need an upgrade, which HTTP/2 does not have here; clients
      // make those requests over HTTP/1.1 (client-go's SPDY and WebSocket dialers do).
      respond_error(*s, bad_request("Upgrade request required"));
      ApiServer::count(routed, 400);
      co_return;
    }
    NodeRequest node = *routed.node;
    if (auto q = s->path.find('?'); q != std::string::npos) node.target += s->path.substr(q);
    http::request<http::string_body> hreq;
    hreq.method_string(s->method);
    hreq.target(node.target);
    for (const auto& [k, v] : s->headers) hreq.insert(k, v);
    hreq.body() = std::move(req.body);  // route() leaves a node request's body in place
    auto opened = co_await open_node_stream(hreq, node, server_.node_tls_);
    if (!opened) {
      respond_error(*s, opened.error());
      ApiServer::count(routed, static_cast<unsigned>(opened.error().code));
      co_return;
    }
    ApiServer::count(routed, opened->status);
    serve_feed(s, std::move(opened->body), opened->status, "", opened->headers);
    co_return;
  }
  if (s->closed || done_) co_return;
  Response& response = *routed.response;
  const unsigned status = response.status;
  respond(*s, status, response.content_type, response.headers, std::move(response.body), false);
  ApiServer::count(routed, status, started);
}

asio::awaitable<void> H2Session::reader() {
  std::array<std::uint8_t, 16 * 1024> buf;
  boost::system::error_code ec;
  idle_.expires_after(kIdle);
  while (!done_) {
    const std::size_t n = co_await stream_.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (n > 0) {
      if (!receive(buf.data(), n)) break;
      kick();
    }
    if (ec) break;
  }
  done_ = true;
  kick();
}

asio::awaitable<void> H2Session::writer() {
  std::string out;
  boost::system::error_code ec;
  while (true) {
    out.clear();
    bool failed = false;
    while (out.size() < kWriteBatch && !failed) {
      // Raw DATA frames first: an END_STREAM that nghttp2 has to send comes after them.
      const std::size_t before = out.size();
      take_raw(out);
      while (out.size() < kWriteBatch) {
        const std::uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          log::debug("http2: {}", nghttp2_strerror(static_cast<int>(n)));
          done_ = failed = true;
          break;
        }
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
      }
      if (out.size() == before) break;  // (HEADERS just sent may have raw frames to follow)
    }
    if (!out.empty()) {
      stalled_.expires_after(kStalledWrite);
      co_await asio::async_write(stream_, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      stalled_.cancel();
      if (ec) break;
      continue;
    }
    if (done_ || (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))) {
      break;
    }
    writer_waiting_ = true;
    co_await wake_writer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    writer_waiting_ = false;
  }
  done_ = true;
  shut_down(beast::get_lowest_layer(stream_).socket());  // ends the reader
}

asio::awaitable<void> H2Session::run() {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
  const int rv = nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) co_return;
  // No RFC 7540 priority tree (deprecated by RFC 9113): streams are served round-robin.
  const std::array<nghttp2_settings_entry, 3> settings{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, server_.opts_.http2_max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  // The connection's receive window: room for several streams' bodies at once.
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 * kStreamWindow);

  spawn(writer());
  co_await reader();
  // The connection is over: finish every stream's feed, then wait for the coroutines (an Api
  // call in flight finishes on the Api's thread first; its handler then finishes its feed).
  done_ = true;
  for (auto& [id, s] : streams_) {
    s->closed = true;
    finish(*s);
  }
  kick();
  boost::system::error_code ec;
  while (tasks_ > 0) {
    tasks_done_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await tasks_done_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  idle_.cancel();
  stalled_.cancel();
}

asio::awaitable<void> ApiServer::serve_h2(TlsStream& stream,
                                          const std::optional<UserInfo>& cert_user) {
  auto session = std::make_shared<H2Session>(*this, stream, cert_user,
                                             co_await asio::this_coro::executor);
  co_await session->run();
}

}  // namespace podwarp::apiserver
