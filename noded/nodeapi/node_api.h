// The local API of noded: HTTP/1.1 on a unix socket, served by Boost.Beast on noded's loop.
//
//   GET /healthz                                   "ok" (500 when the manifest dir is unreadable)
//   GET /pods                                      v1 PodList with full status (kubelet's /pods)
//   GET /metrics                                   Prometheus text (podwarp/metrics.h registry)
//   GET /containerLogs/<ns>/<pod>/<container>      kubelet's path; query: follow, tailLines,
//       previous, timestamps, sinceSeconds, sinceTime, limitBytes. follow streams (chunked) until
//       the container's run ends or the client goes away.
//
// Errors are metav1.Status-like JSON ({"kind":"Status","status":"Failure","message":...,"code":...}).
// Threading: one io_context; the PodManager is queried on it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <expected>
#include <memory>
#include <string>

#include "pods/pod_manager.h"

namespace podwarp::noded::nodeapi {

struct NodeApiOptions {
  std::string socket_path;                           // created 0600; an old socket is replaced
  std::chrono::milliseconds follow_poll{200};        // how often follow looks for new lines
};

class NodeApiServer {
 public:
  virtual ~NodeApiServer() = default;
  virtual void stop() = 0;  // closes the listener; open connections end with their request
};

std::expected<std::unique_ptr<NodeApiServer>, std::string> start_node_api(
    boost::asio::any_io_executor ex, NodeApiOptions o, pods::PodManager& pods);

}  // namespace podwarp::noded::nodeapi
