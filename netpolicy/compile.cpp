#include "netpolicy/compile.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <expected>
#include <set>
#include <unordered_map>
#include <utility>

#include "podwarp/selector.h"

namespace podwarp::netpolicy {
namespace {

constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
constexpr std::uint8_t kSctp = 132;
constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

// ---- addresses (host order inside this file; Prefix and the API use network order) ----

std::uint32_t netmask(int len) { return len == 0 ? 0 : ~std::uint32_t{0} << (32 - len); }

struct Net {
  std::uint32_t addr = 0;  // host order, host bits zero
  std::uint8_t len = 0;
  // Ascending (addr, len) is a preorder of the prefix trie: a prefix comes before everything
  // it contains.
  auto operator<=>(const Net&) const = default;
  bool contains(const Net& o) const { return o.len >= len && (o.addr & netmask(len)) == addr; }
  bool contains(std::uint32_t ip) const { return (ip & netmask(len)) == addr; }
};

std::optional<std::uint32_t> parse_ipv4(std::string_view text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  std::string s(text);
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

bool is_ipv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  std::string s(text);
  in6_addr a{};
  return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// "10.0.0.0/8" -> Net (host bits cleared, as Go's net.ParseCIDR); an IPv6 CIDR -> nullopt
// (ignored, not an error); anything else -> an error message.
std::expected<std::optional<Net>, std::string> parse_cidr(const json::value& v) {
  const json::string* str = v.if_string();
  if (str == nullptr) return std::unexpected(std::string("must be a string"));
  std::string_view text = *str;
  auto bad = [&] { return std::unexpected(fmt::format("invalid CIDR \"{}\"", text)); };
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  std::string_view addr = text.substr(0, slash);
  std::string_view bits = text.substr(slash + 1);
  int len = -1;
  auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), len);
  if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size()) return bad();
  if (is_ipv6(addr) && len >= 0 && len <= 128) return std::optional<Net>();
  auto ip = parse_ipv4(addr);
  if (!ip || len < 0 || len > 32) return bad();
  return std::optional<Net>(Net{*ip & netmask(len), static_cast<std::uint8_t>(len)});
}

// ---- reading API objects defensively ----

const json::array* array_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* a = find_path(v, path);
  return a != nullptr ? a->if_array() : nullptr;
}

std::string_view namespace_of(const json::value& obj) {
  return get_string(obj, {"metadata", "namespace"}, "default");
}

// An integer JSON number (1.0 counts, as Go's decoder accepts it into an int).
std::optional<std::int64_t> integer(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) {  // beyond int64: still out of any range the callers accept
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get_uint64(), 1u << 20));
  }
  if (v.is_double()) {
    double d = v.get_double();
    if (std::trunc(d) == d && std::abs(d) < 1e9) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// "TCP" (also for null/absent), "UDP", "SCTP" -> IPPROTO_*; 0 for anything else.
std::uint8_t protocol(const json::value* v) {
  if (v == nullptr || v->is_null()) return kTcp;
  const json::string* s = v->if_string();
  if (s == nullptr) return 0;
  if (*s == "TCP") return kTcp;
  if (*s == "UDP") return kUdp;
  if (*s == "SCTP") return kSctp;
  return 0;
}

const json::value* field(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() || it->value().is_null() ? nullptr : &it->value();
}

// ---- port sets ----

struct PortRange {
  std::uint8_t proto = 0;  // 0: every protocol and port
  std::uint16_t lo = 0;
  std::uint16_t hi = 0;
  auto operator<=>(const PortRange&) const = default;
};

constexpr PortRange kEveryPort{0, 0, 65535};

// Sorted, overlapping and adjacent ranges merged; {kEveryPort} absorbs everything.
using PortSet = std::vector<PortRange>;

PortSet canonical(PortSet ranges) {
  if (std::ranges::any_of(ranges, [](const PortRange& r) { return r.proto == 0; })) {
    return {kEveryPort};
  }
  std::ranges::sort(ranges);
  PortSet out;
  for (const PortRange& r : ranges) {
    if (!out.empty() && out.back().proto == r.proto && int{r.lo} <= int{out.back().hi} + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

struct NamedPort {
  std::uint8_t proto = kTcp;
  std::string name;
};

struct RulePorts {
  bool every = false;  // no `ports`
  PortSet numeric;
  std::vector<NamedPort> named;
};

// The numbers `pod` gives the names in its containers[].ports.
PortSet resolve_named(const json::value& pod, const std::vector<NamedPort>& named) {
  PortSet out;
  if (named.empty()) return out;
  const json::array* containers = array_at(pod, {"spec", "containers"});
  if (containers == nullptr) return out;
  for (const json::value& c : *containers) {
    const json::array* ports = array_at(c, {"ports"});
    if (ports == nullptr) continue;
    for (const json::value& p : *ports) {
      const json::object* po = p.if_object();
      if (po == nullptr) continue;
      std::string_view name = get_string(p, {"name"});
      const json::value* number = field(*po, "containerPort");
      std::int64_t n = number != nullptr ? integer(*number).value_or(0) : 0;
      std::uint8_t proto = protocol(field(*po, "protocol"));
      if (name.empty() || n < 1 || n > 65535 || proto == 0) continue;
      for (const NamedPort& want : named) {
        if (want.name == name && want.proto == proto) {
          auto port = static_cast<std::uint16_t>(n);
          out.push_back({proto, port, port});
        }
      }
    }
  }
  return out;
}

PortSet concat(PortSet a, const PortSet& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- peers ----

struct IpBlock {
  Net cidr;
  std::vector<Net> excepts;
  auto operator<=>(const IpBlock&) const = default;
  bool contains(std::uint32_t ip) const {
    return cidr.contains(ip) &&
           std::ranges::none_of(excepts, [&](const Net& e) { return e.contains(ip); });
  }
};

// A pod that counts as a peer: on the pod network with at least one IPv4, not terminated.
struct PeerPod {
  const json::value* pod = nullptr;
  std::vector<std::uint32_t> ips;  // host order
};

struct PeerSpec {
  std::optional<LabelSelector> pods;        // podSelector
  std::optional<LabelSelector> namespaces;  // namespaceSelector
  std::optional<IpBlock> block;             // ipBlock (IPv4 only)
  bool ignored = false;                     // an IPv6 ipBlock: matches nothing here
};

struct Rule {
  RulePorts ports;
  bool every_peer = false;  // no `from`/`to`
  std::vector<PeerSpec> peers;
  // Filled by resolve_peers() once the policy selects a local pod.
  std::vector<const PeerPod*> pods;
  std::vector<IpBlock> blocks;
};

struct Policy {
  std::string key;  // "<ns>/<name>"
  std::string ns;
  LabelSelector selector;
  bool ingress = false;
  bool egress = false;
  std::array<std::vector<Rule>, 2> rules;  // by Direction
  bool resolved = false;
};

enum Direction { kIngress = 0, kEgress = 1 };

// ---- parsing a NetworkPolicy ----

class PolicyParser {
 public:
  PolicyParser(std::string key, std::vector<std::string>& problems)
      : key_(std::move(key)), problems_(problems) {}

  void problem(std::string_view where, std::string_view what) {
    problems_.push_back(fmt::format("NetworkPolicy {}: {}: {}", key_, where, what));
  }
  // problem() for the parsers of optional pieces: `return fail(...)` skips the piece.
  std::nullopt_t fail(std::string_view where, std::string_view what) {
    problem(where, what);
    return std::nullopt;
  }

  std::optional<LabelSelector> selector(const json::value& v, std::string_view where) {
    auto sel = LabelSelector::from_json(v);
    if (!sel) {
      return fail(where, sel.error());
    }
    return std::move(*sel);
  }

  // One entry of `ports`; nullopt (with a problem) when it is malformed.
  std::optional<RulePorts> port(const json::value& v, const std::string& where) {
    const json::object* o = v.if_object();
    if (o == nullptr) return fail(where, "must be an object");
    std::uint8_t proto = protocol(field(*o, "protocol"));
    if (proto == 0) return fail(where + ".protocol", "must be TCP, UDP or SCTP");
    const json::value* port = field(*o, "port");
    const json::value* end = field(*o, "endPort");
    RulePorts out;
    if (port == nullptr) {
      if (end != nullptr) return fail(where + ".endPort", "requires port");
      out.numeric.push_back({proto, 0, 65535});
      return out;
    }
    if (const json::string* name = port->if_string()) {
      if (name->empty()) return fail(where + ".port", "must not be empty");
      if (end != nullptr) {
        return fail(where + ".endPort", "not allowed with a named port");
      }
      out.named.push_back({proto, std::string(*name)});
      return out;
    }
    std::optional<std::int64_t> lo = integer(*port);
    if (!lo || *lo < 1 || *lo > 65535) {
      return fail(where + ".port", "must be a port number 1-65535 or a name");
    }
    std::int64_t hi = *lo;
    if (end != nullptr) {
      std::optional<std::int64_t> e = integer(*end);
      if (!e || *e < *lo || *e > 65535) {
        return fail(where + ".endPort", "must be a number from port to 65535");
      }
      hi = *e;
    }
    out.numeric.push_back({proto, static_cast<std::uint16_t>(*lo), static_cast<std::uint16_t>(hi)});
    return out;
  }

  std::optional<PeerSpec> peer(const json::value& v, const std::string& where) {
    const json::object* o = v.if_object();
    if (o == nullptr) return fail(where, "must be an object");
    PeerSpec out;
    const json::value* pods = field(*o, "podSelector");
    const json::value* namespaces = field(*o, "namespaceSelector");
    const json::value* block = field(*o, "ipBlock");
    if (block != nullptr) {
      if (pods != nullptr || namespaces != nullptr) {
        return fail(where, "ipBlock may not be combined with selectors");
      }
      return ip_block(*block, where + ".ipBlock");
    }
    if (pods == nullptr && namespaces == nullptr) {
      return fail(where, "needs podSelector, namespaceSelector or ipBlock");
    }
    if (pods != nullptr && !(out.pods = selector(*pods, where + ".podSelector"))) {
      return std::nullopt;
    }
    if (namespaces != nullptr &&
        !(out.namespaces = selector(*namespaces, where + ".namespaceSelector"))) {
      return std::nullopt;
    }
    return out;
  }

  std::optional<PeerSpec> ip_block(const json::value& v, const std::string& where) {
    const json::object* o = v.if_object();
    if (o == nullptr) return fail(where, "must be an object");
    PeerSpec out;
    const json::value* cidr_v = field(*o, "cidr");
    if (cidr_v == nullptr) return fail(where + ".cidr", "required");
    auto cidr = parse_cidr(*cidr_v);
    if (!cidr) return fail(where + ".cidr", cidr.error());
    if (!*cidr) {
      out.ignored = true;  // IPv6
      return out;
    }
    IpBlock block{**cidr, {}};
    if (const json::value* except = field(*o, "except")) {
      const json::array* list = except->if_array();
      if (list == nullptr) return fail(where + ".except", "must be a list");
      for (std::size_t i = 0; i < list->size(); ++i) {
        auto e = parse_cidr((*list)[i]);
        // An except that cannot be read cannot be honoured: drop the whole peer (deny).
        if (!e) return fail(fmt::format("{}.except[{}]", where, i), e.error());
        if (*e) block.excepts.push_back(**e);
      }
    }
    std::ranges::sort(block.excepts);
    out.block = std::move(block);
    return out;
  }

  // One entry of spec.ingress / spec.egress; nullopt when it allows nothing at all.
  std::optional<Rule> rule(const json::value& v, Direction dir, const std::string& where) {
    const json::object* o = v.if_object();
    if (o == nullptr) return fail(where, "must be an object");
    Rule out;
    std::string_view peers_key = dir == kIngress ? "from" : "to";
    const json::value* peers = field(*o, peers_key);
    const json::array* peer_list = peers != nullptr ? peers->if_array() : nullptr;
    if (peers != nullptr && peer_list == nullptr) {
      return fail(fmt::format("{}.{}", where, peers_key), "must be a list");
    }
    out.every_peer = peer_list == nullptr || peer_list->empty();
    if (!out.every_peer) {
      for (std::size_t i = 0; i < peer_list->size(); ++i) {
        auto p = peer((*peer_list)[i], fmt::format("{}.{}[{}]", where, peers_key, i));
        if (p && !p->ignored) out.peers.push_back(std::move(*p));
      }
      if (out.peers.empty()) return std::nullopt;  // only bad/IPv6 peers: nobody, not everybody
    }
    const json::value* ports = field(*o, "ports");
    const json::array* port_list = ports != nullptr ? ports->if_array() : nullptr;
    if (ports != nullptr && port_list == nullptr) {
      return fail(where + ".ports", "must be a list");
    }
    out.ports.every = port_list == nullptr || port_list->empty();
    if (!out.ports.every) {
      for (std::size_t i = 0; i < port_list->size(); ++i) {
        auto p = port((*port_list)[i], fmt::format("{}.ports[{}]", where, i));
        if (!p) continue;
        out.ports.numeric.insert(out.ports.numeric.end(), p->numeric.begin(), p->numeric.end());
        out.ports.named.insert(out.ports.named.end(), p->named.begin(), p->named.end());
      }
      if (out.ports.numeric.empty() && out.ports.named.empty()) return std::nullopt;
      out.ports.numeric = canonical(std::move(out.ports.numeric));
    }
    return out;
  }

  std::vector<Rule> rules(const json::value* v, Direction dir, std::string_view where) {
    std::vector<Rule> out;
    if (v == nullptr) return out;
    const json::array* list = v->if_array();
    if (list == nullptr) {
      problem(where, "must be a list");
      return out;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (auto r = rule((*list)[i], dir, fmt::format("{}[{}]", where, i))) {
        out.push_back(std::move(*r));
      }
    }
    return out;
  }

  std::optional<Policy> policy(const json::value& obj) {
    const json::value* spec_v = find_path(obj, {"spec"});
    const json::object* spec = spec_v != nullptr ? spec_v->if_object() : nullptr;
    if (spec == nullptr) return fail("spec", "missing or not an object");
    Policy out;
    out.key = key_;
    out.ns = std::string(namespace_of(obj));
    // podSelector is a struct upstream: absent or null is {} (every pod of the namespace).
    if (const json::value* sel = field(*spec, "podSelector")) {
      auto parsed = selector(*sel, "spec.podSelector");
      if (!parsed) return std::nullopt;  // which pods it isolates is unknown: skip it whole
      out.selector = std::move(*parsed);
    }
    const json::value* ingress = field(*spec, "ingress");
    const json::value* egress = field(*spec, "egress");
    const json::value* types = field(*spec, "policyTypes");
    const json::array* type_list = types != nullptr ? types->if_array() : nullptr;
    if (types != nullptr && type_list == nullptr) problem("spec.policyTypes", "must be a list");
    if (type_list == nullptr || type_list->empty()) {
      // Upstream defaulting: Ingress, plus Egress when there are egress rules.
      out.ingress = true;
      const json::array* e = egress != nullptr ? egress->if_array() : nullptr;
      out.egress = e != nullptr && !e->empty();
    } else {
      for (const json::value& t : *type_list) {
        const json::string* s = t.if_string();
        if (s != nullptr && *s == "Ingress") {
          out.ingress = true;
        } else if (s != nullptr && *s == "Egress") {
          out.egress = true;
        } else {
          problem("spec.policyTypes", "entries must be Ingress or Egress");
        }
      }
    }
    out.rules[kIngress] = rules(ingress, kIngress, "spec.ingress");
    out.rules[kEgress] = rules(egress, kEgress, "spec.egress");
    return out;
  }

 private:
  std::string key_;
  std::vector<std::string>& problems_;
};

// ---- the cluster's pods and namespaces ----

std::vector<std::uint32_t> status_ipv4s(const json::value& pod) {
  std::vector<std::uint32_t> out;
  auto add = [&](std::string_view text) {
    if (auto ip = parse_ipv4(text); ip && std::ranges::find(out, *ip) == out.end()) {
      out.push_back(*ip);
    }
  };
  if (const json::array* ips = array_at(pod, {"status", "podIPs"})) {
    for (const json::value& entry : *ips) add(get_string(entry, {"ip"}));
  }
  add(get_string(pod, {"status", "podIP"}));
  return out;
}

bool counts_as_peer(const json::value& pod) {
  if (get_bool(pod, {"spec", "hostNetwork"})) return false;
  std::string_view phase = get_string(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed";
}

std::string pod_key(const json::value& pod) {
  return fmt::format("{}/{}", namespace_of(pod), get_string(pod, {"metadata", "name"}));
}

class ClusterIndex {
 public:
  ClusterIndex(const Cluster& cluster, const std::vector<LocalPod>& local) {
    std::unordered_map<std::string, std::uint32_t> local_ips;  // pod key -> LocalPod::ip
    std::set<std::string> seen;
    for (const LocalPod& l : local) {
      if (l.pod != nullptr && l.ip != 0) local_ips.emplace(pod_key(*l.pod), ntohl(l.ip));
    }
    auto add = [&](const json::value* pod) {
      if (pod == nullptr || !pod->is_object()) return;
      std::string key = pod_key(*pod);
      if (!seen.insert(key).second || !counts_as_peer(*pod)) return;
      PeerPod p{pod, {}};
      if (auto it = local_ips.find(key); it != local_ips.end()) {
        p.ips.push_back(it->second);
      } else {
        p.ips = status_ipv4s(*pod);
      }
      if (!p.ips.empty()) pods_.push_back(std::move(p));
    };
    // The local pods first, so that their objects (the caller's freshest) win.
    for (const LocalPod& l : local) add(l.pod);
    for (const json::value* pod : cluster.pods) add(pod);
    for (const PeerPod& p : pods_) {
      by_namespace_[std::string(namespace_of(*p.pod))].push_back(&p);
    }

    for (const json::value* ns : cluster.namespaces) {
      if (ns == nullptr) continue;
      std::string name(get_string(*ns, {"metadata", "name"}));
      if (name.empty()) continue;
      json::object labels;
      if (const json::value* l = find_path(*ns, {"metadata", "labels"}); l && l->is_object()) {
        labels = l->get_object();
      }
      if (!labels.contains(kNamespaceNameLabel)) labels[kNamespaceNameLabel] = name;
      namespace_labels_.emplace(std::move(name), std::move(labels));
    }
    for (const auto& [name, pods] : by_namespace_) {
      if (!namespace_labels_.contains(name)) {
        namespace_labels_.emplace(name, json::object{{kNamespaceNameLabel, name}});
      }
    }
  }

  const std::vector<PeerPod>& pods() const { return pods_; }

  // The pods a from/to entry selects, in the policy's namespace `ns`.
  void select(const PeerSpec& peer, std::string_view ns, std::vector<const PeerPod*>& out) const {
    auto take = [&](const std::vector<const PeerPod*>& pods) {
      for (const PeerPod* p : pods) {
        if (!peer.pods || peer.pods->matches(*p->pod)) out.push_back(p);
      }
    };
    if (!peer.namespaces) {
      if (auto it = by_namespace_.find(std::string(ns)); it != by_namespace_.end()) {
        take(it->second);
      }
      return;
    }
    for (const auto& [name, labels] : namespace_labels_) {
      if (!peer.namespaces->matches(&labels)) continue;
      if (auto it = by_namespace_.find(name); it != by_namespace_.end()) take(it->second);
    }
  }

 private:
  std::vector<PeerPod> pods_;
  std::map<std::string, std::vector<const PeerPod*>, std::less<>> by_namespace_;
  std::map<std::string, json::object, std::less<>> namespace_labels_;
};

void resolve_peers(Policy& policy, const ClusterIndex& index) {
  if (policy.resolved) return;
  policy.resolved = true;
  for (auto& rules : policy.rules) {
    for (Rule& rule : rules) {
      if (rule.every_peer) {
        rule.blocks.push_back(IpBlock{Net{0, 0}, {}});
        continue;
      }
      for (const PeerSpec& peer : rule.peers) {
        if (peer.block) {
          rule.blocks.push_back(*peer.block);
        } else {
          index.select(peer, policy.ns, rule.pods);
        }
      }
      std::ranges::sort(rule.pods);
      rule.pods.erase(std::ranges::unique(rule.pods).begin(), rule.pods.end());
      std::ranges::sort(rule.blocks);
      rule.blocks.erase(std::ranges::unique(rule.blocks).begin(), rule.blocks.end());
    }
  }
}

// ---- one table ----

// Collects (peers x port set) items of one direction of one local pod, then lays them out.
class TableBuilder {
 public:
  void add_ips(const PortSet& ports, const std::vector<std::uint32_t>& ips) {
    if (ports.empty()) return;
    auto& ip_list = by_ports_[ports].ips;
    ip_list.insert(ip_list.end(), ips.begin(), ips.end());
  }
  void add_block(const PortSet& ports, const IpBlock& block) {
    if (!ports.empty()) by_ports_[ports].blocks.push_back(block);
  }

  // An ingress rule: its ports are the local pod's, the same for every peer.
  void add_ingress(const Rule& rule, const json::value& local_pod) {
    PortSet ports =
        rule.ports.every
            ? PortSet{kEveryPort}
            : canonical(concat(rule.ports.numeric, resolve_named(local_pod, rule.ports.named)));
    for (const PeerPod* p : rule.pods) add_ips(ports, p->ips);
    for (const IpBlock& b : rule.blocks) add_block(ports, b);
  }

  // An egress rule: named ports are the destination pod's.
  void add_egress(const Rule& rule, const ClusterIndex& index) {
    if (rule.ports.every) {
      for (const PeerPod* p : rule.pods) add_ips({kEveryPort}, p->ips);
      for (const IpBlock& b : rule.blocks) add_block({kEveryPort}, b);
      return;
    }
    auto ports_of = [&](const PeerPod& p) {
      return canonical(concat(rule.ports.numeric, resolve_named(*p.pod, rule.ports.named)));
    };
    for (const PeerPod* p : rule.pods) add_ips(ports_of(*p), p->ips);
    for (const IpBlock& b : rule.blocks) add_block(rule.ports.numeric, b);
    if (rule.ports.named.empty() || rule.blocks.empty()) return;
    // Named ports of an ipBlock: the pods inside it that have them (N pods x M blocks).
    for (const PeerPod& p : index.pods()) {
      std::vector<std::uint32_t> inside;
      for (std::uint32_t ip : p.ips) {
        if (std::ranges::any_of(rule.blocks, [&](const IpBlock& b) { return b.contains(ip); })) {
          inside.push_back(ip);
        }
      }
      if (!inside.empty()) add_ips(ports_of(p), inside);
    }
  }

  Table build() && {
    Table t;
    std::unordered_map<std::uint32_t, std::uint64_t> pod_masks;  // exact /32 items
    std::vector<std::pair<IpBlock, std::uint64_t>> blocks;       // few: scanned per prefix
    std::size_t rule = 0;
    for (auto& [ports, peers] : by_ports_) {  // ascending port sets: deterministic bits
      if (rule == kMaxRules || t.ranges.size() + ports.size() > kMaxRanges) {
        t.truncated = true;  // these peers lose this port set: less allowed, never more
        continue;
      }
      for (const PortRange& r : ports) {
        t.ranges.push_back({r.proto, static_cast<std::uint8_t>(rule), r.lo, r.hi});
      }
      std::uint64_t bit = std::uint64_t{1} << rule++;
      for (std::uint32_t ip : peers.ips) pod_masks[ip] |= bit;
      std::ranges::sort(peers.blocks);
      peers.blocks.erase(std::ranges::unique(peers.blocks).begin(), peers.blocks.end());
      for (IpBlock& b : peers.blocks) blocks.emplace_back(std::move(b), bit);
    }
    std::ranges::sort(t.ranges);

    std::vector<Net> prefixes;
    prefixes.reserve(pod_masks.size() + blocks.size());
    for (const auto& [ip, mask] : pod_masks) prefixes.push_back({ip, 32});
    for (const auto& [b, bit] : blocks) {
      prefixes.push_back(b.cidr);
      prefixes.insert(prefixes.end(), b.excepts.begin(), b.excepts.end());
    }
    std::ranges::sort(prefixes);
    prefixes.erase(std::ranges::unique(prefixes).begin(), prefixes.end());

    // For the longest prefix P holding an address a, "a is in cidr C minus excepts E" is
    // "P is inside C and inside no e of E", since C and E are prefixes of the set too. So each
    // prefix gets the bits of the items containing it; a walk in trie preorder then drops the
    // prefixes whose mask equals that of their nearest kept ancestor (the lookup would fall
    // back to it with the same answer; no ancestor counts as mask 0).
    std::vector<std::pair<Net, std::uint64_t>> ancestors;
    for (const Net& p : prefixes) {
      std::uint64_t mask = 0;
      if (p.len == 32) {
        if (auto it = pod_masks.find(p.addr); it != pod_masks.end()) mask = it->second;
      }
      for (const auto& [b, bit] : blocks) {
        if (b.cidr.contains(p) &&
            std::ranges::none_of(b.excepts, [&](const Net& e) { return e.contains(p); })) {
          mask |= bit;
        }
      }
      while (!ancestors.empty() && !ancestors.back().first.contains(p)) ancestors.pop_back();
      std::uint64_t inherited = ancestors.empty() ? 0 : ancestors.back().second;
      if (mask == inherited) continue;
      ancestors.emplace_back(p, mask);
      t.peers.emplace(Prefix{htonl(p.addr), p.len}, mask);
    }
    return t;
  }

 private:
  struct Peers {
    std::vector<std::uint32_t> ips;
    std::vector<IpBlock> blocks;
  };
  std::map<PortSet, Peers> by_ports_;
};

}  // namespace

Compiled compile(const Cluster& cluster, const std::vector<LocalPod>& local) {
  Compiled out;
  std::vector<Policy> policies;
  for (const json::value* obj : cluster.policies) {
    if (obj == nullptr || !obj->is_object()) {
      out.problems.push_back("NetworkPolicy: not an object");
      continue;
    }
    PolicyParser parser(pod_key(*obj), out.problems);
    if (auto p = parser.policy(*obj)) policies.push_back(std::move(*p));
  }
  ClusterIndex index(cluster, local);

  for (const LocalPod& l : local) {
    if (l.pod == nullptr || !l.pod->is_object()) {
      out.problems.push_back("local pod: not an object");
      continue;
    }
    std::uint32_t ip = l.ip;
    if (ip == 0) {
      std::vector<std::uint32_t> ips = status_ipv4s(*l.pod);
      if (ips.empty()) continue;  // no address yet: nothing to key the tables by
      ip = htonl(ips.front());
    }
    std::string_view ns = namespace_of(*l.pod);
    EndpointPolicy ep;
    std::array<TableBuilder, 2> builders;  // by Direction
    for (Policy& p : policies) {
      if (p.ns != ns || !p.selector.matches(*l.pod)) continue;
      ep.policies.push_back(p.key);
      resolve_peers(p, index);
      if (p.ingress) {
        if (!ep.ingress) ep.ingress.emplace();
        for (const Rule& r : p.rules[kIngress]) builders[kIngress].add_ingress(r, *l.pod);
      }
      if (p.egress) {
        if (!ep.egress) ep.egress.emplace();
        for (const Rule& r : p.rules[kEgress]) builders[kEgress].add_egress(r, index);
      }
    }
    if (ep.ingress) ep.ingress = std::move(builders[kIngress]).build();
    if (ep.egress) ep.egress = std::move(builders[kEgress]).build();
    std::ranges::sort(ep.policies);
    if (!out.endpoints.emplace(ip, std::move(ep)).second) {
      out.problems.push_back(
          fmt::format("local pod {}: its IP is another local pod's; skipped", pod_key(*l.pod)));
    }
  }
  return out;
}

bool allows(const Table& table, std::uint32_t peer, std::uint8_t proto, std::uint16_t port) {
  std::uint32_t addr = ntohl(peer);
  std::uint64_t peer_mask = 0;
  for (int len = 32; len >= 0; --len) {
    auto it = table.peers.find(Prefix{htonl(addr & netmask(len)), static_cast<std::uint8_t>(len)});
    if (it != table.peers.end()) {
      peer_mask = it->second;
      break;
    }
  }
  std::uint64_t port_mask = 0;
  for (const Range& r : table.ranges) {
    if (r.rule >= kMaxRules) continue;
    if (r.proto == 0 || (r.proto == proto && r.lo <= port && port <= r.hi)) {
      port_mask |= std::uint64_t{1} << r.rule;
    }
  }
  return (peer_mask & port_mask) != 0;
}

}  // namespace podwarp::netpolicy
