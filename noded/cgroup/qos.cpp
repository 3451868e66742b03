#include "cgroup/qos.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "podwarp/quantity.h"

namespace podwarp::noded::cgroup {
namespace {

std::optional<Quantity> quantity_at(const json::value& c, std::string_view kind,
                                    std::string_view name) {
  const json::value* v = find_path(c, {"resources", kind, name});
  if (v == nullptr) return std::nullopt;
  auto q = Quantity::from_json(*v);
  if (!q) return std::nullopt;
  return *q;
}

const json::array* array_at(const json::value& pod, std::string_view key) {
  const json::value* v = find_path(pod, {"spec", key});
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

constexpr std::string_view kQosResources[] = {"cpu", "memory"};

}  // namespace

std::string_view qos_class_name(QosClass c) {
  switch (c) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      return "BestEffort";
  }
  return "BestEffort";
}

QosClass pod_qos_class(const json::value& pod) {
  std::map<std::string, Quantity> requests, limits;
  bool guaranteed = true;
  for (auto key : {std::string_view("containers"), std::string_view("initContainers")}) {
    const json::array* cs = array_at(pod, key);
    if (cs == nullptr) continue;
    for (const auto& c : *cs) {
      int limits_found = 0;
      for (auto r : kQosResources) {
        auto lim = quantity_at(c, "limits", r);
        auto req = quantity_at(c, "requests", r);
        if (!req && lim) req = lim;  // API defaulting
        if (req && req->sign() > 0) requests[std::string(r)] += *req;
        if (lim && lim->sign() > 0) {
          ++limits_found;
          limits[std::string(r)] += *lim;
        }
      }
      if (limits_found != 2) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return QosClass::kBestEffort;
  if (guaranteed) {
    for (auto& [name, req] : requests) {
      auto it = limits.find(name);
      if (it == limits.end() || it->second != req) {
        guaranteed = false;
        break;
      }
    }
  }
  if (guaranteed && requests.size() == limits.size()) return QosClass::kGuaranteed;
  return QosClass::kBurstable;
}

Limits container_limits(const json::value& c) {
  Limits l;
  auto cpu_lim = quantity_at(c, "limits", "cpu");
  auto cpu_req = quantity_at(c, "requests", "cpu");
  auto mem_lim = quantity_at(c, "limits", "memory");
  if (cpu_lim && cpu_lim->sign() > 0) l.cpu_limit_milli = cpu_lim->milli_value();
  if (cpu_req && cpu_req->sign() > 0) {
    l.cpu_request_milli = cpu_req->milli_value();
  } else if (l.cpu_limit_milli) {
    l.cpu_request_milli = l.cpu_limit_milli;
  }
  if (mem_lim && mem_lim->sign() > 0) l.memory_limit_bytes = mem_lim->value();
  return l;
}

Limits pod_limits(const json::value& pod) {
  std::int64_t cpu_req_sum = 0, cpu_lim_sum = 0, mem_lim_sum = 0;
  std::int64_t cpu_req_init = 0, cpu_lim_init = 0, mem_lim_init = 0;
  bool all_cpu_lim = true, all_mem_lim = true, any = false;
  for (auto key : {std::string_view("containers"), std::string_view("initContainers")}) {
    const json::array* cs = array_at(pod, key);
    if (cs == nullptr) continue;
    bool init = key == "initContainers";
    for (const auto& c : *cs) {
      any = true;
      Limits l = container_limits(c);
      if (!l.cpu_limit_milli) all_cpu_lim = false;
      if (!l.memory_limit_bytes) all_mem_lim = false;
      if (init) {
        cpu_req_init = std::max(cpu_req_init, l.cpu_request_milli.value_or(0));
        cpu_lim_init = std::max(cpu_lim_init, l.cpu_limit_milli.value_or(0));
        mem_lim_init = std::max(mem_lim_init, l.memory_limit_bytes.value_or(0));
      } else {
        cpu_req_sum += l.cpu_request_milli.value_or(0);
        cpu_lim_sum += l.cpu_limit_milli.value_or(0);
        mem_lim_sum += l.memory_limit_bytes.value_or(0);
      }
    }
  }
  Limits out;
  out.cpu_request_milli = std::max(cpu_req_sum, cpu_req_init);
  if (any && all_cpu_lim) out.cpu_limit_milli = std::max(cpu_lim_sum, cpu_lim_init);
  if (any && all_mem_lim) out.memory_limit_bytes = std::max(mem_lim_sum, mem_lim_init);
  return out;
}

}  // namespace podwarp::noded::cgroup
