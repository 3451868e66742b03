// DNS wire format (RFC 1035, EDNS0 from RFC 6891): parse messages, build responses with name
// compression, TCP framing. Pure and allocation-light; no sockets here.
//
// Parsing never trusts the input: every length is bounds-checked, compression pointers must
// point strictly backwards (so they cannot loop) and a name is at most 255 octets of at most
// 63-octet labels. Anything else is a ParseError, which the server answers with FORMERR (or
// drops, when not even a header can be read).
//
// Names are kept as label lists exactly as received (case and all: DNS 0x20 clients check
// that the answer repeats their spelling); comparisons are ASCII case-insensitive.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace podwarp::noded::dns {

using Name = std::vector<std::string>;  // labels, root = empty list

// "a.b.c" or "a.b.c." -> {"a","b","c"}; "" or "." -> {}. No escapes (our own names only).
Name name_from_text(std::string_view text);
// {"a","b"} -> "a.b." (root -> ".").
std::string name_to_text(const Name& n);
std::string lower(std::string_view s);
bool names_equal(const Name& a, const Name& b);  // ASCII case-insensitive
// Does `n` end with `suffix` (case-insensitive)? Equal names count.
bool name_has_suffix(const Name& n, const Name& suffix);

namespace type {
inline constexpr std::uint16_t kA = 1, kNS = 2, kCNAME = 5, kSOA = 6, kPTR = 12, kTXT = 16,
                               kAAAA = 28, kSRV = 33, kOPT = 41, kANY = 255;
}
inline constexpr std::uint16_t kClassIN = 1;

namespace rcode {
inline constexpr std::uint16_t kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3,
                               kNotImp = 4, kRefused = 5, kBadVers = 16;  // 16: extended (OPT)
}
std::string_view rcode_name(std::uint16_t rc);  // "NOERROR", "NXDOMAIN", ...

struct SrvData {
  std::uint16_t priority = 0, weight = 0, port = 0;
  Name target;
  bool operator==(const SrvData&) const = default;
};
struct SoaData {
  Name mname, rname;
  std::uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
  bool operator==(const SoaData&) const = default;
};
struct TxtData {
  std::vector<std::string> strings;  // each at most 255 bytes
  bool operator==(const TxtData&) const = default;
};
// A/AAAA: 4 or 16 address bytes in `raw`; CNAME/PTR/NS: `Name`; unknown types: raw rdata.
struct RawData {
  std::vector<std::uint8_t> bytes;
  bool operator==(const RawData&) const = default;
};
using Rdata = std::variant<RawData, Name, SrvData, SoaData, TxtData>;

struct ResourceRecord {
  Name name;
  std::uint16_t type = 0;
  std::uint16_t cls = kClassIN;
  std::uint32_t ttl = 0;
  Rdata data;
};

// Builders for the record kinds the responder emits.
ResourceRecord make_a(const Name& owner, std::span<const std::uint8_t, 4> addr, std::uint32_t ttl);
ResourceRecord make_aaaa(const Name& owner, std::span<const std::uint8_t, 16> addr,
                         std::uint32_t ttl);
ResourceRecord make_name_rr(const Name& owner, std::uint16_t type, const Name& target,
                            std::uint32_t ttl);

struct Question {
  Name name;
  std::uint16_t qtype = 0;
  std::uint16_t qclass = kClassIN;
};

struct Edns {
  std::uint16_t udp_size = 512;  // requestor's payload size (values < 512 mean 512)
  std::uint8_t version = 0;
  std::uint8_t extended_rcode = 0;  // upper 8 bits of the 12-bit rcode
  bool do_bit = false;
};

struct Message {
  std::uint16_t id = 0;
  bool qr = false, aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  std::uint8_t opcode = 0;
  std::uint16_t rcode = 0;  // 12-bit with the OPT's extended part when parsed
  std::vector<Question> questions;
  std::vector<ResourceRecord> answer, authority, additional;  // additional: without the OPT
  std::optional<Edns> edns;
};

enum class ParseErrorKind {
  kTooShort,   // not even a 12-byte header: drop
  kMalformed,  // FORMERR
};
struct ParseError {
  ParseErrorKind kind;
  std::string reason;
};

// Parses any DNS message (query or response).
std::expected<Message, ParseError> parse_message(std::span<const std::uint8_t> wire);

// What to do with a datagram/frame that should be a query.
struct QueryCheck {
  enum Kind { kOk, kDrop, kFormErr, kNotImp, kBadVers } kind = kOk;
  Message msg;         // kOk: the query; others: header fields to answer with (id, opcode, rd)
  std::string reason;  // for logs
};
// Parse + the rules for queries: QR must be 0 (else drop), opcode QUERY (else NOTIMP), exactly
// one question (else FORMERR), at most one OPT, EDNS version 0 (else BADVERS).
QueryCheck check_query(std::span<const std::uint8_t> wire);

// Header-only error response (FORMERR/NOTIMP/SERVFAIL/REFUSED/BADVERS) for `q`'s id/opcode/rd,
// echoing the question when q has exactly one.
Message error_response(const Message& q, std::uint16_t rc);

// Encodes with name compression. `max_size` (>= 12) bounds the result: if the message does not
// fit, the additional section (but the OPT) is dropped first; if it still does not fit, the
// answer and authority sections are dropped and TC is set. `max_size` 0 = no limit (TCP:
// 65535).
std::vector<std::uint8_t> encode(const Message& m, std::size_t max_size = 0);

// Largest UDP response for a query: 512 without EDNS, else its udp_size clamped to
// [512, kMaxUdpPayload].
inline constexpr std::size_t kMaxUdpPayload = 4096;
std::size_t udp_limit(const Message& query);

// Message id helpers on raw bytes (forwarding rewrites only the id). REQUIRES: size >= 2.
std::uint16_t read_id(std::span<const std::uint8_t> wire);
void write_id(std::span<std::uint8_t> wire, std::uint16_t id);

// TCP framing: a 2-byte big-endian length before each message.
std::vector<std::uint8_t> frame_tcp(std::span<const std::uint8_t> msg);

}  // namespace podwarp::noded::dns
