// The node API over HTTPS (the kubelet's port 10250), served by Boost.Beast on noded's loop.
//
//   GET /healthz, /pods, /metrics, /containerLogs/<ns>/<pod>/<container>   as node_api.h
//   GET /exec/<ns>/<pod>/<container>?command=..&stdin=1&stdout=1&stderr=1&tty=1
//   GET /attach/<ns>/<pod>/<container>?stdin=..&stdout=..&stderr=..
//       WebSocket, subprotocols v5/v4/v3/v2.channel.k8s.io and channel.k8s.io
//       (channel_protocol.h). exec runs the command in the container (pipes, or a pty as the
//       controlling terminal with tty); attach streams the container's live stdout/stderr
//       and feeds its stdin/terminal (spec stdin/tty: console/console.h).
//   GET|POST /portforward/<ns>/<pod>[?port=P|ports=P,..]
//       WebSocket v4.channel.k8s.io / portforward.k8s.io (the Python client: one connection per
//       requested port), WebSocket SPDY/3.1+portforward.k8s.io (kubectl >= 1.30: SPDY/3.1 in
//       binary messages), or `Upgrade: SPDY/3.1` (kubectl's fallback). Connections go to
//       127.0.0.1:<port> inside the pod's network namespace.
//
// Authentication: TLS with a client certificate signed by client_ca_file. Allowed: user
// "kube-apiserver-kubelet-client" or group "system:masters"; no certificate: 401, another
// identity: 403 (metav1.Status JSON). Errors before an upgrade are HTTP Status replies (pod
// not found 404, bad container 400, container not running 500 "container not found (...)").
//
// Threading: one io_context (noded's loop); the PodManager and runtime are used on it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>

#include "pods/pod_manager.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::nodeapi {

struct NodeHttpsOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 10250;  // 0: a free port (see NodeHttpsServer::port())
  std::string cert_file, key_file;  // serving certificate (PEM)
  std::string client_ca_file;       // CA of accepted client certificates
  std::chrono::milliseconds follow_poll{200};   // containerLogs?follow
  std::chrono::milliseconds exit_drain{2000};   // exec: output still read after the exit
};

class NodeHttpsServer {
 public:
  virtual ~NodeHttpsServer() = default;
  virtual std::uint16_t port() const = 0;  // the bound port
  virtual void stop() = 0;                 // closes the listener
};

// Binds, listens and serves. Errors name the step ("load client CA /x: ...", "bind
// 0.0.0.0:10250: Address already in use").
std::expected<std::unique_ptr<NodeHttpsServer>, std::string> start_node_https(
    boost::asio::any_io_executor ex, NodeHttpsOptions o, pods::PodManager& pods,
    pods::ContainerRuntime& runtime);

}  // namespace podwarp::noded::nodeapi
