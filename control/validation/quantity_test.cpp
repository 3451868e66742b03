// The shared podwarp::Quantity as validation reads and prints it, and validation's additions.
#include "validation/quantity.h"

#include <gtest/gtest.h>

namespace podwarp::validation {
namespace {

std::string canonical(std::string_view s) {
  auto q = Quantity::parse(s);
  return q ? q->to_string() : "error: " + q.error();
}

TEST(Quantity, CanonicalForms) {
  struct Case {
    std::string_view in, out;
  };
  for (auto [in, out] : {Case{"1", "1"},          Case{"1000m", "1"},
                         Case{"0.5", "500m"},     Case{"0.1", "100m"},
                         Case{"250m", "250m"},    Case{"2000", "2k"},
                         Case{"1500", "1500"},    Case{"1e3", "1e3"},
                         Case{"12e6", "12e6"},    Case{"1.5e3", "1500"},
                         Case{"1Gi", "1Gi"},      Case{"1024Mi", "1Gi"},
                         Case{"1.5Gi", "1536Mi"}, Case{"0.5Gi", "512Mi"},
                         Case{"500Mi", "500Mi"},  Case{"128974848", "128974848"},
                         Case{"129M", "129M"},    Case{"1k", "1k"},
                         Case{"0", "0"},          Case{"-1", "-1"},
                         Case{"+2", "2"},         Case{"0.0000000001", "1n"},
                         Case{"100Ki", "100Ki"},  Case{"512", "512"},
                         Case{"0.5Ki", "512"},    Case{"01", "1"},
                         Case{".5", "500m"}}) {
    EXPECT_EQ(canonical(in), out) << in;
  }
}

TEST(Quantity, Errors) {
  const std::string kFormat =
      "quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
  EXPECT_EQ(canonical(""), "error: " + kFormat);
  EXPECT_EQ(canonical("1.2.3"), "error: " + kFormat);
  EXPECT_EQ(canonical("abc"), "error: " + kFormat);
  EXPECT_EQ(canonical("1KB"), "error: " + kFormat);
  EXPECT_EQ(canonical("1K"), "error: unable to parse quantity's suffix");
  EXPECT_EQ(canonical("1e"), "error: unable to parse quantity's suffix");
}

TEST(Quantity, Compare) {
  auto q = [](std::string_view s) { return *Quantity::parse(s); };
  EXPECT_EQ(q("500m").compare(q("0.5")), 0);
  EXPECT_GT(q("1Gi").compare(q("1G")), 0);
  EXPECT_LT(q("100m").compare(q("1")), 0);
  EXPECT_LT(q("-1").compare(q("0")), 0);
  EXPECT_GT(q("1E").compare(q("1n")), 0);
  EXPECT_TRUE(is_multiple_of(q("2Mi"), q("1Mi")));
  EXPECT_FALSE(is_multiple_of(q("3Mi"), q("2Mi")));
  EXPECT_TRUE(is_integer(q("2")));
  EXPECT_FALSE(is_integer(q("1500m")));
  Quantity sum = q("100m");
  sum += q("900m");
  EXPECT_EQ(sum.compare(q("1")), 0);
}

TEST(Quantity, RoundUpToMilli) {
  auto q = round_up_to_milli(*Quantity::parse("1n"));
  EXPECT_EQ(q.to_string(), "1m");
  auto neg = round_up_to_milli(*Quantity::parse("-1500u"));
  EXPECT_EQ(neg.to_string(), "-2m");
}

TEST(Quantity, FromJsonNumbers) {
  EXPECT_EQ(Quantity::from_json(json::value(2))->to_string(), "2");
  EXPECT_EQ(Quantity::from_json(json::value(0.5))->to_string(), "500m");
  EXPECT_EQ(Quantity::from_json(json::value(" 1Gi "))->to_string(), "1Gi");
  EXPECT_FALSE(Quantity::from_json(json::value(true)));
}

TEST(Quantity, ValidationAdditions) {
  auto q = [](std::string_view s) { return *Quantity::parse(s); };
  // Null is not a quantity here, though the shared reader takes it for zero.
  EXPECT_EQ(quantity_from_json(json::value(nullptr)).error(), Quantity::parse("").error());
  EXPECT_EQ(quantity_from_json(json::value("2Gi"))->to_string(), "2Gi");
  // Exact at nano precision, for either sign.
  EXPECT_FALSE(is_integer(q("1.000000001")));
  EXPECT_FALSE(is_integer(q("-1500m")));
  EXPECT_TRUE(is_integer(q("-3k")));
  EXPECT_TRUE(is_multiple_of(q("1Gi"), q("2Mi")));
  EXPECT_TRUE(is_multiple_of(q("4500m"), q("1.5")));
  EXPECT_FALSE(is_multiple_of(q("2097151.5"), q("2Mi")));
  EXPECT_FALSE(is_multiple_of(q("2Mi"), q("0")));
  // Whole-milli values keep their value and format.
  EXPECT_EQ(round_up_to_milli(q("1Gi")).to_string(), "1Gi");
  EXPECT_EQ(round_up_to_milli(q("12e6")).to_string(), "12e6");
  EXPECT_EQ(round_up_to_milli(q("1.0000001Ki")).to_string(), "1024001m");
}

}  // namespace
}  // namespace podwarp::validation
