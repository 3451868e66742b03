#include "node/node_lifecycle_controller.h"

#include <fmt/format.h>

#include <boost/asio/steady_timer.hpp>

#include "loop/api.h"
#include "node/taints.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

namespace {

using client::Awaitable;
using client::ObjectPtr;
using client::Result;

constexpr std::string_view kLeaseNamespace = "kube-node-lease";
constexpr std::string_view kMonitored[] = {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"};

json::object* condition(json::value& obj, std::string_view type) {
  json::value* cs = find_path(obj, {"status", "conditions"});
  if (cs == nullptr || !cs->is_array()) return nullptr;
  for (auto& c : cs->get_array()) {
    if (c.is_object() && get_string(c, {"type"}) == type) return &c.get_object();
  }
  return nullptr;
}

std::string_view ready_status(const json::value& node) {
  const json::value* cs = find_path(node, {"status", "conditions"});
  if (cs != nullptr && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      if (get_string(c, {"type"}) == "Ready") return get_string(c, {"status"});
    }
  }
  return {};
}

std::string_view heartbeat(const json::value& node) {
  const json::value* cs = find_path(node, {"status", "conditions"});
  if (cs != nullptr && cs->is_array()) {
    for (const auto& c : cs->get_array()) {
      if (get_string(c, {"type"}) == "Ready") return get_string(c, {"lastHeartbeatTime"});
    }
  }
  return {};
}

}  // namespace

NodeLifecycleController::NodeLifecycleController(loop::ControllerContext& ctx)
    : ctx_(ctx),
      recorder_(ctx.recorder("node-controller")),
      queue_(
          ctx.executor, "node-lifecycle", [this](std::string key) { return sync(std::move(key)); },
          ctx.options.workers),
      nodes_(ctx.informers.informer(loop::resource("", "nodes"))),
      pods_(ctx.informers.informer(loop::resource("", "pods"))) {
  auto& inf = ctx.informers;
  inf.on_add(loop::resource("", "nodes"), [this](const json::value& n) {
    observe_node(n);
    queue_.add(std::string(get_string(n, {"metadata", "name"})));
  });
  inf.on_update(loop::resource("", "nodes"), [this](const json::value& old_node,
                                                    const json::value& n) {
    observe_node(n);
    // Conditions or taints moved: reconcile taints and pods now rather than at the next tick.
    if (find_path(old_node, {"status", "conditions"}) == nullptr ||
        find_path(n, {"status", "conditions"}) == nullptr ||
        *find_path(old_node, {"status", "conditions"}) != *find_path(n, {"status", "conditions"}) ||
        get_bool(old_node, {"spec", "unschedulable"}) != get_bool(n, {"spec", "unschedulable"})) {
      queue_.add(std::string(get_string(n, {"metadata", "name"})));
    }
  });
  inf.on_delete(loop::resource("", "nodes"), [this](const json::value& n) {
    health_.erase(std::string(get_string(n, {"metadata", "name"})));
  });
  auto lease_seen = [this](const json::value& l) {
    if (get_string(l, {"metadata", "namespace"}) != kLeaseNamespace) return;
    std::string name(get_string(l, {"metadata", "name"}));
    std::string_view renew = get_string(l, {"spec", "renewTime"});
    auto it = health_.find(name);
    if (it == health_.end()) {
      health_[name] = Health{std::chrono::steady_clock::now(), {}, std::string(renew)};
    } else if (it->second.lease_renew != renew) {
      it->second.lease_renew = renew;
      it->second.probe = std::chrono::steady_clock::now();
    }
  };
  inf.on_add(loop::resource("coordination.k8s.io", "leases"), lease_seen);
  inf.on_update(loop::resource("coordination.k8s.io", "leases"),
                [lease_seen](const json::value&, const json::value& l) { lease_seen(l); });
  auto index_pod = [this](const json::value& p, bool add) {
    std::string_view node = get_string(p, {"spec", "nodeName"});
    std::string key = client::Informer::key_of(p);
    if (add) {
      pods_by_node_.add(node, key);
    } else {
      pods_by_node_.remove(node, key);
    }
  };
  inf.on_add(loop::resource("", "pods"), [index_pod](const json::value& p) { index_pod(p, true); });
  inf.on_update(loop::resource("", "pods"),
                [this, index_pod](const json::value& o, const json::value& p) {
                  index_pod(o, false);
                  index_pod(p, true);
                  // A pod bound to a node that is not ready (upstream processPod).
                  std::string_view node = get_string(p, {"spec", "nodeName"});
                  if (!node.empty() && get_string(o, {"spec", "nodeName"}) != node)
                    queue_.add(std::string(node));
                });
  inf.on_delete(loop::resource("", "pods"),
                [index_pod](const json::value& p) { index_pod(p, false); });
  // Leases are read for heartbeats only.
  (void)ctx.informers.informer(loop::resource("coordination.k8s.io", "leases"));
}

void NodeLifecycleController::observe_node(const json::value& node) {
  std::string name(get_string(node, {"metadata", "name"}));
  std::string_view hb = heartbeat(node);
  auto it = health_.find(name);
  if (it == health_.end()) {
    health_[name] = Health{std::chrono::steady_clock::now(), std::string(hb), {}};
  } else if (it->second.heartbeat != hb) {
    it->second.heartbeat = hb;
    it->second.probe = std::chrono::steady_clock::now();
  }
}

void NodeLifecycleController::start() {
  queue_.start();
  ticker_ = std::make_shared<boost::asio::steady_timer>(ctx_.executor);
  tick();
}

void NodeLifecycleController::tick() {
  if (stopped_) return;
  for (const auto& n : nodes_.list()) queue_.add(std::string(get_string(*n, {"metadata", "name"})));
  ticker_->expires_after(ctx_.options.node_monitor_period);
  ticker_->async_wait([this, t = ticker_](boost::system::error_code ec) {
    if (!ec && !stopped_) tick();
  });
}

void NodeLifecycleController::stop() {
  stopped_ = true;
  if (ticker_) ticker_->cancel();
  queue_.stop();
}

Awaitable<Result<void>> NodeLifecycleController::sync(std::string node_name) {
  ObjectPtr cached = nodes_.get("", node_name);
  if (!cached) co_return Result<void>{};
  json::value node = *cached;
  const auto now = std::chrono::system_clock::now();
  const std::string ts = format_rfc3339(now);

  // 1. Health.
  auto hit = health_.find(node_name);
  if (hit == health_.end()) {
    observe_node(node);
    hit = health_.find(node_name);
  }
  bool timed_out =
      std::chrono::steady_clock::now() - hit->second.probe > ctx_.options.node_monitor_grace_period;
  if (timed_out) {
    bool changed = false;
    json::object& status = ensure_object(node.as_object(), "status");
    json::value& conds = status["conditions"];
    if (!conds.is_array()) conds = json::array();
    for (std::string_view type : kMonitored) {
      json::object* c = condition(node, type);
      if (c == nullptr) {
        std::string_view created = get_string(node, {"metadata", "creationTimestamp"});
        conds.get_array().push_back(json::object{{"type", type},
                                                 {"status", "Unknown"},
                                                 {"lastHeartbeatTime", created},
                                                 {"lastTransitionTime", ts},
                                                 {"reason", "NodeStatusNeverUpdated"},
                                                 {"message", "Kubelet never posted node status."}});
        changed = true;
      } else if (get_string(json::value(*c), {"status"}) != "Unknown") {
        (*c)["status"] = "Unknown";
        (*c)["reason"] = "NodeStatusUnknown";
        (*c)["message"] = "Kubelet stopped posting node status.";
        (*c)["lastTransitionTime"] = ts;
        changed = true;
      }
    }
    if (changed) {
      auto r = co_await loop::api_update_status(ctx_.client, loop::resource("", "nodes"),
                                                std::string(), node);
      if (!r) co_return std::unexpected(r.error());
      node = std::move(*r);
      log::info("node {}: not renewed for {}s: conditions Unknown", node_name,
                ctx_.options.node_monitor_grace_period.count());
      recorder_.record(node, "Normal", "NodeNotReady",
                       fmt::format("Node {} status is now: NodeNotReady", node_name));
    }
  }

  // 2. Taints.
  std::vector<taints::Wanted> wanted = taints::wanted_taints(node);
  json::array current;
  if (const json::value* t = find_path(node, {"spec", "taints"}); t && t->is_array()) current = t->get_array();
  json::array next;
  bool taints_changed = false;
  for (const auto& t : current) {
    std::string_view key = get_string(t, {"key"}), effect = get_string(t, {"effect"});
    bool keep = !taints::managed(key, effect) ||
                std::any_of(wanted.begin(), wanted.end(),
                            [&](const taints::Wanted& w) { return w.key == key && w.effect == effect; });
    if (keep) {
      next.push_back(t);
    } else {
      taints_changed = true;
    }
  }
  for (const auto& w : wanted) {
    bool present = std::any_of(current.begin(), current.end(), [&](const json::value& t) {
      return get_string(t, {"key"}) == w.key && get_string(t, {"effect"}) == w.effect;
    });
    if (present) continue;
    json::object t{{"key", w.key}, {"effect", w.effect}};
    if (w.effect == "NoExecute") t["timeAdded"] = ts;
    next.push_back(std::move(t));
    taints_changed = true;
  }
  if (taints_changed) {
    json::object& spec = ensure_object(node.as_object(), "spec");
    if (next.empty()) {
      spec.erase("taints");
    } else {
      spec["taints"] = std::move(next);
    }
    auto r =
        co_await loop::api_update(ctx_.client, loop::resource("", "nodes"), std::string(), node);
    if (!r) co_return std::unexpected(r.error());
    node = std::move(*r);
  }

  // 3. Pods of a node that is not ready.
  if (std::string_view rs = ready_status(node); rs == "False" || rs == "Unknown") {
    std::optional<client::Error> error;
    for (const auto& pk : pods_by_node_.keys(node_name)) {
      auto s = pk.find('/');
      ObjectPtr p = loop::get_by_key(pods_, pk);
      if (!p || get_string(*p, {"spec", "nodeName"}) != node_name) continue;
      json::value pod = *p;
      json::object* c = condition(pod, "Ready");
      if (c == nullptr || get_string(json::value(*c), {"status"}) != "True") continue;
      (*c)["status"] = "False";
      (*c)["lastTransitionTime"] = ts;
      std::string pod_ns = pk.substr(0, s);
      auto r =
          co_await loop::api_update_status(ctx_.client, loop::resource("", "pods"), pod_ns, pod);
      if (!r) {
        if (!r.error().is_not_found() && !error) error = r.error();
        continue;
      }
      recorder_.record(*r, "Warning", "NodeNotReady", "Node is not ready");
    }
    if (error) co_return std::unexpected(*error);
  }
  co_return Result<void>{};
}

}  // namespace podwarp::controllers
