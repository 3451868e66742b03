// ApiFixture: a real etcd and a real `podwarp-control` process on free loopback ports, for
// tests of the scheduler, the controllers and noded that talk to the API as in production.
//
// start() blocks until the apiserver serves (it prints its URL) and loads the admin
// kubeconfig it wrote. The destructor stops podwarp-control (SIGTERM, then SIGKILL, by pid)
// and etcd, and removes the temporary directory. `extra_args` go to podwarp-control (e.g.
// {"--components", "apiserver,controllers"}).
//
// run() drives a coroutine to completion on a private io_context (one thread, the caller's):
// tests use it for the client calls they make between checks.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "podwarp/client.h"

namespace podwarp::testing {

class ApiFixture {
 public:
  static std::expected<std::unique_ptr<ApiFixture>, std::string> start(
      std::vector<std::string> extra_args = {});
  ~ApiFixture();

  // Stops podwarp-control only (etcd keeps its data), and starts it again with `extra_args`.
  std::expected<void, std::string> restart_control(std::vector<std::string> extra_args);
  // Starts one more podwarp-control process on the same etcd (own data dir copy of the PKI);
  // returns its index for stop_extra.
  std::expected<int, std::string> start_extra_control(std::vector<std::string> extra_args);
  void stop_extra_control(int index, int signal = 15);

  // A client on io() using the admin credentials.
  client::Client client();
  const client::Config& client_config() const { return config_; }
  const std::string& etcd_endpoint() const;
  const std::string& kubeconfig_path() const { return kubeconfig_; }
  const std::string& dir() const { return dir_; }
  boost::asio::io_context& io() { return io_; }

  // Runs the awaitable on io() until it completes; returns its value.
  template <class T>
  T run(boost::asio::awaitable<T> a) {
    auto fut = boost::asio::co_spawn(io_, std::move(a), boost::asio::use_future);
    io_.restart();
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io_.run_one();
    return fut.get();
  }
  // Runs io() for `d` (lets background coroutines make progress).
  void run_for(std::chrono::milliseconds d);
  // Polls `pred` (running io() between polls) until true or `timeout`; returns pred().
  bool eventually(const std::function<bool()>& pred,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

  struct Process;
  struct Impl;

 private:
  ApiFixture();
  std::unique_ptr<Impl> impl_;
  boost::asio::io_context io_{1};
  client::Config config_;
  std::string dir_;
  std::string kubeconfig_;
  int restarts_ = 0;
};

}  // namespace podwarp::testing
