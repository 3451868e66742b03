// JSON helpers over Boost.JSON, the object model of podwarp.
//
// API objects are kept as boost::json::value throughout: fields podwarp does not know are
// carried unchanged from a request to etcd and back (round-trip of unknown fields). These
// helpers read and write the few fields each component needs without copying the rest.
// All functions are pure and safe to call from any thread on distinct values.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <string>
#include <string_view>

namespace podwarp {

namespace json = boost::json;

// Follows a path of object keys; nullptr when any step is missing or not an object.
const json::value* find_path(const json::value& v, std::initializer_list<std::string_view> path);
json::value* find_path(json::value& v, std::initializer_list<std::string_view> path);

// Typed reads with a fallback when the field is absent or of another type. get_int reads a
// double truncated toward zero, saturated to the int64 range.
std::string_view get_string(const json::value& v, std::initializer_list<std::string_view> path,
                            std::string_view fallback = {});
std::int64_t get_int(const json::value& v, std::initializer_list<std::string_view> path,
                     std::int64_t fallback = 0);
bool get_bool(const json::value& v, std::initializer_list<std::string_view> path,
              bool fallback = false);

// Returns obj[key] as an object, creating it (or replacing a non-object) when needed.
json::object& ensure_object(json::object& obj, std::string_view key);

// Parses a JSON text with a depth limit; the error is a message suitable for a 400 Status.
// Numbers beyond the range of a double (1e999) are an error, as in Go, rather than infinities.
std::expected<json::value, std::string> parse_json(std::string_view text, int max_depth = 64);

// Compact serialization.
std::string to_json(const json::value& v);

}  // namespace podwarp
