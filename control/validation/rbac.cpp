// rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.
// Upstream: pkg/apis/rbac/validation/validation.go and pkg/apis/rbac/v1/defaults.go. Names are
// path segments (ValidateRBACName), rules need verbs and either resources with API groups or
// (cluster roles only) non-resource URLs, bindings refer to a role of this group, and a binding's
// roleRef never changes.
#include <array>
#include <string>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"

namespace podwarp::validation {

namespace {

constexpr std::string_view kGroup = "rbac.authorization.k8s.io";

Errors meta(const json::object& o, const json::object* old, bool namespaced) {
  return old ? object_meta_update(o, *old) : object_meta(o, namespaced, name_is_path_segment);
}

// ValidatePolicyRule.
void policy_rule(Errors& errs, const json::value& rule, bool namespaced, const Path& p) {
  const json::object* r = rule.if_object();
  if (size_of(arr(r, "verbs")) == 0) {
    errs.push_back(required(p.child("verbs"), "verbs must contain at least one value"));
  }
  if (const json::array* urls = arr(r, "nonResourceURLs"); size_of(urls) > 0) {
    std::string shown = go_value(*field(r, "nonResourceURLs"));
    if (namespaced) {
      errs.push_back(invalid(p.child("nonResourceURLs"), shown,
                             "namespaced rules cannot apply to non-resource URLs"));
    }
    if (size_of(arr(r, "apiGroups")) > 0 || size_of(arr(r, "resources")) > 0 ||
        size_of(arr(r, "resourceNames")) > 0) {
      errs.push_back(invalid(p.child("nonResourceURLs"), shown,
                             "rules cannot apply to both regular resources and non-resource URLs"));
    }
    return;
  }
  if (size_of(arr(r, "apiGroups")) == 0) {
    errs.push_back(
        required(p.child("apiGroups"), "resource rules must supply at least one api group"));
  }
  if (size_of(arr(r, "resources")) == 0) {
    errs.push_back(
        required(p.child("resources"), "resource rules must supply at least one resource"));
  }
}

void rules(Errors& errs, const json::object& role, bool namespaced) {
  const Path p = Path().child("rules");
  if (const json::array* rs = arr(role, "rules")) {
    for (std::size_t i = 0; i < rs->size(); ++i) policy_rule(errs, (*rs)[i], namespaced, p.index(i));
  }
}

Errors role_validate(const api::Resource&, const json::object& role, const json::object* old) {
  Errors errs = meta(role, old, true);
  rules(errs, role, true);
  return errs;
}

Errors cluster_role_validate(const api::Resource&, const json::object& role,
                             const json::object* old) {
  Errors errs = meta(role, old, false);
  rules(errs, role, false);
  if (const json::object* agg = obj(role, "aggregationRule")) {
    const Path p = Path().child("aggregationRule").child("clusterRoleSelectors");
    const json::array* sels = arr(agg, "clusterRoleSelectors");
    if (size_of(sels) == 0) {
      errs.push_back(
          required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"));
    } else {
      for (std::size_t i = 0; i < sels->size(); ++i) {
        add(errs, validate_label_selector(&(*sels)[i], p.index(i)));
      }
    }
  }
  return errs;
}

// ValidateRoleBindingSubject.
void subject(Errors& errs, const json::value& v, bool namespaced, const Path& p) {
  const json::object* s = v.if_object();
  std::string_view name = str(s, "name");
  std::string_view kind = str(s, "kind");
  std::string_view group = str(s, "apiGroup");
  if (name.empty()) errs.push_back(required(p.child("name")));
  if (kind == "ServiceAccount") {
    if (!name.empty()) add(errs, name_with(name_is_dns_subdomain, p.child("name"), name));
    if (!group.empty()) errs.push_back(not_supported(p.child("apiGroup"), q(group), {""}));
    if (!namespaced && str(s, "namespace").empty()) errs.push_back(required(p.child("namespace")));
  } else if (kind == "User" || kind == "Group") {
    if (group != kGroup) errs.push_back(not_supported(p.child("apiGroup"), q(group), {kGroup}));
  } else {
    errs.push_back(not_supported(p.child("kind"), q(kind), {"ServiceAccount", "User", "Group"}));
  }
}

// RoleRef as upstream's error shows it (field order APIGroup, Kind, Name).
std::string role_ref_shown(const json::object* ref) {
  json::object o;
  o["apiGroup"] = str(ref, "apiGroup");
  o["kind"] = str(ref, "kind");
  o["name"] = str(ref, "name");
  return json::serialize(o);
}

Errors binding_validate(const json::object& b, const json::object* old, bool namespaced) {
  Errors errs = meta(b, old, namespaced);
  const json::object* ref = obj(b, "roleRef");
  const Path rp = Path().child("roleRef");
  if (std::string_view g = str(ref, "apiGroup"); g != kGroup) {
    errs.push_back(not_supported(rp.child("apiGroup"), q(g), {kGroup}));
  }
  std::string_view kind = str(ref, "kind");
  if (namespaced && kind != "Role" && kind != "ClusterRole") {
    errs.push_back(not_supported(rp.child("kind"), q(kind), {"Role", "ClusterRole"}));
  } else if (!namespaced && kind != "ClusterRole") {
    errs.push_back(not_supported(rp.child("kind"), q(kind), {"ClusterRole"}));
  }
  std::string_view name = str(ref, "name");
  if (name.empty()) {
    errs.push_back(required(rp.child("name")));
  } else {
    add(errs, name_with(name_is_path_segment, rp.child("name"), name));
  }
  if (const json::array* subjects = arr(b, "subjects")) {
    const Path sp = Path().child("subjects");
    for (std::size_t i = 0; i < subjects->size(); ++i) {
      subject(errs, (*subjects)[i], namespaced, sp.index(i));
    }
  }
  if (old) {
    const json::object* old_ref = obj(*old, "roleRef");
    if (str(ref, "apiGroup") != str(old_ref, "apiGroup") || kind != str(old_ref, "kind") ||
        name != str(old_ref, "name")) {
      errs.push_back(invalid(rp, role_ref_shown(ref), "cannot change roleRef"));
    }
  }
  return errs;
}

Errors role_binding_validate(const api::Resource&, const json::object& b, const json::object* old) {
  return binding_validate(b, old, true);
}

Errors cluster_role_binding_validate(const api::Resource&, const json::object& b,
                                     const json::object* old) {
  return binding_validate(b, old, false);
}

// SetDefaults_RoleBinding / _ClusterRoleBinding and SetDefaults_Subject.
void binding_defaults(json::object& b, bool) {
  if (json::object* ref = mobj(b, "roleRef"); ref && str(*ref, "apiGroup").empty()) {
    (*ref)["apiGroup"] = kGroup;
  }
  if (json::array* subjects = marr(b, "subjects")) {
    for (json::value& v : *subjects) {
      json::object* s = v.if_object();
      if (s == nullptr || !str(*s, "apiGroup").empty()) continue;
      std::string_view kind = str(*s, "kind");
      if (kind == "User" || kind == "Group") (*s)["apiGroup"] = kGroup;
    }
  }
}

constexpr std::array kRbacKinds = {
    KindRules{kGroup, "Role", nullptr, role_validate, nullptr},
    KindRules{kGroup, "ClusterRole", nullptr, cluster_role_validate, nullptr},
    KindRules{kGroup, "RoleBinding", binding_defaults, role_binding_validate, nullptr},
    KindRules{kGroup, "ClusterRoleBinding", binding_defaults, cluster_role_binding_validate, nullptr},
};

}  // namespace

std::span<const KindRules> rbac_kinds() { return kRbacKinds; }

}  // namespace podwarp::validation
