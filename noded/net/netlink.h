// Netlink: the few rtnetlink operations the pod network needs, through libnl-route-3, in the
// network namespace of the thread that opened it (a netlink socket stays bound to the namespace
// it was created in). No shelling out to `ip`.
//
// Every call is synchronous (the kernel answers at once) and returns SysError naming the
// operation and the object: "add veth pw0123456789a (peer eth0): File exists". Idempotent
// variants say so. One Netlink per thread; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cgroup/sys_error.h"
#include "net/addr.h"

namespace podwarp::noded::net {

using Mac = std::array<std::uint8_t, 6>;

struct LinkInfo {
  int ifindex = 0;
  std::string name, kind;  // kind: "veth", "dummy", ... ("" for none)
  std::string alias;       // IFLA_IFALIAS ("" when unset)
  Mac mac{};
  bool up = false;
};

// An IPv4 route in the main table. Without `via` it is a link-scope route out of `oif`.
struct Route4 {
  Cidr4 dst;
  std::optional<Ipv4> via;
  int oif = 0;                // 0: let the kernel resolve it from `via`
  std::uint8_t protocol = 0;  // rtm_protocol; 0 = RTPROT_BOOT as `ip route` would use
  bool operator==(const Route4&) const = default;
};

class Netlink {
 public:
  static std::expected<Netlink, SysError> open();
  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  // Every link of the namespace.
  std::expected<std::vector<LinkInfo>, SysError> links();
  // nullopt when no link has that name.
  std::expected<std::optional<LinkInfo>, SysError> link(const std::string& name);
  // A veth pair: `host_name` here, `peer_name` created directly in the namespace of
  // `peer_netns_fd` (so the pod side never appears in this namespace). Fails if either exists.
  std::expected<void, SysError> add_veth(const std::string& host_name, const std::string& peer_name,
                                         int peer_netns_fd);
  // A link of a kind without lower devices ("dummy", "bridge": the cluster DNS address holder,
  // noded/dns). Fails if it exists; an unknown kind (driver missing) fails with EOPNOTSUPP.
  std::expected<void, SysError> add_virtual_link(const std::string& name, const std::string& kind);
  // Deletes a link (a veth's peer goes with it). Absent: ok.
  std::expected<void, SysError> delete_link(const std::string& name);
  // Sets IFLA_IFALIAS (the pod network records the owning pod's UID there).
  std::expected<void, SysError> set_alias(const std::string& name, const std::string& alias);
  // IFF_UP (no-op if up).
  std::expected<void, SysError> set_up(const std::string& name);
  // Adds addr/prefix to the link; already there: ok.
  std::expected<void, SysError> add_address(int ifindex, Ipv4 addr, int prefix);
  // Creates or replaces (NLM_F_REPLACE: same key, new attributes; traffic is not interrupted).
  std::expected<void, SysError> replace_route(const Route4& r);
  // Absent: ok.
  std::expected<void, SysError> delete_route(const Route4& r);
  // IPv4 routes of the main table with the given protocol.
  std::expected<std::vector<Route4>, SysError> routes(std::uint8_t protocol);
  // A permanent neighbour entry (no ARP needed for `ip` on `ifindex`).
  std::expected<void, SysError> replace_neighbor(int ifindex, Ipv4 ip, const Mac& mac);

 private:
  struct Sock;
  explicit Netlink(std::unique_ptr<Sock> s);
  std::unique_ptr<Sock> sock_;
};

// Writes /proc/sys/net/ipv4/conf/<ifname>/<key> (the calling thread's namespace). Only for
// interfaces the pod network created, and net.ipv4.ip_forward (key "ip_forward", ifname "").
std::expected<void, SysError> set_ipv4_sysctl(const std::string& ifname, const std::string& key,
                                              const std::string& value);

// Runs fn on a new thread that joined the network namespace at `netns_path` (an nsfs pin or
// /proc/<pid>/ns/net); the thread ends after fn, so no thread of the process stays in it.
std::expected<void, SysError> run_in_netns(
    const std::string& netns_path, const std::function<std::expected<void, SysError>()>& fn);

}  // namespace podwarp::noded::net
