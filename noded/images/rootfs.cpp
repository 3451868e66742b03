// Container root filesystems: overlayfs over the image's layer dirs.
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "images/image_store.h"
#include "images/layer_unpack.h"
#include "images/store_impl.h"
#include "podwarp/json.h"
#include "podwarp/log.h"
#include "podwarp/unique_fd.h"

namespace podwarp::images {

namespace fs = std::filesystem;

namespace {

// mount(2) takes at most a page of options; beyond it the new mount API adds lowerdirs one by
// one ("lowerdir+", Linux 6.8+).
constexpr std::size_t kMaxMountData = 4000;

bool valid_container_id(std::string_view id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// True when path is the root of a mount.
bool is_mount_root(const fs::path& path) {
  struct statx stx{};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) {
    return false;
  }
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
         (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

using Fd = UniqueFd;

Result<void> mount_with_fsconfig(const std::vector<std::string>& lowers, const fs::path& upper,
                                 const fs::path& work, const fs::path& target) {
  const std::string what = "mount overlay on " + target.string();
  Fd fsfd(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (fsfd.get() < 0) return fail_errno(what + ": fsopen", errno);
  auto set = [&](const char* key, const std::string& value) -> Result<void> {
    if (::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      return fail_errno(fmt::format("{}: fsconfig {}={}", what, key, value), errno);
    }
    return {};
  };
  for (const auto& l : lowers) {
    if (auto r = set("lowerdir+", l); !r) return r;
  }
  if (auto r = set("upperdir", upper.string()); !r) return r;
  if (auto r = set("workdir", work.string()); !r) return r;
  if (::syscall(SYS_fsconfig, fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return fail_errno(what + ": fsconfig create", errno);
  }
  Fd mnt(static_cast<int>(::syscall(SYS_fsmount, fsfd.get(), FSMOUNT_CLOEXEC, 0)));
  if (mnt.get() < 0) return fail_errno(what + ": fsmount", errno);
  if (::syscall(SYS_move_mount, mnt.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return fail_errno(what + ": move_mount", errno);
  }
  return {};
}

}  // namespace

Result<fs::path> ImageStore::prepare_rootfs(std::string_view container_id, const ImageRef& image) {
  if (!valid_container_id(container_id)) {
    return fail(ErrorKind::kIo, fmt::format("prepare rootfs: bad container id \"{}\"", container_id));
  }
  Impl& s = *impl_;
  const fs::path dir = s.containers / std::string(container_id);
  const fs::path upper = dir / "upper", work = dir / "work", rootfs = dir / "rootfs";
  if (is_mount_root(rootfs)) return rootfs;

  std::vector<std::string> lowers;
  for (auto it = image.diff_ids.rbegin(); it != image.diff_ids.rend(); ++it) {
    if (!s.has_layer(*it)) {
      return fail(ErrorKind::kNotFound,
                  fmt::format("prepare rootfs for {}: layer {} of {} is not unpacked (pull the "
                              "image again)",
                              container_id, *it, image.name));
    }
    lowers.push_back(s.layer_path(*it).string());
  }
  if (lowers.empty()) lowers.push_back(s.empty.string());

  for (const auto& d : {dir, upper, work, rootfs}) {
    if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_errno("mkdir " + d.string(), errno);
    }
  }
  ::chmod(dir.c_str(), 0700);
  json::object meta;
  meta["name"] = image.name;
  meta["id"] = image.id;
  json::array ids;
  for (const auto& d : image.diff_ids) ids.push_back(json::string(d));
  meta["diffIDs"] = std::move(ids);
  if (auto r = write_file_atomic(dir / "image.json", to_json(meta)); !r) return std::unexpected(r.error());

  std::string data = "lowerdir=";
  for (std::size_t i = 0; i < lowers.size(); ++i) {
    if (i) data += ':';
    data += lowers[i];
  }
  data += fmt::format(",upperdir={},workdir={}", upper.string(), work.string());
  if (data.size() <= kMaxMountData) {
    if (::mount("overlay", rootfs.c_str(), "overlay", 0, data.c_str()) != 0) {
      int e = errno;
      return fail_errno(fmt::format("mount overlay on {} ({} layers)", rootfs.string(),
                                    lowers.size()),
                        e);
    }
  } else if (auto r = mount_with_fsconfig(lowers, upper, work, rootfs); !r) {
    return std::unexpected(r.error());
  }
  log::info("images: rootfs of {} mounted at {} ({} layers of {})", container_id, rootfs.string(),
            lowers.size(), image.name);
  return rootfs;
}

Result<void> ImageStore::release_rootfs(std::string_view container_id) {
  if (!valid_container_id(container_id)) {
    return fail(ErrorKind::kIo, fmt::format("release rootfs: bad container id \"{}\"", container_id));
  }
  const fs::path dir = impl_->containers / std::string(container_id);
  const fs::path rootfs = dir / "rootfs";
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return {};
  // Stacked mounts (a mount made twice) come off one by one.
  for (int i = 0; i < 16 && is_mount_root(rootfs); ++i) {
    if (::umount2(rootfs.c_str(), UMOUNT_NOFOLLOW) != 0) {
      int e = errno;
      if (e != EBUSY) return fail_errno("umount " + rootfs.string(), e);
      log::warn("images: {} is busy; detaching it", rootfs.string());
      if (::umount2(rootfs.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
        return fail_errno("umount (detach) " + rootfs.string(), errno);
      }
    }
  }
  if (is_mount_root(rootfs)) {
    return fail(ErrorKind::kInUse, fmt::format("umount {}: still mounted", rootfs.string()));
  }
  return remove_tree(dir);
}

std::vector<std::string> ImageStore::prepared_containers() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(impl_->containers, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace podwarp::images
