// SchedulingQueue: the pending pods, as upstream's PriorityQueue.
//
//  - activeQ: ready to be tried; popped by priority (higher first), then creation time, then
//    arrival order.
//  - backoffQ: failed recently; each pod waits 1s, doubled per failed attempt, at most 10s
//    (podInitialBackoffSeconds / podMaxBackoffSeconds), then returns to activeQ.
//  - unschedulable: failed because no node fits; they stay until a cluster event that may
//    make them fit (node added or updated, assigned pod deleted: move_all()) moves them to
//    backoffQ (if still backing off) or activeQ, or until they have waited 5 minutes
//    (podMaxInUnschedulablePodsDuration).
//
// A popped pod is in flight until it is bound (done()), or returned with unschedulable() /
// backoff(). If a move_all() happened while it was in flight, unschedulable() sends it to
// backoffQ instead, so the event that might have made it fit is not lost.
//
// Time is passed in, so tests drive it. Threading: not locked; one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>

#include "scheduler/model.h"

namespace podwarp::scheduler {

class SchedulingQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  struct Options {
    std::chrono::milliseconds initial_backoff{1000};
    std::chrono::milliseconds max_backoff{10'000};
    std::chrono::milliseconds max_unschedulable{5 * 60 * 1000};
  };

  SchedulingQueue() : SchedulingQueue(Options{}) {}
  explicit SchedulingQueue(Options options) : options_(options) {}

  // A new pending pod (or one seen again): to activeQ, unless already queued (then update).
  void add(PodPtr pod, TimePoint now);
  // A queued pod changed: its info is replaced; an unschedulable pod moves to activeQ (or
  // backoffQ while backing off), as an update may make it schedulable.
  void update(PodPtr pod, TimePoint now);
  // Replaces a queued pod's info without moving it (a status-only change).
  void replace(PodPtr pod);
  // The pod is gone, bound by someone else, or no longer ours.
  void remove(const std::string& uid);
  bool contains(const std::string& uid) const { return entries_.count(uid) != 0; }

  // Moves expired backoffs to activeQ, then takes the best pod of activeQ (now in flight).
  std::optional<PodPtr> pop(TimePoint now);
  // The in-flight pod was bound: forget it.
  void done(const std::string& uid);
  // The in-flight pod fits nowhere.
  void unschedulable(const std::string& uid, TimePoint now);
  // The in-flight pod failed for another reason (e.g. the binding call failed): retry after
  // its backoff.
  void backoff(const std::string& uid, TimePoint now);

  // A cluster event that may make unschedulable pods fit.
  void move_all(TimePoint now);
  // Periodic: backoffQ -> activeQ when expired, and unschedulable pods waiting too long.
  void flush(TimePoint now);

  // When the earliest backoff ends (to arm a timer), if any pod is backing off.
  std::optional<TimePoint> next_backoff_expiry() const;
  // The backoff a pod gets after `attempts` failed attempts.
  std::chrono::milliseconds backoff_duration(int attempts) const;

  std::size_t active_size() const { return active_.size(); }
  std::size_t backoff_size() const { return backoff_.size(); }
  std::size_t unschedulable_size() const { return unschedulable_count_; }
  std::size_t in_flight_size() const { return in_flight_count_; }
  // The number of failed attempts of a queued pod (0 when unknown).
  int attempts(const std::string& uid) const;

 private:
  enum class State { kActive, kBackoff, kUnschedulable, kInFlight };
  // (-priority, creation, seq, uid)
  using ActiveKey = std::tuple<std::int64_t, std::int64_t, std::uint64_t, std::string>;
  using BackoffKey = std::tuple<TimePoint, std::uint64_t, std::string>;
  struct Entry {
    PodPtr pod;
    State state = State::kActive;
    int attempts = 0;
    TimePoint backoff_until{};
    TimePoint unschedulable_since{};
    std::uint64_t seq = 0;
    std::uint64_t popped_cycle = 0;
  };

  void to_active(Entry& e);
  void to_backoff(Entry& e);
  void leave(Entry& e);  // removes from the current container
  ActiveKey active_key(const Entry& e) const;
  void requeue(Entry& e, TimePoint now);  // active or backoff, by backoff_until

  Options options_;
  std::unordered_map<std::string, Entry> entries_;
  std::set<ActiveKey> active_;
  std::set<BackoffKey> backoff_;
  std::size_t unschedulable_count_ = 0;
  std::size_t in_flight_count_ = 0;
  std::uint64_t seq_ = 0;
  std::uint64_t cycle_ = 0;
  std::uint64_t move_request_cycle_ = 0;
  TimePoint last_unschedulable_flush_{};
};

}  // namespace podwarp::scheduler
