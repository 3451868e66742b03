#include "apiserver/status.h"

#include <fmt/format.h>

namespace podwarp::apiserver {

json::value ApiError::to_json() const {
  json::object s;
  s["kind"] = "Status";
  s["apiVersion"] = "v1";
  s["metadata"] = json::object();
  s["status"] = "Failure";
  s["message"] = message;
  s["reason"] = reason;
  json::object details;
  if (!name.empty()) details["name"] = name;
  if (!group.empty()) details["group"] = group;
  if (!kind.empty()) details["kind"] = kind;
  if (!uid.empty()) details["uid"] = uid;
  if (!causes.empty()) {
    json::array arr;
    for (const StatusCause& c : causes) {
      json::object o;
      o["reason"] = c.reason;
      o["message"] = c.message;
      if (!c.field.empty()) o["field"] = c.field;
      arr.push_back(std::move(o));
    }
    details["causes"] = std::move(arr);
  }
  if (retry_after_seconds > 0) details["retryAfterSeconds"] = retry_after_seconds;
  // Upstream's NotFound always carries details, empty for a path it does not serve
  // (NewGenericServerResponse): kubectl debug reads details.name of that 404 without a nil check.
  if (!details.empty() || reason == "NotFound") s["details"] = std::move(details);
  s["code"] = code;
  return s;
}

std::string qualified_resource(const api::Resource& r) {
  if (r.group.empty()) return std::string(r.plural);
  return fmt::format("{}.{}", r.plural, r.group);
}

namespace {
ApiError with_details(ApiError e, const api::Resource& r, std::string_view name) {
  e.name = std::string(name);
  e.group = std::string(r.group);
  e.kind = std::string(r.plural);
  return e;
}
}  // namespace

ApiError not_found(const api::Resource& r, std::string_view name) {
  return with_details({404, "NotFound",
                       fmt::format("{} \"{}\" not found", qualified_resource(r), name)},
                      r, name);
}

ApiError already_exists(const api::Resource& r, std::string_view name) {
  return with_details({409, "AlreadyExists",
                       fmt::format("{} \"{}\" already exists", qualified_resource(r), name)},
                      r, name);
}

ApiError conflict(const api::Resource& r, std::string_view name, std::string_view why) {
  return with_details(
      {409, "Conflict",
       fmt::format("Operation cannot be fulfilled on {} \"{}\": {}", qualified_resource(r), name,
                   why)},
      r, name);
}

ApiError invalid(const api::Resource& r, std::string_view name, std::vector<StatusCause> causes,
                 std::string message) {
  ApiError e = with_details({422, "Invalid", std::move(message)}, r, name);
  e.kind = std::string(r.kind);
  e.causes = std::move(causes);
  return e;
}

ApiError invalid(const api::Resource& r, std::string_view name,
                 const std::vector<validation::Cause>& causes) {
  std::vector<StatusCause> out;
  out.reserve(causes.size());
  for (const validation::Cause& c : causes) out.push_back({c.reason, c.message, c.field});
  return invalid(r, name, std::move(out), validation::invalid_message(r, name, causes));
}

ApiError bad_request(std::string message) { return {400, "BadRequest", std::move(message)}; }
ApiError gone(std::string message) { return {410, "Expired", std::move(message)}; }
ApiError unauthorized() { return {401, "Unauthorized", "Unauthorized"}; }

ApiError forbidden(const api::Resource* r, std::string_view name, std::string message) {
  ApiError e{403, "Forbidden", std::move(message)};
  if (r != nullptr) e = with_details(std::move(e), *r, name);
  return e;
}

ApiError method_not_supported(const api::Resource& r, std::string_view verb) {
  return with_details({405, "MethodNotAllowed",
                       fmt::format("{} is not supported on resources of kind \"{}\"", verb,
                                   qualified_resource(r))},
                      r, "");
}

ApiError request_entity_too_large(std::string message) {
  return {413, "RequestEntityTooLarge", std::move(message)};
}

std::optional<ApiError> json_patch_too_large(const json::value& patch) {
  constexpr std::size_t kMaxJsonPatchOperations = 10'000;
  if (!patch.is_array() || patch.as_array().size() <= kMaxJsonPatchOperations) return std::nullopt;
  return request_entity_too_large(
      fmt::format("Request entity too large: The allowed maximum operations in a JSON patch is {}, got {}",
                  kMaxJsonPatchOperations, patch.as_array().size()));
}

ApiError unsupported_media_type(std::string_view content_type) {
  (void)content_type;
  return {415, "UnsupportedMediaType",
          "the body of the request was in an unknown format - accepted media types include: "
          "application/json, application/yaml, application/vnd.kubernetes.protobuf"};
}

ApiError not_acceptable(std::string message) { return {406, "NotAcceptable", std::move(message)}; }
ApiError internal_error(std::string message) {
  return {500, "InternalError", fmt::format("Internal error occurred: {}", message)};
}
ApiError service_unavailable(std::string message) {
  return {503, "ServiceUnavailable", std::move(message)};
}
ApiError plain_not_found(std::string message) { return {404, "NotFound", std::move(message)}; }

json::value success_status(const api::Resource& r, std::string_view name, std::string_view uid) {
  json::object s;
  s["kind"] = "Status";
  s["apiVersion"] = "v1";
  s["metadata"] = json::object();
  s["status"] = "Success";
  json::object d;
  d["name"] = name;
  if (!r.group.empty()) d["group"] = r.group;
  d["kind"] = r.plural;
  d["uid"] = uid;
  s["details"] = std::move(d);
  return s;
}

}  // namespace podwarp::apiserver
