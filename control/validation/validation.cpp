#include "validation/validation.h"

#include <array>
#include <set>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"

namespace podwarp::validation {

namespace {

const KindRules* find_rules(const api::Resource& r) {
  for (auto table : {core_kinds(), apps_kinds(), batch_kinds(), networking_kinds(), policy_kinds(),
                     discovery_kinds(), coordination_kinds(), autoscaling_kinds(), rbac_kinds(),
                     scheduling_kinds(), storage_kinds()}) {
    for (const KindRules& k : table) {
      if (k.group == r.group && k.kind == r.kind) return &k;
    }
  }
  return nullptr;
}

// The scale subresource body is validated on its own; the parent object gets the generic checks.
bool is_scale(const api::Resource& r) { return r.group == "autoscaling" && r.kind == "Scale"; }

Errors not_an_object(const json::value& v) {
  return {invalid(Path::root(""), go_value(v), "must be a JSON object")};
}

// rest.BeforeCreate/BeforeUpdate's checks of metadata, run for every kind with a name rule that
// only excludes what cannot be a path segment.
Errors common_meta(const api::Resource& r, const json::object& o, const json::object* old) {
  const Path meta = Path().child("metadata");
  Errors errs =
      validate_object_meta(obj(o, "metadata"), r.namespaced, name_is_path_segment, meta, false);
  if (old) {
    add(errs, validate_object_meta_update(obj(o, "metadata"), obj(*old, "metadata"), meta, false));
  }
  return errs;
}

}  // namespace

void apply_defaults(const api::Resource& r, json::value& v) {
  json::object* o = v.if_object();
  if (o == nullptr) return;
  const KindRules* rules = find_rules(r);
  if (rules == nullptr || rules->defaults == nullptr) return;
  bool creating = str(obj(*o, "metadata"), "resourceVersion").empty();
  rules->defaults(*o, creating);
}

std::vector<Cause> validate(const api::Resource& r, const json::value& v, const json::value* old) {
  const json::object* o = v.if_object();
  if (o == nullptr) return not_an_object(v);
  const json::object* old_o = old ? old->if_object() : nullptr;
  if (old && old_o == nullptr) return not_an_object(*old);
  const KindRules* rules = find_rules(r);
  if (is_scale(r)) return rules->validate(r, *o, old_o);
  if (old_o == nullptr) {
    // Kind rules first; the generic metadata checks only when those pass (BeforeCreate).
    Errors errs = rules ? rules->validate(r, *o, nullptr)
                        : object_meta(*o, r.namespaced, name_is_dns_subdomain);
    if (errs.empty()) errs = common_meta(r, *o, nullptr);
    return errs;
  }
  Errors errs = common_meta(r, *o, old_o);
  add(errs, rules ? rules->validate(r, *o, old_o) : object_meta_update(*o, *old_o));
  return errs;
}

namespace {
// A subresource write: both must be objects; the common metadata checks, then `check`'s.
template <class Check>
std::vector<Cause> validate_subresource(const api::Resource& r, const json::value& v,
                                        const json::value& old, Check check) {
  const json::object* o = v.if_object();
  const json::object* old_o = old.if_object();
  if (o == nullptr) return not_an_object(v);
  if (old_o == nullptr) return not_an_object(old);
  Errors errs = common_meta(r, *o, old_o);
  add(errs, check(*o, *old_o));
  return errs;
}
}  // namespace

std::vector<Cause> validate_status(const api::Resource& r, const json::value& v,
                                   const json::value& old) {
  return validate_subresource(r, v, old, [&r](const json::object& o, const json::object& old_o) {
    const KindRules* rules = find_rules(r);
    return rules && rules->validate_status ? rules->validate_status(r, o, old_o)
                                           : object_meta_update(o, old_o);
  });
}

std::vector<Cause> validate_ephemeral_containers(const api::Resource& r, const json::value& v,
                                                 const json::value& old) {
  return validate_subresource(r, v, old, pod_ephemeral_containers_update);
}

const api::Resource& scale_resource() {
  static const api::Resource kScale = [] {
    api::Resource r;
    r.group = "autoscaling";
    r.version = "v1";
    r.kind = "Scale";
    r.plural = "scale";
    r.singular = "scale";
    r.namespaced = true;
    return r;
  }();
  return kScale;
}

std::string invalid_message(const api::Resource& r, std::string_view name,
                            const std::vector<Cause>& causes) {
  std::string out(r.kind);
  if (!r.group.empty()) {
    out += '.';
    out += r.group;
  }
  out += ' ';
  out += q(name);
  out += " is invalid";
  std::vector<std::string> msgs;
  std::set<std::string> seen;
  for (const Cause& c : causes) {
    std::string m = c.field + ": " + c.message;
    if (seen.insert(m).second) msgs.push_back(std::move(m));
  }
  if (msgs.empty()) return out;
  out += ": ";
  if (msgs.size() == 1) return out + msgs[0];
  out += '[';
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    if (i > 0) out += ", ";
    out += msgs[i];
  }
  out += ']';
  return out;
}

}  // namespace podwarp::validation
