// DnsServer: the cluster DNS listeners (UDP and TCP on one address and port) on noded's
// io_context, answering from ClusterRecords through Responder and forwarding the rest.
//
// Forwarding: names outside the cluster zone go to the upstream resolvers in order. UDP
// queries are sent from a fresh socket (random source port) with a new random id, which is
// restored in the reply; a reply counts only if it comes back on that socket with the id, QR
// set and the same question. No reply within `upstream_timeout`: the next upstream; none
// left: SERVFAIL. TCP queries are forwarded over TCP. Queries for the cluster zone are never
// forwarded. ExternalName CNAMEs to outside names are resolved upstream and appended.
//
// Metrics (podwarp/metrics.h default registry): podwarp_dns_requests_total{proto},
// podwarp_dns_responses_total{rcode}, podwarp_dns_forward_requests_total,
// podwarp_dns_forward_failures_total, podwarp_dns_dropped_total.
//
// Threading: everything on `executor` (one thread); `records` must outlive the server and is
// only read on that thread. stop() closes the sockets; coroutines in flight end on their own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "dns/records.h"
#include "dns/resolv_conf.h"

namespace podwarp::noded::dns {

struct Upstream {
  std::string address;  // IPv4 or IPv6 literal
  std::uint16_t port = 53;
  bool operator==(const Upstream&) const = default;
};

// The nameservers of a resolv.conf as upstreams, without `exclude` (the cluster DNS address
// itself: forwarding to ourselves would loop) and without unparsable entries. A local stub
// (127.0.0.53) is kept: it is reachable from noded's namespace.
std::vector<Upstream> upstreams_from(const ResolvConf& conf, const std::vector<std::string>& exclude);

struct DnsServerOptions {
  std::string address;     // listen address (IPv4 or IPv6 literal)
  std::uint16_t port = 53;  // 0: a free port (the same number for UDP and TCP)
  std::vector<Upstream> upstreams;
  std::chrono::milliseconds upstream_timeout{2000};
  std::chrono::milliseconds tcp_idle_timeout{10'000};
  std::size_t max_forwards_in_flight = 1024;  // beyond: SERVFAIL at once
  std::size_t max_tcp_connections = 256;
};

class DnsServer {
 public:
  // Binds both sockets (errors name the address: "bind udp 169.254.20.10:53: ...") and starts
  // serving.
  static std::expected<std::unique_ptr<DnsServer>, std::string> start(
      boost::asio::any_io_executor executor, DnsServerOptions options,
      const ClusterRecords& records);
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  std::uint16_t port() const;
  void set_upstreams(std::vector<Upstream> upstreams);
  void stop();

  struct Impl;

 private:
  explicit DnsServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::dns
