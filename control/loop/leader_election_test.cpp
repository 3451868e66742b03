// Leader election against a real apiserver and etcd.
#include "loop/leader_election.h"

#include <gtest/gtest.h>

#include "testing/api_fixture.h"

namespace podwarp::loop {
namespace {

using namespace std::chrono_literals;

LeaderElectionOptions fast(std::string identity) {
  LeaderElectionOptions o;
  o.lease_name = "test-election";
  o.identity = std::move(identity);
  o.lease_duration = 2s;
  o.renew_deadline = 1500ms;
  o.retry_period = 200ms;
  return o;
}

TEST(LeaderElection, OneLeaderAtATimeAndTakeoverAfterTheLeaseExpires) {
  auto f = testing::ApiFixture::start();
  ASSERT_TRUE(f) << f.error();
  auto& fx = **f;
  LeaderElector a(fx.client(), fast("a"));
  LeaderElector b(fx.client(), fast("b"));
  int a_led = 0, b_led = 0;
  a.run([&] { ++a_led; }, [] {});
  ASSERT_TRUE(fx.eventually([&] { return a_led == 1; }, 10s));
  b.run([&] { ++b_led; }, [] {});
  fx.run_for(3s);  // longer than the lease: a keeps renewing, so b must not lead
  EXPECT_TRUE(a.is_leader());
  EXPECT_FALSE(b.is_leader());
  EXPECT_EQ(b_led, 0);

  auto before = std::chrono::steady_clock::now();
  a.stop();  // a stops renewing, as a killed process would
  ASSERT_TRUE(fx.eventually([&] { return b_led == 1; }, 10s));
  auto took = std::chrono::steady_clock::now() - before;
  EXPECT_GE(took, 1500ms);  // not before a's lease could have expired
  EXPECT_LE(took, 4s);      // lease duration + retry period, with slack

  auto lease = fx.run(fx.client().get(*api::find_resource("coordination.k8s.io", "v1", "leases"),
                                      "kube-system", "test-election"));
  ASSERT_TRUE(lease) << lease.error().to_string();
  EXPECT_EQ(get_string(*lease, {"spec", "holderIdentity"}), "b");
  EXPECT_EQ(get_int(*lease, {"spec", "leaseTransitions"}), 1);
  EXPECT_EQ(get_int(*lease, {"spec", "leaseDurationSeconds"}), 2);
  b.stop();
}

}  // namespace
}  // namespace podwarp::loop
