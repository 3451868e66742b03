#include "podwarp/json.h"

#include <cmath>
#include <limits>

namespace podwarp {

const json::value* find_path(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    const json::object* obj = cur->if_object();
    if (obj == nullptr) return nullptr;
    auto it = obj->find(key);
    if (it == obj->end()) return nullptr;
    cur = &it->value();
  }
  return cur;
}

json::value* find_path(json::value& v, std::initializer_list<std::string_view> path) {
  return const_cast<json::value*>(find_path(static_cast<const json::value&>(v), path));
}

std::string_view get_string(const json::value& v, std::initializer_list<std::string_view> path,
                            std::string_view fallback) {
  const json::value* f = find_path(v, path);
  if (f == nullptr || !f->is_string()) return fallback;
  const json::string& s = f->get_string();
  return {s.data(), s.size()};
}

std::int64_t get_int(const json::value& v, std::initializer_list<std::string_view> path,
                     std::int64_t fallback) {
  const json::value* f = find_path(v, path);
  if (f == nullptr) return fallback;
  if (f->is_int64()) return f->get_int64();
  if (f->is_uint64()) return static_cast<std::int64_t>(f->get_uint64());
  if (f->is_double()) {
    // Truncated toward zero and saturated: a double outside the int64 range (1e300 in a
    // request body) cannot be converted (undefined behavior).
    const double d = f->get_double();
    if (std::isnan(d)) return fallback;
    if (d >= 0x1p63) return std::numeric_limits<std::int64_t>::max();
    if (d < -0x1p63) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(d);
  }
  return fallback;
}

bool get_bool(const json::value& v, std::initializer_list<std::string_view> path, bool fallback) {
  const json::value* f = find_path(v, path);
  if (f == nullptr || !f->is_bool()) return fallback;
  return f->get_bool();
}

json::object& ensure_object(json::object& obj, std::string_view key) {
  json::value& slot = obj[key];
  if (!slot.is_object()) slot = json::object();
  return slot.get_object();
}

namespace {

// Boost.JSON reads a number beyond the range of a double (1e999, or 400 digits) as an infinity,
// and writes that back as "Infinity", which is not JSON: an object holding one was stored as
// text that does not parse back. Go's decoder refuses such numbers. (Recursion is bounded by
// the parse's max_depth.)
bool all_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      for (const json::value& e : v.get_array()) {
        if (!all_finite(e)) return false;
      }
      return true;
    case json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (!all_finite(kv.value())) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

std::expected<json::value, std::string> parse_json(std::string_view text, int max_depth) {
  json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return std::unexpected(ec.message());
  if (!all_finite(v)) return std::unexpected("a number is out of the range of a float64");
  return v;
}

std::string to_json(const json::value& v) { return json::serialize(v); }

}  // namespace podwarp
