#include "exitrec/exit_recorder.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "bpfutil/bpf_util.h"
#include "exit_recorder.skel.h"
#include "lib/exit_record.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::exitrec {
namespace {

using bpfutil::is_bpffs;
using bpfutil::LibbpfLogCapture;
using bpfutil::mkdir_p;

constexpr const char* kDefaultBpffs = bpfutil::kMachineBpffs;

using Fd = UniqueFd;


// Opens a pinned map and checks that it has the layout this build expects.
std::expected<int, Error> open_pinned_map(const std::string& path, __u32 type, __u32 key_size,
                                          __u32 value_size) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return std::unexpected(errno_error("bpf_obj_get " + path));
  Fd owned(fd);
  struct bpf_map_info info {};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return std::unexpected(errno_error("bpf_obj_get_info_by_fd " + path));
  if (info.type != type || info.key_size != key_size || info.value_size != value_size)
    return std::unexpected(
        sys_error(EPROTO, "pinned map " + path + " has type " + std::to_string(info.type) +
                              ", key size " + std::to_string(info.key_size) + ", value size " +
                              std::to_string(info.value_size) + " (want " + std::to_string(type) +
                              ", " + std::to_string(key_size) + ", " + std::to_string(value_size) +
                              "; pinned by another podwarp version? remove " + path + "/..)"));
  return owned.release();
}

struct MapFds {
  int watched;
  int exits;
};

std::expected<MapFds, Error> open_pinned_maps(const std::string& dir) {
  auto watched = open_pinned_map(dir + "/" PODWARP_EXITREC_WATCHED_MAP, BPF_MAP_TYPE_HASH,
                                 sizeof(__u32), sizeof(__u64));
  if (!watched) return std::unexpected(watched.error());
  Fd w(*watched);
  auto exits = open_pinned_map(dir + "/" PODWARP_EXITREC_EXITS_MAP, BPF_MAP_TYPE_LRU_HASH,
                               sizeof(__u32), sizeof(struct podwarp_exit_record));
  if (!exits) return std::unexpected(exits.error());
  return MapFds{w.release(), *exits};
}

// Loads the embedded program, attaches it and pins maps, then the link (last: the link pin is
// what marks the directory complete). On failure, removes what it pinned.
std::expected<void, Error> load_and_pin(const std::string& dir) {
  LibbpfLogCapture log;
  struct Skel {
    podwarp_exit_recorder_bpf* p = podwarp_exit_recorder_bpf__open_and_load();
    ~Skel() {
      if (p != nullptr) podwarp_exit_recorder_bpf__destroy(p);
    }
  } skel;
  if (skel.p == nullptr) return std::unexpected(errno_error("bpf load exit_recorder" + log.tail(600)));
  bpf_link* link = bpf_program__attach(skel.p->progs.record_exit);
  if (link == nullptr)
    return std::unexpected(
        errno_error("bpf attach exit_recorder to tp_btf/sched_process_exit" + log.tail(600)));
  skel.p->links.record_exit = link;  // destroyed (closed, not detached once pinned) with skel
  std::string watched = dir + "/" PODWARP_EXITREC_WATCHED_MAP;
  std::string exits = dir + "/" PODWARP_EXITREC_EXITS_MAP;
  std::string link_pin = dir + "/" PODWARP_EXITREC_LINK_PIN;
  if (bpf_map__pin(skel.p->maps.watched, watched.c_str()) != 0)
    return std::unexpected(errno_error("bpf pin " + watched + log.tail(600)));
  if (bpf_map__pin(skel.p->maps.exits, exits.c_str()) != 0) {
    Error e = errno_error("bpf pin " + exits + log.tail(600));
    ::unlink(watched.c_str());
    return std::unexpected(e);
  }
  if (bpf_link__pin(link, link_pin.c_str()) != 0) {
    Error e = errno_error("bpf pin " + link_pin + log.tail(600));
    ::unlink(watched.c_str());
    ::unlink(exits.c_str());
    return std::unexpected(e);
  }
  return {};
}

void unlink_pins(const std::string& dir) {
  // The link first: with its pin gone the program detaches, before its maps disappear.
  for (const char* name :
       {PODWARP_EXITREC_LINK_PIN, PODWARP_EXITREC_WATCHED_MAP, PODWARP_EXITREC_EXITS_MAP}) {
    ::unlink((dir + "/" + name).c_str());
  }
}

bool link_pin_is_alive(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return false;
  Fd owned(fd);
  struct bpf_link_info info {};
  __u32 len = sizeof info;
  // tp_btf programs attach through raw_tracepoint_open: a raw tracepoint link.
  return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 &&
         (info.type == BPF_LINK_TYPE_RAW_TRACEPOINT || info.type == BPF_LINK_TYPE_TRACING);
}

}  // namespace

ExitStatus decode_wait_status(int wait_status) {
  ExitStatus s;
  s.wait_status = wait_status;
  if (WIFSIGNALED(wait_status)) {
    s.signaled = true;
    s.code_or_signal = WTERMSIG(wait_status);
    s.core_dumped = WCOREDUMP(wait_status);
  } else {
    s.code_or_signal = (wait_status >> 8) & 0xff;  // WEXITSTATUS (also for odd values)
  }
  return s;
}

std::expected<std::uint64_t, Error> process_start_cookie(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream in(path);
  if (!in) return std::unexpected(errno_error("open " + path));
  std::string line;
  std::getline(in, line);
  // Field 2 (comm) may hold spaces and ')': the fields after it start after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::unexpected(logic_error(path + ": malformed"));
  std::istringstream fields(line.substr(close + 1));
  std::string f;
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> f)) return std::unexpected(logic_error(path + ": fewer than 22 fields"));
  }
  try {
    size_t used = 0;
    std::uint64_t v = std::stoull(f, &used);
    if (used != f.size()) throw std::invalid_argument(f);
    return v;
  } catch (const std::exception&) {
    return std::unexpected(logic_error(path + ": field 22 is not a number: " + f));
  }
}

std::expected<std::string, Error> bpffs_root() {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest, found;
  while (mounts >> dev >> dir >> type && std::getline(mounts, rest)) {
    if (type != "bpf") continue;
    if (dir == kDefaultBpffs) return dir;
    if (found.empty()) found = dir;
  }
  if (!found.empty()) return found;
  if (auto m = bpfutil::ensure_machine_bpffs(kDefaultBpffs); !m) return std::unexpected(m.error());
  return std::string(kDefaultBpffs);
}

std::expected<ExitRecorder, Error> ExitRecorder::open(std::string pin_dir) {
  while (pin_dir.size() > 1 && pin_dir.back() == '/') pin_dir.pop_back();
  if (pin_dir.empty() || pin_dir[0] != '/' || pin_dir == "/")
    return std::unexpected(
        logic_error("exit recorder pin dir must be an absolute path below "
                    "bpffs, got \"" +
                    pin_dir + "\""));
  std::string parent = pin_dir.substr(0, pin_dir.rfind('/'));
  if (parent.empty()) parent = "/";
  if (!is_bpffs(pin_dir) && !is_bpffs(parent)) {
    if (auto m = bpfutil::ensure_machine_bpffs(pin_dir); !m) return std::unexpected(m.error());
  }
  // Create nothing outside bpffs: the nearest existing ancestor must already be on it.
  std::string existing = pin_dir;
  struct stat st {};
  while (existing.size() > 1 && ::stat(existing.c_str(), &st) != 0)
    existing = existing.substr(0, std::max<size_t>(existing.rfind('/'), 1));
  if (!is_bpffs(existing))
    return std::unexpected(sys_error(ENOTSUP, "exit recorder pins: " + existing +
                                                  " is not on a bpf filesystem (mount -t bpf "
                                                  "bpf /sys/fs/bpf)"));
  if (auto made = mkdir_p(pin_dir); !made) return std::unexpected(made.error());

  Fd dir_fd(::open(pin_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return std::unexpected(errno_error("open " + pin_dir));
  if (::flock(dir_fd.get(), LOCK_EX) != 0) return std::unexpected(errno_error("flock " + pin_dir));

  std::string link_pin = pin_dir + "/" PODWARP_EXITREC_LINK_PIN;
  if (link_pin_is_alive(link_pin)) {
    auto maps = open_pinned_maps(pin_dir);
    if (maps) return ExitRecorder(pin_dir, maps->watched, maps->exits);
    if (maps.error().code == EPROTO) return std::unexpected(maps.error());
    // A link without its maps cannot be read: start over.
  }
  unlink_pins(pin_dir);
  if (auto loaded = load_and_pin(pin_dir); !loaded) return std::unexpected(loaded.error());
  auto maps = open_pinned_maps(pin_dir);
  if (!maps) return std::unexpected(maps.error());
  return ExitRecorder(pin_dir, maps->watched, maps->exits);
}

ExitRecorder::ExitRecorder(ExitRecorder&& o) noexcept
    : pin_dir_(std::move(o.pin_dir_)),
      watched_fd_(std::exchange(o.watched_fd_, -1)),
      exits_fd_(std::exchange(o.exits_fd_, -1)) {}

ExitRecorder& ExitRecorder::operator=(ExitRecorder&& o) noexcept {
  if (this != &o) {
    close();
    pin_dir_ = std::move(o.pin_dir_);
    watched_fd_ = std::exchange(o.watched_fd_, -1);
    exits_fd_ = std::exchange(o.exits_fd_, -1);
  }
  return *this;
}

void ExitRecorder::close() {
  if (watched_fd_ >= 0) ::close(std::exchange(watched_fd_, -1));
  if (exits_fd_ >= 0) ::close(std::exchange(exits_fd_, -1));
}

std::expected<void, Error> ExitRecorder::watch(pid_t pid, std::uint64_t cookie) {
  if (!is_open()) return std::unexpected(sys_error(EBADF, "exit recorder watch: closed"));
  if (pid <= 0)
    return std::unexpected(sys_error(EINVAL, "exit recorder watch " + std::to_string(pid)));
  __u32 key = static_cast<__u32>(pid);
  __u64 value = cookie;
  if (bpf_map_update_elem(watched_fd_, &key, &value, BPF_ANY) != 0)
    return std::unexpected(
        errno_error("bpf_map_update_elem " + pin_dir_ + "/watched pid " + std::to_string(pid)));
  return {};
}

std::expected<void, Error> ExitRecorder::unwatch(pid_t pid) {
  if (!is_open()) return std::unexpected(sys_error(EBADF, "exit recorder unwatch: closed"));
  __u32 key = static_cast<__u32>(pid);
  if (bpf_map_delete_elem(watched_fd_, &key) != 0 && errno != ENOENT)
    return std::unexpected(
        errno_error("bpf_map_delete_elem " + pin_dir_ + "/watched pid " + std::to_string(pid)));
  return {};
}

std::optional<ExitStatus> ExitRecorder::take(pid_t pid, std::uint64_t cookie) {
  if (!is_open() || pid <= 0) return std::nullopt;
  __u32 key = static_cast<__u32>(pid);
  struct podwarp_exit_record rec {};
  if (bpf_map_lookup_elem(exits_fd_, &key, &rec) != 0) return std::nullopt;
  if (rec.cookie != cookie) return std::nullopt;
  bpf_map_delete_elem(exits_fd_, &key);
  ExitStatus s = decode_wait_status(static_cast<int>(rec.wait_status));
  struct timespec boot {};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  auto now_boot = std::chrono::seconds(boot.tv_sec) + std::chrono::nanoseconds(boot.tv_nsec);
  auto ago = now_boot - std::chrono::nanoseconds(rec.boottime_ns);
  s.exited_at = std::chrono::system_clock::now() -
                std::chrono::duration_cast<std::chrono::system_clock::duration>(ago);
  return s;
}

void ExitRecorder::remove_pins(const std::string& pin_dir) {
  unlink_pins(pin_dir);
  ::rmdir(pin_dir.c_str());
}

}  // namespace podwarp::noded::exitrec
