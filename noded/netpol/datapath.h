// netpol::Datapath: the kernel side of NetworkPolicy enforcement. Loads bpf/netpol.bpf.c
// (embedded skeleton), pins its maps under a bpffs directory, attaches its two tc programs to
// the host side of pod veths, and writes the compiled tables of netpolicy/ into the maps.
//
// Pin layout (<pin_dir> on bpffs, e.g. /sys/fs/bpf/podwarp-noded/netpol): <pin_dir>/pw_np_*,
// the flow event ring pw_np_flows among them (read by FlowReader, flow_events.h).
// The tc filters (clsact ingress = from the pod, egress = to the pod; handle
// PODWARP_NP_TC_HANDLE, priority PODWARP_NP_TC_PRIORITY) are held by the kernel and go with the
// veth. A restarted noded's open() reuses the pinned maps (enforcement continues meanwhile
// through the old programs), and attach_tc() replaces the filters atomically. Pins of another
// layout (key/value sizes differ) are refused with EPROTO; remove_pins() is the way out.
//
// Threading: the map calls are single bpf() syscalls; open/attach are for one thread.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cgroup/sys_error.h"
#include "netpolicy/compile.h"

namespace podwarp::noded::netpol {

using Error = SysError;

struct DatapathOptions {
  std::string pin_dir;  // absolute; its nearest existing ancestor must be on bpffs
  std::uint32_t max_endpoints = 1024;  // pw_np_ports entries (new maps only)
  std::uint32_t max_peers = 262144;
  std::uint32_t max_ct = 262144;
  // pw_np_flows (new maps only): a power of 2 and a multiple of the page size.
  std::uint32_t flow_ring_bytes = 256 * 1024;
};

struct Counter {
  std::string_view name;  // PODWARP_NP_COUNTERS names ("AllowedNew", "DeniedIngress", ...)
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

// The PODWARP_NP_COUNTERS name of a counter index ("AllowedNew", ...); "" beyond the last.
std::string_view counter_name(std::uint32_t index);

class Datapath {
 public:
  static std::expected<std::unique_ptr<Datapath>, Error> open(const DatapathOptions& options);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // Attaches both programs to clsact of `ifindex` (a pod's host-side veth) in the calling
  // thread's network namespace, replacing podwarp's earlier netpol filters there.
  std::expected<void, Error> attach_tc(int ifindex);
  std::expected<void, Error> detach_tc(int ifindex);

  // Makes the maps hold `now` for the endpoint `ip` (network order), given that they hold
  // `before` (nullptr: nothing). Writes only the difference: peer prefixes first, then the
  // port tables, then removals, so a table never points at bits whose peers are missing.
  // Does not bump the generation (commit() does, once per batch).
  std::expected<void, Error> apply(std::uint32_t ip, const netpolicy::EndpointPolicy* before,
                                   const netpolicy::EndpointPolicy& now);
  // Removes everything of the endpoint (its pod is gone); `before` is what the maps hold.
  std::expected<void, Error> remove(std::uint32_t ip, const netpolicy::EndpointPolicy& before);
  // Drops every table and peer entry of endpoints not in `keep` (after a restart: tables of
  // pods that went while noded was down). Returns how many endpoints were dropped.
  std::expected<int, Error> prune(std::span<const std::uint32_t> keep);
  // Reads back the tables of one endpoint (what the maps hold), for recovery and tests.
  std::expected<netpolicy::EndpointPolicy, Error> read(std::uint32_t ip) const;

  // Ends a batch: bumps pw_np_config.generation, so tracked flows are checked again.
  std::expected<void, Error> commit();
  // The node's own IPv4 addresses (network order), always allowed; replaces the set.
  std::expected<void, Error> set_host_addresses(std::span<const std::uint32_t> addrs);

  // Every PODWARP_NP_COUNTERS entry; those a reused older (smaller) map lacks read as 0.
  std::expected<std::vector<Counter>, Error> counters() const;
  // For tests: fd of a program ("from_pod", "to_pod") or map (netpol.h name); -1 if none.
  int program_fd(std::string_view name) const;
  int map_fd(std::string_view name) const;

  // Removes the pins (the maps die with the last program using them).
  static std::expected<void, Error> remove_pins(const std::string& pin_dir);

 private:
  Datapath() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::netpol
