// The schema DSL files, embedded into the binary at build time (see embed_defs.cmake).
// Private to the schema component.
#pragma once

#include <span>
#include <string_view>

namespace podwarp::schema::detail {

struct EmbeddedFile {
  std::string_view name;  // "core.schema"
  std::string_view text;
};

// Every defs/*.schema file, sorted by name. Static storage; safe from any thread.
std::span<const EmbeddedFile> embedded_defs();

}  // namespace podwarp::schema::detail
