// Datapath: the kernel side of podwarp's service load balancer. Loads bpf/sock_lb.bpf.c and
// bpf/nodeport.bpf.c (embedded skeletons), pins their maps under a bpffs directory, attaches
// the socket programs to cgroups and the tc programs to interfaces, and exposes the maps
// (LbMaps for ServiceMap; counters, node addresses, config).
//
// Pin layout (<pin_dir> must be on bpffs, e.g. /sys/fs/bpf/podwarp/lb):
//   <pin_dir>/pw_lb_*                 the maps (bpf/lib/lb.h names)
//   <pin_dir>/links/cg-<cgroup id>-<program>   cgroup links (one per socket hook)
// tc filters are held by the kernel (clsact, handle PODWARP_LB_TC_HANDLE, priority 1), not
// pinned. Everything outlives the process: a restarted noded's open() reuses the pinned maps
// (their contents keep serving traffic meanwhile, through the old programs), loads the new
// programs against them, and attach_cgroup()/attach_tc() swap the new programs in atomically
// (bpf_link_update, tc replace). Maps of another layout (an incompatible podwarp) are refused
// with EPROTO; remove_pins() is the way out.
//
// Threading: the map calls are single bpf() syscalls and may be called concurrently; open,
// attach and detach are meant for one thread. open() is serialized per pin_dir (flock).
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lb/lb_types.h"
#include "lb/maps.h"

namespace podwarp::noded::lb {

// max_entries of maps created by open(); maps that are already pinned keep their size.
struct MapSizes {
  std::uint32_t services = PODWARP_LB_DEFAULT_MAX_SERVICES;
  std::uint32_t backends = PODWARP_LB_DEFAULT_MAX_BACKENDS;
  std::uint32_t members = PODWARP_LB_DEFAULT_MAX_MEMBERS;
  std::uint32_t affinity = PODWARP_LB_DEFAULT_MAX_AFFINITY;
  std::uint32_t sock_revnat = PODWARP_LB_DEFAULT_MAX_SOCK_REVNAT;
  std::uint32_t ct4 = PODWARP_LB_DEFAULT_MAX_CT4;
  // Slots for the translations of connected sockets; a power of two (rounded up otherwise).
  std::uint32_t sock_slots = PODWARP_LB_DEFAULT_SOCK_SLOTS;
};

struct DatapathOptions {
  std::string pin_dir;  // absolute; its nearest existing ancestor must be on bpffs
  MapSizes sizes;
  bool nodeport = true;  // also load the tc NodePort programs
};

enum class Program {
  Connect4,
  Sendmsg4,
  Recvmsg4,
  Getpeername4,
  Connect6,
  Sendmsg6,
  Recvmsg6,
  Getpeername6,
  SockRelease,
  NodePortIngress,
  NodePortEgress,
};

struct Counter {
  std::uint32_t index = 0;
  std::string_view name;  // "NoBackend", "SockConnectTranslated", ... (lb.h)
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

struct Counters {
  std::vector<Counter> drops;   // every reason of PODWARP_LB_DROP_REASONS, in order
  std::vector<Counter> events;  // every event of PODWARP_LB_EVENTS
  // Packets (or socket calls) counted under a name; 0 for unknown names.
  std::uint64_t drop(std::string_view name) const;
  std::uint64_t event(std::string_view name) const;
};

// The reason name of a drop index ("NoBackend"), "" if unknown; and the same for events.
std::string_view drop_reason_name(std::uint32_t index);
std::string_view event_name(std::uint32_t index);

struct NodePortConfig {
  std::uint32_t snat_v4_net = 0;  // SNAT source towards remote backends (network order); 0:
                                  // the node address the client used
  std::uint16_t snat_port_min = PODWARP_LB_SNAT_PORT_MIN_DEFAULT;
  std::uint16_t snat_port_max = PODWARP_LB_SNAT_PORT_MAX_DEFAULT;
};

// An IPv4 prefix ("10.244.0.0/16"); addr_net in network order, host bits zero.
struct Ipv4Cidr {
  std::uint32_t addr_net = 0;
  std::uint8_t prefix = 0;  // 0..32

  // "10.244.0.0/16" (host bits set are rejected, as the API does) or a bare address (/32).
  static std::optional<Ipv4Cidr> parse(std::string_view text);
  bool contains(std::uint32_t addr_net) const;
  std::string to_string() const;
  auto operator<=>(const Ipv4Cidr&) const = default;
};

// Egress masquerade (tc egress of attach_tc()'d interfaces, bpf/nodeport.bpf.c): a packet from
// `sources` to a destination outside `exempt` (and not a node address) leaving an interface of
// set_masquerade_interfaces() gets that interface's address and a port of the SNAT range.
struct MasqueradeConfig {
  std::vector<Ipv4Cidr> sources;  // the pods: the cluster CIDRs (and the node's podCIDR)
  std::vector<Ipv4Cidr> exempt;   // destinations inside the cluster: the cluster CIDRs
};

struct MasqueradeInterface {
  int ifindex = 0;
  std::uint32_t addr_net = 0;  // the node's IPv4 on it (network order)
};

class Datapath {
 public:
  static std::expected<std::unique_ptr<Datapath>, Error> open(const DatapathOptions& options);
  ~Datapath();
  Datapath(const Datapath&) = delete;
  Datapath& operator=(const Datapath&) = delete;

  // The service maps, for ServiceMap.
  LbMaps& maps();

  // Attaches the 8 socket programs to the cgroup v2 directory (links pinned; an existing
  // attachment of this pin dir is updated in place). Only for cgroups podwarp created.
  std::expected<void, Error> attach_cgroup(const std::string& cgroup_dir);
  // Detaches them and removes the link pins. Not attached is fine.
  std::expected<void, Error> detach_cgroup(const std::string& cgroup_dir);
  // Removes link pins whose cgroup is gone (pods deleted while noded was down).
  std::expected<int, Error> prune_cgroup_links();

  // Attaches the NodePort programs to clsact ingress/egress of `ifindex` in the calling
  // thread's network namespace (replacing podwarp's earlier filters there).
  std::expected<void, Error> attach_tc(int ifindex);
  std::expected<void, Error> detach_tc(int ifindex);

  // The node's addresses (NodePort frontends match them); replaces the previous set.
  std::expected<void, Error> set_node_addresses(std::span<const IpAddr> addrs);
  std::expected<void, Error> set_nodeport_config(const NodePortConfig& config);
  // Egress masquerade: the CIDRs (replaces both sets; empty sources = no masquerade) and the
  // interfaces it happens on with their addresses (replaces the previous set).
  std::expected<void, Error> set_masquerade(const MasqueradeConfig& config);
  std::expected<void, Error> set_masquerade_interfaces(std::span<const MasqueradeInterface> ifs);
  std::expected<Counters, Error> counters() const;

  // For tests: the fd of a program (BPF_PROG_TEST_RUN) and of a map by name (lb.h names);
  // -1 if not loaded.
  int program_fd(Program p) const;
  int map_fd(std::string_view name) const;
  const std::string& pin_dir() const;

  // Unlinks every pin of <pin_dir> (maps and links: the cgroup programs detach) and the
  // directory. tc filters are not pins: detach_tc() them first. Missing pins are fine.
  static void remove_pins(const std::string& pin_dir);

 private:
  struct Impl;
  explicit Datapath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::lb
