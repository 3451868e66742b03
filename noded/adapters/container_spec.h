// From a pod's container object to a runtime::ContainerSpec: the kubelet's
// generateContainerConfig + containerd's spec options, as pure functions (no I/O), so the
// translation is tested without root.
//
//   command/args   runtime::resolve_command against the image entrypoint/cmd, then $(VAR)
//   env            the kubelet's makeEnvironmentVariables (container_env below), then the image
//                  env overridden by it (image order first, new names after)
//   workingDir     container, else image, else "/"
//   user           the image user (resolved by the caller in the rootfs), then runAsUser /
//                  runAsGroup (container over pod), supplementalGroups and fsGroup (pod)
//   privileges     capabilities add/drop, privileged, allowPrivilegeEscalation=false ->
//                  no_new_privs, readOnlyRootFilesystem, seccompProfile (container over pod;
//                  unset = Unconfined as the kubelet without --seccomp-default)
#pragma once

#include <expected>
#include <functional>
#include <string>
#include <vector>

#include "pods/downward_api.h"
#include "pods/runtime_service.h"
#include "podwarp/json.h"
#include "runtime/runtime.h"

namespace podwarp::noded::adapters {

// What env resolution needs besides the pod and the container.
struct EnvContext {
  const pods::ObjectLookup* lookup = nullptr;  // ConfigMaps/Secrets of the pod's namespace
  const pods::ServiceList* services = nullptr;  // service variables; null or unset: none
  pods::DownwardContext downward;              // addresses, node allocatable
  // InvalidEnvironmentVariableNames events (envFrom keys skipped).
  std::function<void(std::string_view, std::string_view, const std::string&)> on_event;
};
EnvContext env_context(const pods::ContainerStartRequest& req);

// The container's environment as the kubelet's makeEnvironmentVariables, in order:
//   1. envFrom: each configMapRef/secretRef (all data keys, sorted; secret data base64-decoded),
//      with the prefix; keys that are not valid env var names ([-._a-zA-Z][-._a-zA-Z0-9]*) are
//      skipped with a Warning event InvalidEnvironmentVariableNames; a missing source fails
//      unless optional.
//   2. env: `value` is $(VAR)-expanded against what is defined so far (envFrom and earlier env
//      entries; "$$" escapes); valueFrom (fieldRef, resourceFieldRef, configMapKeyRef,
//      secretKeyRef) values are used verbatim. An optional missing source/key leaves the
//      variable out. Later definitions of a name win, keeping the first position.
//   3. the service variables (service_env below, from ctx.services) that 1 and 2 did not
//      define; $(VAR) in 2 sees them too.
// Errors about missing objects/keys start with pods::kCreateContainerConfigError and carry the
// kubelet's text (`configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`), as does
// a Service list that is not known yet.
std::expected<std::vector<runtime::EnvVar>, std::string> container_env(const json::value& pod,
                                                                       const json::value& container,
                                                                       const EnvContext& ctx);
// The kubelet's service environment variables (getServiceEnvVarMap + envvars.FromServices),
// sorted by name, from every Service of the cluster: those of default/kubernetes always (the
// master service: KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, ...), those of the pod's
// namespace `ns` when enableServiceLinks (a Service there of the same name wins); Services
// without a cluster IP (headless, ExternalName) give none. For a Service "my-svc" with
// cluster IP A and ports 80/TCP "http", 53/UDP: MY_SVC_SERVICE_HOST=A, MY_SVC_SERVICE_PORT=80
// (the first port), MY_SVC_SERVICE_PORT_HTTP=80, MY_SVC_PORT=tcp://A:80, and for each port
// MY_SVC_PORT_80_TCP=tcp://A:80, ..._PROTO=tcp, ..._PORT=80, ..._ADDR=A.
std::vector<runtime::EnvVar> service_env(const std::vector<const json::value*>& services,
                                         std::string_view ns, bool enable_service_links);

// Go's IsEnvVarName (the kubelet's check for envFrom keys).
bool is_env_var_name(std::string_view name);

// The process part of a container: argv, env, cwd, identity, capabilities, seccomp.
// `image_user` is the image's user already resolved in the rootfs (runtime::resolve_user...).
// Errors name the field: "spec.containers[app].securityContext.capabilities: unknown
// capability \"FOO\"".
std::expected<runtime::ProcessSpec, std::string> process_spec(const json::value& pod,
                                                              const json::value& container,
                                                              const pods::ImageInfo& image,
                                                              const runtime::UserIds& image_user,
                                                              const EnvContext& env_ctx = {});

// Container-level flags of the spec: privileged, readOnlyRootFilesystem.
bool container_privileged(const json::value& container);
bool container_readonly_rootfs(const json::value& container);

// Volume mounts of the pod layer as runtime bind mounts.
std::vector<runtime::BindMount> bind_mounts(const std::vector<pods::MountRequest>& mounts);

}  // namespace podwarp::noded::adapters
