// ObjectFilter: the label and field selectors of a list, watch or deletecollection request,
// checked against objects. Field selectors accept upstream's field labels per kind and
// reject others with upstream's message.
#pragma once

#include <expected>
#include <optional>
#include <string>

#include "apiserver/http.h"
#include "apiserver/status.h"
#include "podwarp/json.h"
#include "podwarp/selector.h"

namespace podwarp::apiserver {

class ObjectFilter {
 public:
  static std::expected<ObjectFilter, ApiError> from_request(const Request& req,
                                                            const api::Resource& r);
  bool matches(const json::value& obj) const;
  bool everything() const { return !label_ && !field_; }
  // The value metadata.name must have, when the field selector pins it.
  std::optional<std::string> pinned_name() const;

 private:
  std::optional<LabelSelector> label_;
  std::optional<FieldSelector> field_;
  const api::Resource* resource_ = nullptr;
};

// Upstream's string value of a field label on an object ("" when unset; "false" for unset
// booleans such as spec.unschedulable).
std::string field_value(const api::Resource& r, const json::value& obj, std::string_view field);

}  // namespace podwarp::apiserver
