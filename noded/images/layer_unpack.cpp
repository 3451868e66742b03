#include "images/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <memory>
#include <system_error>

#include "images/digest.h"
#include "podwarp/log.h"
#include "podwarp/unique_fd.h"

namespace podwarp::images {

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::size_t kBlockSize = 128 * 1024;

using Fd = UniqueFd;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

int openat2_beneath(int dirfd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const char* p = rel.empty() ? "." : rel.c_str();
  for (;;) {
    long r = ::syscall(SYS_openat2, dirfd, p, &how, sizeof how);
    if (r >= 0 || errno != EINTR) return static_cast<int>(r);
  }
}

// Splits an archive path into components: "" and "." dropped, a leading "/" ignored.
// Returns false when a component is "..".
bool split_path(std::string_view path, std::vector<std::string>& out) {
  out.clear();
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    if (c == "..") return false;
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return true;
}

std::string join(const std::vector<std::string>& comps, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += '/';
    s += comps[i];
  }
  return s;
}

// Shortens very long entry names in messages.
std::string shown(std::string_view p) {
  if (p.size() <= 200) return std::string(p);
  return fmt::format("{}...({} bytes)", p.substr(0, 200), p.size());
}

// Decompresses the blob (gzip, zstd or none, detected by magic) and hashes the uncompressed
// stream on its way into the tar reader.
struct Source {
  archive* raw = nullptr;
  Sha256 hash;
  std::string error;
  bool eof = false;

  la_ssize_t next(const void** buf) {
    if (eof) return 0;
    size_t size = 0;
    la_int64_t offset = 0;
    int r = archive_read_data_block(raw, buf, &size, &offset);
    if (r == ARCHIVE_EOF) {
      eof = true;
      return 0;
    }
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(raw);
      error = msg ? msg : "decompression failed";
      return -1;
    }
    hash.update(std::string_view(static_cast<const char*>(*buf), size));
    return static_cast<la_ssize_t>(size);
  }

  static la_ssize_t read_cb(archive*, void* self, const void** buf) {
    return static_cast<Source*>(self)->next(buf);
  }
};

class Unpacker {
 public:
  Unpacker(int root, const UnpackOptions& opts, UnpackResult& result)
      : root_(root), opts_(opts), result_(result), is_root_(::geteuid() == 0) {}

  Result<void> entry(archive* a, archive_entry* e) {
    const char* raw_path = archive_entry_pathname(e);
    if (!raw_path) return unsafe("entry without a path");
    std::string_view path = raw_path;
    if (!split_path(path, comps_)) {
      return unsafe(fmt::format("entry \"{}\": path has a \"..\" component", shown(path)));
    }
    if (comps_.empty()) return {};  // "./": the layer root itself
    const std::string& name = comps_.back();
    if (name.size() > NAME_MAX) {
      return bad(fmt::format("entry \"{}\": name longer than {} bytes", shown(path), NAME_MAX));
    }
    auto parent = open_parent(path, comps_.size() - 1);
    if (!parent) return std::unexpected(parent.error());
    int pfd = parent->get();

    const mode_t type = archive_entry_filetype(e);
    if (opts_.overlay_whiteouts && name.starts_with(kWhiteoutPrefix)) {
      return whiteout(path, pfd, comps_.size() - 1, name);
    }

    const char* hardlink = archive_entry_hardlink(e);
    const bool is_dir = !hardlink && type == AE_IFDIR;
    if (auto r = clear_existing(path, pfd, name, is_dir); !r) return r;

    if (hardlink) return link(path, pfd, name, hardlink);

    switch (type) {
      case AE_IFDIR:
        if (::mkdirat(pfd, name.c_str(), 0700) != 0 && errno != EEXIST) {
          return sys("mkdirat", path, errno);
        }
        break;
      case AE_IFREG:
        return regular_file(a, e, path, pfd, name);
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) return bad(fmt::format("symlink \"{}\" without a target", shown(path)));
        // The target is stored as is: it is resolved at run time inside the container's
        // root, and this unpacker never follows it (RESOLVE_BENEATH).
        if (::symlinkat(target, pfd, name.c_str()) != 0) return sys("symlinkat", path, errno);
        break;
      }
      case AE_IFIFO:
        if (::mknodat(pfd, name.c_str(), S_IFIFO | 0600, 0) != 0) {
          return sys("mknodat fifo", path, errno);
        }
        break;
      case AE_IFCHR:
        if (opts_.overlay_whiteouts && archive_entry_rdevmajor(e) == 0 &&
            archive_entry_rdevminor(e) == 0) {
          // Already an overlay whiteout (layers made from an overlay upper dir).
          if (::mknodat(pfd, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
            return sys("mknodat whiteout", path, errno);
          }
          return {};
        }
        [[fallthrough]];
      case AE_IFBLK:
      case AE_IFSOCK:
      default:
        warn(fmt::format("skipped \"{}\": device nodes and sockets are not unpacked (type {:o})",
                         shown(path), static_cast<unsigned>(type)));
        return {};
    }
    return metadata(e, path, pfd, name, type);
  }

 private:
  std::unexpected<Error> unsafe(std::string msg) {
    return fail(ErrorKind::kUnsafeLayer, fmt::format("{}: {}", opts_.label, msg));
  }
  std::unexpected<Error> bad(std::string msg) {
    return fail(ErrorKind::kBadContent, fmt::format("{}: {}", opts_.label, msg));
  }
  std::unexpected<Error> sys(std::string_view call, std::string_view path, int err) {
    if (err == EXDEV || err == ELOOP) {
      return unsafe(fmt::format("{} \"{}\": resolves outside the layer ({})", call, shown(path),
                                errno_name(err)));
    }
    return fail(ErrorKind::kIo, fmt::format("{}: {} \"{}\": {}", opts_.label, call, shown(path),
                                            errno_name(err)));
  }
  void warn(std::string msg) {
    log::warn("{}: {}", opts_.label, msg);
    result_.warnings.push_back(std::move(msg));
  }

  // Opens the directory holding comps_[n] (the first n components), creating missing
  // directories (0755) on the way. Every open resolves beneath the layer root.
  Result<Fd> open_parent(std::string_view path, std::size_t n) {
    std::string rel = join(comps_, n);
    int fd = openat2_beneath(root_, rel, O_PATH | O_DIRECTORY);
    if (fd >= 0) return Fd(fd);
    if (errno != ENOENT) return sys("openat2 parent of", path, errno);
    Fd cur(openat2_beneath(root_, "", O_PATH | O_DIRECTORY));
    if (!cur) return sys("openat2 layer root for", path, errno);
    for (std::size_t i = 0; i < n; ++i) {
      std::string prefix = join(comps_, i + 1);
      int next = openat2_beneath(root_, prefix, O_PATH | O_DIRECTORY);
      if (next < 0 && errno == ENOENT) {
        if (::mkdirat(cur.get(), comps_[i].c_str(), 0755) != 0 && errno != EEXIST) {
          return sys("mkdirat", prefix, errno);
        }
        next = openat2_beneath(root_, prefix, O_PATH | O_DIRECTORY);
      }
      if (next < 0) return sys("openat2", prefix, errno);
      cur = Fd(next);
    }
    return cur;
  }

  // Removes what an earlier entry created at `name`, unless both are directories (then the
  // directory stays and gets the new metadata). A non-empty directory is not replaced.
  Result<void> clear_existing(std::string_view path, int pfd, const std::string& name,
                              bool new_is_dir) {
    struct stat st;
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return {};
      return sys("fstatat", path, errno);
    }
    if (S_ISDIR(st.st_mode)) {
      if (new_is_dir) return {};
      if (::unlinkat(pfd, name.c_str(), AT_REMOVEDIR) != 0) return sys("rmdir", path, errno);
      return {};
    }
    if (::unlinkat(pfd, name.c_str(), 0) != 0) return sys("unlinkat", path, errno);
    return {};
  }

  Result<void> whiteout(std::string_view path, int pfd, std::size_t depth,
                        const std::string& name) {
    if (name == kOpaqueMarker) {
      Fd dir(openat2_beneath(root_, join(comps_, depth), O_RDONLY | O_DIRECTORY));
      if (!dir) return sys("openat2 opaque dir of", path, errno);
      if (::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        return sys("fsetxattr trusted.overlay.opaque on dir of", path, errno);
      }
      return {};
    }
    std::string target = name.substr(kWhiteoutPrefix.size());
    if (target.empty() || target == "." || target == ".." || target.starts_with(kWhiteoutPrefix)) {
      return bad(fmt::format("whiteout \"{}\" names no file", shown(path)));
    }
    if (auto r = clear_existing(path, pfd, target, false); !r) return r;
    if (::mknodat(pfd, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
      int err = errno;
      if (err == EPERM) {
        return fail(ErrorKind::kIo,
                    fmt::format("{}: mknodat whiteout \"{}\": EPERM (overlay whiteouts are 0:0 "
                                "character devices and need CAP_MKNOD)",
                                opts_.label, shown(path)));
      }
      return sys("mknodat whiteout", path, err);
    }
    return {};
  }

  Result<void> link(std::string_view path, int pfd, const std::string& name,
                    std::string_view target) {
    std::vector<std::string> tc;
    if (!split_path(target, tc) || tc.empty()) {
      return unsafe(fmt::format("hardlink \"{}\" -> \"{}\": target outside the layer",
                                shown(path), shown(target)));
    }
    std::string tparent = join(tc, tc.size() - 1);
    Fd src(openat2_beneath(root_, tparent, O_PATH | O_DIRECTORY));
    if (!src) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        return bad(fmt::format("hardlink \"{}\" -> \"{}\": target not in the layer",
                               shown(path), shown(target)));
      }
      return sys("openat2 hardlink target of", path, err);
    }
    // Flags 0: a hardlink to a symlink links the symlink itself, never what it points to.
    if (::linkat(src.get(), tc.back().c_str(), pfd, name.c_str(), 0) != 0) {
      int err = errno;
      if (err == ENOENT) {
        return bad(fmt::format("hardlink \"{}\" -> \"{}\": target not in the layer", shown(path),
                               shown(target)));
      }
      return sys("linkat", path, err);
    }
    return {};
  }

  Result<void> regular_file(archive* a, archive_entry* e, std::string_view path, int pfd,
                            const std::string& name) {
    Fd fd(::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return sys("openat", path, errno);
    for (;;) {
      const void* buf;
      size_t size;
      la_int64_t offset;
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        const char* msg = archive_error_string(a);
        return bad(fmt::format("read \"{}\": {}", shown(path), msg ? msg : "archive error"));
      }
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t n = ::pwrite(fd.get(), p, size, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          return sys("pwrite", path, errno);
        }
        p += n;
        size -= static_cast<size_t>(n);
        offset += n;
      }
    }
    // Sparse entries may end in a hole.
    if (archive_entry_size_is_set(e) && ::ftruncate(fd.get(), archive_entry_size(e)) != 0) {
      return sys("ftruncate", path, errno);
    }
    if (is_root_ && opts_.preserve_owner &&
        ::fchown(fd.get(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e))) != 0) {
      return sys("fchown", path, errno);
    }
    if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0) return sys("fchmod", path, errno);
    xattrs(e, path, fd.get());
    return times(e, path, pfd, name);
  }

  Result<void> metadata(archive_entry* e, std::string_view path, int pfd, const std::string& name,
                        mode_t type) {
    if (is_root_ && opts_.preserve_owner &&
        ::fchownat(pfd, name.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0) {
      return sys("fchownat", path, errno);
    }
    if (type == AE_IFDIR) {
      Fd dir(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir) return sys("openat dir", path, errno);
      if (::fchmod(dir.get(), archive_entry_perm(e) & 07777) != 0) {
        return sys("fchmod", path, errno);
      }
      xattrs(e, path, dir.get());
    } else if (type == AE_IFIFO) {
      Fd node(::openat(pfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (node) {
        std::string proc = fmt::format("/proc/self/fd/{}", node.get());
        ::chmod(proc.c_str(), archive_entry_perm(e) & 07777);
      }
    }
    return times(e, path, pfd, name);
  }

  void xattrs(archive_entry* e, std::string_view path, int fd) {
    if (archive_entry_xattr_reset(e) == 0) return;
    const char* xname;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
      std::string_view n = xname;
      if (!n.starts_with("user.") && n != "security.capability") {
        warn(fmt::format("\"{}\": xattr {} not applied", shown(path), n));
        continue;
      }
      if (::fsetxattr(fd, xname, value, size, 0) != 0) {
        warn(fmt::format("\"{}\": fsetxattr {}: {}", shown(path), n, errno_name(errno)));
      }
    }
  }

  Result<void> times(archive_entry* e, std::string_view path, int pfd, const std::string& name) {
    timespec ts[2];
    ts[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
    ts[0].tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : 0;
    ts[1].tv_sec = archive_entry_mtime(e);
    ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return sys("utimensat", path, errno);
    }
    return {};
  }

  int root_;
  const UnpackOptions& opts_;
  UnpackResult& result_;
  bool is_root_;
  std::vector<std::string> comps_;
};

}  // namespace

Result<UnpackResult> unpack_layer(const std::filesystem::path& archive_path,
                                  const std::filesystem::path& dest, const UnpackOptions& options) {
  UnpackResult result;
  Fd root(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno("open " + dest.string(), errno);

  ArchivePtr raw(archive_read_new());
  archive_read_support_filter_gzip(raw.get());
  archive_read_support_filter_zstd(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_filename(raw.get(), archive_path.c_str(), kBlockSize) != ARCHIVE_OK) {
    const char* msg = archive_error_string(raw.get());
    return fail(ErrorKind::kIo, fmt::format("{}: open {}: {}", options.label,
                                            archive_path.string(), msg ? msg : "failed"));
  }
  Source src;
  src.raw = raw.get();
  archive_entry* raw_entry;
  int hr = archive_read_next_header(raw.get(), &raw_entry);
  if (hr == ARCHIVE_EOF) {
    src.eof = true;
  } else if (hr < ARCHIVE_WARN) {
    const char* msg = archive_error_string(raw.get());
    return fail(ErrorKind::kBadContent,
                fmt::format("{}: {}", options.label, msg ? msg : "unreadable archive"));
  }

  ArchivePtr tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_gnutar(tar.get());
  archive_read_support_format_empty(tar.get());
  if (archive_read_open(tar.get(), &src, nullptr, &Source::read_cb, nullptr) != ARCHIVE_OK) {
    const char* msg = archive_error_string(tar.get());
    return fail(ErrorKind::kBadContent,
                fmt::format("{}: not a tar archive: {}", options.label,
                            !src.error.empty() ? src.error : (msg ? msg : "unknown")));
  }
  Unpacker unpacker(root.get(), options, result);
  for (;;) {
    archive_entry* e;
    int r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(tar.get());
      return fail(ErrorKind::kBadContent,
                  fmt::format("{}: read tar header: {}", options.label,
                              !src.error.empty() ? src.error : (msg ? msg : "unknown")));
    }
    if (auto ok = unpacker.entry(tar.get(), e); !ok) return std::unexpected(ok.error());
    ++result.entries;
  }
  // The tar reader stops at the end-of-archive blocks; the diffID covers the whole stream.
  const void* buf;
  while (src.next(&buf) > 0) {
  }
  if (!src.error.empty()) {
    return fail(ErrorKind::kBadContent, fmt::format("{}: {}", options.label, src.error));
  }
  result.diff_id = src.hash.finish();
  return result;
}

Result<void> remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return fail(ErrorKind::kIo, fmt::format("remove {}: {}", path.string(), ec.message()));
  return {};
}

}  // namespace podwarp::images
