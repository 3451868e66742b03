#include "tables/timestamps.h"

#include <string_view>

namespace podwarp::tables::detail {

std::optional<Clock::time_point> timestamp(const json::value* field) {
  if (field == nullptr || !field->is_string()) return std::nullopt;
  const json::string& s = field->get_string();
  auto t = parse_rfc3339(std::string_view(s.data(), s.size()));
  if (!t) return std::nullopt;
  return *t;
}

std::string human_duration_between(Clock::time_point from, Clock::time_point to) {
  return human_duration(std::chrono::duration_cast<std::chrono::seconds>(to - from));
}

std::string since(const json::value* field, Clock::time_point now) {
  auto t = timestamp(field);
  if (!t) return "<unknown>";
  return human_duration_between(*t, now);
}

}  // namespace podwarp::tables::detail
