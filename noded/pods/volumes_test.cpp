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

// Claims in namespace default and their PersistentVolumes (cluster-scoped: ns "").
struct Claims {
  std::map<std::string, json::value> claims, volumes;
  void bind(const std::string& claim, const std::string& pv, json::value pv_spec) {
    claims[claim] = json::object{{"spec", json::object{{"volumeName", pv}}},
                                 {"status", json::object{{"phase", "Bound"}}}};
    volumes[pv] = json::object{{"spec", std::move(pv_spec)}};
  }
  ObjectLookup lookup() const {
    return [this](std::string_view kind, std::string_view ns,
                  std::string_view name) -> std::optional<json::value> {
      const auto& m = kind == "PersistentVolume" ? volumes : claims;
      if ((kind == "PersistentVolume") != ns.empty() || (!ns.empty() && ns != "default") ||
          (kind != "PersistentVolume" && kind != "PersistentVolumeClaim"))
        return std::nullopt;
      auto it = m.find(std::string(name));
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(Volumes, BoundClaimsMountTheirHostPathAndLocalVolumes) {
  TmpDir t;
  std::string hp = t.path + "/provisioned/pvc-1", local = t.path + "/disk";
  fs::create_directories(local);
  Claims c;
  c.bind("data", "pvc-1",
         json::object{{"hostPath", json::object{{"path", hp}, {"type", "DirectoryOrCreate"}}}});
  c.bind("disk", "local-1", json::object{{"local", json::object{{"path", local}}}});
  auto d =
      pod("  - {name: data, persistentVolumeClaim: {claimName: data}}\n"
          "  - {name: disk, persistentVolumeClaim: {claimName: disk, readOnly: true}}\n",
          "    - {name: data, mountPath: /data}\n    - {name: disk, mountPath: /disk}\n");
  auto v = prepare_volumes(d, t.path + "/pod", c.lookup());
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(v->at("data"), hp);
  EXPECT_EQ(fs::status(hp).permissions(), fs::perms::all);
  EXPECT_EQ(v->at("disk"), local);
  auto m = container_mounts(d.containers[0], *v, d.volumes);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].host_path, hp);
  EXPECT_FALSE(m[0].read_only);
  EXPECT_EQ(m[1].host_path, local);
  EXPECT_TRUE(m[1].read_only);  // persistentVolumeClaim.readOnly
  // An existing directory keeps its mode.
  fs::permissions(hp, fs::perms::owner_all);
  ASSERT_TRUE(prepare_volumes(d, t.path + "/pod", c.lookup()));
  EXPECT_EQ(fs::status(hp).permissions(), fs::perms::owner_all);
}

TEST(Volumes, ClaimsMissingUnboundOrWithUnsupportedSources) {
  TmpDir t;
  Claims c;
  auto d = pod("  - {name: data, persistentVolumeClaim: {claimName: data}}\n",
               "    - {name: data, mountPath: /data}\n");
  auto e = prepare_volume(d, d.volumes[0], t.path, c.lookup());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), "persistentvolumeclaim \"data\" not found");
  c.claims["data"] = json::object{{"spec", json::object{{"volumeName", "pv-1"}}},
                                  {"status", json::object{{"phase", "Pending"}}}};
  e = prepare_volume(d, d.volumes[0], t.path, c.lookup());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), "waiting for PersistentVolumeClaim data to be bound");
  c.claims["data"] = json::object{{"status", json::object{{"phase", "Bound"}}}};
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
            "waiting for PersistentVolumeClaim data to be bound");
  c.bind("data", "pv-nfs",
         json::object{{"capacity", json::object{{"storage", "1Gi"}}},
                      {"nfs", json::object{{"server", "x"}, {"path", "/e"}}}});
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
            "unsupported PersistentVolume source for pv-nfs: nfs");
  c.bind("data", "pv-csi",
         json::object{{"csi", json::object{{"driver", "d"}, {"volumeHandle", "h"}}}});
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
            "unsupported PersistentVolume source for pv-csi: csi");
  c.bind("data", "pv-local", json::object{{"local", json::object{{"path", t.path + "/nope"}}}});
  EXPECT_EQ(
      prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
      "local volume path \"" + t.path + "/nope\" of PersistentVolume pv-local does not exist");
  c.claims["data"] = json::object{{"spec", json::object{{"volumeName", "gone"}}},
                                  {"status", json::object{{"phase", "Bound"}}}};
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
            "persistentvolume \"gone\" not found");
  // A PV whose claimRef names another claim is not mounted.
  c.bind("data", "pv-2",
         json::object{{"hostPath", json::object{{"path", t.path + "/x"}}},
                      {"claimRef", json::object{{"namespace", "other"}, {"name", "data"}}}});
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, c.lookup()).error(),
            "PersistentVolume pv-2 is bound to another claim (other/data)");
  // Standalone pods (manifest folder lookup) see no claims.
  EXPECT_EQ(prepare_volume(d, d.volumes[0], t.path, lookup()).error(),
            "persistentvolumeclaim \"data\" not found");
}

TEST(Volumes, ClaimVolumeNeedsAClaimName) {
  auto bad = parse_pod_manifest(
      "kind: Pod\nmetadata: {name: v}\nspec:\n  volumes:\n"
      "  - {name: data, persistentVolumeClaim: {readOnly: true}}\n"
      "  containers:\n  - {name: c, image: x:1}\n",
      {"", "f"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().field, "spec.volumes[0].persistentVolumeClaim.claimName");
}

}  // namespace
}  // namespace podwarp::noded::pods
