// LeaderElector: client-go's leader election over a coordination.k8s.io/v1 Lease, so that of
// several podwarp-control processes exactly one runs the scheduler (and one the controllers).
//
// The state machine:
//   follower --(lease absent, or its holder has not renewed for leaseDuration as observed
//               locally)--> acquire: update the Lease (compare-and-swap on resourceVersion)
//               with us as holder; on success: leader, on_started_leading().
//   leader   --(renew every retry_period)--> leader
//   leader   --(no successful renewal within renew_deadline)--> lost: on_stopped_leading().
// Expiry is judged by when this process last saw the Lease change (not by the holder's
// clock), as upstream does, so clock skew between hosts does not matter.
// A leader that loses the lease must stop acting at once; podwarp-control exits, as upstream
// components do, and its supervisor restarts it as a follower.
//
// Threading: runs on the client's executor; callbacks run there.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "podwarp/client.h"

namespace podwarp::loop {

struct LeaderElectionOptions {
  std::string lease_namespace = "kube-system";
  std::string lease_name;  // "podwarp-scheduler", "podwarp-controller-manager"
  std::string identity;    // default: "<hostname>_<random>"
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
};

class LeaderElector {
 public:
  LeaderElector(client::Client client, LeaderElectionOptions options);
  ~LeaderElector();

  // Starts the election loop (once).
  void run(std::function<void()> on_started_leading, std::function<void()> on_stopped_leading);
  // Ends the loop; a leader stops renewing (the lease expires for the others; it is not
  // released, as with upstream's default ReleaseOnCancel=false).
  void stop();

  bool is_leader() const;
  const std::string& identity() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// "<hostname>_<16 random hex digits>".
std::string default_identity();

}  // namespace podwarp::loop
