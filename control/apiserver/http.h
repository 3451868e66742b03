// The apiserver's view of one HTTP exchange, independent of the transport: the request as
// parsed (path split into RequestInfo, query, headers, body, authenticated user) and either
// a whole response or a stream (watch) written through ResponseStream.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/status.h"
#include "podwarp/api/resources.h"

namespace podwarp::apiserver {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
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

// A streamed response (watch). write_head first, then chunks; each returns false once the
// client is gone.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual boost::asio::awaitable<bool> write_head(unsigned status, std::string content_type) = 0;
  virtual boost::asio::awaitable<bool> write_chunks(
      std::vector<std::shared_ptr<const std::string>> chunks) = 0;
};

// Splits a path into RequestInfo (verb from method + whether a name is given + watch=true).
// Returns false when the path is not an API resource path.
bool parse_request_info(Request& req);

}  // namespace podwarp::apiserver
