// Which local-path volumes a node cleans, and that the removal never leaves its directory.
#include "agent/local_path.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "loop/meta.h"

namespace podwarp::noded::agent {
namespace {

namespace fs = std::filesystem;

json::value volume(std::string_view path, std::string_view node = "n1", bool deleting = true) {
  json::object meta{{"name", "pvc-123"},
                    {"annotations", json::object{{"pv.kubernetes.io/provisioned-by",
                                                  "podwarp.io/local-path"}}},
                    {"finalizers", json::array{"kubernetes.io/pv-protection",
                                               kLocalPathCleanupFinalizer}}};
  if (deleting) meta["deletionTimestamp"] = "2026-11-24T00:00:00Z";
  json::object expr{{"key", "kubernetes.io/hostname"}, {"operator", "In"},
                    {"values", json::array{node}}};
  json::object spec{
      {"hostPath", json::object{{"path", path}}},
      {"claimRef", json::object{{"namespace", "default"}, {"name", "data-db-0"}}},
      {"nodeAffinity",
       json::object{{"required",
                     json::object{{"nodeSelectorTerms",
                                   json::array{json::object{
                                       {"matchExpressions", json::array{expr}}}}}}}}}};
  return json::object{{"metadata", meta}, {"spec", spec},
                      {"status", json::object{{"phase", "Released"}}}};
}

TEST(LocalPath, OnlyDeletedVolumesOfThisNodeWithTheProvisionersNaming) {
  const std::string good = "/var/lib/podwarp/storage/pvc-123_default_data-db-0";
  EXPECT_EQ(local_path_to_clean(volume(good), "n1"), fs::path(good));
  EXPECT_EQ(local_path_to_clean(volume(good, "n1", false), "n1"), std::nullopt);
  EXPECT_EQ(local_path_to_clean(volume(good, "n2"), "n1"), std::nullopt);
  for (const char* bad : {"relative/pvc-123_x", "/var/lib/../pvc-123_x", "/var/./pvc-123_x",
                          "/pvc-123_x", "/var/lib/pvc-124_x", "/var/lib/pvc-123", "/var/lib/pvc-123_x/",
                          "/var/lib/podwarp/storage", ""}) {
    EXPECT_EQ(local_path_to_clean(volume(bad), "n1"), std::nullopt) << bad;
  }
  json::value bound = volume(good);
  bound.as_object()["status"].as_object()["phase"] = "Bound";
  EXPECT_EQ(local_path_to_clean(bound, "n1"), std::nullopt);
  json::value other = volume(good);
  other.as_object()["metadata"].as_object()["annotations"].as_object()
      ["pv.kubernetes.io/provisioned-by"] = "example.com/nfs";
  EXPECT_EQ(local_path_to_clean(other, "n1"), std::nullopt);
  json::value done = loop::without_finalizer(volume(good), kLocalPathCleanupFinalizer);
  EXPECT_EQ(done.at("metadata").at("finalizers"), json::array{"kubernetes.io/pv-protection"});
  EXPECT_EQ(local_path_to_clean(done, "n1"), std::nullopt);
  EXPECT_EQ(claim_of(done), (std::pair<std::string, std::string>{"default", "data-db-0"}));
}

TEST(LocalPath, RemovalFollowsNoLinkAndRefusesALinkedDirectory) {
  char tmpl[] = "/tmp/podwarp-localpath-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path root(tmpl);
  const fs::path outside = root / "outside";
  fs::create_directories(outside);
  std::ofstream(outside / "keep") << "keep";
  const fs::path dir = root / "pvc-123_default_data";
  fs::create_directories(dir / "a" / "b");
  std::ofstream(dir / "a" / "b" / "f") << "data";
  fs::create_symlink(outside, dir / "link-to-dir");
  fs::create_symlink(outside / "keep", dir / "a" / "link-to-file");
  ASSERT_TRUE(remove_local_path(dir));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(outside / "keep"));
  EXPECT_TRUE(remove_local_path(dir)) << "already gone is clean";
  const fs::path linked = root / "pvc-123_linked";
  fs::create_directory_symlink(outside, linked);
  auto refused = remove_local_path(linked);
  EXPECT_FALSE(refused);
  EXPECT_TRUE(fs::exists(outside / "keep"));
  fs::remove_all(root);
}

}  // namespace
}  // namespace podwarp::noded::agent
