#include "podwarp/netaddr.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace podwarp::netaddr {
namespace {

TEST(NetAddr, DefaultRouteInterface) {
  const char* table =
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "pw0123\t0700F40A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
      "ens3\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
      "ens4\t00000000\t0102A8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0\n";
  EXPECT_EQ(default_route_interface(table), "ens3");  // the first default route
  EXPECT_EQ(default_route_interface("Iface\tDestination\n"
                                    "lo\t0000007F\t00000000\n"),
            "");
  EXPECT_EQ(default_route_interface(""), "");
}

TEST(NetAddr, DefaultRouteIpv4IsAnAddressOrEmpty) {
  // Whatever this machine has: a dotted quad of the default route's interface, or nothing.
  const std::string ip = default_route_ipv4();
  if (ip.empty()) GTEST_SKIP() << "no IPv4 default route here";
  in_addr a{};
  EXPECT_EQ(::inet_pton(AF_INET, ip.c_str(), &a), 1) << ip;
}

}  // namespace
}  // namespace podwarp::netaddr
