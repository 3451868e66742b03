#include "pods/atomic_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <random>
#include <set>

namespace podwarp::noded::pods {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDataDir = "..data";
constexpr const char* kDataTmp = "..data_tmp";

std::string err(std::string_view call, const std::string& path) {
  return fmt::format("{} {}: {}", call, path, std::strerror(errno));
}

bool valid_path(std::string_view p) {
  if (p.empty() || p[0] == '/' || p.starts_with("..") || p.back() == '/') return false;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    auto part = p.substr(i, j - i);
    if (part.empty() || part == ".." || part == ".") return false;
    i = j + 1;
  }
  return true;
}

std::string top_level(const std::string& p) { return p.substr(0, p.find('/')); }

void walk(const fs::path& base, const fs::path& rel, std::map<std::string, FileProjection>& out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(base / rel, ec)) {
    fs::path r = rel / e.path().filename();
    struct stat st{};
    if (::lstat(e.path().c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      walk(base, r, out);
    } else if (S_ISREG(st.st_mode)) {
      int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0) continue;
      std::string data;
      char buf[8192];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
      ::close(fd);
      out[r.string()] = {std::move(data), static_cast<int>(st.st_mode & 07777)};
    }
  }
}

std::string ts_name() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y_%m_%d_%H_%M_%S", &tm);
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("..{}.{:09d}", b, rng() % 1000000000);
}

}  // namespace

std::map<std::string, FileProjection> read_published(const std::string& dir) {
  std::map<std::string, FileProjection> out;
  char target[PATH_MAX];
  std::string link = dir + "/" + kDataDir;
  ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return out;
  target[n] = 0;
  walk(fs::path(dir) / target, {}, out);
  return out;
}

std::expected<bool, std::string> write_atomic(const std::string& dir,
                                              const std::map<std::string, FileProjection>& payload) {
  for (const auto& [p, _] : payload)
    if (!valid_path(p)) return std::unexpected(fmt::format("invalid path \"{}\" in volume payload", p));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected(fmt::format("mkdir {}: {}", dir, ec.message()));
  // Previous publication.
  std::string old_ts;
  {
    char target[PATH_MAX];
    std::string link = dir + "/" + kDataDir;
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0) old_ts.assign(target, static_cast<size_t>(n));
  }
  std::map<std::string, FileProjection> old;
  if (!old_ts.empty()) walk(fs::path(dir) / old_ts, {}, old);
  std::map<std::string, FileProjection> want;
  for (const auto& [p, f] : payload) want[p] = {f.data, f.mode & 07777};
  std::set<std::string> old_top, new_top;
  for (const auto& [p, _] : old) old_top.insert(top_level(p));
  for (const auto& [p, _] : want) new_top.insert(top_level(p));
  bool links_ok = true;
  for (const auto& t : new_top) {
    struct stat st{};
    if (::lstat((dir + "/" + t).c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) links_ok = false;
  }
  if (!old_ts.empty() && old == want && links_ok) return false;

  // 1. the new timestamped dir with the payload
  std::string ts = ts_name();
  std::string ts_path = dir + "/" + ts;
  if (::mkdir(ts_path.c_str(), 0755) != 0) return std::unexpected(err("mkdir", ts_path));
  ::chmod(ts_path.c_str(), 0755);
  auto cleanup = [&] { fs::remove_all(ts_path, ec); };
  for (const auto& [p, f] : want) {
    std::string path = ts_path + "/" + p;
    fs::create_directories(fs::path(path).parent_path(), ec);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      auto e = err("open", path);
      cleanup();
      return std::unexpected(e);
    }
    size_t off = 0;
    while (off < f.data.size()) {
      ssize_t n = ::write(fd, f.data.data() + off, f.data.size() - off);
      if (n <= 0) {
        auto e = err("write", path);
        ::close(fd);
        cleanup();
        return std::unexpected(e);
      }
      off += static_cast<size_t>(n);
    }
    if (::fchmod(fd, static_cast<mode_t>(f.mode)) != 0) {
      auto e = err("fchmod", path);
      ::close(fd);
      cleanup();
      return std::unexpected(e);
    }
    ::close(fd);
  }
  // 2. ..data_tmp -> ts, renamed over ..data (atomic)
  std::string tmp = dir + "/" + kDataTmp;
  ::unlink(tmp.c_str());
  if (::symlink(ts.c_str(), tmp.c_str()) != 0) {
    auto e = err("symlink", tmp);
    cleanup();
    return std::unexpected(e);
  }
  std::string data = dir + "/" + kDataDir;
  if (::rename(tmp.c_str(), data.c_str()) != 0) {
    auto e = err("rename", tmp);
    ::unlink(tmp.c_str());
    cleanup();
    return std::unexpected(e);
  }
  // 3. user-visible symlinks for new top-level names
  for (const auto& t : new_top) {
    std::string link = dir + "/" + t;
    struct stat st{};
    if (::lstat(link.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) continue;
      fs::remove_all(link, ec);  // a plain file of an older layout
    }
    std::string target = std::string(kDataDir) + "/" + t;
    if (::symlink(target.c_str(), link.c_str()) != 0) return std::unexpected(err("symlink", link));
  }
  // 4. names gone, and the old timestamped dir
  for (const auto& t : old_top)
    if (!new_top.contains(t)) ::unlink((dir + "/" + t).c_str());
  if (!old_ts.empty() && old_ts != ts && old_ts.starts_with("..")) fs::remove_all(fs::path(dir) / old_ts, ec);
  return true;
}

}  // namespace podwarp::noded::pods
