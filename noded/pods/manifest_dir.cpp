#include "pods/manifest_dir.h"

#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <functional>

#include "podwarp/yaml.h"

namespace podwarp::noded::pods {

namespace fs = std::filesystem;

namespace {

std::expected<json::value, std::string> parse_any(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto j = parse_json(text);
    if (j) return j;
  }
  return yaml_to_json(text);
}

}  // namespace

std::expected<PodDef, ManifestError> parse_pod_manifest(std::string_view text,
                                                        const StaticPodOptions& o) {
  auto v = parse_any(text);
  if (!v) return std::unexpected(ManifestError{o.source_file, "", v.error(), "", ""});
  return pod_from_json(std::move(*v), o);
}

ManifestScan scan_manifest_dir(const std::string& dir, const std::string& node_name) {
  ManifestScan out;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    auto ext = e.path().extension().string();
    if (ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
    std::error_code fec;
    if (!e.is_regular_file(fec)) continue;
    files.push_back(e.path());
  }
  if (ec) {
    out.error = fmt::format("read manifest dir {}: {}", dir, ec.message());
    return out;
  }
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    ManifestEntry me;
    me.file = p.string();
    std::ifstream f(p, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    if (!f.good() && !f.eof()) {
      me.pod = std::unexpected(ManifestError{me.file, "", "cannot read file", "", ""});
      out.pods.push_back(std::move(me));
      continue;
    }
    me.content_hash = fmt::format("{:016x}", std::hash<std::string>{}(text));
    auto v = parse_any(text);
    if (v) {
      auto kind = get_string(*v, {"kind"});
      if (kind == "ConfigMap" || kind == "Secret") {
        std::string key = fmt::format("{}/{}", get_string(*v, {"metadata", "namespace"}, "default"),
                                      get_string(*v, {"metadata", "name"}));
        (kind == "ConfigMap" ? out.config_maps : out.secrets)[key] = std::move(*v);
        continue;
      }
      me.pod = pod_from_json(std::move(*v), StaticPodOptions{node_name, me.file});
    } else {
      me.pod = std::unexpected(ManifestError{me.file, "", v.error(), "", ""});
    }
    out.pods.push_back(std::move(me));
  }
  return out;
}

}  // namespace podwarp::noded::pods
