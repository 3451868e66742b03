// Pod volumes on the host, prepared before any container starts, under
// <pod-dir>/volumes/<plugin>/<name> as the kubelet lays them out:
//   emptyDir            kubernetes.io~empty-dir/<name> (a directory; medium Memory: a tmpfs
//                       mounted there, size= from sizeLimit)
//   configMap / secret  kubernetes.io~configmap|secret|downward-api|projected/<name>: the
//   downwardAPI,        files of projected.h written by atomic_writer.h (..data swap), modes
//   projected           from items/defaultMode; a missing source fails unless optional
//   hostPath            the host path itself (type DirectoryOrCreate/FileOrCreate create it;
//                       Directory/File/Socket are checked)
//   persistentVolumeClaim  the claim (pod's namespace) must exist and be Bound (spec.volumeName,
//                       status.phase), else `persistentvolumeclaim "c" not found` /
//                       `waiting for PersistentVolumeClaim c to be bound` (the worker retries);
//                       then its PersistentVolume's path: hostPath as above (a directory that
//                       DirectoryOrCreate makes is 0777, as local-path provisioners do), local
//                       (the path must exist); other sources fail with
//                       `unsupported PersistentVolume source for <pv>: nfs`. readOnly comes from
//                       the pod's volume (hostPath and local PV sources have no readOnly).
// teardown_volumes unmounts the tmpfs mounts; the directories go with the pod dir.
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pods/pod_spec.h"
#include "pods/projected.h"

namespace podwarp::noded::pods {

// One volume; returns its host path. Errors are the kubelet's texts (`configmap "x" not found`).
// Writing again (refresh) only changes files whose source changed (atomic_writer.h).
std::expected<std::string, std::string> prepare_volume(const PodDef& pod, const VolumeDef& v,
                                                      const std::string& pod_dir,
                                                      const ObjectLookup& lookup,
                                                      const VolumeInputs& in = {});
// configMap, secret, downwardAPI and projected volumes follow their sources (refresh).
bool volume_refreshes(const VolumeDef& v);

// volume name -> host path. Errors name the volume and the failing step.
std::expected<std::map<std::string, std::string>, std::string> prepare_volumes(
    const PodDef& pod, const std::string& pod_dir, const ObjectLookup& lookup,
    const VolumeInputs& in = {});
void teardown_volumes(const PodDef& pod, const std::string& pod_dir);

// Unmounts every mount below `dir` (not `dir` itself), deepest first, lazily: what a pod dir
// holds when nobody tore its volumes down (an orphan after a restart).
void unmount_all_under(const std::string& dir);

// Whether `dir` is the root of a mount (its device differs from its parent's).
bool is_mount_point(const std::string& dir);
// A tmpfs (nosuid, nodev | extra_flags) with `opts` on `dir` unless a mount is there already (a
// restarted noded); errno is kept for the caller on failure.
std::expected<void, std::string> ensure_tmpfs(const std::string& dir, const std::string& opts,
                                              unsigned long extra_flags = 0);

// The bind mounts of one container from its volumeMounts; read-only when the mount says so
// or its volume in `defs` does (persistentVolumeClaim.readOnly).
std::vector<MountRequest> container_mounts(const ContainerDef& c,
                                           const std::map<std::string, std::string>& volumes,
                                           const std::vector<VolumeDef>& defs = {});

std::expected<std::string, std::string> base64_decode(std::string_view in);

}  // namespace podwarp::noded::pods
