// policy/v1 PodDisruptionBudget validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

std::string pdb(std::string_view spec) {
  return R"({"metadata":{"name":"web","namespace":"default"},"spec":)" + std::string(spec) + "}";
}

TEST(PodDisruptionBudget, Rules) {
  EXPECT_THAT(create("policy", "PodDisruptionBudget",
                     pdb(R"({"minAvailable":"50%","selector":{"matchLabels":{"app":"web"}}})")),
              IsEmpty());
  auto both =
      create("policy", "PodDisruptionBudget", pdb(R"({"minAvailable":1,"maxUnavailable":1})"));
  ASSERT_EQ(both.size(), 1u);
  EXPECT_THAT(both[0],
              ::testing::StartsWith("spec: Invalid value: policy.PodDisruptionBudgetSpec"));
  EXPECT_THAT(both[0], ::testing::EndsWith(": minAvailable and maxUnavailable cannot be both set"));
  EXPECT_THAT(
      create("policy", "PodDisruptionBudget", pdb(R"({"maxUnavailable":"120%"})")),
      ElementsAre("spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, "
                  "StrVal:\"120%\"}: must not be greater than 100%"));
  EXPECT_THAT(
      create("policy", "PodDisruptionBudget",
             pdb(R"({"minAvailable":-1,"unhealthyPodEvictionPolicy":"Never"})")),
      ElementsAre("spec.minAvailable: Invalid value: -1: must be greater than or equal to 0",
                  "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported "
                  "values: \"AlwaysAllow\", \"IfHealthyBudget\""));
  // Names only get the generic path-segment check.
  EXPECT_THAT(create("policy", "PodDisruptionBudget",
                     R"({"metadata":{"name":"a%b","namespace":"default"},"spec":{}})"),
              ElementsAre("metadata.name: Invalid value: \"a%b\": may not contain '%'"));
}

}  // namespace
}  // namespace podwarp::validation
