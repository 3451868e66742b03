// WorkQueue: the keyed, de-duplicating, rate-limited queue between informer callbacks and a
// controller's sync function, with client-go's workqueue semantics.
//
//  - add(key): a key is queued at most once. A key being synced when it is added again is
//    synced once more after the current sync ends (never twice concurrently).
//  - add_after(key, d): add(key) after d.
//  - A sync that fails is retried with per-key exponential backoff (5 ms doubling to 1000 s,
//    as client-go's default controller rate limiter); a success resets the key's backoff.
//  - `workers` coroutines sync concurrently (distinct keys).
//
// Threading: not locked; all calls and syncs run on the executor given at construction (one
// thread). Lifetime: in-flight timers and workers keep the shared state alive; after stop()
// nothing is synced again.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "podwarp/client.h"

namespace podwarp::loop {

class WorkQueue {
 public:
  // Returns an Error to have the key retried with backoff.
  using Sync = std::function<client::Awaitable<client::Result<void>>(std::string key)>;

  WorkQueue(boost::asio::any_io_executor executor, std::string name, Sync sync, int workers = 1);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(std::string key);
  void add_after(std::string key, std::chrono::milliseconds delay);
  void add_rate_limited(std::string key);
  // Resets the key's failure count.
  void forget(const std::string& key);
  int retries(const std::string& key) const;

  void start();
  void stop();
  // Keys waiting (not counting those being synced).
  std::size_t size() const;
  const std::string& name() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace podwarp::loop
