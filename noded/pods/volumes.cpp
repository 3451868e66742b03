#include "pods/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>
#include <fmt/format.h>

#include "cgroup/cgroup.h"
#include "pods/atomic_writer.h"
#include "podwarp/log.h"
#include "podwarp/quantity.h"
#include "podwarp/kubeconfig.h"

namespace podwarp::noded::pods {

namespace fs = std::filesystem;

std::expected<std::string, std::string> base64_decode(std::string_view in) {
  auto out = kubeconfig::base64_decode(in);
  if (!out) return std::unexpected("illegal base64 data");
  return std::move(*out);
}

namespace {

std::string volume_dir(const std::string& pod_dir, const char* plugin, const std::string& name) {
  return fmt::format("{}/volumes/kubernetes.io~{}/{}", pod_dir, plugin, name);
}

const char* plugin_name(VolumeDef::Kind k) {
  switch (k) {
    case VolumeDef::Kind::kConfigMap: return "configmap";
    case VolumeDef::Kind::kSecret: return "secret";
    case VolumeDef::Kind::kDownwardAPI: return "downward-api";
    case VolumeDef::Kind::kProjected: return "projected";
    default: return "empty-dir";
  }
}

// Secrets never touch the node's disk: secret and projected volumes (the service-account token)
// live on a tmpfs per volume, as the kubelet mounts them.
bool on_tmpfs(VolumeDef::Kind k) {
  return k == VolumeDef::Kind::kSecret || k == VolumeDef::Kind::kProjected;
}

// A hostPath at `path` checked or created per its type (the API's HostPathType). A directory
// DirectoryOrCreate makes is 0777 when `world_writable` (volumes of provisioned claims, as
// local-path provisioners make them, so that non-root containers can write).
std::expected<std::string, std::string> host_path_volume(const std::string& path,
                                                         std::string_view type,
                                                         bool world_writable) {
  std::error_code ec;
  if (type == "DirectoryOrCreate") {
    bool created = fs::create_directories(path, ec);
    if (ec) return std::unexpected(fmt::format("mkdir {}: {}", path, ec.message()));
    if (created && world_writable && ::chmod(path.c_str(), 0777) != 0)
      return std::unexpected(fmt::format("chmod {}: {}", path, std::strerror(errno)));
  } else if (type == "FileOrCreate") {
    if (!fs::exists(path)) {
      fs::create_directories(fs::path(path).parent_path(), ec);
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) return std::unexpected(fmt::format("create {}: {}", path, std::strerror(errno)));
      ::close(fd);
    }
  } else if (type == "Directory" && !fs::is_directory(path)) {
    return std::unexpected(fmt::format("hostPath type check failed: {} is not a directory", path));
  } else if (type == "File" && !fs::is_regular_file(path)) {
    return std::unexpected(fmt::format("hostPath type check failed: {} is not a file", path));
  } else if (type == "Socket" && !fs::is_socket(path)) {
    return std::unexpected(fmt::format("hostPath type check failed: {} is not a socket", path));
  }
  return path;
}

// The fields of a PersistentVolumeSpec that are not its volume source.
bool is_pv_spec_field(std::string_view k) {
  for (std::string_view f : {"accessModes", "capacity", "claimRef", "mountOptions", "nodeAffinity",
                             "persistentVolumeReclaimPolicy", "storageClassName", "volumeMode",
                             "volumeAttributesClassName"})
    if (k == f) return true;
  return false;
}

// A persistentVolumeClaim volume: the claim in the pod's namespace, bound, and the host path
// of its PersistentVolume (hostPath or local sources only).
std::expected<std::string, std::string> claim_volume(const PodDef& pod, const VolumeDef& v,
                                                     const ObjectLookup& lookup) {
  const std::string& claim_name = v.source_name;
  auto claim = lookup ? lookup("PersistentVolumeClaim", pod.ns, claim_name) : std::nullopt;
  if (!claim)
    return std::unexpected(fmt::format("persistentvolumeclaim \"{}\" not found", claim_name));
  std::string pv_name(get_string(*claim, {"spec", "volumeName"}));
  if (pv_name.empty() || get_string(*claim, {"status", "phase"}) != "Bound")
    return std::unexpected(
        fmt::format("waiting for PersistentVolumeClaim {} to be bound", claim_name));
  auto pv = lookup("PersistentVolume", "", pv_name);
  if (!pv) return std::unexpected(fmt::format("persistentvolume \"{}\" not found", pv_name));
  // A claimRef naming another claim: the volume went to someone else (a stale volumeName).
  if (const json::value* ref = find_path(*pv, {"spec", "claimRef"}); ref && ref->is_object()) {
    std::string_view ref_uid = get_string(*ref, {"uid"});
    std::string_view uid = get_string(*claim, {"metadata", "uid"});
    if (get_string(*ref, {"name"}) != claim_name || get_string(*ref, {"namespace"}) != pod.ns ||
        (!ref_uid.empty() && !uid.empty() && ref_uid != uid))
      return std::unexpected(fmt::format("PersistentVolume {} is bound to another claim ({}/{})",
                                         pv_name, get_string(*ref, {"namespace"}),
                                         get_string(*ref, {"name"})));
  }
  const json::value* spec = find_path(*pv, {"spec"});
  if (const json::value* hp = spec ? find_path(*spec, {"hostPath"}) : nullptr) {
    std::string path(get_string(*hp, {"path"}));
    if (path.empty() || path[0] != '/')
      return std::unexpected(
          fmt::format("PersistentVolume {}: hostPath.path \"{}\" is not absolute", pv_name, path));
    return host_path_volume(path, get_string(*hp, {"type"}), true);
  }
  if (const json::value* local = spec ? find_path(*spec, {"local"}) : nullptr) {
    std::string path(get_string(*local, {"path"}));
    if (path.empty() || !fs::exists(path))
      return std::unexpected(fmt::format(
          "local volume path \"{}\" of PersistentVolume {} does not exist", path, pv_name));
    return path;
  }
  std::string source = "none";
  if (spec && spec->is_object())
    for (const auto& [k, val] : spec->as_object())
      if (val.is_object() && !is_pv_spec_field(k)) {
        source = std::string(k);
        break;
      }
  return std::unexpected(
      fmt::format("unsupported PersistentVolume source for {}: {}", pv_name, source));
}

}  // namespace

std::expected<std::string, std::string> prepare_volume(const PodDef& pod, const VolumeDef& v,
                                                      const std::string& pod_dir,
                                                      const ObjectLookup& lookup,
                                                      const VolumeInputs& in) {
  std::error_code ec;
  switch (v.kind) {
    case VolumeDef::Kind::kEmptyDir: {
      std::string d = volume_dir(pod_dir, "empty-dir", v.name);
      fs::create_directories(d, ec);
      if (ec) return std::unexpected(fmt::format("mkdir {}: {}", d, ec.message()));
      ::chmod(d.c_str(), 0777);
      if (v.memory_medium) {
        std::string opts = "mode=0777";
        if (!v.size_limit.empty()) {
          auto q = Quantity::parse(v.size_limit);
          if (!q || q->value() <= 0)
            return std::unexpected(fmt::format("invalid emptyDir.sizeLimit \"{}\"", v.size_limit));
          opts += fmt::format(",size={}", q->value());  // tmpfs takes bytes, not "1Mi"
        }
        if (auto m = ensure_tmpfs(d, opts); !m) return std::unexpected(m.error());
      }
      return d;
    }
    case VolumeDef::Kind::kHostPath:
      return host_path_volume(v.host_path, v.host_path_type, false);
    case VolumeDef::Kind::kPersistentVolumeClaim:
      return claim_volume(pod, v, lookup);
    case VolumeDef::Kind::kConfigMap:
    case VolumeDef::Kind::kSecret:
    case VolumeDef::Kind::kDownwardAPI:
    case VolumeDef::Kind::kProjected: {
      std::string d = volume_dir(pod_dir, plugin_name(v.kind), v.name);
      auto payload = volume_payload(pod, v, lookup, in);
      if (!payload) return std::unexpected(payload.error());
      if (on_tmpfs(v.kind)) {
        fs::create_directories(d, ec);
        if (ec) return std::unexpected(fmt::format("mkdir {}: {}", d, ec.message()));
        if (auto m = ensure_tmpfs(d, "mode=0755"); !m && errno != EPERM)
          return std::unexpected(m.error());  // EPERM: not root (tests, dev); on disk then
      }
      auto w = write_atomic(d, *payload);
      if (!w) return std::unexpected(w.error());
      return d;
    }
    case VolumeDef::Kind::kUnsupported:
      break;
  }
  return std::unexpected(
      "unsupported volume type (supported: emptyDir, hostPath, configMap, secret, downwardAPI, "
      "projected, persistentVolumeClaim)");
}

bool volume_refreshes(const VolumeDef& v) {
  return v.kind == VolumeDef::Kind::kConfigMap || v.kind == VolumeDef::Kind::kSecret ||
         v.kind == VolumeDef::Kind::kDownwardAPI || v.kind == VolumeDef::Kind::kProjected;
}

std::expected<std::map<std::string, std::string>, std::string> prepare_volumes(
    const PodDef& pod, const std::string& pod_dir, const ObjectLookup& lookup,
    const VolumeInputs& in) {
  std::map<std::string, std::string> out;
  for (const auto& v : pod.volumes) {
    auto p = prepare_volume(pod, v, pod_dir, lookup, in);
    if (!p) return std::unexpected(fmt::format("volume {}: {}", v.name, p.error()));
    out[v.name] = *p;
  }
  return out;
}

void teardown_volumes(const PodDef& pod, const std::string& pod_dir) {
  for (const auto& v : pod.volumes) {
    if (v.kind == VolumeDef::Kind::kEmptyDir && v.memory_medium)
      ::umount2(volume_dir(pod_dir, "empty-dir", v.name).c_str(), MNT_DETACH);
    else if (on_tmpfs(v.kind))
      ::umount2(volume_dir(pod_dir, plugin_name(v.kind), v.name).c_str(), MNT_DETACH);
  }
}

bool is_mount_point(const std::string& dir) {
  struct stat a{}, b{};
  return ::stat(dir.c_str(), &a) == 0 &&
         ::stat(fs::path(dir).parent_path().c_str(), &b) == 0 && a.st_dev != b.st_dev;
}

std::expected<void, std::string> ensure_tmpfs(const std::string& d, const std::string& opts,
                                              unsigned long extra_flags) {
  if (is_mount_point(d)) return {};
  if (::mount("tmpfs", d.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | extra_flags, opts.c_str()) !=
      0) {
    int e = errno;
    std::string msg = fmt::format("mount tmpfs on {}: {}", d, std::strerror(e));
    errno = e;  // callers tell EPERM apart
    return std::unexpected(std::move(msg));
  }
  return {};
}

void unmount_all_under(const std::string& dir) {
  std::ifstream mi("/proc/self/mountinfo");
  std::stringstream text;
  text << mi.rdbuf();
  std::vector<std::string> under;
  for (const auto& m : cgroup::parse_mountinfo(text.str()))
    if (m.mount_point.starts_with(dir + "/")) under.push_back(m.mount_point);
  std::sort(under.begin(), under.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& m : under)
    if (::umount2(m.c_str(), MNT_DETACH) != 0)
      log::warn("pods: umount {}: {}", m, std::strerror(errno));
}

std::vector<MountRequest> container_mounts(const ContainerDef& c,
                                           const std::map<std::string, std::string>& volumes,
                                           const std::vector<VolumeDef>& defs) {
  std::vector<MountRequest> out;
  for (const auto& m : c.mounts) {
    auto it = volumes.find(m.name);
    if (it == volumes.end()) continue;
    bool read_only = m.read_only;
    for (const auto& d : defs) read_only = read_only || (d.name == m.name && d.read_only);
    std::string src = it->second;
    if (!m.sub_path.empty()) {
      src += "/" + m.sub_path;
      std::error_code ec;
      if (!fs::exists(src)) fs::create_directories(src, ec);
      // A subPath into an atomically written volume is a symlink into ..data: bind the file it
      // resolves to now (it does not follow later updates, as upstream), if it stays inside.
      auto real = fs::canonical(src, ec);
      auto base = fs::canonical(it->second, ec);
      if (!ec && real.string().starts_with(base.string() + "/")) src = real.string();
    }
    out.push_back({src, m.mount_path, read_only});
  }
  return out;
}

}  // namespace podwarp::noded::pods
