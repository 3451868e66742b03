// Small helpers shared by noded's BPF users (exitrec: the exit recorder; lb: the service load
// balancer): is a path on a bpffs, mkdir -p for pin folders, and a capture of libbpf's
// diagnostics (the verifier log among them) whose tail goes into error messages.
#pragma once

#include <bpf/libbpf.h>
#include <sys/types.h>

#include <cstddef>
#include <expected>
#include <string>

#include "cgroup/sys_error.h"

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
