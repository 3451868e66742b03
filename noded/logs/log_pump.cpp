#include "logs/log_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace podwarp::noded::logs {

namespace asio = boost::asio;

std::expected<PipeFds, std::string> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::unexpected(fmt::format("pipe2: {}", std::strerror(errno)));
  int fl = ::fcntl(fds[0], F_GETFL);
  ::fcntl(fds[0], F_SETFL, fl | O_NONBLOCK);
  return PipeFds{fds[0], fds[1]};
}

asio::awaitable<void> pump(int read_fd, std::shared_ptr<CriLogWriter> writer, Stream s) {
  auto ex = co_await asio::this_coro::executor;
  asio::posix::stream_descriptor d(ex, read_fd);
  std::string buf(64 * 1024, '\0');
  for (;;) {
    auto [ec, n] = co_await d.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (n > 0) writer->write(s, std::string_view(buf.data(), n));
    if (ec) break;
  }
  writer->close_stream(s);
}

}  // namespace podwarp::noded::logs
