#include "validation/names.h"

#include <arpa/inet.h>

#include <cstring>

namespace podwarp::validation {

namespace {

constexpr std::string_view kDns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1123LabelErr =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character";
constexpr std::string_view kDns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view kDns1035LabelErr =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character";
constexpr std::string_view kWildcardFmt =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kWildcardErr =
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
    "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
    "character";
constexpr std::string_view kEnvVarFmt = "[-._a-zA-Z][-._a-zA-Z0-9]*";
constexpr std::string_view kEnvVarErr =
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit";
constexpr std::string_view kConfigKeyFmt = "[-._a-zA-Z0-9]+";
constexpr std::string_view kConfigKeyErr =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
constexpr std::string_view kPercentFmt = "[0-9]+%";
constexpr std::string_view kPercentErr =
    "a valid percent string must be a numeric string followed by an ending '%'";
constexpr std::string_view kHeaderFmt = "[-A-Za-z0-9]+";
constexpr std::string_view kHeaderErr =
    "a valid HTTP header must consist of alphanumeric characters or '-'";

std::string regex_error(std::string_view msg, std::string_view fmt,
                        std::initializer_list<std::string_view> examples) {
  std::string out(msg);
  if (examples.size() == 0) {
    out += " (regex used for validation is '";
    out += fmt;
    out += "')";
    return out;
  }
  out += " (e.g. ";
  bool first = true;
  for (std::string_view e : examples) {
    if (!first) out += " or ";
    first = false;
    out += '\'';
    out += e;
    out += "', ";
  }
  out += "regex used for validation is '";
  out += fmt;
  out += "')";
  return out;
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool match_dns1123_label(std::string_view v) {
  if (v.empty() || !is_lower_alnum(v.front()) || !is_lower_alnum(v.back())) return false;
  for (char c : v) {
    if (!is_lower_alnum(c) && c != '-') return false;
  }
  return true;
}

bool match_dns1123_subdomain(std::string_view v) {
  if (v.empty()) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = v.find('.', start);
    std::string_view label = v.substr(start, dot == std::string_view::npos ? v.npos : dot - start);
    if (!match_dns1123_label(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool match_dns1035_label(std::string_view v) {
  if (v.empty() || !(v.front() >= 'a' && v.front() <= 'z') || !is_lower_alnum(v.back())) {
    return false;
  }
  for (char c : v) {
    if (!is_lower_alnum(c) && c != '-') return false;
  }
  return true;
}

Messages has_chdir_prefix(std::string_view v) {
  if (v == ".") return {"must not be '.'"};
  if (v == "..") return {"must not be '..'"};
  if (v.starts_with("..")) return {"must not start with '..'"};
  return {};
}

std::string mask_trailing_dash(std::string_view name) {
  // Upstream drops the last two characters before appending "a" (sic).
  if (!name.ends_with('-')) return std::string(name);
  std::string s(name.substr(0, name.size() >= 2 ? name.size() - 2 : 0));
  s += 'a';
  return s;
}

}  // namespace

std::string max_len_error(std::size_t n) {
  return "must be no more than " + std::to_string(n) + " characters";
}

Messages is_dns1123_label(std::string_view v) {
  Messages errs;
  if (v.size() > 63) errs.push_back(max_len_error(63));
  if (!match_dns1123_label(v)) {
    if (match_dns1123_subdomain(v)) {
      errs.emplace_back("must not contain dots");
    } else {
      errs.push_back(regex_error(kDns1123LabelErr, kDns1123LabelFmt, {"my-name", "123-abc"}));
    }
  }
  return errs;
}

Messages is_dns1035_label(std::string_view v) {
  Messages errs;
  if (v.size() > 63) errs.push_back(max_len_error(63));
  if (!match_dns1035_label(v)) {
    errs.push_back(regex_error(kDns1035LabelErr, kDns1035LabelFmt, {"my-name", "abc-123"}));
  }
  return errs;
}

Messages is_wildcard_dns1123_subdomain(std::string_view v) {
  Messages errs;
  if (v.size() > 253) errs.push_back(max_len_error(253));
  if (!v.starts_with("*.") || !match_dns1123_subdomain(v.substr(2))) {
    errs.push_back(regex_error(kWildcardErr, kWildcardFmt, {"*.example.com"}));
  }
  return errs;
}

Messages is_valid_port_num(std::int64_t port) {
  if (port >= 1 && port <= 65535) return {};
  return {inclusive_range_error(1, 65535)};
}

Messages is_valid_port_name(std::string_view v) {
  Messages errs;
  if (v.size() > 15) errs.push_back(max_len_error(15));
  bool charset = !v.empty();
  bool letter = false;
  for (char c : v) {
    if (!is_lower_alnum(c) && c != '-') charset = false;
    if (c >= 'a' && c <= 'z') letter = true;
  }
  if (!charset) {
    errs.emplace_back("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
  }
  if (!letter) errs.emplace_back("must contain at least one letter (a-z)");
  if (v.find("--") != std::string_view::npos) {
    errs.emplace_back("must not contain consecutive hyphens");
  }
  if (!v.empty() && (v.front() == '-' || v.back() == '-')) {
    errs.emplace_back("must not begin or end with a hyphen");
  }
  return errs;
}

Messages is_env_var_name(std::string_view v) {
  Messages errs;
  bool ok = !v.empty() &&
            (is_alpha(v.front()) || v.front() == '-' || v.front() == '.' || v.front() == '_');
  for (char c : v) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') ok = false;
  }
  if (!ok) {
    errs.push_back(
        regex_error(kEnvVarErr, kEnvVarFmt, {"my.env-name", "MY_ENV.NAME", "MyEnvName1"}));
  }
  for (auto& m : has_chdir_prefix(v)) errs.push_back(m);
  return errs;
}

Messages is_config_map_key(std::string_view v) {
  Messages errs;
  if (v.size() > 253) errs.push_back(max_len_error(253));
  bool ok = !v.empty();
  for (char c : v) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_') ok = false;
  }
  if (!ok) {
    errs.push_back(regex_error(kConfigKeyErr, kConfigKeyFmt, {"key.name", "KEY_NAME", "key-name"}));
  }
  for (auto& m : has_chdir_prefix(v)) errs.push_back(m);
  return errs;
}

Messages is_valid_percent(std::string_view v) {
  bool ok = v.size() >= 2 && v.back() == '%';
  for (std::size_t i = 0; ok && i + 1 < v.size(); ++i) ok = is_digit(v[i]);
  if (ok) return {};
  return {regex_error(kPercentErr, kPercentFmt, {"1%", "93%"})};
}

Messages is_http_header_name(std::string_view v) {
  bool ok = !v.empty();
  for (char c : v) {
    if (!is_alnum(c) && c != '-') ok = false;
  }
  if (ok) return {};
  return {regex_error(kHeaderErr, kHeaderFmt, {"X-Header-Name"})};
}

Messages name_is_dns_subdomain(std::string_view name, bool prefix) {
  if (prefix) return is_dns1123_subdomain(mask_trailing_dash(name));
  return is_dns1123_subdomain(name);
}

Messages name_is_dns_label(std::string_view name, bool prefix) {
  if (prefix) return is_dns1123_label(mask_trailing_dash(name));
  return is_dns1123_label(name);
}

Messages name_is_dns1035_label(std::string_view name, bool prefix) {
  if (prefix) return is_dns1035_label(mask_trailing_dash(name));
  return is_dns1035_label(name);
}

Messages name_is_path_segment(std::string_view name, bool prefix) {
  if (!prefix) {
    if (name == "." || name == "..") return {"may not be '" + std::string(name) + "'"};
  }
  Messages errs;
  for (std::string_view bad : {"/", "%"}) {
    if (name.find(bad) != std::string_view::npos) {
      errs.push_back("may not contain '" + std::string(bad) + "'");
    }
  }
  return errs;
}

std::optional<IP> parse_ip(std::string_view s) {
  IP ip;
  if (s.find(':') == std::string_view::npos) {
    // Dotted quad, leading zeros allowed (ParseIPSloppy).
    int parts = 0;
    std::size_t i = 0;
    while (parts < 4) {
      std::size_t start = i;
      unsigned v = 0;
      while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
      if (i == start || v > 255) return std::nullopt;
      if (i < s.size() && is_digit(s[i])) return std::nullopt;
      ip.bytes[12 + parts] = static_cast<unsigned char>(v);
      ++parts;
      if (parts < 4) {
        if (i >= s.size() || s[i] != '.') return std::nullopt;
        ++i;
      }
    }
    if (i != s.size()) return std::nullopt;
    ip.bytes[10] = ip.bytes[11] = 0xff;
    ip.v4 = true;
    return ip;
  }
  if (s.size() > 45 || s.find('%') != std::string_view::npos) return std::nullopt;
  char buf[64];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) != 1) return std::nullopt;
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  ip.v4 = std::memcmp(ip.bytes.data(), kMapped, 12) == 0;
  return ip;
}

std::optional<CIDR> parse_cidr(std::string_view s) {
  std::size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = parse_ip(s.substr(0, slash));
  if (!ip) return std::nullopt;
  std::string_view bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 3) return std::nullopt;
  int n = 0;
  for (char c : bits) {
    if (!is_digit(c)) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  bool dotted = s.substr(0, slash).find(':') == std::string_view::npos;
  if (n > (dotted ? 32 : 128)) return std::nullopt;
  CIDR c;
  c.ip = *ip;
  c.ip.v4 = dotted;
  c.prefix = n;
  return c;
}

bool cidr_contains(const CIDR& c, const IP& ip) {
  int bits = c.ip.v4 ? c.prefix + 96 : c.prefix;
  if (c.ip.v4 != ip.v4) return false;
  for (int i = 0; i < bits; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((c.ip.bytes[byte] >> bit) & 1) != ((ip.bytes[byte] >> bit) & 1)) return false;
  }
  return true;
}

Errors validate_ip(const Path& p, std::string_view v) {
  if (parse_ip(v)) return {};
  return {invalid_str(p, v, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")};
}

Errors validate_ipv4(const Path& p, std::string_view v) {
  auto ip = parse_ip(v);
  if (ip && ip->v4) return {};
  return {invalid_str(p, v, "must be a valid IPv4 address")};
}

Errors validate_ipv6(const Path& p, std::string_view v) {
  auto ip = parse_ip(v);
  if (ip && !ip->v4) return {};
  return {invalid_str(p, v, "must be a valid IPv6 address")};
}

Errors validate_cidr(const Path& p, std::string_view v) {
  if (parse_cidr(v)) return {};
  return {invalid_str(p, v, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")};
}

Errors validate_non_special_ip(const Path& p, std::string_view v) {
  Errors errs;
  auto ip = parse_ip(v);
  if (!ip) {
    errs.push_back(invalid_str(p, v, "must be a valid IP address"));
    return errs;
  }
  const auto& b = ip->bytes;
  bool unspecified, loopback, link_local, ll_multicast;
  if (ip->v4) {
    unspecified = b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] == 0;
    loopback = b[12] == 127;
    link_local = b[12] == 169 && b[13] == 254;
    ll_multicast = b[12] == 224 && b[13] == 0 && b[14] == 0;
  } else {
    static constexpr unsigned char kZero[16] = {};
    static constexpr unsigned char kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    unspecified = std::memcmp(b.data(), kZero, 16) == 0;
    loopback = std::memcmp(b.data(), kOne, 16) == 0;
    link_local = b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
    ll_multicast = b[0] == 0xff && (b[1] & 0x0f) == 0x02;
  }
  if (unspecified)
    errs.push_back(invalid_str(p, v, "may not be unspecified (" + std::string(v) + ")"));
  if (loopback) {
    errs.push_back(invalid_str(p, v, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  }
  if (link_local) {
    errs.push_back(
        invalid_str(p, v, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
  }
  if (ll_multicast) {
    errs.push_back(invalid_str(
        p, v, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
  }
  return errs;
}

Errors dns1123_label(const Path& p, std::string_view v) {
  Errors errs;
  for (auto& m : is_dns1123_label(v)) errs.push_back(invalid_str(p, v, m));
  return errs;
}

Errors dns1123_subdomain(const Path& p, std::string_view v) {
  Errors errs;
  for (auto& m : is_dns1123_subdomain(v)) errs.push_back(invalid_str(p, v, m));
  return errs;
}

Errors qualified_name(const Path& p, std::string_view v) {
  Errors errs;
  for (auto& m : is_qualified_name(v)) errs.push_back(invalid_str(p, v, m));
  return errs;
}

Errors name_with(NameFn fn, const Path& p, std::string_view v) {
  Errors errs;
  for (auto& m : fn(v, false)) errs.push_back(invalid_str(p, v, m));
  return errs;
}

}  // namespace podwarp::validation
