#include "loop/work_queue.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cmath>
#include <deque>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "podwarp/log.h"

namespace podwarp::loop {

namespace asio = boost::asio;

struct WorkQueue::State : std::enable_shared_from_this<WorkQueue::State> {
  asio::any_io_executor executor;
  std::string name;
  Sync sync;
  int workers = 1;
  std::deque<std::string> queue;
  std::unordered_set<std::string> dirty;       // queued or to be re-queued after processing
  std::unordered_set<std::string> processing;  // being synced now
  std::unordered_map<std::string, int> failures;
  asio::steady_timer signal;  // idle workers wait here; add() wakes one
  bool started = false;
  bool stopped = false;

  State(asio::any_io_executor ex, std::string n, Sync s, int w)
      : executor(std::move(ex)),
        name(std::move(n)),
        sync(std::move(s)),
        workers(std::max(1, w)),
        signal(executor, asio::steady_timer::time_point::max()) {}

  void add(std::string key) {
    if (stopped) return;
    if (!dirty.insert(key).second) return;
    if (processing.contains(key)) return;  // queued again when its sync ends
    queue.push_back(std::move(key));
    signal.cancel_one();
  }

  static asio::awaitable<void> worker(std::shared_ptr<State> self) {
    while (!self->stopped) {
      if (self->queue.empty()) {
        boost::system::error_code ec;
        co_await self->signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      std::string key = std::move(self->queue.front());
      self->queue.pop_front();
      self->dirty.erase(key);
      self->processing.insert(key);
      client::Result<void> r;
      try {
        r = co_await self->sync(key);
      } catch (const std::exception& e) {
        r = std::unexpected(client::Error{.reason = "InternalError", .message = e.what()});
      }
      self->processing.erase(key);
      if (self->stopped) co_return;
      if (r) {
        self->failures.erase(key);
      } else {
        int n = self->failures[key]++;
        log::debug("{}: sync {} failed ({} retries): {}", self->name, key, n,
                   r.error().to_string());
        self->add_after(key, backoff(n));
      }
      if (self->dirty.contains(key)) {
        self->queue.push_back(key);
        self->signal.cancel_one();
      }
    }
  }

  static std::chrono::milliseconds backoff(int failures) {
    // 5 ms * 2^failures, capped at 1000 s.
    double ms = 5.0 * std::pow(2.0, std::min(failures, 30));
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(ms, 1'000'000.0)));
  }

  void add_after(std::string key, std::chrono::milliseconds delay) {
    if (stopped) return;
    if (delay <= std::chrono::milliseconds(0)) {
      add(std::move(key));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(executor, delay);
    timer->async_wait([self = shared_from_this(), timer, key = std::move(key)](
                          boost::system::error_code ec) mutable {
      if (!ec) self->add(std::move(key));
    });
  }
};

WorkQueue::WorkQueue(asio::any_io_executor executor, std::string name, Sync sync, int workers)
    : state_(std::make_shared<State>(std::move(executor), std::move(name), std::move(sync),
                                     workers)) {}

WorkQueue::~WorkQueue() { stop(); }

void WorkQueue::add(std::string key) { state_->add(std::move(key)); }

void WorkQueue::add_after(std::string key, std::chrono::milliseconds delay) {
  state_->add_after(std::move(key), delay);
}

void WorkQueue::add_rate_limited(std::string key) {
  int n = state_->failures[key]++;
  state_->add_after(std::move(key), State::backoff(n));
}

void WorkQueue::forget(const std::string& key) { state_->failures.erase(key); }

int WorkQueue::retries(const std::string& key) const {
  auto it = state_->failures.find(key);
  return it == state_->failures.end() ? 0 : it->second;
}

void WorkQueue::start() {
  if (state_->started || state_->stopped) return;
  state_->started = true;
  for (int i = 0; i < state_->workers; ++i) {
    asio::co_spawn(state_->executor, State::worker(state_), asio::detached);
  }
}

void WorkQueue::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  state_->queue.clear();
  state_->signal.cancel();
}

std::size_t WorkQueue::size() const { return state_->queue.size(); }
const std::string& WorkQueue::name() const { return state_->name; }

}  // namespace podwarp::loop
