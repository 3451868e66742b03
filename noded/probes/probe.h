// Probes and lifecycle hooks of containers: their specs (parsed from the pod JSON) and the
// checks themselves (tcpSocket, httpGet over HTTP or HTTPS, grpc health v1, exec through a
// caller-given function).
//
// Network checks run inside the pod's network namespace: the socket is created by a short
// thread that setns()'d into the namespace pin (socket_in_netns), then handed to the
// io_context, which does connect/read/write on io_uring. An empty netns path means the
// calling process' own namespace (hostNetwork pods, tests). HTTPS adds TLS (no certificate
// verification, as the kubelet) on the io_context; grpc hands the connected fd to gRPC++ and
// runs the blocking Health/Check on a short thread, resuming on the io_context (README.md).
//
// Threading: parse_* are pure. run_* are coroutines for one io_context; ProbeWorker
// (prober.h) drives them on timers.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "podwarp/json.h"

namespace podwarp::noded::probes {

enum class HandlerKind { kExec, kHttpGet, kTcpSocket, kGrpc, kSleep };

struct HttpHeader {
  std::string name, value;
};

// One action of a probe or a lifecycle hook (v1.ExecAction / HTTPGetAction / TCPSocketAction /
// GRPCAction / SleepAction).
struct Handler {
  HandlerKind kind = HandlerKind::kExec;
  std::vector<std::string> command;  // exec
  std::string host;                  // httpGet/tcpSocket; "" = pod IP (loopback here)
  int port = 0;                      // httpGet/tcpSocket/grpc, named ports resolved
  std::string path = "/";            // httpGet
  std::string scheme = "HTTP";       // httpGet
  std::vector<HttpHeader> headers;   // httpGet
  std::string grpc_service;          // grpc
  int sleep_seconds = 0;             // sleep (hooks only)
};

struct ProbeSpec {
  Handler handler;
  int initial_delay_seconds = 0;
  int period_seconds = 10;
  int timeout_seconds = 1;
  int success_threshold = 1;
  int failure_threshold = 3;
  std::optional<std::int64_t> termination_grace_period_seconds;
};

// Parses a handler object ({"exec": {...}} | {"httpGet": {...}} | ...). `container` resolves
// named ports (spec.containers[].ports[].name). Errors are "<field>: <message>" with field
// relative to `v` ("httpGet.port: no container port named \"web\"").
std::expected<Handler, std::string> parse_handler(const json::value& v,
                                                  const json::value& container);
// A probe object with its timing fields (defaults as the API server's defaulting).
std::expected<ProbeSpec, std::string> parse_probe(const json::value& v,
                                                  const json::value& container);

struct Outcome {
  bool success = false;
  std::string message;  // why it failed (for events/logs)
};

// Runs `exec` probes: provided by the pod layer (runtime exec).
using ExecFn = std::function<boost::asio::awaitable<Outcome>(const std::vector<std::string>& argv,
                                                             std::chrono::milliseconds timeout)>;

// Where probes of a container go.
struct Target {
  std::string netns_path;           // "" = own network namespace
  std::string pod_ip = "127.0.0.1"; // default host for httpGet/tcpSocket
  ExecFn exec;                      // exec handler; absent: exec probes fail
};

// Creates a socket (SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC) in the network namespace pinned at
// netns_path (own namespace when empty). Returns the fd.
std::expected<int, std::string> socket_in_netns(const std::string& netns_path, int family);

// One check; completes within `timeout` (a timed-out check is a failure).
boost::asio::awaitable<Outcome> run_handler(const Handler& h, const Target& target,
                                            std::chrono::milliseconds timeout);

// A parsed HTTP status line ("HTTP/1.1 200 OK" -> 200); -1 if malformed.
int parse_http_status_line(std::string_view line);

}  // namespace podwarp::noded::probes
