#include "api_sync.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <utility>

#include "podwarp/asio_run.h"
#include "podwarp/client.h"
#include "podwarp/kubeconfig.h"

namespace podwarp::cli {
namespace {

using Reply = std::expected<json::value, std::string>;

// Runs `request(client)` (a coroutine of client::Client returning Result<json::value>) to its
// end on a private io_context.
template <class Request>
Reply run_request(const std::filesystem::path& kubeconfig, std::chrono::seconds timeout,
                  Request request) {
  auto kc = kubeconfig::load(kubeconfig);
  if (!kc) return std::unexpected("load " + kubeconfig.string() + ": " + kc.error());
  client::Config config = client::Config::from_kubeconfig(*kc);
  config.connect_timeout = timeout;
  config.request_timeout = timeout;
  boost::asio::io_context io(1);
  client::Client c(io.get_executor(), config);
  std::optional<Reply> out;
  boost::asio::co_spawn(io, request(c),
                        [&out](std::exception_ptr e, client::Result<json::value> r) {
                          if (e)
                            out = std::unexpected(std::string("request failed"));
                          else if (!r)
                            out = std::unexpected(r.error().to_string());
                          else
                            out = std::move(*r);
                        });
  // The client's timeouts end the request; the margin only guards against a stuck loop.
  podwarp::run_until(
      io, [&out] { return out.has_value(); }, timeout + std::chrono::seconds(5));
  if (!out) return std::unexpected(std::string("timed out"));
  return std::move(*out);
}

}  // namespace

Reply create_object(const std::filesystem::path& kubeconfig, const api::Resource& resource,
                    std::string ns, json::value obj, std::chrono::seconds timeout) {
  return run_request(kubeconfig, timeout, [&](client::Client& c) {
    return c.create(resource, std::move(ns), std::move(obj), client::WriteOptions{});
  });
}

Reply get_object(const std::filesystem::path& kubeconfig, const api::Resource& resource,
                 std::string ns, std::string name, std::chrono::seconds timeout) {
  return run_request(kubeconfig, timeout, [&](client::Client& c) {
    return c.get(resource, std::move(ns), std::move(name), client::ListOptions{});
  });
}

Reply list_objects(const std::filesystem::path& kubeconfig, const api::Resource& resource,
                   std::string ns, std::chrono::seconds timeout) {
  return run_request(kubeconfig, timeout, [&](client::Client& c) {
    return c.list(resource, std::move(ns), client::ListOptions{});
  });
}

}  // namespace podwarp::cli
