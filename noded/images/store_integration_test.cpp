// ImageStore against a real registry: /usr/bin/docker-registry on a free loopback port, filled
// by scripts/make-test-images.sh through skopeo. Pulls go through the real Beast transport.
// Needs root for whiteouts (mknod 0:0, trusted.* xattrs) and the overlay mount; skipped
// otherwise. The registry is started once per suite and killed by pid at the end (and by
// PR_SET_PDEATHSIG if this process dies).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "images/digest.h"
#include "images/image_store.h"
#include "images/test_support.h"

namespace podwarp::images {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace podwarp::images::testing;

struct Suite {
  fs::path dir;
  pid_t registry = -1;
  int port = 0;
  std::string host;
  std::map<std::string, std::string> digests;  // from digests.env
  std::string error;                           // set when the setup failed
};
Suite* suite = nullptr;

class StoreIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite = new Suite;
    if (::geteuid() != 0) return;
    char tmpl[] = "/tmp/podwarp-regtest-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      suite->error = "mkdtemp failed";
      return;
    }
    suite->dir = tmpl;
    suite->port = free_port();
    suite->host = fmt::format("127.0.0.1:{}", suite->port);
    fs::create_directories(suite->dir / "storage");
    {
      std::ofstream cfg(suite->dir / "registry.yml");
      cfg << "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
          << "storage:\n  filesystem:\n    rootdirectory: " << (suite->dir / "storage").string()
          << "\n  delete:\n    enabled: true\nhttp:\n  addr: " << suite->host << "\n";
    }
    const fs::path log = suite->dir / "registry.log";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string cfg = (suite->dir / "registry.yml").string();
      ::execl("/usr/bin/docker-registry", "docker-registry", "serve", cfg.c_str(), nullptr);
      ::_exit(127);
    }
    suite->registry = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!port_open(suite->port)) {
      if (std::chrono::steady_clock::now() > deadline || ::waitpid(pid, nullptr, WNOHANG) != 0) {
        suite->error = "docker-registry did not start: " + read_all(log);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const fs::path out = suite->dir / "images";
    fs::create_directories(out);
    int rc = run_command({"/bin/bash", std::string(PODWARP_SOURCE_DIR) + "/scripts/make-test-images.sh",
                          out.string(), "--push", suite->host},
                         suite->dir / "make-images.log");
    if (rc != 0) {
      suite->error = "make-test-images.sh failed: " + read_all(suite->dir / "make-images.log");
      return;
    }
    std::ifstream env(out / "digests.env");
    for (std::string line; std::getline(env, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos) suite->digests[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }

  static void TearDownTestSuite() {
    if (suite->registry > 0) {
      ::kill(suite->registry, SIGTERM);
      int status;
      for (int i = 0; i < 100 && ::waitpid(suite->registry, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      ::kill(suite->registry, SIGKILL);
      ::waitpid(suite->registry, &status, 0);
    }
    if (!suite->dir.empty()) fs::remove_all(suite->dir);
    delete suite;
    suite = nullptr;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (whiteouts, overlay mounts)";
    ASSERT_TRUE(suite->error.empty()) << suite->error;
    root_ = suite->dir / fmt::format("store-{}", counter_++);
    auto s = ImageStore::open(root_);
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  void TearDown() override {
    if (store_) {
      for (const auto& id : store_->prepared_containers()) EXPECT_TRUE(store_->release_rootfs(id));
    }
    store_.reset();
    if (!root_.empty()) fs::remove_all(root_);
  }

  template <class T>
  T run(asio::awaitable<T> aw) {
    std::optional<T> out;
    asio::co_spawn(ctx_, std::move(aw), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    ctx_.restart();
    ctx_.run();
    return std::move(*out);
  }

  Result<ImageRef> pull(const std::string& tag) {
    return run(store_->pull(fmt::format("{}/podwarp/busybox:{}", suite->host, tag)));
  }

  std::string d(const char* key) { return suite->digests.at(key); }
  fs::path layer_dir(const std::string& diff_id) {
    return store_->dir() / "layers" / std::string(digest_hex(diff_id));
  }
  std::size_t count(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {}));
  }

  static inline int counter_ = 0;
  asio::io_context ctx_;  // outlives store_ (its transport's sockets)
  fs::path root_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(StoreIntegrationTest, PullsVerifiesAndUnpacks) {
  auto img = pull("latest");
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->name, suite->host + "/podwarp/busybox:latest");
  EXPECT_EQ(img->id, d("CONFIG_LATEST"));
  EXPECT_EQ(img->manifest_digest, d("MANIFEST_LATEST"));
  EXPECT_EQ(img->diff_ids, std::vector<std::string>{d("DIFF_ID1")});
  for (const auto& blob : {d("CONFIG_LATEST"), d("MANIFEST_LATEST"), d("LAYER1")}) {
    const fs::path p = store_->dir() / "blobs/sha256" / std::string(digest_hex(blob));
    ASSERT_TRUE(fs::exists(p)) << blob;
    EXPECT_EQ(sha256_digest(read_all(p)), blob);
  }
  const fs::path busybox = layer_dir(d("DIFF_ID1")) / "bin/busybox";
  ASSERT_TRUE(fs::is_regular_file(busybox));
  EXPECT_EQ(fs::status(busybox).permissions() & fs::perms::owner_exec, fs::perms::owner_exec);
  EXPECT_EQ(fs::read_symlink(layer_dir(d("DIFF_ID1")) / "bin/sh"), "busybox");

  auto listed = store_->list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, img->id);
  auto cfg = store_->image_config(*img);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->cmd, std::vector<std::string>{"sh"});
  // By id (short and long) and by the normalized name.
  EXPECT_TRUE(store_->find(std::string(digest_hex(img->id)).substr(0, 12)));
  EXPECT_TRUE(store_->find(img->id));
  // Pulling again downloads nothing new and keeps one record.
  auto again = pull("latest");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(store_->list().size(), 1u);
}

TEST_F(StoreIntegrationTest, LayeredImageSharesLayersAndMountsWithWhiteouts) {
  ASSERT_TRUE(pull("latest"));
  auto img = pull("layered");
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->diff_ids, (std::vector<std::string>{d("DIFF_ID1"), d("DIFF_ID2")}));
  EXPECT_EQ(count(store_->dir() / "layers"), 2u);  // the base layer is stored once

  struct stat st;
  ASSERT_EQ(::lstat((layer_dir(d("DIFF_ID2")) / "etc/motd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[2] = {};
  EXPECT_EQ(::getxattr((layer_dir(d("DIFF_ID2")) / "data").c_str(), "trusted.overlay.opaque", v,
                       sizeof v),
            1);

  auto cfg = store_->image_config(img->name);
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_FALSE(store_->image_config("podwarp.test/none:1"));
  EXPECT_EQ(cfg->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(cfg->working_dir, "/data");
  EXPECT_EQ(cfg->user, "0:0");

  auto rootfs = store_->prepare_rootfs("ctr-1", *img);
  ASSERT_TRUE(rootfs) << rootfs.error().message;
  EXPECT_TRUE(fs::is_regular_file(*rootfs / "bin/busybox"));
  EXPECT_EQ(read_all(*rootfs / "etc/hello.txt"), "hello from layer 2\n");
  EXPECT_FALSE(fs::exists(*rootfs / "etc/motd"));  // whited out
  EXPECT_TRUE(fs::exists(*rootfs / "etc/passwd"));
  std::vector<std::string> data;
  for (const auto& e : fs::directory_iterator(*rootfs / "data")) {
    data.push_back(e.path().filename().string());
  }
  EXPECT_EQ(data, std::vector<std::string>{"c.txt"});  // opaque: a.txt, b.txt hidden
  // The image runs: busybox from the merged rootfs.
  const fs::path out = root_ / "chroot.out";
  EXPECT_EQ(run_command({"/usr/sbin/chroot", rootfs->string(), "/bin/cat", "/etc/hello.txt"}, out),
            0);
  EXPECT_EQ(read_all(out), "hello from layer 2\n");
  // Writes go to the container's upper dir, never to the shared layers.
  { std::ofstream(*rootfs / "etc/hello.txt") << "changed"; }
  EXPECT_EQ(read_all(layer_dir(d("DIFF_ID2")) / "etc/hello.txt"), "hello from layer 2\n");
  // Idempotent, and a second container gets its own upper dir.
  auto again = store_->prepare_rootfs("ctr-1", *img);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *rootfs);
  auto other = store_->prepare_rootfs("ctr-2", *img);
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_EQ(read_all(*other / "etc/hello.txt"), "hello from layer 2\n");

  // An image in use by a rootfs is neither removed nor collected.
  auto rm = store_->remove(img->name);
  ASSERT_FALSE(rm);
  EXPECT_EQ(rm.error().kind, ErrorKind::kInUse);

  ASSERT_TRUE(store_->release_rootfs("ctr-1"));
  ASSERT_TRUE(store_->release_rootfs("ctr-2"));
  EXPECT_FALSE(fs::exists(store_->dir() / "containers/ctr-1"));
  EXPECT_TRUE(store_->release_rootfs("ctr-1"));  // no-op
  EXPECT_FALSE(store_->prepare_rootfs("../x", *img));
}

TEST_F(StoreIntegrationTest, ConcurrentPullsOnOneLoop) {
  // Two pulls interleave on one thread; they share the base layer, which ends up stored once.
  std::optional<Result<ImageRef>> a, b;
  asio::co_spawn(ctx_, store_->pull(fmt::format("{}/podwarp/busybox:latest", suite->host)),
                 [&](std::exception_ptr, Result<ImageRef> r) { a = std::move(r); });
  asio::co_spawn(ctx_, store_->pull(fmt::format("{}/podwarp/busybox:layered", suite->host)),
                 [&](std::exception_ptr, Result<ImageRef> r) { b = std::move(r); });
  ctx_.restart();
  ctx_.run();
  ASSERT_TRUE(a && *a) << (a ? a->error().message : "not run");
  ASSERT_TRUE(b && *b) << (b ? b->error().message : "not run");
  EXPECT_EQ(count(store_->dir() / "layers"), 2u);
  EXPECT_EQ(count(store_->dir() / "tmp"), 0u);
  EXPECT_EQ(store_->list().size(), 2u);
}

TEST_F(StoreIntegrationTest, IndexSelectsAmd64) {
  auto img = pull("multi");
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->id, d("CONFIG_LATEST"));
  EXPECT_EQ(img->manifest_digest, d("MANIFEST_LATEST"));
  EXPECT_EQ(img->repo_digest, d("INDEX_MULTI"));
  EXPECT_TRUE(store_->find(fmt::format("{}/podwarp/busybox@{}", suite->host, d("INDEX_MULTI"))));
  PullOptions arm;
  arm.platform.architecture = "s390x";
  auto none = run(store_->pull(fmt::format("{}/podwarp/busybox:multi", suite->host), arm));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no image for platform linux/s390x"), std::string::npos)
      << none.error().message;
}

TEST_F(StoreIntegrationTest, DockerSchema2Manifest) {
  auto img = pull("v2s2");
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->diff_ids, std::vector<std::string>{d("DIFF_ID1")});
  EXPECT_EQ(img->layer_digests, std::vector<std::string>{d("LAYER1")});
  const std::string manifest =
      read_all(store_->dir() / "blobs/sha256" / std::string(digest_hex(img->manifest_digest)));
  EXPECT_NE(manifest.find("application/vnd.docker.distribution.manifest.v2+json"),
            std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(layer_dir(d("DIFF_ID1")) / "bin/busybox"));
}

TEST_F(StoreIntegrationTest, TamperedBlobIsRejected) {
  const std::string hex(digest_hex(d("LAYER1")));
  const fs::path data = suite->dir / "storage/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) /
                        hex / "data";
  ASSERT_TRUE(fs::exists(data));
  const std::string original = read_all(data);
  std::string corrupt = original;
  corrupt[corrupt.size() / 2] ^= 0x5a;
  { std::ofstream(data, std::ios::binary | std::ios::trunc) << corrupt; }
  auto img = pull("latest");
  { std::ofstream(data, std::ios::binary | std::ios::trunc) << original; }
  ASSERT_FALSE(img);
  EXPECT_EQ(img.error().kind, ErrorKind::kDigestMismatch);
  EXPECT_NE(img.error().message.find("blob " + d("LAYER1") + ": digest mismatch: got sha256:"),
            std::string::npos)
      << img.error().message;
  EXPECT_FALSE(fs::exists(store_->dir() / "blobs/sha256" / hex));
  EXPECT_EQ(count(store_->dir() / "layers"), 0u);
  EXPECT_TRUE(store_->list().empty());
  // With the registry's blob restored the pull succeeds.
  EXPECT_TRUE(pull("latest"));
}

TEST_F(StoreIntegrationTest, MissingImagesAndPolicies) {
  auto missing = pull("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  const std::string ref = fmt::format("{}/podwarp/busybox:layered", suite->host);
  auto never = run(store_->ensure_image(ref, PullPolicy::kNever));
  ASSERT_FALSE(never);
  EXPECT_EQ(never.error().kind, ErrorKind::kNeverPull);
  auto pulled = run(store_->ensure_image(ref, std::nullopt));  // default: IfNotPresent
  ASSERT_TRUE(pulled) << pulled.error().message;
  auto local = run(store_->ensure_image(ref, PullPolicy::kNever));
  ASSERT_TRUE(local);
  EXPECT_EQ(local->id, pulled->id);
  auto bad = run(store_->ensure_image("Busybox", std::nullopt));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidReference);
}

TEST_F(StoreIntegrationTest, GcKeepsInUseImagesAndSharedLayers) {
  auto latest = pull("latest");
  auto layered = pull("layered");
  ASSERT_TRUE(latest && layered);
  auto r = store_->gc({layered->name});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->removed_images, std::vector<std::string>{latest->name});
  EXPECT_EQ(r->removed_layers, 0u);  // the base layer is layered's too
  EXPECT_EQ(r->removed_blobs, 2u);   // latest's manifest and config
  EXPECT_EQ(count(store_->dir() / "layers"), 2u);
  EXPECT_FALSE(store_->find(latest->name));

  auto all = store_->gc({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->removed_layers, 2u);
  EXPECT_EQ(count(store_->dir() / "layers"), 0u);
  EXPECT_EQ(count(store_->dir() / "blobs/sha256"), 0u);
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(StoreIntegrationTest, ImportsOciAndDockerArchives) {
  const fs::path out = suite->dir / "images";
  auto oci = store_->import_archive(out / "busybox-oci.tar");
  ASSERT_FALSE(oci);  // ref.name annotations are bare tags
  EXPECT_NE(oci.error().message.find("--name"), std::string::npos);
  oci = store_->import_archive(out / "busybox-oci.tar", "podwarp.test/busybox");
  ASSERT_TRUE(oci) << oci.error().message;
  ASSERT_EQ(oci->size(), 4u);  // latest, httpd, layered, multi
  auto layered = store_->find("podwarp.test/busybox:layered");
  ASSERT_TRUE(layered);
  EXPECT_EQ(layered->id, d("CONFIG_LAYERED"));
  EXPECT_EQ(store_->find("podwarp.test/busybox:multi")->id, d("CONFIG_LATEST"));

  auto docker = store_->import_archive(out / "busybox-docker.tar");
  ASSERT_TRUE(docker) << docker.error().message;
  ASSERT_EQ(docker->size(), 1u);
  EXPECT_EQ((*docker)[0].name, "podwarp.test/busybox:layered");
  EXPECT_EQ((*docker)[0].id, d("CONFIG_LAYERED"));
  EXPECT_EQ((*docker)[0].diff_ids, (std::vector<std::string>{d("DIFF_ID1"), d("DIFF_ID2")}));
  // latest/layered/httpd share layer 1; the docker archive's diffIDs are known: nothing is
  // unpacked twice.
  EXPECT_EQ(count(store_->dir() / "layers"), 3u);
  auto rootfs = store_->prepare_rootfs("imported", (*docker)[0]);
  ASSERT_TRUE(rootfs) << rootfs.error().message;
  EXPECT_FALSE(fs::exists(*rootfs / "etc/motd"));
  EXPECT_TRUE(fs::exists(*rootfs / "bin/busybox"));
  ASSERT_TRUE(store_->release_rootfs("imported"));

  auto removed = store_->remove(d("CONFIG_LAYERED"));  // by id: every name of the image
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->size(), 1u);
  EXPECT_EQ(store_->list().size(), 3u);  // latest, httpd, multi remain
  EXPECT_FALSE(store_->remove("podwarp.test/none"));
  EXPECT_FALSE(store_->import_archive(out / "digests.env"));
}

}  // namespace
}  // namespace podwarp::images
