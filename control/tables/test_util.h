// Helpers shared by the tables tests (test-only; not part of podwarp_tables).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string_view>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"
#include "tables/tables.h"
#include "tables/timestamps.h"

namespace podwarp::tables::testing {

// Every test prints as of this instant.
inline std::chrono::system_clock::time_point now() {
  return *podwarp::parse_rfc3339("2025-01-15T12:00:00Z");
}

inline json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v.has_value()) << (v ? "" : v.error()) << " in " << text;
  return v ? *v : json::value();
}

inline const api::Resource& resource(std::string_view group, std::string_view kind) {
  for (const api::Resource& r : api::resources()) {
    if (r.group == group && r.kind == kind) return r;
  }
  ADD_FAILURE() << "no resource " << group << "/" << kind;
  return api::resources().front();
}

// The cells of one object, as JSON, for EXPECT_EQ against json::parse of upstream's row.
inline json::value cells(std::string_view group, std::string_view kind, std::string_view object) {
  return row_cells(resource(group, kind), parse(object), now());
}

}  // namespace podwarp::tables::testing
