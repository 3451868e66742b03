#include "pods/pod_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "logs/log_pump.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::noded::pods {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using K = ContainerState::Kind;
using namespace boost::asio::experimental::awaitable_operators;

struct PodWorker::Run {
  const ContainerDef* def = nullptr;
  bool init = false;
  bool ephemeral = false;  // runs once, has no part in the phase or readiness
  size_t index = 0;  // into status_.init / status_.app / status_.ephemeral
  ContainerRecord* rec = nullptr;
  bool running = false;
  bool adopt_running = false;  // adopted: wait on it instead of starting
  std::optional<ExitInfo> adopt_exit;  // adopted: exited while noded was down
  std::string id;
  ImageInfo image;
  bool image_ready = false;
  milliseconds backoff{0};
  std::chrono::steady_clock::time_point started;
  std::shared_ptr<probes::ProbeWorker> live, ready, startup;
  bool started_ok = false;  // startup probe passed (or none)
  std::string kill_reason;
  std::shared_ptr<logs::CriLogWriter> log;
  std::shared_ptr<console::Console> console;  // spec stdin/tty, of the current run
};

namespace {
std::string pod_ref(const PodDef& d) { return fmt::format("{}_{}({})", d.name, d.ns, d.uid); }
}  // namespace


namespace {

// Creates (if needed) a FIFO and returns {read end (nonblocking, for the loop), O_RDWR end for
// the container}. The O_RDWR end keeps a reader on the pipe for as long as the container lives,
// so the container never sees EPIPE, even while noded is down.
std::expected<std::pair<int, int>, std::string> open_fifo(const std::string& path, bool for_container) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST)
    return std::unexpected(fmt::format("mkfifo {}: {}", path, std::strerror(errno)));
  int w = -1;
  if (for_container) {
    w = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (w < 0) return std::unexpected(fmt::format("open {}: {}", path, std::strerror(errno)));
  }
  int r = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (r < 0) {
    if (w >= 0) ::close(w);
    return std::unexpected(fmt::format("open {}: {}", path, std::strerror(errno)));
  }
  return std::pair{r, w};
}
}  // namespace

PodWorker::PodWorker(asio::any_io_executor ex, WorkerEnv env, PodDef def)
    : ex_(ex), env_(std::move(env)), def_(std::move(def)), changed_(ex),
      seen_(std::chrono::steady_clock::now()) {
  changed_.expires_at(asio::steady_timer::time_point::max());
}

PodWorker::~PodWorker() = default;

std::shared_ptr<PodWorker> PodWorker::create(asio::any_io_executor ex, WorkerEnv env, PodDef def,
                                             std::optional<PodRecord> adopted) {
  auto w = std::make_shared<PodWorker>(ex, std::move(env), std::move(def));
  auto& d = w->def_;
  w->record_.uid = d.uid;
  w->record_.ns = d.ns;
  w->record_.name = d.name;
  w->record_.source_file = d.source_file;
  if (adopted) w->record_.sandbox_created = adopted->sandbox_created;
  w->status_.host_ip = w->env_.host_ip;
  PodRecord* from = adopted ? &*adopted : nullptr;
  for (const auto& c : d.init_containers) w->add_run(c, true, false, from);
  for (const auto& c : d.containers) w->add_run(c, false, false, from);
  for (const auto& c : d.ephemeral_containers) w->add_run(c, false, true, from);
  return w;
}

// A container's supervisor state, persisted record (taken over from `adopted` when it has one)
// and status entry.
PodWorker::Run& PodWorker::add_run(const ContainerDef& c, bool init, bool ephemeral,
                                   PodRecord* adopted) {
  ContainerRecord rec;
  rec.name = c.name;
  rec.init = init;
  rec.ephemeral = ephemeral;
  if (adopted)
    if (auto* old = adopted->find(c.name, init)) rec = *old;
  record_.containers.push_back(rec);
  auto r = std::make_unique<Run>();
  r->def = &c;
  r->init = init;
  r->ephemeral = ephemeral;
  auto& statuses = ephemeral ? status_.ephemeral : init ? status_.init : status_.app;
  r->index = statuses.size();
  r->rec = &record_.containers.back();
  ContainerStatus cs;
  cs.name = c.name;
  cs.image = c.image;
  cs.known = true;
  cs.state.kind = K::kWaiting;
  cs.state.reason = init || ephemeral || def_.init_containers.empty() ? "ContainerCreating" : "PodInitializing";
  cs.restart_count = r->rec->restart_count;
  cs.image_id = r->rec->image_id;
  cs.last_state = r->rec->last_termination;
  if (!init && !ephemeral) cs.started = false;
  statuses.push_back(cs);
  runs_.push_back(std::move(r));
  return *runs_.back();
}

void PodWorker::add_ephemeral_containers(const json::value& pod) {
  const json::value* list = find_path(pod, {"spec", "ephemeralContainers"});
  std::size_t n = list && list->is_array() ? list->as_array().size() : 0;
  if (n <= def_.ephemeral_containers.size() || failed_only_ || stopping_ || status_.terminal) return;
  auto defs = ephemeral_containers_of(pod);
  if (!defs) {
    log::warn("pods: {}: ephemeral containers: {}", pod_ref(def_), defs.error().text());
    return;
  }
  for (auto& c : *defs) {
    bool known = false;
    for (const auto& r : runs_) known = known || r->def->name == c.name;
    if (known) continue;
    log::info("pods: {}: ephemeral container {} added", pod_ref(def_), c.name);
    def_.ephemeral_containers.push_back(std::move(c));
    Run& r = add_run(def_.ephemeral_containers.back(), false, true, nullptr);
    if (ephemeral_ready_) start_ephemeral(r);
  }
  persist();
  changed();
}

// Ephemeral containers start once the sandbox and volumes are up, init done or not (as the
// kubelet), and are never restarted.
void PodWorker::start_ephemeral(Run& r) {
  auto self = shared_from_this();
  Run* rp = &r;
  asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
    co_await self->supervise(*rp);
    self->notify();
  }, asio::detached);
}

std::shared_ptr<PodWorker> PodWorker::create_failed(asio::any_io_executor ex, WorkerEnv env,
                                                    PodDef def, std::string reason,
                                                    std::string message) {
  auto w = std::make_shared<PodWorker>(ex, std::move(env), std::move(def));
  w->failed_only_ = true;
  w->status_.failed_reason = std::move(reason);
  w->status_.failed_message = std::move(message);
  w->status_.terminal = true;
  w->main_done_ = true;
  w->changed();
  return w;
}

ContainerStatus& PodWorker::st(Run& r) {
  return (r.ephemeral ? status_.ephemeral : r.init ? status_.init : status_.app)[r.index];
}

std::string PodWorker::fifo_dir(const Run& r) const {
  return fmt::format("{}/containers/{}{}", env_.store->pod_dir(def_.uid), r.init ? "init-" : "",
                     r.def->name);
}

// A run's stdio. Output goes through FIFOs that outlive noded (see open_fifo); with spec tty
// the container's 0/1/2 are instead the slave of its console's pty, and its output (stdout and
// stderr merged, as upstream) is read from the master. Spec stdin: fd 0 is the console's pipe.
std::expected<PodWorker::Stdio, std::string> PodWorker::open_stdio(Run& r) {
  auto con = console::Console::open(
      {.tty = r.def->tty, .stdin = r.def->stdin, .stdin_once = r.def->stdin_once});
  if (!con) return std::unexpected(con.error());
  r.console = std::move(*con);
  Stdio io;
  if (r.console && r.console->tty()) {
    io.out_r = r.console->dup_output();
    if (io.out_r < 0) return std::unexpected(fmt::format("dup pty master: {}", std::strerror(errno)));
    io.out_w = io.err_w = r.console->child_fd();
    return io;
  }
  std::error_code ec;
  fs::create_directories(fifo_dir(r), ec);
  auto out = open_fifo(fifo_dir(r) + "/stdout", true);
  if (!out) return std::unexpected(out.error());
  auto err = open_fifo(fifo_dir(r) + "/stderr", true);
  if (!err) {
    ::close(out->first);
    ::close(out->second);
    return std::unexpected(err.error());
  }
  io.out_r = out->first;
  io.out_w = out->second;
  io.err_r = err->first;
  io.err_w = err->second;
  return io;
}

const ContainerDef* PodWorker::container_def(std::string_view container) const {
  for (const auto& r : runs_)
    if (r->def->name == container) return r->def;
  return nullptr;
}

std::shared_ptr<console::Console> PodWorker::console(std::string_view container) const {
  for (const auto& r : runs_)
    if (r->def->name == container) return r->running ? r->console : nullptr;
  return nullptr;
}

void PodWorker::start() {
  if (failed_only_) return;
  auto self = shared_from_this();
  asio::co_spawn(ex_, [self]() -> asio::awaitable<void> { co_await self->run_pod(); }, asio::detached);
}

void PodWorker::claims_changed() {
  if (!claim_wait_) return;
  for (auto* t : sleepers_) t->cancel();
}

void PodWorker::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto* t : sleepers_) t->cancel();
  notify();
  if (failed_only_) {
    terminated_ = true;
    if (env_.on_terminated) env_.on_terminated(def_.uid);
    return;
  }
  auto self = shared_from_this();
  asio::co_spawn(ex_, [self]() -> asio::awaitable<void> { co_await self->terminate(); }, asio::detached);
}

void PodWorker::notify() {
  changed_.cancel();
  if (env_.on_status_changed) env_.on_status_changed(def_.uid);
}

asio::awaitable<void> PodWorker::wait_changed() {
  // changed_ never expires; notify() cancels every pending wait on it.
  co_await changed_.async_wait(asio::as_tuple(asio::use_awaitable));
}

asio::awaitable<bool> PodWorker::sleep(milliseconds d) {
  if (halted()) co_return false;
  asio::steady_timer t(ex_, d);
  sleepers_.push_back(&t);
  co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  std::erase(sleepers_, &t);
  co_return !halted();
}

void PodWorker::trace(std::string_view phase) {
  if (!traced_.insert(std::string(phase)).second) return;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - seen_).count();
  if (env_.on_start_phase) env_.on_start_phase(phase, s);
}

void PodWorker::changed() {
  auto phase = compute_phase(def_, status_);
  auto conds = compute_conditions(def_, status_, phase);
  update_condition_times(status_, conds, std::chrono::system_clock::now());
  for (const auto& c : conds)
    if (c.type == "Ready" && c.status) trace("ready");
  notify();
}

void PodWorker::persist() {
  if (failed_only_ || env_.store == nullptr) return;
  if (auto r = env_.store->save(record_); !r) log::warn("pods: {}: persist state: {}", pod_ref(def_), r.error());
}

json::value PodWorker::pod_json() const {
  json::value v = def_.pod;
  if (!v.is_object()) v = json::object();
  if (!def_.ephemeral_containers.empty()) {
    // Those added after the pod came (the spec it came with does not list them).
    json::array list;
    for (const auto& c : def_.ephemeral_containers)
      if (c.spec_json) list.push_back(*c.spec_json);
    ensure_object(v.as_object(), "spec")["ephemeralContainers"] = std::move(list);
  }
  v.as_object()["status"] = render_pod_status(def_, status_);
  return v;
}

std::optional<std::string> PodWorker::log_path(std::string_view container, bool previous) const {
  for (const auto& r : runs_) {
    if (r->def->name != container) continue;
    int n = r->rec->restart_count - (previous ? 1 : 0);
    if (n < 0) return std::nullopt;
    return logs::container_log_path(env_.pod_log_dir, def_.ns, def_.name, def_.uid, container, n);
  }
  return std::nullopt;
}

bool PodWorker::should_restart(const Run& r, int exit_code) const {
  if (halted() || r.ephemeral) return false;
  if (def_.restart_policy == "Always") return true;
  if (def_.restart_policy == "OnFailure") return exit_code != 0;
  return false;
}

milliseconds PodWorker::next_backoff(Run& r) {
  auto ran = std::chrono::steady_clock::now() - r.started;
  if (r.running || ran >= env_.timings.backoff_reset) r.backoff = milliseconds(0);
  r.backoff = r.backoff.count() == 0 ? env_.timings.backoff_base
                                     : std::min(r.backoff * 2, env_.timings.backoff_max);
  return r.backoff;
}

probes::Target PodWorker::probe_target(Run& r) {
  probes::Target t;
  t.netns_path = netns_;
  t.pod_ip = status_.pod_ip.empty() ? "127.0.0.1" : status_.pod_ip;
  std::weak_ptr<PodWorker> weak = shared_from_this();
  Run* rp = &r;
  t.exec = [weak, rp](const std::vector<std::string>& argv, milliseconds timeout) -> asio::awaitable<probes::Outcome> {
    auto self = weak.lock();
    if (!self || rp->id.empty()) co_return probes::Outcome{false, "container not running"};
    auto res = co_await self->env_.runtime->exec_in_container(rp->id, argv, timeout);
    if (res.timed_out) co_return probes::Outcome{false, fmt::format("command timed out after {}ms", timeout.count())};
    co_return probes::Outcome{res.exit_code == 0, res.output};
  };
  return t;
}

void PodWorker::start_probes(Run& r) {
  if (r.init || r.ephemeral) return;  // an ephemeral container is never ready, as upstream
  auto self = weak_from_this();
  Run* rp = &r;
  r.started_ok = !r.def->startup.has_value();
  auto& cs = st(r);
  cs.started = r.started_ok;
  cs.ready = r.started_ok && !r.def->readiness.has_value();
  auto gate = [rp]() { return rp->started_ok && rp->running; };
  if (r.def->startup) {
    probes::ProbeWorker::Options o{probes::ProbeType::kStartup, *r.def->startup, probe_target(r),
                                   env_.timings.second, nullptr, nullptr};
    o.on_change = [self, rp](bool ok, const std::string& msg) {
      auto w = self.lock();
      if (!w || !rp->running) return;
      if (ok) {
        rp->started_ok = true;
        w->st(*rp).started = true;
        if (!rp->def->readiness) w->st(*rp).ready = true;
      } else {
        log::info("pods: {}: container {} failed startup probe, will be restarted: {}", pod_ref(w->def_), rp->def->name, msg);
        if (w->env_.on_event) {
          w->env_.on_event("Warning", "Unhealthy", fmt::format("Startup probe failed: {}", msg));
          w->env_.on_event("Normal", "Killing",
                           fmt::format("Container {} failed startup probe, will be restarted", rp->def->name));
        }
        auto grace = rp->def->startup->termination_grace_period_seconds.value_or(w->def_.grace_seconds);
        asio::co_spawn(w->ex_, [w, rp, grace]() -> asio::awaitable<void> {
          co_await w->kill_container(*rp, grace, "startup probe failed");
        }, asio::detached);
      }
      w->changed();
    };
    r.startup = probes::ProbeWorker::start(ex_, std::move(o));
  }
  if (r.def->liveness) {
    probes::ProbeWorker::Options o{probes::ProbeType::kLiveness, *r.def->liveness, probe_target(r),
                                   env_.timings.second, nullptr, gate};
    o.on_change = [self, rp](bool ok, const std::string& msg) {
      auto w = self.lock();
      if (!w || ok || !rp->running) return;
      log::info("pods: {}: container {} failed liveness probe, will be restarted: {}", pod_ref(w->def_), rp->def->name, msg);
      if (w->env_.on_event) {
        w->env_.on_event("Warning", "Unhealthy", fmt::format("Liveness probe failed: {}", msg));
        w->env_.on_event("Normal", "Killing",
                         fmt::format("Container {} failed liveness probe, will be restarted", rp->def->name));
      }
      auto grace = rp->def->liveness->termination_grace_period_seconds.value_or(w->def_.grace_seconds);
      asio::co_spawn(w->ex_, [w, rp, grace]() -> asio::awaitable<void> {
        co_await w->kill_container(*rp, grace, "liveness probe failed");
      }, asio::detached);
    };
    r.live = probes::ProbeWorker::start(ex_, std::move(o));
  }
  if (r.def->readiness) {
    probes::ProbeWorker::Options o{probes::ProbeType::kReadiness, *r.def->readiness, probe_target(r),
                                   env_.timings.second, nullptr, gate};
    o.on_change = [self, rp](bool ok, const std::string& msg) {
      auto w = self.lock();
      if (!w || !rp->running) return;
      if (!ok && w->env_.on_event)
        w->env_.on_event("Warning", "Unhealthy", fmt::format("Readiness probe failed: {}", msg));
      w->st(*rp).ready = ok;
      w->changed();
    };
    r.ready = probes::ProbeWorker::start(ex_, std::move(o));
  }
}

void PodWorker::stop_probes(Run& r) {
  for (auto* p : {&r.live, &r.ready, &r.startup})
    if (*p) {
      (*p)->stop();
      p->reset();
    }
}

void PodWorker::record_exit(Run& r, const ExitInfo& e) {
  auto& cs = st(r);
  ContainerState t;
  t.kind = K::kTerminated;
  t.exit_code = e.exit_code;
  t.signal = e.signal;
  t.started_at = r.rec->started_at;
  t.finished_at = e.finished_at == WallTime{} ? std::chrono::system_clock::now() : e.finished_at;
  t.container_id = r.id;
  if (!e.code_known) {
    t.exit_code = 137;
    t.reason = "ContainerStatusUnknown";
    t.message = "The container could not be located when the pod was terminated";
  } else if (e.oom_killed) {
    t.reason = "OOMKilled";
  } else {
    t.reason = e.exit_code == 0 ? "Completed" : "Error";
  }
  cs.state = t;
  cs.ready = false;
  if (!r.init && !r.ephemeral) cs.started = false;
  r.rec->last_termination = t;
  r.rec->running = false;
  r.running = false;
  persist();
  changed();
}

asio::awaitable<void> PodWorker::run_pod() {
  auto self = shared_from_this();
  // The API pod's startTime when it has one (noded restarted, the pod is adopted), as the
  // kubelet keeps it; else now.
  status_.start_time = std::chrono::system_clock::now();
  if (auto st = parse_rfc3339(get_string(def_.pod, {"status", "startTime"})); st && *st < status_.start_time)
    status_.start_time = *st;
  changed();
  if (def_.active_deadline_seconds)
    asio::co_spawn(ex_, [self]() -> asio::awaitable<void> { co_await self->enforce_deadline(); },
                   asio::detached);
  // SANDBOX
  milliseconds retry = env_.timings.backoff_base;
  for (;;) {
    if (stopping_) co_return;
    SandboxRequest req{def_.uid, def_.ns, def_.name, def_.hostname, &def_.pod};
    auto sb = co_await env_.runtime->create_sandbox(req);
    if (stopping_) {
      if (sb) sandbox_up_ = true;
      main_done_ = true;
      notify();
      co_return;
    }
    if (sb) {
      netns_ = sb->netns_path;
      status_.pod_ip = sb->pod_ip;
      break;
    }
    log::warn("pods: {}: create sandbox: {}", pod_ref(def_), sb.error());
    for (auto& r : runs_) st(*r).state.message = "create sandbox: " + sb.error();
    changed();
    if (!co_await sleep(retry)) break;
    retry = std::min(retry * 2, env_.timings.backoff_max);
  }
  if (stopping_) {
    main_done_ = true;
    notify();
    co_return;
  }
  if (deadline_exceeded_) {  // before any sandbox came up: terminal at once
    auto rel = co_await env_.runtime->release_sandbox(def_.uid);
    if (!rel) log::warn("pods: {}: release sandbox: {}", pod_ref(def_), rel.error());
    status_.terminal = true;
    main_done_ = true;
    log::info("pods: {}: pod is terminal ({})", pod_ref(def_), compute_phase(def_, status_));
    changed();
    co_return;
  }
  sandbox_up_ = true;
  status_.sandbox_ready = true;
  record_.sandbox_created = true;
  // ADOPT: containers that were running when the previous noded stopped.
  for (auto& r : runs_) {
    if (!r->rec->running || r->rec->handle.id.empty()) continue;
    auto a = co_await env_.runtime->adopt_container(def_.uid, r->rec->handle);
    switch (a.state) {
      case AdoptState::kRunning:
        r->adopt_running = true;
        log::info("pods: {}: re-adopted running container {} (pid {})", pod_ref(def_), r->def->name, r->rec->handle.pid);
        break;
      case AdoptState::kExited:
        r->adopt_exit = a.exit;
        break;
      case AdoptState::kGone:
        r->adopt_exit = ExitInfo{false, 137, 0, false, std::chrono::system_clock::now()};
        break;
    }
  }
  persist();
  trace("sandbox_ready");
  changed();
  // VOLUMES
  retry = env_.timings.backoff_base;
  for (;;) {
    if (stopping_) break;
    auto err = co_await sync_volumes(false);
    if (stopping_) break;
    if (!err) {
      for (auto& r : runs_) st(*r).state.message.clear();
      break;
    }
    log::warn("pods: {}: {}", pod_ref(def_), *err);
    for (auto& r : runs_) st(*r).state.message = *err;
    changed();
    // A claim that is missing or not bound yet (a WaitForFirstConsumer volume is provisioned
    // once this pod has its node) is looked up again soon, in the informer cache, as the
    // kubelet's volume manager polls; other failures back off.
    const bool claim_wait = err->find("to be bound") != std::string::npos ||
                            err->find("persistentvolumeclaim \"") != std::string::npos;
    // (claims_changed() ends a claim wait early.)
    claim_wait_ = claim_wait;
    const bool slept = co_await sleep(claim_wait ? std::min(retry, milliseconds(500)) : retry);
    claim_wait_ = false;
    if (!slept) break;
    if (!claim_wait) retry = std::min(retry * 2, env_.timings.backoff_max);
  }
  if (!stopping_) {
    asio::co_spawn(ex_, [self]() -> asio::awaitable<void> { co_await self->refresh_volumes(); },
                   asio::detached);
  }
  // EPHEMERAL: added ones run from here on
  ephemeral_ready_ = !stopping_;
  if (ephemeral_ready_)
    for (auto& r : runs_)
      if (r->ephemeral) start_ephemeral(*r);
  // INIT
  bool init_ok = !stopping_;
  for (auto& r : runs_) {
    if (!init_ok) break;
    if (!r->init) continue;
    init_ok = co_await run_init(*r);
  }
  // RUNNING
  if (init_ok && !stopping_) {
    for (auto& r : runs_) {
      if (r->init || r->ephemeral) continue;
      ++active_supervisors_;
      Run* rp = r.get();
      asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
        co_await self->supervise(*rp);
        --self->active_supervisors_;
        self->notify();
      }, asio::detached);
    }
    while (active_supervisors_ > 0) co_await wait_changed();
  }
  if (!stopping_) {
    // Terminal: nothing will start again. Ephemeral containers still running are stopped (they
    // end with the pod, as the kubelet's); then release what the pod holds; keep its status.
    ephemeral_ready_ = false;
    for (auto& r : runs_) {
      if (!r->ephemeral || !r->running) continue;
      Run* rp = r.get();
      asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
        co_await self->kill_container(*rp, self->def_.grace_seconds, "stop");
      }, asio::detached);
    }
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& r : runs_) busy = busy || (r->ephemeral && r->running);
      if (busy) co_await wait_changed();
    }
    status_.terminal = true;
    status_.sandbox_ready = false;
    teardown_volumes(def_, env_.store->pod_dir(def_.uid));
    auto rel = co_await env_.runtime->release_sandbox(def_.uid);
    if (!rel) log::warn("pods: {}: release sandbox: {}", pod_ref(def_), rel.error());
    sandbox_up_ = false;
    log::info("pods: {}: pod is terminal ({})", pod_ref(def_), compute_phase(def_, status_));
    changed();
  }
  main_done_ = true;
  notify();
}

WallTime token_refresh_at(WallTime issued, WallTime expiration) {
  auto ttl = expiration - issued;
  auto at = issued + ttl * 8 / 10;
  auto max = issued + std::chrono::hours(24);
  return std::min(at, max);
}

VolumeInputs PodWorker::volume_inputs() const {
  VolumeInputs in;
  if (!env_.host_ip.empty()) in.downward.host_ips = {env_.host_ip};
  if (!status_.pod_ip.empty()) in.downward.pod_ips = {status_.pod_ip};
  in.downward.node_allocatable = env_.node_allocatable;
  for (const auto& [k, t] : tokens_) in.tokens[k] = t.token;
  return in;
}

asio::awaitable<std::optional<std::string>> PodWorker::sync_volumes(bool refresh) {
  auto self = shared_from_this();
  std::optional<std::string> first;
  auto failed = [&](const std::string& volume, const std::string& msg) {
    std::string text = fmt::format("MountVolume.SetUp failed for volume \"{}\" : {}", volume, msg);
    if (env_.on_event) env_.on_event("Warning", "FailedMount", text);
    if (!first) first = text;
  };
  for (const auto& v : def_.volumes) {
    if (refresh && !volume_refreshes(v)) continue;
    bool token_ok = true;
    for (const auto& src : v.sources) {
      if (src.kind != ProjectionSource::Kind::kServiceAccountToken) continue;
      auto key = token_key(v.name, src.path);
      auto now = std::chrono::system_clock::now();
      if (auto it = tokens_.find(key); it != tokens_.end() && now < it->second.refresh_at) continue;
      std::expected<ServiceAccountToken, std::string> t =
          std::unexpected(std::string("no service-account token source on this node"));
      if (env_.tokens) {
        ServiceAccountTokenRequest req{def_.ns, def_.service_account, src.audience,
                                       src.expiration_seconds, def_.name, def_.uid};
        t = co_await env_.tokens(req);
        if (stopping_) co_return first;
      }
      if (!t) {
        // A refresh that fails keeps the current token (still valid for 20% of its TTL).
        failed(v.name, "failed to fetch token: " + t.error());
        token_ok = false;
        continue;
      }
      auto issued = std::chrono::system_clock::now();
      auto exp = t->expiration == WallTime{} ? issued + std::chrono::seconds(src.expiration_seconds)
                                             : t->expiration;
      tokens_[key] = TokenState{t->token, token_refresh_at(issued, exp)};
    }
    if (!token_ok && (!refresh || !volumes_.contains(v.name))) continue;
    if (!token_ok) {
      bool have_all = true;
      for (const auto& src : v.sources)
        if (src.kind == ProjectionSource::Kind::kServiceAccountToken)
          have_all = have_all && tokens_.contains(token_key(v.name, src.path));
      if (!have_all) continue;
    }
    auto p = prepare_volume(def_, v, env_.store->pod_dir(def_.uid), env_.lookup, volume_inputs());
    if (!p) {
      failed(v.name, p.error());
      continue;
    }
    volumes_[v.name] = *p;
  }
  co_return first;
}

asio::awaitable<void> PodWorker::refresh_volumes() {
  auto self = shared_from_this();
  bool any = false;
  for (const auto& v : def_.volumes) any = any || volume_refreshes(v);
  if (!any) co_return;
  while (co_await sleep(env_.timings.volume_resync)) {
    if (status_.terminal || main_done_) co_return;
    auto err = co_await sync_volumes(true);
    if (err) log::warn("pods: {}: refresh: {}", pod_ref(def_), *err);
  }
}

asio::awaitable<bool> PodWorker::run_init(Run& r) {
  auto& cs = st(r);
  // Adopted: completed before, or still running.
  if (!r.rec->running && r.rec->last_termination && r.rec->last_termination->exit_code == 0 &&
      !r.rec->handle.id.empty()) {
    cs.state = *r.rec->last_termination;
    cs.last_state.reset();
    changed();
    co_return true;
  }
  for (;;) {
    auto e = co_await run_once(r);
    if (!e) co_return false;  // stopping
    if (e->exit_code == 0 && e->code_known) co_return true;
    if (def_.restart_policy == "Never" || halted()) co_return false;
    auto d = enter_crash_loop_backoff(r);
    if (!co_await sleep(d)) co_return false;
  }
}

// A failed container waits in CrashLoopBackOff: the state, the BackOff event and the restart
// count are recorded before the wait; returns how long to wait.
std::chrono::milliseconds PodWorker::enter_crash_loop_backoff(Run& r) {
  auto& cs = st(r);
  auto d = next_backoff(r);
  cs.last_state = cs.state;
  cs.state = ContainerState{K::kWaiting, "CrashLoopBackOff",
                            fmt::format("back-off {} restarting failed container={} pod={}",
                                        go_duration(d), r.def->name, pod_ref(def_))};
  if (env_.on_event)
    env_.on_event("Warning", "BackOff",
                  fmt::format("Back-off {} restarting failed container {} in pod {}", go_duration(d),
                              r.def->name, pod_ref(def_)));
  ++r.rec->restart_count;
  cs.restart_count = r.rec->restart_count;
  persist();
  changed();
  return d;
}

asio::awaitable<void> PodWorker::supervise(Run& r) {
  auto& cs = st(r);
  // Adopted and exited earlier (before noded stopped): apply the policy to that exit.
  if (!r.rec->running && r.rec->last_termination && !r.rec->handle.id.empty() && !r.adopt_running &&
      !r.adopt_exit) {
    if (!should_restart(r, r.rec->last_termination->exit_code)) {
      cs.state = *r.rec->last_termination;
      changed();
      co_return;
    }
  }
  for (;;) {
    auto e = co_await run_once(r);
    if (!e || stopping_) co_return;
    if (!should_restart(r, e->code_known ? e->exit_code : 137)) co_return;
    auto d = enter_crash_loop_backoff(r);
    if (!co_await sleep(d)) co_return;
  }
}

// One run of a container: image, start, wait for exit. nullopt: stopped before it started.
asio::awaitable<std::optional<ExitInfo>> PodWorker::run_once(Run& r) {
  auto& cs = st(r);
  if (r.adopt_running || r.adopt_exit) {
    bool running = r.adopt_running;
    r.adopt_running = false;
    if (!running) {
      auto e = *r.adopt_exit;
      r.adopt_exit.reset();
      r.id = r.rec->handle.id;
      record_exit(r, e);
      co_return e;
    }
    co_return co_await watch(r, true);
  }
  milliseconds config_retry = env_.timings.backoff_base;
  std::expected<ContainerHandle, std::string> h = std::unexpected(std::string());
  for (;;) {  // until started; CreateContainerConfigError waits and tries again
  // IMAGE
  milliseconds retry = env_.timings.backoff_base;
  for (;;) {
    if (halted()) co_return std::nullopt;
    if (env_.on_event && r.def->pull_policy == PullPolicy::kAlways)
      env_.on_event("Normal", "Pulling", fmt::format("Pulling image \"{}\"", r.def->image));
    std::expected<ImageInfo, std::string> img = std::unexpected(std::string());
    if (def_.image_pull_secrets.empty()) {
      img = co_await env_.images->ensure_image(r.def->image, r.def->pull_policy);
    } else {
      ImagePullRequest preq;
      preq.image = r.def->image;
      preq.policy = r.def->pull_policy;
      std::vector<std::string> missing;
      for (const auto& n : def_.image_pull_secrets) {
        auto sec = env_.lookup ? env_.lookup("Secret", def_.ns, n) : std::nullopt;
        if (sec)
          preq.pull_secrets.push_back(std::move(*sec));
        else
          missing.push_back(n);
      }
      if (!missing.empty() && env_.on_event) {
        std::string names;
        for (const auto& n : missing) names += (names.empty() ? "" : ", ") + n;
        env_.on_event("Warning", "FailedToRetrieveImagePullSecret",
                      fmt::format("Unable to retrieve some image pull secrets ({}); attempting to "
                                  "pull the image may not succeed.", names));
      }
      img = co_await env_.images->ensure_image_with_secrets(preq);
    }
    if (halted()) co_return std::nullopt;
    if (img) {
      r.image = std::move(*img);
      cs.image_id = r.image.image_id;
      r.rec->image_id = r.image.image_id;
      trace("image_ready");
      if (env_.on_event) {
        if (r.def->pull_policy == PullPolicy::kAlways)
          env_.on_event("Normal", "Pulled", fmt::format("Successfully pulled image \"{}\"", r.def->image));
        else
          env_.on_event("Normal", "Pulled",
                        fmt::format("Container image \"{}\" already present on machine", r.def->image));
      }
      break;
    }
    bool never = img.error().starts_with("ErrImageNeverPull");
    cs.state = ContainerState{K::kWaiting, never ? "ErrImageNeverPull" : "ErrImagePull", img.error()};
    log::warn("pods: {}: container {}: pull {}: {}", pod_ref(def_), r.def->name, r.def->image, img.error());
    changed();
    // ErrImagePull shows first, then ImagePullBackOff until the next attempt.
    if (!co_await sleep(retry / 2)) co_return std::nullopt;
    if (!never)
      cs.state = ContainerState{K::kWaiting, "ImagePullBackOff",
                                fmt::format("Back-off pulling image \"{}\"", r.def->image)};
    changed();
    if (!co_await sleep(retry - retry / 2)) co_return std::nullopt;
    retry = std::min(retry * 2, env_.timings.backoff_max);
  }
  // LOGS + START
  auto io = open_stdio(r);
  if (!io) {
    ExitInfo e{true, 128, 0, false, {}};
    r.id.clear();
    record_exit(r, e);
    cs.state.reason = "ContainerCannotRun";
    cs.state.message = io.error();
    co_return e;
  }
  r.log = std::make_shared<logs::CriLogWriter>();
  auto lp = logs::container_log_path(env_.pod_log_dir, def_.ns, def_.name, def_.uid, r.def->name, r.rec->restart_count);
  if (auto o = r.log->open(lp, env_.log_options); !o) log::warn("pods: {}: {}", pod_ref(def_), o.error());
  ContainerStartRequest req;
  req.pod_uid = def_.uid;
  req.pod_namespace = def_.ns;
  req.pod_name = def_.name;
  req.container_name = r.def->name;
  req.is_init = r.init;
  req.attempt = r.rec->restart_count;
  req.pod = &def_.pod;
  req.container = &def_.container_json(*r.def, r.init);
  req.image = &r.image;
  req.mounts = container_mounts(*r.def, volumes_, def_.volumes);
  req.stdout_fd = io->out_w;
  req.stderr_fd = io->err_w;
  if (r.console) {
    req.stdin_fd = r.console->child_fd();
    req.tty = r.console->tty();
  }
  req.lookup = &env_.lookup;
  req.services = &env_.services;
  if (!env_.host_ip.empty()) req.host_ips = {env_.host_ip};
  if (!status_.pod_ip.empty()) req.pod_ips = {status_.pod_ip};
  req.node_allocatable = env_.node_allocatable;
  req.on_event = env_.on_event;
  std::string target_error;
  if (!r.def->target_container.empty()) {
    for (const auto& o : runs_)
      if (o->def->name == r.def->target_container && o->running) req.target_container_id = o->id;
    if (req.target_container_id.empty())
      target_error = fmt::format("target container {} is not running", r.def->target_container);
  }
  if (target_error.empty()) {
    h = co_await env_.runtime->start_container(req);
  } else {
    h = std::unexpected(target_error);
  }
  if (r.console && r.console->tty()) {
    r.console->started();  // the pty slave: the container holds its own now
  } else {
    ::close(io->out_w);
    ::close(io->err_w);
    if (r.console) r.console->started();
  }
  asio::co_spawn(ex_, logs::pump(io->out_r, r.log, logs::Stream::kStdout), asio::detached);
  if (io->err_r >= 0)
    asio::co_spawn(ex_, logs::pump(io->err_r, r.log, logs::Stream::kStderr), asio::detached);
  if (!h && h.error().starts_with(kCreateContainerConfigError)) {
    // As the kubelet: the container waits (no restart counted) and the start is retried.
    std::string msg = h.error().substr(kCreateContainerConfigError.size());
    log::warn("pods: {}: container {}: {}", pod_ref(def_), r.def->name, msg);
    cs.state = ContainerState{K::kWaiting, "CreateContainerConfigError", msg};
    if (env_.on_event) env_.on_event("Warning", "Failed", "Error: " + msg);
    changed();
    if (!co_await sleep(config_retry)) co_return std::nullopt;
    config_retry = std::min(config_retry * 2, env_.timings.backoff_max);
    continue;
  }
  if (!h) {
    log::warn("pods: {}: container {}: start: {}", pod_ref(def_), r.def->name, h.error());
    ExitInfo e{true, 128, 0, false, std::chrono::system_clock::now()};
    r.id.clear();
    r.rec->started_at = std::chrono::system_clock::now();
    record_exit(r, e);
    cs.state.reason = "ContainerCannotRun";
    cs.state.message = h.error();
    r.rec->last_termination = cs.state;
    persist();
    co_return e;
  }
  break;
  }
  r.id = h->id;
  r.rec->handle = *h;
  if (env_.on_event) {
    env_.on_event("Normal", "Created", fmt::format("Created container: {}", r.def->name));
    env_.on_event("Normal", "Started", fmt::format("Started container {}", r.def->name));
  }
  r.rec->started_at = std::chrono::system_clock::now();
  co_return co_await watch(r, false);
}

// From a started (or adopted running) container to its exit.
asio::awaitable<ExitInfo> PodWorker::watch(Run& r, bool adopted) {
  auto self = shared_from_this();
  auto& cs = st(r);
  if (adopted) {
    r.id = r.rec->handle.id;
    // Output written while noded was down sits in the FIFOs: pick it up.
    auto out = open_fifo(fifo_dir(r) + "/stdout", false);
    auto err = open_fifo(fifo_dir(r) + "/stderr", false);
    r.log = std::make_shared<logs::CriLogWriter>();
    auto lp = logs::container_log_path(env_.pod_log_dir, def_.ns, def_.name, def_.uid, r.def->name, r.rec->restart_count);
    (void)r.log->open(lp, env_.log_options);
    if (out) asio::co_spawn(ex_, logs::pump(out->first, r.log, logs::Stream::kStdout), asio::detached);
    if (err) asio::co_spawn(ex_, logs::pump(err->first, r.log, logs::Stream::kStderr), asio::detached);
  }
  r.running = true;
  r.rec->running = true;
  r.started = std::chrono::steady_clock::now();
  r.kill_reason.clear();
  cs.container_id = r.id;
  cs.state = ContainerState{K::kRunning, "", "", 0, 0, r.rec->started_at, {}, r.id};
  persist();
  if (!r.init) trace("container_started");
  start_probes(r);
  changed();
  if (halted()) {
    // stop() (or the pod's deadline) came while the container was being started.
    Run* rp = &r;
    asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
      co_await self->kill_container(*rp, self->def_.grace_seconds,
                                    self->stopping_ ? "stop" : "DeadlineExceeded");
    }, asio::detached);
  } else if (!adopted && r.def->post_start) {
    // The hook runs while the container runs; a failure kills the container.
    Run* rp = &r;
    asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
      auto o = co_await self->run_hook(*rp, *rp->def->post_start, saturated_times(self->env_.timings.second, self->def_.grace_seconds));
      if (!o.success && rp->running) {
        log::warn("pods: {}: container {}: PostStartHook failed: {}", pod_ref(self->def_), rp->def->name, o.message);
        co_await self->kill_container(*rp, self->def_.grace_seconds, "FailedPostStartHook");
      }
    }, asio::detached);
  }
  auto e = co_await env_.runtime->wait_container(r.id);
  stop_probes(r);
  record_exit(r, e);
  if (!r.kill_reason.empty() && r.kill_reason != "stop") cs.state.message = r.kill_reason;
  r.rec->last_termination = cs.state;
  persist();
  env_.runtime->remove_container(r.id);
  notify();
  co_return e;
}

asio::awaitable<probes::Outcome> PodWorker::run_hook(Run& r, const probes::Handler& h,
                                                     milliseconds timeout) {
  co_return co_await probes::run_handler(h, probe_target(r), timeout);
}

// spec.activeDeadlineSeconds, counted from startTime as the kubelet does.
asio::awaitable<void> PodWorker::enforce_deadline() {
  auto self = shared_from_this();
  auto due = status_.start_time + saturated_times(std::chrono::seconds(1), *def_.active_deadline_seconds);
  auto left = std::chrono::duration_cast<milliseconds>(due - std::chrono::system_clock::now());
  if (left.count() > 0 && !co_await sleep(left)) co_return;  // stopped (or already halted)
  if (!halted() && !status_.terminal) deadline_passed();
}

void PodWorker::deadline_passed() {
  auto self = shared_from_this();
  deadline_exceeded_ = true;
  status_.failed_reason = "DeadlineExceeded";
  status_.failed_message = "Pod was active on the node longer than the specified deadline";
  log::info("pods: {}: activeDeadlineSeconds {} passed: stopping its containers", pod_ref(def_),
            *def_.active_deadline_seconds);
  if (env_.on_event) env_.on_event("Warning", "DeadlineExceeded", status_.failed_message);
  for (auto* t : sleepers_) t->cancel();  // back-offs and retries end: nothing starts again
  for (auto& r : runs_) {
    if (!r->running) continue;
    Run* rp = r.get();
    asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
      co_await self->kill_container(*rp, self->def_.grace_seconds, "DeadlineExceeded");
    }, asio::detached);
  }
  changed();
}

asio::awaitable<void> PodWorker::kill_container(Run& r, std::int64_t grace_seconds, std::string why) {
  auto self = shared_from_this();
  if (!r.running || !r.kill_reason.empty()) co_return;
  r.kill_reason = why;
  if (env_.on_event && (why == "stop" || why == "DeadlineExceeded"))  // probes announce their own
    env_.on_event("Normal", "Killing", fmt::format("Stopping container {}", r.def->name));
  std::string id = r.id;
  auto grace = saturated_times(env_.timings.second, grace_seconds);
  auto deadline = std::chrono::steady_clock::now() + grace;
  if (r.def->pre_stop && grace.count() > 0) {
    auto o = co_await run_hook(r, *r.def->pre_stop, grace);
    if (!o.success) log::warn("pods: {}: container {}: PreStopHook failed: {}", pod_ref(def_), r.def->name, o.message);
  }
  if (!r.running || r.id != id) co_return;
  if (auto s = env_.runtime->signal_container(id, SIGTERM); !s)
    log::warn("pods: {}: container {}: SIGTERM: {}", pod_ref(def_), r.def->name, s.error());
  asio::steady_timer dl(ex_);
  while (r.running && r.id == id && std::chrono::steady_clock::now() < deadline) {
    dl.expires_at(deadline);  // wake on the deadline or on any state change
    co_await (wait_changed() || dl.async_wait(asio::as_tuple(asio::use_awaitable)));
  }
  if (r.running && r.id == id) {
    log::info("pods: {}: container {} did not stop within {}s: SIGKILL", pod_ref(def_), r.def->name, grace_seconds);
    if (auto s = env_.runtime->signal_container(id, SIGKILL); !s)
      log::warn("pods: {}: container {}: SIGKILL: {}", pod_ref(def_), r.def->name, s.error());
  }
}

asio::awaitable<void> PodWorker::terminate() {
  auto self = shared_from_this();
  log::info("pods: {}: stopping", pod_ref(def_));
  for (auto& r : runs_) {
    if (!r->running) continue;
    Run* rp = r.get();
    asio::co_spawn(ex_, [self, rp]() -> asio::awaitable<void> {
      co_await self->kill_container(*rp, self->def_.grace_seconds, "stop");
    }, asio::detached);
  }
  for (;;) {
    bool busy = !main_done_;
    for (auto& r : runs_) busy = busy || r->running;
    if (!busy) break;
    co_await wait_changed();
  }
  teardown_volumes(def_, env_.store->pod_dir(def_.uid));
  if (sandbox_up_ || record_.sandbox_created) {
    auto rel = co_await env_.runtime->release_sandbox(def_.uid);
    if (!rel) log::warn("pods: {}: release sandbox: {}", pod_ref(def_), rel.error());
  }
  env_.store->remove(def_.uid);
  // The pod is gone for good: its logs go too (the kubelet's GC of deleted pods' log dirs).
  std::error_code ec;
  fs::remove_all(fmt::format("{}/{}_{}_{}", env_.pod_log_dir, def_.ns, def_.name, def_.uid), ec);
  terminated_ = true;
  log::info("pods: {}: stopped", pod_ref(def_));
  if (env_.on_terminated) env_.on_terminated(def_.uid);
}

}  // namespace podwarp::noded::pods
