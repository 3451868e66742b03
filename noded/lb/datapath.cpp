#include "lb/datapath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "bpfutil/bpf_util.h"
#include "nodeport.skel.h"
#include "sock_lb.skel.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::lb {
namespace {

using bpfutil::LibbpfLogCapture;
using bpfutil::mkdir_p;

using Fd = UniqueFd;

std::uint32_t size_for(std::string_view name, const MapSizes& s, std::uint32_t fallback) {
  if (name == PODWARP_LB_MAP_SERVICES) return s.services;
  if (name == PODWARP_LB_MAP_BACKENDS) return s.backends;
  if (name == PODWARP_LB_MAP_MEMBERS) return s.members;
  if (name == PODWARP_LB_MAP_AFFINITY) return s.affinity;
  if (name == PODWARP_LB_MAP_SOCK_REVNAT) return s.sock_revnat;
  if (name == PODWARP_LB_MAP_CT4) return s.ct4;
  if (name == PODWARP_LB_MAP_SOCK_SLOTS) return std::bit_ceil(std::max<std::uint32_t>(s.sock_slots, 1));
  return fallback;
}

// Before load: a map pinned at <dir>/<name> is reused (after a layout check); a new one gets
// its configured size. Returns whether the map must be pinned after load.
std::expected<bool, Error> prepare_map(bpf_map* map, const std::string& dir,
                                       const MapSizes& sizes) {
  auto reused = bpfutil::reuse_pinned_map(map, dir);
  if (!reused) return std::unexpected(reused.error());
  if (*reused) return false;
  std::string name = bpf_map__name(map);
  std::uint32_t n = size_for(name, sizes, bpf_map__max_entries(map));
  // Socket storage has no size (max_entries 0); every other map needs one.
  if (bpf_map__type(map) != BPF_MAP_TYPE_SK_STORAGE &&
      (n == 0 || bpf_map__set_max_entries(map, n) != 0))
    return std::unexpected(sys_error(EINVAL, "map " + name + " size " + std::to_string(n)));
  return true;
}

const char* program_name(Program p) {
  switch (p) {
    case Program::Connect4:
      return "pw_connect4";
    case Program::Sendmsg4:
      return "pw_sendmsg4";
    case Program::Recvmsg4:
      return "pw_recvmsg4";
    case Program::Getpeername4:
      return "pw_getpeername4";
    case Program::Connect6:
      return "pw_connect6";
    case Program::Sendmsg6:
      return "pw_sendmsg6";
    case Program::Recvmsg6:
      return "pw_recvmsg6";
    case Program::Getpeername6:
      return "pw_getpeername6";
    case Program::SockRelease:
      return "pw_sock_release";
    case Program::NodePortIngress:
      return "pw_nodeport_ingress";
    case Program::NodePortEgress:
      return "pw_nodeport_egress";
  }
  return "";
}

constexpr Program kSockPrograms[] = {
    Program::Connect4, Program::Sendmsg4, Program::Recvmsg4,     Program::Getpeername4,
    Program::Connect6, Program::Sendmsg6, Program::Recvmsg6,     Program::Getpeername6,
    Program::SockRelease};

// LbMaps over the pinned maps' fds: one bpf() syscall per call.
class BpfLbMaps : public LbMaps {
 public:
  BpfLbMaps(int services, int backends, int members)
      : services_(services), backends_(backends), members_(members) {}

  std::expected<void, Error> update_service(const podwarp_lb_svc_key& k,
                                            const podwarp_lb_svc& v) override {
    return update(services_, &k, &v, PODWARP_LB_MAP_SERVICES);
  }
  std::expected<void, Error> delete_service(const podwarp_lb_svc_key& k) override {
    return remove(services_, &k, PODWARP_LB_MAP_SERVICES);
  }
  std::expected<void, Error> update_backend(std::uint32_t id,
                                            const podwarp_lb_backend& v) override {
    return update(backends_, &id, &v, PODWARP_LB_MAP_BACKENDS);
  }
  std::expected<void, Error> delete_backend(std::uint32_t id) override {
    return remove(backends_, &id, PODWARP_LB_MAP_BACKENDS);
  }
  std::expected<void, Error> update_member(const podwarp_lb_member_key& k) override {
    __u32 one = 1;
    return update(members_, &k, &one, PODWARP_LB_MAP_MEMBERS);
  }
  std::expected<void, Error> delete_member(const podwarp_lb_member_key& k) override {
    return remove(members_, &k, PODWARP_LB_MAP_MEMBERS);
  }
  std::expected<void, Error> for_each_service(const ServiceFn& fn) override {
    return scan<podwarp_lb_svc_key, podwarp_lb_svc>(
        services_, PODWARP_LB_MAP_SERVICES,
        [&](const podwarp_lb_svc_key& k, const podwarp_lb_svc& v) { fn(k, v); });
  }
  std::expected<void, Error> for_each_backend(const BackendFn& fn) override {
    return scan<__u32, podwarp_lb_backend>(
        backends_, PODWARP_LB_MAP_BACKENDS,
        [&](const __u32& k, const podwarp_lb_backend& v) { fn(k, v); });
  }
  std::expected<void, Error> for_each_member(const MemberFn& fn) override {
    return scan<podwarp_lb_member_key, __u32>(
        members_, PODWARP_LB_MAP_MEMBERS,
        [&](const podwarp_lb_member_key& k, const __u32&) { fn(k); });
  }

 private:
  static std::expected<void, Error> update(int fd, const void* k, const void* v, const char* map) {
    if (bpf_map_update_elem(fd, k, v, BPF_ANY) != 0)
      return std::unexpected(errno_error(std::string("bpf_map_update_elem ") + map));
    return {};
  }
  static std::expected<void, Error> remove(int fd, const void* k, const char* map) {
    if (bpf_map_delete_elem(fd, k) != 0 && errno != ENOENT)
      return std::unexpected(errno_error(std::string("bpf_map_delete_elem ") + map));
    return {};
  }
  template <typename K, typename V, typename F>
  static std::expected<void, Error> scan(int fd, const char* map, F fn) {
    K key{}, next{};
    V value{};
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      if (bpf_map_lookup_elem(fd, &next, &value) == 0) fn(next, value);
      key = next;
      prev = &key;
    }
    if (errno != ENOENT)
      return std::unexpected(errno_error(std::string("bpf_map_get_next_key ") + map));
    return {};
  }

  int services_, backends_, members_;
};

std::expected<std::uint64_t, Error> cgroup_id(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return std::unexpected(errno_error("stat " + dir));
  if (!S_ISDIR(st.st_mode)) return std::unexpected(sys_error(ENOTDIR, "cgroup " + dir));
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return std::unexpected(errno_error("statfs " + dir));
  if (fs.f_type != static_cast<decltype(fs.f_type)>(CGROUP2_SUPER_MAGIC))
    return std::unexpected(sys_error(EINVAL, "attach to " + dir + ": not a cgroup2 directory"));
  return static_cast<std::uint64_t>(st.st_ino);
}

}  // namespace

struct Datapath::Impl {
  std::string pin_dir;
  podwarp_sock_lb_bpf* sock = nullptr;
  podwarp_nodeport_bpf* nodeport = nullptr;
  std::unique_ptr<BpfLbMaps> maps;

  ~Impl() {
    if (nodeport != nullptr) podwarp_nodeport_bpf__destroy(nodeport);
    if (sock != nullptr) podwarp_sock_lb_bpf__destroy(sock);
  }

  bpf_program* program(Program p) const {
    if (p == Program::NodePortIngress || p == Program::NodePortEgress) {
      if (nodeport == nullptr) return nullptr;
      return bpf_object__find_program_by_name(nodeport->obj, program_name(p));
    }
    return bpf_object__find_program_by_name(sock->obj, program_name(p));
  }
  std::string link_pin(std::uint64_t cg, Program p) const {
    return pin_dir + "/links/cg-" + std::to_string(cg) + "-" + program_name(p);
  }
};

Datapath::Datapath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Datapath::~Datapath() = default;

LbMaps& Datapath::maps() { return *impl_->maps; }
const std::string& Datapath::pin_dir() const { return impl_->pin_dir; }

std::expected<std::unique_ptr<Datapath>, Error> Datapath::open(const DatapathOptions& options) {
  auto pins = bpfutil::open_pin_dir(options.pin_dir, "lb");  // locked until the end
  if (!pins) return std::unexpected(pins.error());
  const std::string& dir = pins->path;
  if (auto made = mkdir_p(dir + "/links"); !made) return std::unexpected(made.error());

  LibbpfLogCapture log;
  auto impl = std::make_unique<Impl>();
  impl->pin_dir = dir;

  // Socket programs first: they create (or reuse) every shared map.
  impl->sock = podwarp_sock_lb_bpf__open();
  if (impl->sock == nullptr) return std::unexpected(errno_error("bpf open sock_lb" + log.tail()));
  std::vector<bpf_map*> to_pin;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, impl->sock->obj) {
    if (bpf_map__is_internal(map)) continue;
    auto pin = prepare_map(map, dir, options.sizes);
    if (!pin) return std::unexpected(pin.error());
    if (*pin) to_pin.push_back(map);
  }
  // The slot of a socket is (cookie & mask): the mask follows the slot map's size, which a
  // pinned map may have chosen before this start.
  std::uint32_t slots = bpf_map__max_entries(impl->sock->maps.pw_lb_sk_slots);
  if (!std::has_single_bit(slots))
    return std::unexpected(sys_error(
        EPROTO, "map " PODWARP_LB_MAP_SOCK_SLOTS " has " + std::to_string(slots) +
                    " entries, not a power of two (remove the pins of " + dir + ")"));
  impl->sock->rodata->pw_lb_sk_slot_mask = slots - 1;
  if (podwarp_sock_lb_bpf__load(impl->sock) != 0)
    return std::unexpected(errno_error("bpf load sock_lb" + log.tail()));

  if (options.nodeport) {
    impl->nodeport = podwarp_nodeport_bpf__open();
    if (impl->nodeport == nullptr)
      return std::unexpected(errno_error("bpf open nodeport" + log.tail()));
    bpf_object__for_each_map(map, impl->nodeport->obj) {
      if (bpf_map__is_internal(map)) continue;
      bpf_map* shared = bpf_object__find_map_by_name(impl->sock->obj, bpf_map__name(map));
      if (shared != nullptr) {
        bpf_map__set_max_entries(map, bpf_map__max_entries(shared));
        if (bpf_map__reuse_fd(map, bpf_map__fd(shared)) != 0)
          return std::unexpected(
              errno_error(std::string("bpf_map__reuse_fd ") + bpf_map__name(map)));
        continue;
      }
      auto pin = prepare_map(map, dir, options.sizes);
      if (!pin) return std::unexpected(pin.error());
      if (*pin) to_pin.push_back(map);
    }
    if (podwarp_nodeport_bpf__load(impl->nodeport) != 0)
      return std::unexpected(errno_error("bpf load nodeport" + log.tail()));
  }
  for (bpf_map* m : to_pin) {
    std::string path = dir + "/" + bpf_map__name(m);
    if (bpf_map__pin(m, path.c_str()) != 0)
      return std::unexpected(errno_error("bpf pin " + path + log.tail()));
  }
  impl->maps = std::make_unique<BpfLbMaps>(bpf_map__fd(impl->sock->maps.pw_lb_services),
                                           bpf_map__fd(impl->sock->maps.pw_lb_backends),
                                           bpf_map__fd(impl->sock->maps.pw_lb_members));
  return std::unique_ptr<Datapath>(new Datapath(std::move(impl)));
}

int Datapath::program_fd(Program p) const {
  bpf_program* prog = impl_->program(p);
  return prog == nullptr ? -1 : bpf_program__fd(prog);
}

int Datapath::map_fd(std::string_view name) const {
  std::string n(name);
  bpf_map* m = bpf_object__find_map_by_name(impl_->sock->obj, n.c_str());
  if (m == nullptr && impl_->nodeport != nullptr)
    m = bpf_object__find_map_by_name(impl_->nodeport->obj, n.c_str());
  return m == nullptr ? -1 : bpf_map__fd(m);
}

std::expected<void, Error> Datapath::attach_cgroup(const std::string& cgroup_dir) {
  auto id = cgroup_id(cgroup_dir);
  if (!id) return std::unexpected(id.error());
  Fd cg(::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (cg.get() < 0) return std::unexpected(errno_error("open " + cgroup_dir));
  std::vector<std::string> created;
  auto fail = [&](Error e) -> std::expected<void, Error> {
    for (const auto& pin : created) {
      int fd = bpf_obj_get(pin.c_str());
      if (fd >= 0) {
        bpf_link_detach(fd);
        ::close(fd);
      }
      ::unlink(pin.c_str());
    }
    return std::unexpected(e);
  };
  for (Program p : kSockPrograms) {
    bpf_program* prog = impl_->program(p);
    std::string pin = impl_->link_pin(*id, p);
    int old = bpf_obj_get(pin.c_str());
    if (old >= 0) {
      Fd owned(old);
      if (bpf_link_update(old, bpf_program__fd(prog), nullptr) == 0) continue;
      ::unlink(pin.c_str());  // a dead link: attach anew
    }
    bpf_link* link = bpf_program__attach_cgroup(prog, cg.get());
    if (link == nullptr)
      return fail(
          errno_error(std::string("bpf attach ") + program_name(p) + " to cgroup " + cgroup_dir));
    int r = bpf_link__pin(link, pin.c_str());
    int err = errno;
    if (r != 0) bpf_link__detach(link);
    bpf_link__destroy(link);
    if (r != 0) return fail(sys_error(err, "bpf pin " + pin));
    created.push_back(pin);
  }
  return {};
}

std::expected<void, Error> Datapath::detach_cgroup(const std::string& cgroup_dir) {
  auto id = cgroup_id(cgroup_dir);
  if (!id) return std::unexpected(id.error());
  for (Program p : kSockPrograms) {
    std::string pin = impl_->link_pin(*id, p);
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) continue;
    bpf_link_detach(fd);
    ::close(fd);
    if (::unlink(pin.c_str()) != 0 && errno != ENOENT)
      return std::unexpected(errno_error("unlink " + pin));
  }
  return {};
}

std::expected<int, Error> Datapath::prune_cgroup_links() {
  std::string links = impl_->pin_dir + "/links";
  DIR* d = ::opendir(links.c_str());
  if (d == nullptr) return std::unexpected(errno_error("opendir " + links));
  std::vector<std::string> dead;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("cg-", 0) != 0) continue;
    std::string path = links + "/" + name;
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) continue;
    struct bpf_link_info info {};
    __u32 len = sizeof info;
    bool gone = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_CGROUP &&
                info.cgroup.cgroup_id == 0;
    ::close(fd);
    if (gone) dead.push_back(path);
  }
  ::closedir(d);
  for (const auto& p : dead) ::unlink(p.c_str());
  return static_cast<int>(dead.size());
}

std::expected<void, Error> Datapath::attach_tc(int ifindex) {
  if (impl_->nodeport == nullptr)
    return std::unexpected(sys_error(ENOTSUP, "attach tc: nodeport programs not loaded"));
  return bpfutil::attach_tc(
      ifindex,
      {{BPF_TC_INGRESS, program_fd(Program::NodePortIngress),
        program_name(Program::NodePortIngress)},
       {BPF_TC_EGRESS, program_fd(Program::NodePortEgress), program_name(Program::NodePortEgress)}},
      PODWARP_LB_TC_HANDLE, PODWARP_LB_TC_PRIORITY);
}

std::expected<void, Error> Datapath::detach_tc(int ifindex) {
  return bpfutil::detach_tc(ifindex, PODWARP_LB_TC_HANDLE, PODWARP_LB_TC_PRIORITY);
}

std::expected<void, Error> Datapath::set_node_addresses(std::span<const IpAddr> addrs) {
  int fd = map_fd(PODWARP_LB_MAP_NODE_ADDRS);
  std::set<IpAddr> want(addrs.begin(), addrs.end());
  std::vector<podwarp_lb_node_addr_key> stale;
  podwarp_lb_node_addr_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    IpAddr a;
    std::memcpy(a.bytes.data(), next.addr, 16);
    if (!want.contains(a)) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const auto& k : stale) bpf_map_delete_elem(fd, &k);
  for (const auto& a : want) {
    podwarp_lb_node_addr_key k{};
    std::memcpy(k.addr, a.bytes.data(), 16);
    __u8 one = 1;
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0)
      return std::unexpected(
          errno_error("bpf_map_update_elem " PODWARP_LB_MAP_NODE_ADDRS " " + a.to_string()));
  }
  return {};
}

std::expected<void, Error> Datapath::set_nodeport_config(const NodePortConfig& config) {
  if (config.snat_port_min == 0 || config.snat_port_max < config.snat_port_min)
    return std::unexpected(logic_error("nodeport config: bad SNAT port range " +
                                       std::to_string(config.snat_port_min) + "-" +
                                       std::to_string(config.snat_port_max)));
  podwarp_lb_config v{};
  v.snat_addr4 = config.snat_v4_net;
  v.snat_port_min = config.snat_port_min;
  v.snat_port_max = config.snat_port_max;
  __u32 zero = 0;
  if (bpf_map_update_elem(map_fd(PODWARP_LB_MAP_CONFIG), &zero, &v, BPF_ANY) != 0)
    return std::unexpected(errno_error("bpf_map_update_elem " PODWARP_LB_MAP_CONFIG));
  return {};
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
  std::string t(text);
  int prefix = 32;
  if (auto slash = t.find('/'); slash != std::string::npos) {
    std::string p = t.substr(slash + 1);
    if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    prefix = std::stoi(p);
    if (prefix > 32) return std::nullopt;
    t.resize(slash);
  }
  auto a = IpAddr::parse(t);
  if (!a || !a->is_v4()) return std::nullopt;
  Ipv4Cidr c;
  c.addr_net = a->v4_net();
  c.prefix = static_cast<std::uint8_t>(prefix);
  std::uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
  if ((ntohl(c.addr_net) & ~mask) != 0) return std::nullopt;
  return c;
}

bool Ipv4Cidr::contains(std::uint32_t a) const {
  std::uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
  return (ntohl(a) & mask) == ntohl(addr_net);
}

std::string Ipv4Cidr::to_string() const {
  return IpAddr::v4(ntohl(addr_net)).to_string() + "/" + std::to_string(prefix);
}

namespace {

// Makes the LPM trie at `fd` hold exactly `want` (adds first, then removes the rest).
std::expected<void, Error> sync_lpm4(int fd, const char* map, const std::vector<Ipv4Cidr>& want) {
  std::set<std::pair<std::uint32_t, std::uint32_t>> keep;
  for (const auto& c : want) {
    podwarp_lb_lpm4_key k{};
    k.prefixlen = c.prefix;
    k.addr = c.addr_net;
    __u8 one = 1;
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0)
      return std::unexpected(errno_error(std::string("bpf_map_update_elem ") + map + " " +
                                         c.to_string()));
    keep.insert({k.prefixlen, k.addr});
  }
  std::vector<podwarp_lb_lpm4_key> stale;
  podwarp_lb_lpm4_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (!keep.contains({next.prefixlen, next.addr})) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (const auto& k : stale)
    if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT)
      return std::unexpected(errno_error(std::string("bpf_map_delete_elem ") + map));
  return {};
}

}  // namespace

std::expected<void, Error> Datapath::set_masquerade(const MasqueradeConfig& config) {
  int src = map_fd(PODWARP_LB_MAP_MASQ_SRC), exempt = map_fd(PODWARP_LB_MAP_NO_MASQ);
  if (src < 0 || exempt < 0)
    return std::unexpected(sys_error(ENOTSUP, "masquerade: nodeport programs not loaded"));
  // Exemptions first, so that no moment masquerades what the new config exempts.
  if (auto r = sync_lpm4(exempt, PODWARP_LB_MAP_NO_MASQ, config.exempt); !r) return r;
  return sync_lpm4(src, PODWARP_LB_MAP_MASQ_SRC, config.sources);
}

std::expected<void, Error> Datapath::set_masquerade_interfaces(
    std::span<const MasqueradeInterface> ifs) {
  int fd = map_fd(PODWARP_LB_MAP_MASQ_IFS);
  if (fd < 0) return std::unexpected(sys_error(ENOTSUP, "masquerade: nodeport programs not loaded"));
  std::set<__u32> keep;
  for (const auto& i : ifs) {
    if (i.ifindex <= 0 || i.addr_net == 0)
      return std::unexpected(logic_error("masquerade interface " + std::to_string(i.ifindex) +
                                         ": needs an ifindex and an IPv4 address"));
    __u32 k = static_cast<__u32>(i.ifindex);
    podwarp_lb_masq_if v{};
    v.addr4 = i.addr_net;
    if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) != 0)
      return std::unexpected(errno_error("bpf_map_update_elem " PODWARP_LB_MAP_MASQ_IFS " " +
                                         std::to_string(k)));
    keep.insert(k);
  }
  std::vector<__u32> stale;
  __u32 key = 0, next = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    if (!keep.contains(next)) stale.push_back(next);
    key = next;
    prev = &key;
  }
  for (__u32 k : stale) bpf_map_delete_elem(fd, &k);
  return {};
}

std::string_view drop_reason_name(std::uint32_t index) {
  switch (index) {
#define PODWARP_LB_NAME_CASE_(name, value, text) \
  case value:                                    \
    return text;
    PODWARP_LB_DROP_REASONS(PODWARP_LB_NAME_CASE_)
#undef PODWARP_LB_NAME_CASE_
  }
  return "";
}

std::string_view event_name(std::uint32_t index) {
  switch (index) {
#define PODWARP_LB_NAME_CASE_(name, value, text) \
  case value:                                    \
    return text;
    PODWARP_LB_EVENTS(PODWARP_LB_NAME_CASE_)
#undef PODWARP_LB_NAME_CASE_
  }
  return "";
}

std::uint64_t Counters::drop(std::string_view name) const {
  for (const auto& c : drops)
    if (c.name == name) return c.packets;
  return 0;
}

std::uint64_t Counters::event(std::string_view name) const {
  for (const auto& c : events)
    if (c.name == name) return c.packets;
  return 0;
}

std::expected<Counters, Error> Datapath::counters() const {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return std::unexpected(sys_error(-ncpu, "libbpf_num_possible_cpus"));
  std::vector<podwarp_lb_counter> per_cpu(static_cast<size_t>(ncpu));
  Counters out;
  auto read = [&](const char* map, std::uint32_t max, auto name_of,
                  std::vector<Counter>& into) -> std::expected<void, Error> {
    int fd = map_fd(map);
    for (std::uint32_t i = 1; i < max; ++i) {
      std::string_view name = name_of(i);
      if (name.empty()) continue;
      if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0)
        return std::unexpected(errno_error(std::string("bpf_map_lookup_elem ") + map));
      Counter c;
      c.index = i;
      c.name = name;
      for (const auto& v : per_cpu) {
        c.packets += v.packets;
        c.bytes += v.bytes;
      }
      into.push_back(c);
    }
    return {};
  };
  if (auto r = read(PODWARP_LB_MAP_DROPS, PODWARP_LB_DROP_MAX, drop_reason_name, out.drops); !r)
    return std::unexpected(r.error());
  if (auto r = read(PODWARP_LB_MAP_EVENTS, PODWARP_LB_EV_MAX, event_name, out.events); !r)
    return std::unexpected(r.error());
  return out;
}

void Datapath::remove_pins(const std::string& pin_dir) {
  std::string links = pin_dir + "/links";
  if (DIR* d = ::opendir(links.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& n : names) {
      std::string path = links + "/" + n;
      int fd = bpf_obj_get(path.c_str());
      if (fd >= 0) {
        bpf_link_detach(fd);
        ::close(fd);
      }
      ::unlink(path.c_str());
    }
    ::rmdir(links.c_str());
  }
  // Every map pin of ours (pw_lb_*), also those of a build with more maps than this one.
  if (DIR* d = ::opendir(pin_dir.c_str())) {
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d))
      if (std::string_view(e->d_name).starts_with("pw_lb_")) names.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& n : names) ::unlink((pin_dir + "/" + n).c_str());
  }
  ::rmdir(pin_dir.c_str());
}

}  // namespace podwarp::noded::lb
