// The batch controllers of podwarp-control: Job (with upstream's ttl-after-finished controller
// folded in) and CronJob, with upstream kube-controller-manager semantics.
//
// Threading: everything runs on ctx.executor (one thread); nothing is locked.
#pragma once

#include <chrono>
#include <functional>

#include "loop/controller.h"

namespace podwarp::controllers {

struct BatchOptions {
  // The wall clock the controllers read (times in status, deadlines, TTLs, cron schedules).
  // Tests move it forward; empty means system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
  // Delay before a failed Job pod is replaced: base * 2^(failures-1), capped (upstream 10 s, 6 min).
  std::chrono::milliseconds pod_failure_backoff{10'000};
  std::chrono::milliseconds max_pod_failure_backoff{360'000};
  // Every CronJob is re-examined at least this often (upstream: 10 s is not used; it requeues at
  // the next schedule time; this bounds clock jumps).
  std::chrono::milliseconds cronjob_resync{10'000};
};

// "job" and "cronjob" controllers.
loop::ControllerList make_batch_controllers(loop::ControllerContext& ctx);
loop::ControllerList make_batch_controllers(loop::ControllerContext& ctx, BatchOptions options);

}  // namespace podwarp::controllers
