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
#include <map>
#include <mutex>
#include <vector>

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
    if (n > 0) {
      writer->write(s, std::string_view(buf.data(), n));
      LogTaps::instance().publish(writer->path(), s, std::string_view(buf.data(), n), false);
    }
    if (ec) break;
  }
  writer->close_stream(s);
  LogTaps::instance().publish(writer->path(), s, {}, true);
}

struct LogTaps::Impl {
  mutable std::mutex mu;
  std::uint64_t next = 1;
  std::map<std::uint64_t, std::pair<std::string, std::shared_ptr<Fn>>> subs;
};

LogTaps::LogTaps() : impl_(std::make_unique<Impl>()) {}

LogTaps& LogTaps::instance() {
  static LogTaps* taps = new LogTaps;  // never destroyed: pumps may run until _exit
  return *taps;
}

std::uint64_t LogTaps::subscribe(const std::string& path, Fn fn) {
  std::lock_guard l(impl_->mu);
  auto id = impl_->next++;
  impl_->subs[id] = {path, std::make_shared<Fn>(std::move(fn))};
  return id;
}

void LogTaps::unsubscribe(std::uint64_t id) {
  std::lock_guard l(impl_->mu);
  impl_->subs.erase(id);
}

void LogTaps::publish(const std::string& path, Stream s, std::string_view data, bool eof) {
  std::vector<std::shared_ptr<Fn>> fns;
  {
    std::lock_guard l(impl_->mu);
    if (impl_->subs.empty()) return;
    for (auto& [id, sub] : impl_->subs)
      if (sub.first == path) fns.push_back(sub.second);
  }
  for (auto& f : fns) (*f)(s, data, eof);
}

std::size_t LogTaps::subscribers(const std::string& path) const {
  std::lock_guard l(impl_->mu);
  std::size_t n = 0;
  for (auto& [id, sub] : impl_->subs) n += sub.first == path;
  return n;
}

}  // namespace podwarp::noded::logs
