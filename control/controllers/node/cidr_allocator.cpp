#include "node/cidr_allocator.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <charconv>

namespace podwarp::controllers {

std::optional<std::pair<std::uint32_t, int>> parse_ipv4_cidr(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string addr(cidr.substr(0, slash));
  std::string_view len = cidr.substr(slash + 1);
  int n = 0;
  auto r = std::from_chars(len.data(), len.data() + len.size(), n);
  if (len.empty() || r.ec != std::errc() || r.ptr != len.data() + len.size() || n < 0 || n > 32) {
    return std::nullopt;
  }
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1) return std::nullopt;
  return std::pair{ntohl(a.s_addr), n};
}

std::expected<CidrAllocator, std::string> CidrAllocator::create(std::string_view cluster_cidr,
                                                                int node_mask) {
  auto c = parse_ipv4_cidr(cluster_cidr);
  if (!c) {
    if (cluster_cidr.find(':') != std::string_view::npos) {
      return std::unexpected(fmt::format("cluster CIDR {}: IPv6 is not supported", cluster_cidr));
    }
    return std::unexpected(fmt::format("cluster CIDR {}: not an IPv4 CIDR", cluster_cidr));
  }
  auto [addr, len] = *c;
  if (node_mask < len || node_mask > 32) {
    return std::unexpected(fmt::format("node CIDR mask size {} does not fit cluster CIDR {}",
                                       node_mask, cluster_cidr));
  }
  if (node_mask - len > 16) {
    return std::unexpected(fmt::format(
        "CIDRSet: mask size {} of {} is too large: at most 16 bits more than the cluster's",
        node_mask, cluster_cidr));
  }
  CidrAllocator a;
  a.base_ = len == 0 ? 0 : addr & ~((1u << (32 - len)) - 1);
  if (len == 0) a.base_ = 0;
  a.mask_ = node_mask;
  a.used_.assign(std::size_t{1} << (node_mask - len), false);
  return a;
}

std::string CidrAllocator::subnet(std::size_t index) const {
  std::uint32_t step = mask_ == 32 ? 1u : (1u << (32 - mask_));
  std::uint32_t a = base_ + static_cast<std::uint32_t>(index) * step;
  return fmt::format("{}.{}.{}.{}/{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, mask_);
}

std::optional<std::size_t> CidrAllocator::index_of(std::string_view cidr) const {
  auto c = parse_ipv4_cidr(cidr);
  if (!c || c->second != mask_) return std::nullopt;
  std::uint32_t step = mask_ == 32 ? 1u : (1u << (32 - mask_));
  if (c->first < base_ || (c->first - base_) % step != 0) return std::nullopt;
  std::size_t i = (c->first - base_) / step;
  if (i >= used_.size()) return std::nullopt;
  return i;
}

std::optional<std::string> CidrAllocator::allocate() {
  if (count_ == used_.size()) return std::nullopt;
  for (std::size_t k = 0; k < used_.size(); ++k) {
    std::size_t i = (next_ + k) % used_.size();
    if (!used_[i]) {
      used_[i] = true;
      ++count_;
      next_ = (i + 1) % used_.size();
      return subnet(i);
    }
  }
  return std::nullopt;
}

bool CidrAllocator::occupy(std::string_view cidr) {
  auto i = index_of(cidr);
  if (!i) return false;
  if (!used_[*i]) {
    used_[*i] = true;
    ++count_;
  }
  return true;
}

bool CidrAllocator::release(std::string_view cidr) {
  auto i = index_of(cidr);
  if (!i) return false;
  if (used_[*i]) {
    used_[*i] = false;
    --count_;
  }
  return true;
}

}  // namespace podwarp::controllers
