// Moves container output from pipes into a CRI log file on the io_context (io_uring reads,
// no thread per container).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

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

// Live copies of what the pumps move, for `attach` (node API): subscribers of a log file path
// (the writer's path of one container run) get every chunk as it is written, and eof=true when
// that stream's pipe ends. Process-wide; meant for the loop thread (a mutex guards the table,
// callbacks run outside it on the publishing thread and must not block).
class LogTaps {
 public:
  using Fn = std::function<void(Stream s, std::string_view data, bool eof)>;
  static LogTaps& instance();
  std::uint64_t subscribe(const std::string& path, Fn fn);
  void unsubscribe(std::uint64_t id);
  void publish(const std::string& path, Stream s, std::string_view data, bool eof);
  std::size_t subscribers(const std::string& path) const;

 private:
  struct Impl;
  LogTaps();
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::logs
