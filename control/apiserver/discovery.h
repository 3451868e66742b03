// Discovery documents: /version, /api, /apis (legacy and aggregated v2), /api/v1 and
// /apis/<group>/<version> resource lists. All built once from api::resources().
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "apiserver/http.h"

namespace podwarp::apiserver {

struct DiscoveryOptions {
  std::string server_address;  // "127.0.0.1:6443" for serverAddressByClientCIDRs
};

// Answers a discovery path, or nullopt when path is not one.
std::optional<Response> discovery(const Request& req, const DiscoveryOptions& opts);

std::string version_json();

}  // namespace podwarp::apiserver
