// Services and their endpoints, ingresses and network policies: upstream's printService,
// printEndpoints, printEndpointSlice, printIngress and printNetworkPolicy. The server prints
// wide, so load-balancer addresses are never clipped to 16 characters.
#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "tables/format.h"
#include "tables/printer.h"

namespace podwarp::tables::detail {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

// ---- Service ----

constexpr Column kServiceColumns[] = {
    kNameColumn,
    {"Type", "string", "",
     "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are "
     "ExternalName, ClusterIP, NodePort, and LoadBalancer."},
    {"Cluster-IP", "string", "",
     "clusterIP is the IP address of the service and is usually assigned randomly."},
    {"External-IP", "string", "",
     "externalIPs is a list of IP addresses for which nodes in the cluster will also accept "
     "traffic for this service.  These IPs are not managed by Kubernetes.  The user is "
     "responsible for ensuring that traffic arrives at a node with this IP."},
    {"Port(s)", "string", "",
     "The list of ports that are exposed by this service. More info: "
     "https://kubernetes.io/docs/concepts/services-networking/service/"
     "#virtual-ips-and-service-proxies"},
    kAgeColumn,
    {"Selector", "string", "",
     "Route service traffic to pods with label keys and values matching this selector. If empty "
     "or not present, the service is assumed to have an external process managing its "
     "endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and "
     "LoadBalancer. Ignored if type is ExternalName. More info: "
     "https://kubernetes.io/docs/concepts/services-networking/service/",
     1},
};

std::vector<std::string> strings_at(const json::value& v,
                                    std::initializer_list<std::string_view> path) {
  std::vector<std::string> out;
  if (const json::array* a = array_at(v, path)) {
    for (const json::value& s : *a) {
      if (s.is_string()) out.emplace_back(s.get_string());
    }
  }
  return out;
}

// loadBalancerStatusStringer (wide): the ingress IPs, or hostnames, sorted and deduplicated.
std::string load_balancer_addresses(const json::value& obj) {
  std::set<std::string> result;
  if (const json::array* ingress = array_at(obj, {"status", "loadBalancer", "ingress"})) {
    for (const json::value& i : *ingress) {
      std::string_view ip = get_string(i, {"ip"});
      std::string_view hostname = get_string(i, {"hostname"});
      if (!ip.empty()) {
        result.emplace(ip);
      } else if (!hostname.empty()) {
        result.emplace(hostname);
      }
    }
  }
  return join(std::vector<std::string>(result.begin(), result.end()), ",");
}

std::string service_external_ip(const json::value& svc, std::string_view type) {
  std::vector<std::string> external_ips = strings_at(svc, {"spec", "externalIPs"});
  if (type == "ClusterIP" || type == "NodePort") {
    return external_ips.empty() ? "<none>" : join(external_ips, ",");
  }
  if (type == "LoadBalancer") {
    std::string lb = load_balancer_addresses(svc);
    if (!external_ips.empty()) {
      return lb.empty() ? join(external_ips, ",") : lb + "," + join(external_ips, ",");
    }
    return lb.empty() ? "<pending>" : lb;
  }
  if (type == "ExternalName") return std::string(get_string(svc, {"spec", "externalName"}));
  return "<unknown>";
}

// makePortString: "80/TCP", "80:30080/TCP", comma-joined.
std::string service_ports(const json::value& svc) {
  std::vector<std::string> pieces;
  if (const json::array* ports = array_at(svc, {"spec", "ports"})) {
    for (const json::value& p : *ports) {
      std::string_view protocol = get_string(p, {"protocol"});
      if (protocol.empty()) protocol = "TCP";  // the API default
      std::int64_t port = get_int(p, {"port"});
      std::int64_t node_port = get_int(p, {"nodePort"});
      pieces.push_back(node_port > 0 ? fmt::format("{}:{}/{}", port, node_port, protocol)
                                     : fmt::format("{}/{}", port, protocol));
    }
  }
  std::string out = join(pieces, ",");
  return out.empty() ? "<none>" : out;
}

json::array service_cells(const json::value& svc, TimePoint now) {
  std::string_view type = get_string(svc, {"spec", "type"});
  if (type.empty()) type = "ClusterIP";  // the API default
  // spec.clusterIPs[0], which the API defaults from spec.clusterIP.
  std::string_view cluster_ip = get_string(svc, {"spec", "clusterIP"});
  if (const json::array* ips = array_at(svc, {"spec", "clusterIPs"}); ips && !ips->empty()) {
    cluster_ip = ips->front().is_string() ? std::string_view(ips->front().get_string()) : "";
  }
  json::array cells;
  cells.emplace_back(name_of(svc));
  cells.emplace_back(type);
  cells.emplace_back(cluster_ip.empty() ? std::string_view("<none>") : cluster_ip);
  cells.emplace_back(service_external_ip(svc, type));
  cells.emplace_back(service_ports(svc));
  cells.emplace_back(age_of(svc, now));
  cells.emplace_back(format_labels(find_path(svc, {"spec", "selector"})));
  return cells;
}

// ---- Endpoints ----

constexpr Column kEndpointsColumns[] = {
    kNameColumn,
    {"Endpoints", "string", "",
     "The set of all endpoints is the union of all subsets. Addresses are placed into subsets "
     "according to the IPs they share."},
    kAgeColumn,
};

// formatEndpoints: up to three "ip:port" (or bare IPs for port-less subsets), then
// " + N more...". Not-ready addresses are not shown.
std::string format_endpoints(const json::value& ep) {
  const json::array* subsets = array_at(ep, {"subsets"});
  if (subsets == nullptr || subsets->empty()) return "<none>";
  constexpr std::size_t kMax = 3;
  std::vector<std::string> list;
  bool more = false;
  std::int64_t count = 0;
  for (const json::value& ss : *subsets) {
    const json::array* addresses = array_at(ss, {"addresses"});
    const std::int64_t n = addresses == nullptr ? 0 : static_cast<std::int64_t>(addresses->size());
    const json::array* ports = array_at(ss, {"ports"});
    if (ports == nullptr || ports->empty()) {
      // Headless services may have no ports.
      count += n;
      for (std::int64_t i = 0; i < n; ++i) {
        if (list.size() == kMax) {
          more = true;
          break;
        }
        list.emplace_back(get_string((*addresses)[i], {"ip"}));
      }
      continue;
    }
    for (const json::value& port : *ports) {
      count += n;
      for (std::int64_t i = 0; i < n; ++i) {
        if (list.size() == kMax) {
          more = true;
          break;
        }
        list.push_back(
            join_host_port(get_string((*addresses)[i], {"ip"}), get_int(port, {"port"})));
      }
    }
  }
  std::string ret = join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - static_cast<std::int64_t>(kMax));
  return ret;
}

json::array endpoints_cells(const json::value& ep, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(ep));
  cells.emplace_back(format_endpoints(ep));
  cells.emplace_back(age_of(ep, now));
  return cells;
}

// ---- EndpointSlice ----

constexpr Column kEndpointSliceColumns[] = {
    kNameColumn,
    {"AddressType", "string", "",
     "addressType specifies the type of address carried by this EndpointSlice. All addresses in "
     "this slice must be the same type."},
    {"Ports", "string", "",
     "ports specifies the list of network ports exposed by each endpoint in this slice."},
    {"Endpoints", "string", "",
     "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of "
     "1000 endpoints."},
    kAgeColumn,
};

constexpr std::int64_t kListMax = 3;

// formatDiscoveryPorts: the port number, else its name, else "*".
std::string discovery_ports(const json::value& slice) {
  std::vector<std::string> list;
  bool more = false;
  std::int64_t count = 0;
  if (const json::array* ports = array_at(slice, {"ports"})) {
    for (const json::value& p : *ports) {
      if (static_cast<std::int64_t>(list.size()) < kListMax) {
        const json::value* port = find_path(p, {"port"});
        const json::value* name = find_path(p, {"name"});
        if (port != nullptr && !port->is_null()) {
          list.push_back(std::to_string(get_int(p, {"port"})));
        } else if (name != nullptr && name->is_string()) {
          list.emplace_back(name->get_string());
        } else {
          list.emplace_back("*");
        }
      } else if (static_cast<std::int64_t>(list.size()) == kListMax) {
        more = true;
      }
      ++count;
    }
  }
  return list_with_more(list, more, count, kListMax);
}

// formatDiscoveryEndpoints: every address of every endpoint.
std::string discovery_endpoints(const json::value& slice) {
  std::vector<std::string> list;
  bool more = false;
  std::int64_t count = 0;
  if (const json::array* endpoints = array_at(slice, {"endpoints"})) {
    for (const json::value& e : *endpoints) {
      const json::array* addresses = array_at(e, {"addresses"});
      if (addresses == nullptr) continue;
      for (const json::value& a : *addresses) {
        if (static_cast<std::int64_t>(list.size()) < kListMax) {
          list.emplace_back(a.is_string() ? std::string_view(a.get_string()) : "");
        } else if (static_cast<std::int64_t>(list.size()) == kListMax) {
          more = true;
        }
        ++count;
      }
    }
  }
  return list_with_more(list, more, count, kListMax);
}

json::array endpoint_slice_cells(const json::value& slice, TimePoint now) {
  json::array cells;
  cells.emplace_back(name_of(slice));
  cells.emplace_back(get_string(slice, {"addressType"}));
  cells.emplace_back(discovery_ports(slice));
  cells.emplace_back(discovery_endpoints(slice));
  cells.emplace_back(age_of(slice, now));
  return cells;
}

// ---- Ingress ----

constexpr Column kIngressColumns[] = {
    kNameColumn,
    {"Class", "string", "",
     "The name of the IngressClass resource that should be used for additional configuration"},
    {"Hosts", "string", "",
     "Hosts that incoming requests are matched against before the ingress rule"},
    {"Address", "string", "", "Address is a list containing ingress points for the load-balancer"},
    {"Ports", "string", "", "Ports of TLS configurations that open"},
    kAgeColumn,
};

// formatHosts: up to three rule hosts, "*" when no rule names one.
std::string ingress_hosts(const json::value& ing) {
  const json::array* rules = array_at(ing, {"spec", "rules"});
  std::vector<std::string> list;
  bool more = false;
  const std::int64_t n = rules == nullptr ? 0 : static_cast<std::int64_t>(rules->size());
  for (std::int64_t i = 0; i < n; ++i) {
    if (static_cast<std::int64_t>(list.size()) == kListMax) more = true;
    std::string_view host = get_string((*rules)[i], {"host"});
    if (!more && !host.empty()) list.emplace_back(host);
  }
  if (list.empty()) return "*";
  std::string ret = join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, n - kListMax);
  return ret;
}

json::array ingress_cells(const json::value& ing, TimePoint now) {
  std::string_view class_name = get_string(ing, {"spec", "ingressClassName"});
  const json::value* class_field = find_path(ing, {"spec", "ingressClassName"});
  json::array cells;
  cells.emplace_back(name_of(ing));
  cells.emplace_back(
      class_field != nullptr && class_field->is_string() ? class_name : std::string_view("<none>"));
  cells.emplace_back(ingress_hosts(ing));
  cells.emplace_back(load_balancer_addresses(ing));
  cells.emplace_back(size_at(ing, {"spec", "tls"}) != 0 ? "80, 443" : "80");
  cells.emplace_back(age_of(ing, now));
  return cells;
}

// ---- NetworkPolicy ----

constexpr Column kNetworkPolicyColumns[] = {
    kNameColumn,
    {"Pod-Selector", "string", "", "Selects the pods to which this NetworkPolicy object applies."},
    kAgeColumn,
};

json::array network_policy_cells(const json::value& np, TimePoint now) {
  // spec.podSelector is a struct, not a pointer: absent means the empty (match-all) selector.
  const json::value* selector = find_path(np, {"spec", "podSelector"});
  static const json::value kEmpty = json::object();
  if (selector == nullptr || selector->is_null()) selector = &kEmpty;
  json::array cells;
  cells.emplace_back(name_of(np));
  cells.emplace_back(format_label_selector(selector));
  cells.emplace_back(age_of(np, now));
  return cells;
}

constexpr Printer kPrinters[] = {
    {"", "Service", kServiceColumns, &service_cells},
    {"", "Endpoints", kEndpointsColumns, &endpoints_cells},
    {"discovery.k8s.io", "EndpointSlice", kEndpointSliceColumns, &endpoint_slice_cells},
    {"networking.k8s.io", "Ingress", kIngressColumns, &ingress_cells},
    {"networking.k8s.io", "NetworkPolicy", kNetworkPolicyColumns, &network_policy_cells},
};

}  // namespace

std::span<const Printer> network_printers() { return kPrinters; }

}  // namespace podwarp::tables::detail
