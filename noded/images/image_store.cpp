#include "images/image_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>

#include "images/digest.h"
#include "images/layer_unpack.h"
#include "images/store_impl.h"
#include "podwarp/json.h"
#include "podwarp/log.h"

namespace podwarp::images {

namespace fs = std::filesystem;
namespace asio = boost::asio;

namespace {

constexpr std::uint64_t kMaxManifestBytes = 4u << 20;
constexpr std::uint64_t kMaxConfigBytes = 16u << 20;
constexpr std::uint64_t kMaxIndexBytes = 256u << 20;
constexpr auto kStaleTmpAge = std::chrono::hours(1);

class FileLock {
 public:
  static Result<FileLock> acquire(const fs::path& path) {
    FileLock l;
    l.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l.fd_ < 0) return fail_errno("open " + path.string(), errno);
    while (::flock(l.fd_, LOCK_EX) != 0) {
      if (errno != EINTR) return fail_errno("flock " + path.string(), errno);
    }
    return l;
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  FileLock() = default;
  int fd_ = -1;
};

json::value to_json_value(const ImageRef& r) {
  json::object o;
  o["name"] = r.name;
  o["id"] = r.id;
  o["manifest"] = r.manifest_digest;
  o["repoDigest"] = r.repo_digest;
  json::array layers;
  for (std::size_t i = 0; i < r.diff_ids.size(); ++i) {
    json::object l;
    l["digest"] = i < r.layer_digests.size() ? r.layer_digests[i] : "";
    l["diffID"] = r.diff_ids[i];
    layers.push_back(std::move(l));
  }
  o["layers"] = std::move(layers);
  o["size"] = r.size;
  o["created"] = r.created_unix;
  return o;
}

std::optional<ImageRef> from_json_value(const json::value& v) {
  if (!v.is_object()) return std::nullopt;
  ImageRef r;
  r.name = std::string(get_string(v, {"name"}));
  r.id = std::string(get_string(v, {"id"}));
  r.manifest_digest = std::string(get_string(v, {"manifest"}));
  r.repo_digest = std::string(get_string(v, {"repoDigest"}));
  r.size = static_cast<std::uint64_t>(get_int(v, {"size"}));
  r.created_unix = get_int(v, {"created"});
  if (const auto* l = v.as_object().if_contains("layers"); l && l->is_array()) {
    for (const auto& e : l->as_array()) {
      r.layer_digests.emplace_back(get_string(e, {"digest"}));
      r.diff_ids.emplace_back(get_string(e, {"diffID"}));
    }
  }
  if (!parse_reference(r.name) || !is_sha256_digest(r.id)) return std::nullopt;
  return r;
}

Result<ImageStore::Impl::FileId> file_id(const fs::path& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return ImageStore::Impl::FileId{};
    return fail_errno("stat " + p.string(), errno);
  }
  return ImageStore::Impl::FileId{static_cast<std::uint64_t>(st.st_ino),
                                  static_cast<std::uint64_t>(st.st_size),
                                  st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec};
}

Result<std::map<std::string, ImageRef>> load_index(const fs::path& path) {
  std::map<std::string, ImageRef> out;
  auto text = read_file(path, kMaxIndexBytes);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return out;
    return std::unexpected(text.error());
  }
  auto v = parse_json(*text, 16);
  if (!v) return fail(ErrorKind::kBadContent, fmt::format("{}: {}", path.string(), v.error()));
  const json::value* list = find_path(*v, {"images"});
  if (!list || !list->is_array()) return out;
  for (const auto& e : list->as_array()) {
    if (auto r = from_json_value(e)) {
      out[r->name] = std::move(*r);
    } else {
      log::warn("image index {}: skipping a malformed entry", path.string());
    }
  }
  return out;
}

std::string hex_of(std::string_view digest) { return std::string(digest_hex(digest)); }

}  // namespace

Reference ImageRef::reference() const {
  auto r = parse_reference(name);
  return r ? *r : Reference{};
}

// ---- files ----

Result<std::string> read_file(const fs::path& path, std::uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return fail(ErrorKind::kNotFound, fmt::format("{}: not found", path.string()));
    return fail_errno("open " + path.string(), e);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return fail_errno("read " + path.string(), e);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      return fail(ErrorKind::kBadContent,
                  fmt::format("{}: larger than {} bytes", path.string(), max_bytes));
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<void> write_file_atomic(const fs::path& path, std::string_view data) {
  fs::path tmp = path;
  tmp += fmt::format(".tmp-{}", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail_errno("open " + tmp.string(), errno);
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail_errno("write " + tmp.string(), e);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail_errno("fsync " + tmp.string(), e);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return fail_errno("rename " + tmp.string() + " to " + path.string(), e);
  }
  return {};
}

// ---- Impl ----

ImageStore::Impl::~Impl() {
  if (pool) pool->join();
}

fs::path ImageStore::Impl::blob_path(std::string_view digest) const {
  return blobs / hex_of(digest);
}
fs::path ImageStore::Impl::layer_path(std::string_view diff_id) const {
  return layers / hex_of(diff_id);
}
bool ImageStore::Impl::has_blob(std::string_view digest) const {
  struct stat st;
  return is_sha256_digest(digest) && ::stat(blob_path(digest).c_str(), &st) == 0 &&
         S_ISREG(st.st_mode);
}
bool ImageStore::Impl::has_layer(std::string_view diff_id) const {
  struct stat st;
  return is_sha256_digest(diff_id) && ::stat(layer_path(diff_id).c_str(), &st) == 0 &&
         S_ISDIR(st.st_mode);
}
fs::path ImageStore::Impl::tmp_path(std::string_view prefix) {
  return tmp / fmt::format("{}-{}-{}", prefix, ::getpid(), counter++);
}

Result<void> ImageStore::Impl::reload_if_changed() {
  auto id = file_id(index_path);
  if (!id) return std::unexpected(id.error());
  if (*id == index_id) return {};
  auto loaded = load_index(index_path);
  if (!loaded) return std::unexpected(loaded.error());
  images = std::move(*loaded);
  index_id = *id;
  return {};
}

Result<void> ImageStore::Impl::mutate(
    const std::function<Result<void>(std::map<std::string, ImageRef>&)>& f) {
  auto lock = FileLock::acquire(lock_path);
  if (!lock) return std::unexpected(lock.error());
  index_id = {};
  if (auto r = reload_if_changed(); !r) return r;
  if (auto r = f(images); !r) return r;
  json::array list;
  for (const auto& [name, ref] : images) list.push_back(to_json_value(ref));
  json::object root;
  root["images"] = std::move(list);
  if (auto r = write_file_atomic(index_path, to_json(root)); !r) return r;
  auto id = file_id(index_path);
  if (id) index_id = *id;
  return {};
}

Result<std::string> ImageStore::Impl::read_blob(std::string_view digest,
                                                std::uint64_t max_bytes) const {
  if (!is_sha256_digest(digest)) {
    return fail(ErrorKind::kBadContent, fmt::format("bad digest \"{}\"", digest));
  }
  auto data = read_file(blob_path(digest), max_bytes);
  if (!data) {
    if (data.error().kind == ErrorKind::kNotFound) {
      return fail(ErrorKind::kNotFound, fmt::format("blob {} is not in the store", digest));
    }
    return data;
  }
  return data;
}

Result<void> ImageStore::Impl::write_blob(std::string_view digest, std::string_view bytes) {
  if (has_blob(digest)) return {};
  auto w = VerifyingWriter::create(blob_path(digest), std::string(digest), bytes.size());
  if (!w) return std::unexpected(w.error());
  if (auto r = w->write(bytes); !r) return r;
  return w->commit();
}

Result<void> ImageStore::Impl::ensure_layer(const std::string& diff_id,
                                            const std::string& layer_digest) {
  if (has_layer(diff_id)) return {};
  fs::path staging = tmp_path("layer-" + hex_of(diff_id).substr(0, 12));
  if (::mkdir(staging.c_str(), 0755) != 0) return fail_errno("mkdir " + staging.string(), errno);
  UnpackOptions opts;
  opts.label = "layer " + layer_digest;
  auto res = unpack_layer(blob_path(layer_digest), staging, opts);
  if (!res) {
    (void)remove_tree(staging);
    return std::unexpected(res.error());
  }
  if (res->diff_id != diff_id) {
    (void)remove_tree(staging);
    return fail(ErrorKind::kDigestMismatch,
                fmt::format("layer {}: diffID mismatch: the uncompressed content hashes to {}, "
                            "the image config says {}",
                            layer_digest, res->diff_id, diff_id));
  }
  // The layer root is the overlay lowerdir's root: keep it 0755 whatever the tar said.
  ::chmod(staging.c_str(), 0755);
  if (::rename(staging.c_str(), layer_path(diff_id).c_str()) != 0) {
    int e = errno;
    (void)remove_tree(staging);
    if (e == EEXIST || e == ENOTEMPTY) return {};  // a concurrent unpack finished first
    return fail_errno("rename " + staging.string() + " to " + layer_path(diff_id).string(), e);
  }
  log::info("images: unpacked layer {} ({} entries)", diff_id, res->entries);
  return {};
}

Result<ImageRef> ImageStore::Impl::describe(const std::string& name,
                                            const std::string& manifest_digest,
                                            const std::string& repo_digest) const {
  auto body = read_blob(manifest_digest, kMaxManifestBytes);
  if (!body) return std::unexpected(body.error());
  auto m = parse_manifest(*body);
  if (!m) return std::unexpected(m.error());
  if (m->is_index) {
    return fail(ErrorKind::kBadContent, fmt::format("{} is an index, not a manifest", manifest_digest));
  }
  auto cfg_body = read_blob(m->config.digest, kMaxConfigBytes);
  if (!cfg_body) return std::unexpected(cfg_body.error());
  auto cfg = parse_image_config(*cfg_body);
  if (!cfg) return std::unexpected(cfg.error());
  if (cfg->diff_ids.size() != m->layers.size()) {
    return fail(ErrorKind::kBadContent,
                fmt::format("image {}: the manifest has {} layers, the config {} diff_ids", name,
                            m->layers.size(), cfg->diff_ids.size()));
  }
  ImageRef r;
  r.name = name;
  r.id = m->config.digest;
  r.manifest_digest = manifest_digest;
  r.repo_digest = repo_digest.empty() ? manifest_digest : repo_digest;
  r.size = body->size() + m->config.size;
  for (std::size_t i = 0; i < m->layers.size(); ++i) {
    r.layer_digests.push_back(m->layers[i].digest);
    r.diff_ids.push_back(cfg->diff_ids[i]);
    r.size += m->layers[i].size;
    if (!has_layer(cfg->diff_ids[i])) {
      return fail(ErrorKind::kNotFound,
                  fmt::format("image {}: layer {} is not unpacked", name, cfg->diff_ids[i]));
    }
  }
  r.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return r;
}

Result<void> ImageStore::Impl::record(const ImageRef& image) {
  return mutate([&](std::map<std::string, ImageRef>& m) -> Result<void> {
    m[image.name] = image;
    return {};
  });
}

std::set<std::string> ImageStore::Impl::images_in_containers() const {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(containers, ec)) {
    auto text = read_file(e.path() / "image.json", 1u << 20);
    if (!text) continue;
    auto v = parse_json(*text);
    if (!v) continue;
    out.insert(std::string(get_string(*v, {"name"})));
    out.insert(std::string(get_string(*v, {"id"})));
  }
  return out;
}

Result<GcResult> ImageStore::Impl::prune_locked(std::map<std::string, ImageRef>& imgs,
                                                GcResult result) {
  std::set<std::string> keep_blobs, keep_layers;
  for (const auto& [name, r] : imgs) {
    keep_blobs.insert(hex_of(r.manifest_digest));
    keep_blobs.insert(hex_of(r.id));
    for (const auto& d : r.layer_digests) keep_blobs.insert(hex_of(d));
    for (const auto& d : r.diff_ids) keep_layers.insert(hex_of(d));
  }
  for (const auto& p : pinned) {
    keep_blobs.insert(hex_of(p));
    keep_layers.insert(hex_of(p));
  }
  // Layers of prepared rootfs stay even when their image record went away.
  std::error_code ec;
  for (const auto& c : fs::directory_iterator(containers, ec)) {
    auto text = read_file(c.path() / "image.json", 1u << 20);
    if (!text) continue;
    auto v = parse_json(*text);
    if (!v) continue;
    if (auto* l = find_path(*v, {"diffIDs"}); l && l->is_array()) {
      for (const auto& d : l->as_array()) {
        if (d.is_string()) keep_layers.insert(hex_of(d.as_string()));
      }
    }
  }
  for (const auto& e : fs::directory_iterator(blobs, ec)) {
    std::string n = e.path().filename().string();
    if (keep_blobs.count(n)) continue;
    if (n.find(".tmp-") != std::string::npos) {
      auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec);
      if (ec || age < kStaleTmpAge) continue;
    }
    std::uint64_t size = e.file_size(ec);
    if (::unlink(e.path().c_str()) == 0) {
      ++result.removed_blobs;
      result.freed_bytes += ec ? 0 : size;
    }
  }
  for (const auto& e : fs::directory_iterator(layers, ec)) {
    std::string n = e.path().filename().string();
    if (keep_layers.count(n)) continue;
    if (auto r = remove_tree(e.path()); r) ++result.removed_layers;
  }
  for (const auto& e : fs::directory_iterator(tmp, ec)) {
    auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec);
    if (!ec && age > kStaleTmpAge) (void)remove_tree(e.path());
  }
  return result;
}

// ---- ImageStore ----

ImageStore::ImageStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ImageStore::~ImageStore() = default;
const fs::path& ImageStore::dir() const { return impl_->dir; }

Result<std::unique_ptr<ImageStore>> ImageStore::open(fs::path root, StoreOptions options) {
  std::error_code ec;
  root = fs::absolute(root, ec).lexically_normal();
  if (ec) return fail(ErrorKind::kIo, fmt::format("root dir {}: {}", root.string(), ec.message()));
  if (root.string().find_first_of(",:\\") != std::string::npos) {
    return fail(ErrorKind::kIo, fmt::format("root dir {}: must not contain ',', ':' or '\\' "
                                            "(overlay mount options)",
                                            root.string()));
  }
  auto impl = std::make_unique<Impl>();
  impl->root = root;
  impl->dir = root / "images";
  impl->blobs = impl->dir / "blobs" / "sha256";
  impl->layers = impl->dir / "layers";
  impl->containers = impl->dir / "containers";
  impl->tmp = impl->dir / "tmp";
  impl->empty = impl->dir / "empty";
  impl->index_path = impl->dir / "index.json";
  impl->lock_path = impl->dir / "index.lock";
  impl->options = std::move(options);
  for (const auto& d : {impl->blobs, impl->layers, impl->containers, impl->tmp, impl->empty}) {
    fs::create_directories(d, ec);
    if (ec) return fail(ErrorKind::kIo, fmt::format("mkdir {}: {}", d.string(), ec.message()));
  }
  ::chmod(impl->dir.c_str(), 0700);
  impl->transport = impl->options.transport_override;
  if (impl->options.unpack_threads > 0) {
    impl->pool = std::make_unique<asio::thread_pool>(impl->options.unpack_threads);
  }
  if (auto r = impl->reload_if_changed(); !r) return std::unexpected(r.error());
  return std::unique_ptr<ImageStore>(new ImageStore(std::move(impl)));
}

std::optional<ImageRef> ImageStore::find(std::string_view key) {
  if (auto r = impl_->reload_if_changed(); !r) {
    log::warn("images: {}", r.error().message);
  }
  const auto& images = impl_->images;
  if (auto ref = parse_reference(key)) {
    if (auto it = images.find(ref->string()); it != images.end()) return it->second;
    // A digest reference matches any stored name of that repository pulled to that digest.
    if (!ref->digest.empty()) {
      for (const auto& [name, r] : images) {
        if (r.reference().repository() == ref->repository() &&
            (r.repo_digest == ref->digest || r.manifest_digest == ref->digest)) {
          return r;
        }
      }
    }
  }
  std::string_view hex = key.starts_with("sha256:") ? key.substr(7) : key;
  if (hex.size() >= 12 && hex.size() <= 64 &&
      hex.find_first_not_of("0123456789abcdef") == std::string_view::npos) {
    const ImageRef* found = nullptr;
    for (const auto& [name, r] : images) {
      if (digest_hex(r.id).starts_with(hex)) {
        if (found && found->id != r.id) return std::nullopt;  // ambiguous prefix
        if (!found) found = &r;
      }
    }
    if (found) return *found;
  }
  return std::nullopt;
}

std::vector<ImageRef> ImageStore::list() {
  if (auto r = impl_->reload_if_changed(); !r) log::warn("images: {}", r.error().message);
  std::vector<ImageRef> out;
  for (const auto& [name, r] : impl_->images) out.push_back(r);
  return out;
}

Result<ImageConfig> ImageStore::image_config(const ImageRef& image) {
  auto body = impl_->read_blob(image.id, kMaxConfigBytes);
  if (!body) return std::unexpected(body.error());
  if (sha256_digest(*body) != image.id) {
    return fail(ErrorKind::kDigestMismatch,
                fmt::format("image {}: stored config {} no longer matches its digest", image.name,
                            image.id));
  }
  return parse_image_config(*body);
}

Result<ImageConfig> ImageStore::image_config(std::string_view reference_or_id) {
  auto image = find(reference_or_id);
  if (!image) {
    return fail(ErrorKind::kNotFound, fmt::format("image \"{}\" not found", reference_or_id));
  }
  return image_config(*image);
}

asio::awaitable<Result<ImageRef>> ImageStore::pull(std::string reference, PullOptions options) {
  auto ref = parse_reference(reference);
  if (!ref) co_return std::unexpected(ref.error());
  Impl& s = *impl_;
  if (!s.transport) {
    auto ex = co_await asio::this_coro::executor;
    s.transport = make_http_transport(ex, s.options.transport);
  }
  std::shared_ptr<HttpTransport> transport = s.transport;  // alive for this pull
  RegistryClient client(*transport, options.registry);
  const std::string name = ref->string();
  log::info("images: pulling {}", name);

  const std::string wanted = ref->manifest_reference();
  auto top = co_await client.get_manifest(*ref, wanted);
  if (!top) co_return std::unexpected(top.error());
  const std::string repo_digest = top->digest;
  FetchedManifest fetched = std::move(*top);
  Pin pin(s);
  for (int depth = 0;; ++depth) {
    auto m = parse_manifest(fetched.body, fetched.content_type);
    if (!m) {
      Error e = m.error();
      e.message = fmt::format("{}: {}", name, e.message);
      co_return std::unexpected(std::move(e));
    }
    if (!m->is_index) break;
    if (depth >= 2) co_return fail(ErrorKind::kBadContent, name + ": indexes nested too deep");
    auto chosen = select_platform(*m, options.platform);
    if (!chosen) {
      co_return fail(ErrorKind::kBadContent, fmt::format("{}: {}", name, chosen.error().message));
    }
    auto next = co_await client.get_manifest(*ref, chosen->digest);
    if (!next) co_return std::unexpected(next.error());
    fetched = std::move(*next);
  }
  auto manifest = parse_manifest(fetched.body, fetched.content_type);
  pin.add(fetched.digest);
  if (auto r = s.write_blob(fetched.digest, fetched.body); !r) co_return std::unexpected(r.error());

  pin.add(manifest->config.digest);
  if (!s.has_blob(manifest->config.digest)) {
    auto cfg = co_await client.get_blob_bytes(*ref, manifest->config);
    if (!cfg) co_return std::unexpected(cfg.error());
    if (auto r = s.write_blob(manifest->config.digest, *cfg); !r) {
      co_return std::unexpected(r.error());
    }
  }
  auto cfg_body = s.read_blob(manifest->config.digest, kMaxConfigBytes);
  if (!cfg_body) co_return std::unexpected(cfg_body.error());
  auto cfg = parse_image_config(*cfg_body);
  if (!cfg) co_return std::unexpected(cfg.error());
  if (!cfg->platform.os.empty() && (cfg->platform.os != options.platform.os ||
                                    cfg->platform.architecture != options.platform.architecture)) {
    co_return fail(ErrorKind::kBadContent,
                   fmt::format("{}: image is for {}, this node is {}", name,
                               cfg->platform.to_string(), options.platform.to_string()));
  }
  if (cfg->diff_ids.size() != manifest->layers.size()) {
    co_return fail(ErrorKind::kBadContent,
                   fmt::format("{}: the manifest has {} layers, the config {} diff_ids", name,
                               manifest->layers.size(), cfg->diff_ids.size()));
  }
  for (std::size_t i = 0; i < manifest->layers.size(); ++i) {
    const Descriptor& layer = manifest->layers[i];
    const std::string diff_id = cfg->diff_ids[i];
    pin.add(layer.digest);
    pin.add(diff_id);
    if (s.has_layer(diff_id)) continue;
    if (!s.has_blob(layer.digest)) {
      const fs::path dest = s.blob_path(layer.digest);
      auto got = co_await client.get_blob(*ref, layer, dest);
      if (!got) co_return std::unexpected(got.error());
    }
    Result<void> unpacked;
    if (s.pool) {
      const std::string digest = layer.digest;
      // A named lambda: g++ 12 destroys a lambda temporary's captures twice when it sits in a
      // co_await expression.
      auto task = [&s, diff_id, digest]() -> asio::awaitable<Result<void>> {
        co_return s.ensure_layer(diff_id, digest);
      };
      unpacked = co_await asio::co_spawn(s.pool->get_executor(), task, asio::use_awaitable);
    } else {
      unpacked = s.ensure_layer(diff_id, layer.digest);
    }
    if (!unpacked) co_return std::unexpected(unpacked.error());
  }
  auto image = s.describe(name, fetched.digest, repo_digest);
  if (!image) co_return std::unexpected(image.error());
  if (auto r = s.record(*image); !r) co_return std::unexpected(r.error());
  log::info("images: pulled {} ({})", name, image->id);
  co_return *image;
}

asio::awaitable<Result<ImageRef>> ImageStore::ensure_image(std::string reference,
                                                           std::optional<PullPolicy> policy,
                                                           PullOptions options) {
  auto ref = parse_reference(reference);
  if (!ref) co_return std::unexpected(ref.error());
  auto present = find(reference);
  PullPolicy p = policy.value_or(default_pull_policy(*ref));
  switch (decide_pull(p, present.has_value())) {
    case PullAction::kUseLocal:
      co_return *present;
    case PullAction::kFailNever:
      co_return fail(ErrorKind::kNeverPull,
                     fmt::format("Container image \"{}\" is not present with pull policy of Never",
                                 reference));
    case PullAction::kPull:
      break;
  }
  co_return co_await pull(std::move(reference), std::move(options));
}

Result<std::vector<std::string>> ImageStore::remove(std::string_view key) {
  Impl& s = *impl_;
  auto target = find(key);
  if (!target) return fail(ErrorKind::kNotFound, fmt::format("image \"{}\" not found", key));
  const bool by_name = parse_reference(key) && target->name == parse_reference(key)->string();
  std::vector<std::string> removed;
  auto used = s.images_in_containers();
  auto r = s.mutate([&](std::map<std::string, ImageRef>& imgs) -> Result<void> {
    for (auto it = imgs.begin(); it != imgs.end();) {
      bool match = by_name ? it->first == target->name : it->second.id == target->id;
      if (match && used.count(it->first)) {
        return fail(ErrorKind::kInUse,
                    fmt::format("image {} is in use by a container rootfs", it->first));
      }
      if (match) {
        removed.push_back(it->first);
        it = imgs.erase(it);
      } else {
        ++it;
      }
    }
    auto pr = s.prune_locked(imgs, {});
    if (!pr) return std::unexpected(pr.error());
    return {};
  });
  if (!r) return std::unexpected(r.error());
  return removed;
}

Result<GcResult> ImageStore::gc(const std::set<std::string>& in_use) {
  Impl& s = *impl_;
  std::set<std::string> keep;  // names and ids
  for (const auto& k : in_use) {
    if (auto r = find(k)) {
      if (auto ref = parse_reference(k); ref && r->name == ref->string()) {
        keep.insert(r->name);
      } else {
        keep.insert(r->id);
      }
    }
  }
  auto used = s.images_in_containers();
  keep.insert(used.begin(), used.end());
  GcResult result;
  auto r = s.mutate([&](std::map<std::string, ImageRef>& imgs) -> Result<void> {
    for (auto it = imgs.begin(); it != imgs.end();) {
      if (keep.count(it->first) || keep.count(it->second.id)) {
        ++it;
        continue;
      }
      result.removed_images.push_back(it->first);
      it = imgs.erase(it);
    }
    auto pr = s.prune_locked(imgs, std::move(result));
    if (!pr) return std::unexpected(pr.error());
    result = std::move(*pr);
    return {};
  });
  if (!r) return std::unexpected(r.error());
  return result;
}

Result<GcResult> ImageStore::prune() { return gc([&] {
  std::set<std::string> all;
  for (const auto& r : list()) all.insert(r.name);
  return all;
}()); }

}  // namespace podwarp::images
