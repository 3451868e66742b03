// Api: the REST semantics of every built-in resource (create, get, list, watch, update,
// patch, delete, deletecollection and the status/scale/binding/eviction subresources) over
// etcd, with list and watch served from the WatchCache.
//
// Threading: one instance per apiserver, used only on its executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "apiserver/http.h"
#include "apiserver/watch_cache.h"
#include "podwarp/json.h"
#include "storage/etcd_client.h"

namespace podwarp::apiserver {

class TokenIssuer;
struct TokenIdentity;

struct ApiOptions {
  std::string service_cluster_ip_range = "10.96.0.0/12";
  int node_port_min = 30000;
  int node_port_max = 32767;
  std::size_t max_object_bytes = 3 * 1024 * 1024;  // upstream's request body limit
  std::string advertise_address = "127.0.0.1";
  int secure_port = 6443;
  // Which other components run in this podwarp-control (ComponentStatus reports them).
  bool scheduler = false;
  bool controllers = false;
  // Signs TokenRequest tokens; nullptr: serviceaccounts/token answers 404.
  std::shared_ptr<const TokenIssuer> tokens;
};

class ServiceAllocator;

class Api {
 public:
  Api(boost::asio::any_io_executor ex, storage::EtcdClient& etcd, WatchCache& cache,
      ApiOptions opts);
  ~Api();

  void set_secure_port(int port) { opts_.secure_port = port; }
  // The static bearer tokens (--token-auth-file) for TokenReview; the lookup must be safe to
  // call from the Api's executor (the server's table is immutable once loaded).
  using StaticTokens = std::function<std::optional<UserInfo>(std::string_view token)>;
  void set_static_tokens(StaticTokens lookup) { static_tokens_ = std::move(lookup); }

  // Creates the system namespaces and the default/kubernetes service if missing.
  boost::asio::awaitable<void> bootstrap();

  // Handles a resource request (req.info parsed) on the Api's executor. A watch answers
  // with a feed that the connection (on `connection`, its executor) streams out.
  boost::asio::awaitable<Reply> handle(Request req, boost::asio::any_io_executor connection);

  // Where a pods/log|exec|attach|portforward request goes: the node API of the pod's node
  // (see node_proxy.h), path without the query.
  struct NodeTarget {
    std::string host;
    std::uint16_t port = 10250;
    std::string path;
  };
  boost::asio::awaitable<std::expected<NodeTarget, ApiError>> node_target(const Request& req);

  // Do the service account (and the bound pod or secret) of a verified token still exist
  // with the uids in it? Reads the watch cache; call on the Api's executor.
  bool token_objects_current(const TokenIdentity& id) const;

  // The etcd check of the health endpoints: a read of one key (/registry/health, as upstream's
  // probe). nullopt when etcd answered, else why not. Call on the Api's executor.
  boost::asio::awaitable<std::optional<std::string>> etcd_health();

  static std::string key_for(const api::Resource& r, std::string_view ns, std::string_view name);
  static std::string prefix_for(const api::Resource& r, std::string_view ns);

 private:
  using Obj = json::value;
  struct Loaded {
    json::value object;
    std::int64_t revision = 0;
  };

  boost::asio::awaitable<Reply> dispatch(const Request& req,
                                         boost::asio::any_io_executor connection);
  boost::asio::awaitable<Response> get(const Request& req);
  boost::asio::awaitable<Response> list(const Request& req);
  boost::asio::awaitable<Reply> watch(const Request& req, boost::asio::any_io_executor connection);
  boost::asio::awaitable<Response> create(const Request& req);
  boost::asio::awaitable<Response> update(const Request& req);
  boost::asio::awaitable<Response> patch(const Request& req);
  boost::asio::awaitable<Response> remove(const Request& req);
  boost::asio::awaitable<Response> remove_collection(const Request& req);
  boost::asio::awaitable<Response> binding(const Request& req);
  boost::asio::awaitable<Response> eviction(const Request& req);
  boost::asio::awaitable<Response> scale(const Request& req);
  boost::asio::awaitable<Response> token_request(const Request& req);
  // v1 ComponentStatus (get, list; deprecated upstream since 1.19): scheduler and
  // controller-manager are Healthy when they run in this podwarp-control, etcd-0 when a read
  // of etcd answers.
  boost::asio::awaitable<Response> component_statuses(const Request& req);
  Response component_status_response(const Request& req,
                                     const std::optional<std::string>& etcd_down);
  // The create-only reviews (reviews.h): answered, never stored.
  boost::asio::awaitable<Response> review(const Request& req);
  // authentication.k8s.io/v1 TokenReview: authenticates spec.token as a request's bearer
  // token would be (token file, then service-account JWT) for spec.audiences.
  std::expected<json::value, ApiError> token_review(json::value review) const;

  // The cluster-scoped objects of a v1 resource in the watch cache, for the admission plugins
  // that read them (PriorityClasses, StorageClasses). The pointers stay valid until the caller
  // next suspends.
  std::vector<const json::value*> cached(std::string_view group, std::string_view plural) const;
  // The Priority admission (admission.h) against the PriorityClasses in the watch cache: of a
  // pod being created, or (validating) of a PriorityClass being created or updated. The
  // reason of a 403 when refused.
  std::optional<ApiError> admit_priority(const api::Resource& r, json::value& obj,
                                         const json::value* old) const;

  // Creates the apiserver's own object `want` (bootstrap), or brings the stored one's fields
  // and labels in line with it (the rest of its metadata is kept).
  boost::asio::awaitable<void> ensure_own_object(const api::Resource& r, json::value want);
  // Loads the current object from etcd.
  boost::asio::awaitable<std::expected<Loaded, ApiError>> load(const api::Resource& r,
                                                               std::string_view ns,
                                                               std::string_view name);
  // Writes `next` over `old` (CAS on old.revision) after strategy, defaulting and
  // validation; deletes instead when finalizers are done. `subresource` is "" or "status".
  boost::asio::awaitable<std::expected<std::pair<json::value, bool>, ApiError>> store_update(
      const Request& req, const api::Resource& r, const Loaded& old, json::value next,
      std::string_view subresource);
  // Creates obj (already decoded and namespace-checked). The created object is shared with
  // the watch cache, whose event for the write then needs no second parse.
  boost::asio::awaitable<std::expected<ObjectPtr, ApiError>> store_create(
      const Request& req, const api::Resource& r, json::value obj);
  // The deletion of one loaded object with options; returns the reply body.
  boost::asio::awaitable<std::expected<json::value, ApiError>> delete_object(
      const Request& req, const api::Resource& r, Loaded current, const json::value& options);

  std::expected<json::value, ApiError> decode_body(const Request& req, const api::Resource& r,
                                                   std::vector<std::string>* warnings);
  std::expected<void, ApiError> check_fields(const Request& req, const api::Resource& r,
                                             const json::value& obj,
                                             std::vector<std::string>* warnings);
  // The namespace lifecycle check of a create: ns exists and is not terminating. A
  // namespace not in the cache yet (its watch event still on the way, e.g. just after a
  // create or at start-up) is looked up in etcd, as upstream's admission does a live lookup.
  boost::asio::awaitable<std::expected<void, ApiError>> check_namespace(const api::Resource& r,
                                                                        std::string ns,
                                                                        std::string name);
  Response object_response(const Request& req, const api::Resource& r, unsigned status,
                           const json::value& obj,
                           const std::vector<std::string>& warnings = {});
  // The same for a stored object: JSON reuses (and fills) its cached serialization.
  Response object_response(const Request& req, const api::Resource& r, unsigned status,
                           const StoredObject& obj,
                           const std::vector<std::string>& warnings = {});

  boost::asio::any_io_executor ex_;
  storage::EtcdClient& etcd_;
  WatchCache& cache_;
  ApiOptions opts_;
  StaticTokens static_tokens_;
  std::unique_ptr<ServiceAllocator> services_;
};

}  // namespace podwarp::apiserver
