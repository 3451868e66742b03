// SocketDeadline: a timeout for the operations of one socket that cancels them and never closes
// the socket. Every socket of podwarp is closed only by the code that owns its operations, and
// only when none of them is in flight.
//
// Why: Boost 1.81's io_uring backend (detail/impl/io_uring_service.ipp) hands a socket's
// per-descriptor state back to a pool at close() even while an operation of that socket is
// still in the ring (close() has only queued a cancel request for it), and a socket opened
// next may get that state back with the stale operation still at the head of its queue. The
// new socket's first operation then waits behind it, and when the ring reports the stale one
// cancelled, the backend submits it again, with its old descriptor number (by then possibly the
// new socket's) and its old buffer. Beast's basic_stream timeouts (expires_after) close the
// socket from their timer, so podwarp's client does not use them: a deadline cancels
// (socket.cancel() keeps the state until the ring has reported the cancellation), the
// operation returns operation_aborted, and its coroutine closes the socket afterwards.
// (This is the hazard as the source reads; docs/benchmarks.md records that the client failure
// seen under the scheduler benchmark's load did not go away with it.)
//
// Threading: the deadline's handler runs on the socket's executor; use it from there only.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>

namespace podwarp {

template <class Socket>
class SocketDeadline {
 public:
  explicit SocketDeadline(Socket& socket) : socket_(&socket), timer_(socket.get_executor()) {}
  ~SocketDeadline() { cancel(); }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // Arms (or re-arms) the deadline: when it passes, the socket's pending operations complete
  // with operation_aborted and fired() turns true.
  void expires_after(std::chrono::steady_clock::duration d) {
    cancel();
    state_ = std::make_shared<State>();
    timer_.expires_after(d);
    timer_.async_wait([state = state_, socket = socket_](boost::system::error_code ec) {
      if (ec || !state->armed) return;
      state->fired = true;
      boost::system::error_code ignored;
      socket->cancel(ignored);
    });
  }

  // Disarms; fired() keeps its answer until the next expires_after().
  void cancel() {
    if (state_) state_->armed = false;
    timer_.cancel();
  }

  // The deadline passed (and cancelled whatever was pending then).
  bool fired() const { return state_ && state_->fired; }

 private:
  struct State {
    bool armed = true;
    bool fired = false;
  };
  Socket* socket_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace podwarp
