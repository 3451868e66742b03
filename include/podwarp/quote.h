// Go's strconv.Quote (the %q verb), for error messages that must read as upstream's.
// Pure; safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace podwarp {

// Printable runes stay, the rest is escaped; invalid UTF-8 bytes become \x.. escapes.
std::string go_quote(std::string_view s);

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms,
// surrogates or code points past U+10FFFF; 1 for ASCII), or 0 when the bytes there are not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i);

}  // namespace podwarp
