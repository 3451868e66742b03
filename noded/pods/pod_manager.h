// PodManager: the standalone kubelet's top: reads the manifest folder (inotify on the loop, plus
// a periodic rescan as a safety net), runs one PodWorker per pod, adopts the pods persisted by a
// previous noded, cleans up pods whose manifest vanished while noded was down, and answers the
// local API's questions (the pod list with status, log file paths).
//
// Manifest changes: a new file (or new content: the static-pod UID is a hash of the content)
// starts a pod; a removed file (or old content) stops its pod gracefully. A file that cannot
// be parsed or checked is logged once per content ("manifest <file>: <field>: <message>") and,
// when its pod name can be read, that pod is listed as Failed with reason InvalidManifest.
//
// Threading: everything runs on the io_context given to make_pod_manager(); the query methods
// must be called from that context's thread too.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "logs/cri_log.h"
#include "pods/pod_worker.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::pods {

struct PodManagerOptions {
  std::string manifest_dir;
  std::string root_dir;                   // state under <root>/pods/<uid>/
  std::string pod_log_dir = "/var/log/pods";
  std::string node_name;                  // static pod names get "-<node_name>"; "" = none
  std::string host_ip;                    // status.hostIP ("" = unset)
  logs::CriLogWriter::Options log_options;
  WorkerTimings timings;
  // Periodic rescan without inotify; with inotify every 30 intervals, as a safety net.
  std::chrono::milliseconds rescan_interval{1000};
};

class PodManager {
 public:
  virtual ~PodManager() = default;
  // Adopts persisted pods, scans the folder, starts watching it.
  virtual void start() = 0;
  // Stops every pod gracefully and stops watching; `done` runs when all are gone.
  virtual void stop_all(std::function<void()> done) = 0;
  // Reads the manifest folder now and reconciles.
  virtual void rescan() = 0;

  // A v1 PodList with the status of every pod (as the kubelet's /pods).
  virtual json::value pod_list() const = 0;
  virtual const PodWorker* find_pod(std::string_view ns, std::string_view name) const = 0;
  // Log file of a container ("previous": of its previous run).
  virtual std::expected<std::string, std::string> container_log_path(std::string_view ns,
                                                                     std::string_view pod,
                                                                     std::string_view container,
                                                                     bool previous) const = 0;
  virtual bool container_running(std::string_view ns, std::string_view pod,
                                 std::string_view container) const = 0;
  virtual bool healthy() const = 0;
};

std::unique_ptr<PodManager> make_pod_manager(boost::asio::any_io_executor ex, PodManagerOptions o,
                                             ContainerRuntime& runtime, ImageService& images);

}  // namespace podwarp::noded::pods
