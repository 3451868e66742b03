// The files of configMap, secret, downwardAPI and projected volumes, as the kubelet's volume
// plugins compute them (pure: no I/O besides the lookup), to be written by atomic_writer.h:
//   configMap   data + binaryData; items select keys (path, mode); a missing non-optional
//               object fails with `configmap "x" not found`, a missing item key with
//               `configmap references non-existent config key: k` (skipped when optional)
//   secret      data (base64) + stringData; `secret "x" not found`,
//               `references non-existent secret key: k`
//   downwardAPI items of fieldRef / resourceFieldRef (downward_api.h), each with its mode
//   projected   the union of its sources (configMap, secret, downwardAPI,
//               serviceAccountToken: the token fetched by the worker, VolumeInputs::tokens)
// Modes: item mode, else the volume's defaultMode (0644 unless set).
#pragma once

#include <expected>
#include <map>
#include <string>

#include "pods/atomic_writer.h"
#include "pods/downward_api.h"
#include "pods/pod_spec.h"

namespace podwarp::noded::pods {

struct VolumeInputs {
  DownwardContext downward;
  // Service-account tokens by token_key(volume, source path).
  std::map<std::string, std::string> tokens;
};
inline std::string token_key(std::string_view volume, std::string_view path) {
  return std::string(volume) + "/" + std::string(path);
}

std::expected<std::map<std::string, FileProjection>, std::string> volume_payload(
    const PodDef& pod, const VolumeDef& v, const ObjectLookup& lookup, const VolumeInputs& in);

}  // namespace podwarp::noded::pods
