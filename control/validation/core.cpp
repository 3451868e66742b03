// core/v1: Namespace, Pod, Node, Service, Endpoints, ConfigMap, Secret, ServiceAccount, Event.
// Upstream: pkg/apis/core/validation/validation.go, events.go, pkg/apis/core/v1/defaults.go and
// the create-time parts of the pod admission plugins and registry strategies users see.
#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <fmt/format.h>
#include <string>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"
#include "validation/podspec.h"
#include "validation/quantity.h"

namespace podwarp::validation {

namespace {

const Path kMeta = Path().child("metadata");
const Path kSpec = Path().child("spec");
const Path kStatus = Path().child("status");

constexpr std::int64_t kMaxSecretSize = 1024 * 1024;
constexpr std::int64_t kMaxInt32 = 2147483647;

// ---------------------------------------------------------------------------------------------
// Namespace

void namespace_defaults(json::object& ns, bool creating) {
  std::string name(str(obj(ns, "metadata"), "name"));
  if (!name.empty()) {
    slot(ensure_obj(ensure_obj(ns, "metadata"), "labels"), "kubernetes.io/metadata.name") = name;
  }
  set_default(ensure_obj(ns, "status"), "phase", "Active");
  if (creating) {
    // namespaceStrategy.PrepareForCreate: the "kubernetes" finalizer is required on create; it is
    // not a default because the namespace controller removes it later.
    json::array& fin = ensure_arr(ensure_obj(ns, "spec"), "finalizers");
    bool has = std::any_of(fin.begin(), fin.end(),
                           [](const json::value& v) { return str(&v) == "kubernetes"; });
    if (!has) fin.emplace_back("kubernetes");
  }
}

Errors namespace_validate(const api::Resource&, const json::object& ns, const json::object* old) {
  Errors errs = object_meta(ns, false, name_is_dns_label);
  if (const json::array* fin = arr(obj(ns, "spec"), "finalizers")) {
    for (const auto& f : *fin)
      add(errs, validate_finalizer_name(str(&f), kSpec.child("finalizers")));
  }
  if (old) add(errs, object_meta_update(ns, *old));
  return errs;
}

Errors namespace_status(const api::Resource&, const json::object& ns, const json::object& old) {
  Errors errs = object_meta_update(ns, old);
  std::string_view phase = str(obj(ns, "status"), "phase");
  if (field(obj(ns, "metadata"), "deletionTimestamp") == nullptr) {
    if (phase != "Active") {
      errs.push_back(invalid_str(kStatus.child("Phase"), phase,
                                 "may only be 'Active' if `deletionTimestamp` is empty"));
    }
  } else if (phase != "Terminating") {
    errs.push_back(invalid_str(kStatus.child("Phase"), phase,
                               "may only be 'Terminating' if `deletionTimestamp` is not empty"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Pod

bool has_outer_space(std::string_view s) {
  auto ws = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  return !s.empty() && (ws(s.front()) || ws(s.back()));
}

void pod_admission_defaults(json::object& pod) {
  json::object& spec = ensure_obj(pod, "spec");
  // ServiceAccount admission.
  if (unset(spec, "serviceAccountName")) {
    slot(spec, "serviceAccountName") = "default";
    slot(spec, "serviceAccount") = "default";
  }
  // What the Priority admission gives a pod without a class when no PriorityClass is the
  // global default. (The apiserver's admission, apiserver/admission.h, resolves classes from
  // the PriorityClass objects before this runs.)
  if (str(spec, "priorityClassName").empty()) {
    set_default(spec, "priority", 0);
    set_default(spec, "preemptionPolicy", "PreemptLowerPriority");
  }
  // DefaultTolerationSeconds admission.
  bool not_ready = false, unreachable = false;
  if (const json::array* tols = arr(spec, "tolerations")) {
    for (const auto& t : *tols) {
      std::string_view key = str(t.if_object(), "key");
      std::string_view effect = str(t.if_object(), "effect");
      bool effect_ok = effect.empty() || effect == "NoExecute";
      if ((key == "node.kubernetes.io/not-ready" || key.empty()) && effect_ok) not_ready = true;
      if ((key == "node.kubernetes.io/unreachable" || key.empty()) && effect_ok) unreachable = true;
    }
  }
  auto toleration = [](std::string_view key) {
    json::object t;
    slot(t, "key") = key;
    slot(t, "operator") = "Exists";
    slot(t, "effect") = "NoExecute";
    slot(t, "tolerationSeconds") = 300;
    return t;
  };
  if (!not_ready)
    ensure_arr(spec, "tolerations").push_back(toleration("node.kubernetes.io/not-ready"));
  if (!unreachable) {
    ensure_arr(spec, "tolerations").push_back(toleration("node.kubernetes.io/unreachable"));
  }
}

void pod_defaults(json::object& pod, bool creating) {
  default_pod(pod);
  if (!creating) return;
  pod_admission_defaults(pod);
  // podStrategy.PrepareForCreate resets the status.
  json::object status;
  slot(status, "phase") = "Pending";
  slot(status, "qosClass") = pod_qos_class(obj(pod, "spec"));
  slot(pod, "status") = std::move(status);
}

Errors pod_metadata_and_spec(const json::object& pod) {
  const json::object* meta = obj(pod, "metadata");
  const json::object* spec = obj(pod, "spec");
  Errors errs = object_meta(pod, true, name_is_dns_subdomain);
  add(errs,
      validate_pod_annotations(field(meta, "annotations"), spec, kMeta.child("annotations"), true));
  PodSpecOptions opts;
  opts.resource_is_pod = true;
  opts.pod_meta = meta;
  add(errs, validate_pod_spec(spec, kSpec, opts));
  if (str(spec, "serviceAccountName").empty()) {
    const json::array* vols = arr(spec, "volumes");
    for (std::size_t i = 0; vols && i < vols->size(); ++i) {
      const json::array* sources = arr(obj((*vols)[i].if_object(), "projected"), "sources");
      for (std::size_t j = 0; sources && j < sources->size(); ++j) {
        if (obj((*sources)[j].if_object(), "serviceAccountToken")) {
          errs.push_back(forbidden(kSpec.child("volumes")
                                       .index(i)
                                       .child("projected", "sources")
                                       .index(j)
                                       .child("serviceAccountToken"),
                                   "must not be specified when serviceAccountName is not set"));
        }
      }
    }
  }
  for (std::string_view list : {"containers", "initContainers"}) {
    const json::array* cs = arr(spec, list);
    for (std::size_t i = 0; cs && i < cs->size(); ++i) {
      std::string_view image = str((*cs)[i].if_object(), "image");
      if (has_outer_space(image)) {
        errs.push_back(invalid_str(kSpec.child(list).index(i).child("image"), image,
                                   "must not have leading or trailing whitespace"));
      }
    }
  }
  return errs;
}

// A readable stand-in for the cmp.Diff upstream appends to pod update errors.
void json_diff(std::string& out, const json::value* a, const json::value* b, const std::string& p) {
  if (semantic_equal(a, b)) return;
  const json::object* oa = obj(a);
  const json::object* ob = obj(b);
  if (oa && ob) {
    std::set<std::string> keys;
    for (const auto& e : *oa) keys.emplace(e.key());
    for (const auto& e : *ob) keys.emplace(e.key());
    for (const auto& k : keys) json_diff(out, field(*oa, k), field(*ob, k), p + "." + k);
    return;
  }
  const json::array* la = arr(a);
  const json::array* lb = arr(b);
  if (la && lb && la->size() == lb->size()) {
    for (std::size_t i = 0; i < la->size(); ++i) {
      json_diff(out, &(*la)[i], &(*lb)[i], p + "[" + std::to_string(i) + "]");
    }
    return;
  }
  out += "- \t" + p + ": " + (a ? json::serialize(*a) : std::string("null")) + "\n";
  out += "+ \t" + p + ": " + (b ? json::serialize(*b) : std::string("null")) + "\n";
}

bool toleration_equal_ignoring_seconds(const json::value& a, const json::value& b) {
  json::value ca = a, cb = b;
  if (ca.is_object()) ca.get_object().erase("tolerationSeconds");
  if (cb.is_object()) cb.get_object().erase("tolerationSeconds");
  return semantic_equal(&ca, &cb);
}

Errors pod_update(const json::object& pod, const json::object& old) {
  Errors errs = object_meta_update(pod, old);
  add(errs, pod_metadata_and_spec(pod));
  const json::object* meta = obj(pod, "metadata");
  const json::object* old_meta = obj(old, "metadata");
  const json::object* ann = obj(meta, "annotations");
  const json::object* old_ann = obj(old_meta, "annotations");
  Path ap = kMeta.child("annotations");
  constexpr std::string_view kAppArmor = "container.apparmor.security.beta.kubernetes.io/";
  constexpr std::string_view kMirror = "kubernetes.io/config.mirror";
  for (const auto& e : old_ann ? *old_ann : empty_object()) {
    const json::value* now = field(ann, e.key());
    if (now && str(now) == str(&e.value())) continue;
    if (e.key().starts_with(kAppArmor)) {
      errs.push_back(forbidden(ap.key(e.key()), "may not remove or update AppArmor annotations"));
    }
    if (e.key() == kMirror) {
      errs.push_back(forbidden(ap.key(e.key()), "may not remove or update mirror pod annotation"));
    }
  }
  for (const auto& e : ann ? *ann : empty_object()) {
    if (old_ann && old_ann->contains(e.key())) continue;
    if (e.key().starts_with(kAppArmor)) {
      errs.push_back(forbidden(ap.key(e.key()), "may not add AppArmor annotations"));
    }
    if (e.key() == kMirror)
      errs.push_back(forbidden(ap.key(e.key()), "may not add mirror pod annotation"));
  }
  const json::object* spec = obj(pod, "spec");
  const json::object* old_spec = obj(old, "spec");
  add(errs, validate_pod_annotations(field(meta, "annotations"), spec, ap, true));

  for (std::string_view list : {"containers", "initContainers"}) {
    const json::array* cs = arr(spec, list);
    if (size_of(cs) != size_of(arr(old_spec, list))) {
      errs.push_back(forbidden(kSpec.child(list), "pod updates may not add or remove containers"));
      return errs;
    }
    for (std::size_t i = 0; cs && i < cs->size(); ++i) {
      std::string_view image = str((*cs)[i].if_object(), "image");
      Path ip = kSpec.child(list).index(i).child("image");
      if (image.empty()) errs.push_back(required(ip));
      if (has_outer_space(image)) {
        errs.push_back(invalid_str(ip, image, "must not have leading or trailing whitespace"));
      }
    }
  }
  auto ads = integer(spec, "activeDeadlineSeconds");
  auto old_ads = integer(old_spec, "activeDeadlineSeconds");
  if (ads) {
    if (*ads < 0 || *ads > kMaxInt32) {
      errs.push_back(invalid_int(kSpec.child("activeDeadlineSeconds"), *ads,
                                 inclusive_range_error(0, kMaxInt32)));
      return errs;
    }
    if (old_ads && *old_ads < *ads) {
      errs.push_back(invalid_int(kSpec.child("activeDeadlineSeconds"), *ads,
                                 "must be less than or equal to previous value"));
      return errs;
    }
  } else if (old_ads) {
    errs.push_back(invalid(kSpec.child("activeDeadlineSeconds"), "null",
                           "must not update from a positive integer to nil value"));
  }
  // Tolerations: only additions (and changes of tolerationSeconds).
  const json::array* tols = arr(spec, "tolerations");
  bool tols_ok = true;
  for (const auto& o :
       arr(old_spec, "tolerations") ? *arr(old_spec, "tolerations") : empty_array()) {
    bool found = false;
    for (const auto& n : tols ? *tols : empty_array())
      found |= toleration_equal_ignoring_seconds(o, n);
    if (!found) {
      errs.push_back(
          forbidden(kSpec.child("tolerations"),
                    "existing toleration can not be modified except its tolerationSeconds"));
      tols_ok = false;
      break;
    }
  }
  if (tols_ok) add(errs, validate_tolerations(tols, kSpec.child("tolerations")));
  // Scheduling gates: only deletions.
  if (const json::array* gates = arr(spec, "schedulingGates")) {
    std::set<std::string_view> old_gates;
    if (const json::array* og = arr(old_spec, "schedulingGates")) {
      for (const auto& g : *og) old_gates.insert(str(g.if_object(), "name"));
    }
    for (std::size_t i = 0; i < gates->size(); ++i) {
      std::string_view name = str((*gates)[i].if_object(), "name");
      if (!old_gates.contains(name)) {
        errs.push_back(forbidden(
            kSpec.child("schedulingGates").index(i).child("name"),
            "only deletion is allowed, but found new scheduling gate '" + std::string(name) + "'"));
      }
    }
  }
  json::value new_spec_v = spec ? json::value(*spec) : json::value(json::object());
  json::value old_spec_v = old_spec ? json::value(*old_spec) : json::value(json::object());
  if (semantic_equal(&new_spec_v, &old_spec_v)) return errs;

  json::object munged = new_spec_v.get_object();
  for (std::string_view list : {"containers", "initContainers"}) {
    json::array* cs = marr(munged, list);
    const json::array* ocs = arr(old_spec, list);
    for (std::size_t i = 0; cs && ocs && i < cs->size(); ++i) {
      if (json::object* c = (*cs)[i].if_object()) {
        const json::value* old_image = field((*ocs)[i].if_object(), "image");
        if (old_image) {
          slot(*c, "image") = *old_image;
        } else {
          c->erase("image");
        }
      }
    }
  }
  copy_fields(munged, old_spec, {"activeDeadlineSeconds", "schedulingGates", "tolerations"});
  auto old_tgps = integer(old_spec, "terminationGracePeriodSeconds");
  if (old_tgps && *old_tgps < 0 && integer(munged, "terminationGracePeriodSeconds") == 1) {
    slot(munged, "terminationGracePeriodSeconds") = *old_tgps;
  }
  if (size_of(arr(old_spec, "schedulingGates")) > 0) {
    const json::object* ns = obj(munged, "nodeSelector");
    const json::object* ons = obj(old_spec, "nodeSelector");
    if (!semantic_equal(field(munged, "nodeSelector"), field(old_spec, "nodeSelector"))) {
      for (const auto& e : ons ? *ons : empty_object()) {
        const json::value* v = field(ns, e.key());
        if (!v || str(v) != str(&e.value())) {
          errs.push_back(invalid(kSpec.child("nodeSelector"),
                                 go_string_map(field(munged, "nodeSelector")),
                                 "only additions to spec.nodeSelector are allowed (no mutations or "
                                 "deletions)"));
          break;
        }
      }
      munged.erase("nodeSelector");
      if (ons) slot(munged, "nodeSelector") = *ons;
    }
    // Node affinity may change while gated (upstream limits it to additions).
    copy_node_affinity(munged, old_spec);
  }
  json::value munged_v = munged;
  if (!semantic_equal(&munged_v, &old_spec_v)) {
    std::string diff = "  core.PodSpec{\n";
    json_diff(diff, &old_spec_v, &munged_v, "spec");
    diff += "  }\n";
    errs.push_back(forbidden(
        kSpec,
        "pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
        "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
        "set to 1 if it was previously negative)\n" +
            diff));
  }
  return errs;
}

Errors pod_validate(const api::Resource&, const json::object& pod, const json::object* old) {
  if (old) return pod_update(pod, *old);
  Errors errs = pod_metadata_and_spec(pod);
  const json::object* spec = obj(pod, "spec");
  if (size_of(arr(spec, "ephemeralContainers")) > 0) {
    errs.push_back(forbidden(kSpec.child("ephemeralContainers"), "cannot be set on create"));
  }
  if (!str(spec, "nodeName").empty() && size_of(arr(spec, "schedulingGates")) != 0) {
    errs.push_back(forbidden(kSpec.child("nodeName"),
                             "cannot be set until all schedulingGates have been cleared"));
  }
  return errs;
}

void container_state_transitions(Errors& errs, const json::array* now, const json::array* before,
                                 const Path& p, std::string_view restart,
                                 const json::array* init_specs) {
  if (restart == "Always") return;
  for (std::size_t i = 0; before && i < before->size(); ++i) {
    const json::object* os = (*before)[i].if_object();
    const json::object* terminated = obj(obj(os, "state"), "terminated");
    if (terminated == nullptr) continue;
    if (integer(terminated, "exitCode").value_or(0) != 0 && restart == "OnFailure") continue;
    bool sidecar = false;
    for (std::size_t j = 0; init_specs && j < init_specs->size(); ++j) {
      const json::object* c = (*init_specs)[j].if_object();
      if (str(c, "name") == str(os, "name")) {
        sidecar = str(c, "restartPolicy") == "Always";
        break;
      }
    }
    if (sidecar) continue;
    for (std::size_t j = 0; now && j < now->size(); ++j) {
      const json::object* ns = (*now)[j].if_object();
      if (str(ns, "name") == str(os, "name") && obj(obj(ns, "state"), "terminated") == nullptr) {
        errs.push_back(forbidden(p.index(i).child("state"),
                                 "may not be transitioned to non-terminated state"));
      }
    }
  }
}

}  // namespace

Errors pod_ephemeral_containers_update(const json::object& pod, const json::object& old) {
  Errors errs = object_meta_update(pod, old);
  add(errs, pod_metadata_and_spec(pod));
  // Existing ephemeral containers may be neither removed nor changed (patches do not keep the
  // order, so each is looked up by name).
  const Path p = kSpec.child("ephemeralContainers");
  const json::array* now = arr(obj(pod, "spec"), "ephemeralContainers");
  const json::array* before = arr(obj(old, "spec"), "ephemeralContainers");
  for (std::size_t i = 0; before && i < before->size(); ++i) {
    std::string_view name = str((*before)[i].if_object(), "name");
    const json::value* match = nullptr;
    for (std::size_t j = 0; now && j < now->size() && match == nullptr; ++j) {
      if (str((*now)[j].if_object(), "name") == name) match = &(*now)[j];
    }
    if (match == nullptr) {
      errs.push_back(forbidden(p, fmt::format("existing ephemeral containers \"{}\" may not be removed\n", name)));
    } else if (!semantic_equal(&(*before)[i], match)) {
      std::string diff;
      json_diff(diff, &(*before)[i], match, "");
      errs.push_back(forbidden(p.key(name), fmt::format("existing ephemeral containers \"{}\" may not be changed\n{}", name, diff)));
    }
  }
  return errs;
}

namespace {

Errors pod_status(const api::Resource&, const json::object& pod, const json::object& old) {
  Errors errs = object_meta_update(pod, old);
  const json::object* status = obj(pod, "status");
  const json::object* old_status = obj(old, "status");
  if (const json::array* conds = arr(status, "conditions")) {
    for (std::size_t i = 0; i < conds->size(); ++i) {
      std::string_view type = str((*conds)[i].if_object(), "type");
      if (type == "PodScheduled" || type == "Ready" || type == "Initialized") continue;
      add(errs, qualified_name(kMeta.child("conditions").index(i).child("Type"), type));
    }
  }
  if (str(obj(pod, "spec"), "nodeName") != str(obj(old, "spec"), "nodeName")) {
    errs.push_back(forbidden(kStatus.child("nodeName"), "may not be changed directly"));
  }
  std::string_view nominated = str(status, "nominatedNodeName");
  if (!nominated.empty() && nominated != str(old_status, "nominatedNodeName")) {
    add(errs, name_with(name_is_dns_subdomain, kStatus.child("nominatedNodeName"), nominated));
  }
  if (str(status, "qosClass") != str(old_status, "qosClass")) {
    errs.push_back(
        invalid_str(kStatus.child("qosClass"), str(status, "qosClass"), kFieldImmutable));
  }
  std::string_view restart = str(obj(old, "spec"), "restartPolicy");
  container_state_transitions(errs, arr(status, "containerStatuses"),
                              arr(old_status, "containerStatuses"),
                              kStatus.child("containerStatuses"), restart, nullptr);
  container_state_transitions(
      errs, arr(status, "initContainerStatuses"), arr(old_status, "initContainerStatuses"),
      kStatus.child("initContainerStatuses"), restart, arr(obj(old, "spec"), "initContainers"));
  container_state_transitions(errs, arr(status, "ephemeralContainerStatuses"),
                              arr(old_status, "ephemeralContainerStatuses"),
                              kStatus.child("ephemeralContainerStatuses"), "Never", nullptr);
  for (std::string_view list : {"podIPs", "hostIPs"}) {
    const json::array* ips = arr(status, list);
    Path lp = kStatus.child(list);
    if (list == "hostIPs" && size_of(ips) > 0 &&
        str((*ips)[0].if_object(), "ip") != str(status, "hostIP")) {
      errs.push_back(invalid_str(lp.index(0).child("ip"), str((*ips)[0].if_object(), "ip"),
                                 "must be equal to `hostIP`"));
    }
    bool all_valid = true;
    int v4 = 0, v6 = 0;
    std::set<std::string_view> seen;
    for (std::size_t i = 0; ips && i < ips->size(); ++i) {
      std::string_view ip = str((*ips)[i].if_object(), "ip");
      Errors e = validate_ip(lp.index(i), ip);
      all_valid &= e.empty();
      add(errs, std::move(e));
      if (auto parsed = parse_ip(ip)) (parsed->v4 ? v4 : v6)++;
      if (!seen.insert(ip).second) errs.push_back(duplicate(lp.index(i), go_value((*ips)[i])));
    }
    if (size_of(ips) > 1 && all_valid && !(v4 == 1 && v6 == 1)) {
      errs.push_back(invalid(lp, go_value(*field(*status, list)),
                             "may specify no more than one IP for each IP family"));
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Node

void node_defaults(json::object& node, bool) {
  json::object* status = mobj(node, "status");
  if (status == nullptr) return;
  if (json::object* cap = mobj(*status, "capacity")) {
    default_resource_list(*cap);
    if (!field(*status, "allocatable")) {
      json::value copy = *cap;
      slot(*status, "allocatable") = std::move(copy);
    }
  }
  if (json::object* alloc = mobj(*status, "allocatable")) default_resource_list(*alloc);
}

void node_taints(Errors& errs, const json::array* taints, const Path& p) {
  std::map<std::string, std::set<std::string>> unique;  // effect -> keys
  for (std::size_t i = 0; taints && i < taints->size(); ++i) {
    const json::object* t = (*taints)[i].if_object();
    Path ip = p.index(i);
    std::string_view key = str(t, "key");
    std::string_view value = str(t, "value");
    std::string_view effect = str(t, "effect");
    add(errs, validate_label_name(key, ip.child("key")));
    auto msgs = is_label_value(value);
    if (!msgs.empty()) {
      std::string joined;
      for (std::size_t j = 0; j < msgs.size(); ++j) joined += (j ? ";" : "") + msgs[j];
      errs.push_back(invalid_str(ip.child("value"), value, joined));
    }
    if (effect.empty()) {
      errs.push_back(required(ip.child("effect")));
    } else if (effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute") {
      errs.push_back(not_supported(ip.child("effect"), q(effect),
                                   {"NoSchedule", "PreferNoSchedule", "NoExecute"}));
    }
    auto& keys = unique[std::string(effect)];
    if (keys.contains(std::string(key))) {
      Cause c = duplicate(ip, "core.Taint{Key:" + q(key) + ", Value:" + q(value) +
                                  ", Effect:" + q(effect) + ", TimeAdded:(*v1.Time)(nil)}");
      c.message += ": taints must be unique by key and effect pair";
      errs.push_back(std::move(c));
      continue;
    }
    keys.insert(std::string(key));
  }
}

Errors node_resources(const json::object& node) {
  Errors errs;
  const json::object* status = obj(node, "status");
  for (std::string_view list : {"capacity", "allocatable"}) {
    const json::object* l = obj(status, list);
    for (const auto& e : l ? *l : empty_object()) {
      Path rp = kStatus.child(list, e.key());
      auto qty = quantity_from_json(e.value());
      if (!qty) {
        errs.push_back(invalid(rp, go_value(e.value()), qty.error()));
        continue;
      }
      if (qty->sign() < 0) errs.push_back(invalid_str(rp, qty->to_string(), kIsNegative));
      bool integer_resource =
          e.key() == "pods" || (e.key().find('/') != std::string_view::npos &&
                                e.key().find("kubernetes.io/") == std::string_view::npos);
      if (integer_resource && !is_integer(*qty)) {
        errs.push_back(invalid_str(rp, qty->to_string(), "must be an integer"));
      }
    }
  }
  return errs;
}

Errors node_create(const json::object& node) {
  Errors errs = object_meta(node, false, name_is_dns_subdomain);
  const json::object* spec = obj(node, "spec");
  if (size_of(arr(spec, "taints")) > 0)
    node_taints(errs, arr(spec, "taints"), kMeta.child("taints"));
  add(errs, node_resources(node));
  const json::array* cidrs = arr(spec, "podCIDRs");
  Path cp = kSpec.child("podCIDRs");
  for (std::size_t i = 0; cidrs && i < cidrs->size(); ++i) {
    add(errs, validate_cidr(cp.index(i), str(&(*cidrs)[i])));
  }
  if (size_of(cidrs) > 1) {
    int v4 = 0, v6 = 0;
    for (const auto& c : *cidrs) {
      if (auto parsed = parse_cidr(str(&c))) (parsed->ip.v4 ? v4 : v6)++;
    }
    if (!(v4 == 1 && v6 == 1)) {
      errs.push_back(invalid(cp, go_string_slice(field(*spec, "podCIDRs")),
                             "may specify no more than one CIDR for each IP family"));
    }
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < cidrs->size(); ++i) {
      if (!seen.insert(str(&(*cidrs)[i])).second) {
        errs.push_back(duplicate(cp.index(i), q(str(&(*cidrs)[i]))));
      }
    }
  }
  return errs;
}

Errors node_update(const json::object& node, const json::object& old) {
  Errors errs = object_meta_update(node, old);
  add(errs, node_resources(node));
  const json::array* addrs = arr(obj(node, "status"), "addresses");
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (std::size_t i = 0; addrs && i < addrs->size(); ++i) {
    const json::object* a = (*addrs)[i].if_object();
    if (!seen.emplace(str(a, "type"), str(a, "address")).second) {
      errs.push_back(duplicate(kStatus.child("addresses").index(i),
                               "core.NodeAddress{Type:" + q(str(a, "type")) +
                                   ", Address:" + q(str(a, "address")) + "}"));
    }
  }
  const json::object* spec = obj(node, "spec");
  const json::object* old_spec = obj(old, "spec");
  const json::array* old_cidrs = arr(old_spec, "podCIDRs");
  if (size_of(old_cidrs) > 0) {
    const json::array* cidrs = arr(spec, "podCIDRs");
    constexpr std::string_view kMsg =
        "node updates may not change podCIDR except from \"\" to valid";
    if (size_of(cidrs) != old_cidrs->size()) {
      errs.push_back(forbidden(kSpec.child("podCIDRs"), kMsg));
    } else {
      for (std::size_t i = 0; i < old_cidrs->size(); ++i) {
        if (str(&(*old_cidrs)[i]) != str(&(*cidrs)[i]))
          errs.push_back(forbidden(kSpec.child("podCIDRs"), kMsg));
      }
    }
  }
  std::string_view old_provider = str(old_spec, "providerID");
  if (!old_provider.empty() && old_provider != str(spec, "providerID")) {
    errs.push_back(forbidden(kSpec.child("providerID"),
                             "node updates may not change providerID except from \"\" to valid"));
  }
  if (size_of(arr(spec, "taints")) > 0)
    node_taints(errs, arr(spec, "taints"), kMeta.child("taints"));
  if (str(spec, "externalID") != str(old_spec, "externalID")) {
    errs.push_back(forbidden(kSpec.child("externalID"), "may not be updated"));
  }
  return errs;
}

Errors node_validate(const api::Resource&, const json::object& node, const json::object* old) {
  Errors errs = node_create(node);
  if (old) add(errs, node_update(node, *old));
  return errs;
}

Errors node_status(const api::Resource&, const json::object& node, const json::object& old) {
  return node_update(node, old);
}

// ---------------------------------------------------------------------------------------------
// Service

bool headless(const json::object* spec) {
  const json::array* ips = arr(spec, "clusterIPs");
  return size_of(ips) == 1 && str(&(*ips)[0]) == "None";
}

bool externally_accessible(const json::object* spec) {
  std::string_view type = str(spec, "type");
  return type == "LoadBalancer" || type == "NodePort" ||
         (type == "ClusterIP" && size_of(arr(spec, "externalIPs")) > 0);
}

void service_defaults(json::object& svc, bool) {
  json::object& spec = ensure_obj(svc, "spec");
  set_default(spec, "sessionAffinity", "None");
  if (str(spec, "sessionAffinity") == "None") {
    spec.erase("sessionAffinityConfig");
  } else if (str(spec, "sessionAffinity") == "ClientIP") {
    if (!field(obj(obj(spec, "sessionAffinityConfig"), "clientIP"), "timeoutSeconds")) {
      json::object cfg, client;
      slot(client, "timeoutSeconds") = 10800;
      slot(cfg, "clientIP") = std::move(client);
      slot(spec, "sessionAffinityConfig") = std::move(cfg);
    }
  }
  set_default(spec, "type", "ClusterIP");
  if (json::array* ports = marr(spec, "ports")) {
    for (auto& pv : *ports) {
      json::object* port = pv.if_object();
      if (port == nullptr) continue;
      set_default(*port, "protocol", "TCP");
      const json::value* tp = field(*port, "targetPort");
      if (tp == nullptr || (tp->is_string() && tp->get_string().empty()) ||
          (tp->is_number() && integer(tp).value_or(0) == 0)) {
        if (const json::value* pn = field(*port, "port")) {
          json::value copy = *pn;
          slot(*port, "targetPort") = std::move(copy);
        }
      }
    }
  }
  std::string type(str(spec, "type"));
  if (externally_accessible(&spec)) set_default(spec, "externalTrafficPolicy", "Cluster");
  if (!field(spec, "internalTrafficPolicy") &&
      (type == "NodePort" || type == "LoadBalancer" || type == "ClusterIP")) {
    slot(spec, "internalTrafficPolicy") = "Cluster";
  }
  if (type == "LoadBalancer" && !field(spec, "allocateLoadBalancerNodePorts")) {
    slot(spec, "allocateLoadBalancerNodePorts") = true;
  }
  if (type == "LoadBalancer") {
    if (json::object* status = mobj(svc, "status")) {
      if (json::object* lb = mobj(*status, "loadBalancer")) {
        if (json::array* ingress = marr(*lb, "ingress")) {
          for (auto& i : *ingress) {
            json::object* io = i.if_object();
            if (io && !unset(*io, "ip") && !field(*io, "ipMode")) slot(*io, "ipMode") = "VIP";
          }
        }
      }
    }
  }
  if (type == "ExternalName") return;
  // The service registry keeps clusterIP and clusterIPs in step and records the single-stack
  // family it allocated from.
  if (!unset(spec, "clusterIP") && size_of(arr(spec, "clusterIPs")) == 0) {
    json::array ips;
    ips.push_back(*field(spec, "clusterIP"));
    slot(spec, "clusterIPs") = std::move(ips);
  } else if (unset(spec, "clusterIP") && size_of(arr(spec, "clusterIPs")) > 0) {
    json::value first = (*arr(spec, "clusterIPs"))[0];
    slot(spec, "clusterIP") = std::move(first);
  }
  if (!field(spec, "ipFamilyPolicy")) {
    // Headless services without a selector default to both families (single-stack clusters
    // record just the one they have).
    bool selectorless = headless(&spec) && size_of(obj(spec, "selector")) == 0;
    slot(spec, "ipFamilyPolicy") = selectorless ? "RequireDualStack" : "SingleStack";
  }
  if (size_of(arr(spec, "ipFamilies")) == 0) {
    json::array fams;
    const json::array* ips = arr(spec, "clusterIPs");
    for (std::size_t i = 0; ips && i < ips->size(); ++i) {
      auto ip = parse_ip(str(&(*ips)[i]));
      if (ip) fams.emplace_back(ip->v4 ? "IPv4" : "IPv6");
    }
    if (fams.empty()) fams.emplace_back("IPv4");
    slot(spec, "ipFamilies") = std::move(fams);
  }
}

std::string go_service_port_key(std::string_view protocol, std::int64_t port) {
  return "core.ServicePort{Name:\"\", Protocol:" + q(protocol) +
         ", AppProtocol:(*string)(nil), Port:" + std::to_string(port) +
         ", TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}";
}

Errors service_cluster_ips(const json::object* spec) {
  Errors errs;
  if (str(spec, "type") == "ExternalName") return errs;
  Path ips_path = kSpec.child("clusterIPs");
  const json::array* ips = arr(spec, "clusterIPs");
  std::string_view cluster_ip = str(spec, "clusterIP");
  if (!cluster_ip.empty()) {
    if (size_of(ips) == 0) {
      errs.push_back(required(ips_path));
    } else if (str(&(*ips)[0]) != cluster_ip) {
      errs.push_back(invalid(ips_path, go_string_slice(field(*spec, "clusterIPs")),
                             "first value must match `clusterIP`"));
    }
  } else if (size_of(ips) != 0) {
    errs.push_back(invalid(ips_path, go_string_slice(field(*spec, "clusterIPs")),
                           "must be empty when `clusterIP` is not specified"));
  }
  const json::array* fams = arr(spec, "ipFamilies");
  std::set<std::string_view> seen;
  for (std::size_t i = 0; fams && i < fams->size(); ++i) {
    std::string_view f = str(&(*fams)[i]);
    if (f != "IPv4" && f != "IPv6") {
      errs.push_back(not_supported(kSpec.child("ipFamilies").index(i), q(f), {"IPv4", "IPv6"}));
    }
    if (!seen.insert(f).second) errs.push_back(duplicate(kSpec.child("ipFamilies").index(i), q(f)));
  }
  if (const json::value* pol = field(spec, "ipFamilyPolicy")) {
    std::string_view v = str(pol);
    if (v != "SingleStack" && v != "PreferDualStack" && v != "RequireDualStack") {
      errs.push_back(not_supported(kSpec.child("ipFamilyPolicy"), q(v),
                                   {"PreferDualStack", "RequireDualStack", "SingleStack"}));
    }
  }
  bool bad = false;
  for (std::size_t i = 0; ips && i < ips->size(); ++i) {
    std::string_view ip = str(&(*ips)[i]);
    if (i == 0 && ip == "None") {
      if (ips->size() > 1) {
        bad = true;
        errs.push_back(invalid(ips_path, go_string_slice(field(*spec, "clusterIPs")),
                               "'None' must be the first and only value"));
      }
      continue;
    }
    Errors e = validate_ip(ips_path.index(i), ip);
    bad |= !e.empty();
    add(errs, std::move(e));
  }
  if (size_of(ips) > 2) {
    errs.push_back(invalid(ips_path, go_string_slice(field(*spec, "clusterIPs")),
                           "may only hold up to 2 values"));
  }
  if (bad) return errs;
  if (size_of(ips) > 1) {
    auto a = parse_ip(str(&(*ips)[0]));
    auto b = parse_ip(str(&(*ips)[1]));
    if (!a || !b || a->v4 == b->v4) {
      errs.push_back(invalid(ips_path, go_string_slice(field(*spec, "clusterIPs")),
                             "may specify no more than one IP for each IP family"));
    }
  }
  if (!headless(spec) && size_of(ips) > 0 && size_of(fams) > 0) {
    for (std::size_t i = 0; i < ips->size() && i < fams->size(); ++i) {
      std::string_view ip = str(&(*ips)[i]);
      auto parsed = parse_ip(ip);
      bool v6 = parsed && !parsed->v4;
      std::string_view fam = str(&(*fams)[i]);
      if (fam == "IPv4" && v6) {
        errs.push_back(invalid_str(
            ips_path.index(i), ip,
            "expected an IPv4 value as indicated by `ipFamilies[" + std::to_string(i) + "]`"));
      }
      if (fam == "IPv6" && !v6) {
        errs.push_back(invalid_str(
            ips_path.index(i), ip,
            "expected an IPv6 value as indicated by `ipFamilies[" + std::to_string(i) + "]`"));
      }
    }
  }
  return errs;
}

Errors service_validate_spec(const json::object& svc) {
  Errors errs = object_meta(svc, true, name_is_dns1035_label);
  const json::object* meta = obj(svc, "metadata");
  const json::object* ann = obj(meta, "annotations");
  const json::value* hints = field(ann, "service.kubernetes.io/topology-aware-hints");
  const json::value* mode = field(ann, "service.kubernetes.io/topology-mode");
  if (hints && mode && str(hints) != str(mode)) {
    errs.push_back(invalid_str(
        kMeta.child("annotations").key("service.kubernetes.io/topology-mode"), str(mode),
        "must match annotations[service.kubernetes.io/topology-aware-hints] "
        "when both are specified"));
  }
  const json::object* spec = obj(svc, "spec");
  std::string_view type = str(spec, "type");
  const json::array* ports = arr(spec, "ports");
  bool is_headless = headless(spec);
  if (size_of(ports) == 0 && !is_headless && type != "ExternalName") {
    errs.push_back(required(kSpec.child("ports")));
  }
  if (type == "LoadBalancer" && is_headless) {
    errs.push_back(invalid_str(kSpec.child("clusterIPs").index(0), "None",
                               "may not be set to 'None' for LoadBalancer services"));
  } else if (type == "NodePort" && is_headless) {
    errs.push_back(invalid_str(kSpec.child("clusterIPs").index(0), "None",
                               "may not be set to 'None' for NodePort services"));
  } else if (type == "ExternalName") {
    if (size_of(arr(spec, "clusterIPs")) > 0) {
      errs.push_back(
          forbidden(kSpec.child("clusterIPs"), "may not be set for ExternalName services"));
    }
    if (size_of(arr(spec, "ipFamilies")) > 0) {
      errs.push_back(
          forbidden(kSpec.child("ipFamilies"), "may not be set for ExternalName services"));
    }
    if (field(spec, "ipFamilyPolicy")) {
      errs.push_back(
          forbidden(kSpec.child("ipFamilyPolicy"), "may not be set for ExternalName services"));
    }
    std::string_view cname = str(spec, "externalName");
    if (cname.ends_with('.')) cname.remove_suffix(1);
    if (!cname.empty()) {
      add(errs, dns1123_subdomain(kSpec.child("externalName"), cname));
    } else {
      errs.push_back(required(kSpec.child("externalName")));
    }
  }
  std::set<std::string, std::less<>> port_names;
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    const json::object* port = (*ports)[i].if_object();
    Path pp = kSpec.child("ports").index(i);
    std::string_view name = str(port, "name");
    if (ports->size() > 1 && name.empty()) {
      errs.push_back(required(pp.child("name")));
    } else if (!name.empty()) {
      add(errs, dns1123_label(pp.child("name"), name));
      if (port_names.contains(name)) {
        errs.push_back(duplicate(pp.child("name"), q(name)));
      } else {
        port_names.emplace(name);
      }
    }
    std::int64_t pn = integer(port, "port").value_or(0);
    for (auto& m : is_valid_port_num(pn)) errs.push_back(invalid_int(pp.child("port"), pn, m));
    std::string_view proto = str(port, "protocol");
    if (proto.empty()) {
      errs.push_back(required(pp.child("protocol")));
    } else if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
      errs.push_back(not_supported(pp.child("protocol"), q(proto), {"SCTP", "TCP", "UDP"}));
    }
    const json::value* tp = field(port, "targetPort");
    if (tp == nullptr || tp->is_number()) {
      std::int64_t n = integer(tp).value_or(0);
      for (auto& m : is_valid_port_num(n))
        errs.push_back(invalid_int(pp.child("targetPort"), n, m));
    } else {
      for (auto& m : is_valid_port_name(str(tp))) {
        errs.push_back(invalid_str(pp.child("targetPort"), str(tp), m));
      }
    }
    if (const json::value* ap = field(port, "appProtocol")) {
      add(errs, qualified_name(pp.child("appProtocol"), str(ap)));
    }
  }
  if (field(spec, "selector"))
    add(errs, validate_labels(field(spec, "selector"), kSpec.child("selector")));
  std::string_view affinity = str(spec, "sessionAffinity");
  if (affinity.empty()) {
    errs.push_back(required(kSpec.child("sessionAffinity")));
  } else if (affinity != "ClientIP" && affinity != "None") {
    errs.push_back(
        not_supported(kSpec.child("sessionAffinity"), q(affinity), {"ClientIP", "None"}));
  }
  Path cfg_path = kSpec.child("sessionAffinityConfig");
  if (affinity == "ClientIP") {
    const json::object* cfg = obj(spec, "sessionAffinityConfig");
    const json::object* client = obj(cfg, "clientIP");
    if (cfg == nullptr) {
      errs.push_back(required(cfg_path, "when session affinity type is ClientIP"));
    } else if (client == nullptr) {
      errs.push_back(
          required(cfg_path.child("clientIP"), "when session affinity type is ClientIP"));
    } else if (!field(client, "timeoutSeconds")) {
      errs.push_back(required(cfg_path.child("clientIP", "timeoutSeconds"),
                              "when session affinity type is ClientIP"));
    } else {
      std::int64_t t = integer(client, "timeoutSeconds").value_or(0);
      if (t <= 0 || t > 86400) {
        errs.push_back(invalid_int(cfg_path.child("clientIP", "timeoutSeconds"), t,
                                   "must be greater than 0 and less than 86400"));
      }
    }
  } else if (affinity == "None" && field(spec, "sessionAffinityConfig")) {
    errs.push_back(forbidden(cfg_path, "must not be set when session affinity is None"));
  }
  add(errs, service_cluster_ips(spec));
  if (const json::array* ext = arr(spec, "externalIPs")) {
    for (std::size_t i = 0; i < ext->size(); ++i) {
      Path ep = kSpec.child("externalIPs").index(i);
      Errors e = validate_ip(ep, str(&(*ext)[i]));
      if (e.empty()) e = validate_non_special_ip(ep, str(&(*ext)[i]));
      add(errs, std::move(e));
    }
  }
  if (type.empty()) {
    errs.push_back(required(kSpec.child("type")));
  } else if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" &&
             type != "ExternalName") {
    errs.push_back(not_supported(kSpec.child("type"), q(type),
                                 {"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"}));
  }
  if (type == "ClusterIP") {
    for (std::size_t i = 0; ports && i < ports->size(); ++i) {
      if (integer((*ports)[i].if_object(), "nodePort").value_or(0) != 0) {
        errs.push_back(forbidden(kSpec.child("ports").index(i).child("nodePort"),
                                 "may not be used when `type` is 'ClusterIP'"));
      }
    }
  }
  std::set<std::pair<std::string_view, std::int64_t>> node_ports, port_keys;
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    const json::object* port = (*ports)[i].if_object();
    std::int64_t np = integer(port, "nodePort").value_or(0);
    if (np != 0 && !node_ports.emplace(str(port, "protocol"), np).second) {
      errs.push_back(duplicate(kSpec.child("ports").index(i).child("nodePort"), num(np)));
    }
  }
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    const json::object* port = (*ports)[i].if_object();
    std::int64_t pn = integer(port, "port").value_or(0);
    if (!port_keys.emplace(str(port, "protocol"), pn).second) {
      errs.push_back(
          duplicate(kSpec.child("ports").index(i), go_service_port_key(str(port, "protocol"), pn)));
    }
  }
  if (const json::array* ranges = arr(spec, "loadBalancerSourceRanges"); size_of(ranges) > 0) {
    Path rp = kSpec.child("LoadBalancerSourceRanges");
    if (type != "LoadBalancer") {
      errs.push_back(forbidden(rp, "may only be used when `type` is 'LoadBalancer'"));
    }
    for (std::size_t i = 0; i < ranges->size(); ++i) {
      std::string_view r = str(&(*ranges)[i]);
      while (!r.empty() && r.front() == ' ') r.remove_prefix(1);
      while (!r.empty() && r.back() == ' ') r.remove_suffix(1);
      add(errs, validate_cidr(rp.index(i), r));
    }
  } else if (const json::value* v =
                 field(ann, "service.beta.kubernetes.io/load-balancer-source-ranges")) {
    Path rp =
        kMeta.child("annotations").key("service.beta.kubernetes.io/load-balancer-source-ranges");
    if (type != "LoadBalancer") {
      errs.push_back(forbidden(rp, "may only be used when `type` is 'LoadBalancer'"));
    }
    std::string val(str(v));
    std::size_t start = 0;
    bool blank = val.find_first_not_of(' ') == std::string::npos;
    while (!blank) {
      std::size_t comma = val.find(',', start);
      std::string_view part = std::string_view(val).substr(
          start, comma == std::string::npos ? std::string::npos : comma - start);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      add(errs, validate_cidr(rp, part));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (field(spec, "allocateLoadBalancerNodePorts") && type != "LoadBalancer") {
    errs.push_back(forbidden(kSpec.child("allocateLoadBalancerNodePorts"),
                             "may only be used when `type` is 'LoadBalancer'"));
  }
  if (type == "LoadBalancer" && !field(spec, "allocateLoadBalancerNodePorts")) {
    errs.push_back(required(Path().child("allocateLoadBalancerNodePorts")));
  }
  if (const json::value* lbc = field(spec, "loadBalancerClass")) {
    if (type == "LoadBalancer") {
      add(errs, qualified_name(kSpec.child("loadBalancerClass"), str(lbc)));
    } else {
      errs.push_back(forbidden(kSpec.child("loadBalancerClass"),
                               "may only be used when `type` is 'LoadBalancer'"));
    }
  }
  std::string_view etp = str(spec, "externalTrafficPolicy");
  if (!externally_accessible(spec)) {
    if (!etp.empty()) {
      errs.push_back(invalid_str(kSpec.child("externalTrafficPolicy"), etp,
                                 "may only be set for externally-accessible services"));
    }
  } else if (etp.empty()) {
    errs.push_back(required(kSpec.child("externalTrafficPolicy")));
  } else if (etp != "Cluster" && etp != "Local") {
    errs.push_back(
        not_supported(kSpec.child("externalTrafficPolicy"), q(etp), {"Cluster", "Local"}));
  }
  std::int64_t hc = integer(spec, "healthCheckNodePort").value_or(0);
  bool needs_hc = type == "LoadBalancer" && etp == "Local";
  if (!needs_hc) {
    if (hc != 0) {
      errs.push_back(invalid_int(kSpec.child("healthCheckNodePort"), hc,
                                 "may only be set when `type` is 'LoadBalancer' and "
                                 "`externalTrafficPolicy` is 'Local'"));
    }
  } else if (hc == 0) {
    errs.push_back(required(kSpec.child("healthCheckNodePort")));
  } else {
    for (auto& m : is_valid_port_num(hc))
      errs.push_back(invalid_int(kSpec.child("healthCheckNodePort"), hc, m));
  }
  const json::value* itp = field(spec, "internalTrafficPolicy");
  if (itp == nullptr && (type == "NodePort" || type == "LoadBalancer" || type == "ClusterIP")) {
    errs.push_back(required(kSpec.child("internalTrafficPolicy")));
  }
  if (itp && str(itp) != "Cluster" && str(itp) != "Local") {
    errs.push_back(
        not_supported(kSpec.child("internalTrafficPolicy"), q(str(itp)), {"Cluster", "Local"}));
  }
  if (const json::value* td = field(spec, "trafficDistribution"); td && str(td) != "PreferClose") {
    errs.push_back(not_supported(kSpec.child("trafficDistribution"), q(str(td)), {"PreferClose"}));
  }
  return errs;
}

// The node-port allocator's range check (default --service-node-port-range).
Errors node_port_range(const json::object* spec, const json::object* old_spec) {
  Errors errs;
  const json::array* ports = arr(spec, "ports");
  std::set<std::int64_t> existing;
  if (const json::array* op = arr(old_spec, "ports")) {
    for (const auto& p : *op) existing.insert(integer(p.if_object(), "nodePort").value_or(0));
  }
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    std::int64_t np = integer((*ports)[i].if_object(), "nodePort").value_or(0);
    if (np == 0 || existing.contains(np) || (np >= 30000 && np <= 32767)) continue;
    errs.push_back(invalid_int(kSpec.child("ports").index(i).child("nodePort"), np,
                               "provided port is not in the valid range. The range of valid ports "
                               "is 30000-32767"));
  }
  return errs;
}

Errors service_validate(const api::Resource&, const json::object& svc, const json::object* old) {
  const json::object* spec = obj(svc, "spec");
  if (old == nullptr) {
    Errors errs = service_validate_spec(svc);
    std::string_view type = str(spec, "type");
    if (type == "NodePort" || type == "LoadBalancer") add(errs, node_port_range(spec, nullptr));
    return errs;
  }
  Errors errs = object_meta_update(svc, *old);
  const json::object* old_spec = obj(*old, "spec");
  std::string_view type = str(spec, "type");
  std::string_view old_type = str(old_spec, "type");
  bool external_name = type == "ExternalName" || old_type == "ExternalName";
  Path ips_path = kSpec.child("clusterIPs");
  const json::array* ips = arr(spec, "clusterIPs");
  const json::array* old_ips = arr(old_spec, "clusterIPs");
  if (!external_name && !(headless(spec) && headless(old_spec))) {
    std::string shown = go_string_slice(field(spec, "clusterIPs"));
    std::size_t n = size_of(ips), on = size_of(old_ips);
    if (n == on) {
      for (std::size_t i = 0; i < on; ++i) {
        if (str(&(*old_ips)[i]) != str(&(*ips)[i])) {
          errs.push_back(invalid(ips_path.index(i), shown, "may not change once set"));
        }
      }
    } else if (on > n) {
      if (n == 0)
        errs.push_back(invalid(ips_path.index(0), shown, "primary clusterIP can not be unset"));
      if (n > 0 && on > 0 && str(&(*ips)[0]) != str(&(*old_ips)[0])) {
        errs.push_back(invalid(ips_path.index(0), shown, "may not change once set"));
      }
      if (n == 1 && str(spec, "ipFamilyPolicy") != "SingleStack") {
        const json::value* pol = field(spec, "ipFamilyPolicy");
        errs.push_back(
            invalid(kSpec.child("ipFamilyPolicy"), pol ? q(str(pol)) : "null",
                    "must be set to 'SingleStack' when releasing the secondary clusterIP"));
      }
    } else if (on > 0 && str(&(*ips)[0]) != str(&(*old_ips)[0])) {
      errs.push_back(invalid(ips_path.index(0), shown, "may not change once set"));
    }
  }
  if (!external_name && headless(spec) == headless(old_spec) && !headless(spec)) {
    const json::array* fams = arr(spec, "ipFamilies");
    const json::array* old_fams = arr(old_spec, "ipFamilies");
    std::string shown = go_value(fams ? json::value(*fams) : json::value(nullptr));
    Path fp = kSpec.child("ipFamilies").index(0);
    std::size_t n = size_of(fams), on = size_of(old_fams);
    if (n == on) {
      for (std::size_t i = 0; i < on; ++i) {
        if (str(&(*old_fams)[i]) != str(&(*fams)[i]))
          errs.push_back(invalid(fp, shown, "may not change once set"));
      }
    } else if (on > n) {
      if (size_of(ips) == 0)
        errs.push_back(invalid(fp, shown, "primary ipFamily can not be unset"));
      if (n > 0 && str(&(*fams)[0]) != str(&(*old_fams)[0])) {
        errs.push_back(
            invalid(fp, go_string_slice(field(spec, "clusterIPs")), "may not change once set"));
      }
      if (n == 1 && str(spec, "ipFamilyPolicy") != "SingleStack") {
        const json::value* pol = field(spec, "ipFamilyPolicy");
        errs.push_back(
            invalid(kSpec.child("ipFamilyPolicy"), pol ? q(str(pol)) : "null",
                    "must be set to 'SingleStack' when releasing the secondary ipFamily"));
      }
    } else if (on > 0 && n > 0 && str(&(*fams)[0]) != str(&(*old_fams)[0])) {
      errs.push_back(
          invalid(fp, go_string_slice(field(spec, "clusterIPs")), "may not change once set"));
    }
  }
  if (type == "LoadBalancer" && old_type == "LoadBalancer" &&
      !semantic_equal(field(spec, "loadBalancerClass"), field(old_spec, "loadBalancerClass"))) {
    const json::value* lbc = field(spec, "loadBalancerClass");
    errs.push_back(invalid(kSpec.child("loadBalancerClass"), lbc ? q(str(lbc)) : "null",
                           "may not change once set"));
  }
  bool old_hc = old_type == "LoadBalancer" && str(old_spec, "externalTrafficPolicy") == "Local";
  bool new_hc = type == "LoadBalancer" && str(spec, "externalTrafficPolicy") == "Local";
  if (old_hc && new_hc &&
      integer(spec, "healthCheckNodePort") != integer(old_spec, "healthCheckNodePort")) {
    errs.push_back(forbidden(kSpec.child("healthCheckNodePort"), kFieldImmutable));
  }
  add(errs, service_validate_spec(svc));
  if (type == "NodePort" || type == "LoadBalancer") add(errs, node_port_range(spec, old_spec));
  return errs;
}

Errors service_status(const api::Resource&, const json::object& svc, const json::object& old) {
  Errors errs = object_meta_update(svc, old);
  Path ip = kStatus.child("loadBalancer", "ingress");
  const json::array* ingress = arr(obj(obj(svc, "status"), "loadBalancer"), "ingress");
  if (str(obj(svc, "spec"), "type") != "LoadBalancer" && size_of(ingress) != 0) {
    errs.push_back(forbidden(ip, "may only be used when `spec.type` is 'LoadBalancer'"));
    return errs;
  }
  for (std::size_t i = 0; ingress && i < ingress->size(); ++i) {
    const json::object* in = (*ingress)[i].if_object();
    Path ep = ip.index(i);
    std::string_view addr = str(in, "ip");
    if (!addr.empty()) add(errs, validate_ip(ep.child("ip"), addr));
    const json::value* mode = field(in, "ipMode");
    if (mode == nullptr) {
      if (!addr.empty())
        errs.push_back(required(ep.child("ipMode"), "must be specified when `ip` is set"));
    } else if (addr.empty()) {
      errs.push_back(forbidden(ep.child("ipMode"), "may not be specified when `ip` is not set"));
    } else if (str(mode) != "VIP" && str(mode) != "Proxy") {
      errs.push_back(not_supported(ep.child("ipMode"), q(str(mode)), {"Proxy", "VIP"}));
    }
    std::string_view host = str(in, "hostname");
    if (!host.empty()) {
      add(errs, dns1123_subdomain(ep.child("hostname"), host));
      if (parse_ip(host)) {
        errs.push_back(
            invalid_str(ep.child("hostname"), host, "must be a DNS name, not an IP address"));
      }
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

void endpoints_defaults(json::object& ep, bool) {
  json::array* subsets = marr(ep, "subsets");
  for (std::size_t i = 0; subsets && i < subsets->size(); ++i) {
    json::object* ss = (*subsets)[i].if_object();
    json::array* ports = ss ? marr(*ss, "ports") : nullptr;
    for (std::size_t j = 0; ports && j < ports->size(); ++j) {
      if (json::object* p = (*ports)[j].if_object()) set_default(*p, "protocol", "TCP");
    }
  }
}

void endpoint_address(Errors& errs, const json::object* a, const Path& p) {
  std::string_view ip = str(a, "ip");
  add(errs, validate_ip(p.child("ip"), ip));
  if (std::string_view h = str(a, "hostname"); !h.empty())
    add(errs, dns1123_label(p.child("hostname"), h));
  if (const json::value* node = field(a, "nodeName")) {
    add(errs, name_with(name_is_dns_subdomain, p.child("nodeName"), str(node)));
  }
  add(errs, validate_non_special_ip(p.child("ip"), ip));
}

Errors endpoints_validate(const api::Resource&, const json::object& ep, const json::object* old) {
  Errors errs;
  if (old) errs = object_meta_update(ep, *old);
  add(errs, object_meta(ep, true, name_is_dns_subdomain));
  const json::array* subsets = arr(ep, "subsets");
  for (std::size_t i = 0; subsets && i < subsets->size(); ++i) {
    const json::object* ss = (*subsets)[i].if_object();
    Path sp = Path().child("subsets").index(i);
    const json::array* addrs = arr(ss, "addresses");
    const json::array* not_ready = arr(ss, "notReadyAddresses");
    if (size_of(addrs) == 0 && size_of(not_ready) == 0) {
      errs.push_back(required(sp, "must specify `addresses` or `notReadyAddresses`"));
    }
    for (std::size_t j = 0; addrs && j < addrs->size(); ++j) {
      endpoint_address(errs, (*addrs)[j].if_object(), sp.child("addresses").index(j));
    }
    for (std::size_t j = 0; not_ready && j < not_ready->size(); ++j) {
      endpoint_address(errs, (*not_ready)[j].if_object(), sp.child("notReadyAddresses").index(j));
    }
    const json::array* ports = arr(ss, "ports");
    for (std::size_t j = 0; ports && j < ports->size(); ++j) {
      const json::object* port = (*ports)[j].if_object();
      Path pp = sp.child("ports").index(j);
      std::string_view name = str(port, "name");
      if (ports->size() > 1 && name.empty()) {
        errs.push_back(required(pp.child("name")));
      } else if (!name.empty()) {
        add(errs, dns1123_label(pp.child("name"), name));
      }
      std::int64_t n = integer(port, "port").value_or(0);
      for (auto& m : is_valid_port_num(n)) errs.push_back(invalid_int(pp.child("port"), n, m));
      std::string_view proto = str(port, "protocol");
      if (proto.empty()) {
        errs.push_back(required(pp.child("protocol")));
      } else if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
        errs.push_back(not_supported(pp.child("protocol"), q(proto), {"SCTP", "TCP", "UDP"}));
      }
      if (const json::value* ap = field(port, "appProtocol")) {
        add(errs, qualified_name(pp.child("appProtocol"), str(ap)));
      }
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// ConfigMap and Secret

// Decoded length of standard base64, or nullopt (with the offending byte offset) when invalid.
std::optional<std::string> base64_decode(std::string_view s, std::size_t* bad_at) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  std::size_t i = 0;
  for (; i < s.size() && s[i] != '='; ++i) {
    int v = val(s[i]);
    if (v < 0) {
      *bad_at = i;
      return std::nullopt;
    }
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  std::size_t pad = s.size() - i;
  if ((s.size() % 4) != 0 || pad > 2) {
    *bad_at = s.size() % 4 != 0 ? (s.size() / 4) * 4 : i;
    return std::nullopt;
  }
  for (; i < s.size(); ++i) {
    if (s[i] != '=') {
      *bad_at = i;
      return std::nullopt;
    }
  }
  return out;
}

std::string base64_encode(std::string_view s) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < s.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(s[i]) << 16) |
                 (static_cast<unsigned char>(s[i + 1]) << 8) | static_cast<unsigned char>(s[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < s.size()) {
    unsigned v = static_cast<unsigned char>(s[i]) << 16;
    if (i + 1 < s.size()) v |= static_cast<unsigned char>(s[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < s.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Errors configmap_validate(const api::Resource&, const json::object& cm, const json::object* old) {
  Errors errs;
  if (old) {
    errs = object_meta_update(cm, *old);
    if (boolean(old, "immutable")) {
      if (!boolean(&cm, "immutable")) {
        errs.push_back(
            forbidden(Path().child("immutable"), "field is immutable when `immutable` is set"));
      }
      for (std::string_view f : {"data", "binaryData"}) {
        if (!semantic_equal(field(cm, f), field(*old, f))) {
          errs.push_back(forbidden(Path().child(f), "field is immutable when `immutable` is set"));
        }
      }
    }
  }
  add(errs, object_meta(cm, true, name_is_dns_subdomain));
  std::int64_t total = 0;
  const json::object* data = obj(cm, "data");
  const json::object* binary = obj(cm, "binaryData");
  for (const auto& e : data ? *data : empty_object()) {
    Path kp = Path().child("data").key(e.key());
    for (auto& m : is_config_map_key(e.key())) errs.push_back(invalid_str(kp, e.key(), m));
    if (binary && binary->contains(e.key())) {
      errs.push_back(invalid_str(kp, e.key(), "duplicate of key present in binaryData"));
    }
    total += static_cast<std::int64_t>(str(&e.value()).size());
  }
  for (const auto& e : binary ? *binary : empty_object()) {
    Path kp = Path().child("binaryData").key(e.key());
    for (auto& m : is_config_map_key(e.key())) errs.push_back(invalid_str(kp, e.key(), m));
    std::size_t bad = 0;
    auto decoded = base64_decode(str(&e.value()), &bad);
    total += decoded ? static_cast<std::int64_t>(decoded->size())
                     : static_cast<std::int64_t>(str(&e.value()).size() * 3 / 4);
  }
  if (total > kMaxSecretSize) errs.push_back(too_long(Path::root(""), kMaxSecretSize));
  return errs;
}

void secret_defaults(json::object& secret, bool) {
  set_default(secret, "type", "Opaque");
  // v1 conversion: stringData is write-only and merged into data.
  if (const json::object* sd = obj(secret, "stringData")) {
    json::object string_data = *sd;
    json::object& data = ensure_obj(secret, "data");
    for (const auto& e : string_data) slot(data, e.key()) = base64_encode(str(&e.value()));
  }
  secret.erase("stringData");
}

Errors secret_validate(const api::Resource&, const json::object& secret, const json::object* old) {
  Errors errs;
  if (old) {
    errs = object_meta_update(secret, *old);
    if (str(secret, "type") != str(*old, "type")) {
      errs.push_back(invalid_str(Path().child("type"), str(secret, "type"), kFieldImmutable));
    }
    if (boolean(old, "immutable")) {
      if (!boolean(&secret, "immutable")) {
        errs.push_back(
            forbidden(Path().child("immutable"), "field is immutable when `immutable` is set"));
      }
      if (!semantic_equal(field(secret, "data"), field(*old, "data"))) {
        errs.push_back(
            forbidden(Path().child("data"), "field is immutable when `immutable` is set"));
      }
    }
  }
  add(errs, object_meta(secret, true, name_is_dns_subdomain));
  Path dp = Path().child("data");
  const json::object* data = obj(secret, "data");
  std::map<std::string, std::string, std::less<>> decoded;
  std::int64_t total = 0;
  for (const auto& e : data ? *data : empty_object()) {
    for (auto& m : is_config_map_key(e.key()))
      errs.push_back(invalid_str(dp.key(e.key()), e.key(), m));
    std::size_t bad = 0;
    auto d = base64_decode(str(&e.value()), &bad);
    if (!d) {
      errs.push_back(invalid_str(dp.key(e.key()), "<secret contents redacted>",
                                 "illegal base64 data at input byte " + std::to_string(bad)));
      continue;
    }
    total += static_cast<std::int64_t>(d->size());
    decoded.emplace(std::string(e.key()), std::move(*d));
  }
  if (total > kMaxSecretSize) errs.push_back(too_long(dp, kMaxSecretSize));
  std::string_view type = str(secret, "type");
  auto require_key = [&](std::string_view key) {
    if (!decoded.contains(key) && !(data && data->contains(key))) {
      errs.push_back(required(dp.key(key)));
      return false;
    }
    return true;
  };
  auto require_json = [&](std::string_view key) {
    if (!require_key(key)) return;
    auto it = decoded.find(key);
    if (it == decoded.end()) return;
    boost::system::error_code ec;
    json::value v = json::parse(it->second, ec);
    if (ec || !v.is_object()) {
      errs.push_back(invalid_str(dp.key(key), "<secret contents redacted>",
                                 ec ? ec.message() : "json: cannot unmarshal into map"));
    }
  };
  if (type == "kubernetes.io/service-account-token") {
    if (str(obj(obj(secret, "metadata"), "annotations"), "kubernetes.io/service-account.name")
            .empty()) {
      errs.push_back(
          required(kMeta.child("annotations").key("kubernetes.io/service-account.name")));
    }
  } else if (type == "kubernetes.io/dockercfg") {
    require_json(".dockercfg");
  } else if (type == "kubernetes.io/dockerconfigjson") {
    require_json(".dockerconfigjson");
  } else if (type == "kubernetes.io/basic-auth") {
    bool user = data && data->contains("username");
    bool pass = data && data->contains("password");
    if (!user && !pass) {
      errs.push_back(required(dp.key("username")));
      errs.push_back(required(dp.key("password")));
    }
  } else if (type == "kubernetes.io/ssh-auth") {
    auto it = decoded.find("ssh-privatekey");
    if (it == decoded.end() || it->second.empty())
      errs.push_back(required(dp.key("ssh-privatekey")));
  } else if (type == "kubernetes.io/tls") {
    if (!(data && data->contains("tls.crt"))) errs.push_back(required(dp.key("tls.crt")));
    if (!(data && data->contains("tls.key"))) errs.push_back(required(dp.key("tls.key")));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount and Event

Errors service_account_validate(const api::Resource&, const json::object& sa,
                                const json::object* old) {
  Errors errs;
  if (old) errs = object_meta_update(sa, *old);
  add(errs, object_meta(sa, true, name_is_dns_subdomain));
  return errs;
}

// legacyValidateEvent for the core/v1 API: events.k8s.io's stricter rules do not apply.
Errors event_validate(const api::Resource&, const json::object& ev, const json::object* old) {
  Errors errs;
  const json::object* meta = obj(ev, "metadata");
  std::string_view ns = str(meta, "namespace");
  std::string_view involved_ns = str(obj(ev, "involvedObject"), "namespace");
  Path inp = Path().child("involvedObject", "namespace");
  if (str(ev, "eventTime").empty()) {
    if (involved_ns.empty()) {
      if (!ns.empty() && ns != "default")
        errs.push_back(invalid_str(inp, involved_ns, "does not match event.namespace"));
    } else if (ns != involved_ns) {
      errs.push_back(invalid_str(inp, involved_ns, "does not match event.namespace"));
    }
  } else {
    if (involved_ns.empty() && ns != "default" && ns != "kube-system") {
      errs.push_back(invalid_str(inp, involved_ns, "does not match event.namespace"));
    }
    std::string_view controller = str(ev, "reportingComponent");
    Path cp = Path().child("reportingComponent");
    if (controller.empty()) errs.push_back(required(cp));
    add(errs, qualified_name(cp, controller));
    auto limit = [&](std::string_view f, std::size_t max, bool required_too) {
      std::string_view v = str(ev, f);
      if (required_too && v.empty()) errs.push_back(required(Path().child(f)));
      if (v.size() > max) {
        errs.push_back(invalid_str(Path().child(f), "",
                                   "can have at most " + std::to_string(max) + " characters"));
      }
    };
    limit("reportingInstance", 128, true);
    limit("action", 128, true);
    limit("reason", 128, true);
    limit("message", 1024, false);
  }
  for (auto& m : is_dns1123_subdomain(ns))
    errs.push_back(invalid_str(Path().child("namespace"), ns, m));
  (void)old;
  return errs;
}

constexpr std::array kCoreKinds = {
    KindRules{"", "Namespace", namespace_defaults, namespace_validate, namespace_status},
    KindRules{"", "Pod", pod_defaults, pod_validate, pod_status},
    KindRules{"", "Node", node_defaults, node_validate, node_status},
    KindRules{"", "Service", service_defaults, service_validate, service_status},
    KindRules{"", "Endpoints", endpoints_defaults, endpoints_validate, nullptr},
    KindRules{"", "ConfigMap", nullptr, configmap_validate, nullptr},
    KindRules{"", "Secret", secret_defaults, secret_validate, nullptr},
    KindRules{"", "ServiceAccount", nullptr, service_account_validate, nullptr},
    KindRules{"", "Event", nullptr, event_validate, nullptr},
};

}  // namespace

std::span<const KindRules> core_kinds() { return kCoreKinds; }

}  // namespace podwarp::validation
