// scheduling.k8s.io/v1: PriorityClass. Upstream: pkg/apis/scheduling/validation/validation.go
// and pkg/apis/scheduling/v1/defaults.go. Names with the "system-" prefix are reserved for the
// two built-in classes (with their values), other classes may not go above 1,000,000,000, and
// value and preemptionPolicy never change. (Only one globalDefault: the Priority admission.)
#include <array>

#include <fmt/format.h>

#include "validation/json_fields.h"
#include "validation/kinds.h"
#include "validation/metadata.h"
#include "validation/validation.h"

namespace podwarp::validation {

namespace {

constexpr std::int64_t kHighestUserDefinablePriority = 1'000'000'000;

// scheduling.IsKnownSystemPriorityClass: "" when name/value/globalDefault are a system class's.
std::string system_class_error(std::string_view name, std::int64_t value, bool global_default) {
  for (const SystemPriorityClass& c : system_priority_classes()) {
    if (c.name != name) continue;
    if (c.value != value) return fmt::format("value of {} PriorityClass must be {}", c.name, c.value);
    if (global_default) return fmt::format("globalDefault of {} PriorityClass must be false", c.name);
    return "";
  }
  return fmt::format("{} is not a known system priority class", name);
}

Errors priority_class_validate(const api::Resource&, const json::object& pc,
                               const json::object* old) {
  Errors errs = old ? object_meta_update(pc, *old) : object_meta(pc, false, name_is_dns_subdomain);
  std::string_view name = str(obj(pc, "metadata"), "name");
  std::int64_t value = integer(pc, "value").value_or(0);
  if (name.starts_with("system-")) {
    std::string why = system_class_error(name, value, boolean(&pc, "globalDefault"));
    if (!why.empty()) {
      errs.push_back(forbidden(Path().child("metadata").child("name"),
                               "priority class names with 'system-' prefix are reserved for "
                               "system use only. error: " + why));
    }
  } else if (value > kHighestUserDefinablePriority) {
    errs.push_back(forbidden(Path().child("value"),
                             fmt::format("maximum allowed value of a user defined priority is {}",
                                         kHighestUserDefinablePriority)));
  }
  if (const json::value* pp = field(pc, "preemptionPolicy")) {
    std::string_view v = str(pp);
    if (v.empty()) {
      errs.push_back(required(Path().child("preemptionPolicy")));
    } else if (v != "PreemptLowerPriority" && v != "Never") {
      errs.push_back(not_supported(Path().child("preemptionPolicy"), q(v),
                                   {"PreemptLowerPriority", "Never"}));
    }
  }
  if (old) {
    if (integer(pc, "value") != integer(*old, "value")) {
      errs.push_back(forbidden(Path().child("value"), "may not be changed in an update."));
    }
    check_immutable(errs, field(pc, "preemptionPolicy"), field(*old, "preemptionPolicy"),
                    Path().child("preemptionPolicy"), q(str(pc, "preemptionPolicy")));
  }
  return errs;
}

void priority_class_defaults(json::object& pc, bool) {
  set_default(pc, "preemptionPolicy", "PreemptLowerPriority");
}

constexpr std::array kSchedulingKinds = {
    KindRules{"scheduling.k8s.io", "PriorityClass", priority_class_defaults,
              priority_class_validate, nullptr},
};

}  // namespace

std::span<const SystemPriorityClass> system_priority_classes() {
  static constexpr std::array kClasses = {
      SystemPriorityClass{"system-node-critical", 2'000'001'000,
                          "Used for system critical pods that must not be moved from their "
                          "current node."},
      SystemPriorityClass{"system-cluster-critical", 2'000'000'000,
                          "Used for system critical pods that must run in the cluster, but can "
                          "be moved to another node if necessary."},
  };
  return kClasses;
}

std::span<const KindRules> scheduling_kinds() { return kSchedulingKinds; }

}  // namespace podwarp::validation
