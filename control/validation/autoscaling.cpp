// autoscaling/v1: Scale, the body of every scale subresource.
// Upstream: pkg/apis/autoscaling/validation/validation.go (ValidateScale).
#include <array>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"

namespace podwarp::validation {

namespace {

Errors scale_validate(const api::Resource&, const json::object& scale, const json::object*) {
  Errors errs = object_meta(scale, true, name_is_dns_subdomain);
  nonneg(errs, obj(scale, "spec"), "replicas", Path().child("spec"));
  return errs;
}

constexpr std::array kAutoscalingKinds = {
    KindRules{"autoscaling", "Scale", nullptr, scale_validate, nullptr},
};

}  // namespace

std::span<const KindRules> autoscaling_kinds() { return kAutoscalingKinds; }

}  // namespace podwarp::validation
