#include "validation/metadata.h"

#include <algorithm>
#include <set>

#include "validation/json_fields.h"

namespace podwarp::validation {

namespace {

constexpr std::int64_t kTotalAnnotationSizeLimit = 256 * 1024;

bool is_standard_finalizer(std::string_view f) {
  return f == "kubernetes" || f == "orphan" || f == "foregroundDeletion";
}

Errors validate_owner_references(const json::value* refs, const Path& p) {
  Errors errs;
  const json::array* a = arr(refs);
  if (a == nullptr) return errs;
  std::string first_controller;
  for (const auto& v : *a) {
    const json::object* ref = v.if_object();
    std::string_view api_version = str(ref, "apiVersion");
    std::string_view version = api_version.substr(
        api_version.find('/') == std::string_view::npos ? 0 : api_version.find('/') + 1);
    if (version.empty()) {
      errs.push_back(invalid_str(p.child("apiVersion"), api_version, "version must not be empty"));
    }
    if (str(ref, "kind").empty()) {
      errs.push_back(invalid_str(p.child("kind"), str(ref, "kind"), "must not be empty"));
    }
    if (str(ref, "name").empty()) {
      errs.push_back(invalid_str(p.child("name"), str(ref, "name"), "must not be empty"));
    }
    if (str(ref, "uid").empty()) {
      errs.push_back(invalid_str(p.child("uid"), str(ref, "uid"), "must not be empty"));
    }
    if (api_version == "v1" && str(ref, "kind") == "Event") {
      errs.push_back(invalid(p, go_value(v), "/v1, Kind=Event is disallowed from being an owner"));
    }
    if (boolean(ref, "controller")) {
      std::string name = std::string(str(ref, "kind")) + "/" + std::string(str(ref, "name"));
      if (!first_controller.empty()) {
        errs.push_back(invalid(p, go_value(*refs),
                               "Only one reference can have Controller set to true. Found \"true\" "
                               "in references for " +
                                   first_controller + " and " + name));
      } else {
        first_controller = name;
      }
    }
  }
  return errs;
}

Errors validate_finalizers(const json::value* finalizers, const Path& p) {
  Errors errs;
  const json::array* a = arr(finalizers);
  if (a == nullptr) return errs;
  bool orphan = false, foreground = false;
  for (const auto& v : *a) {
    std::string_view f = str(&v);
    add(errs, qualified_name(p, f));
    orphan |= f == "orphan";
    foreground |= f == "foregroundDeletion";
  }
  if (orphan && foreground) {
    errs.push_back(invalid(p, go_string_slice(finalizers),
                           "finalizer orphan and foregroundDeletion cannot be both set"));
  }
  return errs;
}

void kube_finalizers(Errors& errs, const json::value* finalizers, const Path& p) {
  const json::array* a = arr(finalizers);
  if (a == nullptr) return;
  for (std::size_t i = 0; i < a->size(); ++i) {
    add(errs, validate_kube_finalizer_name(str(&(*a)[i]), p.index(i)));
  }
}

json::value normalized(const json::value& v) {
  if (const json::object* o = v.if_object()) {
    json::object out;
    for (const auto& e : *o) {
      const json::value& x = e.value();
      if (x.is_null()) continue;
      if (x.is_array() && x.get_array().empty()) continue;
      if (x.is_object() && x.get_object().empty()) continue;
      out[e.key()] = normalized(x);
    }
    return out;
  }
  if (const json::array* a = v.if_array()) {
    json::array out;
    for (const auto& x : *a) out.push_back(normalized(x));
    return out;
  }
  return v;
}

bool empty_value(const json::value* v) {
  return v == nullptr || v->is_null() || (v->is_array() && v->get_array().empty()) ||
         (v->is_object() && v->get_object().empty());
}

}  // namespace

Errors validate_label_name(std::string_view key, const Path& p) { return qualified_name(p, key); }

Errors validate_labels(const json::value* labels, const Path& p) {
  Errors errs;
  const json::object* o = obj(labels);
  if (o == nullptr) return errs;
  for (const auto& e : *o) {
    add(errs, validate_label_name(e.key(), p));
    std::string_view value = str(&e.value());
    for (auto& m : is_label_value(value)) errs.push_back(invalid_str(p, value, m));
  }
  return errs;
}

Errors validate_annotations(const json::value* annotations, const Path& p) {
  Errors errs;
  const json::object* o = obj(annotations);
  if (o == nullptr) return errs;
  std::int64_t total = 0;
  for (const auto& e : *o) {
    std::string key(e.key());
    std::string lower = key;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (auto& m : is_qualified_name(lower)) errs.push_back(invalid_str(p, key, m));
    total += static_cast<std::int64_t>(key.size() + str(&e.value()).size());
  }
  if (total > kTotalAnnotationSizeLimit) errs.push_back(too_long(p, kTotalAnnotationSizeLimit));
  return errs;
}

Errors validate_label_selector(const json::value* selector, const Path& p) {
  Errors errs;
  const json::object* s = obj(selector);
  if (s == nullptr) return errs;
  add(errs, validate_labels(field(*s, "matchLabels"), p.child("matchLabels")));
  const json::array* exprs = arr(*s, "matchExpressions");
  for (std::size_t i = 0; exprs && i < exprs->size(); ++i) {
    const json::object* e = (*exprs)[i].if_object();
    Path ep = p.child("matchExpressions").index(i);
    std::string_view op = str(e, "operator");
    const json::array* values = arr(e, "values");
    if (op == "In" || op == "NotIn") {
      if (size_of(values) == 0) {
        errs.push_back(
            required(ep.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"));
      }
    } else if (op == "Exists" || op == "DoesNotExist") {
      if (size_of(values) > 0) {
        errs.push_back(forbidden(ep.child("values"),
                                 "may not be specified when `operator` is 'Exists' or "
                                 "'DoesNotExist'"));
      }
    } else {
      errs.push_back(invalid_str(ep.child("operator"), op, "not a valid selector operator"));
    }
    add(errs, validate_label_name(str(e, "key"), ep.child("key")));
    for (std::size_t j = 0; values && j < values->size(); ++j) {
      std::string_view v = str(&(*values)[j]);
      for (auto& m : is_label_value(v)) {
        errs.push_back(invalid_str(ep.child("values").index(j), v, m));
      }
    }
  }
  return errs;
}

Errors validate_kube_finalizer_name(std::string_view name, const Path& p) {
  Errors errs;
  if (name.find('/') == std::string_view::npos && !is_standard_finalizer(name)) {
    errs.push_back(invalid_str(
        p, name, "name is neither a standard finalizer name nor is it fully qualified"));
  }
  return errs;
}

Errors validate_finalizer_name(std::string_view name, const Path& p) {
  Errors errs = qualified_name(p, name);
  add(errs, validate_kube_finalizer_name(name, p));
  return errs;
}

Errors validate_object_meta(const json::object* meta, bool namespaced, NameFn name_fn,
                            const Path& p, bool core_finalizers) {
  Errors errs;
  std::string_view generate_name = str(meta, "generateName");
  std::string_view name = str(meta, "name");
  if (!generate_name.empty()) {
    for (auto& m : name_fn(generate_name, true)) {
      errs.push_back(invalid_str(p.child("generateName"), generate_name, m));
    }
  }
  if (name.empty()) {
    errs.push_back(required(p.child("name"), "name or generateName is required"));
  } else {
    for (auto& m : name_fn(name, false)) errs.push_back(invalid_str(p.child("name"), name, m));
  }
  std::string_view ns = str(meta, "namespace");
  if (namespaced) {
    if (ns.empty()) {
      errs.push_back(required(p.child("namespace")));
    } else {
      for (auto& m : name_is_dns_label(ns, false)) {
        errs.push_back(invalid_str(p.child("namespace"), ns, m));
      }
    }
  } else if (!ns.empty()) {
    errs.push_back(forbidden(p.child("namespace"), "not allowed on this type"));
  }
  if (auto g = integer(meta, "generation"); g && *g < 0) {
    errs.push_back(invalid_int(p.child("generation"), *g, kIsNegative));
  }
  add(errs, validate_labels(field(meta, "labels"), p.child("labels")));
  add(errs, validate_annotations(field(meta, "annotations"), p.child("annotations")));
  add(errs, validate_owner_references(field(meta, "ownerReferences"), p.child("ownerReferences")));
  add(errs, validate_finalizers(field(meta, "finalizers"), p.child("finalizers")));
  if (core_finalizers) kube_finalizers(errs, field(meta, "finalizers"), p.child("finalizers"));
  return errs;
}

Errors validate_object_meta_update(const json::object* meta, const json::object* old_meta,
                                   const Path& p, bool core_finalizers) {
  Errors errs;
  if (field(old_meta, "deletionTimestamp") != nullptr) {
    std::set<std::string_view> old_set;
    if (const json::array* a = arr(old_meta, "finalizers")) {
      for (const auto& v : *a) old_set.insert(str(&v));
    }
    std::vector<std::string_view> extra;
    if (const json::array* a = arr(meta, "finalizers")) {
      for (const auto& v : *a) {
        if (!old_set.contains(str(&v))) extra.push_back(str(&v));
      }
    }
    std::sort(extra.begin(), extra.end());
    extra.erase(std::unique(extra.begin(), extra.end()), extra.end());
    if (!extra.empty()) {
      std::string list = "[]string{";
      for (std::size_t i = 0; i < extra.size(); ++i) {
        if (i > 0) list += ", ";
        list += q(extra[i]);
      }
      list += "}";
      errs.push_back(forbidden(
          p.child("finalizers"),
          "no new finalizers can be added if the object is being deleted, found new finalizers " +
              list));
    }
  }
  if (str(meta, "resourceVersion").empty()) {
    errs.push_back(invalid_str(p.child("resourceVersion"), "", "must be specified for an update"));
  }
  auto gen = integer(meta, "generation").value_or(0);
  if (gen < integer(old_meta, "generation").value_or(0)) {
    errs.push_back(invalid_int(p.child("generation"), gen, "must not be decremented"));
  }
  for (std::string_view f : {"name", "namespace", "uid"}) {
    if (str(meta, f) != str(old_meta, f)) {
      errs.push_back(invalid_str(p.child(f), str(meta, f), kFieldImmutable));
    }
  }
  for (std::string_view f : {"creationTimestamp", "deletionTimestamp"}) {
    if (!semantic_equal(field(meta, f), field(old_meta, f))) {
      const json::value* v = field(meta, f);
      std::string shown = f == "deletionTimestamp" && v == nullptr ? "null" : go_time(v);
      errs.push_back(invalid(p.child(f), shown, kFieldImmutable));
    }
  }
  if (integer(meta, "deletionGracePeriodSeconds") !=
      integer(old_meta, "deletionGracePeriodSeconds")) {
    auto v = integer(meta, "deletionGracePeriodSeconds");
    errs.push_back(
        invalid(p.child("deletionGracePeriodSeconds"), v ? num(*v) : "null", kFieldImmutable));
  }
  add(errs, validate_labels(field(meta, "labels"), p.child("labels")));
  add(errs, validate_annotations(field(meta, "annotations"), p.child("annotations")));
  add(errs, validate_owner_references(field(meta, "ownerReferences"), p.child("ownerReferences")));
  if (core_finalizers) kube_finalizers(errs, field(meta, "finalizers"), p.child("finalizers"));
  return errs;
}

Errors object_meta(const json::object& o, bool namespaced, NameFn name_fn) {
  return validate_object_meta(obj(o, "metadata"), namespaced, name_fn, Path().child("metadata"));
}

Errors object_meta_update(const json::object& o, const json::object& old) {
  return validate_object_meta_update(obj(o, "metadata"), obj(old, "metadata"),
                                     Path().child("metadata"));
}

std::optional<Selector> as_selector(const json::value* selector) {
  Selector s;
  if (obj(selector) == nullptr) return s;  // nothing
  auto parsed = LabelSelector::from_json(*selector);
  if (!parsed) return std::nullopt;
  s.nothing = false;
  s.selector = std::move(*parsed);
  return s;
}

bool Selector::matches(const json::value* labels) const {
  return !nothing && selector.matches(obj(labels));
}

bool semantic_equal(const json::value* a, const json::value* b) {
  if (empty_value(a) || empty_value(b)) return empty_value(a) && empty_value(b);
  return normalized(*a) == normalized(*b);
}

void check_immutable(Errors& errs, const json::value* new_v, const json::value* old_v,
                     const Path& p, std::string_view shown) {
  if (!semantic_equal(new_v, old_v)) errs.push_back(invalid(p, shown, kFieldImmutable));
}

std::string go_time(const json::value* t) {
  std::string_view s = str(t);
  if (s.empty()) return "0001-01-01 00:00:00 +0000 UTC";
  // RFC 3339 "2024-01-02T03:04:05Z" (metav1.Time is always UTC, second precision).
  if (s.size() >= 20 && s[10] == 'T' && s.back() == 'Z') {
    return std::string(s.substr(0, 10)) + " " + std::string(s.substr(11, s.size() - 12)) +
           " +0000 UTC";
  }
  return std::string(s);
}

}  // namespace podwarp::validation
