// Moves container output from pipes into a CRI log file on the io_context (io_uring reads,
// no thread per container).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <expected>
#include <memory>
#include <string>

#include "logs/cri_log.h"

namespace podwarp::noded::logs {

struct PipeFds {
  int read_fd = -1;   // O_NONBLOCK|O_CLOEXEC, for the loop
  int write_fd = -1;  // blocking, O_CLOEXEC (the runtime dups it onto fd 1/2 of the container)
};
std::expected<PipeFds, std::string> make_pipe();

// Reads read_fd (taking ownership) until EOF and appends to the writer; flushes a trailing
// partial line at EOF.
boost::asio::awaitable<void> pump(int read_fd, std::shared_ptr<CriLogWriter> writer, Stream s);

}  // namespace podwarp::noded::logs
