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

  // Arms (or re-arms) the deadline: when it passes, the connection is shut down (its pending
  // operations complete with end of stream or an error) and fired() turns true.
  void expires_after(std::chrono::steady_clock::duration d) {
    cancel();
    state_ = std::make_shared<State>();
    timer_.expires_after(d);
    timer_.async_wait([state = state_, socket = socket_](boost::system::error_code ec) {
      if (ec || !state->armed) return;
      state->fired = true;
      if (socket->is_open()) ::shutdown(socket->native_handle(), SHUT_RDWR);
    });
  }

  // Disarms; fired() keeps its answer until the next expires_after().
  void cancel() {
    if (state_) state_->armed = false;
    timer_.cancel();
  }

  // The deadline passed (and ended whatever was pending then).
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
