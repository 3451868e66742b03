// Small pure helpers over object metadata used by the REST handlers and kinds.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::apiserver {

std::string now_rfc3339();

json::object& metadata(json::value& obj);
std::string_view name_of(const json::value& obj);
std::string_view namespace_of(const json::value& obj);
std::string_view uid_of(const json::value& obj);
std::int64_t resource_version_of(const json::value& obj);  // 0 when absent or invalid

}  // namespace podwarp::apiserver
