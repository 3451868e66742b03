#include "images/reference.h"

#include <fmt/format.h>

#include <algorithm>

namespace podwarp::images {

namespace {

constexpr std::size_t kMaxNameLength = 255;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_word(char c) { return is_alnum(c) || c == '_'; }

std::unexpected<Error> invalid(std::string why) {
  return fail(ErrorKind::kInvalidReference, "invalid reference format: " + why);
}

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | -+
bool valid_path_component(std::string_view s) {
  if (s.empty() || !is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_lower_alnum(s[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && !is_lower_alnum(s[j])) ++j;
    std::string_view sep = s.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              std::all_of(sep.begin(), sep.end(), [](char c) { return c == '-'; });
    if (!ok) return false;
    i = j;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool valid_domain_component(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// host [':' port]; host is a dotted name or a bracketed IPv6 address.
bool valid_domain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {
    auto close = d.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    std::string_view inside = d.substr(1, close - 1);
    if (!std::all_of(inside.begin(), inside.end(),
                     [](char c) { return is_hex(c) || (c >= 'A' && c <= 'F') || c == ':'; })) {
      return false;
    }
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
    host = {};
  } else if (auto colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  if (d.front() == '[') return true;
  std::size_t start = 0;
  for (;;) {
    auto dot = host.find('.', start);
    if (!valid_domain_component(host.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !is_word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return is_word(c) || c == '.' || c == '-'; });
}

// algorithm ":" hex. Only sha256 content is verifiable here, but any well-formed digest parses;
// sha256 must be exactly 64 lowercase hex digits (as go-digest validates).
bool valid_digest(std::string_view d) {
  auto colon = d.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view alg = d.substr(0, colon);
  std::string_view hex = d.substr(colon + 1);
  bool prev_sep = true;
  for (char c : alg) {
    bool sep = c == '+' || c == '.' || c == '-' || c == '_';
    if (sep) {
      if (prev_sep) return false;
    } else if (!is_alnum(c) || (prev_sep && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))) {
      return false;
    }
    prev_sep = sep;
  }
  if (prev_sep) return false;
  if (alg == "sha256") return is_sha256_digest(d);
  if (hex.size() < 32) return false;
  return std::all_of(hex.begin(), hex.end(), [](char c) { return is_hex(c) || (c >= 'A' && c <= 'F'); });
}

}  // namespace

bool is_sha256_digest(std::string_view s) {
  if (s.size() != 71 || !s.starts_with("sha256:")) return false;
  return std::all_of(s.begin() + 7, s.end(), is_hex);
}

std::string Reference::effective_tag() const {
  if (!tag.empty()) return tag;
  return digest.empty() ? "latest" : "";
}

std::string Reference::string() const {
  std::string out = repository();
  if (std::string t = effective_tag(); !t.empty()) out += ":" + t;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

std::string Reference::registry_host() const {
  return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

Result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return invalid("repository name must have at least one component");
  if (text.size() == 64 && std::all_of(text.begin(), text.end(), is_hex)) {
    return invalid(fmt::format(
        "invalid repository name ({}), cannot specify 64-byte hexadecimal strings", text));
  }
  Reference ref;
  std::string_view name = text;
  if (auto at = text.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(text.substr(at + 1));
    name = text.substr(0, at);
    if (!valid_digest(ref.digest)) return invalid(fmt::format("invalid digest \"{}\"", ref.digest));
  }
  auto last_slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    ref.tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (!valid_tag(ref.tag)) return invalid(fmt::format("invalid tag \"{}\"", ref.tag));
  }
  if (name.empty()) return invalid("repository name must have at least one component");

  std::string_view remainder = name;
  auto slash = name.find('/');
  std::string_view first = slash == std::string_view::npos ? std::string_view{} : name.substr(0, slash);
  bool first_is_domain =
      slash != std::string_view::npos &&
      (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
       std::any_of(first.begin(), first.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  if (first_is_domain) {
    ref.domain = std::string(first);
    remainder = name.substr(slash + 1);
    if (!valid_domain(ref.domain)) {
      return invalid(fmt::format("invalid registry host \"{}\"", ref.domain));
    }
  } else {
    ref.domain = "docker.io";
  }
  if (ref.domain == "index.docker.io") ref.domain = "docker.io";
  ref.path = std::string(remainder);
  if (ref.domain == "docker.io" && ref.path.find('/') == std::string::npos) {
    ref.path = "library/" + ref.path;
  }
  if (std::any_of(ref.path.begin(), ref.path.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    return invalid(fmt::format("repository name ({}) must be lowercase", ref.path));
  }
  std::size_t start = 0;
  for (;;) {
    auto next = ref.path.find('/', start);
    std::string_view comp = std::string_view(ref.path).substr(start, next - start);
    if (!valid_path_component(comp)) {
      return invalid(fmt::format("invalid repository name \"{}\"", remainder));
    }
    if (next == std::string::npos) break;
    start = next + 1;
  }
  if (ref.repository().size() > kMaxNameLength) {
    return invalid(fmt::format("repository name must not be more than {} characters",
                               kMaxNameLength));
  }
  return ref;
}

}  // namespace podwarp::images
