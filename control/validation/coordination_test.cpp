// coordination.k8s.io/v1 Lease validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

TEST(Lease, NonNegativeFields) {
  EXPECT_THAT(create("coordination.k8s.io", "Lease",
                     R"({"metadata":{"name":"kube-scheduler","namespace":"kube-system"},
      "spec":{"holderIdentity":"node-1_abc","leaseDurationSeconds":15,"leaseTransitions":0,
              "acquireTime":"2024-05-01T10:00:00.000000Z","renewTime":"2024-05-01T10:00:10.000000Z"}})"),
              IsEmpty());
  EXPECT_THAT(
      create("coordination.k8s.io", "Lease", R"({"metadata":{"name":"l","namespace":"default"},
      "spec":{"leaseDurationSeconds":0,"leaseTransitions":-1}})"),
      ElementsAre("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                  "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"));
}

}  // namespace
}  // namespace podwarp::validation
