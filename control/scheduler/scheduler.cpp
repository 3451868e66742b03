#include "scheduler/scheduler.h"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <unordered_map>

#include "loop/api.h"
#include "loop/events.h"
#include "podwarp/informer.h"
#include "podwarp/log.h"
#include "podwarp/metrics.h"
#include "podwarp/time.h"
#include "scheduler/algorithm.h"
#include "scheduler/queue.h"
#include "scheduler/snapshot.h"

namespace podwarp::scheduler {

namespace asio = boost::asio;
using client::Awaitable;
using Clock = std::chrono::steady_clock;

namespace {

struct Metrics {
  metrics::Counter& attempts = metrics::default_registry().counter(
      "scheduler_schedule_attempts_total",
      "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could "
      "not be scheduled, while 'error' means an internal scheduler problem.",
      {"result", "profile"});
  metrics::Histogram& e2e = metrics::default_registry().histogram(
      "scheduler_e2e_scheduling_duration_seconds",
      "E2e scheduling latency in seconds (from the pod entering the queue to its binding).",
      metrics::exponential_buckets(0.001, 2, 15), {"result", "profile"});
  metrics::Gauge& pending = metrics::default_registry().gauge(
      "scheduler_pending_pods", "Number of pending pods, by the queue type.", {"queue"});
};

Metrics& scheduler_metrics() {
  static Metrics m;
  return m;
}

json::value involved_object(const PodInfo& p) {
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", json::object{{"name", p.name}, {"namespace", p.ns}, {"uid", p.uid}}}};
}

std::string uid_of(const json::value& obj) {
  std::string uid(get_string(obj, {"metadata", "uid"}));
  if (uid.empty()) {
    uid = std::string(get_string(obj, {"metadata", "namespace"})) + "/" +
          std::string(get_string(obj, {"metadata", "name"}));
  }
  return uid;
}

bool same_field(const json::value& a, const json::value& b,
                std::initializer_list<std::string_view> path) {
  const json::value* x = find_path(a, path);
  const json::value* y = find_path(b, path);
  if (x == nullptr || y == nullptr) return x == y;
  return *x == *y;
}

}  // namespace

struct Scheduler::Run : std::enable_shared_from_this<Run> {
  Run(asio::any_io_executor executor, client::Client c, const SchedulerOptions& opts)
      : ex(executor),
        client(c),
        options(opts),
        algo(snap, AlgorithmOptions{opts.percentage_of_nodes_to_score}),
        events(c, opts.component),
        timer(executor) {}

  asio::any_io_executor ex;
  client::Client client;
  SchedulerOptions options;
  Snapshot snap;
  Algorithm algo;
  SchedulingQueue queue;
  loop::EventRecorder events;
  asio::steady_timer timer;
  std::shared_ptr<client::Informer> nodes, pods, namespaces;
  std::shared_ptr<client::Informer> claims, volumes, classes;  // VolumeBinding
  bool stopped = false;
  bool waiting = false;
  bool wake_pending = false;
  std::size_t binds_in_flight = 0;
  std::unordered_map<std::string, Clock::time_point> first_seen;  // uid -> entered the queue
  std::unordered_map<std::string, std::string> assumed;           // uid -> node, bind pending
  std::unordered_map<std::string, std::string> reported;          // uid -> last status message
  Stats stats;
  // Writes other than bindings (status patches, events, victim deletions) go through a few
  // writer coroutines, so a burst of failures cannot open thousands of connections.
  static constexpr std::size_t kWriters = 4;
  static constexpr std::size_t kMaxQueuedEvents = 10000;
  std::deque<std::function<Awaitable<void>()>> writes;
  std::size_t writers = 0;
  std::size_t queued_events = 0;
  std::uint64_t dropped_events = 0;

  void submit(std::function<Awaitable<void>()> job) {
    writes.push_back(std::move(job));
    if (writers < kWriters) {
      ++writers;
      asio::co_spawn(ex, writer(shared_from_this()), asio::detached);
    }
  }

  static Awaitable<void> writer(std::shared_ptr<Run> self) {
    while (!self->writes.empty() && !self->stopped) {
      std::function<Awaitable<void>()> job = std::move(self->writes.front());
      self->writes.pop_front();
      co_await job();
    }
    --self->writers;
  }

  bool ours(const PodInfo& p) const {
    if (p.terminating || p.finished) return false;
    if (p.scheduler_name.empty()) return true;
    for (const auto& n : options.scheduler_names) {
      if (n == p.scheduler_name) return true;
    }
    return false;
  }

  void wake() {
    if (waiting) {
      timer.cancel();
    } else {
      wake_pending = true;
    }
  }

  // --- informer events ---

  void on_pod(const json::value& obj) {
    PodPtr p = compile_pod(obj, snap.interner());
    auto now = Clock::now();
    if (!p->node_name.empty()) {
      queue.remove(p->uid);
      first_seen.erase(p->uid);
      reported.erase(p->uid);
      bool was_assumed = assumed.erase(p->uid) > 0;
      snap.add_pod(p, p->node_name);
      if (!was_assumed) {
        queue.move_all(now);  // e.g. a pod that others have affinity to
        wake();
      }
      return;
    }
    if (assumed.count(p->uid) != 0) {
      // Our binding is in flight; the informer has not seen it yet.
      if (p->terminating) queue.remove(p->uid);
      return;
    }
    if (snap.has_pod(p->uid)) snap.remove_pod(p->uid);
    if (!ours(*p)) {
      queue.remove(p->uid);
      first_seen.erase(p->uid);
      return;
    }
    first_seen.try_emplace(p->uid, now);
    queue.add(std::move(p), now);
    wake();
  }

  void on_pod_update(const json::value& old_obj, const json::value& obj) {
    // Status-only changes of a pending pod (our own condition patches among them) do not
    // make it schedulable: ignore them, as upstream does.
    if (get_string(obj, {"spec", "nodeName"}).empty() && same_field(old_obj, obj, {"spec"}) &&
        same_field(old_obj, obj, {"metadata", "labels"}) &&
        same_field(old_obj, obj, {"metadata", "deletionTimestamp"}) &&
        queue.contains(uid_of(obj))) {
      queue.replace(compile_pod(obj, snap.interner()));  // e.g. status.nominatedNodeName
      return;
    }
    on_pod(obj);
  }

  void on_pod_delete(const json::value& obj) {
    std::string uid = uid_of(obj);
    snap.remove_pod(uid);
    queue.remove(uid);
    assumed.erase(uid);
    first_seen.erase(uid);
    reported.erase(uid);
    queue.move_all(Clock::now());
    wake();
  }

  void on_node(const json::value& obj) {
    snap.upsert_node(compile_node(obj, snap.interner()));
    queue.move_all(Clock::now());
    wake();
  }

  void on_node_update(const json::value& old_obj, const json::value& obj) {
    // Heartbeats (conditions, images, ...) change nothing the scheduler reads.
    if (same_field(old_obj, obj, {"metadata", "labels"}) && same_field(old_obj, obj, {"spec"}) &&
        same_field(old_obj, obj, {"status", "allocatable"}) &&
        same_field(old_obj, obj, {"status", "capacity"})) {
      return;
    }
    on_node(obj);
  }

  void on_namespace(const json::value& obj) {
    snap.set_namespace_labels(
        get_string(obj, {"metadata", "name"}),
        compile_labels(find_path(obj, {"metadata", "labels"}), snap.interner()));
  }

  // A claim bound, a volume or class added: pods waiting for them may fit now.
  void on_storage_changed() {
    queue.move_all(Clock::now());
    wake();
  }

  // Events. loop::EventRecorder::record() crashes with g++ 12 (events.cpp co_awaits
  // client.create with its default WriteOptions argument: a braced temporary holding strings,
  // freed twice), so the scheduler posts the Event that make_event() builds itself, with
  // named arguments. Repeats are not aggregated: report_failure() records a FailedScheduling
  // event only when the message changes.
  void record_event(const json::value& obj, std::string_view type, std::string_view reason,
                    std::string message) {
    if (queued_events >= kMaxQueuedEvents) {
      ++dropped_events;  // events are best effort, as upstream's broadcaster drops too
      return;
    }
    ++queued_events;
    auto ev = std::make_shared<json::value>(
        events.make_event(obj, type, reason, message, std::chrono::system_clock::now()));
    std::weak_ptr<Run> weak = shared_from_this();
    submit([weak, ev]() -> Awaitable<void> {
      auto self = weak.lock();
      if (!self) co_return;
      --self->queued_events;
      co_await post_event(self, *ev);
    });
  }

  static Awaitable<void> post_event(std::shared_ptr<Run> self, json::value ev) {
    std::string ns(get_string(ev, {"metadata", "namespace"}));
    auto r = co_await loop::api_create(self->client, loop::resource("", "events"), ns, ev);
    if (!r) log::debug("scheduler: event in {}: {}", ns, r.error().to_string());
  }

  // --- lifecycle ---

  void start() {
    std::weak_ptr<Run> weak = shared_from_this();
    auto guard = [weak](auto f) {
      return [weak, f](const auto&... args) {
        if (auto self = weak.lock(); self && !self->stopped) (self.get()->*f)(args...);
      };
    };
    nodes = client::Informer::create(ex, client, loop::resource("", "nodes"));
    nodes->on_add(guard(&Run::on_node));
    nodes->on_update(guard(&Run::on_node_update));
    nodes->on_delete([weak](const json::value& obj) {
      if (auto self = weak.lock(); self && !self->stopped) {
        self->snap.remove_node(std::string(get_string(obj, {"metadata", "name"})));
      }
    });
    pods = client::Informer::create(ex, client, loop::resource("", "pods"));
    pods->on_add(guard(&Run::on_pod));
    pods->on_update(guard(&Run::on_pod_update));
    pods->on_delete(guard(&Run::on_pod_delete));
    namespaces = client::Informer::create(ex, client, loop::resource("", "namespaces"));
    namespaces->on_add(guard(&Run::on_namespace));
    namespaces->on_update([weak](const json::value&, const json::value& obj) {
      if (auto self = weak.lock(); self && !self->stopped) self->on_namespace(obj);
    });
    namespaces->on_delete([weak](const json::value& obj) {
      if (auto self = weak.lock(); self && !self->stopped)
        self->snap.remove_namespace(get_string(obj, {"metadata", "name"}));
    });
    watch_storage(weak);
    nodes->start();
    pods->start();
    namespaces->start();
    for (auto& i : {claims, volumes, classes}) i->start();
    asio::co_spawn(ex, run_loop(shared_from_this()), asio::detached);
  }

  void watch_storage(const std::weak_ptr<Run>& weak) {
    auto on = [weak](auto update) {
      return [weak, update](const json::value& obj) {
        if (auto self = weak.lock(); self && !self->stopped) {
          update(self->snap, obj);
          self->on_storage_changed();
        }
      };
    };
    auto both = [](auto f) { return [f](const json::value&, const json::value& obj) { f(obj); }; };
    auto watch = [&](std::shared_ptr<client::Informer>& inf, std::string_view group,
                     std::string_view plural, auto upsert, auto remove) {
      inf = client::Informer::create(ex, client, loop::resource(group, plural));
      inf->on_add(on(upsert));
      inf->on_update(both(on(upsert)));
      inf->on_delete(on(remove));
    };
    watch(
        claims, "", "persistentvolumeclaims",
        [](Snapshot& s, const json::value& o) { s.volumes().upsert_claim(o); },
        [](Snapshot& s, const json::value& o) { s.volumes().remove_claim(o); });
    watch(
        volumes, "", "persistentvolumes",
        [](Snapshot& s, const json::value& o) { s.volumes().upsert_volume(o, s.interner()); },
        [](Snapshot& s, const json::value& o) {
          s.volumes().remove_volume(get_string(o, {"metadata", "name"}));
        });
    watch(
        classes, "storage.k8s.io", "storageclasses",
        [](Snapshot& s, const json::value& o) { s.volumes().upsert_class(o); },
        [](Snapshot& s, const json::value& o) {
          s.volumes().remove_class(get_string(o, {"metadata", "name"}));
        });
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    if (nodes) nodes->stop();
    if (pods) pods->stop();
    if (namespaces) namespaces->stop();
    for (auto& i : {claims, volumes, classes})
      if (i) i->stop();
    timer.cancel();
  }

  Awaitable<void> wait_until(Clock::time_point deadline) {
    if (wake_pending) {
      wake_pending = false;
      co_return;
    }
    timer.expires_at(deadline);
    waiting = true;
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    waiting = false;
    wake_pending = false;
  }

  static Awaitable<void> run_loop(std::shared_ptr<Run> self) {
    auto synced = [&self] {
      for (auto& i :
           {self->nodes, self->pods, self->namespaces, self->claims, self->volumes, self->classes})
        if (!i->has_synced()) return false;
      return true;
    };
    while (!self->stopped && !synced()) {
      co_await self->wait_until(Clock::now() + std::chrono::milliseconds(20));
    }
    log::info("scheduler: caches synced ({} nodes, {} pods assigned, {} pending)",
              self->snap.live_nodes().size(), self->snap.pod_count(), self->queue.active_size());
    auto& m = scheduler_metrics();
    std::size_t since_yield = 0;
    auto last_gauges = Clock::now();
    while (!self->stopped) {
      auto now = Clock::now();
      if (now - last_gauges > std::chrono::seconds(1)) {
        last_gauges = now;
        m.pending.with({"active"}).set(static_cast<double>(self->queue.active_size()));
        m.pending.with({"backoff"}).set(static_cast<double>(self->queue.backoff_size()));
        m.pending.with({"unschedulable"})
            .set(static_cast<double>(self->queue.unschedulable_size()));
      }
      if (self->binds_in_flight >= self->options.max_binds_in_flight) {
        co_await self->wait_until(now + std::chrono::seconds(1));
        continue;
      }
      auto pod = self->queue.pop(now);
      if (!pod) {
        auto deadline = now + std::chrono::seconds(1);  // also drives the unschedulable flush
        if (auto b = self->queue.next_backoff_expiry(); b && *b < deadline) deadline = *b;
        co_await self->wait_until(deadline);
        continue;
      }
      self->schedule_one(std::move(*pod), now);
      if (++since_yield >= 8) {
        // Let informer events and binding replies in between cycles.
        since_yield = 0;
        co_await asio::post(self->ex, asio::use_awaitable);
      }
    }
  }

  // --- one cycle ---

  void schedule_one(PodPtr pod, Clock::time_point now) {
    auto& m = scheduler_metrics();
    const std::string& profile =
        pod->scheduler_name.empty() ? options.scheduler_names.front() : pod->scheduler_name;
    if (snap.has_pod(pod->uid)) {  // assigned meanwhile
      queue.done(pod->uid);
      return;
    }
    ScheduleResult result = algo.schedule(*pod);
    if (result.scheduled) {
      // Assume: account the pod on the node now, so that the next cycle sees it.
      snap.add_pod(pod, result.node_name);
      assumed[pod->uid] = result.node_name;
      m.attempts.with({"scheduled", profile}).inc();
      ++binds_in_flight;
      asio::co_spawn(ex, bind(shared_from_this(), pod, result.node_name), asio::detached);
      return;
    }
    if (result.num_all_nodes == 0) {
      m.attempts.with({"error", profile}).inc();
      queue.backoff(pod->uid, now);
      report_failure(pod, "SchedulerError", result.message, {});
      return;
    }
    m.attempts.with({"unschedulable", profile}).inc();
    ++stats.unschedulable;
    PreemptionResult pr = algo.preempt(*pod, result);
    std::string message = result.message;
    if (!pr.message.empty()) message += " " + pr.message;
    queue.unschedulable(pod->uid, now);
    if (pr.nominated) {
      ++stats.preemptions;
      for (const auto& v : pr.victims) {
        record_event(involved_object(*v), "Normal", "Preempted",
                     "Preempted by pod " + pod->uid + " on node " + pr.node_name);
        std::weak_ptr<Run> weak = shared_from_this();
        submit([weak, v]() -> Awaitable<void> {
          if (auto self = weak.lock()) co_await delete_victim(self, v);
        });
      }
    }
    report_failure(pod, "Unschedulable", message, pr.nominated ? pr.node_name : std::string());
  }

  void report_failure(const PodPtr& pod, std::string reason, std::string message,
                      std::string nominated) {
    std::string key = reason + "\n" + message + "\n" + nominated;
    auto it = reported.find(pod->uid);
    if (it != reported.end() && it->second == key) return;  // the status already says so
    record_event(involved_object(*pod), "Warning", "FailedScheduling", message);
    reported[pod->uid] = key;
    std::weak_ptr<Run> weak = shared_from_this();
    auto args = std::make_shared<std::array<std::string, 3>>(
        std::array<std::string, 3>{std::move(reason), std::move(message), std::move(nominated)});
    submit([weak, pod, args]() -> Awaitable<void> {
      if (auto self = weak.lock())
        co_await patch_status(self, pod, (*args)[0], (*args)[1], (*args)[2]);
    });
  }

  static Awaitable<void> bind(std::shared_ptr<Run> self, PodPtr pod, std::string node) {
    json::value body = json::object{
        {"apiVersion", "v1"},
        {"kind", "Binding"},
        {"metadata", json::object{{"name", pod->name}, {"namespace", pod->ns}, {"uid", pod->uid}}},
        {"target", json::object{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    std::string path =
        client::resource_path(loop::resource("", "pods"), pod->ns, pod->name, "binding");
    std::string text = to_json(body);
    std::string method = "POST";
    std::string content_type = "application/json";
    auto r = co_await self->client.request(method, path, text, content_type);
    --self->binds_in_flight;
    self->wake();
    if (self->stopped) co_return;
    auto& m = scheduler_metrics();
    const std::string& profile =
        pod->scheduler_name.empty() ? self->options.scheduler_names.front() : pod->scheduler_name;
    auto now = Clock::now();
    if (r && r->status / 100 == 2) {
      ++self->stats.scheduled;
      self->queue.done(pod->uid);
      self->reported.erase(pod->uid);
      if (auto it = self->first_seen.find(pod->uid); it != self->first_seen.end()) {
        m.e2e.with({"scheduled", profile})
            .observe(std::chrono::duration<double>(now - it->second).count());
        self->first_seen.erase(it);
      }
      self->record_event(involved_object(*pod), "Normal", "Scheduled",
                         "Successfully assigned " + pod->key + " to " + node);
      co_return;
    }
    std::string err =
        r ? client::error_from_response(*r, "POST " + path).to_string() : r.error().to_string();
    log::warn("scheduler: binding {} to {}: {}", pod->key, node, err);
    ++self->stats.bind_errors;
    m.attempts.with({"error", profile}).inc();
    // Forget the assumption (unless the informer confirmed the pod on a node meanwhile).
    if (auto it = self->assumed.find(pod->uid); it != self->assumed.end()) {
      self->assumed.erase(it);
      self->snap.remove_pod(pod->uid);
    }
    if (r && r->status == 404) {
      self->queue.remove(pod->uid);  // the pod is gone
      co_return;
    }
    self->queue.backoff(pod->uid, now);
    self->record_event(involved_object(*pod), "Warning", "FailedScheduling",
                       "Binding rejected: " + err);
  }

  static Awaitable<void> patch_status(std::shared_ptr<Run> self, PodPtr pod, std::string reason,
                                      std::string message, std::string nominated) {
    json::object cond{{"type", "PodScheduled"},
                      {"status", "False"},
                      {"reason", reason},
                      {"message", message},
                      {"lastProbeTime", nullptr},
                      {"lastTransitionTime", format_rfc3339(std::chrono::system_clock::now())}};
    json::object status{{"conditions", json::array{cond}}};
    if (!nominated.empty()) status["nominatedNodeName"] = nominated;
    json::object body{{"status", std::move(status)}};
    std::string text = to_json(body);
    std::string ns = pod->ns, name = pod->name;
    auto r = co_await loop::api_patch_status(self->client, loop::resource("", "pods"), ns, name,
                                             text, client::PatchType::strategic);
    if (!r && !r.error().is_not_found()) {
      log::warn("scheduler: patching status of {}: {}", pod->key, r.error().to_string());
      self->reported.erase(pod->uid);
    }
  }

  static Awaitable<void> delete_victim(std::shared_ptr<Run> self, PodPtr victim) {
    std::string ns = victim->ns, name = victim->name;
    auto r = co_await loop::api_delete(self->client, loop::resource("", "pods"), ns, name);
    if (!r && !r.error().is_not_found())
      log::warn("scheduler: preempting {}: {}", victim->key, r.error().to_string());
  }
};

Scheduler::Scheduler(asio::any_io_executor executor, client::Client client,
                     SchedulerOptions options)
    : executor_(std::move(executor)), client_(std::move(client)), options_(std::move(options)) {
  if (options_.scheduler_names.empty()) options_.scheduler_names.push_back("default-scheduler");
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  if (run_ != nullptr) return;
  log::info("scheduler: starting");
  run_ = std::make_shared<Run>(executor_, client_, options_);
  run_->start();
}

void Scheduler::stop() {
  if (run_ == nullptr) return;
  log::info("scheduler: stopping");
  run_->stop();
  finished_stats_.scheduled += run_->stats.scheduled;
  finished_stats_.unschedulable += run_->stats.unschedulable;
  finished_stats_.bind_errors += run_->stats.bind_errors;
  finished_stats_.preemptions += run_->stats.preemptions;
  run_.reset();
}

bool Scheduler::running() const { return run_ != nullptr; }

Scheduler::Stats Scheduler::stats() const {
  Stats s = finished_stats_;
  if (run_ != nullptr) {
    s.scheduled += run_->stats.scheduled;
    s.unschedulable += run_->stats.unschedulable;
    s.bind_errors += run_->stats.bind_errors;
    s.preemptions += run_->stats.preemptions;
  }
  return s;
}

}  // namespace podwarp::scheduler
