// Pods' /etc/resolv.conf as the kubelet (pkg/kubelet/network/dns, 1.32) composes it from the
// pod's dnsPolicy and dnsConfig, and as containerd writes it. Pure.
//
//   ClusterFirst (default), ClusterFirstWithHostNet:  search <ns>.svc.<domain> svc.<domain>
//       <domain> + the host's search domains; nameserver <cluster DNS>; options ndots:5.
//       ClusterFirst on a hostNetwork pod, or with no cluster DNS configured: as Default.
//   Default: the host's resolv.conf (nameservers, search, options).
//   None:    nothing but dnsConfig.
// Then dnsConfig is merged: nameservers and searches appended without duplicates, options
// merged by name (the pod's value wins). Limits: at most 3 nameservers, 32 search domains,
// search domains longer than 253 dropped, the search line at most 2048 characters (domains
// dropped from the end); each cut is reported in `warnings` (the kubelet's DNSConfigForming
// event). An empty result means "use the host's file", as containerd does.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::noded::dns {

struct ResolvConf {
  std::vector<std::string> nameservers, searches, options;
  bool empty() const { return nameservers.empty() && searches.empty() && options.empty(); }
  bool operator==(const ResolvConf&) const = default;
};

inline constexpr std::size_t kMaxNameservers = 3;
inline constexpr std::size_t kMaxSearchPaths = 32;
inline constexpr std::size_t kMaxSearchListChars = 2048;

// The kubelet's reading of a resolv.conf: '#'/';' comments, every `nameserver`, the last
// `search` line (trailing dots trimmed, "." dropped), `options` accumulated (later values of
// an option replace earlier ones).
ResolvConf parse_resolv_conf(std::string_view text);
// "search ...\nnameserver ...\noptions ...\n" (lines only when non-empty).
std::string format_resolv_conf(const ResolvConf& c);

struct PodDnsSettings {
  std::vector<std::string> cluster_dns;  // noded's --cluster-dns (empty: none)
  std::string cluster_domain = "cluster.local";
  ResolvConf host;  // parsed --resolv-conf
};

struct PodDnsResult {
  ResolvConf conf;
  std::vector<std::string> warnings;
  // The result is exactly the host's configuration (policy Default, or a fallback to it, no
  // dnsConfig, nothing cut): callers may copy the host's file verbatim instead.
  bool host_as_is = false;
};

// Error: an unknown dnsPolicy (the kubelet fails the sandbox the same way).
std::expected<PodDnsResult, std::string> pod_dns_config(const json::value& pod,
                                                        const PodDnsSettings& s);

}  // namespace podwarp::noded::dns
