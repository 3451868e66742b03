#include "apiserver/health.h"

#include <gtest/gtest.h>

namespace podwarp::apiserver {
namespace {

TEST(HealthPath, EndpointsAndSingleChecks) {
  auto p = parse_health_path("/livez");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->endpoint, "livez");
  EXPECT_EQ(p->check, "");
  p = parse_health_path("/readyz/etcd-readiness");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->endpoint, "readyz");
  EXPECT_EQ(p->check, "etcd-readiness");
  EXPECT_EQ(parse_health_path("/healthz/")->check, "");
  EXPECT_FALSE(parse_health_path("/livezz"));
  EXPECT_FALSE(parse_health_path("/api/v1/livez"));
  EXPECT_FALSE(parse_health_path("livez"));
}

TEST(HealthResponse, FailureListsEveryCheckAndWithholdsTheReason) {
  Request req;
  const std::vector<HealthResult> results{{"ping", std::nullopt},
                                          {"etcd", "connection refused"}};
  Response r = health_response("healthz", results, req);
  EXPECT_EQ(r.status, 500u);
  EXPECT_EQ(r.body, "[+]ping ok\n[-]etcd failed: reason withheld\nhealthz check failed\n");
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  Response one = single_health_response(results[1]);
  EXPECT_EQ(one.status, 500u);
  EXPECT_EQ(one.body, "internal server error: connection refused\n");
}

TEST(HealthResponse, UnknownExclusionsAreListedSortedAndQuoted) {
  Request req;
  req.query.emplace("verbose", "");
  req.query.emplace("exclude", "zz");
  req.query.emplace("exclude", "ping");
  req.query.emplace("exclude", "aa");
  Response r = health_response("livez", {{"ping", std::nullopt}, {"log", std::nullopt}}, req);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body,
            "[+]ping excluded: ok\n[+]log ok\nwarn: some health checks cannot be excluded: no "
            "matches for \"aa\", \"zz\"\nlivez check passed\n");
}

}  // namespace
}  // namespace podwarp::apiserver
