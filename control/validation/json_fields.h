// Field reads and writes on API objects as Go's decoder sees them: a JSON null is the same as an
// absent field (a nil pointer/map/slice), a field of the wrong JSON type reads as absent.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::validation {

inline const json::value* field(const json::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it == o.end() || it->value().is_null()) return nullptr;
  return &it->value();
}
inline const json::value* field(const json::object* o, std::string_view k) {
  return o ? field(*o, k) : nullptr;
}
inline const json::object* obj(const json::value* v) { return v ? v->if_object() : nullptr; }
inline const json::array* arr(const json::value* v) { return v ? v->if_array() : nullptr; }
inline const json::object* obj(const json::object* o, std::string_view k) {
  return obj(field(o, k));
}
inline const json::array* arr(const json::object* o, std::string_view k) {
  return arr(field(o, k));
}
inline const json::object* obj(const json::object& o, std::string_view k) {
  return obj(field(o, k));
}
inline const json::array* arr(const json::object& o, std::string_view k) {
  return arr(field(o, k));
}

inline const json::object& empty_object() {
  static const json::object o;
  return o;
}
inline const json::array& empty_array() {
  static const json::array a;
  return a;
}

inline std::string_view sv(const json::string& s) { return {s.data(), s.size()}; }
inline std::string_view str(const json::value* v) {
  return v && v->is_string() ? sv(v->get_string()) : std::string_view{};
}
inline std::string_view str(const json::object* o, std::string_view k) { return str(field(o, k)); }
inline std::string_view str(const json::object& o, std::string_view k) { return str(field(o, k)); }
inline bool is_str(const json::value* v) { return v && v->is_string(); }

inline std::optional<std::int64_t> integer(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) {
    auto u = v->get_uint64();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return INT64_MAX;
    return static_cast<std::int64_t>(u);
  }
  if (v->is_double()) {
    // Only whole numbers in the int64 range convert (others are undefined behavior to cast).
    double d = v->get_double();
    if (d >= -0x1p63 && d < 0x1p63 && d == static_cast<double>(static_cast<std::int64_t>(d)))
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}
inline std::optional<std::int64_t> integer(const json::object* o, std::string_view k) {
  return integer(field(o, k));
}
inline std::optional<std::int64_t> integer(const json::object& o, std::string_view k) {
  return integer(field(o, k));
}
inline bool boolean(const json::object* o, std::string_view k, bool fallback = false) {
  const json::value* v = field(o, k);
  return v && v->is_bool() ? v->get_bool() : fallback;
}
inline std::size_t size_of(const json::array* a) { return a ? a->size() : 0; }
inline std::size_t size_of(const json::object* o) { return o ? o->size() : 0; }

// Writable access.
//
// Beware: inserting a key into a json::object may rehash it, which moves every value stored
// directly in it; references to those values (and views of their short strings) dangle.
// json::object::operator[] reserves room before looking the key up, so it can rehash even when
// the key exists: use slot(), which only inserts when the key is missing, and do not hold a
// reference to a child across an insertion into its parent.
inline json::value& slot(json::object& o, std::string_view k) {
  auto it = o.find(k);
  if (it != o.end()) return it->value();
  return o.emplace(k, nullptr).first->value();
}
// ensure_* replace a null or mistyped value.
inline json::object& ensure_obj(json::object& o, std::string_view k) {
  json::value& v = slot(o, k);
  if (!v.is_object()) v = json::object();
  return v.get_object();
}
inline json::array& ensure_arr(json::object& o, std::string_view k) {
  json::value& v = slot(o, k);
  if (!v.is_array()) v = json::array();
  return v.get_array();
}
inline json::object* mobj(json::object& o, std::string_view k) {
  auto it = o.find(k);
  return it == o.end() ? nullptr : it->value().if_object();
}
inline json::array* marr(json::object& o, std::string_view k) {
  auto it = o.find(k);
  return it == o.end() ? nullptr : it->value().if_array();
}
// True when k is absent, null, or an empty string (Go's zero value of a string field).
inline bool unset(const json::object& o, std::string_view k) {
  const json::value* v = field(o, k);
  return v == nullptr || (v->is_string() && v->get_string().empty());
}
inline void set_default(json::object& o, std::string_view k, json::value v) {
  if (unset(o, k)) slot(o, k) = std::move(v);
}
// Gives each of `fields` in `into` its value in `from`, erasing it where `from` has none (absent
// or null). `from` must not be (inside) `into`.
inline void copy_fields(json::object& into, const json::object* from,
                        std::initializer_list<std::string_view> fields) {
  for (std::string_view f : fields) {
    into.erase(f);
    if (const json::value* v = field(from, f)) slot(into, f) = *v;
  }
}

}  // namespace podwarp::validation
