#include "agent/local_path.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

namespace podwarp::noded::agent {

namespace fs = std::filesystem;

namespace {

bool has_cleanup_finalizer(const json::value& pv) {
  const json::value* f = find_path(pv, {"metadata", "finalizers"});
  if (f == nullptr || !f->is_array()) return false;
  for (const json::value& v : f->as_array()) {
    if (v.is_string() && v.as_string() == kLocalPathCleanupFinalizer) return true;
  }
  return false;
}

// Whether the volume's required node affinity is exactly kubernetes.io/hostname In [node].
bool pinned_to(const json::value& pv, std::string_view node) {
  const json::value* terms =
      find_path(pv, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  if (terms == nullptr || !terms->is_array() || terms->as_array().size() != 1) return false;
  const json::value* exprs = find_path(terms->as_array()[0], {"matchExpressions"});
  if (exprs == nullptr || !exprs->is_array() || exprs->as_array().size() != 1) return false;
  const json::value& e = exprs->as_array()[0];
  const json::value* values = find_path(e, {"values"});
  return get_string(e, {"key"}) == "kubernetes.io/hostname" &&
         get_string(e, {"operator"}) == "In" && values != nullptr && values->is_array() &&
         values->as_array().size() == 1 && values->as_array()[0].is_string() &&
         values->as_array()[0].as_string() == node;
}

}  // namespace

std::optional<fs::path> local_path_to_clean(const json::value& pv, std::string_view node) {
  // A bound volume waits for its claim to go (and the binder to release it), as upstream's
  // pv-protection keeps a bound volume.
  if (get_string(pv, {"metadata", "deletionTimestamp"}).empty() || !has_cleanup_finalizer(pv) ||
      get_string(pv, {"status", "phase"}) == "Bound" ||
      get_string(pv, {"metadata", "annotations", "pv.kubernetes.io/provisioned-by"}) !=
          "podwarp.io/local-path" ||
      !pinned_to(pv, node)) {
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

json::value without_cleanup_finalizer(const json::value& pv) {
  json::value next = pv;
  json::value* f = find_path(next, {"metadata", "finalizers"});
  if (f != nullptr && f->is_array()) {
    json::array& a = f->as_array();
    a.erase(std::remove_if(a.begin(), a.end(),
                           [](const json::value& v) {
                             return v.is_string() && v.as_string() == kLocalPathCleanupFinalizer;
                           }),
            a.end());
  }
  return next;
}

std::optional<std::pair<std::string, std::string>> claim_of(const json::value& pv) {
  const std::string_view ns = get_string(pv, {"spec", "claimRef", "namespace"});
  const std::string_view name = get_string(pv, {"spec", "claimRef", "name"});
  if (name.empty()) return std::nullopt;
  return std::pair{std::string(ns), std::string(name)};
}

}  // namespace podwarp::noded::agent
