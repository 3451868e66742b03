#include "pods/atomic_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace podwarp::noded::pods {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-atomic-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

std::string link_of(const std::string& p) {
  std::error_code ec;
  return fs::read_symlink(p, ec).string();
}

int mode_of(const std::string& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

TEST(AtomicWriter, LayoutSwapAndCleanup) {
  TmpDir t;
  std::string d = t.path + "/vol";
  auto w = write_atomic(d, {{"a", {"1", 0644}}, {"sub/b.txt", {"2", 0400}}});
  ASSERT_TRUE(w) << w.error();
  EXPECT_TRUE(*w);
  std::string ts1 = link_of(d + "/..data");
  EXPECT_TRUE(ts1.starts_with("..2")) << ts1;  // ..YYYY_MM_DD_HH_MM_SS.N
  EXPECT_EQ(link_of(d + "/a"), "..data/a");
  EXPECT_EQ(link_of(d + "/sub"), "..data/sub");
  EXPECT_EQ(slurp(d + "/a"), "1");
  EXPECT_EQ(slurp(d + "/sub/b.txt"), "2");
  EXPECT_EQ(mode_of(d + "/sub/b.txt"), 0400);
  EXPECT_EQ(mode_of(d + "/a"), 0644);
  EXPECT_FALSE(fs::exists(d + "/..data_tmp"));

  // Same payload: nothing written, same publication.
  w = write_atomic(d, {{"a", {"1", 0644}}, {"sub/b.txt", {"2", 0400}}});
  ASSERT_TRUE(w);
  EXPECT_FALSE(*w);
  EXPECT_EQ(link_of(d + "/..data"), ts1);

  // A mode change alone is a change.
  w = write_atomic(d, {{"a", {"1", 0600}}, {"sub/b.txt", {"2", 0400}}});
  ASSERT_TRUE(w);
  EXPECT_TRUE(*w);
  EXPECT_EQ(mode_of(d + "/a"), 0600);

  // New content, a name gone, a name added: swapped, old dir and old link removed.
  std::string ts2 = link_of(d + "/..data");
  w = write_atomic(d, {{"a", {"updated", 0644}}, {"c", {"3", 0644}}});
  ASSERT_TRUE(w);
  EXPECT_TRUE(*w);
  std::string ts3 = link_of(d + "/..data");
  EXPECT_NE(ts3, ts2);
  EXPECT_FALSE(fs::exists(d + "/" + ts2));
  EXPECT_FALSE(fs::exists(fs::symlink_status(d + "/sub")));
  EXPECT_EQ(slurp(d + "/a"), "updated");
  EXPECT_EQ(slurp(d + "/c"), "3");
  auto pub = read_published(d);
  EXPECT_EQ(pub.size(), 2u);
  EXPECT_EQ(pub["a"].data, "updated");
  // Entries in the dir: ..data, the ts dir, a, c.
  int n = 0;
  for (auto& e : fs::directory_iterator(d)) (void)e, ++n;
  EXPECT_EQ(n, 4);
}

TEST(AtomicWriter, OpenFileKeepsOldContentAfterSwap) {
  TmpDir t;
  std::string d = t.path + "/vol";
  ASSERT_TRUE(write_atomic(d, {{"k", {"old", 0644}}}));
  std::ifstream held(d + "/k");  // a reader that opened before the update
  ASSERT_TRUE(write_atomic(d, {{"k", {"new", 0644}}}));
  std::string s((std::istreambuf_iterator<char>(held)), {});
  EXPECT_EQ(s, "old");
  EXPECT_EQ(slurp(d + "/k"), "new");
}

TEST(AtomicWriter, RejectsBadPathsAndReplacesPlainFiles) {
  TmpDir t;
  std::string d = t.path + "/vol";
  for (const char* p : {"/abs", "../x", "a/../b", "..hidden", "a//b", ""}) {
    auto w = write_atomic(d, {{p, {"x", 0644}}});
    EXPECT_FALSE(w) << p;
  }
  fs::create_directories(d);
  std::ofstream(d + "/k") << "plain";  // an older layout wrote plain files
  ASSERT_TRUE(write_atomic(d, {{"k", {"v", 0644}}}));
  EXPECT_EQ(link_of(d + "/k"), "..data/k");
  EXPECT_EQ(slurp(d + "/k"), "v");
  // Empty payload (optional source absent) publishes an empty dir.
  auto w = write_atomic(d, {});
  ASSERT_TRUE(w);
  EXPECT_FALSE(fs::exists(fs::symlink_status(d + "/k")));
  EXPECT_TRUE(fs::is_directory(d + "/..data"));
}

}  // namespace
}  // namespace podwarp::noded::pods
