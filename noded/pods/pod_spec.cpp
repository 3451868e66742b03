#include "pods/pod_spec.h"

#include <openssl/evp.h>

#include <fmt/format.h>
#include <set>

#include "podwarp/time.h"

namespace podwarp::noded::pods {

std::string ManifestError::text() const {
  return field.empty() ? fmt::format("{}: {}", file, message)
                       : fmt::format("{}: {}: {}", file, field, message);
}

const json::value& PodDef::container_json(const ContainerDef& c, bool init) const {
  static const json::value kEmpty = json::object();
  if (c.spec_json) return *c.spec_json;
  const auto* list = find_path(pod, {"spec", init ? "initContainers" : "containers"});
  if (list == nullptr || !list->is_array() || c.index >= list->as_array().size()) return kEmpty;
  return list->as_array()[c.index];
}

bool is_dns1123_label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-') return false;
  return true;
}

bool is_dns1123_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    if (!is_dns1123_label(s.substr(start, dot == std::string_view::npos ? dot : dot - start)))
      return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

PullPolicy default_pull_policy(std::string_view image) {
  if (image.find('@') != std::string_view::npos) return PullPolicy::kIfNotPresent;
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  bool tagged = colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash);
  if (!tagged) return PullPolicy::kAlways;
  return image.substr(colon + 1) == "latest" ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
}

std::string static_pod_uid(const json::value& pod, std::string_view node_name,
                           std::string_view source_file) {
  std::string text = to_json(pod);
  text += fmt::format("host:{}", node_name);
  text += fmt::format("file:{}", source_file);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_md5(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

namespace {

using Err = std::unexpected<ManifestError>;

struct Checker {
  ManifestError base;
  Err fail(std::string field, std::string msg) const {
    ManifestError e = base;
    e.field = std::move(field);
    e.message = std::move(msg);
    return Err(std::move(e));
  }
};

std::expected<std::vector<ContainerDef>, ManifestError> parse_containers(
    const json::value& spec, const char* key, const Checker& ck, std::set<std::string>& names,
    const std::set<std::string>& volumes) {
  std::vector<ContainerDef> out;
  const auto* list = find_path(spec, {key});
  if (list == nullptr) return out;
  if (!list->is_array()) return ck.fail(fmt::format("spec.{}", key), "must be a list");
  size_t i = 0;
  for (const auto& c : list->as_array()) {
    std::string f = fmt::format("spec.{}[{}]", key, i);
    if (!c.is_object()) return ck.fail(f, "must be an object");
    ContainerDef d;
    d.index = i++;
    d.name = get_string(c, {"name"});
    if (d.name.empty()) return ck.fail(f + ".name", "Required value");
    if (!is_dns1123_label(d.name))
      return ck.fail(f + ".name", fmt::format("Invalid value: \"{}\": a lowercase RFC 1123 label must "
                                              "consist of lower case alphanumeric characters or '-'",
                                              d.name));
    if (!names.insert(d.name).second)
      return ck.fail(f + ".name", fmt::format("Duplicate value: \"{}\"", d.name));
    d.image = get_string(c, {"image"});
    if (d.image.empty()) return ck.fail(f + ".image", "Required value");
    if (std::string_view(key) == "ephemeralContainers") {
      d.target_container = get_string(c, {"targetContainerName"});
      d.spec_json = std::make_shared<const json::value>(c);
    }
    d.stdin = get_bool(c, {"stdin"});
    d.stdin_once = get_bool(c, {"stdinOnce"});
    d.tty = get_bool(c, {"tty"});
    auto pp = get_string(c, {"imagePullPolicy"});
    if (pp.empty())
      d.pull_policy = default_pull_policy(d.image);
    else if (pp == "Always")
      d.pull_policy = PullPolicy::kAlways;
    else if (pp == "IfNotPresent")
      d.pull_policy = PullPolicy::kIfNotPresent;
    else if (pp == "Never")
      d.pull_policy = PullPolicy::kNever;
    else
      return ck.fail(f + ".imagePullPolicy", fmt::format("Unsupported value: \"{}\"", pp));
    for (auto [field, dst] : {std::pair{"livenessProbe", &d.liveness},
                              std::pair{"readinessProbe", &d.readiness},
                              std::pair{"startupProbe", &d.startup}}) {
      if (auto* p = find_path(c, {field})) {
        auto probe = probes::parse_probe(*p, c);
        if (!probe) return ck.fail(f + "." + field, probe.error());
        *dst = std::move(*probe);
      }
    }
    for (auto [field, dst] : {std::pair{"postStart", &d.post_start}, std::pair{"preStop", &d.pre_stop}}) {
      if (auto* h = find_path(c, {"lifecycle", field})) {
        auto handler = probes::parse_handler(*h, c);
        if (!handler) return ck.fail(f + ".lifecycle." + field, handler.error());
        *dst = std::move(*handler);
      }
    }
    if (auto* vm = find_path(c, {"volumeMounts"})) {
      if (!vm->is_array()) return ck.fail(f + ".volumeMounts", "must be a list");
      size_t j = 0;
      for (const auto& m : vm->as_array()) {
        std::string mf = fmt::format("{}.volumeMounts[{}]", f, j++);
        VolumeMountDef md{std::string(get_string(m, {"name"})), std::string(get_string(m, {"mountPath"})),
                          std::string(get_string(m, {"subPath"})), get_bool(m, {"readOnly"})};
        if (md.name.empty()) return ck.fail(mf + ".name", "Required value");
        if (!volumes.contains(md.name)) return ck.fail(mf + ".name", fmt::format("Not found: \"{}\"", md.name));
        if (md.mount_path.empty() || md.mount_path[0] != '/')
          return ck.fail(mf + ".mountPath", "must be an absolute path");
        if (md.sub_path.find("..") != std::string::npos || (!md.sub_path.empty() && md.sub_path[0] == '/'))
          return ck.fail(mf + ".subPath", "must be a relative path without '..'");
        d.mounts.push_back(std::move(md));
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

bool safe_path(std::string_view p) {
  if (p.empty() || p[0] == '/') return false;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (p.substr(i, j - i) == "..") return false;
    i = j + 1;
  }
  return !p.starts_with("..");
}

std::expected<int, std::string> parse_mode(const json::value& obj, std::string_view key, int dflt) {
  auto* v = obj.is_object() ? obj.as_object().if_contains(key) : nullptr;
  if (v == nullptr || v->is_null()) return dflt;
  if (!v->is_int64() && !v->is_uint64()) return std::unexpected("must be an integer");
  auto m = v->is_int64() ? v->as_int64() : static_cast<std::int64_t>(v->as_uint64());
  if (m < 0 || m > 0777)
    return std::unexpected(fmt::format("Invalid value: {}: must be a number between 0 and 0777 (octal), both inclusive", m));
  return static_cast<int>(m);
}

std::expected<std::vector<KeyToPath>, std::string> parse_items(const json::value& src) {
  std::vector<KeyToPath> out;
  auto* items = find_path(src, {"items"});
  if (items == nullptr || !items->is_array()) return out;
  for (const auto& it : items->as_array()) {
    KeyToPath kp{std::string(get_string(it, {"key"})), std::string(get_string(it, {"path"})), std::nullopt};
    if (kp.key.empty()) return std::unexpected("key: Required value");
    if (!safe_path(kp.path)) return std::unexpected(fmt::format("path: Invalid value: \"{}\": must be a relative path without '..'", kp.path));
    if (auto* m = find_path(it, {"mode"}); m != nullptr && !m->is_null()) {
      auto mode = parse_mode(it, "mode", 0);
      if (!mode) return std::unexpected("mode: " + mode.error());
      kp.mode = *mode;
    }
    out.push_back(std::move(kp));
  }
  return out;
}

std::expected<std::vector<DownwardItem>, std::string> parse_downward(const json::value& src) {
  std::vector<DownwardItem> out;
  auto* items = find_path(src, {"items"});
  if (items == nullptr || !items->is_array()) return out;
  for (const auto& it : items->as_array()) {
    DownwardItem d;
    d.path = get_string(it, {"path"});
    if (!safe_path(d.path)) return std::unexpected(fmt::format("path: Invalid value: \"{}\": must be a relative path without '..'", d.path));
    if (auto* fr = find_path(it, {"fieldRef"})) {
      d.field_path = get_string(*fr, {"fieldPath"});
      if (d.field_path.empty()) return std::unexpected("fieldRef.fieldPath: Required value");
    } else if (auto* rf = find_path(it, {"resourceFieldRef"})) {
      d.resource = get_string(*rf, {"resource"});
      d.container_name = get_string(*rf, {"containerName"});
      if (auto* dv = find_path(*rf, {"divisor"})) d.divisor = *dv;
      if (d.resource.empty()) return std::unexpected("resourceFieldRef.resource: Required value");
      if (d.container_name.empty()) return std::unexpected("resourceFieldRef.containerName: Required value");
    } else {
      return std::unexpected("must specify one of fieldRef or resourceFieldRef");
    }
    if (auto* m = find_path(it, {"mode"}); m != nullptr && !m->is_null()) {
      auto mode = parse_mode(it, "mode", 0);
      if (!mode) return std::unexpected("mode: " + mode.error());
      d.mode = *mode;
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::expected<PodDef, ManifestError> pod_from_json(json::value pod, const StaticPodOptions& o) {
  Checker ck;
  ck.base.file = o.source_file;
  if (!pod.is_object()) return ck.fail("", "a manifest must be a Pod object");
  auto kind = get_string(pod, {"kind"});
  if (kind != "Pod") return ck.fail("kind", fmt::format("Unsupported value: \"{}\": expected \"Pod\"", kind));
  auto& obj = pod.as_object();
  auto& meta = ensure_object(obj, "metadata");
  std::string name(get_string(pod, {"metadata", "name"}));
  std::string ns(get_string(pod, {"metadata", "namespace"}, "default"));
  if (ns.empty()) ns = "default";
  if (!name.empty() && !o.node_name.empty()) name += "-" + o.node_name;
  ck.base.name = name;
  ck.base.ns = ns;
  if (name.empty()) return ck.fail("metadata.name", "Required value: name or generateName is required");
  if (!is_dns1123_subdomain(name))
    return ck.fail("metadata.name", fmt::format("Invalid value: \"{}\": a lowercase RFC 1123 subdomain", name));
  if (!is_dns1123_label(ns))
    return ck.fail("metadata.namespace", fmt::format("Invalid value: \"{}\": a lowercase RFC 1123 label", ns));
  const auto* spec = find_path(pod, {"spec"});
  if (spec == nullptr || !spec->is_object()) return ck.fail("spec", "Required value");

  PodDef d;
  d.ns = ns;
  d.name = name;
  d.source_file = o.source_file;
  d.restart_policy = get_string(*spec, {"restartPolicy"}, "Always");
  if (d.restart_policy != "Always" && d.restart_policy != "OnFailure" && d.restart_policy != "Never")
    return ck.fail("spec.restartPolicy", fmt::format("Unsupported value: \"{}\"", d.restart_policy));
  d.grace_seconds = get_int(*spec, {"terminationGracePeriodSeconds"}, 30);
  if (d.grace_seconds < 0) return ck.fail("spec.terminationGracePeriodSeconds", "must be >= 0");
  if (const json::value* ad = find_path(*spec, {"activeDeadlineSeconds"}); ad != nullptr && !ad->is_null()) {
    std::int64_t secs = get_int(*spec, {"activeDeadlineSeconds"}, 0);
    if (secs <= 0) return ck.fail("spec.activeDeadlineSeconds", "must be greater than 0");
    d.active_deadline_seconds = secs;
  }
  d.host_network = get_bool(*spec, {"hostNetwork"});
  d.service_account = get_string(*spec, {"serviceAccountName"}, "default");
  if (d.service_account.empty()) d.service_account = "default";
  if (auto* ips = find_path(*spec, {"imagePullSecrets"}); ips != nullptr && ips->is_array())
    for (const auto& r : ips->as_array())
      if (auto n = get_string(r, {"name"}); !n.empty()) d.image_pull_secrets.emplace_back(n);
  // As the kubelet: spec.hostname, else the pod's name (for a static pod the node-suffixed
  // one), cut to 63 characters without a trailing '-' or '.'.
  d.hostname = get_string(*spec, {"hostname"}, name);
  if (d.hostname.size() > 63) {
    d.hostname.resize(63);
    while (!d.hostname.empty() && (d.hostname.back() == '-' || d.hostname.back() == '.')) {
      d.hostname.pop_back();
    }
  }

  std::set<std::string> vol_names;
  if (auto* vols = find_path(*spec, {"volumes"})) {
    if (!vols->is_array()) return ck.fail("spec.volumes", "must be a list");
    size_t i = 0;
    for (const auto& v : vols->as_array()) {
      std::string f = fmt::format("spec.volumes[{}]", i++);
      VolumeDef vd;
      vd.name = get_string(v, {"name"});
      if (!is_dns1123_label(vd.name)) return ck.fail(f + ".name", fmt::format("Invalid value: \"{}\"", vd.name));
      if (!vol_names.insert(vd.name).second) return ck.fail(f + ".name", fmt::format("Duplicate value: \"{}\"", vd.name));
      if (auto* e = find_path(v, {"emptyDir"})) {
        vd.kind = VolumeDef::Kind::kEmptyDir;
        vd.memory_medium = get_string(*e, {"medium"}) == "Memory";
        if (auto* sl = find_path(*e, {"sizeLimit"}); sl && sl->is_string()) vd.size_limit = sl->as_string();
      } else if (auto* h = find_path(v, {"hostPath"})) {
        vd.kind = VolumeDef::Kind::kHostPath;
        vd.host_path = get_string(*h, {"path"});
        vd.host_path_type = get_string(*h, {"type"});
        if (vd.host_path.empty() || vd.host_path[0] != '/')
          return ck.fail(f + ".hostPath.path", "must be an absolute path");
      } else if (auto* pvc = find_path(v, {"persistentVolumeClaim"})) {
        vd.kind = VolumeDef::Kind::kPersistentVolumeClaim;
        vd.source_name = get_string(*pvc, {"claimName"});
        if (vd.source_name.empty())
          return ck.fail(f + ".persistentVolumeClaim.claimName", "Required value");
        vd.read_only = get_bool(*pvc, {"readOnly"});
      } else if (auto* c = find_path(v, {"configMap"}); c || find_path(v, {"secret"})) {
        bool is_cm = c != nullptr;
        const auto& src = is_cm ? *c : *find_path(v, {"secret"});
        vd.kind = is_cm ? VolumeDef::Kind::kConfigMap : VolumeDef::Kind::kSecret;
        vd.source_name = get_string(src, {is_cm ? "name" : "secretName"});
        if (vd.source_name.empty())
          return ck.fail(f + (is_cm ? ".configMap.name" : ".secret.secretName"), "Required value");
        vd.optional = get_bool(src, {"optional"});
        auto mode = parse_mode(src, "defaultMode", 0644);
        if (!mode) return ck.fail(f + (is_cm ? ".configMap" : ".secret") + ".defaultMode", mode.error());
        vd.default_mode = *mode;
        auto items = parse_items(src);
        if (!items) return ck.fail(f + (is_cm ? ".configMap" : ".secret") + ".items", items.error());
        vd.items = *items;
        ProjectionSource ps;
        ps.kind = is_cm ? ProjectionSource::Kind::kConfigMap : ProjectionSource::Kind::kSecret;
        ps.name = vd.source_name;
        ps.items = vd.items;
        ps.optional = vd.optional;
        vd.sources.push_back(std::move(ps));
      } else if (auto* da = find_path(v, {"downwardAPI"})) {
        vd.kind = VolumeDef::Kind::kDownwardAPI;
        auto mode = parse_mode(*da, "defaultMode", 0644);
        if (!mode) return ck.fail(f + ".downwardAPI.defaultMode", mode.error());
        vd.default_mode = *mode;
        ProjectionSource ps;
        ps.kind = ProjectionSource::Kind::kDownwardAPI;
        auto items = parse_downward(*da);
        if (!items) return ck.fail(f + ".downwardAPI.items", items.error());
        ps.downward = std::move(*items);
        vd.sources.push_back(std::move(ps));
      } else if (auto* pj = find_path(v, {"projected"})) {
        vd.kind = VolumeDef::Kind::kProjected;
        auto mode = parse_mode(*pj, "defaultMode", 0644);
        if (!mode) return ck.fail(f + ".projected.defaultMode", mode.error());
        vd.default_mode = *mode;
        if (auto* srcs = find_path(*pj, {"sources"}); srcs != nullptr && srcs->is_array()) {
          size_t k = 0;
          for (const auto& s : srcs->as_array()) {
            std::string sf = fmt::format("{}.projected.sources[{}]", f, k++);
            ProjectionSource ps;
            if (auto* cm = find_path(s, {"configMap"}); cm || find_path(s, {"secret"})) {
              bool is_cm = cm != nullptr;
              const auto& src = is_cm ? *cm : *find_path(s, {"secret"});
              ps.kind = is_cm ? ProjectionSource::Kind::kConfigMap : ProjectionSource::Kind::kSecret;
              ps.name = get_string(src, {"name"});
              ps.optional = get_bool(src, {"optional"});
              auto items = parse_items(src);
              if (!items) return ck.fail(sf + (is_cm ? ".configMap" : ".secret") + ".items", items.error());
              ps.items = *items;
            } else if (auto* d2 = find_path(s, {"downwardAPI"})) {
              ps.kind = ProjectionSource::Kind::kDownwardAPI;
              auto items = parse_downward(*d2);
              if (!items) return ck.fail(sf + ".downwardAPI.items", items.error());
              ps.downward = std::move(*items);
            } else if (auto* t = find_path(s, {"serviceAccountToken"})) {
              ps.kind = ProjectionSource::Kind::kServiceAccountToken;
              ps.audience = get_string(*t, {"audience"});
              ps.expiration_seconds = get_int(*t, {"expirationSeconds"}, 3600);
              ps.path = get_string(*t, {"path"});
              if (ps.path.empty()) return ck.fail(sf + ".serviceAccountToken.path", "Required value");
              if (!safe_path(ps.path))
                return ck.fail(sf + ".serviceAccountToken.path", "must be a relative path without '..'");
              if (ps.expiration_seconds < 600)
                return ck.fail(sf + ".serviceAccountToken.expirationSeconds",
                               "may not specify a duration less than 10 minutes");
            } else {
              continue;  // clusterTrustBundle, podCertificate: not supported, nothing written
            }
            vd.sources.push_back(std::move(ps));
          }
        }
      }
      d.volumes.push_back(std::move(vd));
    }
  }

  std::set<std::string> cnames;
  auto inits = parse_containers(*spec, "initContainers", ck, cnames, vol_names);
  if (!inits) return std::unexpected(inits.error());
  auto apps = parse_containers(*spec, "containers", ck, cnames, vol_names);
  if (!apps) return std::unexpected(apps.error());
  if (apps->empty()) return ck.fail("spec.containers", "Required value");
  auto ephemeral = parse_containers(*spec, "ephemeralContainers", ck, cnames, vol_names);
  if (!ephemeral) return std::unexpected(ephemeral.error());
  d.init_containers = std::move(*inits);
  d.containers = std::move(*apps);
  for (auto& c : *ephemeral) d.ephemeral_containers.push_back(std::move(c));

  // Static pod defaults (the hash covers the object as written, before these changes).
  d.uid = static_pod_uid(pod, o.node_name, o.source_file);
  meta["name"] = name;
  meta["namespace"] = ns;
  meta["uid"] = d.uid;
  auto& ann = ensure_object(meta, "annotations");
  ann["kubernetes.io/config.hash"] = d.uid;
  ann["kubernetes.io/config.source"] = "file";
  ann["kubernetes.io/config.seen"] = format_rfc3339(std::chrono::system_clock::now());
  auto& sp = ensure_object(obj, "spec");
  if (!o.node_name.empty()) sp["nodeName"] = o.node_name;
  sp["restartPolicy"] = d.restart_policy;
  d.pod = std::move(pod);
  return d;
}

std::expected<std::vector<ContainerDef>, ManifestError> ephemeral_containers_of(const json::value& pod) {
  auto d = pod_from_json(pod, StaticPodOptions{});
  if (!d) return std::unexpected(d.error());
  return std::vector<ContainerDef>(std::make_move_iterator(d->ephemeral_containers.begin()),
                                   std::make_move_iterator(d->ephemeral_containers.end()));
}

}  // namespace podwarp::noded::pods
