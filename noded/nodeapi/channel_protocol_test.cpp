#include "nodeapi/channel_protocol.h"

#include <gtest/gtest.h>

#include "podwarp/json.h"

namespace podwarp::noded::nodeapi {
namespace {

TEST(ChannelProtocol, ChoosesTheClientsFirstSupportedProtocol) {
  std::vector<std::string_view> sup(std::begin(kExecProtocols), std::end(kExecProtocols));
  EXPECT_EQ(choose_protocol("v5.channel.k8s.io", sup), "v5.channel.k8s.io");
  EXPECT_EQ(choose_protocol("v4.channel.k8s.io, v5.channel.k8s.io", sup), "v4.channel.k8s.io");
  EXPECT_EQ(choose_protocol(" base64.channel.k8s.io ,channel.k8s.io", sup), "channel.k8s.io");
  EXPECT_EQ(choose_protocol("nope", sup), std::nullopt);
  EXPECT_EQ(exec_protocol_version("v5.channel.k8s.io"), 5);
  EXPECT_EQ(exec_protocol_version("channel.k8s.io"), 1);
  EXPECT_EQ(exec_protocol_version("x"), 0);
}

TEST(ChannelProtocol, FramesAndStatus) {
  EXPECT_EQ(channel_frame(1, "hi"), std::string("\x01hi", 3));
  EXPECT_EQ(channel_frame(0, ""), std::string(1, '\0'));
  EXPECT_EQ(status_success_json(), R"({"metadata":{},"status":"Success"})");
  auto v = parse_json(status_exit_code_json(3));
  ASSERT_TRUE(v);
  EXPECT_EQ(get_string(*v, {"status"}), "Failure");
  EXPECT_EQ(get_string(*v, {"reason"}), "NonZeroExitCode");
  const auto& causes = v->at("details").at("causes").as_array();
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(get_string(causes[0], {"reason"}), "ExitCode");
  EXPECT_EQ(get_string(causes[0], {"message"}), "3");
  EXPECT_EQ(get_string(*v, {"message"}), "command terminated with non-zero exit code: exit status 3");
  auto f = parse_json(status_failure_json("boom", "InternalError", 500));
  ASSERT_TRUE(f);
  EXPECT_EQ(get_string(*f, {"message"}), "boom");
  EXPECT_EQ(get_int(*f, {"code"}), 500);
}

TEST(ChannelProtocol, ResizeMessages) {
  auto r = parse_resize(R"({"Width":120,"Height":40})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->width, 120);
  EXPECT_EQ(r->height, 40);
  EXPECT_FALSE(parse_resize("{"));
  EXPECT_FALSE(parse_resize(R"({"Width":-1,"Height":2})"));
  EXPECT_FALSE(parse_resize(R"({"Width":"a"})"));
}

TEST(ChannelProtocol, PortsAndPrefix) {
  auto p = parse_ports({"80,8080", "53"});
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<std::uint16_t>{80, 8080, 53}));
  EXPECT_FALSE(parse_ports({"0"}));
  EXPECT_FALSE(parse_ports({"70000"}));
  EXPECT_FALSE(parse_ports({"8a"}));
  EXPECT_FALSE(parse_ports({""}));
  EXPECT_EQ(port_prefix(0x1f90), std::string("\x90\x1f", 2));  // 8080 little-endian
  EXPECT_TRUE(query_bool("1"));
  EXPECT_TRUE(query_bool("true"));
  EXPECT_FALSE(query_bool("0"));
  EXPECT_FALSE(query_bool("false"));
}

}  // namespace
}  // namespace podwarp::noded::nodeapi
