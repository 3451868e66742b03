// PodManager: the kubelet's top: runs one PodWorker per pod, adopts the pods persisted by a
// previous noded, cleans up pods whose source vanished while noded was down, and answers the
// node API's questions (the pod list with status, log file paths).
//
// Pod sources (both may be active at once):
//  - the manifest folder (static pods; inotify on the loop plus a periodic rescan as a safety
//    net), when PodManagerOptions::manifest_dir is set;
//  - the API (noded/agent): add_api_pod / remove_api_pod / api_synced, when
//    PodManagerOptions::api_source is set. An API pod runs under its real UID. Persisted
//    records are kept (not cleaned) until api_synced(): a record whose UID the API source
//    claimed by then is adopted (no container restarts), the others are orphans and cleaned.
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
#include <set>
#include <string>

#include "logs/cri_log.h"
#include "pods/pod_worker.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::pods {

struct PodManagerOptions {
  std::string manifest_dir;               // "" = no static pods
  std::string root_dir;                   // state under <root>/pods/<uid>/
  std::string pod_log_dir = "/var/log/pods";
  std::string node_name;                  // static pod names get "-<node_name>"; "" = none
  std::string host_ip;                    // status.hostIP ("" = unset)
  logs::CriLogWriter::Options log_options;
  WorkerTimings timings;
  // Periodic rescan without inotify; with inotify every 30 intervals, as a safety net.
  std::chrono::milliseconds rescan_interval{1000};
  // API mode: persisted records wait for api_synced() instead of being cleaned at start.
  bool api_source = false;
  // ConfigMap/Secret lookup for API pods (static pods use the folder's objects); may be null.
  ObjectLookup api_lookup;
  // The cluster's Services for the pods' service environment variables (API mode; static pods
  // too, without waiting for the Services to be read); may be null (standalone: none).
  ServiceList api_services;
  // Workers' status may have changed (uid); called on the loop, often: coalesce.
  std::function<void(const std::string& uid)> on_status_changed;
  // A pod stopped by remove_api_pod (or an orphan record) is entirely gone.
  std::function<void(const std::string& ns, const std::string& name, const std::string& uid)>
      on_pod_terminated;
  // Kubelet events of a pod (pod = the pod object: kind, apiVersion, metadata). Default: logged.
  std::function<void(const json::value& pod, std::string_view type, std::string_view reason,
                     const std::string& message)>
      on_event;
  // Extra WorkerEnv setup for API pods (service-account tokens, ...); may be null.
  std::function<void(WorkerEnv&)> api_env;
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

  // --- streams lookups --- (node API exec/attach/port-forward; implemented over find_pod)
  struct StreamTarget {
    std::string pod_uid;
    std::string container_id;   // runtime id of the current run ("" when none)
    bool running = false;       // the container's current state is running
    bool spec_stdin = false, spec_tty = false;  // the container's spec stdin / tty
    std::shared_ptr<console::Console> console;  // its running run's stdin/terminal, if any
  };
  // Errors: code 404 "pod does not exist"; 400 "container <c> is not valid for pod <p>".
  struct StreamLookupError {
    int code = 404;
    std::string message;
  };
  // `container` empty: the pod only (port-forward).
  std::expected<StreamTarget, StreamLookupError> stream_target(std::string_view ns,
                                                               std::string_view pod,
                                                               std::string_view container) const;
  // --- end streams lookups ---

  // --- API source (noded/agent) ---
  // Runs `def` (its UID is the API object's) unless a worker with that UID exists; adopts the
  // persisted record of that UID. Returns false when it already ran.
  virtual bool add_api_pod(PodDef def) = 0;
  // A pod the API gave that cannot run (invalid spec): reported Failed with reason/message.
  virtual bool add_failed_api_pod(PodDef def, std::string reason, std::string message) = 0;
  // Stops the pod of `uid` gracefully (grace: overrides terminationGracePeriodSeconds), or
  // cleans its persisted record when no worker runs it; on_pod_terminated fires when all is
  // gone. False when nothing of that UID is known (no callback then).
  virtual bool remove_api_pod(const std::string& uid, std::optional<std::int64_t> grace) = 0;
  // The API source listed completely: API workers and persisted records whose UID is not in
  // `present` are orphans: stopped and cleaned. Records of present UIDs nobody claimed (terminal
  // pods) stay until remove_api_pod().
  virtual void api_synced(const std::set<std::string>& present) = 0;
  // The worker of a UID (running or terminating), or nullptr.
  virtual std::shared_ptr<PodWorker> worker(const std::string& uid) const = 0;
  // A PersistentVolumeClaim or PersistentVolume changed (PodWorker::claims_changed).
  virtual void claims_changed() = 0;
  // Whether a persisted record of `uid` waits for its pod (before api_synced()).
  virtual bool has_record(const std::string& uid) const = 0;
};

std::unique_ptr<PodManager> make_pod_manager(boost::asio::any_io_executor ex, PodManagerOptions o,
                                             ContainerRuntime& runtime, ImageService& images);

}  // namespace podwarp::noded::pods
