// Controller: one reconciliation loop of podwarp-control's controller manager, and the
// context every controller is built from.
//
// A controller registers informer handlers on the shared informers in its constructor, turns
// events into keys on its WorkQueue, and syncs a key by comparing the desired state (the
// object's spec, from the informer cache) with the actual state (other cached objects), then
// writing the difference through the client. It never reads etcd and never keeps state that
// cannot be rebuilt from the caches: a restarted controller converges from scratch.
//
// Threading: everything (constructor, start, stop, handlers, syncs) runs on ctx.executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loop/events.h"
#include "loop/shared_informers.h"
#include "podwarp/client.h"

namespace podwarp::loop {

// Settings of the controllers, from podwarp-control's flags.
struct ControllerOptions {
  std::string cluster_cidr = "10.244.0.0/16";  // node IPAM: each node gets a /node_cidr_mask_size
  int node_cidr_mask_size = 24;
  std::chrono::seconds node_monitor_grace_period{40};
  std::chrono::seconds node_monitor_period{5};
  int workers = 2;  // WorkQueue workers per controller
};

struct ControllerContext {
  boost::asio::any_io_executor executor;
  client::Client client;
  SharedInformers& informers;
  ControllerOptions options;

  // An event recorder reporting as `component` ("replicaset-controller").
  EventRecorder recorder(std::string component) const { return EventRecorder(client, std::move(component)); }
};

class Controller {
 public:
  virtual ~Controller() = default;
  // "replicaset", "deployment", ... (as upstream's controller names).
  virtual std::string_view name() const = 0;
  // Called once the shared informers have synced.
  virtual void start() = 0;
  virtual void stop() = 0;
};

using ControllerList = std::vector<std::unique_ptr<Controller>>;

}  // namespace podwarp::loop
