#include "images/reference.h"

#include <gtest/gtest.h>

#include "images/pull_policy.h"

namespace podwarp::images {
namespace {

std::string norm(std::string_view s) {
  auto r = parse_reference(s);
  if (!r) return "ERR: " + r.error().message;
  return r->string();
}

TEST(ReferenceTest, NormalizesLikeDocker) {
  EXPECT_EQ(norm("busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
  EXPECT_EQ(norm("library/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(norm("docker.io/busybox"), "docker.io/library/busybox:latest");
  EXPECT_EQ(norm("index.docker.io/library/busybox:1"), "docker.io/library/busybox:1");
  EXPECT_EQ(norm("myuser/app:v1"), "docker.io/myuser/app:v1");
  EXPECT_EQ(norm("quay.io/coreos/etcd:v3.5"), "quay.io/coreos/etcd:v3.5");
  EXPECT_EQ(norm("localhost/app"), "localhost/app:latest");
  EXPECT_EQ(norm("localhost:5000/app:dev"), "localhost:5000/app:dev");
  EXPECT_EQ(norm("127.0.0.1:5000/a/b/c:1.0-rc_1"), "127.0.0.1:5000/a/b/c:1.0-rc_1");
  EXPECT_EQ(norm("[::1]:5000/app:1"), "[::1]:5000/app:1");
  EXPECT_EQ(norm("Registry.Example.COM/app"), "Registry.Example.COM/app:latest");
  EXPECT_EQ(norm("a.b/c__d/e-f--g/h.i"), "a.b/c__d/e-f--g/h.i:latest");
}

TEST(ReferenceTest, Digests) {
  const std::string d = "sha256:" + std::string(64, 'a');
  auto r = parse_reference("busybox@" + d);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->digest, d);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->effective_tag(), "");
  EXPECT_EQ(r->string(), "docker.io/library/busybox@" + d);
  EXPECT_EQ(r->manifest_reference(), d);
  auto both = parse_reference("localhost:5000/busybox:1@" + d);
  ASSERT_TRUE(both);
  EXPECT_EQ(both->domain, "localhost:5000");
  EXPECT_EQ(both->tag, "1");
  EXPECT_EQ(both->string(), "localhost:5000/busybox:1@" + d);
  EXPECT_FALSE(parse_reference("busybox@sha256:abc"));
  EXPECT_FALSE(parse_reference("busybox@sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(parse_reference("busybox@" + std::string(64, 'a')));
}

TEST(ReferenceTest, RejectsBadInputWithDockerMessages) {
  auto upper = parse_reference("Busybox");
  ASSERT_FALSE(upper);
  EXPECT_EQ(upper.error().kind, ErrorKind::kInvalidReference);
  EXPECT_EQ(upper.error().message,
            "invalid reference format: repository name (library/Busybox) must be lowercase");
  auto hex = parse_reference(std::string(64, 'f'));
  ASSERT_FALSE(hex);
  EXPECT_NE(hex.error().message.find("cannot specify 64-byte hexadecimal strings"),
            std::string::npos);
  for (const char* bad : {"", ":tag", "busybox:", "busybox:-x", "a//b", "a/b/", "/a", "a b",
                          "-a", "a-", "a..b", "a___b", "host:port/x", "busybox:tag:x",
                          "ex ample.com/x", "a@", "UPPER.io/Lower"}) {
    EXPECT_FALSE(parse_reference(bad)) << "accepted \"" << bad << "\"";
  }
  EXPECT_FALSE(parse_reference("x:" + std::string(129, 'a')));
  EXPECT_TRUE(parse_reference("x:" + std::string(128, 'a')));
  EXPECT_FALSE(parse_reference("example.com/" + std::string(250, 'a')));
}

TEST(ReferenceTest, RegistryHost) {
  EXPECT_EQ(parse_reference("busybox")->registry_host(), "registry-1.docker.io");
  EXPECT_EQ(parse_reference("127.0.0.1:5000/x")->registry_host(), "127.0.0.1:5000");
}

TEST(PullPolicyTest, DefaultsAsTheApi) {
  auto pol = [](std::string_view s) { return default_pull_policy(*parse_reference(s)); };
  const std::string d = "@sha256:" + std::string(64, '1');
  EXPECT_EQ(pol("busybox"), PullPolicy::kAlways);
  EXPECT_EQ(pol("busybox:latest"), PullPolicy::kAlways);
  EXPECT_EQ(pol("busybox:1.36"), PullPolicy::kIfNotPresent);
  EXPECT_EQ(pol("busybox" + d), PullPolicy::kIfNotPresent);
  EXPECT_EQ(pol("busybox:latest" + d), PullPolicy::kAlways);
  EXPECT_EQ(pol("localhost:5000/busybox"), PullPolicy::kAlways);
}

TEST(PullPolicyTest, Decisions) {
  EXPECT_EQ(decide_pull(PullPolicy::kAlways, true), PullAction::kPull);
  EXPECT_EQ(decide_pull(PullPolicy::kAlways, false), PullAction::kPull);
  EXPECT_EQ(decide_pull(PullPolicy::kIfNotPresent, true), PullAction::kUseLocal);
  EXPECT_EQ(decide_pull(PullPolicy::kIfNotPresent, false), PullAction::kPull);
  EXPECT_EQ(decide_pull(PullPolicy::kNever, true), PullAction::kUseLocal);
  EXPECT_EQ(decide_pull(PullPolicy::kNever, false), PullAction::kFailNever);
  EXPECT_EQ(parse_pull_policy("IfNotPresent"), PullPolicy::kIfNotPresent);
  EXPECT_EQ(parse_pull_policy("ifnotpresent"), std::nullopt);
  EXPECT_EQ(to_string(PullPolicy::kNever), "Never");
}

}  // namespace
}  // namespace podwarp::images
