// An asynchronous REST client for the podwarp (Kubernetes) API over HTTPS, for C++20
// coroutines on Boost.Asio.
//
// The client verifies the server against the CA from its Config (TLS 1.2 or newer), presents
// the client certificate and/or a bearer token, keeps a small pool of idle keep-alive
// connections, and bounds every request with a timeout. Typed helpers build upstream URLs from
// the resource table (/api/v1/namespaces/<ns>/pods/<name>, /apis/apps/v1/...), return the
// parsed JSON of a 2xx reply, and turn anything else into an Error that carries the HTTP code
// and the server's metav1.Status. Watches decode the stream of back-to-back JSON events
// incrementally, as chunks arrive.
//
// Threading: a Client is a cheap handle to shared state (copies share one pool). The state is
// not locked: use a Client, its copies and its WatchStreams from one thread at a time, i.e. an
// io_context run by one thread or a strand passed as the executor. Requests may run
// concurrently as coroutines on that executor; each uses its own connection. Operations keep
// the shared state alive, so destroying the last Client handle while requests are in flight is
// safe. Nothing throws; failures come back as Error.
//
// Arguments of the coroutine functions are taken by value, so they may be temporaries.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "podwarp/api/resources.h"
#include "podwarp/json.h"

namespace podwarp::kubeconfig {
struct Config;
}

namespace podwarp::client {

template <class T>
using Awaitable = boost::asio::awaitable<T>;

// A failed call. `code` is the HTTP status, or 0 when no response arrived (connection, TLS,
// timeout, cancellation, bad configuration, unreadable reply).
struct Error {
  int code = 0;
  // The metav1.Status reason ("NotFound", "AlreadyExists", "Conflict", "Expired", ...). When
  // the reply was not a Status, the upstream reason for the HTTP code. For code 0: "Timeout",
  // "Cancelled" or "ConnectionError".
  std::string reason;
  std::string message;
  std::string operation;  // "GET /api/v1/namespaces/default/pods/web"
  json::value status;     // the metav1.Status the server sent (or an ERROR event's), else null

  bool is_not_found() const { return code == 404; }
  bool is_conflict() const { return code == 409; }
  bool is_gone() const { return code == 410; }  // resourceVersion too old: relist
  // "GET /api/v1/pods: 404 NotFound: pods \"x\" not found"
  std::string to_string() const;
};

template <class T>
using Result = std::expected<T, Error>;

struct Config {
  std::string server;  // "https://host:port", optionally with a path prefix
  std::string ca_pem;  // trust anchors; empty: the system's default verify paths
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;            // sent as "Authorization: Bearer <token>"
  std::string tls_server_name;  // overrides the name used for SNI and verification
  bool insecure_skip_tls_verify = false;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds request_timeout{30'000};  // whole exchange of a non-watch request
  // A watch fails with reason "Timeout" when nothing arrives for this long. Servers send
  // bookmarks and end watches after timeoutSeconds, so keep it above that.
  std::chrono::milliseconds watch_idle_timeout{660'000};
  std::size_t max_idle_connections = 4;
  std::uint64_t max_response_bytes = 256u << 20;
  std::string user_agent = "podwarp";

  // Server, CA, credentials and TLS options from a loaded kubeconfig; timeouts keep defaults.
  static Config from_kubeconfig(const kubeconfig::Config& kc);
};

// A raw reply, whatever its status.
struct Response {
  int status = 0;
  std::string content_type;
  std::string body;
};

// Query options of list and watch (and resourceVersion for get).
struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::int64_t limit = 0;  // 0: no limit
  std::string continue_token;
  std::string resource_version;
  std::string resource_version_match;  // "Exact" / "NotOlderThan"
  std::int64_t timeout_seconds = 0;    // watch: the server ends the stream after this
};

// Query options of create, update and patch.
struct WriteOptions {
  std::string field_manager;
  std::string field_validation;  // "Strict" / "Warn" / "Ignore"
  bool dry_run = false;
  bool force = false;  // server-side apply only
};

// The body of a DELETE (meta/v1 DeleteOptions).
struct DeleteOptions {
  std::string propagation_policy;  // "Background" / "Foreground" / "Orphan"
  std::optional<std::int64_t> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_resource_version;
  bool dry_run = false;
};

enum class PatchType { json, merge, strategic, apply };
// The Content-Type of a patch type ("application/merge-patch+json", ...).
std::string_view content_type(PatchType type);

struct WatchEvent {
  std::string type;  // "ADDED", "MODIFIED", "DELETED", "BOOKMARK"
  json::value object;
};

// An open watch. next() yields events in order; an ERROR event ends the stream as an Error
// carrying the event's Status (code 410 means the resourceVersion is too old).
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // The next event; nullopt when the server ended the stream normally. After an error or the
  // end, later calls return the same outcome.
  // REQUIRES: one next() at a time, and the stream stays alive (keep the shared_ptr) until it
  // completes.
  virtual Awaitable<Result<std::optional<WatchEvent>>> next() = 0;
  // Closes the stream; a pending or later next() fails with reason "Cancelled".
  virtual void cancel() = 0;
};

// "/api/v1" or "/apis/<group>/<version>", then "/namespaces/<ns>" when the resource is
// namespaced and ns is not empty, then "/<plural>", then "/<name>" and "/<subresource>" when
// given. Segments are percent-encoded.
std::string resource_path(const api::Resource& res, std::string_view ns, std::string_view name = {},
                          std::string_view subresource = {});
// "?labelSelector=...&limit=..." ("" when no option is set), percent-encoded.
std::string query_string(const ListOptions& opts);
// Maps a non-2xx reply to an Error (parsing a metav1.Status body when there is one).
Error error_from_response(const Response& r, std::string operation);

class Client {
 public:
  using executor_type = boost::asio::any_io_executor;

  // Never throws: a configuration that cannot be used (bad PEM, bad server URL) makes every
  // call fail with that Error; setup_error() reports it up front.
  Client(executor_type executor, Config config);

  const executor_type& get_executor() const;
  const Config& config() const;
  const std::optional<Error>& setup_error() const;

  // One HTTP exchange. `path_and_query` is appended to the server URL. Any HTTP status is a
  // Response; only transport failures are Errors.
  Awaitable<Result<Response>> request(std::string method, std::string path_and_query,
                                      std::string body = {}, std::string content_type = {});

  // Typed helpers: the parsed JSON body of a 2xx reply, else an Error. `ns` is ignored for
  // cluster-scoped resources and means "all namespaces" in list.
  Awaitable<Result<json::value>> get(const api::Resource& res, std::string ns, std::string name,
                                     ListOptions opts = {});
  Awaitable<Result<json::value>> list(const api::Resource& res, std::string ns,
                                      ListOptions opts = {});
  Awaitable<Result<json::value>> create(const api::Resource& res, std::string ns,
                                        json::value object, WriteOptions opts = {});
  // PUT to the object's metadata.name (and metadata.namespace when ns is empty).
  Awaitable<Result<json::value>> update(const api::Resource& res, std::string ns,
                                        json::value object, WriteOptions opts = {});
  Awaitable<Result<json::value>> update_status(const api::Resource& res, std::string ns,
                                               json::value object, WriteOptions opts = {});
  Awaitable<Result<json::value>> patch(const api::Resource& res, std::string ns, std::string name,
                                       PatchType type, std::string patch, WriteOptions opts = {},
                                       std::string subresource = {});
  // The reply: the deleted object (or a Status for some kinds).
  Awaitable<Result<json::value>> remove(const api::Resource& res, std::string ns, std::string name,
                                        DeleteOptions opts = {});

  // Opens GET ...?watch=true&allowWatchBookmarks=true&resourceVersion=RV. Fails with the
  // server's Error (e.g. code 410) when the reply is not 200.
  Awaitable<Result<std::shared_ptr<WatchStream>>> open_watch(const api::Resource& res,
                                                             std::string ns, ListOptions opts = {});
  // open_watch, then on_event for every event as it arrives. Returns when the server ends the
  // stream (success) or on an error (an ERROR event becomes an Error with its Status' code).
  Awaitable<Result<void>> watch(const api::Resource& res, std::string ns, ListOptions opts,
                                std::function<void(WatchEvent&&)> on_event);

  // Drops the idle connections (in-flight requests keep theirs).
  void close_idle();
  std::size_t idle_connections() const;

  struct Impl;  // private state, shared by copies and in-flight operations (client.cpp)

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace podwarp::client
