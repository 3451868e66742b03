#include "podwarp/quote.h"

#include <cstdio>

namespace podwarp {

// Go's strconv.Quote: printable runes stay, the rest is escaped; invalid UTF-8 bytes become \x..
std::string go_quote(std::string_view s) {
  std::string out = "\"";
  std::size_t i = 0;
  auto hex = [&out](unsigned v, int width, char prefix) {
    char buf[16];
    std::snprintf(buf, sizeof buf, width == 2 ? "\\%c%02x" : "\\%c%04x", prefix, v);
    out += buf;
  };
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\a':
          out += "\\a";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            hex(c, 2, 'x');
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // Decode one UTF-8 sequence.
    int len = (c >= 0xc2 && c < 0xe0)   ? 2
              : (c >= 0xe0 && c < 0xf0) ? 3
              : (c >= 0xf0 && c < 0xf5) ? 4
                                        : 0;
    bool ok = len > 0 && i + len <= s.size();
    unsigned cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
               (cp >= 0xd800 && cp <= 0xdfff))) {
      ok = false;
    }
    if (!ok) {
      hex(c, 2, 'x');
      ++i;
      continue;
    }
    if (cp < 0xa0 || cp == 0xad) {  // C1 controls and the soft hyphen are not printable
      hex(cp, 4, 'u');
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out += '"';
  return out;
}

}  // namespace podwarp
