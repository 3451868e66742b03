// Go's strconv.Quote (the %q verb), for error messages that must read as upstream's.
// Pure; safe from any thread.
#pragma once

#include <string>
#include <string_view>

namespace podwarp {

// Printable runes stay, the rest is escaped; invalid UTF-8 bytes become \x.. escapes.
std::string go_quote(std::string_view s);

}  // namespace podwarp
