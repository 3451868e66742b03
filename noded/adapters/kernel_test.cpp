// Root tests of the adapters' kernel parts: loopback up in a pinned netns. Everything lives
// under /tmp/podwarp-adapters-<pid>-<test>, removed in TearDown.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "adapters/loopback.h"
#include "ns/pod_namespaces.h"

namespace podwarp::noded::adapters {
namespace {

namespace fs = std::filesystem;

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    name_ = "podwarp-adapters-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = "/tmp/" + name_;
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (pins_) (void)pins_->release();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  std::string name_, dir_;
  std::optional<ns::PodNamespaces> pins_;
};

// IFF_UP of "lo" as seen from inside the namespace pinned at path.
int lo_flags(const std::string& path) {
  int flags = -1;
  std::thread t([&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) return;
    ::close(fd);
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) flags = ifr.ifr_flags;
    ::close(s);
  });
  t.join();
  return flags;
}

TEST_F(KernelTest, LoopbackUpInPodNetns) {
  auto p = ns::PodNamespaces::create({dir_ + "/run", "pod1", "h"});
  ASSERT_TRUE(p) << p.error().message;
  pins_.emplace(std::move(*p));
  std::string net = pins_->path(ns::NsType::kNet);
  ASSERT_GE(lo_flags(net), 0);
  EXPECT_EQ(lo_flags(net) & IFF_UP, 0);  // a new netns starts with lo down
  auto r = bring_up_loopback(net);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(lo_flags(net) & IFF_UP, 0);
  EXPECT_TRUE(bring_up_loopback(net));  // idempotent
  auto bad = bring_up_loopback(dir_ + "/nope");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("open " + dir_ + "/nope: ENOENT"), std::string::npos)
      << bad.error().message;
}

}  // namespace
}  // namespace podwarp::noded::adapters
