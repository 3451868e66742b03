// Schema-driven checks of decoded JSON: unknown fields (Strict field validation) and JSON type
// mismatches. Both walk a value alongside its Type and never consult the global model, so the
// model builder may use them on defaults while it is being built.
#include <fmt/format.h>

#include <cstdint>
#include <limits>

#include "schema/schema.h"

namespace podwarp::schema {
namespace {

void walk_unknown(const Type& type, const json::value& value, std::string& path,
                  std::vector<std::string>& out, bool root) {
  switch (type.kind) {
    case TypeKind::kStruct: {
      if (!value.is_object()) return;
      for (const auto& [key, child] : value.get_object()) {
        const Field* f = type.find_field(key);
        if (f == nullptr && root && (key == "apiVersion" || key == "kind")) continue;
        size_t mark = path.size();
        if (!path.empty()) path += '.';
        path.append(key.data(), key.size());
        if (f == nullptr) {
          out.push_back(path);
        } else {
          walk_unknown(*f->type, child, path, out, false);
        }
        path.resize(mark);
      }
      return;
    }
    case TypeKind::kArray: {
      if (!value.is_array()) return;
      const json::array& items = value.get_array();
      for (size_t i = 0; i < items.size(); ++i) {
        size_t mark = path.size();
        path += '[';
        path += std::to_string(i);
        path += ']';
        walk_unknown(*type.items, items[i], path, out, false);
        path.resize(mark);
      }
      return;
    }
    case TypeKind::kMap: {
      // Only maps of structs, lists or maps can hide unknown fields.
      TypeKind inner = type.items->kind;
      if (!value.is_object()) return;
      if (inner != TypeKind::kStruct && inner != TypeKind::kArray && inner != TypeKind::kMap) {
        return;
      }
      for (const auto& [key, child] : value.get_object()) {
        size_t mark = path.size();
        if (!path.empty()) path += '.';
        path.append(key.data(), key.size());
        walk_unknown(*type.items, child, path, out, false);
        path.resize(mark);
      }
      return;
    }
    default:
      return;
  }
}

// How Go's encoding/json names the JSON side of a mismatch.
std::string json_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return "string";
    case json::kind::bool_:
      return "bool";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
    case json::kind::null:
      return "null";
    default:
      return "number";
  }
}

struct TypeCheck {
  std::vector<std::string>& out;

  // `owner` is the short name of the struct holding the field; `path` the dotted field path
  // from the root without list indices, as Go's UnmarshalTypeError spells them.
  void report(const Type& type, std::string_view owner, std::string_view path,
              const std::string& what) {
    std::string msg = "json: cannot unmarshal " + what + " into Go ";
    if (owner.empty()) {
      msg += "value";
    } else {
      msg += "struct field ";
      msg += owner;
      msg += '.';
      msg += path;
    }
    msg += " of type " + type.go_name();
    out.push_back(std::move(msg));
  }

  // Accepts integers in range; rejects fractions ("number 1.5") and overflow ("number 1e10").
  bool integer_fits(const json::value& v, bool int32, std::string& what) {
    std::int64_t lo =
        int32 ? std::numeric_limits<std::int32_t>::min() : std::numeric_limits<std::int64_t>::min();
    std::int64_t hi =
        int32 ? std::numeric_limits<std::int32_t>::max() : std::numeric_limits<std::int64_t>::max();
    if (v.is_int64()) {
      std::int64_t n = v.get_int64();
      if (n >= lo && n <= hi) return true;
      what = "number " + std::to_string(n);
      return false;
    }
    if (v.is_uint64()) {
      what = "number " + std::to_string(v.get_uint64());
      return false;
    }
    if (v.is_double()) {
      what = fmt::format("number {}", v.get_double());
      return false;
    }
    what = json_kind(v);
    return false;
  }

  void walk(const Type& type, const json::value& v, std::string_view owner,
            const std::string& path) {
    if (v.is_null()) return;
    std::string what;
    switch (type.kind) {
      case TypeKind::kString:
        if (!v.is_string()) report(type, owner, path, json_kind(v));
        return;
      case TypeKind::kInteger:
        if (!integer_fits(v, type.format == "int32", what)) report(type, owner, path, what);
        return;
      case TypeKind::kNumber:
        if (!v.is_number()) report(type, owner, path, json_kind(v));
        return;
      case TypeKind::kBoolean:
        if (!v.is_bool()) report(type, owner, path, json_kind(v));
        return;
      case TypeKind::kIntOrString:
        if (!v.is_string() && !integer_fits(v, true, what)) report(type, owner, path, what);
        return;
      case TypeKind::kQuantity:
        if (!v.is_string() && !v.is_number()) report(type, owner, path, json_kind(v));
        return;
      case TypeKind::kFreeForm:
        return;
      case TypeKind::kStruct: {
        if (!v.is_object()) {
          report(type, owner, path, json_kind(v));
          return;
        }
        std::string owner_name = type.short_name();
        for (const auto& [key, child] : v.get_object()) {
          const Field* f = type.find_field(key);
          if (f == nullptr) continue;
          std::string child_path = path.empty() ? std::string(key) : path + "." + std::string(key);
          walk(*f->type, child, owner_name, child_path);
        }
        return;
      }
      case TypeKind::kArray:
        if (!v.is_array()) {
          report(type, owner, path, json_kind(v));
          return;
        }
        for (const json::value& item : v.get_array()) walk(*type.items, item, owner, path);
        return;
      case TypeKind::kMap:
        if (!v.is_object()) {
          report(type, owner, path, json_kind(v));
          return;
        }
        for (const auto& [key, child] : v.get_object()) walk(*type.items, child, owner, path);
        return;
    }
  }
};

}  // namespace

std::vector<std::string> unknown_fields(const Type& type, const json::value& value) {
  std::vector<std::string> out;
  std::string path;
  walk_unknown(type, value, path, out, true);
  return out;
}

std::vector<std::string> type_errors(const Type& type, const json::value& value) {
  std::vector<std::string> out;
  TypeCheck{out}.walk(type, value, {}, {});
  return out;
}

}  // namespace podwarp::schema
