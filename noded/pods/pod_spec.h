// The pod as the workers see it: a Pod object (from a manifest file) checked and reduced to the
// fields the lifecycle needs, keeping the whole object for the runtime and for /pods.
//
// Static pods as the kubelet's file source (pkg/kubelet/config/common.go applyDefaults): the
// name gets "-<nodeName>" appended (when a node name is set), the namespace defaults to
// "default", the UID is an MD5 over the object, the node name and the source file, and the
// annotations kubernetes.io/config.hash (= UID), kubernetes.io/config.source ("file") and
// kubernetes.io/config.seen are set; spec.nodeName is the node's name.
//
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "pods/runtime_service.h"
#include "probes/probe.h"
#include "podwarp/json.h"

namespace podwarp::noded::pods {

struct VolumeMountDef {
  std::string name, mount_path, sub_path;
  bool read_only = false;
};

struct ContainerDef {
  std::string name, image;
  PullPolicy pull_policy = PullPolicy::kIfNotPresent;
  std::optional<probes::ProbeSpec> liveness, readiness, startup;
  std::optional<probes::Handler> post_start, pre_stop;
  std::vector<VolumeMountDef> mounts;
  bool stdin = false, stdin_once = false, tty = false;  // console/console.h
  std::size_t index = 0;  // position in spec.containers / spec.initContainers
  // Ephemeral containers: the container whose namespaces (pid) it joins, and its own JSON (it
  // may come after the pod, with an update).
  std::string target_container;
  std::shared_ptr<const json::value> spec_json;
};

struct KeyToPath {
  std::string key, path;
  std::optional<int> mode;  // items[].mode (overrides defaultMode)
};

// One downwardAPI item: a fieldRef or a resourceFieldRef written to `path`.
struct DownwardItem {
  std::string path;
  std::string field_path;                  // fieldRef.fieldPath ("" when a resourceFieldRef)
  std::string resource, container_name;    // resourceFieldRef
  json::value divisor;                     // resourceFieldRef.divisor (null: 1)
  std::optional<int> mode;
};

// One source of a projected volume (configMap/secret/downwardAPI volumes are one-source
// projections of the same kind).
struct ProjectionSource {
  enum class Kind { kConfigMap, kSecret, kDownwardAPI, kServiceAccountToken };
  Kind kind = Kind::kConfigMap;
  std::string name;               // configMap.name / secret.name
  std::vector<KeyToPath> items;   // configMap / secret (empty: every key)
  bool optional = false;
  std::vector<DownwardItem> downward;
  std::string audience;           // serviceAccountToken ("" = the API server's audiences)
  std::int64_t expiration_seconds = 3600;
  std::string path;               // serviceAccountToken.path
};

struct VolumeDef {
  enum class Kind {
    kEmptyDir,
    kHostPath,
    kConfigMap,
    kSecret,
    kDownwardAPI,
    kProjected,
    kPersistentVolumeClaim,
    kUnsupported
  };
  std::string name;
  Kind kind = Kind::kUnsupported;
  bool memory_medium = false;   // emptyDir.medium: Memory (tmpfs)
  std::string size_limit;       // emptyDir.sizeLimit (tmpfs size=)
  std::string host_path, host_path_type;
  std::string source_name;  // configMap.name / secret.secretName / persistentVolumeClaim.claimName
  bool read_only = false;   // persistentVolumeClaim.readOnly: every mount of it read-only
  std::vector<KeyToPath> items;
  bool optional = false;
  int default_mode = 0644;
  std::vector<ProjectionSource> sources;  // configMap/secret/downwardAPI/projected
};

struct PodDef {
  std::string ns, name, uid, source_file;
  json::value pod;  // the whole object after static-pod defaulting
  std::string restart_policy = "Always";
  std::int64_t grace_seconds = 30;
  // spec.activeDeadlineSeconds: after this long since startTime the pod fails
  // (DeadlineExceeded) and its containers are stopped.
  std::optional<std::int64_t> active_deadline_seconds;
  std::vector<ContainerDef> init_containers, containers;
  // A deque: the API adds ephemeral containers to a running pod, whose workers point at these.
  std::deque<ContainerDef> ephemeral_containers;
  std::vector<VolumeDef> volumes;
  std::string hostname;
  bool host_network = false;
  std::string service_account = "default";  // spec.serviceAccountName
  std::vector<std::string> image_pull_secrets;  // spec.imagePullSecrets[].name

  const json::value& container_json(const ContainerDef& c, bool init) const;
};

// Where a manifest is wrong. `name`/`ns` are set when the pod could be identified anyway.
struct ManifestError {
  std::string file, field, message;
  std::string ns, name;
  std::string text() const;  // "<file>: <field>: <message>"
};

struct StaticPodOptions {
  std::string node_name;    // "" = no name suffix
  std::string source_file;  // the manifest path
};

// Checks a Pod object and applies the static-pod defaults above. Never throws.
std::expected<PodDef, ManifestError> pod_from_json(json::value pod, const StaticPodOptions& o);
// spec.ephemeralContainers of a pod (checked against its containers' names and its volumes).
std::expected<std::vector<ContainerDef>, ManifestError> ephemeral_containers_of(const json::value& pod);

// The UID of a static pod (hex MD5 of the serialized object + "host:<node>" + "file:<path>").
std::string static_pod_uid(const json::value& pod, std::string_view node_name,
                           std::string_view source_file);

// "Always" for images tagged :latest or untagged (without digest), "IfNotPresent" otherwise.
PullPolicy default_pull_policy(std::string_view image);

bool is_dns1123_label(std::string_view s);
bool is_dns1123_subdomain(std::string_view s);

}  // namespace podwarp::noded::pods
