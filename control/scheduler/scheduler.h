// Scheduler: the kube-scheduler loop of podwarp-control.
//
// It reads the cluster only through the apiserver, with informers on nodes, pods,
// namespaces, PersistentVolumeClaims, PersistentVolumes and StorageClasses (VolumeBinding),
// keeps a Snapshot and a SchedulingQueue current from their events, and runs one scheduling
// cycle at a time on its executor:
//
//   pop the best pending pod -> Algorithm::schedule
//     fits:  assume it on the node in the snapshot (so the next cycle sees it), POST
//            pods/<name>/binding in the background (several binds in flight), then event
//            Scheduled "Successfully assigned ns/name to node". A failed bind forgets the
//            assumption and retries the pod after its backoff.
//     fails: DefaultPreemption (delete the victims, set status.nominatedNodeName), patch
//            status condition PodScheduled=False/Unschedulable with upstream's message, event
//            FailedScheduling (Warning); the pod waits in the unschedulable set until a node
//            is added or updated, an assigned pod is deleted, or a claim, volume or
//            StorageClass changes.
//
// Pods handled: spec.schedulerName in options.scheduler_names (or empty), spec.nodeName
// empty, not terminating. Priority is spec.priority (admission fills it from the
// PriorityClass; the resource table has no scheduling.k8s.io PriorityClass, so it is not
// resolved here).
//
// Metrics (podwarp/metrics.h): scheduler_schedule_attempts_total{result},
// scheduler_e2e_scheduling_duration_seconds, scheduler_pending_pods{queue}.
//
// Threading: everything runs on the executor given (one thread; informers and the client
// require it). start()/stop() must be called from that executor too. start() after stop()
// begins afresh (new informers, empty cache): the leader elector may call them repeatedly.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>
#include <vector>

#include "podwarp/client.h"

namespace podwarp::scheduler {

struct SchedulerOptions {
  std::vector<std::string> scheduler_names{"podwarp-scheduler", "default-scheduler"};
  // 0: upstream's adaptive percentage.
  int percentage_of_nodes_to_score = 0;
  // Concurrent POST .../binding calls.
  std::size_t max_binds_in_flight = 32;
  // source.component of events, as upstream's "default-scheduler".
  std::string component = "default-scheduler";
};

class Scheduler {
 public:
  Scheduler(boost::asio::any_io_executor executor, client::Client client,
            SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void start();
  void stop();
  bool running() const;

  // For tests and status pages.
  struct Stats {
    std::uint64_t scheduled = 0;
    std::uint64_t unschedulable = 0;
    std::uint64_t bind_errors = 0;
    std::uint64_t preemptions = 0;
  };
  Stats stats() const;

  struct Run;  // one leadership term's state (scheduler.cpp)

 private:
  boost::asio::any_io_executor executor_;
  client::Client client_;
  SchedulerOptions options_;
  std::shared_ptr<Run> run_;
  Stats finished_stats_;
};

}  // namespace podwarp::scheduler
