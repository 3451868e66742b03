// IPv4 addresses and CIDRs as the pod network uses them (host byte order inside, dotted quads
// outside). Pure; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podwarp::noded::net {

struct Ipv4 {
  std::uint32_t value = 0;  // host byte order
  auto operator<=>(const Ipv4&) const = default;
};

// "10.244.1.7" -> Ipv4; nullopt for anything else (no leading zeros check beyond inet_pton's).
std::optional<Ipv4> parse_ipv4(std::string_view text);
std::string to_string(Ipv4 ip);

struct Cidr4 {
  Ipv4 network;     // with the host bits cleared
  int prefix = 32;  // 0..32

  bool contains(Ipv4 ip) const;
  // Number of addresses in the block (2^(32-prefix)).
  std::uint64_t size() const { return std::uint64_t{1} << (32 - prefix); }
  Ipv4 at(std::uint64_t offset) const {
    return Ipv4{network.value + static_cast<std::uint32_t>(offset)};
  }
  bool operator==(const Cidr4&) const = default;
};

// "10.244.1.0/24" -> Cidr4. Host bits set ("10.244.1.5/24") are rejected, as the API's
// podCIDR validation does. IPv6 is not handled here (nullopt).
std::optional<Cidr4> parse_cidr4(std::string_view text);
std::string to_string(const Cidr4& c);

}  // namespace podwarp::noded::net
