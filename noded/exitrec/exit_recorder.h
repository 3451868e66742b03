// ExitRecorder: exit statuses of container processes, kept by the kernel while noded is down.
//
// noded reaps its containers' processes itself while it runs. When noded dies (kill -9,
// upgrade), those processes are reparented to init (or a subreaper) and reaped there, and their
// exit status is lost to noded. The BPF program bpf/exit_recorder.bpf.c closes the gap without a
// helper process per container: at every process exit it looks the tgid up in the pinned map
// `watched` and, if found, writes the status waitpid() would return, with the watched cookie,
// into the pinned map `exits` (and drops the `watched` entry: one record per watch).
//
// The program's link and both maps are pinned in <pin_dir> (on bpffs), so they outlive noded;
// open() on existing pins only reopens the maps. Protocol for noded:
//   - at container start (process still unreaped, so its pid cannot be reused yet):
//       watch(pid, cookie) with cookie = process_start_cookie(pid) (/proc/<pid>/stat field 22);
//   - when noded reaps the process itself: take(pid, cookie) to drop the record (unused);
//   - when it stops watching a live process it will not reap: unwatch(pid);
//   - after a restart, for each container it recorded as running: if /proc/<pid> is gone or its
//     start time differs from the saved cookie, take(pid, saved cookie) gives the exit status
//     (nullopt: the exit was not recorded, e.g. it happened before watch()).
// A record whose cookie differs (pid reused by another watched process) is never returned.
//
// Threading: the methods are single map syscalls on fds the object owns; concurrent calls
// on one object are safe, but close() must not race them. open() is serialized against other
// open()s of the same pin_dir (flock on the directory).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "cgroup/sys_error.h"

namespace podwarp::noded::exitrec {

using Error = SysError;

// A decoded wait status.
struct ExitStatus {
  bool signaled = false;   // killed by a signal
  int code_or_signal = 0;  // exit code (0..255) when !signaled, else the signal number
  bool core_dumped = false;
  int wait_status = 0;  // raw, as waitpid() returns it
  // When the process exited (from CLOCK_BOOTTIME, converted to the wall clock at take()).
  std::chrono::system_clock::time_point exited_at;
};

// Decodes a waitpid()-style status: WIFEXITED -> code, else the terminating signal.
ExitStatus decode_wait_status(int wait_status);

// The "start time" of a process (/proc/<pid>/stat field 22, clock ticks since boot): the cookie
// noded passes to watch() and take(). Errors if the process does not exist.
std::expected<std::uint64_t, Error> process_start_cookie(pid_t pid);

// The bpffs mount to pin in: the first bpf mount in /proc/self/mounts, preferring /sys/fs/bpf;
// if there is none, mounts bpffs on /sys/fs/bpf (needs CAP_SYS_ADMIN; else a clear error).
std::expected<std::string, Error> bpffs_root();

class ExitRecorder {
 public:
  // Opens the recorder pinned in `pin_dir` (created if missing; its parent must be on bpffs,
  // which is mounted on /sys/fs/bpf if pin_dir is below /sys/fs/bpf and nothing is mounted
  // there). If <pin_dir>/link exists, reuses the pinned maps <pin_dir>/watched and
  // <pin_dir>/exits; otherwise loads the embedded program, attaches it and pins maps and link.
  // Stale partial pins (maps without link, or link without maps) are removed and reloaded.
  // Errors: EPERM without CAP_BPF/CAP_SYS_ADMIN, ENOENT/ENOTSUP without BTF, the verifier's
  // message on rejection, EPROTO when the pinned maps have another layout (an older noded).
  static std::expected<ExitRecorder, Error> open(std::string pin_dir);

  ExitRecorder(ExitRecorder&& o) noexcept;
  ExitRecorder& operator=(ExitRecorder&& o) noexcept;
  ExitRecorder(const ExitRecorder&) = delete;
  ExitRecorder& operator=(const ExitRecorder&) = delete;
  ~ExitRecorder() { close(); }

  // Records the exit of process `pid` (host pid namespace) under `cookie`. Replaces an earlier
  // watch of the same pid. REQUIRES: pid is not yet reaped (else it may already be reused).
  std::expected<void, Error> watch(pid_t pid, std::uint64_t cookie);
  // Stops watching `pid`. Not watched is not an error.
  std::expected<void, Error> unwatch(pid_t pid);
  // The recorded exit of (pid, cookie), removed from the map; nullopt if there is none or the
  // record belongs to another cookie (that record is left alone).
  std::optional<ExitStatus> take(pid_t pid, std::uint64_t cookie);

  // Closes the fds; the pins (and so the recording) stay.
  void close();
  bool is_open() const { return watched_fd_ >= 0; }
  const std::string& pin_dir() const { return pin_dir_; }

  // Removes <pin_dir>/{link,watched,exits} and the directory: the program detaches once no fd
  // holds the link any more. For tests and uninstall. Missing pins are fine.
  static void remove_pins(const std::string& pin_dir);

 private:
  ExitRecorder(std::string pin_dir, int watched_fd, int exits_fd)
      : pin_dir_(std::move(pin_dir)), watched_fd_(watched_fd), exits_fd_(exits_fd) {}

  std::string pin_dir_;
  int watched_fd_ = -1;
  int exits_fd_ = -1;
};

}  // namespace podwarp::noded::exitrec
