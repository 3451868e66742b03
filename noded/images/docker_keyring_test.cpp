#include "images/docker_keyring.h"

#include <gtest/gtest.h>

namespace podwarp::images {
namespace {

std::string b64(std::string_view s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -6;
  for (unsigned char c : s) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(t[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(t[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

json::value secret(std::string_view type, std::string_view key, std::string_view config) {
  return json::object{{"type", type}, {"data", json::object{{key, b64(config)}}}};
}

std::vector<std::string> users(const std::vector<Credentials>& c) {
  std::vector<std::string> out;
  for (const auto& x : c) out.push_back(x.username + ":" + x.password);
  return out;
}

TEST(DockerKeyring, MatchingTable) {
  DockerKeyring k;
  ASSERT_TRUE(k.add_secret(secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", R"j({"auths":{
    "127.0.0.1:5000":{"username":"local","password":"p1"},
    "https://registry.example.com/v2/":{"auth":")j" + b64("alice:s3:cr3t") + R"j("},
    "registry.example.com/team":{"username":"team","password":"p2"},
    "*.corp.io":{"username":"glob","password":"p3"},
    "https://index.docker.io/v1/":{"username":"hub","password":"p4"}}})j")));
  struct Case {
    const char* repo;
    std::vector<std::string> want;
  } cases[] = {
      {"127.0.0.1:5000/busybox", {"local:p1"}},
      {"127.0.0.1:5001/busybox", {}},                  // port must match
      {"127.0.0.1/busybox", {}},
      {"registry.example.com/other/app", {"alice:s3:cr3t"}},  // auth wins; ':' in password kept
      {"registry.example.com/team/app", {"team:p2", "alice:s3:cr3t"}},  // most specific first
      {"r1.corp.io/x", {"glob:p3"}},
      {"a.b.corp.io/x", {}},                           // glob matches one part only
      {"docker.io/library/busybox", {"hub:p4"}},       // Docker Hub: the index.docker.io entry
      {"quay.io/x/y", {}},
  };
  for (const auto& c : cases) EXPECT_EQ(users(k.lookup(c.repo)), c.want) << c.repo;
}

TEST(DockerKeyring, LegacyDockercfgAndBadInput) {
  DockerKeyring k;
  EXPECT_TRUE(k.add_secret(secret("kubernetes.io/dockercfg", ".dockercfg",
                                  R"j({"127.0.0.1:5000":{"auth":")j" + b64("u:p") + R"j("}})j")));
  EXPECT_EQ(users(k.lookup("127.0.0.1:5000/a")), std::vector<std::string>{"u:p"});
  DockerKeyring bad;
  EXPECT_FALSE(bad.add_secret(secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson", "not json")));
  EXPECT_FALSE(bad.add_secret(json::object{{"type", "Opaque"}, {"data", json::object{{"x", "eA=="}}}}));
  EXPECT_FALSE(bad.add_secret(json::value(nullptr)));
  // An auth field without ':' is skipped.
  EXPECT_TRUE(bad.add_secret(secret("kubernetes.io/dockerconfigjson", ".dockerconfigjson",
                                    R"j({"auths":{"h:1":{"auth":")j" + b64("nocolon") + R"j("}}})j")));
  EXPECT_TRUE(bad.lookup("h:1/x").empty());
}

}  // namespace
}  // namespace podwarp::images
