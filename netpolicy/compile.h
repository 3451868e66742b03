// netpolicy: NetworkPolicy objects -> the BPF tables of bpf/lib/netpol.h. Pure (no kernel, no
// I/O): the inputs are API objects as JSON, the output is, per local pod, the port table and
// the peer prefixes of each direction it is isolated in. noded/netpol writes them to the maps.
//
// Semantics (networking.k8s.io/v1, as upstream documents them):
// - A policy selects the pods of its own namespace that match spec.podSelector ({} = all).
// - policyTypes: as given; when absent or empty, ["Ingress"] plus "Egress" if spec.egress is
//   non-empty.
// - A pod selected by at least one policy with "Ingress" (resp. "Egress") is isolated for
//   ingress (egress); then only what the union of those policies' rules allows is allowed.
//   A policy with the type but no rules isolates and allows nothing (default deny).
// - A rule allows (peers x ports). Missing/empty `from`/`to`: every peer (0.0.0.0/0). Missing/
//   empty `ports`: every port and protocol (including ICMP). A port: protocol (default TCP;
//   TCP, UDP, SCTP), port (number or name, absent = all ports of that protocol), endPort.
// - Peers: podSelector alone = pods of the policy's namespace; namespaceSelector alone = all
//   pods of matching namespaces; both = matching pods of matching namespaces; ipBlock = the
//   cidr minus every except. Pods count with their IPv4 status.podIPs (or status.podIP) unless
//   they are hostNetwork or their phase is Succeeded/Failed; an IPv4 the caller knows for a
//   local pod (LocalPod::ip) is used even before the status has it.
// - Named ports: in an ingress rule, resolved against the selected (local) pod's
//   containers[].ports (name and protocol), for every peer of the rule (the port is the local
//   pod's, whoever connects). In an egress rule, against each destination pod's: a pod peer
//   gets its own numbers; an ipBlock (or an empty `to`) matches a named port only at the pods
//   whose IPs lie in it (outside the excepts), never at other addresses. A name that does not
//   resolve matches nothing.
// - Namespaces: labels from the Namespace objects, plus kubernetes.io/metadata.name=<name>
//   (upstream sets it on every namespace) when absent; a namespace known only from its pods
//   has that label alone.
// - IPv6 ipBlocks and addresses are ignored (the pod network is IPv4).
// - Malformed pieces are skipped with a message in Compiled::problems, always towards denying:
//   a bad peer or port drops that peer or port (a rule whose `from` lists only bad peers allows
//   nothing, not everything); a policy whose podSelector does not parse is skipped whole (its
//   pods cannot be known). compile() does not throw on any JSON shape.
//
// The tables: rules are grouped by their (canonical) port set; each distinct port set gets one
// rule bit 0..63 and its ranges in the port table; every prefix (pod /32s, ipBlock cidrs and
// excepts) gets the mask of the bits whose peer set contains it (a prefix inside an except does
// not get that ipBlock's bit), so one longest-prefix match answers for every rule. More than 64
// port sets, or more than PODWARP_NP_MAX_RANGES ranges, are cut off (Table::truncated: some
// allowed traffic is then denied, never the reverse). Port sets get their bits in ascending
// order of their ranges, so the same input always yields the same tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::netpolicy {

// The table limits of bpf/lib/netpol.h (PODWARP_NP_MAX_RULES, PODWARP_NP_MAX_RANGES); bpf/ is
// not on this library's include path, so noded/netpol static_asserts that they are equal.
inline constexpr std::size_t kMaxRules = 64;
inline constexpr std::size_t kMaxRanges = 128;

struct Range {
  std::uint8_t proto = 0;  // 0: every protocol and port; else IPPROTO_TCP/UDP/SCTP
  std::uint8_t rule = 0;   // bit index
  std::uint16_t lo = 0;
  std::uint16_t hi = 0;
  auto operator<=>(const Range&) const = default;
};

struct Prefix {
  std::uint32_t addr = 0;  // IPv4, network order, host bits zero
  std::uint8_t len = 0;    // 0..32
  auto operator<=>(const Prefix&) const = default;
};

// One direction of one local pod.
struct Table {
  std::vector<Range> ranges;  // sorted; at most kMaxRanges, rule < kMaxRules
  // prefix -> rule mask. No redundant entries: a prefix whose mask equals that of the longest
  // prefix covering it is left out. A mask of 0 appears only where it shadows a covering prefix
  // with a non-zero mask (an except inside an ipBlock); it denies like no entry at all.
  std::map<Prefix, std::uint64_t> peers;
  bool truncated = false;
  bool operator==(const Table&) const = default;
};

struct EndpointPolicy {
  std::optional<Table> ingress;  // nullopt: not isolated for ingress
  std::optional<Table> egress;
  std::vector<std::string> policies;  // "<ns>/<name>" of the policies selecting the pod, sorted
  bool operator==(const EndpointPolicy&) const = default;
};

struct LocalPod {
  const json::value* pod = nullptr;  // the Pod object (labels, namespace, containers)
  std::uint32_t ip = 0;              // its IPv4 on this node (network order)
};

// The cluster as the informers see it. Pointers stay owned by the caller and must outlive the
// call.
struct Cluster {
  std::vector<const json::value*> policies;    // NetworkPolicy objects, all namespaces
  std::vector<const json::value*> pods;        // Pod objects, all namespaces (peers)
  std::vector<const json::value*> namespaces;  // Namespace objects (labels for selectors)
};

// Compiles the tables of every local pod, keyed by its IPv4 (network order): LocalPod::ip, or
// the first IPv4 of its status when that is 0 (a local pod with neither is left out). A pod no
// policy selects still gets an entry, with neither table. Objects that do not parse (a selector
// that does not parse, a bad cidr) are skipped with a message in `problems` rather than failing
// the rest.
struct Compiled {
  std::map<std::uint32_t, EndpointPolicy> endpoints;
  std::vector<std::string> problems;
};
Compiled compile(const Cluster& cluster, const std::vector<LocalPod>& local);

// A policy-side check of the BPF decision, for tests and for `podwarp` diagnostics: would a new
// flow to/from `peer` (network order) with this protocol and destination port be allowed by
// the table? (Longest-prefix match over `peers`, OR of the ranges' bits; no covering prefix, or
// one with mask 0, denies.)
bool allows(const Table& table, std::uint32_t peer, std::uint8_t proto, std::uint16_t port);

}  // namespace podwarp::netpolicy
