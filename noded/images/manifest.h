// OCI image index / manifest / config and their Docker schema2 equivalents (manifest list,
// image manifest, container config), parsed from JSON into plain structs. Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "images/error.h"

namespace podwarp::images {

namespace media_type {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
// The Accept header of a manifest GET: every manifest type this client understands.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media_type

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;

  std::string to_string() const;
};

struct Descriptor {
  std::string media_type;
  std::string digest;  // validated "sha256:<hex>"
  std::uint64_t size = 0;
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  bool is_index = false;
  std::string media_type;  // resolved: from the JSON, else the Content-Type, else by shape
  std::vector<Descriptor> manifests;  // index only
  Descriptor config;                  // manifest only
  std::vector<Descriptor> layers;     // manifest only, base layer first
};

// Parses an index or manifest. content_type is the HTTP Content-Type (may be empty). Rejects
// schema 1, unknown media types, non-sha256 digests and layers of unsupported media types.
Result<Manifest> parse_manifest(std::string_view body, std::string_view content_type = {});

// The entry of an index for `want` (variant ignored for amd64). Entries without a platform are
// taken only when they are the index's single entry. Error kind kBadContent lists what the index
// offers.
Result<Descriptor> select_platform(const Manifest& index, const Platform& want = {});

// What the runtime needs from an image config (OCI image-spec config.json).
struct ImageConfig {
  Platform platform;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::string working_dir;
  std::string user;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> diff_ids;       // base layer first
};

Result<ImageConfig> parse_image_config(std::string_view body);

// True for the layer media types this store unpacks.
bool is_layer_media_type(std::string_view media_type);

}  // namespace podwarp::images
