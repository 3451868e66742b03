// The static-pod source: a folder of manifests, read as the kubelet's file source does.
//
// Files: *.yaml, *.yml and *.json; names starting with '.' are ignored (editors' temp files).
// Each file holds one object. kind: Pod files are pods. kind: ConfigMap and kind: Secret
// files in the same folder are the sources of configMap and secret volumes in standalone
// mode, looked up by namespace (default "default") and name; they are not pods.
// A file that cannot be read, parsed or checked yields an entry carrying a ManifestError
// (the pod manager logs it and, when the pod's name is known, reports the pod Failed).
//
// Pure except for reading the folder; safe from any thread.
#pragma once

#include <expected>
#include <map>
#include <string>
#include <vector>

#include "pods/pod_spec.h"

namespace podwarp::noded::pods {

struct ManifestEntry {
  std::string file;
  std::string content_hash;  // changes when the file's bytes change
  std::expected<PodDef, ManifestError> pod = std::unexpected(ManifestError{});
};

struct ManifestScan {
  std::vector<ManifestEntry> pods;
  std::map<std::string, json::value> config_maps, secrets;  // "<ns>/<name>" -> object
  std::string error;  // the folder itself could not be read
};

ManifestScan scan_manifest_dir(const std::string& dir, const std::string& node_name);

// Parses one manifest text (YAML or JSON) into a PodDef or an error naming file and field.
std::expected<PodDef, ManifestError> parse_pod_manifest(std::string_view text,
                                                        const StaticPodOptions& o);

}  // namespace podwarp::noded::pods
