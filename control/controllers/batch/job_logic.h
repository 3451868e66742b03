// Pure arithmetic of the Job controller (upstream pkg/controller/job), kept apart from the
// API plumbing so that it can be tested alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "podwarp/json.h"

namespace podwarp::controllers::job {

// Labels and annotations upstream puts on a Job's pods.
inline constexpr std::string_view kControllerUid = "batch.kubernetes.io/controller-uid";
inline constexpr std::string_view kJobName = "batch.kubernetes.io/job-name";
inline constexpr std::string_view kLegacyControllerUid = "controller-uid";
inline constexpr std::string_view kLegacyJobName = "job-name";
inline constexpr std::string_view kCompletionIndex = "batch.kubernetes.io/job-completion-index";

// How many pods should run now (upstream manageJob): with completions, min(parallelism,
// completions - succeeded) and never below 0; without completions (a work queue), parallelism
// until the first success, then only those still running.
std::int64_t want_active(std::int64_t parallelism, std::optional<std::int64_t> completions,
                         std::int64_t succeeded, std::int64_t active);

// Pods to create in one sync: upstream's slow start creates batches of 1, 2, 4, ... up to the
// number missing, stopping at the first failure; this returns that total upper bound per sync
// (a bounded burst: min(missing, 500)).
std::int64_t creations_per_sync(std::int64_t missing);

// Delay before replacing a failed pod: 10 s * 2^(failures-1), at most 6 min (upstream
// DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff); 0 without failures.
std::chrono::milliseconds failure_backoff(std::int64_t failures, std::chrono::milliseconds base,
                                          std::chrono::milliseconds max);

// status.completedIndexes: "1,3-5,7" <-> {1,3,4,5,7}. Parsing ignores malformed parts and
// values >= completions.
std::set<std::int64_t> parse_indexes(std::string_view text, std::int64_t completions);
std::string format_indexes(const std::set<std::int64_t>& indexes);

// The lowest `count` indexes in [0, completions) that are neither succeeded nor active.
std::set<std::int64_t> first_pending_indexes(std::int64_t completions,
                                             const std::set<std::int64_t>& succeeded,
                                             const std::set<std::int64_t>& active,
                                             std::int64_t count);

// The completion index of a pod (its annotation, else the label); nullopt when absent or bad.
std::optional<std::int64_t> pod_index(const json::value& pod);

// Conditions of a Job or Pod status: the condition of `type` (nullptr when absent) and an
// upsert that keeps lastTransitionTime when the status does not change. Returns true when
// anything changed.
const json::object* find_condition(const json::value& status, std::string_view type);
bool set_condition(json::object& status, std::string_view type, std::string_view cond_status,
                   std::string_view reason, std::string_view message, const std::string& now);
// True when the Job has condition Complete or Failed with status True.
bool job_finished(const json::value& job);

}  // namespace podwarp::controllers::job
