#include "apiserver/negotiate.h"

#include <ranges>
#include <string>

namespace podwarp::apiserver {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Format negotiate(std::string_view accept) {
  if (trim(accept).empty()) return Format::kJson;
  for (auto range : std::views::split(accept, ',')) {
    std::string_view media(range.begin(), range.end());
    std::string_view type;
    std::string_view as;
    std::string_view group;
    bool first = true;
    for (auto part : std::views::split(media, ';')) {
      std::string_view p = trim(std::string_view(part.begin(), part.end()));
      if (first) {
        type = p;
        first = false;
        continue;
      }
      if (p.starts_with("as=")) as = p.substr(3);
      if (p.starts_with("g=")) group = p.substr(2);
    }
    const bool json = type == "application/json" || type == "*/*" || type == "application/*";
    if (!json) continue;
    if (as.empty()) return Format::kJson;
    if (group != "meta.k8s.io") continue;
    if (as == "Table") return Format::kTable;
    if (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") {
      return Format::kPartialMetadata;
    }
  }
  return Format::kUnacceptable;
}

}  // namespace podwarp::apiserver
