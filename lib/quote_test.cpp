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

}  // namespace
}  // namespace podwarp
