#include "podwarp/json.h"

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
  if (f->is_double()) return static_cast<std::int64_t>(f->get_double());
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

std::expected<json::value, std::string> parse_json(std::string_view text, int max_depth) {
  json::parse_options opts;
  opts.max_depth = static_cast<std::size_t>(max_depth);
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec) return std::unexpected(ec.message());
  return v;
}

std::string to_json(const json::value& v) { return json::serialize(v); }

}  // namespace podwarp
