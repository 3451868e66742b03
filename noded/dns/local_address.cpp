#include "dns/local_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>

#include "net/addr.h"
#include "net/netlink.h"

namespace podwarp::noded::dns {

namespace {
// Kinds ensure_local_address creates (bridge: where the dummy driver is missing).
bool holder_kind(const std::string& kind) { return kind == "dummy" || kind == "bridge"; }
}  // namespace

bool is_local_address(const std::string& ip) {
  in6_addr want6{};
  in_addr want4{};
  bool v4 = ::inet_pton(AF_INET, ip.c_str(), &want4) == 1;
  if (!v4 && ::inet_pton(AF_INET6, ip.c_str(), &want6) != 1) return false;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return false;
  bool found = false;
  for (auto* i = ifs; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (v4 && i->ifa_addr->sa_family == AF_INET) {
      found = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == want4.s_addr;
    } else if (!v4 && i->ifa_addr->sa_family == AF_INET6) {
      found = std::memcmp(&reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, &want6,
                          sizeof want6) == 0;
    }
  }
  ::freeifaddrs(ifs);
  return found;
}

std::expected<LocalAddressResult, std::string> ensure_local_address(const std::string& ip,
                                                                    const std::string& link_name) {
  LocalAddressResult r;
  auto nl = net::Netlink::open();
  if (!nl) return std::unexpected(nl.error().message);
  auto existing = nl->link(link_name);
  if (!existing) return std::unexpected(existing.error().message);
  if (*existing && !holder_kind((*existing)->kind))
    return std::unexpected("link " + link_name + " exists and is a " + (*existing)->kind +
                           ", not a dummy");
  if (is_local_address(ip)) {
    r.on_dummy_link = existing->has_value();
    return r;
  }
  auto v4 = net::parse_ipv4(ip);
  if (!v4)
    return std::unexpected("cluster DNS address " + ip +
                           " is not local and only an IPv4 address can be put on " + link_name);
  if (!*existing) {
    auto a = nl->add_virtual_link(link_name, "dummy");
    if (!a && a.error().code == EOPNOTSUPP) {
      // No dummy driver (a kernel built without it, modules not installed): a bridge without
      // ports holds a local address just as well.
      r.fallback_kind = "bridge";
      a = nl->add_virtual_link(link_name, "bridge");
    }
    if (!a) return std::unexpected(a.error().message);
    r.created_link = true;
  }
  auto l = nl->link(link_name);
  if (!l || !*l) return std::unexpected("get link " + link_name + " after creating it");
  if (auto a = nl->add_address((*l)->ifindex, *v4, 32); !a)
    return std::unexpected(a.error().message);
  if (auto u = nl->set_up(link_name); !u) return std::unexpected(u.error().message);
  r.on_dummy_link = true;
  return r;
}

std::expected<void, std::string> remove_dummy_link(const std::string& link_name) {
  auto nl = net::Netlink::open();
  if (!nl) return std::unexpected(nl.error().message);
  auto l = nl->link(link_name);
  if (!l) return std::unexpected(l.error().message);
  if (!*l) return {};
  if (!holder_kind((*l)->kind))
    return std::unexpected("link " + link_name + " is a " + (*l)->kind + ", not a dummy: kept");
  if (auto d = nl->delete_link(link_name); !d) return std::unexpected(d.error().message);
  return {};
}

}  // namespace podwarp::noded::dns
