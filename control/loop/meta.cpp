#include "loop/meta.h"

namespace podwarp::loop::meta {

std::string_view name_of(const json::value& obj) { return get_string(obj, {"metadata", "name"}); }

std::string_view namespace_of(const json::value& obj) {
  return get_string(obj, {"metadata", "namespace"});
}

std::string_view uid_of(const json::value& obj) { return get_string(obj, {"metadata", "uid"}); }

bool being_deleted(const json::value& obj) {
  const json::value* d = find_path(obj, {"metadata", "deletionTimestamp"});
  return d != nullptr && !d->is_null();
}

const json::object* labels_of(const json::value& obj) {
  const json::value* l = find_path(obj, {"metadata", "labels"});
  return l != nullptr && l->is_object() ? &l->get_object() : nullptr;
}

std::pair<std::string, std::string> split_key(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return {std::string(), std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace podwarp::loop::meta
