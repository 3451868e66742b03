// The health endpoints /healthz, /livez and /readyz as upstream's (k8s.io/apiserver healthz):
// named checks run in order; "ok" when all pass, with ?verbose the list ("[+]ping ok" ...
// "livez check passed"); when one fails, 500 with the list ("[-]etcd failed: reason withheld")
// and "livez check failed"; ?exclude=<name> (repeatable) skips a check ("[+]etcd excluded: ok",
// and a warning line for names that match no check); /livez/<name> runs that one check alone:
// "ok", or 500 "internal server error: <reason>".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/http.h"

namespace podwarp::apiserver {

// "healthz", "livez" or "readyz" and the check name of /<endpoint>/<check> ("" for the
// endpoint itself), or nullopt when path is not a health path.
struct HealthPath {
  std::string endpoint;
  std::string check;
};
std::optional<HealthPath> parse_health_path(std::string_view path);

// The checks each endpoint has, in upstream's order (of those podwarp has: ping, log, etcd;
// readyz also etcd-readiness and informer-sync).
const std::vector<std::string>& health_check_names(std::string_view endpoint);

struct HealthResult {
  std::string name;
  std::optional<std::string> failure;  // the reason, when the check failed
};

// The answer of /<endpoint> for these results (every check of the endpoint, excluded ones
// too: they are skipped here).
Response health_response(std::string_view endpoint, const std::vector<HealthResult>& results,
                         const Request& req);

// The answer of /<endpoint>/<check> for that check's result.
Response single_health_response(const HealthResult& result);

}  // namespace podwarp::apiserver
