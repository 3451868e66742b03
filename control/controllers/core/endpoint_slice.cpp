#include "core/endpoint_slice.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "core/endpoints.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time";
constexpr std::string_view kHeadless = "service.kubernetes.io/headless";
constexpr std::string_view kZoneLabel = "topology.kubernetes.io/zone";

bool is_ipv6(std::string_view ip) { return ip.find(':') != std::string_view::npos; }

// The pod's first IP of the address type's family.
std::string_view pod_ip(const json::value& pod, std::string_view address_type) {
  const bool want6 = address_type == "IPv6";
  if (const json::value* ips = find_path(pod, {"status", "podIPs"}); ips && ips->is_array()) {
    for (const json::value& e : ips->get_array()) {
      std::string_view ip = get_string(e, {"ip"});
      if (!ip.empty() && is_ipv6(ip) == want6) return ip;
    }
  }
  std::string_view ip = get_string(pod, {"status", "podIP"});
  if (!ip.empty() && is_ipv6(ip) == want6) return ip;
  return {};
}

bool port_less(const json::value& a, const json::value& b) {
  auto ka = std::tuple(get_string(a, {"name"}), get_int(a, {"port"}), get_string(a, {"protocol"}));
  auto kb = std::tuple(get_string(b, {"name"}), get_int(b, {"port"}), get_string(b, {"protocol"}));
  return ka < kb;
}

json::array sorted_ports(const json::value* ports) {
  json::array out;
  if (ports != nullptr && ports->is_array()) out = ports->get_array();
  std::sort(out.begin(), out.end(), port_less);
  return out;
}

std::string endpoint_key(const json::value& ep) {
  std::string_view uid = get_string(ep, {"targetRef", "uid"});
  if (!uid.empty()) return std::string(uid);
  const json::value* a = find_path(ep, {"addresses"});
  if (a && a->is_array() && !a->get_array().empty() && a->get_array()[0].is_string()) {
    return std::string(a->get_array()[0].get_string());
  }
  return json::serialize(ep);
}

json::object desired_labels(const json::value& svc) {
  json::object labels;
  if (const json::object* l = labels_of(svc)) labels = *l;
  if (get_string(svc, {"spec", "clusterIP"}) == "None") {
    labels[kHeadless] = "";
  } else {
    labels.erase(kHeadless);
  }
  labels[kServiceNameLabel] = name_of(svc);
  labels[kManagedByLabel] = kSliceControllerName;
  return labels;
}

json::array owner_refs(const json::value& svc) {
  return json::array{json::object{{"apiVersion", "v1"},
                                  {"kind", "Service"},
                                  {"name", name_of(svc)},
                                  {"uid", uid_of(svc)},
                                  {"controller", true},
                                  {"blockOwnerDeletion", true}}};
}

bool owned_by(const json::value& slice, const json::value& svc) {
  const json::value* ref = controller_ref(slice);
  return ref != nullptr && get_string(*ref, {"uid"}) == uid_of(svc);
}

}  // namespace

std::vector<std::string> slice_address_types(const json::value& svc) {
  std::vector<std::string> out;
  if (const json::value* f = find_path(svc, {"spec", "ipFamilies"}); f && f->is_array()) {
    for (const json::value& v : f->get_array()) {
      if (v.is_string() && (v.get_string() == "IPv4" || v.get_string() == "IPv6")) {
        out.emplace_back(v.get_string());
      }
    }
  }
  if (out.empty()) {
    std::string_view cip = get_string(svc, {"spec", "clusterIP"});
    out.emplace_back(!cip.empty() && cip != "None" && is_ipv6(cip) ? "IPv6" : "IPv4");
  }
  return out;
}

std::optional<json::object> slice_endpoint(const json::value& svc, const json::value& pod,
                                           std::string_view address_type, std::string_view zone) {
  if (!should_pod_be_in_endpoints(pod, true)) return std::nullopt;
  std::string_view ip = pod_ip(pod, address_type);
  if (ip.empty()) return std::nullopt;
  const bool serving = pod_ready(pod);
  const bool terminating = being_deleted(pod);
  const bool ready =
      get_bool(svc, {"spec", "publishNotReadyAddresses"}) || (serving && !terminating);
  json::object ep;
  ep["addresses"] = json::array{json::string(ip)};
  ep["conditions"] =
      json::object{{"ready", ready}, {"serving", serving}, {"terminating", terminating}};
  std::string_view hostname = get_string(pod, {"spec", "hostname"});
  if (!hostname.empty() && get_string(pod, {"spec", "subdomain"}) == name_of(svc)) {
    ep["hostname"] = hostname;
  }
  ep["targetRef"] = json::object{{"kind", "Pod"},
                                 {"namespace", namespace_of(pod)},
                                 {"name", name_of(pod)},
                                 {"uid", uid_of(pod)}};
  if (std::string_view node = get_string(pod, {"spec", "nodeName"}); !node.empty()) {
    ep["nodeName"] = node;
  }
  if (!zone.empty()) ep["zone"] = zone;
  return ep;
}

SlicePlan plan_endpoint_slices(const json::value& svc, const std::vector<client::ObjectPtr>& pods,
                               const std::vector<client::ObjectPtr>& existing,
                               const std::function<std::string(std::string_view)>& zone_of,
                               const std::string& trigger_time, int max_endpoints) {
  SlicePlan plan;
  auto selector = service_selector(svc);
  if (!selector) return plan;
  const std::size_t max = static_cast<std::size_t>(std::max(1, max_endpoints));
  const json::object labels = desired_labels(svc);
  const json::value* svc_ports = find_path(svc, {"spec", "ports"});

  struct Group {
    json::array ports;
    std::map<std::string, json::object> endpoints;  // by endpoint_key
  };
  struct Work {
    json::value slice;
    std::string port_key;
    bool changed = false;
    std::size_t size() const {
      const json::value* e = find_path(slice, {"endpoints"});
      return e && e->is_array() ? e->get_array().size() : 0;
    }
  };

  for (const std::string& type : slice_address_types(svc)) {
    std::map<std::string, Group> desired;
    std::size_t total = 0;
    for (const client::ObjectPtr& pod : pods) {
      if (namespace_of(*pod) != namespace_of(svc) || !selector->matches(*pod)) continue;
      std::string zone = zone_of(get_string(*pod, {"spec", "nodeName"}));
      auto ep = slice_endpoint(svc, *pod, type, zone);
      if (!ep) continue;
      json::array ports;
      if (svc_ports != nullptr && svc_ports->is_array()) {
        for (const json::value& sp : svc_ports->get_array()) {
          auto p = endpoint_port(*pod, sp);
          if (!p) continue;
          if (!p->contains("name")) (*p)["name"] = "";
          ports.emplace_back(std::move(*p));
        }
      }
      std::sort(ports.begin(), ports.end(), port_less);
      std::string pk = json::serialize(ports);
      Group& g = desired[pk];
      g.ports = std::move(ports);
      if (g.endpoints.emplace(endpoint_key(*ep), std::move(*ep)).second) ++total;
    }

    // Pass 1: existing slices keep the endpoints still wanted, in place.
    std::vector<Work> kept;
    std::vector<json::value> removed;
    for (const client::ObjectPtr& s : existing) {
      if (get_string(*s, {"addressType"}) != type) continue;
      std::string pk = json::serialize(sorted_ports(find_path(*s, {"ports"})));
      auto it = desired.find(pk);
      const json::value* eps = find_path(*s, {"endpoints"});
      const bool empty = eps == nullptr || !eps->is_array() || eps->get_array().empty();
      if (it == desired.end()) {
        if (total == 0 && empty && kept.empty()) {
          kept.push_back({*s, pk, false});  // the placeholder
        } else {
          removed.push_back(*s);
        }
        continue;
      }
      json::array next;
      bool changed = false;
      if (!empty) {
        for (const json::value& ep : eps->get_array()) {
          auto w = it->second.endpoints.find(endpoint_key(ep));
          if (w == it->second.endpoints.end()) {
            changed = true;
            continue;
          }
          if (!ep.is_object() || ep.get_object() != w->second) changed = true;
          next.emplace_back(std::move(w->second));
          it->second.endpoints.erase(w);
        }
      }
      if (next.empty()) {
        removed.push_back(*s);
        continue;
      }
      json::value slice = *s;
      slice.as_object()["endpoints"] = std::move(next);
      kept.push_back({std::move(slice), pk, changed});
    }

    // Pass 2: the rest go to slices being updated anyway, then to slices with room, then to
    // new slices.
    for (auto& [pk, group] : desired) {
      auto& left = group.endpoints;
      auto fill = [&](Work& w) {
        json::array& eps = w.slice.as_object()["endpoints"].as_array();
        while (!left.empty() && eps.size() < max) {
          eps.emplace_back(std::move(left.begin()->second));
          left.erase(left.begin());
          w.changed = true;
        }
      };
      for (Work& w : kept) {
        if (w.port_key == pk && w.changed) fill(w);
      }
      for (Work& w : kept) {
        if (w.port_key == pk && !w.changed) fill(w);
      }
      while (!left.empty()) {
        json::value slice = json::object{{"apiVersion", "discovery.k8s.io/v1"},
                                         {"kind", "EndpointSlice"},
                                         {"addressType", type},
                                         {"endpoints", json::array()},
                                         {"ports", group.ports}};
        Work w{std::move(slice), pk, true};
        fill(w);
        plan.create.push_back(std::move(w.slice));
      }
    }
    if (total == 0 && kept.empty()) {
      // One placeholder slice: reuse a slice that would be deleted, else create one.
      json::value slice = json::object{{"apiVersion", "discovery.k8s.io/v1"},
                                       {"kind", "EndpointSlice"},
                                       {"addressType", type},
                                       {"endpoints", json::array()}};
      if (!removed.empty()) {
        json::value reuse = std::move(removed.front());
        removed.erase(removed.begin());
        reuse.as_object()["endpoints"] = json::array();
        reuse.as_object().erase("ports");
        kept.push_back({std::move(reuse), "[]", true});
      } else {
        plan.create.push_back(std::move(slice));
      }
    }
    for (Work& w : kept) {
      json::object& meta = ensure_object(w.slice.as_object(), "metadata");
      const json::object* cur_labels = labels_of(w.slice);
      if (cur_labels == nullptr || *cur_labels != labels) {
        meta["labels"] = labels;
        w.changed = true;
      }
      if (!owned_by(w.slice, svc)) {
        meta["ownerReferences"] = owner_refs(svc);
        w.changed = true;
      }
      if (w.changed) {
        ensure_object(meta, "annotations")[kTriggerTime] = trigger_time;
        plan.update.push_back(std::move(w.slice));
      }
    }
    for (json::value& r : removed) plan.remove.push_back(std::move(r));
  }
  for (json::value& c : plan.create) {
    json::object& meta = ensure_object(c.as_object(), "metadata");
    meta["generateName"] = fmt::format("{}-", name_of(svc));
    meta["namespace"] = namespace_of(svc);
    meta["labels"] = labels;
    meta["annotations"] = json::object{{kTriggerTime, trigger_time}};
    meta["ownerReferences"] = owner_refs(svc);
  }
  return plan;
}

namespace {

std::int64_t rv_number(const json::value& obj) {
  std::string_view rv = get_string(obj, {"metadata", "resourceVersion"});
  std::int64_t n = 0;
  for (char c : rv) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  return n;
}

class EndpointSliceController : public ControllerBase {
 public:
  explicit EndpointSliceController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "endpointslice"),
        services_res_(resource("", "services")),
        pods_res_(resource("", "pods")),
        nodes_res_(resource("", "nodes")),
        slices_res_(resource("discovery.k8s.io", "endpointslices")),
        services_(informers_.informer(services_res_)),
        pods_(informers_.informer(pods_res_)),
        nodes_(informers_.informer(nodes_res_)),
        slices_(informers_.informer(slices_res_)) {}

  void init() override {
    std::weak_ptr<EndpointSliceController> w =
        std::static_pointer_cast<EndpointSliceController>(shared_from_this());
    using Self = EndpointSliceController;
    using V = const json::value&;
    loop::on_object_change(informers_, services_res_,
                           guarded(w, [](Self& s, V o) { s.enqueue(key_of(o)); }));
    informers_.on_add(pods_res_, guarded(w, [](Self& s, V o) { s.pod_changed(o, nullptr); }));
    informers_.on_update(pods_res_,
                         guarded(w, [](Self& s, V old, V o) { s.pod_changed(o, &old); }));
    informers_.on_delete(pods_res_, guarded(w, [](Self& s, V o) { s.pod_changed(o, nullptr); }));
    loop::on_object_change(informers_, slices_res_,
                           guarded(w, [](Self& s, V o) { s.slice_changed(o); }));
    informers_.on_update(nodes_res_, guarded(w, [](Self& s, V old, V o) {
                           if (get_string(old, {"metadata", "labels", kZoneLabel}) !=
                               get_string(o, {"metadata", "labels", kZoneLabel})) {
                             s.enqueue_all();
                           }
                         }));
    informers_.on_add(nodes_res_, guarded(w, [](Self& s, V o) {
                        if (s.stopped() || !s.started_) return;
                        if (!get_string(o, {"metadata", "labels", kZoneLabel}).empty())
                          s.enqueue_all();
                      }));
  }

  void on_start() override {
    started_ = true;
    enqueue_all();
  }

  void enqueue_all() {
    for (const client::ObjectPtr& s : services_.list()) enqueue(key_of(*s));
  }

  void enqueue(std::string key) {
    trigger_.note(key);
    queue().add(std::move(key));
  }

  void pod_changed(const json::value& pod, const json::value* old) {
    for (const std::string& k : services_for_pod(services_, pod, old)) enqueue(k);
  }

  void slice_changed(const json::value& slice) {
    if (get_string(slice, {"metadata", "labels", kManagedByLabel}) != kSliceControllerName) return;
    std::string_view svc = get_string(slice, {"metadata", "labels", kServiceNameLabel});
    if (svc.empty()) return;
    queue().add(fmt::format("{}/{}", namespace_of(slice), svc));
  }

  // True when the cache has not yet caught up with this controller's own writes for `key`.
  bool stale(const std::string& key) {
    auto it = expectations_.find(key);
    if (it == expectations_.end()) return false;
    auto& exp = it->second;
    auto now = std::chrono::steady_clock::now();
    auto [ns, _] = split_key(key);
    for (auto e = exp.begin(); e != exp.end();) {
      client::ObjectPtr cached = slices_.get(ns, e->first);
      bool satisfied = e->second.rv < 0 ? cached == nullptr
                                        : (cached != nullptr && rv_number(*cached) >= e->second.rv);
      if (satisfied || now - e->second.since > std::chrono::seconds(10)) {
        e = exp.erase(e);
      } else {
        ++e;
      }
    }
    if (exp.empty()) {
      expectations_.erase(it);
      return false;
    }
    return true;
  }

  Awaitable<Result<void>> sync(std::string key) override {
    if (stale(key)) {
      queue().add_after(key, std::chrono::milliseconds(100));
      co_return Result<void>{};
    }
    auto [ns, name] = split_key(key);
    std::string trigger = trigger_.take(key);
    if (trigger.empty()) trigger = format_rfc3339_micro(std::chrono::system_clock::now());
    client::ObjectPtr svc = services_.get(ns, name);
    // A deleted service's slices go with it (garbage collector, through ownerReferences).
    if (!svc || being_deleted(*svc) || !service_selector(*svc) ||
        get_string(*svc, {"spec", "type"}) == "ExternalName") {
      co_return Result<void>{};
    }
    std::vector<client::ObjectPtr> existing;
    for (const client::ObjectPtr& s : slices_.list()) {
      if (namespace_of(*s) != ns) continue;
      if (get_string(*s, {"metadata", "labels", kServiceNameLabel}) != name) continue;
      if (get_string(*s, {"metadata", "labels", kManagedByLabel}) != kSliceControllerName) continue;
      existing.push_back(s);
    }
    auto zone_of = [this](std::string_view node) -> std::string {
      if (node.empty()) return {};
      client::ObjectPtr n = nodes_.get("", node);
      return n ? std::string(get_string(*n, {"metadata", "labels", kZoneLabel})) : std::string();
    };
    SlicePlan plan = plan_endpoint_slices(*svc, pods_.list(), existing, zone_of, trigger);
    std::optional<client::Error> failure;
    auto& exp = expectations_[key];
    auto now = std::chrono::steady_clock::now();
    for (json::value& obj : plan.create) {
      auto r = co_await loop::api_create(client_, slices_res_, ns, std::move(obj));
      if (r) {
        exp[std::string(name_of(*r))] = {rv_number(*r), now};
      } else if (r.error().code != 403) {
        failure = r.error();
      }
    }
    for (json::value& obj : plan.update) {
      std::string slice_name(name_of(obj));
      auto r = co_await loop::api_update(client_, slices_res_, ns, std::move(obj));
      if (r) {
        exp[slice_name] = {rv_number(*r), now};
      } else if (!r.error().is_not_found()) {
        failure = r.error();
      }
    }
    for (json::value& obj : plan.remove) {
      std::string slice_name(name_of(obj));
      client::DeleteOptions opts;
      opts.precondition_uid = std::string(uid_of(obj));
      auto r = co_await loop::api_delete(client_, slices_res_, ns, slice_name, opts);
      if (r || r.error().is_not_found()) {
        exp[slice_name] = {-1, now};
      } else {
        failure = r.error();
      }
    }
    if (expectations_[key].empty()) expectations_.erase(key);
    if (failure) co_return std::unexpected(*failure);
    co_return Result<void>{};
  }

 private:
  struct Expectation {
    std::int64_t rv = 0;  // -1: deleted
    std::chrono::steady_clock::time_point since;
  };
  const api::Resource& services_res_;
  const api::Resource& pods_res_;
  const api::Resource& nodes_res_;
  const api::Resource& slices_res_;
  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& nodes_;
  client::Informer& slices_;
  bool started_ = false;
  TriggerTimes trigger_;
  // service key -> slice name -> what this controller last wrote
  std::unordered_map<std::string, std::map<std::string, Expectation>> expectations_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_endpoint_slice_controller(loop::ControllerContext& ctx) {
  return make_controller<EndpointSliceController>(ctx);
}

}  // namespace podwarp::controllers
