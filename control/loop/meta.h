// Metadata accessors of API objects as the controllers see them (cached or hand-built JSON):
// every accessor tolerates a missing or ill-typed field and returns an empty value.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "podwarp/json.h"

namespace podwarp::loop {

// An inline namespace: `loop::name_of` works, and a controller folder takes every accessor
// with one `using namespace loop::meta;`.
inline namespace meta {

std::string_view name_of(const json::value& obj);
std::string_view namespace_of(const json::value& obj);
std::string_view uid_of(const json::value& obj);
// metadata.deletionTimestamp is set (not null).
bool being_deleted(const json::value& obj);
// metadata.finalizers holds `finalizer`.
bool has_finalizer(const json::value& obj, std::string_view finalizer);
// obj without `finalizer` in metadata.finalizers (the others kept, in order).
json::value without_finalizer(const json::value& obj, std::string_view finalizer);
// The one node a PersistentVolume's spec.nodeAffinity.required pins it to: exactly one term
// with exactly one expression `kubernetes.io/hostname In [node]` (what local volumes and the
// local-path provisioner write); "" for any other affinity.
std::string_view pinned_node(const json::value& pv);
// metadata.labels, or nullptr when absent or not an object.
const json::object* labels_of(const json::value& obj);
// "<ns>/<name>" -> {ns, name}; a key without '/' is {"", key}.
std::pair<std::string, std::string> split_key(std::string_view key);

}  // namespace meta
}  // namespace podwarp::loop
