#include "pods/volumes.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pods/manifest_dir.h"
#include "pods/state_store.h"

namespace podwarp::noded::pods {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-volumes-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() {
    unmount_all_under(path);
    fs::remove_all(path);
  }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

PodDef pod(const std::string& volumes, const std::string& mounts) {
  auto d = parse_pod_manifest("kind: Pod\nmetadata: {name: v}\nspec:\n  volumes:\n" + volumes +
                                  "  containers:\n  - name: c\n    image: x:1\n    volumeMounts:\n" + mounts,
                              {"", "f"});
  EXPECT_TRUE(d) << (d ? "" : d.error().text());
  return *d;
}

ObjectLookup lookup() {
  return [](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
    if (ns != "default") return std::nullopt;
    if (kind == "Secret" && name == "s")
      return json::object{{"data", json::object{{"password", "aHVudGVyMg=="}}},
                          {"stringData", json::object{{"user", "admin"}}}};
    if (kind == "ConfigMap" && name == "cm")
      return json::object{{"data", json::object{{"a", "1"}, {"b", "2"}}}};
    return std::nullopt;
  };
}

TEST(Volumes, SecretConfigMapItemsHostPath) {
  TmpDir t;
  std::string host = t.path + "/host/data";
  auto d = pod("  - {name: s, secret: {secretName: s, defaultMode: 256}}\n"
               "  - name: cm\n    configMap:\n      name: cm\n      items: [{key: b, path: sub/b.txt}]\n"
               "  - {name: h, hostPath: {path: " + host + ", type: DirectoryOrCreate}}\n",
               "    - {name: s, mountPath: /s, readOnly: true}\n    - {name: cm, mountPath: /cm}\n"
               "    - {name: h, mountPath: /h}\n");
  auto v = prepare_volumes(d, t.path + "/pod", lookup());
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(slurp(v->at("s") + "/password"), "hunter2");
  EXPECT_EQ(slurp(v->at("s") + "/user"), "admin");
  struct stat st{};
  ASSERT_EQ(::stat((v->at("s") + "/password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  EXPECT_EQ(slurp(v->at("cm") + "/sub/b.txt"), "2");
  EXPECT_FALSE(fs::exists(v->at("cm") + "/a"));  // only the listed items
  EXPECT_TRUE(fs::is_directory(host));
  auto m = container_mounts(d.containers[0], *v);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].container_path, "/s");
  EXPECT_TRUE(m[0].read_only);
  EXPECT_EQ(m[2].host_path, host);
  teardown_volumes(d, t.path + "/pod");
}

TEST(Volumes, MissingSourcesAndBadTypes) {
  TmpDir t;
  auto d = pod("  - {name: s, secret: {secretName: nope}}\n", "    - {name: s, mountPath: /s}\n");
  auto v = prepare_volumes(d, t.path + "/pod", lookup());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error(), "volume s: secret \"nope\" not found");
  auto o = pod("  - {name: s, secret: {secretName: nope, optional: true}}\n", "    - {name: s, mountPath: /s}\n");
  EXPECT_TRUE(prepare_volumes(o, t.path + "/pod", lookup()));
  auto h = pod("  - {name: h, hostPath: {path: /nonexistent/podwarp, type: Directory}}\n", "    - {name: h, mountPath: /h}\n");
  auto hv = prepare_volumes(h, t.path + "/pod", lookup());
  ASSERT_FALSE(hv);
  EXPECT_NE(hv.error().find("is not a directory"), std::string::npos);
  EXPECT_EQ(*base64_decode("aGk="), "hi");
  EXPECT_FALSE(base64_decode("a*b"));
}

TEST(Volumes, MemoryEmptyDirIsTmpfsAndUnmounted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount tmpfs)";
  TmpDir t;
  auto d = pod("  - {name: m, emptyDir: {medium: Memory, sizeLimit: 1Mi}}\n", "    - {name: m, mountPath: /m}\n");
  auto v = prepare_volumes(d, t.path + "/pod", lookup());
  ASSERT_TRUE(v) << v.error();
  struct statfs sf{};
  ASSERT_EQ(::statfs(v->at("m").c_str(), &sf), 0);
  EXPECT_EQ(sf.f_type, 0x01021994);  // TMPFS_MAGIC
  // Idempotent: a second prepare (noded restart) does not stack a second mount.
  ASSERT_TRUE(prepare_volumes(d, t.path + "/pod", lookup()));
  teardown_volumes(d, t.path + "/pod");
  ASSERT_EQ(::statfs(v->at("m").c_str(), &sf), 0);
  EXPECT_NE(sf.f_type, 0x01021994);
}

TEST(Volumes, SecretAndProjectedVolumesAreOnTmpfsAndGoWithThePod) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount tmpfs)";
  TmpDir t;
  auto d = pod("  - {name: s, secret: {secretName: s}}\n"
               "  - name: p\n    projected:\n      sources:\n"
               "      - configMap: {name: cm}\n",
               "    - {name: s, mountPath: /s}\n    - {name: p, mountPath: /p}\n");
  std::string pod_dir = t.path + "/pods/uid-1";
  auto v = prepare_volumes(d, pod_dir, lookup());
  ASSERT_TRUE(v) << v.error();
  for (const char* name : {"s", "p"}) {
    struct statfs sf{};
    ASSERT_EQ(::statfs(v->at(name).c_str(), &sf), 0);
    EXPECT_EQ(sf.f_type, 0x01021994) << name;  // TMPFS_MAGIC
  }
  EXPECT_EQ(slurp(v->at("s") + "/password"), "hunter2");
  EXPECT_EQ(slurp(v->at("p") + "/a"), "1");
  // Prepared again (noded restart, refresh): same mount, new content visible.
  ASSERT_TRUE(prepare_volumes(d, pod_dir, lookup()));
  // An orphan's removal unmounts what nobody tore down, then removes the pod dir.
  PodStateStore store(t.path);
  store.remove("uid-1");
  EXPECT_FALSE(fs::exists(pod_dir));
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) EXPECT_EQ(line.find(pod_dir), std::string::npos) << line;
}

}  // namespace
}  // namespace podwarp::noded::pods
