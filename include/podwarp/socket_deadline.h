// SocketDeadline: a timeout for the operations of one socket that neither cancels nor closes
// it: it shuts the connection down (shutdown(2)), so that what is in flight completes by
// itself (a read with end of stream, a write with EPIPE), and the coroutine that owns the
// operation closes the socket afterwards. podwarp's client closes a socket only when none of
// its operations is in flight.
//
// Why: in Boost 1.81's io_uring backend (detail/impl/io_uring_service.ipp) both ways of
// aborting a socket operation are unsafe:
//  - cancel(), and close() with an operation in flight, submit IORING_OP_ASYNC_CANCEL without
//    setting the SQE's user_data; a slot keeps the user_data of its last use, so the cancel's
//    own completion is credited to whatever operation used that slot before (the timed run's
//    TIMEOUT_REMOVE has the same defect, see asio_run.h);
//  - close() hands the socket's per-descriptor state back to a pool while the operation is still
//    in the ring, and a socket opened next can inherit the stale operation.
// Beast's basic_stream timeouts (expires_after) close the socket from their timer, so they are
// not used. shutdown(2) goes around Asio: the kernel ends the operation, whose completion
// carries its own user_data.
//
// Threading: the deadline's handler runs on the socket's executor; use it from there only.
#pragma once

#include <sys/socket.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace podwarp {

// Ends a socket's pending operations by themselves (a read with end of stream, a write with
// EPIPE) without cancel() or close(), which are unsafe with an operation in flight (above).
// The socket stays open: its owner closes it once its operations have returned.
template <class Socket>
void shut_down(Socket& socket) {
  if (socket.is_open()) ::shutdown(socket.native_handle(), SHUT_RDWR);
}

template <class Socket>
class SocketDeadline {
 public:
  explicit SocketDeadline(Socket& socket) : socket_(&socket), timer_(socket.get_executor()) {}
  ~SocketDeadline() { cancel(); }
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // Arms (or re-arms) the deadline: when it passes, the connection is shut down (its pending
  // operations complete with end of stream or an error) and fired() turns true.
  void expires_after(std::chrono::steady_clock::duration d) {
    const std::uint64_t armed = ++state_->generation;
    state_->fired = false;
    timer_.expires_after(d);
    timer_.async_wait([state = state_, armed, socket = socket_](boost::system::error_code ec) {
      if (ec || state->generation != armed) return;  // re-armed, cancelled or destroyed since
      state->fired = true;
      shut_down(*socket);
    });
  }

  // Disarms; fired() keeps its answer until the next expires_after().
  void cancel() {
    ++state_->generation;
    timer_.cancel();
  }

  // The deadline passed (and ended whatever was pending then).
  bool fired() const { return state_->fired; }

  // An operation's error, reported as beast::error::timeout when the deadline cut it short.
  boost::system::error_code outcome(boost::system::error_code ec) const {
    return ec && fired() ? boost::system::error_code(boost::beast::error::timeout) : ec;
  }

 private:
  // Shared with the timer's handler, which may run after this object is gone.
  struct State {
    std::uint64_t generation = 0;
    bool fired = false;
  };
  Socket* socket_;
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace podwarp
