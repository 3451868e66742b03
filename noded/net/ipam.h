// Ipam: the node's pod IPv4 addresses, taken from the node's podCIDR (Node.spec.podCIDR), one
// per pod UID, persisted so that a restarted noded gives every running pod the address it has.
//
// Persistence: one file per allocated address, <dir>/<ip> (e.g. <root-dir>/net/ipam/10.244.1.7),
// whose content is the pod UID and a newline. A file is written to <dir>/.<ip>.tmp.XXXXXX and renamed
// (atomic: a crash of noded leaves the old state or the new one, never a torn record). Not
// fsynced: records must outlive noded, not the machine (a reboot ends every sandbox; an empty
// record left by a power loss is ignored and its address given again); leftover
// .tmp files are removed by open(). The address is the file name, so two pods can never hold the
// same address, whatever the order of writes.
//
// Allocation: the network address, the first address (reserved for the node: a future host-side
// interface or masquerade source) and the broadcast address are never given out. The search
// starts after the last address given out (round robin), so a released address is reused as
// late as possible (stale connections to a dead pod do not reach its successor at once).
// Addresses recorded outside the current CIDR (the node's podCIDR changed) stay with their pods
// until released.
//
// Not thread-safe: one owner (noded's loop thread, or a test).
#pragma once

#include <expected>
#include <map>
#include <optional>
#include <string>

#include "cgroup/sys_error.h"
#include "net/addr.h"

namespace podwarp::noded::net {

class Ipam {
 public:
  // Creates `dir` if needed and loads its records.
  static std::expected<Ipam, SysError> open(const std::string& dir);

  void set_cidr(const Cidr4& cidr) { cidr_ = cidr; }
  const std::optional<Cidr4>& cidr() const { return cidr_; }

  // The address of `pod_uid`: its recorded one if it has one, else a new one from the CIDR
  // (persisted before returning). Errors: no CIDR yet (code 0), the CIDR is full (ENOSPC),
  // the record cannot be written (its errno), a UID that cannot be a file's content (EINVAL).
  std::expected<Ipv4, SysError> allocate(const std::string& pod_uid);
  // Forgets every address of `pod_uid` (removes its files). Idempotent.
  std::expected<void, SysError> release(const std::string& pod_uid);
  std::optional<Ipv4> lookup(const std::string& pod_uid) const;
  const std::map<Ipv4, std::string>& allocations() const { return by_ip_; }
  // How many addresses the current CIDR can give out in total (0 without a CIDR).
  std::uint64_t capacity() const;
  const std::string& dir() const { return dir_; }

 private:
  bool usable(Ipv4 ip) const;

  std::string dir_;
  std::optional<Cidr4> cidr_;
  std::map<Ipv4, std::string> by_ip_;
  std::optional<Ipv4> last_;
};

}  // namespace podwarp::noded::net
