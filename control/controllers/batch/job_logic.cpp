#include "batch/job_logic.h"

#include <algorithm>
#include <charconv>

namespace podwarp::controllers::job {

std::int64_t want_active(std::int64_t parallelism, std::optional<std::int64_t> completions,
                         std::int64_t succeeded, std::int64_t active) {
  if (!completions) return succeeded > 0 ? active : parallelism;
  return std::clamp<std::int64_t>(*completions - succeeded, 0, std::max<std::int64_t>(parallelism, 0));
}

std::int64_t creations_per_sync(std::int64_t missing) {
  return std::clamp<std::int64_t>(missing, 0, 500);
}

std::chrono::milliseconds failure_backoff(std::int64_t failures, std::chrono::milliseconds base,
                                          std::chrono::milliseconds max) {
  if (failures <= 0) return std::chrono::milliseconds(0);
  auto d = base;
  for (std::int64_t i = 1; i < failures && d < max; ++i) d *= 2;
  return std::min(d, max);
}

namespace {
std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}
}  // namespace

std::set<std::int64_t> parse_indexes(std::string_view text, std::int64_t completions) {
  std::set<std::int64_t> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    auto dash = part.find('-');
    auto lo = to_int(part.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : to_int(part.substr(dash + 1));
    if (!lo || !hi || *lo > *hi) continue;
    for (std::int64_t i = *lo; i <= *hi && i < completions; ++i) out.insert(i);
  }
  return out;
}

std::string format_indexes(const std::set<std::int64_t>& indexes) {
  std::string out;
  auto it = indexes.begin();
  while (it != indexes.end()) {
    std::int64_t lo = *it, hi = *it;
    ++it;
    while (it != indexes.end() && *it == hi + 1) hi = *it++;
    if (!out.empty()) out += ',';
    out += std::to_string(lo);
    if (hi != lo) out += '-' + std::to_string(hi);
  }
  return out;
}

std::set<std::int64_t> first_pending_indexes(std::int64_t completions,
                                             const std::set<std::int64_t>& succeeded,
                                             const std::set<std::int64_t>& active,
                                             std::int64_t count) {
  std::set<std::int64_t> out;
  for (std::int64_t i = 0; i < completions && static_cast<std::int64_t>(out.size()) < count; ++i) {
    if (!succeeded.contains(i) && !active.contains(i)) out.insert(i);
  }
  return out;
}

std::optional<std::int64_t> pod_index(const json::value& pod) {
  std::string_view v = get_string(pod, {"metadata", "annotations", kCompletionIndex});
  if (v.empty()) v = get_string(pod, {"metadata", "labels", kCompletionIndex});
  return to_int(v);
}

const json::object* find_condition(const json::value& status, std::string_view type) {
  const json::value* conds = find_path(status, {"conditions"});
  if (conds == nullptr || !conds->is_array()) return nullptr;
  for (const auto& c : conds->get_array()) {
    if (c.is_object() && get_string(c, {"type"}) == type) return &c.get_object();
  }
  return nullptr;
}

bool set_condition(json::object& status, std::string_view type, std::string_view cond_status,
                   std::string_view reason, std::string_view message, const std::string& now) {
  json::value* conds = status.if_contains("conditions");
  if (conds == nullptr || !conds->is_array()) {
    status["conditions"] = json::array();
    conds = &status["conditions"];
  }
  for (auto& c : conds->get_array()) {
    if (!c.is_object() || get_string(c, {"type"}) != type) continue;
    json::object& o = c.get_object();
    bool changed = false;
    if (get_string(c, {"status"}) != cond_status) {
      o["status"] = cond_status;
      o["lastTransitionTime"] = now;
      changed = true;
    }
    if (get_string(c, {"reason"}) != reason) {
      o["reason"] = reason;
      changed = true;
    }
    if (get_string(c, {"message"}) != message) {
      o["message"] = message;
      changed = true;
    }
    if (changed) o["lastProbeTime"] = now;
    return changed;
  }
  conds->get_array().push_back(json::object{{"type", type},
                                            {"status", cond_status},
                                            {"lastProbeTime", now},
                                            {"lastTransitionTime", now},
                                            {"reason", reason},
                                            {"message", message}});
  return true;
}

bool job_finished(const json::value& job) {
  const json::value* st = find_path(job, {"status"});
  if (st == nullptr) return false;
  for (std::string_view t : {"Complete", "Failed"}) {
    const json::object* c = find_condition(*st, t);
    if (c != nullptr && get_string(json::value(*c), {"status"}) == "True") return true;
  }
  return false;
}

}  // namespace podwarp::controllers::job
