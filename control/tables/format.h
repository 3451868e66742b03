// Shared cell formatting for the printers: upstream's small helpers (labels.FormatLabels,
// metav1.FormatLabelSelector, layoutContainerCells, listWithMoreString, ...) over JSON objects.
// Pure functions, safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::tables::detail {

// Typed lookups that treat a missing field, null and a field of another type alike.
const json::object* object_at(const json::value& v, std::initializer_list<std::string_view> path);
const json::array* array_at(const json::value& v, std::initializer_list<std::string_view> path);
// The number of entries of an array or object field; 0 when absent.
std::int64_t size_at(const json::value& v, std::initializer_list<std::string_view> path);
// A string field of an object (json::object), "" when absent.
std::string_view str(const json::object& o, std::string_view key);
std::int64_t integer(const json::object& o, std::string_view key, std::int64_t fallback = 0);

// metadata.name, and the Age cell (translateTimestampSince(creationTimestamp)).
std::string_view name_of(const json::value& obj);
std::string age_of(const json::value& obj, std::chrono::system_clock::time_point now);

// labels.FormatLabels: "a=1,b=2" sorted by key; "<none>" when empty or absent.
std::string format_labels(const json::value* labels);

// metav1.LabelSelectorAsSelector(sel).String(), via podwarp::LabelSelector: requirements sorted
// by key, "k=v", "k in (a,b)", "k notin (a)", "k", "!k". Absent/null (Nothing) and {}
// (Everything) both print "". An invalid selector (unknown operator, wrong number of values,
// bad key or value) is an error.
std::expected<std::string, std::string> label_selector_string(const json::value* selector);
// metav1.FormatLabelSelector: as above, "<none>" when empty and "<error>" when invalid.
std::string format_label_selector(const json::value* selector);

// layoutContainerCells: container names and images, each comma-joined.
std::pair<std::string, std::string> container_cells(const json::array* containers);

// intstr.IntOrString.String(): a number in decimal, a string as is.
std::string int_or_string(const json::value& v);

// upstream's listWithMoreString: "a,b,c + 2 more...", "<unset>" for an empty list.
std::string list_with_more(const std::vector<std::string>& list, bool more, std::int64_t count,
                           std::int64_t max);

// strings.Join.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// strings.TrimSpace for the ASCII white space Go trims.
std::string_view trim_space(std::string_view s);

// net.JoinHostPort: "10.0.0.1:80", "[fd00::1]:80".
std::string join_host_port(std::string_view host, std::int64_t port);

// strings.ToLower for ASCII (kinds).
std::string to_lower(std::string_view s);

}  // namespace podwarp::tables::detail
