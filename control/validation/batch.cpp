// batch/v1: Job, CronJob.
// Upstream: pkg/apis/batch/validation/validation.go, pkg/apis/batch/v1/defaults.go, the Job
// strategy's selector generation and robfig/cron's standard schedule parser.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"
#include "validation/podspec.h"

namespace podwarp::validation {

namespace {

const Path kMeta = Path().child("metadata");
const Path kSpec = Path().child("spec");
const Path kStatus = Path().child("status");

constexpr std::string_view kLegacyUid = "controller-uid";
constexpr std::string_view kLegacyName = "job-name";
constexpr std::string_view kUid = "batch.kubernetes.io/controller-uid";
constexpr std::string_view kName = "batch.kubernetes.io/job-name";

// ---------------------------------------------------------------------------------------------
// Job

void job_spec_defaults(json::object& spec) {
  if (!field(spec, "completions") && !field(spec, "parallelism")) {
    slot(spec, "completions") = 1;
    slot(spec, "parallelism") = 1;
  }
  if (!field(spec, "parallelism")) slot(spec, "parallelism") = 1;
  if (!field(spec, "backoffLimit")) {
    slot(spec, "backoffLimit") = field(spec, "backoffLimitPerIndex") ? 2147483647 : 6;
  }
  set_default(spec, "completionMode", "NonIndexed");
  if (!field(spec, "suspend")) slot(spec, "suspend") = false;
  if (json::object* pfp = mobj(spec, "podFailurePolicy")) {
    if (json::array* rules = marr(*pfp, "rules")) {
      for (auto& r : *rules) {
        json::object* ro = r.if_object();
        json::array* conds = ro ? marr(*ro, "onPodConditions") : nullptr;
        for (std::size_t i = 0; conds && i < conds->size(); ++i) {
          if (json::object* c = (*conds)[i].if_object()) set_default(*c, "status", "True");
        }
      }
    }
  }
  if (!field(spec, "podReplacementPolicy")) {
    slot(spec, "podReplacementPolicy") =
        field(spec, "podFailurePolicy") ? "Failed" : "TerminatingOrFailed";
  }
  default_pod_template(ensure_obj(spec, "template"));
}

// SetDefaults_Job: a job without labels of its own takes its template's.
void copy_template_labels(json::object& job) {
  const json::object* tmpl_labels =
      obj(obj(obj(obj(job, "spec"), "template"), "metadata"), "labels");
  if (tmpl_labels == nullptr || size_of(obj(obj(job, "metadata"), "labels")) != 0) return;
  json::value copy = *tmpl_labels;
  slot(ensure_obj(job, "metadata"), "labels") = std::move(copy);
}

void job_defaults(json::object& job, bool creating) {
  copy_template_labels(job);
  job_spec_defaults(ensure_obj(job, "spec"));
  // jobStrategy.PrepareForCreate: generate the selector unless manualSelector is true.
  std::string uid(str(obj(job, "metadata"), "uid"));
  std::string name(str(obj(job, "metadata"), "name"));
  json::object& spec = ensure_obj(job, "spec");
  if (!creating || uid.empty() || boolean(&spec, "manualSelector")) return;
  json::object& labels = ensure_obj(ensure_obj(ensure_obj(spec, "template"), "metadata"), "labels");
  for (std::string_view k : {kLegacyName, kName}) {
    if (!labels.contains(k)) slot(labels, k) = name;
  }
  for (std::string_view k : {kLegacyUid, kUid}) {
    if (!labels.contains(k)) slot(labels, k) = uid;
  }
  json::object& ml = ensure_obj(ensure_obj(spec, "selector"), "matchLabels");
  if (!ml.contains(kUid)) slot(ml, kUid) = uid;
  // Upstream defaults the stored job again when reading it back, so a job created without
  // labels shows the generated ones; settle on that state now.
  copy_template_labels(job);
}

void has_label(Errors& errs, const json::object* tmpl_meta, std::string_view key,
               std::string_view expected) {
  Path lp = kSpec.child("template", "metadata", "labels").key(key);
  const json::value* v = field(obj(tmpl_meta, "labels"), key);
  if (v == nullptr) {
    errs.push_back(required(lp, "must be '" + std::string(expected) + "'"));
  } else if (str(v) != expected) {
    errs.push_back(invalid(lp, go_string_map(field(tmpl_meta, "labels")),
                           "must be '" + std::string(expected) + "'"));
  }
}

void generated_selector(Errors& errs, const json::object& job) {
  const json::object* spec = obj(job, "spec");
  if (boolean(spec, "manualSelector") || !field(spec, "selector")) return;
  const json::object* meta = obj(job, "metadata");
  std::string_view uid = str(meta, "uid");
  std::string_view name = str(meta, "name");
  if (uid.empty()) errs.push_back(required(kMeta.child("uid")));
  const json::object* tmeta = obj(obj(spec, "template"), "metadata");
  has_label(errs, tmeta, kLegacyUid, uid);
  has_label(errs, tmeta, kLegacyName, name);
  has_label(errs, tmeta, kUid, uid);
  has_label(errs, tmeta, kName, name);
  json::object expected;
  slot(expected, kUid) = uid;
  slot(expected, kName) = name;
  slot(expected, kLegacyUid) = uid;
  slot(expected, kLegacyName) = name;
  json::value ev = expected;
  auto sel = as_selector(field(spec, "selector"));
  if (sel && !sel->matches(&ev)) {
    errs.push_back(invalid(kSpec.child("selector"), go_label_selector(field(spec, "selector")),
                           "`selector` not auto-generated"));
  }
}

void domain_prefixed_path(Errors& errs, std::string_view v, const Path& p) {
  if (v.empty()) {
    errs.push_back(required(p));
    return;
  }
  std::size_t slash = v.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == v.size()) {
    errs.push_back(invalid_str(p, v, "must be a domain-prefixed path (such as \"acme.io/foo\")"));
    return;
  }
  std::string_view host = v.substr(0, slash);
  for (auto& m : is_dns1123_subdomain(host)) errs.push_back(invalid_str(p, host, m));
  std::string_view path = v.substr(slash + 1);
  for (char c : path) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("/-._~%!$&'()*+,;=:").find(c) == std::string_view::npos) {
      errs.push_back(invalid_str(p, path,
                                 "Invalid path (regex used for validation is "
                                 "'[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')"));
      return;
    }
  }
}

std::optional<std::string> parse_indexes(std::string_view s, std::int64_t completions,
                                         std::int64_t* total) {
  *total = 0;
  if (s.empty()) return std::nullopt;
  std::optional<std::int64_t> last;
  std::size_t start = 0;
  while (true) {
    std::size_t comma = s.find(',', start);
    std::string_view part =
        s.substr(start, comma == std::string_view::npos ? s.npos : comma - start);
    std::vector<std::string_view> limits;
    std::size_t ps = 0;
    while (true) {
      std::size_t dash = part.find('-', ps);
      limits.push_back(part.substr(ps, dash == std::string_view::npos ? part.npos : dash - ps));
      if (dash == std::string_view::npos) break;
      ps = dash + 1;
    }
    if (limits.size() > 2) {
      return "the fragment " + q(part) +
             " violates the requirement that an index interval can have at most two parts "
             "separated by '-'";
    }
    std::int64_t xy[2] = {0, 0};
    for (std::size_t i = 0; i < limits.size(); ++i) {
      auto r = std::from_chars(limits[i].data(), limits[i].data() + limits[i].size(), xy[i]);
      if (r.ec != std::errc() || r.ptr != limits[i].data() + limits[i].size()) {
        return "cannot convert string to integer for index: " + q(limits[i]);
      }
      if (xy[i] >= completions) return "too large index: " + q(limits[i]);
    }
    if (limits.size() == 1) xy[1] = xy[0];
    if (limits.size() == 2 && xy[0] >= xy[1]) {
      return "non-increasing order, previous: " + std::to_string(xy[0]) +
             ", current: " + std::to_string(xy[1]);
    }
    if (last && *last >= xy[0]) {
      return "non-increasing order, previous: " + std::to_string(*last) +
             ", current: " + std::to_string(xy[0]);
    }
    *total += xy[1] - xy[0] + 1;
    last = xy[1];
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return std::nullopt;
}

void pod_failure_policy(Errors& errs, const json::object* spec, const Path& p) {
  const json::object* pfp = obj(spec, "podFailurePolicy");
  const json::array* rules = arr(pfp, "rules");
  Path rp = p.child("rules");
  if (size_of(rules) > 20)
    errs.push_back(too_many(rp, static_cast<std::int64_t>(rules->size()), 20));
  std::set<std::string_view> containers;
  for (std::string_view list : {"containers", "initContainers"}) {
    const json::array* cs = arr(obj(obj(spec, "template"), "spec"), list);
    for (std::size_t i = 0; cs && i < cs->size(); ++i)
      containers.insert(str((*cs)[i].if_object(), "name"));
  }
  for (std::size_t i = 0; rules && i < rules->size(); ++i) {
    const json::object* rule = (*rules)[i].if_object();
    Path ip = rp.index(i);
    std::string_view action = str(rule, "action");
    const std::vector<std::string> kActions = {"Count", "FailIndex", "FailJob", "Ignore"};
    if (action.empty()) {
      errs.push_back(required(ip.child("action"),
                              "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]"));
    } else if (action == "FailIndex") {
      if (!field(spec, "backoffLimitPerIndex")) {
        errs.push_back(
            invalid_str(ip.child("action"), action, "requires the backoffLimitPerIndex to be set"));
      }
    } else if (std::find(kActions.begin(), kActions.end(), action) == kActions.end()) {
      errs.push_back(not_supported(ip.child("action"), q(action), kActions));
    }
    const json::object* codes = obj(rule, "onExitCodes");
    const json::array* conds = arr(rule, "onPodConditions");
    if (codes) {
      Path cp = ip.child("onExitCodes");
      std::string_view op = str(codes, "operator");
      if (op.empty()) {
        errs.push_back(required(cp.child("operator"), "valid values: [\"In\" \"NotIn\"]"));
      } else if (op != "In" && op != "NotIn") {
        errs.push_back(not_supported(cp.child("operator"), q(op), {"In", "NotIn"}));
      }
      if (const json::value* cn = field(*codes, "containerName");
          cn && !containers.contains(str(cn))) {
        errs.push_back(invalid_str(cp.child("containerName"), str(cn),
                                   "must be one of the container or initContainer names in the pod "
                                   "template"));
      }
      const json::array* values = arr(codes, "values");
      if (size_of(values) == 0) {
        errs.push_back(
            invalid(cp.child("values"), "[]int32(nil)", "at least one value is required"));
      } else if (values->size() > 255) {
        errs.push_back(
            too_many(cp.child("values"), static_cast<std::int64_t>(values->size()), 255));
      }
      std::set<std::int64_t> seen;
      bool ordered = true;
      for (std::size_t j = 0; values && j < values->size(); ++j) {
        std::int64_t v = integer(&(*values)[j]).value_or(0);
        Path vp = cp.child("values").index(j);
        if (op == "In" && v == 0)
          errs.push_back(invalid_int(vp, v, "must not be 0 for the In operator"));
        if (!seen.insert(v).second) errs.push_back(duplicate(vp, num(v)));
        if (j > 0 && integer(&(*values)[j - 1]).value_or(0) > v) ordered = false;
      }
      if (!ordered)
        errs.push_back(
            invalid(cp.child("values"), go_value(*field(*codes, "values")), "must be ordered"));
    }
    if (size_of(conds) > 0) {
      Path cp = ip.child("onPodConditions");
      if (conds->size() > 20)
        errs.push_back(too_many(cp, static_cast<std::int64_t>(conds->size()), 20));
      for (std::size_t j = 0; j < conds->size(); ++j) {
        const json::object* c = (*conds)[j].if_object();
        add(errs, qualified_name(cp.index(j).child("type"), str(c, "type")));
        std::string_view st = str(c, "status");
        if (st.empty()) {
          errs.push_back(required(cp.index(j).child("status"),
                                  "valid values: [\"False\" \"True\" \"Unknown\"]"));
        } else if (st != "True" && st != "False" && st != "Unknown") {
          errs.push_back(
              not_supported(cp.index(j).child("status"), q(st), {"False", "True", "Unknown"}));
        }
      }
    }
    if (codes && size_of(conds) > 0) {
      errs.push_back(
          invalid_omit(ip, "specifying both OnExitCodes and OnPodConditions is not supported"));
    }
    if (!codes && size_of(conds) == 0) {
      errs.push_back(
          invalid_omit(ip, "specifying one of OnExitCodes and OnPodConditions is required"));
    }
  }
}

// validateJobSpec: everything but the selector.
Errors job_spec_common(const json::object* spec, const Path& p) {
  Errors errs;
  for (std::string_view f : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                             "ttlSecondsAfterFinished", "backoffLimitPerIndex"}) {
    nonneg(errs, spec, f, p);
  }
  auto max_failed = integer(spec, "maxFailedIndexes");
  auto completions = integer(spec, "completions");
  auto parallelism = integer(spec, "parallelism");
  bool per_index = field(spec, "backoffLimitPerIndex") != nullptr;
  if (max_failed) {
    nonneg(errs, spec, "maxFailedIndexes", p);
    if (!per_index)
      errs.push_back(
          required(p.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
  }
  if (const json::value* mb = field(spec, "managedBy")) {
    domain_prefixed_path(errs, str(mb), p.child("managedBy"));
    if (str(mb).size() > 63) errs.push_back(too_long(p.child("managedBy"), 63));
  }
  const json::value* mode_v = field(spec, "completionMode");
  std::string_view mode = str(mode_v);
  if (mode_v) {
    if (mode != "NonIndexed" && mode != "Indexed") {
      errs.push_back(not_supported(p.child("completionMode"), q(mode), {"NonIndexed", "Indexed"}));
    }
    if (mode == "Indexed") {
      if (!completions)
        errs.push_back(required(p.child("completions"), "when completion mode is Indexed"));
      if (parallelism && *parallelism > 100000) {
        errs.push_back(
            invalid_int(p.child("parallelism"), *parallelism,
                        "must be less than or equal to 100000 when completion mode is Indexed"));
      }
      if (completions && max_failed && *max_failed > *completions) {
        errs.push_back(invalid_int(p.child("maxFailedIndexes"), *max_failed,
                                   "must be less than or equal to completions"));
      }
      if (max_failed && *max_failed > 100000) {
        errs.push_back(invalid_int(p.child("maxFailedIndexes"), *max_failed,
                                   "must be less than or equal to 100000"));
      }
      if (completions && *completions > 100000 && per_index) {
        if (!max_failed) {
          errs.push_back(required(p.child("maxFailedIndexes"),
                                  "must be specified when completions is above 100000"));
        }
        if (parallelism && *parallelism > 10000) {
          errs.push_back(
              invalid_int(p.child("parallelism"), *parallelism,
                          "must be less than or equal to 10000 when completions are above "
                          "100000 and used with backoff limit per index"));
        }
        if (max_failed && *max_failed > 10000) {
          errs.push_back(
              invalid_int(p.child("maxFailedIndexes"), *max_failed,
                          "must be less than or equal to 10000 when completions are above "
                          "100000 and used with backoff limit per index"));
        }
      }
    }
  }
  if (!mode_v || mode == "NonIndexed") {
    if (auto b = integer(spec, "backoffLimitPerIndex")) {
      errs.push_back(
          invalid_int(p.child("backoffLimitPerIndex"), *b, "requires indexed completion mode"));
    }
    if (max_failed) {
      errs.push_back(invalid_int(p.child("maxFailedIndexes"), *max_failed,
                                 "requires indexed completion mode"));
    }
  }
  if (obj(spec, "podFailurePolicy")) pod_failure_policy(errs, spec, p.child("podFailurePolicy"));
  if (const json::object* sp = obj(spec, "successPolicy")) {
    Path spp = p.child("successPolicy");
    if (mode != "Indexed") {
      errs.push_back(invalid(spp, go_value(*field(*spec, "successPolicy")),
                             "requires indexed completion mode"));
    } else {
      const json::array* rules = arr(sp, "rules");
      Path rp = spp.child("rules");
      if (size_of(rules) == 0) {
        errs.push_back(required(
            rp, "at least one rules must be specified when the successPolicy is specified"));
      }
      if (size_of(rules) > 20)
        errs.push_back(too_many(rp, static_cast<std::int64_t>(rules->size()), 20));
      for (std::size_t i = 0; rules && i < rules->size(); ++i) {
        const json::object* rule = (*rules)[i].if_object();
        Path ip = rp.index(i);
        const json::value* count = field(rule, "succeededCount");
        const json::value* indexes = field(rule, "succeededIndexes");
        if (!count && !indexes) {
          errs.push_back(
              required(ip, "at least one of succeededCount or succeededIndexes must be specified"));
        }
        std::int64_t total = 0;
        if (indexes) {
          if (str(indexes).size() > 64 * 1024)
            errs.push_back(too_long(ip.child("succeededIndexes"), 64 * 1024));
          if (auto e = parse_indexes(str(indexes), completions.value_or(0), &total)) {
            errs.push_back(invalid_str(ip.child("succeededIndexes"), str(indexes),
                                       "error parsing succeededIndexes: " + *e));
          }
        }
        if (count) {
          std::int64_t c = integer(count).value_or(0);
          if (c < 0) errs.push_back(invalid_int(ip.child("succeededCount"), c, kIsNegative));
          if (c > completions.value_or(0)) {
            errs.push_back(invalid_int(ip.child("succeededCount"), c,
                                       "must be less than or equal to " +
                                           std::to_string(completions.value_or(0)) +
                                           " (the number of specified completions)"));
          }
          if (indexes && c > total) {
            errs.push_back(
                invalid_int(ip.child("succeededCount"), c,
                            "must be less than or equal to " + std::to_string(total) +
                                " (the number of indexes in the specified succeededIndexes "
                                "field)"));
          }
        }
      }
    }
  }
  if (const json::value* prp = field(spec, "podReplacementPolicy")) {
    std::string_view v = str(prp);
    if (obj(spec, "podFailurePolicy")) {
      if (v != "Failed")
        errs.push_back(not_supported(p.child("podReplacementPolicy"), q(v), {"Failed"}));
    } else if (v != "Failed" && v != "TerminatingOrFailed") {
      errs.push_back(
          not_supported(p.child("podReplacementPolicy"), q(v), {"Failed", "TerminatingOrFailed"}));
    }
  }
  const json::object* tmpl = obj(spec, "template");
  Path tp = p.child("template");
  add(errs, validate_pod_template_spec(tmpl, tp));
  std::string_view restart = str(obj(tmpl, "spec"), "restartPolicy");
  Path rpp = tp.child("spec", "restartPolicy");
  if (restart == "Always" || restart.empty()) {
    errs.push_back(required(rpp, "valid values: \"OnFailure\", \"Never\""));
  } else if (restart != "OnFailure" && restart != "Never") {
    errs.push_back(not_supported(rpp, q(restart), {"OnFailure", "Never"}));
  } else if (obj(spec, "podFailurePolicy") && restart != "Never") {
    errs.push_back(invalid_str(rpp, restart,
                               "only \"Never\" is supported when podFailurePolicy is specified"));
  }
  return errs;
}

Errors job_spec(const json::object* spec) {
  Errors errs = job_spec_common(spec, kSpec);
  const json::value* sel = field(spec, "selector");
  if (sel == nullptr) {
    errs.push_back(required(kSpec.child("selector")));
  } else {
    add(errs, validate_label_selector(sel, kSpec.child("selector")));
  }
  auto selector = as_selector(sel);
  const json::value* labels = field(obj(obj(spec, "template"), "metadata"), "labels");
  if (selector && !selector->matches(labels)) {
    errs.push_back(invalid(kSpec.child("template", "metadata", "labels"), go_string_map(labels),
                           "`selector` does not match template `labels`"));
  }
  return errs;
}

Errors job_validate(const api::Resource&, const json::object& job, const json::object* old) {
  const json::object* spec = obj(job, "spec");
  if (old == nullptr) {
    Errors errs = object_meta(job, true, name_is_dns_subdomain);
    generated_selector(errs, job);
    add(errs, job_spec(spec));
    auto completions = integer(spec, "completions");
    if (str(spec, "completionMode") == "Indexed" && completions && *completions > 0) {
      std::string_view name = str(obj(job, "metadata"), "name");
      std::string host = std::string(name) + "-" + std::to_string(*completions - 1);
      if (!is_dns1123_label(host).empty()) {
        errs.push_back(invalid_str(kMeta.child("name"), name,
                                   "will not able to create pod with invalid DNS label: " + host));
      }
    }
    return errs;
  }
  Errors errs = object_meta_update(job, *old);
  const json::object* old_spec = obj(*old, "spec");
  add(errs, job_spec(spec));
  Path cp = kSpec.child("completions");
  if (str(spec, "completionMode") != "Indexed") {
    if (integer(spec, "completions") != integer(old_spec, "completions")) {
      auto c = integer(spec, "completions");
      errs.push_back(invalid(cp, c ? num(*c) : "null", kFieldImmutable));
    }
  } else if (integer(spec, "completions") != integer(old_spec, "completions") &&
             integer(spec, "completions") &&
             integer(spec, "completions") != integer(spec, "parallelism")) {
    errs.push_back(invalid_int(cp, *integer(spec, "completions"),
                               "can only be modified in tandem with spec.parallelism"));
  }
  const json::value* sel = field(spec, "selector");
  check_immutable(errs, sel, field(old_spec, "selector"), kSpec.child("selector"),
                  go_label_selector(sel));
  // The template is immutable, except scheduling directives of a suspended job that never ran.
  json::value tmpl = field(spec, "template") ? *field(spec, "template") : json::value(nullptr);
  json::value old_tmpl =
      field(old_spec, "template") ? *field(old_spec, "template") : json::value(nullptr);
  bool mutable_scheduling =
      boolean(old_spec, "suspend") && !field(obj(*old, "status"), "startTime");
  if (mutable_scheduling && tmpl.is_object() && old_tmpl.is_object()) {
    json::object& o = old_tmpl.get_object();
    const json::object& n = tmpl.get_object();
    copy_fields(ensure_obj(o, "metadata"), obj(n, "metadata"), {"labels", "annotations"});
    json::object& os = ensure_obj(o, "spec");
    copy_fields(os, obj(n, "spec"), {"nodeSelector", "tolerations", "schedulingGates"});
    copy_node_affinity(os, obj(n, "spec"));
  }
  check_immutable(errs, &tmpl, &old_tmpl, kSpec.child("template"),
                  "core.PodTemplateSpec" + go_value(tmpl));
  for (std::string_view f : {"completionMode", "podFailurePolicy", "backoffLimitPerIndex",
                             "managedBy", "successPolicy"}) {
    const json::value* v = field(spec, f);
    check_immutable(errs, v, field(old_spec, f), kSpec.child(f), v ? go_value(*v) : "null");
  }
  return errs;
}

Errors job_status(const api::Resource&, const json::object& job, const json::object& old) {
  Errors errs = object_meta_update(job, old);
  const json::object* status = obj(job, "status");
  for (std::string_view f : {"active", "succeeded", "failed", "ready", "terminating"}) {
    nonneg(errs, status, f, kStatus);
  }
  std::set<std::string_view> seen;
  const json::object* uncounted = obj(status, "uncountedTerminatedPods");
  for (std::string_view f : {"succeeded", "failed"}) {
    const json::array* uids = arr(uncounted, f);
    for (std::size_t i = 0; uids && i < uids->size(); ++i) {
      std::string_view uid = str(&(*uids)[i]);
      Path up = kStatus.child("uncountedTerminatedPods", f).index(i);
      if (uid.empty()) {
        errs.push_back(invalid_str(up, uid, "must not be empty"));
      } else if (!seen.insert(uid).second) {
        errs.push_back(duplicate(up, q(uid)));
      }
    }
  }
  auto ready = integer(status, "ready");
  if (ready && *ready > integer(status, "active").value_or(0)) {
    errs.push_back(
        invalid_int(kStatus.child("ready"), *ready, "cannot set more ready pods than active"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// CronJob schedules (robfig/cron ParseStandard).

struct Bounds {
  unsigned min, max;
  const std::map<std::string, unsigned>* names;
};

const std::map<std::string, unsigned> kMonthNames = {
    {"jan", 1}, {"feb", 2}, {"mar", 3}, {"apr", 4},  {"may", 5},  {"jun", 6},
    {"jul", 7}, {"aug", 8}, {"sep", 9}, {"oct", 10}, {"nov", 11}, {"dec", 12}};
const std::map<std::string, unsigned> kDowNames = {{"sun", 0}, {"mon", 1}, {"tue", 2}, {"wed", 3},
                                                   {"thu", 4}, {"fri", 5}, {"sat", 6}};

// robfig/cron's mustParseInt: Go's strconv.Atoi (one optional sign, then digits, within the
// int64 range), then a non-negative uint. The value keeps 64 bits, so that "4294967296" is above
// the field's maximum rather than 0, and "--5" or "*/--9223372036854775808" are syntax errors
// (from_chars took the second sign, and negating the minimum overflowed).
std::optional<std::string> parse_int(std::string_view s, std::uint64_t& out) {
  std::string_view digits = s;
  bool neg = false;
  if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
    neg = digits[0] == '-';
    digits.remove_prefix(1);
  }
  std::uint64_t v = 0;  // from_chars takes no sign for an unsigned type
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  const std::string prefix =
      "failed to parse int from " + std::string(s) + ": strconv.Atoi: parsing " + q(s) + ": ";
  if (digits.empty() || r.ptr != digits.data() + digits.size() ||
      (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
    return prefix + "invalid syntax";
  }
  constexpr std::uint64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
  if (r.ec == std::errc::result_out_of_range || v > kMaxInt64 + (neg ? 1 : 0)) {
    return prefix + "value out of range";
  }
  if (neg && v != 0) {
    return "negative number (-" + std::to_string(v) + ") not allowed: " + std::string(s);
  }
  out = v;
  return std::nullopt;
}

std::optional<std::string> parse_int_or_name(std::string_view s, const Bounds& b,
                                             std::uint64_t& out) {
  if (b.names) {
    std::string lower(s);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (auto it = b.names->find(lower); it != b.names->end()) {
      out = it->second;
      return std::nullopt;
    }
  }
  return parse_int(s, out);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t at = s.find(sep, start);
    parts.push_back(s.substr(start, at == std::string_view::npos ? s.npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

std::optional<std::string> cron_range(std::string_view expr, const Bounds& b) {
  auto range_step = split(expr, '/');
  auto low_high = split(range_step[0], '-');
  std::uint64_t start = 0, end = 0, step = 1;
  if (low_high[0] == "*" || low_high[0] == "?") {
    start = b.min;
    end = b.max;
  } else {
    if (auto e = parse_int_or_name(low_high[0], b, start)) return e;
    if (low_high.size() == 1) {
      end = start;
    } else if (low_high.size() == 2) {
      if (auto e = parse_int_or_name(low_high[1], b, end)) return e;
    } else {
      return "too many hyphens: " + std::string(expr);
    }
  }
  if (range_step.size() == 2) {
    if (auto e = parse_int(range_step[1], step)) return e;
    if (low_high.size() == 1) end = b.max;
  } else if (range_step.size() > 2) {
    return "too many slashes: " + std::string(expr);
  }
  std::string e(expr);
  if (start < b.min) {
    return "beginning of range (" + std::to_string(start) + ") below minimum (" +
           std::to_string(b.min) + "): " + e;
  }
  if (end > b.max) {
    return "end of range (" + std::to_string(end) + ") above maximum (" + std::to_string(b.max) +
           "): " + e;
  }
  if (start > end) {
    return "beginning of range (" + std::to_string(start) + ") beyond end of range (" +
           std::to_string(end) + "): " + e;
  }
  if (step == 0) return "step of range should be a positive number: " + e;
  return std::nullopt;
}

bool valid_go_duration(std::string_view s) {
  if (s.empty()) return false;
  if (s[0] == '+' || s[0] == '-') s.remove_prefix(1);
  if (s == "0") return true;
  if (s.empty()) return false;
  while (!s.empty()) {
    std::size_t i = 0;
    bool digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        ++i;
        digits = true;
      }
    }
    if (!digits) return false;
    s.remove_prefix(i);
    bool unit = false;
    for (std::string_view u : {"ns", "us", "\xc2\xb5s", "\xce\xbcs", "ms", "s", "m", "h"}) {
      if (s.starts_with(u)) {
        s.remove_prefix(u.size());
        unit = true;
        break;
      }
    }
    if (!unit) return false;
  }
  return true;
}

std::optional<std::string> parse_schedule(std::string_view spec) {
  if (spec.empty()) return "empty spec string";
  if (spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=")) {
    std::size_t sp = spec.find(' ');
    if (sp == std::string_view::npos) return "parse error: missing schedule after time zone";
    spec = spec.substr(sp);
    while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.front())))
      spec.remove_prefix(1);
    while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back())))
      spec.remove_suffix(1);
  }
  if (spec.starts_with("@")) {
    for (std::string_view d :
         {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}) {
      if (spec == d) return std::nullopt;
    }
    if (spec.starts_with("@every ")) {
      std::string_view dur = spec.substr(7);
      if (valid_go_duration(dur)) return std::nullopt;
      return "failed to parse duration " + std::string(spec) + ": time: invalid duration " + q(dur);
    }
    return "unrecognized descriptor: " + std::string(spec);
  }
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < spec.size()) {
    while (i < spec.size() && std::isspace(static_cast<unsigned char>(spec[i]))) ++i;
    std::size_t start = i;
    while (i < spec.size() && !std::isspace(static_cast<unsigned char>(spec[i]))) ++i;
    if (i > start) fields.push_back(spec.substr(start, i - start));
  }
  if (fields.size() != 5) {
    std::string list = "[";
    for (std::size_t j = 0; j < fields.size(); ++j) {
      if (j > 0) list += ' ';
      list += fields[j];
    }
    list += ']';
    return "expected exactly 5 fields, found " + std::to_string(fields.size()) + ": " + list;
  }
  const Bounds bounds[5] = {{0, 59, nullptr},
                            {0, 23, nullptr},
                            {1, 31, nullptr},
                            {1, 12, &kMonthNames},
                            {0, 6, &kDowNames}};
  for (std::size_t f = 0; f < 5; ++f) {
    for (std::string_view expr : split(fields[f], ',')) {
      if (expr.empty()) continue;  // strings.FieldsFunc drops empty parts
      if (auto e = cron_range(expr, bounds[f])) return e;
    }
  }
  return std::nullopt;
}

void time_zone(Errors& errs, const json::value* tz, const Path& p) {
  if (tz == nullptr) return;
  std::string_view v = str(tz);
  if (v.empty()) {
    errs.push_back(invalid_str(p, v, "unknown time zone " + std::string(v)));
    return;
  }
  for (std::string_view part : split(v, '/')) {
    bool ok = !part.empty() && part.size() <= 14 && part != "." && part != ".." && part[0] != '-';
    for (char c : part) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
          c != '+') {
        ok = false;
      }
    }
    if (!ok) {
      errs.push_back(invalid_str(p, v, "unknown time zone " + std::string(v)));
      return;
    }
  }
  std::string lower(v);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "local") {
    errs.push_back(invalid_str(p, v,
                               "timeZone must be an explicit time zone as defined in "
                               "https://www.iana.org/time-zones"));
    return;
  }
  // kube-apiserver embeds the IANA database; use the host's copy when there is one.
  std::error_code ec;
  std::filesystem::path zoneinfo("/usr/share/zoneinfo");
  if (v != "UTC" && std::filesystem::is_directory(zoneinfo, ec) &&
      !std::filesystem::is_regular_file(zoneinfo / std::string(v), ec)) {
    errs.push_back(invalid_str(p, v, "unknown time zone " + std::string(v)));
  }
}

// ---------------------------------------------------------------------------------------------
// CronJob

void cronjob_defaults(json::object& cj, bool) {
  json::object& spec = ensure_obj(cj, "spec");
  set_default(spec, "concurrencyPolicy", "Allow");
  if (!field(spec, "suspend")) slot(spec, "suspend") = false;
  if (!field(spec, "successfulJobsHistoryLimit")) slot(spec, "successfulJobsHistoryLimit") = 3;
  if (!field(spec, "failedJobsHistoryLimit")) slot(spec, "failedJobsHistoryLimit") = 1;
  json::object& jt = ensure_obj(spec, "jobTemplate");
  json::object& meta = ensure_obj(jt, "metadata");
  if (!meta.contains("creationTimestamp")) slot(meta, "creationTimestamp") = nullptr;
  default_pod_template(ensure_obj(ensure_obj(jt, "spec"), "template"));
}

Errors cronjob_spec(const json::object* spec, const json::object* old_spec) {
  Errors errs;
  std::string_view schedule = str(spec, "schedule");
  Path sp = kSpec.child("schedule");
  if (schedule.empty()) {
    errs.push_back(required(sp));
  } else {
    bool allow_tz = old_spec && str(old_spec, "schedule").find("TZ") != std::string_view::npos;
    if (auto e = parse_schedule(schedule)) errs.push_back(invalid_str(sp, schedule, *e));
    bool has_tz = schedule.find("TZ") != std::string_view::npos;
    if (allow_tz && has_tz && field(spec, "timeZone")) {
      errs.push_back(invalid_str(sp, schedule,
                                 "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
    } else if (!allow_tz && has_tz) {
      errs.push_back(invalid_str(
          sp, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
    }
  }
  nonneg(errs, spec, "startingDeadlineSeconds", kSpec);
  if (old_spec == nullptr ||
      !semantic_equal(field(spec, "timeZone"), field(old_spec, "timeZone"))) {
    time_zone(errs, field(spec, "timeZone"), kSpec.child("timeZone"));
  }
  std::string_view cp = str(spec, "concurrencyPolicy");
  if (cp.empty()) {
    errs.push_back(required(kSpec.child("concurrencyPolicy")));
  } else if (cp != "Allow" && cp != "Forbid" && cp != "Replace") {
    errs.push_back(
        not_supported(kSpec.child("concurrencyPolicy"), q(cp), {"Allow", "Forbid", "Replace"}));
  }
  const json::object* jspec = obj(obj(spec, "jobTemplate"), "spec");
  Path jp = kSpec.child("jobTemplate", "spec");
  add(errs, job_spec_common(jspec, jp));
  if (const json::value* sel = field(jspec, "selector")) {
    errs.push_back(
        invalid(jp.child("selector"), go_label_selector(sel), "`selector` will be auto-generated"));
  }
  if (boolean(jspec, "manualSelector")) {
    errs.push_back(not_supported(jp.child("manualSelector"), "true", {"nil", "false"}));
  }
  nonneg(errs, spec, "successfulJobsHistoryLimit", kSpec);
  nonneg(errs, spec, "failedJobsHistoryLimit", kSpec);
  return errs;
}

Errors cronjob_validate(const api::Resource&, const json::object& cj, const json::object* old) {
  if (old == nullptr) {
    Errors errs = object_meta(cj, true, name_is_dns_subdomain);
    add(errs, cronjob_spec(obj(cj, "spec"), nullptr));
    std::string_view name = str(obj(cj, "metadata"), "name");
    if (name.size() > 52) {
      errs.push_back(invalid_str(kMeta.child("name"), name, "must be no more than 52 characters"));
    }
    return errs;
  }
  Errors errs = object_meta_update(cj, *old);
  add(errs, cronjob_spec(obj(cj, "spec"), obj(*old, "spec")));
  return errs;
}

constexpr std::array kBatchKinds = {
    KindRules{"batch", "Job", job_defaults, job_validate, job_status},
    KindRules{"batch", "CronJob", cronjob_defaults, cronjob_validate, nullptr},
};

}  // namespace

std::span<const KindRules> batch_kinds() { return kBatchKinds; }

}  // namespace podwarp::validation
