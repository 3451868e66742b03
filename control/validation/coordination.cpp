// coordination.k8s.io/v1: Lease. Upstream: pkg/apis/coordination/validation/validation.go.
// Leases have no defaults.
#include <array>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"

namespace podwarp::validation {

namespace {

Errors lease_validate(const api::Resource&, const json::object& lease, const json::object* old) {
  Errors errs =
      old ? object_meta_update(lease, *old) : object_meta(lease, true, name_is_dns_subdomain);
  const json::object* spec = obj(lease, "spec");
  Path sp = Path().child("spec");
  if (auto d = integer(spec, "leaseDurationSeconds"); d && *d <= 0) {
    errs.push_back(invalid_int(sp.child("leaseDurationSeconds"), *d, "must be greater than 0"));
  }
  nonneg(errs, spec, "leaseTransitions", sp);
  return errs;
}

constexpr std::array kCoordinationKinds = {
    KindRules{"coordination.k8s.io", "Lease", nullptr, lease_validate, nullptr},
};

}  // namespace

std::span<const KindRules> coordination_kinds() { return kCoordinationKinds; }

}  // namespace podwarp::validation
