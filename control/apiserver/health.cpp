#include "apiserver/health.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace podwarp::apiserver {
namespace {

Response text(unsigned status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

}  // namespace

std::optional<HealthPath> parse_health_path(std::string_view path) {
  for (std::string_view endpoint : {"healthz", "livez", "readyz"}) {
    if (!path.starts_with('/') || !path.substr(1).starts_with(endpoint)) continue;
    std::string_view rest = path.substr(1 + endpoint.size());
    if (rest.empty() || rest == "/") return HealthPath{std::string(endpoint), ""};
    if (rest.starts_with('/')) return HealthPath{std::string(endpoint), std::string(rest.substr(1))};
  }
  return std::nullopt;
}

const std::vector<std::string>& health_check_names(std::string_view endpoint) {
  static const std::vector<std::string> kLive{"ping", "log", "etcd"};
  static const std::vector<std::string> kReady{"ping", "log", "etcd", "etcd-readiness",
                                               "informer-sync"};
  return endpoint == "readyz" ? kReady : kLive;
}

Response health_response(std::string_view endpoint, const std::vector<HealthResult>& results,
                         const Request& req) {
  std::set<std::string> excluded;
  for (auto [it, end] = req.query.equal_range("exclude"); it != end; ++it)
    excluded.insert(it->second);
  std::string lines;
  bool failed = false;
  for (const HealthResult& r : results) {
    if (excluded.erase(r.name) > 0) {
      lines += fmt::format("[+]{} excluded: ok\n", r.name);
    } else if (r.failure) {
      lines += fmt::format("[-]{} failed: reason withheld\n", r.name);
      failed = true;
    } else {
      lines += fmt::format("[+]{} ok\n", r.name);
    }
  }
  if (!excluded.empty()) {
    std::string names;
    for (const std::string& n : excluded) names += (names.empty() ? "" : ", ") + fmt::format("\"{}\"", n);
    lines += fmt::format("warn: some health checks cannot be excluded: no matches for {}\n", names);
  }
  // Go's http.Error ends the text with a newline.
  if (failed) return text(500, fmt::format("{}{} check failed\n", lines, endpoint));
  if (!req.param("verbose")) return text(200, "ok");
  return text(200, fmt::format("{}{} check passed\n", lines, endpoint));
}

Response single_health_response(const HealthResult& result) {
  if (result.failure) return text(500, fmt::format("internal server error: {}\n", *result.failure));
  return text(200, "ok");
}

}  // namespace podwarp::apiserver
