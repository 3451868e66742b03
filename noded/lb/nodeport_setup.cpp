#include "lb/nodeport_setup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>

#include "podwarp/pki.h"

namespace podwarp::noded::lb {
namespace {

std::expected<void, Error> write_tc_state(const std::string& path,
                                          const std::vector<std::string>& names) {
  std::string text;
  for (const auto& n : names) text += n + "\n";
  auto w = pki::write_file_atomic(path, text, 0644);
  if (!w) return std::unexpected(sys_error(EIO, w.error()));
  return {};
}

}  // namespace

std::expected<std::vector<std::uint32_t>, Error> interface_ipv4_addrs(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || ::if_nametoindex(name.c_str()) == 0)
    return std::unexpected(sys_error(ENODEV, "nodeport interface \"" + name + "\": no such interface"));
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return std::unexpected(errno_error("getifaddrs"));
  std::vector<std::uint32_t> out;
  for (auto* i = ifs; i != nullptr; i = i->ifa_next)
    if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET && name == i->ifa_name)
      out.push_back(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
  ::freeifaddrs(ifs);
  return out;
}

std::vector<std::string> read_tc_state(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line.size() < IFNAMSIZ &&
        std::find(out.begin(), out.end(), line) == out.end())
      out.push_back(line);
  return out;
}

std::expected<NodePortSetup, Error> setup_nodeport(Datapath& dp, const NodePortSetupOptions& o) {
  NodePortSetup s;
  // Everything is checked before anything changes.
  MasqueradeConfig mc;
  for (const auto& text : o.cluster_cidrs) {
    auto c = Ipv4Cidr::parse(text);
    if (!c) return std::unexpected(logic_error("--cluster-cidr " + text + ": not an IPv4 CIDR"));
    mc.sources.push_back(*c);
    mc.exempt.push_back(*c);
  }
  if (!o.pod_cidr.empty() && !mc.sources.empty()) {
    auto c = Ipv4Cidr::parse(o.pod_cidr);
    if (!c) return std::unexpected(logic_error("--pod-cidr " + o.pod_cidr + ": not an IPv4 CIDR"));
    mc.sources.push_back(*c);
  }
  std::uint32_t node_ip = 0;
  if (auto a = IpAddr::parse(o.node_ip)) {
    s.node_addrs.push_back(*a);
    if (a->is_v4()) node_ip = a->v4_net();
  }
  struct Iface {
    std::string name;
    int ifindex;
    std::uint32_t addr;  // masquerade source: --node-ip when the interface has it, else its first
  };
  std::vector<Iface> ifaces;
  std::set<std::string> named;
  for (const auto& name : o.interfaces) {
    if (!named.insert(name).second) continue;
    auto addrs = interface_ipv4_addrs(name);
    if (!addrs) return std::unexpected(addrs.error());
    if (addrs->empty())
      return std::unexpected(sys_error(EADDRNOTAVAIL, "nodeport interface " + name +
                                                          " has no IPv4 address"));
    Iface i{name, static_cast<int>(::if_nametoindex(name.c_str())), addrs->front()};
    for (std::uint32_t a : *addrs) {
      if (a == node_ip) i.addr = a;
      IpAddr ip = IpAddr::v4(ntohl(a));
      if (std::find(s.node_addrs.begin(), s.node_addrs.end(), ip) == s.node_addrs.end())
        s.node_addrs.push_back(ip);
    }
    ifaces.push_back(i);
  }

  // Record first (old and new), then attach, then drop what is no longer named.
  std::vector<std::string> before = read_tc_state(o.state_file);
  std::vector<std::string> all = before;
  for (const auto& i : ifaces)
    if (std::find(all.begin(), all.end(), i.name) == all.end()) all.push_back(i.name);
  if (all != before)
    if (auto w = write_tc_state(o.state_file, all); !w) return std::unexpected(w.error());

  if (auto r = dp.set_node_addresses(s.node_addrs); !r) return std::unexpected(r.error());
  s.snat_v4_net = node_ip;
  if (!ifaces.empty() && std::none_of(ifaces.begin(), ifaces.end(),
                                      [&](const Iface& i) { return i.addr == node_ip; }))
    s.snat_v4_net = ifaces.front().addr;  // --node-ip is on none of them
  if (s.snat_v4_net != 0) {
    NodePortConfig npc;
    npc.snat_v4_net = s.snat_v4_net;
    if (auto r = dp.set_nodeport_config(npc); !r) return std::unexpected(r.error());
  }
  // Masquerade config before the programs see packets of a new interface.
  s.masquerade = !mc.sources.empty() && !ifaces.empty();
  std::vector<MasqueradeInterface> mifs;
  if (s.masquerade)
    for (const auto& i : ifaces) mifs.push_back({i.ifindex, i.addr});
  if (s.masquerade) s.masq_config = mc;
  if (auto r = dp.set_masquerade(s.masq_config); !r) return std::unexpected(r.error());
  if (auto r = dp.set_masquerade_interfaces(mifs); !r) return std::unexpected(r.error());

  for (const auto& i : ifaces) {
    if (auto r = dp.attach_tc(i.ifindex); !r)
      return std::unexpected(sys_error(r.error().code, "nodeport interface " + i.name + ": " +
                                                           r.error().message));
    s.attached.push_back(i.name);
  }
  for (const auto& name : before) {
    if (named.contains(name)) continue;
    int ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
    if (ifindex > 0)
      if (auto r = dp.detach_tc(ifindex); !r)
        return std::unexpected(sys_error(r.error().code, "nodeport interface " + name + ": " +
                                                             r.error().message));
    s.detached.push_back(name);
  }
  if (s.attached != all)
    if (auto w = write_tc_state(o.state_file, s.attached); !w) return std::unexpected(w.error());
  return s;
}

MasqueradeConfig with_node_exemptions(const MasqueradeConfig& base,
                                      const std::vector<const json::value*>& nodes) {
  MasqueradeConfig out = base;
  if (out.sources.empty()) return out;
  for (const json::value* n : nodes) {
    const json::value* addrs = n ? find_path(*n, {"status", "addresses"}) : nullptr;
    if (!addrs || !addrs->is_array()) continue;
    for (const json::value& a : addrs->get_array()) {
      if (get_string(a, {"type"}) != "InternalIP") continue;
      auto c = Ipv4Cidr::parse(get_string(a, {"address"}));
      if (c && c->prefix == 32 && std::find(out.exempt.begin(), out.exempt.end(), *c) ==
                                      out.exempt.end())
        out.exempt.push_back(*c);
    }
  }
  return out;
}

}  // namespace podwarp::noded::lb
