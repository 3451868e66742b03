// Deterministic names of what the pod network creates for a pod, so that a restarted noded finds
// them again from the pod UID alone. Pure.
#pragma once

#include <string>
#include <string_view>

namespace podwarp::noded::net {

// Host side of a pod's veth pair: "pw" + the first 11 hex digits of the 64-bit FNV-1a hash of
// the pod UID (13 characters; IFNAMSIZ allows 15). 44 bits of hash: a collision between two
// pods of one node is about n^2/2^45 (1e-8 for 500 pods) and is detected (the veth exists and
// belongs to another pod's record), not silently shared.
std::string host_veth_name(std::string_view pod_uid);

// The pod side, inside the pod's network namespace.
inline constexpr std::string_view kPodIfName = "eth0";

// True for names host_veth_name() can return (for cleanup of leftovers).
bool is_host_veth_name(std::string_view name);

}  // namespace podwarp::noded::net
