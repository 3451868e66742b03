// The HTTP layer under the registry client: one request/response exchange, with the body of a
// 200 reply streamed to a sink (blobs go to disk as they arrive). make_http_transport() is the
// real one (Boost.Beast over Asio's io_uring backend; HTTPS verified against the system's
// default CA paths). Tests substitute a fake to drive the registry protocol without sockets.
//
// Threading: use a transport from one thread (the executor it was made with). Exchanges may run
// concurrently as coroutines; each uses its own connection (idle ones are pooled per origin).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "images/error.h"

namespace podwarp::images {

template <class T>
using Awaitable = boost::asio::awaitable<T>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // absolute: "https://host[:port]/path?query"
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;  // empty when the body went to the sink

  // The first value of a header (name in lowercase), or "".
  std::string_view header(std::string_view lower_name) const;
  // Every value of a header (WWW-Authenticate may repeat).
  std::vector<std::string_view> header_values(std::string_view lower_name) const;
};

// Receives the body of a 200 reply in chunks; an error stops the transfer and is returned by
// fetch() unchanged.
using BodySink = std::function<Result<void>(std::string_view chunk)>;

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // One exchange. A 200 reply's body goes to `sink` when one is given; any other body is kept
  // in HttpResponse::body (bounded). Only transport failures (kind kNetwork) and sink errors are
  // errors; every HTTP status is a response. Redirects are returned, not followed.
  virtual Awaitable<Result<HttpResponse>> fetch(HttpRequest request, BodySink sink) = 0;
};

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{30'000};
  std::chrono::milliseconds read_idle_timeout{60'000};  // per read of headers or a body chunk
  std::uint64_t max_buffered_body = 8u << 20;           // bodies not sent to a sink
  std::string user_agent = "podwarp";
  std::size_t max_idle_per_origin = 4;
};

std::unique_ptr<HttpTransport> make_http_transport(boost::asio::any_io_executor executor,
                                                   TransportOptions options = {});

}  // namespace podwarp::images
