#include "schema/dsl.h"

#include <stdexcept>

namespace podwarp::schema::detail {
namespace {

constexpr std::string_view kSpaces = " \t\r";

std::string_view trim(std::string_view s) {
  auto b = s.find_first_not_of(kSpaces);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(kSpaces);
  return s.substr(b, e - b + 1);
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    i = s.find_first_not_of(kSpaces, i);
    if (i == std::string_view::npos) break;
    size_t j = s.find_first_of(kSpaces, i);
    if (j == std::string_view::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.emplace_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return out;
}

bool is_identifier(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

class FileParser {
 public:
  FileParser(std::string_view file_name, Declarations& out) : file_(file_name), out_(out) {}

  void parse(std::string_view text) {
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      ++line_no_;
      parse_line(text.substr(pos, eol - pos));
      pos = eol + 1;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::logic_error(file_ + ":" + std::to_string(line_no_) + ": " + what);
  }

  std::string here() const { return file_ + ":" + std::to_string(line_no_); }

  // Splits "head -- description" at the first " -- ".
  static std::pair<std::string_view, std::string_view> split_description(std::string_view line) {
    size_t at = line.find(" -- ");
    if (at == std::string_view::npos) {
      if (line.ends_with(" --")) return {line.substr(0, line.size() - 3), {}};
      return {line, {}};
    }
    return {line.substr(0, at), trim(line.substr(at + 4))};
  }

  void parse_line(std::string_view raw) {
    std::string_view content = trim(raw);
    if (content.empty() || content.front() == '#') return;
    bool indented = raw.front() == ' ' || raw.front() == '\t';
    if (indented) {
      if (current_ == nullptr) fail("indented field line outside a `type` or `mixin`");
      if (current_->form != TypeDecl::Form::kStruct && current_->form != TypeDecl::Form::kMixin) {
        fail("only `type` and `mixin` declarations have fields");
      }
      parse_field(content);
      return;
    }
    current_ = nullptr;
    auto [head, description] = split_description(content);
    std::vector<std::string_view> words = split_words(head);
    std::string_view keyword = words.front();
    if (keyword == "package") {
      if (words.size() != 2 || !is_identifier(words[1])) fail("expected `package <name>`");
      new_scope();
      scope_->package = std::string(words[1]);
    } else if (keyword == "import") {
      if (words.size() != 2 || !is_identifier(words[1])) fail("expected `import <name>`");
      if (scope_ == nullptr) fail("`import` before `package`");
      // A scope is shared by the declarations already made with it; copy on change.
      Scope* copy = new_scope();
      copy->imports.emplace_back(words[1]);
    } else if (keyword == "type" || keyword == "scalar" || keyword == "object" ||
               keyword == "mixin") {
      parse_type_head(keyword, words, description);
    } else {
      fail("unknown declaration `" + std::string(keyword) + "`");
    }
  }

  Scope* new_scope() {
    auto scope = std::make_unique<Scope>();
    if (scope_ != nullptr) *scope = *scope_;
    scope_ = scope.get();
    out_.scopes.push_back(std::move(scope));
    return scope_;
  }

  void parse_type_head(std::string_view keyword, const std::vector<std::string_view>& words,
                       std::string_view description) {
    if (words.size() < 2 || !is_identifier(words[1]) || words[1].find('.') != std::string::npos) {
      fail("expected `" + std::string(keyword) + " <Name>`");
    }
    if (keyword != "mixin" && scope_ == nullptr) fail("declaration before `package`");
    TypeDecl decl;
    decl.source = here();
    decl.scope = scope_;
    decl.description = std::string(description);
    decl.name =
        keyword == "mixin" ? std::string(words[1]) : scope_->package + "." + std::string(words[1]);
    size_t next = 2;
    if (keyword == "type") {
      decl.form = TypeDecl::Form::kStruct;
    } else if (keyword == "mixin") {
      decl.form = TypeDecl::Form::kMixin;
    } else if (keyword == "object") {
      decl.form = TypeDecl::Form::kFreeForm;
    } else {
      decl.form = TypeDecl::Form::kScalar;
      if (words.size() < 3) fail("expected `scalar <Name> <base>`");
      decl.scalar_base = std::string(words[2]);
      static constexpr std::string_view kBases[] = {"string",  "int32",         "int64",   "number",
                                                    "boolean", "int-or-string", "quantity"};
      bool known = false;
      for (std::string_view b : kBases) known = known || b == decl.scalar_base;
      if (!known) fail("unknown scalar base `" + decl.scalar_base + "`");
      next = 3;
    }
    for (size_t i = next; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == "withlist" && decl.form == TypeDecl::Form::kStruct) {
        decl.with_list = true;
      } else if (w.starts_with("gvk=") && decl.form == TypeDecl::Form::kStruct) {
        std::vector<std::string> parts = split(w.substr(4), '/');
        if (parts.size() == 2) parts.insert(parts.begin(), std::string());
        if (parts.size() != 3 || parts[1].empty() || parts[2].empty()) {
          fail("expected gvk=<version>/<Kind> or gvk=<group>/<version>/<Kind>");
        }
        decl.gvks.push_back({parts[0], parts[1], parts[2]});
      } else if (w.starts_with("map=") && decl.form == TypeDecl::Form::kStruct) {
        decl.map_type = std::string(w.substr(4));
        if (decl.map_type != "atomic" && decl.map_type != "granular") {
          fail("map= is atomic or granular");
        }
      } else if (w.starts_with("format=") && decl.form == TypeDecl::Form::kScalar) {
        decl.format = std::string(w.substr(7));
      } else {
        fail("unexpected `" + std::string(w) + "` in a " + std::string(keyword) + " declaration");
      }
    }
    if (decl.with_list && decl.gvks.empty()) fail("`withlist` needs a gvk=");
    out_.types.push_back(std::move(decl));
    current_ = &out_.types.back();
  }

  void parse_field(std::string_view content) {
    FieldDecl field;
    field.source = here();
    field.scope = scope_;
    if (content.front() == '+') {
      std::vector<std::string_view> words = split_words(content.substr(1));
      if (words.empty() || words.size() > 2 || !is_identifier(words[0])) {
        fail("expected `+<Mixin>` or `+<Mixin> #<n>`");
      }
      field.include = std::string(words[0]);
      if (words.size() == 2) {
        if (!words[1].starts_with('#')) fail("expected `+<Mixin> #<n>`");
        parse_protobuf(words[1], field);
        if (field.protobuf_absent || field.protobuf_pointer) {
          fail("a mixin's protobuf prefix is `#<n>` (the embedded message's field number)");
        }
      }
      current_->fields.push_back(std::move(field));
      return;
    }
    auto [head, description] = split_description(content);
    field.description = std::string(description);
    std::vector<std::string_view> words = split_words(head);
    if (words.size() < 2) fail("expected `<name>[!] <type> [attributes] -- <description>`");
    std::string_view name = words[0];
    if (name.ends_with('!')) {
      field.required = true;
      name.remove_suffix(1);
    }
    if (!is_identifier(name) || name.find('.') != std::string_view::npos) {
      fail("bad field name `" + std::string(name) + "`");
    }
    field.name = std::string(name);
    field.type_expr = std::string(words[1]);
    bool strategy_given = false;
    bool numbered = false;
    for (size_t i = 2; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w.starts_with('#')) {
        if (numbered) fail("two protobuf numbers on one field");
        numbered = true;
        parse_protobuf(w, field);
        continue;
      }
      size_t eq = w.find('=');
      if (eq == std::string_view::npos || eq + 1 == w.size()) {
        fail("attribute `" + std::string(w) + "` is not key=value");
      }
      std::string_view key = w.substr(0, eq);
      std::string_view val = w.substr(eq + 1);
      if (key == "merge") {
        field.patch_merge_key = std::string(val);
        if (!strategy_given) field.patch_strategy = "merge";
      } else if (key == "patch") {
        static constexpr std::string_view kStrategies[] = {"merge", "replace", "retainKeys",
                                                           "merge,retainKeys"};
        bool known = false;
        for (std::string_view s : kStrategies) known = known || s == val;
        if (!known) fail("unknown patch strategy `" + std::string(val) + "`");
        field.patch_strategy = std::string(val);
        strategy_given = true;
      } else if (key == "list") {
        if (val != "atomic" && val != "set" && val != "map") fail("list= is atomic, set or map");
        field.list_type = std::string(val);
      } else if (key == "keys") {
        field.list_map_keys = split(val, ',');
      } else if (key == "map") {
        if (val != "atomic" && val != "granular") fail("map= is atomic or granular");
        field.map_type = std::string(val);
      } else if (key == "enum") {
        for (std::string& v : split(val, '|')) {
          field.enum_values.push_back(v == "\"\"" ? std::string() : std::move(v));
        }
      } else if (key == "default") {
        field.default_json = std::string(val);
      } else if (key == "format") {
        field.format = std::string(val);
      } else {
        fail("unknown attribute `" + std::string(key) + "`");
      }
    }
    if (field.list_type == "map" && field.list_map_keys.empty()) {
      if (field.patch_merge_key.empty()) fail("list=map needs keys= (or a merge= key)");
      field.list_map_keys.push_back(field.patch_merge_key);
    }
    if (!field.list_map_keys.empty() && field.list_type != "map") fail("keys= needs list=map");
    current_->fields.push_back(std::move(field));
  }

  // `#-`, or `#<n>[.<m>...][*]`: field numbers from the outer message in; `*` marks a Go
  // pointer. Field numbers are 1..2^29-1 as in protobuf.
  void parse_protobuf(std::string_view word, FieldDecl& field) {
    auto bad = [&](std::string_view why) {
      fail("bad protobuf number `" + std::string(word) + "`: " + std::string(why) +
           " (expected #<n>, #<n>.<m>, a trailing * for a Go pointer, or #- when the field is "
           "not on the wire)");
    };
    std::string_view spec = word.substr(1);
    if (spec == "-") {
      field.protobuf_absent = true;
      return;
    }
    if (spec.ends_with('*')) {
      field.protobuf_pointer = true;
      spec.remove_suffix(1);
    }
    if (spec.empty()) bad("no number");
    constexpr std::uint32_t kMaxFieldNumber = (1u << 29) - 1;
    for (const std::string& part : split(spec, '.')) {
      if (part.empty() || part.size() > 9) bad("not a field number");
      std::uint32_t n = 0;
      for (char c : part) {
        if (c < '0' || c > '9') bad("not a field number");
        n = n * 10 + static_cast<std::uint32_t>(c - '0');
      }
      if (n == 0 || n > kMaxFieldNumber) bad("field numbers are 1 to 536870911");
      field.protobuf_path.push_back(n);
    }
  }

  std::string file_;
  Declarations& out_;
  int line_no_ = 0;
  Scope* scope_ = nullptr;
  TypeDecl* current_ = nullptr;
};

}  // namespace

void parse_schema_file(std::string_view file_name, std::string_view text, Declarations& out) {
  // The parser keeps a pointer to the type being filled only until the next declaration,
  // so `out.types` may grow freely.
  FileParser(file_name, out).parse(text);
}

}  // namespace podwarp::schema::detail
