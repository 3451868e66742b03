#include "images/manifest.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "images/digest.h"

namespace podwarp::images {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');

std::string desc(std::string_view type, const std::string& digest, std::string extra = "") {
  return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":123{}}})", type, digest, extra);
}

TEST(ManifestTest, OciManifest) {
  std::string body = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{},{}]}})",
      media_type::kOciManifest, desc(media_type::kOciConfig, kD1),
      desc(media_type::kOciLayerGzip, kD2), desc(media_type::kOciLayerZstd, kD3));
  auto m = parse_manifest(body);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_FALSE(m->is_index);
  EXPECT_EQ(m->config.digest, kD1);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].digest, kD2);
  EXPECT_EQ(m->layers[1].media_type, media_type::kOciLayerZstd);
  EXPECT_EQ(m->layers[1].size, 123u);
}

TEST(ManifestTest, DockerSchema2WithoutMediaTypeUsesContentType) {
  std::string body = fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})",
                                 desc(media_type::kDockerConfig, kD1),
                                 desc(media_type::kDockerLayerGzip, kD2));
  auto m = parse_manifest(body, "application/vnd.docker.distribution.manifest.v2+json; x=y");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->media_type, media_type::kDockerManifest);
  EXPECT_EQ(m->layers.size(), 1u);
}

TEST(ManifestTest, RejectsBadManifests) {
  EXPECT_EQ(parse_manifest(R"({"schemaVersion":1,"fsLayers":[]})").error().message,
            "manifest: Docker image manifest schema 1 is not supported");
  EXPECT_FALSE(parse_manifest("not json"));
  EXPECT_FALSE(parse_manifest("[]"));
  EXPECT_FALSE(parse_manifest(R"({"schemaVersion":2,"mediaType":"text/plain"})"));
  // A layer of an unknown type, a non-sha256 digest, a missing size.
  auto bad_layer = fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})",
                               desc(media_type::kOciConfig, kD1), desc("application/x-foo", kD2));
  EXPECT_NE(parse_manifest(bad_layer).error().message.find("unsupported media type"),
            std::string::npos);
  auto bad_digest = fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[]}})",
                                desc(media_type::kOciConfig, "sha512:" + std::string(128, 'a')));
  EXPECT_FALSE(parse_manifest(bad_digest));
  EXPECT_FALSE(parse_manifest(
      R"({"schemaVersion":2,"config":{"digest":"sha256:)" + std::string(64, '1') + R"("},"layers":[]})"));
}

std::string platform(std::string_view arch, std::string_view variant = "") {
  if (variant.empty()) return fmt::format(R"(,"platform":{{"os":"linux","architecture":"{}"}})", arch);
  return fmt::format(R"(,"platform":{{"os":"linux","architecture":"{}","variant":"{}"}})", arch,
                     variant);
}

TEST(ManifestTest, IndexSelectsLinuxAmd64) {
  const std::string attestation =
      R"(,"platform":{"os":"unknown","architecture":"unknown"})";
  std::string body = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{},{},{},{}]}})", media_type::kDockerList,
      desc(media_type::kDockerManifest, kD1, platform("arm64", "v8")),
      desc(media_type::kDockerManifest, kD3, platform("amd64", "v3")),
      desc(media_type::kDockerManifest, kD2, platform("amd64")),
      desc(media_type::kOciManifest, kD1, attestation));
  auto idx = parse_manifest(body);
  ASSERT_TRUE(idx) << idx.error().message;
  ASSERT_TRUE(idx->is_index);
  auto d = select_platform(*idx);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->digest, kD2);  // the variant-less amd64 entry
  Platform arm{"linux", "arm64", ""};
  EXPECT_EQ(select_platform(*idx, arm)->digest, kD1);
  Platform s390{"linux", "s390x", ""};
  auto none = select_platform(*idx, s390);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message,
            "no image for platform linux/s390x in the index (it has: linux/arm64/v8, "
            "linux/amd64/v3, linux/amd64, unknown/unknown)");
}

TEST(ManifestTest, IndexWithOneUnlabelledEntry) {
  std::string body = fmt::format(R"({{"schemaVersion":2,"manifests":[{}]}})",
                                 desc(media_type::kOciManifest, kD1));
  auto idx = parse_manifest(body);
  ASSERT_TRUE(idx);
  EXPECT_TRUE(idx->is_index);
  EXPECT_EQ(select_platform(*idx)->digest, kD1);
}

TEST(ManifestTest, ImageConfig) {
  std::string body = R"({"architecture":"amd64","os":"linux","config":{
      "Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Env":["PATH=/bin","A=b"],
      "WorkingDir":"/w","User":"1000:1000","StopSignal":"SIGQUIT",
      "Labels":{"k":"v"},"ExposedPorts":{"80/tcp":{}}},
      "rootfs":{"type":"layers","diff_ids":[")" + kD1 + R"(",")" + kD2 + R"("]}})";
  auto c = parse_image_config(body);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->platform.to_string(), "linux/amd64");
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(c->cmd, (std::vector<std::string>{"echo hi"}));
  EXPECT_EQ(c->env.size(), 2u);
  EXPECT_EQ(c->working_dir, "/w");
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_EQ(c->stop_signal, "SIGQUIT");
  EXPECT_EQ(c->labels.at("k"), "v");
  EXPECT_EQ(c->exposed_ports, (std::vector<std::string>{"80/tcp"}));
  EXPECT_EQ(c->diff_ids, (std::vector<std::string>{kD1, kD2}));
  // A config with no "config" section (FROM scratch images) is fine.
  auto bare = parse_image_config(R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(bare);
  EXPECT_TRUE(bare->cmd.empty());
  EXPECT_FALSE(parse_image_config(R"({"os":"linux"})"));
  EXPECT_FALSE(parse_image_config(R"({"rootfs":{"type":"layers","diff_ids":["md5:x"]}})"));
}

TEST(DigestTest, Sha256) {
  EXPECT_EQ(sha256_digest("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish(), sha256_digest("abc"));
  EXPECT_EQ(digest_hex("sha256:abcd"), "abcd");
}

}  // namespace
}  // namespace podwarp::images
