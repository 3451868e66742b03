// Layer unpacking against hostile tars crafted here with libarchive's writer. Every test has a
// sentinel directory beside the layer directory and checks that nothing appeared in it.
#include "images/layer_unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "images/digest.h"

namespace podwarp::images {
namespace {

namespace fs = std::filesystem;

class TarBuilder {
 public:
  TarBuilder(const fs::path& path, int filter = ARCHIVE_FILTER_NONE) : a_(archive_write_new()) {
    archive_write_set_format_pax_restricted(a_);
    if (filter == ARCHIVE_FILTER_GZIP) archive_write_add_filter_gzip(a_);
    if (filter == ARCHIVE_FILTER_ZSTD) archive_write_add_filter_zstd(a_);
    EXPECT_EQ(archive_write_open_filename(a_, path.c_str()), ARCHIVE_OK);
  }
  ~TarBuilder() { close(); }

  TarBuilder& file(const std::string& path, const std::string& content, int mode = 0644,
                   std::function<void(archive_entry*)> tweak = nullptr) {
    archive_entry* e = entry(path, AE_IFREG, mode);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    if (tweak) tweak(e);
    write(e, content);
    return *this;
  }
  TarBuilder& dir(const std::string& path, int mode = 0755) {
    write(entry(path, AE_IFDIR, mode), "");
    return *this;
  }
  TarBuilder& symlink(const std::string& path, const std::string& target) {
    archive_entry* e = entry(path, AE_IFLNK, 0777);
    archive_entry_set_symlink(e, target.c_str());
    write(e, "");
    return *this;
  }
  TarBuilder& hardlink(const std::string& path, const std::string& target) {
    archive_entry* e = entry(path, AE_IFREG, 0644);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    write(e, "");
    return *this;
  }
  TarBuilder& device(const std::string& path, mode_t type, unsigned major, unsigned minor) {
    archive_entry* e = entry(path, type, 0666);
    archive_entry_set_rdevmajor(e, major);
    archive_entry_set_rdevminor(e, minor);
    write(e, "");
    return *this;
  }
  void close() {
    if (!a_) return;
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
  }

 private:
  archive_entry* entry(const std::string& path, mode_t type, int mode) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, static_cast<mode_t>(mode));
    archive_entry_set_mtime(e, 1000000, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    return e;
  }
  void write(archive_entry* e, const std::string& content) {
    EXPECT_EQ(archive_write_header(a_, e), ARCHIVE_OK) << archive_error_string(a_);
    if (!content.empty()) archive_write_data(a_, content.data(), content.size());
    archive_entry_free(e);
  }
  archive* a_;
};

class LayerUnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podwarp-unpack-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    layer_ = base_ / "layer";
    sentinel_ = base_ / "sentinel";
    fs::create_directories(layer_);
    fs::create_directories(sentinel_);
    {
      std::ofstream(sentinel_ / "secret") << "secret";
    }
    tar_ = base_ / "layer.tar";
  }
  void TearDown() override {
    EXPECT_EQ(sentinel_entries(), std::vector<std::string>{"secret"})
        << "something was written outside the layer";
    EXPECT_EQ(fs::hard_link_count(sentinel_ / "secret"), 1u);
    fs::remove_all(base_);
  }
  std::vector<std::string> sentinel_entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(sentinel_)) {
      out.push_back(fs::relative(e.path(), sentinel_).string());
    }
    return out;
  }
  Result<UnpackResult> unpack(bool overlay = true) {
    UnpackOptions o;
    o.overlay_whiteouts = overlay;
    o.label = "layer test";
    return unpack_layer(tar_, layer_, o);
  }
  static bool exists(const fs::path& p) {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0;
  }

  fs::path base_, layer_, sentinel_, tar_;
};

TEST_F(LayerUnpackTest, UnpacksFilesDirsLinksAndComputesDiffId) {
  for (int filter : {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD}) {
    SCOPED_TRACE(filter);
    fs::remove_all(layer_);
    fs::create_directories(layer_);
    auto build = [](const fs::path& p, int f) {
      TarBuilder t(p, f);
      t.dir("bin/").file("bin/tool", "#!/bin/sh\n", 0755).symlink("bin/sh", "tool");
      t.symlink("bin/abs", "/etc/passwd");  // stored, never followed
      t.hardlink("bin/tool2", "bin/tool");
      t.file("./etc/conf", "x=1\n", 0640).file("deep/a/b/c", "auto-created parents");
      t.file("setuid", "s", 04755);
    };
    build(tar_, filter);
    fs::path plain = base_ / "plain.tar";
    build(plain, ARCHIVE_FILTER_NONE);
    std::ifstream in(plain, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});

    auto r = unpack();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id, sha256_digest(bytes));
    EXPECT_EQ(r->entries, 8u);
    EXPECT_TRUE(fs::is_regular_file(layer_ / "bin/tool"));
    EXPECT_EQ(fs::status(layer_ / "bin/tool").permissions(), fs::perms(0755));
    EXPECT_EQ(fs::read_symlink(layer_ / "bin/sh"), "tool");
    EXPECT_EQ(fs::read_symlink(layer_ / "bin/abs"), "/etc/passwd");
    EXPECT_TRUE(fs::equivalent(layer_ / "bin/tool", layer_ / "bin/tool2"));
    EXPECT_EQ(fs::status(layer_ / "etc/conf").permissions(), fs::perms(0640));
    EXPECT_TRUE(fs::is_regular_file(layer_ / "deep/a/b/c"));
    struct stat st;
    ASSERT_EQ(::stat((layer_ / "setuid").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u);
    EXPECT_EQ(st.st_mtime, 1000000);
  }
}

TEST_F(LayerUnpackTest, RejectsDotDotPaths) {
  TarBuilder(tar_).file("ok", "1").file("../sentinel/pwned", "x");
  auto r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);
  EXPECT_EQ(r.error().message,
            "layer test: entry \"../sentinel/pwned\": path has a \"..\" component");
  TarBuilder(tar_).file("a/../../sentinel/pwned2", "x");
  EXPECT_FALSE(unpack());
}

TEST_F(LayerUnpackTest, AbsolutePathsStayInside) {
  const std::string abs = (sentinel_ / "pwned").string();
  TarBuilder(tar_).file(abs, "x").file("/etc/podwarp-test-abs", "y");
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(fs::is_regular_file(layer_ / abs.substr(1)));
  EXPECT_TRUE(fs::is_regular_file(layer_ / "etc/podwarp-test-abs"));
  EXPECT_FALSE(exists("/etc/podwarp-test-abs"));
}

TEST_F(LayerUnpackTest, NoWritesThroughAbsoluteSymlink) {
  TarBuilder(tar_).symlink("link", sentinel_.string()).file("link/pwned", "x");
  auto r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);
  EXPECT_NE(r.error().message.find("link/pwned"), std::string::npos) << r.error().message;
}

TEST_F(LayerUnpackTest, NoWritesThroughSymlinkToEtc) {
  const std::string name = fmt::format("podwarp-test-{}", ::getpid());
  TarBuilder(tar_).symlink("etc", "/etc").file("etc/" + name, "x");
  auto r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);
  EXPECT_FALSE(exists("/etc/" + name));
  if (exists("/etc/" + name)) fs::remove("/etc/" + name);
}

TEST_F(LayerUnpackTest, NoWritesThroughRelativeEscapingSymlink) {
  TarBuilder(tar_).dir("d").symlink("d/up", "../../sentinel").file("d/up/pwned", "x");
  auto r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);
  // A symlink chain: a -> b/.., b -> ../sentinel
  TarBuilder(tar_).symlink("b", "../sentinel").symlink("a", "b").file("a/pwned2", "x");
  EXPECT_FALSE(unpack());
}

TEST_F(LayerUnpackTest, FileReplacingASymlinkDoesNotFollowIt) {
  const fs::path secret = sentinel_ / "secret";
  TarBuilder(tar_).symlink("f", secret.string()).file("f", "overwritten?");
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(layer_ / "f")));
  std::ifstream in(secret);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "secret");
}

TEST_F(LayerUnpackTest, HardlinksOutsideAreRejected) {
  TarBuilder(tar_).hardlink("pw", "/etc/passwd");
  auto r = unpack();
  ASSERT_FALSE(r);  // "/etc/passwd" is the layer's own etc/passwd, which does not exist
  EXPECT_NE(r.error().message.find("target not in the layer"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(exists(layer_ / "pw"));

  TarBuilder(tar_).hardlink("s", "../sentinel/secret");
  r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);

  TarBuilder(tar_).symlink("l", sentinel_.string()).hardlink("s2", "l/secret");
  r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsafeLayer);
  // TearDown checks the sentinel's link count is still 1.
}

TEST_F(LayerUnpackTest, DeviceNodesAreSkippedWithAWarning) {
  TarBuilder(tar_)
      .device("dev/null", AE_IFCHR, 1, 3)
      .device("dev/sda", AE_IFBLK, 8, 0)
      .file("dev/ok", "fine");
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(exists(layer_ / "dev/null"));
  EXPECT_FALSE(exists(layer_ / "dev/sda"));
  EXPECT_TRUE(exists(layer_ / "dev/ok"));
  ASSERT_EQ(r->warnings.size(), 2u);
  EXPECT_NE(r->warnings[0].find("dev/null"), std::string::npos);
}

TEST_F(LayerUnpackTest, VeryLongPaths) {
  // 3000 bytes deep: fine. 6000 bytes (over PATH_MAX) and a 300-byte name: clear errors.
  std::string ok, too_long;
  for (int i = 0; i < 30; ++i) ok += std::string(99, 'a' + i % 26) + "/";
  for (int i = 0; i < 60; ++i) too_long += std::string(99, 'b') + "/";
  TarBuilder(tar_).file(ok + "f", "deep");
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(exists(layer_ / (ok + "f")));

  TarBuilder(tar_).file(too_long + "f", "deeper");
  r = unpack();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ENAMETOOLONG"), std::string::npos) << r.error().message;
  EXPECT_LT(r.error().message.size(), 600u);  // the path is shortened in the message

  TarBuilder(tar_).file(std::string(300, 'n'), "x");
  r = unpack();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("name longer than 255 bytes"), std::string::npos);
}

TEST_F(LayerUnpackTest, OverlayXattrsFromTheTarAreNotApplied) {
  TarBuilder(tar_).file("f", "x", 0644, [](archive_entry* e) {
    archive_entry_xattr_add_entry(e, "trusted.overlay.redirect", "/etc", 4);
    archive_entry_xattr_add_entry(e, "user.ok", "1", 1);
  });
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  char buf[16];
  EXPECT_LT(::lgetxattr((layer_ / "f").c_str(), "trusted.overlay.redirect", buf, sizeof buf), 0);
  // (pax archives may carry an xattr twice: LIBARCHIVE.xattr and SCHILY.xattr records)
  ASSERT_GE(r->warnings.size(), 1u);
  for (const auto& w : r->warnings) EXPECT_NE(w.find("trusted.overlay.redirect"), std::string::npos);
  EXPECT_EQ(::lgetxattr((layer_ / "f").c_str(), "user.ok", buf, sizeof buf), 1);
}

TEST_F(LayerUnpackTest, GarbageIsAClearError) {
  {
    std::ofstream(tar_) << "this is not a tar archive, not even close................";
  }
  auto r = unpack();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kBadContent);
}

TEST_F(LayerUnpackTest, WhiteoutsBecomeOverlayWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod 0:0 and trusted.* xattrs need root";
  TarBuilder(tar_)
      .dir("etc")
      .file("etc/.wh.motd", "")
      .dir("data")
      .file("data/.wh..wh..opq", "")
      .file("data/c.txt", "c");
  auto r = unpack();
  ASSERT_TRUE(r) << r.error().message;
  struct stat st;
  ASSERT_EQ(::lstat((layer_ / "etc/motd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(exists(layer_ / "etc/.wh.motd"));
  char v[4] = {};
  ASSERT_EQ(::lgetxattr((layer_ / "data").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(exists(layer_ / "data/.wh..wh..opq"));
  EXPECT_TRUE(exists(layer_ / "data/c.txt"));
}

TEST_F(LayerUnpackTest, WhiteoutsKeptAsFilesWhenNotTranslating) {
  TarBuilder(tar_).file("etc/.wh.motd", "");
  auto r = unpack(/*overlay=*/false);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(fs::is_regular_file(layer_ / "etc/.wh.motd"));
}

TEST_F(LayerUnpackTest, WhiteoutNamesAreValidated) {
  TarBuilder(tar_).file(".wh.", "");
  EXPECT_FALSE(unpack());
}

}  // namespace
}  // namespace podwarp::images
