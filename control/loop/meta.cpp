#include "loop/meta.h"

#include <algorithm>

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

bool has_finalizer(const json::value& obj, std::string_view finalizer) {
  const json::value* f = find_path(obj, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return false;
  for (const json::value& v : f->get_array()) {
    if (v.is_string() && v.get_string() == finalizer) return true;
  }
  return false;
}

json::value without_finalizer(const json::value& obj, std::string_view finalizer) {
  json::value next = obj;
  if (json::value* f = find_path(next, {"metadata", "finalizers"}); f && f->is_array()) {
    json::array& a = f->as_array();
    a.erase(std::remove_if(a.begin(), a.end(),
                           [&](const json::value& v) {
                             return v.is_string() && v.get_string() == finalizer;
                           }),
            a.end());
  }
  return next;
}

std::string_view pinned_node(const json::value& pv) {
  const json::value* terms =
      find_path(pv, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array() || terms->get_array().size() != 1) return {};
  const json::value* exprs = find_path(terms->get_array()[0], {"matchExpressions"});
  if (exprs == nullptr || !exprs->is_array() || exprs->get_array().size() != 1) return {};
  const json::value& e = exprs->get_array()[0];
  const json::value* values = find_path(e, {"values"});
  if (get_string(e, {"key"}) != "kubernetes.io/hostname" || get_string(e, {"operator"}) != "In" ||
      values == nullptr || !values->is_array() || values->get_array().size() != 1 ||
      !values->get_array()[0].is_string()) {
    return {};
  }
  return values->get_array()[0].get_string();
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
