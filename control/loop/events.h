// EventRecorder: writes core/v1 Events about objects, as client-go's recorder does, so that
// `kubectl describe` and `kubectl get events` show what the control plane did.
//
// record() is fire and forget: the write is queued and a single sender on the client's
// executor sends the queue in order, one request at a time, through a token bucket (qps,
// burst), as client-go's broadcaster does with the kubelet's eventRecordQPS 50 / eventBurst 100.
// So events never compete with a burst of pod starts for the API server: they trail it. A full
// queue (max_queued) drops the new event (logged), as upstream's ActionOrDrop. A failed write
// is logged (debug) and not retried. Repeats of the same (object, type, reason, message) within
// 10 minutes update the existing Event (count + 1, lastTimestamp) instead of creating a new one,
// as upstream's correlator does (a repeat of an event still queued updates the queued one).
//
// Threading: call from the client's executor (one thread).
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "podwarp/client.h"
#include "podwarp/json.h"

namespace podwarp::loop {

struct EventRecorderOptions {
  double qps = 50;              // token bucket refill per second (<= 0: unlimited)
  int burst = 100;              // bucket size
  std::size_t max_queued = 1000;
};

class EventRecorder {
 public:
  // `component` is source.component / reportingComponent ("deployment-controller",
  // "default-scheduler"); `host` is source.host (empty for control-plane components).
  EventRecorder(client::Client client, std::string component, std::string host = {},
                EventRecorderOptions opts = {});

  // type: "Normal" or "Warning". The involved object must have kind (or be given one via
  // `kind`), apiVersion, metadata.name/namespace/uid.
  void record(const json::value& involved_object, std::string_view type, std::string_view reason,
              std::string message);

  // The Event object record() would create (exposed for tests).
  json::object make_event(const json::value& involved_object, std::string_view type,
                          std::string_view reason, const std::string& message,
                          std::chrono::system_clock::time_point now) const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace podwarp::loop
