// ProbeWorker: the periodic loop of one probe of one container, as the kubelet's
// prober/worker.go: waits initialDelaySeconds, then runs the check every periodSeconds with
// timeoutSeconds, and flips its result only after successThreshold consecutive successes or
// failureThreshold consecutive failures. Initial results as upstream: liveness starts as
// success, readiness and startup as failure. A startup probe stops probing once it succeeded;
// liveness and readiness probes are gated (not run) until then.
//
// Threading: all on one io_context; start/stop/result from that context's thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "probes/probe.h"

namespace podwarp::noded::probes {

enum class ProbeType { kLiveness, kReadiness, kStartup };
const char* probe_type_name(ProbeType t);  // "Liveness", "Readiness", "Startup"

class ProbeWorker : public std::enable_shared_from_this<ProbeWorker> {
 public:
  struct Options {
    ProbeType type = ProbeType::kReadiness;
    ProbeSpec spec;
    Target target;
    // Length of one "second" of the spec's timing fields (tests shrink it).
    std::chrono::milliseconds second{1000};
    // Called when the result flips (after the thresholds), with the last outcome's message.
    std::function<void(bool ok, const std::string& message)> on_change;
    // Probing happens only while gate() is true (liveness/readiness wait for startup). Empty:
    // always.
    std::function<bool()> gate;
  };

  static std::shared_ptr<ProbeWorker> start(boost::asio::any_io_executor ex, Options o);
  // Stops the loop at its next wake-up; on_change is not called afterwards.
  void stop();
  bool result() const { return result_; }

  explicit ProbeWorker(Options o);

 private:
  boost::asio::awaitable<void> run();

  Options o_;
  bool result_;
  bool stopped_ = false;
  int successes_ = 0, failures_ = 0;
};

}  // namespace podwarp::noded::probes
