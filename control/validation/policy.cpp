// policy/v1: PodDisruptionBudget.
// Upstream: pkg/apis/policy/validation/validation.go. PodDisruptionBudget has no defaults, and its
// validation covers the spec only; metadata gets the generic checks every kind gets.
#include <array>

#include "validation/int_or_percent.h"
#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"

namespace podwarp::validation {

namespace {

const Path kSpec = Path().child("spec");

Errors pdb_validate(const api::Resource&, const json::object& pdb, const json::object*) {
  Errors errs;
  const json::object* spec = obj(pdb, "spec");
  const json::value* min = field(spec, "minAvailable");
  const json::value* max = field(spec, "maxUnavailable");
  if (min && max) {
    errs.push_back(invalid(kSpec, "policy.PodDisruptionBudgetSpec" + go_value(*field(pdb, "spec")),
                           "minAvailable and maxUnavailable cannot be both set"));
  }
  if (min) {
    add(errs, positive_int_or_percent(min, kSpec.child("minAvailable")));
    add(errs, not_more_than_100_percent(min, kSpec.child("minAvailable")));
  }
  if (max) {
    add(errs, positive_int_or_percent(max, kSpec.child("maxUnavailable")));
    add(errs, not_more_than_100_percent(max, kSpec.child("maxUnavailable")));
  }
  add(errs, validate_label_selector(field(spec, "selector"), kSpec.child("selector")));
  if (const json::value* policy = field(spec, "unhealthyPodEvictionPolicy")) {
    std::string_view v = str(policy);
    if (v != "IfHealthyBudget" && v != "AlwaysAllow") {
      errs.push_back(not_supported(kSpec.child("unhealthyPodEvictionPolicy"), q(v),
                                   {"AlwaysAllow", "IfHealthyBudget"}));
    }
  }
  return errs;
}

Errors pdb_status(const api::Resource&, const json::object& pdb, const json::object&) {
  Errors errs;
  const json::object* status = obj(pdb, "status");
  Path sp = Path().child("status");
  for (std::string_view f :
       {"disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"}) {
    nonneg(errs, status, f, sp);
  }
  return errs;
}

constexpr std::array kPolicyKinds = {
    KindRules{"policy", "PodDisruptionBudget", nullptr, pdb_validate, pdb_status},
};

}  // namespace

std::span<const KindRules> policy_kinds() { return kPolicyKinds; }

}  // namespace podwarp::validation
