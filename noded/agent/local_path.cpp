#include "agent/local_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "loop/meta.h"

namespace podwarp::noded::agent {

namespace fs = std::filesystem;

std::optional<fs::path> local_path_to_clean(const json::value& pv, std::string_view node) {
  // A bound volume waits for its claim to go (and the binder to release it), as upstream's
  // pv-protection keeps a bound volume.
  if (!loop::being_deleted(pv) || !loop::has_finalizer(pv, kLocalPathCleanupFinalizer) ||
      get_string(pv, {"status", "phase"}) == "Bound" ||
      get_string(pv, {"metadata", "annotations", "pv.kubernetes.io/provisioned-by"}) !=
          "podwarp.io/local-path" ||
      loop::pinned_node(pv) != node) {
    return std::nullopt;
  }
  const std::string_view name = get_string(pv, {"metadata", "name"});
  const fs::path path(std::string(get_string(pv, {"spec", "hostPath", "path"})));
  if (name.empty() || !path.is_absolute() || path != path.lexically_normal() ||
      !path.has_parent_path() || path.parent_path() == path.root_path()) {
    return std::nullopt;
  }
  for (const fs::path& part : path) {
    if (part == "." || part == "..") return std::nullopt;
  }
  const std::string last = path.filename().string();
  if (!last.starts_with(std::string(name) + "_")) return std::nullopt;
  return path;
}

std::expected<void, std::string> remove_local_path(const fs::path& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(fmt::format("{}: {}", dir.string(), std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return std::unexpected(fmt::format("{}: not a directory", dir.string()));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);  // removes symlinks themselves; never follows them
  if (ec) return std::unexpected(fmt::format("{}: {}", dir.string(), ec.message()));
  return {};
}

std::optional<std::pair<std::string, std::string>> claim_of(const json::value& pv) {
  const std::string_view ns = get_string(pv, {"spec", "claimRef", "namespace"});
  const std::string_view name = get_string(pv, {"spec", "claimRef", "name"});
  if (name.empty()) return std::nullopt;
  return std::pair{std::string(ns), std::string(name)};
}

}  // namespace podwarp::noded::agent
