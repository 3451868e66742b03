#include "node/cidr_allocator.h"

#include <gtest/gtest.h>

namespace podwarp::controllers {
namespace {

TEST(CidrAllocator, AllocatesInOrderAndReusesReleased) {
  auto a = CidrAllocator::create("10.244.0.0/16", 24);
  ASSERT_TRUE(a) << a.error();
  EXPECT_EQ(a->capacity(), 256u);
  EXPECT_EQ(a->allocate(), "10.244.0.0/24");
  EXPECT_EQ(a->allocate(), "10.244.1.0/24");
  EXPECT_TRUE(a->occupy("10.244.2.0/24"));
  EXPECT_EQ(a->allocate(), "10.244.3.0/24");
  EXPECT_TRUE(a->release("10.244.1.0/24"));
  EXPECT_EQ(a->allocated(), 3u);
  // Round robin: continue after the last, come back to freed ones later.
  EXPECT_EQ(a->allocate(), "10.244.4.0/24");
  EXPECT_FALSE(a->occupy("10.245.0.0/24"));
  EXPECT_FALSE(a->occupy("10.244.0.0/25"));
  EXPECT_FALSE(a->occupy("10.244.0.128/24"));
  EXPECT_FALSE(a->release("garbage"));
}

TEST(CidrAllocator, ExhaustionAndWrap) {
  auto a = CidrAllocator::create("10.0.0.0/30", 31);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->allocate(), "10.0.0.0/31");
  EXPECT_EQ(a->allocate(), "10.0.0.2/31");
  EXPECT_EQ(a->allocate(), std::nullopt);
  EXPECT_TRUE(a->release("10.0.0.0/31"));
  EXPECT_EQ(a->allocate(), "10.0.0.0/31");
  // Host bits in the cluster CIDR are ignored, as net.ParseCIDR does.
  auto b = CidrAllocator::create("192.168.7.9/24", 26);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->allocate(), "192.168.7.0/26");
  EXPECT_EQ(b->capacity(), 4u);
}

TEST(CidrAllocator, BadConfiguration) {
  EXPECT_FALSE(CidrAllocator::create("10.244.0.0", 24));
  EXPECT_FALSE(CidrAllocator::create("10.244.0.0/16", 8));
  EXPECT_FALSE(CidrAllocator::create("10.0.0.0/8", 30));  // more than 16 bits of subnets
  EXPECT_FALSE(CidrAllocator::create("fd00::/48", 64));
  EXPECT_FALSE(CidrAllocator::create("300.1.1.1/16", 24));
}

}  // namespace
}  // namespace podwarp::controllers
