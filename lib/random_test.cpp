#include "podwarp/random.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <thread>
#include <vector>

namespace podwarp {
namespace {

TEST(Random, UuidsAreVersion4AndDistinct) {
  const std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {  // several refills of the buffer
    std::string u = random_uuid();
    ASSERT_TRUE(std::regex_match(u, v4)) << u;
    EXPECT_TRUE(seen.insert(u).second) << u;
  }
}

TEST(Random, StringsUseTheNameAlphabetEvenly) {
  constexpr std::string_view kAlphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::map<char, int> count;
  for (int i = 0; i < 2000; ++i) {
    std::string s = random_string(5);
    ASSERT_EQ(s.size(), 5u);
    ASSERT_EQ(s.find_first_not_of(kAlphabet), std::string::npos) << s;
    for (char c : s) ++count[c];
  }
  EXPECT_EQ(random_string(0), "");
  EXPECT_EQ(random_string(40).size(), 40u);
  // 10,000 draws over 27 characters: ~370 each. A modulo-biased draw (256 % 27 = 13 favoured
  // characters) would still pass this; a stuck or truncated one would not.
  ASSERT_EQ(count.size(), kAlphabet.size());
  for (auto [c, n] : count) {
    EXPECT_GT(n, 250) << c;
    EXPECT_LT(n, 500) << c;
  }
}

TEST(Random, ThreadsDrawDifferentBytes) {
  std::array<std::array<unsigned char, 64>, 4> got{};
  std::vector<std::thread> threads;
  for (auto& g : got) threads.emplace_back([&g] { random_bytes(g); });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < got.size(); ++i) {
    for (std::size_t j = i + 1; j < got.size(); ++j) EXPECT_NE(got[i], got[j]);
  }
}

TEST(Random, ForkedChildDoesNotRepeatTheParent) {
  std::array<unsigned char, 8> warm{};
  random_bytes(warm);  // the parent's buffer now holds unread bytes
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::array<unsigned char, 32> b{};
    random_bytes(b);
    _exit(write(fds[1], b.data(), b.size()) == static_cast<ssize_t>(b.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::array<unsigned char, 32> from_child{};
  ASSERT_EQ(read(fds[0], from_child.data(), from_child.size()),
            static_cast<ssize_t>(from_child.size()));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::array<unsigned char, 32> mine{};
  random_bytes(mine);
  EXPECT_NE(mine, from_child);
}

}  // namespace
}  // namespace podwarp
