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

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace podwarp {

// Runs handlers for `d` (or until the io_context is stopped or runs out of work). Returns the
// number of handlers run, not counting its own timer.
inline std::size_t run_for(boost::asio::io_context& io, std::chrono::steady_clock::duration d) {
  auto done = std::make_shared<bool>(false);  // shared: the handler may outlive this call
  boost::asio::steady_timer timer(io, d);
  timer.async_wait([done](boost::system::error_code) { *done = true; });
  std::size_t n = 0;
  while (!*done) {
    if (io.run_one() == 0) break;  // stopped
    if (!*done) ++n;
  }
  return n;
}

// Runs at most one handler, waiting up to `d` for it (plus whatever runs while its own timer is
// withdrawn). Returns the number of handlers run, not counting its own timer.
inline std::size_t run_one_for(boost::asio::io_context& io,
                               std::chrono::steady_clock::duration d) {
  auto done = std::make_shared<bool>(false);
  boost::asio::steady_timer timer(io, d);
  timer.async_wait([done](boost::system::error_code) { *done = true; });
  std::size_t n = 0;
  if (io.run_one() != 0 && !*done) ++n;
  if (!*done) {
    timer.cancel();
    while (!*done) {
      if (io.run_one() == 0) break;  // stopped: the handler runs (harmlessly) later
      if (!*done) ++n;
    }
  }
  return n;
}

// Runs handlers until done() holds, `timeout` passes, or the io_context is stopped; returns
// done(). (Where io_context::run_for returned early because the work ran out, wait for the
// condition that work stood for with this.)
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::steady_clock::duration timeout) {
  auto fired = std::make_shared<bool>(false);
  auto called = std::make_shared<bool>(false);
  boost::asio::steady_timer timer(io, timeout);
  timer.async_wait([fired, called](boost::system::error_code ec) {
    *called = true;
    *fired = !ec;
  });
  while (!done() && !*fired) {
    if (io.run_one() == 0) break;  // stopped
  }
  timer.cancel();
  while (!*called) {
    if (io.run_one() == 0) break;  // stopped: the handler runs (harmlessly) later
  }
  return done();
}

}  // namespace podwarp
