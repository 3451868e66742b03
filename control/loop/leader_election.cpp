#include "loop/leader_election.h"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "loop/api.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::loop {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t seconds_ceil(std::chrono::milliseconds d) {
  return (d.count() + 999) / 1000;
}

}  // namespace

std::string default_identity() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "podwarp");
  std::random_device rd;
  std::uint64_t r = (std::uint64_t(rd()) << 32) ^ rd();
  return fmt::format("{}_{:016x}", host, r);
}

struct LeaderElector::State {
  client::Client client;
  LeaderElectionOptions opts;
  std::function<void()> started;
  std::function<void()> stopped_leading;
  asio::steady_timer timer;
  bool running = false;
  bool stopped = false;
  bool leader = false;
  // What we last saw of the lease, and when (local clock).
  std::string observed_holder;
  std::string observed_renew;
  Clock::time_point observed_at{};
  Clock::time_point last_renew{};  // our last successful acquire/renew

  State(client::Client c, LeaderElectionOptions o)
      : client(std::move(c)), opts(std::move(o)), timer(client.get_executor()) {}

  json::object spec(std::int64_t transitions, const std::string& acquire_time,
                    const std::string& now) const {
    return json::object{{"holderIdentity", opts.identity},
                        {"leaseDurationSeconds", seconds_ceil(opts.lease_duration)},
                        {"acquireTime", acquire_time},
                        {"renewTime", now},
                        {"leaseTransitions", transitions}};
  }

  // One attempt; true when we hold the lease afterwards.
  client::Awaitable<bool> try_acquire_or_renew() {
    std::string now = format_rfc3339_micro(std::chrono::system_clock::now());
    const api::Resource& res = resource("coordination.k8s.io", "leases");
    auto cur = co_await api_get(client, res, opts.lease_namespace, opts.lease_name);
    if (!cur) {
      if (!cur.error().is_not_found()) {
        log::debug("leader election {}: get lease: {}", opts.lease_name, cur.error().to_string());
        co_return false;
      }
      json::value lease = json::object{
          {"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", json::object{{"name", opts.lease_name}, {"namespace", opts.lease_namespace}}},
          {"spec", spec(0, now, now)}};
      auto created = co_await api_create(client, res, opts.lease_namespace, std::move(lease));
      if (!created) {
        log::debug("leader election {}: create lease: {}", opts.lease_name,
                   created.error().to_string());
        co_return false;
      }
      observe(opts.identity, now);
      co_return true;
    }
    json::value& lease = *cur;
    std::string holder(get_string(lease, {"spec", "holderIdentity"}));
    std::string renew(get_string(lease, {"spec", "renewTime"}));
    if (holder != observed_holder || renew != observed_renew) observe(holder, renew);
    std::int64_t duration_s = get_int(lease, {"spec", "leaseDurationSeconds"},
                                      seconds_ceil(opts.lease_duration));
    bool held_by_other = !holder.empty() && holder != opts.identity;
    if (held_by_other && Clock::now() < observed_at + std::chrono::seconds(duration_s)) {
      co_return false;
    }
    std::int64_t transitions = get_int(lease, {"spec", "leaseTransitions"}, 0);
    std::string acquire(get_string(lease, {"spec", "acquireTime"}));
    if (holder != opts.identity) {
      transitions += held_by_other ? 1 : 0;
      acquire = now;
    }
    lease.as_object()["spec"] = spec(transitions, acquire, now);
    auto updated = co_await api_update(client, res, opts.lease_namespace, lease);
    if (!updated) {
      log::debug("leader election {}: update lease: {}", opts.lease_name,
                 updated.error().to_string());
      co_return false;
    }
    observe(opts.identity, now);
    co_return true;
  }

  void observe(std::string holder, std::string renew) {
    observed_holder = std::move(holder);
    observed_renew = std::move(renew);
    observed_at = Clock::now();
  }

  client::Awaitable<void> sleep(std::chrono::milliseconds d) {
    timer.expires_after(d);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  static client::Awaitable<void> loop(std::shared_ptr<State> self) {
    // Acquire.
    while (!self->stopped && !self->leader) {
      // The result in a named local: g++ 12 miscompiles co_await inside an if condition here.
      const bool acquired = co_await self->try_acquire_or_renew();
      if (acquired) {
        self->leader = true;
        self->last_renew = Clock::now();
        log::info("leader election {}: {} became leader", self->opts.lease_name,
                  self->opts.identity);
        if (self->started) self->started();
        break;
      }
      const std::chrono::milliseconds pause = self->jittered(self->opts.retry_period);
      co_await self->sleep(pause);
    }
    // Renew.
    while (!self->stopped && self->leader) {
      co_await self->sleep(self->opts.retry_period);
      if (self->stopped) break;
      const bool renewed = co_await self->try_acquire_or_renew();
      if (renewed) {
        self->last_renew = Clock::now();
        continue;
      }
      if (Clock::now() - self->last_renew >= self->opts.renew_deadline) {
        self->leader = false;
        log::error("leader election {}: {} lost the lease (no renewal for {} ms)",
                   self->opts.lease_name, self->opts.identity, self->opts.renew_deadline.count());
        if (self->stopped_leading) self->stopped_leading();
      }
    }
  }

  std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    static thread_local std::minstd_rand rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> dist(0, d.count() / 5);
    return d + std::chrono::milliseconds(dist(rng));
  }
};

LeaderElector::LeaderElector(client::Client client, LeaderElectionOptions options) {
  if (options.identity.empty()) options.identity = default_identity();
  state_ = std::make_shared<State>(std::move(client), std::move(options));
}

LeaderElector::~LeaderElector() { stop(); }

void LeaderElector::run(std::function<void()> on_started_leading,
                        std::function<void()> on_stopped_leading) {
  if (state_->running || state_->stopped) return;
  state_->running = true;
  state_->started = std::move(on_started_leading);
  state_->stopped_leading = std::move(on_stopped_leading);
  asio::co_spawn(state_->client.get_executor(), State::loop(state_), asio::detached);
}

void LeaderElector::stop() {
  state_->stopped = true;
  state_->timer.cancel();
}

bool LeaderElector::is_leader() const { return state_->leader; }
const std::string& LeaderElector::identity() const { return state_->opts.identity; }

}  // namespace podwarp::loop
