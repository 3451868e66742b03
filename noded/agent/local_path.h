// Removal of podwarp.io/local-path volumes' host directories, on the volume's node.
//
// The local-path provisioner (podwarp-control's persistentvolume-binder) creates each volume
// as a hostPath directory `<class path>/pvc-<claim uid>_<namespace>_<claim>` on one node and
// puts the finalizer kLocalPathCleanupFinalizer on the PersistentVolume. When the volume is
// deleted (reclaim policy Delete, once its claim is gone), the noded of that node removes the
// directory and then the finalizer, and only then is the PersistentVolume gone: the data does
// not outlive its volume, and a noded that was down does it when it is back.
#pragma once

#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::noded::agent {

// The same string as the provisioner's (control/controllers/core/persistent_volume.h).
inline constexpr std::string_view kLocalPathCleanupFinalizer = "podwarp.io/local-path-cleanup";

// The host directory this node should remove for `pv`, if any: the volume is being deleted
// and not Bound (a bound one waits for its claim to go, as upstream's pv-protection keeps
// it), still has the finalizer, was provisioned by podwarp.io/local-path and its node affinity
// names `node`. The path must be absolute and normal (no `.` or `..` parts) and its last
// component start with "<volume name>_", the provisioner's naming; a volume whose path is
// anything else gets nullopt (its finalizer is left for an administrator).
std::optional<std::filesystem::path> local_path_to_clean(const json::value& pv,
                                                         std::string_view node);

// Removes dir and everything under it. Symbolic links are removed, never followed, so nothing
// outside dir is touched; dir itself must be a directory, not a link. A dir that does not
// exist is already clean.
std::expected<void, std::string> remove_local_path(const std::filesystem::path& dir);

// The claim (namespace, name) that pv's spec.claimRef names, if any.
std::optional<std::pair<std::string, std::string>> claim_of(const json::value& pv);

}  // namespace podwarp::noded::agent
