// The value types of podwarp's service load balancer: what a Service + its EndpointSlices mean
// for one node (ServiceDesc), independent of how it is programmed. Built by
// service_desc_from_json() (service_desc.h), consumed by ServiceMap (service_map.h).
// Plain values: copyable, comparable, no kernel or JSON headers.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::noded::lb {

// An IPv4 or IPv6 address in 16 bytes (IPv4 as ::ffff:a.b.c.d), network byte order: the
// datapath's representation (bpf/lib/lb.h).
struct IpAddr {
  std::array<std::uint8_t, 16> bytes{};

  // "10.96.0.1", "fd00::1"; nullopt for anything else (no ports, no zones, no brackets).
  static std::optional<IpAddr> parse(std::string_view text);
  // An IPv4 address from its host-order integer (0x0a600001 = 10.96.0.1).
  static IpAddr v4(std::uint32_t host_order);
  // The IPv4 wildcard ::ffff:0.0.0.0 (a NodePort frontend's IPv4 address) and the IPv6 one (::).
  static IpAddr any_v4() { return v4(0); }
  static IpAddr any_v6() { return IpAddr{}; }

  bool is_v4() const;   // IPv4-mapped
  bool is_any() const;  // ::ffff:0.0.0.0 or ::
  // The IPv4 address in network order (valid when is_v4()).
  std::uint32_t v4_net() const;
  std::string to_string() const;

  auto operator<=>(const IpAddr&) const = default;
};

enum class Protocol : std::uint8_t { TCP = 6, UDP = 17, SCTP = 132 };

// "TCP", "UDP", "SCTP" (upstream spelling); nullopt otherwise.
std::optional<Protocol> parse_protocol(std::string_view text);
std::string_view protocol_name(Protocol p);

// One endpoint a frontend may send to.
struct Backend {
  IpAddr addr;
  std::uint16_t port = 0;  // host order
  Protocol proto = Protocol::TCP;
  bool local = false;        // the endpoint's nodeName is this node
  bool terminating = false;  // serving but terminating (only used when nothing is ready)

  auto operator<=>(const Backend&) const = default;
};

enum class FrontendKind : std::uint8_t { ClusterIP, NodePort, ExternalIP, LoadBalancer };
std::string_view frontend_kind_name(FrontendKind k);

// An address:port:protocol clients use to reach a service port.
struct Frontend {
  FrontendKind kind = FrontendKind::ClusterIP;
  IpAddr addr;             // IpAddr::any_v4()/any_v6() for a NodePort (every node address)
  std::uint16_t port = 0;  // host order
  Protocol proto = Protocol::TCP;

  auto operator<=>(const Frontend&) const = default;
};

// One entry of spec.ports with its frontends and its usable endpoints, chosen as kube-proxy
// does: ready endpoints, or if there are none, serving+terminating ones; separately for the
// cluster-wide set and the node-local set.
struct ServicePort {
  std::string name;
  Protocol proto = Protocol::TCP;
  std::vector<Frontend> frontends;
  std::vector<Backend> cluster_backends;  // for Cluster traffic policies, both families
  std::vector<Backend> local_backends;    // for Local traffic policies (endpoints on this node)

  bool operator==(const ServicePort&) const = default;
};

// A Service as this node's load balancer sees it.
struct ServiceDesc {
  std::string key;  // "<namespace>/<name>"
  std::vector<ServicePort> ports;
  std::uint32_t affinity_timeout_s = 0;  // sessionAffinity ClientIP timeout; 0 = None
  bool external_local = false;           // externalTrafficPolicy: Local
  bool internal_local = false;           // internalTrafficPolicy: Local

  bool operator==(const ServiceDesc&) const = default;
};

}  // namespace podwarp::noded::lb
