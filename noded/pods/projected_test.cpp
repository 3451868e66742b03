#include "pods/projected.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pods/manifest_dir.h"
#include "pods/volumes.h"

namespace podwarp::noded::pods {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-projected-XXXXXX";
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
int mode_of(const std::string& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

std::map<std::string, json::value> objects() {
  return {
      {"ConfigMap/kube-root-ca.crt", json::object{{"data", json::object{{"ca.crt", "CA PEM"}}}}},
      {"ConfigMap/app", json::object{{"data", json::object{{"a", "1"}, {"b", "2"}}},
                                     {"binaryData", json::object{{"bin", "AAEC"}}}}},
      {"Secret/creds", json::object{{"data", json::object{{"password", "aHVudGVyMg=="}}}}},
  };
}

ObjectLookup lookup(std::map<std::string, json::value>* objs) {
  return [objs](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
    if (ns != "team") return std::nullopt;
    auto it = objs->find(std::string(kind) + "/" + std::string(name));
    if (it == objs->end()) return std::nullopt;
    return it->second;
  };
}

PodDef pod(const std::string& volumes) {
  auto d = parse_pod_manifest(
      "kind: Pod\nmetadata: {name: p, namespace: team, labels: {app: web}}\nspec:\n"
      "  volumes:\n" + volumes +
          "  containers:\n  - name: c\n    image: x:1\n"
          "    resources: {limits: {memory: 64Mi}, requests: {cpu: 250m}}\n",
      {"", "f"});
  EXPECT_TRUE(d) << (d ? "" : d.error().text());
  return *d;
}

TEST(Projected, KubeApiAccessLayoutWithModes) {
  TmpDir t;
  auto objs = objects();
  auto p = pod(R"(  - name: kube-api-access-abcde
    projected:
      defaultMode: 288  # 0440 (lib/yaml.cpp reads 0440 as decimal)
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3607}
      - configMap:
          name: kube-root-ca.crt
          items: [{key: ca.crt, path: ca.crt}]
      - downwardAPI:
          items:
          - path: namespace
            fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}
          - path: labels
            fieldRef: {fieldPath: metadata.labels}
            mode: 384  # 0600
          - path: mem_limit
            resourceFieldRef: {containerName: c, resource: limits.memory, divisor: 1Mi}
      - secret:
          name: creds
          items: [{key: password, path: secret/pw, mode: 256}]  # 0400
)");
  VolumeInputs in;
  in.tokens[token_key("kube-api-access-abcde", "token")] = "eyJhbGciOi.token";
  auto v = prepare_volumes(p, t.path, lookup(&objs), in);
  ASSERT_TRUE(v) << v.error();
  std::string d = v->at("kube-api-access-abcde");
  EXPECT_EQ(d, t.path + "/volumes/kubernetes.io~projected/kube-api-access-abcde");
  EXPECT_EQ(slurp(d + "/token"), "eyJhbGciOi.token");
  EXPECT_EQ(slurp(d + "/ca.crt"), "CA PEM");
  EXPECT_EQ(slurp(d + "/namespace"), "team");
  EXPECT_EQ(slurp(d + "/labels"), "app=\"web\"");
  EXPECT_EQ(slurp(d + "/mem_limit"), "64");
  EXPECT_EQ(slurp(d + "/secret/pw"), "hunter2");
  EXPECT_EQ(mode_of(d + "/token"), 0440);
  EXPECT_EQ(mode_of(d + "/ca.crt"), 0440);
  EXPECT_EQ(mode_of(d + "/labels"), 0600);
  EXPECT_EQ(mode_of(d + "/secret/pw"), 0400);
  EXPECT_TRUE(fs::is_symlink(d + "/token"));
  EXPECT_TRUE(fs::is_symlink(d + "/..data"));

  // Without the token the volume cannot be written.
  auto no_token = prepare_volumes(p, t.path, lookup(&objs), {});
  ASSERT_FALSE(no_token);
}

TEST(Projected, ConfigMapSecretDownwardVolumesAndErrors) {
  TmpDir t;
  auto objs = objects();
  auto p = pod(R"(  - name: cm
    configMap: {name: app, defaultMode: 384, items: [{key: a, path: x/a.txt}, {key: bin, path: bin, mode: 292}]}
  - name: all
    configMap: {name: app}
  - name: sec
    secret: {secretName: creds}
  - name: info
    downwardAPI:
      defaultMode: 292
      items:
      - {path: name, fieldRef: {fieldPath: metadata.name}}
      - {path: cpu_req, resourceFieldRef: {containerName: c, resource: requests.cpu, divisor: 1m}}
)");
  auto v = prepare_volumes(p, t.path, lookup(&objs));
  ASSERT_TRUE(v) << v.error();
  EXPECT_EQ(slurp(v->at("cm") + "/x/a.txt"), "1");
  EXPECT_EQ(mode_of(v->at("cm") + "/x/a.txt"), 0600);
  EXPECT_EQ(slurp(v->at("cm") + "/bin"), std::string("\0\1\2", 3));
  EXPECT_EQ(mode_of(v->at("cm") + "/bin"), 0444);
  EXPECT_FALSE(fs::exists(v->at("cm") + "/b"));
  EXPECT_EQ(slurp(v->at("all") + "/b"), "2");
  EXPECT_EQ(mode_of(v->at("all") + "/b"), 0644);
  EXPECT_EQ(slurp(v->at("sec") + "/password"), "hunter2");
  EXPECT_EQ(v->at("info"), t.path + "/volumes/kubernetes.io~downward-api/info");
  EXPECT_EQ(slurp(v->at("info") + "/name"), "p");
  EXPECT_EQ(slurp(v->at("info") + "/cpu_req"), "250");
  EXPECT_EQ(mode_of(v->at("info") + "/name"), 0444);

  // An update of the source shows up on the next write; unchanged volumes are not rewritten.
  objs["ConfigMap/app"] = json::object{{"data", json::object{{"a", "changed"}, {"b", "2"}}},
                                       {"binaryData", json::object{{"bin", "AAEC"}}}};
  auto before = fs::read_symlink(v->at("sec") + "/..data");
  v = prepare_volumes(p, t.path, lookup(&objs));
  ASSERT_TRUE(v);
  EXPECT_EQ(slurp(v->at("cm") + "/x/a.txt"), "changed");
  EXPECT_EQ(fs::read_symlink(v->at("sec") + "/..data"), before);

  // Errors as the kubelet's.
  auto l = lookup(&objs);
  auto miss = pod("  - name: m\n    configMap: {name: nope}\n");
  auto e = prepare_volume(miss, miss.volumes[0], t.path, l);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), "configmap \"nope\" not found");
  auto opt = pod("  - name: m\n    secret: {secretName: nope, optional: true}\n");
  EXPECT_TRUE(prepare_volume(opt, opt.volumes[0], t.path, l));
  auto key = pod("  - name: m\n    configMap: {name: app, items: [{key: zz, path: z}]}\n");
  e = prepare_volume(key, key.volumes[0], t.path, l);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), "configmap references non-existent config key: zz");
  auto skey = pod("  - name: m\n    secret: {secretName: creds, items: [{key: zz, path: z}]}\n");
  e = prepare_volume(skey, skey.volumes[0], t.path, l);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), "references non-existent secret key: zz");
}

TEST(Projected, ManifestValidation) {
  auto bad = [](const std::string& vol) {
    auto d = parse_pod_manifest("kind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n" + vol +
                                    "  containers: [{name: c, image: x:1}]\n",
                                {"", "f"});
    return d ? std::string() : d.error().text();
  };
  EXPECT_NE(bad("  - name: v\n    configMap: {name: a, items: [{key: k, path: ../x}]}\n"), "");
  EXPECT_NE(bad("  - name: v\n    configMap: {name: a, defaultMode: 1000}\n"), "");
  EXPECT_NE(bad("  - name: v\n    projected: {sources: [{serviceAccountToken: {path: t, expirationSeconds: 60}}]}\n")
                .find("less than 10 minutes"),
            std::string::npos);
  EXPECT_NE(bad("  - name: v\n    downwardAPI: {items: [{path: x, resourceFieldRef: {resource: limits.cpu}}]}\n")
                .find("containerName"),
            std::string::npos);
  EXPECT_EQ(bad("  - name: v\n    projected: {sources: [{serviceAccountToken: {path: token}}]}\n"), "");
}

}  // namespace
}  // namespace podwarp::noded::pods
