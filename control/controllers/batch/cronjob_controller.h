// CronJobController: upstream's CronJob controller (pkg/controller/cronjob, "v2").
//
// Per CronJob key:
//   1. status.active is reconciled with the Jobs the CronJob controls: finished Jobs leave it
//      (event SawCompletedJob; a Complete one moves lastSuccessfulTime), Jobs that no longer
//      exist leave it (MissingJob), unfinished owned Jobs missing from it join it
//      (UnexpectedJob).
//   2. Unless suspended or being deleted, the most recent schedule time t in
//      (lastScheduleTime or creationTimestamp, now] (and not before now -
//      startingDeadlineSeconds) is found. If a Job for t was not created yet: too late
//      (t + startingDeadlineSeconds < now) → MissSchedule; Forbid with active Jobs →
//      JobAlreadyActive; Replace → the active Jobs are deleted (SuccessfulDelete); then the Job
//      "<cronjob>-<t in minutes since the epoch>" is created from spec.jobTemplate with the
//      annotation batch.kubernetes.io/cronjob-scheduled-timestamp (SuccessfulCreate), and
//      lastScheduleTime = t.
//   3. Finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit are deleted,
//      oldest first (SuccessfulDelete).
//   4. The key is re-queued at the next schedule time (at most options.cronjob_resync later).
// Time zones: only UTC (spec.timeZone unset, "UTC" or "Etc/UTC"); others get a Warning event
// UnknownTimeZone and are not scheduled.
#pragma once

#include <map>
#include <set>
#include <string>

#include "batch/batch.h"
#include "loop/key_index.h"
#include "loop/work_queue.h"

namespace podwarp::controllers {

class CronJobController : public loop::Controller {
 public:
  CronJobController(loop::ControllerContext& ctx, BatchOptions options);
  std::string_view name() const override { return "cronjob"; }
  void start() override;
  void stop() override;

 private:
  client::Awaitable<client::Result<void>> sync(std::string key);
  void job_changed(const json::value& job, bool deleted);
  std::chrono::system_clock::time_point now() const;

  loop::ControllerContext& ctx_;
  BatchOptions options_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer& cronjobs_;
  client::Informer& jobs_;
  loop::KeyIndex jobs_by_cronjob_;  // "ns/cj" -> job keys
};

// The most recent schedule time in (earliest, now], if any, and whether more than 100 were
// missed (upstream's TooManyMissedTimes warning).
struct MostRecent {
  std::optional<std::chrono::system_clock::time_point> time;
  bool too_many_missed = false;
};
class CronSchedule;
MostRecent most_recent_schedule(const CronSchedule& schedule,
                                std::chrono::system_clock::time_point earliest,
                                std::chrono::system_clock::time_point now);

}  // namespace podwarp::controllers
