// TaintEvictionController: upstream's NoExecute taint manager (pkg/controller/tainteviction).
//
// A pod bound to a node with NoExecute taints is
//   - deleted at once when some taint is not tolerated;
//   - deleted after the smallest tolerationSeconds of the tolerations that match, counted from
//     the taints' timeAdded (the newest), or from the pod's creation when it came later;
//   - kept when every taint is tolerated without tolerationSeconds.
// A scheduled deletion is cancelled when the taints go away or the pod changes so that it no
// longer applies (event "Cancelling deletion of Pod ns/name"). Before deleting, the pod gets
// the condition DisruptionTarget (reason DeletionByTaintManager) and the event
// TaintManagerEviction "Marking for deletion Pod ns/name". Pods already terminating are left
// alone.
#pragma once

#include <map>
#include <set>
#include <string>

#include "loop/controller.h"
#include "loop/key_index.h"
#include "loop/work_queue.h"

namespace podwarp::controllers {

class TaintEvictionController : public loop::Controller {
 public:
  explicit TaintEvictionController(loop::ControllerContext& ctx);
  std::string_view name() const override { return "taint-eviction-controller"; }
  void start() override;
  void stop() override;

 private:
  void process_pod(const json::value& pod);
  void process_node(std::string_view node_name);
  void cancel(const std::string& pod_key, const json::value* pod);
  client::Awaitable<client::Result<void>> evict(std::string pod_key);

  loop::ControllerContext& ctx_;
  loop::EventRecorder recorder_;
  loop::WorkQueue queue_;
  client::Informer& nodes_;
  client::Informer& pods_;
  loop::KeyIndex pods_by_node_;
  std::map<std::string, std::chrono::system_clock::time_point> scheduled_;  // pod key -> when
  bool started_ = false;
};

}  // namespace podwarp::controllers
