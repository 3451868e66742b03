// JobController: upstream's Job controller (pkg/controller/job) and TTL-after-finished
// controller for batch/v1 Jobs.
//
// Per Job key it compares the Job with the pods it owns (controller ownerReference with the
// Job's uid) and:
//   - creates pods from spec.template while active < want_active() (see job_logic.h), named
//     "<job>-<random>" ("<job>-<index>-<random>" for Indexed jobs, which also get the
//     completion-index annotation/label, hostname "<job>-<index>" and env JOB_COMPLETION_INDEX),
//     with the job's labels batch.kubernetes.io/controller-uid/job-name (and legacy names);
//   - deletes surplus pods, and all running pods when the Job is suspended or finished;
//   - finishes it: Failed (FailureTarget + Failed) with BackoffLimitExceeded when failed pods
//     exceed spec.backoffLimit, DeadlineExceeded after activeDeadlineSeconds; Complete
//     (SuccessCriteriaMet + Complete, completionTime) when enough pods (or every index)
//     succeeded;
//   - deletes a finished Job ttlSecondsAfterFinished after it finished (propagation
//     Background).
// Pod counts: podwarp does not use upstream's batch.kubernetes.io/job-tracking finalizer.
// succeeded/failed are the counts of terminal pods the Job owns, never lower than the status
// already recorded (so a terminal pod deleted by someone else is not "uncounted"). A pod that
// is deleted while running is not counted as failed.
// Expectations (as upstream's ControllerExpectations) keep a sync from acting on a cache that
// has not yet seen its own creations and deletions.
#pragma once

#include <map>
#include <set>
#include <string>

#include "batch/batch.h"
#include "loop/key_index.h"
#include "loop/work_queue.h"

namespace podwarp::controllers {

class JobController : public loop::Controller {
 public:
  JobController(loop::ControllerContext& ctx, BatchOptions options);
  std::string_view name() const override { return "job"; }
  void start() override;
  void stop() override;

 private:
  struct Expectations {
    std::int64_t adds = 0;
    std::int64_t deletes = 0;
    std::chrono::steady_clock::time_point set_at;
  };

  client::Awaitable<client::Result<void>> sync(std::string key);
  client::Awaitable<client::Result<void>> sync_finished(client::ObjectPtr job, std::string key);
  void pod_changed(const json::value& pod);
  bool satisfied(const std::string& key);
  std::chrono::system_clock::time_point now() const;
  json::value make_pod(const json::value& job, std::optional<std::int64_t> index) const;
  client::Awaitable<client::Result<void>> delete_pods(const json::value& job, std::string key,
                                                      std::vector<client::ObjectPtr> pods);

  loop::ControllerContext& ctx_;
  BatchOptions options_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer& jobs_;
  client::Informer& pods_;
  loop::KeyIndex pods_by_job_;  // "ns/job" -> pod keys
  std::map<std::string, Expectations> expectations_;
  // When this process first saw a Job's current failed count (the backoff runs from there).
  struct FailureSeen {
    std::int64_t count = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, FailureSeen> failure_seen_;
};

}  // namespace podwarp::controllers
