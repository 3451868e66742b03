// What the pod workers persist so that a restarted noded takes its pods over again without
// restarting containers: <root-dir>/pods/<uid>/state.json, written atomically (temp file +
// rename) on every container start and exit. A pidfd cannot survive the process, so a running
// container is identified by its pid plus the start time of that pid (field 22 of
// /proc/<pid>/stat), which tells a recycled pid apart.
//
// Not thread-safe: used from the pod manager's loop only.
#pragma once

#include <expected>
#include <optional>
#include <deque>
#include <string>
#include <vector>

#include "pods/pod_status.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::pods {

struct ContainerRecord {
  std::string name;
  bool init = false;
  bool ephemeral = false;  // spec.ephemeralContainers (added by the API to a running pod)
  ContainerHandle handle;  // id empty: no current run
  bool running = false;    // the current run had not exited at the last write
  int restart_count = 0;
  WallTime started_at{};
  std::optional<ContainerState> last_termination;  // how the last finished run ended
  std::string image_id;
};

struct PodRecord {
  std::string uid, ns, name, source_file;
  bool sandbox_created = false;
  std::deque<ContainerRecord> containers;  // a deque: ephemeral containers are appended while
                                          // workers hold pointers to the others
  ContainerRecord* find(std::string_view name, bool init);
};

json::value record_to_json(const PodRecord& r);
std::expected<PodRecord, std::string> record_from_json(const json::value& v);

class PodStateStore {
 public:
  explicit PodStateStore(std::string root_dir) : root_(std::move(root_dir)) {}
  std::string pod_dir(std::string_view uid) const;  // <root>/pods/<uid>
  std::expected<void, std::string> save(const PodRecord& r) const;
  std::optional<PodRecord> load(std::string_view uid) const;
  std::vector<PodRecord> load_all() const;  // unreadable records are logged and skipped
  void remove(std::string_view uid) const;  // the whole pod dir

 private:
  std::string root_;
};

// Start time (clock ticks since boot) of a pid from /proc/<pid>/stat; nullopt if gone.
std::optional<std::uint64_t> process_start_ticks(pid_t pid);
// True when pid exists and is the same process (same start ticks).
bool same_process(pid_t pid, std::uint64_t start_ticks);

}  // namespace podwarp::noded::pods
