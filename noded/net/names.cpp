#include "net/names.h"

#include <cstdint>

namespace podwarp::noded::net {

std::string host_veth_name(std::string_view pod_uid) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : pod_uid) {
    h ^= c;
    h *= 1099511628211ull;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "pw";
  for (int i = 0; i < 11; ++i) out += kHex[(h >> (60 - 4 * i)) & 15];
  return out;
}

bool is_host_veth_name(std::string_view name) {
  if (name.size() != 13 || !name.starts_with("pw")) return false;
  for (char c : name.substr(2))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace podwarp::noded::net
