// SPDY/3.1 framing and header compression, as kubectl's port-forward speaks it (moby
// spdystream over a raw `Upgrade: SPDY/3.1` connection or tunnelled in WebSocket binary
// messages). Pure: bytes in, frames out, no I/O. Written from the SPDY Protocol Draft 3(.1).
//
// Wire format (all integers big-endian):
//   control frame  |1| version(15)=3 | type(16) |  flags(8) | length(24) |  payload
//   data frame     |0| stream-id(31)            |  flags(8) | length(24) |  data
// Control payloads used here:
//   SYN_STREAM(1)   stream-id(31) assoc-stream-id(31) pri(3)+unused(5) slot(8) header-block
//   SYN_REPLY(2)    stream-id(31) header-block
//   RST_STREAM(3)   stream-id(31) status(32)
//   SETTINGS(4)     count(32) {flags(8) id(24) value(32)}*
//   PING(6)         id(32)
//   GOAWAY(7)       last-good-stream-id(31) status(32)
//   HEADERS(8)      stream-id(31) header-block
//   WINDOW_UPDATE(9) stream-id(31) delta(31)
// A header block is count(32) {name-len(32) name value-len(32) value}*, names lowercase, several
// values of one name joined by NUL. Each direction of a connection compresses all its header
// blocks with ONE zlib stream primed with the SPDY/3 dictionary, ending each block with
// Z_SYNC_FLUSH: blocks must be compressed and decompressed in wire order, every one of them.
//
// Threading: HeaderCompressor/HeaderDecompressor are single-owner objects.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podwarp::noded::nodeapi::spdy {

inline constexpr std::uint16_t kVersion = 3;
inline constexpr std::uint8_t kFlagFin = 0x01;
inline constexpr std::uint8_t kFlagUnidirectional = 0x02;
inline constexpr std::size_t kHeaderSize = 8;
inline constexpr std::uint32_t kMaxLength = 0xffffff;

enum class Type : std::uint16_t {
  kSynStream = 1,
  kSynReply = 2,
  kRstStream = 3,
  kSettings = 4,
  kPing = 6,
  kGoAway = 7,
  kHeaders = 8,
  kWindowUpdate = 9,
};

// RST_STREAM status codes.
inline constexpr std::uint32_t kProtocolError = 1;
inline constexpr std::uint32_t kInvalidStream = 2;
inline constexpr std::uint32_t kRefusedStream = 3;
inline constexpr std::uint32_t kCancel = 5;
inline constexpr std::uint32_t kInternalError = 6;

struct Frame {
  bool control = false;
  std::uint16_t version = 0;  // control frames
  std::uint16_t type = 0;     // control frames (Type)
  std::uint32_t stream_id = 0;  // data frames
  std::uint8_t flags = 0;
  std::string payload;
  bool operator==(const Frame&) const = default;
};

// One frame from the front of `buf`: the frame and the bytes it used; nullopt when `buf` does
// not hold a whole frame yet. Errors: a control frame of another version.
std::expected<std::optional<std::pair<Frame, std::size_t>>, std::string> parse_frame(
    std::string_view buf);
// The wire bytes of a frame (payload must be <= kMaxLength).
std::string serialize(const Frame& f);

// Payload helpers.
std::uint32_t get_u32(std::string_view p, std::size_t at);  // REQUIRES: p.size() >= at + 4
void put_u32(std::string& out, std::uint32_t v);

struct SynStream {
  std::uint32_t stream_id = 0, associated_id = 0;
  std::uint8_t priority = 0;
  std::string_view header_block;  // into the payload
};
std::expected<SynStream, std::string> parse_syn_stream(std::string_view payload);

Frame data_frame(std::uint32_t stream_id, std::string_view data, bool fin = false);
Frame syn_stream_frame(std::uint32_t stream_id, std::string_view header_block, bool fin = false);
Frame syn_reply_frame(std::uint32_t stream_id, std::string_view header_block, bool fin = false);
Frame rst_stream_frame(std::uint32_t stream_id, std::uint32_t status);
Frame ping_frame(std::uint32_t id);
Frame goaway_frame(std::uint32_t last_good_stream_id, std::uint32_t status = 0);
Frame window_update_frame(std::uint32_t stream_id, std::uint32_t delta);
Frame settings_frame(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& id_values);

// The SPDY/3 header compression dictionary (1423 bytes, draft 3 section 2.6.10.1).
const std::string& dictionary();

using Headers = std::vector<std::pair<std::string, std::string>>;
// The uncompressed header block encoding (names lowercased) and its decoding.
std::string encode_header_block(const Headers& h);
std::expected<Headers, std::string> decode_header_block(std::string_view raw);
// The value of `name` (case-insensitive) or "".
std::string header_value(const Headers& h, std::string_view name);

class HeaderCompressor {
 public:
  HeaderCompressor();
  ~HeaderCompressor();
  HeaderCompressor(const HeaderCompressor&) = delete;
  HeaderCompressor& operator=(const HeaderCompressor&) = delete;
  std::expected<std::string, std::string> compress(const Headers& h);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class HeaderDecompressor {
 public:
  HeaderDecompressor();
  ~HeaderDecompressor();
  HeaderDecompressor(const HeaderDecompressor&) = delete;
  HeaderDecompressor& operator=(const HeaderDecompressor&) = delete;
  std::expected<Headers, std::string> decompress(std::string_view block);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::nodeapi::spdy
