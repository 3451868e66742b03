#include "validation/quantity.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace podwarp::validation {

namespace {

constexpr std::string_view kErrFormat =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr std::string_view kErrSuffix = "unable to parse quantity's suffix";
constexpr std::string_view kErrNumeric = "unable to parse numeric part of quantity";

constexpr int kMaxDigits = 36;  // keeps mantissa * 2^60 and 10^2 adjustments inside __int128
constexpr __int128 kInt128Max =
    (static_cast<__int128>(std::numeric_limits<std::int64_t>::max()) << 64) |
    static_cast<__int128>(std::numeric_limits<std::uint64_t>::max());

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Multiplies m by 10^d; false on overflow.
bool mul_pow10(__int128& m, int d) {
  for (int i = 0; i < d; ++i) {
    if (m > kInt128Max / 10 || m < -(kInt128Max / 10)) return false;
    m *= 10;
  }
  return true;
}

__int128 abs128(__int128 v) { return v < 0 ? -v : v; }

std::string to_string128(__int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
  char buf[48];
  int i = 0;
  while (u > 0) {
    buf[i++] = static_cast<char>('0' + static_cast<int>(u % 10));
    u /= 10;
  }
  std::string s = neg ? "-" : "";
  while (i > 0) s += buf[--i];
  return s;
}

struct Parts {
  bool positive = true;
  std::string_view num, denom, suffix;
};

// Upstream's parseQuantityString.
std::expected<Parts, std::string> split(std::string_view str) {
  Parts p;
  std::size_t pos = 0, end = str.size();
  if (pos < end && (str[0] == '-' || str[0] == '+')) {
    p.positive = str[0] != '-';
    ++pos;
  }
  while (pos < end && str[pos] == '0') ++pos;
  if (pos >= end) {
    p.num = "0";
    return p;
  }
  std::size_t start = pos;
  while (pos < end && is_digit(str[pos])) ++pos;
  p.num = str.substr(start, pos - start);
  if (pos >= end) return p;
  if (p.num.empty()) p.num = "0";
  if (str[pos] == '.') {
    ++pos;
    start = pos;
    while (pos < end && is_digit(str[pos])) ++pos;
    p.denom = str.substr(start, pos - start);
    if (pos >= end) return p;
  }
  std::size_t suffix_start = pos;
  while (pos < end && std::strchr("eEinumkKMGTP", str[pos]) != nullptr) ++pos;
  if (pos < end && (str[pos] == '-' || str[pos] == '+')) ++pos;
  while (pos < end && is_digit(str[pos])) ++pos;
  if (pos < end) return std::unexpected(std::string(kErrFormat));
  p.suffix = str.substr(suffix_start);
  return p;
}

struct Suffix {
  int base = 10;
  int exponent = 0;
  Quantity::Format format = Quantity::Format::kDecimalSI;
};

std::optional<Suffix> interpret(std::string_view s) {
  static constexpr std::pair<std::string_view, int> kDec[] = {
      {"", 0},  {"n", -9}, {"u", -6}, {"m", -3}, {"k", 3},
      {"M", 6}, {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
  static constexpr std::pair<std::string_view, int> kBin[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                              {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  for (auto [k, e] : kDec) {
    if (s == k) return Suffix{10, e, Quantity::Format::kDecimalSI};
  }
  for (auto [k, e] : kBin) {
    if (s == k) return Suffix{2, e, Quantity::Format::kBinarySI};
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::string_view digits = s.substr(1);
    bool neg = false;
    if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
      neg = digits[0] == '-';
      digits.remove_prefix(1);
    }
    if (digits.empty() || digits.size() > 9) return std::nullopt;
    int e = 0;
    for (char c : digits) {
      if (!is_digit(c)) return std::nullopt;
      e = e * 10 + (c - '0');
    }
    return Suffix{10, neg ? -e : e, Quantity::Format::kDecimalExponent};
  }
  return std::nullopt;
}

}  // namespace

std::expected<Quantity, std::string> Quantity::parse(std::string_view s) {
  if (s.empty()) return std::unexpected(std::string(kErrFormat));
  auto parts = split(s);
  if (!parts) return std::unexpected(parts.error());
  auto suffix = interpret(parts->suffix);
  if (!suffix) return std::unexpected(std::string(kErrSuffix));

  // Significant digits num.denom as an integer times 10^exp.
  std::string digits(parts->num);
  digits += parts->denom;
  int exp = -static_cast<int>(parts->denom.size());
  std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return Quantity(0, 0, suffix->format);
  digits.erase(0, first);
  while (digits.size() > 1 && digits.back() == '0') {
    digits.pop_back();
    ++exp;
  }
  bool round_up_last = false;
  if (digits.size() > kMaxDigits) {
    exp += static_cast<int>(digits.size()) - kMaxDigits;
    round_up_last = true;  // upstream keeps every digit; we keep 36 and round away from zero
    digits.resize(kMaxDigits);
  }
  __int128 m = 0;
  for (char c : digits) {
    if (!is_digit(c)) return std::unexpected(std::string(kErrNumeric));
    m = m * 10 + (c - '0');
  }
  if (round_up_last) m += 1;
  if (suffix->base == 10) {
    exp += suffix->exponent;
  } else {
    for (int i = 0; i < suffix->exponent; ++i) {
      if (m > kInt128Max / 2) return std::unexpected(std::string(kErrNumeric));
      m *= 2;
    }
  }
  Quantity q(parts->positive ? m : -m, exp, suffix->format);
  q.round_up(-9);
  q.normalize();
  if (q.format_ == Format::kBinarySI && q.compare(from_int(1)) < 0 && q.sign() > 0) {
    q.format_ = Format::kDecimalSI;
  }
  return q;
}

std::expected<Quantity, std::string> Quantity::from_json(const json::value& v) {
  if (v.is_string()) {
    std::string_view s(v.get_string().data(), v.get_string().size());
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
      s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) {
      s.remove_suffix(1);
    }
    return parse(s);
  }
  if (v.is_int64()) return parse(std::to_string(v.get_int64()));
  if (v.is_uint64()) return parse(std::to_string(v.get_uint64()));
  if (v.is_double()) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
    return parse(std::string_view(buf, r.ptr - buf));
  }
  return std::unexpected(std::string(kErrFormat));
}

void Quantity::normalize() {
  if (mant_ == 0) {
    exp_ = 0;
    return;
  }
  while (mant_ % 10 == 0) {
    mant_ /= 10;
    ++exp_;
  }
}

int Quantity::compare(const Quantity& o) const {
  if (sign() != o.sign()) return sign() < o.sign() ? -1 : 1;
  if (mant_ == 0) return 0;
  __int128 a = mant_, b = o.mant_;
  int ea = exp_, eb = o.exp_;
  bool ok = ea >= eb ? mul_pow10(a, ea - eb) : mul_pow10(b, eb - ea);
  if (!ok) {
    // The scaled side is larger in magnitude than anything the other side can hold.
    int mag = ea >= eb ? 1 : -1;
    return sign() > 0 ? mag : -mag;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

bool Quantity::is_integer() const {
  Quantity n = *this;
  n.normalize();
  return n.mant_ == 0 || n.exp_ >= 0;
}

void Quantity::round_up(int exp10) {
  if (mant_ == 0 || exp_ >= exp10) return;
  int d = exp10 - exp_;
  __int128 mag = abs128(mant_);
  __int128 div = 1;
  bool huge = false;
  for (int i = 0; i < d; ++i) {
    if (div > kInt128Max / 10) {
      huge = true;
      break;
    }
    div *= 10;
  }
  __int128 r = huge ? 1 : (mag + div - 1) / div;
  mant_ = mant_ < 0 ? -r : r;
  exp_ = exp10;
}

void Quantity::add(const Quantity& o) {
  if (o.mant_ == 0) return;
  if (mant_ == 0) {
    mant_ = o.mant_;
    exp_ = o.exp_;
    return;
  }
  __int128 a = mant_, b = o.mant_;
  int e = std::min(exp_, o.exp_);
  if (mul_pow10(a, exp_ - e) && mul_pow10(b, o.exp_ - e)) {
    mant_ = a + b;
    exp_ = e;
    normalize();
  }
}

bool Quantity::is_multiple_of(const Quantity& unit) const {
  if (unit.mant_ == 0) return false;
  __int128 a = mant_, b = unit.mant_;
  int ea = exp_, eb = unit.exp_;
  bool ok = ea >= eb ? mul_pow10(a, ea - eb) : mul_pow10(b, eb - ea);
  if (!ok) return false;
  return a % b == 0;
}

std::string Quantity::str() const {
  if (mant_ == 0) return "0";
  Quantity n = *this;
  n.normalize();
  Format f = format_;
  if (f == Format::kBinarySI) {
    bool small = n.compare(from_int(-1024)) > 0 && n.compare(from_int(1024)) < 0;
    if (small || n.exp_ < 0) f = Format::kDecimalSI;
  }
  if (f == Format::kBinarySI) {
    __int128 v = n.mant_;
    if (mul_pow10(v, n.exp_)) {
      static constexpr std::string_view kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
      int k = 0;
      while (k < 6 && v % 1024 == 0) {
        v /= 1024;
        ++k;
      }
      return to_string128(v) + std::string(kSuffix[k]);
    }
    f = Format::kDecimalSI;
  }
  __int128 m = n.mant_;
  int e = n.exp_;
  switch (e % 3) {
    case 1:
    case -2:
      m *= 10;
      e -= 1;
      break;
    case 2:
    case -1:
      m *= 100;
      e -= 2;
      break;
    default:
      break;
  }
  std::string out = to_string128(m);
  if (e == 0) return out;
  if (f == Format::kDecimalSI && e >= -9 && e <= 18) {
    static constexpr std::string_view kDec[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    return out + std::string(kDec[(e + 9) / 3]);
  }
  return out + "e" + std::to_string(e);
}

}  // namespace podwarp::validation
