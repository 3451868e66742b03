#include "apiserver/filter.h"

#include <fmt/format.h>

#include <map>
#include <ranges>
#include <set>

namespace podwarp::apiserver {

namespace {

// Field labels each kind supports beyond metadata.name and metadata.namespace.
const std::set<std::string_view>& field_labels(std::string_view kind) {
  static const std::map<std::string_view, std::set<std::string_view>> kLabels = {
      {"Pod",
       {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
        "status.nominatedNodeName"}},
      {"Event",
       {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}},
      {"Node", {"spec.unschedulable"}},
      {"Secret", {"type"}},
      {"Namespace", {"status.phase"}},
      {"ReplicaSet", {"status.replicas"}},
      {"Job", {"status.successful"}},
      {"Service", {"spec.clusterIP", "spec.type"}},
  };
  static const std::set<std::string_view> kNone;
  auto it = kLabels.find(kind);
  return it == kLabels.end() ? kNone : it->second;
}

}  // namespace

std::string field_value(const api::Resource& r, const json::value& obj, std::string_view field) {
  (void)r;
  if (field == "source") return std::string(get_string(obj, {"source", "component"}));
  if (field == "status.podIPs") {
    return std::string(get_string(obj, {"status", "podIP"}));
  }
  const json::value* cur = &obj;
  for (auto part : std::views::split(field, '.')) {
    std::string_view key(part.begin(), part.end());
    const json::object* o = cur->if_object();
    if (o == nullptr) return "";
    auto it = o->find(key);
    if (it == o->end()) {
      if (field == "spec.unschedulable" || field == "spec.hostNetwork") return "false";
      if (field == "status.replicas" || field == "status.successful") return "0";
      return "";
    }
    cur = &it->value();
  }
  if (cur->is_string()) return std::string(cur->get_string());
  if (cur->is_bool()) return cur->get_bool() ? "true" : "false";
  if (cur->is_null()) return "";
  return json::serialize(*cur);
}

std::expected<ObjectFilter, ApiError> ObjectFilter::from_request(const Request& req,
                                                                 const api::Resource& r) {
  ObjectFilter f;
  f.resource_ = &r;
  if (auto ls = req.param("labelSelector"); ls && !ls->empty()) {
    auto sel = LabelSelector::parse(*ls);
    if (!sel) {
      return std::unexpected(bad_request(sel.error()));
    }
    if (!sel->empty()) f.label_ = std::move(*sel);
  }
  if (auto fs = req.param("fieldSelector"); fs && !fs->empty()) {
    auto sel = FieldSelector::parse(*fs);
    if (!sel) return std::unexpected(bad_request(sel.error()));
    const auto& allowed = field_labels(r.kind);
    for (const std::string& field : sel->fields()) {
      if (field == "metadata.name" || field == "metadata.namespace") continue;
      if (!allowed.contains(field)) {
        return std::unexpected(bad_request(fmt::format(
            "\"{}\" is not a known field selector: only \"metadata.name\", "
            "\"metadata.namespace\"{}",
            field, allowed.empty() ? "" : " and the kind's field labels")));
      }
    }
    f.field_ = std::move(*sel);
  }
  return f;
}

bool ObjectFilter::matches(const json::value& obj) const {
  if (label_) {
    const json::value* labels = find_path(obj, {"metadata", "labels"});
    if (!label_->matches(labels && labels->is_object() ? &labels->get_object() : nullptr)) {
      return false;
    }
  }
  if (field_) {
    const api::Resource& r = *resource_;
    return field_->matches([&](std::string_view field) -> std::optional<std::string> {
      return field_value(r, obj, field);
    });
  }
  return true;
}

std::optional<std::string> ObjectFilter::pinned_name() const {
  if (!field_) return std::nullopt;
  return field_->exact_value("metadata.name");
}

}  // namespace podwarp::apiserver
