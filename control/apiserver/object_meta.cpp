#include "apiserver/object_meta.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <charconv>

#include "podwarp/time.h"

namespace podwarp::apiserver {

std::string new_uid() {
  unsigned char b[16];
  RAND_bytes(b, sizeof b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  return fmt::format("{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
                     "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                     b[12], b[13], b[14], b[15]);
}

std::string random_suffix(std::size_t n) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  unsigned char b[32];
  RAND_bytes(b, sizeof b);
  for (std::size_t i = 0; i < n && i < sizeof b; ++i) out += kAlphabet[b[i] % kAlphabet.size()];
  return out;
}

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

json::object& metadata(json::value& obj) { return ensure_object(obj.as_object(), "metadata"); }

std::string_view name_of(const json::value& obj) { return get_string(obj, {"metadata", "name"}); }
std::string_view namespace_of(const json::value& obj) {
  return get_string(obj, {"metadata", "namespace"});
}
std::string_view uid_of(const json::value& obj) { return get_string(obj, {"metadata", "uid"}); }

std::int64_t resource_version_of(const json::value& obj) {
  std::string_view rv = get_string(obj, {"metadata", "resourceVersion"});
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), out);
  if (ec != std::errc() || p != rv.data() + rv.size()) return 0;
  return out;
}

}  // namespace podwarp::apiserver
