// apps/v1: Deployment, ReplicaSet, DaemonSet, StatefulSet.
// Upstream: pkg/apis/apps/validation/validation.go and pkg/apis/apps/v1/defaults.go.
#include <array>
#include <set>
#include <string>

#include "validation/int_or_percent.h"
#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"
#include "validation/podspec.h"

namespace podwarp::validation {

namespace {

const Path kSpec = Path().child("spec");
const Path kStatus = Path().child("status");

void default_template(json::object& spec) { default_pod_template(ensure_obj(spec, "template")); }

// ---------------------------------------------------------------------------------------------
// Shared by the kinds.

// spec.selector: present, valid and not empty (Deployment, ReplicaSet, StatefulSet).
void selector_required(Errors& errs, const json::object* spec, std::string_view kind) {
  const json::value* sel = field(spec, "selector");
  Path sp = kSpec.child("selector");
  if (sel == nullptr) {
    errs.push_back(required(sp));
    return;
  }
  add(errs, validate_label_selector(sel, sp));
  const json::object* so = obj(sel);
  if (size_of(obj(so, "matchLabels")) + size_of(arr(so, "matchExpressions")) == 0) {
    errs.push_back(
        invalid(sp, go_label_selector(sel), "empty selector is invalid for " + std::string(kind)));
  }
}

// The pod template of a controller: restartPolicy Always, no activeDeadlineSeconds.
void controller_pod_template(Errors& errs, const json::object* tmpl, const Path& tp,
                             std::string_view kind) {
  const json::object* pspec = obj(tmpl, "spec");
  std::string_view restart = str(pspec, "restartPolicy");
  if (restart != "Always") {
    errs.push_back(not_supported(tp.child("spec", "restartPolicy"), q(restart), {"Always"}));
  }
  if (field(pspec, "activeDeadlineSeconds")) {
    errs.push_back(
        forbidden(tp.child("spec", "activeDeadlineSeconds"),
                  "activeDeadlineSeconds in " + std::string(kind) + " is not Supported"));
  }
}

// ValidatePodTemplateSpecForReplicaSet (Deployment, ReplicaSet).
void template_for_replica_set(Errors& errs, const json::object* spec) {
  const json::value* sel = field(spec, "selector");
  auto selector = as_selector(sel);
  Path sp = kSpec.child("selector");
  if (!selector) {
    errs.push_back(invalid(sp, go_label_selector(sel), "invalid label selector"));
    return;
  }
  const json::object* tmpl = obj(spec, "template");
  Path tp = kSpec.child("template");
  const json::value* labels = field(obj(tmpl, "metadata"), "labels");
  if (!selector->empty() && !selector->matches(labels)) {
    errs.push_back(invalid(tp.child("metadata", "labels"), go_string_map(labels),
                           "`selector` does not match template `labels`"));
  }
  add(errs, validate_pod_template_spec(tmpl, tp));
  controller_pod_template(errs, tmpl, tp, "ReplicaSet");
}

// On update: spec.selector may not change.
void immutable_selector(Errors& errs, const json::object* spec, const json::object& old) {
  const json::value* sel = field(spec, "selector");
  check_immutable(errs, sel, field(obj(old, "spec"), "selector"), kSpec.child("selector"),
                  go_label_selector(sel));
}

// Create and update of Deployments and ReplicaSets: metadata, then the spec, then (on update) the
// immutable selector.
Errors replicated_validate(const json::object& o, const json::object* old,
                           Errors (*spec_errors)(const json::object* spec)) {
  const json::object* spec = obj(o, "spec");
  Errors errs =
      old == nullptr ? object_meta(o, true, name_is_dns_subdomain) : object_meta_update(o, *old);
  add(errs, spec_errors(spec));
  if (old != nullptr) immutable_selector(errs, spec, *old);
  return errs;
}

void collision_count(Errors& errs, const json::object& o, const json::object& old) {
  auto now = integer(obj(o, "status"), "collisionCount");
  auto before = integer(obj(old, "status"), "collisionCount");
  if (before && (!now || *now < *before)) {
    errs.push_back(
        invalid_int(kStatus.child("collisionCount"), now.value_or(0), "cannot be decremented"));
  }
}

void replica_counts(Errors& errs, const json::object* status,
                    std::initializer_list<std::string_view> bounded, bool available_vs_ready) {
  std::int64_t replicas = integer(status, "replicas").value_or(0);
  for (std::string_view f : bounded) {
    std::int64_t v = integer(status, f).value_or(0);
    if (v > replicas) {
      errs.push_back(invalid_int(kStatus.child(f), v, "cannot be greater than status.replicas"));
    }
  }
  if (available_vs_ready) {
    std::int64_t avail = integer(status, "availableReplicas").value_or(0);
    if (avail > integer(status, "readyReplicas").value_or(0)) {
      errs.push_back(invalid_int(kStatus.child("availableReplicas"), avail,
                                 "cannot be greater than readyReplicas"));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Deployment

void deployment_defaults(json::object& d, bool) {
  json::object& spec = ensure_obj(d, "spec");
  if (!field(spec, "replicas")) slot(spec, "replicas") = 1;
  json::object& strategy = ensure_obj(spec, "strategy");
  set_default(strategy, "type", "RollingUpdate");
  if (str(strategy, "type") == "RollingUpdate") {
    json::object& ru = ensure_obj(strategy, "rollingUpdate");
    if (!field(ru, "maxUnavailable")) slot(ru, "maxUnavailable") = "25%";
    if (!field(ru, "maxSurge")) slot(ru, "maxSurge") = "25%";
  }
  if (!field(spec, "revisionHistoryLimit")) slot(spec, "revisionHistoryLimit") = 10;
  if (!field(spec, "progressDeadlineSeconds")) slot(spec, "progressDeadlineSeconds") = 600;
  default_template(spec);
}

Errors deployment_spec(const json::object* spec) {
  Errors errs;
  nonneg(errs, spec, "replicas", kSpec);
  selector_required(errs, spec, "deployment");
  template_for_replica_set(errs, spec);
  const json::object* strategy = obj(spec, "strategy");
  Path stp = kSpec.child("strategy");
  std::string_view type = str(strategy, "type");
  const json::object* ru = obj(strategy, "rollingUpdate");
  if (type == "Recreate") {
    if (ru) {
      errs.push_back(forbidden(stp.child("rollingUpdate"),
                               "may not be specified when strategy `type` is 'Recreate'"));
    }
  } else if (type == "RollingUpdate") {
    Path rp = stp.child("rollingUpdate");
    if (ru == nullptr) {
      errs.push_back(required(rp, "this should be defaulted and never be nil"));
    } else {
      const json::value* mu = field(*ru, "maxUnavailable");
      const json::value* ms = field(*ru, "maxSurge");
      add(errs, positive_int_or_percent(mu, rp.child("maxUnavailable")));
      add(errs, positive_int_or_percent(ms, rp.child("maxSurge")));
      if (int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0) {
        json::value zero = 0;
        errs.push_back(invalid(rp.child("maxUnavailable"), go_intstr(mu ? *mu : zero),
                               "may not be 0 when `maxSurge` is 0"));
      }
      add(errs, not_more_than_100_percent(mu, rp.child("maxUnavailable")));
    }
  } else {
    std::string shown = "apps.DeploymentStrategy{Type:" + q(type) + ", RollingUpdate:" +
                        (ru ? std::string("&apps.RollingUpdateDeployment{...}")
                            : std::string("(*apps.RollingUpdateDeployment)(nil)")) +
                        "}";
    errs.push_back(not_supported(stp, shown, {"Recreate", "RollingUpdate"}));
  }
  nonneg(errs, spec, "minReadySeconds", kSpec);
  nonneg(errs, spec, "revisionHistoryLimit", kSpec);
  if (auto pds = integer(spec, "progressDeadlineSeconds")) {
    nonneg(errs, spec, "progressDeadlineSeconds", kSpec);
    if (*pds <= integer(spec, "minReadySeconds").value_or(0)) {
      errs.push_back(invalid_int(kSpec.child("progressDeadlineSeconds"), *pds,
                                 "must be greater than minReadySeconds"));
    }
  }
  return errs;
}

Errors deployment_validate(const api::Resource&, const json::object& d, const json::object* old) {
  return replicated_validate(d, old, deployment_spec);
}

Errors deployment_status(const api::Resource&, const json::object& d, const json::object& old) {
  Errors errs = object_meta_update(d, old);
  const json::object* status = obj(d, "status");
  for (std::string_view f :
       {"observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
        "unavailableReplicas", "terminatingReplicas", "collisionCount"}) {
    nonneg(errs, status, f, kStatus);
  }
  replica_counts(errs, status, {"updatedReplicas", "readyReplicas", "availableReplicas"}, true);
  collision_count(errs, d, old);
  return errs;
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet

void replicaset_defaults(json::object& rs, bool) {
  json::object& spec = ensure_obj(rs, "spec");
  if (!field(spec, "replicas")) slot(spec, "replicas") = 1;
  default_template(spec);
}

Errors replicaset_spec(const json::object* spec) {
  Errors errs;
  nonneg(errs, spec, "replicas", kSpec);
  nonneg(errs, spec, "minReadySeconds", kSpec);
  selector_required(errs, spec, "deployment");  // sic: upstream's message for ReplicaSets too
  template_for_replica_set(errs, spec);
  return errs;
}

Errors replicaset_validate(const api::Resource&, const json::object& rs, const json::object* old) {
  return replicated_validate(rs, old, replicaset_spec);
}

Errors replicaset_status(const api::Resource&, const json::object& rs, const json::object& old) {
  Errors errs = object_meta_update(rs, old);
  const json::object* status = obj(rs, "status");
  for (std::string_view f : {"replicas", "fullyLabeledReplicas", "readyReplicas",
                             "availableReplicas", "observedGeneration", "terminatingReplicas"}) {
    nonneg(errs, status, f, kStatus);
  }
  replica_counts(errs, status, {"fullyLabeledReplicas", "readyReplicas", "availableReplicas"},
                 true);
  return errs;
}

// ---------------------------------------------------------------------------------------------
// DaemonSet

void daemonset_defaults(json::object& ds, bool) {
  json::object& spec = ensure_obj(ds, "spec");
  json::object& strategy = ensure_obj(spec, "updateStrategy");
  set_default(strategy, "type", "RollingUpdate");
  if (str(strategy, "type") == "RollingUpdate") {
    json::object& ru = ensure_obj(strategy, "rollingUpdate");
    if (!field(ru, "maxUnavailable")) slot(ru, "maxUnavailable") = 1;
    if (!field(ru, "maxSurge")) slot(ru, "maxSurge") = 0;
  }
  if (!field(spec, "revisionHistoryLimit")) slot(spec, "revisionHistoryLimit") = 10;
  default_template(spec);
}

Errors daemonset_spec(const json::object* spec) {
  Errors errs;
  const json::value* sel = field(spec, "selector");
  Path sp = kSpec.child("selector");
  add(errs, validate_label_selector(sel, sp));
  const json::object* tmpl = obj(spec, "template");
  Path tp = kSpec.child("template");
  auto selector = as_selector(sel);
  const json::value* labels = field(obj(tmpl, "metadata"), "labels");
  if (selector && !selector->matches(labels)) {
    errs.push_back(invalid(tp.child("metadata", "labels"), go_string_map(labels),
                           "`selector` does not match template `labels`"));
  }
  if (sel &&
      size_of(obj(obj(sel), "matchLabels")) + size_of(arr(obj(sel), "matchExpressions")) == 0) {
    errs.push_back(invalid(sp, go_label_selector(sel), "empty selector is invalid for daemonset"));
  }
  add(errs, validate_pod_template_spec(tmpl, tp));
  controller_pod_template(errs, tmpl, tp, "DaemonSet");
  nonneg(errs, spec, "minReadySeconds", kSpec);
  const json::object* strategy = obj(spec, "updateStrategy");
  Path up = kSpec.child("updateStrategy");
  std::string_view type = str(strategy, "type");
  const json::object* ru = obj(strategy, "rollingUpdate");
  if (type == "RollingUpdate") {
    if (ru == nullptr) {
      errs.push_back(required(up.child("rollingUpdate")));
    } else {
      Path rp = up.child("rollingUpdate");
      const json::value* mu = field(*ru, "maxUnavailable");
      const json::value* ms = field(*ru, "maxSurge");
      add(errs, positive_int_or_percent(mu, rp.child("maxUnavailable")));
      add(errs, positive_int_or_percent(ms, rp.child("maxSurge")));
      add(errs, not_more_than_100_percent(mu, rp.child("maxUnavailable")));
      add(errs, not_more_than_100_percent(ms, rp.child("maxSurge")));
      bool has_unavailable = int_or_percent_value(mu) != 0;
      bool has_surge = int_or_percent_value(ms) != 0;
      if (has_unavailable && has_surge) {
        errs.push_back(invalid(rp.child("maxSurge"), go_intstr(*ms),
                               "may not be set when maxUnavailable is non-zero"));
      } else if (!has_unavailable && !has_surge) {
        errs.push_back(required(rp.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"));
      }
    }
  } else if (type != "OnDelete") {
    std::string shown = "apps.DaemonSetUpdateStrategy{Type:" + q(type) + ", RollingUpdate:" +
                        (ru ? std::string("&apps.RollingUpdateDaemonSet{...}")
                            : std::string("(*apps.RollingUpdateDaemonSet)(nil)")) +
                        "}";
    errs.push_back(not_supported(up, shown, {"RollingUpdate", "OnDelete"}));
  }
  nonneg(errs, spec, "revisionHistoryLimit", kSpec);
  return errs;
}

Errors daemonset_validate(const api::Resource&, const json::object& ds, const json::object* old) {
  const json::object* spec = obj(ds, "spec");
  if (old == nullptr) {
    Errors errs = object_meta(ds, true, name_is_dns_subdomain);
    add(errs, daemonset_spec(spec));
    return errs;
  }
  Errors errs = object_meta_update(ds, *old);
  immutable_selector(errs, spec, *old);
  add(errs, daemonset_spec(spec));
  return errs;
}

Errors daemonset_status(const api::Resource&, const json::object& ds, const json::object& old) {
  Errors errs = object_meta_update(ds, old);
  const json::object* status = obj(ds, "status");
  for (std::string_view f :
       {"currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
        "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
        "collisionCount"}) {
    nonneg(errs, status, f, kStatus);
  }
  collision_count(errs, ds, old);
  return errs;
}

// ---------------------------------------------------------------------------------------------
// StatefulSet

void statefulset_defaults(json::object& sts, bool) {
  json::object& spec = ensure_obj(sts, "spec");
  set_default(spec, "podManagementPolicy", "OrderedReady");
  json::object& strategy = ensure_obj(spec, "updateStrategy");
  if (unset(strategy, "type")) {
    slot(strategy, "type") = "RollingUpdate";
    ensure_obj(strategy, "rollingUpdate");
  }
  if (str(strategy, "type") == "RollingUpdate") {
    if (json::object* ru = mobj(strategy, "rollingUpdate")) {
      if (!field(*ru, "partition")) slot(*ru, "partition") = 0;
    }
  }
  json::object& retention = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy");
  set_default(retention, "whenDeleted", "Retain");
  set_default(retention, "whenScaled", "Retain");
  if (!field(spec, "replicas")) slot(spec, "replicas") = 1;
  if (!field(spec, "revisionHistoryLimit")) slot(spec, "revisionHistoryLimit") = 10;
  default_template(spec);
  if (json::array* claims = marr(spec, "volumeClaimTemplates")) {
    for (auto& c : *claims) {
      if (json::object* co = c.if_object()) default_pvc_template(*co);
    }
  }
}

Errors statefulset_spec(const json::object* spec, bool validate_template, bool validate_claims) {
  Errors errs;
  std::string_view pmp = str(spec, "podManagementPolicy");
  if (pmp.empty()) {
    errs.push_back(required(kSpec.child("podManagementPolicy")));
  } else if (pmp != "OrderedReady" && pmp != "Parallel") {
    errs.push_back(invalid_str(kSpec.child("podManagementPolicy"), pmp,
                               "must be 'OrderedReady' or 'Parallel'"));
  }
  const json::object* strategy = obj(spec, "updateStrategy");
  Path up = kSpec.child("updateStrategy");
  std::string_view type = str(strategy, "type");
  const json::object* ru = obj(strategy, "rollingUpdate");
  if (type.empty()) {
    errs.push_back(required(up));
  } else if (type == "OnDelete") {
    if (ru) {
      errs.push_back(invalid(up.child("rollingUpdate"),
                             go_value(*field(*strategy, "rollingUpdate")),
                             "only allowed for updateStrategy 'RollingUpdate'"));
    }
  } else if (type == "RollingUpdate") {
    if (ru) {
      Path rp = up.child("rollingUpdate");
      nonneg(errs, ru, "partition", rp);
      if (const json::value* mu = field(*ru, "maxUnavailable")) {
        add(errs, positive_int_or_percent(mu, rp.child("maxUnavailable")));
        if (int_or_percent_value(mu) == 0) {
          errs.push_back(invalid(rp.child("maxUnavailable"), go_intstr(*mu), "cannot be 0"));
        }
        add(errs, not_more_than_100_percent(mu, rp.child("maxUnavailable")));
      }
    }
  } else {
    errs.push_back(invalid(up, go_value(*field(*spec, "updateStrategy")),
                           "must be 'RollingUpdate' or 'OnDelete'"));
  }
  if (const json::object* pol = obj(spec, "persistentVolumeClaimRetentionPolicy")) {
    Path pp = kSpec.child("persistentVolumeClaimRetentionPolicy");
    for (std::string_view f : {"whenDeleted", "whenScaled"}) {
      std::string_view v = str(pol, f);
      if (v != "Retain" && v != "Delete")
        errs.push_back(not_supported(pp.child(f), q(v), {"Retain", "Delete"}));
    }
  }
  const json::array* claims = arr(spec, "volumeClaimTemplates");
  if (validate_claims) {
    for (std::size_t i = 0; claims && i < claims->size(); ++i) {
      add(errs, validate_pvc_spec(obj((*claims)[i].if_object(), "spec"),
                                  kSpec.child("volumeClaimTemplates").index(i).child("spec")));
    }
  }
  nonneg(errs, spec, "replicas", kSpec);
  nonneg(errs, spec, "minReadySeconds", kSpec);
  if (auto start = integer(obj(spec, "ordinals"), "start"); start && *start < 0) {
    errs.push_back(invalid_int(kSpec.child("ordinals.start"), *start, kIsNegative));
  }
  selector_required(errs, spec, "statefulset");
  const json::value* sel = field(spec, "selector");
  Path sp = kSpec.child("selector");
  const json::object* tmpl = obj(spec, "template");
  Path tp = kSpec.child("template");
  auto selector = as_selector(sel);
  if (!selector) {
    errs.push_back(invalid(sp, go_label_selector(sel), ""));
  } else {
    // The controller sets hostname and subdomain and adds a volume per claim template.
    json::object copy = tmpl ? *tmpl : json::object();
    json::object& pspec = ensure_obj(copy, "spec");
    pspec.erase("hostname");
    pspec.erase("subdomain");
    if (size_of(claims) > 0) {
      json::array vols;
      std::set<std::string_view> claim_names;
      for (const auto& c : *claims) {
        std::string_view name = str(obj(c.if_object(), "metadata"), "name");
        claim_names.insert(name);
        json::object vol, pvc;
        slot(vol, "name") = name;
        slot(pvc, "claimName") = name;
        slot(vol, "persistentVolumeClaim") = std::move(pvc);
        vols.push_back(std::move(vol));
      }
      if (const json::array* existing = arr(pspec, "volumes")) {
        for (const auto& v : *existing) {
          if (!claim_names.contains(str(v.if_object(), "name"))) vols.push_back(v);
        }
      }
      slot(pspec, "volumes") = std::move(vols);
    }
    const json::value* labels = field(obj(copy, "metadata"), "labels");
    if (!selector->empty() && !selector->matches(labels)) {
      errs.push_back(invalid(tp.child("metadata", "labels"), go_string_map(labels),
                             "`selector` does not match template `labels`"));
    }
    const json::object* meta = obj(copy, "metadata");
    if (validate_template) add(errs, validate_pod_template_spec(&copy, tp));
    add(errs, validate_labels(field(meta, "labels"), tp.child("labels")));
    add(errs, validate_annotations(field(meta, "annotations"), tp.child("annotations")));
    add(errs, validate_pod_annotations(field(meta, "annotations"), obj(copy, "spec"),
                                       tp.child("annotations"), false));
  }
  controller_pod_template(errs, tmpl, tp, "StatefulSet");
  return errs;
}

Errors statefulset_validate(const api::Resource&, const json::object& sts,
                            const json::object* old) {
  const json::object* spec = obj(sts, "spec");
  if (old == nullptr) {
    Errors errs = object_meta(sts, true, name_is_dns_label);
    add(errs, statefulset_spec(spec, true, true));
    return errs;
  }
  Errors errs = object_meta_update(sts, *old);
  const json::object* old_spec = obj(*old, "spec");
  // Stored objects that no longer pass template validation stay updatable.
  bool template_ok = statefulset_spec(old_spec, true, false).empty();
  add(errs, statefulset_spec(spec, template_ok, false));
  json::object a = spec ? *spec : json::object();
  json::object b = old_spec ? *old_spec : json::object();
  for (std::string_view f :
       {"replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
        "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy"}) {
    a.erase(f);
    b.erase(f);
  }
  json::value av = a, bv = b;
  if (!semantic_equal(&av, &bv)) {
    errs.push_back(forbidden(kSpec,
                             "updates to statefulset spec for fields other than 'replicas', "
                             "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                             "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                             "forbidden"));
  }
  return errs;
}

Errors statefulset_status(const api::Resource&, const json::object& sts, const json::object& old) {
  Errors errs;
  const json::object* status = obj(sts, "status");
  for (std::string_view f : {"replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
                             "availableReplicas", "observedGeneration", "collisionCount"}) {
    nonneg(errs, status, f, kStatus);
  }
  replica_counts(errs, status,
                 {"readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"},
                 false);
  std::int64_t avail = integer(status, "availableReplicas").value_or(0);
  if (avail > integer(status, "readyReplicas").value_or(0)) {
    errs.push_back(invalid_int(kStatus.child("availableReplicas"), avail,
                               "cannot be greater than status.readyReplicas"));
  }
  add(errs, object_meta_update(sts, old));
  collision_count(errs, sts, old);
  return errs;
}

constexpr std::array kAppsKinds = {
    KindRules{"apps", "Deployment", deployment_defaults, deployment_validate, deployment_status},
    KindRules{"apps", "ReplicaSet", replicaset_defaults, replicaset_validate, replicaset_status},
    KindRules{"apps", "DaemonSet", daemonset_defaults, daemonset_validate, daemonset_status},
    KindRules{"apps", "StatefulSet", statefulset_defaults, statefulset_validate,
              statefulset_status},
};

}  // namespace

std::span<const KindRules> apps_kinds() { return kAppsKinds; }

}  // namespace podwarp::validation
