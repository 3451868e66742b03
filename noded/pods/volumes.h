// Pod volumes on the host, prepared before any container starts, under
// <pod-dir>/volumes/<plugin>/<name> as the kubelet lays them out:
//   emptyDir            kubernetes.io~empty-dir/<name> (a directory; medium Memory: a tmpfs
//                       mounted there, size= from sizeLimit)
//   configMap / secret  kubernetes.io~configmap|secret/<name>: one file per key (or per item),
//                       mode defaultMode; a missing source fails unless optional
//   hostPath            the host path itself (type DirectoryOrCreate/FileOrCreate create it;
//                       Directory/File/Socket are checked)
// teardown_volumes unmounts the tmpfs mounts; the directories go with the pod dir.
#pragma once

#include <expected>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "pods/pod_spec.h"

namespace podwarp::noded::pods {

// Looks up a ConfigMap/Secret object by kind ("ConfigMap"/"Secret"), namespace and name.
using ObjectLookup =
    std::function<std::optional<json::value>(std::string_view kind, std::string_view ns, std::string_view name)>;

// volume name -> host path. Errors name the volume and the failing step.
std::expected<std::map<std::string, std::string>, std::string> prepare_volumes(
    const PodDef& pod, const std::string& pod_dir, const ObjectLookup& lookup);
void teardown_volumes(const PodDef& pod, const std::string& pod_dir);

// The bind mounts of one container from its volumeMounts.
std::vector<MountRequest> container_mounts(const ContainerDef& c,
                                           const std::map<std::string, std::string>& volumes);

std::expected<std::string, std::string> base64_decode(std::string_view in);

}  // namespace podwarp::noded::pods
