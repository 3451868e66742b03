#include "netpol/datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>

#include "bpfutil/bpf_util.h"
#include "lib/netpol.h"
#include "netpol.skel.h"

namespace podwarp::noded::netpol {
namespace {

using netpolicy::EndpointPolicy;
using netpolicy::Prefix;
using netpolicy::Table;

constexpr std::uint8_t kDirs[] = {PODWARP_NP_DIR_INGRESS, PODWARP_NP_DIR_EGRESS};

const std::optional<Table>& table_of(const EndpointPolicy& p, std::uint8_t dir) {
  return dir == PODWARP_NP_DIR_INGRESS ? p.ingress : p.egress;
}

const char* dir_name(std::uint8_t dir) {
  return dir == PODWARP_NP_DIR_INGRESS ? "ingress" : "egress";
}

std::string endpoint_name(std::uint32_t ip, std::uint8_t dir) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{ip};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return std::string(buf) + " " + dir_name(dir);
}

std::uint32_t prefix_mask(std::uint8_t len) {  // network order
  return len == 0 ? 0 : htonl(~0u << (32 - len));
}

podwarp_np_ep_key ep_key(std::uint32_t ip, std::uint8_t dir) {
  podwarp_np_ep_key k{};
  k.addr = ip;
  k.dir = dir;
  return k;
}

podwarp_np_peer_key peer_key(std::uint32_t ip, std::uint8_t dir, const Prefix& p) {
  podwarp_np_peer_key k{};
  k.prefixlen = 64 + p.len;
  k.addr = ip;
  k.dir = dir;
  k.peer = p.addr & prefix_mask(p.len);
  return k;
}

// A table the maps can hold: rule bits below 64, at most PODWARP_NP_MAX_RANGES ranges,
// prefixes of at most 32 bits.
std::expected<void, Error> check_table(std::uint32_t ip, std::uint8_t dir, const Table& t) {
  const std::string what = "netpol table of " + endpoint_name(ip, dir);
  if (t.ranges.size() > PODWARP_NP_MAX_RANGES)
    return std::unexpected(sys_error(E2BIG, what + ": " + std::to_string(t.ranges.size()) +
                                                " port ranges, the maps hold " +
                                                std::to_string(PODWARP_NP_MAX_RANGES)));
  for (const auto& r : t.ranges)
    if (r.rule >= PODWARP_NP_MAX_RULES)
      return std::unexpected(
          sys_error(EINVAL, what + ": rule bit " + std::to_string(r.rule) + " (at most 63)"));
  for (const auto& [p, mask] : t.peers)
    if (p.len > 32)
      return std::unexpected(sys_error(EINVAL, what + ": prefix length " + std::to_string(p.len)));
  return {};
}

podwarp_np_ports ports_value(const Table& t) {
  podwarp_np_ports v{};
  v.count = static_cast<__u32>(t.ranges.size());
  for (std::size_t i = 0; i < t.ranges.size(); ++i) {
    const auto& r = t.ranges[i];
    v.r[i] = podwarp_np_range{r.proto, r.rule, r.lo, r.hi, 0};
  }
  return v;
}

std::expected<void, Error> update(int fd, const void* key, const void* value, const char* map,
                                  const std::string& what) {
  if (bpf_map_update_elem(fd, key, value, BPF_ANY) != 0)
    return std::unexpected(errno_error(std::string("bpf_map_update_elem ") + map + " " + what));
  return {};
}

std::expected<void, Error> remove_key(int fd, const void* key, const char* map,
                                      const std::string& what) {
  if (bpf_map_delete_elem(fd, key) != 0 && errno != ENOENT)
    return std::unexpected(errno_error(std::string("bpf_map_delete_elem ") + map + " " + what));
  return {};
}

// The size of a new map, from the options (the others keep the object's).
std::uint32_t size_for(std::string_view name, const DatapathOptions& o, std::uint32_t fallback) {
  if (name == PODWARP_NP_MAP_PORTS) return o.max_endpoints;
  if (name == PODWARP_NP_MAP_PEERS) return o.max_peers;
  if (name == PODWARP_NP_MAP_CT) return o.max_ct;
  if (name == PODWARP_NP_MAP_FLOWS) return o.flow_ring_bytes;
  return fallback;
}

constexpr std::string_view kCounterNames[] = {
#define PODWARP_NP_COUNTER_NAME_(n, id, name) name,
    PODWARP_NP_COUNTERS(PODWARP_NP_COUNTER_NAME_)
#undef PODWARP_NP_COUNTER_NAME_
};
static_assert(std::size(kCounterNames) == PODWARP_NP_NUM_COUNTERS);

}  // namespace

// What the compiler may produce is what the maps hold.
static_assert(netpolicy::kMaxRules == PODWARP_NP_MAX_RULES);
static_assert(netpolicy::kMaxRanges == PODWARP_NP_MAX_RANGES);
static_assert(sizeof(netpolicy::Range::rule) == sizeof(podwarp_np_range::rule));
static_assert(sizeof(podwarp_np_peer_key) == 16 && sizeof(podwarp_np_ct_key) == 16);

struct Datapath::Impl {
  std::string pin_dir;
  podwarp_netpol_bpf* skel = nullptr;
  int ports = -1, peers = -1, host = -1, config = -1, counters = -1;

  ~Impl() {
    if (skel != nullptr) podwarp_netpol_bpf__destroy(skel);
  }

  // Writes the (changed) peer prefixes of `now`.
  std::expected<void, Error> write_peers(std::uint32_t ip, std::uint8_t dir, const Table* before,
                                         const Table& now) const {
    for (const auto& [p, mask] : now.peers) {
      if (before != nullptr) {
        auto it = before->peers.find(p);
        if (it != before->peers.end() && it->second == mask) continue;
      }
      auto k = peer_key(ip, dir, p);
      __u64 v = mask;
      if (auto r = update(peers, &k, &v, PODWARP_NP_MAP_PEERS, endpoint_name(ip, dir)); !r)
        return r;
    }
    return {};
  }

  // Removes the prefixes of `before` that `now` (nullptr: nothing) does not have.
  std::expected<void, Error> remove_peers(std::uint32_t ip, std::uint8_t dir, const Table& before,
                                          const Table* now) const {
    for (const auto& [p, mask] : before.peers) {
      if (now != nullptr && now->peers.contains(p)) continue;
      auto k = peer_key(ip, dir, p);
      if (auto r = remove_key(peers, &k, PODWARP_NP_MAP_PEERS, endpoint_name(ip, dir)); !r)
        return r;
    }
    return {};
  }
};

std::string_view counter_name(std::uint32_t index) {
  return index < std::size(kCounterNames) ? kCounterNames[index] : std::string_view();
}

Datapath::~Datapath() = default;

std::expected<std::unique_ptr<Datapath>, Error> Datapath::open(const DatapathOptions& options) {
  auto pins = bpfutil::open_pin_dir(options.pin_dir, "netpol");  // locked until the end
  if (!pins) return std::unexpected(pins.error());
  const std::string& dir = pins->path;

  bpfutil::LibbpfLogCapture log;
  auto impl = std::make_unique<Impl>();
  impl->pin_dir = dir;
  impl->skel = podwarp_netpol_bpf__open();
  if (impl->skel == nullptr) return std::unexpected(errno_error("bpf open netpol" + log.tail()));
  std::vector<bpf_map*> to_pin;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, impl->skel->obj) {
    if (bpf_map__is_internal(map)) continue;
    auto reused = bpfutil::reuse_pinned_map(map, dir);
    if (!reused) return std::unexpected(reused.error());
    if (*reused) continue;
    std::uint32_t n = size_for(bpf_map__name(map), options, bpf_map__max_entries(map));
    if (n == 0 || bpf_map__set_max_entries(map, n) != 0)
      return std::unexpected(sys_error(
          EINVAL, std::string("map ") + bpf_map__name(map) + " size " + std::to_string(n)));
    to_pin.push_back(map);
  }
  if (podwarp_netpol_bpf__load(impl->skel) != 0)
    return std::unexpected(errno_error("bpf load netpol" + log.tail()));
  for (bpf_map* m : to_pin) {
    std::string path = dir + "/" + bpf_map__name(m);
    if (bpf_map__pin(m, path.c_str()) != 0)
      return std::unexpected(errno_error("bpf pin " + path + log.tail()));
  }
  const auto& maps = impl->skel->maps;
  impl->ports = bpf_map__fd(maps.pw_np_ports);
  impl->peers = bpf_map__fd(maps.pw_np_peers);
  impl->host = bpf_map__fd(maps.pw_np_host);
  impl->config = bpf_map__fd(maps.pw_np_config);
  impl->counters = bpf_map__fd(maps.pw_np_counters);
  std::unique_ptr<Datapath> dp(new Datapath());
  dp->impl_ = std::move(impl);
  return dp;
}

std::expected<void, Error> Datapath::attach_tc(int ifindex) {
  return bpfutil::attach_tc(ifindex,
                            {{BPF_TC_INGRESS, program_fd("from_pod"), "from_pod"},
                             {BPF_TC_EGRESS, program_fd("to_pod"), "to_pod"}},
                            PODWARP_NP_TC_HANDLE, PODWARP_NP_TC_PRIORITY);
}

std::expected<void, Error> Datapath::detach_tc(int ifindex) {
  return bpfutil::detach_tc(ifindex, PODWARP_NP_TC_HANDLE, PODWARP_NP_TC_PRIORITY);
}

std::expected<void, Error> Datapath::apply(std::uint32_t ip, const EndpointPolicy* before,
                                           const EndpointPolicy& now) {
  auto old_table = [&](std::uint8_t dir) -> const Table* {
    if (before == nullptr) return nullptr;
    const auto& t = table_of(*before, dir);
    return t ? &*t : nullptr;
  };
  for (std::uint8_t dir : kDirs)
    if (const auto& t = table_of(now, dir); t)
      if (auto r = check_table(ip, dir, *t); !r) return r;
  // 1. Peer prefixes: new bits may appear before a table uses them.
  for (std::uint8_t dir : kDirs)
    if (const auto& t = table_of(now, dir); t)
      if (auto r = impl_->write_peers(ip, dir, old_table(dir), *t); !r) return r;
  // 2. Port tables: a new one isolates the endpoint from here on.
  for (std::uint8_t dir : kDirs) {
    const auto& t = table_of(now, dir);
    const Table* old = old_table(dir);
    if (!t || (old != nullptr && old->ranges == t->ranges)) continue;
    auto k = ep_key(ip, dir);
    auto v = ports_value(*t);
    if (auto r = update(impl_->ports, &k, &v, PODWARP_NP_MAP_PORTS, endpoint_name(ip, dir)); !r)
      return r;
  }
  // 3. Removals: a table no longer there (the endpoint is not isolated that way any more),
  // then the prefixes nothing uses.
  for (std::uint8_t dir : kDirs) {
    const Table* old = old_table(dir);
    if (old == nullptr) continue;
    const auto& t = table_of(now, dir);
    if (!t) {
      auto k = ep_key(ip, dir);
      if (auto r = remove_key(impl_->ports, &k, PODWARP_NP_MAP_PORTS, endpoint_name(ip, dir)); !r)
        return r;
    }
    if (auto r = impl_->remove_peers(ip, dir, *old, t ? &*t : nullptr); !r) return r;
  }
  return {};
}

std::expected<void, Error> Datapath::remove(std::uint32_t ip, const EndpointPolicy& before) {
  for (std::uint8_t dir : kDirs) {
    auto k = ep_key(ip, dir);
    if (auto r = remove_key(impl_->ports, &k, PODWARP_NP_MAP_PORTS, endpoint_name(ip, dir)); !r)
      return r;
  }
  for (std::uint8_t dir : kDirs)
    if (const auto& t = table_of(before, dir); t)
      if (auto r = impl_->remove_peers(ip, dir, *t, nullptr); !r) return r;
  return {};
}

std::expected<int, Error> Datapath::prune(std::span<const std::uint32_t> keep) {
  const std::set<std::uint32_t> kept(keep.begin(), keep.end());
  auto tables = bpfutil::map_keys<podwarp_np_ep_key>(impl_->ports, PODWARP_NP_MAP_PORTS);
  if (!tables) return std::unexpected(tables.error());
  auto prefixes = bpfutil::map_keys<podwarp_np_peer_key>(impl_->peers, PODWARP_NP_MAP_PEERS);
  if (!prefixes) return std::unexpected(prefixes.error());
  std::set<std::uint32_t> dropped;
  auto drop = [&](int fd, const char* map, const auto& keys) -> std::expected<void, Error> {
    for (const auto& k : keys) {
      if (kept.contains(k.addr)) continue;
      if (auto r = remove_key(fd, &k, map, endpoint_name(k.addr, k.dir)); !r) return r;
      dropped.insert(k.addr);
    }
    return {};
  };
  // Tables first: an endpoint never has a table without its prefixes.
  if (auto r = drop(impl_->ports, PODWARP_NP_MAP_PORTS, *tables); !r)
    return std::unexpected(r.error());
  if (auto r = drop(impl_->peers, PODWARP_NP_MAP_PEERS, *prefixes); !r)
    return std::unexpected(r.error());
  return static_cast<int>(dropped.size());
}

std::expected<EndpointPolicy, Error> Datapath::read(std::uint32_t ip) const {
  EndpointPolicy out;
  auto prefixes = bpfutil::map_keys<podwarp_np_peer_key>(impl_->peers, PODWARP_NP_MAP_PEERS);
  if (!prefixes) return std::unexpected(prefixes.error());
  for (std::uint8_t dir : kDirs) {
    auto k = ep_key(ip, dir);
    podwarp_np_ports v{};
    if (bpf_map_lookup_elem(impl_->ports, &k, &v) != 0) {
      if (errno == ENOENT) continue;
      return std::unexpected(
          errno_error("bpf_map_lookup_elem " PODWARP_NP_MAP_PORTS " " + endpoint_name(ip, dir)));
    }
    Table t;
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(v.count, PODWARP_NP_MAX_RANGES); ++i)
      t.ranges.push_back({v.r[i].proto, v.r[i].rule, v.r[i].lo, v.r[i].hi});
    for (const auto& pk : *prefixes) {
      if (pk.addr != ip || pk.dir != dir || pk.prefixlen < 64) continue;
      __u64 mask = 0;
      if (bpf_map_lookup_elem(impl_->peers, &pk, &mask) != 0) continue;  // removed meanwhile
      t.peers[Prefix{pk.peer, static_cast<std::uint8_t>(pk.prefixlen - 64)}] = mask;
    }
    (dir == PODWARP_NP_DIR_INGRESS ? out.ingress : out.egress) = std::move(t);
  }
  return out;
}

std::expected<void, Error> Datapath::commit() {
  __u32 zero = 0;
  podwarp_np_config c{};
  if (bpf_map_lookup_elem(impl_->config, &zero, &c) != 0)
    return std::unexpected(errno_error("bpf_map_lookup_elem " PODWARP_NP_MAP_CONFIG));
  ++c.generation;
  return update(impl_->config, &zero, &c, PODWARP_NP_MAP_CONFIG, "generation");
}

std::expected<void, Error> Datapath::set_host_addresses(std::span<const std::uint32_t> addrs) {
  const std::set<std::uint32_t> want(addrs.begin(), addrs.end());
  if (want.size() > PODWARP_NP_MAX_HOST_ADDRS)
    return std::unexpected(
        sys_error(E2BIG, "netpol host addresses: " + std::to_string(want.size()) + ", at most " +
                             std::to_string(PODWARP_NP_MAX_HOST_ADDRS)));
  auto have = bpfutil::map_keys<__be32>(impl_->host, PODWARP_NP_MAP_HOST);
  if (!have) return std::unexpected(have.error());
  // Stale ones first, so that the map never needs room for both sets.
  for (__be32 a : *have)
    if (!want.contains(a))
      if (auto r = remove_key(impl_->host, &a, PODWARP_NP_MAP_HOST, "host address"); !r) return r;
  for (std::uint32_t a : want) {
    __u8 one = 1;
    if (auto r = update(impl_->host, &a, &one, PODWARP_NP_MAP_HOST, "host address"); !r) return r;
  }
  return {};
}

std::expected<std::vector<Counter>, Error> Datapath::counters() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return std::unexpected(sys_error(-ncpu, "libbpf_num_possible_cpus"));
  std::vector<podwarp_np_counter> per_cpu(static_cast<std::size_t>(ncpu));
  std::vector<Counter> out;
  for (__u32 i = 0; i < PODWARP_NP_NUM_COUNTERS; ++i) {
    Counter c{kCounterNames[i]};
    if (bpf_map_lookup_elem(impl_->counters, &i, per_cpu.data()) != 0) {
      // A map pinned by an older build, with fewer counters: the newer ones are not counted.
      if (errno == ENOENT) {
        out.push_back(c);
        continue;
      }
      return std::unexpected(errno_error("bpf_map_lookup_elem " PODWARP_NP_MAP_COUNTERS));
    }
    for (const auto& v : per_cpu) {
      c.packets += v.packets;
      c.bytes += v.bytes;
    }
    out.push_back(c);
  }
  return out;
}

int Datapath::program_fd(std::string_view name) const {
  std::string n(name);
  bpf_program* p = bpf_object__find_program_by_name(impl_->skel->obj, n.c_str());
  return p == nullptr ? -1 : bpf_program__fd(p);
}

int Datapath::map_fd(std::string_view name) const {
  std::string n(name);
  bpf_map* m = bpf_object__find_map_by_name(impl_->skel->obj, n.c_str());
  return m == nullptr ? -1 : bpf_map__fd(m);
}

std::expected<void, Error> Datapath::remove_pins(const std::string& pin_dir) {
  // Every map pin of ours (pw_np_*), also those of a build with more maps than this one.
  DIR* d = ::opendir(pin_dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return {};
    return std::unexpected(errno_error("opendir " + pin_dir));
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d))
    if (std::string_view(e->d_name).starts_with("pw_np_")) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& n : names) {
    std::string path = pin_dir + "/" + n;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return std::unexpected(errno_error("unlink " + path));
  }
  // The folder goes when it is empty (it may hold other components' pins).
  if (::rmdir(pin_dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY)
    return std::unexpected(errno_error("rmdir " + pin_dir));
  return {};
}

}  // namespace podwarp::noded::netpol
