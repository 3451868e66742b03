#include "core/endpoints.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time";
constexpr std::string_view kHeadless = "service.kubernetes.io/headless";

std::string_view protocol_of(const json::value& port) {
  std::string_view p = get_string(port, {"protocol"});
  return p.empty() ? std::string_view("TCP") : p;
}

json::object address_of(const json::value& pod, const json::value& svc) {
  json::object a;
  a["ip"] = get_string(pod, {"status", "podIP"});
  if (std::string_view node = get_string(pod, {"spec", "nodeName"}); !node.empty()) {
    a["nodeName"] = node;
  }
  std::string_view hostname = get_string(pod, {"spec", "hostname"});
  if (!hostname.empty() && get_string(pod, {"spec", "subdomain"}) == name_of(svc) &&
      namespace_of(pod) == namespace_of(svc)) {
    a["hostname"] = hostname;
  }
  a["targetRef"] = json::object{{"kind", "Pod"},
                                {"namespace", namespace_of(pod)},
                                {"name", name_of(pod)},
                                {"uid", uid_of(pod)}};
  return a;
}

std::string_view str_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

std::string addr_key(const json::object& a) {
  const json::value* ref = a.if_contains("targetRef");
  return fmt::format("{}|{}", str_field(a, "ip"), ref ? get_string(*ref, {"uid"}) : "");
}

bool port_less(const json::object& a, const json::object& b) {
  auto num = [](const json::object& o) {
    const json::value* v = o.if_contains("port");
    return v != nullptr && v->is_int64() ? v->get_int64() : 0;
  };
  return std::tuple(str_field(a, "name"), num(a), str_field(a, "protocol")) <
         std::tuple(str_field(b, "name"), num(b), str_field(b, "protocol"));
}

}  // namespace

bool should_pod_be_in_endpoints(const json::value& pod, bool include_terminating) {
  if (get_string(pod, {"status", "podIP"}).empty()) return false;
  if (!include_terminating && being_deleted(pod)) return false;
  std::string_view phase = get_string(pod, {"status", "phase"});
  std::string_view restart = get_string(pod, {"spec", "restartPolicy"}, "Always");
  if (restart == "Never") return phase != "Failed" && phase != "Succeeded";
  if (restart == "OnFailure") return phase != "Succeeded";
  return true;
}

std::optional<std::int64_t> find_pod_port(const json::value& pod, const json::value& service_port) {
  const json::value* target = find_path(service_port, {"targetPort"});
  if (target == nullptr || target->is_null()) {
    std::int64_t p = get_int(service_port, {"port"});
    return p > 0 ? std::optional(p) : std::nullopt;
  }
  if (target->is_int64() || target->is_uint64()) return get_int(service_port, {"targetPort"});
  if (!target->is_string()) return std::nullopt;
  std::string_view name = target->get_string();
  // A numeric string is a number (intstr parsed from YAML/JSON as string is rare; upstream
  // treats "8080" in an IntOrString string as a name, so do the same).
  const json::value* containers = find_path(pod, {"spec", "containers"});
  if (containers == nullptr || !containers->is_array()) return std::nullopt;
  for (const json::value& c : containers->get_array()) {
    const json::value* ports = find_path(c, {"ports"});
    if (ports == nullptr || !ports->is_array()) continue;
    for (const json::value& p : ports->get_array()) {
      if (get_string(p, {"name"}) == name && protocol_of(p) == protocol_of(service_port)) {
        return get_int(p, {"containerPort"});
      }
    }
  }
  return std::nullopt;
}

std::optional<json::object> endpoint_port(const json::value& pod, const json::value& service_port) {
  auto num = find_pod_port(pod, service_port);
  if (!num) return std::nullopt;
  json::object p;
  if (std::string_view n = get_string(service_port, {"name"}); !n.empty()) p["name"] = n;
  p["port"] = *num;
  p["protocol"] = protocol_of(service_port);
  if (const json::value* ap = find_path(service_port, {"appProtocol"}); ap && ap->is_string()) {
    p["appProtocol"] = *ap;
  }
  return p;
}

json::array build_endpoint_subsets(const json::value& svc,
                                   const std::vector<client::ObjectPtr>& pods) {
  auto selector = service_selector(svc);
  if (!selector) return {};
  const bool tolerate_unready = get_bool(svc, {"spec", "publishNotReadyAddresses"});
  const bool headless = get_string(svc, {"spec", "clusterIP"}) == "None";
  const json::value* svc_ports = find_path(svc, {"spec", "ports"});
  const bool no_ports =
      svc_ports == nullptr || !svc_ports->is_array() || svc_ports->get_array().empty();

  // port (serialized, "" = the no-port sentinel) -> address key -> (address, ready)
  std::map<std::string, std::map<std::string, std::pair<json::object, bool>>> by_port;
  std::map<std::string, json::object> port_objects;
  std::string_view ns = namespace_of(svc);
  for (const client::ObjectPtr& pod : pods) {
    if (namespace_of(*pod) != ns || !selector->matches(*pod)) continue;
    if (!should_pod_be_in_endpoints(*pod, tolerate_unready)) continue;
    json::object addr = address_of(*pod, svc);
    const bool ready = tolerate_unready || pod_ready(*pod);
    std::string ak = addr_key(addr);
    if (no_ports) {
      if (headless) by_port[""][ak] = {addr, ready};
      continue;
    }
    for (const json::value& sp : svc_ports->get_array()) {
      auto ep = endpoint_port(*pod, sp);
      if (!ep) continue;
      std::string pk = json::serialize(*ep);
      port_objects[pk] = *ep;
      by_port[pk][ak] = {addr, ready};
    }
  }
  // Group ports by identical address sets (RepackSubsets).
  std::map<std::string, std::vector<std::string>> ports_by_addrs;
  for (const auto& [pk, addrs] : by_port) {
    std::string sig;
    for (const auto& [ak, ar] : addrs) sig += fmt::format("{}={};", ak, ar.second ? 1 : 0);
    ports_by_addrs[sig].push_back(pk);
  }
  json::array subsets;
  for (const auto& [sig, pks] : ports_by_addrs) {
    const auto& addrs = by_port[pks.front()];
    std::vector<std::pair<std::string, json::object>> ready, not_ready;
    for (const auto& [ak, ar] : addrs) (ar.second ? ready : not_ready).emplace_back(ak, ar.first);
    json::object ss;
    auto to_array = [](std::vector<std::pair<std::string, json::object>>& v) {
      std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      json::array out;
      for (auto& [_, a] : v) out.emplace_back(std::move(a));
      return out;
    };
    if (!ready.empty()) ss["addresses"] = to_array(ready);
    if (!not_ready.empty()) ss["notReadyAddresses"] = to_array(not_ready);
    std::vector<json::object> ports;
    for (const std::string& pk : pks) {
      if (!pk.empty()) ports.push_back(port_objects[pk]);
    }
    std::sort(ports.begin(), ports.end(), port_less);
    if (!ports.empty()) ss["ports"] = json::array(ports.begin(), ports.end());
    subsets.emplace_back(std::move(ss));
  }
  return subsets;
}

std::vector<std::string> services_selecting(const client::Informer& services, std::string_view ns,
                                            const json::object* labels) {
  std::vector<std::string> out;
  for (const client::ObjectPtr& svc : services.list()) {
    if (namespace_of(*svc) != ns) continue;
    auto sel = service_selector(*svc);
    if (sel && sel->matches(labels)) out.push_back(key_of(*svc));
  }
  return out;
}

std::set<std::string> services_for_pod(const client::Informer& services, const json::value& pod,
                                       const json::value* old) {
  std::set<std::string> keys;
  for (auto& k : services_selecting(services, namespace_of(pod), labels_of(pod))) keys.insert(k);
  if (old != nullptr) {
    for (auto& k : services_selecting(services, namespace_of(*old), labels_of(*old)))
      keys.insert(k);
  }
  return keys;
}

void TriggerTimes::note(const std::string& key) {
  first_.try_emplace(key, format_rfc3339_micro(std::chrono::system_clock::now()));
}

std::string TriggerTimes::take(const std::string& key) {
  std::string t;
  if (auto it = first_.find(key); it != first_.end()) {
    t = std::move(it->second);
    first_.erase(it);
  }
  return t;
}

namespace {

class EndpointsController : public ControllerBase {
 public:
  explicit EndpointsController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "endpoints"),
        services_res_(resource("", "services")),
        pods_res_(resource("", "pods")),
        endpoints_res_(resource("", "endpoints")),
        services_(informers_.informer(services_res_)),
        pods_(informers_.informer(pods_res_)),
        endpoints_(informers_.informer(endpoints_res_)) {}

  void init() override {
    std::weak_ptr<EndpointsController> w =
        std::static_pointer_cast<EndpointsController>(shared_from_this());
    using Self = EndpointsController;
    loop::on_object_change(informers_, services_res_,
                           guarded(w, [](Self& s, const json::value& o) { s.enqueue(key_of(o)); }));
    informers_.on_add(pods_res_,
                      guarded(w, [](Self& s, const json::value& o) { s.pod_changed(o, nullptr); }));
    informers_.on_update(pods_res_,
                         guarded(w, [](Self& s, const json::value& old, const json::value& o) {
                           s.pod_changed(o, &old);
                         }));
    informers_.on_delete(
        pods_res_, guarded(w, [](Self& s, const json::value& o) { s.pod_changed(o, nullptr); }));
    informers_.on_delete(endpoints_res_,
                         guarded(w, [](Self& s, const json::value& o) { s.enqueue(key_of(o)); }));
  }

  void on_start() override {
    for (const client::ObjectPtr& s : services_.list()) enqueue(key_of(*s));
    // Leftover Endpoints of services that no longer exist (upstream checkLeftoverEndpoints).
    for (const client::ObjectPtr& e : endpoints_.list()) {
      if (!services_.get(namespace_of(*e), name_of(*e))) enqueue(key_of(*e));
    }
  }

  void enqueue(std::string key) {
    trigger_.note(key);
    queue().add(std::move(key));
  }

  void pod_changed(const json::value& pod, const json::value* old) {
    for (const std::string& k : services_for_pod(services_, pod, old)) enqueue(k);
  }

  Awaitable<Result<void>> sync(std::string key) override {
    auto [ns, name] = split_key(key);
    std::string trigger = trigger_.take(key);
    client::ObjectPtr svc = services_.get(ns, name);
    client::ObjectPtr current = endpoints_.get(ns, name);
    if (!svc) {
      if (!current) co_return Result<void>{};
      client::DeleteOptions opts;
      opts.precondition_uid = std::string(uid_of(*current));
      auto r = co_await loop::api_delete(client_, endpoints_res_, ns, name, opts);
      if (!r && !r.error().is_not_found() && !r.error().is_conflict())
        co_return std::unexpected(r.error());
      co_return Result<void>{};
    }
    // No selector: someone else's Endpoints. ExternalName: no endpoints (upstream #105986).
    if (!service_selector(*svc) || being_deleted(*svc) ||
        get_string(*svc, {"spec", "type"}) == "ExternalName") {
      co_return Result<void>{};
    }
    json::array subsets = build_endpoint_subsets(*svc, pods_.list());

    json::object labels;
    if (const json::object* l = labels_of(*svc)) labels = *l;
    if (get_string(*svc, {"spec", "clusterIP"}) == "None") {
      labels[kHeadless] = "";
    } else {
      labels.erase(kHeadless);
    }
    if (current) {
      const json::value* cur_subsets = find_path(*current, {"subsets"});
      bool same_subsets = subsets.empty()
                              ? (cur_subsets == nullptr || cur_subsets->is_null() ||
                                 (cur_subsets->is_array() && cur_subsets->get_array().empty()))
                              : (cur_subsets != nullptr && *cur_subsets == json::value(subsets));
      const json::object* cur_labels = labels_of(*current);
      bool same_labels = cur_labels ? *cur_labels == labels : labels.empty();
      if (same_subsets && same_labels) co_return Result<void>{};
    }
    json::value next =
        current ? *current : json::value(json::object{{"apiVersion", "v1"}, {"kind", "Endpoints"}});
    json::object& meta = ensure_object(next.as_object(), "metadata");
    meta["name"] = name;
    meta["namespace"] = ns;
    if (labels.empty()) {
      meta.erase("labels");
    } else {
      meta["labels"] = labels;
    }
    if (trigger.empty()) trigger = format_rfc3339_micro(std::chrono::system_clock::now());
    ensure_object(meta, "annotations")[kTriggerTime] = trigger;
    if (subsets.empty()) {
      next.as_object().erase("subsets");
    } else {
      next.as_object()["subsets"] = std::move(subsets);
    }
    Result<json::value> r;
    if (current) {
      r = co_await loop::api_update(client_, endpoints_res_, ns, std::move(next));
    } else {
      r = co_await loop::api_create(client_, endpoints_res_, ns, std::move(next));
    }
    if (!r) {
      // Forbidden: the namespace is terminating; nothing to do.
      if (r.error().code == 403) co_return Result<void>{};
      co_return std::unexpected(r.error());
    }
    co_return Result<void>{};
  }

 private:
  const api::Resource& services_res_;
  const api::Resource& pods_res_;
  const api::Resource& endpoints_res_;
  client::Informer& services_;
  client::Informer& pods_;
  client::Informer& endpoints_;
  TriggerTimes trigger_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_endpoints_controller(loop::ControllerContext& ctx) {
  return make_controller<EndpointsController>(ctx);
}

}  // namespace podwarp::controllers
