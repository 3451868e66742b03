// metav1.Status: the one error shape of the API. Every failure a handler reports is an
// ApiError, turned into the upstream JSON body and HTTP code in one place.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"
#include "validation/validation.h"

namespace podwarp::apiserver {

struct StatusCause {
  std::string reason;
  std::string message;
  std::string field;
};

struct ApiError {
  int code = 500;
  std::string reason;  // NotFound, AlreadyExists, Conflict, Invalid, BadRequest, ...
  std::string message;
  // details
  std::string name;
  std::string group;
  std::string kind;  // plural resource name, as upstream puts it in details.kind
  std::string uid;
  std::vector<StatusCause> causes;
  int retry_after_seconds = 0;

  json::value to_json() const;
};

// The qualified resource as upstream prints it in messages: "pods", "deployments.apps".
std::string qualified_resource(const api::Resource& r);

ApiError not_found(const api::Resource& r, std::string_view name);
ApiError already_exists(const api::Resource& r, std::string_view name);
ApiError conflict(const api::Resource& r, std::string_view name, std::string_view why);
ApiError invalid(const api::Resource& r, std::string_view name, std::vector<StatusCause> causes,
                 std::string message);
// 422 from validation's causes, with upstream's message ("Kind.group \"name\" is invalid: ...").
ApiError invalid(const api::Resource& r, std::string_view name,
                 const std::vector<validation::Cause>& causes);
ApiError bad_request(std::string message);
ApiError gone(std::string message);
ApiError unauthorized();
ApiError forbidden(const api::Resource* r, std::string_view name, std::string message);
ApiError method_not_supported(const api::Resource& r, std::string_view verb);
ApiError request_entity_too_large(std::string message);
// A JSON patch of more operations than upstream's limit (10,000): 413, before any is applied.
// nullopt when `patch` is within it (or not a JSON patch array).
std::optional<ApiError> json_patch_too_large(const json::value& patch);
ApiError unsupported_media_type(std::string_view content_type);
ApiError not_acceptable(std::string message);
ApiError internal_error(std::string message);
ApiError service_unavailable(std::string message);
ApiError plain_not_found(std::string message = "the server could not find the requested resource");

json::value success_status(const api::Resource& r, std::string_view name, std::string_view uid);

}  // namespace podwarp::apiserver
