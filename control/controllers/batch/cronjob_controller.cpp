#include "batch/cronjob_controller.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "batch/cron.h"
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

using sys_time = std::chrono::system_clock::time_point;

constexpr std::string_view kFinishedTypes[] = {"Complete", "Failed"};
constexpr std::string_view kScheduledTimestamp = "batch.kubernetes.io/cronjob-scheduled-timestamp";

// "ns/name" of the CronJob controlling a Job, and its uid; "" when none.
std::pair<std::string, std::string_view> owner_cronjob(const json::value& job) {
  const json::value* ref = loop::controller_ref_to(job, "CronJob");
  if (ref == nullptr) return {};
  return {loop::controller_key(job, "CronJob"), get_string(*ref, {"uid"})};
}

std::optional<sys_time> opt_time(const json::value& v, std::initializer_list<std::string_view> path) {
  std::string_view s = get_string(v, path);
  if (s.empty()) return std::nullopt;
  auto t = parse_rfc3339(s);
  if (!t) return std::nullopt;
  return *t;
}

// "Complete" / "Failed" when the Job finished, else "".
std::string_view finished_as(const json::value& job) {
  const json::value* st = find_path(job, {"status"});
  if (st == nullptr) return {};
  for (std::string_view t : {"Complete", "Failed"}) {
    const json::object* c = job::find_condition(*st, t);
    if (c != nullptr && c->contains("status") && c->at("status") == "True") return t;
  }
  return {};
}

// Go's time.RFC1123Z in UTC: "Mon, 02 Jan 2006 15:04:05 +0000".
std::string rfc1123z(sys_time t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return std::string(buf, n);
}

}  // namespace

MostRecent most_recent_schedule(const CronSchedule& schedule, sys_time earliest, sys_time now) {
  MostRecent out;
  int missed = 0;
  auto t = schedule.next(earliest);
  while (t && *t <= now && missed < 100) {
    out.time = t;
    ++missed;
    t = schedule.next(*t);
  }
  if (!(t && *t <= now)) return out;
  // More than 100 missed: find the last one before now by walking growing windows back from
  // now instead of every missed time.
  out.too_many_missed = true;
  for (auto window : {std::chrono::system_clock::duration(2h), std::chrono::system_clock::duration(48h),
                      std::chrono::system_clock::duration(24h * 62),
                      std::chrono::system_clock::duration(24h * 800),
                      std::chrono::system_clock::duration(24h * 3660)}) {
    auto start = std::max(earliest, now - window);
    std::optional<sys_time> last;
    for (auto u = schedule.next(start); u && *u <= now; u = schedule.next(*u)) last = u;
    if (last) {
      out.time = last;
      break;
    }
  }
  return out;
}

CronJobController::CronJobController(loop::ControllerContext& ctx, BatchOptions options)
    : ctx_(ctx),
      options_(std::move(options)),
      recorder_(ctx.recorder("cronjob-controller")),
      queue_(
          ctx.executor, "cronjob", [this](std::string key) { return sync(std::move(key)); },
          ctx.options.workers),
      cronjobs_(ctx.informers.informer(loop::resource("batch", "cronjobs"))),
      jobs_(ctx.informers.informer(loop::resource("batch", "jobs"))) {
  auto& inf = ctx.informers;
  loop::on_object_change(
      inf, loop::resource("batch", "cronjobs"),
      [this](const json::value& c) { queue_.add(client::Informer::key_of(c)); }, false);
  inf.on_add(loop::resource("batch", "jobs"),
             [this](const json::value& j) { job_changed(j, false); });
  inf.on_update(loop::resource("batch", "jobs"),
                [this](const json::value& old_job, const json::value& j) {
                  if (owner_cronjob(old_job).first != owner_cronjob(j).first)
                    job_changed(old_job, true);
                  job_changed(j, false);
                });
  inf.on_delete(loop::resource("batch", "jobs"),
                [this](const json::value& j) { job_changed(j, true); });
}

void CronJobController::job_changed(const json::value& job, bool deleted) {
  auto [key, uid] = owner_cronjob(job);
  if (key.empty()) return;
  std::string job_key = client::Informer::key_of(job);
  if (deleted) {
    jobs_by_cronjob_.remove(key, job_key);
  } else {
    jobs_by_cronjob_.add(key, job_key);
  }
  queue_.add(std::move(key));
}

void CronJobController::start() {
  queue_.start();
  for (const auto& c : cronjobs_.list()) queue_.add(client::Informer::key_of(*c));
}

void CronJobController::stop() { queue_.stop(); }

sys_time CronJobController::now() const {
  return options_.now ? options_.now() : std::chrono::system_clock::now();
}

Awaitable<Result<void>> CronJobController::sync(std::string key) {
  auto slash = key.find('/');
  std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  ObjectPtr cj = cronjobs_.get(ns, name);
  if (!cj) co_return Result<void>{};
  const sys_time t = now();
  std::string_view uid = get_string(*cj, {"metadata", "uid"});
  json::value next = *cj;
  json::object& status = ensure_object(next.as_object(), "status");
  json::array active;
  if (const json::value* a = status.if_contains("active"); a && a->is_array()) active = a->get_array();
  auto in_active = [&](std::string_view job_uid) {
    return std::any_of(active.begin(), active.end(),
                       [&](const json::value& r) { return get_string(r, {"uid"}) == job_uid; });
  };
  auto remove_active = [&](std::string_view job_uid) {
    active.erase(std::remove_if(active.begin(), active.end(),
                                [&](const json::value& r) { return get_string(r, {"uid"}) == job_uid; }),
                 active.end());
  };
  auto job_ref = [](const json::value& job) {
    return json::object{{"kind", "Job"},
                        {"namespace", get_string(job, {"metadata", "namespace"})},
                        {"name", get_string(job, {"metadata", "name"})},
                        {"uid", get_string(job, {"metadata", "uid"})},
                        {"apiVersion", "batch/v1"},
                        {"resourceVersion", get_string(job, {"metadata", "resourceVersion"})}};
  };

  // 1. Reconcile status.active with the owned Jobs.
  std::vector<ObjectPtr> owned;
  std::set<std::string, std::less<>> owned_uids;
  for (const auto& jk : jobs_by_cronjob_.keys(key)) {
    ObjectPtr j = loop::get_by_key(jobs_, jk);
    if (j && owner_cronjob(*j).second == uid) {
      owned.push_back(j);
      owned_uids.insert(std::string(get_string(*j, {"metadata", "uid"})));
    }
  }
  std::optional<sys_time> last_success = opt_time(status, {"lastSuccessfulTime"});
  bool success_moved = false;
  bool fresh_checked = false;
  json::array fresh_active;
  for (const auto& j : owned) {
    std::string_view juid = get_string(*j, {"metadata", "uid"});
    std::string_view jname = get_string(*j, {"metadata", "name"});
    std::string_view fin = finished_as(*j);
    if (fin.empty()) {
      if (!in_active(juid) && find_path(*j, {"metadata", "deletionTimestamp"}) == nullptr) {
        // The cache may not show our own last status write yet: ask the apiserver.
        if (!fresh_checked) {
          fresh_checked = true;
          auto fresh =
              co_await loop::api_get(ctx_.client, loop::resource("batch", "cronjobs"), ns, name);
          if (fresh) {
            if (const json::value* a = find_path(*fresh, {"status", "active"}); a && a->is_array()) {
              for (const auto& r : a->get_array()) {
                if (!in_active(get_string(r, {"uid"}))) fresh_active.push_back(r);
              }
            }
          }
        }
        bool known = std::any_of(fresh_active.begin(), fresh_active.end(), [&](const json::value& r) {
          return get_string(r, {"uid"}) == juid;
        });
        if (known) {
          active.push_back(job_ref(*j));
          continue;
        }
        // Not adopted, as upstream: a Job made by hand from the CronJob (kubectl create job
        // --from=cronjob/...) is not in status.active and does not count for concurrencyPolicy.
        recorder_.record(*cj, "Warning", "UnexpectedJob",
                         fmt::format("Saw a job that the controller did not create or forgot: {}", jname));
      }
      continue;
    }
    if (in_active(juid)) {
      remove_active(juid);
      recorder_.record(*cj, "Normal", "SawCompletedJob",
                       fmt::format("Saw completed job: {}, condition: {}", jname, fin));
    }
    if (fin == "Complete") {
      if (auto ct = opt_time(*j, {"status", "completionTime"}); ct && (!last_success || *ct > *last_success)) {
        last_success = ct;
        success_moved = true;
      }
    }
  }
  if (success_moved) status["lastSuccessfulTime"] = format_rfc3339(*last_success);
  // Active references whose Job is gone (asked of the apiserver: the cache may lag).
  std::vector<json::value> refs(active.begin(), active.end());
  for (const auto& r : refs) {
    std::string juid(get_string(r, {"uid"}));
    if (owned_uids.contains(juid)) continue;
    std::string jname(get_string(r, {"name"}));
    auto got = co_await loop::api_get(ctx_.client, loop::resource("batch", "jobs"), ns, jname);
    if (!got && got.error().is_not_found()) {
      recorder_.record(*cj, "Normal", "MissingJob", fmt::format("Active job went missing: {}", jname));
      remove_active(juid);
    } else if (got && get_string(*got, {"metadata", "uid"}) != juid) {
      remove_active(juid);
    }
  }

  // Writes status when it changed; returns the error of the write.
  auto write_status = [&]() -> Awaitable<Result<void>> {
    status["active"] = active;
    if (active.empty()) status.erase("active");
    if (next == *cj) co_return Result<void>{};
    auto r = co_await loop::api_update_status(ctx_.client, loop::resource("batch", "cronjobs"), ns,
                                              next);
    if (!r) co_return std::unexpected(r.error());
    co_return Result<void>{};
  };

  // 3 (run before 2 returns early): history limits.
  auto cleanup = [&]() -> Awaitable<void> {
    for (std::string_view kind : kFinishedTypes) {
      std::int64_t limit = get_int(*cj, {"spec", kind == "Complete" ? "successfulJobsHistoryLimit"
                                                                    : "failedJobsHistoryLimit"},
                                   kind == "Complete" ? 3 : 1);
      std::vector<ObjectPtr> done;
      for (const auto& j : owned) {
        if (finished_as(*j) == kind && !find_path(*j, {"metadata", "deletionTimestamp"})) {
          done.push_back(j);
        }
      }
      if (static_cast<std::int64_t>(done.size()) <= limit) continue;
      std::stable_sort(done.begin(), done.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
        auto sa = get_string(*a, {"status", "startTime"}), sb = get_string(*b, {"status", "startTime"});
        if (sa.empty() != sb.empty()) return !sa.empty();  // no start time sorts last
        if (sa != sb) return sa < sb;
        return get_string(*a, {"metadata", "name"}) < get_string(*b, {"metadata", "name"});
      });
      done.resize(done.size() - static_cast<std::size_t>(std::max<std::int64_t>(limit, 0)));
      for (const auto& j : done) {
        std::string jname(get_string(*j, {"metadata", "name"}));
        client::DeleteOptions opts;
        opts.propagation_policy = "Background";
        auto r = co_await loop::api_delete(ctx_.client, loop::resource("batch", "jobs"), ns, jname,
                                           opts);
        if (r) {
          recorder_.record(*cj, "Normal", "SuccessfulDelete", fmt::format("Deleted job {}", jname));
        } else if (!r.error().is_not_found()) {
          log::warn("cronjob {}: delete job {}: {}", key, jname, r.error().to_string());
        }
      }
    }
  };

  auto requeue_at = [&](std::optional<sys_time> when) {
    std::chrono::milliseconds d = options_.cronjob_resync;
    if (when) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*when - t) + 100ms;
      d = std::clamp(ms, 1ms, d);
    }
    queue_.add_after(key, d);
  };

  // 2. Schedule.
  if (find_path(*cj, {"metadata", "deletionTimestamp"}) != nullptr) co_return co_await write_status();
  std::string_view tz = get_string(*cj, {"spec", "timeZone"});
  if (!tz.empty() && tz != "UTC" && tz != "Etc/UTC") {
    recorder_.record(*cj, "Warning", "UnknownTimeZone",
                     fmt::format("invalid timeZone: \"{}\": only UTC is supported by podwarp", tz));
    co_return co_await write_status();
  }
  auto sched = CronSchedule::parse(get_string(*cj, {"spec", "schedule"}));
  if (!sched) {
    recorder_.record(*cj, "Warning", "UnparseableSchedule",
                     fmt::format("unparseable schedule: \"{}\" : {}",
                                 get_string(*cj, {"spec", "schedule"}), sched.error()));
    co_return co_await write_status();
  }
  if (get_bool(*cj, {"spec", "suspend"})) {
    auto r = co_await write_status();
    co_await cleanup();
    co_return r;
  }
  std::optional<sys_time> earliest = opt_time(status, {"lastScheduleTime"});
  if (!earliest) earliest = opt_time(*cj, {"metadata", "creationTimestamp"});
  if (!earliest) earliest = t;
  const json::value* sds_v = find_path(*cj, {"spec", "startingDeadlineSeconds"});
  std::optional<std::int64_t> sds;
  if (sds_v && sds_v->is_number()) sds = get_int(*cj, {"spec", "startingDeadlineSeconds"});
  if (sds) earliest = std::max(*earliest, t - std::chrono::seconds(*sds));
  MostRecent mr = most_recent_schedule(*sched, *earliest, t);
  if (mr.too_many_missed) {
    recorder_.record(*cj, "Warning", "TooManyMissedTimes",
                     "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                     "or check clock skew");
  }
  auto next_time = sched->next(t);
  if (!mr.time) {
    auto r = co_await write_status();
    co_await cleanup();
    requeue_at(next_time);
    co_return r;
  }
  const sys_time scheduled = *mr.time;
  const std::string job_name = fmt::format(
      "{}-{}", name, std::chrono::duration_cast<std::chrono::minutes>(scheduled.time_since_epoch()).count());
  bool already = opt_time(status, {"lastScheduleTime"}) == scheduled ||
                 std::any_of(owned.begin(), owned.end(), [&](const ObjectPtr& j) {
                   return get_string(*j, {"metadata", "name"}) == job_name;
                 }) ||
                 std::any_of(active.begin(), active.end(), [&](const json::value& r) {
                   return get_string(r, {"name"}) == job_name;
                 });
  if (already) {
    auto r = co_await write_status();
    co_await cleanup();
    requeue_at(next_time);
    co_return r;
  }
  if (sds && scheduled + std::chrono::seconds(*sds) < t) {
    recorder_.record(*cj, "Warning", "MissSchedule",
                     fmt::format("Missed scheduled time to start a job: {}", rfc1123z(scheduled)));
    auto r = co_await write_status();
    co_await cleanup();
    requeue_at(next_time);
    co_return r;
  }
  std::string_view policy = get_string(*cj, {"spec", "concurrencyPolicy"}, "Allow");
  if (policy == "Forbid" && !active.empty()) {
    recorder_.record(*cj, "Normal", "JobAlreadyActive",
                     "Not starting job because prior execution is running and concurrency policy "
                     "is Forbid");
    auto r = co_await write_status();
    co_await cleanup();
    requeue_at(next_time);
    co_return r;
  }
  if (policy == "Replace") {
    std::vector<json::value> victims(active.begin(), active.end());
    for (const auto& v : victims) {
      std::string jname(get_string(v, {"name"}));
      client::DeleteOptions opts;
      opts.propagation_policy = "Background";
      auto r =
          co_await loop::api_delete(ctx_.client, loop::resource("batch", "jobs"), ns, jname, opts);
      if (!r && !r.error().is_not_found()) {
        recorder_.record(*cj, "Warning", "FailedDelete",
                         fmt::format("Deleted job: {}", r.error().message));
        co_return std::unexpected(r.error());
      }
      recorder_.record(*cj, "Normal", "SuccessfulDelete", fmt::format("Deleted job {}", jname));
      remove_active(get_string(v, {"uid"}));
    }
  }

  // The Job from the template.
  json::object meta{{"name", job_name}, {"namespace", ns}};
  json::object labels, annotations;
  if (const json::value* l = find_path(*cj, {"spec", "jobTemplate", "metadata", "labels"}); l && l->is_object()) {
    labels = l->get_object();
  }
  if (const json::value* a = find_path(*cj, {"spec", "jobTemplate", "metadata", "annotations"});
      a && a->is_object()) {
    annotations = a->get_object();
  }
  annotations[kScheduledTimestamp] = format_rfc3339(scheduled);
  if (!labels.empty()) meta["labels"] = std::move(labels);
  meta["annotations"] = std::move(annotations);
  meta["ownerReferences"] = json::array{json::object{{"apiVersion", "batch/v1"},
                                                     {"kind", "CronJob"},
                                                     {"name", name},
                                                     {"uid", uid},
                                                     {"controller", true},
                                                     {"blockOwnerDeletion", true}}};
  json::value job_spec = json::object();
  if (const json::value* s = find_path(*cj, {"spec", "jobTemplate", "spec"}); s && s->is_object()) job_spec = *s;
  json::value job = json::object{{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", std::move(meta)},
                                 {"spec", std::move(job_spec)}};
  auto created =
      co_await loop::api_create(ctx_.client, loop::resource("batch", "jobs"), ns, std::move(job));
  if (!created) {
    if (!created.error().is_conflict() || created.error().reason != "AlreadyExists") {
      recorder_.record(*cj, "Warning", "FailedCreate",
                       fmt::format("Error creating job: {}", created.error().message));
      co_return std::unexpected(created.error());
    }
    // Created before (e.g. by a previous sync whose status update failed): adopt it if ours.
    auto got = co_await loop::api_get(ctx_.client, loop::resource("batch", "jobs"), ns, job_name);
    if (!got) co_return std::unexpected(got.error());
    if (owner_cronjob(*got).second != uid) {
      co_return std::unexpected(created.error());
    }
    created = std::move(got);
  } else {
    recorder_.record(*cj, "Normal", "SuccessfulCreate", fmt::format("Created job {}", job_name));
  }
  if (finished_as(*created).empty() && !in_active(get_string(*created, {"metadata", "uid"}))) {
    active.push_back(job_ref(*created));
  }
  status["lastScheduleTime"] = format_rfc3339(scheduled);
  auto r = co_await write_status();
  co_await cleanup();
  requeue_at(next_time);
  co_return r;
}

}  // namespace podwarp::controllers
