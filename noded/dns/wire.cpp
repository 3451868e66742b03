#include "dns/wire.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace podwarp::noded::dns {

namespace {

char lower_char(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool label_eq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  return true;
}

constexpr std::size_t kMaxName = 255;  // octets on the wire, including length bytes and root
constexpr std::size_t kMaxLabel = 63;
constexpr int kMaxPointers = 64;

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> w) : w_(w) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return w_.size() - pos_; }

  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = w_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (left() < 2) return false;
    v = static_cast<std::uint16_t>((w_[pos_] << 8) | w_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = (std::uint32_t{w_[pos_]} << 24) | (std::uint32_t{w_[pos_ + 1]} << 16) |
        (std::uint32_t{w_[pos_ + 2]} << 8) | std::uint32_t{w_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool bytes(std::size_t n, std::vector<std::uint8_t>& out) {
    if (left() < n) return false;
    out.assign(w_.begin() + static_cast<std::ptrdiff_t>(pos_),
               w_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return true;
  }
  bool skip(std::size_t n) {
    if (left() < n) return false;
    pos_ += n;
    return true;
  }
  // A possibly compressed name; `limit` bounds where its in-place part may end (rdata end).
  std::expected<Name, std::string> name(std::size_t limit) {
    Name out;
    std::size_t p = pos_;
    std::size_t end_here = 0;  // where the reader continues (after the first pointer)
    bool jumped = false;
    std::size_t total = 1;  // the root byte
    int pointers = 0;
    std::size_t floor = pos_;  // pointers must point before this
    for (;;) {
      if (p >= (jumped ? w_.size() : limit)) return std::unexpected("name runs past the end");
      std::uint8_t len = w_[p];
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= (jumped ? w_.size() : limit))
          return std::unexpected("truncated compression pointer");
        std::size_t target = (static_cast<std::size_t>(len & 0x3F) << 8) | w_[p + 1];
        if (target >= floor) return std::unexpected("compression pointer does not point back");
        if (++pointers > kMaxPointers) return std::unexpected("too many compression pointers");
        if (!jumped) end_here = p + 2;
        jumped = true;
        floor = target;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) return std::unexpected("reserved label type");
      if (len == 0) {
        if (!jumped) end_here = p + 1;
        break;
      }
      if (len > kMaxLabel) return std::unexpected("label longer than 63");
      if (p + 1 + len > (jumped ? w_.size() : limit)) return std::unexpected("label runs past the end");
      total += 1 + len;
      if (total > kMaxName) return std::unexpected("name longer than 255");
      out.emplace_back(reinterpret_cast<const char*>(&w_[p + 1]), len);
      p += 1 + len;
    }
    pos_ = end_here;
    return out;
  }

 private:
  std::span<const std::uint8_t> w_;
  std::size_t pos_ = 0;
};

std::expected<Rdata, std::string> parse_rdata(Reader& r, std::span<const std::uint8_t> w,
                                              std::uint16_t type, std::uint16_t rdlen) {
  std::size_t end = r.pos() + rdlen;
  if (end > w.size()) return std::unexpected("rdata runs past the end");
  Rdata out;
  switch (type) {
    case type::kCNAME:
    case type::kPTR:
    case type::kNS: {
      auto n = r.name(end);
      if (!n) return std::unexpected(n.error());
      out = std::move(*n);
      break;
    }
    case type::kSRV: {
      SrvData s;
      if (!r.u16(s.priority) || !r.u16(s.weight) || !r.u16(s.port))
        return std::unexpected("short SRV");
      auto n = r.name(end);
      if (!n) return std::unexpected(n.error());
      s.target = std::move(*n);
      out = std::move(s);
      break;
    }
    case type::kSOA: {
      SoaData s;
      auto m = r.name(end);
      if (!m) return std::unexpected(m.error());
      auto rn = r.name(end);
      if (!rn) return std::unexpected(rn.error());
      s.mname = std::move(*m);
      s.rname = std::move(*rn);
      if (!r.u32(s.serial) || !r.u32(s.refresh) || !r.u32(s.retry) || !r.u32(s.expire) ||
          !r.u32(s.minimum))
        return std::unexpected("short SOA");
      out = std::move(s);
      break;
    }
    case type::kTXT: {
      TxtData t;
      while (r.pos() < end) {
        std::uint8_t l = 0;
        r.u8(l);
        std::vector<std::uint8_t> b;
        if (r.pos() + l > end || !r.bytes(l, b)) return std::unexpected("short TXT string");
        t.strings.emplace_back(b.begin(), b.end());
      }
      out = std::move(t);
      break;
    }
    default: {
      RawData raw;
      if (!r.bytes(rdlen, raw.bytes)) return std::unexpected("short rdata");
      if ((type == type::kA && rdlen != 4) || (type == type::kAAAA && rdlen != 16))
        return std::unexpected("bad address length");
      out = std::move(raw);
      break;
    }
  }
  if (r.pos() != end) return std::unexpected("rdata length mismatch");
  return out;
}

}  // namespace

Name name_from_text(std::string_view text) {
  Name out;
  std::size_t i = 0;
  while (i < text.size()) {
    auto dot = text.find('.', i);
    if (dot == std::string_view::npos) dot = text.size();
    if (dot > i) out.emplace_back(text.substr(i, dot - i));
    i = dot + 1;
  }
  return out;
}

std::string name_to_text(const Name& n) {
  if (n.empty()) return ".";
  std::string s;
  for (const auto& l : n) {
    s += l;
    s += '.';
  }
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

bool names_equal(const Name& a, const Name& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!label_eq(a[i], b[i])) return false;
  return true;
}

bool name_has_suffix(const Name& n, const Name& suffix) {
  if (suffix.size() > n.size()) return false;
  std::size_t off = n.size() - suffix.size();
  for (std::size_t i = 0; i < suffix.size(); ++i)
    if (!label_eq(n[off + i], suffix[i])) return false;
  return true;
}

std::string_view rcode_name(std::uint16_t rc) {
  switch (rc) {
    case rcode::kNoError: return "NOERROR";
    case rcode::kFormErr: return "FORMERR";
    case rcode::kServFail: return "SERVFAIL";
    case rcode::kNxDomain: return "NXDOMAIN";
    case rcode::kNotImp: return "NOTIMP";
    case rcode::kRefused: return "REFUSED";
    case rcode::kBadVers: return "BADVERS";
    default: return "OTHER";
  }
}

ResourceRecord make_a(const Name& owner, std::span<const std::uint8_t, 4> addr, std::uint32_t ttl) {
  return ResourceRecord{owner, type::kA, kClassIN, ttl,
                        RawData{std::vector<std::uint8_t>(addr.begin(), addr.end())}};
}
ResourceRecord make_aaaa(const Name& owner, std::span<const std::uint8_t, 16> addr,
                         std::uint32_t ttl) {
  return ResourceRecord{owner, type::kAAAA, kClassIN, ttl,
                        RawData{std::vector<std::uint8_t>(addr.begin(), addr.end())}};
}
ResourceRecord make_name_rr(const Name& owner, std::uint16_t t, const Name& target,
                            std::uint32_t ttl) {
  return ResourceRecord{owner, t, kClassIN, ttl, target};
}

std::expected<Message, ParseError> parse_message(std::span<const std::uint8_t> w) {
  auto bad = [](std::string why) {
    return std::unexpected(ParseError{ParseErrorKind::kMalformed, std::move(why)});
  };
  if (w.size() < 12) return std::unexpected(ParseError{ParseErrorKind::kTooShort, "short header"});
  Reader r(w);
  Message m;
  std::uint16_t flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  r.u16(m.id);
  r.u16(flags);
  r.u16(qd);
  r.u16(an);
  r.u16(ns);
  r.u16(ar);
  m.qr = flags & 0x8000;
  m.opcode = static_cast<std::uint8_t>((flags >> 11) & 0xF);
  m.aa = flags & 0x0400;
  m.tc = flags & 0x0200;
  m.rd = flags & 0x0100;
  m.ra = flags & 0x0080;
  m.ad = flags & 0x0020;
  m.cd = flags & 0x0010;
  m.rcode = flags & 0xF;
  // Every question takes at least 5 bytes, every RR 11: reject absurd counts before reserving.
  if (std::size_t{qd} * 5 + (std::size_t{an} + ns + ar) * 11 > r.left())
    return bad("section counts exceed the message");
  for (int i = 0; i < qd; ++i) {
    Question q;
    auto n = r.name(w.size());
    if (!n) return bad("question name: " + n.error());
    q.name = std::move(*n);
    if (!r.u16(q.qtype) || !r.u16(q.qclass)) return bad("truncated question");
    m.questions.push_back(std::move(q));
  }
  int opts = 0;
  for (int sec = 0; sec < 3; ++sec) {
    int count = sec == 0 ? an : sec == 1 ? ns : ar;
    auto& out = sec == 0 ? m.answer : sec == 1 ? m.authority : m.additional;
    for (int i = 0; i < count; ++i) {
      ResourceRecord rr;
      auto n = r.name(w.size());
      if (!n) return bad("record name: " + n.error());
      rr.name = std::move(*n);
      std::uint16_t rdlen = 0;
      if (!r.u16(rr.type) || !r.u16(rr.cls) || !r.u32(rr.ttl) || !r.u16(rdlen))
        return bad("truncated record");
      if (rr.type == type::kOPT) {
        if (sec != 2 || !rr.name.empty()) return bad("OPT outside the additional section");
        if (++opts > 1) return bad("more than one OPT");
        if (!r.skip(rdlen)) return bad("truncated OPT");  // options are not used
        Edns e;
        e.udp_size = rr.cls;
        e.extended_rcode = static_cast<std::uint8_t>(rr.ttl >> 24);
        e.version = static_cast<std::uint8_t>((rr.ttl >> 16) & 0xFF);
        e.do_bit = (rr.ttl & 0x8000) != 0;
        m.rcode = static_cast<std::uint16_t>(m.rcode | (std::uint16_t{e.extended_rcode} << 4));
        m.edns = e;
        continue;
      }
      auto d = parse_rdata(r, w, rr.type, rdlen);
      if (!d) return bad("rdata: " + d.error());
      rr.data = std::move(*d);
      out.push_back(std::move(rr));
    }
  }
  // Trailing bytes are tolerated (some stacks pad), as most servers do.
  return m;
}

QueryCheck check_query(std::span<const std::uint8_t> w) {
  QueryCheck c;
  auto m = parse_message(w);
  if (!m) {
    c.reason = m.error().reason;
    if (m.error().kind == ParseErrorKind::kTooShort) {
      c.kind = QueryCheck::kDrop;
      return c;
    }
    // Answer FORMERR with what the header says (at least 12 bytes are there).
    c.kind = QueryCheck::kFormErr;
    c.msg.id = read_id(w);
    std::uint16_t flags = static_cast<std::uint16_t>((w[2] << 8) | w[3]);
    if (flags & 0x8000) c.kind = QueryCheck::kDrop;  // never answer a response
    c.msg.opcode = static_cast<std::uint8_t>((flags >> 11) & 0xF);
    c.msg.rd = flags & 0x0100;
    return c;
  }
  c.msg = std::move(*m);
  if (c.msg.qr) {
    c.kind = QueryCheck::kDrop;
    c.reason = "a response, not a query";
  } else if (c.msg.opcode != 0) {
    c.kind = QueryCheck::kNotImp;
    c.reason = "opcode " + std::to_string(c.msg.opcode);
  } else if (c.msg.questions.size() != 1) {
    c.kind = QueryCheck::kFormErr;
    c.reason = std::to_string(c.msg.questions.size()) + " questions";
  } else if (c.msg.edns && c.msg.edns->version != 0) {
    c.kind = QueryCheck::kBadVers;
    c.reason = "EDNS version " + std::to_string(c.msg.edns->version);
  }
  return c;
}

Message error_response(const Message& q, std::uint16_t rc) {
  Message r;
  r.id = q.id;
  r.qr = true;
  r.opcode = q.opcode;
  r.rd = q.rd;
  r.ra = true;
  r.rcode = rc;
  if (q.questions.size() == 1) r.questions = q.questions;
  if (q.edns || rc > 15) {
    Edns e;
    e.udp_size = static_cast<std::uint16_t>(kMaxUdpPayload);
    r.edns = e;
  }
  return r;
}

std::size_t udp_limit(const Message& q) {
  if (!q.edns) return 512;
  return std::clamp<std::size_t>(q.edns->udp_size, 512, kMaxUdpPayload);
}

std::uint16_t read_id(std::span<const std::uint8_t> w) {
  return static_cast<std::uint16_t>((w[0] << 8) | w[1]);
}
void write_id(std::span<std::uint8_t> w, std::uint16_t id) {
  w[0] = static_cast<std::uint8_t>(id >> 8);
  w[1] = static_cast<std::uint8_t>(id & 0xFF);
}

std::vector<std::uint8_t> frame_tcp(std::span<const std::uint8_t> msg) {
  std::vector<std::uint8_t> out;
  out.reserve(msg.size() + 2);
  out.push_back(static_cast<std::uint8_t>(msg.size() >> 8));
  out.push_back(static_cast<std::uint8_t>(msg.size() & 0xFF));
  out.insert(out.end(), msg.begin(), msg.end());
  return out;
}

namespace {

class Writer {
 public:
  std::vector<std::uint8_t> buf;

  void u8(std::uint8_t v) { buf.push_back(v); }
  void u16(std::uint16_t v) {
    buf.push_back(static_cast<std::uint8_t>(v >> 8));
    buf.push_back(static_cast<std::uint8_t>(v & 0xFF));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v & 0xFFFF));
  }
  void set_u16(std::size_t at, std::uint16_t v) {
    buf[at] = static_cast<std::uint8_t>(v >> 8);
    buf[at + 1] = static_cast<std::uint8_t>(v & 0xFF);
  }
  // Writes `n`, pointing at an earlier copy of its longest known suffix. `compress` false for
  // names that must not be compressed... (none we emit; RFC 3597 only forbids it for unknown
  // types, whose rdata we copy raw).
  void name(const Name& n) {
    for (std::size_t i = 0; i < n.size(); ++i) {
      std::string key = suffix_key(n, i);
      if (auto it = offsets_.find(key); it != offsets_.end()) {
        u16(static_cast<std::uint16_t>(0xC000 | it->second));
        return;
      }
      if (buf.size() < 0x3FFF) offsets_.emplace(std::move(key), static_cast<std::uint16_t>(buf.size()));
      std::size_t len = std::min(n[i].size(), kMaxLabel);
      u8(static_cast<std::uint8_t>(len));
      buf.insert(buf.end(), n[i].begin(), n[i].begin() + static_cast<std::ptrdiff_t>(len));
    }
    u8(0);
  }
  void record(const ResourceRecord& rr) {
    name(rr.name);
    u16(rr.type);
    u16(rr.cls);
    u32(rr.ttl);
    std::size_t len_at = buf.size();
    u16(0);
    std::size_t start = buf.size();
    std::visit(
        [&](const auto& d) {
          using T = std::decay_t<decltype(d)>;
          if constexpr (std::is_same_v<T, RawData>) {
            buf.insert(buf.end(), d.bytes.begin(), d.bytes.end());
          } else if constexpr (std::is_same_v<T, Name>) {
            name(d);
          } else if constexpr (std::is_same_v<T, SrvData>) {
            u16(d.priority);
            u16(d.weight);
            u16(d.port);
            name(d.target);
          } else if constexpr (std::is_same_v<T, SoaData>) {
            name(d.mname);
            name(d.rname);
            u32(d.serial);
            u32(d.refresh);
            u32(d.retry);
            u32(d.expire);
            u32(d.minimum);
          } else if constexpr (std::is_same_v<T, TxtData>) {
            for (const auto& s : d.strings) {
              std::size_t l = std::min<std::size_t>(s.size(), 255);
              u8(static_cast<std::uint8_t>(l));
              buf.insert(buf.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(l));
            }
          }
        },
        rr.data);
    set_u16(len_at, static_cast<std::uint16_t>(buf.size() - start));
  }

 private:
  static std::string suffix_key(const Name& n, std::size_t from) {
    std::string k;
    for (std::size_t i = from; i < n.size(); ++i) {
      k += lower(n[i]);
      k += '\0';  // labels may contain '.'
    }
    return k;
  }
  std::map<std::string, std::uint16_t> offsets_;
};

std::vector<std::uint8_t> encode_sections(const Message& m, bool with_answers, bool with_additional,
                                          bool tc) {
  Writer w;
  std::uint16_t flags = 0;
  if (m.qr) flags |= 0x8000;
  flags |= static_cast<std::uint16_t>((m.opcode & 0xF) << 11);
  if (m.aa) flags |= 0x0400;
  if (m.tc || tc) flags |= 0x0200;
  if (m.rd) flags |= 0x0100;
  if (m.ra) flags |= 0x0080;
  if (m.ad) flags |= 0x0020;
  if (m.cd) flags |= 0x0010;
  flags |= m.rcode & 0xF;
  std::size_t an = with_answers ? m.answer.size() : 0;
  std::size_t ns = with_answers ? m.authority.size() : 0;
  std::size_t ar = (with_additional ? m.additional.size() : 0) + (m.edns ? 1 : 0);
  w.u16(m.id);
  w.u16(flags);
  w.u16(static_cast<std::uint16_t>(m.questions.size()));
  w.u16(static_cast<std::uint16_t>(an));
  w.u16(static_cast<std::uint16_t>(ns));
  w.u16(static_cast<std::uint16_t>(ar));
  for (const auto& q : m.questions) {
    w.name(q.name);
    w.u16(q.qtype);
    w.u16(q.qclass);
  }
  if (with_answers) {
    for (const auto& rr : m.answer) w.record(rr);
    for (const auto& rr : m.authority) w.record(rr);
  }
  if (with_additional)
    for (const auto& rr : m.additional) w.record(rr);
  if (m.edns) {
    w.u8(0);  // root
    w.u16(type::kOPT);
    w.u16(std::max<std::uint16_t>(m.edns->udp_size, 512));
    std::uint32_t ttl = (std::uint32_t{static_cast<std::uint8_t>(m.rcode >> 4)} << 24) |
                        (std::uint32_t{m.edns->version} << 16) | (m.edns->do_bit ? 0x8000u : 0u);
    w.u32(ttl);
    w.u16(0);
  }
  return std::move(w.buf);
}

}  // namespace

std::vector<std::uint8_t> encode(const Message& m, std::size_t max_size) {
  if (max_size == 0) max_size = 65535;
  auto full = encode_sections(m, true, true, false);
  if (full.size() <= max_size) return full;
  // Additional records are optional: dropping them does not make the answer incomplete.
  if (!m.additional.empty()) {
    auto no_add = encode_sections(m, true, false, false);
    if (no_add.size() <= max_size) return no_add;
  }
  return encode_sections(m, false, false, true);
}

}  // namespace podwarp::noded::dns
