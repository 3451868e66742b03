// EtcdClient: gRPC over HTTP/2 (nghttp2) on the caller's own executor.
//
// Why not gRPC++'s client: its completions come from gRPC's own polling threads, so every
// create crossed threads four times (the request to the poller, the reply back, the watch
// event back, and the poller's own epoll wake-ups). Under apiserver_bench's creates those
// threads took ~26% of podwarp-control's CPU, most of it in context switches. Here the
// etcd socket is one more socket of the executor's io_uring loop: a reply is parsed where
// it is read and the awaiting coroutine resumes on the same thread. The wire is unchanged:
// etcd's protos (proto/etcd/), gRPC's length-prefixed messages, HTTP/2 with its trailers.
//
// Threads: everything (the connection, its streams, watch callbacks) lives on the client's
// executor, which must be single-threaded (an io_context run by one thread); calls are made
// from coroutines on that executor. Completions are posted, never run inside nghttp2's
// callbacks, so a resumed caller may submit or destroy anything.
//
// Connections: one at a time to the current endpoint, opened by the first call that needs
// it (calls submitted while it connects are sent once it is up). A connection that fails
// fails its streams with UNAVAILABLE and the next call goes to the next endpoint; after
// GOAWAY it takes no new streams and closes once its last stream ends. A connection with
// open streams is pinged after 30 s without input and closed if the ping is not answered
// within 10 s (a dead peer under a watch). Unary calls have a 10 s deadline (grpc-timeout
// for etcd, and a once-a-second sweep here).
//
// An open connection is a pending read: io_context::run() does not return while the client
// exists. Destroy it (which closes its connections) to let run() finish.
#include "storage/etcd_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/pct_string_view.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "etcd/kv.pb.h"
#include "etcd/rpc.pb.h"
#include "podwarp/log.h"
#include "podwarp/socket_deadline.h"

namespace podwarp::storage {
namespace {

namespace asio = boost::asio;
namespace pb = etcdserverpb;
using asio::awaitable;
using Clock = std::chrono::steady_clock;

// Deadline for every unary RPC. Generous: a loaded etcd fsyncs each write.
constexpr auto kUnaryDeadline = std::chrono::seconds(10);
constexpr auto kKeepaliveIdle = std::chrono::seconds(30);
constexpr auto kKeepaliveTimeout = std::chrono::seconds(10);
constexpr auto kTick = std::chrono::seconds(1);
constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::size_t kWriteBatch = 256 * 1024;
// Flow-control windows: large, so a big range or a busy watch never waits for a
// WINDOW_UPDATE round trip (what arrives is parsed as it is read).
constexpr std::int32_t kStreamWindow = 16 << 20;
constexpr std::int32_t kConnectionWindow = 1 << 30;

// ---------------------------------------------------------------------------------------------
// gRPC status

// gRPC's status codes (grpc/status.h), by number.
enum GrpcCode : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

struct GrpcStatus {
  int code = kOk;
  std::string message;
  bool ok() const { return code == kOk; }
};

std::string_view code_name(int code) {
  static constexpr std::array<std::string_view, 17> kNames = {
      "OK",        "CANCELLED",         "UNKNOWN",          "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS",    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",      "UNIMPLEMENTED",    "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < static_cast<int>(kNames.size()) ? kNames[code] : "UNKNOWN_CODE";
}

// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"); a malformed one is kept
// as it came.
std::string percent_decode(std::string_view s) {
  auto pct = boost::urls::make_pct_string_view(s);
  return pct ? pct->decode() : std::string(s);
}

// A decimal number in a header or an endpoint; -1 if it is not one.
int parse_number(std::string_view s) {
  int out = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && out >= 0 ? out : -1;
}

// An HTTP status without grpc-status, mapped as gRPC's clients do.
int code_of_http_status(int http) {
  switch (http) {
    case 401:
      return kUnauthenticated;
    case 403:
      return kPermissionDenied;
    case 404:
      return kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return kUnavailable;
    default:
      return kUnknown;
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints

struct Target {
  std::string name;  // as written (normalized), for messages and :authority
  bool unix_socket = false;
  std::string path;  // unix socket
  std::string host;  // tcp
  std::string port;
};

// "http://127.0.0.1:2379/" -> 127.0.0.1 port 2379; gRPC's target syntax "unix:/path",
// "unix:///path" and "dns:///host:port" is accepted too. Empty name: nothing given.
Target parse_target(std::string_view endpoint) {
  while (!endpoint.empty() && (endpoint.front() == ' ' || endpoint.front() == '\t')) {
    endpoint.remove_prefix(1);
  }
  while (!endpoint.empty() && (endpoint.back() == ' ' || endpoint.back() == '\t')) {
    endpoint.remove_suffix(1);
  }
  Target t;
  if (endpoint.starts_with("unix:")) {
    std::string_view path = endpoint.substr(5);
    if (path.starts_with("//")) path.remove_prefix(2);
    t.name = std::string(endpoint);
    t.unix_socket = true;
    t.path = std::string(path);
    return t;
  }
  if (endpoint.starts_with("http://")) {
    endpoint.remove_prefix(7);
  } else if (endpoint.starts_with("https://")) {
    log::warn("etcd: endpoint {}: TLS is not supported, connecting without it", endpoint);
    endpoint.remove_prefix(8);
  } else if (endpoint.starts_with("dns:///")) {
    endpoint.remove_prefix(7);
  }
  while (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  t.name = std::string(endpoint);
  if (endpoint.empty()) return t;
  std::string_view host = endpoint;
  std::string_view port = "2379";
  if (endpoint.front() == '[') {  // [::1]:2379
    const std::size_t close = endpoint.find(']');
    host = endpoint.substr(1, close == std::string_view::npos ? endpoint.size() - 1 : close - 1);
    if (close != std::string_view::npos && close + 1 < endpoint.size() &&
        endpoint[close + 1] == ':') {
      port = endpoint.substr(close + 2);
    }
  } else if (const std::size_t colon = endpoint.rfind(':'); colon != std::string_view::npos) {
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
  }
  t.host = std::string(host);
  t.port = std::string(port);
  return t;
}

std::vector<Target> parse_targets(const std::vector<std::string>& endpoints) {
  std::vector<Target> out;
  for (const std::string& item : endpoints) {
    std::string_view rest = item;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      Target t = parse_target(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (!t.name.empty()) out.push_back(std::move(t));
    }
  }
  if (out.empty()) throw std::invalid_argument("make_etcd_client: no etcd endpoints given");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Calls: one HTTP/2 stream each

// The request of a call, framed: a gRPC message is a flag byte (0: not compressed), its
// length (4 bytes, big-endian), then the protobuf bytes.
template <typename Message>
std::string grpc_frame(const Message& m) {
  const std::size_t n = m.ByteSizeLong();
  std::string out(5 + n, '\0');
  out[1] = static_cast<char>((n >> 24) & 0xff);
  out[2] = static_cast<char>((n >> 16) & 0xff);
  out[3] = static_cast<char>((n >> 8) & 0xff);
  out[4] = static_cast<char>(n & 0xff);
  m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(out.data() + 5));
  return out;
}

std::uint32_t frame_length(std::string_view bytes) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[1])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[2])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[3])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[4]));
}

class Call {
 public:
  virtual ~Call() = default;
  // Response bytes as they arrive.
  virtual void on_data(const std::uint8_t* data, std::size_t len) = 0;
  // The stream is over (trailers, reset, deadline or connection failure). Called once, on the
  // executor, possibly inside nghttp2's callbacks: implementations post what they resume.
  virtual void on_close(GrpcStatus status) = 0;

  std::string request;    // framed request message(s)
  std::size_t sent = 0;   // bytes of request handed to nghttp2
  bool half_close = true;  // unary: END_STREAM after the request; a watch stays open
  Clock::time_point deadline = Clock::time_point::max();
  // From the response's header blocks (headers, trailers, or trailers-only).
  int http_status = 0;
  int grpc_status = -1;
  std::string grpc_message;
};

// What a unary call's awaiting coroutine gets: the status and the response bytes (one framed
// message on success).
struct RawReply {
  GrpcStatus status;
  std::string body;
};

template <typename Handler>
class UnaryCall final : public Call {
 public:
  UnaryCall(Handler handler, asio::any_io_executor fallback)
      : handler_(std::move(handler)), fallback_(std::move(fallback)) {}

  void on_data(const std::uint8_t* data, std::size_t len) override {
    body_.append(reinterpret_cast<const char*>(data), len);
  }
  void on_close(GrpcStatus status) override {
    auto ex = asio::get_associated_executor(handler_, fallback_);
    asio::post(ex, [handler = std::move(handler_),
                    reply = RawReply{std::move(status), std::move(body_)}]() mutable {
      std::move(handler)(std::move(reply));
    });
  }

 private:
  Handler handler_;
  asio::any_io_executor fallback_;
  std::string body_;
};

// ---------------------------------------------------------------------------------------------
// Connection: one HTTP/2 session over one socket

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::any_io_executor ex, std::size_t index, const Target& target)
      : index_(index), target_(target), socket_(ex), timer_(ex) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &Connection::on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &Connection::on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &Connection::on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Connection::on_frame_recv);
    nghttp2_session_callbacks_set_error_callback2(cbs, &Connection::on_error);
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  }
  ~Connection() { nghttp2_session_del(session_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  std::size_t index() const { return index_; }
  const std::string& name() const { return target_.name; }
  // False once it takes no new streams (failed, closed, GOAWAY, out of stream ids).
  bool usable() const { return !dead_ && !retired_; }

  void connect() {
    if (target_.unix_socket) {
      start_connect({asio::local::stream_protocol::endpoint(target_.path)});
      return;
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(target_.host, ec);
    const int port = parse_number(target_.port);
    if (port <= 0 || port > 65535) {
      fail({kUnavailable, fmt::format("bad port in etcd endpoint {}", target_.name)});
      return;
    }
    if (!ec) {
      start_connect({asio::ip::tcp::endpoint(address, static_cast<std::uint16_t>(port))});
      return;
    }
    auto resolver = std::make_shared<asio::ip::tcp::resolver>(socket_.get_executor());
    resolver->async_resolve(
        target_.host, target_.port,
        [self = shared_from_this(), resolver](boost::system::error_code rec,
                                              const asio::ip::tcp::resolver::results_type& found) {
          if (self->dead_) return;
          if (rec || found.empty()) {
            self->fail({kUnavailable, fmt::format("cannot resolve {}: {}", self->target_.host,
                                                  rec ? rec.message() : "no address")});
            return;
          }
          std::vector<asio::generic::stream_protocol::endpoint> endpoints;
          for (const auto& entry : found) endpoints.emplace_back(entry.endpoint());
          self->start_connect(std::move(endpoints));
        });
  }

  // Starts `call` on a new stream (sent once connected). On failure the call is closed.
  // Returns the stream id, or 0.
  std::int32_t start(std::unique_ptr<Call> call, std::string_view path, bool watch) {
    if (dead_) {
      call->on_close({kUnavailable, fmt::format("connection to {} is closed", target_.name)});
      return 0;
    }
    auto nv = [](std::string_view k, std::string_view v) {
      return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(k.data())),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), k.size(),
                        v.size(), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    };
    static const std::string kTimeout = fmt::format("{}S", kUnaryDeadline.count());
    const std::string_view authority =
        target_.unix_socket ? std::string_view("localhost") : std::string_view(target_.name);
    std::array<nghttp2_nv, 7> hdrs = {nv(":method", "POST"),
                                      nv(":scheme", "http"),
                                      nv(":path", path),
                                      nv(":authority", authority),
                                      nv("content-type", "application/grpc"),
                                      nv("te", "trailers"),
                                      // A member that lost its leader ends a watch instead of
                                      // going silent (etcd's "require leader" metadata, as
                                      // clientv3 and the kube-apiserver send).
                                      watch ? nv("hasleader", "true") : nv("grpc-timeout", kTimeout)};
    nghttp2_data_provider provider{};
    provider.read_callback = &Connection::read_request;
    const std::int32_t id =
        nghttp2_submit_request(session_, nullptr, hdrs.data(), hdrs.size(), &provider, nullptr);
    if (id < 0) {
      if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) retired_ = true;
      call->on_close({kUnavailable, fmt::format("HTTP/2: {}", nghttp2_strerror(id))});
      return 0;
    }
    if (!watch) call->deadline = Clock::now() + kUnaryDeadline;
    streams_.emplace(id, std::move(call));
    arm_tick();
    schedule_flush();
    return id;
  }

  // Resets the stream; its call is dropped without on_close (the caller is gone).
  void cancel(std::int32_t id) {
    if (dead_ || streams_.erase(id) == 0) return;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    schedule_flush();
    close_if_retired_and_idle();
  }

  // The client is going away: every open call ends with CANCELLED and the socket is shut down.
  void close() { fail({kCancelled, "etcd client destroyed"}); }

 private:
  // Connects to the first of `endpoints` that accepts (a host name may resolve to several,
  // e.g. ::1 and 127.0.0.1 for localhost).
  void start_connect(std::vector<asio::generic::stream_protocol::endpoint> endpoints,
                     std::size_t at = 0) {
    const auto endpoint = endpoints[at];
    socket_.async_connect(endpoint, [self = shared_from_this(), endpoints = std::move(endpoints),
                                     at](boost::system::error_code ec) mutable {
      if (self->dead_) return;
      if (ec && at + 1 < endpoints.size()) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);  // nothing is in flight on it: the connect has ended
        self->start_connect(std::move(endpoints), at + 1);
        return;
      }
      if (ec) {
        self->fail({kUnavailable, fmt::format("failed to connect to {}: {}", self->target_.name,
                                              ec.message())});
        return;
      }
      if (!self->target_.unix_socket) {
        const int one = 1;
        ::setsockopt(self->socket_.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      self->connected_ = true;
      self->last_read_ = Clock::now();
      self->read();
      self->flush();
    });
  }

  void read() {
    socket_.async_read_some(
        asio::buffer(rbuf_.data(), rbuf_.size()),
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          self->on_read(ec, n);
        });
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    if (dead_) return;
    if (ec) {
      fail({kUnavailable, fmt::format("connection to {} lost: {}", target_.name,
                                      ec == asio::error::eof ? "closed by the server" : ec.message())});
      return;
    }
    last_read_ = Clock::now();
    const ssize_t rv = nghttp2_session_mem_recv(session_, rbuf_.data(), n);
    if (dead_) return;  // a callback failed the connection
    if (rv < 0 || !protocol_error_.empty()) {
      fail({kInternal, fmt::format("HTTP/2 from {}: {}", target_.name,
                                   protocol_error_.empty() ? nghttp2_strerror(static_cast<int>(rv))
                                                           : protocol_error_)});
      return;
    }
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
      fail({kUnavailable, fmt::format("connection to {} ended by etcd (GOAWAY)", target_.name)});
      return;
    }
    flush();
    read();
  }

  // Sends what is submitted once the current handler is done, so that the requests of one
  // burst go out in one write.
  void schedule_flush() {
    if (flush_scheduled_ || writing_ || !connected_) return;
    flush_scheduled_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->flush_scheduled_ = false;
      self->flush();
    });
  }

  void flush() {
    if (dead_ || writing_ || !connected_) return;
    wbuf_.clear();
    while (wbuf_.size() < kWriteBatch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        fail({kInternal, fmt::format("HTTP/2 to {}: {}", target_.name,
                                     nghttp2_strerror(static_cast<int>(n)))});
        return;
      }
      if (n == 0) break;
      wbuf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (wbuf_.empty()) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(wbuf_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (self->dead_) return;
                        if (ec) {
                          self->fail({kUnavailable, fmt::format("write to {} failed: {}",
                                                                self->target_.name, ec.message())});
                          return;
                        }
                        self->flush();
                      });
  }

  // Ends every call with `status`, shuts the socket down (its pending operations end by
  // themselves; the socket closes with the last reference) and takes nothing new.
  void fail(GrpcStatus status) {
    if (dead_) return;
    dead_ = true;
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, call] : streams) call->on_close(status);
    shut_down(socket_);
    timer_.cancel();
  }

  void close_if_retired_and_idle() {
    if (retired_ && streams_.empty()) fail({kUnavailable, "connection retired"});
  }

  // Once a second while streams are open: unary deadlines, and the keepalive ping.
  void arm_tick() {
    if (ticking_ || dead_) return;
    ticking_ = true;
    timer_.expires_after(kTick);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      self->ticking_ = false;
      if (ec || self->dead_) return;
      self->on_tick();
    });
  }

  void on_tick() {
    const Clock::time_point now = Clock::now();
    std::vector<std::int32_t> expired;
    for (const auto& [id, call] : streams_) {
      if (call->deadline <= now) expired.push_back(id);
    }
    for (std::int32_t id : expired) {
      auto it = streams_.find(id);
      std::unique_ptr<Call> call = std::move(it->second);
      streams_.erase(it);
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      call->on_close({kDeadlineExceeded, "Deadline Exceeded"});
    }
    if (connected_ && !streams_.empty()) {
      if (ping_sent_ && now - *ping_sent_ > kKeepaliveTimeout) {
        fail({kUnavailable, fmt::format("etcd at {} did not answer a keepalive ping within {} s",
                                        target_.name, kKeepaliveTimeout.count())});
        return;
      }
      if (!ping_sent_ && now - last_read_ >= kKeepaliveIdle) {
        nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
        ping_sent_ = now;
      }
    }
    flush();
    close_if_retired_and_idle();
    if (!streams_.empty()) arm_tick();
  }

  Call* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  // nghttp2 callbacks (inside mem_recv/mem_send, on the executor)

  static ssize_t read_request(nghttp2_session* /*session*/, std::int32_t id, std::uint8_t* buf,
                              std::size_t length, std::uint32_t* flags,
                              nghttp2_data_source* /*source*/, void* user) {
    Call* call = static_cast<Connection*>(user)->find(id);
    if (call == nullptr) return NGHTTP2_ERR_DEFERRED;  // dropped; its RST_STREAM follows
    const std::size_t n = std::min(length, call->request.size() - call->sent);
    if (n == 0 && !call->half_close) return NGHTTP2_ERR_DEFERRED;  // a watch: the stream stays open
    std::memcpy(buf, call->request.data() + call->sent, n);
    call->sent += n;
    if (call->sent == call->request.size() && call->half_close) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int on_header(nghttp2_session* /*session*/, const nghttp2_frame* frame,
                       const std::uint8_t* name, std::size_t namelen, const std::uint8_t* value,
                       std::size_t valuelen, std::uint8_t /*flags*/, void* user) {
    Call* call = static_cast<Connection*>(user)->find(frame->hd.stream_id);
    if (call == nullptr) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      call->http_status = parse_number(v);
    } else if (n == "grpc-status") {
      call->grpc_status = parse_number(v);
    } else if (n == "grpc-message") {
      call->grpc_message = percent_decode(v);
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* /*session*/, std::uint8_t /*flags*/, std::int32_t id,
                           const std::uint8_t* data, std::size_t len, void* user) {
    if (Call* call = static_cast<Connection*>(user)->find(id)) call->on_data(data, len);
    return 0;
  }

  static int on_stream_close(nghttp2_session* /*session*/, std::int32_t id,
                             std::uint32_t error_code, void* user) {
    auto* self = static_cast<Connection*>(user);
    auto it = self->streams_.find(id);
    if (it == self->streams_.end()) return 0;
    std::unique_ptr<Call> call = std::move(it->second);
    self->streams_.erase(it);
    GrpcStatus status;
    if (call->grpc_status >= 0) {
      status = {call->grpc_status, std::move(call->grpc_message)};
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
      status = {kUnavailable, "stream refused by etcd"};
    } else if (error_code == NGHTTP2_CANCEL) {
      status = {kCancelled, "stream canceled by etcd"};
    } else if (error_code != NGHTTP2_NO_ERROR) {
      status = {kInternal, fmt::format("stream reset by etcd: {}", nghttp2_http2_strerror(error_code))};
    } else if (call->http_status != 200) {
      status = {code_of_http_status(call->http_status),
                fmt::format("HTTP status {} without grpc-status", call->http_status)};
    } else {
      status = {kInternal, "stream ended without grpc-status"};
    }
    call->on_close(std::move(status));
    self->close_if_retired_and_idle();
    return 0;
  }

  // A connection error found in what the server sent (nghttp2 then only queues GOAWAY).
  static int on_error(nghttp2_session* /*session*/, int code, const char* msg, std::size_t len,
                      void* user) {
    auto* self = static_cast<Connection*>(user);
    if (code != 0 && self->protocol_error_.empty()) self->protocol_error_.assign(msg, len);
    return 0;
  }

  static int on_frame_recv(nghttp2_session* /*session*/, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<Connection*>(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->retired_ = true;  // streams above its last id are refused (closed) by nghttp2
    } else if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
      self->ping_sent_.reset();
    }
    return 0;
  }

  const std::size_t index_;
  const Target target_;
  asio::generic::stream_protocol::socket socket_;
  asio::steady_timer timer_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::unique_ptr<Call>> streams_;
  std::array<std::uint8_t, kReadBuffer> rbuf_{};
  std::string wbuf_;
  Clock::time_point last_read_{};
  std::optional<Clock::time_point> ping_sent_;
  std::string protocol_error_;  // what nghttp2 reported as the server's protocol error
  bool connected_ = false;
  bool writing_ = false;
  bool flush_scheduled_ = false;
  bool ticking_ = false;
  bool dead_ = false;
  bool retired_ = false;
};

// ---------------------------------------------------------------------------------------------
// Conversions and errors

KeyValue from_pb(const mvccpb::KeyValue& kv) {
  return KeyValue{.key = kv.key(),
                  .value = kv.value(),
                  .create_revision = kv.create_revision(),
                  .mod_revision = kv.mod_revision()};
}

// The same, moving the bytes out of the message.
KeyValue take(mvccpb::KeyValue& kv) {
  return KeyValue{.key = std::move(*kv.mutable_key()),
                  .value = std::move(*kv.mutable_value()),
                  .create_revision = kv.create_revision(),
                  .mod_revision = kv.mod_revision()};
}

// "etcd Txn(update) /registry/pods/a/b at 127.0.0.1:2379: UNAVAILABLE: failed to connect"
StorageError rpc_error(std::string_view op, std::string_view key, std::string_view target,
                       const GrpcStatus& status) {
  StorageError err{.code = StorageErrc::kUnavailable,
                   .message = fmt::format("etcd {} {} at {}: {}: {}", op, key, target,
                                          code_name(status.code), status.message)};
  // etcd: "etcdserver: mvcc: required revision has been compacted" (OutOfRange).
  if (status.code == kOutOfRange && status.message.find("compacted") != std::string::npos) {
    err.code = StorageErrc::kCompacted;
  }
  return err;
}

StorageError not_found(std::string_view op, std::string_view key) {
  return StorageError{.code = StorageErrc::kNotFound,
                      .message = fmt::format("etcd {} {}: key not found", op, key)};
}

// Sets [key, range_end) for "key", "every key under prefix", or an explicit end.
template <typename Request>
void set_range(Request& req, std::string_view key, bool prefix, std::string_view range_end) {
  if (!range_end.empty()) {
    req.set_key(std::string(key));
    req.set_range_end(std::string(range_end));
  } else if (prefix && key.empty()) {
    req.set_key(std::string(1, '\0'));  // every key: etcd rejects an empty key
    req.set_range_end(std::string(1, '\0'));
  } else if (prefix) {
    req.set_key(std::string(key));
    req.set_range_end(prefix_end(key));
  } else {
    req.set_key(std::string(key));
  }
}

template <typename Response>
struct Reply {
  GrpcStatus status;
  Response response;
  std::string target;  // which endpoint answered, for error messages
};

constexpr std::string_view kRange = "/etcdserverpb.KV/Range";
constexpr std::string_view kPut = "/etcdserverpb.KV/Put";
constexpr std::string_view kTxn = "/etcdserverpb.KV/Txn";
constexpr std::string_view kCompact = "/etcdserverpb.KV/Compact";
constexpr std::string_view kWatch = "/etcdserverpb.Watch/Watch";

// ---------------------------------------------------------------------------------------------
// Watch

// Shared by a watch's stream and the caller's handle. Callbacks are posted to the executor
// and run only while `alive`.
struct WatchState {
  EtcdClient::EventsFn on_events;
  EtcdClient::ErrorFn on_error;
  std::string prefix;
  std::int64_t start_revision = 0;
  bool alive = true;
};

class WatchCall final : public Call {
 public:
  WatchCall(asio::any_io_executor ex, std::shared_ptr<WatchState> state, std::string target,
            std::weak_ptr<Connection> conn)
      : ex_(std::move(ex)),
        state_(std::move(state)),
        target_(std::move(target)),
        conn_(std::move(conn)) {
    half_close = false;
  }

  void set_stream(std::int32_t id) { stream_ = id; }

  void on_data(const std::uint8_t* data, std::size_t len) override {
    if (finished_) return;
    buf_.append(reinterpret_cast<const char*>(data), len);
    std::size_t at = 0;
    while (!finished_ && buf_.size() - at >= 5) {
      const std::string_view rest(buf_.data() + at, buf_.size() - at);
      const std::uint32_t n = frame_length(rest);
      if (rest.size() - 5 < n) break;
      pb::WatchResponse resp;
      if (rest[0] != 0 || !resp.ParseFromArray(rest.data() + 5, static_cast<int>(n))) {
        fail(StorageError{.code = StorageErrc::kUnavailable,
                          .message = fmt::format("etcd Watch {} at {}: malformed response",
                                                 state_->prefix, target_)});
        break;
      }
      at += 5 + n;
      handle(resp);
    }
    buf_.erase(0, at);
  }

  void on_close(GrpcStatus status) override {
    if (finished_) return;
    finished_ = true;
    StorageError err =
        status.ok() ? StorageError{.code = StorageErrc::kUnavailable,
                                   .message = fmt::format("etcd Watch {} at {}: stream closed by etcd",
                                                          state_->prefix, target_)}
                    : rpc_error("Watch", state_->prefix, target_, status);
    post([err = std::move(err)](WatchState& s) mutable { s.on_error(std::move(err)); });
  }

 private:
  void handle(pb::WatchResponse& resp) {
    if (resp.compact_revision() != 0) {
      fail(StorageError{
          .code = StorageErrc::kCompacted,
          .message = fmt::format("etcd Watch {} from revision {}: compacted, the "
                                 "oldest revision kept is {}",
                                 state_->prefix, state_->start_revision, resp.compact_revision()),
          .compact_revision = resp.compact_revision()});
      return;
    }
    if (resp.canceled()) {
      fail(StorageError{.code = StorageErrc::kUnavailable,
                        .message = fmt::format("etcd Watch {} at {}: canceled by etcd: {}",
                                               state_->prefix, target_, resp.cancel_reason())});
      return;
    }
    if (resp.events().empty()) {
      if (resp.created()) return;  // the ack; its revision promises nothing about the backlog
      // Progress notification: every later event has a higher revision.
      post([rev = resp.header().revision()](WatchState& s) { s.on_events({}, rev); });
      return;
    }
    std::vector<WatchEvent> events;
    events.reserve(resp.events_size());
    for (mvccpb::Event& e : *resp.mutable_events()) {
      events.push_back(WatchEvent{.type = e.type() == mvccpb::Event::DELETE
                                              ? WatchEvent::Type::kDelete
                                              : WatchEvent::Type::kPut,
                                  .kv = take(*e.mutable_kv()),
                                  .prev_kv = e.has_prev_kv() ? take(*e.mutable_prev_kv()) : KeyValue{}});
    }
    // The batch's revision is its last event's; the header revision may run ahead of events
    // that are still to come while etcd catches a watcher up.
    const std::int64_t rev = events.back().kv.mod_revision;
    post([events = std::move(events), rev](WatchState& s) mutable {
      s.on_events(std::move(events), rev);
    });
  }

  // Reports err and ends the stream (its close is then not reported again).
  void fail(StorageError err) {
    finished_ = true;
    post([err = std::move(err)](WatchState& s) mutable { s.on_error(std::move(err)); });
    // Not from inside nghttp2's callback: resetting erases this call.
    asio::post(ex_, [conn = conn_, id = stream_] {
      if (auto c = conn.lock()) c->cancel(id);
    });
  }

  template <typename Fn>
  void post(Fn fn) {
    asio::post(ex_, [state = state_, fn = std::move(fn)]() mutable {
      if (state->alive) fn(*state);
    });
  }

  asio::any_io_executor ex_;
  std::shared_ptr<WatchState> state_;
  std::string target_;
  std::weak_ptr<Connection> conn_;
  std::int32_t stream_ = 0;
  std::string buf_;  // received bytes not yet a whole message
  bool finished_ = false;
};

class WatchHandle final : public EtcdClient::Watch {
 public:
  WatchHandle(asio::any_io_executor ex, std::shared_ptr<WatchState> state,
              std::weak_ptr<Connection> conn, std::int32_t stream)
      : ex_(std::move(ex)), state_(std::move(state)), conn_(std::move(conn)), stream_(stream) {}
  ~WatchHandle() override {
    state_->alive = false;
    // Posted: the handle may be destroyed inside one of its own callbacks, or inside a call
    // that holds the connection's state.
    asio::post(ex_, [state = std::move(state_), conn = std::move(conn_), id = stream_] {
      if (auto c = conn.lock(); c && id != 0) c->cancel(id);
      state->on_events = nullptr;  // and what they captured
      state->on_error = nullptr;
    });
  }

 private:
  asio::any_io_executor ex_;
  std::shared_ptr<WatchState> state_;
  std::weak_ptr<Connection> conn_;
  std::int32_t stream_;
};

// ---------------------------------------------------------------------------------------------
// The client

// Grouped creates: at most this many creates per Txn (etcd's --max-txn-ops defaults to 128)
// and this many bytes of values (its --max-request-bytes to 1.5 MiB). A larger value is sent
// in its own Txn at once.
constexpr std::size_t kMaxCreateGroup = 64;
constexpr std::size_t kMaxCreateGroupBytes = 512 * 1024;
constexpr std::size_t kMaxGroupedValue = 64 * 1024;

class H2EtcdClient final : public EtcdClient {
 public:
  H2EtcdClient(asio::any_io_executor executor, const std::vector<std::string>& endpoints,
               const EtcdClientOptions& options)
      : executor_(std::move(executor)),
        targets_(parse_targets(endpoints)),
        create_txns_limit_(options.create_txns_in_flight) {}

  ~H2EtcdClient() override {
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) c->close();
    }
  }

  awaitable<Result<RangeResult>> range(std::string key, RangeOptions opts) override {
    pb::RangeRequest req;
    set_range(req, key, opts.prefix, opts.range_end);
    req.set_limit(opts.limit);
    req.set_revision(opts.revision);
    req.set_count_only(opts.count_only);
    req.set_keys_only(opts.keys_only);
    auto reply = co_await unary<pb::RangeResponse>(req, kRange);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Range", key, reply.target, reply.status));
    }
    RangeResult out;
    out.revision = reply.response.header().revision();
    out.more = reply.response.more();
    out.count = reply.response.count();
    out.kvs.reserve(reply.response.kvs_size());
    for (mvccpb::KeyValue& kv : *reply.response.mutable_kvs()) out.kvs.push_back(take(kv));
    co_return out;
  }

  // Txn: if create_revision(key) == 0 then put else range. Creates are grouped (group
  // commit): while create_txns_limit_ create Txns are out, later creates queue, and when one
  // ends what queued goes as one Txn of nested create Txns (send_group). A create finds no
  // queue when etcd keeps up, and then goes at once.
  awaitable<Result<KeyValue>> create(std::string key, std::string value) override {
    const bool own_txn = create_txns_limit_ == 0 || value.size() > kMaxGroupedValue;
    if (own_txn || (create_txns_ < create_txns_limit_ && create_queue_.empty())) {
      if (!own_txn) ++create_txns_;
      Result<KeyValue> result = co_await create_alone(std::move(key), std::move(value));
      if (!own_txn) {
        --create_txns_;
        send_queued_creates();
      }
      co_return result;
    }
    auto queued = std::make_shared<QueuedCreate>(executor_, std::move(key), std::move(value));
    create_queue_.push_back(queued);
    send_queued_creates();
    boost::system::error_code ec;
    co_await queued->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return std::move(*queued->result);
  }

  // Txn: if mod_revision(key) == expected then put(prev_kv) else range. expected == 0: only
  // "the key exists" is compared (create_revision > 0).
  awaitable<Result<KeyValue>> update(std::string key, std::string value,
                                     std::int64_t expected_mod_revision) override {
    pb::TxnRequest txn;
    pb::Compare* cmp = txn.add_compare();
    cmp->set_key(key);
    if (expected_mod_revision != 0) {
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected_mod_revision);
    } else {
      cmp->set_target(pb::Compare::CREATE);
      cmp->set_result(pb::Compare::GREATER);
      cmp->set_create_revision(0);
    }
    pb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_prev_kv(true);  // for create_revision
    txn.add_failure()->mutable_request_range()->set_key(key);

    auto reply = co_await unary<pb::TxnResponse>(txn, kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(update)", key, reply.target, reply.status));
    }
    const pb::TxnResponse& resp = reply.response;
    if (resp.succeeded()) {
      std::int64_t created = 0;
      if (resp.responses_size() > 0 && resp.responses(0).has_response_put()) {
        created = resp.responses(0).response_put().prev_kv().create_revision();
      }
      co_return KeyValue{.key = std::move(key),
                         .value = std::move(value),
                         .create_revision = created,
                         .mod_revision = resp.header().revision()};
    }
    std::optional<KeyValue> cur = current_of(resp);
    if (!cur) co_return std::unexpected(not_found("Txn(update)", key));
    StorageError err{.code = StorageErrc::kConflict,
                     .message = fmt::format("etcd Txn(update) {}: mod_revision is {}, expected {}",
                                            key, cur->mod_revision, expected_mod_revision),
                     .current = std::move(cur)};
    co_return std::unexpected(std::move(err));
  }

  // Txn: if (expected == 0 or mod_revision(key) == expected) then delete(prev_kv) else range.
  awaitable<Result<KeyValue>> remove(std::string key, std::int64_t expected_mod_revision) override {
    pb::TxnRequest txn;
    if (expected_mod_revision != 0) {
      pb::Compare* cmp = txn.add_compare();
      cmp->set_key(key);
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected_mod_revision);
    }
    pb::DeleteRangeRequest* del = txn.add_success()->mutable_request_delete_range();
    del->set_key(key);
    del->set_prev_kv(true);
    txn.add_failure()->mutable_request_range()->set_key(key);

    auto reply = co_await unary<pb::TxnResponse>(txn, kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(delete)", key, reply.target, reply.status));
    }
    const pb::TxnResponse& resp = reply.response;
    if (resp.succeeded()) {
      if (resp.responses_size() == 0 || !resp.responses(0).has_response_delete_range() ||
          resp.responses(0).response_delete_range().prev_kvs_size() == 0) {
        co_return std::unexpected(not_found("Txn(delete)", key));
      }
      KeyValue kv = from_pb(resp.responses(0).response_delete_range().prev_kvs(0));
      kv.mod_revision = resp.header().revision();
      co_return kv;
    }
    std::optional<KeyValue> cur = current_of(resp);
    if (!cur) co_return std::unexpected(not_found("Txn(delete)", key));
    StorageError err{.code = StorageErrc::kConflict,
                     .message = fmt::format("etcd Txn(delete) {}: mod_revision is {}, expected {}",
                                            key, cur->mod_revision, expected_mod_revision),
                     .current = std::move(cur)};
    co_return std::unexpected(std::move(err));
  }

  awaitable<Result<std::int64_t>> put(std::string key, std::string value) override {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(std::move(value));
    auto reply = co_await unary<pb::PutResponse>(req, kPut);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Put", key, reply.target, reply.status));
    }
    co_return reply.response.header().revision();
  }

  awaitable<Result<std::int64_t>> compact(std::int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    auto reply = co_await unary<pb::CompactionResponse>(req, kCompact);
    if (!reply.status.ok()) {
      co_return std::unexpected(
          rpc_error("Compact", fmt::format("revision {}", revision), reply.target, reply.status));
    }
    co_return reply.response.header().revision();
  }

  std::unique_ptr<Watch> watch(std::string prefix, std::int64_t start_revision, bool prev_kv,
                               EventsFn on_events, ErrorFn on_error) override {
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    set_range(*create, prefix, /*prefix=*/true, /*range_end=*/{});
    create->set_start_revision(start_revision);
    create->set_prev_kv(prev_kv);
    create->set_progress_notify(true);

    auto state = std::make_shared<WatchState>();
    state->on_events = std::move(on_events);
    state->on_error = std::move(on_error);
    state->prefix = std::move(prefix);
    state->start_revision = start_revision;
    std::shared_ptr<Connection> conn = connection();
    std::weak_ptr<Connection> weak = conn;
    auto call = std::make_unique<WatchCall>(executor_, state, conn->name(), weak);
    call->request = grpc_frame(req);
    WatchCall* raw = call.get();
    const std::int32_t id = conn->start(std::move(call), kWatch, /*watch=*/true);
    if (id != 0) raw->set_stream(id);  // else the call has already been closed (and freed)
    return std::make_unique<WatchHandle>(executor_, std::move(state), weak, id);
  }

 private:
  // A create waiting for a grouped Txn; done is cancelled once result is set.
  struct QueuedCreate {
    QueuedCreate(asio::any_io_executor ex, std::string k, std::string v)
        : key(std::move(k)), value(std::move(v)), done(ex, asio::steady_timer::time_point::max()) {}
    std::string key;
    std::string value;
    std::optional<Result<KeyValue>> result;
    asio::steady_timer done;
  };

  static pb::TxnRequest create_txn(const std::string& key, const std::string& value) {
    pb::TxnRequest txn;
    pb::Compare* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);
    pb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    txn.add_failure()->mutable_request_range()->set_key(key);
    return txn;
  }

  static Result<KeyValue> create_result(std::string key, std::string value,
                                        const pb::TxnResponse& resp, std::int64_t revision) {
    if (resp.succeeded()) {
      return KeyValue{.key = std::move(key),
                      .value = std::move(value),
                      .create_revision = revision,
                      .mod_revision = revision};
    }
    StorageError err{.code = StorageErrc::kAlreadyExists,
                     .message = fmt::format("etcd Txn(create) {}: key already exists", key)};
    if (std::optional<KeyValue> cur = current_of(resp)) err.current = std::move(cur);
    return std::unexpected(std::move(err));
  }

  awaitable<Result<KeyValue>> create_alone(std::string key, std::string value) {
    pb::TxnRequest txn = create_txn(key, value);
    auto reply = co_await unary<pb::TxnResponse>(txn, kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(create)", key, reply.target, reply.status));
    }
    co_return create_result(std::move(key), std::move(value), reply.response,
                            reply.response.header().revision());
  }

  // Sends queued creates while fewer than the limit of create Txns are out, each group up to
  // kMaxCreateGroup distinct keys (etcd refuses a Txn that puts one key twice; a repeated key
  // waits for the next group) and kMaxCreateGroupBytes of values, in the order they came.
  void send_queued_creates() {
    while (create_txns_ < create_txns_limit_ && !create_queue_.empty()) {
      std::vector<std::shared_ptr<QueuedCreate>> group;
      std::unordered_set<std::string_view> keys;
      std::size_t bytes = 0;
      for (auto it = create_queue_.begin();
           it != create_queue_.end() && group.size() < kMaxCreateGroup;) {
        const QueuedCreate& c = **it;
        if (!group.empty() && bytes + c.value.size() > kMaxCreateGroupBytes) break;
        if (!keys.insert(c.key).second) {
          ++it;
          continue;
        }
        bytes += c.value.size();
        group.push_back(std::move(*it));
        it = create_queue_.erase(it);
      }
      ++create_txns_;
      asio::co_spawn(executor_, send_group(std::move(group)), asio::detached);
    }
  }

  // One Txn for the group: its success branch holds each create's own Txn, which etcd
  // evaluates one by one (a failed compare fails only its own create). The group is applied
  // at once and its creates share the Txn's revision. etcd refuses a group it finds too
  // large (INVALID_ARGUMENT, nothing applied): then each create goes alone.
  awaitable<void> send_group(std::vector<std::shared_ptr<QueuedCreate>> group) {
    auto finish = [](QueuedCreate& c, Result<KeyValue> r) {
      c.result = std::move(r);
      c.done.cancel();
    };
    if (group.size() == 1) {
      QueuedCreate& c = *group[0];
      Result<KeyValue> r = co_await create_alone(std::move(c.key), std::move(c.value));
      finish(c, std::move(r));
    } else {
      pb::TxnRequest txn;
      for (const auto& c : group) {
        *txn.add_success()->mutable_request_txn() = create_txn(c->key, c->value);
      }
      auto reply = co_await unary<pb::TxnResponse>(txn, kTxn);
      const pb::TxnResponse& resp = reply.response;
      const bool complete = static_cast<std::size_t>(resp.responses_size()) == group.size() &&
                            std::all_of(resp.responses().begin(), resp.responses().end(),
                                        [](const pb::ResponseOp& op) { return op.has_response_txn(); });
      for (std::size_t i = 0; i < group.size(); ++i) {
        QueuedCreate& c = *group[i];
        if (reply.status.code == kInvalidArgument) {
          Result<KeyValue> r = co_await create_alone(std::move(c.key), std::move(c.value));
          finish(c, std::move(r));
        } else if (!reply.status.ok()) {
          finish(c, std::unexpected(rpc_error("Txn(create)", c.key, reply.target, reply.status)));
        } else if (!complete) {
          finish(c, std::unexpected(StorageError{
                        .code = StorageErrc::kUnavailable,
                        .message = fmt::format("etcd Txn(create) {}: malformed grouped response "
                                               "from {}", c.key, reply.target)}));
        } else {
          finish(c, create_result(std::move(c.key), std::move(c.value),
                                  resp.responses(static_cast<int>(i)).response_txn(),
                                  resp.header().revision()));
        }
      }
    }
    --create_txns_;
    send_queued_creates();
  }

  // The kv the failure branch's range found, if any.
  static std::optional<KeyValue> current_of(const pb::TxnResponse& resp) {
    if (resp.responses_size() == 0 || !resp.responses(0).has_response_range()) {
      return std::nullopt;
    }
    const pb::RangeResponse& range = resp.responses(0).response_range();
    if (range.kvs_size() == 0) return std::nullopt;
    return from_pb(range.kvs(0));
  }

  // The connection calls go to: the current one, or a new one to the current endpoint.
  std::shared_ptr<Connection> connection() {
    if (conn_ && conn_->usable()) return conn_;
    std::erase_if(connections_, [](const std::weak_ptr<Connection>& w) { return w.expired(); });
    conn_ = std::make_shared<Connection>(executor_, current_, targets_[current_]);
    connections_.push_back(conn_);
    conn_->connect();
    return conn_;
  }

  // A call to endpoint `failed` found it unavailable: the next call goes to the next endpoint
  // (once, however many calls failed at the same time).
  void fail_over(std::size_t failed) {
    if (targets_.size() < 2 || failed != current_) return;
    current_ = (failed + 1) % targets_.size();
    log::warn("etcd: {} unavailable, next calls go to {}", targets_[failed].name,
              targets_[current_].name);
  }

  // Runs one unary RPC on the current connection. On UNAVAILABLE, later calls go to the next
  // endpoint; this one is not retried (a write may have been applied).
  template <typename Response, typename Request>
  awaitable<Reply<Response>> unary(const Request& request, std::string_view method) {
    std::shared_ptr<Connection> conn = connection();
    std::string body = grpc_frame(request);
    auto initiate = [&](auto handler) {
      auto call = std::make_unique<UnaryCall<decltype(handler)>>(std::move(handler), executor_);
      call->request = std::move(body);
      conn->start(std::move(call), method, /*watch=*/false);
    };
    RawReply raw = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(RawReply)>(
        initiate, asio::use_awaitable);
    Reply<Response> reply{std::move(raw.status), Response(), conn->name()};
    if (reply.status.ok()) {
      const std::string& b = raw.body;
      if (b.size() < 5 || b[0] != 0 || frame_length(b) != b.size() - 5 ||
          !reply.response.ParseFromArray(b.data() + 5, static_cast<int>(b.size() - 5))) {
        reply.status = {kInternal, "malformed response message"};
      }
    }
    if (reply.status.code == kUnavailable) fail_over(conn->index());
    co_return reply;
  }

  asio::any_io_executor executor_;
  std::vector<Target> targets_;  // fixed after construction (connections refer to them)
  std::size_t current_ = 0;
  std::shared_ptr<Connection> conn_;
  std::vector<std::weak_ptr<Connection>> connections_;  // every one still alive, to close
  int create_txns_ = 0;  // grouped create Txns out
  const int create_txns_limit_;  // 0: no grouping
  std::deque<std::shared_ptr<QueuedCreate>> create_queue_;
};

}  // namespace

std::unique_ptr<EtcdClient> make_etcd_client(boost::asio::any_io_executor executor,
                                             const std::vector<std::string>& endpoints,
                                             const EtcdClientOptions& options) {
  return std::make_unique<H2EtcdClient>(std::move(executor), endpoints, options);
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // no key is greater: "every key from prefix on"
}

}  // namespace podwarp::storage
