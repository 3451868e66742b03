#include "apiserver/object_meta.h"

#include <fmt/format.h>

#include <charconv>

#include "podwarp/time.h"

namespace podwarp::apiserver {

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

json::object& metadata(json::value& obj) { return ensure_object(obj.as_object(), "metadata"); }

std::string_view name_of(const json::value& obj) { return get_string(obj, {"metadata", "name"}); }
std::string_view namespace_of(const json::value& obj) {
  return get_string(obj, {"metadata", "namespace"});
}
std::string_view uid_of(const json::value& obj) { return get_string(obj, {"metadata", "uid"}); }

std::int64_t resource_version_of(const json::value& obj) {
  std::string_view rv = get_string(obj, {"metadata", "resourceVersion"});
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), out);
  if (ec != std::errc() || p != rv.data() + rv.size()) return 0;
  return out;
}

}  // namespace podwarp::apiserver
