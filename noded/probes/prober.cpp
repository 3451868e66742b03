#include "probes/prober.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "podwarp/log.h"

namespace podwarp::noded::probes {

namespace asio = boost::asio;

const char* probe_type_name(ProbeType t) {
  switch (t) {
    case ProbeType::kLiveness: return "Liveness";
    case ProbeType::kReadiness: return "Readiness";
    case ProbeType::kStartup: return "Startup";
  }
  return "?";
}

ProbeWorker::ProbeWorker(Options o)
    : o_(std::move(o)), result_(o_.type == ProbeType::kLiveness) {}

std::shared_ptr<ProbeWorker> ProbeWorker::start(asio::any_io_executor ex, Options o) {
  auto w = std::make_shared<ProbeWorker>(std::move(o));
  asio::co_spawn(ex, [w]() -> asio::awaitable<void> { co_await w->run(); }, asio::detached);
  return w;
}

void ProbeWorker::stop() { stopped_ = true; }

asio::awaitable<void> ProbeWorker::run() {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  timer.expires_after(o_.second * o_.spec.initial_delay_seconds);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  while (!stopped_) {
    if (!o_.gate || o_.gate()) {
      auto out = co_await run_handler(o_.spec.handler, o_.target, o_.second * o_.spec.timeout_seconds);
      if (stopped_) break;
      if (out.success) {
        failures_ = 0;
        if (++successes_ >= o_.spec.success_threshold && !result_) {
          result_ = true;
          if (o_.on_change) o_.on_change(true, out.message);
        }
      } else {
        successes_ = 0;
        if (++failures_ >= o_.spec.failure_threshold && result_) {
          result_ = false;
          if (o_.on_change) o_.on_change(false, out.message);
        } else if (failures_ >= o_.spec.failure_threshold && !result_ &&
                   o_.type != ProbeType::kReadiness && failures_ == o_.spec.failure_threshold) {
          // Startup probes start as failure: a threshold of failures is the event itself.
          if (o_.on_change) o_.on_change(false, out.message);
        }
      }
      if (o_.type == ProbeType::kStartup && result_) break;  // startup done
    }
    timer.expires_after(o_.second * o_.spec.period_seconds);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace podwarp::noded::probes
