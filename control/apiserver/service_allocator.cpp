#include "apiserver/service_allocator.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>
#include <set>

#include "podwarp/random.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

std::expected<std::uint32_t, std::string> Ipv4Range::parse_ip(std::string_view ip) {
  in_addr a{};
  std::string s(ip);
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return std::unexpected(fmt::format("\"{}\" is not a valid IPv4 address", ip));
  }
  return ntohl(a.s_addr);
}

std::string Ipv4Range::format(std::uint32_t ip) {
  return fmt::format("{}.{}.{}.{}", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
}

std::expected<Ipv4Range, std::string> Ipv4Range::parse(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) {
    return std::unexpected(fmt::format("invalid CIDR \"{}\"", cidr));
  }
  auto ip = parse_ip(cidr.substr(0, slash));
  if (!ip) return std::unexpected(ip.error());
  int prefix = -1;
  std::string_view p = cidr.substr(slash + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || end != p.data() + p.size() || prefix < 8 || prefix > 30) {
    return std::unexpected(fmt::format("invalid CIDR \"{}\": prefix must be 8..30", cidr));
  }
  Ipv4Range r;
  r.prefix = prefix;
  std::uint32_t mask = prefix == 0 ? 0 : ~((1u << (32 - prefix)) - 1);
  r.base = *ip & mask;
  return r;
}

bool Ipv4Range::contains(std::uint32_t ip) const {
  std::uint32_t mask = prefix == 0 ? 0 : ~((1u << (32 - prefix)) - 1);
  return (ip & mask) == base;
}

ServiceAllocator::ServiceAllocator(storage::EtcdClient& etcd, Ipv4Range range, int port_min,
                                   int port_max)
    : etcd_(etcd), range_(range), port_min_(port_min), port_max_(port_max) {
  unsigned char b[4];
  random_bytes(b);
  std::uint32_t rnd = (std::uint32_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  next_ip_ = rnd;
  next_port_ = static_cast<int>(rnd % static_cast<std::uint32_t>(port_max_ - port_min_ + 1));
}

asio::awaitable<bool> ServiceAllocator::reserve(std::string key, std::string owner) {
  auto r = co_await etcd_.create(std::move(key), std::move(owner));
  co_return r.has_value();
}

asio::awaitable<void> ServiceAllocator::unreserve(std::string key) {
  co_await etcd_.remove(std::move(key), 0);
}

namespace {

std::string ip_key(std::string_view ip) { return fmt::format("/registry/ipaddresses/{}", ip); }
std::string port_key(std::int64_t port) {
  return fmt::format("/registry/servicenodeports/{}", port);
}

bool wants_cluster_ip(const json::value& svc) {
  std::string_view type = get_string(svc, {"spec", "type"}, "ClusterIP");
  if (type == "ExternalName") return false;
  return get_string(svc, {"spec", "clusterIP"}) != "None";
}

bool wants_node_ports(const json::value& svc) {
  std::string_view type = get_string(svc, {"spec", "type"}, "ClusterIP");
  return type == "NodePort" || type == "LoadBalancer";
}

std::set<std::int64_t> node_ports(const json::value& svc) {
  std::set<std::int64_t> out;
  const json::value* ports = find_path(svc, {"spec", "ports"});
  if (ports && ports->is_array()) {
    for (const json::value& p : ports->get_array()) {
      std::int64_t np = get_int(p, {"nodePort"});
      if (np != 0) out.insert(np);
    }
  }
  return out;
}

}  // namespace

asio::awaitable<std::expected<void, ApiError>> ServiceAllocator::allocate(
    const api::Resource& r, json::value& svc, const json::value* old) {
  std::string owner = fmt::format("{}/{}", get_string(svc, {"metadata", "namespace"}),
                                  get_string(svc, {"metadata", "name"}));
  std::string_view name = get_string(svc, {"metadata", "name"});
  json::object& spec = ensure_object(svc.as_object(), "spec");
  std::vector<std::string> taken;  // keys reserved by this call, undone on failure
  auto fail = [&](std::string field, std::string value, std::string msg)
      -> asio::awaitable<std::expected<void, ApiError>> {
    for (std::string& k : taken) co_await unreserve(k);
    std::string message = fmt::format("Service \"{}\" is invalid: {}: Invalid value: {}: {}",
                                      name, field, value, msg);
    co_return std::unexpected(
        invalid(r, name, {{"FieldValueInvalid", fmt::format("Invalid value: {}: {}", value, msg),
                           field}},
                message));
  };

  // ClusterIP: kept from old on update; new services get one.
  std::string_view old_ip = old ? get_string(*old, {"spec", "clusterIP"}) : std::string_view{};
  if (wants_cluster_ip(svc)) {
    std::string_view want = get_string(svc, {"spec", "clusterIP"});
    if (!old_ip.empty() && old_ip != "None" && (want.empty() || want == old_ip)) {
      spec["clusterIP"] = old_ip;
    } else if (!want.empty()) {
      auto ip = Ipv4Range::parse_ip(want);
      if (!ip || !range_.contains(*ip)) {
        co_return co_await fail("spec.clusterIPs", fmt::format("[]string{{\"{}\"}}", want),
                                fmt::format("failed to allocate IP {}: the provided IP ({}) is "
                                            "not in the valid range. The range of valid IPs is {}/{}",
                                            want, want, Ipv4Range::format(range_.base),
                                            range_.prefix));
      }
      if (!co_await reserve(ip_key(want), owner)) {
        co_return co_await fail("spec.clusterIPs", fmt::format("[]string{{\"{}\"}}", want),
                                fmt::format("failed to allocate IP {}: provided IP is already "
                                            "allocated",
                                            want));
      }
      taken.push_back(ip_key(want));
    } else {
      // Skip the network address, the kubernetes service's first address and broadcast.
      const std::uint32_t usable = range_.size() - 3;
      bool got = false;
      for (std::uint32_t tries = 0; tries < std::min<std::uint32_t>(usable, 256); ++tries) {
        std::uint32_t ip = range_.base + 2 + (next_ip_++ % usable);
        std::string s = Ipv4Range::format(ip);
        if (co_await reserve(ip_key(s), owner)) {
          spec["clusterIP"] = s;
          taken.push_back(ip_key(s));
          got = true;
          break;
        }
      }
      if (!got) {
        co_return co_await fail("spec.clusterIPs", "[]string{}",
                                "failed to allocate a serviceIP: range is full");
      }
    }
    spec["clusterIPs"] = json::array{spec["clusterIP"]};
    if (!spec.contains("ipFamilies")) spec["ipFamilies"] = json::array{"IPv4"};
  }

  if (wants_node_ports(svc)) {
    std::set<std::int64_t> old_ports = old ? node_ports(*old) : std::set<std::int64_t>{};
    json::value* ports = find_path(svc, {"spec", "ports"});
    if (ports && ports->is_array()) {
      std::size_t i = 0;
      for (json::value& p : ports->as_array()) {
        std::int64_t np = get_int(p, {"nodePort"});
        std::string field = fmt::format("spec.ports[{}].nodePort", i++);
        if (np != 0) {
          if (old_ports.contains(np)) continue;
          if (np < port_min_ || np > port_max_) {
            co_return co_await fail(field, std::to_string(np),
                                    fmt::format("provided port is not in the valid range. The "
                                                "range of valid ports is {}-{}",
                                                port_min_, port_max_));
          }
          if (!co_await reserve(port_key(np), owner)) {
            co_return co_await fail(field, std::to_string(np),
                                    "provided port is already allocated");
          }
          taken.push_back(port_key(np));
          continue;
        }
        bool got = false;
        const int span = port_max_ - port_min_ + 1;
        for (int tries = 0; tries < span; ++tries) {
          int port = port_min_ + (next_port_++ % span);
          if (co_await reserve(port_key(port), owner)) {
            p.as_object()["nodePort"] = port;
            taken.push_back(port_key(port));
            got = true;
            break;
          }
        }
        if (!got) co_return co_await fail(field, "0", "range is full");
      }
    }
  }
  co_return std::expected<void, ApiError>{};
}

asio::awaitable<void> ServiceAllocator::release(const json::value& svc, const json::value* keep) {
  std::string_view ip = get_string(svc, {"spec", "clusterIP"});
  std::string_view keep_ip = keep ? get_string(*keep, {"spec", "clusterIP"}) : std::string_view{};
  if (!ip.empty() && ip != "None" && ip != keep_ip) co_await unreserve(ip_key(ip));
  std::set<std::int64_t> keep_ports = keep && wants_node_ports(*keep) ? node_ports(*keep)
                                                                       : std::set<std::int64_t>{};
  for (std::int64_t p : node_ports(svc)) {
    if (!keep_ports.contains(p)) co_await unreserve(port_key(p));
  }
}

}  // namespace podwarp::apiserver
