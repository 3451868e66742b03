#include "net/ipam.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "net/names.h"

namespace podwarp::noded::net {
namespace {

namespace fs = std::filesystem;

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podwarp-ipam-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = std::string(tmpl) + "/ipam";
  }
  void TearDown() override { fs::remove_all(fs::path(dir_).parent_path()); }
  std::string dir_;
};

TEST(AddrTest, ParsesAndFormats) {
  auto c = parse_cidr4("10.244.1.0/24");
  ASSERT_TRUE(c);
  EXPECT_EQ(to_string(*c), "10.244.1.0/24");
  EXPECT_EQ(c->size(), 256u);
  EXPECT_TRUE(c->contains(*parse_ipv4("10.244.1.255")));
  EXPECT_FALSE(c->contains(*parse_ipv4("10.244.2.0")));
  EXPECT_FALSE(parse_cidr4("10.244.1.5/24"));  // host bits set
  EXPECT_FALSE(parse_cidr4("10.244.1.0/33"));
  EXPECT_FALSE(parse_cidr4("10.244.1.0"));
  EXPECT_FALSE(parse_cidr4("fd00::/64"));
  EXPECT_FALSE(parse_cidr4("10.244.1.0/2x"));
  EXPECT_FALSE(parse_ipv4("10.244.1"));
  EXPECT_EQ(to_string(*parse_ipv4("169.254.1.1")), "169.254.1.1");
  EXPECT_TRUE(parse_cidr4("0.0.0.0/0")->contains(*parse_ipv4("1.2.3.4")));
}

TEST_F(IpamTest, AllocatesSkippingReservedAndIsStablePerPod) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam) << ipam.error().message;
  EXPECT_FALSE(ipam->allocate("uid-a"));  // no podCIDR yet
  ipam->set_cidr(*parse_cidr4("10.244.1.0/24"));
  EXPECT_EQ(ipam->capacity(), 253u);
  auto a = ipam->allocate("uid-a");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(to_string(*a), "10.244.1.2");  // .0 network, .1 reserved for the node
  auto b = ipam->allocate("uid-b");
  ASSERT_TRUE(b);
  EXPECT_EQ(to_string(*b), "10.244.1.3");
  EXPECT_EQ(*ipam->allocate("uid-a"), *a);  // same pod: same address
  EXPECT_EQ(ipam->lookup("uid-b"), b);
  std::ifstream rec(dir_ + "/10.244.1.2");
  std::string uid;
  std::getline(rec, uid);
  EXPECT_EQ(uid, "uid-a");
  EXPECT_FALSE(ipam->allocate("bad/uid"));
  EXPECT_FALSE(ipam->allocate(""));
}

TEST_F(IpamTest, SurvivesRestartAndCleansInterruptedWrites) {
  {
    auto ipam = Ipam::open(dir_);
    ASSERT_TRUE(ipam);
    ipam->set_cidr(*parse_cidr4("10.244.1.0/24"));
    ASSERT_TRUE(ipam->allocate("uid-a"));
    ASSERT_TRUE(ipam->allocate("uid-b"));
  }
  std::ofstream(dir_ + "/.10.244.1.9.tmp") << "half";  // a crash mid-write
  std::ofstream(dir_ + "/README") << "not a record";
  auto again = Ipam::open(dir_);
  ASSERT_TRUE(again);
  EXPECT_FALSE(fs::exists(dir_ + "/.10.244.1.9.tmp"));
  EXPECT_EQ(again->allocations().size(), 2u);
  again->set_cidr(*parse_cidr4("10.244.1.0/24"));
  EXPECT_EQ(to_string(*again->allocate("uid-b")), "10.244.1.3");
  // A new pod never gets an address held by a recorded pod.
  auto c = again->allocate("uid-c");
  ASSERT_TRUE(c);
  EXPECT_NE(to_string(*c), "10.244.1.2");
  EXPECT_NE(to_string(*c), "10.244.1.3");
}

TEST_F(IpamTest, ExhaustionAndRelease) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam);
  ipam->set_cidr(*parse_cidr4("10.244.1.0/29"));  // 8 addresses: .2 .. .6 usable
  EXPECT_EQ(ipam->capacity(), 5u);
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto ip = ipam->allocate("uid-" + std::to_string(i));
    ASSERT_TRUE(ip) << ip.error().message;
    got.insert(to_string(*ip));
  }
  EXPECT_EQ(got, (std::set<std::string>{"10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5",
                                        "10.244.1.6"}));
  auto full = ipam->allocate("uid-5");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ENOSPC);
  EXPECT_NE(full.error().message.find("10.244.1.0/29"), std::string::npos);
  ASSERT_TRUE(ipam->release("uid-2"));
  EXPECT_FALSE(fs::exists(dir_ + "/10.244.1.4"));
  EXPECT_TRUE(ipam->release("uid-2"));  // idempotent
  auto reused = ipam->allocate("uid-5");
  ASSERT_TRUE(reused);
  EXPECT_EQ(to_string(*reused), "10.244.1.4");
  // Released addresses stay free across a restart too.
  ASSERT_TRUE(ipam->release("uid-0"));
  auto again = Ipam::open(dir_);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->allocations().size(), 4u);
  EXPECT_FALSE(again->lookup("uid-0"));
}

TEST_F(IpamTest, RoundRobinDelaysReuse) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam);
  ipam->set_cidr(*parse_cidr4("10.244.1.0/24"));
  auto a = ipam->allocate("a");
  ASSERT_TRUE(ipam->release("a"));
  auto b = ipam->allocate("b");
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
}

TEST_F(IpamTest, KeepsAddressesOutsideANewCidr) {
  auto ipam = Ipam::open(dir_);
  ASSERT_TRUE(ipam);
  ipam->set_cidr(*parse_cidr4("10.244.1.0/24"));
  auto a = ipam->allocate("a");
  ipam->set_cidr(*parse_cidr4("10.244.2.0/24"));
  EXPECT_EQ(*ipam->allocate("a"), *a);
  EXPECT_EQ(to_string(*ipam->allocate("b")), "10.244.2.2");
}

TEST(NamesTest, HostVethNames) {
  std::string n = host_veth_name("0d1e3c4a-5b6f-4a7b-8c9d-0e1f2a3b4c5d");
  EXPECT_EQ(n.size(), 13u);
  EXPECT_LE(n.size(), 15u);  // IFNAMSIZ - 1
  EXPECT_TRUE(n.starts_with("pw"));
  EXPECT_TRUE(is_host_veth_name(n));
  EXPECT_EQ(n, host_veth_name("0d1e3c4a-5b6f-4a7b-8c9d-0e1f2a3b4c5d"));  // deterministic
  // FNV-1a 64 of "" is cbf29ce484222325: the name is its first 11 hex digits (stable format).
  EXPECT_EQ(host_veth_name(""), "pwcbf29ce4842");
  std::set<std::string> names;
  for (int i = 0; i < 10000; ++i) names.insert(host_veth_name("uid-" + std::to_string(i)));
  EXPECT_EQ(names.size(), 10000u);
  EXPECT_FALSE(is_host_veth_name("pwXYZ"));
  EXPECT_FALSE(is_host_veth_name("eth0"));
  EXPECT_FALSE(is_host_veth_name("pwcbf29ce484g"));
}

}  // namespace
}  // namespace podwarp::noded::net
