#include "images/manifest.h"

#include <fmt/format.h>

#include "images/reference.h"
#include "podwarp/json.h"

namespace podwarp::images {

namespace {

std::unexpected<Error> bad(std::string msg) { return fail(ErrorKind::kBadContent, std::move(msg)); }

Result<json::object> parse_object(std::string_view body, std::string_view what) {
  auto v = parse_json(body, 32);
  if (!v) return bad(fmt::format("{}: {}", what, v.error()));
  if (!v->is_object()) return bad(fmt::format("{}: not a JSON object", what));
  return std::move(v->as_object());
}

std::vector<std::string> string_array(const json::value* v) {
  std::vector<std::string> out;
  if (!v || !v->is_array()) return out;
  for (const auto& e : v->as_array()) {
    if (e.is_string()) out.emplace_back(e.as_string());
  }
  return out;
}

std::optional<Platform> parse_platform(const json::value* v) {
  if (!v || !v->is_object()) return std::nullopt;
  Platform p;
  p.os = std::string(get_string(*v, {"os"}));
  p.architecture = std::string(get_string(*v, {"architecture"}));
  p.variant = std::string(get_string(*v, {"variant"}));
  return p;
}

Result<Descriptor> parse_descriptor(const json::value& v, std::string_view what) {
  if (!v.is_object()) return bad(fmt::format("{}: descriptor is not an object", what));
  Descriptor d;
  d.media_type = std::string(get_string(v, {"mediaType"}));
  d.digest = std::string(get_string(v, {"digest"}));
  if (!is_sha256_digest(d.digest)) {
    return bad(fmt::format("{}: unsupported or malformed digest \"{}\"", what, d.digest));
  }
  const json::value* size = v.as_object().if_contains("size");
  if (!size || !(size->is_int64() || size->is_uint64()) ||
      (size->is_int64() && size->as_int64() < 0)) {
    return bad(fmt::format("{}: descriptor {} has no valid size", what, d.digest));
  }
  d.size = size->is_uint64() ? size->as_uint64() : static_cast<std::uint64_t>(size->as_int64());
  d.platform = parse_platform(v.as_object().if_contains("platform"));
  if (auto* ann = v.as_object().if_contains("annotations"); ann && ann->is_object()) {
    for (const auto& [k, val] : ann->as_object()) {
      if (val.is_string()) d.annotations[std::string(k)] = std::string(val.as_string());
    }
  }
  return d;
}

bool is_index_type(std::string_view t) {
  return t == media_type::kOciIndex || t == media_type::kDockerList;
}
bool is_manifest_type(std::string_view t) {
  return t == media_type::kOciManifest || t == media_type::kDockerManifest;
}

}  // namespace

std::string Platform::to_string() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

bool is_layer_media_type(std::string_view t) {
  static constexpr std::string_view kTypes[] = {
      media_type::kOciLayer,
      media_type::kOciLayerGzip,
      media_type::kOciLayerZstd,
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      media_type::kDockerLayerGzip,
      media_type::kDockerLayer,
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (auto k : kTypes) {
    if (t == k) return true;
  }
  return false;
}

Result<Manifest> parse_manifest(std::string_view body, std::string_view content_type) {
  auto obj = parse_object(body, "manifest");
  if (!obj) return std::unexpected(obj.error());
  json::value root(std::move(*obj));
  const json::object& o = root.as_object();
  std::int64_t schema = get_int(root, {"schemaVersion"}, 0);
  if (schema == 1) return bad("manifest: Docker image manifest schema 1 is not supported");
  if (schema != 2) return bad(fmt::format("manifest: unsupported schemaVersion {}", schema));

  Manifest m;
  m.media_type = std::string(get_string(root, {"mediaType"}));
  if (m.media_type.empty()) {
    std::string_view ct = content_type.substr(0, content_type.find(';'));
    while (!ct.empty() && ct.back() == ' ') ct.remove_suffix(1);
    if (is_index_type(ct) || is_manifest_type(ct)) {
      m.media_type = std::string(ct);
    } else if (o.contains("manifests")) {
      m.media_type = std::string(media_type::kOciIndex);
    } else {
      m.media_type = std::string(media_type::kOciManifest);
    }
  }
  if (is_index_type(m.media_type)) {
    m.is_index = true;
    const json::value* list = o.if_contains("manifests");
    if (!list || !list->is_array()) return bad("index: no \"manifests\" array");
    for (const auto& e : list->as_array()) {
      auto d = parse_descriptor(e, "index");
      if (!d) return std::unexpected(d.error());
      m.manifests.push_back(std::move(*d));
    }
    return m;
  }
  if (!is_manifest_type(m.media_type)) {
    return bad(fmt::format("manifest: unsupported media type \"{}\"", m.media_type));
  }
  const json::value* cfg = o.if_contains("config");
  if (!cfg) return bad("manifest: no config descriptor");
  auto c = parse_descriptor(*cfg, "manifest config");
  if (!c) return std::unexpected(c.error());
  m.config = std::move(*c);
  const json::value* layers = o.if_contains("layers");
  if (!layers || !layers->is_array()) return bad("manifest: no \"layers\" array");
  for (const auto& e : layers->as_array()) {
    auto d = parse_descriptor(e, "manifest layer");
    if (!d) return std::unexpected(d.error());
    if (!is_layer_media_type(d->media_type)) {
      return bad(fmt::format("manifest: layer {} has unsupported media type \"{}\"", d->digest,
                             d->media_type));
    }
    m.layers.push_back(std::move(*d));
  }
  return m;
}

Result<Descriptor> select_platform(const Manifest& index, const Platform& want) {
  if (!index.is_index) return bad("select platform: not an index");
  auto matches = [&](const Platform& p) {
    if (p.os != want.os || p.architecture != want.architecture) return false;
    // amd64 variants (v2, v3) are feature levels; any fits when none is asked for.
    return want.variant.empty() || p.variant == want.variant;
  };
  const Descriptor* found = nullptr;
  for (const auto& d : index.manifests) {
    if (!is_manifest_type(d.media_type) && !is_index_type(d.media_type) && !d.media_type.empty()) {
      continue;
    }
    if (d.platform && matches(*d.platform)) {
      // Prefer the entry without a variant, else the first one.
      if (!found || (!found->platform->variant.empty() && d.platform->variant.empty())) found = &d;
    }
  }
  if (found) return *found;
  if (index.manifests.size() == 1 && !index.manifests[0].platform) return index.manifests[0];
  std::string offered;
  for (const auto& d : index.manifests) {
    if (!offered.empty()) offered += ", ";
    offered += d.platform ? d.platform->to_string() : "unspecified";
  }
  return bad(fmt::format("no image for platform {} in the index (it has: {})", want.to_string(),
                         offered.empty() ? "nothing" : offered));
}

Result<ImageConfig> parse_image_config(std::string_view body) {
  auto obj = parse_object(body, "image config");
  if (!obj) return std::unexpected(obj.error());
  json::value root(std::move(*obj));
  ImageConfig c;
  c.platform.os = std::string(get_string(root, {"os"}));
  c.platform.architecture = std::string(get_string(root, {"architecture"}));
  c.platform.variant = std::string(get_string(root, {"variant"}));
  if (const json::value* cfg = find_path(root, {"config"}); cfg && cfg->is_object()) {
    const auto& co = cfg->as_object();
    c.entrypoint = string_array(co.if_contains("Entrypoint"));
    c.cmd = string_array(co.if_contains("Cmd"));
    c.env = string_array(co.if_contains("Env"));
    c.working_dir = std::string(get_string(*cfg, {"WorkingDir"}));
    c.user = std::string(get_string(*cfg, {"User"}));
    c.stop_signal = std::string(get_string(*cfg, {"StopSignal"}));
    if (auto* l = co.if_contains("Labels"); l && l->is_object()) {
      for (const auto& [k, v] : l->as_object()) {
        if (v.is_string()) c.labels[std::string(k)] = std::string(v.as_string());
      }
    }
    if (auto* p = co.if_contains("ExposedPorts"); p && p->is_object()) {
      for (const auto& [k, v] : p->as_object()) c.exposed_ports.emplace_back(k);
    }
  }
  const json::value* rootfs = find_path(root, {"rootfs"});
  if (!rootfs || !rootfs->is_object()) return bad("image config: no rootfs");
  if (get_string(*rootfs, {"type"}) != "layers") {
    return bad(fmt::format("image config: rootfs type \"{}\" is not \"layers\"",
                           get_string(*rootfs, {"type"})));
  }
  c.diff_ids = string_array(rootfs->as_object().if_contains("diff_ids"));
  for (const auto& d : c.diff_ids) {
    if (!is_sha256_digest(d)) return bad(fmt::format("image config: bad diff_id \"{}\"", d));
  }
  return c;
}

}  // namespace podwarp::images
