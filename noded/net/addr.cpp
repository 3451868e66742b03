#include "net/addr.h"

#include <arpa/inet.h>

#include <charconv>

namespace podwarp::noded::net {

std::optional<Ipv4> parse_ipv4(std::string_view text) {
  if (text.empty() || text.size() > 15) return std::nullopt;
  std::string s(text);
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return Ipv4{ntohl(a.s_addr)};
}

std::string to_string(Ipv4 ip) {
  in_addr a{};
  a.s_addr = htonl(ip.value);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool Cidr4::contains(Ipv4 ip) const {
  if (prefix == 0) return true;
  std::uint32_t mask = prefix == 32 ? 0xffffffffu : ~((std::uint32_t{1} << (32 - prefix)) - 1);
  return (ip.value & mask) == network.value;
}

std::optional<Cidr4> parse_cidr4(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ipv4(text.substr(0, slash));
  if (!ip) return std::nullopt;
  std::string_view p = text.substr(slash + 1);
  int prefix = -1;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || ptr != p.data() + p.size() || p.empty() || prefix < 0 || prefix > 32)
    return std::nullopt;
  Cidr4 c{*ip, prefix};
  std::uint32_t mask =
      prefix == 0 ? 0 : (prefix == 32 ? 0xffffffffu : ~((std::uint32_t{1} << (32 - prefix)) - 1));
  if ((ip->value & mask) != ip->value) return std::nullopt;
  return c;
}

std::string to_string(const Cidr4& c) {
  return to_string(c.network) + "/" + std::to_string(c.prefix);
}

}  // namespace podwarp::noded::net
