#include "podwarp/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace podwarp {
namespace {

TEST(GetInt, DoublesAreTruncatedAndSaturated) {
  // 1e300 in a request body (the scale subresource reads spec.replicas with get_int) must not
  // reach a double -> int64 conversion that overflows (undefined behavior).
  auto v = parse_json(
      R"({"a":1.9,"b":-1.9,"c":1e300,"d":-1e300,"e":9.3e18,"f":-9.3e18,"g":-9.2e18,)"
      R"("h":9223372036854775807,"i":"1","j":{"k":-3}})");
  ASSERT_TRUE(v) << v.error();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(get_int(*v, {"a"}), 1);
  EXPECT_EQ(get_int(*v, {"b"}), -1);
  EXPECT_EQ(get_int(*v, {"c"}), kMax);
  EXPECT_EQ(get_int(*v, {"d"}), kMin);
  EXPECT_EQ(get_int(*v, {"e"}), kMax);
  EXPECT_EQ(get_int(*v, {"f"}), kMin);
  EXPECT_EQ(get_int(*v, {"g"}), -9200000000000000000);
  EXPECT_EQ(get_int(*v, {"h"}), kMax);
  EXPECT_EQ(get_int(*v, {"i"}, 7), 7);
  EXPECT_EQ(get_int(*v, {"j", "k"}), -3);
  EXPECT_EQ(get_int(*v, {"missing"}, -1), -1);
}

TEST(ParseJson, NumbersBeyondADoubleAreAnError) {
  // Boost.JSON read 1e999 as an infinity and wrote it back as "Infinity" (not JSON): an object
  // with one in an unknown field was stored and could then no longer be read or deleted.
  const std::string long_digits = "[1" + std::string(400, '0') + "]";
  for (std::string_view text : {std::string_view(R"({"metadata":{"name":"x"},"extra":1e999})"),
                                std::string_view(R"([[-1e999]])"), std::string_view(long_digits)}) {
    auto v = parse_json(text);
    ASSERT_FALSE(v) << text;
    EXPECT_EQ(v.error(), "a number is out of the range of a float64");
  }
  auto ok = parse_json(R"({"a":1e308,"b":1e-999,"c":-0.0,"d":123456789012345678901234567890})");
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_TRUE(parse_json(to_json(*ok))) << to_json(*ok);
}

}  // namespace
}  // namespace podwarp
