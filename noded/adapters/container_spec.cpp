#include "adapters/container_spec.h"

#include <fmt/format.h>

#include <optional>

namespace podwarp::noded::adapters {
namespace {

std::vector<std::string> strings(const json::value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->is_array()) return out;
  for (const auto& e : v->as_array()) {
    if (e.is_string()) out.emplace_back(e.as_string());
  }
  return out;
}

const json::value* field(const json::value& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  return obj.as_object().if_contains(key);
}

// The securityContext field `key` of the container, else of the pod (when pod_level).
const json::value* sc_field(const json::value& pod, const json::value& container,
                            std::string_view key, bool pod_level = true) {
  if (auto* v = find_path(container, {"securityContext", key}); v != nullptr && !v->is_null())
    return v;
  if (!pod_level) return nullptr;
  if (auto* v = find_path(pod, {"spec", "securityContext", key}); v != nullptr && !v->is_null())
    return v;
  return nullptr;
}

std::optional<std::int64_t> as_int(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return std::nullopt;
}

std::expected<std::string, std::string> field_ref(const json::value& pod, std::string_view path) {
  if (path == "metadata.name") return std::string(get_string(pod, {"metadata", "name"}));
  if (path == "metadata.namespace") return std::string(get_string(pod, {"metadata", "namespace"}));
  if (path == "metadata.uid") return std::string(get_string(pod, {"metadata", "uid"}));
  if (path == "spec.nodeName") return std::string(get_string(pod, {"spec", "nodeName"}));
  if (path == "spec.serviceAccountName")
    return std::string(get_string(pod, {"spec", "serviceAccountName"}));
  if (path == "status.podIP" || path == "status.podIPs" || path == "status.hostIP")
    return std::string();  // standalone: no pod IP
  return std::unexpected(fmt::format("fieldRef {} is not supported", path));
}

}  // namespace

bool container_privileged(const json::value& container) {
  return get_bool(container, {"securityContext", "privileged"});
}
bool container_readonly_rootfs(const json::value& container) {
  return get_bool(container, {"securityContext", "readOnlyRootFilesystem"});
}

std::expected<runtime::ProcessSpec, std::string> process_spec(const json::value& pod,
                                                              const json::value& container,
                                                              const pods::ImageInfo& image,
                                                              const runtime::UserIds& image_user) {
  std::string where = fmt::format("spec.containers[{}]", get_string(container, {"name"}));
  runtime::ProcessSpec p;
  // env
  std::vector<runtime::EnvVar> env;
  if (auto* list = field(container, "env"); list != nullptr && list->is_array()) {
    for (const auto& e : list->as_array()) {
      runtime::EnvVar v{std::string(get_string(e, {"name"})),
                        std::string(get_string(e, {"value"}))};
      if (auto* from = field(e, "valueFrom"); from != nullptr && !from->is_null()) {
        if (auto* fr = field(*from, "fieldRef"); fr != nullptr) {
          auto val = field_ref(pod, get_string(*fr, {"fieldPath"}));
          if (!val)
            return std::unexpected(fmt::format("{}.env[{}]: {}", where, v.name, val.error()));
          v.value = *val;
        } else {
          return std::unexpected(
              fmt::format("{}.env[{}].valueFrom: only fieldRef is supported", where, v.name));
        }
      }
      env.push_back(std::move(v));
    }
  }
  p.env = runtime::build_env(image.env, env);
  // argv
  auto argv =
      runtime::resolve_command(strings(field(container, "command")),
                               strings(field(container, "args")), image.entrypoint, image.cmd);
  if (!argv) return std::unexpected(fmt::format("{}: {}", where, argv.error()));
  // Only the container's own command/args are expanded (the image's are used verbatim).
  if (field(container, "command") != nullptr || field(container, "args") != nullptr) {
    p.argv = runtime::expand_args(*argv, env);
  } else {
    p.argv = std::move(*argv);
  }
  std::string_view wd = get_string(container, {"workingDir"});
  p.working_dir = !wd.empty()                  ? std::string(wd)
                  : !image.working_dir.empty() ? image.working_dir
                                               : std::string("/");
  // identity
  p.uid = image_user.uid;
  p.gid = image_user.gid;
  p.supplemental_groups = image_user.additional_gids;
  if (auto u = as_int(sc_field(pod, container, "runAsUser"))) {
    if (*u < 0) return std::unexpected(where + ".securityContext.runAsUser: must be >= 0");
    if (static_cast<uid_t>(*u) != image_user.uid) p.gid = 0;
    p.uid = static_cast<uid_t>(*u);
  }
  if (auto g = as_int(sc_field(pod, container, "runAsGroup"))) {
    if (*g < 0) return std::unexpected(where + ".securityContext.runAsGroup: must be >= 0");
    p.gid = static_cast<gid_t>(*g);
  }
  if (auto* sg = find_path(pod, {"spec", "securityContext", "supplementalGroups"});
      sg != nullptr && sg->is_array()) {
    for (const auto& g : sg->as_array()) {
      if (auto v = as_int(&g); v && *v >= 0)
        p.supplemental_groups.push_back(static_cast<gid_t>(*v));
    }
  }
  if (auto fsg = as_int(find_path(pod, {"spec", "securityContext", "fsGroup"})); fsg && *fsg >= 0)
    p.supplemental_groups.push_back(static_cast<gid_t>(*fsg));
  // privileges
  bool privileged = container_privileged(container);
  auto caps = runtime::compute_capabilities(
      strings(find_path(container, {"securityContext", "capabilities", "add"})),
      strings(find_path(container, {"securityContext", "capabilities", "drop"})), privileged);
  if (!caps)
    return std::unexpected(fmt::format("{}.securityContext.capabilities: {}", where, caps.error()));
  p.capabilities = *caps;
  if (auto* ape = sc_field(pod, container, "allowPrivilegeEscalation", false);
      ape != nullptr && ape->is_bool() && !ape->as_bool() && !privileged) {
    p.no_new_privs = true;
  }
  p.seccomp = runtime::SeccompProfile::kUnconfined;
  if (auto* sp = sc_field(pod, container, "seccompProfile"); sp != nullptr && !privileged) {
    std::string_view type = get_string(*sp, {"type"});
    if (type == "RuntimeDefault") {
      p.seccomp = runtime::SeccompProfile::kRuntimeDefault;
    } else if (type == "Localhost") {
      return std::unexpected(
          where + ".securityContext.seccompProfile: Localhost profiles are not supported");
    } else if (type != "Unconfined") {
      return std::unexpected(
          fmt::format("{}.securityContext.seccompProfile.type: unknown \"{}\"", where, type));
    }
  }
  return p;
}

std::vector<runtime::BindMount> bind_mounts(const std::vector<pods::MountRequest>& mounts) {
  std::vector<runtime::BindMount> out;
  out.reserve(mounts.size());
  for (const auto& m : mounts) out.push_back({m.host_path, m.container_path, m.read_only});
  return out;
}

}  // namespace podwarp::noded::adapters
