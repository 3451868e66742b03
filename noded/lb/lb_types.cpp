#include "lb/lb_types.h"

#include <arpa/inet.h>

#include <cstring>

namespace podwarp::noded::lb {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) {
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(&a.bytes[12], &v4, 4);
    return a;
  }
  if (::inet_pton(AF_INET6, buf, a.bytes.data()) == 1) return a;
  return std::nullopt;
}

IpAddr IpAddr::v4(std::uint32_t host_order) {
  IpAddr a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  a.bytes[12] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes[13] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes[14] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes[15] = static_cast<std::uint8_t>(host_order);
  return a;
}

bool IpAddr::is_v4() const {
  for (int i = 0; i < 10; ++i)
    if (bytes[i] != 0) return false;
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

bool IpAddr::is_any() const {
  if (is_v4()) return v4_net() == 0;
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

std::uint32_t IpAddr::v4_net() const {
  std::uint32_t v;
  std::memcpy(&v, &bytes[12], 4);
  return v;
}

std::string IpAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4())
    ::inet_ntop(AF_INET, &bytes[12], buf, sizeof buf);
  else
    ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Protocol> parse_protocol(std::string_view text) {
  if (text == "TCP") return Protocol::TCP;
  if (text == "UDP") return Protocol::UDP;
  if (text == "SCTP") return Protocol::SCTP;
  return std::nullopt;
}

std::string_view protocol_name(Protocol p) {
  switch (p) {
    case Protocol::TCP:
      return "TCP";
    case Protocol::UDP:
      return "UDP";
    case Protocol::SCTP:
      return "SCTP";
  }
  return "?";
}

std::string_view frontend_kind_name(FrontendKind k) {
  switch (k) {
    case FrontendKind::ClusterIP:
      return "ClusterIP";
    case FrontendKind::NodePort:
      return "NodePort";
    case FrontendKind::ExternalIP:
      return "ExternalIP";
    case FrontendKind::LoadBalancer:
      return "LoadBalancer";
  }
  return "?";
}

}  // namespace podwarp::noded::lb
