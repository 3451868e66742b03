#include "controllers/apps/common.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>

#include "podwarp/time.h"

namespace podwarp::apps {

const api::Resource& pods_resource() { return loop::resource("", "pods"); }
const api::Resource& pvcs_resource() { return loop::resource("", "persistentvolumeclaims"); }
const api::Resource& nodes_resource() { return loop::resource("", "nodes"); }
const api::Resource& replicasets_resource() { return loop::resource("apps", "replicasets"); }
const api::Resource& deployments_resource() { return loop::resource("apps", "deployments"); }
const api::Resource& daemonsets_resource() { return loop::resource("apps", "daemonsets"); }
const api::Resource& statefulsets_resource() { return loop::resource("apps", "statefulsets"); }

std::string key_of(const json::value& obj) {
  std::string k(namespace_of(obj));
  k += '/';
  k += name_of(obj);
  return k;
}

std::string annotation(const json::value& obj, std::string_view key) {
  const json::value* a = find_path(obj, {"metadata", "annotations"});
  if (!a || !a->is_object()) return {};
  const json::value* v = a->get_object().if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// --- canonical form ------------------------------------------------------------------------

json::value canonical(const json::value& v) {
  if (v.is_object()) {
    std::vector<std::pair<std::string, json::value>> items;
    for (const auto& kv : v.get_object()) {
      json::value c = canonical(kv.value());
      if (c.is_null()) continue;
      if (c.is_object() && c.get_object().empty()) continue;
      if (c.is_array() && c.get_array().empty()) continue;
      items.emplace_back(std::string(kv.key()), std::move(c));
    }
    std::sort(items.begin(), items.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    json::object o;
    for (auto& [k, c] : items) o[k] = std::move(c);
    return o;
  }
  if (v.is_array()) {
    json::array a;
    for (const json::value& e : v.get_array()) a.push_back(canonical(e));
    return a;
  }
  return v;
}

std::string canonical_json(const json::value& v) { return to_json(canonical(v)); }

// --- hashing -------------------------------------------------------------------------------

std::uint32_t fnv32a(std::string_view data, std::uint32_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

std::string safe_encode_string(std::string_view s) {
  static constexpr std::string_view kAlphanums = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out += kAlphanums[c % kAlphanums.size()];
  return out;
}

std::string compute_hash(const json::value& pod_template,
                         std::optional<std::int64_t> collision_count) {
  std::uint32_t h = fnv32a(canonical_json(pod_template));
  if (collision_count) {
    std::uint32_t c = static_cast<std::uint32_t>(*collision_count);
    char bytes[8] = {static_cast<char>(c & 0xff), static_cast<char>((c >> 8) & 0xff),
                     static_cast<char>((c >> 16) & 0xff), static_cast<char>((c >> 24) & 0xff),
                     0, 0, 0, 0};
    h = fnv32a(std::string_view(bytes, 8), h);
  }
  return safe_encode_string(std::to_string(h));
}

bool equal_ignore_hash(const json::value& a, const json::value& b) {
  auto strip = [](const json::value& t) {
    json::value c = t;
    if (json::value* l = find_path(c, {"metadata", "labels"}); l && l->is_object()) {
      l->get_object().erase("pod-template-hash");
    }
    return canonical(c);
  };
  return strip(a) == strip(b);
}

// --- int-or-percent ----------------------------------------------------------------------

std::optional<std::int64_t> scaled_value(const json::value* v, std::int64_t total, bool round_up) {
  if (!v || v->is_null()) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->get_double());
  if (!v->is_string()) return std::nullopt;
  std::string_view s = v->get_string();
  bool pct = !s.empty() && s.back() == '%';
  if (pct) s.remove_suffix(1);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (!pct) return n;  // upstream accepts a numeric string only as percent; be lenient
  if (round_up) return static_cast<std::int64_t>(std::ceil(static_cast<double>(n * total) / 100.0));
  return static_cast<std::int64_t>(std::floor(static_cast<double>(n * total) / 100.0));
}

std::pair<std::int64_t, std::int64_t> resolve_fenceposts(const json::value* max_surge,
                                                         const json::value* max_unavailable,
                                                         std::int64_t desired) {
  static const json::value kDefault = "25%";
  std::int64_t surge =
      scaled_value(max_surge && !max_surge->is_null() ? max_surge : &kDefault, desired, true)
          .value_or(0);
  std::int64_t unavailable =
      scaled_value(max_unavailable && !max_unavailable->is_null() ? max_unavailable : &kDefault,
                   desired, false)
          .value_or(0);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

// --- pods ----------------------------------------------------------------------------------

bool pod_active(const json::value& pod) {
  std::string_view phase = get_string(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" && !being_deleted(pod);
}

const json::object* find_condition(const json::value& status, std::string_view type) {
  const json::value* c = find_path(status, {"conditions"});
  if (!c || !c->is_array()) return nullptr;
  for (const json::value& e : c->get_array()) {
    if (e.is_object() && get_string(e, {"type"}) == type) return &e.get_object();
  }
  return nullptr;
}

bool pod_ready(const json::value& pod) {
  const json::value* st = find_path(pod, {"status"});
  if (!st) return false;
  const json::object* c = find_condition(*st, "Ready");
  return c && get_string(json::value(*c), {"status"}) == "True";
}

std::optional<Clock::time_point> pod_ready_since(const json::value& pod) {
  const json::value* st = find_path(pod, {"status"});
  if (!st) return std::nullopt;
  const json::object* c = find_condition(*st, "Ready");
  if (!c) return std::nullopt;
  const json::value* s = c->if_contains("status");
  if (!s || !s->is_string() || s->get_string() != "True") return std::nullopt;
  const json::value* t = c->if_contains("lastTransitionTime");
  if (!t || !t->is_string()) return Clock::time_point{};
  auto tp = parse_rfc3339(t->get_string());
  return tp ? *tp : Clock::time_point{};
}

bool pod_available(const json::value& pod, std::int64_t min_ready_seconds, Clock::time_point now) {
  auto since = pod_ready_since(pod);
  if (!since) return false;
  if (min_ready_seconds <= 0) return true;
  return *since + std::chrono::seconds(min_ready_seconds) <= now;
}

std::int64_t pod_restarts(const json::value& pod) {
  std::int64_t m = 0;
  const json::value* cs = find_path(pod, {"status", "containerStatuses"});
  if (cs && cs->is_array()) {
    for (const json::value& c : cs->get_array()) m = std::max(m, get_int(c, {"restartCount"}));
  }
  return m;
}

std::optional<Clock::time_point> creation_time(const json::value& obj) {
  auto t = parse_rfc3339(get_string(obj, {"metadata", "creationTimestamp"}));
  if (!t) return std::nullopt;
  return *t;
}

bool pod_delete_before(const json::value& a, const json::value& b) {
  // 1. unassigned < assigned
  bool an = !get_string(a, {"spec", "nodeName"}).empty();
  bool bn = !get_string(b, {"spec", "nodeName"}).empty();
  if (an != bn) return !an;
  // 2. Pending < Unknown < Running
  auto rank = [](const json::value& p) {
    std::string_view ph = get_string(p, {"status", "phase"});
    if (ph == "Pending" || ph.empty()) return 0;
    if (ph == "Unknown") return 1;
    if (ph == "Running") return 2;
    return 3;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b);
  // 3. not ready < ready
  bool ar = pod_ready(a), br = pod_ready(b);
  if (ar != br) return !ar;
  // 4. ready for a shorter time first
  if (ar && br) {
    auto ta = pod_ready_since(a), tb = pod_ready_since(b);
    if (ta && tb && *ta != *tb) return *ta > *tb;
  }
  // 5. more restarts first
  std::int64_t ra = pod_restarts(a), rb = pod_restarts(b);
  if (ra != rb) return ra > rb;
  // 6. newer first
  auto ca = creation_time(a), cb = creation_time(b);
  if (ca && cb && *ca != *cb) return *ca > *cb;
  return name_of(a) < name_of(b);
}

void ensure_kind(json::value& obj, std::string_view api_version, std::string_view kind) {
  if (!obj.is_object()) return;
  json::object& o = obj.as_object();
  if (!o.contains("kind")) o["kind"] = kind;
  if (!o.contains("apiVersion")) o["apiVersion"] = api_version;
}

// --- owner references ----------------------------------------------------------------------

const json::object* controller_ref(const json::value& obj) {
  const json::value* refs = find_path(obj, {"metadata", "ownerReferences"});
  if (!refs || !refs->is_array()) return nullptr;
  for (const json::value& r : refs->get_array()) {
    if (r.is_object() && get_bool(r, {"controller"})) return &r.get_object();
  }
  return nullptr;
}

json::object make_controller_ref(const json::value& owner, std::string_view api_version,
                                 std::string_view kind) {
  json::object r;
  r["apiVersion"] = api_version;
  r["kind"] = kind;
  r["name"] = name_of(owner);
  r["uid"] = uid_of(owner);
  r["controller"] = true;
  r["blockOwnerDeletion"] = true;
  return r;
}

json::value pod_from_template(const json::value& pod_template, const json::object& owner_ref,
                              std::string_view ns) {
  json::object pod;
  pod["apiVersion"] = "v1";
  pod["kind"] = "Pod";
  json::object meta;
  meta["namespace"] = ns;
  if (const json::value* l = find_path(pod_template, {"metadata", "labels"}); l && l->is_object()) {
    meta["labels"] = *l;
  }
  if (const json::value* a = find_path(pod_template, {"metadata", "annotations"});
      a && a->is_object()) {
    meta["annotations"] = *a;
  }
  if (const json::value* f = find_path(pod_template, {"metadata", "finalizers"});
      f && f->is_array()) {
    meta["finalizers"] = *f;
  }
  json::array refs;
  refs.push_back(owner_ref);
  meta["ownerReferences"] = std::move(refs);
  pod["metadata"] = std::move(meta);
  if (const json::value* s = find_path(pod_template, {"spec"}); s && s->is_object()) {
    pod["spec"] = *s;
  } else {
    pod["spec"] = json::object();
  }
  return pod;
}

// --- expectations --------------------------------------------------------------------------

namespace {
constexpr auto kExpectationsTimeout = std::chrono::minutes(5);
}

bool Expectations::satisfied(const std::string& key,
                             std::chrono::steady_clock::time_point now) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return true;
  const Entry& e = it->second;
  if (e.add <= 0 && e.del.empty()) return true;
  return now - e.at > kExpectationsTimeout;
}

void Expectations::expect_creations(const std::string& key, int n) {
  Entry& e = entries_[key];
  e.add = n;
  e.at = std::chrono::steady_clock::now();
}

void Expectations::expect_deletions(const std::string& key,
                                    const std::vector<std::string>& pod_keys) {
  Entry& e = entries_[key];
  e.del = std::set<std::string>(pod_keys.begin(), pod_keys.end());
  e.at = std::chrono::steady_clock::now();
}

void Expectations::creation_observed(const std::string& key) {
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.add > 0) --it->second.add;
}

void Expectations::deletion_observed(const std::string& key, const std::string& pod_key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) it->second.del.erase(pod_key);
}

void Expectations::forget(const std::string& key) { entries_.erase(key); }

}  // namespace podwarp::apps
