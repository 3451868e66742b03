// Unpacks one image layer (a tar, plain or gzip/zstd compressed) into a directory, safely.
//
// Every entry is created with *at() syscalls relative to a parent directory opened with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) from the destination, so no entry can write
// outside it: ".." components are rejected, absolute paths are taken relative to the
// destination, symlinks are created but never followed out of it (a parent that resolves
// outside fails with kUnsafeLayer), hardlink targets are resolved the same way, and device
// nodes are skipped with a warning. Only user.* and security.capability xattrs are applied
// (a layer must not set trusted.overlay.*).
//
// In overlay mode, OCI whiteouts become overlayfs ones: ".wh.<name>" -> a 0:0 character device
// <name> (needs CAP_MKNOD), ".wh..wh..opq" -> xattr trusted.overlay.opaque=y on its directory
// (needs CAP_SYS_ADMIN).
//
// Blocking CPU and disk work: call it from a worker thread, not from an event loop. Distinct
// calls are independent and may run concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "images/error.h"

namespace podwarp::images {

struct UnpackOptions {
  // Translate OCI whiteouts (image layers). False: extract ".wh.*" files as they are (used for
  // staging import archives).
  bool overlay_whiteouts = true;
  // Apply the entries' uid/gid (when running as root).
  bool preserve_owner = true;
  // Names the layer in messages ("layer sha256:...").
  std::string label = "layer";
};

struct UnpackResult {
  std::string diff_id;  // "sha256:..." of the uncompressed tar stream
  std::uint64_t entries = 0;
  std::vector<std::string> warnings;  // skipped device nodes, sockets, xattrs
};

// Unpacks `archive` into the existing directory `dest`. On error the directory holds a partial
// result: the caller unpacks into a temporary directory and removes it on failure.
Result<UnpackResult> unpack_layer(const std::filesystem::path& archive,
                                  const std::filesystem::path& dest, const UnpackOptions& options);

// Removes a directory tree without following symlinks or crossing into other mounts
// (no-op when it does not exist).
Result<void> remove_tree(const std::filesystem::path& path);

}  // namespace podwarp::images
