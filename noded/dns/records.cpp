#include "dns/records.h"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>

namespace podwarp::noded::dns {

namespace {

std::string key(std::string_view ns, std::string_view name) {
  return lower(ns) + "/" + lower(name);
}

std::vector<ClusterRecords::Port> read_ports(const json::value* ports) {
  std::vector<ClusterRecords::Port> out;
  if (ports == nullptr || !ports->is_array()) return out;
  for (const auto& p : ports->as_array()) {
    std::int64_t n = get_int(p, {"port"}, 0);
    if (n <= 0 || n > 65535) continue;
    out.push_back({std::string(get_string(p, {"name"})), lower(get_string(p, {"protocol"}, "TCP")),
                   static_cast<std::uint16_t>(n)});
  }
  return out;
}

void add_addr_rr(std::vector<ResourceRecord>& out, const Name& owner,
                 const std::vector<std::uint8_t>& a, std::uint16_t qtype) {
  if (a.size() == 4 && (qtype == type::kA || qtype == type::kANY))
    out.push_back(make_a(owner, std::span<const std::uint8_t, 4>(a.data(), 4), kTtl));
  if (a.size() == 16 && (qtype == type::kAAAA || qtype == type::kANY))
    out.push_back(make_aaaa(owner, std::span<const std::uint8_t, 16>(a.data(), 16), kTtl));
}

Name concat(std::initializer_list<std::string_view> labels, const Name& zone) {
  Name n;
  for (auto l : labels) n.emplace_back(l);
  n.insert(n.end(), zone.begin(), zone.end());
  return n;
}

// Reverse names -> address bytes.
std::optional<std::vector<std::uint8_t>> parse_reverse(const Name& n) {
  if (n.size() == 6 && lower(n[4]) == "in-addr" && lower(n[5]) == "arpa") {
    std::vector<std::uint8_t> a(4);
    for (int i = 0; i < 4; ++i) {
      const std::string& l = n[static_cast<std::size_t>(3 - i)];
      if (l.empty() || l.size() > 3 || !std::all_of(l.begin(), l.end(), ::isdigit)) return std::nullopt;
      int v = std::stoi(l);
      if (v > 255) return std::nullopt;
      a[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v);
    }
    return a;
  }
  if (n.size() == 34 && lower(n[32]) == "ip6" && lower(n[33]) == "arpa") {
    std::vector<std::uint8_t> a(16);
    for (int i = 0; i < 32; ++i) {
      const std::string& l = n[static_cast<std::size_t>(31 - i)];
      if (l.size() != 1 || !std::isxdigit(static_cast<unsigned char>(l[0]))) return std::nullopt;
      int v = std::stoi(l, nullptr, 16);
      a[static_cast<std::size_t>(i / 2)] |= static_cast<std::uint8_t>(i % 2 == 0 ? v << 4 : v);
    }
    return a;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::uint8_t>> parse_ip(std::string_view text) {
  std::string t(text);
  std::vector<std::uint8_t> a(16);
  if (::inet_pton(AF_INET, t.c_str(), a.data()) == 1) {
    a.resize(4);
    return a;
  }
  if (::inet_pton(AF_INET6, t.c_str(), a.data()) == 1) return a;
  return std::nullopt;
}

std::optional<std::vector<std::uint8_t>> parse_dashed_ip(std::string_view label) {
  if (label.empty() || label.size() > 45) return std::nullopt;
  std::string dotted(label);
  if (std::count(dotted.begin(), dotted.end(), '-') == 3 &&
      std::all_of(dotted.begin(), dotted.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '-'; })) {
    std::replace(dotted.begin(), dotted.end(), '-', '.');
    std::vector<std::uint8_t> a(4);
    if (::inet_pton(AF_INET, dotted.c_str(), a.data()) == 1) return a;
    return std::nullopt;
  }
  std::string colons(label);
  std::replace(colons.begin(), colons.end(), '-', ':');
  std::vector<std::uint8_t> a(16);
  if (::inet_pton(AF_INET6, colons.c_str(), a.data()) == 1) return a;
  return std::nullopt;
}

std::string dashed_ip(const std::vector<std::uint8_t>& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.size() == 4) {
    ::inet_ntop(AF_INET, addr.data(), buf, sizeof buf);
  } else if (addr.size() == 16) {
    ::inet_ntop(AF_INET6, addr.data(), buf, sizeof buf);
  }
  std::string s(buf);
  std::replace(s.begin(), s.end(), '.', '-');
  std::replace(s.begin(), s.end(), ':', '-');
  return s;
}

ClusterRecords::ClusterRecords(std::string domain)
    : domain_(lower(domain)), zone_(name_from_text(domain_)),
      serial_(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::seconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count())) {}

void ClusterRecords::upsert_service(const json::value& svc) {
  std::string ns(get_string(svc, {"metadata", "namespace"}));
  std::string name(get_string(svc, {"metadata", "name"}));
  if (ns.empty() || name.empty()) return;
  Service s;
  s.ns = lower(ns);
  s.name = lower(name);
  if (get_string(svc, {"spec", "type"}) == "ExternalName") {
    s.kind = Service::kExternalName;
    s.external_name = std::string(get_string(svc, {"spec", "externalName"}));
    while (!s.external_name.empty() && s.external_name.back() == '.') s.external_name.pop_back();
  } else {
    std::vector<std::string> ips;
    if (const auto* list = find_path(svc, {"spec", "clusterIPs"}); list && list->is_array()) {
      for (const auto& v : list->as_array())
        if (v.is_string()) ips.emplace_back(v.as_string());
    }
    if (ips.empty()) {
      std::string one(get_string(svc, {"spec", "clusterIP"}));
      if (!one.empty()) ips.push_back(one);
    }
    if (!ips.empty() && ips.front() == "None") {
      s.kind = Service::kHeadless;
    } else {
      for (const auto& ip : ips)
        if (auto a = parse_ip(ip)) s.cluster_ips.push_back(std::move(*a));
    }
  }
  s.ports = read_ports(find_path(svc, {"spec", "ports"}));
  s.publish_not_ready = get_bool(svc, {"spec", "publishNotReadyAddresses"}) ||
                        get_string(svc, {"metadata", "annotations",
                                         "service.alpha.kubernetes.io/tolerate-unready-endpoints"}) ==
                            "true";
  std::string k = key(ns, name);
  auto [it, inserted] = services_.insert_or_assign(k, std::move(s));
  if (inserted) ++services_per_ns_[it->second.ns];
  ++serial_;
}

void ClusterRecords::delete_service(const json::value& svc) {
  std::string k = key(get_string(svc, {"metadata", "namespace"}), get_string(svc, {"metadata", "name"}));
  auto it = services_.find(k);
  if (it == services_.end()) return;
  if (--services_per_ns_[it->second.ns] <= 0) services_per_ns_.erase(it->second.ns);
  services_.erase(it);
  ++serial_;
}

void ClusterRecords::upsert_slice(const json::value& slice) {
  std::string ns(get_string(slice, {"metadata", "namespace"}));
  std::string name(get_string(slice, {"metadata", "name"}));
  if (ns.empty() || name.empty()) return;
  std::string k = key(ns, name);
  delete_slice(slice);
  std::string_view svc = get_string(slice, {"metadata", "labels", "kubernetes.io/service-name"});
  std::string_view family = get_string(slice, {"addressType"});
  if (svc.empty() || (family != "IPv4" && family != "IPv6")) return;
  Slice s;
  s.ns = lower(ns);
  s.service = lower(svc);
  s.ports = read_ports(find_path(slice, {"ports"}));
  if (const auto* eps = find_path(slice, {"endpoints"}); eps && eps->is_array()) {
    for (const auto& e : eps->as_array()) {
      Endpoint ep;
      if (const auto* r = find_path(e, {"conditions", "ready"}); r && r->is_bool())
        ep.ready = r->as_bool();
      ep.hostname = lower(get_string(e, {"hostname"}));
      if (const auto* addrs = find_path(e, {"addresses"}); addrs && addrs->is_array()) {
        for (const auto& a : addrs->as_array()) {
          if (!a.is_string()) continue;
          auto ip = parse_ip(a.as_string());
          if (ip && ip->size() == (family == "IPv4" ? 4u : 16u)) ep.addresses.push_back(std::move(*ip));
        }
      }
      if (!ep.addresses.empty()) s.endpoints.push_back(std::move(ep));
    }
  }
  by_service_[key(s.ns, s.service)].insert(k);
  slices_.emplace(k, std::move(s));
  ++serial_;
}

void ClusterRecords::delete_slice(const json::value& slice) {
  std::string k = key(get_string(slice, {"metadata", "namespace"}), get_string(slice, {"metadata", "name"}));
  auto it = slices_.find(k);
  if (it == slices_.end()) return;
  std::string sk = key(it->second.ns, it->second.service);
  if (auto b = by_service_.find(sk); b != by_service_.end()) {
    b->second.erase(k);
    if (b->second.empty()) by_service_.erase(b);
  }
  slices_.erase(it);
  ++serial_;
}

std::vector<ClusterRecords::EndpointView> ClusterRecords::endpoints_of(const Service& s) const {
  std::vector<EndpointView> out;
  auto b = by_service_.find(s.ns + "/" + s.name);
  if (b == by_service_.end()) return out;
  for (const auto& sk : b->second) {
    const Slice& sl = slices_.at(sk);
    for (const auto& ep : sl.endpoints) {
      if (!ep.ready && !s.publish_not_ready) continue;
      for (const auto& a : ep.addresses) {
        EndpointView v{a, ep.hostname.empty() ? dashed_ip(a) : ep.hostname};
        bool dup = std::any_of(out.begin(), out.end(), [&](const EndpointView& o) {
          return o.addr == v.addr && o.label == v.label;
        });
        if (!dup) out.push_back(std::move(v));
      }
    }
  }
  return out;
}

std::vector<ClusterRecords::Port> ClusterRecords::headless_ports(const Service& s) const {
  std::vector<Port> out;
  auto b = by_service_.find(s.ns + "/" + s.name);
  if (b == by_service_.end()) return out;
  for (const auto& sk : b->second) {
    for (const auto& p : slices_.at(sk).ports) {
      bool dup = std::any_of(out.begin(), out.end(), [&](const Port& o) {
        return o.name == p.name && o.protocol == p.protocol && o.port == p.port;
      });
      if (!dup) out.push_back(p);
    }
  }
  return out;
}

ResourceRecord ClusterRecords::soa() const {
  SoaData d;
  d.mname = concat({"ns", "dns"}, zone_);
  d.rname = concat({"hostmaster"}, zone_);
  d.serial = serial_;
  d.refresh = 7200;
  d.retry = 1800;
  d.expire = 86400;
  d.minimum = kNegativeTtl;
  return ResourceRecord{zone_, type::kSOA, kClassIN, kNegativeTtl, d};
}

LookupResult ClusterRecords::negative(std::uint16_t rc) const {
  LookupResult r;
  r.rcode = rc;
  r.authority.push_back(soa());
  return r;
}

LookupResult ClusterRecords::lookup_ptr(const Name& qname) const {
  LookupResult r;
  auto addr = parse_reverse(qname);
  if (!addr) {
    r.kind = LookupResult::kNotOurs;
    return r;
  }
  for (const auto& [k, s] : services_) {
    if (std::find(s.cluster_ips.begin(), s.cluster_ips.end(), *addr) != s.cluster_ips.end())
      r.answer.push_back(make_name_rr(qname, type::kPTR, concat({s.name, s.ns, "svc"}, zone_), kTtl));
    if (s.kind != Service::kHeadless) continue;
    auto b = by_service_.find(k);
    if (b == by_service_.end()) continue;
    for (const auto& sk : b->second) {
      for (const auto& ep : slices_.at(sk).endpoints) {
        if (ep.hostname.empty() || (!ep.ready && !s.publish_not_ready)) continue;
        if (std::find(ep.addresses.begin(), ep.addresses.end(), *addr) != ep.addresses.end())
          r.answer.push_back(make_name_rr(qname, type::kPTR,
                                          concat({ep.hostname, s.name, s.ns, "svc"}, zone_), kTtl));
      }
    }
  }
  if (r.answer.empty()) r.kind = LookupResult::kNotOurs;
  return r;
}

LookupResult ClusterRecords::lookup(const Name& qname, std::uint16_t qtype) const {
  if (!in_zone(qname)) {
    if (qtype == type::kPTR) return lookup_ptr(qname);
    LookupResult r;
    r.kind = LookupResult::kNotOurs;
    return r;
  }
  Name rel;  // the labels before the zone, lower case
  for (std::size_t i = 0; i + zone_.size() < qname.size(); ++i) {
    if (qname[i].find('.') != std::string::npos || qname[i].empty())
      return negative(rcode::kNxDomain);
    rel.push_back(lower(qname[i]));
  }
  LookupResult r;
  const std::size_t n = rel.size();
  auto nodata = [&] { return negative(rcode::kNoError); };

  if (n == 0) {  // the apex
    if (qtype == type::kSOA || qtype == type::kANY) {
      r.answer.push_back(soa());
      r.answer.back().name = qname;
      return r;
    }
    if (qtype == type::kNS) {
      r.answer.push_back(make_name_rr(qname, type::kNS, concat({"ns", "dns"}, zone_), kTtl));
      return r;
    }
    return nodata();
  }
  if (n == 1 && rel[0] == "dns-version") {
    if (qtype != type::kTXT && qtype != type::kANY) return nodata();
    r.answer.push_back(ResourceRecord{qname, type::kTXT, kClassIN, kTtl, TxtData{{"1.1.0"}}});
    return r;
  }
  if (n == 1 && (rel[0] == "svc" || rel[0] == "pod")) return nodata();
  if (n == 2 && rel[1] == "dns" && rel[0] == "ns") {  // the SOA's mname: no address to give
    return nodata();
  }
  if (rel.back() == "pod") {
    if (n == 2) return nodata();  // <ns>.pod.<zone>: any namespace (pods insecure)
    if (n != 3) return negative(rcode::kNxDomain);
    auto ip = parse_dashed_ip(rel[0]);
    if (!ip) return negative(rcode::kNxDomain);
    add_addr_rr(r.answer, qname, *ip, qtype);
    if (r.answer.empty()) return nodata();
    return r;
  }
  if (rel.back() != "svc" || n < 2 || n > 5) return negative(rcode::kNxDomain);
  if (n == 2) return services_per_ns_.contains(rel[0]) ? nodata() : negative(rcode::kNxDomain);

  // rel = [..., svc-name, ns, "svc"]
  const std::string& ns = rel[n - 2];
  const std::string& svc_name = rel[n - 3];
  auto it = services_.find(ns + "/" + svc_name);
  if (it == services_.end()) return negative(rcode::kNxDomain);
  const Service& s = it->second;
  const Name svc_fqdn = concat({s.name, s.ns, "svc"}, zone_);

  if (s.kind == Service::kExternalName) {
    if (n != 3 || s.external_name.empty()) return negative(rcode::kNxDomain);
    Name target = name_from_text(s.external_name);
    r.answer.push_back(make_name_rr(qname, type::kCNAME, target, kTtl));
    if (qtype == type::kCNAME) return r;
    if (in_zone(target)) {
      // One level inside the zone (a chain of ExternalNames is not followed further).
      LookupResult t = lookup(target, qtype);
      for (auto& rr : t.answer)
        if (rr.type != type::kCNAME) r.answer.push_back(std::move(rr));
    } else {
      r.external_target = target;
    }
    return r;
  }

  std::vector<EndpointView> eps;
  if (s.kind == Service::kHeadless) {
    eps = endpoints_of(s);
    if (eps.empty()) return negative(rcode::kNxDomain);  // specification 2.4.1
  }
  const std::vector<Port> ports = s.kind == Service::kHeadless ? headless_ports(s) : s.ports;

  // SRV records for the named ports matching (port name, protocol); empty strings match all.
  auto srv = [&](const std::string& pname, const std::string& proto) {
    std::vector<ResourceRecord> out, extra;
    for (const auto& p : ports) {
      if (p.name.empty()) continue;
      if (!pname.empty() && lower(p.name) != pname) continue;
      if (!proto.empty() && p.protocol != proto) continue;
      if (s.kind == Service::kClusterIP) {
        out.push_back({qname, type::kSRV, kClassIN, kTtl, SrvData{0, 0, p.port, svc_fqdn}});
      } else {
        for (const auto& e : eps) {
          Name target = concat({e.label, s.name, s.ns, "svc"}, zone_);
          out.push_back({qname, type::kSRV, kClassIN, kTtl, SrvData{0, 0, p.port, target}});
        }
      }
    }
    // Additional: the targets' addresses, once each.
    if (!out.empty()) {
      if (s.kind == Service::kClusterIP) {
        for (const auto& a : s.cluster_ips) add_addr_rr(extra, svc_fqdn, a, type::kANY);
      } else {
        for (const auto& e : eps)
          add_addr_rr(extra, concat({e.label, s.name, s.ns, "svc"}, zone_), e.addr, type::kANY);
      }
    }
    std::uint16_t weight = static_cast<std::uint16_t>(
        std::max<std::size_t>(1, 100 / std::max<std::size_t>(1, out.size())));
    for (auto& rr : out) std::get<SrvData>(rr.data).weight = weight;
    return std::make_pair(std::move(out), std::move(extra));
  };

  if (n == 3) {  // <svc>.<ns>.svc
    if (qtype == type::kSRV) {
      auto [ans, extra] = srv("", "");
      if (ans.empty()) return nodata();
      r.answer = std::move(ans);
      r.additional = std::move(extra);
      return r;
    }
    if (s.kind == Service::kClusterIP) {
      for (const auto& a : s.cluster_ips) add_addr_rr(r.answer, qname, a, qtype);
    } else {
      for (const auto& e : eps) {
        bool dup = std::any_of(r.answer.begin(), r.answer.end(), [&](const ResourceRecord& rr) {
          return std::get<RawData>(rr.data).bytes == e.addr;
        });
        if (!dup) add_addr_rr(r.answer, qname, e.addr, qtype);
      }
    }
    if (r.answer.empty()) return nodata();
    return r;
  }
  if (n == 4) {  // <host>.<svc>.<ns>.svc, or the empty non-terminal _<proto>.<svc>...
    const std::string& first = rel[0];
    if (first.starts_with("_")) {
      auto [ans, extra] = srv("", first.substr(1));
      return ans.empty() ? negative(rcode::kNxDomain) : nodata();
    }
    if (s.kind != Service::kHeadless) return negative(rcode::kNxDomain);
    bool found = false;
    for (const auto& e : eps) {
      if (e.label != first) continue;
      found = true;
      add_addr_rr(r.answer, qname, e.addr, qtype);
    }
    if (!found) return negative(rcode::kNxDomain);
    if (r.answer.empty()) return nodata();
    return r;
  }
  // n == 5: _<port>._<proto>.<svc>.<ns>.svc
  if (!rel[0].starts_with("_") || !rel[1].starts_with("_") || rel[0].size() < 2 ||
      rel[1].size() < 2)
    return negative(rcode::kNxDomain);
  auto [ans, extra] = srv(rel[0].substr(1), rel[1].substr(1));
  if (ans.empty()) return negative(rcode::kNxDomain);
  if (qtype != type::kSRV && qtype != type::kANY) return nodata();
  r.answer = std::move(ans);
  r.additional = std::move(extra);
  return r;
}

}  // namespace podwarp::noded::dns
