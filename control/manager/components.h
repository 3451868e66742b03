// ControlComponents: the scheduler and the controller manager of podwarp-control, each on its
// own thread and io_context, each acting only while it holds its leader Lease.
//
// State machine per component (scheduler, controllers):
//   electing --(lease acquired)--> leading: build fresh informers + the component, start it
//   leading  --(lease lost: no renewal within renew_deadline)--> stop the component (it makes
//            no more writes), then electing again with a fresh elector.
// Objects of a stopped term are kept alive until the process exits (stopped coroutines may
// still be unwinding on the loop); a process loses leadership rarely, so this is bounded.
// Upstream's components exit on lost leadership; podwarp-control hosts the apiserver too, so
// it steps down instead of exiting.
//
// Lease names are upstream's (kube-system/kube-scheduler, kube-system/kube-controller-manager),
// so `kubectl get lease -n kube-system` reads as on any cluster.
//
// Threading: start()/stop() from the main thread; everything else on the component threads.
#pragma once

#include <memory>
#include <string>

#include "loop/controller.h"
#include "loop/leader_election.h"
#include "podwarp/client.h"

namespace podwarp::manager {

struct ComponentOptions {
  bool scheduler = true;
  bool controllers = true;
  bool leader_elect = true;
  // Durations of the election; lease names are set per component.
  loop::LeaderElectionOptions election;
  loop::ControllerOptions controller_options;
};

class ControlComponents {
 public:
  ControlComponents(client::Config api, ComponentOptions options);
  ~ControlComponents();

  // Starts the component threads (returns at once).
  void start();
  // Stops the components and joins their threads.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::manager
