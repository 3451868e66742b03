// The host's own addresses, for defaults that upstream takes from "the host's default
// interface" (the kubelet's node IP, the apiserver's advertise address).
#pragma once

#include <string>
#include <string_view>

namespace podwarp::netaddr {

// The interface of the IPv4 default route in the text of /proc/net/route (the first line whose
// Destination is 00000000), "" if there is none.
std::string default_route_interface(std::string_view proc_net_route);

// The IPv4 address of the default route's interface in the calling thread's network namespace,
// "" if there is none.
std::string default_route_ipv4();

}  // namespace podwarp::netaddr
