#include "pods/pod_manager.h"

#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <set>

#include "pods/manifest_dir.h"
#include "podwarp/log.h"
#include "podwarp/metrics.h"

namespace podwarp::noded::pods {

namespace asio = boost::asio;

namespace {

metrics::Histogram& start_phase_histogram() {
  static auto& h = metrics::default_registry().histogram(
      "podwarp_pod_start_phase_seconds",
      "Time from a pod's manifest being seen to each start phase (sandbox_ready, image_ready, "
      "container_started, ready).",
      metrics::exponential_buckets(0.001, 2, 16), {"phase"});
  return h;
}
metrics::Counter& manifest_errors() {
  static auto& c = metrics::default_registry().counter(
      "podwarp_manifest_errors_total", "Manifests that could not be parsed or validated.");
  return c;
}
metrics::Gauge& pods_gauge() {
  static auto& g = metrics::default_registry().gauge("podwarp_pods", "Pods by phase.", {"phase"});
  return g;
}

class PodManagerImpl final : public PodManager {
 public:
  PodManagerImpl(asio::any_io_executor ex, PodManagerOptions o, ContainerRuntime& rt, ImageService& img)
      : ex_(ex), o_(std::move(o)), runtime_(rt), images_(img), store_(o_.root_dir), timer_(ex) {
    alive_ = std::make_shared<bool>(true);
  }
  ~PodManagerImpl() override {
    *alive_ = false;
    if (inotify_) inotify_->close();
  }

  void start() override {
    load_persisted();
    if (!o_.manifest_dir.empty()) {
      rescan();
      watch();
    } else if (!o_.api_source) {
      for (auto& [uid, rec] : persisted_) cleanup_orphan(rec, false);
      persisted_.clear();
    }
  }

  bool add_api_pod(PodDef def) override {
    if (stopping_ || workers_.contains(def.uid) || terminating_.contains(def.uid)) return false;
    auto rec = persisted_.contains(def.uid) ? std::optional<PodRecord>(persisted_[def.uid]) : std::nullopt;
    persisted_.erase(def.uid);
    log::info("pods: api: new pod {}/{} (uid {}){}", def.ns, def.name, def.uid,
              rec ? ", adopting persisted state" : "");
    api_uids_.insert(def.uid);
    auto env = worker_env(def, true);
    auto w = PodWorker::create(ex_, std::move(env), std::move(def), std::move(rec));
    workers_[w->def().uid] = w;
    w->start();
    update_gauges();
    return true;
  }

  bool add_failed_api_pod(PodDef def, std::string reason, std::string message) override {
    if (stopping_ || workers_.contains(def.uid) || terminating_.contains(def.uid)) return false;
    log::warn("pods: api: pod {}/{} (uid {}) cannot run: {}: {}", def.ns, def.name, def.uid, reason, message);
    api_uids_.insert(def.uid);
    auto env = worker_env(def, true);
    auto w = PodWorker::create_failed(ex_, std::move(env), std::move(def), std::move(reason), std::move(message));
    workers_[w->def().uid] = w;
    update_gauges();
    return true;
  }

  bool remove_api_pod(const std::string& uid, std::optional<std::int64_t> grace) override {
    if (terminating_.contains(uid)) return true;  // on its way out already
    if (auto it = workers_.find(uid); it != workers_.end()) {
      auto w = it->second;
      log::info("pods: {}/{} (uid {}): removed from the API source, stopping{}", w->def().ns, w->def().name, uid,
                grace ? fmt::format(" (grace {}s)", *grace) : std::string());
      terminating_[uid] = w;
      workers_.erase(it);
      if (grace)
        w->stop(*grace);
      else
        w->stop();
      return true;
    }
    if (auto it = persisted_.find(uid); it != persisted_.end()) {
      auto rec = std::move(it->second);
      persisted_.erase(it);
      cleanup_orphan(std::move(rec), true);
      return true;
    }
    return false;
  }

  void api_synced(const std::set<std::string>& present) override {
    api_synced_ = true;
    std::vector<std::string> gone;
    for (const auto& [uid, w] : workers_)
      if (api_uids_.contains(uid) && !present.contains(uid)) gone.push_back(uid);
    for (const auto& uid : gone) remove_api_pod(uid, std::nullopt);
    // Records of pods that exist but were not run (terminal pods: their status stays, their
    // logs too) wait for remove_api_pod(); the others are orphans.
    for (auto it = persisted_.begin(); it != persisted_.end();) {
      if (present.contains(it->first)) {
        ++it;
        continue;
      }
      log::info("pods: {}/{} (uid {}): no such pod in the API any more, removing it", it->second.ns,
                it->second.name, it->first);
      cleanup_orphan(it->second, false);
      it = persisted_.erase(it);
    }
  }

  std::shared_ptr<PodWorker> worker(const std::string& uid) const override {
    for (const auto* m : {&workers_, &terminating_})
      if (auto it = m->find(uid); it != m->end()) return it->second;
    return nullptr;
  }

  bool has_record(const std::string& uid) const override { return persisted_.contains(uid); }

  void claims_changed() override {
    for (auto& [uid, w] : workers_) w->claims_changed();
  }

  void stop_all(std::function<void()> done) override {
    stopping_ = true;
    timer_.cancel();
    if (inotify_) inotify_->close();
    stop_done_ = std::move(done);
    for (auto& [uid, w] : workers_) w->stop();
    maybe_stopped();
  }

  void rescan() override {
    if (stopping_ || o_.manifest_dir.empty()) return;
    auto scan = scan_manifest_dir(o_.manifest_dir, o_.node_name);
    if (!scan.error.empty()) {
      if (scan.error != last_dir_error_) log::warn("pods: {}", scan.error);
      last_dir_error_ = scan.error;
      return;  // keep what runs: a transient error must not stop every pod
    }
    last_dir_error_.clear();
    objects_ = std::make_shared<std::pair<std::map<std::string, json::value>, std::map<std::string, json::value>>>(
        std::move(scan.config_maps), std::move(scan.secrets));
    std::set<std::string> desired;
    for (auto& e : scan.pods) {
      if (e.pod) {
        desired.insert(e.pod->uid);
        if (workers_.contains(e.pod->uid) || terminating_.contains(e.pod->uid)) continue;
        auto rec = persisted_.contains(e.pod->uid) ? std::optional<PodRecord>(persisted_[e.pod->uid]) : std::nullopt;
        persisted_.erase(e.pod->uid);
        log::info("pods: {}: new pod {}/{} (uid {}){}", e.file, e.pod->ns, e.pod->name, e.pod->uid,
                  rec ? ", adopting persisted state" : "");
        auto env = worker_env(*e.pod, false);
        auto w = PodWorker::create(ex_, std::move(env), std::move(*e.pod), std::move(rec));
        workers_[w->def().uid] = w;
        w->start();
        continue;
      }
      const auto& err = e.pod.error();
      std::string key = e.file + "#" + e.content_hash;
      if (reported_.insert(key).second) {
        log::error("pods: manifest {}", err.text());
        manifest_errors().inc();
      }
      if (err.name.empty()) continue;
      std::string uid = "invalid-" + static_pod_uid(json::value(e.file + e.content_hash), o_.node_name, e.file);
      desired.insert(uid);
      if (workers_.contains(uid)) continue;
      PodDef d;
      d.ns = err.ns;
      d.name = err.name;
      d.uid = uid;
      d.source_file = e.file;
      d.pod = json::object{{"apiVersion", "v1"}, {"kind", "Pod"},
                           {"metadata", json::object{{"name", d.name}, {"namespace", d.ns}, {"uid", uid},
                                                     {"annotations", json::object{{"kubernetes.io/config.source", "file"}}}}},
                           {"spec", json::object{{"containers", json::array()}}}};
      auto env = worker_env(d, false);
      auto w = PodWorker::create_failed(ex_, std::move(env), std::move(d), "InvalidManifest",
                                        err.field.empty() ? err.message : err.field + ": " + err.message);
      workers_[uid] = w;
    }
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (desired.contains(it->first) || api_uids_.contains(it->first)) {
        ++it;
        continue;
      }
      auto w = it->second;
      log::info("pods: {}/{} (uid {}): manifest removed or changed, stopping", w->def().ns, w->def().name, it->first);
      terminating_[it->first] = w;
      it = workers_.erase(it);
      w->stop();
    }
    // Persisted pods with no manifest any more: kill what remains of them (in API mode once the
    // API source has listed: the record may be an API pod's).
    if (!o_.api_source || api_synced_) {
      for (auto& [uid, rec] : persisted_) cleanup_orphan(rec, false);
      persisted_.clear();
    }
    update_gauges();
  }

  json::value pod_list() const override {
    json::array items;
    for (const auto& [uid, w] : workers_) items.push_back(w->pod_json());
    for (const auto& [uid, w] : terminating_) items.push_back(w->pod_json());
    return json::object{{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", json::object()},
                        {"items", std::move(items)}};
  }

  const PodWorker* find_pod(std::string_view ns, std::string_view name) const override {
    for (const auto* m : {&workers_, &terminating_})
      for (const auto& [uid, w] : *m)
        if (w->def().ns == ns && w->def().name == name) return w.get();
    return nullptr;
  }

  std::expected<std::string, std::string> container_log_path(std::string_view ns, std::string_view pod,
                                                             std::string_view container,
                                                             bool previous) const override {
    const auto* w = find_pod(ns, pod);
    if (w == nullptr) return std::unexpected(fmt::format("pod {}/{} not found", ns, pod));
    auto p = w->log_path(container, previous);
    if (!p) {
      if (previous)
        return std::unexpected(fmt::format("previous terminated container \"{}\" in pod \"{}\" not found", container, pod));
      return std::unexpected(fmt::format("container {} is not valid for pod {}", container, pod));
    }
    return *p;
  }

  bool container_running(std::string_view ns, std::string_view pod, std::string_view container) const override {
    const auto* w = find_pod(ns, pod);
    if (w == nullptr) return false;
    for (const auto* list : {&w->status().init, &w->status().app, &w->status().ephemeral})
      for (const auto& c : *list)
        if (c.name == container) return c.state.kind == ContainerState::Kind::kRunning;
    return false;
  }

  bool healthy() const override { return last_dir_error_.empty(); }

 private:
  WorkerEnv worker_env(const PodDef& def, bool api) {
    WorkerEnv env;
    env.runtime = &runtime_;
    env.images = &images_;
    env.store = &store_;
    env.pod_log_dir = o_.pod_log_dir;
    env.log_options = o_.log_options;
    env.timings = o_.timings;
    env.host_ip = o_.host_ip;
    auto objs = objects_;
    if (api) {
      env.lookup = o_.api_lookup;
      env.services = o_.api_services;
    } else if (o_.api_services) {
      // A static pod does not wait for the Services to be read (the kubelet's exception:
      // static pods may be what serves the API): before that it gets none.
      env.services = [services = o_.api_services]()
          -> std::expected<std::vector<std::shared_ptr<const json::value>>, std::string> {
        auto r = services();
        if (!r) return std::vector<std::shared_ptr<const json::value>>{};
        return r;
      };
    }
    if (!api) env.lookup = [objs](std::string_view kind, std::string_view ns, std::string_view name) -> std::optional<json::value> {
      if (!objs || (kind != "ConfigMap" && kind != "Secret")) return std::nullopt;
      const auto& m = kind == "ConfigMap" ? objs->first : objs->second;
      auto it = m.find(fmt::format("{}/{}", ns, name));
      if (it == m.end()) return std::nullopt;
      return it->second;
    };
    std::weak_ptr<bool> alive = alive_;
    env.on_terminated = [this, alive](const std::string& uid) {
      if (alive.expired()) return;
      // Erase later: the worker is calling us.
      asio::post(ex_, [this, alive, uid] {
        if (alive.expired()) return;
        if (auto it = terminating_.find(uid); it != terminating_.end()) {
          auto w = it->second;
          terminating_.erase(it);
          if (api_uids_.erase(uid) > 0 && o_.on_pod_terminated)
            o_.on_pod_terminated(w->def().ns, w->def().name, uid);
        }
        if (stopping_) workers_.erase(uid);
        update_gauges();
        maybe_stopped();
        if (!stopping_) rescan();  // a pod waiting for its old instance to go
      });
    };
    env.on_start_phase = [](std::string_view phase, double s) { start_phase_histogram().with({phase}).observe(s); };
    json::value ref = json::object{
        {"kind", "Pod"},
        {"apiVersion", "v1"},
        {"metadata", json::object{{"name", def.name}, {"namespace", def.ns}, {"uid", def.uid}}}};
    env.on_event = [this, alive, ref = std::move(ref)](std::string_view type, std::string_view reason,
                                                     const std::string& msg) {
      if (alive.expired()) return;
      if (type == "Warning")
        log::warn("pods: {}/{}: event {} {}: {}", get_string(ref, {"metadata", "namespace"}),
                  get_string(ref, {"metadata", "name"}), type, reason, msg);
      else
        log::debug("pods: {}/{}: event {} {}: {}", get_string(ref, {"metadata", "namespace"}),
                   get_string(ref, {"metadata", "name"}), type, reason, msg);
      if (o_.on_event) o_.on_event(ref, type, reason, msg);
    };
    env.on_status_changed = [this, alive](const std::string& uid) {
      if (!alive.expired() && o_.on_status_changed) o_.on_status_changed(uid);
    };
    if (api && o_.api_env) o_.api_env(env);
    return env;
  }

  void maybe_stopped() {
    if (!stopping_ || !stop_done_) return;
    for (auto& [uid, w] : workers_)
      if (!w->terminated()) return;
    if (!terminating_.empty()) return;
    auto d = std::move(stop_done_);
    stop_done_ = nullptr;
    d();
  }

  void update_gauges() {
    std::map<std::string, int> n{{"Pending", 0}, {"Running", 0}, {"Succeeded", 0}, {"Failed", 0}};
    for (const auto& [uid, w] : workers_) ++n[w->phase()];
    for (const auto& [p, c] : n) pods_gauge().with({p}).set(c);
  }

  void load_persisted() {
    for (auto& r : store_.load_all()) persisted_[r.uid] = std::move(r);
  }

  // Kills what remains of a pod known only by its record; `notify`: on_pod_terminated after.
  void cleanup_orphan(PodRecord rec, bool notify) {
    log::info("pods: {}/{} (uid {}): source gone while noded was down, removing the pod", rec.ns, rec.name, rec.uid);
    std::weak_ptr<bool> alive = alive_;
    asio::co_spawn(ex_, [this, alive, rec, notify]() -> asio::awaitable<void> {
      for (const auto& c : rec.containers) {
        if (!c.running || c.handle.id.empty()) continue;
        auto a = co_await runtime_.adopt_container(rec.uid, c.handle);
        if (alive.expired()) co_return;
        if (a.state == AdoptState::kRunning) {
          (void)runtime_.signal_container(c.handle.id, SIGKILL);
          co_await runtime_.wait_container(c.handle.id);
          if (alive.expired()) co_return;
        }
        runtime_.remove_container(c.handle.id);
      }
      if (rec.sandbox_created) (void)co_await runtime_.release_sandbox(rec.uid);
      if (alive.expired()) co_return;
      store_.remove(rec.uid);
      std::error_code ec;
      std::filesystem::remove_all(fmt::format("{}/{}_{}_{}", o_.pod_log_dir, rec.ns, rec.name, rec.uid), ec);
      if (notify && o_.on_pod_terminated) o_.on_pod_terminated(rec.ns, rec.name, rec.uid);
    }, asio::detached);
  }

  void watch() {
    std::weak_ptr<bool> alive = alive_;
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd >= 0 && ::inotify_add_watch(fd, o_.manifest_dir.c_str(),
                                       IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO |
                                           IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
      log::warn("pods: inotify_add_watch {}: {}: rescanning every {}ms only", o_.manifest_dir,
                std::strerror(errno), o_.rescan_interval.count());
      ::close(fd);
      fd = -1;
    }
    if (fd >= 0) {
      inotify_ = std::make_unique<asio::posix::stream_descriptor>(ex_, fd);
      asio::co_spawn(ex_, [this, alive]() -> asio::awaitable<void> {
        std::vector<char> buf(16 * 1024);
        for (;;) {
          auto [ec, n] = co_await inotify_->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
          if (alive.expired() || ec || stopping_) co_return;
          rescan();
        }
      }, asio::detached);
    }
    asio::co_spawn(ex_, [this, alive]() -> asio::awaitable<void> {
      for (;;) {
        // With inotify the periodic rescan is only a safety net (events lost on overflow).
        timer_.expires_after(inotify_ ? o_.rescan_interval * 30 : o_.rescan_interval);
        co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (alive.expired() || stopping_) co_return;
        rescan();
      }
    }, asio::detached);
  }

  asio::any_io_executor ex_;
  PodManagerOptions o_;
  ContainerRuntime& runtime_;
  ImageService& images_;
  PodStateStore store_;
  asio::steady_timer timer_;
  std::unique_ptr<asio::posix::stream_descriptor> inotify_;
  std::shared_ptr<bool> alive_;
  std::map<std::string, std::shared_ptr<PodWorker>> workers_, terminating_;
  std::map<std::string, PodRecord> persisted_;
  std::set<std::string> reported_;
  std::set<std::string> api_uids_;  // workers from the API source
  bool api_synced_ = false;
  std::shared_ptr<std::pair<std::map<std::string, json::value>, std::map<std::string, json::value>>> objects_;
  std::string last_dir_error_;
  bool stopping_ = false;
  std::function<void()> stop_done_;
};

}  // namespace

std::unique_ptr<PodManager> make_pod_manager(asio::any_io_executor ex, PodManagerOptions o,
                                             ContainerRuntime& runtime, ImageService& images) {
  return std::make_unique<PodManagerImpl>(ex, std::move(o), runtime, images);
}

// --- streams lookups ---
std::expected<PodManager::StreamTarget, PodManager::StreamLookupError> PodManager::stream_target(
    std::string_view ns, std::string_view pod, std::string_view container) const {
  const PodWorker* w = find_pod(ns, pod);
  if (w == nullptr) return std::unexpected(StreamLookupError{404, "pod does not exist"});
  StreamTarget t;
  t.pod_uid = w->def().uid;
  if (container.empty()) return t;
  const ContainerStatus* found = nullptr;
  for (const auto* list : {&w->status().app, &w->status().init, &w->status().ephemeral})
    for (const auto& c : *list)
      if (c.name == container) found = &c;
  if (found == nullptr)
    return std::unexpected(StreamLookupError{
        400, fmt::format("container {} is not valid for pod {}", container, pod)});
  t.running = found->state.kind == ContainerState::Kind::kRunning;
  t.container_id = t.running ? found->state.container_id : std::string();
  if (t.container_id.empty()) t.container_id = found->container_id;
  if (const ContainerDef* def = w->container_def(container)) {
    t.spec_stdin = def->stdin;
    t.spec_tty = def->tty;
  }
  if (t.running) t.console = w->console(container);
  return t;
}
// --- end streams lookups ---

}  // namespace podwarp::noded::pods
