#include "lb/service_desc.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace podwarp::noded::lb {
namespace {

const json::array* get_array(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* f = find_path(v, path);
  return f != nullptr && f->is_array() ? &f->get_array() : nullptr;
}

std::string_view as_string(const json::value& v) {
  return v.is_string() ? std::string_view(v.get_string()) : std::string_view();
}

// A condition: absent or null means `fallback`, else the boolean (non-booleans: fallback).
bool condition(const json::value& endpoint, std::string_view name, bool fallback) {
  const json::value* c = find_path(endpoint, {"conditions", name});
  return c != nullptr && c->is_bool() ? c->get_bool() : fallback;
}

std::optional<std::uint16_t> port_number(const json::value& v, std::string_view field) {
  const json::value* p = v.is_object() ? v.get_object().if_contains(field) : nullptr;
  if (p == nullptr || !p->is_int64()) return std::nullopt;
  std::int64_t n = p->get_int64();
  if (n <= 0 || n > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(n);
}

Protocol protocol_of(const json::value& port) {
  std::string_view p = get_string(port, {"protocol"}, "TCP");
  return parse_protocol(p).value_or(Protocol::TCP);
}

struct Candidate {
  Backend backend;
  bool ready = false;
  bool serving = false;
  bool terminating = false;
};

// Usable endpoints of one set, kube-proxy's rule: ready ones, else serving && terminating.
std::vector<Backend> usable(const std::vector<Candidate>& all, bool local_only) {
  std::vector<Backend> out;
  for (const auto& c : all)
    if (c.ready && (!local_only || c.backend.local)) out.push_back(c.backend);
  if (out.empty()) {
    for (const auto& c : all) {
      if (c.serving && c.terminating && (!local_only || c.backend.local)) {
        Backend b = c.backend;
        b.terminating = true;
        out.push_back(b);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::optional<ServiceDesc> service_desc_from_json(const json::value& service,
                                                  std::span<const json::value> slices,
                                                  std::string_view node_name) {
  if (!service.is_object()) return std::nullopt;
  std::string_view ns = get_string(service, {"metadata", "namespace"}, "default");
  std::string_view name = get_string(service, {"metadata", "name"});
  if (name.empty()) return std::nullopt;
  std::string_view type = get_string(service, {"spec", "type"}, "ClusterIP");
  if (type == "ExternalName") return std::nullopt;

  // Cluster IPs; "None" anywhere means headless.
  std::vector<IpAddr> cluster_ips;
  if (const json::array* ips = get_array(service, {"spec", "clusterIPs"})) {
    for (const auto& ip : *ips) {
      if (as_string(ip) == "None") return std::nullopt;
      if (auto a = IpAddr::parse(as_string(ip))) cluster_ips.push_back(*a);
    }
  }
  std::string_view cluster_ip = get_string(service, {"spec", "clusterIP"});
  if (cluster_ip == "None") return std::nullopt;
  if (cluster_ips.empty())
    if (auto a = IpAddr::parse(cluster_ip)) cluster_ips.push_back(*a);

  bool want_v4 = false, want_v6 = false;
  if (const json::array* fams = get_array(service, {"spec", "ipFamilies"})) {
    for (const auto& f : *fams) {
      want_v4 |= as_string(f) == "IPv4";
      want_v6 |= as_string(f) == "IPv6";
    }
  }
  if (!want_v4 && !want_v6) {
    for (const auto& ip : cluster_ips) (ip.is_v4() ? want_v4 : want_v6) = true;
    if (!want_v4 && !want_v6) want_v4 = true;
  }

  std::vector<IpAddr> external_ips;
  if (const json::array* ips = get_array(service, {"spec", "externalIPs"}))
    for (const auto& ip : *ips)
      if (auto a = IpAddr::parse(as_string(ip))) external_ips.push_back(*a);
  std::vector<IpAddr> lb_ips;
  if (type == "LoadBalancer") {
    if (const json::array* ing = get_array(service, {"status", "loadBalancer", "ingress"})) {
      for (const auto& i : *ing) {
        if (get_string(i, {"ipMode"}) == "Proxy") continue;
        if (auto a = IpAddr::parse(get_string(i, {"ip"}))) lb_ips.push_back(*a);
      }
    }
  }
  bool node_ports = type == "NodePort" || type == "LoadBalancer";

  ServiceDesc d;
  d.key = std::string(ns) + "/" + std::string(name);
  if (get_string(service, {"spec", "sessionAffinity"}) == "ClientIP") {
    std::int64_t t =
        get_int(service, {"spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"},
                kDefaultAffinityTimeoutSeconds);
    d.affinity_timeout_s = static_cast<std::uint32_t>(std::clamp<std::int64_t>(t, 1, 86400));
  }
  d.external_local = get_string(service, {"spec", "externalTrafficPolicy"}) == "Local";
  d.internal_local = get_string(service, {"spec", "internalTrafficPolicy"}) == "Local";

  // The slices of this service.
  std::vector<const json::value*> mine;
  for (const auto& s : slices) {
    if (!s.is_object()) continue;
    if (get_string(s, {"metadata", "labels", "kubernetes.io/service-name"}) != name) continue;
    std::string_view sns = get_string(s, {"metadata", "namespace"}, ns);
    if (sns != ns) continue;
    std::string_view at = get_string(s, {"addressType"});
    if (at != "IPv4" && at != "IPv6") continue;
    mine.push_back(&s);
  }

  const json::array* ports = get_array(service, {"spec", "ports"});
  if (ports == nullptr) return d;
  for (const auto& p : *ports) {
    auto port = port_number(p, "port");
    if (!port) continue;
    ServicePort sp;
    sp.name = std::string(get_string(p, {"name"}));
    sp.proto = protocol_of(p);
    for (const auto& ip : cluster_ips)
      sp.frontends.push_back({FrontendKind::ClusterIP, ip, *port, sp.proto});
    for (const auto& ip : external_ips)
      sp.frontends.push_back({FrontendKind::ExternalIP, ip, *port, sp.proto});
    for (const auto& ip : lb_ips)
      sp.frontends.push_back({FrontendKind::LoadBalancer, ip, *port, sp.proto});
    if (auto np = port_number(p, "nodePort"); np && node_ports) {
      if (want_v4)
        sp.frontends.push_back({FrontendKind::NodePort, IpAddr::any_v4(), *np, sp.proto});
      if (want_v6)
        sp.frontends.push_back({FrontendKind::NodePort, IpAddr::any_v6(), *np, sp.proto});
    }

    // Endpoints, deduplicated by (address, port): the best conditions win.
    std::map<std::tuple<IpAddr, std::uint16_t>, Candidate> by_addr;
    for (const json::value* s : mine) {
      std::optional<std::uint16_t> target;
      if (const json::array* sports = get_array(*s, {"ports"})) {
        for (const auto& spp : *sports) {
          if (get_string(spp, {"name"}) != sp.name || protocol_of(spp) != sp.proto) continue;
          if ((target = port_number(spp, "port"))) break;
        }
      }
      if (!target) continue;
      const json::array* eps = get_array(*s, {"endpoints"});
      if (eps == nullptr) continue;
      for (const auto& ep : *eps) {
        const json::array* addrs = get_array(ep, {"addresses"});
        if (addrs == nullptr || addrs->empty()) continue;
        auto addr = IpAddr::parse(as_string((*addrs)[0]));
        if (!addr) continue;
        Candidate c;
        c.backend.addr = *addr;
        c.backend.port = *target;
        c.backend.proto = sp.proto;
        c.backend.local = !node_name.empty() && get_string(ep, {"nodeName"}) == node_name;
        c.ready = condition(ep, "ready", true);
        c.serving = condition(ep, "serving", true);
        c.terminating = condition(ep, "terminating", false);
        auto [it, inserted] = by_addr.try_emplace({*addr, *target}, c);
        if (!inserted && c.ready && !it->second.ready) it->second = c;
      }
    }
    std::vector<Candidate> all;
    all.reserve(by_addr.size());
    for (auto& [k, c] : by_addr) all.push_back(c);
    sp.cluster_backends = usable(all, false);
    sp.local_backends = usable(all, true);
    d.ports.push_back(std::move(sp));
  }
  return d;
}

}  // namespace podwarp::noded::lb
