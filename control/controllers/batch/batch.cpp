#include "batch/batch.h"

#include "batch/cronjob_controller.h"
#include "batch/job_controller.h"

namespace podwarp::controllers {

loop::ControllerList make_batch_controllers(loop::ControllerContext& ctx) {
  return make_batch_controllers(ctx, BatchOptions{});
}

loop::ControllerList make_batch_controllers(loop::ControllerContext& ctx, BatchOptions options) {
  loop::ControllerList out;
  out.push_back(std::make_unique<JobController>(ctx, options));
  out.push_back(std::make_unique<CronJobController>(ctx, options));
  return out;
}

}  // namespace podwarp::controllers
