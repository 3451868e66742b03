#include "podwarp/random.h"

#include <pthread.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

namespace podwarp {
namespace {

struct Pool {
  std::array<unsigned char, 256> bytes;
  std::size_t used = bytes.size();  // all used: the first call fills
};

thread_local Pool pool;

void refill(Pool& p) {
  std::size_t got = 0;
  while (got < p.bytes.size()) {
    const ssize_t n = ::getrandom(p.bytes.data() + got, p.bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no randomness: no identifier can be trusted
    }
    got += static_cast<std::size_t>(n);
  }
  p.used = 0;
}

void forget_in_child() { pool.used = pool.bytes.size(); }

}  // namespace

void random_bytes(std::span<unsigned char> out) {
  static std::once_flag atfork;
  std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, forget_in_child); });
  Pool& p = pool;
  while (!out.empty()) {
    if (p.used == p.bytes.size()) refill(p);
    const std::size_t n = std::min(out.size(), p.bytes.size() - p.used);
    std::memcpy(out.data(), p.bytes.data() + p.used, n);
    // Bytes handed out are not kept around for a later reader of this memory.
    std::memset(p.bytes.data() + p.used, 0, n);
    p.used += n;
    out = out.subspan(n);
  }
}

std::string random_uuid() {
  std::array<unsigned char, 16> b;
  random_bytes(b);
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  std::size_t o = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++o;  // the dashes
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 0x0f];
  }
  return out;
}

std::string random_string(std::size_t n) {
  static constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    std::array<unsigned char, 16> b;
    random_bytes(b);
    for (unsigned char c : b) {
      // 5 bits per draw; the 5 values past the alphabet are skipped, so none is favoured.
      const unsigned idx = c & 0x1f;
      if (idx < kAlphabet.size() && out.size() < n) out += kAlphabet[idx];
    }
  }
  return out;
}

}  // namespace podwarp
