// ClusterRecords: the cluster zone (`<domain>`, e.g. cluster.local) as the Kubernetes DNS
// specification (github.com/kubernetes/dns docs/specification.md) and CoreDNS's kubernetes
// plugin (with `pods insecure`) answer it, computed from Services and discovery.k8s.io/v1
// EndpointSlices held in memory.
//
//   <svc>.<ns>.svc.<domain>            A/AAAA: the clusterIPs by family; headless: the ready
//                                      endpoint addresses (none at all: NXDOMAIN);
//                                      ExternalName: CNAME <externalName>
//   <host>.<svc>.<ns>.svc.<domain>     headless: A/AAAA of the endpoint whose hostname (or
//                                      dashed address a-b-c-d) is <host>
//   _<port>._<proto>.<svc>.<ns>.svc.<domain>  SRV for named ports (ClusterIP: -> the service
//                                      name; headless: one per endpoint -> its own name),
//                                      with the targets' A/AAAA in the additional section
//   <a-b-c-d>.<ns>.pod.<domain>        A (AAAA for dashed IPv6), for any well-formed address
//   dns-version.<domain>               TXT "1.1.0"
//   <d>.<c>.<b>.<a>.in-addr.arpa (and ip6.arpa)  PTR for clusterIPs and headless endpoints
//                                      with a hostname; unknown reverse names are not ours
//
// Names in the zone that do not exist: NXDOMAIN with the zone's SOA in the authority section;
// existing names without records of the asked type (and empty non-terminals such as
// `<ns>.svc.<domain>`): NOERROR with no answer and the SOA. Positive TTL 30 s, negative
// (SOA TTL and minimum) 5 s. Ready endpoints: conditions.ready unset or true; with
// spec.publishNotReadyAddresses every endpoint.
//
// Pure; not thread-safe (noded feeds and reads it on its io_context thread).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dns/wire.h"
#include "podwarp/json.h"

namespace podwarp::noded::dns {

inline constexpr std::uint32_t kTtl = 30;
inline constexpr std::uint32_t kNegativeTtl = 5;

struct LookupResult {
  enum Kind {
    kAnswer,    // rcode + sections below are the reply (authoritative)
    kNotOurs,   // outside the zone (or an unknown reverse name): forward upstream
  } kind = kAnswer;
  std::uint16_t rcode = rcode::kNoError;
  std::vector<ResourceRecord> answer, authority, additional;
  // Set when the answer ends in a CNAME to a name outside the zone (ExternalName): the
  // server may resolve it upstream and append the records.
  std::optional<Name> external_target;
};

class ClusterRecords {
 public:
  explicit ClusterRecords(std::string domain = "cluster.local");

  const Name& zone() const { return zone_; }
  bool in_zone(const Name& n) const { return name_has_suffix(n, zone_); }

  // Informer events. Objects without namespace/name are ignored.
  void upsert_service(const json::value& svc);
  void delete_service(const json::value& svc);
  void upsert_slice(const json::value& slice);
  void delete_slice(const json::value& slice);

  // `qname` as asked (its spelling is kept in the owner names of the answer).
  LookupResult lookup(const Name& qname, std::uint16_t qtype) const;

  std::size_t service_count() const { return services_.size(); }
  std::size_t slice_count() const { return slices_.size(); }
  // The SOA record of the zone (authority section of negative answers).
  ResourceRecord soa() const;

  struct Port {
    std::string name, protocol;  // protocol lower case: "tcp", "udp", "sctp"
    std::uint16_t port = 0;
  };
  struct Service {
    std::string ns, name;
    enum Kind { kClusterIP, kHeadless, kExternalName } kind = kClusterIP;
    std::vector<std::vector<std::uint8_t>> cluster_ips;  // 4 or 16 bytes each
    std::string external_name;
    std::vector<Port> ports;
    bool publish_not_ready = false;
  };
  struct Endpoint {
    std::vector<std::vector<std::uint8_t>> addresses;
    bool ready = true;
    std::string hostname;
  };
  struct Slice {
    std::string ns, service;  // label kubernetes.io/service-name
    std::vector<Endpoint> endpoints;
    std::vector<Port> ports;
  };

 private:
  struct EndpointView {
    std::vector<std::uint8_t> addr;
    std::string label;  // hostname, or the dashed address
  };
  std::vector<EndpointView> endpoints_of(const Service& s) const;
  std::vector<Port> headless_ports(const Service& s) const;
  LookupResult lookup_ptr(const Name& qname) const;
  LookupResult negative(std::uint16_t rc) const;

  std::string domain_;
  Name zone_;
  std::uint32_t serial_;
  std::map<std::string, Service> services_;             // "<ns>/<name>" (lower case)
  std::map<std::string, Slice> slices_;                 // "<ns>/<slice name>"
  std::map<std::string, std::set<std::string>> by_service_;  // service key -> slice keys
  std::map<std::string, int> services_per_ns_;
};

// "10-1-2-3" -> 4 bytes, "fd00--1" -> 16 bytes (dashes for colons); nullopt otherwise.
std::optional<std::vector<std::uint8_t>> parse_dashed_ip(std::string_view label);
// 4 or 16 bytes -> "10-1-2-3" / "fd00--1".
std::string dashed_ip(const std::vector<std::uint8_t>& addr);
// Text address -> 4 or 16 bytes.
std::optional<std::vector<std::uint8_t>> parse_ip(std::string_view text);

}  // namespace podwarp::noded::dns
