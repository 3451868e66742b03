#include "scheduler/queue.h"

namespace podwarp::scheduler {

SchedulingQueue::ActiveKey SchedulingQueue::active_key(const Entry& e) const {
  return {-static_cast<std::int64_t>(e.pod->priority), e.pod->created_ns, e.seq, e.pod->uid};
}

void SchedulingQueue::leave(Entry& e) {
  switch (e.state) {
    case State::kActive:
      active_.erase(active_key(e));
      break;
    case State::kBackoff:
      backoff_.erase({e.backoff_until, e.seq, e.pod->uid});
      break;
    case State::kUnschedulable:
      --unschedulable_count_;
      break;
    case State::kInFlight:
      --in_flight_count_;
      break;
  }
}

void SchedulingQueue::to_active(Entry& e) {
  e.state = State::kActive;
  active_.insert(active_key(e));
}

void SchedulingQueue::to_backoff(Entry& e) {
  e.state = State::kBackoff;
  backoff_.insert({e.backoff_until, e.seq, e.pod->uid});
}

void SchedulingQueue::requeue(Entry& e, TimePoint now) {
  if (e.backoff_until > now) {
    to_backoff(e);
  } else {
    to_active(e);
  }
}

std::chrono::milliseconds SchedulingQueue::backoff_duration(int attempts) const {
  auto d = options_.initial_backoff;
  for (int i = 1; i < attempts; ++i) {
    d *= 2;
    if (d > options_.max_backoff) return options_.max_backoff;
  }
  return d;
}

void SchedulingQueue::add(PodPtr pod, TimePoint now) {
  auto it = entries_.find(pod->uid);
  if (it != entries_.end()) {
    update(std::move(pod), now);
    return;
  }
  Entry e;
  e.pod = std::move(pod);
  e.seq = ++seq_;
  std::string uid = e.pod->uid;
  auto [pos, inserted] = entries_.emplace(std::move(uid), std::move(e));
  to_active(pos->second);
}

void SchedulingQueue::update(PodPtr pod, TimePoint now) {
  auto it = entries_.find(pod->uid);
  if (it == entries_.end()) {
    add(std::move(pod), now);
    return;
  }
  Entry& e = it->second;
  if (e.state == State::kInFlight) {
    e.pod = std::move(pod);  // the attempt in flight decides where it goes
    return;
  }
  leave(e);
  e.pod = std::move(pod);
  requeue(e, now);
}

void SchedulingQueue::replace(PodPtr pod) {
  auto it = entries_.find(pod->uid);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  if (e.state == State::kActive) {
    // The active key holds priority and creation time: re-insert.
    active_.erase(active_key(e));
    e.pod = std::move(pod);
    active_.insert(active_key(e));
    return;
  }
  e.pod = std::move(pod);
}

void SchedulingQueue::remove(const std::string& uid) {
  auto it = entries_.find(uid);
  if (it == entries_.end()) return;
  leave(it->second);
  entries_.erase(it);
}

std::optional<PodPtr> SchedulingQueue::pop(TimePoint now) {
  flush(now);
  if (active_.empty()) return std::nullopt;
  auto first = active_.begin();
  auto it = entries_.find(std::get<3>(*first));
  active_.erase(first);
  Entry& e = it->second;
  e.state = State::kInFlight;
  ++in_flight_count_;
  e.popped_cycle = ++cycle_;
  return e.pod;
}

void SchedulingQueue::done(const std::string& uid) { remove(uid); }

void SchedulingQueue::unschedulable(const std::string& uid, TimePoint now) {
  auto it = entries_.find(uid);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  leave(e);
  ++e.attempts;
  e.backoff_until = now + backoff_duration(e.attempts);
  if (move_request_cycle_ >= e.popped_cycle && e.popped_cycle != 0) {
    to_backoff(e);  // something changed while it was being scheduled
  } else {
    e.state = State::kUnschedulable;
    e.unschedulable_since = now;
    ++unschedulable_count_;
  }
}

void SchedulingQueue::backoff(const std::string& uid, TimePoint now) {
  auto it = entries_.find(uid);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  leave(e);
  ++e.attempts;
  e.backoff_until = now + backoff_duration(e.attempts);
  to_backoff(e);
}

void SchedulingQueue::move_all(TimePoint now) {
  move_request_cycle_ = cycle_;
  if (unschedulable_count_ == 0) return;
  for (auto& [uid, e] : entries_) {
    if (e.state != State::kUnschedulable) continue;
    leave(e);
    requeue(e, now);
  }
}

void SchedulingQueue::flush(TimePoint now) {
  while (!backoff_.empty() && std::get<0>(*backoff_.begin()) <= now) {
    auto it = entries_.find(std::get<2>(*backoff_.begin()));
    backoff_.erase(backoff_.begin());
    to_active(it->second);
  }
  // Scanning for pods unschedulable too long is O(queued pods): at most once a second.
  if (unschedulable_count_ == 0 || now - last_unschedulable_flush_ < std::chrono::seconds(1))
    return;
  last_unschedulable_flush_ = now;
  for (auto& [uid, e] : entries_) {
    if (e.state == State::kUnschedulable &&
        now - e.unschedulable_since >= options_.max_unschedulable) {
      leave(e);
      requeue(e, now);
    }
  }
}

std::optional<SchedulingQueue::TimePoint> SchedulingQueue::next_backoff_expiry() const {
  if (backoff_.empty()) return std::nullopt;
  return std::get<0>(*backoff_.begin());
}

int SchedulingQueue::attempts(const std::string& uid) const {
  auto it = entries_.find(uid);
  return it == entries_.end() ? 0 : it->second.attempts;
}

}  // namespace podwarp::scheduler
