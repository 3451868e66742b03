// ServiceAllocator: ClusterIPs from --service-cluster-ip-range and NodePorts from
// 30000-32767, each allocation an etcd key created with compare-and-swap
// (/registry/ipaddresses/<ip>, /registry/servicenodeports/<port>), so several apiservers
// never hand out the same address. Runs on the Api's executor.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include "apiserver/status.h"
#include "podwarp/json.h"
#include "storage/etcd_client.h"

namespace podwarp::apiserver {

struct Ipv4Range {
  std::uint32_t base = 0;  // network address, host order
  int prefix = 0;
  static std::expected<Ipv4Range, std::string> parse(std::string_view cidr);
  std::uint32_t size() const { return prefix == 0 ? 0xffffffffu : (1u << (32 - prefix)); }
  bool contains(std::uint32_t ip) const;
  static std::string format(std::uint32_t ip);
  static std::expected<std::uint32_t, std::string> parse_ip(std::string_view ip);
};

class ServiceAllocator {
 public:
  ServiceAllocator(storage::EtcdClient& etcd, Ipv4Range range, int port_min, int port_max);

  // Fills spec.clusterIP(s) and nodePorts of a new service (or reserves the requested
  // ones). On error nothing stays reserved.
  boost::asio::awaitable<std::expected<void, ApiError>> allocate(const api::Resource& r,
                                                                 json::value& svc,
                                                                 const json::value* old);
  // Releases what svc holds but keep does not (keep may be null: release all).
  boost::asio::awaitable<void> release(const json::value& svc, const json::value* keep);

  // The first address of the range: the kubernetes service's.
  std::string first_ip() const { return Ipv4Range::format(range_.base + 1); }

 private:
  boost::asio::awaitable<bool> reserve(std::string key, std::string owner);
  boost::asio::awaitable<void> unreserve(std::string key);

  storage::EtcdClient& etcd_;
  Ipv4Range range_;
  int port_min_;
  int port_max_;
  std::uint32_t next_ip_ = 0;
  int next_port_ = 0;
};

}  // namespace podwarp::apiserver
