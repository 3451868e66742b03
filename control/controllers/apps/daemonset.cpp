// DaemonSet controller (upstream pkg/controller/daemon): one pod per eligible node, created
// with a node-name affinity for the scheduler; RollingUpdate (maxUnavailable / maxSurge) and
// OnDelete by controller-revision-hash.
//
// ControllerRevisions are not served by podwarp, so the controller-revision-hash is computed
// from the current template (upstream's ComputeHash scheme) and no revision objects are stored.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "controllers/apps/apps.h"
#include "controllers/apps/async.h"
#include "controllers/apps/claim.h"
#include "controllers/apps/common.h"
#include "controllers/apps/daemonset_util.h"
#include "controllers/apps/pod_control.h"
#include "loop/enqueue.h"
#include "loop/work_queue.h"
#include "podwarp/log.h"
#include "podwarp/selector.h"

namespace podwarp::apps {
namespace {

constexpr std::string_view kRevisionHashLabel = "controller-revision-hash";

class DaemonSetController : public loop::Controller {
 public:
  explicit DaemonSetController(loop::ControllerContext& ctx)
      : client_(ctx.client),
        recorder_(ctx.recorder("daemonset-controller")),
        queue_(ctx.executor, "daemonset",
               [this](std::string key) { return sync(std::move(key)); }, ctx.options.workers) {
    auto& inf = ctx.informers;
    ds_inf_ = &inf.informer(daemonsets_resource());
    pod_inf_ = &inf.informer(pods_resource());
    node_inf_ = &inf.informer(nodes_resource());
    loop::on_object_change(
        inf, daemonsets_resource(), [this](const json::value& ds) { queue_.add(key_of(ds)); },
        false);
    inf.on_delete(daemonsets_resource(), [this](const json::value& ds) {
      expectations_.forget(key_of(ds));
      queue_.add(key_of(ds));
    });
    inf.on_add(pods_resource(), [this](const json::value& p) {
      if (ObjectPtr ds = owner_of(p)) {
        expectations_.creation_observed(key_of(*ds));
        queue_.add(key_of(*ds));
      } else if (!controller_ref(p)) {
        enqueue_matching(p);
      }
    });
    inf.on_update(pods_resource(), [this](const json::value& o, const json::value& p) {
      if (ObjectPtr ds = owner_of(o)) queue_.add(key_of(*ds));
      if (ObjectPtr ds = owner_of(p)) {
        if (being_deleted(p)) expectations_.deletion_observed(key_of(*ds), key_of(p));
        queue_.add(key_of(*ds));
        std::int64_t mrs = get_int(*ds, {"spec", "minReadySeconds"});
        if (mrs > 0 && !pod_ready(o) && pod_ready(p)) {
          queue_.add_after(key_of(*ds), std::chrono::seconds(mrs + 1));
        }
      } else if (!controller_ref(p)) {
        enqueue_matching(p);
      }
    });
    inf.on_delete(pods_resource(), [this](const json::value& p) {
      if (ObjectPtr ds = owner_of(p)) {
        expectations_.deletion_observed(key_of(*ds), key_of(p));
        queue_.add(key_of(*ds));
      }
    });
    auto all = [this] {
      for (const ObjectPtr& ds : ds_inf_->list()) queue_.add(key_of(*ds));
    };
    inf.on_add(nodes_resource(), [all](const json::value&) { all(); });
    inf.on_update(nodes_resource(), [all](const json::value& o, const json::value& n) {
      // Only labels, taints and unschedulable change where daemon pods should run.
      const json::value* ol = find_path(o, {"metadata", "labels"});
      const json::value* nl = find_path(n, {"metadata", "labels"});
      const json::value* os = find_path(o, {"spec"});
      const json::value* nsp = find_path(n, {"spec"});
      bool same_labels = (ol == nullptr) == (nl == nullptr) && (!ol || *ol == *nl);
      bool same_spec = (os == nullptr) == (nsp == nullptr) && (!os || *os == *nsp);
      if (!same_labels || !same_spec) all();
    });
    inf.on_delete(nodes_resource(), [all](const json::value&) { all(); });
  }

  std::string_view name() const override { return "daemonset"; }
  void start() override { queue_.start(); }
  void stop() override { queue_.stop(); }

 private:
  ObjectPtr owner_of(const json::value& pod) const {
    return loop::cached_controller(*ds_inf_, pod, "DaemonSet");
  }

  void enqueue_matching(const json::value& pod) {
    loop::for_each_selecting(*ds_inf_, pod,
                             [this](const json::value& ds) { queue_.add(key_of(ds)); });
  }

  Awaitable<Result<void>> sync(std::string key) {
    auto [ns, name] = split_key(key);
    ObjectPtr dsp = ds_inf_->get(ns, name);
    if (!dsp) {
      expectations_.forget(key);
      co_return Result<void>{};
    }
    json::value ds = *dsp;
    ensure_kind(ds, "apps/v1", "DaemonSet");
    const json::value* sel_json = find_path(ds, {"spec", "selector"});
    auto selector = sel_json ? LabelSelector::from_json(*sel_json)
                             : std::expected<LabelSelector, std::string>(
                                   std::unexpected(std::string("no selector")));
    if (!selector || selector->empty()) co_return Result<void>{};
    const json::value* tmpl_ptr = find_path(ds, {"spec", "template"});
    if (!tmpl_ptr || !tmpl_ptr->is_object()) co_return Result<void>{};
    const json::value tmpl = *tmpl_ptr;
    std::optional<std::int64_t> collision;
    if (const json::value* c = find_path(ds, {"status", "collisionCount"}); c && c->is_number()) {
      collision = get_int(ds, {"status", "collisionCount"});
    }
    const std::string hash = compute_hash(tmpl, collision);

    auto claimed = co_await claim_pods(client_, ds, "DaemonSet", *selector,
                                       pods_in(*pod_inf_, ns), /*include_inactive=*/true);
    if (!claimed) co_return std::unexpected(claimed.error());
    std::map<std::string, std::vector<ObjectPtr>> by_node;
    for (ObjectPtr& p : *claimed) by_node[target_node_name(*p)].push_back(std::move(p));
    for (auto& [n, pods] : by_node) {
      std::sort(pods.begin(), pods.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
        auto ta = creation_time(*a).value_or(Clock::time_point{});
        auto tb = creation_time(*b).value_or(Clock::time_point{});
        if (ta != tb) return ta < tb;
        return name_of(*a) < name_of(*b);
      });
    }

    // The pod spec used for predicates: the template's, with the DaemonSet tolerations.
    json::value spec = find_path(tmpl, {"spec"}) ? *find_path(tmpl, {"spec"})
                                                 : json::value(json::object());
    add_daemon_tolerations(spec.as_object());

    const auto now = Clock::now();
    const std::int64_t min_ready = get_int(ds, {"spec", "minReadySeconds"});
    const bool rolling = get_string(ds, {"spec", "updateStrategy", "type"}, "RollingUpdate") !=
                         "OnDelete";
    std::vector<std::string> create_on;
    std::vector<ObjectPtr> to_delete;
    std::map<std::string, NodeDecision> decisions;
    for (const ObjectPtr& node : node_inf_->list()) {
      std::string node_name(name_of(*node));
      NodeDecision dec = node_should_run(spec, *node);
      decisions[node_name] = dec;
    }
    if (!being_deleted(ds) && expectations_.satisfied(key)) {
      // manage: create missing pods, delete pods that should not run, duplicates, failures.
      for (auto& [node_name, dec] : decisions) {
        auto it = by_node.find(node_name);
        std::vector<ObjectPtr> pods;
        if (it != by_node.end()) {
          for (const ObjectPtr& p : it->second) {
            if (!being_deleted(*p)) pods.push_back(p);
          }
        }
        if (dec.should_run) {
          std::vector<ObjectPtr> keep;
          for (const ObjectPtr& p : pods) {
            if (get_string(*p, {"status", "phase"}) == "Failed") {
              to_delete.push_back(p);
            } else {
              keep.push_back(p);
            }
          }
          if (it == by_node.end() || it->second.empty()) {
            create_on.push_back(node_name);
          } else if (keep.empty()) {
            // Failed or terminating pods are replaced once they are gone.
          } else if (keep.size() > 1) {
            // Keep the oldest (with surge, one old and one new may coexist).
            bool surge = rolling && surge_of(ds, 1) > 0;
            std::size_t allowed = surge ? 2 : 1;
            if (surge && keep.size() == 2) {
              bool a = get_string(*keep[0], {"metadata", "labels", kRevisionHashLabel}) == hash;
              bool b = get_string(*keep[1], {"metadata", "labels", kRevisionHashLabel}) == hash;
              if (a == b) allowed = 1;
            }
            for (std::size_t i = allowed; i < keep.size(); ++i) to_delete.push_back(keep[i]);
          }
        } else if (!dec.should_continue_running) {
          for (const ObjectPtr& p : pods) to_delete.push_back(p);
        }
      }
      // Pods for nodes that no longer exist.
      for (auto& [node_name, pods] : by_node) {
        if (!decisions.contains(node_name)) {
          for (const ObjectPtr& p : pods) {
            if (!being_deleted(*p)) to_delete.push_back(p);
          }
        }
      }
      // Rolling update, only when nothing else is pending.
      if (rolling && create_on.empty() && to_delete.empty()) {
        rolling_update(ds, hash, decisions, by_node, now, min_ready, create_on, to_delete);
      }
      if (auto r = co_await sync_nodes(ds, key, tmpl, hash, create_on, to_delete); !r) {
        co_return r;
      }
    }

    // Status.
    std::int64_t desired = 0, current = 0, mis = 0, ready = 0, available = 0, updated = 0;
    for (auto& [node_name, dec] : decisions) {
      auto it = by_node.find(node_name);
      bool scheduled = it != by_node.end() && !it->second.empty();
      if (dec.should_run) {
        ++desired;
        if (!scheduled) continue;
        ++current;
        const json::value& pod = *it->second.front();
        if (pod_ready(pod)) {
          ++ready;
          if (pod_available(pod, min_ready, now)) ++available;
        }
        for (const ObjectPtr& p : it->second) {
          if (get_string(*p, {"metadata", "labels", kRevisionHashLabel}) == hash) {
            ++updated;
            break;
          }
        }
      } else if (scheduled) {
        ++mis;
      }
    }
    json::object st;
    st["currentNumberScheduled"] = current;
    st["numberMisscheduled"] = mis;
    st["desiredNumberScheduled"] = desired;
    st["numberReady"] = ready;
    st["updatedNumberScheduled"] = updated;
    st["numberAvailable"] = available;
    st["numberUnavailable"] = desired - available;
    st["observedGeneration"] = get_int(ds, {"metadata", "generation"});
    if (collision) st["collisionCount"] = *collision;
    static const json::value kEmpty = json::object();
    const json::value* old = find_path(ds, {"status"});
    json::value old_cmp = old ? *old : kEmpty;
    if (old_cmp.is_object()) old_cmp.as_object().erase("conditions");
    if (canonical(json::value(st)) != canonical(old_cmp)) {
      json::object patch;
      patch["status"] = std::move(st);
      auto r =
          co_await loop::api_patch_status(client_, daemonsets_resource(), ns, name, to_json(patch));
      if (!r && !r.error().is_not_found()) co_return std::unexpected(r.error());
    }
    if (min_ready > 0 && ready != available) {
      queue_.add_after(key, std::chrono::seconds(min_ready));
    }
    co_return Result<void>{};
  }

  static std::int64_t surge_of(const json::value& ds, std::int64_t desired) {
    auto v = scaled_value(find_path(ds, {"spec", "updateStrategy", "rollingUpdate", "maxSurge"}),
                          desired, true);
    return v.value_or(0);
  }

  void rolling_update(const json::value& ds, const std::string& hash,
                      const std::map<std::string, NodeDecision>& decisions,
                      const std::map<std::string, std::vector<ObjectPtr>>& by_node,
                      Clock::time_point now, std::int64_t min_ready,
                      std::vector<std::string>& create_on, std::vector<ObjectPtr>& to_delete) {
    std::int64_t desired = 0;
    for (auto& [n, d] : decisions) desired += d.should_run ? 1 : 0;
    std::int64_t max_surge = surge_of(ds, desired);
    static const json::value kOne = 1;
    const json::value* mu = find_path(ds, {"spec", "updateStrategy", "rollingUpdate",
                                            "maxUnavailable"});
    std::int64_t max_unavailable =
        scaled_value(mu && !mu->is_null() ? mu : &kOne, desired, true).value_or(1);
    if (max_surge == 0 && max_unavailable == 0) max_unavailable = 1;

    std::int64_t num_unavailable = 0, num_surge = 0;
    std::vector<ObjectPtr> allowed_replacements, candidates;
    std::vector<std::string> allowed_new_nodes, candidate_new_nodes;
    for (auto& [node_name, dec] : decisions) {
      if (!dec.should_run) continue;
      auto it = by_node.find(node_name);
      ObjectPtr new_pod, old_pod;
      bool ok = true;
      if (it != by_node.end()) {
        for (const ObjectPtr& p : it->second) {
          if (being_deleted(*p)) continue;
          if (get_string(*p, {"metadata", "labels", kRevisionHashLabel}) == hash) {
            if (new_pod) ok = false;
            new_pod = p;
          } else {
            if (old_pod) ok = false;
            old_pod = p;
          }
        }
      }
      if (!ok) {
        ++num_unavailable;
        continue;
      }
      if (max_surge == 0) {
        if ((!old_pod && !new_pod) || (old_pod && new_pod)) {
          ++num_unavailable;
        } else if (new_pod) {
          if (!pod_available(*new_pod, min_ready, now)) ++num_unavailable;
        } else if (!pod_available(*old_pod, min_ready, now)) {
          allowed_replacements.push_back(old_pod);
        } else if (num_unavailable < max_unavailable) {
          candidates.push_back(old_pod);
        }
      } else {
        if (!old_pod) continue;
        if (!new_pod) {
          if (!pod_available(*old_pod, min_ready, now)) {
            allowed_new_nodes.push_back(node_name);
          } else if (num_surge < max_surge) {
            ++num_surge;
            candidate_new_nodes.push_back(node_name);
          }
        } else if (!pod_available(*new_pod, min_ready, now)) {
          ++num_surge;
        } else {
          to_delete.push_back(old_pod);
        }
      }
    }
    if (max_surge == 0) {
      std::int64_t remaining = std::max<std::int64_t>(max_unavailable - num_unavailable, 0);
      remaining = std::min<std::int64_t>(remaining, static_cast<std::int64_t>(candidates.size()));
      for (ObjectPtr& p : allowed_replacements) to_delete.push_back(p);
      for (std::int64_t i = 0; i < remaining; ++i) to_delete.push_back(candidates[i]);
    } else {
      for (std::string& n : allowed_new_nodes) create_on.push_back(n);
      for (std::string& n : candidate_new_nodes) create_on.push_back(n);
    }
  }

  Awaitable<Result<void>> sync_nodes(const json::value& ds, const std::string& key,
                                     const json::value& tmpl, const std::string& hash,
                                     const std::vector<std::string>& create_on,
                                     const std::vector<ObjectPtr>& to_delete) {
    const std::string ns(namespace_of(ds));
    std::vector<std::string> del_keys;
    for (const ObjectPtr& p : to_delete) del_keys.push_back(key_of(*p));
    expectations_.expect_creations(key, static_cast<int>(create_on.size()));
    expectations_.expect_deletions(key, del_keys);
    std::optional<client::Error> err;
    // Creations in slow-start batches.
    std::size_t next = 0, batch = 1;
    while (next < create_on.size()) {
      std::size_t size = std::min(batch, create_on.size() - next);
      std::vector<std::function<Awaitable<Result<void>>()>> tasks;
      for (std::size_t i = next; i < next + size; ++i) {
        json::value pod =
            pod_from_template(tmpl, make_controller_ref(ds, "apps/v1", "DaemonSet"), ns);
        json::object& meta = pod.as_object()["metadata"].as_object();
        meta["generateName"] = std::string(name_of(ds)) + "-";
        json::object& labels = ensure_object(meta, "labels");
        labels[kRevisionHashLabel] = hash;
        labels["pod-template-generation"] = std::to_string(get_int(ds, {"metadata", "generation"}));
        json::object& spec = pod.as_object()["spec"].as_object();
        add_daemon_tolerations(spec);
        set_node_name_affinity(spec, create_on[i]);
        tasks.push_back([this, pod = std::move(pod), ns, ds]() -> Awaitable<Result<void>> {
          co_return co_await create_owned_pod(client_, recorder_, ds, ns, pod);
        });
      }
      auto results = co_await run_all(std::move(tasks));
      next += size;
      int failed = 0;
      for (auto& r : results) {
        if (!r) {
          ++failed;
          if (!err) err = r.error();
        }
      }
      for (int i = 0; i < failed; ++i) expectations_.creation_observed(key);
      if (failed) {
        for (std::size_t i = next; i < create_on.size(); ++i) expectations_.creation_observed(key);
        break;
      }
      batch *= 2;
    }
    std::vector<std::function<Awaitable<Result<void>>()>> dels;
    for (const ObjectPtr& p : to_delete) {
      dels.push_back([this, p, key, ds]() -> Awaitable<Result<void>> {
        co_return co_await delete_owned_pod(client_, recorder_, expectations_, key, ds, *p);
      });
    }
    for (auto& r : co_await run_all(std::move(dels))) {
      if (!r && !err) err = r.error();
    }
    if (err) co_return std::unexpected(*err);
    co_return Result<void>{};
  }

  client::Client client_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer* ds_inf_ = nullptr;
  client::Informer* pod_inf_ = nullptr;
  client::Informer* node_inf_ = nullptr;
  Expectations expectations_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_daemonset_controller(loop::ControllerContext& ctx) {
  return std::make_unique<DaemonSetController>(ctx);
}

}  // namespace podwarp::apps
