#include "schema/protobuf.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <unordered_map>

#include "podwarp/quote.h"

namespace podwarp::schema {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::string_view kMagic{"k8s\0", 4};
constexpr std::string_view kTime = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
constexpr std::string_view kMicroTime = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";
constexpr std::string_view kFieldsV1 = "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1";
constexpr std::string_view kRawExtension = "io.k8s.apimachinery.pkg.runtime.RawExtension";
constexpr std::uint64_t kMaxFieldNumber = (1u << 29) - 1;
// Go's zero time.Time (January 1, year 1, UTC) in Unix seconds: what upstream decodes an empty
// or defaulted Timestamp into, and writes as null.
constexpr std::int64_t kGoZeroTimeUnix = -62135596800;

enum WireType : int {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

std::string_view wire_type_name(int wire_type) {
  switch (wire_type) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "fixed64";
    case kLengthDelimited:
      return "length-delimited";
    case kFixed32:
      return "fixed32";
    default:
      return "invalid";
  }
}

// One field as read off the wire. Offsets count from the start of the envelope's `raw` (or of
// the envelope itself while reading it).
struct Occurrence {
  std::uint32_t number = 0;
  int wire_type = kVarint;
  std::uint64_t scalar = 0;  // varint value, or the fixed64/fixed32 bits
  Bytes bytes;               // length-delimited payload
  std::size_t offset = 0;    // of the tag
  std::size_t payload_offset = 0;
};

// Reads the fields of one message, never past its end.
class Reader {
 public:
  Reader(Bytes data, std::size_t base) : data_(data), base_(base) {}

  bool done() const { return pos_ == data_.size(); }

  std::expected<Occurrence, std::string> next() {
    Occurrence o;
    o.offset = base_ + pos_;
    auto tag = varint();
    if (!tag) return std::unexpected(tag.error());
    std::uint64_t number = *tag >> 3;
    o.wire_type = static_cast<int>(*tag & 7);
    if (number == 0 || number > kMaxFieldNumber) {
      return std::unexpected("invalid field number " + std::to_string(number) + " at byte " +
                             std::to_string(o.offset));
    }
    o.number = static_cast<std::uint32_t>(number);
    std::string at = "field " + std::to_string(number) + " at byte " + std::to_string(o.offset);
    switch (o.wire_type) {
      case kVarint: {
        auto v = varint();
        if (!v) return std::unexpected(at + ": " + v.error());
        o.scalar = *v;
        return o;
      }
      case kFixed64:
      case kFixed32: {
        std::size_t n = o.wire_type == kFixed64 ? 8 : 4;
        if (data_.size() - pos_ < n) {
          return std::unexpected(at + ": truncated " + std::string(wire_type_name(o.wire_type)));
        }
        for (std::size_t i = 0; i < n; ++i) {
          o.scalar |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
        }
        pos_ += n;
        return o;
      }
      case kLengthDelimited: {
        auto len = varint();
        if (!len) return std::unexpected(at + ": " + len.error());
        std::size_t left = data_.size() - pos_;
        if (*len > left) {
          return std::unexpected(at + ": length " + std::to_string(*len) +
                                 " runs past the end of its message (" + std::to_string(left) +
                                 " bytes left)");
        }
        o.payload_offset = base_ + pos_;
        o.bytes = data_.subspan(pos_, static_cast<std::size_t>(*len));
        pos_ += static_cast<std::size_t>(*len);
        return o;
      }
      case kStartGroup:
      case kEndGroup:
        return std::unexpected(at + ": protobuf groups are not supported");
      default:
        return std::unexpected(at + ": invalid wire type " + std::to_string(o.wire_type));
    }
  }

  std::size_t offset() const { return base_ + pos_; }

  std::expected<std::uint64_t, std::string> fixed64() {
    if (data_.size() - pos_ < 8) {
      return std::unexpected("truncated fixed64 at byte " + std::to_string(offset()));
    }
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }

  // Base-128 varint of at most 10 bytes whose value fits 64 bits.
  std::expected<std::uint64_t, std::string> varint() {
    std::size_t start = base_ + pos_;
    std::uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (pos_ == data_.size()) {
        return std::unexpected("truncated varint at byte " + std::to_string(start));
      }
      std::uint8_t b = data_[pos_++];
      if (i == 9 && b > 1) {
        return std::unexpected("varint at byte " + std::to_string(start) + " overflows 64 bits");
      }
      v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return v;
    }
    return std::unexpected("varint at byte " + std::to_string(start) + " overflows 64 bits");
  }

 private:
  Bytes data_;
  std::size_t base_;
  std::size_t pos_ = 0;
};

// Field number → field, per struct type. A number whose fields JSON inlines (an embedded Go
// struct: Probe's ProbeHandler at 1) maps to a group with its own numbers.
struct Table;
struct Slot {
  const Field* field = nullptr;
  Table* group = nullptr;  // owned by Tables::groups_
};
struct Table {
  std::unordered_map<std::uint32_t, Slot> slots;
};

class Tables {
 public:
  // Built once from the immutable model; load() has checked that paths do not collide.
  static const Tables& get() {
    static const Tables kTables;
    return kTables;
  }

  const Table& of(const Type& type) const {
    auto it = by_type_.find(&type);
    return it == by_type_.end() ? empty_ : it->second;
  }

 private:
  Tables() {
    for (const Type* t : named_types()) {
      if (t->kind != TypeKind::kStruct) continue;
      Table& root = by_type_[t];
      for (const Field& f : t->fields) {
        if (f.protobuf_path.empty()) continue;
        Table* table = &root;
        for (std::size_t i = 0; i + 1 < f.protobuf_path.size(); ++i) {
          Slot& slot = table->slots[f.protobuf_path[i]];
          if (slot.group == nullptr) slot.group = &groups_.emplace_back();
          table = slot.group;
        }
        table->slots[f.protobuf_path.back()].field = &f;
      }
    }
  }

  std::map<const Type*, Table> by_type_;
  std::deque<Table> groups_;
  Table empty_;
};

// Where the decoder is, as a JSON path for error messages ("spec.containers[0].ports").
struct Path {
  const Path* parent = nullptr;
  std::string_view name;  // field name, or map key when `key` is set
  std::size_t index = 0;  // list index when `indexed` is set
  bool indexed = false;
  bool key = false;
};

void render(const Path* p, std::string& out) {
  if (p == nullptr) return;
  render(p->parent, out);
  if (p->indexed) {
    out += "[" + std::to_string(p->index) + "]";
  } else if (p->key) {
    out += "[" + std::string(p->name) + "]";
  } else {
    if (!out.empty()) out += '.';
    out += p->name;
  }
}

std::unexpected<std::string> fail(const Path* path, std::string_view what) {
  std::string where;
  render(path, where);
  std::string msg = "protobuf: ";
  if (!where.empty()) msg += where + ": ";
  msg += what;
  return std::unexpected(std::move(msg));
}

std::string base64(Bytes in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t n = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t n = in[i] << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    std::uint32_t n = (in[i] << 16) | (in[i + 1] << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// The bytes as a string, each byte that is not part of valid UTF-8 replaced by U+FFFD, as Go's
// encoding/json writes them.
std::string utf8(Bytes in) {
  const std::string_view s(reinterpret_cast<const char*>(in.data()), in.size());
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < s.size();) {
    if (std::size_t n = utf8_sequence(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

std::string_view as_chars(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// RFC 3339 in UTC the way metav1.Time (seconds) and MicroTime (6 fraction digits) write it.
std::expected<std::string, std::string> format_time(std::int64_t sec, std::int64_t nsec,
                                                    bool micro) {
  std::int64_t days = sec / 86400;
  std::int64_t rem = sec % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  std::int64_t z = days + 719468;
  std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  std::int64_t doe = z - era * 146097;
  std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  std::int64_t mp = (5 * doy + 2) / 153;
  std::int64_t day = doy - (153 * mp + 2) / 5 + 1;
  std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {
    return std::unexpected("time " + std::to_string(sec) +
                           "s is outside of the years 0 to 9999 that RFC 3339 can write");
  }
  char buf[40];
  int n =
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", static_cast<int>(year),
                    static_cast<int>(month), static_cast<int>(day), static_cast<int>(rem / 3600),
                    static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  std::string out(buf, static_cast<std::size_t>(n));
  if (micro) {
    std::snprintf(buf, sizeof buf, ".%06d", static_cast<int>(nsec / 1000));
    out += buf;
  }
  out += 'Z';
  return out;
}

bool packable(const Type& t) {
  return t.kind == TypeKind::kInteger || t.kind == TypeKind::kBoolean ||
         t.kind == TypeKind::kNumber;
}

// Scalars whose zero value Go writes for every non-pointer field (see protobuf.h).
bool zero_droppable(const Type& t, const json::value& v) {
  switch (t.kind) {
    case TypeKind::kString:
      return t.name != kTime && t.name != kMicroTime && v.is_string() && v.get_string().empty();
    case TypeKind::kInteger:
      return v.is_int64() ? v.get_int64() == 0 : v.is_uint64() && v.get_uint64() == 0;
    case TypeKind::kBoolean:
      return v.is_bool() && !v.get_bool();
    case TypeKind::kNumber:
      return v.is_double() && v.get_double() == 0;
    default:
      return false;
  }
}

using Optional = std::optional<json::value>;  // nullopt: nothing to write (zero time, no raw)

class Decoder {
 public:
  // magic + runtime.Unknown + object.
  std::expected<json::value, std::string> envelope(Bytes body, int depth) {
    if (body.size() > kMaxBodyBytes) {
      return fail(nullptr, "body of " + std::to_string(body.size()) +
                               " bytes exceeds the limit of " + std::to_string(kMaxBodyBytes) +
                               " bytes");
    }
    if (body.size() < kMagic.size() || as_chars(body.first(kMagic.size())) != kMagic) {
      return fail(nullptr,
                  "not a Kubernetes protobuf body: it does not start with the magic "
                  "\"k8s\\x00\"");
    }
    if (depth > kMaxDepth) return too_deep(nullptr);
    std::string api_version, kind, encoding, content_type;
    Bytes raw;
    Reader r(body.subspan(kMagic.size()), kMagic.size());
    while (!r.done()) {
      auto o = r.next();
      if (!o) return fail(nullptr, "envelope: " + o.error());
      if (o->number > 4) continue;
      if (o->wire_type != kLengthDelimited) {
        return fail(nullptr, "envelope: field " + std::to_string(o->number) + " has wire type " +
                                 std::string(wire_type_name(o->wire_type)) +
                                 ", want length-delimited");
      }
      switch (o->number) {
        case 1: {  // typeMeta {apiVersion = 1, kind = 2}
          Reader tm(o->bytes, o->payload_offset);
          while (!tm.done()) {
            auto t = tm.next();
            if (!t) return fail(nullptr, "envelope typeMeta: " + t.error());
            if (t->number != 1 && t->number != 2) continue;
            if (t->wire_type != kLengthDelimited) {
              return fail(nullptr, "envelope typeMeta: field " + std::to_string(t->number) +
                                       " is not a string");
            }
            (t->number == 1 ? api_version : kind) = utf8(t->bytes);
          }
          break;
        }
        case 2:
          raw = o->bytes;
          break;
        case 3:
          encoding = utf8(o->bytes);
          break;
        case 4:
          content_type = utf8(o->bytes);
          break;
      }
    }
    if (!encoding.empty()) {
      return fail(nullptr, "content encoding \"" + encoding + "\" is not supported");
    }
    if (!content_type.empty() && content_type != kProtobufContentType) {
      return fail(nullptr, "the envelope's content type \"" + content_type + "\" is not " +
                               std::string(kProtobufContentType));
    }
    if (api_version.empty() || kind.empty()) {
      return fail(nullptr, "the envelope names no apiVersion and kind");
    }
    std::string_view group, version = api_version;
    if (size_t slash = api_version.find('/'); slash != std::string::npos) {
      group = std::string_view(api_version).substr(0, slash);
      version = std::string_view(api_version).substr(slash + 1);
    }
    const Type* type = kind_type(group, version, kind);
    if (type == nullptr || type->kind != TypeKind::kStruct) {
      return fail(nullptr,
                  "no kind \"" + kind + "\" is registered for version \"" + api_version + "\"");
    }
    json::object out;
    out["apiVersion"] = api_version;
    out["kind"] = kind;
    if (auto ok = message(*type, raw, 0, out, nullptr, depth + 1); !ok) {
      return std::unexpected(ok.error());
    }
    return out;
  }

  std::expected<void, std::string> message(const Type& type, Bytes bytes, std::size_t base,
                                           json::object& out, const Path* path, int depth) {
    if (depth > kMaxDepth) return too_deep(path);
    return fields(Tables::get().of(type), bytes, base, out, path, depth);
  }

 private:
  std::unexpected<std::string> too_deep(const Path* path) {
    return fail(path, "nesting deeper than " + std::to_string(kMaxDepth) + " messages");
  }

  std::expected<void, std::string> count(const Path* path) {
    if (++values_ > kMaxValues) {
      return fail(path, "more than " + std::to_string(kMaxValues) + " values");
    }
    return {};
  }

  static std::unexpected<std::string> wrong_wire_type(const Path* path, const Occurrence& o,
                                                      int want) {
    return fail(path, "field " + std::to_string(o.number) + " at byte " + std::to_string(o.offset) +
                          " has wire type " + std::string(wire_type_name(o.wire_type)) + ", want " +
                          std::string(wire_type_name(want)));
  }

  std::expected<void, std::string> fields(const Table& table, Bytes bytes, std::size_t base,
                                          json::object& out, const Path* path, int depth) {
    Reader r(bytes, base);
    while (!r.done()) {
      auto o = r.next();
      if (!o) return fail(path, o.error());
      auto it = table.slots.find(o->number);
      if (it == table.slots.end()) continue;  // unknown field: skipped, as upstream does
      const Slot& slot = it->second;
      if (slot.group != nullptr) {
        // An embedded message whose fields JSON inlines into `out`.
        if (o->wire_type != kLengthDelimited) return wrong_wire_type(path, *o, kLengthDelimited);
        if (depth + 1 > kMaxDepth) return too_deep(path);
        if (auto ok = fields(*slot.group, o->bytes, o->payload_offset, out, path, depth + 1); !ok) {
          return ok;
        }
        continue;
      }
      if (auto ok = field(*slot.field, *o, out, path, depth); !ok) return ok;
    }
    return {};
  }

  std::expected<void, std::string> field(const Field& f, const Occurrence& o, json::object& out,
                                         const Path* path, int depth) {
    const Type& t = *f.type;
    Path here{path, f.name};
    switch (t.kind) {
      case TypeKind::kArray: {
        json::value& slot = out[f.name];
        if (!slot.is_array()) slot = json::array();
        json::array& arr = slot.get_array();
        const Type& item = *t.items;
        if (o.wire_type == kLengthDelimited && packable(item)) return packed(item, o, arr, &here);
        Path at{&here, {}, arr.size(), true};
        auto v = value(item, o, &at, depth);
        if (!v) return std::unexpected(v.error());
        if (auto ok = count(&at); !ok) return ok;
        arr.push_back(*v ? std::move(**v) : json::value(nullptr));
        return {};
      }
      case TypeKind::kMap: {
        if (o.wire_type != kLengthDelimited) return wrong_wire_type(&here, o, kLengthDelimited);
        json::value& slot = out[f.name];
        if (!slot.is_object()) slot = json::object();
        return entry(*t.items, o, slot.get_object(), &here, depth);
      }
      case TypeKind::kStruct: {
        if (o.wire_type != kLengthDelimited) return wrong_wire_type(&here, o, kLengthDelimited);
        json::value& slot = out[f.name];
        if (!slot.is_object()) {
          if (auto ok = count(&here); !ok) return ok;
          slot = json::object();
        }
        return message(t, o.bytes, o.payload_offset, slot.get_object(), &here, depth + 1);
      }
      default: {
        auto v = value(t, o, &here, depth);
        if (!v) return std::unexpected(v.error());
        if (!*v || (zero_droppable(t, **v) && !f.protobuf_pointer && !f.required)) {
          out.erase(f.name);  // a later occurrence wins, also when it is the zero value
          return {};
        }
        if (auto ok = count(&here); !ok) return ok;
        out[f.name] = std::move(**v);
        return {};
      }
    }
  }

  // A packed repeated scalar: the payload is the values back to back.
  std::expected<void, std::string> packed(const Type& item, const Occurrence& o, json::array& arr,
                                          const Path* path) {
    Reader r(o.bytes, o.payload_offset);
    while (!r.done()) {
      Occurrence one;
      one.number = o.number;
      one.offset = r.offset();
      bool fixed = item.kind == TypeKind::kNumber;
      auto v = fixed ? r.fixed64() : r.varint();
      if (!v) return fail(path, "packed values: " + v.error());
      one.wire_type = fixed ? kFixed64 : kVarint;
      one.scalar = *v;
      Path at{path, {}, arr.size(), true};
      auto got = value(item, one, &at, 0);
      if (!got) return std::unexpected(got.error());
      if (auto ok = count(&at); !ok) return ok;
      arr.push_back(std::move(**got));
    }
    return {};
  }

  // A map entry {key = 1, value = 2}; a missing value is the zero value, as in Go.
  std::expected<void, std::string> entry(const Type& value_type, const Occurrence& o,
                                         json::object& obj, const Path* path, int depth) {
    if (depth + 1 > kMaxDepth) return too_deep(path);
    Reader r(o.bytes, o.payload_offset);
    std::string key;
    std::optional<Occurrence> val;
    while (!r.done()) {
      auto e = r.next();
      if (!e) return fail(path, e.error());
      if (e->number == 1) {
        if (e->wire_type != kLengthDelimited) return wrong_wire_type(path, *e, kLengthDelimited);
        key = utf8(e->bytes);
      } else if (e->number == 2) {
        val = *e;
      }
    }
    Path at{path, key, 0, false, true};
    if (!val) {
      val.emplace();
      val->number = 2;
      bool varint = packable(value_type) && value_type.kind != TypeKind::kNumber;
      val->wire_type = varint                                 ? kVarint
                       : value_type.kind == TypeKind::kNumber ? kFixed64
                                                              : kLengthDelimited;
      val->payload_offset = o.payload_offset + o.bytes.size();
    }
    auto got = value(value_type, *val, &at, depth + 1);
    if (!got) return std::unexpected(got.error());
    json::value v = *got ? std::move(**got) : json::value(nullptr);
    if (auto ok = count(&at); !ok) return ok;
    obj[key] = std::move(v);
    return {};
  }

  // A single value of `t` (not a list or map).
  std::expected<Optional, std::string> value(const Type& t, const Occurrence& o, const Path* path,
                                             int depth) {
    auto want = [&](int wire_type) { return o.wire_type == wire_type; };
    switch (t.kind) {
      case TypeKind::kString:
        if (t.name == kTime || t.name == kMicroTime) return time(t.name == kMicroTime, o, path);
        if (!want(kLengthDelimited)) return wrong_wire_type(path, o, kLengthDelimited);
        if (t.format == "byte") return Optional(json::value(base64(o.bytes)));
        return Optional(json::value(utf8(o.bytes)));
      case TypeKind::kInteger:
        if (!want(kVarint)) return wrong_wire_type(path, o, kVarint);
        if (t.format == "int32") {
          // Go keeps the low 32 bits (negative int32s are sign-extended to 10-byte varints).
          return Optional(json::value(static_cast<std::int64_t>(
              static_cast<std::int32_t>(static_cast<std::uint32_t>(o.scalar)))));
        }
        return Optional(json::value(static_cast<std::int64_t>(o.scalar)));
      case TypeKind::kBoolean:
        if (!want(kVarint)) return wrong_wire_type(path, o, kVarint);
        return Optional(json::value(o.scalar != 0));
      case TypeKind::kNumber: {
        double d = 0;
        if (want(kFixed64)) {
          d = std::bit_cast<double>(o.scalar);
        } else if (want(kFixed32)) {
          d = std::bit_cast<float>(static_cast<std::uint32_t>(o.scalar));
        } else {
          return wrong_wire_type(path, o, kFixed64);
        }
        if (!std::isfinite(d)) return fail(path, "a number that JSON cannot hold (NaN or Inf)");
        return Optional(json::value(d));
      }
      case TypeKind::kQuantity:
        if (!want(kLengthDelimited)) return wrong_wire_type(path, o, kLengthDelimited);
        return quantity(o, path);
      case TypeKind::kIntOrString:
        if (!want(kLengthDelimited)) return wrong_wire_type(path, o, kLengthDelimited);
        return int_or_string(o, path);
      case TypeKind::kFreeForm:
        if (t.name != kRawExtension && t.name != kFieldsV1) {
          return Optional();  // no known encoding (Patch): dropped
        }
        if (!want(kLengthDelimited)) return wrong_wire_type(path, o, kLengthDelimited);
        return raw(o, path, depth);
      case TypeKind::kStruct: {
        if (!want(kLengthDelimited)) return wrong_wire_type(path, o, kLengthDelimited);
        json::object sub;
        if (auto ok = message(t, o.bytes, o.payload_offset, sub, path, depth + 1); !ok) {
          return std::unexpected(ok.error());
        }
        return Optional(json::value(std::move(sub)));
      }
      case TypeKind::kArray:
      case TypeKind::kMap:
        break;
    }
    return fail(path, "a list or map nested in a list or map has no protobuf encoding");
  }

  // metav1.Time / MicroTime: Timestamp {seconds = 1, nanos = 2}.
  static std::expected<Optional, std::string> time(bool micro, const Occurrence& o,
                                                   const Path* path) {
    if (o.wire_type != kLengthDelimited) return wrong_wire_type(path, o, kLengthDelimited);
    if (o.bytes.empty()) return Optional();  // the zero time
    std::int64_t sec = 0, nsec = 0;
    Reader r(o.bytes, o.payload_offset);
    while (!r.done()) {
      auto f = r.next();
      if (!f) return fail(path, f.error());
      if (f->number != 1 && f->number != 2) continue;
      if (f->wire_type != kVarint) return wrong_wire_type(path, *f, kVarint);
      if (f->number == 1) {
        sec = static_cast<std::int64_t>(f->scalar);
      } else {
        nsec = static_cast<std::int32_t>(static_cast<std::uint32_t>(f->scalar));
      }
    }
    if (!micro) nsec = 0;  // metav1.Time keeps whole seconds
    // time.Unix normalizes nanoseconds outside [0, 1e9).
    if (nsec < 0 || nsec >= 1000000000) {
      std::int64_t carry = nsec / 1000000000;
      nsec %= 1000000000;
      if (nsec < 0) {
        nsec += 1000000000;
        --carry;
      }
      if ((carry > 0 && sec > INT64_MAX - carry) || (carry < 0 && sec < INT64_MIN - carry)) {
        return fail(path, "time out of range");
      }
      sec += carry;
    }
    if (sec == kGoZeroTimeUnix && nsec == 0) return Optional();
    auto s = format_time(sec, nsec, micro);
    if (!s) return fail(path, s.error());
    return Optional(json::value(*s));
  }

  // resource.Quantity {string = 1}; a message without it is the zero quantity, "0".
  static std::expected<Optional, std::string> quantity(const Occurrence& o, const Path* path) {
    std::string s = "0";
    Reader r(o.bytes, o.payload_offset);
    while (!r.done()) {
      auto f = r.next();
      if (!f) return fail(path, f.error());
      if (f->number != 1) continue;
      if (f->wire_type != kLengthDelimited) return wrong_wire_type(path, *f, kLengthDelimited);
      s = utf8(f->bytes);
    }
    return Optional(json::value(std::move(s)));
  }

  // intstr.IntOrString {type = 1 (0 int, 1 string), intVal = 2, strVal = 3}.
  static std::expected<Optional, std::string> int_or_string(const Occurrence& o, const Path* path) {
    std::int64_t type = 0;
    std::int64_t int_val = 0;
    std::string str_val;
    Reader r(o.bytes, o.payload_offset);
    while (!r.done()) {
      auto f = r.next();
      if (!f) return fail(path, f.error());
      if (f->number == 1 || f->number == 2) {
        if (f->wire_type != kVarint) return wrong_wire_type(path, *f, kVarint);
        if (f->number == 1) {
          type = static_cast<std::int64_t>(f->scalar);
        } else {
          int_val = static_cast<std::int32_t>(static_cast<std::uint32_t>(f->scalar));
        }
      } else if (f->number == 3) {
        if (f->wire_type != kLengthDelimited) return wrong_wire_type(path, *f, kLengthDelimited);
        str_val = utf8(f->bytes);
      }
    }
    if (type == 0) return Optional(json::value(int_val));
    if (type == 1) return Optional(json::value(std::move(str_val)));
    return fail(path,
                "IntOrString type " + std::to_string(type) + " is neither 0 (int) nor 1 (string)");
  }

  // runtime.RawExtension / metav1.FieldsV1 {raw = 1}: embedded JSON, or an embedded protobuf
  // object when it starts with the magic. No raw: nothing to write.
  std::expected<Optional, std::string> raw(const Occurrence& o, const Path* path, int depth) {
    Bytes bytes;
    Reader r(o.bytes, o.payload_offset);
    while (!r.done()) {
      auto f = r.next();
      if (!f) return fail(path, f.error());
      if (f->number != 1) continue;
      if (f->wire_type != kLengthDelimited) return wrong_wire_type(path, *f, kLengthDelimited);
      bytes = f->bytes;
    }
    if (bytes.empty()) return Optional();
    if (as_chars(bytes).starts_with(kMagic)) {
      auto v = envelope(bytes, depth + 1);
      if (!v) return std::unexpected(v.error());
      return Optional(std::move(*v));
    }
    int budget = kMaxDepth - depth;
    if (budget < 1) return too_deep(path);
    auto v = parse_json(as_chars(bytes), budget);
    if (!v) return fail(path, "embedded object: " + v.error());
    return Optional(std::move(*v));
  }

  std::size_t values_ = 0;
};

}  // namespace

std::expected<json::value, std::string> decode_protobuf(std::span<const std::uint8_t> body) {
  return Decoder().envelope(body, 0);
}

std::expected<json::value, std::string> decode_protobuf(std::string_view body) {
  return decode_protobuf(
      std::span(reinterpret_cast<const std::uint8_t*>(body.data()), body.size()));
}

std::expected<json::value, std::string> decode_protobuf_message(const Type& type,
                                                                std::span<const std::uint8_t> raw) {
  if (raw.size() > kMaxBodyBytes) {
    return fail(nullptr, "message of " + std::to_string(raw.size()) +
                             " bytes exceeds the limit of " + std::to_string(kMaxBodyBytes) +
                             " bytes");
  }
  if (type.kind != TypeKind::kStruct) {
    return fail(nullptr, type.short_name() + " is not a message type");
  }
  json::object out;
  if (auto ok = Decoder().message(type, raw, 0, out, nullptr, 1); !ok) {
    return std::unexpected(ok.error());
  }
  return out;
}

}  // namespace podwarp::schema
