// Small helpers shared by noded's BPF users (exitrec: the exit recorder; lb: the service load
// balancer; netpol: NetworkPolicy): is a path on a bpffs, pin folders, reuse of pinned maps,
// tc filters on both directions of an interface, map key listing, and a capture of libbpf's
// diagnostics (the verifier log among them) whose tail goes into error messages.
#pragma once

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/sys_error.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::bpfutil {

bool is_bpffs(const std::string& path);

// Where systemd mounts the machine's bpffs at boot.
inline constexpr const char* kMachineBpffs = "/sys/fs/bpf";

// For a path at or below /sys/fs/bpf: mounts a bpffs on /sys/fs/bpf when none is there, as
// systemd does at boot (hosts that boot without that mount: containers, minimal VMs); the
// mount is the machine's and stays, like systemd's. Under an exclusive lock on /sys/fs/bpf,
// so that two starters do not stack two instances (the later would hide the earlier's pins).
// Any other path: nothing to do.
std::expected<void, SysError> ensure_machine_bpffs(const std::string& path);

// mkdir -p with `mode` for every component it creates; "mkdir <part>: <ERRNO>" on failure.
std::expected<void, SysError> mkdir_p(const std::string& path, mode_t mode = 0700);

// A component's pin folder, locked: `path` (the asked one without trailing slashes) exists and
// `lock` holds an exclusive flock on it, so that two starters do not load and pin at once.
struct PinDir {
  std::string path;
  UniqueFd lock;
};
// Checks that `pin_dir` is absolute and that its nearest existing ancestor is on a bpffs
// (ENOTSUP otherwise; ensure_machine_bpffs first), makes it (mkdir_p) and locks it. `what`
// names the component in messages ("lb pins: /x is not on a bpf filesystem ...").
std::expected<PinDir, SysError> open_pin_dir(const std::string& pin_dir, std::string_view what);

// Before load: when a map is pinned at <dir>/<name of map>, makes `map` use it, with its size.
// A pinned map of another type, key size or value size is refused with EPROTO (pinned by
// another podwarp version; its message says to remove the pins of `dir`). Returns whether a
// pin was reused (false: none there; the map will be created at load and is to be pinned).
std::expected<bool, SysError> reuse_pinned_map(bpf_map* map, const std::string& dir);

// One program of a pair of tc filters.
struct TcProgram {
  bpf_tc_attach_point point;  // BPF_TC_INGRESS or BPF_TC_EGRESS
  int prog_fd;
  std::string_view name;  // for messages
};
// Attaches each program to clsact `point` of `ifindex` (in the calling thread's network
// namespace; clsact is created when missing) as a direct-action filter with this handle and
// priority, replacing the filter already there (BPF_TC_F_REPLACE: no moment without one).
std::expected<void, SysError> attach_tc(int ifindex, std::initializer_list<TcProgram> programs,
                                        std::uint32_t handle, std::uint32_t priority);
// Removes the filters of this handle and priority from clsact ingress and egress (missing
// ones are fine).
std::expected<void, SysError> detach_tc(int ifindex, std::uint32_t handle, std::uint32_t priority);

// Every key of the map at `fd` (bpf_map_get_next_key), listed before the caller changes the
// map. `map` names it in the message of a failure.
template <typename Key>
std::expected<std::vector<Key>, SysError> map_keys(int fd, std::string_view map) {
  std::vector<Key> keys;
  Key next{};
  while (bpf_map_get_next_key(fd, keys.empty() ? nullptr : &keys.back(), &next) == 0)
    keys.push_back(next);
  if (errno != ENOENT)
    return std::unexpected(errno_error("bpf_map_get_next_key " + std::string(map)));
  return keys;
}

// While alive, libbpf's non-debug messages of this thread are kept (libbpf prints through one
// global callback; the previous one is restored at destruction).
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;
  // " (libbpf: <the last `max` characters, one line>)", or "" when libbpf said nothing.
  std::string tail(std::size_t max = 800) const;

 private:
  std::string log_;
  libbpf_print_fn_t previous_;
};

}  // namespace podwarp::noded::bpfutil
