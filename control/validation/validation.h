// Upstream Kubernetes (v1.32) defaulting and validation for the built-in kinds podwarp serves.
//
// The apiserver calls, for every write of a resource's main object:
//
//   apply_defaults(r, obj);            // SetDefaults_* of the group (+ the few create-time
//                                      // admission/strategy defaults kubectl users see)
//   auto causes = validate(r, obj, old);   // old == nullptr on create
//   if (!causes.empty()) -> 422 with invalid_message(r, name, causes) and the causes
//
// and validate_status() for writes to the status subresource. For the scale subresource the
// body is validated with the autoscaling/v1 Scale resource.
//
// Objects are the JSON (boost::json) form of the request, in the resource's served version; every
// field podwarp does not interpret is left untouched. Field paths and messages follow upstream's
// field.Error so that kubectl and client libraries show the same text as against a real cluster.
//
// Create-only defaults (namespace finalizers, pod status, service-account/priority/toleration
// admission, the Job's generated selector) are applied when metadata.resourceVersion is empty:
// upstream rejects creates that carry a resourceVersion and requires one on every update, so the
// field tells the two apart. Jobs get their generated selector only once metadata.uid is set, so
// the apiserver assigns uid before calling apply_defaults on create.
//
// All functions are pure and safe to call concurrently on distinct objects.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::validation {

// One metav1.StatusCause of a 422 Invalid status.
//   reason:  FieldValueRequired | FieldValueInvalid | FieldValueNotSupported | FieldValueDuplicate
//   |
//            FieldValueForbidden | FieldValueTooLong | FieldValueTooMany | FieldValueNotFound |
//            FieldValueTypeInvalid
//   message: upstream's field.Error.ErrorBody(), e.g. "Required value",
//            "Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\",
//            \"OnFailure\""
//   field:   upstream's field path, e.g. "spec.template.spec.containers[0].image"
struct Cause {
  std::string reason;
  std::string message;
  std::string field;

  friend bool operator==(const Cause&, const Cause&) = default;
};

// Applies upstream defaults to obj in place. Called on create and on update; idempotent.
// Kinds without rules are left unchanged.
void apply_defaults(const api::Resource& r, json::value& obj);

// Validates obj. old is nullptr on create, the stored object on update (then immutable fields and
// allowed transitions are checked as upstream does). Kinds without rules get object-metadata
// validation only.
std::vector<Cause> validate(const api::Resource& r, const json::value& obj, const json::value* old);

// Validation of a status subresource write: metadata update rules plus the status fields.
std::vector<Cause> validate_status(const api::Resource& r, const json::value& obj,
                                   const json::value& old);

// Validation of a pods/ephemeralcontainers write: the pod's metadata update and spec as on any
// update, and the ephemeral containers it had neither removed nor changed.
std::vector<Cause> validate_ephemeral_containers(const api::Resource& r, const json::value& pod,
                                                 const json::value& old);

// The resource to validate a scale subresource body (autoscaling/v1 Scale) with.
const api::Resource& scale_resource();

// The built-in PriorityClasses (scheduling.SystemPriorityClasses): system-node-critical and
// system-cluster-critical, which the apiserver creates at start and validation reserves.
struct SystemPriorityClass {
  std::string_view name;
  std::int32_t value;
  std::string_view description;
};
std::span<const SystemPriorityClass> system_priority_classes();

// Upstream's Status.message of a 422, e.g.
//   Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value
//   Pod "p" is invalid: [spec.containers[0].name: Required value, spec.containers[0].image: ...]
// Causes with identical "<field>: <message>" text are reported once, as upstream's aggregate does.
std::string invalid_message(const api::Resource& r, std::string_view name,
                            const std::vector<Cause>& causes);

}  // namespace podwarp::validation
