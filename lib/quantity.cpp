#include "podwarp/quantity.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <optional>

namespace podwarp {
namespace {

using i128 = __int128;
using u128 = unsigned __int128;

constexpr std::string_view kErrFormatWrong =
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr std::string_view kErrSuffix = "unable to parse quantity's suffix";

constexpr i128 kNanosPerUnit = 1'000'000'000;
constexpr i128 kI128Max = static_cast<i128>(~u128{0} >> 1);
constexpr i128 kI128Min = -kI128Max - 1;

constexpr u128 pow10_u128(int n) {
  u128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

// Parse caps (see the header): BinarySI at 2^63-1 units, decimal formats at 10^27 units.
constexpr u128 kBinaryCapNanos = u128{static_cast<std::uint64_t>(INT64_MAX)} * 1'000'000'000u;
constexpr u128 kDecimalCapNanos = pow10_u128(36);

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The pieces of a quantity string, as upstream's parseQuantityString splits them.
struct Scanned {
  bool positive = true;
  std::string_view num;     // integer digits, leading zeros stripped ("0" when none)
  std::string_view denom;   // fraction digits
  std::string_view suffix;  // everything after the number
};

// A port of upstream's scanner, quirks included ("-" alone is zero, "1." and ".5" parse).
std::optional<Scanned> scan(std::string_view s) {
  Scanned out;
  std::size_t pos = 0;
  const std::size_t end = s.size();
  if (pos < end) {
    if (s[0] == '-') {
      out.positive = false;
      ++pos;
    } else if (s[0] == '+') {
      ++pos;
    }
  }
  // Leading zeros.
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      out.num = "0";
      return out;
    }
    if (s[i] != '0') break;
    ++pos;
  }
  // Numerator.
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      out.num = s.substr(pos);
      return out;
    }
    if (!is_digit(s[i])) {
      out.num = s.substr(pos, i - pos);
      pos = i;
      break;
    }
  }
  if (out.num.empty()) out.num = "0";
  // Denominator.
  if (pos < end && s[pos] == '.') {
    ++pos;
    for (std::size_t i = pos;; ++i) {
      if (i >= end) {
        out.denom = s.substr(pos);
        return out;
      }
      if (!is_digit(s[i])) {
        out.denom = s.substr(pos, i - pos);
        pos = i;
        break;
      }
    }
  }
  // Suffix: letters, then an optional sign and digits.
  const std::size_t suffix_start = pos;
  constexpr std::string_view kSuffixLetters = "eEinumkKMGTP";
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      out.suffix = s.substr(suffix_start);
      return out;
    }
    if (kSuffixLetters.find(s[i]) == std::string_view::npos) {
      pos = i;
      break;
    }
  }
  if (pos < end && (s[pos] == '-' || s[pos] == '+')) ++pos;
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      out.suffix = s.substr(suffix_start);
      return out;
    }
    if (!is_digit(s[i])) break;
  }
  return std::nullopt;
}

struct Suffix {
  int base = 10;  // 10 or 2
  std::int64_t exponent = 0;
  Quantity::Format format = Quantity::Format::kDecimalSI;
};

// Go's strconv.ParseInt(s, 10, 64).
std::optional<std::int64_t> parse_go_int64(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  u128 v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
    if (v > u128{1} << 63) return std::nullopt;
  }
  if (!neg && v > static_cast<u128>(INT64_MAX)) return std::nullopt;
  return neg ? static_cast<std::int64_t>(-static_cast<i128>(v)) : static_cast<std::int64_t>(v);
}

std::optional<Suffix> interpret(std::string_view s) {
  using F = Quantity::Format;
  struct Entry {
    std::string_view name;
    int base;
    int exponent;
    F format;
  };
  static constexpr std::array<Entry, 16> kTable{{
      {"", 10, 0, F::kDecimalSI},
      {"n", 10, -9, F::kDecimalSI},
      {"u", 10, -6, F::kDecimalSI},
      {"m", 10, -3, F::kDecimalSI},
      {"k", 10, 3, F::kDecimalSI},
      {"M", 10, 6, F::kDecimalSI},
      {"G", 10, 9, F::kDecimalSI},
      {"T", 10, 12, F::kDecimalSI},
      {"P", 10, 15, F::kDecimalSI},
      {"E", 10, 18, F::kDecimalSI},
      {"Ki", 2, 10, F::kBinarySI},
      {"Mi", 2, 20, F::kBinarySI},
      {"Gi", 2, 30, F::kBinarySI},
      {"Ti", 2, 40, F::kBinarySI},
      {"Pi", 2, 50, F::kBinarySI},
      {"Ei", 2, 60, F::kBinarySI},
  }};
  for (const Entry& e : kTable) {
    if (e.name == s) return Suffix{e.base, e.exponent, e.format};
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    // Upstream parses at 64 bits and rejects what does not fit its int32 scale.
    auto exp = parse_go_int64(s.substr(1));
    if (!exp || *exp > INT32_MAX || *exp < -INT32_MAX) return std::nullopt;
    return Suffix{10, *exp, F::kDecimalExponent};
  }
  return std::nullopt;
}

// Magnitude in nanos of digits * 10^(exp10 - denom_len + 9) * 2^bin_exp, rounded up to an
// integer and capped at cap. Never overflows whatever the input length or exponent.
u128 magnitude_nanos(std::string_view num, std::string_view denom, std::int64_t exp10, int bin_exp,
                     u128 cap) {
  std::string digits;
  digits.reserve(num.size() + denom.size());
  digits.append(num);
  digits.append(denom);
  const std::size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 0;
  std::string_view sig(digits);
  sig.remove_prefix(first);
  // exp10 is within +-2^31 and denom is bounded by memory, so this cannot overflow.
  std::int64_t t = exp10 + 9 - static_cast<std::int64_t>(denom.size());
  while (sig.back() == '0') {
    sig.remove_suffix(1);
    ++t;
  }
  const auto len = static_cast<std::int64_t>(sig.size());
  // The value is at least 10^(len-1+t); every cap is below 10^37.
  if (len - 1 + t >= 37) return cap;
  const u128 mult = u128{1} << bin_exp;

  auto digits_value = [](std::string_view d) {
    u128 v = 0;
    for (char c : d) v = v * 10 + static_cast<unsigned>(c - '0');
    return v;
  };

  u128 result = 0;
  if (t >= 0) {
    // len + t <= 37 digits: fits in 128 bits.
    u128 v = digits_value(sig);
    for (std::int64_t i = 0; i < t; ++i) v *= 10;
    if (__builtin_mul_overflow(v, mult, &result)) return cap;
  } else {
    const std::int64_t k = -t;  // digits after the decimal point
    std::string_view int_part, frac_part = sig;
    std::int64_t implied_zeros = 0;  // zeros between the point and the first digit
    if (len > k) {
      int_part = sig.substr(0, static_cast<std::size_t>(len - k));
      frac_part = sig.substr(static_cast<std::size_t>(len - k));
    } else {
      implied_zeros = k - len;
    }
    u128 carry = 0;
    bool frac_nonzero = false;
    if (mult == 1) {
      frac_nonzero = !frac_part.empty();
    } else {
      // Long multiplication of 0.<zeros><frac_part> by mult, from the last digit.
      for (auto it = frac_part.rbegin(); it != frac_part.rend(); ++it) {
        const u128 x = static_cast<unsigned>(*it - '0') * mult + carry;
        if (x % 10 != 0) frac_nonzero = true;
        carry = x / 10;
      }
      for (std::int64_t i = 0; i < implied_zeros && carry != 0; ++i) {
        if (carry % 10 != 0) frac_nonzero = true;
        carry /= 10;
      }
    }
    u128 ip = 0;
    if (__builtin_mul_overflow(digits_value(int_part), mult, &ip)) return cap;
    if (__builtin_add_overflow(ip, carry + (frac_nonzero ? 1 : 0), &result)) return cap;
  }
  return std::min(result, cap);
}

std::string u128_to_string(u128 v) {
  if (v == 0) return "0";
  char buf[48];
  int n = 0;
  while (v != 0) {
    buf[n++] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  }
  std::string out(static_cast<std::size_t>(n), '0');
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = buf[n - 1 - i];
  return out;
}

u128 abs_u128(i128 v) {
  return v < 0 ? static_cast<u128>(0) - static_cast<u128>(v) : static_cast<u128>(v);
}

// Canonical mantissa and base-10 exponent (a multiple of 3), as upstream AsCanonicalBytes.
std::pair<u128, int> canonical_decimal(u128 magnitude_nanos) {
  u128 m = magnitude_nanos;
  int e = -9;
  while (m >= 10 && m % 10 == 0) {
    m /= 10;
    ++e;
  }
  while (e % 3 != 0) {
    m *= 10;  // only undoes stripped zeros: e never drops below -9
    --e;
  }
  return {m, e};
}

std::string decimal_string(u128 magnitude, Quantity::Format format) {
  auto [m, e] = canonical_decimal(magnitude);
  std::string number = u128_to_string(m);
  if (format == Quantity::Format::kDecimalSI) {
    switch (e) {
      case -9:
        return number + "n";
      case -6:
        return number + "u";
      case -3:
        return number + "m";
      case 0:
        return number;
      case 3:
        return number + "k";
      case 6:
        return number + "M";
      case 9:
        return number + "G";
      case 12:
        return number + "T";
      case 15:
        return number + "P";
      case 18:
        return number + "E";
      default:
        break;  // beyond E: exponent notation, as upstream
    }
  }
  if (e == 0) return number;
  return fmt::format("{}e{}", number, e);
}

i128 saturate(i128 a, i128 b, bool subtract, bool* overflow) {
  i128 r = 0;
  const bool of = subtract ? __builtin_sub_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r);
  if (overflow != nullptr) *overflow = of;
  if (!of) return r;
  // On overflow the true result has the sign of a (add: a and b agree; sub: b opposes a).
  return a < 0 ? kI128Min : kI128Max;
}

}  // namespace

std::expected<Quantity, std::string> Quantity::parse(std::string_view text) {
  if (text.empty()) return std::unexpected(std::string(kErrFormatWrong));
  auto scanned = scan(text);
  if (!scanned) return std::unexpected(std::string(kErrFormatWrong));
  auto suffix = interpret(scanned->suffix);
  if (!suffix) return std::unexpected(std::string(kErrSuffix));

  const bool binary = suffix->base == 2;
  const u128 cap = binary ? kBinaryCapNanos : kDecimalCapNanos;
  const u128 mag = binary ? magnitude_nanos(scanned->num, scanned->denom, 0,
                                            static_cast<int>(suffix->exponent), cap)
                          : magnitude_nanos(scanned->num, scanned->denom, suffix->exponent, 0, cap);
  Format format = suffix->format;
  // A BinarySI value strictly between 0 and 1 is shown as DecimalSI (upstream).
  if (format == Format::kBinarySI && mag != 0 && mag < static_cast<u128>(kNanosPerUnit)) {
    format = Format::kDecimalSI;
  }
  const i128 nanos = static_cast<i128>(mag);
  return Quantity(scanned->positive ? nanos : -nanos, format);
}

std::expected<Quantity, std::string> Quantity::from_json(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return Quantity();
    case json::kind::string: {
      std::string_view s = v.get_string();
      constexpr std::string_view kSpace = " \t\n\r\v\f";
      const std::size_t b = s.find_first_not_of(kSpace);
      if (b == std::string_view::npos) return parse("");
      const std::size_t e = s.find_last_not_of(kSpace);
      return parse(s.substr(b, e - b + 1));
    }
    case json::kind::int64:
      return parse(fmt::format("{}", v.get_int64()));
    case json::kind::uint64:
      return parse(fmt::format("{}", v.get_uint64()));
    case json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) return std::unexpected(std::string(kErrFormatWrong));
      return parse(fmt::format("{}", d));
    }
    default:
      return std::unexpected(std::string(kErrFormatWrong));
  }
}

Quantity Quantity::from_int(std::int64_t units, Format format) {
  return Quantity(static_cast<i128>(units) * kNanosPerUnit, format);
}

Quantity Quantity::from_milli(std::int64_t milli_units, Format format) {
  return Quantity(static_cast<i128>(milli_units) * 1'000'000, format);
}

std::int64_t Quantity::scaled_value(int exponent) const {
  const u128 mag = abs_u128(nanos_);
  const int p = exponent + 9;  // divide the nanos by 10^p
  u128 r = 0;
  if (p >= 0) {
    if (p > 38) {
      r = mag == 0 ? 0 : 1;
    } else {
      const u128 div = pow10_u128(p);
      r = mag / div + (mag % div != 0 ? 1 : 0);
    }
  } else {
    r = mag;
    for (int i = 0; i < -p && r != 0; ++i) {
      if (r > (~u128{0}) / 10) {
        r = ~u128{0};
        break;
      }
      r *= 10;
    }
  }
  if (nanos_ < 0) {
    const u128 lim = u128{1} << 63;
    return r >= lim ? INT64_MIN : -static_cast<std::int64_t>(r);
  }
  return r > static_cast<u128>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(r);
}

double Quantity::as_approximate_double() const { return static_cast<double>(nanos_) / 1e9; }

int Quantity::compare(const Quantity& other) const {
  return nanos_ < other.nanos_ ? -1 : (nanos_ > other.nanos_ ? 1 : 0);
}

Quantity Quantity::operator+(const Quantity& other) const {
  return Quantity(saturate(nanos_, other.nanos_, false, nullptr),
                  nanos_ == 0 ? other.format_ : format_);
}

Quantity Quantity::operator-(const Quantity& other) const {
  return Quantity(saturate(nanos_, other.nanos_, true, nullptr),
                  nanos_ == 0 ? other.format_ : format_);
}

Quantity Quantity::operator-() const {
  return Quantity(nanos_ == kI128Min ? kI128Max : -nanos_, format_);
}

std::expected<Quantity, std::string> Quantity::checked_add(const Quantity& other) const {
  bool overflow = false;
  const i128 r = saturate(nanos_, other.nanos_, false, &overflow);
  if (overflow) return std::unexpected(std::string("quantity overflow"));
  return Quantity(r, nanos_ == 0 ? other.format_ : format_);
}

std::expected<Quantity, std::string> Quantity::checked_sub(const Quantity& other) const {
  bool overflow = false;
  const i128 r = saturate(nanos_, other.nanos_, true, &overflow);
  if (overflow) return std::unexpected(std::string("quantity overflow"));
  return Quantity(r, nanos_ == 0 ? other.format_ : format_);
}

std::string Quantity::to_string() const {
  if (nanos_ == 0) return "0";
  const u128 mag = abs_u128(nanos_);
  const std::string sign = nanos_ < 0 ? "-" : "";
  Format format = format_;
  if (format == Format::kBinarySI) {
    // Small or fractional binary values are shown in decimal to avoid rounding.
    if (mag < static_cast<u128>(1024 * kNanosPerUnit) ||
        mag % static_cast<u128>(kNanosPerUnit) != 0) {
      format = Format::kDecimalSI;
    }
  }
  if (format != Format::kBinarySI) return sign + decimal_string(mag, format);

  u128 units = mag / static_cast<u128>(kNanosPerUnit);
  int times = 0;
  while (units >= 1024 && units % 1024 == 0) {
    units /= 1024;
    ++times;
  }
  static constexpr std::array<std::string_view, 7> kBinary{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  if (times >= static_cast<int>(kBinary.size())) {
    // No binary suffix beyond Ei: exact decimal notation instead (upstream).
    return sign + decimal_string(mag, Format::kDecimalExponent);
  }
  return sign + u128_to_string(units) + std::string(kBinary[static_cast<std::size_t>(times)]);
}

}  // namespace podwarp
