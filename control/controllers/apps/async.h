// Small coroutine helpers of the apps controllers (single-threaded executor).
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <memory>
#include <vector>

#include "podwarp/client.h"

namespace podwarp::apps {

using client::Awaitable;
using client::Result;

// Runs every task concurrently on the current executor and waits for all of them. Returns the
// results in task order.
inline Awaitable<std::vector<Result<void>>> run_all(
    std::vector<std::function<Awaitable<Result<void>>()>> tasks) {
  auto ex = co_await boost::asio::this_coro::executor;
  struct State {
    explicit State(boost::asio::any_io_executor e) : timer(e) {}
    boost::asio::steady_timer timer;
    std::size_t pending = 0;
    std::vector<Result<void>> results;
  };
  auto st = std::make_shared<State>(ex);
  st->pending = tasks.size();
  st->results.resize(tasks.size());
  if (tasks.empty()) co_return std::vector<Result<void>>{};
  st->timer.expires_at(boost::asio::steady_timer::time_point::max());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    boost::asio::co_spawn(
        ex,
        [st, i, task = std::move(tasks[i])]() -> Awaitable<void> {
          st->results[i] = co_await task();
          if (--st->pending == 0) st->timer.cancel();
        },
        boost::asio::detached);
  }
  while (st->pending > 0) {
    boost::system::error_code ec;
    co_await st->timer.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }
  co_return std::move(st->results);
}

}  // namespace podwarp::apps
