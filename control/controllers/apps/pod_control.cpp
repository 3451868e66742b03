#include "controllers/apps/pod_control.h"

#include <fmt/format.h>

namespace podwarp::apps {

Awaitable<Result<json::value>> patch_owner_refs(client::Client& client, const json::value& pod,
                                                json::array refs) {
  json::object meta;
  meta["ownerReferences"] = std::move(refs);
  meta["resourceVersion"] = get_string(pod, {"metadata", "resourceVersion"});
  json::object patch;
  patch["metadata"] = std::move(meta);
  co_return co_await loop::api_patch(client, pods_resource(), std::string(namespace_of(pod)),
                                     std::string(name_of(pod)), to_json(patch));
}

Awaitable<Result<void>> create_owned_pod(client::Client& client, loop::EventRecorder& recorder,
                                         const json::value& owner, std::string ns,
                                         json::value pod) {
  auto r = co_await loop::api_create(client, pods_resource(), std::move(ns), std::move(pod));
  if (!r) {
    recorder.record(owner, "Warning", "FailedCreate",
                    fmt::format("Error creating: {}", r.error().message));
    co_return std::unexpected(r.error());
  }
  recorder.record(owner, "Normal", "SuccessfulCreate", fmt::format("Created pod: {}", name_of(*r)));
  co_return Result<void>{};
}

Awaitable<Result<void>> delete_owned_pod(client::Client& client, loop::EventRecorder& recorder,
                                         Expectations& expectations, const std::string& key,
                                         const json::value& owner, const json::value& pod) {
  auto r = co_await loop::api_delete(client, pods_resource(), std::string(namespace_of(pod)),
                                     std::string(name_of(pod)));
  if (!r) {
    expectations.deletion_observed(key, key_of(pod));
    if (r.error().is_not_found()) co_return Result<void>{};
    recorder.record(owner, "Warning", "FailedDelete",
                    fmt::format("Error deleting: {}", r.error().message));
    co_return std::unexpected(r.error());
  }
  recorder.record(owner, "Normal", "SuccessfulDelete",
                  fmt::format("Deleted pod: {}", name_of(pod)));
  co_return Result<void>{};
}

}  // namespace podwarp::apps
