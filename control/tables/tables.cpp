#include "tables/tables.h"

#include <fmt/format.h>

#include <vector>

#include "tables/format.h"
#include "tables/printer.h"
#include "tables/timestamps.h"

namespace podwarp::tables {
namespace {

using detail::Column;
using detail::Printer;
using TimePoint = std::chrono::system_clock::time_point;

// Upstream's rest.NewDefaultTableConvertor, for kinds without a printer.
constexpr Column kDefaultColumns[] = {
    detail::kNameColumn,
    {"Created At", "date", "", detail::kCreationTimestampDoc},
};

// creationTimestamp in UTC as Go's time.RFC3339; the zero time when absent.
std::string created_at(const json::value& obj) {
  auto t = detail::timestamp(find_path(obj, {"metadata", "creationTimestamp"}));
  if (!t) return "0001-01-01T00:00:00Z";
  const auto secs = std::chrono::floor<std::chrono::seconds>(*t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     hms.hours().count(), hms.minutes().count(), hms.seconds().count());
}

json::array default_cells(const json::value& obj, TimePoint) {
  json::array cells;
  cells.emplace_back(detail::name_of(obj));
  cells.emplace_back(created_at(obj));
  return cells;
}

constexpr Printer kDefaultPrinter{"", "", kDefaultColumns, &default_cells};

struct Entry {
  const Printer* printer;
  json::array columns;  // column_definitions, built once
};

json::array build_columns(const Printer& p) {
  json::array out;
  for (const Column& c : p.columns) {
    out.emplace_back(json::object{{"name", c.name},
                                  {"type", c.type},
                                  {"format", c.format},
                                  {"description", c.description},
                                  {"priority", c.priority}});
  }
  return out;
}

struct Registry {
  std::vector<Entry> entries;
  Entry fallback;
};

const Registry& registry() {
  static const Registry kRegistry = [] {
    Registry r{{}, {&kDefaultPrinter, build_columns(kDefaultPrinter)}};
    for (auto list : {detail::pod_printers(), detail::cluster_printers(), detail::config_printers(),
                      detail::network_printers(), detail::workload_printers(),
                      detail::rbac_printers(), detail::storage_printers()}) {
      for (const Printer& p : list) r.entries.push_back({&p, build_columns(p)});
    }
    return r;
  }();
  return kRegistry;
}

const Entry& entry_for(const api::Resource& r) {
  const Registry& reg = registry();
  for (const Entry& e : reg.entries) {
    if (e.printer->group == r.group && e.printer->kind == r.kind) return e;
  }
  return reg.fallback;
}

// The row's "object" for includeObject=Metadata: meta.AsPartialObjectMetadata.
json::value partial_object_metadata(const json::value& obj) {
  json::object out;
  out["kind"] = "PartialObjectMetadata";
  out["apiVersion"] = "meta.k8s.io/v1";
  const json::value* metadata = find_path(obj, {"metadata"});
  out["metadata"] = metadata != nullptr && metadata->is_object() ? *metadata : json::object();
  return out;
}

// The row's "object" for includeObject=Object: the object, with its type filled in.
json::value full_object(const api::Resource& r, const json::value& obj) {
  const json::object* o = obj.if_object();
  if (o == nullptr) return obj;
  if (o->contains("kind") && o->contains("apiVersion")) return obj;
  json::object out;
  out["kind"] = o->contains("kind") ? o->at("kind") : json::value(r.kind);
  out["apiVersion"] =
      o->contains("apiVersion") ? o->at("apiVersion") : json::value(r.api_version());
  for (const auto& kv : *o) {
    if (kv.key() != "kind" && kv.key() != "apiVersion") out[kv.key()] = kv.value();
  }
  return out;
}

}  // namespace

const json::array& column_definitions(const api::Resource& r) { return entry_for(r).columns; }

json::array row_cells(const api::Resource& r, const json::value& obj, TimePoint now) {
  return entry_for(r).printer->cells(obj, now);
}

bool valid_include_object(std::string_view include_object) {
  return include_object.empty() || include_object == "None" || include_object == "Metadata" ||
         include_object == "Object";
}

json::value make_table(const api::Resource& r, std::span<const json::value* const> objects,
                       std::string_view resource_version, std::string_view continue_token,
                       std::string_view include_object, TimePoint now,
                       bool include_column_definitions) {
  const Entry& entry = entry_for(r);

  json::object metadata;
  if (!resource_version.empty()) metadata["resourceVersion"] = resource_version;
  if (!continue_token.empty()) metadata["continue"] = continue_token;

  json::array rows;
  rows.reserve(objects.size());
  for (const json::value* obj : objects) {
    if (obj == nullptr) continue;
    json::object row;
    row["cells"] = entry.printer->cells(*obj, now);
    if (entry.printer->conditions != nullptr) {
      json::array conditions = entry.printer->conditions(*obj);
      if (!conditions.empty()) row["conditions"] = std::move(conditions);
    }
    if (include_object == "None") {
      row["object"] = nullptr;
    } else if (include_object == "Object") {
      row["object"] = full_object(r, *obj);
    } else {
      row["object"] = partial_object_metadata(*obj);
    }
    rows.emplace_back(std::move(row));
  }

  json::object table;
  table["kind"] = "Table";
  table["apiVersion"] = "meta.k8s.io/v1";
  table["metadata"] = std::move(metadata);
  if (include_column_definitions) {
    table["columnDefinitions"] = entry.columns;
  } else {
    table["columnDefinitions"] = nullptr;
  }
  table["rows"] = std::move(rows);
  return table;
}

}  // namespace podwarp::tables
