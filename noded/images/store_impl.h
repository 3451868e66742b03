// Internals of ImageStore shared by image_store.cpp, rootfs.cpp and import.cpp. Not a public
// header.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "images/image_store.h"

namespace boost::asio {
class thread_pool;
}

namespace podwarp::images {

struct ImageStore::Impl {
  std::filesystem::path root;
  std::filesystem::path dir;  // root/images
  std::filesystem::path blobs;
  std::filesystem::path layers;
  std::filesystem::path containers;
  std::filesystem::path tmp;
  std::filesystem::path empty;  // an empty lowerdir for images without layers
  std::filesystem::path index_path;
  std::filesystem::path lock_path;
  StoreOptions options;

  std::map<std::string, ImageRef> images;  // by name, as last loaded
  struct FileId {
    std::uint64_t ino = 0, size = 0;
    std::int64_t mtime_ns = 0;
    bool operator==(const FileId&) const = default;
  } index_id;

  std::shared_ptr<HttpTransport> transport;
  std::unique_ptr<boost::asio::thread_pool> pool;
  // Digests and diffIDs of pulls and imports in flight: prune() keeps them.
  std::multiset<std::string> pinned;
  std::atomic<unsigned> counter{0};

  ~Impl();

  std::filesystem::path blob_path(std::string_view digest) const;
  std::filesystem::path layer_path(std::string_view diff_id) const;
  bool has_blob(std::string_view digest) const;
  bool has_layer(std::string_view diff_id) const;
  std::filesystem::path tmp_path(std::string_view prefix);  // unique under tmp/

  Result<void> reload_if_changed();
  // Under the index file lock: reload, apply f to the map, write it back (atomically).
  Result<void> mutate(const std::function<Result<void>(std::map<std::string, ImageRef>&)>& f);

  Result<std::string> read_blob(std::string_view digest, std::uint64_t max_bytes) const;
  // Stores bytes under their digest (verified).
  Result<void> write_blob(std::string_view digest, std::string_view bytes);
  // Unpacks blob `layer_digest` into layers/<diff_id hex> unless present; verifies the diffID.
  // Blocking; thread-safe (touches only files and the atomic counter).
  Result<void> ensure_layer(const std::string& diff_id, const std::string& layer_digest);
  // Reads the stored manifest and config, checks every layer is unpacked, and returns the
  // record for `name` (not yet saved).
  Result<ImageRef> describe(const std::string& name, const std::string& manifest_digest,
                            const std::string& repo_digest) const;
  Result<void> record(const ImageRef& image);

  // Image names whose rootfs is prepared (containers/<id>/image.json).
  std::set<std::string> images_in_containers() const;
  Result<GcResult> prune_locked(std::map<std::string, ImageRef>& images, GcResult result);
};

// Pins strings in Impl::pinned for a scope.
class Pin {
 public:
  explicit Pin(ImageStore::Impl& impl) : impl_(impl) {}
  ~Pin() {
    for (const auto& s : held_) impl_.pinned.erase(impl_.pinned.find(s));
  }
  void add(const std::string& s) {
    impl_.pinned.insert(s);
    held_.push_back(s);
  }

 private:
  ImageStore::Impl& impl_;
  std::vector<std::string> held_;
};

// Reads a whole small file ("" when absent is an error of kind kNotFound).
Result<std::string> read_file(const std::filesystem::path& path, std::uint64_t max_bytes);
// Writes a file atomically (temporary + fsync + rename).
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data);

}  // namespace podwarp::images
