// CidrAllocator: upstream's node IPAM range allocator (pkg/controller/nodeipam/ipam/cidrset)
// for one IPv4 cluster CIDR: hands out consecutive /mask subnets, the lowest free first after
// the last one given (upstream scans round-robin from the last allocation), and takes back
// released ones. occupy() marks subnets that nodes already have (the allocator is rebuilt
// from the nodes at start).
//
// Pure value; not locked.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::controllers {

class CidrAllocator {
 public:
  // "10.244.0.0/16" with node mask 24. Errors: malformed CIDR, IPv6 (unsupported), mask
  // smaller than the cluster's or more than 16 bits of subnets beyond it... (upstream limit).
  static std::expected<CidrAllocator, std::string> create(std::string_view cluster_cidr,
                                                          int node_mask);

  // The next free subnet ("10.244.3.0/24"); nullopt when the range is exhausted.
  std::optional<std::string> allocate();
  // Marks a subnet as used; false when it is not one of this range's subnets.
  bool occupy(std::string_view cidr);
  // Frees a subnet; false when it is not one of this range's subnets.
  bool release(std::string_view cidr);

  std::size_t capacity() const { return used_.size(); }
  std::size_t allocated() const { return count_; }

 private:
  std::optional<std::size_t> index_of(std::string_view cidr) const;
  std::string subnet(std::size_t index) const;

  std::uint32_t base_ = 0;
  int mask_ = 0;
  std::vector<bool> used_;
  std::size_t count_ = 0;
  std::size_t next_ = 0;
};

// Parses "a.b.c.d/n" (IPv4): address and prefix length.
std::optional<std::pair<std::uint32_t, int>> parse_ipv4_cidr(std::string_view cidr);

}  // namespace podwarp::controllers
