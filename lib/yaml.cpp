#include <algorithm>
#include "podwarp/yaml.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>

#include "podwarp/quote.h"

namespace podwarp {

namespace {

std::optional<json::value> plain_scalar(const std::string& s) {
  static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
  static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"};
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return json::value(nullptr);
  for (const char* t : kTrue) {
    if (s == t) return json::value(true);
  }
  for (const char* f : kFalse) {
    if (s == f) return json::value(false);
  }
  std::int64_t i = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  const char* start = (*b == '+') ? b + 1 : b;
  // YAML 1.1 as sigs.k8s.io/yaml (yaml.v2, strconv.ParseInt base 0): a leading 0 means octal
  // (defaultMode: 0644 is 420), 0o octal, 0b binary, 0x hex (below).
  {
    const bool neg = *start == '-';
    const char* digits = neg ? start + 1 : start;
    int base = 0;
    const char* from = digits;
    if (e - digits > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
      base = 8, from = digits + 2;
    } else if (e - digits > 2 && digits[0] == '0' && (digits[1] == 'b' || digits[1] == 'B')) {
      base = 2, from = digits + 2;
    } else if (e - digits > 1 && digits[0] == '0' &&
               std::all_of(digits + 1, e, [](char c) { return c >= '0' && c <= '7'; })) {
      base = 8, from = digits + 1;
    }
    if (base != 0) {
      auto [po, eco] = std::from_chars(from, e, i, base);
      if (eco == std::errc() && po == e) return json::value(neg ? -i : i);
    }
  }
  auto [p, ec] = std::from_chars(start, e, i);
  if (ec == std::errc() && p == e) return json::value(i);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    auto [p2, ec2] = std::from_chars(b + 2, e, i, 16);
    if (ec2 == std::errc() && p2 == e) return json::value(i);
  }
  double d = 0;
  auto [p3, ec3] = std::from_chars(start, e, d);
  if (ec3 == std::errc() && p3 == e && std::isfinite(d)) {
    // Only decimal forms (yaml.v2): digits with a dot or an exponent.
    if (s.find_first_of(".eE") != std::string::npos) return json::value(d);
  }
  return std::nullopt;
}

// Whether s is well-formed UTF-8, as Boost.JSON's parser requires of every string it reads.
bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0, n = 0; i < s.size(); i += n) {
    if ((n = utf8_sequence(s, i)) == 0) return false;
  }
  return true;
}

// yaml-cpp passes any byte through (and writes escapes such as "\uD800" as they come), while
// a JSON string must be UTF-8: an object holding such a string would be stored as text that
// does not parse back. yaml.v2 refuses these streams and escapes too.
std::expected<void, std::string> check_utf8(const YAML::Node& n, const std::string& s) {
  if (valid_utf8(s)) return {};
  return std::unexpected("yaml: line " + std::to_string(n.Mark().line + 1) +
                         ": invalid UTF-8 in a string");
}

// yaml-cpp resolves an alias to the anchored node itself, so a few lines of anchors and aliases
// (or an alias inside its own anchor) describe a graph that expands into billions of values:
// converting it would run for hours. Every value converted costs 1 plus its scalar's bytes,
// from a budget that a document without aliases stays well within (it cannot hold more values
// or scalar bytes than it has bytes), with room for ordinary anchor reuse. Upstream's yaml.v2
// bounds alias expansion too ("document contains excessive aliasing").
struct Budget {
  std::size_t left;
};
constexpr std::string_view kExcessiveAliasing = "yaml: document contains excessive aliasing";

std::expected<json::value, std::string> convert(const YAML::Node& n, int depth, int max_depth,
                                                Budget& budget) {
  if (depth > max_depth) return std::unexpected("yaml: exceeded max depth");
  std::size_t cost = 1 + (n.Type() == YAML::NodeType::Scalar ? n.Scalar().size() : 0);
  if (cost > budget.left) return std::unexpected(std::string(kExcessiveAliasing));
  budget.left -= cost;
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return json::value(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (auto ok = check_utf8(n, s); !ok) return std::unexpected(ok.error());
      if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return json::value(s);
      if (auto v = plain_scalar(s)) return *v;
      return json::value(s);
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const YAML::Node& item : n) {
        auto v = convert(item, depth + 1, max_depth, budget);
        if (!v) return v;
        a.push_back(std::move(*v));
      }
      return a;
    }
    case YAML::NodeType::Map: {
      json::object o;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return std::unexpected("yaml: mapping keys must be scalars");
        if (kv.first.Scalar().size() > budget.left) {
          return std::unexpected(std::string(kExcessiveAliasing));
        }
        budget.left -= kv.first.Scalar().size();
        if (auto ok = check_utf8(kv.first, kv.first.Scalar()); !ok) {
          return std::unexpected(ok.error());
        }
        auto v = convert(kv.second, depth + 1, max_depth, budget);
        if (!v) return v;
        o[kv.first.Scalar()] = std::move(*v);
      }
      return o;
    }
  }
  return json::value(nullptr);
}

std::string fmt_yaml_error(const YAML::Exception& e) {
  return "yaml: line " + std::to_string(e.mark.line + 1) + ": " + e.msg;
}

}  // namespace

// yaml-cpp parses flow collections recursively without a limit: refuse deep ones before
// it sees them, so a hostile body cannot exhaust the stack.
static bool flow_too_deep(std::string_view text, int max_depth) {
  int depth = 0;
  char quote = 0;
  for (char c : text) {
    if (quote != 0) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

std::expected<json::value, std::string> yaml_to_json(std::string_view text, int max_depth) {
  if (flow_too_deep(text, max_depth)) return std::unexpected("yaml: exceeded max depth");
  try {
    YAML::Node root = YAML::Load(std::string(text));
    Budget budget{1'000'000 + 4 * text.size()};
    return convert(root, 0, max_depth, budget);
  } catch (const YAML::Exception& e) {
    return std::unexpected(fmt_yaml_error(e));
  } catch (const std::exception& e) {
    return std::unexpected(std::string("yaml: ") + e.what());
  }
}

}  // namespace podwarp
