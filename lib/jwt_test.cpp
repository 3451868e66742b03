#include "podwarp/jwt.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

namespace podwarp::jwt {
namespace {

json::value claims(std::int64_t now) {
  return json::object{{"iss", "https://kubernetes.default.svc.cluster.local"},
                      {"sub", "system:serviceaccount:default:default"},
                      {"aud", json::array{"https://kubernetes.default.svc.cluster.local"}},
                      {"iat", now},
                      {"nbf", now},
                      {"exp", now + 3600}};
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string data;
  for (int i = 0; i < 40; ++i) {
    auto enc = base64url_encode(data);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos);
    auto dec = base64url_decode(enc);
    ASSERT_TRUE(dec);
    EXPECT_EQ(*dec, data);
    data += static_cast<char>(i * 37 + 250);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("ab+c"));
  EXPECT_FALSE(base64url_decode("a"));
}

TEST(Jwt, SignsAndVerifies) {
  auto key = pki::generate_key();
  ASSERT_TRUE(key);
  auto kid = key_id(key->get());
  ASSERT_TRUE(kid);
  EXPECT_EQ(kid->size(), 43u);
  auto token = sign_es256(key->get(), *kid, claims(1000));
  ASSERT_TRUE(token) << token.error();
  EXPECT_EQ(std::count(token->begin(), token->end(), '.'), 2);
  auto header = base64url_decode(token->substr(0, token->find('.')));
  ASSERT_TRUE(header);
  EXPECT_NE(header->find("\"alg\":\"ES256\""), std::string::npos);
  EXPECT_NE(header->find(*kid), std::string::npos);
  auto got = verify_es256(key->get(), *token);
  ASSERT_TRUE(got) << got.error();
  EXPECT_EQ(get_string(*got, {"sub"}), "system:serviceaccount:default:default");
  EXPECT_TRUE(check_claims(*got, 1000, "https://kubernetes.default.svc.cluster.local",
                           "https://kubernetes.default.svc.cluster.local"));
}

TEST(Jwt, RejectsTamperingAndOtherKeys) {
  auto key = pki::generate_key();
  auto other = pki::generate_key();
  ASSERT_TRUE(key && other);
  auto token = sign_es256(key->get(), "", claims(1000));
  ASSERT_TRUE(token);
  EXPECT_FALSE(verify_es256(other->get(), *token));
  // A changed payload (sub of another account) keeps the old signature: invalid.
  auto parts_end = token->rfind('.');
  json::value forged = claims(1000);
  forged.as_object()["sub"] = "system:serviceaccount:kube-system:admin";
  std::string tampered = token->substr(0, token->find('.') + 1) + base64url_encode(to_json(forged)) +
                         token->substr(parts_end);
  auto r = verify_es256(key->get(), tampered);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "invalid signature");
  // A flipped signature byte.
  std::string flipped = *token;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verify_es256(key->get(), flipped));
  // alg none, garbage, two parts.
  std::string none = base64url_encode(R"({"alg":"none"})") + "." +
                     base64url_encode(to_json(claims(1000))) + ".";
  EXPECT_FALSE(verify_es256(key->get(), none));
  EXPECT_FALSE(verify_es256(key->get(), "a.b"));
  EXPECT_FALSE(verify_es256(key->get(), "..."));
  EXPECT_FALSE(verify_es256(key->get(), ""));
}

TEST(Jwt, ChecksExpiryNotBeforeIssuerAndAudience) {
  const std::string aud = "https://kubernetes.default.svc.cluster.local";
  json::value c = claims(1000);
  EXPECT_TRUE(check_claims(c, 4599, aud, aud));
  auto expired = check_claims(c, 4600, aud, aud);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error(), "token has expired");
  EXPECT_FALSE(check_claims(c, 999, aud, aud));  // before nbf
  EXPECT_TRUE(check_claims(c, 999, aud, aud, 60));
  EXPECT_FALSE(check_claims(c, 1000, "other-issuer", aud));
  EXPECT_FALSE(check_claims(c, 1000, aud, "vault"));
  c.as_object()["aud"] = "vault";
  EXPECT_TRUE(check_claims(c, 1000, "", "vault"));
  c.as_object().erase("exp");
  EXPECT_FALSE(check_claims(c, 1000, "", "vault"));
}

TEST(Jwt, SigningKeyIsCreatedOnceAndReused) {
  auto dir = std::filesystem::temp_directory_path() /
             ("podwarp-jwt-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  auto a = ensure_signing_key(dir);
  ASSERT_TRUE(a) << a.error();
  EXPECT_TRUE(std::filesystem::exists(dir / "sa.key"));
  EXPECT_TRUE(std::filesystem::exists(dir / "sa.pub"));
  EXPECT_EQ(std::filesystem::status(dir / "sa.key").permissions() & std::filesystem::perms::group_read,
            std::filesystem::perms::none);
  auto b = ensure_signing_key(dir);
  ASSERT_TRUE(b);
  EXPECT_EQ(*key_id(a->get()), *key_id(b->get()));
  auto pub = pki::read_file(dir / "sa.pub");
  ASSERT_TRUE(pub);
  EXPECT_NE(pub->find("BEGIN PUBLIC KEY"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace podwarp::jwt
