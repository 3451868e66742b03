// TokenIssuer: the claims of issued tokens and their authentication.
#include "apiserver/tokens.h"

#include <gtest/gtest.h>

#include "podwarp/jwt.h"

namespace podwarp::apiserver {
namespace {

using std::chrono::seconds;

TokenIssuer make_issuer() {
  auto key = pki::generate_key();
  EXPECT_TRUE(key);
  return TokenIssuer(std::move(*key), "kid", std::string(kDefaultIssuer));
}

json::value claims_of(const std::string& token) {
  auto first = token.find('.');
  auto payload = jwt::base64url_decode(token.substr(first + 1, token.rfind('.') - first - 1));
  EXPECT_TRUE(payload);
  return *parse_json(*payload);
}

TEST(TokenIssuer, IssuesUpstreamClaims) {
  TokenIssuer issuer = make_issuer();
  TokenClaimsInput in;
  in.namespace_ = "ns";
  in.service_account = "sa";
  in.service_account_uid = "sa-uid";
  in.pod_name = "p";
  in.pod_uid = "p-uid";
  in.node_name = "n1";
  in.node_uid = "n-uid";
  in.expiration_seconds = 3607;
  const auto now = std::chrono::system_clock::time_point(seconds(1'700'000'000));
  auto t = issuer.issue(in, now);
  ASSERT_TRUE(t) << t.error();
  EXPECT_EQ(t->second, now + seconds(3607));
  json::value c = claims_of(t->first);
  EXPECT_EQ(get_string(c, {"iss"}), kDefaultIssuer);
  EXPECT_EQ(get_string(c, {"sub"}), "system:serviceaccount:ns:sa");
  EXPECT_EQ(c.at("aud"), json::array{json::value(kDefaultIssuer)});
  EXPECT_EQ(get_int(c, {"iat"}), 1'700'000'000);
  EXPECT_EQ(get_int(c, {"nbf"}), 1'700'000'000);
  EXPECT_EQ(get_int(c, {"exp"}), 1'700'003'607);
  EXPECT_EQ(get_string(c, {"jti"}).size(), 36u);
  EXPECT_EQ(get_string(c, {"kubernetes.io", "namespace"}), "ns");
  EXPECT_EQ(get_string(c, {"kubernetes.io", "serviceaccount", "uid"}), "sa-uid");
  EXPECT_EQ(get_string(c, {"kubernetes.io", "pod", "name"}), "p");
  EXPECT_EQ(get_string(c, {"kubernetes.io", "node", "uid"}), "n-uid");

  auto id = issuer.authenticate(t->first, now + seconds(10));
  ASSERT_TRUE(id) << id.error();
  EXPECT_EQ(id->username(), "system:serviceaccount:ns:sa");
  EXPECT_EQ(id->pod_uid, "p-uid");
  EXPECT_EQ(id->groups(), (std::vector<std::string>{"system:serviceaccounts",
                                                    "system:serviceaccounts:ns",
                                                    "system:authenticated"}));
}

TEST(TokenIssuer, RejectsExpiredForeignAudienceAndOtherKeys) {
  TokenIssuer issuer = make_issuer();
  TokenClaimsInput in;
  in.namespace_ = "ns";
  in.service_account = "sa";
  const auto now = std::chrono::system_clock::now();
  auto t = issuer.issue(in, now);
  ASSERT_TRUE(t);
  EXPECT_TRUE(issuer.authenticate(t->first, now));
  EXPECT_FALSE(issuer.authenticate(t->first, now + seconds(3600)));
  in.audiences = {"vault"};
  auto vault = issuer.issue(in, now);
  ASSERT_TRUE(vault);
  auto r = issuer.authenticate(vault->first, now);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "token audiences is invalid");
  // A TokenReview that names the token's other audience accepts it, for that audience only.
  in.audiences = {"vault", "https://kubernetes.default.svc.cluster.local"};
  auto both = issuer.issue(in, now);
  ASSERT_TRUE(both);
  auto for_vault = issuer.authenticate(both->first, now, {"db", "vault"});
  ASSERT_TRUE(for_vault) << for_vault.error();
  EXPECT_EQ(for_vault->audiences, std::vector<std::string>{"vault"});
  auto for_api = issuer.authenticate(both->first, now);
  ASSERT_TRUE(for_api);
  EXPECT_EQ(for_api->audiences,
            std::vector<std::string>{"https://kubernetes.default.svc.cluster.local"});
  EXPECT_FALSE(issuer.authenticate(both->first, now, {"db"}));
  TokenIssuer other = make_issuer();
  EXPECT_FALSE(other.authenticate(t->first, now));
  EXPECT_TRUE(TokenIssuer::looks_like_jwt(t->first));
  EXPECT_FALSE(TokenIssuer::looks_like_jwt("abcdef-static-token"));
}

}  // namespace
}  // namespace podwarp::apiserver
