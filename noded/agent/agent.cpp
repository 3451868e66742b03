#include "agent/agent.h"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <set>

#include "agent/api_pod.h"
#include "agent/local_path.h"
#include "loop/api.h"
#include "loop/events.h"
#include "loop/meta.h"
#include "pods/pod_status.h"
#include "podwarp/informer.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::noded::agent {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

asio::awaitable<void> sleep_for(asio::any_io_executor ex, std::chrono::milliseconds d) {
  asio::steady_timer t(ex, d);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::string key_of(std::string_view ns, std::string_view name) {
  return fmt::format("{}/{}", ns, name);
}

// Keeps the API's lastTransitionTime of our conditions whose status did not change and the
// API's startTime (both are lost when noded restarts and its workers begin anew).
void keep_api_times(json::object& ours, const json::value* current) {
  if (current == nullptr || !current->is_object()) return;
  if (const auto* st = find_path(*current, {"startTime"}); st && st->is_string())
    ours["startTime"] = *st;
  const auto* cc = find_path(*current, {"conditions"});
  auto it = ours.find("conditions");
  if (cc == nullptr || !cc->is_array() || it == ours.end() || !it->value().is_array()) return;
  for (auto& c : it->value().as_array()) {
    for (const auto& old : cc->as_array()) {
      if (get_string(old, {"type"}) != get_string(c, {"type"})) continue;
      if (get_string(old, {"status"}) != get_string(c, {"status"})) break;
      if (const auto* t = find_path(old, {"lastTransitionTime"}); t && t->is_string())
        c.as_object()["lastTransitionTime"] = *t;
      break;
    }
  }
}

}  // namespace

struct NodeAgent::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor e, client::Client c, AgentOptions opts)
      : ex(e), client(c), o(std::move(opts)), events(c, "kubelet", o.node.name) {}

  asio::any_io_executor ex;
  client::Client client;
  AgentOptions o;
  loop::EventRecorder events;
  pods::PodManager* pm = nullptr;
  std::shared_ptr<client::Informer> pods_inf, cm_inf, secret_inf, nodes_inf;
  std::shared_ptr<client::Informer> pvc_inf, pv_inf;  // persistentVolumeClaim volumes
  std::shared_ptr<client::Informer> svc_inf;  // set_services(); started by its owner
  bool nodes_pending = false;  // an on_nodes call is posted
  bool pods_started = false;
  std::string node_uid;
  json::value last_status;  // last written node status
  Clock::time_point last_heartbeat{};
  std::map<std::string, std::string> allocatable;
  std::map<std::string, std::string> running_uid;  // "<ns>/<name>" -> uid given to the manager
  struct Sync {
    std::string ns, name;
    bool in_flight = false, dirty = false;
    bool queued = false;  // waiting in status_waiting for a write slot
    json::value last;  // last status written (null: nothing written yet by this noded)
    // Adopted after a noded restart: until the worker has looked at its containers again (or
    // until this deadline), its "ContainerCreating" status is not written: a running pod must
    // not flap to Pending/not-ready because noded restarted.
    std::optional<Clock::time_point> adopting_until;
  };
  std::map<std::string, Sync> syncs;  // by uid
  int status_writers = 0;                 // write_status coroutines running (slots taken)
  std::deque<std::string> status_waiting;  // uids waiting for a slot, oldest first
  std::set<std::string> deleting;     // uids whose DELETE is in flight
  std::set<std::string> cleaning;     // local-path volumes whose directory is being removed
  bool claims_wake_posted = false;    // a pm->claims_changed() is posted
  asio::thread_pool cleaner{1};       // removes them (a volume may hold many files)

  const api::Resource& pods_res = loop::resource("", "pods");
  const api::Resource& nodes_res = loop::resource("", "nodes");
  const api::Resource& leases_res = loop::resource("coordination.k8s.io", "leases");

  HostFacts facts() { return o.host_facts ? o.host_facts() : read_host_facts(o.root_dir); }

  // ------------------------------------------------------------------ node + lease

  asio::awaitable<void> register_node() {
    auto self = shared_from_this();
    auto backoff = 500ms;
    for (;;) {
      HostFacts h = facts();
      json::value obj = node_object(o.node, h);
      auto r = co_await loop::api_create(client, nodes_res, "", obj);
      if (!r && r.error().code == 409) {
        // Exists (an earlier noded, or an admin): make sure our labels are on it.
        json::value patch =
            json::object{{"metadata", json::object{{"labels", node_labels(o.node, h)}}}};
        std::string text = to_json(patch);
        r = co_await loop::api_patch(client, nodes_res, "", o.node.name, text);
      }
      if (r) {
        node_uid = std::string(get_string(*r, {"metadata", "uid"}));
        last_status = find_path(*r, {"status"}) ? *find_path(*r, {"status"}) : json::value(nullptr);
        log::info("agent: node {} registered (uid {})", o.node.name, node_uid);
        co_return;
      }
      log::warn("agent: register node {}: {} (retrying in {}ms)", o.node.name,
                r.error().to_string(), backoff.count());
      co_await sleep_for(ex, backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(7000));
    }
  }

  asio::awaitable<void> status_loop() {
    auto self = shared_from_this();
    co_await register_node();
    for (;;) {
      HostFacts h = facts();
      auto now = std::chrono::system_clock::now();
      bool beat_due = last_heartbeat == Clock::time_point{} ||
                      Clock::now() - last_heartbeat >= o.heartbeat_interval;
      json::value st = node_status(o.node, h, last_status, now, false);
      if (beat_due || last_status.is_null() ||
          status_change_key(st) != status_change_key(last_status)) {
        st = node_status(o.node, h, last_status, now, true);
        json::value patch = json::object{{"status", st}};
        std::string text = to_json(patch);
        auto r = co_await loop::api_patch_status(client, nodes_res, "", o.node.name, text);
        if (r) {
          last_status = st;
          last_heartbeat = Clock::now();
        } else if (r.error().code == 404) {
          log::warn("agent: node {} is gone: registering it again", o.node.name);
          node_uid.clear();
          co_await register_node();
          continue;
        } else {
          log::warn("agent: node status: {}", r.error().to_string());
          co_await sleep_for(ex, std::min(o.status_interval, std::chrono::milliseconds(2000)));
          continue;
        }
      }
      co_await sleep_for(ex, o.status_interval);
    }
  }

  asio::awaitable<void> lease_loop() {
    auto self = shared_from_this();
    for (;;) {
      if (node_uid.empty()) {
        co_await sleep_for(ex, 100ms);
        continue;
      }
      std::string now = format_rfc3339_micro(std::chrono::system_clock::now());
      auto cur = co_await loop::api_get(client, leases_res, "kube-node-lease", o.node.name);
      client::Result<json::value> r = std::unexpected(client::Error{});
      if (!cur && cur.error().code == 404) {
        json::value lease =
            json::object{{"apiVersion", "coordination.k8s.io/v1"},
                         {"kind", "Lease"},
                         {"metadata", json::object{{"name", o.node.name},
                                                   {"namespace", "kube-node-lease"},
                                                   {"ownerReferences",
                                                    json::array{json::object{{"apiVersion", "v1"},
                                                                             {"kind", "Node"},
                                                                             {"name", o.node.name},
                                                                             {"uid", node_uid}}}}}},
                         {"spec", json::object{{"holderIdentity", o.node.name},
                                               {"leaseDurationSeconds", o.lease_duration_seconds},
                                               {"renewTime", now}}}};
        r = co_await loop::api_create(client, leases_res, "kube-node-lease", lease);
      } else if (cur) {
        json::value lease = *cur;
        auto& spec = ensure_object(lease.as_object(), "spec");
        spec["holderIdentity"] = o.node.name;
        spec["leaseDurationSeconds"] = o.lease_duration_seconds;
        spec["renewTime"] = now;
        r = co_await loop::api_update(client, leases_res, "kube-node-lease", lease);
      } else {
        r = std::unexpected(cur.error());
      }
      if (!r) {
        log::warn("agent: renew lease kube-node-lease/{}: {}", o.node.name, r.error().to_string());
        co_await sleep_for(ex, std::min(o.lease_interval, std::chrono::milliseconds(1000)));
        continue;
      }
      co_await sleep_for(ex, o.lease_interval);
    }
  }

  // ------------------------------------------------------------------ pods

  void start_informers() {
    client::InformerOptions po;
    po.field_selector = "spec.nodeName=" + o.node.name;
    pods_inf = client::Informer::create(ex, client, pods_res, "", po);
    cm_inf = client::Informer::create(ex, client, loop::resource("", "configmaps"), "");
    secret_inf = client::Informer::create(ex, client, loop::resource("", "secrets"), "");
    pvc_inf =
        client::Informer::create(ex, client, loop::resource("", "persistentvolumeclaims"), "");
    pv_inf = client::Informer::create(ex, client, loop::resource("", "persistentvolumes"), "");
    std::weak_ptr<Impl> weak = weak_from_this();
    pods_inf->on_add([weak](const json::value& p) {
      if (auto s = weak.lock()) s->on_pod(p);
    });
    pods_inf->on_update([weak](const json::value&, const json::value& p) {
      if (auto s = weak.lock()) s->on_pod(p);
    });
    pods_inf->on_delete([weak](const json::value& p) {
      if (auto s = weak.lock()) s->on_pod_deleted(p);
    });
    pv_inf->on_add([weak](const json::value&) {
      if (auto s = weak.lock()) s->volumes_changed(true);
    });
    pv_inf->on_update([weak](const json::value&, const json::value&) {
      if (auto s = weak.lock()) s->volumes_changed(true);
    });
    pvc_inf->on_add([weak](const json::value&) {
      if (auto s = weak.lock()) s->volumes_changed(false);
    });
    pvc_inf->on_update([weak](const json::value&, const json::value&) {
      if (auto s = weak.lock()) s->volumes_changed(false);
    });
    for (auto& i : {pods_inf, cm_inf, secret_inf, pvc_inf, pv_inf}) i->start();
    if (o.on_nodes) {
      nodes_inf = client::Informer::create(ex, client, nodes_res, "");
      // Events of one turn of the loop (a relist) are handed over once.
      auto changed = [weak] {
        auto s = weak.lock();
        if (!s || s->nodes_pending) return;
        s->nodes_pending = true;
        asio::post(s->ex, [weak] {
          auto s = weak.lock();
          if (!s) return;
          s->nodes_pending = false;
          auto all = s->nodes_inf->list();
          std::vector<const json::value*> nodes;
          for (const auto& n : all) nodes.push_back(n.get());
          s->o.on_nodes(nodes);
        });
      };
      nodes_inf->on_add([changed](const json::value&) { changed(); });
      nodes_inf->on_update([changed](const json::value&, const json::value&) { changed(); });
      nodes_inf->on_delete([changed](const json::value&) { changed(); });
      nodes_inf->start();
    }
  }

  asio::awaitable<void> start_pods() {
    auto self = shared_from_this();
    while (!pods_inf->has_synced()) co_await sleep_for(ex, 10ms);
    // ConfigMaps, Secrets, claims, PVs and Services first (volumes and env need them), but not
    // forever: a container whose env needs Services not read yet waits with
    // CreateContainerConfigError, a volume whose claim was not read yet with FailedMount.
    auto synced = [this] {
      for (const auto* i : {&cm_inf, &secret_inf, &pvc_inf, &pv_inf})
        if (!(*i)->has_synced()) return false;
      return !svc_inf || svc_inf->has_synced();
    };
    for (auto deadline = Clock::now() + 5s; !synced() && Clock::now() < deadline;)
      co_await sleep_for(ex, 10ms);
    pods_started = true;
    std::set<std::string> present;
    for (const auto& p : pods_inf->list()) {
      present.insert(std::string(get_string(*p, {"metadata", "uid"})));
      on_pod(*p);
    }
    pm->api_synced(present);
    log::info("agent: pods of node {} synced ({} pods in the API)", o.node.name, present.size());
    clean_local_paths();
  }

  // ------------------------------------------------------------------ volumes

  // A claim or volume changed: pods waiting for a claim look again (once per turn of the
  // loop, after the informer has the whole change), and for a volume, local-path cleanup.
  void volumes_changed(bool volume) {
    if (volume) clean_local_paths();
    if (!pods_started || claims_wake_posted) return;
    claims_wake_posted = true;
    asio::post(ex, [weak = weak_from_this()] {
      auto s = weak.lock();
      if (!s) return;
      s->claims_wake_posted = false;
      s->pm->claims_changed();
    });
  }

  // ------------------------------------------------------------------ local-path volumes

  // Whether a pod this node runs (or is about to) mounts the claim ns/name.
  bool claim_in_use(const std::string& ns, const std::string& name) {
    auto mounts = [&](const json::value& pod) {
      if (get_string(pod, {"metadata", "namespace"}) != ns || is_terminal_phase(pod)) return false;
      if (auto w = pm->worker(std::string(get_string(pod, {"metadata", "uid"})));
          w && w->terminated()) {
        return false;  // its containers are gone
      }
      const json::value* vols = find_path(pod, {"spec", "volumes"});
      if (vols == nullptr || !vols->is_array()) return false;
      for (const json::value& v : vols->as_array()) {
        if (get_string(v, {"persistentVolumeClaim", "claimName"}) == name) return true;
      }
      return false;
    };
    for (const auto& p : pods_inf->list()) {
      if (mounts(*p)) return true;
    }
    const json::value running = pm->pod_list();
    if (const json::value* items = find_path(running, {"items"}); items && items->is_array()) {
      for (const json::value& p : items->as_array()) {
        if (mounts(p)) return true;
      }
    }
    return false;
  }

  // Removes the directories of this node's local-path volumes being deleted whose claim no
  // pod here mounts any more, then their finalizer (see local_path.h). Called on volume
  // events, when a pod has stopped, and once the pods are synced.
  void clean_local_paths() {
    if (!pods_started || !pv_inf) return;
    for (const auto& pv : pv_inf->list()) {
      std::optional<std::filesystem::path> dir = local_path_to_clean(*pv, o.node.name);
      if (!dir) continue;
      std::string name(get_string(*pv, {"metadata", "name"}));
      if (cleaning.contains(name)) continue;
      if (auto claim = claim_of(*pv); claim && claim_in_use(claim->first, claim->second)) {
        continue;  // again when that pod has stopped
      }
      cleaning.insert(name);
      asio::co_spawn(ex, clean_local_path(name, *dir), asio::detached);
    }
  }

  asio::awaitable<void> clean_local_path(std::string name, std::filesystem::path dir) {
    auto self = shared_from_this();
    // Named, not temporaries in the co_await: g++ 12 destroys those twice.
    auto remove = [dir]() -> asio::awaitable<std::expected<void, std::string>> {
      co_return remove_local_path(dir);
    };
    auto removal = asio::co_spawn(cleaner, std::move(remove), asio::use_awaitable);
    std::expected<void, std::string> removed = co_await std::move(removal);
    if (!removed) {
      log::warn("agent: local-path volume {}: {}", name, removed.error());
      cleaning.erase(name);
      co_return;  // the next event of the volume tries again
    }
    const api::Resource& pvs = loop::resource("", "persistentvolumes");
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto cur = co_await loop::api_get(client, pvs, "", name);
      if (!cur) break;  // gone already
      json::value next = loop::without_finalizer(*cur, kLocalPathCleanupFinalizer);
      auto r = co_await loop::api_update(client, pvs, "", std::move(next));
      if (r || r.error().code != 409) {
        if (r) log::info("agent: local-path volume {}: removed {}", name, dir.string());
        if (!r) log::warn("agent: local-path volume {}: {}", name, r.error().to_string());
        break;
      }
    }
    cleaning.erase(name);
  }

  void on_pod(const json::value& pod) {
    if (!pods_started) return;  // start_pods() takes the synced cache
    std::string ns(get_string(pod, {"metadata", "namespace"}));
    std::string name(get_string(pod, {"metadata", "name"}));
    std::string uid(get_string(pod, {"metadata", "uid"}));
    std::string key = key_of(ns, name);
    if (auto it = running_uid.find(key); it != running_uid.end() && it->second != uid) {
      // The same name under a new UID: the old pod is gone.
      pm->remove_api_pod(it->second, std::nullopt);
      running_uid.erase(it);
    }
    if (auto grace = deletion_grace(pod)) {
      if (!pm->remove_api_pod(uid, grace)) co_spawn_delete(ns, name, uid);
      return;
    }
    if (auto w = pm->worker(uid)) {
      // Running: of the spec only new ephemeral containers (pods/ephemeralcontainers, kubectl
      // debug) are applied; the rest of it cannot change (image updates are not applied).
      w->add_ephemeral_containers(pod);
      return;
    }
    if (is_terminal_phase(pod)) return;  // finished before: its status stays, never run again
    Sync sync{ns, name};
    if (pm->has_record(uid)) sync.adopting_until = Clock::now() + 5s;
    syncs[uid] = std::move(sync);
    running_uid[key] = uid;
    auto def = pod_def_from_api(pod);
    if (def) {
      pm->add_api_pod(std::move(*def));
    } else {
      pods::PodDef d;
      d.ns = ns;
      d.name = name;
      d.uid = uid;
      d.pod = pod;
      pm->add_failed_api_pod(std::move(d), "InvalidPodSpec", def.error().text());
    }
    status_changed(uid);
  }

  void on_pod_deleted(const json::value& pod) {
    std::string ns(get_string(pod, {"metadata", "namespace"}));
    std::string name(get_string(pod, {"metadata", "name"}));
    std::string uid(get_string(pod, {"metadata", "uid"}));
    if (auto it = running_uid.find(key_of(ns, name)); it != running_uid.end() && it->second == uid)
      running_uid.erase(it);
    if (!pods_started) return;
    pm->remove_api_pod(uid, deletion_grace(pod));
    clean_local_paths();  // a volume it held may be waiting
  }

  void pod_terminated(const std::string& ns, const std::string& name, const std::string& uid) {
    syncs.erase(uid);
    if (auto it = running_uid.find(key_of(ns, name)); it != running_uid.end() && it->second == uid)
      running_uid.erase(it);
    auto obj = pods_inf ? pods_inf->get(ns, name) : nullptr;
    if (obj && get_string(*obj, {"metadata", "uid"}) == uid && deletion_grace(*obj))
      co_spawn_delete(ns, name, uid);
    clean_local_paths();  // a volume it held may be waiting
  }

  void co_spawn_delete(const std::string& ns, const std::string& name, const std::string& uid) {
    if (!deleting.insert(uid).second) return;
    auto self = shared_from_this();
    asio::co_spawn(
        ex,
        [self, ns, name, uid]() -> asio::awaitable<void> {
          auto backoff = 500ms;
          for (int attempt = 0; attempt < 20; ++attempt) {
            client::DeleteOptions opts;
            opts.grace_period_seconds = 0;
            opts.precondition_uid = uid;
            auto r = co_await loop::api_delete(self->client, self->pods_res, ns, name, opts);
            if (r) {
              log::info("agent: pod {}/{} (uid {}) deleted", ns, name, uid);
              break;
            }
            // Gone already, or another pod under that name now (UID precondition): done. Other
            // conflicts (a write raced with the delete) are retried.
            if (r.error().code == 404 ||
                (r.error().code == 409 &&
                 r.error().message.find("Precondition failed") != std::string::npos))
              break;
            log::warn("agent: delete pod {}/{}: {}", ns, name, r.error().to_string());
            co_await sleep_for(self->ex, backoff);
            backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
          }
          self->deleting.erase(uid);
        },
        asio::detached);
  }

  // ------------------------------------------------------------------ status writes

  void status_changed(const std::string& uid) {
    auto it = syncs.find(uid);
    if (it == syncs.end()) return;
    it->second.dirty = true;
    if (it->second.in_flight || it->second.queued) return;
    if (status_writers >= std::max(1, o.max_status_writes)) {
      it->second.queued = true;
      status_waiting.push_back(uid);
      return;
    }
    spawn_status_writer(it->second, uid);
  }

  void spawn_status_writer(Sync& s, const std::string& uid) {
    s.in_flight = true;
    ++status_writers;
    auto self = shared_from_this();
    asio::co_spawn(
        ex,
        [self, uid]() -> asio::awaitable<void> {
          co_await self->write_status(uid);
          self->status_writer_done();
        },
        asio::detached);
  }

  // A writer ended: its slot goes to the oldest waiting pod that still needs a write.
  void status_writer_done() {
    --status_writers;
    while (!status_waiting.empty() && status_writers < std::max(1, o.max_status_writes)) {
      std::string uid = std::move(status_waiting.front());
      status_waiting.pop_front();
      auto it = syncs.find(uid);
      if (it == syncs.end() || !it->second.queued) continue;
      it->second.queued = false;
      if (it->second.in_flight) continue;
      spawn_status_writer(it->second, uid);
    }
  }

  asio::awaitable<void> write_status(std::string uid) {
    auto self = shared_from_this();
    // Let the notifications of this turn of the loop pile up into one write.
    co_await asio::post(ex, asio::use_awaitable);
    auto backoff = 1000ms;
    for (;;) {
      auto it = syncs.find(uid);
      if (it == syncs.end()) co_return;
      Sync& s = it->second;
      auto w = pm->worker(uid);
      auto obj = pods_inf->get(s.ns, s.name);
      if (!s.dirty || !w || !obj || get_string(*obj, {"metadata", "uid"}) != uid) {
        s.in_flight = false;
        co_return;
      }
      s.dirty = false;
      if (s.adopting_until) {
        bool settled = true;
        for (const auto* list : {&w->status().init, &w->status().app})
          for (const auto& c : *list)
            if (c.state.kind == pods::ContainerState::Kind::kWaiting && !c.image_id.empty() &&
                (c.state.reason == "ContainerCreating" || c.state.reason == "PodInitializing"))
              settled = false;  // ran before, not looked at again yet
        if (!settled && Clock::now() < *s.adopting_until) {
          // The next change writes; at the deadline, look again anyway.
          s.in_flight = false;
          auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*s.adopting_until -
                                                                            Clock::now());
          asio::co_spawn(
              ex,
              [self, uid, wait]() -> asio::awaitable<void> {
                co_await sleep_for(self->ex, wait + 10ms);
                self->status_changed(uid);
              },
              asio::detached);
          co_return;
        }
        s.adopting_until.reset();
      }
      const json::value* cur = find_path(*obj, {"status"});
      json::object st = compose_api_status(pods::render_pod_status(w->def(), w->status()), cur,
                                           w->def().host_network);
      keep_api_times(st, cur);
      json::value stv = st;
      // Before our first write the informer's copy is the API's latest; after it, the cache may
      // lag behind our own writes, so only the last written status counts.
      if (stv == s.last || (s.last.is_null() && cur != nullptr && *cur == stv)) {
        s.last = std::move(stv);
        continue;
      }
      std::string ns = s.ns, name = s.name;
      std::string text = status_patch(uid, st);
      auto r = co_await loop::api_patch_status(client, pods_res, ns, name, text,
                                               client::PatchType::json);
      it = syncs.find(uid);
      if (it == syncs.end()) co_return;
      if (r) {
        it->second.last = std::move(stv);
        backoff = 1000ms;
        continue;
      }
      if (r.error().code == 404) {
        it->second.in_flight = false;
        co_return;
      }
      log::warn("agent: pod {}/{} status: {}", ns, name, r.error().to_string());
      if (r.error().code == 422 && r.error().message.find("test") != std::string::npos) {
        it->second.in_flight = false;  // another pod under that name now
        co_return;
      }
      it->second.dirty = true;
      co_await sleep_for(ex, backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  }

  // ------------------------------------------------------------------ worker env

  std::expected<std::vector<client::ObjectPtr>, std::string> services() const {
    if (!svc_inf) return {};
    // The kubelet's words when its service informer has not synced.
    if (!svc_inf->has_synced())
      return std::unexpected("services have not yet been read at least once, cannot construct envvars");
    return svc_inf->list();
  }

  std::optional<json::value> lookup(std::string_view kind, std::string_view ns,
                                    std::string_view name) {
    client::Informer* inf = kind == "ConfigMap"               ? cm_inf.get()
                            : kind == "Secret"                ? secret_inf.get()
                            : kind == "PersistentVolumeClaim" ? pvc_inf.get()
                            : kind == "PersistentVolume"      ? pv_inf.get()
                                                              : nullptr;
    if (inf == nullptr) return std::nullopt;
    auto p = inf->get(ns, name);
    if (!p) return std::nullopt;
    return *p;
  }

  asio::awaitable<std::expected<pods::ServiceAccountToken, std::string>> token(
      pods::ServiceAccountTokenRequest req) {
    auto self = shared_from_this();
    json::array audiences;
    if (!req.audience.empty()) audiences.push_back(json::value(req.audience));
    json::value body = json::object{
        {"apiVersion", "authentication.k8s.io/v1"},
        {"kind", "TokenRequest"},
        {"spec", json::object{{"audiences", std::move(audiences)},
                              {"expirationSeconds", req.expiration_seconds},
                              {"boundObjectRef", json::object{{"kind", "Pod"},
                                                              {"apiVersion", "v1"},
                                                              {"name", req.pod_name},
                                                              {"uid", req.pod_uid}}}}}};
    std::string path = client::resource_path(loop::resource("", "serviceaccounts"), req.ns,
                                             req.service_account, "token");
    std::string text = to_json(body);
    std::string method = "POST", ctype = "application/json";
    auto r = co_await client.request(method, path, text, ctype);
    if (!r) co_return std::unexpected(r.error().to_string());
    if (r->status < 200 || r->status >= 300)
      co_return std::unexpected(client::error_from_response(*r, "POST " + path).to_string());
    auto v = parse_json(r->body);
    if (!v) co_return std::unexpected("TokenRequest reply: " + v.error());
    pods::ServiceAccountToken t;
    t.token = std::string(get_string(*v, {"status", "token"}));
    auto exp = parse_rfc3339(get_string(*v, {"status", "expirationTimestamp"}));
    if (t.token.empty() || !exp)
      co_return std::unexpected("TokenRequest reply without status.token");
    t.expiration = *exp;
    co_return t;
  }
};

NodeAgent::NodeAgent(asio::any_io_executor ex, client::Client client, AgentOptions o)
    : impl_(std::make_shared<Impl>(ex, std::move(client), std::move(o))) {
  // Allocatable for resourceFieldRef defaults.
  HostFacts h = impl_->facts();
  json::value st = node_status(impl_->o.node, h, nullptr, std::chrono::system_clock::now(), true);
  if (const auto* a = find_path(st, {"allocatable"}); a && a->is_object())
    for (const auto& [k, v] : a->as_object())
      if (v.is_string()) impl_->allocatable[std::string(k)] = std::string(v.as_string());
}

NodeAgent::~NodeAgent() {
  for (auto* i : {&impl_->pods_inf, &impl_->cm_inf, &impl_->secret_inf, &impl_->nodes_inf,
                  &impl_->pvc_inf, &impl_->pv_inf})
    if (*i) (*i)->stop();
}

void NodeAgent::set_kubelet_port(int port) { impl_->o.node.kubelet_port = port; }

void NodeAgent::set_services(std::shared_ptr<client::Informer> services) {
  impl_->svc_inf = std::move(services);
}

void NodeAgent::configure(pods::PodManagerOptions& po) {
  std::weak_ptr<Impl> weak = impl_;
  po.api_source = true;
  po.api_lookup = [weak](std::string_view kind, std::string_view ns,
                         std::string_view name) -> std::optional<json::value> {
    auto s = weak.lock();
    return s ? s->lookup(kind, ns, name) : std::nullopt;
  };
  po.api_services = [weak]()
      -> std::expected<std::vector<std::shared_ptr<const json::value>>, std::string> {
    auto s = weak.lock();
    if (!s) return std::unexpected(std::string("noded is shutting down"));
    return s->services();
  };
  po.on_status_changed = [weak](const std::string& uid) {
    if (auto s = weak.lock()) s->status_changed(uid);
  };
  po.on_pod_terminated = [weak](const std::string& ns, const std::string& name,
                                const std::string& uid) {
    if (auto s = weak.lock()) s->pod_terminated(ns, name, uid);
  };
  po.on_event = [weak](const json::value& pod, std::string_view type, std::string_view reason,
                       const std::string& message) {
    if (auto s = weak.lock()) s->events.record(pod, type, reason, message);
  };
  po.api_env = [weak](pods::WorkerEnv& env) {
    auto s = weak.lock();
    if (!s) return;
    env.node_allocatable = s->allocatable;
    env.tokens = [weak](pods::ServiceAccountTokenRequest req)
        -> asio::awaitable<std::expected<pods::ServiceAccountToken, std::string>> {
      auto s = weak.lock();
      if (!s) co_return std::unexpected(std::string("noded is shutting down"));
      co_return co_await s->token(std::move(req));
    };
  };
}

void NodeAgent::start(pods::PodManager& pods) {
  impl_->pm = &pods;
  auto self = impl_;
  impl_->start_informers();
  asio::co_spawn(
      impl_->ex, [self]() -> asio::awaitable<void> { co_await self->status_loop(); },
      asio::detached);
  asio::co_spawn(
      impl_->ex, [self]() -> asio::awaitable<void> { co_await self->lease_loop(); },
      asio::detached);
  asio::co_spawn(
      impl_->ex, [self]() -> asio::awaitable<void> { co_await self->start_pods(); },
      asio::detached);
}

}  // namespace podwarp::noded::agent
