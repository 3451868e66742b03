// The cluster DNS address must be local in noded's network namespace so that the listeners
// can bind it and pods (routed to the host) reach it. If no interface has it, a dummy link
// `podwarp-dns` is created (libnl, noded/net/netlink.h) holding it as /32, the way
// node-local-dns holds 169.254.20.10 (where the kernel has no dummy driver, a bridge without
// ports of that name, which holds a local address just as well). Nothing else is created or
// removed.
#pragma once

#include <expected>
#include <string>

namespace podwarp::noded::dns {

inline constexpr const char* kDnsLinkName = "podwarp-dns";

// Is `ip` assigned to an interface of the calling thread's network namespace (getifaddrs)?
bool is_local_address(const std::string& ip);

struct LocalAddressResult {
  bool on_dummy_link = false;  // the address sits on `podwarp-dns` (created now or before)
  bool created_link = false;
  std::string fallback_kind;  // "bridge" when the kernel has no dummy driver
};

// Makes `ip` local: nothing if it already is; else (IPv4 only) the dummy link, up, with
// ip/32. Errors name the operation ("add dummy podwarp-dns: Operation not permitted").
std::expected<LocalAddressResult, std::string> ensure_local_address(
    const std::string& ip, const std::string& link_name = kDnsLinkName);

// Deletes the link (absent: ok); only a link of kind "dummy" (or "bridge") with that name.
std::expected<void, std::string> remove_dummy_link(const std::string& link_name = kDnsLinkName);

}  // namespace podwarp::noded::dns
