#include "images/digest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace podwarp::images {
namespace {

namespace fs = std::filesystem;

class VerifyingWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podwarp-digest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::size_t files() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  fs::path dir_;
};

TEST_F(VerifyingWriterTest, CommitsMatchingContent) {
  const std::string data = "hello, blob";
  auto w = VerifyingWriter::create(dir_ / "blob", sha256_digest(data), data.size());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write(data.substr(0, 5)));
  ASSERT_TRUE(w->write(data.substr(5)));
  ASSERT_TRUE(w->commit());
  std::ifstream in(dir_ / "blob");
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, data);
  EXPECT_EQ(files(), 1u);
}

TEST_F(VerifyingWriterTest, RejectsAndDeletesOnMismatch) {
  const std::string expected = sha256_digest("the real content");
  auto w = VerifyingWriter::create(dir_ / "blob", expected);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("tampered content"));
  auto r = w->commit();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kDigestMismatch);
  EXPECT_NE(r.error().message.find("blob " + expected + ": digest mismatch: got " +
                                   sha256_digest("tampered content")),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(files(), 0u);  // neither the blob nor its temporary file
}

TEST_F(VerifyingWriterTest, RejectsOversizedStreamsEarly) {
  auto w = VerifyingWriter::create(dir_ / "blob", sha256_digest("1234"), 4);
  ASSERT_TRUE(w);
  auto r = w->write("12345");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kDigestMismatch);
  EXPECT_FALSE(w->commit());
  EXPECT_EQ(files(), 0u);
}

TEST_F(VerifyingWriterTest, AbandonedWriterLeavesNothing) {
  {
    auto w = VerifyingWriter::create(dir_ / "blob", sha256_digest("x"));
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write("x"));
  }
  EXPECT_EQ(files(), 0u);
}

TEST_F(VerifyingWriterTest, ShortContentFailsTheSizeCheck) {
  auto w = VerifyingWriter::create(dir_ / "blob", sha256_digest("12"), 3);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("12"));
  auto r = w->commit();
  ASSERT_FALSE(r);
  EXPECT_EQ(files(), 0u);
}

}  // namespace
}  // namespace podwarp::images
