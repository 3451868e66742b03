// autoscaling/v1 Scale: the body of scale subresource writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "validation/test_util.h"
#include "validation/validation.h"

namespace podwarp::validation {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using namespace testing;  // NOLINT: test helpers

TEST(Scale, Replicas) {
  const api::Resource& scale = scale_resource();
  json::value ok = J(R"({"apiVersion":"autoscaling/v1","kind":"Scale",
      "metadata":{"name":"web","namespace":"default","resourceVersion":"5"},"spec":{"replicas":3}})");
  EXPECT_THAT(texts(validate(scale, ok, &ok)), IsEmpty());
  json::value bad = ok;
  bad.at("spec").as_object()["replicas"] = -1;
  EXPECT_THAT(texts(validate(scale, bad, &ok)),
              ElementsAre("spec.replicas: Invalid value: -1: must be greater than or equal to 0"));
  EXPECT_EQ(
      invalid_message(scale, "web", validate(scale, bad, &ok)),
      "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater "
      "than or equal to 0");
}

}  // namespace
}  // namespace podwarp::validation
