#include "podwarp/quote.h"

#include <gtest/gtest.h>

namespace podwarp {
namespace {

TEST(GoQuote, MatchesStrconvQuote) {
  EXPECT_EQ(go_quote("abc"), R"("abc")");
  EXPECT_EQ(go_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(go_quote("tab\there\n"), R"("tab\there\n")");
  EXPECT_EQ(go_quote(std::string("\x01", 1)), R"("\x01")");
  EXPECT_EQ(go_quote("h\xc3\xa9llo"), "\"h\xc3\xa9llo\"");  // printable UTF-8 stays
  EXPECT_EQ(go_quote("\xff"), R"("\xff")");                  // invalid UTF-8 is escaped
}

TEST(Utf8Sequence, WellFormedSequencesOnly) {
  EXPECT_EQ(utf8_sequence("a", 0), 1u);
  EXPECT_EQ(utf8_sequence("caf\xc3\xa9", 3), 2u);
  EXPECT_EQ(utf8_sequence("\xf0\x9f\x98\x80", 0), 4u);
  EXPECT_EQ(utf8_sequence("\xff", 0), 0u);          // never a lead byte
  EXPECT_EQ(utf8_sequence("\xc0\xaf", 0), 0u);      // overlong
  EXPECT_EQ(utf8_sequence("\xed\xa0\x80", 0), 0u);  // a surrogate
  EXPECT_EQ(utf8_sequence("\xf4\x90\x80\x80", 0), 0u);  // past U+10FFFF
  EXPECT_EQ(utf8_sequence("\xe2\x82", 0), 0u);      // cut short
}

}  // namespace
}  // namespace podwarp
