// Shared plumbing of the core controllers: object accessors, pod readiness, owner references,
// and ControllerBase, the shape every core controller has (handlers + one WorkQueue).
//
// ControllerBase keeps a controller's state in a shared object: informer handlers and
// in-flight syncs hold only weak references, so destroying a controller (after stop()) while
// a sync is suspended on a request is safe; the sync finds the controller gone and ends.
//
// Threading: everything runs on the controllers' executor (one thread); nothing is locked.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loop/api.h"
#include "loop/controller.h"
#include "loop/enqueue.h"
#include "loop/meta.h"
#include "loop/work_queue.h"
#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/json.h"
#include "podwarp/selector.h"

namespace podwarp::controllers {

using client::Awaitable;
using client::Result;

// The table entry of a built-in resource ("" core group); aborts on a typo (programming error).
using loop::resource;

using namespace loop::meta;  // name_of, namespace_of, uid_of, being_deleted, has_finalizer, ...
// "<ns>/<name>" or "<name>" (its inverse is split_key).
std::string key_of(const json::value& obj);

// podutil.IsPodReady: the Ready condition is "True".
bool pod_ready(const json::value& pod);
// The owner reference with controller=true, or nullptr.
const json::value* controller_ref(const json::value& obj);

// The selector of a Service (a plain label map); nullopt when the service has none.
std::optional<LabelSelector> service_selector(const json::value& svc);

// intstr: an int, or a percentage "N%" of `total` rounded up or down (upstream
// GetScaledValueFromIntOrPercent); nullopt when the value is malformed.
std::optional<std::int64_t> scaled_int_or_percent(const json::value& v, std::int64_t total,
                                                  bool round_up);

std::string now_rfc3339();

class ControllerBase : public std::enable_shared_from_this<ControllerBase> {
 public:
  ControllerBase(loop::ControllerContext& ctx, std::string name);
  virtual ~ControllerBase();

  // Registers the informer handlers; called once right after construction (shared_from_this
  // works here, not in the constructor).
  virtual void init() = 0;
  virtual Awaitable<Result<void>> sync(std::string key) = 0;
  // Called by start() after the queue started (e.g. to enqueue every object once).
  virtual void on_start() {}

  // Creates the work queue (its sync holds a weak reference). Called by make_controller.
  void setup();
  void start();
  void stop();
  bool stopped() const { return stopped_; }
  const std::string& name() const { return name_; }
  loop::WorkQueue& queue() { return *queue_; }

  // Wraps a handler so that it does nothing once the controller is gone or stopped.
  template <class Self, class F>
  static auto guarded(std::weak_ptr<Self> w, F f) {
    return [w = std::move(w), f = std::move(f)](const auto&... args) {
      auto self = w.lock();
      if (self && !self->stopped()) f(*self, args...);
    };
  }

 protected:
  client::Client client_;
  loop::SharedInformers& informers_;
  loop::ControllerOptions options_;
  boost::asio::any_io_executor executor_;

 private:
  static Awaitable<Result<void>> run_sync(std::weak_ptr<ControllerBase> w, std::string key);
  std::string name_;
  std::unique_ptr<loop::WorkQueue> queue_;
  bool started_ = false;
  bool stopped_ = false;
};

// Creates T (a ControllerBase), calls init(), and wraps it as a loop::Controller.
std::unique_ptr<loop::Controller> adapt(std::shared_ptr<ControllerBase> impl);

template <class T, class... Args>
std::unique_ptr<loop::Controller> make_controller(Args&&... args) {
  auto impl = std::make_shared<T>(std::forward<Args>(args)...);
  impl->setup();
  impl->init();
  return adapt(std::move(impl));
}

}  // namespace podwarp::controllers
