// From a pod's container object to a runtime::ContainerSpec: the kubelet's
// generateContainerConfig + containerd's spec options, as pure functions (no I/O), so the
// translation is tested without root.
//
//   command/args   runtime::resolve_command against the image entrypoint/cmd, then $(VAR)
//   env            image env overridden by the container env (value, fieldRef of
//                  metadata.name/namespace/uid, spec.nodeName, spec.serviceAccountName);
//                  other valueFrom sources are an error (not supported yet)
//   workingDir     container, else image, else "/"
//   user           the image user (resolved by the caller in the rootfs), then runAsUser /
//                  runAsGroup (container over pod), supplementalGroups and fsGroup (pod)
//   privileges     capabilities add/drop, privileged, allowPrivilegeEscalation=false ->
//                  no_new_privs, readOnlyRootFilesystem, seccompProfile (container over pod;
//                  unset = Unconfined as the kubelet without --seccomp-default)
#pragma once

#include <expected>
#include <string>
#include <vector>

#include "pods/runtime_service.h"
#include "podwarp/json.h"
#include "runtime/runtime.h"

namespace podwarp::noded::adapters {

// The process part of a container: argv, env, cwd, identity, capabilities, seccomp.
// `image_user` is the image's user already resolved in the rootfs (runtime::resolve_user...).
// Errors name the field: "spec.containers[app].securityContext.capabilities: unknown
// capability \"FOO\"".
std::expected<runtime::ProcessSpec, std::string> process_spec(const json::value& pod,
                                                              const json::value& container,
                                                              const pods::ImageInfo& image,
                                                              const runtime::UserIds& image_user);

// Container-level flags of the spec: privileged, readOnlyRootFilesystem.
bool container_privileged(const json::value& container);
bool container_readonly_rootfs(const json::value& container);

// Volume mounts of the pod layer as runtime bind mounts.
std::vector<runtime::BindMount> bind_mounts(const std::vector<pods::MountRequest>& mounts);

}  // namespace podwarp::noded::adapters
