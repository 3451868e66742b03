#include "images/pull_policy.h"

namespace podwarp::images {

std::optional<PullPolicy> parse_pull_policy(std::string_view text) {
  if (text == "Always") return PullPolicy::kAlways;
  if (text == "IfNotPresent") return PullPolicy::kIfNotPresent;
  if (text == "Never") return PullPolicy::kNever;
  return std::nullopt;
}

std::string_view to_string(PullPolicy policy) {
  switch (policy) {
    case PullPolicy::kAlways:
      return "Always";
    case PullPolicy::kIfNotPresent:
      return "IfNotPresent";
    case PullPolicy::kNever:
      return "Never";
  }
  return "Always";
}

PullPolicy default_pull_policy(const Reference& ref) {
  return ref.effective_tag() == "latest" ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
}

PullAction decide_pull(PullPolicy policy, bool present_locally) {
  switch (policy) {
    case PullPolicy::kAlways:
      return PullAction::kPull;
    case PullPolicy::kIfNotPresent:
      return present_locally ? PullAction::kUseLocal : PullAction::kPull;
    case PullPolicy::kNever:
      return present_locally ? PullAction::kUseLocal : PullAction::kFailNever;
  }
  return PullAction::kPull;
}

}  // namespace podwarp::images
