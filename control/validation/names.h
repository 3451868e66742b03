// String formats of the Kubernetes API: DNS labels and subdomains, qualified names, label values,
// port names, environment variable names, config keys, IPs and CIDRs.
//
// The is_* functions return upstream's messages (k8s.io/apimachinery/pkg/util/validation), one per
// violated rule, and an empty list when the value is valid. The *_name functions are upstream's
// ValidateNameFunc: `prefix` is true for metadata.generateName, where a trailing '-' is allowed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/selector.h"
#include "validation/field.h"

namespace podwarp::validation {

using Messages = std::vector<std::string>;

// Shared with the label selectors (podwarp/selector.h).
inline Messages is_dns1123_subdomain(std::string_view v) { return dns1123_subdomain_errors(v); }
inline Messages is_qualified_name(std::string_view v) { return qualified_name_errors(v); }
inline Messages is_label_value(std::string_view v) { return label_value_errors(v); }

Messages is_dns1123_label(std::string_view v);
Messages is_dns1035_label(std::string_view v);
Messages is_wildcard_dns1123_subdomain(std::string_view v);
Messages is_valid_port_num(std::int64_t port);
Messages is_valid_port_name(std::string_view v);
Messages is_env_var_name(std::string_view v);
Messages is_config_map_key(std::string_view v);
Messages is_valid_percent(std::string_view v);
Messages is_http_header_name(std::string_view v);

using NameFn = Messages (*)(std::string_view name, bool prefix);
Messages name_is_dns_subdomain(std::string_view name, bool prefix);
Messages name_is_dns_label(std::string_view name, bool prefix);
Messages name_is_dns1035_label(std::string_view name, bool prefix);
// rest.BeforeCreate's check for kinds without a stricter rule (events): no "/", "%", "." or "..".
Messages name_is_path_segment(std::string_view name, bool prefix);

// "must be no more than N characters".
std::string max_len_error(std::size_t n);

// IPs as Go's netutils.ParseIPSloppy reads them (IPv4 octets may have leading zeros).
struct IP {
  std::array<unsigned char, 16> bytes{};  // IPv4 is stored IPv4-mapped (::ffff:a.b.c.d)
  bool v4 = false;                        // dotted quad or IPv4-mapped IPv6
};
std::optional<IP> parse_ip(std::string_view s);
struct CIDR {
  IP ip;
  int prefix = 0;  // bits in the address family (0..32 or 0..128)
};
std::optional<CIDR> parse_cidr(std::string_view s);
bool cidr_contains(const CIDR& c, const IP& ip);

// field.ErrorList-returning checks, as upstream's validation.IsValidIP etc.
Errors validate_ip(const Path& p, std::string_view v);
Errors validate_ipv4(const Path& p, std::string_view v);
Errors validate_ipv6(const Path& p, std::string_view v);
Errors validate_cidr(const Path& p, std::string_view v);
// ValidateNonSpecialIP: no unspecified, loopback, link-local or link-local multicast addresses.
Errors validate_non_special_ip(const Path& p, std::string_view v);

// Field-level helpers returning Invalid causes with the value quoted.
Errors dns1123_label(const Path& p, std::string_view v);
Errors dns1123_subdomain(const Path& p, std::string_view v);
Errors qualified_name(const Path& p, std::string_view v);
Errors name_with(NameFn fn, const Path& p, std::string_view v);

}  // namespace podwarp::validation
