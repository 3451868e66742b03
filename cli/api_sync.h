// Synchronous reads (and one create) of the cluster's API for the CLI's commands (`podwarp up`
// waits for the node and adds the default StorageClass, `podwarp trace` names pods). Each call
// loads the kubeconfig, runs one request on a private io_context and returns when it
// completes; the client's own timeouts (`timeout`, connect and whole request) bound it, so no
// operation is left pending. Any thread; calls do not share state.
#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <string>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::cli {

// GET of one object; the error is a message ("load <kubeconfig>: ..." or the client's).
std::expected<json::value, std::string> get_object(
    const std::filesystem::path& kubeconfig, const api::Resource& resource, std::string ns,
    std::string name, std::chrono::seconds timeout = std::chrono::seconds(5));
// LIST of a resource; ns "" lists every namespace.
std::expected<json::value, std::string> list_objects(
    const std::filesystem::path& kubeconfig, const api::Resource& resource, std::string ns,
    std::chrono::seconds timeout = std::chrono::seconds(5));
// POST of `obj` into `ns` ("" for a cluster-scoped resource); returns the created object.
std::expected<json::value, std::string> create_object(
    const std::filesystem::path& kubeconfig, const api::Resource& resource, std::string ns,
    json::value obj, std::chrono::seconds timeout = std::chrono::seconds(5));

}  // namespace podwarp::cli
