#include "adapters/container_spec.h"

#include <fmt/format.h>

#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "pods/volumes.h"

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

// "K=V" image env overridden by the resolved container env (no further expansion).
std::vector<std::string> merge_env(const std::vector<std::string>& image_env,
                                   const std::vector<runtime::EnvVar>& env) {
  std::map<std::string, std::string, std::less<>> defined;
  for (const auto& e : env) defined[e.name] = e.value;
  std::vector<std::string> out;
  for (const auto& kv : image_env) {
    std::string_view name = std::string_view(kv).substr(0, kv.find('='));
    if (defined.contains(name)) continue;
    out.push_back(kv);
  }
  for (const auto& e : env) out.push_back(e.name + "=" + e.value);
  return out;
}

// A ConfigMap's or Secret's string data (secret data base64-decoded).
std::expected<std::map<std::string, std::string>, std::string> object_data(const json::value& obj,
                                                                           bool secret) {
  std::map<std::string, std::string> out;
  if (auto* d = find_path(obj, {"data"}); d != nullptr && d->is_object()) {
    for (const auto& kv : d->as_object()) {
      if (!kv.value().is_string()) continue;
      std::string v(kv.value().as_string());
      if (secret) {
        auto dec = pods::base64_decode(v);
        if (!dec) return std::unexpected(fmt::format("key {}: {}", std::string(kv.key()), dec.error()));
        v = std::move(*dec);
      }
      out[std::string(kv.key())] = std::move(v);
    }
  }
  if (secret) {  // stringData (manifest-folder Secrets may still carry it)
    if (auto* d = find_path(obj, {"stringData"}); d != nullptr && d->is_object())
      for (const auto& kv : d->as_object())
        if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().as_string());
  }
  return out;
}

// Go's strings.ToUpper(strings.ReplaceAll(name, "-", "_")): the kubelet's makeEnvVariableName.
std::string env_name_of(std::string_view name) {
  std::string out(name);
  for (char& c : out) c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The variables of one Service with a cluster IP (envvars.FromServices): host, first port,
// named ports, and the Docker link variables of every port.
void add_service_vars(const json::value& svc, std::map<std::string, std::string>& out) {
  const std::string ip(get_string(svc, {"spec", "clusterIP"}));
  const json::value* ports = find_path(svc, {"spec", "ports"});
  if (ports == nullptr || !ports->is_array() || ports->as_array().empty()) return;
  const std::string prefix = env_name_of(get_string(svc, {"metadata", "name"}));
  const std::string host_port_ip = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  out[prefix + "_SERVICE_HOST"] = ip;
  bool first = true;
  for (const auto& p : ports->as_array()) {
    const std::string port = std::to_string(as_int(find_path(p, {"port"})).value_or(0));
    std::string protocol(get_string(p, {"protocol"}));
    if (protocol.empty()) protocol = "TCP";
    const std::string url = fmt::format("{}://{}:{}", lower(protocol), host_port_ip, port);
    if (first) {
      out[prefix + "_SERVICE_PORT"] = port;
      out[prefix + "_PORT"] = url;  // Docker special-cases the first port
      first = false;
    }
    if (auto name = get_string(p, {"name"}); !name.empty())
      out[prefix + "_SERVICE_PORT_" + env_name_of(name)] = port;
    const std::string port_prefix = fmt::format("{}_PORT_{}_{}", prefix, port, env_name_of(protocol));
    out[port_prefix] = url;
    out[port_prefix + "_PROTO"] = lower(protocol);
    out[port_prefix + "_PORT"] = port;
    out[port_prefix + "_ADDR"] = ip;
  }
}

}  // namespace

std::vector<runtime::EnvVar> service_env(const std::vector<const json::value*>& services,
                                         std::string_view ns, bool enable_service_links) {
  std::map<std::string, const json::value*> chosen;  // by Service name
  for (const json::value* s : services) {
    if (s == nullptr) continue;
    const auto ip = get_string(*s, {"spec", "clusterIP"});
    if (ip.empty() || ip == "None") continue;
    const std::string name(get_string(*s, {"metadata", "name"}));
    const auto sns = get_string(*s, {"metadata", "namespace"});
    if (sns == "default" && name == "kubernetes") {
      chosen.emplace(name, s);  // the pod's own namespace's Service of that name wins
    } else if (sns == ns && enable_service_links) {
      chosen[name] = s;
    }
  }
  std::map<std::string, std::string> vars;
  for (const auto& [name, s] : chosen) add_service_vars(*s, vars);
  std::vector<runtime::EnvVar> out;
  out.reserve(vars.size());
  for (auto& [k, v] : vars) out.push_back({k, std::move(v)});
  return out;
}

bool is_env_var_name(std::string_view n) {
  if (n.empty()) return false;
  auto ok = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_' ||
           (!first && c >= '0' && c <= '9');
  };
  for (size_t i = 0; i < n.size(); ++i)
    if (!ok(n[i], i == 0)) return false;
  return true;
}

EnvContext env_context(const pods::ContainerStartRequest& req) {
  EnvContext c;
  c.lookup = req.lookup;
  c.services = req.services;
  c.downward.host_ips = req.host_ips;
  c.downward.pod_ips = req.pod_ips;
  c.downward.node_allocatable = req.node_allocatable;
  c.on_event = req.on_event;
  return c;
}

std::expected<std::vector<runtime::EnvVar>, std::string> container_env(const json::value& pod,
                                                                       const json::value& container,
                                                                       const EnvContext& ctx) {
  const std::string ns(get_string(pod, {"metadata", "namespace"}, "default"));
  const std::string cfg_err(pods::kCreateContainerConfigError);
  // Objects are looked up once per resolution (as the kubelet's per-call maps).
  std::map<std::pair<bool, std::string>, std::optional<std::map<std::string, std::string>>> cache;
  auto get = [&](bool secret, const std::string& name)
      -> std::expected<const std::optional<std::map<std::string, std::string>>*, std::string> {
    auto key = std::pair{secret, name};
    if (auto it = cache.find(key); it != cache.end()) return &it->second;
    std::optional<std::map<std::string, std::string>> data;
    std::optional<json::value> obj;
    if (ctx.lookup != nullptr && *ctx.lookup) obj = (*ctx.lookup)(secret ? "Secret" : "ConfigMap", ns, name);
    if (obj) {
      auto d = object_data(*obj, secret);
      if (!d) return std::unexpected(fmt::format("{}{} {}/{}: {}", cfg_err, secret ? "secret" : "configmap", ns, name, d.error()));
      data = std::move(*d);
    }
    return &(cache[key] = std::move(data));
  };
  // 0. The service variables: $(VAR) sees them after the declared ones, and those the
  // container does not declare itself come last.
  std::map<std::string, std::string, std::less<>> service_vars;
  if (ctx.services != nullptr && *ctx.services) {
    auto all = (*ctx.services)();
    if (!all) return std::unexpected(cfg_err + all.error());
    std::vector<const json::value*> services;
    services.reserve(all->size());
    for (const auto& s : *all) services.push_back(s.get());
    const json::value* links = find_path(pod, {"spec", "enableServiceLinks"});
    const bool enable_links = links == nullptr || !links->is_bool() || links->as_bool();
    for (auto& e : service_env(services, ns, enable_links))
      service_vars.emplace(std::move(e.name), std::move(e.value));
  }
  std::vector<runtime::EnvVar> out;
  std::map<std::string, size_t, std::less<>> index;
  auto define = [&](std::string name, std::string value) {
    if (auto it = index.find(name); it != index.end()) {
      out[it->second].value = std::move(value);
      return;
    }
    index[name] = out.size();
    out.push_back({std::move(name), std::move(value)});
  };
  // 1. envFrom
  if (auto* list = field(container, "envFrom"); list != nullptr && list->is_array()) {
    for (const auto& src : list->as_array()) {
      std::string prefix(get_string(src, {"prefix"}));
      const json::value* ref = field(src, "configMapRef");
      bool secret = false;
      if (ref == nullptr) {
        ref = field(src, "secretRef");
        secret = ref != nullptr;
      }
      if (ref == nullptr) continue;
      std::string name(get_string(*ref, {"name"}));
      bool optional = get_bool(*ref, {"optional"});
      auto data = get(secret, name);
      if (!data) return std::unexpected(data.error());
      if (!**data) {
        if (optional) continue;
        return std::unexpected(fmt::format("{}{} \"{}\" not found", cfg_err, secret ? "secret" : "configmap", name));
      }
      std::vector<std::string> invalid;
      for (const auto& [k, v] : ***data) {
        std::string n = prefix + k;
        if (!is_env_var_name(n)) {
          invalid.push_back(n);
          continue;
        }
        define(n, v);
      }
      if (!invalid.empty() && ctx.on_event) {
        std::string keys;
        for (const auto& k : invalid) keys += (keys.empty() ? "" : ", ") + k;
        ctx.on_event("Warning", "InvalidEnvironmentVariableNames",
                     fmt::format("Keys [{}] from the EnvFrom {} {}/{} were skipped since they are "
                                 "considered invalid environment variable names.",
                                 keys, secret ? "secret" : "configMap", ns, name));
      }
    }
  }
  // 2. env
  if (auto* list = field(container, "env"); list != nullptr && list->is_array()) {
    for (const auto& e : list->as_array()) {
      std::string name(get_string(e, {"name"}));
      auto* from = field(e, "valueFrom");
      if (from == nullptr || from->is_null()) {
        std::string v = runtime::expand_vars(get_string(e, {"value"}), [&](std::string_view n) -> std::optional<std::string> {
          if (auto it = index.find(n); it != index.end()) return out[it->second].value;
          if (auto it = service_vars.find(n); it != service_vars.end()) return it->second;
          return std::nullopt;
        });
        define(name, std::move(v));
        continue;
      }
      if (auto* fr = field(*from, "fieldRef"); fr != nullptr) {
        auto v = pods::pod_field_value(pod, get_string(*fr, {"fieldPath"}), ctx.downward);
        if (!v) return std::unexpected(fmt::format("env[{}]: {}", name, v.error()));
        define(name, std::move(*v));
      } else if (auto* rf = field(*from, "resourceFieldRef"); rf != nullptr) {
        const json::value* target = &container;
        if (auto cn = get_string(*rf, {"containerName"}); !cn.empty() && cn != get_string(container, {"name"})) {
          target = pods::find_container(pod, cn);
          if (target == nullptr) return std::unexpected(fmt::format("env[{}]: container {} not found", name, cn));
        }
        auto v = pods::container_resource_value(*target, get_string(*rf, {"resource"}), field(*rf, "divisor"), ctx.downward);
        if (!v) return std::unexpected(fmt::format("env[{}]: {}", name, v.error()));
        define(name, std::move(*v));
      } else if (auto* kr = field(*from, "configMapKeyRef"); kr != nullptr || field(*from, "secretKeyRef") != nullptr) {
        bool secret = kr == nullptr;
        const json::value& ref = secret ? *field(*from, "secretKeyRef") : *kr;
        std::string obj_name(get_string(ref, {"name"})), key(get_string(ref, {"key"}));
        bool optional = get_bool(ref, {"optional"});
        auto data = get(secret, obj_name);
        if (!data) return std::unexpected(data.error());
        if (!**data) {
          if (optional) continue;
          return std::unexpected(fmt::format("{}{} \"{}\" not found", cfg_err, secret ? "secret" : "configmap", obj_name));
        }
        auto it = (**data)->find(key);
        if (it == (**data)->end()) {
          if (optional) continue;
          return std::unexpected(fmt::format("{}couldn't find key {} in {} {}/{}", cfg_err, key,
                                             secret ? "Secret" : "ConfigMap", ns, obj_name));
        }
        define(name, it->second);
      } else {
        return std::unexpected(fmt::format("env[{}].valueFrom: no source set", name));
      }
    }
  }
  // 3. The service variables the container did not define.
  for (auto& [name, value] : service_vars)
    if (!index.contains(name)) out.push_back({name, std::move(value)});
  return out;
}

bool container_privileged(const json::value& container) {
  return get_bool(container, {"securityContext", "privileged"});
}
bool container_readonly_rootfs(const json::value& container) {
  return get_bool(container, {"securityContext", "readOnlyRootFilesystem"});
}

std::expected<runtime::ProcessSpec, std::string> process_spec(const json::value& pod,
                                                              const json::value& container,
                                                              const pods::ImageInfo& image,
                                                              const runtime::UserIds& image_user,
                                                              const EnvContext& env_ctx) {
  std::string where = fmt::format("spec.containers[{}]", get_string(container, {"name"}));
  runtime::ProcessSpec p;
  // env
  auto resolved = container_env(pod, container, env_ctx);
  if (!resolved) {
    if (resolved.error().starts_with(pods::kCreateContainerConfigError)) return std::unexpected(resolved.error());
    return std::unexpected(fmt::format("{}.{}", where, resolved.error()));
  }
  const auto& env = *resolved;
  p.env = merge_env(image.env, env);
  // argv
  auto argv =
      runtime::resolve_command(strings(field(container, "command")),
                               strings(field(container, "args")), image.entrypoint, image.cmd);
  if (!argv) return std::unexpected(fmt::format("{}: {}", where, argv.error()));
  // Only the container's own command/args are expanded (the image's are used verbatim).
  if (field(container, "command") != nullptr || field(container, "args") != nullptr) {
    std::map<std::string, std::string, std::less<>> defined;
    for (const auto& e : env) defined[e.name] = e.value;
    for (auto& a : *argv)
      a = runtime::expand_vars(a, [&](std::string_view n) -> std::optional<std::string> {
        auto it = defined.find(n);
        if (it == defined.end()) return std::nullopt;
        return it->second;
      });
    p.argv = std::move(*argv);
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
