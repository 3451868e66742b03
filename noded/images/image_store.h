// The node's image store: pulls images from OCI registries (or imports archives), keeps their
// content addressed on disk, unpacks each layer once, and lends container root filesystems as
// overlayfs mounts. This is the interface the pod runtime uses.
//
// On-disk layout under <root>/images (root is noded's --root-dir):
//   blobs/sha256/<hex>        manifests, configs and compressed layers, verified by digest
//   layers/<diffid-hex>/      one unpacked layer (overlay lowerdir), shared by every image
//                             that has it; whiteouts in overlayfs form
//   index.json                normalized reference -> manifest, config (image id), layers
//   containers/<id>/          upper/ work/ rootfs/ (the overlay mount) and image.json
//   tmp/                      downloads and unpacks in progress (renamed into place when done)
// Blobs and layers are written to tmp/ (or a temporary name) and renamed into place only after
// their digest (and a layer's diffID) is verified, so what is in place is always complete.
//
// Threading: an ImageStore is used from one thread, noded's event loop (an io_context run by
// one thread). Coroutine calls may interleave on that thread: concurrent pulls are fine (content
// in flight is pinned against gc). Layer unpacking (blocking CPU and disk work) runs on a small
// internal thread pool, so pull() does not block the loop while a layer unpacks; the other calls
// are short filesystem operations done inline. The index is re-read when another process (the
// `podwarp image` CLI) changed it and is written under a file lock, so the CLI and noded can
// share a root.
//
// Nothing throws; every failure is an Error whose message names the reference, digest, syscall
// and path involved.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "images/error.h"
#include "images/http_transport.h"
#include "images/manifest.h"
#include "images/pull_policy.h"
#include "images/reference.h"
#include "images/registry_client.h"

namespace podwarp::images {

// One stored image, as the runtime and `podwarp image ls` see it.
struct ImageRef {
  std::string name;             // normalized reference: "docker.io/library/busybox:latest"
  std::string id;               // config digest "sha256:..." (the IMAGE ID)
  std::string manifest_digest;  // the platform manifest
  std::string repo_digest;      // what the name resolved to in the registry (index or manifest)
  std::vector<std::string> layer_digests;  // compressed blobs, base first
  std::vector<std::string> diff_ids;       // uncompressed layers, base first
  std::uint64_t size = 0;                  // manifest + config + compressed layers, bytes
  std::int64_t created_unix = 0;           // when it was stored

  Reference reference() const;  // parse of `name` (always valid for a stored image)
};

struct PullOptions {
  RegistryOptions registry;  // insecure registries and credentials
  Platform platform;         // linux/amd64 by default
};

struct StoreOptions {
  TransportOptions transport;
  // Threads that unpack layers during pull(); 0 unpacks inline on the caller's thread.
  std::size_t unpack_threads = 1;
  // Where a test can plug a fake HTTP layer; null: the Beast transport on the pull's executor.
  std::shared_ptr<HttpTransport> transport_override;
};

struct GcResult {
  std::vector<std::string> removed_images;  // names
  std::size_t removed_blobs = 0;
  std::size_t removed_layers = 0;
  std::uint64_t freed_bytes = 0;  // blob bytes
};

class ImageStore {
 public:
  // Opens (creating when needed) the store under root/images. Fails when root cannot be
  // created or its path holds ',' ':' or '\' (they would break overlay mount options).
  static Result<std::unique_ptr<ImageStore>> open(std::filesystem::path root,
                                                  StoreOptions options = {});
  ~ImageStore();

  const std::filesystem::path& dir() const;  // root/images

  // Resolves `reference` in its registry, downloads what is missing (every blob verified while
  // streaming), unpacks missing layers (diffIDs verified) and records the name. Runs on the
  // caller's executor; awaiting it never blocks the loop on network I/O or unpacking.
  // Errors: kInvalidReference, kNotFound, kUnauthorized, kDigestMismatch, kBadContent (no
  // linux/amd64 image, bad manifest), kUnsafeLayer, kNetwork, kRegistry, kIo.
  boost::asio::awaitable<Result<ImageRef>> pull(std::string reference, PullOptions options = {});

  // The kubelet's "EnsureImageExists": applies the pull policy (nullopt: the API default for
  // the reference) and pulls when it says so. Never + absent fails with kind kNeverPull.
  boost::asio::awaitable<Result<ImageRef>> ensure_image(std::string reference,
                                                        std::optional<PullPolicy> policy,
                                                        PullOptions options = {});

  // Imports an OCI image layout archive (tar of oci-layout, index.json, blobs/) or a
  // docker-archive (`docker save`: manifest.json, <config>.json, layer tars), plain or gzip.
  // `name` names images the archive does not name fully (OCI ref.name annotations are often
  // only a tag): "busybox" or "127.0.0.1:5000/busybox:1". Blocking (unpacks inline).
  Result<std::vector<ImageRef>> import_archive(const std::filesystem::path& archive,
                                               std::string name = {});

  // By reference (normalized as parse_reference does), by image id ("sha256:<hex>", "<hex>" or
  // a unique hex prefix of at least 12 digits), or by repo digest reference.
  std::optional<ImageRef> find(std::string_view reference_or_id);
  std::vector<ImageRef> list();  // sorted by name

  // The runtime's view of the image config (entrypoint, cmd, env, workingDir, user, ...).
  Result<ImageConfig> image_config(const ImageRef& image);
  // The same by reference or id (kNotFound when the image is not stored).
  Result<ImageConfig> image_config(std::string_view reference_or_id);

  // Mounts overlayfs for a container at containers/<id>/rootfs: lowerdirs are the image's layer
  // dirs (top layer first), upper/work are new per-container dirs. Idempotent: an existing
  // mount for the id is returned as is. container_id: [A-Za-z0-9_.-]{1,128}, not "." or "..".
  // Needs CAP_SYS_ADMIN. Errors name the mount call ("mount overlay on <path>: EINVAL").
  Result<std::filesystem::path> prepare_rootfs(std::string_view container_id,
                                               const ImageRef& image);
  // Unmounts (lazily when busy) and deletes the container's upper/work/rootfs. No-op when
  // nothing is there.
  Result<void> release_rootfs(std::string_view container_id);
  // Container ids with a prepared rootfs directory (for the runtime to reconcile at start).
  std::vector<std::string> prepared_containers();

  // Removes the names matching reference_or_id (a reference removes that name; an id removes
  // every name of the image), then prunes content no image uses. kInUse when a prepared rootfs
  // uses the image; kNotFound when nothing matches.
  Result<std::vector<std::string>> remove(std::string_view reference_or_id);

  // Image GC: removes every image neither named (reference or id) in `in_use` nor used by a
  // prepared rootfs, then every blob and layer no remaining image uses, and stale tmp entries.
  Result<GcResult> gc(const std::set<std::string>& in_use);
  // Only the second half: unreferenced blobs, layers and stale tmp entries.
  Result<GcResult> prune();

  struct Impl;

 private:
  explicit ImageStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::images
