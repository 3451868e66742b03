// YAML → JSON for request bodies (Content-Type application/yaml), with the scalar typing
// of sigs.k8s.io/yaml (YAML 1.1 as yaml.v2 reads it): plain true/false/yes/no/on/off are
// booleans, plain numbers are numbers, null/~/empty are null, quoted scalars are strings.
// Pure; safe from any thread.
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp {

// Converts one YAML document. Errors are messages for a 400 Status ("yaml: line 3: ...").
// Depth is limited; anchors and aliases are expanded.
std::expected<json::value, std::string> yaml_to_json(std::string_view text, int max_depth = 64);

}  // namespace podwarp
