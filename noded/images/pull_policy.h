// imagePullPolicy as a pure decision (the kubelet's image manager semantics).
#pragma once

#include <optional>
#include <string_view>

#include "images/reference.h"

namespace podwarp::images {

enum class PullPolicy { kAlways, kIfNotPresent, kNever };

// "Always" / "IfNotPresent" / "Never"; nullopt for anything else (the API validates the field).
std::optional<PullPolicy> parse_pull_policy(std::string_view text);
std::string_view to_string(PullPolicy policy);

// The API defaulting of an empty imagePullPolicy: Always when the tag is "latest" or absent
// (and no digest is given), else IfNotPresent. "busybox@sha256:..." -> IfNotPresent;
// "busybox:latest@sha256:..." -> Always, as upstream.
PullPolicy default_pull_policy(const Reference& ref);

enum class PullAction {
  kUseLocal,   // present and the policy does not ask for a pull
  kPull,       // pull (Always, or IfNotPresent and absent)
  kFailNever,  // Never and absent: ErrImageNeverPull
};

PullAction decide_pull(PullPolicy policy, bool present_locally);

}  // namespace podwarp::images
