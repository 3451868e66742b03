#include "batch/job_controller.h"

#include <fmt/format.h>

#include "batch/job_logic.h"
#include "loop/api.h"
#include "loop/enqueue.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

namespace {

using namespace std::chrono_literals;
using client::Awaitable;
using client::ObjectPtr;
using client::Result;

constexpr std::string_view kFinishedTypes[] = {"Complete", "Failed"};
constexpr auto kExpectationsTimeout = std::chrono::minutes(5);

// "ns/name" of the Job controlling a pod; "" when none.
std::string owner_job_key(const json::value& pod) {
  return loop::controller_key(pod, "Job", "batch");
}

std::string_view owner_uid(const json::value& pod) {
  const json::value* refs = find_path(pod, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return {};
  for (const auto& r : refs->get_array()) {
    if (get_bool(r, {"controller"})) return get_string(r, {"uid"});
  }
  return {};
}

bool terminating(const json::value& pod) {
  return find_path(pod, {"metadata", "deletionTimestamp"}) != nullptr;
}

bool pod_ready(const json::value& pod) {
  const json::value* st = find_path(pod, {"status"});
  const json::object* c = st ? job::find_condition(*st, "Ready") : nullptr;
  return c != nullptr && c->contains("status") && c->at("status") == "True";
}

std::optional<std::int64_t> opt_int(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* f = find_path(v, path);
  if (f == nullptr || !f->is_number()) return std::nullopt;
  return get_int(v, path);
}

std::optional<std::chrono::system_clock::time_point> opt_time(
    const json::value& v, std::initializer_list<std::string_view> path) {
  std::string_view s = get_string(v, path);
  if (s.empty()) return std::nullopt;
  auto t = parse_rfc3339(s);
  if (!t) return std::nullopt;
  return *t;
}

// When a finished Job finished: completionTime, else its Complete/Failed condition's time.
std::optional<std::chrono::system_clock::time_point> finish_time(const json::value& job) {
  if (auto t = opt_time(job, {"status", "completionTime"})) return t;
  const json::value* st = find_path(job, {"status"});
  if (st == nullptr) return std::nullopt;
  for (std::string_view type : kFinishedTypes) {
    if (const json::object* c = job::find_condition(*st, type)) {
      if (const json::value* lt = c->if_contains("lastTransitionTime"); lt && lt->is_string()) {
        if (auto t = parse_rfc3339(lt->get_string())) return *t;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

JobController::JobController(loop::ControllerContext& ctx, BatchOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      recorder_(ctx.recorder("job-controller")),
      queue_(
          ctx.executor, "job", [this](std::string key) { return sync(std::move(key)); },
          ctx.options.workers),
      jobs_(ctx.informers.informer(loop::resource("batch", "jobs"))),
      pods_(ctx.informers.informer(loop::resource("", "pods"))) {
  auto& inf = ctx.informers;
  loop::on_object_change(
      inf, loop::resource("batch", "jobs"),
      [this](const json::value& j) { queue_.add(client::Informer::key_of(j)); }, false);
  inf.on_delete(loop::resource("batch", "jobs"), [this](const json::value& j) {
    std::string key = client::Informer::key_of(j);
    expectations_.erase(key);
    queue_.add(std::move(key));
  });
  inf.on_add(loop::resource("", "pods"), [this](const json::value& p) {
    std::string key = owner_job_key(p);
    if (key.empty()) return;
    pods_by_job_.add(key, client::Informer::key_of(p));
    if (auto it = expectations_.find(key); it != expectations_.end()) {
      if (terminating(p)) {
        it->second.deletes--;
      } else {
        it->second.adds--;
      }
    }
    queue_.add(std::move(key));
  });
  inf.on_update(loop::resource("", "pods"),
                [this](const json::value& old_pod, const json::value& p) {
                  std::string old_key = owner_job_key(old_pod);
                  std::string key = owner_job_key(p);
                  std::string pod_key = client::Informer::key_of(p);
                  if (old_key != key && !old_key.empty()) {
                    pods_by_job_.remove(old_key, pod_key);
                    queue_.add(old_key);
                  }
                  if (key.empty()) return;
                  pods_by_job_.add(key, pod_key);
                  // A graceful deletion is the deletion the controller waits for (upstream
                  // updatePod).
                  if (terminating(p) && !terminating(old_pod)) {
                    if (auto it = expectations_.find(key); it != expectations_.end())
                      it->second.deletes--;
                  }
                  queue_.add(std::move(key));
                });
  inf.on_delete(loop::resource("", "pods"), [this](const json::value& p) {
    std::string key = owner_job_key(p);
    if (key.empty()) return;
    pods_by_job_.remove(key, client::Informer::key_of(p));
    if (!terminating(p)) {
      if (auto it = expectations_.find(key); it != expectations_.end()) it->second.deletes--;
    }
    queue_.add(std::move(key));
  });
}

void JobController::start() {
  queue_.start();
  for (const auto& j : jobs_.list()) queue_.add(client::Informer::key_of(*j));
}

void JobController::stop() { queue_.stop(); }

std::chrono::system_clock::time_point JobController::now() const {
  return options_.now ? options_.now() : std::chrono::system_clock::now();
}

bool JobController::satisfied(const std::string& key) {
  auto it = expectations_.find(key);
  if (it == expectations_.end()) return true;
  const Expectations& e = it->second;
  if ((e.adds <= 0 && e.deletes <= 0) ||
      std::chrono::steady_clock::now() - e.set_at > kExpectationsTimeout) {
    expectations_.erase(it);
    return true;
  }
  return false;
}

json::value JobController::make_pod(const json::value& job,
                                    std::optional<std::int64_t> index) const {
  std::string name(get_string(job, {"metadata", "name"}));
  json::object meta;
  meta["generateName"] = index ? fmt::format("{}-{}-", name, *index) : name + "-";
  meta["namespace"] = get_string(job, {"metadata", "namespace"});
  json::object labels, annotations;
  if (const json::value* l = find_path(job, {"spec", "template", "metadata", "labels"});
      l && l->is_object()) {
    labels = l->get_object();
  }
  if (const json::value* a = find_path(job, {"spec", "template", "metadata", "annotations"});
      a && a->is_object()) {
    annotations = a->get_object();
  }
  if (index) {
    annotations[job::kCompletionIndex] = std::to_string(*index);
    labels[job::kCompletionIndex] = std::to_string(*index);
  }
  if (!labels.empty()) meta["labels"] = std::move(labels);
  if (!annotations.empty()) meta["annotations"] = std::move(annotations);
  meta["ownerReferences"] = json::array{json::object{
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"name", name},
      {"uid", get_string(job, {"metadata", "uid"})},
      {"controller", true},
      {"blockOwnerDeletion", true},
  }};
  json::object spec;
  if (const json::value* s = find_path(job, {"spec", "template", "spec"}); s && s->is_object()) {
    spec = s->get_object();
  }
  if (index) {
    if (get_string(json::value(spec), {"hostname"}).empty()) {
      spec["hostname"] = fmt::format("{}-{}", name, *index);
    }
    json::object env{{"name", "JOB_COMPLETION_INDEX"},
                     {"valueFrom",
                      json::object{{"fieldRef",
                                    json::object{{"fieldPath",
                                                  fmt::format("metadata.annotations['{}']",
                                                              job::kCompletionIndex)}}}}}};
    for (std::string_view list : {"initContainers", "containers"}) {
      json::value* cs = spec.if_contains(list);
      if (cs == nullptr || !cs->is_array()) continue;
      for (auto& c : cs->get_array()) {
        if (!c.is_object()) continue;
        json::value& e = c.get_object()["env"];
        if (!e.is_array()) e = json::array();
        bool present = false;
        for (const auto& v : e.get_array()) {
          if (get_string(v, {"name"}) == "JOB_COMPLETION_INDEX") present = true;
        }
        if (!present) e.get_array().push_back(env);
      }
    }
  }
  return json::object{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)},
                      {"spec", std::move(spec)}};
}

Awaitable<Result<void>> JobController::delete_pods(const json::value& job, std::string key,
                                                   std::vector<ObjectPtr> pods) {
  if (pods.empty()) co_return Result<void>{};
  auto& e = expectations_[key];
  e.adds = std::max<std::int64_t>(e.adds, 0);
  e.deletes = std::max<std::int64_t>(e.deletes, 0) + static_cast<std::int64_t>(pods.size());
  e.set_at = std::chrono::steady_clock::now();
  std::optional<client::Error> first_error;
  for (const auto& p : pods) {
    std::string ns(get_string(*p, {"metadata", "namespace"}));
    std::string name(get_string(*p, {"metadata", "name"}));
    auto r = co_await loop::api_delete(ctx_.client, loop::resource("", "pods"), ns, name);
    if (!r) {
      if (auto it = expectations_.find(key); it != expectations_.end()) it->second.deletes--;
      if (!r.error().is_not_found() && !first_error) first_error = r.error();
      continue;
    }
    recorder_.record(job, "Normal", "SuccessfulDelete", fmt::format("Deleted pod: {}", name));
  }
  if (first_error) co_return std::unexpected(*first_error);
  co_return Result<void>{};
}

Awaitable<Result<void>> JobController::sync_finished(ObjectPtr job, std::string key) {
  // Running pods of a finished Job go away (e.g. after activeDeadlineSeconds).
  std::vector<ObjectPtr> running;
  std::string_view uid = get_string(*job, {"metadata", "uid"});
  for (const auto& pk : pods_by_job_.keys(key)) {
    ObjectPtr p = loop::get_by_key(pods_, pk);
    if (!p || owner_uid(*p) != uid || terminating(*p)) continue;
    std::string_view phase = get_string(*p, {"status", "phase"});
    if (phase != "Succeeded" && phase != "Failed") running.push_back(p);
  }
  if (!running.empty() && satisfied(key)) {
    auto r = co_await delete_pods(*job, key, std::move(running));
    if (!r) co_return r;
  }
  // ttl-after-finished.
  auto ttl = opt_int(*job, {"spec", "ttlSecondsAfterFinished"});
  if (!ttl) co_return Result<void>{};
  std::optional<std::chrono::system_clock::time_point> finished = finish_time(*job);
  if (!finished) co_return Result<void>{};
  auto expire = *finished + std::chrono::seconds(*ttl);
  auto t = now();
  if (t < expire) {
    queue_.add_after(key, std::chrono::duration_cast<std::chrono::milliseconds>(expire - t) + 1ms);
    co_return Result<void>{};
  }
  client::DeleteOptions opts;
  opts.propagation_policy = "Background";
  opts.precondition_uid = std::string(uid);
  std::string ns(get_string(*job, {"metadata", "namespace"}));
  std::string name(get_string(*job, {"metadata", "name"}));
  auto r = co_await loop::api_delete(ctx_.client, loop::resource("batch", "jobs"), ns, name, opts);
  if (!r && !r.error().is_not_found() && !r.error().is_conflict()) {
    co_return std::unexpected(r.error());
  }
  log::info("job {}: deleted {}s after it finished (ttlSecondsAfterFinished)", key, *ttl);
  co_return Result<void>{};
}

Awaitable<Result<void>> JobController::sync(std::string key) {
  auto slash = key.find('/');
  std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  ObjectPtr job = jobs_.get(ns, name);
  if (!job) {
    expectations_.erase(key);
    failure_seen_.erase(key);
    co_return Result<void>{};
  }
  if (find_path(*job, {"metadata", "deletionTimestamp"}) != nullptr) co_return Result<void>{};
  if (job::job_finished(*job)) co_return co_await sync_finished(job, key);

  const auto t = now();
  const std::string ts = format_rfc3339(t);
  std::string_view uid = get_string(*job, {"metadata", "uid"});
  const bool indexed = get_string(*job, {"spec", "completionMode"}) == "Indexed";
  const bool suspended = get_bool(*job, {"spec", "suspend"});
  const std::int64_t parallelism = get_int(*job, {"spec", "parallelism"}, 1);
  const std::optional<std::int64_t> completions = opt_int(*job, {"spec", "completions"});
  const std::int64_t backoff_limit = get_int(*job, {"spec", "backoffLimit"}, 6);

  // The pods of this Job, by state.
  std::vector<ObjectPtr> active, terminating_pods;
  std::int64_t succeeded_pods = 0, failed_pods = 0, ready = 0;
  std::set<std::int64_t> succeeded_indexes, active_indexes;
  std::vector<ObjectPtr> surplus;  // Indexed: duplicates and out-of-range indexes
  for (const auto& pk : pods_by_job_.keys(key)) {
    ObjectPtr p = loop::get_by_key(pods_, pk);
    if (!p || owner_uid(*p) != uid) continue;
    std::string_view phase = get_string(*p, {"status", "phase"});
    auto idx = job::pod_index(*p);
    if (phase == "Succeeded") {
      ++succeeded_pods;
      if (idx && completions && *idx < *completions) succeeded_indexes.insert(*idx);
    } else if (phase == "Failed") {
      ++failed_pods;
    } else if (terminating(*p)) {
      terminating_pods.push_back(p);
    } else {
      if (indexed &&
          (!idx || !completions || *idx >= *completions || active_indexes.contains(*idx))) {
        surplus.push_back(p);
        continue;
      }
      if (idx) active_indexes.insert(*idx);
      active.push_back(p);
      if (pod_ready(*p)) ++ready;
    }
  }

  json::value old_status = json::object();
  if (const json::value* s = find_path(*job, {"status"}); s && s->is_object()) old_status = *s;
  json::object status = old_status.get_object();
  const std::int64_t failed = std::max(get_int(old_status, {"failed"}), failed_pods);
  std::int64_t succeeded = std::max(get_int(old_status, {"succeeded"}), succeeded_pods);
  if (indexed && completions) {
    for (auto i : job::parse_indexes(get_string(old_status, {"completedIndexes"}), *completions)) {
      succeeded_indexes.insert(i);
    }
    // An index that succeeded needs no running pod any more.
    for (auto it = active.begin(); it != active.end();) {
      auto idx = job::pod_index(**it);
      if (idx && succeeded_indexes.contains(*idx)) {
        surplus.push_back(*it);
        active_indexes.erase(*idx);
        it = active.erase(it);
      } else {
        ++it;
      }
    }
    succeeded = std::max(succeeded, static_cast<std::int64_t>(succeeded_indexes.size()));
    status["completedIndexes"] = job::format_indexes(succeeded_indexes);
  }

  std::optional<std::chrono::system_clock::time_point> start_time = opt_time(old_status, {"startTime"});
  if (!suspended && !start_time) {
    start_time = t;
    status["startTime"] = ts;
  }

  // Is the Job done?
  std::string fail_reason, fail_message;
  if (failed > backoff_limit) {
    fail_reason = "BackoffLimitExceeded";
    fail_message = "Job has reached the specified backoff limit";
  } else if (auto ads = opt_int(*job, {"spec", "activeDeadlineSeconds"});
             ads && start_time && !suspended && t >= *start_time + std::chrono::seconds(*ads)) {
    fail_reason = "DeadlineExceeded";
    fail_message = "Job was active longer than specified deadline";
  }
  bool complete = false;
  if (fail_reason.empty()) {
    if (indexed && completions) {
      complete = static_cast<std::int64_t>(succeeded_indexes.size()) >= *completions;
    } else if (completions) {
      complete = succeeded >= *completions;
    } else {
      complete = succeeded > 0 && active.empty();
    }
  }

  std::optional<std::chrono::milliseconds> requeue;
  if (!fail_reason.empty() || complete) {
    std::vector<ObjectPtr> doomed = active;
    doomed.insert(doomed.end(), surplus.begin(), surplus.end());
    auto r = co_await delete_pods(*job, key, std::move(doomed));
    if (!r) co_return r;
    if (!fail_reason.empty()) {
      job::set_condition(status, "FailureTarget", "True", fail_reason, fail_message, ts);
      job::set_condition(status, "Failed", "True", fail_reason, fail_message, ts);
      recorder_.record(*job, "Warning", fail_reason, fail_message);
    } else {
      job::set_condition(status, "SuccessCriteriaMet", "True", "CompletionsReached",
                         "Reached expected number of succeeded pods", ts);
      job::set_condition(status, "Complete", "True", "CompletionsReached",
                         "Reached expected number of succeeded pods", ts);
      status["completionTime"] = ts;
      recorder_.record(*job, "Normal", "Completed", "Job completed");
    }
    terminating_pods.insert(terminating_pods.end(), active.begin(), active.end());
    active.clear();
    ready = 0;
  } else if (suspended) {
    std::vector<ObjectPtr> doomed = active;
    doomed.insert(doomed.end(), surplus.begin(), surplus.end());
    auto r = co_await delete_pods(*job, key, std::move(doomed));
    if (!r) co_return r;
    if (job::set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", ts)) {
      recorder_.record(*job, "Normal", "Suspended", "Job suspended");
    }
    status.erase("startTime");
    terminating_pods.insert(terminating_pods.end(), active.begin(), active.end());
    active.clear();
    ready = 0;
  } else {
    if (const json::object* c = job::find_condition(old_status, "Suspended");
        c && c->contains("status") && c->at("status") == "True") {
      job::set_condition(status, "Suspended", "False", "JobResumed", "Job resumed", ts);
      recorder_.record(*job, "Normal", "Resumed", "Job resumed");
    }
    if (satisfied(key)) {
      std::int64_t n_active = static_cast<std::int64_t>(active.size());
      std::int64_t want = indexed && completions
                              ? job::want_active(parallelism, *completions,
                                                 static_cast<std::int64_t>(succeeded_indexes.size()),
                                                 n_active)
                              : job::want_active(parallelism, completions, succeeded, n_active);
      if (!surplus.empty()) {
        auto r = co_await delete_pods(*job, key, surplus);
        if (!r) co_return r;
      }
      if (n_active > want) {
        // Delete the least useful first: not ready, then the youngest.
        std::vector<ObjectPtr> order = active;
        std::stable_sort(order.begin(), order.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
          bool ra = pod_ready(*a), rb = pod_ready(*b);
          if (ra != rb) return !ra;
          return get_string(*a, {"metadata", "creationTimestamp"}) >
                 get_string(*b, {"metadata", "creationTimestamp"});
        });
        order.resize(static_cast<std::size_t>(n_active - want));
        for (const auto& p : order) std::erase(active, p);
        auto r = co_await delete_pods(*job, key, order);
        terminating_pods.insert(terminating_pods.end(), order.begin(), order.end());
        ready = 0;
        for (const auto& p : active) ready += pod_ready(*p) ? 1 : 0;
        if (!r) co_return r;
      } else if (n_active < want) {
        // Failed pods are replaced after an exponential backoff.
        auto delay = job::failure_backoff(failed, options_.pod_failure_backoff,
                                          options_.max_pod_failure_backoff);
        auto& fs = failure_seen_[key];
        if (fs.count != failed) {
          fs.count = failed;
          fs.at = std::chrono::steady_clock::now();
        }
        auto wait = fs.at + delay - std::chrono::steady_clock::now();
        if (failed > 0 && wait > std::chrono::milliseconds(0)) {
          requeue = std::chrono::duration_cast<std::chrono::milliseconds>(wait) + 1ms;
        } else {
          std::int64_t n = job::creations_per_sync(want - n_active);
          std::vector<std::optional<std::int64_t>> indexes;
          if (indexed && completions) {
            for (auto i : job::first_pending_indexes(*completions, succeeded_indexes,
                                                     active_indexes, n)) {
              indexes.emplace_back(i);
            }
          } else {
            indexes.resize(static_cast<std::size_t>(n));
          }
          auto& e = expectations_[key];
          e.deletes = std::max<std::int64_t>(e.deletes, 0);
          e.adds = std::max<std::int64_t>(e.adds, 0) + static_cast<std::int64_t>(indexes.size());
          e.set_at = std::chrono::steady_clock::now();
          // Slow start: batches of 1, 2, 4, ... stop at the first failure.
          std::size_t done = 0, batch = 1;
          std::optional<client::Error> error;
          while (done < indexes.size() && !error) {
            std::size_t end = std::min(indexes.size(), done + batch);
            for (; done < end; ++done) {
              json::value pod = make_pod(*job, indexes[done]);
              auto r = co_await loop::api_create(ctx_.client, loop::resource("", "pods"), ns,
                                                 std::move(pod));
              if (!r) {
                if (!error) error = r.error();
                continue;
              }
              active.push_back(std::make_shared<const json::value>(std::move(*r)));
              recorder_.record(*job, "Normal", "SuccessfulCreate",
                               fmt::format("Created pod: {}", get_string(*active.back(), {"metadata", "name"})));
            }
            batch *= 2;
          }
          if (error) {
            // The pods not created will not be observed.
            std::int64_t missing = static_cast<std::int64_t>(indexes.size()) -
                                   static_cast<std::int64_t>(active.size()) + n_active;
            if (auto it = expectations_.find(key); it != expectations_.end()) {
              it->second.adds -= missing;
            }
            recorder_.record(*job, "Warning", "FailedCreate",
                             fmt::format("Error creating: {}", error->message));
            co_return std::unexpected(*error);
          }
        }
      }
    }
    if (auto ads = opt_int(*job, {"spec", "activeDeadlineSeconds"}); ads && start_time) {
      auto left = *start_time + std::chrono::seconds(*ads) - t;
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left) + 1ms;
      requeue = requeue ? std::min(*requeue, ms) : ms;
    }
  }

  status["active"] = static_cast<std::int64_t>(active.size());
  status["succeeded"] = succeeded;
  status["failed"] = failed;
  status["ready"] = ready;
  status["terminating"] = static_cast<std::int64_t>(terminating_pods.size());
  if (status != old_status.get_object()) {
    json::value next = *job;
    next.as_object()["status"] = std::move(status);
    auto r = co_await loop::api_update_status(ctx_.client, loop::resource("batch", "jobs"), ns,
                                              std::move(next));
    if (!r) co_return std::unexpected(r.error());
  }
  if (requeue) queue_.add_after(key, *requeue);
  co_return Result<void>{};
}

}  // namespace podwarp::controllers
