#include "pods/volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "podwarp/quantity.h"

namespace podwarp::noded::pods {

namespace fs = std::filesystem;

std::expected<std::string, std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int acc = 0, bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    int v = val(c);
    if (v < 0) return std::unexpected("illegal base64 data");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

namespace {

std::string volume_dir(const std::string& pod_dir, const char* plugin, const std::string& name) {
  return fmt::format("{}/volumes/kubernetes.io~{}/{}", pod_dir, plugin, name);
}

std::expected<void, std::string> write_file(const std::string& path, const std::string& data, int mode) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return std::unexpected(fmt::format("open {}: {}", path, std::strerror(errno)));
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
  if (!ok) return std::unexpected(fmt::format("write {}: {}", path, std::strerror(errno)));
  return {};
}

bool safe_relative(std::string_view p) {
  return !p.empty() && p[0] != '/' && p.find("..") == std::string_view::npos;
}

}  // namespace

std::expected<std::map<std::string, std::string>, std::string> prepare_volumes(
    const PodDef& pod, const std::string& pod_dir, const ObjectLookup& lookup) {
  std::map<std::string, std::string> out;
  for (const auto& v : pod.volumes) {
    std::error_code ec;
    switch (v.kind) {
      case VolumeDef::Kind::kEmptyDir: {
        std::string d = volume_dir(pod_dir, "empty-dir", v.name);
        fs::create_directories(d, ec);
        if (ec) return std::unexpected(fmt::format("volume {}: mkdir {}: {}", v.name, d, ec.message()));
        ::chmod(d.c_str(), 0777);
        if (v.memory_medium) {
          struct stat a{}, b{};
          bool mounted = ::stat(d.c_str(), &a) == 0 && ::stat(fs::path(d).parent_path().c_str(), &b) == 0 &&
                         a.st_dev != b.st_dev;
          if (!mounted) {
            std::string opts = "mode=0777";
            if (!v.size_limit.empty()) {
              auto q = Quantity::parse(v.size_limit);
              if (!q || q->value() <= 0)
                return std::unexpected(fmt::format("volume {}: invalid emptyDir.sizeLimit \"{}\"", v.name, v.size_limit));
              opts += fmt::format(",size={}", q->value());  // tmpfs takes bytes, not "1Mi"
            }
            if (::mount("tmpfs", d.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
              return std::unexpected(fmt::format("volume {}: mount tmpfs on {}: {}", v.name, d, std::strerror(errno)));
          }
        }
        out[v.name] = d;
        break;
      }
      case VolumeDef::Kind::kHostPath: {
        const auto& t = v.host_path_type;
        if (t == "DirectoryOrCreate") {
          fs::create_directories(v.host_path, ec);
          if (ec) return std::unexpected(fmt::format("volume {}: mkdir {}: {}", v.name, v.host_path, ec.message()));
        } else if (t == "FileOrCreate") {
          if (!fs::exists(v.host_path)) {
            fs::create_directories(fs::path(v.host_path).parent_path(), ec);
            int fd = ::open(v.host_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd < 0) return std::unexpected(fmt::format("volume {}: create {}: {}", v.name, v.host_path, std::strerror(errno)));
            ::close(fd);
          }
        } else if (t == "Directory" && !fs::is_directory(v.host_path)) {
          return std::unexpected(fmt::format("volume {}: hostPath type check failed: {} is not a directory", v.name, v.host_path));
        } else if (t == "File" && !fs::is_regular_file(v.host_path)) {
          return std::unexpected(fmt::format("volume {}: hostPath type check failed: {} is not a file", v.name, v.host_path));
        } else if (t == "Socket" && !fs::is_socket(v.host_path)) {
          return std::unexpected(fmt::format("volume {}: hostPath type check failed: {} is not a socket", v.name, v.host_path));
        }
        out[v.name] = v.host_path;
        break;
      }
      case VolumeDef::Kind::kConfigMap:
      case VolumeDef::Kind::kSecret: {
        bool cm = v.kind == VolumeDef::Kind::kConfigMap;
        std::string d = volume_dir(pod_dir, cm ? "configmap" : "secret", v.name);
        fs::create_directories(d, ec);
        if (ec) return std::unexpected(fmt::format("volume {}: mkdir {}: {}", v.name, d, ec.message()));
        auto obj = lookup ? lookup(cm ? "ConfigMap" : "Secret", pod.ns, v.source_name) : std::nullopt;
        if (!obj) {
          if (v.optional) {
            out[v.name] = d;
            break;
          }
          return std::unexpected(fmt::format("volume {}: {} \"{}\" not found", v.name,
                                             cm ? "configmap" : "secret", v.source_name));
        }
        std::map<std::string, std::string> data;
        auto add = [&](const char* field, bool b64) -> std::expected<void, std::string> {
          auto* d2 = find_path(*obj, {field});
          if (d2 == nullptr || !d2->is_object()) return {};
          for (const auto& kv : d2->as_object()) {
            if (!kv.value().is_string()) continue;
            std::string val(kv.value().as_string());
            if (b64) {
              auto dec = base64_decode(val);
              if (!dec) return std::unexpected(fmt::format("volume {}: key {}: {}", v.name, std::string(kv.key()), dec.error()));
              val = std::move(*dec);
            }
            data[std::string(kv.key())] = std::move(val);
          }
          return {};
        };
        for (auto r : cm ? std::vector<std::pair<const char*, bool>>{{"data", false}, {"binaryData", true}}
                         : std::vector<std::pair<const char*, bool>>{{"data", true}, {"stringData", false}})
          if (auto e = add(r.first, r.second); !e) return std::unexpected(e.error());
        std::vector<KeyToPath> files = v.items;
        if (files.empty())
          for (const auto& [k, _] : data) files.push_back({k, k});
        for (const auto& kp : files) {
          auto it = data.find(kp.key);
          if (it == data.end()) {
            if (v.optional) continue;
            return std::unexpected(fmt::format("volume {}: key \"{}\" not found in {}", v.name, kp.key, v.source_name));
          }
          if (!safe_relative(kp.path)) return std::unexpected(fmt::format("volume {}: invalid path \"{}\"", v.name, kp.path));
          if (auto w = write_file(d + "/" + kp.path, it->second, v.default_mode); !w)
            return std::unexpected(fmt::format("volume {}: {}", v.name, w.error()));
        }
        out[v.name] = d;
        break;
      }
      case VolumeDef::Kind::kUnsupported:
        return std::unexpected(fmt::format("volume {}: unsupported volume type in standalone mode", v.name));
    }
  }
  return out;
}

void teardown_volumes(const PodDef& pod, const std::string& pod_dir) {
  for (const auto& v : pod.volumes)
    if (v.kind == VolumeDef::Kind::kEmptyDir && v.memory_medium)
      ::umount2(volume_dir(pod_dir, "empty-dir", v.name).c_str(), MNT_DETACH);
}

std::vector<MountRequest> container_mounts(const ContainerDef& c,
                                           const std::map<std::string, std::string>& volumes) {
  std::vector<MountRequest> out;
  for (const auto& m : c.mounts) {
    auto it = volumes.find(m.name);
    if (it == volumes.end()) continue;
    std::string src = it->second;
    if (!m.sub_path.empty()) {
      src += "/" + m.sub_path;
      std::error_code ec;
      if (!fs::exists(src)) fs::create_directories(src, ec);
    }
    out.push_back({src, m.mount_path, m.read_only});
  }
  return out;
}

}  // namespace podwarp::noded::pods
