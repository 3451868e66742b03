// The built-in resource table: every kind podwarp serves, with upstream group, version,
// kind, plural and singular names, scope, short names, categories and subresources.
//
// This table is the single list that discovery, routing, the OpenAPI documents, tables and
// clients read. It is immutable after static initialization and safe to read from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::api {

struct Subresource {
  std::string_view name;  // "status", "scale", "binding", "eviction", "log", "exec", ...
  // For subresources whose body is another kind (scale → autoscaling/v1 Scale).
  std::string_view group;
  std::string_view version;
  std::string_view kind;
  std::vector<std::string_view> verbs;
};

struct Resource {
  std::string_view group;  // "" for core
  std::string_view version;
  std::string_view kind;
  std::string_view plural;
  std::string_view singular;
  bool namespaced = true;
  std::vector<std::string_view> short_names;
  std::vector<std::string_view> categories;
  std::vector<Subresource> subresources;
  std::vector<std::string_view> verbs;
  // false for the create-only kinds (the reviews, such as SelfSubjectAccessReview, and
  // bindings): the server answers or applies them and stores nothing under their own name, so
  // they have no etcd key, list, watch or storage hash.
  bool stored = true;

  // "apps/v1" or "v1".
  std::string api_version() const;
  // The etcd key prefix "/registry/<plural>/" (upstream's names for the few that differ,
  // e.g. services are "/registry/services/specs/").
  std::string_view storage_name() const { return storage_name_; }
  std::string_view storage_name_;
};

// All resources, in discovery order.
std::span<const Resource> resources();

// Lookups; nullptr when unknown.
const Resource* find_resource(std::string_view group, std::string_view version,
                              std::string_view plural);
const Resource* find_kind(std::string_view group, std::string_view version,
                          std::string_view kind);
// "v1" → ("", "v1"); "apps/v1" → ("apps", "v1").
std::pair<std::string_view, std::string_view> split_api_version(std::string_view api_version);

// The group/versions served, in discovery order ("" first for core).
struct GroupVersion {
  std::string_view group;
  std::string_view version;
};
std::span<const GroupVersion> group_versions();

}  // namespace podwarp::api
