#include "schema/schema.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>

#include "schema/dsl.h"
#include "schema/embedded_defs.h"

namespace podwarp::schema {

const Field* Type::find_field(std::string_view field_name) const {
  for (const Field& f : fields) {
    if (f.name == field_name) return &f;
  }
  return nullptr;
}

std::string Type::short_name() const {
  if (!name.empty()) return name.substr(name.rfind('.') + 1);
  switch (kind) {
    case TypeKind::kArray:
      return "[]" + items->short_name();
    case TypeKind::kMap:
      return "map[string]" + items->short_name();
    default:
      return go_name();
  }
}

std::string Type::go_name() const {
  if (!name.empty()) {
    // io.k8s.api.core.v1.PodSpec → v1.PodSpec
    size_t last = name.rfind('.');
    size_t pkg = name.rfind('.', last - 1);
    return name.substr(pkg + 1);
  }
  switch (kind) {
    case TypeKind::kString:
      return "string";
    case TypeKind::kInteger:
      return format == "int32" ? "int32" : "int64";
    case TypeKind::kNumber:
      return "float64";
    case TypeKind::kBoolean:
      return "bool";
    case TypeKind::kArray:
      return "[]" + items->go_name();
    case TypeKind::kMap:
      return "map[string]" + items->go_name();
    case TypeKind::kFreeForm:
      return "map[string]interface {}";
    default:
      return "interface {}";
  }
}

namespace detail {
namespace {

// The parsed model. Types live in a deque so their addresses never change.
struct Model {
  std::deque<Type> storage;
  std::map<std::string, const Type*, std::less<>> by_name;
  std::map<std::tuple<std::string, std::string, std::string>, const Type*> by_gvk;
  std::vector<const Type*> sorted;  // named types by name
  std::vector<std::unique_ptr<patch::PatchMeta>> metas;
};

// Strategic-merge metadata over the model: one node per type (root of a walk, list items, map
// values) and one per field (which adds the field's strategy and merge key).
class MetaNode final : public patch::PatchMeta {
 public:
  MetaNode(const Type* type, const Field* field) : type_(type), field_(field) {}

  const PatchMeta* field(std::string_view name) const override {
    if (type_->kind == TypeKind::kStruct) {
      const Field* f = type_->find_field(name);
      return f == nullptr ? nullptr : f->patch_meta_;
    }
    if (type_->kind == TypeKind::kMap) return type_->items->patch_meta_;
    return nullptr;
  }
  const PatchMeta* items() const override {
    return type_->kind == TypeKind::kArray ? type_->items->patch_meta_ : nullptr;
  }
  std::string_view patch_strategy() const override {
    return field_ == nullptr ? std::string_view() : field_->patch_strategy;
  }
  std::string_view patch_merge_key() const override {
    return field_ == nullptr ? std::string_view() : field_->patch_merge_key;
  }

 private:
  const Type* type_;
  const Field* field_;
};

constexpr std::string_view kMetaV1 = "io.k8s.apimachinery.pkg.apis.meta.v1";

class Builder {
 public:
  explicit Builder(Model& m) : m_(m) {}

  void build(const Declarations& decls) {
    declare(decls);
    for (const TypeDecl& d : decls.types) {
      if (d.form == TypeDecl::Form::kStruct) fill_struct(d);
    }
    for (const TypeDecl& d : decls.types) {
      if (d.with_list) synthesize_list(d);
    }
    index();
    check();
    check_protobuf();
    attach_patch_meta();
  }

 private:
  [[noreturn]] static void fail(const std::string& where, const std::string& what) {
    throw std::logic_error(where + ": " + what);
  }

  Type* new_type() { return &m_.storage.emplace_back(); }

  const Type* primitive(TypeKind kind, std::string format) {
    return intern(kind, std::move(format), nullptr);
  }

  const Type* intern(TypeKind kind, std::string format, const Type* items) {
    auto key = std::make_tuple(kind, format, items);
    auto it = anonymous_.find(key);
    if (it != anonymous_.end()) return it->second;
    Type* t = new_type();
    t->kind = kind;
    t->format = std::move(format);
    t->items = items;
    anonymous_.emplace(std::move(key), t);
    return t;
  }

  void declare(const Declarations& decls) {
    for (const TypeDecl& d : decls.types) {
      if (d.form == TypeDecl::Form::kMixin) {
        if (!mixins_.emplace(d.name, &d).second) {
          fail(d.source, "mixin " + d.name + " declared twice");
        }
        continue;
      }
      Type* t = new_type();
      t->name = d.name;
      t->description = d.description;
      t->source = d.source;
      t->map_type = d.map_type;
      for (const GvkDecl& g : d.gvks) t->gvks.push_back({g.group, g.version, g.kind});
      switch (d.form) {
        case TypeDecl::Form::kStruct:
          t->kind = TypeKind::kStruct;
          break;
        case TypeDecl::Form::kFreeForm:
          t->kind = TypeKind::kFreeForm;
          break;
        default:
          scalar_kind(d, *t);
          break;
      }
      if (!m_.by_name.emplace(t->name, t).second) {
        fail(d.source, "type " + t->name + " declared twice (first at " +
                           m_.by_name.at(t->name)->source + ")");
      }
      structs_.emplace(t->name, t);
    }
  }

  static void scalar_kind(const TypeDecl& d, Type& t) {
    const std::string& b = d.scalar_base;
    t.format = d.format;
    if (b == "string") {
      t.kind = TypeKind::kString;
    } else if (b == "int32" || b == "int64") {
      t.kind = TypeKind::kInteger;
      t.format = b;
    } else if (b == "number") {
      t.kind = TypeKind::kNumber;
      if (t.format.empty()) t.format = "double";
    } else if (b == "boolean") {
      t.kind = TypeKind::kBoolean;
    } else if (b == "int-or-string") {
      t.kind = TypeKind::kIntOrString;
      t.format = "int-or-string";
    } else {
      t.kind = TypeKind::kQuantity;
    }
  }

  // Resolves a type expression of the DSL; `format` applies to the innermost primitive.
  const Type* resolve(std::string_view expr, const Scope& scope, const std::string& format,
                      const std::string& where) {
    if (expr.starts_with("[]")) {
      return intern(TypeKind::kArray, "", resolve(expr.substr(2), scope, format, where));
    }
    if (expr.starts_with("map[") && expr.ends_with("]")) {
      return intern(TypeKind::kMap, "",
                    resolve(expr.substr(4, expr.size() - 5), scope, format, where));
    }
    if (expr == "string") return primitive(TypeKind::kString, format);
    if (expr == "int32" || expr == "int64") return primitive(TypeKind::kInteger, std::string(expr));
    if (expr == "number") return primitive(TypeKind::kNumber, "double");
    if (expr == "boolean") return primitive(TypeKind::kBoolean, "");
    if (expr == "object") return primitive(TypeKind::kFreeForm, "");
    if (!format.empty()) fail(where, "format= applies to string fields only");
    if (expr.find('.') != std::string_view::npos) {
      auto it = m_.by_name.find(expr);
      if (it == m_.by_name.end()) fail(where, "undefined type " + std::string(expr));
      return it->second;
    }
    std::string local = scope.package + "." + std::string(expr);
    if (auto it = m_.by_name.find(local); it != m_.by_name.end()) return it->second;
    const Type* found = nullptr;
    for (const std::string& imp : scope.imports) {
      auto it = m_.by_name.find(imp + "." + std::string(expr));
      if (it == m_.by_name.end()) continue;
      if (found != nullptr) {
        fail(where, "type " + std::string(expr) + " is ambiguous: " + found->name + " or " +
                        it->second->name);
      }
      found = it->second;
    }
    if (found == nullptr) {
      std::string looked = scope.package;
      for (const std::string& imp : scope.imports) looked += ", " + imp;
      fail(where, "undefined type " + std::string(expr) + " (looked in " + looked + ")");
    }
    return found;
  }

  // A field line after mixin expansion, with the protobuf path prefix of the mixins it came
  // through (`+ContainerFields #1`).
  struct ExpandedField {
    const FieldDecl* decl;
    std::vector<std::uint32_t> protobuf_prefix;
  };

  // Appends the fields of `decl` (expanding mixins) to `out`.
  void expand(const TypeDecl& decl, const std::vector<std::uint32_t>& prefix,
              std::vector<ExpandedField>& out, std::vector<std::string>& stack) {
    for (const FieldDecl& f : decl.fields) {
      if (f.include.empty()) {
        out.push_back({&f, prefix});
        continue;
      }
      auto it = mixins_.find(f.include);
      if (it == mixins_.end()) fail(f.source, "undefined mixin " + f.include);
      if (std::find(stack.begin(), stack.end(), f.include) != stack.end()) {
        fail(f.source, "mixin " + f.include + " includes itself");
      }
      std::vector<std::uint32_t> inner = prefix;
      inner.insert(inner.end(), f.protobuf_path.begin(), f.protobuf_path.end());
      stack.push_back(f.include);
      expand(*it->second, inner, out, stack);
      stack.pop_back();
    }
  }

  void fill_struct(const TypeDecl& d) {
    Type* t = structs_.at(d.name);
    std::vector<ExpandedField> decls;
    std::vector<std::string> stack;
    expand(d, {}, decls, stack);
    std::set<std::string> seen;
    std::vector<size_t> unnumbered;
    for (const auto& [fd, protobuf_prefix] : decls) {
      if (!seen.insert(fd->name).second) {
        fail(fd->source, "field " + fd->name + " declared twice in " + d.name);
      }
      Field f;
      f.name = fd->name;
      f.type = resolve(fd->type_expr, *fd->scope, fd->format, fd->source);
      f.required = fd->required;
      f.description = fd->description;
      f.patch_strategy = fd->patch_strategy;
      f.patch_merge_key = fd->patch_merge_key;
      f.list_type = fd->list_type;
      f.list_map_keys = fd->list_map_keys;
      f.map_type = fd->map_type;
      f.enum_values = fd->enum_values;
      if (!fd->default_json.empty()) {
        std::error_code ec;
        json::value v = json::parse(fd->default_json, ec);
        if (ec) fail(fd->source, "default=" + fd->default_json + " is not JSON");
        f.default_value = std::move(v);
      }
      if (!fd->protobuf_absent) {
        if (fd->protobuf_path.empty()) unnumbered.push_back(t->fields.size());
        f.protobuf_path = protobuf_prefix;
        f.protobuf_path.insert(f.protobuf_path.end(), fd->protobuf_path.begin(),
                               fd->protobuf_path.end());
        f.protobuf_pointer = fd->protobuf_pointer;
      }
      t->fields.push_back(std::move(f));
    }
    for (size_t i = 0; i < t->fields.size(); ++i) {
      field_sources_.emplace(&t->fields[i], decls[i].decl->source);
    }
    for (size_t i : unnumbered) unnumbered_.insert(&t->fields[i]);
  }

  void synthesize_list(const TypeDecl& d) {
    const Type* item = m_.by_name.at(d.name);
    Type* t = new_type();
    t->kind = TypeKind::kStruct;
    t->name = d.name + "List";
    t->source = d.source;
    const std::string& kind = d.gvks.front().kind;
    t->description = kind + "List is a list of " + kind + " objects.";
    for (const GvkDecl& g : d.gvks) t->gvks.push_back({g.group, g.version, g.kind + "List"});
    const Type* str = primitive(TypeKind::kString, "");
    auto add = [&](std::string name, const Type* type, bool required, std::string desc) {
      Field f;
      f.name = std::move(name);
      f.type = type;
      f.required = required;
      f.description = std::move(desc);
      t->fields.push_back(std::move(f));
    };
    const Field* api_version = item->find_field("apiVersion");
    const Field* kind_field = item->find_field("kind");
    // Upstream's <Kind>List messages: metadata = 1, items = 2; TypeMeta is not on the wire.
    add("apiVersion", str, false, api_version != nullptr ? api_version->description : "");
    add("items", intern(TypeKind::kArray, "", item), true,
        "Items is the list of " + kind + " objects.");
    t->fields.back().protobuf_path = {2};
    add("kind", str, false, kind_field != nullptr ? kind_field->description : "");
    auto list_meta = m_.by_name.find(std::string(kMetaV1) + ".ListMeta");
    if (list_meta == m_.by_name.end()) {
      fail(d.source, "withlist needs " + std::string(kMetaV1) + ".ListMeta");
    }
    add("metadata", list_meta->second, false,
        "Standard list metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/"
        "api-conventions.md#types-kinds");
    t->fields.back().default_value = json::object();
    t->fields.back().protobuf_path = {1};
    if (!m_.by_name.emplace(t->name, t).second) {
      fail(d.source, "type " + t->name + " declared twice");
    }
    for (size_t i = 0; i < t->fields.size(); ++i) field_sources_.emplace(&t->fields[i], d.source);
  }

  void index() {
    for (const auto& [name, type] : m_.by_name) {
      m_.sorted.push_back(type);
      for (const GroupVersionKind& g : type->gvks) {
        auto key = std::make_tuple(g.group, g.version, g.kind);
        auto [it, fresh] = m_.by_gvk.emplace(key, type);
        if (!fresh) {
          fail(type->source, "kind " + g.group + "/" + g.version + "/" + g.kind +
                                 " also declared by " + it->second->name);
        }
      }
    }
  }

  std::string source_of(const Type& t, const Field& f) const {
    auto it = field_sources_.find(&f);
    return it == field_sources_.end() ? t.source : it->second;
  }

  // The merge key and list-map keys of a list must be fields of its items; attributes must
  // fit the field's type; defaults and enum values must type-check.
  void check() {
    for (const Type* t : m_.sorted) {
      for (const Field& f : t->fields) {
        std::string where = source_of(*t, f);
        const Type* ft = f.type;
        bool is_list = ft->kind == TypeKind::kArray;
        if (!f.list_type.empty() && !is_list) fail(where, f.name + ": list= on a non-list field");
        if (!f.map_type.empty() && ft->kind != TypeKind::kMap && ft->kind != TypeKind::kStruct) {
          fail(where, f.name + ": map= on a field that is neither a map nor a struct");
        }
        if (!f.patch_merge_key.empty()) {
          if (!is_list) fail(where, f.name + ": merge= on a non-list field");
          if (ft->items->kind != TypeKind::kStruct ||
              ft->items->find_field(f.patch_merge_key) == nullptr) {
            fail(where, f.name + ": merge key " + f.patch_merge_key + " is not a field of " +
                            ft->items->short_name());
          }
        }
        if (f.patch_strategy.starts_with("merge") && is_list && f.patch_merge_key.empty() &&
            ft->items->kind == TypeKind::kStruct) {
          fail(where, f.name + ": a merged list of structs needs a merge= key");
        }
        for (const std::string& key : f.list_map_keys) {
          if (ft->items->kind != TypeKind::kStruct || ft->items->find_field(key) == nullptr) {
            fail(where, f.name + ": list-map key " + key + " is not a field of " +
                            ft->items->short_name());
          }
        }
        if (!f.enum_values.empty() && ft->kind != TypeKind::kString) {
          fail(where, f.name + ": enum= on a non-string field");
        }
        if (f.default_value) {
          std::vector<std::string> errors = type_errors(*ft, *f.default_value);
          if (!errors.empty()) {
            fail(where, f.name + ": default does not fit the type: " + errors[0]);
          }
        }
      }
    }
  }

  static std::string protobuf_spelling(const std::vector<std::uint32_t>& path) {
    std::string out = "#";
    for (size_t i = 0; i < path.size(); ++i) {
      if (i > 0) out += '.';
      out += std::to_string(path[i]);
    }
    return out;
  }

  // Every struct field has a protobuf number or is explicitly off the wire; within a type no two
  // fields share a number, and a number is either a field or an embedded message whose fields
  // JSON inlines (#2 next to #2.1 would be both).
  void check_protobuf() {
    for (const Type* t : m_.sorted) {
      if (t->kind != TypeKind::kStruct) continue;
      for (const Field& f : t->fields) {
        if (unnumbered_.contains(&f)) {
          fail(source_of(*t, f), "field " + f.name + " of " + t->name +
                                     " has no protobuf field number: add #<n> as upstream's "
                                     "generated.proto numbers it, or #- if it is not on the wire");
        }
      }
      for (size_t i = 0; i < t->fields.size(); ++i) {
        const Field& a = t->fields[i];
        if (a.protobuf_path.empty()) continue;
        for (size_t j = i + 1; j < t->fields.size(); ++j) {
          const Field& b = t->fields[j];
          if (b.protobuf_path.empty()) continue;
          size_t common = std::min(a.protobuf_path.size(), b.protobuf_path.size());
          if (!std::equal(a.protobuf_path.begin(), a.protobuf_path.begin() + common,
                          b.protobuf_path.begin())) {
            continue;
          }
          std::string what = a.protobuf_path.size() == b.protobuf_path.size()
                                 ? " share protobuf number "
                                 : " collide: one protobuf number cannot be both a field and an "
                                   "embedded message, ";
          fail(source_of(*t, b), "fields " + a.name + " and " + b.name + " of " + t->name + what +
                                     protobuf_spelling(a.protobuf_path) +
                                     (a.protobuf_path == b.protobuf_path
                                          ? std::string()
                                          : " and " + protobuf_spelling(b.protobuf_path)));
        }
      }
    }
  }

  void attach_patch_meta() {
    for (Type& t : m_.storage) {
      t.patch_meta_ = m_.metas.emplace_back(std::make_unique<MetaNode>(&t, nullptr)).get();
    }
    for (Type& t : m_.storage) {
      for (Field& f : t.fields) {
        f.patch_meta_ = m_.metas.emplace_back(std::make_unique<MetaNode>(f.type, &f)).get();
      }
    }
  }

  Model& m_;
  std::map<std::tuple<TypeKind, std::string, const Type*>, const Type*> anonymous_;
  std::map<std::string, const TypeDecl*, std::less<>> mixins_;
  std::map<const Field*, std::string> field_sources_;
  std::set<const Field*> unnumbered_;  // struct fields whose line has no `#<n>` nor `#-`
  std::map<std::string, Type*, std::less<>> structs_;  // mutable view of the declared types
};

std::unique_ptr<Model> build_model(std::span<const EmbeddedFile> files) {
  Declarations decls;
  for (const EmbeddedFile& file : files) parse_schema_file(file.name, file.text, decls);
  auto m = std::make_unique<Model>();
  Builder(*m).build(decls);
  return m;
}

const Model& model() {
  // Magic statics: the first caller builds, concurrent callers wait. A throwing build leaves
  // the static uninitialized, so every later call reports the defect again.
  static const std::unique_ptr<Model> kModel = build_model(embedded_defs());
  return *kModel;
}

}  // namespace

void check_definitions(std::span<const EmbeddedFile> files) { (void)build_model(files); }
}  // namespace detail

void load() { (void)detail::model(); }

const Type* find_type(std::string_view definition_name) {
  const auto& by_name = detail::model().by_name;
  auto it = by_name.find(definition_name);
  return it == by_name.end() ? nullptr : it->second;
}

const Type* kind_type(std::string_view group, std::string_view version, std::string_view kind) {
  const auto& by_gvk = detail::model().by_gvk;
  auto it =
      by_gvk.find(std::make_tuple(std::string(group), std::string(version), std::string(kind)));
  return it == by_gvk.end() ? nullptr : it->second;
}

std::span<const Type* const> named_types() { return detail::model().sorted; }

const patch::PatchMeta* patch_meta(const Type& type) {
  detail::model();
  return type.patch_meta_;
}

}  // namespace podwarp::schema
