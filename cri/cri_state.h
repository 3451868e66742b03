// The CRI server's model of sandboxes and containers, and the pure translations around it:
// ids, filters, state transitions, records <-> JSON (the state dir), records -> CRI messages,
// records -> the pod/container objects noded's runtime takes. No I/O here, so all of it is
// tested without root (cri_state_test.cpp).
//
// State machines (upstream CRI semantics):
//   sandbox    READY --StopPodSandbox--> NOTREADY --RemovePodSandbox--> (gone)
//   container  CREATED --StartContainer--> RUNNING --exit--> EXITED --RemoveContainer--> (gone)
//              CREATED --start failure--> EXITED (exit code 128, reason "StartError")
//              RUNNING after a noded restart whose process could not be adopted: UNKNOWN
// Times are nanoseconds since the epoch, as CRI reports them.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api.pb.h"
#include "images/image_store.h"
#include "pods/runtime_service.h"
#include "podwarp/json.h"

namespace podwarp::cri {

namespace v1 = ::runtime::v1;
namespace pods = ::podwarp::noded::pods;

struct SandboxRecord {
  std::string id;       // 64 hex
  std::string pod_uid;  // the runtime's pod uid: pod_uid_for(id)
  v1::PodSandboxConfig config;
  v1::PodSandboxState state = v1::SANDBOX_READY;
  std::int64_t created_at = 0;
  std::string ip;
};

struct ContainerRecord {
  std::string id;  // 64 hex
  std::string sandbox_id;
  v1::ContainerConfig config;
  std::string image_name;  // the stored image's name ("docker.io/library/busybox:latest")
  std::string image_ref;   // containerd's imageRef: "<repo>@<repo digest>", else the image id
  std::string image_id;    // the config digest "sha256:..."
  v1::ContainerState state = v1::CONTAINER_CREATED;
  std::int64_t created_at = 0, started_at = 0, finished_at = 0;
  int exit_code = 0;
  std::string reason, message;
  std::string log_path;  // absolute: the sandbox's log_directory + the config's log_path; "" none
  pods::ContainerHandle handle;  // the runtime's id ("podwarp://<hex>"), pid, start ticks
};

// 64 random hex digits (podwarp/random.h).
std::string new_id();
// "cri-<first 32 hex of the sandbox id>": never a Kubernetes pod uid (those are UUIDs), so CRI
// sandboxes and API pods cannot collide in the runtime (cgroup pod<uid>, run/ns/<uid>).
std::string pod_uid_for(std::string_view sandbox_id);
bool is_cri_pod_uid(std::string_view uid);
std::int64_t now_ns();
std::int64_t to_ns(pods::WallTime t);

// The id a full id or unique prefix names among `ids`; "" when none or ambiguous.
std::string resolve_id(std::string_view id_or_prefix, const std::vector<std::string>& ids);

// Every selector label present with the same value.
bool labels_match(const google::protobuf::Map<std::string, std::string>& labels,
                  const google::protobuf::Map<std::string, std::string>& selector);
// ListPodSandbox / ListContainers filters. An id filter matches a prefix (as containerd's
// truncated ids); `sandbox_id` of a container filter likewise.
bool matches(const SandboxRecord& s, const v1::PodSandboxFilter& f);
bool matches(const ContainerRecord& c, const v1::ContainerFilter& f);

// Transitions. started: CREATED -> RUNNING. exited: RUNNING -> EXITED with reason
// "Completed" (code 0), "OOMKilled", or "Error"; an unknown code gives UNKNOWN.
// start_failed: CREATED -> EXITED, code 128, reason "StartError".
void mark_started(ContainerRecord& c, const pods::ContainerHandle& h, std::int64_t at);
void mark_exited(ContainerRecord& c, const pods::ExitInfo& e);
void mark_start_failed(ContainerRecord& c, const std::string& message, std::int64_t at);

// Records -> CRI messages.
v1::PodSandbox to_pod_sandbox(const SandboxRecord& s);
v1::PodSandboxStatus to_sandbox_status(const SandboxRecord& s);
v1::Container to_container(const ContainerRecord& c);
v1::ContainerStatus to_container_status(const ContainerRecord& c);
// The stored names of one image (same id) as a CRI Image: names with a tag are repo_tags,
// "<repository>@<repo digest>" are repo_digests.
v1::Image to_image(const std::vector<images::ImageRef>& same_id);

// Records <-> JSON files of the state dir (config messages in protobuf's JSON mapping).
json::value to_json_value(const SandboxRecord& s);
json::value to_json_value(const ContainerRecord& c);
std::expected<SandboxRecord, std::string> sandbox_from_json(const json::value& v);
std::expected<ContainerRecord, std::string> container_from_json(const json::value& v);

// What noded's runtime takes: a pod object (metadata name/namespace/uid, spec.hostname) and a
// container object (name, image, command, args, workingDir, env, tty, stdin).
json::value pod_object(const SandboxRecord& s);
json::value container_object(const ContainerRecord& c);
std::vector<pods::MountRequest> mount_requests(const v1::ContainerConfig& c);

}  // namespace podwarp::cri
