#include "podwarp/quantity.h"

#include <gtest/gtest.h>

#include <string>

namespace podwarp {
namespace {

using F = Quantity::Format;

constexpr std::string_view kFormatErr =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr std::string_view kSuffixErr = "unable to parse quantity's suffix";

Quantity q(std::string_view s) {
  auto r = Quantity::parse(s);
  EXPECT_TRUE(r.has_value()) << s << ": " << r.error();
  return r.value_or(Quantity());
}

struct ParseCase {
  std::string_view in;
  std::string_view canonical;
  F format;
};

// Inputs and canonical forms from upstream's TestQuantityParse / TestQuantityParseEmit.
TEST(QuantityTest, ParseAndCanonicalize) {
  const ParseCase cases[] = {
      {"0", "0", F::kDecimalSI},
      {"0n", "0", F::kDecimalSI},
      {"0m", "0", F::kDecimalSI},
      {"0Ki", "0", F::kBinarySI},
      {"0T", "0", F::kDecimalSI},
      {"1", "1", F::kDecimalSI},
      {"1Ki", "1Ki", F::kBinarySI},
      {"8Ki", "8Ki", F::kBinarySI},
      {"7Mi", "7Mi", F::kBinarySI},
      {"6Gi", "6Gi", F::kBinarySI},
      {"5Ti", "5Ti", F::kBinarySI},
      {"4Pi", "4Pi", F::kBinarySI},
      {"3Ei", "3Ei", F::kBinarySI},
      {"100Ti", "100Ti", F::kBinarySI},
      {"5n", "5n", F::kDecimalSI},
      {"4u", "4u", F::kDecimalSI},
      {"3m", "3m", F::kDecimalSI},
      {"100m", "100m", F::kDecimalSI},
      {"8k", "8k", F::kDecimalSI},
      {"50k", "50k", F::kDecimalSI},
      {"7M", "7M", F::kDecimalSI},
      {"6G", "6G", F::kDecimalSI},
      {"40T", "40T", F::kDecimalSI},
      {"300T", "300T", F::kDecimalSI},
      {"2P", "2P", F::kDecimalSI},
      {"1E", "1E", F::kDecimalSI},
      {"12E", "12E", F::kDecimalSI},
      {"1E-3", "1e-3", F::kDecimalExponent},
      {"1e3", "1e3", F::kDecimalExponent},
      {"1E6", "1e6", F::kDecimalExponent},
      {"1E12", "1e12", F::kDecimalExponent},
      {"1e14", "100e12", F::kDecimalExponent},
      {"1E18", "1e18", F::kDecimalExponent},
      {"100.035k", "100035", F::kDecimalSI},
      {"0.001", "1m", F::kDecimalSI},
      {"0.0005k", "500m", F::kDecimalSI},
      {"0.5", "500m", F::kDecimalSI},
      {"0.50000", "500m", F::kDecimalSI},
      {"0.5e0", "500e-3", F::kDecimalExponent},
      {"0.5e-1", "50e-3", F::kDecimalExponent},
      {"0.5e-2", "5e-3", F::kDecimalExponent},
      {"10.035M", "10035k", F::kDecimalSI},
      {"1.2e3", "1200", F::kDecimalExponent},
      {"1.3E+6", "1300e3", F::kDecimalExponent},
      {"1.40e9", "1400e6", F::kDecimalExponent},
      {"1.7E18", "1700e15", F::kDecimalExponent},
      {"9.01", "9010m", F::kDecimalSI},
      {"8.1k", "8100", F::kDecimalSI},
      {"7.123456M", "7123456", F::kDecimalSI},
      {"6.987654321G", "6987654321", F::kDecimalSI},
      {"5.444T", "5444G", F::kDecimalSI},
      {"40.1T", "40100G", F::kDecimalSI},
      {"2.5P", "2500T", F::kDecimalSI},
      {"1.01E", "1010P", F::kDecimalSI},
      {"1.5", "1500m", F::kDecimalSI},
      {"1500m", "1500m", F::kDecimalSI},
      {"1000k", "1M", F::kDecimalSI},
      {"1000M", "1G", F::kDecimalSI},
      {"1024Mi", "1Gi", F::kBinarySI},
      {"1.5Gi", "1536Mi", F::kBinarySI},
      {"1.5Ki", "1536", F::kBinarySI},
      {"1025Ki", "1025Ki", F::kBinarySI},
      {"0.5Mi", "512Ki", F::kBinarySI},
      {"100.035Ki", "102435840m", F::kBinarySI},
      {"0.05Gi", "53687091200m", F::kBinarySI},
      {"0.025Ti", "27487790694400m", F::kBinarySI},
      {".001Ki", "1024m", F::kBinarySI},
      {".000001Ki", "1024u", F::kDecimalSI},
      {".000000001Ki", "1024n", F::kDecimalSI},
      // Rounding up to the nano scale.
      {"3.001n", "4n", F::kDecimalSI},
      {"1.1E-9", "2e-9", F::kDecimalExponent},
      {"0.0000000001", "1n", F::kDecimalSI},
      {"0.0000000005", "1n", F::kDecimalSI},
      {"0.5e-9", "1e-9", F::kDecimalExponent},
      {"0.9n", "1n", F::kDecimalSI},
      {"0.00000012345", "124n", F::kDecimalSI},
      {".000000000001Ki", "2n", F::kDecimalSI},
      // Caps.
      {"9Ei", "9223372036854775807", F::kBinarySI},
      {"9223372036854775807Ki", "9223372036854775807", F::kBinarySI},
      // Things written by trolls.
      {".001", "1m", F::kDecimalSI},
      {".0001k", "100m", F::kDecimalSI},
      {"1.", "1", F::kDecimalSI},
      {"1.G", "1G", F::kDecimalSI},
      {".", "0", F::kDecimalSI},
      {"-", "0", F::kDecimalSI},
      {"+1", "1", F::kDecimalSI},
      {"0001", "1", F::kDecimalSI},
      // Signs.
      {"-1Ki", "-1Ki", F::kBinarySI},
      {"-100m", "-100m", F::kDecimalSI},
      {"-1.5Gi", "-1536Mi", F::kBinarySI},
      {"-9.01", "-9010m", F::kDecimalSI},
      {"+1.5", "1500m", F::kDecimalSI},
  };
  for (const auto& c : cases) {
    auto r = Quantity::parse(c.in);
    ASSERT_TRUE(r.has_value()) << c.in << ": " << r.error();
    EXPECT_EQ(r->to_string(), c.canonical) << c.in;
    EXPECT_EQ(r->format(), c.format) << c.in;
    // The canonical form parses back to the same value and prints the same.
    auto back = Quantity::parse(c.canonical);
    ASSERT_TRUE(back.has_value()) << c.canonical;
    EXPECT_EQ(*back, *r) << c.in;
    EXPECT_EQ(back->to_string(), c.canonical) << c.in;
  }
}

TEST(QuantityTest, RejectsInvalidInputWithUpstreamMessages) {
  struct Case {
    std::string_view in;
    std::string_view error;
  };
  const Case cases[] = {
      {"", kFormatErr},
      {"1.1.M", kFormatErr},
      {"1+1.0M", kFormatErr},
      {"0.1mi", kSuffixErr},
      {"0.1am", kFormatErr},
      {"aoeu", kFormatErr},
      {".5i", kSuffixErr},
      {"1i", kSuffixErr},
      {"-3.01i", kSuffixErr},
      {"-3.01e-", kSuffixErr},
      {"1e4294967297", kSuffixErr},
      {"1E2147483648", kSuffixErr},
      {"1E-2147483648", kSuffixErr},
      {" 1", kFormatErr},
      {"1 ", kFormatErr},
      {"Non-Numeric", kFormatErr},
      {"1K", kSuffixErr},
      {"1e", kSuffixErr},
      {"1Ki3", kSuffixErr},
      {"1Gi ", kFormatErr},
      {std::string_view("1\0", 2), kFormatErr},
      {"1,5", kFormatErr},
      {"0x10", kFormatErr},
  };
  for (const auto& c : cases) {
    auto r = Quantity::parse(c.in);
    ASSERT_FALSE(r.has_value()) << c.in << " parsed as " << r->to_string();
    EXPECT_EQ(r.error(), c.error) << c.in;
  }
}

TEST(QuantityTest, HostileInputNeverOverflows) {
  // Huge digit strings and exponents are capped or rounded, never wrapped.
  const std::string many_digits(100000, '9');
  EXPECT_EQ(q(many_digits).to_string(), "1e27");  // the decimal cap; no SI suffix past E
  EXPECT_EQ(q(many_digits + "Ei").to_string(), "9223372036854775807");
  EXPECT_EQ(q("1e2147483647").to_string(), "1e27");
  EXPECT_EQ(q("1e-2147483647").to_string(), "1e-9");
  EXPECT_EQ(q("-1e-2147483647").to_string(), "-1e-9");
  EXPECT_EQ(q("0e2147483647").to_string(), "0");
  const std::string tiny = "0." + std::string(100000, '0') + "1Ei";
  EXPECT_EQ(q(tiny).to_string(), "1n");
  const std::string long_fraction = "1." + std::string(5000, '3') + "Ki";
  EXPECT_EQ(q(long_fraction).to_string(), "1365333333334n");
  EXPECT_EQ(q("1." + std::string(5000, '0')).to_string(), "1");
}

TEST(QuantityTest, ValuesRoundUpAwayFromZero) {
  struct Case {
    std::string_view in;
    std::int64_t value;
    std::int64_t milli;
  };
  const Case cases[] = {
      {"0", 0, 0},
      {"100m", 1, 100},
      {"1", 1, 1000},
      {"1.5", 2, 1500},
      {"1n", 1, 1},
      {"-100m", -1, -100},
      {"-9.01", -10, -9010},
      {"1Gi", 1073741824, 1073741824000},
      {"128974848", 128974848, 128974848000},
      {"9Ei", INT64_MAX, INT64_MAX},
      {"12E", INT64_MAX, INT64_MAX},
      {"-12E", INT64_MIN, INT64_MIN},
  };
  for (const auto& c : cases) {
    const Quantity v = q(c.in);
    EXPECT_EQ(v.value(), c.value) << c.in;
    EXPECT_EQ(v.milli_value(), c.milli) << c.in;
  }
  // upstream TestQuantityRoundUp
  EXPECT_EQ(q("9.01").scaled_value(-3), 9010);
  EXPECT_EQ(q("9.01").scaled_value(-2), 901);
  EXPECT_EQ(q("9.01").scaled_value(-1), 91);
  EXPECT_EQ(q("9.01").scaled_value(1), 1);
  EXPECT_EQ(q("-9.01").scaled_value(-1), -91);
  EXPECT_EQ(q("-9.01").scaled_value(2), -1);
  EXPECT_EQ(q("1").scaled_value(-9), 1000000000);
  EXPECT_EQ(q("1").scaled_value(-30), INT64_MAX);
  EXPECT_EQ(q("1n").scaled_value(50), 1);
  EXPECT_DOUBLE_EQ(q("1.5").as_approximate_double(), 1.5);
  EXPECT_DOUBLE_EQ(q("-512Mi").as_approximate_double(), -536870912.0);
}

TEST(QuantityTest, CompareIgnoresFormat) {
  struct Case {
    std::string_view a, b;
    int cmp;
  };
  const Case cases[] = {
      {"0", "0", 0},      {"100m", "50m", 1},  {"50m", "100m", -1}, {"10000T", "100Gi", 1},
      {"100m", "0.1", 0}, {"1.5", "1500m", 0}, {"1Ki", "1024", 0},  {"1Gi", "1G", 1},
      {"1e3", "1k", 0},   {"-1", "0", -1},     {"0Ki", "0m", 0},    {"1n", "0", 1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(q(c.a).compare(q(c.b)), c.cmp) << c.a << " vs " << c.b;
    EXPECT_EQ(q(c.b).compare(q(c.a)), -c.cmp) << c.b << " vs " << c.a;
    EXPECT_EQ(q(c.a) == q(c.b), c.cmp == 0);
    EXPECT_EQ(q(c.a) < q(c.b), c.cmp < 0);
  }
}

TEST(QuantityTest, ArithmeticKeepsFormats) {
  struct Case {
    std::string_view a, b;
    std::string_view sum, diff;
  };
  const Case cases[] = {
      {"100m", "0", "100m", "100m"},       {"0", "100m", "100m", "-100m"},
      {"1Gi", "0", "1Gi", "1Gi"},          {"0", "1Gi", "1Gi", "-1Gi"},
      {"1Gi", "512Mi", "1536Mi", "512Mi"}, {"1", "500m", "1500m", "500m"},
      {"1Ki", "1", "1025", "1023"},        {"100m", "100m", "200m", "0"},
      {"1e3", "1k", "2e3", "0"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ((q(c.a) + q(c.b)).to_string(), c.sum) << c.a << " + " << c.b;
    EXPECT_EQ((q(c.a) - q(c.b)).to_string(), c.diff) << c.a << " - " << c.b;
  }
  Quantity total;
  for (std::string_view s : {"250m", "250m", "500m"}) total += q(s);
  EXPECT_EQ(total.to_string(), "1");
  EXPECT_EQ((-q("1Gi")).to_string(), "-1Gi");
  EXPECT_EQ(Quantity::from_int(3).to_string(), "3");
  EXPECT_EQ(Quantity::from_int(2048, F::kBinarySI).to_string(), "2Ki");
  EXPECT_EQ(Quantity::from_milli(1500).to_string(), "1500m");
  EXPECT_EQ(Quantity::from_milli(500, F::kBinarySI).to_string(), "500m");
}

TEST(QuantityTest, OverflowSaturatesAndIsReported) {
  const Quantity big = q("1e27");  // the decimal cap, 10^36 nanos
  Quantity acc = big;
  bool overflowed = false;
  for (int i = 0; i < 200; ++i) {
    auto next = acc.checked_add(big);
    if (!next) {
      EXPECT_EQ(next.error(), "quantity overflow");
      overflowed = true;
      break;
    }
    acc = *next;
  }
  EXPECT_TRUE(overflowed);
  Quantity sat = big;
  for (int i = 0; i < 200; ++i) sat += big;
  EXPECT_GT(sat, acc);
  EXPECT_EQ(sat.value(), INT64_MAX);
  Quantity neg = -big;
  for (int i = 0; i < 200; ++i) neg -= big;
  EXPECT_EQ(neg.value(), INT64_MIN);
  EXPECT_FALSE(neg.checked_sub(big).has_value());
  EXPECT_FALSE(neg.to_string().empty());
}

TEST(QuantityTest, FromJson) {
  struct Case {
    std::string_view json_text;
    std::string_view canonical;  // empty: error expected
  };
  const Case cases[] = {
      {R"("100m")", "100m"},
      {R"(" 64Mi ")", "64Mi"},
      {"1", "1"},
      {"0.5", "500m"},
      {"null", "0"},
      {"18446744073709551615", "18446744073709551615"},
      {"true", ""},
      {"{}", ""},
      {R"("")", ""},
      {R"("1x")", ""},
  };
  for (const auto& c : cases) {
    auto v = parse_json(c.json_text);
    ASSERT_TRUE(v.has_value()) << c.json_text;
    auto r = Quantity::from_json(*v);
    if (c.canonical.empty()) {
      EXPECT_FALSE(r.has_value()) << c.json_text;
    } else {
      ASSERT_TRUE(r.has_value()) << c.json_text << ": " << r.error();
      EXPECT_EQ(r->to_string(), c.canonical) << c.json_text;
    }
  }
  EXPECT_EQ(q("1.5Gi").to_json(), json::value("1536Mi"));
}

}  // namespace
}  // namespace podwarp
