#include "podwarp/netaddr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <fstream>
#include <sstream>

namespace podwarp::netaddr {

std::string default_route_interface(std::string_view proc_net_route) {
  std::istringstream in{std::string(proc_net_route)};
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string name, dest;
    if (ls >> name >> dest && dest == "00000000") return name;
  }
  return {};
}

std::string default_route_ipv4() {
  std::ifstream f("/proc/net/route");
  std::stringstream text;
  text << f.rdbuf();
  const std::string iface = default_route_interface(text.str());
  if (iface.empty()) return {};
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return {};
  std::string out;
  for (auto* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET || iface != i->ifa_name) continue;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    out = buf;
    break;
  }
  ::freeifaddrs(ifs);
  return out;
}

}  // namespace podwarp::netaddr
