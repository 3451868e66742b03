#include "lb/service_sync.h"

#include <vector>

#include "lb/service_desc.h"
#include "podwarp/log.h"

namespace podwarp::noded::lb {

namespace {

constexpr std::string_view kServiceNameLabel = "kubernetes.io/service-name";

std::string object_key(const json::value& obj) {
  std::string ns(get_string(obj, {"metadata", "namespace"}));
  std::string name(get_string(obj, {"metadata", "name"}));
  if (name.empty()) return {};
  return ns + "/" + name;
}

}  // namespace

ServiceSync::ServiceSync(ServiceMap& map, std::string node_name)
    : map_(map), node_name_(std::move(node_name)) {}

std::string ServiceSync::slice_service_key(const json::value& slice) {
  const json::value* labels = find_path(slice, {"metadata", "labels"});
  if (labels == nullptr || !labels->is_object()) return {};
  const auto* svc = labels->as_object().if_contains(kServiceNameLabel);
  if (svc == nullptr || !svc->is_string() || svc->as_string().empty()) return {};
  return std::string(get_string(slice, {"metadata", "namespace"})) + "/" +
         std::string(svc->as_string());
}

void ServiceSync::service_changed(const json::value& service) {
  std::string key = object_key(service);
  if (key.empty()) return;
  entries_[key].service = std::make_shared<const json::value>(service);
  if (synced_) apply(key);
}

void ServiceSync::service_deleted(const json::value& service) {
  std::string key = object_key(service);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.service.reset();
  if (synced_) apply(key);
}

void ServiceSync::remove_slice(const std::string& svc_key, std::string_view slice_name) {
  auto it = entries_.find(svc_key);
  if (it == entries_.end()) return;
  if (auto s = it->second.slices.find(slice_name); s != it->second.slices.end())
    it->second.slices.erase(s);
  if (synced_) apply(svc_key);
}

void ServiceSync::slice_changed(const json::value* old_slice, const json::value& slice) {
  std::string name(get_string(slice, {"metadata", "name"}));
  if (name.empty()) return;
  std::string key = slice_service_key(slice);
  if (old_slice != nullptr) {
    // The service-name label moved (rare): the slice leaves its old service.
    std::string old_key = slice_service_key(*old_slice);
    if (!old_key.empty() && old_key != key) remove_slice(old_key, name);
  }
  if (key.empty()) return;
  entries_[key].slices[name] = std::make_shared<const json::value>(slice);
  if (synced_) apply(key);
}

void ServiceSync::slice_deleted(const json::value& slice) {
  std::string key = slice_service_key(slice);
  if (key.empty()) return;
  remove_slice(key, get_string(slice, {"metadata", "name"}));
}

void ServiceSync::apply(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  std::optional<ServiceDesc> desc;
  if (e.service) {
    std::vector<json::value> slices;
    slices.reserve(e.slices.size());
    for (const auto& [_, s] : e.slices) slices.push_back(*s);
    desc = service_desc_from_json(*e.service, slices, node_name_);
  }
  if (e.applied && desc == e.last) {
    ++stats_.skipped;
    failed_.erase(key);
  } else {
    ++stats_.applies;
    auto r = desc ? map_.upsert_service(*desc) : map_.delete_service(key);
    if (!r) {
      ++stats_.failures;
      failed_.insert(key);
      e.applied = false;  // the next apply writes it whatever it is
      log::warn("service lb: {} {}: {} (retried)", desc ? "program" : "remove", key,
                r.error().message);
    } else {
      failed_.erase(key);
      e.applied = true;
      e.last = std::move(desc);
    }
  }
  // Nothing left to remember: no Service and no slices (and nothing in the map).
  if (!e.service && e.slices.empty() && e.applied && !failed_.contains(key)) entries_.erase(it);
}

void ServiceSync::mark_synced() {
  if (synced_) return;
  synced_ = true;
  std::vector<std::string> keys;
  keys.reserve(entries_.size());
  for (const auto& [k, _] : entries_) keys.push_back(k);
  for (const auto& k : keys) apply(k);
  if (auto r = map_.prune_unclaimed(); !r)
    log::warn("service lb: prune of services deleted while noded was down: {}",
              r.error().message);
  log::info("service lb: synced {} services ({} map changes, {} unchanged, {} failed)",
            keys.size(), stats_.applies, stats_.skipped, failed_.size());
}

std::size_t ServiceSync::retry_failed() {
  if (!synced_) return failed_.size();
  std::vector<std::string> keys(failed_.begin(), failed_.end());
  for (const auto& k : keys) {
    if (entries_.contains(k)) {
      apply(k);
    } else {
      failed_.erase(k);
    }
  }
  return failed_.size();
}

}  // namespace podwarp::noded::lb
