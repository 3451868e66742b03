#include "podwarp/kubeconfig.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "podwarp/pki.h"

namespace podwarp::kubeconfig {
namespace {

namespace fs = std::filesystem;

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "podwarp-kubeconfig-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto ca = pki::ensure_ca(dir_ / "pki");
    ASSERT_TRUE(ca) << ca.error();
    std::vector<std::string> groups{"system:masters"};
    auto admin = pki::ensure_client_cert(dir_ / "pki", "admin", "admin", groups);
    ASSERT_TRUE(admin) << admin.error();
    ca_pem_ = *pki::cert_to_pem(ca->cert.get());
    cert_pem_ = *pki::cert_to_pem(admin->cert.get());
    key_pem_ = *pki::key_to_pem(admin->key.get());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Config admin_config() const {
    Config c;
    c.server = "https://127.0.0.1:6443";
    c.ca_pem = ca_pem_;
    c.client_cert_pem = cert_pem_;
    c.client_key_pem = key_pem_;
    return c;
  }

  fs::path dir_;
  std::string ca_pem_, cert_pem_, key_pem_;
};

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    auto d = base64_decode(encoded);
    ASSERT_TRUE(d) << encoded;
    EXPECT_EQ(*d, plain);
  }
  std::string binary("\x00\xff\x10\x80", 4);
  EXPECT_EQ(*base64_decode(base64_encode(binary)), binary);
  EXPECT_EQ(*base64_decode("Zm9v\nYmFy\n"), "foobar");
  EXPECT_FALSE(base64_decode("Zm9v!"));
  EXPECT_FALSE(base64_decode("Zm9"));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));
}

TEST_F(KubeconfigTest, WriteThenLoadRoundTripsInlineData) {
  fs::path path = dir_ / "admin.kubeconfig";
  Config c = admin_config();
  c.default_namespace = "kube-system";
  ASSERT_TRUE(write(path, c));

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto loaded = load(path);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->server, c.server);
  EXPECT_EQ(loaded->ca_pem, ca_pem_);
  EXPECT_EQ(loaded->client_cert_pem, cert_pem_);
  EXPECT_EQ(loaded->client_key_pem, key_pem_);
  EXPECT_TRUE(loaded->token.empty());
  EXPECT_TRUE(loaded->ca_file.empty());
  EXPECT_EQ(loaded->default_namespace, "kube-system");
  EXPECT_EQ(loaded->context_name, "podwarp");
  EXPECT_EQ(loaded->cluster_name, "podwarp");
  EXPECT_EQ(loaded->user_name, "admin");

  // The document has the shape kubectl expects.
  YAML::Node doc = YAML::LoadFile(path.string());
  EXPECT_EQ(doc["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(doc["kind"].as<std::string>(), "Config");
  EXPECT_EQ(doc["current-context"].as<std::string>(), "podwarp");
  EXPECT_EQ(doc["clusters"][0]["cluster"]["server"].as<std::string>(), c.server);
  EXPECT_EQ(doc["clusters"][0]["cluster"]["certificate-authority-data"].as<std::string>(),
            base64_encode(ca_pem_));
  EXPECT_EQ(doc["users"][0]["user"]["client-key-data"].as<std::string>(), base64_encode(key_pem_));
  EXPECT_EQ(doc["contexts"][0]["context"]["user"].as<std::string>(), "admin");
}

TEST_F(KubeconfigTest, TokenRoundTrips) {
  Config c;
  c.server = "https://[::1]:6443";
  c.ca_pem = ca_pem_;
  c.token = "abc.def";
  c.user_name = "robot";
  c.tls_server_name = "kubernetes";
  auto loaded = parse(to_yaml(c), dir_);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->server, c.server);
  EXPECT_EQ(loaded->token, "abc.def");
  EXPECT_EQ(loaded->user_name, "robot");
  EXPECT_EQ(loaded->tls_server_name, "kubernetes");
  EXPECT_TRUE(loaded->client_cert_pem.empty());
}

TEST_F(KubeconfigTest, FilePathsResolveAgainstKubeconfigFolder) {
  fs::create_directories(dir_ / "conf");
  std::string yaml = R"(apiVersion: v1
kind: Config
current-context: ctx
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: ../pki/ca.crt
users:
- name: u1
  user:
    client-certificate: ../pki/admin.crt
    client-key: )" + (dir_ / "pki" / "admin.key").string() +
                     R"(
    tokenFile: token
contexts:
- name: other
  context: {cluster: nowhere, user: nobody}
- name: ctx
  context:
    cluster: c1
    user: u1
)";
  ASSERT_TRUE(pki::write_file_atomic(dir_ / "conf" / "token", "s3cret\n", 0600));
  ASSERT_TRUE(pki::write_file_atomic(dir_ / "conf" / "kubeconfig", yaml, 0600));

  auto loaded = load(dir_ / "conf" / "kubeconfig");
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->server, "https://10.0.0.1:6443");
  EXPECT_EQ(loaded->ca_file, dir_ / "pki" / "ca.crt");
  EXPECT_EQ(loaded->client_cert_file, dir_ / "pki" / "admin.crt");
  EXPECT_EQ(loaded->client_key_file, dir_ / "pki" / "admin.key");
  EXPECT_EQ(loaded->ca_pem, ca_pem_);
  EXPECT_EQ(loaded->client_cert_pem, cert_pem_);
  EXPECT_EQ(loaded->client_key_pem, key_pem_);
  EXPECT_EQ(loaded->token, "s3cret");

  // Writing a path-only config keeps the paths.
  Config paths;
  paths.server = "https://10.0.0.1:6443";
  paths.ca_file = dir_ / "pki" / "ca.crt";
  paths.client_cert_file = dir_ / "pki" / "admin.crt";
  paths.client_key_file = dir_ / "pki" / "admin.key";
  std::string text = to_yaml(paths);
  EXPECT_EQ(text.find("-data"), std::string::npos) << text;
  auto again = parse(text, "/");
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(again->client_key_pem, key_pem_);

  // Picking the other context fails on its dangling cluster.
  auto other = load(dir_ / "conf" / "kubeconfig", "other");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().find("cluster \"nowhere\" not found"), std::string::npos)
      << other.error();
}

TEST_F(KubeconfigTest, ErrorsNameTheProblem) {
  auto missing = load(dir_ / "absent");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find((dir_ / "absent").string()), std::string::npos);

  auto bad_yaml = parse("clusters: [", dir_);
  EXPECT_FALSE(bad_yaml);
  auto no_ctx = parse("apiVersion: v1\nkind: Config\n", dir_);
  ASSERT_FALSE(no_ctx);
  EXPECT_NE(no_ctx.error().find("current-context"), std::string::npos);

  Config c = admin_config();
  c.ca_pem.clear();
  c.ca_file = "missing-ca.crt";
  auto unreadable = parse(to_yaml(c), dir_);
  ASSERT_FALSE(unreadable);
  EXPECT_NE(unreadable.error().find((dir_ / "missing-ca.crt").string()), std::string::npos)
      << unreadable.error();

  std::string bad_data = to_yaml(admin_config());
  auto pos = bad_data.find("client-key-data: ");
  ASSERT_NE(pos, std::string::npos);
  bad_data.insert(pos + 21, "$$$$");
  auto bad = parse(bad_data, dir_);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("client-key-data"), std::string::npos) << bad.error();
}

// Stock clients read what we write. Skipped where they are not installed.
TEST_F(KubeconfigTest, KubectlReadsIt) {
  const char* kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
  if (::access(kubectl, X_OK) != 0) GTEST_SKIP() << kubectl << " not installed";
  fs::path path = dir_ / "admin.kubeconfig";
  ASSERT_TRUE(write(path, admin_config()));
  fs::path out = dir_ / "out.txt";
  std::string cmd =
      std::string(kubectl) + " config view --raw --kubeconfig " + path.string() +
      " -o 'jsonpath={.clusters[0].cluster.server} {.users[0].user.client-key-data}'" + " > " +
      out.string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << *pki::read_file(out);
  EXPECT_EQ(*pki::read_file(out), "https://127.0.0.1:6443 " + base64_encode(key_pem_));
}

TEST_F(KubeconfigTest, PythonClientReadsIt) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  if (std::system("/usr/bin/python3 -c 'import kubernetes' > /dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-kubernetes not installed";
  }
  fs::path path = dir_ / "admin.kubeconfig";
  ASSERT_TRUE(write(path, admin_config()));
  fs::path out = dir_ / "out.txt";
  std::string script =
      "from kubernetes import client, config\n"
      "config.load_kube_config(config_file='" +
      path.string() +
      "')\n"
      "c = client.Configuration.get_default_copy()\n"
      "print(c.host, bool(open(c.cert_file).read()), bool(open(c.key_file).read()),"
      " open(c.ssl_ca_cert).read().startswith('-----BEGIN CERTIFICATE'))\n";
  ASSERT_TRUE(pki::write_file_atomic(dir_ / "check.py", script, 0600));
  std::string cmd =
      "/usr/bin/python3 " + (dir_ / "check.py").string() + " > " + out.string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << *pki::read_file(out);
  EXPECT_EQ(*pki::read_file(out), "https://127.0.0.1:6443 True True True\n");
}

}  // namespace
}  // namespace podwarp::kubeconfig
