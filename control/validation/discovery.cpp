// discovery.k8s.io/v1: EndpointSlice.
// Upstream: pkg/apis/discovery/validation/validation.go, pkg/apis/discovery/v1/defaults.go.
#include <array>
#include <set>
#include <string>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/names.h"

namespace podwarp::validation {

namespace {

constexpr std::size_t kMaxEndpoints = 1000;
constexpr std::size_t kMaxAddresses = 100;
constexpr std::size_t kMaxPorts = 20000;
constexpr std::size_t kMaxTopologyLabels = 16;

void endpointslice_defaults(json::object& eps, bool) {
  json::array* ports = marr(eps, "ports");
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    json::object* p = (*ports)[i].if_object();
    if (p == nullptr) continue;
    if (!field(*p, "name")) slot(*p, "name") = "";
    if (!field(*p, "protocol")) slot(*p, "protocol") = "TCP";
  }
}

Errors endpointslice_spec(const json::object& eps) {
  Errors errs;
  std::string_view type = str(eps, "addressType");
  Path tp = Path().child("addressType");
  if (type.empty()) {
    errs.push_back(required(tp));
  } else if (type != "IPv4" && type != "IPv6" && type != "FQDN") {
    errs.push_back(not_supported(tp, q(type), {"FQDN", "IPv4", "IPv6"}));
  }
  const json::array* endpoints = arr(eps, "endpoints");
  Path ep = Path().child("endpoints");
  if (size_of(endpoints) > kMaxEndpoints) {
    errs.push_back(too_many(ep, static_cast<std::int64_t>(endpoints->size()), kMaxEndpoints));
  }
  for (std::size_t i = 0; endpoints && i < endpoints->size(); ++i) {
    const json::object* e = (*endpoints)[i].if_object();
    Path ip = ep.index(i);
    const json::array* addrs = arr(e, "addresses");
    Path ap = ip.child("addresses");
    if (size_of(addrs) == 0) {
      errs.push_back(required(ap, "must contain at least 1 address"));
    } else if (addrs->size() > kMaxAddresses) {
      errs.push_back(too_many(ap, static_cast<std::int64_t>(addrs->size()), kMaxAddresses));
    }
    for (std::size_t j = 0; addrs && j < addrs->size(); ++j) {
      std::string_view a = str(&(*addrs)[j]);
      Errors e2;
      if (type == "IPv4") {
        e2 = validate_ipv4(ap.index(j), a);
        if (e2.empty()) e2 = validate_non_special_ip(ap.index(j), a);
      } else if (type == "IPv6") {
        e2 = validate_ipv6(ap.index(j), a);
        if (e2.empty()) e2 = validate_non_special_ip(ap.index(j), a);
      } else if (type == "FQDN") {
        std::string_view name = a;
        if (name.empty()) {
          e2.push_back(required(ap.index(j)));
        } else {
          if (name.ends_with('.')) name.remove_suffix(1);
          auto msgs = is_dns1123_subdomain(name);
          if (!msgs.empty()) {
            std::string joined;
            for (std::size_t k = 0; k < msgs.size(); ++k) joined += (k ? "," : "") + msgs[k];
            e2.push_back(invalid_str(ap.index(j), name, joined));
          } else if (name.find('.') == std::string_view::npos) {
            e2.push_back(
                invalid_str(ap.index(j), name,
                            "should be a domain with at least two segments separated by dots"));
          }
        }
      }
      add(errs, std::move(e2));
    }
    if (const json::value* node = field(e, "nodeName")) {
      add(errs, name_with(name_is_dns_subdomain, ip.child("nodeName"), str(node)));
    }
    const json::object* topo = obj(e, "deprecatedTopology");
    if (size_of(topo) > kMaxTopologyLabels) {
      errs.push_back(too_many(ip.child("deprecatedTopology"),
                              static_cast<std::int64_t>(topo->size()), kMaxTopologyLabels));
    }
    add(errs, validate_labels(field(e, "deprecatedTopology"), ip.child("deprecatedTopology")));
    if (const json::value* h = field(e, "hostname"))
      add(errs, dns1123_label(ip.child("hostname"), str(h)));
  }
  const json::array* ports = arr(eps, "ports");
  Path pp = Path().child("ports");
  if (size_of(ports) > kMaxPorts)
    errs.push_back(too_many(pp, static_cast<std::int64_t>(ports->size()), kMaxPorts));
  std::set<std::string_view> names;
  for (std::size_t i = 0; ports && i < ports->size(); ++i) {
    const json::object* port = (*ports)[i].if_object();
    Path ip = pp.index(i);
    std::string_view name = str(port, "name");
    if (!name.empty()) add(errs, dns1123_label(ip.child("name"), name));
    if (!names.insert(name).second) errs.push_back(duplicate(ip.child("name"), q(name)));
    const json::value* proto = field(port, "protocol");
    if (proto == nullptr) {
      errs.push_back(required(ip.child("protocol")));
    } else if (str(proto) != "TCP" && str(proto) != "UDP" && str(proto) != "SCTP") {
      errs.push_back(not_supported(ip.child("protocol"), q(str(proto)), {"SCTP", "TCP", "UDP"}));
    }
    if (const json::value* ap = field(port, "appProtocol")) {
      add(errs, qualified_name(ip.child("appProtocol"), str(ap)));
    }
  }
  return errs;
}

Errors endpointslice_validate(const api::Resource&, const json::object& eps,
                              const json::object* old) {
  if (old == nullptr) {
    Errors errs = object_meta(eps, true, name_is_dns_subdomain);
    add(errs, endpointslice_spec(eps));
    return errs;
  }
  Errors errs = object_meta_update(eps, *old);
  add(errs, object_meta(eps, true, name_is_dns_subdomain));
  add(errs, endpointslice_spec(eps));
  std::string_view type = str(eps, "addressType");
  if (str(*old, "addressType") != "IP" && type != str(*old, "addressType")) {
    errs.push_back(invalid_str(Path().child("addressType"), type, kFieldImmutable));
  }
  return errs;
}

constexpr std::array kDiscoveryKinds = {
    KindRules{"discovery.k8s.io", "EndpointSlice", endpointslice_defaults, endpointslice_validate,
              nullptr},
};

}  // namespace

std::span<const KindRules> discovery_kinds() { return kDiscoveryKinds; }

}  // namespace podwarp::validation
