// scheduling.k8s.io/v1 PriorityClass validation and defaults, with upstream's messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

constexpr std::string_view kGroup = "scheduling.k8s.io";

TEST(PriorityClass, ValueLimitsAndReservedNames) {
  EXPECT_THAT(create(kGroup, "PriorityClass", R"({"metadata":{"name":"high"},"value":1000000000})"),
              IsEmpty());
  EXPECT_THAT(create(kGroup, "PriorityClass", R"({"metadata":{"name":"high"},"value":1000000001})"),
              ElementsAre("value: Forbidden: maximum allowed value of a user defined priority is "
                          "1000000000"));
  EXPECT_THAT(create(kGroup, "PriorityClass",
                     R"({"metadata":{"name":"system-node-critical"},"value":2000001000})"),
              IsEmpty());
  EXPECT_THAT(create(kGroup, "PriorityClass",
                     R"({"metadata":{"name":"system-node-critical"},"value":5})"),
              ElementsAre("metadata.name: Forbidden: priority class names with 'system-' prefix "
                          "are reserved for system use only. error: value of "
                          "system-node-critical PriorityClass must be 2000001000"));
  EXPECT_THAT(create(kGroup, "PriorityClass", R"({"metadata":{"name":"system-mine"},"value":5})"),
              ElementsAre("metadata.name: Forbidden: priority class names with 'system-' prefix "
                          "are reserved for system use only. error: system-mine is not a known "
                          "system priority class"));
  EXPECT_THAT(create(kGroup, "PriorityClass",
                     R"({"metadata":{"name":"x"},"value":1,"preemptionPolicy":"Sometimes"})"),
              ElementsAre("preemptionPolicy: Unsupported value: \"Sometimes\": supported values: "
                          "\"PreemptLowerPriority\", \"Never\""));
}

TEST(PriorityClass, DefaultsAndImmutableFields) {
  json::value pc = J(R"({"metadata":{"name":"x"},"value":7})");
  apply_defaults(R(kGroup, "PriorityClass"), pc);
  EXPECT_EQ(pc.at("preemptionPolicy"), "PreemptLowerPriority");
  const char* before = R"({"metadata":{"name":"x","resourceVersion":"3"},"value":7})";
  EXPECT_THAT(update(kGroup, "PriorityClass", before,
                     R"({"metadata":{"name":"x","resourceVersion":"3"},"value":7,
                        "description":"changed","globalDefault":true})"),
              IsEmpty());
  EXPECT_THAT(update(kGroup, "PriorityClass", before,
                     R"({"metadata":{"name":"x","resourceVersion":"3"},"value":8,
                        "preemptionPolicy":"Never"})"),
              ElementsAre("value: Forbidden: may not be changed in an update.",
                          "preemptionPolicy: Invalid value: \"Never\": field is immutable"));
}

}  // namespace
}  // namespace podwarp::validation
