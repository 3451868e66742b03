#include "nodeapi/spdy.h"

#include <gtest/gtest.h>
#include <zlib.h>

namespace podwarp::noded::nodeapi::spdy {
namespace {

TEST(Spdy, DictionaryIsTheDraft3One) {
  const auto& d = dictionary();
  EXPECT_EQ(d.size(), 1423u);
  EXPECT_EQ(d.substr(0, 11), std::string("\0\0\0\x07options", 11));
  EXPECT_TRUE(d.ends_with("utf-,*,enq=0."));
}

TEST(Spdy, FramesRoundTrip) {
  std::vector<Frame> frames = {data_frame(3, "hello"),
                               data_frame(5, "", true),
                               syn_stream_frame(1, "blk"),
                               syn_reply_frame(1, "blk2", true),
                               rst_stream_frame(3, kCancel),
                               ping_frame(7),
                               goaway_frame(9, 0),
                               window_update_frame(3, 65536),
                               settings_frame({{4, 100}, {7, 65536}})};
  std::string wire;
  for (const auto& f : frames) wire += serialize(f);
  // Parse back incrementally, also from a partial buffer.
  EXPECT_FALSE(*parse_frame(wire.substr(0, 7)));
  EXPECT_FALSE(*parse_frame(wire.substr(0, 12)));  // header of "hello" but not all of it
  std::vector<Frame> back;
  std::string_view rest = wire;
  while (!rest.empty()) {
    auto p = parse_frame(rest);
    ASSERT_TRUE(p) << p.error();
    ASSERT_TRUE(*p);
    back.push_back((*p)->first);
    rest.remove_prefix((*p)->second);
  }
  ASSERT_EQ(back.size(), frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(back[i], frames[i]) << i;
  // Wire layout of a data frame and a control frame.
  EXPECT_EQ(serialize(data_frame(3, "hi", true)), std::string("\0\0\0\x03\x01\0\0\x02hi", 10));
  EXPECT_EQ(serialize(ping_frame(1)), std::string("\x80\x03\0\x06\0\0\0\x04\0\0\0\x01", 12));
  auto syn = parse_syn_stream(back[2].payload);
  ASSERT_TRUE(syn);
  EXPECT_EQ(syn->stream_id, 1u);
  EXPECT_EQ(syn->header_block, "blk");
  // Another version is refused.
  std::string v2 = serialize(ping_frame(1));
  v2[1] = 2;
  EXPECT_FALSE(parse_frame(v2));
}

TEST(Spdy, HeaderBlocksShareOneZlibStreamPerDirection) {
  HeaderCompressor c;
  HeaderDecompressor d;
  Headers h1 = {{"streamType", "error"}, {"port", "8080"}, {"requestID", "0"}};
  Headers h2 = {{"streamtype", "data"}, {"port", "8080"}, {"requestid", "0"}};
  auto b1 = c.compress(h1);
  auto b2 = c.compress(h2);
  auto b3 = c.compress({});
  ASSERT_TRUE(b1 && b2 && b3);
  // The stream is primed with the dictionary: the first block says so in its zlib header.
  ASSERT_GE(b1->size(), 6u);
  EXPECT_EQ(static_cast<unsigned char>((*b1)[1]) & 0x20, 0x20);  // FDICT
  std::uint32_t dictid = get_u32(*b1, 2);
  EXPECT_EQ(dictid, adler32(1, reinterpret_cast<const Bytef*>(dictionary().data()),
                            static_cast<uInt>(dictionary().size())));
  auto r1 = d.decompress(*b1);
  ASSERT_TRUE(r1) << r1.error();
  EXPECT_EQ(header_value(*r1, "streamtype"), "error");
  EXPECT_EQ(header_value(*r1, "PORT"), "8080");
  EXPECT_EQ((*r1)[0].first, "streamtype");  // names go out lowercase
  auto r2 = d.decompress(*b2);
  ASSERT_TRUE(r2) << r2.error();
  EXPECT_EQ(*r2, h2);
  auto r3 = d.decompress(*b3);
  ASSERT_TRUE(r3);
  EXPECT_TRUE(r3->empty());
  // Raw encoding.
  EXPECT_EQ(encode_header_block({{"A", "b"}}), std::string("\0\0\0\x01\0\0\0\x01" "a\0\0\0\x01" "b", 14));
  EXPECT_FALSE(decode_header_block(std::string("\0\0\0\x02\0\0\0\x01" "a", 9)));
  // Garbage does not crash the decompressor.
  HeaderDecompressor bad;
  EXPECT_FALSE(bad.decompress("not zlib at all"));
}

}  // namespace
}  // namespace podwarp::noded::nodeapi::spdy
