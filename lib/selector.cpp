#include "podwarp/selector.h"

#include "podwarp/quote.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace podwarp {
namespace {

// --- upstream validation messages ---

constexpr std::string_view kQualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr std::string_view kQualifiedNameErrMsg =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";
constexpr std::string_view kLabelValueFmt = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
constexpr std::string_view kLabelValueErrMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::string_view kDns1123SubdomainFmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view kDns1123SubdomainErrMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character";
constexpr std::size_t kQualifiedNameMaxLength = 63;
constexpr std::size_t kLabelValueMaxLength = 63;
constexpr std::size_t kDns1123SubdomainMaxLength = 253;

std::string regex_error(std::string_view msg, std::string_view re,
                        std::initializer_list<std::string_view> examples) {
  std::string out(msg);
  if (examples.size() == 0)
    return out + " (regex used for validation is '" + std::string(re) + "')";
  out += " (e.g. ";
  bool first = true;
  for (std::string_view e : examples) {
    if (!first) out += " or ";
    first = false;
    out += "'" + std::string(e) + "', ";
  }
  out += "regex used for validation is '" + std::string(re) + "')";
  return out;
}

std::string max_len_error(std::size_t n) {
  return fmt::format("must be no more than {} characters", n);
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool matches_qualified_name(std::string_view s) {
  if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

bool matches_dns1123_subdomain(std::string_view s) {
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || !lower_alnum(label.front()) || !lower_alnum(label.back())) return false;
    for (char c : label) {
      if (!lower_alnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}


// Go's %#v of a []string (as built by append([]string(nil), ...)).
std::string go_string_slice(const std::vector<std::string>& v) {
  if (v.empty()) return "[]string(nil)";
  std::string out = "[]string{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += ", ";
    out += go_quote(v[i]);
  }
  return out + "}";
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += sep;
    out += v[i];
  }
  return out;
}

// field.ErrorList.ToAggregate().Error()
std::string aggregate(std::vector<std::string> errs) {
  // The aggregate drops duplicate messages.
  std::vector<std::string> unique;
  for (auto& e : errs) {
    if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(std::move(e));
  }
  if (unique.size() == 1) return unique[0];
  return "[" + join(unique, ", ") + "]";
}

// field.Invalid(path, value, detail).Error()
std::string field_invalid(std::string_view path, std::string_view quoted_value,
                          std::string_view detail) {
  return fmt::format("{}: Invalid value: {}: {}", path, quoted_value, detail);
}

// Go's strconv.ParseInt(s, 10, 64).
std::optional<std::int64_t> parse_int64(std::string_view s) {
  std::string_view digits = s;
  if (!digits.empty() && digits[0] == '+') digits.remove_prefix(1);
  if (digits.empty() || digits[0] == '+' || (s[0] == '+' && digits[0] == '-')) return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return v;
}

using Op = LabelSelector::Operator;

// NewRequirement's checks. key_path is "key" (structured selectors) or "<nil>" (parser).
std::vector<std::string> requirement_errors(std::string_view key, Op op,
                                            const std::vector<std::string>& values,
                                            bool validate_key) {
  std::vector<std::string> errs;
  if (validate_key) {
    if (auto e = qualified_name_errors(key); !e.empty()) {
      errs.push_back(field_invalid("key", go_quote(key), join(e, "; ")));
    }
  }
  switch (op) {
    case Op::kIn:
    case Op::kNotIn:
      if (values.empty()) {
        errs.push_back(field_invalid("values", go_string_slice(values),
                                     "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case Op::kEquals:
    case Op::kDoubleEquals:
    case Op::kNotEquals:
      if (values.size() != 1) {
        errs.push_back(field_invalid("values", go_string_slice(values),
                                     "exact-match compatibility requires one single value"));
      }
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      if (!values.empty()) {
        errs.push_back(field_invalid("values", go_string_slice(values),
                                     "values set must be empty for exists and does not exist"));
      }
      break;
    case Op::kGreaterThan:
    case Op::kLessThan:
      if (values.size() != 1) {
        errs.push_back(field_invalid("values", go_string_slice(values),
                                     "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (!parse_int64(values[i])) {
          errs.push_back(field_invalid(fmt::format("values[{}]", i), go_quote(values[i]),
                                       "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      }
      break;
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (auto e = label_value_errors(values[i]); !e.empty()) {
      errs.push_back(
          field_invalid(fmt::format("values[{}][{}]", i, key), go_quote(values[i]), join(e, "; ")));
    }
  }
  return errs;
}

// --- the label selector lexer and parser (a port of labels/selector.go) ---

enum class Token {
  kEnd,
  kClosedPar,
  kComma,
  kDoesNotExist,
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

struct Item {
  Token tok;
  std::string literal;
};

bool is_whitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_special(char c) {
  switch (c) {
    case '=':
    case '!':
    case '(':
    case ')':
    case ',':
    case '>':
    case '<':
      return true;
    default:
      return false;
  }
}

std::optional<Token> keyword(std::string_view s) {
  if (s == ")") return Token::kClosedPar;
  if (s == ",") return Token::kComma;
  if (s == "!") return Token::kDoesNotExist;
  if (s == "==") return Token::kDoubleEquals;
  if (s == "=") return Token::kEquals;
  if (s == ">") return Token::kGreaterThan;
  if (s == "in") return Token::kIn;
  if (s == "<") return Token::kLessThan;
  if (s == "!=") return Token::kNotEquals;
  if (s == "notin") return Token::kNotIn;
  if (s == "(") return Token::kOpenPar;
  return std::nullopt;
}

std::vector<Item> lex(std::string_view s) {
  std::vector<Item> items;
  std::size_t pos = 0;
  while (true) {
    while (pos < s.size() && is_whitespace(s[pos])) ++pos;
    if (pos >= s.size()) {
      items.push_back({Token::kEnd, ""});
      return items;
    }
    if (is_special(s[pos])) {
      // Longest run of special characters that still forms a token.
      std::size_t len = 0;
      std::optional<Token> last;
      std::size_t last_len = 0;
      while (pos + len < s.size() && is_special(s[pos + len])) {
        ++len;
        if (auto t = keyword(s.substr(pos, len))) {
          last = t;
          last_len = len;
        } else if (last) {
          break;
        }
      }
      // Every single special character is a token, so last is always set.
      items.push_back({*last, std::string(s.substr(pos, last_len))});
      pos += last_len;
      continue;
    }
    const std::size_t start = pos;
    while (pos < s.size() && !is_special(s[pos]) && !is_whitespace(s[pos])) ++pos;
    std::string lit(s.substr(start, pos - start));
    auto t = keyword(lit);
    items.push_back({t ? *t : Token::kIdentifier, std::move(lit)});
  }
}

class Parser {
 public:
  explicit Parser(std::string_view s) : items_(lex(s)) {}

  std::expected<std::vector<LabelSelector::Requirement>, std::string> parse() {
    std::vector<LabelSelector::Requirement> reqs;
    while (true) {
      auto [tok, lit] = lookahead(true);
      switch (tok) {
        case Token::kIdentifier:
        case Token::kDoesNotExist: {
          auto r = parse_requirement();
          if (!r) return std::unexpected("unable to parse requirement: " + r.error());
          reqs.push_back(std::move(*r));
          auto [t, l] = consume(true);
          if (t == Token::kEnd) return reqs;
          if (t == Token::kComma) {
            auto [t2, l2] = lookahead(true);
            if (t2 != Token::kIdentifier && t2 != Token::kDoesNotExist) {
              return std::unexpected(fmt::format("found '{}', expected: identifier after ','", l2));
            }
            break;
          }
          return std::unexpected(fmt::format("found '{}', expected: ',' or 'end of string'", l));
        }
        case Token::kEnd:
          return reqs;
        default:
          return std::unexpected(
              fmt::format("found '{}', expected: !, identifier, or 'end of string'", lit));
      }
    }
  }

 private:
  // In the "values" context the keywords in/notin are plain identifiers.
  std::pair<Token, std::string_view> lookahead(bool values) const {
    const Item& it = items_[pos_];
    Token t = it.tok;
    if (values && (t == Token::kIn || t == Token::kNotIn)) t = Token::kIdentifier;
    return {t, it.literal};
  }

  std::pair<Token, std::string_view> consume(bool values) {
    auto r = lookahead(values);
    if (pos_ + 1 < items_.size()) ++pos_;  // kEnd is sticky
    return r;
  }

  std::expected<LabelSelector::Requirement, std::string> parse_requirement() {
    LabelSelector::Requirement req;
    auto [tok, lit] = consume(true);
    bool not_exists = false;
    if (tok == Token::kDoesNotExist) {
      not_exists = true;
      std::tie(tok, lit) = consume(true);
    }
    if (tok != Token::kIdentifier) {
      return std::unexpected(fmt::format("found '{}', expected: identifier", lit));
    }
    if (auto e = qualified_name_errors(lit); !e.empty()) {
      return std::unexpected(field_invalid("<nil>", go_quote(lit), join(e, "; ")));
    }
    req.key = std::string(lit);
    auto [next, next_lit] = lookahead(true);
    if (not_exists || next == Token::kEnd || next == Token::kComma) {
      req.op = not_exists ? Op::kDoesNotExist : Op::kExists;
      return req;
    }
    auto [op_tok, op_lit] = consume(false);
    switch (op_tok) {
      case Token::kIn:
        req.op = Op::kIn;
        break;
      case Token::kEquals:
        req.op = Op::kEquals;
        break;
      case Token::kDoubleEquals:
        req.op = Op::kDoubleEquals;
        break;
      case Token::kGreaterThan:
        req.op = Op::kGreaterThan;
        break;
      case Token::kLessThan:
        req.op = Op::kLessThan;
        break;
      case Token::kNotIn:
        req.op = Op::kNotIn;
        break;
      case Token::kNotEquals:
        req.op = Op::kNotEquals;
        break;
      default:
        return std::unexpected(
            fmt::format("found '{}', expected: in, notin, =, ==, !=, gt, lt", op_lit));
    }
    std::expected<std::vector<std::string>, std::string> values;
    if (req.op == Op::kIn || req.op == Op::kNotIn) {
      values = parse_values();
    } else {
      values = parse_exact_value();
    }
    if (!values) return std::unexpected(values.error());
    // A set: sorted and without duplicates.
    std::sort(values->begin(), values->end());
    values->erase(std::unique(values->begin(), values->end()), values->end());
    req.values = std::move(*values);
    if (auto errs = requirement_errors(req.key, req.op, req.values, false); !errs.empty()) {
      return std::unexpected(aggregate(std::move(errs)));
    }
    return req;
  }

  std::expected<std::vector<std::string>, std::string> parse_values() {
    auto [tok, lit] = consume(true);
    if (tok != Token::kOpenPar)
      return std::unexpected(fmt::format("found '{}' expected: '('", lit));
    std::tie(tok, lit) = lookahead(true);
    switch (tok) {
      case Token::kIdentifier:
      case Token::kComma: {
        auto s = parse_identifiers_list();
        if (!s) return s;
        if (consume(true).first != Token::kClosedPar) {
          return std::unexpected(fmt::format("found '{}', expected: ')'", lit));
        }
        return s;
      }
      case Token::kClosedPar:
        consume(true);
        return std::vector<std::string>{""};
      default:
        return std::unexpected(fmt::format("found '{}', expected: ',', ')' or identifier", lit));
    }
  }

  std::expected<std::vector<std::string>, std::string> parse_identifiers_list() {
    std::vector<std::string> s;
    while (true) {
      auto [tok, lit] = consume(true);
      switch (tok) {
        case Token::kIdentifier: {
          s.emplace_back(lit);
          auto [tok2, lit2] = lookahead(true);
          if (tok2 == Token::kComma) continue;
          if (tok2 == Token::kClosedPar) return s;
          return std::unexpected(fmt::format("found '{}', expected: ',' or ')'", lit2));
        }
        case Token::kComma: {
          if (s.empty()) s.emplace_back("");  // "(,"
          auto tok2 = lookahead(true).first;
          if (tok2 == Token::kClosedPar) {
            s.emplace_back("");  // ",)"
            return s;
          }
          if (tok2 == Token::kComma) {
            consume(true);
            s.emplace_back("");  // ",,"
          }
          break;
        }
        default:
          return std::unexpected(fmt::format("found '{}', expected: ',', or identifier", lit));
      }
    }
  }

  std::expected<std::vector<std::string>, std::string> parse_exact_value() {
    auto tok = lookahead(true).first;
    if (tok == Token::kEnd || tok == Token::kComma) return std::vector<std::string>{""};
    auto [t, lit] = consume(true);
    if (t == Token::kIdentifier) return std::vector<std::string>{std::string(lit)};
    return std::unexpected(fmt::format("found '{}', expected: identifier", lit));
  }

  std::vector<Item> items_;
  std::size_t pos_ = 0;
};

void sort_by_key(std::vector<LabelSelector::Requirement>& reqs) {
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const auto& a, const auto& b) { return a.key < b.key; });
}

// Splits on unescaped commas, keeping escapes (upstream splitTerms).
std::vector<std::string_view> split_terms(std::string_view s) {
  std::vector<std::string_view> terms;
  if (s.empty()) return terms;
  std::size_t start = 0;
  bool in_slash = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (in_slash) {
      in_slash = false;
    } else if (s[i] == '\\') {
      in_slash = true;
    } else if (s[i] == ',') {
      terms.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(s.substr(start));
  return terms;
}

std::expected<std::string, std::string> unescape_field_value(std::string_view s) {
  std::string out;
  bool in_slash = false;
  for (char c : s) {
    if (in_slash) {
      if (c != '\\' && c != ',' && c != '=') {
        return std::unexpected(
            fmt::format("invalid field selector: invalid escape sequence: \\{}", c));
      }
      out += c;
      in_slash = false;
      continue;
    }
    if (c == '\\') {
      in_slash = true;
    } else if (c == ',' || c == '=') {
      // Upstream prints the rune with %v, i.e. its code point.
      return std::unexpected(fmt::format("invalid field selector: unescaped character in value: {}",
                                         static_cast<int>(c)));
    } else {
      out += c;
    }
  }
  if (in_slash)
    return std::unexpected(std::string("invalid field selector: invalid escape sequence: \\"));
  return out;
}

}  // namespace

// --- validators ---

std::vector<std::string> dns1123_subdomain_errors(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kDns1123SubdomainMaxLength)
    errs.push_back(max_len_error(kDns1123SubdomainMaxLength));
  if (!matches_dns1123_subdomain(value)) {
    errs.push_back(regex_error(kDns1123SubdomainErrMsg, kDns1123SubdomainFmt, {"example.com"}));
  }
  return errs;
}

std::vector<std::string> qualified_name_errors(std::string_view value) {
  std::vector<std::string> errs;
  std::string_view name = value;
  const auto slashes = std::count(value.begin(), value.end(), '/');
  if (slashes > 1) {
    errs.push_back(
        "a qualified name " +
        regex_error(kQualifiedNameErrMsg, kQualifiedNameFmt, {"MyName", "my.name", "123-abc"}) +
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')");
    return errs;
  }
  if (slashes == 1) {
    const std::size_t slash = value.find('/');
    const std::string_view prefix = value.substr(0, slash);
    name = value.substr(slash + 1);
    if (prefix.empty()) {
      errs.push_back("prefix part must be non-empty");
    } else {
      for (auto& m : dns1123_subdomain_errors(prefix)) errs.push_back("prefix part " + m);
    }
  }
  if (name.empty()) {
    errs.push_back("name part must be non-empty");
  } else if (name.size() > kQualifiedNameMaxLength) {
    errs.push_back("name part " + max_len_error(kQualifiedNameMaxLength));
  }
  if (!matches_qualified_name(name)) {
    errs.push_back("name part " + regex_error(kQualifiedNameErrMsg, kQualifiedNameFmt,
                                              {"MyName", "my.name", "123-abc"}));
  }
  return errs;
}

std::vector<std::string> label_value_errors(std::string_view value) {
  std::vector<std::string> errs;
  if (value.size() > kLabelValueMaxLength) errs.push_back(max_len_error(kLabelValueMaxLength));
  if (!value.empty() && !matches_qualified_name(value)) {
    errs.push_back(
        regex_error(kLabelValueErrMsg, kLabelValueFmt, {"MyValue", "my_value", "12345"}));
  }
  return errs;
}

// --- LabelSelector ---

bool LabelSelector::Requirement::matches(const json::object* labels) const {
  const json::value* v = nullptr;
  if (labels != nullptr) {
    auto it = labels->find(key);
    if (it != labels->end()) v = &it->value();
  }
  std::string_view value;
  if (v != nullptr && v->is_string()) value = v->get_string();
  auto has_value = [&] { return std::find(values.begin(), values.end(), value) != values.end(); };
  switch (op) {
    case Operator::kIn:
    case Operator::kEquals:
    case Operator::kDoubleEquals:
      return v != nullptr && has_value();
    case Operator::kNotIn:
    case Operator::kNotEquals:
      return v == nullptr || !has_value();
    case Operator::kExists:
      return v != nullptr;
    case Operator::kDoesNotExist:
      return v == nullptr;
    case Operator::kGreaterThan:
    case Operator::kLessThan: {
      if (v == nullptr || values.size() != 1) return false;
      auto have = parse_int64(value);
      auto want = parse_int64(values[0]);
      if (!have || !want) return false;
      return op == Operator::kGreaterThan ? *have > *want : *have < *want;
    }
  }
  return false;
}

std::string LabelSelector::Requirement::to_string() const {
  std::string out;
  if (op == Operator::kDoesNotExist) out += "!";
  out += key;
  switch (op) {
    case Operator::kEquals:
      out += "=";
      break;
    case Operator::kDoubleEquals:
      out += "==";
      break;
    case Operator::kNotEquals:
      out += "!=";
      break;
    case Operator::kIn:
      out += " in ";
      break;
    case Operator::kNotIn:
      out += " notin ";
      break;
    case Operator::kGreaterThan:
      out += ">";
      break;
    case Operator::kLessThan:
      out += "<";
      break;
    case Operator::kExists:
    case Operator::kDoesNotExist:
      return out;
  }
  const bool set = op == Operator::kIn || op == Operator::kNotIn;
  if (set) out += "(";
  out += join(values, ",");
  if (set) out += ")";
  return out;
}

std::expected<LabelSelector, std::string> LabelSelector::parse(std::string_view text) {
  auto reqs = Parser(text).parse();
  if (!reqs) return std::unexpected(reqs.error());
  LabelSelector sel;
  sel.requirements_ = std::move(*reqs);
  sort_by_key(sel.requirements_);
  return sel;
}

std::expected<LabelSelector, std::string> LabelSelector::from_json(const json::value& selector) {
  const json::object* obj = selector.if_object();
  if (obj == nullptr) return std::unexpected(std::string("label selector must be an object"));
  LabelSelector sel;
  if (auto it = obj->find("matchLabels"); it != obj->end() && !it->value().is_null()) {
    const json::object* ml = it->value().if_object();
    if (ml == nullptr) return std::unexpected(std::string("matchLabels: must be an object"));
    for (const auto& [k, v] : *ml) {
      if (!v.is_string()) {
        return std::unexpected(
            fmt::format("matchLabels[{}]: must be a string", std::string_view(k)));
      }
      Requirement r{std::string(k), Operator::kEquals, {std::string(v.get_string())}};
      if (auto errs = requirement_errors(r.key, r.op, r.values, true); !errs.empty()) {
        return std::unexpected(aggregate(std::move(errs)));
      }
      sel.requirements_.push_back(std::move(r));
    }
  }
  if (auto it = obj->find("matchExpressions"); it != obj->end() && !it->value().is_null()) {
    const json::array* exprs = it->value().if_array();
    if (exprs == nullptr) return std::unexpected(std::string("matchExpressions: must be an array"));
    for (std::size_t i = 0; i < exprs->size(); ++i) {
      const json::object* e = (*exprs)[i].if_object();
      if (e == nullptr)
        return std::unexpected(fmt::format("matchExpressions[{}]: must be an object", i));
      Requirement r;
      if (auto k = e->find("key"); k != e->end() && !k->value().is_null()) {
        if (!k->value().is_string()) {
          return std::unexpected(fmt::format("matchExpressions[{}].key: must be a string", i));
        }
        r.key = std::string(k->value().get_string());
      }
      std::string op;
      if (auto o = e->find("operator"); o != e->end() && !o->value().is_null()) {
        if (!o->value().is_string()) {
          return std::unexpected(fmt::format("matchExpressions[{}].operator: must be a string", i));
        }
        op = std::string(o->value().get_string());
      }
      if (op == "In") {
        r.op = Operator::kIn;
      } else if (op == "NotIn") {
        r.op = Operator::kNotIn;
      } else if (op == "Exists") {
        r.op = Operator::kExists;
      } else if (op == "DoesNotExist") {
        r.op = Operator::kDoesNotExist;
      } else {
        return std::unexpected(
            fmt::format("{} is not a valid label selector operator", go_quote(op)));
      }
      if (auto vs = e->find("values"); vs != e->end() && !vs->value().is_null()) {
        const json::array* arr = vs->value().if_array();
        if (arr == nullptr) {
          return std::unexpected(fmt::format("matchExpressions[{}].values: must be an array", i));
        }
        for (const auto& v : *arr) {
          if (!v.is_string()) {
            return std::unexpected(
                fmt::format("matchExpressions[{}].values: must be an array of strings", i));
          }
          r.values.emplace_back(v.get_string());
        }
      }
      if (auto errs = requirement_errors(r.key, r.op, r.values, true); !errs.empty()) {
        return std::unexpected(aggregate(std::move(errs)));
      }
      std::sort(r.values.begin(), r.values.end());
      sel.requirements_.push_back(std::move(r));
    }
  }
  sort_by_key(sel.requirements_);
  return sel;
}

bool LabelSelector::matches(const json::object* labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const Requirement& r) { return r.matches(labels); });
}

bool LabelSelector::matches(const json::value& object_with_metadata) const {
  const json::value* labels = find_path(object_with_metadata, {"metadata", "labels"});
  return matches(labels != nullptr ? labels->if_object() : nullptr);
}

std::string LabelSelector::to_string() const {
  std::vector<std::string> parts;
  parts.reserve(requirements_.size());
  for (const auto& r : requirements_) parts.push_back(r.to_string());
  return join(parts, ",");
}

std::optional<std::string> LabelSelector::exact_value(std::string_view key) const {
  for (const auto& r : requirements_) {
    if (r.key != key) continue;
    if ((r.op == Operator::kEquals || r.op == Operator::kDoubleEquals || r.op == Operator::kIn) &&
        r.values.size() == 1) {
      return r.values[0];
    }
    return std::nullopt;
  }
  return std::nullopt;
}

// --- FieldSelector ---

std::string escape_field_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == ',' || c == '=') out += '\\';
    out += c;
  }
  return out;
}

std::expected<FieldSelector, std::string> FieldSelector::parse(std::string_view text) {
  std::vector<std::string_view> parts = split_terms(text);
  std::sort(parts.begin(), parts.end());
  FieldSelector sel;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    // The first operator occurrence splits the term; "!=" and "==" win over "=" there.
    std::size_t i = 0;
    std::size_t op_len = 0;
    bool equals = true;
    for (; i < part.size(); ++i) {
      std::string_view rest = part.substr(i);
      if (rest.starts_with("!=")) {
        op_len = 2;
        equals = false;
        break;
      }
      if (rest.starts_with("==")) {
        op_len = 2;
        break;
      }
      if (rest.starts_with("=")) {
        op_len = 1;
        break;
      }
    }
    if (op_len == 0) {
      return std::unexpected(
          fmt::format("invalid selector: '{}'; can't understand '{}'", text, part));
    }
    auto value = unescape_field_value(part.substr(i + op_len));
    if (!value) return std::unexpected(value.error());
    sel.terms_.push_back(Term{std::string(part.substr(0, i)), equals, std::move(*value)});
  }
  return sel;
}

bool FieldSelector::matches(
    const std::function<std::optional<std::string>(std::string_view field)>& get) const {
  for (const Term& t : terms_) {
    const std::string have = get ? get(t.field).value_or("") : std::string();
    if ((have == t.value) != t.equals) return false;
  }
  return true;
}

bool FieldSelector::matches(const json::value& object) const {
  return matches([&](std::string_view f) { return object_field(object, f); });
}

std::optional<std::string> FieldSelector::exact_value(std::string_view field) const {
  for (const Term& t : terms_) {
    if (t.equals && t.field == field) return t.value;
  }
  return std::nullopt;
}

std::vector<std::string> FieldSelector::fields() const {
  std::vector<std::string> out;
  out.reserve(terms_.size());
  for (const Term& t : terms_) out.push_back(t.field);
  return out;
}

std::string FieldSelector::to_string() const {
  std::vector<std::string> parts;
  parts.reserve(terms_.size());
  for (const Term& t : terms_) {
    parts.push_back(t.field + (t.equals ? "=" : "!=") + escape_field_value(t.value));
  }
  return join(parts, ",");
}

std::optional<std::string> object_field(const json::value& obj, std::string_view field) {
  if (!obj.is_object() || field.empty()) return std::nullopt;
  const json::value* cur = &obj;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = field.find('.', start);
    const std::string_view seg =
        field.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (seg.empty()) return std::nullopt;
    if (cur != nullptr) {
      if (cur->is_null()) {
        cur = nullptr;
      } else if (const json::object* o = cur->if_object()) {
        auto it = o->find(seg);
        cur = it == o->end() ? nullptr : &it->value();
      } else {
        return std::nullopt;  // a scalar or array where an object was expected
      }
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (cur == nullptr) return std::string();
  switch (cur->kind()) {
    case json::kind::null:
      return std::string();
    case json::kind::string:
      return std::string(cur->get_string());
    case json::kind::bool_:
      return std::string(cur->get_bool() ? "true" : "false");
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return json::serialize(*cur);
    default:
      return std::nullopt;
  }
}

}  // namespace podwarp
