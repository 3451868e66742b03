#include "net/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace podwarp::noded::net {

namespace {

// libnl's errors are NLE_* codes, not errnos; keep the text, map the few we test on.
SysError nl_error(int err, const std::string& what) {
  int code = 0;
  switch (-err) {
    case NLE_EXIST:
      code = EEXIST;
      break;
    case NLE_NODEV:
      code = ENODEV;
      break;
    case NLE_OBJ_NOTFOUND:
      code = ESRCH;
      break;
    case NLE_PERM:
      code = EPERM;
      break;
    case NLE_NOADDR:
      code = EADDRNOTAVAIL;
      break;
    default:
      break;
  }
  return SysError{code, what + ": " + nl_geterror(err)};
}

template <class T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p) F(p);
  }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;
using NeighPtr = std::unique_ptr<rtnl_neigh, Deleter<rtnl_neigh, rtnl_neigh_put>>;
using CachePtr = std::unique_ptr<nl_cache, Deleter<nl_cache, nl_cache_free>>;

AddrPtr v4(Ipv4 ip, int prefix) {
  std::uint32_t be = htonl(ip.value);
  AddrPtr a(nl_addr_build(AF_INET, &be, 4));
  if (a) nl_addr_set_prefixlen(a.get(), prefix);
  return a;
}

std::optional<Ipv4> from_nl(nl_addr* a) {
  if (a == nullptr || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4)
    return std::nullopt;
  std::uint32_t be = 0;
  std::memcpy(&be, nl_addr_get_binary_addr(a), 4);
  return Ipv4{ntohl(be)};
}

std::string describe(const Route4& r) {
  std::string s = to_string(r.dst);
  if (r.via) s += " via " + to_string(*r.via);
  if (r.oif) s += " oif " + std::to_string(r.oif);
  return s;
}

RoutePtr build_route(const Route4& r) {
  RoutePtr route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), AF_INET);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  if (r.protocol) rtnl_route_set_protocol(route.get(), r.protocol);
  rtnl_route_set_scope(route.get(), r.via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  AddrPtr dst = v4(r.dst.network, r.dst.prefix);
  rtnl_route_set_dst(route.get(), dst.get());  // takes its own reference
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (r.oif) rtnl_route_nh_set_ifindex(nh, r.oif);
  if (r.via) {
    AddrPtr gw = v4(*r.via, 32);
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  return route;
}

}  // namespace

struct Netlink::Sock {
  nl_sock* sk = nullptr;
  ~Sock() {
    if (sk) nl_socket_free(sk);
  }
};

Netlink::Netlink(std::unique_ptr<Sock> s) : sock_(std::move(s)) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

std::expected<Netlink, SysError> Netlink::open() {
  auto s = std::make_unique<Sock>();
  s->sk = nl_socket_alloc();
  if (s->sk == nullptr) return std::unexpected(SysError{ENOMEM, "nl_socket_alloc: ENOMEM"});
  if (int err = nl_connect(s->sk, NETLINK_ROUTE); err < 0)
    return std::unexpected(nl_error(err, "connect rtnetlink socket"));
  return Netlink(std::move(s));
}

namespace {
LinkInfo link_info(rtnl_link* l) {
  LinkInfo info;
  info.ifindex = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) info.name = n;
  if (const char* k = rtnl_link_get_type(l)) info.kind = k;
  if (const char* a = rtnl_link_get_ifalias(l)) info.alias = a;
  info.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6)
    std::memcpy(info.mac.data(), nl_addr_get_binary_addr(a), 6);
  return info;
}
}  // namespace

std::expected<std::vector<LinkInfo>, SysError> Netlink::links() {
  nl_cache* raw = nullptr;
  int err = rtnl_link_alloc_cache(sock_->sk, AF_UNSPEC, &raw);
  CachePtr cache(raw);
  if (err < 0) return std::unexpected(nl_error(err, "list links"));
  std::vector<LinkInfo> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o))
    out.push_back(link_info(reinterpret_cast<rtnl_link*>(o)));
  return out;
}

std::expected<std::optional<LinkInfo>, SysError> Netlink::link(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_->sk, 0, name.c_str(), &raw);
  LinkPtr l(raw);
  if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) return std::optional<LinkInfo>{};
  if (err < 0) return std::unexpected(nl_error(err, "get link " + name));
  return std::optional<LinkInfo>{link_info(l.get())};
}

std::expected<void, SysError> Netlink::add_veth(const std::string& host_name,
                                                const std::string& peer_name, int peer_netns_fd) {
  LinkPtr l(rtnl_link_veth_alloc());
  if (!l) return std::unexpected(SysError{ENOMEM, "rtnl_link_veth_alloc: ENOMEM"});
  rtnl_link_set_name(l.get(), host_name.c_str());
  LinkPtr peer(rtnl_link_veth_get_peer(l.get()));
  rtnl_link_set_name(peer.get(), peer_name.c_str());
  rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
  int err = rtnl_link_add(sock_->sk, l.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err < 0)
    return std::unexpected(nl_error(err, "add veth " + host_name + " (peer " + peer_name + ")"));
  return {};
}

std::expected<void, SysError> Netlink::add_virtual_link(const std::string& name,
                                                        const std::string& kind) {
  LinkPtr l(rtnl_link_alloc());
  if (!l) return std::unexpected(SysError{ENOMEM, "rtnl_link_alloc: ENOMEM"});
  rtnl_link_set_name(l.get(), name.c_str());
  if (int err = rtnl_link_set_type(l.get(), kind.c_str()); err < 0)
    return std::unexpected(nl_error(err, "add " + kind + " " + name));
  int err = rtnl_link_add(sock_->sk, l.get(), NLM_F_CREATE | NLM_F_EXCL);
  if (err == -NLE_OPNOTSUPP)
    return std::unexpected(SysError{EOPNOTSUPP, "add " + kind + " " + name + ": " + nl_geterror(err)});
  if (err < 0) return std::unexpected(nl_error(err, "add " + kind + " " + name));
  return {};
}

std::expected<void, SysError> Netlink::delete_link(const std::string& name) {
  LinkPtr l(rtnl_link_alloc());
  rtnl_link_set_name(l.get(), name.c_str());
  int err = rtnl_link_delete(sock_->sk, l.get());
  if (err == -NLE_NODEV || err == -NLE_OBJ_NOTFOUND) return {};
  if (err < 0) return std::unexpected(nl_error(err, "delete link " + name));
  return {};
}

std::expected<void, SysError> Netlink::set_up(const std::string& name) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_->sk, 0, name.c_str(), &raw);
  LinkPtr cur(raw);
  if (err < 0) return std::unexpected(nl_error(err, "get link " + name));
  if (rtnl_link_get_flags(cur.get()) & IFF_UP) return {};
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  err = rtnl_link_change(sock_->sk, cur.get(), change.get(), 0);
  if (err < 0) return std::unexpected(nl_error(err, "set link " + name + " up"));
  return {};
}

std::expected<void, SysError> Netlink::set_alias(const std::string& name,
                                                 const std::string& alias) {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_->sk, 0, name.c_str(), &raw);
  LinkPtr cur(raw);
  if (err < 0) return std::unexpected(nl_error(err, "get link " + name));
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_ifalias(change.get(), alias.c_str());
  err = rtnl_link_change(sock_->sk, cur.get(), change.get(), 0);
  if (err < 0) return std::unexpected(nl_error(err, "set alias of link " + name));
  return {};
}

std::expected<void, SysError> Netlink::add_address(int ifindex, Ipv4 addr, int prefix) {
  RtAddrPtr a(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_family(a.get(), AF_INET);
  AddrPtr local = v4(addr, prefix);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), prefix);
  int err = rtnl_addr_add(sock_->sk, a.get(), 0);
  if (err == -NLE_EXIST) return {};
  if (err < 0)
    return std::unexpected(nl_error(err, "add address " + to_string(addr) + "/" +
                                             std::to_string(prefix) + " on ifindex " +
                                             std::to_string(ifindex)));
  return {};
}

std::expected<void, SysError> Netlink::replace_route(const Route4& r) {
  RoutePtr route = build_route(r);
  int err = rtnl_route_add(sock_->sk, route.get(), NLM_F_REPLACE);
  if (err < 0) return std::unexpected(nl_error(err, "replace route " + describe(r)));
  return {};
}

std::expected<void, SysError> Netlink::delete_route(const Route4& r) {
  RoutePtr route = build_route(r);
  int err = rtnl_route_delete(sock_->sk, route.get(), 0);
  if (err == -NLE_OBJ_NOTFOUND || err == -NLE_NOADDR) return {};
  if (err < 0) return std::unexpected(nl_error(err, "delete route " + describe(r)));
  return {};
}

std::expected<std::vector<Route4>, SysError> Netlink::routes(std::uint8_t protocol) {
  nl_cache* raw = nullptr;
  int err = rtnl_route_alloc_cache(sock_->sk, AF_INET, 0, &raw);
  CachePtr cache(raw);
  if (err < 0) return std::unexpected(nl_error(err, "list IPv4 routes"));
  std::vector<Route4> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_protocol(r) != protocol ||
        rtnl_route_get_type(r) != RTN_UNICAST)
      continue;
    nl_addr* dst = rtnl_route_get_dst(r);
    auto ip = from_nl(dst);
    if (!ip) continue;
    Route4 x;
    x.dst = Cidr4{*ip, static_cast<int>(nl_addr_get_prefixlen(dst))};
    x.protocol = protocol;
    if (rtnl_route_get_nnexthops(r) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
      x.oif = rtnl_route_nh_get_ifindex(nh);
      x.via = from_nl(rtnl_route_nh_get_gateway(nh));
    }
    out.push_back(x);
  }
  return out;
}

std::expected<void, SysError> Netlink::replace_neighbor(int ifindex, Ipv4 ip, const Mac& mac) {
  NeighPtr n(rtnl_neigh_alloc());
  rtnl_neigh_set_ifindex(n.get(), ifindex);
  rtnl_neigh_set_family(n.get(), AF_INET);
  AddrPtr dst = v4(ip, 32);
  rtnl_neigh_set_dst(n.get(), dst.get());
  AddrPtr ll(nl_addr_build(AF_LLC, mac.data(), mac.size()));
  rtnl_neigh_set_lladdr(n.get(), ll.get());
  rtnl_neigh_set_state(n.get(), NUD_PERMANENT);
  int err = rtnl_neigh_add(sock_->sk, n.get(), NLM_F_CREATE | NLM_F_REPLACE);
  if (err < 0)
    return std::unexpected(nl_error(
        err, "replace neighbour " + to_string(ip) + " on ifindex " + std::to_string(ifindex)));
  return {};
}

std::expected<void, SysError> set_ipv4_sysctl(const std::string& ifname, const std::string& key,
                                              const std::string& value) {
  if (ifname.find('/') != std::string::npos || key.find('/') != std::string::npos ||
      ifname == "." || ifname == "..")
    return std::unexpected(logic_error("sysctl: bad name " + ifname + "/" + key));
  std::string path = ifname.empty() ? "/proc/sys/net/ipv4/" + key
                                    : "/proc/sys/net/ipv4/conf/" + ifname + "/" + key;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(errno_error("open " + path));
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  auto err = errno_error("write " + path);
  ::close(fd);
  if (!ok) return std::unexpected(err);
  return {};
}

std::expected<void, SysError> run_in_netns(
    const std::string& netns_path, const std::function<std::expected<void, SysError>()>& fn) {
  int nsfd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) return std::unexpected(errno_error("open " + netns_path));
  std::expected<void, SysError> result;
  std::thread t([&] {
    if (::setns(nsfd, CLONE_NEWNET) != 0) {
      result = std::unexpected(errno_error("setns " + netns_path));
      return;
    }
    result = fn();
  });
  t.join();
  ::close(nsfd);
  return result;
}

}  // namespace podwarp::noded::net
