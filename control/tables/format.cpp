#include "tables/format.h"

#include <fmt/format.h>

#include <map>

#include "podwarp/selector.h"
#include "tables/timestamps.h"

namespace podwarp::tables::detail {

const json::object* object_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* f = find_path(v, path);
  return f == nullptr ? nullptr : f->if_object();
}

const json::array* array_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* f = find_path(v, path);
  return f == nullptr ? nullptr : f->if_array();
}

std::int64_t size_at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* f = find_path(v, path);
  if (f == nullptr) return 0;
  if (const json::array* a = f->if_array()) return static_cast<std::int64_t>(a->size());
  if (const json::object* o = f->if_object()) return static_cast<std::int64_t>(o->size());
  return 0;
}

std::string_view str(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || !it->value().is_string()) return {};
  const json::string& s = it->value().get_string();
  return {s.data(), s.size()};
}

std::int64_t integer(const json::object& o, std::string_view key, std::int64_t fallback) {
  auto it = o.find(key);
  if (it == o.end()) return fallback;
  const json::value& v = it->value();
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
  if (v.is_double()) return static_cast<std::int64_t>(v.get_double());
  return fallback;
}

std::string_view name_of(const json::value& obj) { return get_string(obj, {"metadata", "name"}); }

std::string age_of(const json::value& obj, std::chrono::system_clock::time_point now) {
  return since(find_path(obj, {"metadata", "creationTimestamp"}), now);
}

std::string format_labels(const json::value* labels) {
  const json::object* o = labels == nullptr ? nullptr : labels->if_object();
  if (o == nullptr || o->empty()) return "<none>";
  std::map<std::string_view, std::string_view> sorted;
  for (const auto& kv : *o) {
    std::string_view value;
    if (kv.value().is_string()) value = kv.value().get_string();
    sorted.emplace(kv.key(), value);
  }
  std::string out;
  for (const auto& [k, v] : sorted) {
    if (!out.empty()) out += ',';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::expected<std::string, std::string> label_selector_string(const json::value* selector) {
  if (selector == nullptr || selector->is_null()) return std::string();  // labels.Nothing()
  auto parsed = LabelSelector::from_json(*selector);
  if (!parsed) return std::unexpected(parsed.error());
  return parsed->to_string();
}

std::string format_label_selector(const json::value* selector) {
  auto s = label_selector_string(selector);
  if (!s) return "<error>";
  if (s->empty()) return "<none>";
  return *s;
}

std::pair<std::string, std::string> container_cells(const json::array* containers) {
  std::string names;
  std::string images;
  if (containers == nullptr) return {names, images};
  bool first = true;
  for (const json::value& c : *containers) {
    if (!first) {
      names += ',';
      images += ',';
    }
    first = false;
    names += get_string(c, {"name"});
    images += get_string(c, {"image"});
  }
  return {names, images};
}

std::string int_or_string(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) return std::to_string(static_cast<std::int64_t>(v.get_double()));
  return "";
}

std::string list_with_more(const std::vector<std::string>& list, bool more, std::int64_t count,
                           std::int64_t max) {
  std::string ret = join(list, ",");
  if (more) return fmt::format("{} + {} more...", ret, count - max);
  if (ret.empty()) return "<unset>";
  return ret;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i != 0) out += sep;
    out += parts[i];
  }
  return out;
}

std::string_view trim_space(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  std::size_t b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  std::size_t e = s.find_last_not_of(kSpace);
  return s.substr(b, e - b + 1);
}

std::string join_host_port(std::string_view host, std::int64_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace podwarp::tables::detail
