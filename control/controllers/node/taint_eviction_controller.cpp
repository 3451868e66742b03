#include "node/taint_eviction_controller.h"

#include <fmt/format.h>

#include "loop/api.h"
#include "node/taints.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

namespace {

using namespace std::chrono_literals;
using client::Awaitable;
using client::ObjectPtr;
using client::Result;

bool terminal_or_terminating(const json::value& pod) {
  std::string_view phase = get_string(pod, {"status", "phase"});
  return find_path(pod, {"metadata", "deletionTimestamp"}) != nullptr || phase == "Succeeded" ||
         phase == "Failed";
}

std::string pod_ref(const json::value& pod) {
  return fmt::format("{}/{}", get_string(pod, {"metadata", "namespace"}),
                     get_string(pod, {"metadata", "name"}));
}

}  // namespace

TaintEvictionController::TaintEvictionController(loop::ControllerContext& ctx)
    : ctx_(ctx),
      recorder_(ctx.recorder("taint-eviction-controller")),
      queue_(
          ctx.executor, "taint-eviction", [this](std::string key) { return evict(std::move(key)); },
          ctx.options.workers),
      nodes_(ctx.informers.informer(loop::resource("", "nodes"))),
      pods_(ctx.informers.informer(loop::resource("", "pods"))) {
  auto& inf = ctx.informers;
  auto index_pod = [this](const json::value& p, bool add) {
    std::string_view node = get_string(p, {"spec", "nodeName"});
    std::string key = client::Informer::key_of(p);
    if (add) {
      pods_by_node_.add(node, key);
    } else {
      pods_by_node_.remove(node, key);
    }
  };
  inf.on_add(loop::resource("", "pods"), [this, index_pod](const json::value& p) {
    index_pod(p, true);
    if (started_) process_pod(p);
  });
  inf.on_update(loop::resource("", "pods"),
                [this, index_pod](const json::value& o, const json::value& p) {
                  index_pod(o, false);
                  index_pod(p, true);
                  if (!started_) return;
                  if (get_string(o, {"spec", "nodeName"}) != get_string(p, {"spec", "nodeName"})) {
                    process_pod(p);
                    return;
                  }
                  const json::value* ot = find_path(o, {"spec", "tolerations"});
                  const json::value* nt = find_path(p, {"spec", "tolerations"});
                  if ((ot == nullptr) != (nt == nullptr) || (ot && *ot != *nt)) process_pod(p);
                });
  inf.on_delete(loop::resource("", "pods"), [this, index_pod](const json::value& p) {
    index_pod(p, false);
    scheduled_.erase(client::Informer::key_of(p));
  });
  inf.on_add(loop::resource("", "nodes"), [this](const json::value& n) {
    if (started_) process_node(get_string(n, {"metadata", "name"}));
  });
  inf.on_update(loop::resource("", "nodes"), [this](const json::value& o, const json::value& n) {
    if (!started_) return;
    auto a = taints::no_execute(find_path(o, {"spec", "taints"}));
    auto b = taints::no_execute(find_path(n, {"spec", "taints"}));
    if (a != b) process_node(get_string(n, {"metadata", "name"}));
  });
}

void TaintEvictionController::start() {
  started_ = true;
  queue_.start();
  for (const auto& n : nodes_.list()) process_node(get_string(*n, {"metadata", "name"}));
}

void TaintEvictionController::stop() {
  started_ = false;
  queue_.stop();
}

void TaintEvictionController::process_node(std::string_view node_name) {
  for (const auto& k : pods_by_node_.keys(node_name)) {
    if (ObjectPtr p = loop::get_by_key(pods_, k)) process_pod(*p);
  }
}

void TaintEvictionController::cancel(const std::string& pod_key, const json::value* pod) {
  if (scheduled_.erase(pod_key) == 0) return;
  if (pod != nullptr) {
    recorder_.record(*pod, "Normal", "TaintManagerEviction",
                     fmt::format("Cancelling deletion of Pod {}", pod_ref(*pod)));
  }
}

void TaintEvictionController::process_pod(const json::value& pod) {
  std::string key = client::Informer::key_of(pod);
  std::string_view node_name = get_string(pod, {"spec", "nodeName"});
  if (node_name.empty() || terminal_or_terminating(pod)) {
    scheduled_.erase(key);
    return;
  }
  ObjectPtr node = nodes_.get("", node_name);
  const json::value* node_taints = node ? find_path(*node, {"spec", "taints"}) : nullptr;
  taints::Eviction ev = taints::eviction_for(find_path(pod, {"spec", "tolerations"}), node_taints);
  auto now = std::chrono::system_clock::now();
  switch (ev.kind) {
    case taints::Eviction::kNone:
      cancel(key, &pod);
      return;
    case taints::Eviction::kNow:
      scheduled_[key] = now;
      queue_.add(key);
      return;
    case taints::Eviction::kAfter:
      break;
  }
  // The clock starts when the newest NoExecute taint was added, or when the pod was created
  // if that was later.
  std::optional<std::chrono::system_clock::time_point> start;
  for (const auto& t : taints::no_execute(node_taints)) {
    if (auto ta = parse_rfc3339(get_string(t, {"timeAdded"})); ta) start = start ? std::max(*start, *ta) : *ta;
  }
  if (!start) start = now;
  if (auto created = parse_rfc3339(get_string(pod, {"metadata", "creationTimestamp"}));
      created && *created > *start) {
    start = *created;
  }
  start = std::min(*start, now);
  auto when = *start + ev.after;
  scheduled_[key] = when;
  queue_.add_after(key, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(when - now), 0ms));
}

Awaitable<Result<void>> TaintEvictionController::evict(std::string key) {
  auto it = scheduled_.find(key);
  if (it == scheduled_.end()) co_return Result<void>{};
  auto now = std::chrono::system_clock::now();
  if (it->second > now) {
    queue_.add_after(key, std::chrono::duration_cast<std::chrono::milliseconds>(it->second - now) + 1ms);
    co_return Result<void>{};
  }
  auto s = key.find('/');
  std::string ns = key.substr(0, s), name = key.substr(s + 1);
  ObjectPtr p = pods_.get(ns, name);
  if (!p || terminal_or_terminating(*p)) {
    scheduled_.erase(key);
    co_return Result<void>{};
  }
  // Still due? (The node's taints may have changed since it was scheduled.)
  ObjectPtr node = nodes_.get("", get_string(*p, {"spec", "nodeName"}));
  taints::Eviction ev = taints::eviction_for(find_path(*p, {"spec", "tolerations"}),
                                             node ? find_path(*node, {"spec", "taints"}) : nullptr);
  if (ev.kind == taints::Eviction::kNone) {
    cancel(key, p.get());
    co_return Result<void>{};
  }
  recorder_.record(*p, "Normal", "TaintManagerEviction",
                   fmt::format("Marking for deletion Pod {}", key));
  // DisruptionTarget condition first (upstream addConditionAndDeletePod); best effort.
  json::value pod = *p;
  json::object& status = ensure_object(pod.as_object(), "status");
  json::value& conds = status["conditions"];
  if (!conds.is_array()) conds = json::array();
  json::array& ca = conds.get_array();
  ca.erase(std::remove_if(ca.begin(), ca.end(),
                          [](const json::value& c) { return get_string(c, {"type"}) == "DisruptionTarget"; }),
           ca.end());
  conds.get_array().push_back(json::object{{"type", "DisruptionTarget"},
                                           {"status", "True"},
                                           {"lastTransitionTime", format_rfc3339(now)},
                                           {"reason", "DeletionByTaintManager"},
                                           {"message", "Taint manager: deleting due to NoExecute taint"}});
  auto st =
      co_await loop::api_update_status(ctx_.client, loop::resource("", "pods"), ns, std::move(pod));
  if (!st) log::debug("taint eviction {}: condition: {}", key, st.error().to_string());
  auto r = co_await loop::api_delete(ctx_.client, loop::resource("", "pods"), ns, name);
  if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
  scheduled_.erase(key);
  log::info("taint eviction: deleted pod {}", key);
  co_return Result<void>{};
}

}  // namespace podwarp::controllers
