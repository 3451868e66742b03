// run_for / run_one_for: io_context::run_for and run_one_for without Asio's timed run.
//
// Why: in Boost 1.81's io_uring backend a timed run (run_for, run_one_for, run_until, ...)
// submits an IORING_OP_TIMEOUT and, when something else completed first, an
// IORING_OP_TIMEOUT_REMOVE without setting that SQE's user_data (detail/impl/
// io_uring_service.ipp, io_uring_service::run). An SQE slot keeps the user_data of its last
// use, so the TIMEOUT_REMOVE's completion (result 0) is credited to whatever operation used
// that slot before: a socket read still in flight "completes" with 0 bytes (end of stream, on
// TLS "stream truncated"), and its real completion later goes to the next read, whose buffer
// never got the bytes ("decryption failed or bad record mac"). Traced with the io_uring
// tracepoints under scheduler_e2e_bench (docs/benchmarks.md). Asio 1.28.1 fixed it upstream.
// These helpers wait with a steady_timer instead, which goes through the timer queue's own
// (correctly tagged) timeout.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <utility>

namespace podwarp {

// Runs handlers until stop() holds (it is asked before the first and after every handler), `d`
// passes, or the io_context is stopped (io_context::stop()). The waiting is a steady_timer; its
// handler is run (or, when the io_context was stopped, left harmless) before this returns. A
// work guard keeps run_one() waiting while nothing else is queued (work posted later from
// other threads, e.g. gRPC completions, is still to come), so only the timer ends the wait.
inline void run_until(boost::asio::io_context& io, const std::function<bool()>& stop,
                      std::chrono::steady_clock::duration d) {
  auto guard = boost::asio::make_work_guard(io);
  struct State {
    bool called = false;
    bool fired = false;
  };
  auto state = std::make_shared<State>();  // the handler may outlive this call
  boost::asio::steady_timer timer(io, d);
  timer.async_wait([state](boost::system::error_code ec) {
    state->called = true;
    state->fired = !ec;
  });
  while (!state->fired && !stop()) {
    if (io.run_one() == 0) break;  // stopped
  }
  timer.cancel();
  while (!state->called) {
    if (io.run_one() == 0) break;  // stopped
  }
}

// Runs handlers for `d` (or until the io_context is stopped).
inline void run_for(boost::asio::io_context& io, std::chrono::steady_clock::duration d) {
  run_until(io, [] { return false; }, d);
}

// Runs at most one handler besides its own timer, waiting up to `d` for it.
inline void run_one_for(boost::asio::io_context& io, std::chrono::steady_clock::duration d) {
  run_until(io, [asked = 0]() mutable { return asked++ > 0; }, d);
}

// Drives `a` on `io` from the calling thread until it completes; returns its value (or throws
// what it threw). For tests that call a coroutine API between checks.
template <class T>
T run_to_completion(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto done = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  while (done.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    run_one_for(io, std::chrono::milliseconds(50));
  }
  return done.get();
}

}  // namespace podwarp
