#include "logs/cri_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "logs/log_pump.h"

namespace podwarp::noded::logs {
namespace {

namespace fs = std::filesystem;

struct TmpDir {
  std::string path;
  TmpDir() {
    char t[] = "/tmp/podwarp-logs-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(path); }
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(CriLog, FormatsAndParsesRecords) {
  auto t = std::chrono::system_clock::time_point(std::chrono::nanoseconds(1'700'000'000'123'450'000));
  EXPECT_EQ(format_rfc3339_nano(t), "2023-11-14T22:13:20.12345Z");
  CriRecord r{t, Stream::kStderr, true, "hello world"};
  auto line = format_cri_record(r);
  EXPECT_EQ(line, "2023-11-14T22:13:20.12345Z stderr P hello world\n");
  auto back = parse_cri_record(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(back->time, t);
  EXPECT_EQ(back->stream, Stream::kStderr);
  EXPECT_TRUE(back->partial);
  EXPECT_EQ(back->content, "hello world");
  EXPECT_FALSE(parse_cri_record("garbage"));
  EXPECT_FALSE(parse_cri_record("2023-11-14T22:13:20Z stdin F x"));
  EXPECT_FALSE(parse_cri_record("2023-11-14T22:13:20Z stdout X x"));
  auto empty = parse_cri_record("2023-11-14T22:13:20Z stdout F ");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->content, "");
}

TEST(CriLog, WriterSplitsLinesAndLongPartials) {
  TmpDir d;
  std::string p = container_log_path(d.path, "default", "web", "u1", "c", 0);
  EXPECT_EQ(p, d.path + "/default_web_u1/c/0.log");
  CriLogWriter w;
  ASSERT_TRUE(w.open(p, {}));
  w.write(Stream::kStdout, "one\ntw");
  w.write(Stream::kStderr, "err\n");
  w.write(Stream::kStdout, "o\n");
  std::string big(kMaxLineBytes + 10, 'x');
  w.write(Stream::kStdout, big + "\n");
  w.write(Stream::kStdout, "tail-without-newline");
  w.close();
  auto all = read_log_file(p, {});
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, "one\nerr\ntwo\n" + big + "\ntail-without-newline\n");
  std::string raw = slurp(p);
  EXPECT_NE(raw.find(" stdout P " + std::string(kMaxLineBytes, 'x') + "\n"), std::string::npos);
  EXPECT_NE(raw.find(" stdout F xxxxxxxxxx\n"), std::string::npos);
  ReadOptions tail;
  tail.tail_lines = 2;
  EXPECT_EQ(*read_log_file(p, tail), big + "\ntail-without-newline\n");
  tail.tail_lines = 1;
  tail.timestamps = true;
  auto t1 = *read_log_file(p, tail);
  EXPECT_TRUE(t1.ends_with("Z tail-without-newline\n")) << t1;
  ReadOptions since;
  since.since = std::chrono::system_clock::now() + std::chrono::hours(1);
  EXPECT_EQ(*read_log_file(p, since), "");
}

TEST(CriLog, RotatesBySizeAndKeepsMaxFiles) {
  TmpDir d;
  std::string p = d.path + "/c/0.log";
  CriLogWriter w;
  ASSERT_TRUE(w.open(p, {.max_size_bytes = 200, .max_files = 3}));
  for (int i = 0; i < 40; ++i) w.write(Stream::kStdout, fmt::format("line number {:04}\n", i));
  w.close();
  int rotated = 0;
  for (const auto& e : fs::directory_iterator(d.path + "/c"))
    if (e.path().filename().string().starts_with("0.log.")) ++rotated;
  EXPECT_EQ(rotated, 2);
  EXPECT_LE(fs::file_size(p), 200u);
  auto cur = *read_log_file(p, {});
  EXPECT_TRUE(cur.ends_with("line number 0039\n")) << cur;
}

TEST(CriLog, FollowerSeesAppendsAndRotation) {
  TmpDir d;
  std::string p = d.path + "/c/0.log";
  CriLogWriter w;
  ASSERT_TRUE(w.open(p, {.max_size_bytes = 250, .max_files = 5}));
  w.write(Stream::kStdout, "before\n");
  LogFollower f(p);
  f.seek_end();
  EXPECT_TRUE(f.poll().empty());
  w.write(Stream::kStdout, "a\n");
  auto r = f.poll();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].content, "a");
  for (int i = 0; i < 5; ++i) w.write(Stream::kStdout, fmt::format("line-{}\n", i));
  std::string got;
  for (auto& rec : f.poll()) got += rec.content + ",";
  EXPECT_EQ(got, "line-0,line-1,line-2,line-3,line-4,");
}

TEST(LogPump, PipeToFile) {
  TmpDir d;
  std::string p = d.path + "/c/0.log";
  auto w = std::make_shared<CriLogWriter>();
  ASSERT_TRUE(w->open(p, {}));
  auto out = make_pipe();
  auto err = make_pipe();
  ASSERT_TRUE(out && err);
  boost::asio::io_context io;
  boost::asio::co_spawn(io, pump(out->read_fd, w, Stream::kStdout), boost::asio::detached);
  boost::asio::co_spawn(io, pump(err->read_fd, w, Stream::kStderr), boost::asio::detached);
  ASSERT_EQ(::write(out->write_fd, "hello\npart", 10), 10);
  ASSERT_EQ(::write(err->write_fd, "oops\n", 5), 5);
  ::close(out->write_fd);
  ::close(err->write_fd);
  io.run();
  w->close();
  std::string raw = slurp(p);
  EXPECT_NE(raw.find(" stdout F hello\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find(" stdout F part\n"), std::string::npos) << raw;
  EXPECT_NE(raw.find(" stderr F oops\n"), std::string::npos) << raw;
}

}  // namespace
}  // namespace podwarp::noded::logs
