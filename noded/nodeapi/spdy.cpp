#include "nodeapi/spdy.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>

namespace podwarp::noded::nodeapi::spdy {

std::uint32_t get_u32(std::string_view p, std::size_t at) {
  auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[at + i])); };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void put_u32(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

std::expected<std::optional<std::pair<Frame, std::size_t>>, std::string> parse_frame(
    std::string_view buf) {
  if (buf.size() < kHeaderSize) return std::nullopt;
  std::uint32_t w0 = get_u32(buf, 0), w1 = get_u32(buf, 4);
  std::size_t len = w1 & 0xffffff;
  if (buf.size() < kHeaderSize + len) return std::nullopt;
  Frame f;
  f.flags = static_cast<std::uint8_t>(w1 >> 24);
  f.payload.assign(buf.substr(kHeaderSize, len));
  if (w0 & 0x80000000u) {
    f.control = true;
    f.version = static_cast<std::uint16_t>((w0 >> 16) & 0x7fff);
    f.type = static_cast<std::uint16_t>(w0 & 0xffff);
    if (f.version != kVersion)
      return std::unexpected("unsupported SPDY version " + std::to_string(f.version));
  } else {
    f.stream_id = w0 & 0x7fffffff;
  }
  return std::pair{std::move(f), kHeaderSize + len};
}

std::string serialize(const Frame& f) {
  std::string out;
  out.reserve(kHeaderSize + f.payload.size());
  if (f.control) {
    put_u32(out, 0x80000000u | static_cast<std::uint32_t>(kVersion) << 16 | f.type);
  } else {
    put_u32(out, f.stream_id & 0x7fffffff);
  }
  put_u32(out, static_cast<std::uint32_t>(f.flags) << 24 |
                   (static_cast<std::uint32_t>(f.payload.size()) & 0xffffff));
  out += f.payload;
  return out;
}

std::expected<SynStream, std::string> parse_syn_stream(std::string_view p) {
  if (p.size() < 10) return std::unexpected("SYN_STREAM shorter than 10 bytes");
  SynStream s;
  s.stream_id = get_u32(p, 0) & 0x7fffffff;
  s.associated_id = get_u32(p, 4) & 0x7fffffff;
  s.priority = static_cast<std::uint8_t>(static_cast<unsigned char>(p[8]) >> 5);
  s.header_block = p.substr(10);
  return s;
}

namespace {
Frame control(Type t, std::uint8_t flags, std::string payload) {
  Frame f;
  f.control = true;
  f.version = kVersion;
  f.type = static_cast<std::uint16_t>(t);
  f.flags = flags;
  f.payload = std::move(payload);
  return f;
}
std::string id_payload(std::uint32_t id) {
  std::string p;
  put_u32(p, id & 0x7fffffff);
  return p;
}
}  // namespace

Frame data_frame(std::uint32_t stream_id, std::string_view data, bool fin) {
  Frame f;
  f.stream_id = stream_id;
  f.flags = fin ? kFlagFin : 0;
  f.payload.assign(data);
  return f;
}

Frame syn_stream_frame(std::uint32_t stream_id, std::string_view header_block, bool fin) {
  std::string p = id_payload(stream_id);
  put_u32(p, 0);     // associated stream
  p.push_back(0);    // priority
  p.push_back(0);    // slot
  p.append(header_block);
  return control(Type::kSynStream, fin ? kFlagFin : 0, std::move(p));
}

Frame syn_reply_frame(std::uint32_t stream_id, std::string_view header_block, bool fin) {
  std::string p = id_payload(stream_id);
  p.append(header_block);
  return control(Type::kSynReply, fin ? kFlagFin : 0, std::move(p));
}

Frame rst_stream_frame(std::uint32_t stream_id, std::uint32_t status) {
  std::string p = id_payload(stream_id);
  put_u32(p, status);
  return control(Type::kRstStream, 0, std::move(p));
}

Frame ping_frame(std::uint32_t id) {
  std::string p;
  put_u32(p, id);
  return control(Type::kPing, 0, std::move(p));
}

Frame goaway_frame(std::uint32_t last_good_stream_id, std::uint32_t status) {
  std::string p = id_payload(last_good_stream_id);
  put_u32(p, status);
  return control(Type::kGoAway, 0, std::move(p));
}

Frame window_update_frame(std::uint32_t stream_id, std::uint32_t delta) {
  std::string p = id_payload(stream_id);
  put_u32(p, delta & 0x7fffffff);
  return control(Type::kWindowUpdate, 0, std::move(p));
}

Frame settings_frame(const std::vector<std::pair<std::uint32_t, std::uint32_t>>& id_values) {
  std::string p;
  put_u32(p, static_cast<std::uint32_t>(id_values.size()));
  for (auto [id, v] : id_values) {
    put_u32(p, id & 0xffffff);  // flags 0
    put_u32(p, v);
  }
  return control(Type::kSettings, 0, std::move(p));
}

const std::string& dictionary() {
  // Draft 3, 2.6.10.1: length-prefixed header names and common values, then a run of status
  // codes, reason phrases, dates and common values without prefixes.
  static const std::string dict = [] {
    static constexpr std::string_view kWords[] = {
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
        "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"};
    std::string d;
    for (auto w : kWords) {
      put_u32(d, static_cast<std::uint32_t>(w.size()));
      d.append(w);
    }
    d += "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
         "504505";
    d += "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
         "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
         "501 Not Implemented503 Service Unavailable";
    d += "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
         "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT";
    d += "chunked,text/html,image/png,image/jpg,image/gif,application/xml,"
         "application/xhtml+xml,text/plain,text/javascript,public";
    d += "privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    return d;
  }();
  return dict;
}

std::string encode_header_block(const Headers& h) {
  std::string out;
  put_u32(out, static_cast<std::uint32_t>(h.size()));
  for (const auto& [k, v] : h) {
    std::string name = k;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    put_u32(out, static_cast<std::uint32_t>(name.size()));
    out += name;
    put_u32(out, static_cast<std::uint32_t>(v.size()));
    out += v;
  }
  return out;
}

std::expected<Headers, std::string> decode_header_block(std::string_view raw) {
  if (raw.size() < 4) return std::unexpected("header block shorter than 4 bytes");
  std::uint32_t n = get_u32(raw, 0);
  std::size_t at = 4;
  Headers h;
  auto str = [&](std::string& out) -> bool {
    if (raw.size() < at + 4) return false;
    std::uint32_t len = get_u32(raw, at);
    at += 4;
    if (raw.size() - at < len) return false;
    out.assign(raw.substr(at, len));
    at += len;
    return true;
  };
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!str(k) || !str(v)) return std::unexpected("truncated header block");
    h.emplace_back(std::move(k), std::move(v));
  }
  return h;
}

std::string header_value(const Headers& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (k.size() != name.size()) continue;
    bool eq = true;
    for (std::size_t i = 0; i < k.size() && eq; ++i)
      eq = std::tolower(static_cast<unsigned char>(k[i])) ==
           std::tolower(static_cast<unsigned char>(name[i]));
    if (eq) return v;
  }
  return "";
}

// ---- zlib with the dictionary ----

struct HeaderCompressor::Impl {
  z_stream z{};
  bool ok = false;
  Impl() {
    ok = deflateInit(&z, Z_DEFAULT_COMPRESSION) == Z_OK &&
         deflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dictionary().data()),
                              static_cast<uInt>(dictionary().size())) == Z_OK;
  }
  ~Impl() { deflateEnd(&z); }
};

HeaderCompressor::HeaderCompressor() : impl_(std::make_unique<Impl>()) {}
HeaderCompressor::~HeaderCompressor() = default;

std::expected<std::string, std::string> HeaderCompressor::compress(const Headers& h) {
  if (!impl_->ok) return std::unexpected("deflate init failed");
  std::string raw = encode_header_block(h);
  z_stream& z = impl_->z;
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  char buf[4096];
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int rc = deflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return std::unexpected("deflate: error " + std::to_string(rc));
    out.append(buf, sizeof buf - z.avail_out);
  } while (z.avail_out == 0);
  return out;
}

struct HeaderDecompressor::Impl {
  z_stream z{};
  bool ok = false;
  Impl() { ok = inflateInit(&z) == Z_OK; }
  ~Impl() { inflateEnd(&z); }
};

HeaderDecompressor::HeaderDecompressor() : impl_(std::make_unique<Impl>()) {}
HeaderDecompressor::~HeaderDecompressor() = default;

std::expected<Headers, std::string> HeaderDecompressor::decompress(std::string_view block) {
  if (!impl_->ok) return std::unexpected("inflate init failed");
  z_stream& z = impl_->z;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(block.data()));
  z.avail_in = static_cast<uInt>(block.size());
  std::string out;
  char buf[4096];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      if (inflateSetDictionary(&z, reinterpret_cast<const Bytef*>(dictionary().data()),
                               static_cast<uInt>(dictionary().size())) != Z_OK)
        return std::unexpected("inflate: header block needs another dictionary");
      out.append(buf, sizeof buf - z.avail_out);
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
      return std::unexpected("inflate: " + std::string(z.msg ? z.msg : "error " + std::to_string(rc)));
    out.append(buf, sizeof buf - z.avail_out);
    if (z.avail_in == 0 && z.avail_out != 0) break;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
    if (rc == Z_STREAM_END) break;
  }
  return decode_header_block(out);
}

}  // namespace podwarp::noded::nodeapi::spdy
