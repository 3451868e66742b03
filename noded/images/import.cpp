// `podwarp image import`: OCI image layout archives and docker-archive (docker save) tars.
//
// The archive is hostile input like any layer: it is staged with the same safe unpacker (no
// whiteout translation, no owners, no device nodes), and every staged file is opened with
// openat2(RESOLVE_BENEATH) so a symlink in the archive cannot make us read outside the staging
// dir. Blobs are copied into the store through VerifyingWriter (digest checked).
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "images/digest.h"
#include "images/image_store.h"
#include "images/layer_unpack.h"
#include "images/store_impl.h"
#include "podwarp/json.h"
#include "podwarp/log.h"

namespace podwarp::images {

namespace fs = std::filesystem;

namespace {

constexpr std::uint64_t kMaxJson = 16u << 20;

class Staged {
 public:
  Staged(fs::path dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  ~Staged() {
    if (fd_ >= 0) ::close(fd_);
    (void)remove_tree(dir_);
  }
  Staged(const Staged&) = delete;

  Result<int> open(const std::string& rel) const {
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, fd_, rel.c_str(), &how, sizeof how);
    if (fd < 0) {
      int e = errno;
      if (e == ENOENT) return fail(ErrorKind::kBadContent, fmt::format("archive has no \"{}\"", rel));
      if (e == EXDEV || e == ELOOP) {
        return fail(ErrorKind::kUnsafeLayer,
                    fmt::format("archive entry \"{}\" resolves outside the archive", rel));
      }
      return fail_errno(fmt::format("openat2 archive entry \"{}\"", rel), e);
    }
    return static_cast<int>(fd);
  }

  bool exists(const std::string& rel) const {
    auto fd = open(rel);
    if (!fd) return false;
    ::close(*fd);
    return true;
  }

  // Calls f with successive chunks of a staged file.
  template <class F>
  Result<void> each_chunk(const std::string& rel, F&& f) const {
    auto fd = open(rel);
    if (!fd) return std::unexpected(fd.error());
    std::vector<char> buf(256 * 1024);
    for (;;) {
      ssize_t n = ::read(*fd, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(*fd);
        return fail_errno("read archive entry " + rel, e);
      }
      if (n == 0) break;
      if (auto r = f(std::string_view(buf.data(), static_cast<std::size_t>(n))); !r) {
        ::close(*fd);
        return r;
      }
    }
    ::close(*fd);
    return {};
  }

  Result<std::string> read(const std::string& rel, std::uint64_t max) const {
    std::string out;
    auto r = each_chunk(rel, [&](std::string_view c) -> Result<void> {
      if (out.size() + c.size() > max) {
        return fail(ErrorKind::kBadContent, fmt::format("archive entry {} is too large", rel));
      }
      out.append(c);
      return {};
    });
    if (!r) return std::unexpected(r.error());
    return out;
  }

 private:
  fs::path dir_;
  int fd_;
};

// Copies a staged file into the blob store, verified against `digest`.
Result<void> copy_blob(ImageStore::Impl& s, const Staged& st, const std::string& rel,
                       const std::string& digest, std::optional<std::uint64_t> size) {
  if (s.has_blob(digest)) return {};
  auto w = VerifyingWriter::create(s.blob_path(digest), digest, size);
  if (!w) return std::unexpected(w.error());
  if (auto r = st.each_chunk(rel, [&](std::string_view c) { return w->write(c); }); !r) return r;
  return w->commit();
}

std::string oci_blob_path(std::string_view digest) {
  return "blobs/sha256/" + std::string(digest_hex(digest));
}

// Imports one platform manifest whose blobs are in the staged OCI layout.
Result<ImageRef> import_oci_manifest(ImageStore::Impl& s, const Staged& st, Pin& pin,
                                     const std::string& name, Descriptor desc) {
  std::string repo_digest = desc.digest;
  for (int depth = 0;; ++depth) {
    auto body = st.read(oci_blob_path(desc.digest), kMaxJson);
    if (!body) return std::unexpected(body.error());
    if (sha256_digest(*body) != desc.digest) {
      return fail(ErrorKind::kDigestMismatch,
                  fmt::format("archive blob {}: digest mismatch", desc.digest));
    }
    auto m = parse_manifest(*body, desc.media_type);
    if (!m) return std::unexpected(m.error());
    if (m->is_index) {
      if (depth >= 2) return fail(ErrorKind::kBadContent, "archive: indexes nested too deep");
      auto chosen = select_platform(*m);
      if (!chosen) return std::unexpected(chosen.error());
      desc = *chosen;
      continue;
    }
    pin.add(desc.digest);
    if (auto r = s.write_blob(desc.digest, *body); !r) return std::unexpected(r.error());
    pin.add(m->config.digest);
    if (auto r = copy_blob(s, st, oci_blob_path(m->config.digest), m->config.digest,
                           m->config.size);
        !r) {
      return std::unexpected(r.error());
    }
    auto cfg_body = s.read_blob(m->config.digest, kMaxJson);
    if (!cfg_body) return std::unexpected(cfg_body.error());
    auto cfg = parse_image_config(*cfg_body);
    if (!cfg) return std::unexpected(cfg.error());
    if (cfg->diff_ids.size() != m->layers.size()) {
      return fail(ErrorKind::kBadContent,
                  fmt::format("{}: the manifest has {} layers, the config {} diff_ids", name,
                              m->layers.size(), cfg->diff_ids.size()));
    }
    for (std::size_t i = 0; i < m->layers.size(); ++i) {
      pin.add(m->layers[i].digest);
      pin.add(cfg->diff_ids[i]);
      if (s.has_layer(cfg->diff_ids[i])) continue;
      if (auto r = copy_blob(s, st, oci_blob_path(m->layers[i].digest), m->layers[i].digest,
                             m->layers[i].size);
          !r) {
        return std::unexpected(r.error());
      }
      if (auto r = s.ensure_layer(cfg->diff_ids[i], m->layers[i].digest); !r) {
        return std::unexpected(r.error());
      }
    }
    return s.describe(name, desc.digest, repo_digest);
  }
}

// The name of an OCI index entry: io.containerd.image.name, a full reference in
// org.opencontainers.image.ref.name, or `hint` (with the ref.name as its tag when the hint has
// none).
Result<std::string> oci_entry_name(const Descriptor& d, const std::string& hint) {
  auto ann = [&](const char* k) -> std::string {
    auto it = d.annotations.find(k);
    return it == d.annotations.end() ? std::string() : it->second;
  };
  std::string full = ann("io.containerd.image.name");
  std::string ref_name = ann("org.opencontainers.image.ref.name");
  if (full.empty() && ref_name.find('/') != std::string::npos) full = ref_name;
  if (!hint.empty()) {
    auto h = parse_reference(hint);
    if (!h) return std::unexpected(h.error());
    if (h->tag.empty() && h->digest.empty() && !ref_name.empty() &&
        ref_name.find('/') == std::string::npos) {
      auto r = parse_reference(hint + ":" + ref_name);
      if (!r) return std::unexpected(r.error());
      return r->string();
    }
    return h->string();
  }
  if (!full.empty()) {
    auto r = parse_reference(full);
    if (!r) return std::unexpected(r.error());
    return r->string();
  }
  return fail(ErrorKind::kInvalidReference,
              fmt::format("archive image {} is named only \"{}\": pass a name (--name REPO)",
                          d.digest, ref_name));
}

std::string layer_media_type(std::string_view head) {
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return std::string(media_type::kOciLayerGzip);
  }
  if (head.size() >= 4 && static_cast<unsigned char>(head[0]) == 0x28 &&
      static_cast<unsigned char>(head[1]) == 0xb5 && static_cast<unsigned char>(head[2]) == 0x2f &&
      static_cast<unsigned char>(head[3]) == 0xfd) {
    return std::string(media_type::kOciLayerZstd);
  }
  return std::string(media_type::kOciLayer);
}

Result<std::vector<ImageRef>> import_docker(ImageStore::Impl& s, const Staged& st, Pin& pin,
                                            const std::string& hint) {
  auto text = st.read("manifest.json", kMaxJson);
  if (!text) return std::unexpected(text.error());
  auto v = parse_json(*text, 16);
  if (!v || !v->is_array()) {
    return fail(ErrorKind::kBadContent, "docker archive: manifest.json is not a JSON array");
  }
  std::vector<ImageRef> out;
  for (const auto& entry : v->as_array()) {
    std::string config_path(get_string(entry, {"Config"}));
    if (config_path.empty()) return fail(ErrorKind::kBadContent, "docker archive: entry without Config");
    auto cfg_body = st.read(config_path, kMaxJson);
    if (!cfg_body) return std::unexpected(cfg_body.error());
    auto cfg = parse_image_config(*cfg_body);
    if (!cfg) return std::unexpected(cfg.error());
    const std::string config_digest = sha256_digest(*cfg_body);
    pin.add(config_digest);
    if (auto r = s.write_blob(config_digest, *cfg_body); !r) return std::unexpected(r.error());

    const json::value* layers = entry.as_object().if_contains("Layers");
    if (!layers || !layers->is_array() || layers->as_array().size() != cfg->diff_ids.size()) {
      return fail(ErrorKind::kBadContent,
                  "docker archive: Layers does not match the config's diff_ids");
    }
    json::array layer_descs;
    std::vector<std::string> layer_digests;
    for (std::size_t i = 0; i < cfg->diff_ids.size(); ++i) {
      const auto& lp = layers->as_array()[i];
      if (!lp.is_string()) return fail(ErrorKind::kBadContent, "docker archive: bad Layers entry");
      std::string rel(lp.as_string());
      Sha256 h;
      std::uint64_t size = 0;
      std::string head;
      auto r = st.each_chunk(rel, [&](std::string_view c) -> Result<void> {
        if (head.size() < 4) head.append(c.substr(0, 4 - head.size()));
        h.update(c);
        size += c.size();
        return {};
      });
      if (!r) return std::unexpected(r.error());
      std::string digest = h.finish();
      pin.add(digest);
      pin.add(cfg->diff_ids[i]);
      if (auto c = copy_blob(s, st, rel, digest, size); !c) return std::unexpected(c.error());
      if (auto u = s.ensure_layer(cfg->diff_ids[i], digest); !u) return std::unexpected(u.error());
      json::object d;
      d["mediaType"] = layer_media_type(head);
      d["digest"] = digest;
      d["size"] = size;
      layer_descs.push_back(std::move(d));
      layer_digests.push_back(digest);
    }
    json::object manifest;
    manifest["schemaVersion"] = 2;
    manifest["mediaType"] = media_type::kOciManifest;
    json::object cd;
    cd["mediaType"] = media_type::kOciConfig;
    cd["digest"] = config_digest;
    cd["size"] = cfg_body->size();
    manifest["config"] = std::move(cd);
    manifest["layers"] = std::move(layer_descs);
    const std::string mbody = to_json(manifest);
    const std::string mdigest = sha256_digest(mbody);
    pin.add(mdigest);
    if (auto r = s.write_blob(mdigest, mbody); !r) return std::unexpected(r.error());

    std::vector<std::string> names;
    if (const auto* tags = entry.as_object().if_contains("RepoTags"); tags && tags->is_array()) {
      for (const auto& t : tags->as_array()) {
        if (!t.is_string()) continue;
        auto ref = parse_reference(std::string(t.as_string()));
        if (!ref) return std::unexpected(ref.error());
        names.push_back(ref->string());
      }
    }
    if (!hint.empty()) {
      auto ref = parse_reference(hint);
      if (!ref) return std::unexpected(ref.error());
      names = {ref->string()};
    }
    if (names.empty()) {
      return fail(ErrorKind::kInvalidReference,
                  fmt::format("docker archive image {} has no RepoTags: pass a name (--name REPO)",
                              config_digest));
    }
    for (const auto& n : names) {
      auto img = s.describe(n, mdigest, mdigest);
      if (!img) return std::unexpected(img.error());
      if (auto r = s.record(*img); !r) return std::unexpected(r.error());
      out.push_back(std::move(*img));
    }
  }
  return out;
}

}  // namespace

Result<std::vector<ImageRef>> ImageStore::import_archive(const fs::path& archive,
                                                         std::string name) {
  Impl& s = *impl_;
  fs::path dir = s.tmp_path("import");
  if (::mkdir(dir.c_str(), 0700) != 0) return fail_errno("mkdir " + dir.string(), errno);
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    (void)remove_tree(dir);
    return fail_errno("open " + dir.string(), e);
  }
  Staged st(dir, fd);
  UnpackOptions opts;
  opts.overlay_whiteouts = false;
  opts.preserve_owner = false;
  opts.label = "archive " + archive.string();
  if (auto r = unpack_layer(archive, dir, opts); !r) return std::unexpected(r.error());

  Pin pin(s);
  if (st.exists("index.json") && st.exists("oci-layout")) {
    auto text = st.read("index.json", kMaxJson);
    if (!text) return std::unexpected(text.error());
    auto index = parse_manifest(*text, media_type::kOciIndex);
    if (!index) return std::unexpected(index.error());
    if (!index->is_index) return fail(ErrorKind::kBadContent, "archive: index.json is not an index");
    std::vector<ImageRef> out;
    for (const auto& d : index->manifests) {
      auto n = oci_entry_name(d, name);
      if (!n) return std::unexpected(n.error());
      auto img = import_oci_manifest(s, st, pin, *n, d);
      if (!img) return std::unexpected(img.error());
      if (auto r = s.record(*img); !r) return std::unexpected(r.error());
      log::info("images: imported {} ({})", img->name, img->id);
      out.push_back(std::move(*img));
    }
    return out;
  }
  if (st.exists("manifest.json")) return import_docker(s, st, pin, name);
  return fail(ErrorKind::kBadContent,
              fmt::format("{}: neither an OCI image layout (oci-layout, index.json) nor a docker "
                          "archive (manifest.json)",
                          archive.string()));
}

}  // namespace podwarp::images
