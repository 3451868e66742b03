#include "validation/podspec.h"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "validation/json_fields.h"
#include "validation/metadata.h"
#include "validation/names.h"
#include "validation/quantity.h"

namespace podwarp::validation {

namespace {

constexpr std::string_view kFileModeError =
    "must be a number between 0 and 0777 (octal), both inclusive";
constexpr std::int64_t kMaxInt32 = 2147483647;
constexpr std::int64_t kMaxUserID = 4294967295;

using Volumes = std::map<std::string, const json::object*, std::less<>>;
using Names = std::set<std::string, std::less<>>;

// ---------------------------------------------------------------------------------------------
// Paths inside volumes.

}  // namespace

void no_backsteps(Errors& errs, std::string_view target, const Path& p) {
  std::size_t start = 0;
  while (start <= target.size()) {
    std::size_t slash = target.find('/', start);
    std::string_view part =
        target.substr(start, slash == std::string_view::npos ? target.npos : slash - start);
    if (part == "..") {
      errs.push_back(invalid_str(p, target, "must not contain '..'"));
      return;
    }
    if (slash == std::string_view::npos) return;
    start = slash + 1;
  }
}

namespace {

void local_descending_path(Errors& errs, std::string_view target, const Path& p) {
  if (target.starts_with('/')) errs.push_back(invalid_str(p, target, "must be a relative path"));
  no_backsteps(errs, target, p);
}

void local_non_reserved_path(Errors& errs, std::string_view target, const Path& p) {
  local_descending_path(errs, target, p);
  if (target.starts_with("..") && !target.starts_with("../")) {
    errs.push_back(invalid_str(p, target, "must not start with '..'"));
  }
}

void file_mode(Errors& errs, const json::object* o, std::string_view k, const Path& p) {
  if (auto m = integer(o, k); m && (*m > 0777 || *m < 0)) {
    errs.push_back(invalid_int(p.child(k), *m, kFileModeError));
  }
}

void key_to_paths(Errors& errs, const json::array* items, const Path& p) {
  for (std::size_t i = 0; items && i < items->size(); ++i) {
    const json::object* kp = (*items)[i].if_object();
    Path ip = p.index(i);
    if (str(kp, "key").empty()) errs.push_back(required(ip.child("key")));
    if (str(kp, "path").empty()) errs.push_back(required(ip.child("path")));
    local_non_reserved_path(errs, str(kp, "path"), ip.child("path"));
    file_mode(errs, kp, "mode", ip);
  }
}

std::vector<std::string> sorted(std::initializer_list<std::string_view> l) {
  std::vector<std::string> v(l.begin(), l.end());
  std::sort(v.begin(), v.end());
  return v;
}

// ---------------------------------------------------------------------------------------------
// Downward API.

const std::set<std::string_view> kEnvFieldPaths = {"metadata.name",
                                                   "metadata.namespace",
                                                   "metadata.uid",
                                                   "spec.nodeName",
                                                   "spec.serviceAccountName",
                                                   "status.hostIP",
                                                   "status.hostIPs",
                                                   "status.podIP",
                                                   "status.podIPs"};
const std::set<std::string_view> kVolumeFieldPaths = {"metadata.annotations", "metadata.labels",
                                                      "metadata.name", "metadata.namespace",
                                                      "metadata.uid"};
const std::set<std::string_view> kResourceFieldPaths = {
    "limits.cpu",   "limits.ephemeral-storage",   "limits.memory",
    "requests.cpu", "requests.ephemeral-storage", "requests.memory"};

// fieldpath.SplitMaybeSubscriptedPath.
bool split_subscript(std::string_view fp, std::string_view& path, std::string_view& sub) {
  if (!fp.ends_with("']")) return false;
  std::string_view s = fp.substr(0, fp.size() - 2);
  std::size_t at = s.find("['");
  if (at == std::string_view::npos || at == 0) return false;
  path = s.substr(0, at);
  sub = s.substr(at + 2);
  return true;
}

void object_field_selector(Errors& errs, const json::object* fs,
                           const std::set<std::string_view>& allowed, const Path& p) {
  std::string_view api_version = str(fs, "apiVersion");
  std::string_view fp = str(fs, "fieldPath");
  if (api_version.empty()) {
    errs.push_back(required(p.child("apiVersion")));
    return;
  }
  if (fp.empty()) {
    errs.push_back(required(p.child("fieldPath")));
    return;
  }
  // ConvertDownwardAPIFieldLabel.
  std::string internal(fp);
  std::string err;
  std::string_view path, sub;
  bool subscripted = split_subscript(fp, path, sub);
  static const std::set<std::string_view> kConvertible = {
      "metadata.annotations", "metadata.labels", "metadata.name",      "metadata.namespace",
      "metadata.uid",         "spec.nodeName",   "spec.restartPolicy", "spec.serviceAccountName",
      "spec.schedulerName",   "status.phase",    "status.hostIP",      "status.hostIPs",
      "status.podIP",         "status.podIPs"};
  if (api_version != "v1") {
    err = "unsupported pod version: " + std::string(api_version);
  } else if (subscripted) {
    if (path != "metadata.annotations" && path != "metadata.labels") {
      err = "field label does not support subscript: " + std::string(fp);
    }
  } else if (fp == "spec.host") {
    internal = "spec.nodeName";
  } else if (!kConvertible.contains(fp)) {
    err = "field label not supported: " + std::string(fp);
  }
  if (!err.empty()) {
    errs.push_back(invalid_str(p.child("fieldPath"), fp, "error converting fieldPath: " + err));
    return;
  }
  if (subscripted) {
    if (path == "metadata.annotations") {
      std::string lower(sub);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      add(errs, qualified_name(p, lower));
    } else {
      add(errs, qualified_name(p, sub));
    }
    return;
  }
  if (!allowed.contains(internal)) {
    std::vector<std::string> valid(allowed.begin(), allowed.end());
    errs.push_back(not_supported(p.child("fieldPath"), q(internal), valid));
  }
}

void resource_field_selector(Errors& errs, const json::object* fs, const Path& p, bool volume) {
  std::string_view resource = str(fs, "resource");
  if (volume && str(fs, "containerName").empty()) {
    errs.push_back(required(p.child("containerName")));
  } else if (resource.empty()) {
    errs.push_back(required(p.child("resource")));
  } else if (!kResourceFieldPaths.contains(resource) &&
             !resource.starts_with("requests.hugepages-") &&
             !resource.starts_with("limits.hugepages-")) {
    std::vector<std::string> valid(kResourceFieldPaths.begin(), kResourceFieldPaths.end());
    errs.push_back(not_supported(p.child("resource"), q(resource), valid));
  }
  if (const json::value* d = field(fs, "divisor")) {
    auto div = quantity_from_json(*d);
    if (div && !div->is_zero()) {
      std::string s = div->to_string();
      if ((resource == "limits.cpu" || resource == "requests.cpu") && s != "1m" && s != "1") {
        errs.push_back(invalid_str(p.child("divisor"), resource,
                                   "only divisor's values 1m and 1 are supported with the cpu "
                                   "resource"));
      }
      static const std::set<std::string_view> kMem = {"1",   "1k",  "1M",  "1G",  "1T",  "1P", "1E",
                                                      "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"};
      if ((resource == "limits.memory" || resource == "requests.memory") && !kMem.contains(s)) {
        errs.push_back(invalid_str(p.child("divisor"), resource,
                                   "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, "
                                   "1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource"));
      }
    }
  }
}

void downward_api_file(Errors& errs, const json::object* file, const Path& p) {
  std::string_view path = str(file, "path");
  if (path.empty()) errs.push_back(required(p.child("path")));
  local_non_reserved_path(errs, path, p.child("path"));
  const json::object* field_ref = obj(file, "fieldRef");
  const json::object* res_ref = obj(file, "resourceFieldRef");
  if (field_ref) {
    object_field_selector(errs, field_ref, kVolumeFieldPaths, p.child("fieldRef"));
    if (res_ref) {
      errs.push_back(invalid_str(p, "resource",
                                 "fieldRef and resourceFieldRef can not be specified "
                                 "simultaneously"));
    }
  } else if (res_ref) {
    resource_field_selector(errs, res_ref, p.child("resourceFieldRef"), true);
  } else {
    errs.push_back(required(p, "one of fieldRef and resourceFieldRef is required"));
  }
  file_mode(errs, file, "mode", p);
}

// ---------------------------------------------------------------------------------------------
// Volumes.

constexpr std::array<std::string_view, 30> kVolumeSources = {"emptyDir",
                                                             "hostPath",
                                                             "gitRepo",
                                                             "gcePersistentDisk",
                                                             "awsElasticBlockStore",
                                                             "secret",
                                                             "nfs",
                                                             "iscsi",
                                                             "glusterfs",
                                                             "flocker",
                                                             "persistentVolumeClaim",
                                                             "rbd",
                                                             "cinder",
                                                             "cephfs",
                                                             "quobyte",
                                                             "downwardAPI",
                                                             "fc",
                                                             "flexVolume",
                                                             "configMap",
                                                             "azureFile",
                                                             "vsphereVolume",
                                                             "photonPersistentDisk",
                                                             "portworxVolume",
                                                             "azureDisk",
                                                             "storageos",
                                                             "projected",
                                                             "scaleIO",
                                                             "csi",
                                                             "ephemeral",
                                                             "image"};

// Upstream reports a second source under these (sic) names.
std::string_view forbidden_name(std::string_view source) {
  if (source == "downwardAPI") return "downwarAPI";
  if (source == "cephfs") return "cephFS";
  return source;
}

void required_fields(Errors& errs, const json::object* src, const Path& p,
                     std::initializer_list<std::string_view> names) {
  for (std::string_view n : names) {
    const json::value* v = field(src, n);
    bool empty = v == nullptr || (v->is_string() && v->get_string().empty()) ||
                 (v->is_array() && v->get_array().empty());
    if (empty) errs.push_back(required(p.child(n)));
  }
}

void pull_policy(Errors& errs, const json::object* o, std::string_view key, const Path& p) {
  std::string_view v = str(o, key);
  if (v == "Always" || v == "IfNotPresent" || v == "Never") return;
  if (v.empty()) {
    errs.push_back(required(p));
  } else {
    errs.push_back(not_supported(p, q(v), {"Always", "IfNotPresent", "Never"}));
  }
}

void projected_sources(Errors& errs, const json::object* proj, const Path& p) {
  std::set<std::string, std::less<>> paths;
  auto note_path = [&](std::string_view path, std::string_view shown) {
    if (path.empty()) return;
    if (!paths.insert(std::string(path)).second) {
      errs.push_back(invalid_str(p, shown, "conflicting duplicate paths"));
    }
  };
  const json::array* sources = arr(proj, "sources");
  for (std::size_t i = 0; sources && i < sources->size(); ++i) {
    const json::object* s = (*sources)[i].if_object();
    Path sp = p.child("sources").index(i);
    int n = 0;
    for (std::string_view kind : {"secret", "configMap"}) {
      const json::object* src = obj(s, kind);
      if (src == nullptr) continue;
      ++n;
      Path kp = sp.child(kind);
      if (str(src, "name").empty()) errs.push_back(required(kp.child("name")));
      const json::array* items = arr(src, "items");
      for (std::size_t j = 0; items && j < items->size(); ++j) {
        const json::object* it = (*items)[j].if_object();
        Path ip = kp.child("items").index(j);
        if (str(it, "key").empty()) errs.push_back(required(ip.child("key")));
        if (str(it, "path").empty()) errs.push_back(required(ip.child("path")));
        local_non_reserved_path(errs, str(it, "path"), ip.child("path"));
        file_mode(errs, it, "mode", ip);
        note_path(str(it, "path"), str(src, "name"));
      }
    }
    if (const json::object* d = obj(s, "downwardAPI")) {
      ++n;
      const json::array* items = arr(d, "items");
      for (std::size_t j = 0; items && j < items->size(); ++j) {
        const json::object* file = (*items)[j].if_object();
        downward_api_file(errs, file, sp.child("downwardAPI"));
        note_path(str(file, "path"), str(file, "path"));
      }
    }
    if (const json::object* t = obj(s, "serviceAccountToken")) {
      ++n;
      Path tp = sp.child("serviceAccountToken");
      auto exp = integer(t, "expirationSeconds").value_or(0);
      if (exp < 600) {
        errs.push_back(invalid_int(tp.child("expirationSeconds"), exp,
                                   "may not specify a duration less than 10 minutes"));
      }
      if (exp > (std::int64_t{1} << 32)) {
        errs.push_back(invalid_int(tp.child("expirationSeconds"), exp,
                                   "may not specify a duration larger than 2^32 seconds"));
      }
      if (str(t, "path").empty()) {
        errs.push_back(required(p.child("path")));
      } else {
        local_non_reserved_path(errs, str(t, "path"), p.child("path"));
      }
    }
    if (const json::object* b = obj(s, "clusterTrustBundle")) {
      ++n;
      Path bp = sp.child("clusterTrustBundle");
      if (str(b, "path").empty()) errs.push_back(required(bp.child("path")));
      local_non_reserved_path(errs, str(b, "path"), bp.child("path"));
      note_path(str(b, "path"), str(b, "path"));
    }
    if (n > 1) errs.push_back(forbidden(sp, "may not specify more than 1 volume type per source"));
  }
}

Errors volume_source(const json::object* vol, const Path& p, std::string_view vol_name,
                     const PodSpecOptions& opts) {
  Errors errs;
  int count = 0;
  for (std::string_view source : kVolumeSources) {
    const json::object* src = obj(vol, source);
    if (src == nullptr) continue;
    if (count > 0) {
      errs.push_back(
          forbidden(p.child(forbidden_name(source)), "may not specify more than 1 volume type"));
      continue;
    }
    ++count;
    Path sp = p.child(source);
    if (source == "emptyDir") {
      if (const json::value* limit = field(src, "sizeLimit")) {
        auto qty = quantity_from_json(*limit);
        if (!qty || qty->sign() < 0) {
          errs.push_back(forbidden(sp.child("sizeLimit"),
                                   "SizeLimit field must be a valid resource quantity"));
        }
      }
    } else if (source == "hostPath") {
      std::string_view path = str(src, "path");
      if (path.empty()) {
        errs.push_back(required(sp.child("path")));
        continue;
      }
      no_backsteps(errs, path, sp.child("path"));
      if (const json::value* t = field(src, "type")) {
        static const std::set<std::string_view> kTypes = {
            "",       "DirectoryOrCreate", "Directory",  "FileOrCreate", "File",
            "Socket", "CharDevice",        "BlockDevice"};
        if (!kTypes.contains(str(t))) {
          errs.push_back(not_supported(sp.child("type"), q(str(t)),
                                       sorted({"", "DirectoryOrCreate", "Directory", "FileOrCreate",
                                               "File", "Socket", "CharDevice", "BlockDevice"})));
        }
      }
    } else if (source == "gitRepo") {
      required_fields(errs, src, sp, {"repository"});
      local_descending_path(errs, str(src, "directory"), sp.child("directory"));
    } else if (source == "gcePersistentDisk" || source == "awsElasticBlockStore") {
      Path vp = source == "gcePersistentDisk" ? p.child("persistentDisk") : sp;
      required_fields(errs, src, vp, {source == "gcePersistentDisk" ? "pdName" : "volumeID"});
      if (auto part = integer(src, "partition"); part && (*part < 0 || *part > 255)) {
        errs.push_back(invalid_int(vp.child("partition"), *part, inclusive_range_error(1, 255)));
      }
    } else if (source == "secret" || source == "configMap") {
      required_fields(errs, src, sp, {source == "secret" ? "secretName" : "name"});
      file_mode(errs, src, "defaultMode", sp);
      key_to_paths(errs, arr(src, "items"), sp.child("items"));
    } else if (source == "nfs") {
      required_fields(errs, src, sp, {"server", "path"});
      if (!str(src, "path").starts_with('/')) {
        errs.push_back(invalid_str(sp.child("path"), str(src, "path"), "must be an absolute path"));
      }
    } else if (source == "iscsi") {
      required_fields(errs, src, sp, {"targetPortal", "iqn"});
      if (auto lun = integer(src, "lun"); lun && (*lun < 0 || *lun > 255)) {
        errs.push_back(invalid_int(sp.child("lun"), *lun, inclusive_range_error(0, 255)));
      }
    } else if (source == "glusterfs") {
      required_fields(errs, src, sp, {"endpoints", "path"});
    } else if (source == "persistentVolumeClaim") {
      required_fields(errs, src, sp, {"claimName"});
    } else if (source == "rbd") {
      required_fields(errs, src, sp, {"monitors", "image"});
    } else if (source == "cinder" || source == "portworxVolume") {
      required_fields(errs, src, sp, {"volumeID"});
    } else if (source == "cephfs") {
      required_fields(errs, src, sp, {"monitors"});
    } else if (source == "downwardAPI") {
      file_mode(errs, src, "defaultMode", sp);
      const json::array* items = arr(src, "items");
      for (std::size_t i = 0; items && i < items->size(); ++i) {
        downward_api_file(errs, (*items)[i].if_object(), sp);
      }
    } else if (source == "fc") {
      if (size_of(arr(src, "targetWWNs")) == 0 && size_of(arr(src, "wwids")) == 0) {
        errs.push_back(required(sp.child("targetWWNs"),
                                "must specify either targetWWNs or wwids, but not both"));
      }
    } else if (source == "flexVolume") {
      required_fields(errs, src, sp, {"driver"});
    } else if (source == "azureFile") {
      required_fields(errs, src, sp, {"secretName", "shareName"});
    } else if (source == "vsphereVolume") {
      required_fields(errs, src, sp, {"volumePath"});
    } else if (source == "photonPersistentDisk") {
      required_fields(errs, src, sp, {"pdID"});
    } else if (source == "azureDisk") {
      required_fields(errs, src, sp, {"diskName", "diskURI"});
    } else if (source == "storageos") {
      required_fields(errs, src, sp, {"volumeName"});
    } else if (source == "scaleIO") {
      required_fields(errs, src, sp, {"gateway", "system", "volumeName"});
    } else if (source == "projected") {
      file_mode(errs, src, "defaultMode", sp);
      projected_sources(errs, src, sp);
    } else if (source == "csi") {
      std::string_view driver = str(src, "driver");
      Path dp = sp.child("driver");
      if (driver.empty()) errs.push_back(required(dp));
      if (driver.size() > 63) errs.push_back(too_long(dp, 63));
      std::string lower(driver);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      for (auto& m : is_dns1123_subdomain(lower)) errs.push_back(invalid_str(dp, driver, m));
    } else if (source == "ephemeral") {
      const json::object* tmpl = obj(src, "volumeClaimTemplate");
      if (tmpl == nullptr) {
        errs.push_back(required(sp.child("volumeClaimTemplate")));
      } else {
        Path tp = sp.child("volumeClaimTemplate");
        const json::object* meta = obj(tmpl, "metadata");
        add(errs,
            validate_annotations(field(meta, "annotations"), tp.child("metadata", "annotations")));
        add(errs, validate_labels(field(meta, "labels"), tp.child("metadata", "labels")));
        if (meta) {
          for (const auto& e : *meta) {
            if (e.key() != "labels" && e.key() != "annotations" && !e.value().is_null() &&
                !(e.key() == "creationTimestamp")) {
              errs.push_back(forbidden(tp.child("metadata", e.key()), "cannot be set"));
            }
          }
        }
        add(errs, validate_pvc_spec(obj(tmpl, "spec"), tp.child("spec")));
        std::string_view pod_name = str(opts.pod_meta, "name");
        if (!pod_name.empty() && !vol_name.empty()) {
          std::string pvc = std::string(pod_name) + "-" + std::string(vol_name);
          for (auto& m : is_dns1123_subdomain(pvc)) {
            errs.push_back(invalid_str(p.child("name"), vol_name, "PVC name " + q(pvc) + ": " + m));
          }
        }
      }
    } else if (source == "image") {
      if (opts.resource_is_pod && str(src, "reference").empty()) {
        errs.push_back(required(sp.child("reference")));
      }
      pull_policy(errs, src, "pullPolicy", sp.child("pullPolicy"));
    }
  }
  if (count == 0) errs.push_back(required(p, "must specify a volume type"));
  return errs;
}

}  // namespace

Errors validate_volume_source(const json::object* sources, const Path& p) {
  return volume_source(sources, p, "", PodSpecOptions{});
}

namespace {

Errors validate_volumes(const json::array* volumes, const Path& p, const PodSpecOptions& opts,
                        Volumes& out) {
  Errors errs;
  Names created_claims;
  std::string_view pod_name = str(opts.pod_meta, "name");
  if (!pod_name.empty() && volumes) {
    for (const auto& v : *volumes) {
      if (obj(v.if_object(), "ephemeral")) {
        created_claims.insert(std::string(pod_name) + "-" +
                              std::string(str(v.if_object(), "name")));
      }
    }
  }
  for (std::size_t i = 0; volumes && i < volumes->size(); ++i) {
    const json::object* vol = (*volumes)[i].if_object();
    Path ip = p.index(i);
    std::string_view name = str(vol, "name");
    Errors el = volume_source(vol, ip, name, opts);
    if (name.empty()) {
      el.push_back(required(ip.child("name")));
    } else {
      add(el, dns1123_label(ip.child("name"), name));
    }
    if (out.contains(name)) el.push_back(duplicate(ip.child("name"), q(name)));
    if (el.empty()) {
      out.emplace(std::string(name), vol);
    } else {
      add(errs, std::move(el));
    }
    if (const json::object* pvc = obj(vol, "persistentVolumeClaim")) {
      if (created_claims.contains(str(pvc, "claimName"))) {
        errs.push_back(invalid_str(ip.child("persistentVolumeClaim", "claimName"),
                                   str(pvc, "claimName"),
                                   "must not reference a PVC that gets created for an ephemeral "
                                   "volume"));
      }
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Resources.

const std::set<std::string_view> kStandardResources = {"cpu",
                                                       "memory",
                                                       "ephemeral-storage",
                                                       "requests.cpu",
                                                       "requests.memory",
                                                       "requests.ephemeral-storage",
                                                       "limits.cpu",
                                                       "limits.memory",
                                                       "limits.ephemeral-storage",
                                                       "pods",
                                                       "services",
                                                       "replicationcontrollers",
                                                       "resourcequotas",
                                                       "secrets",
                                                       "configmaps",
                                                       "persistentvolumeclaims",
                                                       "storage",
                                                       "requests.storage",
                                                       "services.nodeports",
                                                       "services.loadbalancers"};
const std::set<std::string_view> kIntegerResources = {"pods",
                                                      "services",
                                                      "replicationcontrollers",
                                                      "resourcequotas",
                                                      "secrets",
                                                      "configmaps",
                                                      "persistentvolumeclaims",
                                                      "services.nodeports",
                                                      "services.loadbalancers"};

bool has_outer_space(std::string_view s) {
  auto ws = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  };
  return !s.empty() && (ws(s.front()) || ws(s.back()));
}

bool is_native(std::string_view name) {
  return name.find('/') == std::string_view::npos ||
         name.find("kubernetes.io/") != std::string_view::npos;
}
bool is_hugepages(std::string_view name) { return name.starts_with("hugepages-"); }
bool is_extended(std::string_view name) {
  if (is_native(name) || name.starts_with("requests.")) return false;
  return is_qualified_name("requests." + std::string(name)).empty();
}
bool overcommit_allowed(std::string_view name) { return is_native(name) && !is_hugepages(name); }
bool is_integer_resource(std::string_view name) {
  return kIntegerResources.contains(name) || is_extended(name);
}

Errors container_resource_name(std::string_view name, const Path& p) {
  Errors errs;
  for (auto& m : is_qualified_name(name)) errs.push_back(invalid_str(p, name, m));
  bool unprefixed = name.find('/') == std::string_view::npos;
  if (errs.empty() && unprefixed && !kStandardResources.contains(name) && !is_hugepages(name) &&
      !name.starts_with("requests.hugepages-")) {
    errs.push_back(invalid_str(p, name, "must be a standard resource type or fully qualified"));
  }
  if (unprefixed) {
    if (name != "cpu" && name != "memory" && name != "ephemeral-storage" && !is_hugepages(name)) {
      errs.push_back(invalid_str(p, name, "must be a standard resource for containers"));
    }
  } else if (!is_native(name) && !is_extended(name)) {
    errs.push_back(invalid_str(p, name, "doesn't follow extended resource name standard"));
  }
  return errs;
}

std::optional<Quantity> quantity_at(Errors& errs, const json::value& v, const Path& p) {
  auto qty = quantity_from_json(v);
  if (!qty) {
    errs.push_back(invalid(p, go_value(v), qty.error()));
    return std::nullopt;
  }
  return *qty;
}

void quantity_value(Errors& errs, std::string_view name, const Quantity& qty, const Path& p) {
  if (qty.sign() < 0) errs.push_back(invalid_str(p, qty.to_string(), kIsNegative));
  if (is_integer_resource(name) && !is_integer(qty)) {
    errs.push_back(invalid_str(p, qty.to_string(), "must be an integer"));
  }
}

void hugepage_value(Errors& errs, std::string_view name, const Quantity& qty, const Path& p) {
  auto page = Quantity::parse(name.substr(std::string_view("hugepages-").size()));
  if (!page || page->sign() <= 0) return;
  if (!is_multiple_of(qty, *page) || qty.sign() < 0) {
    errs.push_back(
        invalid_str(p, qty.to_string(),
                    qty.to_string() + " is not positive integer multiple of " + std::string(name)));
  }
}

// ---------------------------------------------------------------------------------------------
// Containers.

void validate_port_num_or_name(Errors& errs, const json::value* port, const Path& p) {
  if (port == nullptr || port->is_number()) {
    std::int64_t n = integer(port).value_or(0);
    for (auto& m : is_valid_port_num(n)) errs.push_back(invalid_int(p, n, m));
  } else if (port->is_string()) {
    std::string_view s = str(port);
    for (auto& m : is_valid_port_name(s)) errs.push_back(invalid_str(p, s, m));
  } else {
    errs.push_back(invalid(p, go_value(*port), "unknown type"));
  }
}

void http_get(Errors& errs, const json::object* h, const Path& p) {
  if (str(h, "path").empty()) errs.push_back(required(p.child("path")));
  validate_port_num_or_name(errs, field(h, "port"), p.child("port"));
  std::string_view scheme = str(h, "scheme");
  if (scheme != "HTTP" && scheme != "HTTPS") {
    errs.push_back(not_supported(p.child("scheme"), q(scheme), {"HTTP", "HTTPS"}));
  }
  if (const json::array* headers = arr(h, "httpHeaders")) {
    for (const auto& hv : *headers) {
      std::string_view name = str(hv.if_object(), "name");
      for (auto& m : is_http_header_name(name)) {
        errs.push_back(invalid_str(p.child("httpHeaders"), name, m));
      }
    }
  }
}

void handler(Errors& errs, const json::object* h, std::optional<std::int64_t> grace, const Path& p,
             bool probe) {
  int n = 0;
  for (std::string_view kind : {"exec", "httpGet", "tcpSocket", "grpc", "sleep"}) {
    if ((probe && kind == "sleep") || (!probe && kind == "grpc")) continue;
    const json::object* a = obj(h, kind);
    if (a == nullptr) continue;
    Path ap = p.child(kind);
    if (n > 0) {
      errs.push_back(forbidden(ap, "may not specify more than 1 handler type"));
      continue;
    }
    ++n;
    if (kind == "exec") {
      if (size_of(arr(a, "command")) == 0) errs.push_back(required(ap.child("command")));
    } else if (kind == "httpGet") {
      http_get(errs, a, ap);
    } else if (kind == "tcpSocket") {
      validate_port_num_or_name(errs, field(a, "port"), ap.child("port"));
    } else if (kind == "grpc") {
      std::int64_t port = integer(a, "port").value_or(0);
      for (auto& m : is_valid_port_num(port))
        errs.push_back(invalid_int(ap.child("port"), port, m));
    } else if (kind == "sleep") {
      std::int64_t s = integer(a, "seconds").value_or(0);
      if (grace && (s <= 0 || s > *grace)) {
        errs.push_back(invalid_int(
            ap, s,
            "must be greater than 0 and less than terminationGracePeriodSeconds (" +
                std::to_string(*grace) +
                "). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."));
      }
    }
  }
  if (n == 0) errs.push_back(required(p, "must specify a handler type"));
}

enum class ProbeKind { kLiveness, kReadiness, kStartup };

void probe(Errors& errs, const json::object* pr, std::optional<std::int64_t> grace, const Path& p,
           ProbeKind kind) {
  if (pr == nullptr) return;
  handler(errs, pr, grace, p, true);
  for (std::string_view f : {"initialDelaySeconds", "timeoutSeconds", "periodSeconds",
                             "successThreshold", "failureThreshold"}) {
    nonneg(errs, pr, f, p);
  }
  auto tgps = integer(pr, "terminationGracePeriodSeconds");
  if (tgps && *tgps <= 0) {
    errs.push_back(
        invalid_int(p.child("terminationGracePeriodSeconds"), *tgps, "must be greater than 0"));
  }
  if (kind == ProbeKind::kReadiness && tgps) {
    errs.push_back(invalid_int(p.child("terminationGracePeriodSeconds"), *tgps,
                               "must not be set for readinessProbes"));
  }
  if (kind != ProbeKind::kReadiness) {
    std::int64_t st = integer(pr, "successThreshold").value_or(0);
    if (st != 1) errs.push_back(invalid_int(p.child("successThreshold"), st, "must be 1"));
  }
}

void lifecycle(Errors& errs, const json::object* lc, std::optional<std::int64_t> grace,
               const Path& p) {
  if (const json::object* h = obj(lc, "postStart"))
    handler(errs, h, grace, p.child("postStart"), false);
  if (const json::object* h = obj(lc, "preStop"))
    handler(errs, h, grace, p.child("preStop"), false);
}

void container_ports(Errors& errs, const json::array* ports, const Path& p) {
  Names names;
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    const json::object* port = (*ports)[i].if_object();
    Path ip = p.index(i);
    std::string_view name = str(port, "name");
    if (!name.empty()) {
      auto msgs = is_valid_port_name(name);
      if (!msgs.empty()) {
        for (auto& m : msgs) errs.push_back(invalid_str(ip.child("name"), name, m));
      } else if (names.contains(name)) {
        errs.push_back(duplicate(ip.child("name"), q(name)));
      } else {
        names.emplace(name);
      }
    }
    std::int64_t cp = integer(port, "containerPort").value_or(0);
    if (cp == 0) {
      errs.push_back(required(ip.child("containerPort")));
    } else {
      for (auto& m : is_valid_port_num(cp))
        errs.push_back(invalid_int(ip.child("containerPort"), cp, m));
    }
    std::int64_t hp = integer(port, "hostPort").value_or(0);
    if (hp != 0) {
      for (auto& m : is_valid_port_num(hp))
        errs.push_back(invalid_int(ip.child("hostPort"), hp, m));
    }
    std::string_view proto = str(port, "protocol");
    if (proto.empty()) {
      errs.push_back(required(ip.child("protocol")));
    } else if (proto != "TCP" && proto != "UDP" && proto != "SCTP") {
      errs.push_back(not_supported(ip.child("protocol"), q(proto), {"SCTP", "TCP", "UDP"}));
    }
  }
}

void key_selector(Errors& errs, const json::object* s, const Path& p) {
  std::string_view name = str(s, "name");
  for (auto& m : name_is_dns_subdomain(name, false))
    errs.push_back(invalid_str(p.child("name"), name, m));
  std::string_view key = str(s, "key");
  if (key.empty()) {
    errs.push_back(required(p.child("key")));
  } else {
    for (auto& m : is_config_map_key(key)) errs.push_back(invalid_str(p.child("key"), key, m));
  }
}

void env(Errors& errs, const json::array* vars, const Path& p) {
  for (std::size_t i = 0; vars && i < vars->size(); ++i) {
    const json::object* ev = (*vars)[i].if_object();
    Path ip = p.index(i);
    std::string_view name = str(ev, "name");
    if (name.empty()) {
      errs.push_back(required(ip.child("name")));
    } else {
      for (auto& m : is_env_var_name(name)) errs.push_back(invalid_str(ip.child("name"), name, m));
    }
    const json::object* from = obj(ev, "valueFrom");
    if (from == nullptr) continue;
    Path fp = ip.child("valueFrom");
    int n = 0;
    if (const json::object* f = obj(from, "fieldRef")) {
      ++n;
      object_field_selector(errs, f, kEnvFieldPaths, fp.child("fieldRef"));
    }
    if (const json::object* f = obj(from, "resourceFieldRef")) {
      ++n;
      resource_field_selector(errs, f, fp.child("resourceFieldRef"), false);
    }
    if (const json::object* f = obj(from, "configMapKeyRef")) {
      ++n;
      key_selector(errs, f, fp.child("configMapKeyRef"));
    }
    if (const json::object* f = obj(from, "secretKeyRef")) {
      ++n;
      key_selector(errs, f, fp.child("secretKeyRef"));
    }
    if (n == 0) {
      errs.push_back(invalid_str(fp, "",
                                 "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                 "`configMapKeyRef` or `secretKeyRef`"));
    } else if (!str(ev, "value").empty()) {
      errs.push_back(invalid_str(fp, "", "may not be specified when `value` is not empty"));
    } else if (n > 1) {
      errs.push_back(invalid_str(fp, "", "may not have more than one field specified at a time"));
    }
  }
}

void env_from(Errors& errs, const json::array* sources, const Path& p) {
  for (std::size_t i = 0; sources && i < sources->size(); ++i) {
    const json::object* s = (*sources)[i].if_object();
    Path ip = p.index(i);
    std::string_view prefix = str(s, "prefix");
    if (!prefix.empty()) {
      for (auto& m : is_env_var_name(prefix))
        errs.push_back(invalid_str(ip.child("prefix"), prefix, m));
    }
    int n = 0;
    for (std::string_view kind : {"configMapRef", "secretRef"}) {
      const json::object* ref = obj(s, kind);
      if (ref == nullptr) continue;
      ++n;
      std::string_view name = str(ref, "name");
      if (name.empty()) {
        errs.push_back(required(ip.child(kind, "name")));
      } else {
        for (auto& m : name_is_dns_subdomain(name, true)) {
          errs.push_back(invalid_str(ip.child(kind, "name"), name, m));
        }
      }
    }
    if (n == 0) {
      errs.push_back(invalid_str(p, "", "must specify one of: `configMapRef` or `secretRef`"));
    } else if (n > 1) {
      errs.push_back(invalid_str(p, "", "may not have more than one field specified at a time"));
    }
  }
}

void volume_mounts(Errors& errs, const json::object* c, const Volumes& vols, const Path& p) {
  const json::array* mounts = arr(c, "volumeMounts");
  std::map<std::string, std::string, std::less<>> devices;
  if (const json::array* d = arr(c, "volumeDevices")) {
    for (const auto& v : *d) {
      devices[std::string(str(v.if_object(), "name"))] = str(v.if_object(), "devicePath");
    }
  }
  bool privileged = boolean(obj(c, "securityContext"), "privileged");
  Names mountpoints;
  for (std::size_t i = 0; mounts && i < mounts->size(); ++i) {
    const json::object* m = (*mounts)[i].if_object();
    Path ip = p.index(i);
    std::string_view name = str(m, "name");
    std::string_view mount_path = str(m, "mountPath");
    if (name.empty()) errs.push_back(required(ip.child("name")));
    if (!vols.contains(name)) errs.push_back(not_found(ip.child("name"), q(name)));
    if (mount_path.empty()) errs.push_back(required(ip.child("mountPath")));
    if (mountpoints.contains(mount_path)) {
      errs.push_back(invalid_str(ip.child("mountPath"), mount_path, "must be unique"));
    }
    mountpoints.emplace(mount_path);
    if (devices.contains(name)) {
      errs.push_back(
          invalid_str(ip.child("name"), name, "must not already exist in volumeDevices"));
    }
    for (const auto& [dn, dp] : devices) {
      if (dp == mount_path) {
        errs.push_back(invalid_str(ip.child("mountPath"), mount_path,
                                   "must not already exist as a path in volumeDevices"));
        break;
      }
    }
    std::string_view sub_path = str(m, "subPath");
    std::string_view sub_expr = str(m, "subPathExpr");
    if (auto it = vols.find(name); it != vols.end() && obj(it->second, "image")) {
      if (!sub_path.empty()) {
        errs.push_back(
            invalid_str(ip.child("subPath"), sub_path, "not allowed in image volume sources"));
      }
      if (!sub_expr.empty()) {
        errs.push_back(
            invalid_str(ip.child("subPathExpr"), sub_expr, "not allowed in image volume sources"));
      }
    }
    if (!sub_path.empty()) local_descending_path(errs, sub_path, p.child("subPath"));
    if (!sub_expr.empty()) {
      if (!sub_path.empty()) {
        errs.push_back(invalid_str(ip.child("subPathExpr"), sub_expr,
                                   "subPathExpr and subPath are mutually exclusive"));
      }
      local_descending_path(errs, sub_expr, p.child("subPathExpr"));
    }
    if (const json::value* mp = field(m, "mountPropagation")) {
      std::string_view v = str(mp);
      Path pp = p.child("mountPropagation");
      if (v != "Bidirectional" && v != "HostToContainer" && v != "None") {
        errs.push_back(not_supported(pp, q(v), {"Bidirectional", "HostToContainer", "None"}));
      }
      if (v == "Bidirectional" && !privileged) {
        errs.push_back(forbidden(pp,
                                 "Bidirectional mount propagation is available only to "
                                 "privileged containers"));
      }
    }
    if (const json::value* rro = field(m, "recursiveReadOnly")) {
      std::string_view v = str(rro);
      Path rp = p.child("recursiveReadOnly");
      if (v == "Enabled" || v == "IfPossible") {
        if (!boolean(m, "readOnly")) {
          errs.push_back(forbidden(rp, "may only be specified when readOnly is true"));
        }
        std::string_view prop = str(m, "mountPropagation");
        if (!prop.empty() && prop != "None") {
          errs.push_back(forbidden(rp,
                                   "may only be specified when mountPropagation is None or "
                                   "not specified"));
        }
      } else if (v != "Disabled") {
        errs.push_back(not_supported(rp, q(v), {"Disabled", "Enabled", "IfPossible"}));
      }
    }
  }
}

void volume_devices(Errors& errs, const json::object* c, const Volumes& vols, const Path& p) {
  const json::array* devices = arr(c, "volumeDevices");
  Names paths, names;
  for (std::size_t i = 0; devices && i < devices->size(); ++i) {
    const json::object* d = (*devices)[i].if_object();
    Path ip = p.index(i);
    std::string_view name = str(d, "name");
    std::string_view path = str(d, "devicePath");
    auto it = vols.find(name);
    bool is_pvc = it != vols.end() &&
                  (obj(it->second, "persistentVolumeClaim") || obj(it->second, "ephemeral"));
    if (name.empty()) errs.push_back(required(ip.child("name")));
    if (names.contains(name)) errs.push_back(invalid_str(ip.child("name"), name, "must be unique"));
    if (it != vols.end() && !is_pvc) {
      errs.push_back(invalid_str(ip.child("name"), name,
                                 "can only use volume source type of PersistentVolumeClaim or "
                                 "Ephemeral for block mode"));
    }
    if (it == vols.end()) errs.push_back(not_found(ip.child("name"), q(name)));
    if (path.empty()) errs.push_back(required(ip.child("devicePath")));
    if (paths.contains(path))
      errs.push_back(invalid_str(ip.child("devicePath"), path, "must be unique"));
    Errors back;
    if (!path.empty()) no_backsteps(back, path, p);
    if (!back.empty()) {
      errs.push_back(invalid_str(ip.child("devicePath"), path, "can not contain backsteps ('..')"));
    } else {
      paths.emplace(path);
    }
    if (!name.empty()) names.emplace(name);
  }
}

void seccomp_profile(Errors& errs, const json::object* sp, const Path& p) {
  if (sp == nullptr) return;
  std::string_view type = str(sp, "type");
  if (type.empty()) {
    errs.push_back(required(p.child("type"), "type is required when seccompProfile is set"));
  } else if (type != "Localhost" && type != "RuntimeDefault" && type != "Unconfined") {
    errs.push_back(
        not_supported(p.child("type"), q(type), {"Localhost", "RuntimeDefault", "Unconfined"}));
  }
  const json::value* lp = field(sp, "localhostProfile");
  if (type == "Localhost") {
    if (lp == nullptr) {
      errs.push_back(
          required(p.child("localhostProfile"), "must be set when seccomp type is Localhost"));
    } else {
      local_descending_path(errs, str(lp), p.child("localhostProfile"));
    }
  } else if (lp != nullptr) {
    errs.push_back(invalid(p.child("localhostProfile"), go_value(json::value(*sp)),
                           "can only be set when seccomp type is Localhost"));
  }
}

void apparmor_profile(Errors& errs, const json::object* ap, const Path& p) {
  if (ap == nullptr) return;
  std::string_view type = str(ap, "type");
  const json::value* lp = field(ap, "localhostProfile");
  if (type == "Localhost") {
    if (lp == nullptr || str(lp).empty()) {
      errs.push_back(
          required(p.child("localhostProfile"), "must be set when AppArmor type is Localhost"));
    }
  } else if (type == "RuntimeDefault" || type == "Unconfined") {
    if (lp != nullptr) {
      errs.push_back(invalid_str(p.child("localhostProfile"), str(lp),
                                 "can only be set when AppArmor type is Localhost"));
    }
  } else if (type.empty()) {
    errs.push_back(required(p.child("type"), "type is required when appArmorProfile is set"));
  } else {
    errs.push_back(
        not_supported(p.child("type"), q(type), {"Localhost", "RuntimeDefault", "Unconfined"}));
  }
}

void id_range(Errors& errs, const json::object* o, std::string_view k, const Path& p) {
  if (auto v = integer(o, k); v && (*v < 0 || *v > kMaxUserID)) {
    errs.push_back(invalid_int(p.child(k), *v, inclusive_range_error(0, kMaxUserID)));
  }
}

void container_security_context(Errors& errs, const json::object* sc, const Path& p,
                                bool host_users) {
  if (sc == nullptr) return;
  id_range(errs, sc, "runAsUser", p);
  id_range(errs, sc, "runAsGroup", p);
  if (const json::value* pm = field(sc, "procMount")) {
    std::string_view v = str(pm);
    if (v != "Default" && v != "Unmasked") {
      errs.push_back(not_supported(p.child("procMount"), q(v), {"Default", "Unmasked"}));
    }
    if (host_users && v == "Unmasked") {
      errs.push_back(
          invalid_str(p.child("procMount"), v, "`hostUsers` must be false to use `Unmasked`"));
    }
  }
  seccomp_profile(errs, obj(sc, "seccompProfile"), p.child("seccompProfile"));
  const json::value* ape = field(sc, "allowPrivilegeEscalation");
  if (ape && ape->is_bool() && !ape->get_bool()) {
    if (boolean(sc, "privileged")) {
      errs.push_back(invalid(p, go_value(json::value(*sc)),
                             "cannot set `allowPrivilegeEscalation` to false and `privileged` to "
                             "true"));
    }
    if (const json::array* caps = arr(obj(sc, "capabilities"), "add")) {
      for (const auto& c : *caps) {
        if (str(&c) == "CAP_SYS_ADMIN") {
          errs.push_back(invalid(p, go_value(json::value(*sc)),
                                 "cannot set `allowPrivilegeEscalation` to false and "
                                 "`capabilities.Add` CAP_SYS_ADMIN"));
        }
      }
    }
  }
  apparmor_profile(errs, obj(sc, "appArmorProfile"), p.child("appArmorProfile"));
}

void resize_policy(Errors& errs, const json::array* policies, const Path& p) {
  std::set<std::string, std::less<>> seen;
  for (std::size_t i = 0; policies && i < policies->size(); ++i) {
    const json::object* pol = (*policies)[i].if_object();
    std::string_view name = str(pol, "resourceName");
    std::string_view restart = str(pol, "restartPolicy");
    if (!seen.insert(std::string(name)).second) errs.push_back(duplicate(p.index(i), q(name)));
    if (name.empty()) {
      errs.push_back(required(p));
    } else if (name != "cpu" && name != "memory") {
      errs.push_back(not_supported(p, q(name), {"cpu", "memory"}));
    }
    if (restart.empty()) {
      errs.push_back(required(p));
    } else if (restart != "NotRequired" && restart != "RestartContainer") {
      errs.push_back(not_supported(p, q(restart), {"NotRequired", "RestartContainer"}));
    }
  }
}

Errors container_common(const json::object* c, const Volumes& vols, const Path& p,
                        bool host_users) {
  Errors errs;
  std::string_view name = str(c, "name");
  if (name.empty()) {
    errs.push_back(required(p.child("name")));
  } else {
    add(errs, dns1123_label(p.child("name"), name));
  }
  if (str(c, "image").empty()) errs.push_back(required(p.child("image")));
  std::string_view tmp = str(c, "terminationMessagePolicy");
  if (tmp.empty()) {
    errs.push_back(required(p.child("terminationMessagePolicy")));
  } else if (tmp != "File" && tmp != "FallbackToLogsOnError") {
    errs.push_back(not_supported(p.child("terminationMessagePolicy"), q(tmp),
                                 {"File", "FallbackToLogsOnError"}));
  }
  container_ports(errs, arr(c, "ports"), p.child("ports"));
  env(errs, arr(c, "env"), p.child("env"));
  env_from(errs, arr(c, "envFrom"), p.child("envFrom"));
  volume_mounts(errs, c, vols, p.child("volumeMounts"));
  volume_devices(errs, c, vols, p.child("volumeDevices"));
  pull_policy(errs, c, "imagePullPolicy", p.child("imagePullPolicy"));
  add(errs, validate_container_resources(obj(c, "resources"), p.child("resources")));
  resize_policy(errs, arr(c, "resizePolicy"), p.child("resizePolicy"));
  container_security_context(errs, obj(c, "securityContext"), p.child("securityContext"),
                             host_users);
  return errs;
}

void host_port_conflicts(Errors& errs, const json::array* containers, std::size_t only,
                         const Path& p) {
  std::set<std::string> seen;
  for (std::size_t ci = 0; containers && ci < containers->size(); ++ci) {
    if (only != SIZE_MAX && ci != only) continue;
    const json::object* c = (*containers)[ci].if_object();
    const json::array* ports = arr(c, "ports");
    for (std::size_t pi = 0; ports && pi < ports->size(); ++pi) {
      const json::object* port = (*ports)[pi].if_object();
      std::int64_t hp = integer(port, "hostPort").value_or(0);
      if (hp == 0) continue;
      std::string key = std::string(str(port, "protocol")) + "/" +
                        std::string(str(port, "hostIP")) + "/" + std::to_string(hp);
      Path ip = p.index(only == SIZE_MAX ? ci : 0).child("ports").index(pi);
      if (!seen.insert(key).second) errs.push_back(duplicate(ip.child("hostPort"), q(key)));
    }
  }
}

void containers(Errors& errs, const json::array* list, const Volumes& vols,
                std::optional<std::int64_t> grace, const Path& p, bool host_users) {
  if (size_of(list) == 0) {
    errs.push_back(required(p));
    return;
  }
  Names names;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json::object* c = (*list)[i].if_object();
    Path ip = p.index(i);
    add(errs, container_common(c, vols, ip, host_users));
    std::string_view name = str(c, "name");
    if (names.contains(name)) {
      errs.push_back(duplicate(ip.child("name"), q(name)));
    } else {
      names.emplace(name);
    }
    if (const json::object* lc = obj(c, "lifecycle"))
      lifecycle(errs, lc, grace, ip.child("lifecycle"));
    probe(errs, obj(c, "livenessProbe"), grace, ip.child("livenessProbe"), ProbeKind::kLiveness);
    probe(errs, obj(c, "readinessProbe"), grace, ip.child("readinessProbe"), ProbeKind::kReadiness);
    probe(errs, obj(c, "startupProbe"), grace, ip.child("startupProbe"), ProbeKind::kStartup);
    if (field(c, "restartPolicy")) {
      errs.push_back(
          forbidden(ip.child("restartPolicy"), "may not be set for non-init containers"));
    }
  }
  host_port_conflicts(errs, list, SIZE_MAX, p);
}

void init_containers(Errors& errs, const json::array* list, const json::array* regular,
                     const Volumes& vols, std::optional<std::int64_t> grace, const Path& p,
                     bool host_users) {
  Names names;
  for (std::size_t i = 0; regular && i < regular->size(); ++i) {
    names.emplace(str((*regular)[i].if_object(), "name"));
  }
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    const json::object* c = (*list)[i].if_object();
    Path ip = p.index(i);
    add(errs, container_common(c, vols, ip, host_users));
    bool restart_always = false;
    if (const json::value* rp = field(c, "restartPolicy")) {
      if (str(rp) != "Always") {
        errs.push_back(not_supported(ip.child("restartPolicy"), q(str(rp)), {"Always"}));
      }
      restart_always = str(rp) == "Always";
    }
    std::string_view name = str(c, "name");
    if (names.contains(name)) {
      errs.push_back(duplicate(ip.child("name"), q(name)));
    } else if (!name.empty()) {
      names.emplace(name);
    }
    host_port_conflicts(errs, list, i, p);
    if (restart_always) {
      if (const json::object* lc = obj(c, "lifecycle"))
        lifecycle(errs, lc, grace, ip.child("lifecycle"));
      probe(errs, obj(c, "livenessProbe"), grace, ip.child("livenessProbe"), ProbeKind::kLiveness);
      probe(errs, obj(c, "readinessProbe"), grace, ip.child("readinessProbe"),
            ProbeKind::kReadiness);
      probe(errs, obj(c, "startupProbe"), grace, ip.child("startupProbe"), ProbeKind::kStartup);
    } else {
      for (std::string_view f : {"lifecycle", "livenessProbe", "readinessProbe", "startupProbe"}) {
        if (field(c, f)) {
          errs.push_back(forbidden(ip.child(f),
                                   "may not be set for init containers without "
                                   "restartPolicy=Always"));
        }
      }
    }
    if (size_of(arr(c, "resizePolicy")) > 0) {
      errs.push_back(invalid(ip.child("resizePolicy"), go_value(*field(c, "resizePolicy")),
                             "must not be set for init containers"));
    }
  }
}

void ephemeral_containers(Errors& errs, const json::array* list, const json::array* regular,
                          const json::array* init, const Volumes& vols, const Path& p,
                          bool host_users) {
  if (size_of(list) == 0) return;
  Names others, all;
  for (const json::array* l : {regular, init}) {
    for (std::size_t i = 0; l && i < l->size(); ++i) {
      others.emplace(str((*l)[i].if_object(), "name"));
      all.emplace(str((*l)[i].if_object(), "name"));
    }
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json::object* c = (*list)[i].if_object();
    Path ip = p.index(i);
    add(errs, container_common(c, vols, ip, host_users));
    std::string_view image = str(c, "image");
    if (has_outer_space(image)) {
      errs.push_back(
          invalid_str(ip.child("image"), image, "must not have leading or trailing whitespace"));
    }
    std::string_view name = str(c, "name");
    if (all.contains(name)) {
      errs.push_back(duplicate(ip.child("name"), q(name)));
    } else {
      all.emplace(name);
    }
    std::string_view target = str(c, "targetContainerName");
    if (!target.empty() && !others.contains(target)) {
      errs.push_back(not_found(ip.child("targetContainerName"), q(target)));
    }
    for (std::string_view f : {"ports", "resources", "lifecycle", "livenessProbe", "readinessProbe",
                               "startupProbe", "resizePolicy", "restartPolicy"}) {
      const json::value* v = field(c, f);
      bool set = v && !(v->is_object() && v->get_object().empty()) &&
                 !(v->is_array() && v->get_array().empty());
      if (set) errs.push_back(forbidden(ip.child(f), "cannot be set for an Ephemeral Container"));
    }
    const json::array* mounts = arr(c, "volumeMounts");
    for (std::size_t j = 0; mounts && j < mounts->size(); ++j) {
      for (std::string_view f : {"subPath", "subPathExpr"}) {
        if (!str((*mounts)[j].if_object(), f).empty()) {
          errs.push_back(forbidden(ip.child("volumeMounts").index(j).child(f),
                                   "cannot be set for an Ephemeral Container"));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scheduling.

void node_selector_requirement(Errors& errs, const json::object* r, const Path& p, bool values) {
  std::string_view op = str(r, "operator");
  std::size_t n = size_of(arr(r, "values"));
  if (op == "In" || op == "NotIn") {
    if (n == 0) {
      errs.push_back(
          required(p.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"));
    }
  } else if (op == "Exists" || op == "DoesNotExist") {
    if (n > 0) {
      errs.push_back(forbidden(
          p.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
    }
  } else if (op == "Gt" || op == "Lt") {
    if (n != 1) {
      errs.push_back(required(p.child("values"),
                              "must be specified single value when `operator` is 'Lt' or 'Gt'"));
    }
  } else {
    errs.push_back(invalid_str(p.child("operator"), op, "not a valid selector operator"));
  }
  add(errs, validate_label_name(str(r, "key"), p.child("key")));
  if (!values) return;
  const json::array* vals = arr(r, "values");
  for (std::size_t i = 0; vals && i < vals->size(); ++i) {
    std::string_view v = str(&(*vals)[i]);
    for (auto& m : is_label_value(v)) errs.push_back(invalid_str(p.child("values").index(i), v, m));
  }
}

void node_selector_term(Errors& errs, const json::object* term, const Path& p, bool values) {
  const json::array* exprs = arr(term, "matchExpressions");
  for (std::size_t i = 0; exprs && i < exprs->size(); ++i) {
    node_selector_requirement(errs, (*exprs)[i].if_object(), p.child("matchExpressions").index(i),
                              values);
  }
  const json::array* fields = arr(term, "matchFields");
  for (std::size_t i = 0; fields && i < fields->size(); ++i) {
    const json::object* r = (*fields)[i].if_object();
    Path fp = p.child("matchFields").index(i);
    std::string_view op = str(r, "operator");
    if (op == "In" || op == "NotIn") {
      if (size_of(arr(r, "values")) != 1) {
        errs.push_back(required(fp.child("values"),
                                "must be only one value when `operator` is "
                                "'In' or 'NotIn' for node field selector"));
      }
    } else {
      errs.push_back(invalid_str(fp.child("operator"), op, "not a valid selector operator"));
    }
    if (str(r, "key") != "metadata.name") {
      errs.push_back(invalid_str(fp.child("key"), str(r, "key"), "not a valid field selector key"));
    } else if (const json::array* vals = arr(r, "values")) {
      for (std::size_t j = 0; j < vals->size(); ++j) {
        add(errs, name_with(name_is_dns_subdomain, fp.child("values").index(j), str(&(*vals)[j])));
      }
    }
  }
}

void pod_affinity_term(Errors& errs, const json::object* term, const Path& p) {
  add(errs, validate_label_selector(field(term, "labelSelector"), p.child("labelSelector")));
  add(errs,
      validate_label_selector(field(term, "namespaceSelector"), p.child("namespaceSelector")));
  if (const json::array* nss = arr(term, "namespaces")) {
    for (const auto& ns : *nss) {
      for (auto& m : name_is_dns_label(str(&ns), false)) {
        errs.push_back(invalid_str(p.child("namespace"), str(&ns), m));
      }
    }
  }
  for (std::string_view f : {"matchLabelKeys", "mismatchLabelKeys"}) {
    const json::array* keys = arr(term, f);
    if (size_of(keys) == 0) continue;
    if (field(term, "labelSelector") == nullptr) {
      errs.push_back(forbidden(p.child(f), "must not be specified when labelSelector is not set"));
      continue;
    }
    for (std::size_t i = 0; i < keys->size(); ++i) {
      add(errs, validate_label_name(str(&(*keys)[i]), p.child(f).index(i)));
    }
  }
  std::string_view tk = str(term, "topologyKey");
  if (tk.empty()) errs.push_back(required(p.child("topologyKey"), "can not be empty"));
  add(errs, validate_label_name(tk, p.child("topologyKey")));
}

// preferredDuringSchedulingIgnoredDuringExecution of a node or pod (anti-)affinity: weights in
// 1-100, and each entry's `term` checked by check_term(term object, its path).
template <class CheckTerm>
void preferred_terms(Errors& errs, const json::object* affinity, const Path& p,
                     std::string_view term, CheckTerm check_term) {
  const json::array* pref = arr(affinity, "preferredDuringSchedulingIgnoredDuringExecution");
  for (std::size_t i = 0; pref && i < pref->size(); ++i) {
    const json::object* t = (*pref)[i].if_object();
    Path tp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(i);
    std::int64_t w = integer(t, "weight").value_or(0);
    if (w <= 0 || w > 100)
      errs.push_back(invalid_int(tp.child("weight"), w, "must be in the range 1-100"));
    check_term(obj(t, term), tp.child(term));
  }
}

}  // namespace

Errors validate_node_selector(const json::object* sel, const Path& p) {
  Errors errs;
  Path rp = p.child("nodeSelectorTerms");
  const json::array* terms = arr(sel, "nodeSelectorTerms");
  if (size_of(terms) == 0) {
    errs.push_back(required(rp, "must have at least one node selector term"));
  }
  for (std::size_t i = 0; terms && i < terms->size(); ++i) {
    node_selector_term(errs, (*terms)[i].if_object(), rp.index(i), true);
  }
  return errs;
}

namespace {

void affinity(Errors& errs, const json::object* aff, const Path& p) {
  if (aff == nullptr) return;
  if (const json::object* na = obj(aff, "nodeAffinity")) {
    Path np = p.child("nodeAffinity");
    if (const json::object* req = obj(na, "requiredDuringSchedulingIgnoredDuringExecution")) {
      add(errs,
          validate_node_selector(req, np.child("requiredDuringSchedulingIgnoredDuringExecution")));
    }
    preferred_terms(errs, na, np, "preference", [&](const json::object* t, const Path& tp) {
      node_selector_term(errs, t, tp, false);
    });
  }
  for (std::string_view kind : {"podAffinity", "podAntiAffinity"}) {
    const json::object* pa = obj(aff, kind);
    if (pa == nullptr) continue;
    Path pp = p.child(kind);
    const json::array* req = arr(pa, "requiredDuringSchedulingIgnoredDuringExecution");
    for (std::size_t i = 0; req && i < req->size(); ++i) {
      pod_affinity_term(errs, (*req)[i].if_object(),
                        pp.child("requiredDuringSchedulingIgnoredDuringExecution").index(i));
    }
    preferred_terms(errs, pa, pp, "podAffinityTerm",
                    [&](const json::object* t, const Path& tp) { pod_affinity_term(errs, t, tp); });
  }
}

void topology_spread(Errors& errs, const json::array* constraints, const Path& p) {
  for (std::size_t i = 0; constraints && i < constraints->size(); ++i) {
    const json::object* c = (*constraints)[i].if_object();
    Path cp = p.index(i);
    std::int64_t skew = integer(c, "maxSkew").value_or(0);
    if (skew <= 0)
      errs.push_back(invalid_int(cp.child("maxSkew"), skew, "must be greater than zero"));
    std::string_view tk = str(c, "topologyKey");
    if (tk.empty()) errs.push_back(required(cp.child("topologyKey"), "can not be empty"));
    std::string_view wu = str(c, "whenUnsatisfiable");
    if (wu != "DoNotSchedule" && wu != "ScheduleAnyway") {
      errs.push_back(
          not_supported(cp.child("whenUnsatisfiable"), q(wu), {"DoNotSchedule", "ScheduleAnyway"}));
    }
    for (std::size_t j = i + 1; j < constraints->size(); ++j) {
      const json::object* o = (*constraints)[j].if_object();
      if (str(o, "topologyKey") == tk && str(o, "whenUnsatisfiable") == wu) {
        errs.push_back(duplicate(cp.child("{topologyKey, whenUnsatisfiable}"),
                                 q("{" + std::string(tk) + ", " + std::string(wu) + "}")));
        break;
      }
    }
    if (auto md = integer(c, "minDomains")) {
      if (*md <= 0)
        errs.push_back(invalid_int(cp.child("minDomains"), *md, "must be greater than zero"));
      if (wu != "DoNotSchedule") {
        errs.push_back(invalid_int(cp.child("minDomains"), *md,
                                   "can only use minDomains if whenUnsatisfiable=DoNotSchedule, "
                                   "not " +
                                       std::string(wu)));
      }
    }
    for (std::string_view f : {"nodeAffinityPolicy", "nodeTaintsPolicy"}) {
      if (const json::value* v = field(c, f); v && str(v) != "Honor" && str(v) != "Ignore") {
        errs.push_back(not_supported(cp.child(f), q(str(v)), {"Honor", "Ignore"}));
      }
    }
    if (const json::array* keys = arr(c, "matchLabelKeys"); size_of(keys) > 0) {
      if (field(c, "labelSelector") == nullptr) {
        errs.push_back(forbidden(cp.child("matchLabelKeys"),
                                 "must not be specified when labelSelector is not set"));
      }
      for (std::size_t j = 0; j < keys->size(); ++j) {
        add(errs, validate_label_name(str(&(*keys)[j]), cp.child("matchLabelKeys").index(j)));
      }
    }
    add(errs, validate_label_selector(field(c, "labelSelector"), cp.child("labelSelector")));
  }
}

void dns_config(Errors& errs, const json::object* spec, const Path& p) {
  const json::object* cfg = obj(spec, "dnsConfig");
  if (str(spec, "dnsPolicy") == "None") {
    if (cfg == nullptr) {
      errs.push_back(required(p, "must provide `dnsConfig` when `dnsPolicy` is None"));
      return;
    }
    if (size_of(arr(cfg, "nameservers")) == 0) {
      errs.push_back(required(p.child("nameservers"),
                              "must provide at least one DNS nameserver when `dnsPolicy` is None"));
      return;
    }
  }
  if (cfg == nullptr) return;
  const json::array* ns = arr(cfg, "nameservers");
  if (size_of(ns) > 3) {
    errs.push_back(invalid(p.child("nameservers"), go_string_slice(field(cfg, "nameservers")),
                           "must not have more than 3 nameservers"));
  }
  for (std::size_t i = 0; ns && i < ns->size(); ++i) {
    add(errs, validate_ip(p.child("nameservers").index(i), str(&(*ns)[i])));
  }
  const json::array* searches = arr(cfg, "searches");
  if (size_of(searches) > 32) {
    errs.push_back(invalid(p.child("searches"), go_string_slice(field(cfg, "searches")),
                           "must not have more than 32 search paths"));
  }
  std::size_t chars = 0;
  for (std::size_t i = 0; searches && i < searches->size(); ++i) {
    chars += str(&(*searches)[i]).size() + (i > 0 ? 1 : 0);
  }
  if (chars > 2048) {
    errs.push_back(invalid(p.child("searches"), go_string_slice(field(cfg, "searches")),
                           "must not have more than 2048 characters (including spaces) in the "
                           "search list"));
  }
  for (std::size_t i = 0; searches && i < searches->size(); ++i) {
    std::string_view s = str(&(*searches)[i]);
    if (s.ends_with('.')) s.remove_suffix(1);
    add(errs, dns1123_subdomain(p.child("searches").index(i), s));
  }
  const json::array* options = arr(cfg, "options");
  for (std::size_t i = 0; options && i < options->size(); ++i) {
    if (str((*options)[i].if_object(), "name").empty()) {
      errs.push_back(required(p.child("options").index(i), "must not be empty"));
    }
  }
}

void sysctls(Errors& errs, const json::object* spec, const json::array* list, const Path& p) {
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; list && i < list->size(); ++i) {
    std::string_view name = str((*list)[i].if_object(), "name");
    Path np = p.index(i).child("name");
    bool ok = !name.empty() && name.size() <= 253;
    // "(seg[./])*seg" with seg = [a-z0-9]([-_a-z0-9]*[a-z0-9])?
    std::size_t start = 0;
    while (ok) {
      std::size_t sep = name.find_first_of("./", start);
      std::string_view seg =
          name.substr(start, sep == std::string_view::npos ? name.npos : sep - start);
      bool seg_ok = !seg.empty() &&
                    (std::isalnum(static_cast<unsigned char>(seg.front())) &&
                     !std::isupper(static_cast<unsigned char>(seg.front()))) &&
                    (std::isalnum(static_cast<unsigned char>(seg.back())) &&
                     !std::isupper(static_cast<unsigned char>(seg.back())));
      for (char c : seg) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
          seg_ok = false;
      }
      ok = seg_ok;
      if (sep == std::string_view::npos) break;
      start = sep + 1;
    }
    if (name.empty()) {
      errs.push_back(required(np));
    } else if (!ok) {
      errs.push_back(
          invalid_str(np, name,
                      "must have at most 253 characters and match regex "
                      "^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"));
    } else if (names.contains(name)) {
      errs.push_back(duplicate(np, q(name)));
    }
    std::string dotted(name);
    std::replace(dotted.begin(), dotted.end(), '/', '.');
    bool net = dotted.starts_with("net.");
    bool ipc = dotted == "kernel.shm_rmid_forced" || dotted == "kernel.msgmax" ||
               dotted == "kernel.msgmnb" || dotted == "kernel.msgmni" || dotted == "kernel.sem" ||
               dotted == "kernel.shmall" || dotted == "kernel.shmmax" ||
               dotted == "kernel.shmmni" || dotted.starts_with("fs.mqueue.");
    if (boolean(spec, "hostNetwork") && net) {
      errs.push_back(invalid_str(np, name, "may not be specified when 'hostNetwork' is true"));
    } else if (boolean(spec, "hostIPC") && ipc) {
      errs.push_back(invalid_str(np, name, "may not be specified when 'hostIPC' is true"));
    }
    names.emplace(name);
  }
}

void pod_security_context(Errors& errs, const json::object* spec, const Path& p) {
  const json::object* sc = obj(spec, "securityContext");
  if (sc == nullptr) return;
  id_range(errs, sc, "fsGroup", p);
  id_range(errs, sc, "runAsUser", p);
  id_range(errs, sc, "runAsGroup", p);
  if (const json::array* groups = arr(sc, "supplementalGroups")) {
    for (std::size_t i = 0; i < groups->size(); ++i) {
      auto g = integer(&(*groups)[i]).value_or(0);
      if (g < 0 || g > kMaxUserID) {
        errs.push_back(invalid_int(p.child("supplementalGroups").index(i), g,
                                   inclusive_range_error(0, kMaxUserID)));
      }
    }
  }
  if (boolean(spec, "shareProcessNamespace") && boolean(spec, "hostPID")) {
    errs.push_back(invalid(p.child("shareProcessNamespace"), "true",
                           "ShareProcessNamespace and HostPID cannot both be enabled"));
  }
  sysctls(errs, spec, arr(sc, "sysctls"), p.child("sysctls"));
  if (const json::value* v = field(sc, "fsGroupChangePolicy");
      v && str(v) != "OnRootMismatch" && str(v) != "Always") {
    errs.push_back(
        not_supported(p.child("fsGroupChangePolicy"), q(str(v)), {"Always", "OnRootMismatch"}));
  }
  seccomp_profile(errs, obj(sc, "seccompProfile"), p.child("seccompProfile"));
  apparmor_profile(errs, obj(sc, "appArmorProfile"), p.child("appArmorProfile"));
  if (const json::value* v = field(sc, "supplementalGroupsPolicy");
      v && str(v) != "Merge" && str(v) != "Strict") {
    errs.push_back(
        not_supported(p.child("supplementalGroupsPolicy"), q(str(v)), {"Merge", "Strict"}));
  }
  if (const json::value* v = field(sc, "seLinuxChangePolicy");
      v && str(v) != "Recursive" && str(v) != "MountOption") {
    errs.push_back(
        not_supported(p.child("seLinuxChangePolicy"), q(str(v)), {"MountOption", "Recursive"}));
  }
}

void os_rules(Errors& errs, const json::object* spec, const Path& p) {
  const json::object* os = obj(spec, "os");
  if (os == nullptr) return;
  std::string_view name = str(os, "name");
  if (name.empty()) {
    errs.push_back(required(p.child("os", "name"), "cannot be empty"));
    return;
  }
  if (name != "linux" && name != "windows") {
    errs.push_back(not_supported(p.child("os"), q(name), {"linux", "windows"}));
    return;
  }
  const json::object* sc = obj(spec, "securityContext");
  auto each_container = [&](auto&& fn) {
    for (std::string_view list : {"initContainers", "containers", "ephemeralContainers"}) {
      const json::array* cs = arr(spec, list);
      for (std::size_t i = 0; cs && i < cs->size(); ++i)
        fn((*cs)[i].if_object(), p.child(list).index(i));
    }
  };
  if (name == "linux") {
    if (obj(sc, "windowsOptions")) {
      errs.push_back(forbidden(p.child("securityContext", "windowsOptions"),
                               "windows options cannot be set for a linux pod"));
    }
    each_container([&](const json::object* c, const Path& cp) {
      if (obj(obj(c, "securityContext"), "windowsOptions")) {
        errs.push_back(forbidden(cp.child("securityContext", "windowsOptions"),
                                 "windows options cannot be set for a linux pod"));
      }
    });
    return;
  }
  constexpr std::string_view kWin = "cannot be set for a windows pod";
  for (std::string_view f : {"appArmorProfile", "seLinuxOptions"}) {
    if (field(sc, f)) errs.push_back(forbidden(p.child("securityContext", f), kWin));
  }
  if (field(spec, "hostUsers")) errs.push_back(forbidden(p.child("hostUsers"), kWin));
  if (boolean(spec, "hostPID")) errs.push_back(forbidden(p.child("hostPID"), kWin));
  if (boolean(spec, "hostIPC")) errs.push_back(forbidden(p.child("hostIPC"), kWin));
  for (std::string_view f : {"seccompProfile", "fsGroup", "fsGroupChangePolicy", "sysctls"}) {
    if (field(sc, f)) errs.push_back(forbidden(p.child("securityContext", f), kWin));
  }
  if (field(spec, "shareProcessNamespace"))
    errs.push_back(forbidden(p.child("shareProcessNamespace"), kWin));
  for (std::string_view f : {"runAsUser", "runAsGroup", "supplementalGroups",
                             "supplementalGroupsPolicy", "seLinuxChangePolicy"}) {
    if (field(sc, f)) errs.push_back(forbidden(p.child("securityContext", f), kWin));
  }
  each_container([&](const json::object* c, const Path& cp) {
    const json::object* csc = obj(c, "securityContext");
    for (std::string_view f :
         {"appArmorProfile", "seLinuxOptions", "seccompProfile", "capabilities",
          "readOnlyRootFilesystem", "privileged", "allowPrivilegeEscalation", "procMount",
          "runAsUser", "runAsGroup"}) {
      if (field(csc, f)) errs.push_back(forbidden(cp.child("securityContext", f), kWin));
    }
  });
}

}  // namespace

Errors validate_container_resources(const json::object* res, const Path& p) {
  Errors errs;
  const json::object* limits = obj(res, "limits");
  const json::object* requests = obj(res, "requests");
  Path lp = p.child("limits"), rp = p.child("requests");
  bool lim_cpu_mem = false, req_cpu_mem = false, lim_huge = false, req_huge = false;
  std::map<std::string, Quantity, std::less<>> lim_values;
  for (const auto& e : limits ? *limits : empty_object()) {
    std::string_view name = e.key();
    Path fp = lp.key(name);
    add(errs, container_resource_name(name, fp));
    auto qty = quantity_at(errs, e.value(), fp);
    if (!qty) continue;
    lim_values.emplace(std::string(name), *qty);
    quantity_value(errs, name, *qty, fp);
    if (is_hugepages(name)) {
      lim_huge = true;
      hugepage_value(errs, name, *qty, fp);
    }
    if (name == "cpu" || name == "memory") lim_cpu_mem = true;
  }
  for (const auto& e : requests ? *requests : empty_object()) {
    std::string_view name = e.key();
    Path fp = rp.key(name);
    add(errs, container_resource_name(name, fp));
    auto qty = quantity_at(errs, e.value(), fp);
    if (!qty) continue;
    quantity_value(errs, name, *qty, fp);
    if (auto it = lim_values.find(name); it != lim_values.end()) {
      int cmp = qty->compare(it->second);
      if (cmp != 0 && !overcommit_allowed(name)) {
        errs.push_back(invalid_str(
            rp, qty->to_string(),
            "must be equal to " + std::string(name) + " limit of " + it->second.to_string()));
      } else if (cmp > 0) {
        errs.push_back(invalid_str(rp, qty->to_string(),
                                   "must be less than or equal to " + std::string(name) +
                                       " limit of " + it->second.to_string()));
      }
    } else if (!overcommit_allowed(name) && (limits == nullptr || !limits->contains(name))) {
      errs.push_back(required(lp, "Limit must be set for non overcommitable resources"));
    }
    if (is_hugepages(name)) {
      req_huge = true;
      hugepage_value(errs, name, *qty, fp);
    }
    if (name == "cpu" || name == "memory") req_cpu_mem = true;
  }
  if (!lim_cpu_mem && !req_cpu_mem && (req_huge || lim_huge)) {
    errs.push_back(forbidden(p, "HugePages require cpu or memory"));
  }
  if (const json::array* claims = arr(res, "claims")) {
    for (std::size_t i = 0; i < claims->size(); ++i) {
      if (str((*claims)[i].if_object(), "name").empty()) {
        errs.push_back(required(p.child("claims").index(i)));
      }
    }
  }
  return errs;
}

Errors validate_access_modes(const json::array* modes, const Path& p) {
  Errors errs;
  bool rwop = false, other = false;
  for (std::size_t i = 0; modes && i < modes->size(); ++i) {
    std::string_view m = str(&(*modes)[i]);
    bool known = m == "ReadWriteOnce" || m == "ReadOnlyMany" || m == "ReadWriteMany" ||
                 m == "ReadWriteOncePod";
    if (!known) {
      errs.push_back(not_supported(
          p, q(m), {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"}));
    }
    if (m == "ReadWriteOncePod") {
      rwop = true;
    } else if (known) {
      other = true;
    }
  }
  if (rwop && other) {
    errs.push_back(forbidden(p, "may not use ReadWriteOncePod with other access modes"));
  }
  return errs;
}

Errors validate_storage_quantity(const json::value& v, const Path& p) {
  Errors errs;
  if (auto qty = quantity_at(errs, v, p)) {
    if (qty->sign() <= 0) {
      errs.push_back(invalid_str(p, qty->to_string(), "must be greater than zero"));
    } else {
      quantity_value(errs, "storage", *qty, p);
    }
  }
  return errs;
}

Errors validate_pvc_spec(const json::object* spec, const Path& p) {
  Errors errs;
  const json::array* modes = arr(spec, "accessModes");
  if (size_of(modes) == 0) {
    errs.push_back(required(p.child("accessModes"), "at least 1 access mode is required"));
  }
  add(errs, validate_label_selector(field(spec, "selector"), p.child("selector")));
  add(errs, validate_access_modes(modes, p.child("accessModes")));
  Path sp = p.child("resources").key("storage");
  const json::value* storage = field(obj(obj(spec, "resources"), "requests"), "storage");
  if (storage == nullptr) {
    errs.push_back(required(sp));
  } else {
    add(errs, validate_storage_quantity(*storage, sp));
  }
  if (std::string_view sc = str(spec, "storageClassName"); !sc.empty()) {
    add(errs, name_with(name_is_dns_subdomain, p.child("storageClassName"), sc));
  }
  if (const json::value* vm = field(spec, "volumeMode");
      vm && str(vm) != "Block" && str(vm) != "Filesystem") {
    errs.push_back(not_supported(p.child("volumeMode"), q(str(vm)), {"Block", "Filesystem"}));
  }
  return errs;
}

Errors validate_tolerations(const json::array* tolerations, const Path& p) {
  Errors errs;
  for (std::size_t i = 0; tolerations && i < tolerations->size(); ++i) {
    const json::object* t = (*tolerations)[i].if_object();
    Path ip = p.index(i);
    std::string_view key = str(t, "key");
    std::string_view op = str(t, "operator");
    std::string_view value = str(t, "value");
    std::string_view effect = str(t, "effect");
    if (!key.empty()) add(errs, validate_label_name(key, ip.child("key")));
    if (key.empty() && op != "Exists") {
      errs.push_back(invalid_str(ip.child("operator"), op,
                                 "operator must be Exists when `key` is empty, which means "
                                 "\"match all values and all keys\""));
    }
    if (field(t, "tolerationSeconds") && effect != "NoExecute") {
      errs.push_back(invalid_str(ip.child("effect"), effect,
                                 "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    if (op == "Equal" || op.empty()) {
      auto msgs = is_label_value(value);
      if (!msgs.empty()) {
        std::string joined;
        for (std::size_t j = 0; j < msgs.size(); ++j) joined += (j ? ";" : "") + msgs[j];
        errs.push_back(invalid_str(ip.child("operator"), value, joined));
      }
    } else if (op == "Exists") {
      if (!value.empty()) {
        errs.push_back(invalid_str(ip.child("operator"), value,
                                   "value must be empty when `operator` is 'Exists'"));
      }
    } else {
      errs.push_back(not_supported(ip.child("operator"), q(op), {"Equal", "Exists"}));
    }
    if (!effect.empty() && effect != "NoSchedule" && effect != "PreferNoSchedule" &&
        effect != "NoExecute") {
      errs.push_back(not_supported(ip.child("effect"), q(effect),
                                   {"NoSchedule", "PreferNoSchedule", "NoExecute"}));
    }
  }
  return errs;
}

Errors validate_pod_annotations(const json::value* annotations, const json::object* spec,
                                const Path& p, bool resource_is_pod) {
  Errors errs;
  const json::object* a = obj(annotations);
  if (a == nullptr) return errs;
  if (const json::value* mirror = field(*a, "kubernetes.io/config.mirror")) {
    if (str(spec, "nodeName").empty()) {
      errs.push_back(invalid_str(p.key("kubernetes.io/config.mirror"), str(mirror),
                                 "must set spec.nodeName if mirror pod annotation is set"));
    }
  }
  if (resource_is_pod) {
    if (const json::value* cost = field(*a, "controller.kubernetes.io/pod-deletion-cost")) {
      std::string_view s = str(cost);
      std::string_view digits = s;
      if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
      bool ok = !digits.empty() && digits.size() <= 10 &&
                digits.find_first_not_of("0123456789") == std::string_view::npos;
      if (ok) {
        long long v = std::stoll(std::string(digits));
        if (s[0] == '-') v = -v;
        ok = v >= -2147483648LL && v <= 2147483647LL;
      }
      if (!ok) {
        errs.push_back(invalid_str(p.key("controller.kubernetes.io/pod-deletion-cost"), s,
                                   "must be a 32bit integer"));
      }
    }
  }
  auto seccomp_ok = [](std::string_view v) {
    return v == "runtime/default" || v == "docker/default" || v == "unconfined" ||
           v.starts_with("localhost/");
  };
  for (const auto& e : *a) {
    std::string_view k = e.key();
    std::string_view v = str(&e.value());
    if (k == "seccomp.security.alpha.kubernetes.io/pod" ||
        k.starts_with("container.seccomp.security.alpha.kubernetes.io/")) {
      if (!seccomp_ok(v)) {
        errs.push_back(invalid_str(p.child(k), v, "must be a valid seccomp profile"));
      } else if (v.starts_with("localhost/")) {
        Errors tmp;
        local_descending_path(tmp, v.substr(10), p.child(k));
        add(errs, std::move(tmp));
      }
    }
    constexpr std::string_view kAppArmor = "container.apparmor.security.beta.kubernetes.io/";
    if (k.starts_with(kAppArmor)) {
      std::string_view cname = k.substr(kAppArmor.size());
      bool found = false;
      for (std::string_view list : {"initContainers", "containers", "ephemeralContainers"}) {
        const json::array* cs = arr(spec, list);
        for (std::size_t i = 0; cs && i < cs->size(); ++i) {
          if (str((*cs)[i].if_object(), "name") == cname) found = true;
        }
      }
      if (!found) errs.push_back(invalid_str(p.key(k), cname, "container not found"));
      if (!v.empty() && v != "runtime/default" && v != "unconfined" &&
          !v.starts_with("localhost/")) {
        errs.push_back(invalid_str(p.key(k), v, "invalid AppArmor profile name: " + q(v)));
      }
    }
  }
  return errs;
}

Errors validate_pod_spec(const json::object* spec, const Path& p, const PodSpecOptions& opts) {
  Errors errs;
  std::optional<std::int64_t> grace = integer(spec, "terminationGracePeriodSeconds");
  if (!field(spec, "terminationGracePeriodSeconds")) {
    errs.push_back(required(p.child("terminationGracePeriodSeconds")));
  }
  const json::value* hu = field(spec, "hostUsers");
  bool host_users = !(hu && hu->is_bool() && !hu->get_bool());

  Volumes vols;
  add(errs, validate_volumes(arr(spec, "volumes"), p.child("volumes"), opts, vols));
  if (const json::array* claims = arr(spec, "resourceClaims")) {
    Names names;
    for (std::size_t i = 0; i < claims->size(); ++i) {
      const json::object* c = (*claims)[i].if_object();
      Path cp = p.child("resourceClaims").index(i);
      std::string_view name = str(c, "name");
      if (name.empty()) {
        errs.push_back(required(cp.child("name")));
      } else if (names.contains(name)) {
        errs.push_back(duplicate(cp.child("name"), q(name)));
      } else {
        add(errs, dns1123_label(cp.child("name"), name));
        names.emplace(name);
      }
    }
  }
  containers(errs, arr(spec, "containers"), vols, grace, p.child("containers"), host_users);
  init_containers(errs, arr(spec, "initContainers"), arr(spec, "containers"), vols, grace,
                  p.child("initContainers"), host_users);
  ephemeral_containers(errs, arr(spec, "ephemeralContainers"), arr(spec, "containers"),
                       arr(spec, "initContainers"), vols, p.child("ephemeralContainers"),
                       host_users);

  // hostNetwork: hostPort must equal containerPort (0 is allowed in templates).
  if (boolean(spec, "hostNetwork")) {
    const json::array* cs = arr(spec, "containers");
    for (std::size_t i = 0; cs && i < cs->size(); ++i) {
      const json::array* ports = arr((*cs)[i].if_object(), "ports");
      for (std::size_t j = 0; ports && j < ports->size(); ++j) {
        const json::object* port = (*ports)[j].if_object();
        std::int64_t hp = integer(port, "hostPort").value_or(0);
        std::int64_t cp = integer(port, "containerPort").value_or(0);
        if ((opts.resource_is_pod || hp != 0) && hp != cp) {
          errs.push_back(
              invalid_int(p.child("containers").index(i).child("ports").index(j).child("hostPort"),
                          hp, "must match `containerPort` when `hostNetwork` is true"));
        }
      }
    }
  }

  std::string_view restart = str(spec, "restartPolicy");
  if (restart.empty()) {
    errs.push_back(required(p.child("restartPolicy")));
  } else if (restart != "Always" && restart != "OnFailure" && restart != "Never") {
    errs.push_back(
        not_supported(p.child("restartPolicy"), q(restart), {"Always", "OnFailure", "Never"}));
  }
  std::string_view dns = str(spec, "dnsPolicy");
  if (dns.empty()) {
    errs.push_back(required(p.child("dnsPolicy")));
  } else if (dns != "ClusterFirstWithHostNet" && dns != "ClusterFirst" && dns != "Default" &&
             dns != "None") {
    errs.push_back(not_supported(p.child("dnsPolicy"), q(dns),
                                 {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"}));
  }
  add(errs, validate_labels(field(spec, "nodeSelector"), p.child("nodeSelector")));
  pod_security_context(errs, spec, p.child("securityContext"));
  if (const json::array* secrets = arr(spec, "imagePullSecrets")) {
    for (std::size_t i = 0; i < secrets->size(); ++i) {
      const json::object* s = (*secrets)[i].if_object();
      bool only_name = s != nullptr;
      for (const auto& e : s ? *s : empty_object()) {
        if (e.key() != "name" && !e.value().is_null()) only_name = false;
      }
      if (!only_name) {
        errs.push_back(invalid(p.child("imagePullSecrets").index(i), go_value((*secrets)[i]),
                               "only name may be set"));
      }
    }
  }
  affinity(errs, obj(spec, "affinity"), p.child("affinity"));
  dns_config(errs, spec, p.child("dnsConfig"));
  if (const json::array* gates = arr(spec, "readinessGates")) {
    for (std::size_t i = 0; i < gates->size(); ++i) {
      add(errs, qualified_name(p.child("readinessGates").index(i).child("conditionType"),
                               str((*gates)[i].if_object(), "conditionType")));
    }
  }
  if (const json::array* gates = arr(spec, "schedulingGates")) {
    Names seen;
    for (std::size_t i = 0; i < gates->size(); ++i) {
      std::string_view name = str((*gates)[i].if_object(), "name");
      Path gp = p.child("schedulingGates").index(i);
      add(errs, qualified_name(gp, name));
      if (seen.contains(name)) errs.push_back(duplicate(gp, q(name)));
      seen.emplace(name);
    }
  }
  topology_spread(errs, arr(spec, "topologySpreadConstraints"),
                  p.child("topologySpreadConstraints"));
  if (!host_users) {
    if (boolean(spec, "hostNetwork")) {
      errs.push_back(forbidden(p.child("hostNetwork"), "when `pod.Spec.HostUsers` is false"));
    }
    if (boolean(spec, "hostPID"))
      errs.push_back(forbidden(p.child("HostPID"), "when `pod.Spec.HostUsers` is false"));
    if (boolean(spec, "hostIPC"))
      errs.push_back(forbidden(p.child("HostIPC"), "when `pod.Spec.HostUsers` is false"));
  }
  if (std::string_view sa = str(spec, "serviceAccountName"); !sa.empty()) {
    add(errs, name_with(name_is_dns_subdomain, p.child("serviceAccountName"), sa));
  }
  if (std::string_view node = str(spec, "nodeName"); !node.empty()) {
    add(errs, name_with(name_is_dns_subdomain, p.child("nodeName"), node));
  }
  if (auto ads = integer(spec, "activeDeadlineSeconds"); ads && (*ads < 1 || *ads > kMaxInt32)) {
    errs.push_back(
        invalid_int(p.child("activeDeadlineSeconds"), *ads, inclusive_range_error(1, kMaxInt32)));
  }
  if (std::string_view h = str(spec, "hostname"); !h.empty())
    add(errs, dns1123_label(p.child("hostname"), h));
  if (std::string_view s = str(spec, "subdomain"); !s.empty())
    add(errs, dns1123_label(p.child("subdomain"), s));
  add(errs, validate_tolerations(arr(spec, "tolerations"), p.child("tolerations")));
  if (const json::array* aliases = arr(spec, "hostAliases")) {
    for (std::size_t i = 0; i < aliases->size(); ++i) {
      const json::object* a = (*aliases)[i].if_object();
      Path ap = p.child("hostAliases").index(i);
      add(errs, validate_ip(ap.child("ip"), str(a, "ip")));
      if (const json::array* hosts = arr(a, "hostnames")) {
        for (std::size_t j = 0; j < hosts->size(); ++j) {
          add(errs, dns1123_subdomain(ap.child("hostnames").index(j), str(&(*hosts)[j])));
        }
      }
    }
  }
  if (std::string_view pc = str(spec, "priorityClassName"); !pc.empty()) {
    add(errs, name_with(name_is_dns_subdomain, p.child("priorityClassName"), pc));
  }
  if (const json::value* rc = field(spec, "runtimeClassName")) {
    add(errs, name_with(name_is_dns_subdomain, p.child("runtimeClassName"), str(rc)));
  }
  if (const json::value* pp = field(spec, "preemptionPolicy")) {
    std::string_view v = str(pp);
    if (v.empty()) {
      errs.push_back(required(p.child("preemptionPolicy")));
    } else if (v != "PreemptLowerPriority" && v != "Never") {
      errs.push_back(
          not_supported(p.child("preemptionPolicy"), q(v), {"PreemptLowerPriority", "Never"}));
    }
  }
  if (const json::value* overhead = field(spec, "overhead")) {
    json::object wrapped;
    slot(wrapped, "limits") = *overhead;
    add(errs, validate_container_resources(&wrapped, p.child("overhead")));
  }
  os_rules(errs, spec, p);
  return errs;
}

Errors validate_pod_template_spec(const json::object* tmpl, const Path& p) {
  Errors errs;
  const json::object* meta = obj(tmpl, "metadata");
  const json::object* spec = obj(tmpl, "spec");
  add(errs, validate_labels(field(meta, "labels"), p.child("labels")));
  add(errs, validate_annotations(field(meta, "annotations"), p.child("annotations")));
  add(errs,
      validate_pod_annotations(field(meta, "annotations"), spec, p.child("annotations"), false));
  add(errs, validate_pod_spec(spec, p.child("spec"), PodSpecOptions{}));
  if (size_of(arr(spec, "ephemeralContainers")) > 0) {
    errs.push_back(forbidden(p.child("spec", "ephemeralContainers"),
                             "ephemeral containers not allowed in pod template"));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Defaults.

namespace {

// The tag parsers.ParseImageName reports: "latest" when neither tag nor digest is given, ""
// for digests and for references that do not parse.
std::string_view image_tag(std::string_view image) {
  if (image.empty()) return "";
  bool digest = false;
  if (std::size_t at = image.find('@'); at != std::string_view::npos) {
    digest = true;
    image = image.substr(0, at);
  }
  std::string_view tag;
  std::size_t slash = image.rfind('/');
  std::size_t colon = image.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = image.substr(colon + 1);
    image = image.substr(0, colon);
    if (tag.empty() || tag.size() > 128) return "";
  }
  // Repository path components must be lowercase; the first component may be a registry host.
  std::size_t first_slash = image.find('/');
  std::string_view path = image;
  if (first_slash != std::string_view::npos) {
    std::string_view host = image.substr(0, first_slash);
    if (host.find('.') != std::string_view::npos || host.find(':') != std::string_view::npos ||
        host == "localhost" ||
        host.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos) {
      path = image.substr(first_slash + 1);
    }
  }
  if (path.empty()) return "";
  for (char c : path) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
          c == '/')) {
      return "";
    }
  }
  if (tag.empty() && !digest) return "latest";
  return tag;
}

void default_http_get(json::object* h) {
  if (h == nullptr) return;
  set_default(*h, "path", "/");
  set_default(*h, "scheme", "HTTP");
}

void default_probe(json::object* pr) {
  if (pr == nullptr) return;
  for (auto [k, v] : {std::pair<std::string_view, int>{"timeoutSeconds", 1},
                      {"periodSeconds", 10},
                      {"successThreshold", 1},
                      {"failureThreshold", 3}}) {
    if (integer(*pr, k).value_or(0) == 0) slot(*pr, k) = v;
  }
  default_http_get(mobj(*pr, "httpGet"));
}

void default_field_ref(json::object* ref) {
  if (ref != nullptr) set_default(*ref, "apiVersion", "v1");
}

void default_container(json::object& c) {
  if (unset(c, "imagePullPolicy")) {
    slot(c, "imagePullPolicy") = image_tag(str(c, "image")) == "latest" ? "Always" : "IfNotPresent";
  }
  set_default(c, "terminationMessagePath", "/dev/termination-log");
  set_default(c, "terminationMessagePolicy", "File");
  json::object& res = ensure_obj(c, "resources");
  if (json::object* l = mobj(res, "limits")) default_resource_list(*l);
  if (json::object* r = mobj(res, "requests")) default_resource_list(*r);
  if (json::array* ports = marr(c, "ports")) {
    for (auto& port : *ports) {
      if (json::object* po = port.if_object()) set_default(*po, "protocol", "TCP");
    }
  }
  for (std::string_view pr : {"livenessProbe", "readinessProbe", "startupProbe"}) {
    default_probe(mobj(c, pr));
  }
  if (json::object* lc = mobj(c, "lifecycle")) {
    for (std::string_view h : {"postStart", "preStop"}) {
      if (json::object* ho = mobj(*lc, h)) default_http_get(mobj(*ho, "httpGet"));
    }
  }
  if (json::array* env = marr(c, "env")) {
    for (auto& e : *env) {
      if (json::object* eo = e.if_object()) {
        if (json::object* from = mobj(*eo, "valueFrom")) default_field_ref(mobj(*from, "fieldRef"));
      }
    }
  }
}

void default_mode(json::object* src) {
  if (src == nullptr) return;
  if (!field(*src, "defaultMode")) slot(*src, "defaultMode") = 420;
}

void default_volume(json::object& vol) {
  bool any = false;
  for (std::string_view s : kVolumeSources) any |= field(vol, s) != nullptr;
  if (!any) slot(vol, "emptyDir") = json::object();
  default_mode(mobj(vol, "secret"));
  default_mode(mobj(vol, "configMap"));
  if (json::object* d = mobj(vol, "downwardAPI")) {
    default_mode(d);
    if (json::array* items = marr(*d, "items")) {
      for (auto& it : *items) {
        if (json::object* io = it.if_object()) default_field_ref(mobj(*io, "fieldRef"));
      }
    }
  }
  if (json::object* pr = mobj(vol, "projected")) {
    default_mode(pr);
    if (json::array* sources = marr(*pr, "sources")) {
      for (auto& s : *sources) {
        json::object* so = s.if_object();
        if (so == nullptr) continue;
        if (json::object* t = mobj(*so, "serviceAccountToken")) {
          if (!field(*t, "expirationSeconds")) slot(*t, "expirationSeconds") = 3600;
        }
        if (json::object* d = mobj(*so, "downwardAPI")) {
          if (json::array* items = marr(*d, "items")) {
            for (auto& it : *items) {
              if (json::object* io = it.if_object()) default_field_ref(mobj(*io, "fieldRef"));
            }
          }
        }
      }
    }
  }
  if (json::object* hp = mobj(vol, "hostPath")) {
    if (!field(*hp, "type")) slot(*hp, "type") = "";
  }
  if (json::object* iscsi = mobj(vol, "iscsi")) set_default(*iscsi, "iscsiInterface", "default");
  if (json::object* rbd = mobj(vol, "rbd")) {
    set_default(*rbd, "pool", "rbd");
    set_default(*rbd, "user", "admin");
    set_default(*rbd, "keyring", "/etc/ceph/keyring");
  }
  if (json::object* az = mobj(vol, "azureDisk")) {
    set_default(*az, "cachingMode", "ReadWrite");
    set_default(*az, "fsType", "ext4");
    if (!field(*az, "readOnly")) slot(*az, "readOnly") = false;
    set_default(*az, "kind", "Shared");
  }
  if (json::object* sio = mobj(vol, "scaleIO")) {
    set_default(*sio, "storageMode", "ThinProvisioned");
    set_default(*sio, "fsType", "xfs");
  }
  if (json::object* eph = mobj(vol, "ephemeral")) {
    if (json::object* tmpl = mobj(*eph, "volumeClaimTemplate")) {
      json::object& spec = ensure_obj(*tmpl, "spec");
      set_default(spec, "volumeMode", "Filesystem");
      if (json::object* res = mobj(spec, "resources")) {
        for (std::string_view k : {"limits", "requests"}) {
          if (json::object* l = mobj(*res, k)) default_resource_list(*l);
        }
      }
    }
  }
  if (json::object* img = mobj(vol, "image")) {
    if (unset(*img, "pullPolicy")) {
      slot(*img, "pullPolicy") =
          image_tag(str(*img, "reference")) == "latest" ? "Always" : "IfNotPresent";
    }
  }
}

}  // namespace

void copy_node_affinity(json::object& into, const json::object* from) {
  const json::value* na = field(obj(from, "affinity"), "nodeAffinity");
  if (json::object* aff = mobj(into, "affinity")) {
    aff->erase("nodeAffinity");
    if (na) slot(*aff, "nodeAffinity") = *na;
    if (aff->empty() && !field(from, "affinity")) into.erase("affinity");
  } else if (na) {
    json::object a;
    slot(a, "nodeAffinity") = *na;
    slot(into, "affinity") = std::move(a);
  }
}

void default_resource_list(json::object& list) {
  for (auto& e : list) {
    auto qty = quantity_from_json(e.value());
    if (!qty) continue;
    e.value() = round_up_to_milli(*qty).to_string();
  }
}

void default_pod_spec(json::object& spec) {
  set_default(spec, "dnsPolicy", "ClusterFirst");
  set_default(spec, "restartPolicy", "Always");
  if (!field(spec, "securityContext")) slot(spec, "securityContext") = json::object();
  if (!field(spec, "terminationGracePeriodSeconds"))
    slot(spec, "terminationGracePeriodSeconds") = 30;
  set_default(spec, "schedulerName", "default-scheduler");
  // v1 conversion keeps the deprecated serviceAccount in step with serviceAccountName.
  if (unset(spec, "serviceAccountName") && !unset(spec, "serviceAccount")) {
    json::value sa = *field(spec, "serviceAccount");
    slot(spec, "serviceAccountName") = std::move(sa);
  }
  if (!unset(spec, "serviceAccountName")) {
    json::value sa = *field(spec, "serviceAccountName");
    slot(spec, "serviceAccount") = std::move(sa);
  }
  for (std::string_view list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (json::array* cs = marr(spec, list)) {
      for (auto& c : *cs) {
        if (json::object* co = c.if_object()) default_container(*co);
      }
    }
  }
  if (json::array* vols = marr(spec, "volumes")) {
    for (auto& v : *vols) {
      if (json::object* vo = v.if_object()) default_volume(*vo);
    }
  }
  if (json::object* overhead = mobj(spec, "overhead")) default_resource_list(*overhead);
  if (json::object* res = mobj(spec, "resources")) {
    for (std::string_view k : {"limits", "requests"}) {
      if (json::object* l = mobj(*res, k)) default_resource_list(*l);
    }
  }
}

void default_pod_template(json::object& tmpl) {
  json::object& meta = ensure_obj(tmpl, "metadata");
  if (!meta.contains("creationTimestamp")) slot(meta, "creationTimestamp") = nullptr;
  default_pod_spec(ensure_obj(tmpl, "spec"));
}

void default_pod(json::object& pod) {
  json::object& spec = ensure_obj(pod, "spec");
  default_pod_spec(spec);
  for (std::string_view list : {"containers", "initContainers"}) {
    json::array* cs = marr(spec, list);
    for (std::size_t i = 0; cs && i < cs->size(); ++i) {
      json::object* c = (*cs)[i].if_object();
      if (c == nullptr) continue;
      json::object* res = mobj(*c, "resources");
      if (res == nullptr || mobj(*res, "limits") == nullptr) continue;
      ensure_obj(*res, "requests");  // may move "limits": look both up afterwards
      const json::object* limits = mobj(*res, "limits");
      json::object* requests = mobj(*res, "requests");
      for (const auto& e : *limits) {
        if (!requests->contains(e.key())) slot(*requests, e.key()) = e.value();
      }
    }
  }
  if (!field(spec, "enableServiceLinks")) slot(spec, "enableServiceLinks") = true;
  if (boolean(&spec, "hostNetwork")) {
    for (std::string_view list : {"containers", "initContainers"}) {
      json::array* cs = marr(spec, list);
      for (std::size_t i = 0; cs && i < cs->size(); ++i) {
        json::object* c = (*cs)[i].if_object();
        json::array* ports = c ? marr(*c, "ports") : nullptr;
        for (std::size_t j = 0; ports && j < ports->size(); ++j) {
          json::object* port = (*ports)[j].if_object();
          if (port && integer(*port, "hostPort").value_or(0) == 0 &&
              field(*port, "containerPort")) {
            json::value cp = *field(*port, "containerPort");
            slot(*port, "hostPort") = std::move(cp);
          }
        }
      }
    }
  }
}

void default_pvc_template(json::object& pvc) {
  set_default(pvc, "apiVersion", "v1");
  set_default(pvc, "kind", "PersistentVolumeClaim");
  json::object& meta = ensure_obj(pvc, "metadata");
  if (!meta.contains("creationTimestamp")) slot(meta, "creationTimestamp") = nullptr;
  json::object& spec = ensure_obj(pvc, "spec");
  set_default(spec, "volumeMode", "Filesystem");
  if (json::object* res = mobj(spec, "resources")) {
    for (std::string_view k : {"limits", "requests"}) {
      if (json::object* l = mobj(*res, k)) default_resource_list(*l);
    }
  }
  json::object& status = ensure_obj(pvc, "status");
  set_default(status, "phase", "Pending");
}

std::string pod_qos_class(const json::object* spec) {
  std::map<std::string, Quantity, std::less<>> requests, limits;
  bool guaranteed = true;
  for (std::string_view list : {"containers", "initContainers"}) {
    const json::array* cs = arr(spec, list);
    for (std::size_t i = 0; cs && i < cs->size(); ++i) {
      const json::object* res = obj((*cs)[i].if_object(), "resources");
      auto accumulate = [](const json::object* l, auto& into, std::set<std::string>* found) {
        for (const auto& e : l ? *l : empty_object()) {
          if (e.key() != "cpu" && e.key() != "memory") continue;
          auto qty = quantity_from_json(e.value());
          if (!qty || qty->sign() <= 0) continue;
          if (found) found->insert(std::string(e.key()));
          auto [it, fresh] = into.emplace(std::string(e.key()), *qty);
          if (!fresh) it->second += *qty;
        }
      };
      std::set<std::string> found;
      accumulate(obj(res, "requests"), requests, nullptr);
      accumulate(obj(res, "limits"), limits, &found);
      if (!found.contains("cpu") || !found.contains("memory")) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  if (guaranteed) {
    for (const auto& [name, req] : requests) {
      auto it = limits.find(name);
      if (it == limits.end() || it->second.compare(req) != 0) {
        guaranteed = false;
        break;
      }
    }
  }
  if (guaranteed && requests.size() == limits.size()) return "Guaranteed";
  return "Burstable";
}

}  // namespace podwarp::validation
