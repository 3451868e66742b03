// The REST verbs of Api. Reads of single objects and writes go to etcd; lists with
// resourceVersion=0 (or a version the cache has reached) and watches come from the cache.
#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <set>

#include "apiserver/api.h"
#include "apiserver/admission.h"
#include "apiserver/filter.h"
#include "apiserver/negotiate.h"
#include "apiserver/object_meta.h"
#include "apiserver/reviews.h"
#include "apiserver/service_allocator.h"
#include "apiserver/strategy.h"
#include "podwarp/log.h"
#include "podwarp/patch.h"
#include "podwarp/random.h"
#include "podwarp/time.h"
#include "podwarp/yaml.h"
#include "schema/protobuf.h"
#include "schema/schema.h"
#include "tables/tables.h"
#include "validation/validation.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;
using storage::StorageErrc;

namespace {

ApiError storage_error(const api::Resource& r, std::string_view name,
                       const storage::StorageError& e) {
  switch (e.code) {
    case StorageErrc::kNotFound:
      return not_found(r, name);
    case StorageErrc::kAlreadyExists:
      return already_exists(r, name);
    case StorageErrc::kConflict:
      return conflict(r, name,
                      "the object has been modified; please apply your changes to the latest "
                      "version and try again");
    case StorageErrc::kCompacted:
      return gone(e.message);
    case StorageErrc::kUnavailable:
      break;
  }
  ApiError err = internal_error(fmt::format("etcd: {}", e.message));
  err.code = 500;
  return err;
}

// Serializes obj for storage: without resourceVersion, which is the etcd mod revision.
std::string encode_for_storage(const json::value& obj) {
  if (find_path(obj, {"metadata", "resourceVersion"}) == nullptr) return to_json(obj);
  json::value copy = obj;
  copy.as_object()["metadata"].as_object().erase("resourceVersion");
  return to_json(copy);
}

// Integers that a parse would give back as int64 (non-negative ones below 2^63 are parsed
// as int64; in memory they may be uint64).
void normalize_numbers(json::value& v) {
  if (v.is_object()) {
    for (auto& kv : v.get_object()) normalize_numbers(kv.value());
  } else if (v.is_array()) {
    for (json::value& e : v.get_array()) normalize_numbers(e);
  } else if (v.is_uint64()) {
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (v.get_uint64() <= kMax) v = static_cast<std::int64_t>(v.get_uint64());
  }
}

json::value with_revision(json::value obj, std::int64_t rev) {
  metadata(obj)["resourceVersion"] = std::to_string(rev);
  return obj;
}

// A body's metadata.namespace, when set, must be the URL's.
bool namespace_matches(const json::value& obj, std::string_view url_namespace) {
  std::string_view ns = get_string(obj, {"metadata", "namespace"});
  return ns.empty() || ns == url_namespace;
}

ApiError namespace_mismatch() {
  return bad_request(
      "the namespace of the provided object does not match the namespace sent on the request");
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool dry_run(const Request& req) {
  auto range = req.query.equal_range("dryRun");
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == "All") return true;
  }
  return false;
}

}  // namespace

Api::Api(asio::any_io_executor ex, storage::EtcdClient& etcd, WatchCache& cache, ApiOptions opts)
    : ex_(std::move(ex)), etcd_(etcd), cache_(cache), opts_(std::move(opts)) {
  auto range = Ipv4Range::parse(opts_.service_cluster_ip_range);
  if (!range) {
    log::error("--service-cluster-ip-range: {}; using 10.96.0.0/12", range.error());
    range = Ipv4Range::parse("10.96.0.0/12");
  }
  services_ = std::make_unique<ServiceAllocator>(etcd_, *range, opts_.node_port_min,
                                                 opts_.node_port_max);
}

Api::~Api() = default;

asio::awaitable<std::optional<std::string>> Api::etcd_health() {
  storage::RangeOptions one;
  one.limit = 1;
  one.keys_only = true;
  auto r = co_await etcd_.range("/registry/health", one);
  if (!r) co_return r.error().message;
  co_return std::nullopt;
}

std::string Api::key_for(const api::Resource& r, std::string_view ns, std::string_view name) {
  if (r.namespaced) return fmt::format("/registry/{}/{}/{}", r.storage_name(), ns, name);
  return fmt::format("/registry/{}/{}", r.storage_name(), name);
}

std::string Api::prefix_for(const api::Resource& r, std::string_view ns) {
  if (r.namespaced && !ns.empty()) return fmt::format("/registry/{}/{}/", r.storage_name(), ns);
  return fmt::format("/registry/{}/", r.storage_name());
}

namespace {

// The Priority admission on a pod update: what it set at creation stays when the update leaves
// it out (validation refuses any other change of it).
void keep_admitted_priority(json::value& next, const json::value& old) {
  json::object& spec = ensure_object(next.as_object(), "spec");
  static constexpr std::string_view kFields[] = {"priority", "preemptionPolicy"};
  for (std::string_view f : kFields) {
    const json::value* was = find_path(old, {"spec", f});
    const json::value* now = spec.if_contains(f);
    if (was != nullptr && (now == nullptr || now->is_null())) spec[f] = *was;
  }
}

// The objects the apiserver creates once when they are missing (the user's later changes to
// them are kept): the system namespaces; of RBAC's bootstrap policy, cluster-admin and its
// binding to system:masters (not enforced: requests are not authorized by RBAC objects here);
// the system PriorityClasses.
std::vector<std::pair<const api::Resource*, json::value>> create_once_objects() {
  std::vector<std::pair<const api::Resource*, json::value>> out;
  const api::Resource* ns_res = api::find_resource("", "v1", "namespaces");
  for (std::string_view ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    out.emplace_back(ns_res, json::object{{"apiVersion", "v1"},
                                          {"kind", "Namespace"},
                                          {"metadata", json::object{{"name", ns}}}});
  }
  const json::object rbac_meta{
      {"name", "cluster-admin"},
      {"labels", json::object{{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
      {"annotations", json::object{{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}};
  const json::value everything = json::array{"*"};
  out.emplace_back(
      api::find_resource("rbac.authorization.k8s.io", "v1", "clusterroles"),
      json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                   {"kind", "ClusterRole"},
                   {"metadata", rbac_meta},
                   {"rules", json::array{json::object{{"apiGroups", everything},
                                                      {"resources", everything},
                                                      {"verbs", everything}},
                                         json::object{{"nonResourceURLs", everything},
                                                      {"verbs", everything}}}}});
  out.emplace_back(
      api::find_resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
      json::object{{"apiVersion", "rbac.authorization.k8s.io/v1"},
                   {"kind", "ClusterRoleBinding"},
                   {"metadata", rbac_meta},
                   {"roleRef", json::object{{"apiGroup", "rbac.authorization.k8s.io"},
                                            {"kind", "ClusterRole"},
                                            {"name", "cluster-admin"}}},
                   {"subjects", json::array{json::object{{"apiGroup", "rbac.authorization.k8s.io"},
                                                         {"kind", "Group"},
                                                         {"name", "system:masters"}}}}});
  const api::Resource* pc_res = api::find_resource("scheduling.k8s.io", "v1", "priorityclasses");
  for (const validation::SystemPriorityClass& c : validation::system_priority_classes()) {
    out.emplace_back(pc_res, json::object{{"apiVersion", "scheduling.k8s.io/v1"},
                                          {"kind", "PriorityClass"},
                                          {"metadata", json::object{{"name", c.name}}},
                                          {"value", c.value},
                                          {"description", c.description}});
  }
  return out;
}

}  // namespace

asio::awaitable<void> Api::bootstrap() {
  // (A named vector and no structured bindings across the co_await: g++ 12's coroutines.)
  std::vector<std::pair<const api::Resource*, json::value>> once = create_once_objects();
  for (auto& item : once) {
    const api::Resource& res = *item.first;
    std::string name(name_of(item.second));
    if (cache_.get(key_for(res, "", name))) continue;
    Request req;
    auto r = co_await store_create(req, res, std::move(item.second));
    if (!r && r.error().code != 409) {
      log::warn("bootstrap {} {}: {}", res.plural, name, r.error().message);
    }
  }
  const api::Resource* svc_res = api::find_resource("", "v1", "services");
  json::value svc = json::object{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", json::object{{"name", "kubernetes"},
                                {"namespace", "default"},
                                {"labels", json::object{{"component", "apiserver"},
                                                        {"provider", "kubernetes"}}}}},
      {"spec", json::object{{"clusterIP", services_->first_ip()},
                            {"ports", json::array{json::object{{"name", "https"},
                                                               {"port", 443},
                                                               {"protocol", "TCP"},
                                                               {"targetPort", opts_.secure_port}}}},
                            {"sessionAffinity", "None"},
                            {"type", "ClusterIP"}}}};
  // The first address is outside the allocator's pool; store it directly.
  if (!cache_.get(key_for(*svc_res, "default", "kubernetes"))) {
    validation::apply_defaults(*svc_res, svc);
    prepare_for_create(*svc_res, svc);
    json::object& spec = svc.as_object()["spec"].as_object();
    spec["clusterIPs"] = json::array{spec["clusterIP"]};
    auto r = co_await etcd_.create(key_for(*svc_res, "default", "kubernetes"),
                                   encode_for_storage(svc));
    if (!r && r.error().code != StorageErrc::kAlreadyExists) {
      log::warn("bootstrap kubernetes service: {}", r.error().message);
    }
  }
  // The apiserver's own endpoints, as upstream's endpoint reconciler keeps them: the
  // Endpoints (not mirrored into slices) and the EndpointSlice that the service load balancer
  // reads.
  const json::object port{{"name", "https"}, {"port", opts_.secure_port}, {"protocol", "TCP"}};
  json::value ep = json::object{
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata",
       json::object{{"name", "kubernetes"},
                    {"namespace", "default"},
                    {"labels", json::object{{"endpointslice.kubernetes.io/skip-mirror", "true"}}}}},
      {"subsets",
       json::array{json::object{
           {"addresses", json::array{json::object{{"ip", opts_.advertise_address}}}},
           {"ports", json::array{port}}}}}};
  co_await ensure_own_object(*api::find_resource("", "v1", "endpoints"), std::move(ep));
  const bool v6 = opts_.advertise_address.find(':') != std::string::npos;
  json::value slice = json::object{
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       json::object{{"name", "kubernetes"},
                    {"namespace", "default"},
                    {"labels", json::object{{"kubernetes.io/service-name", "kubernetes"}}}}},
      {"addressType", v6 ? "IPv6" : "IPv4"},
      {"endpoints", json::array{json::object{
                        {"addresses", json::array{json::value(opts_.advertise_address)}},
                        {"conditions", json::object{{"ready", true}}}}}},
      {"ports", json::array{port}}};
  co_await ensure_own_object(*api::find_resource("discovery.k8s.io", "v1", "endpointslices"),
                             std::move(slice));
}

asio::awaitable<Response> Api::component_statuses(const Request& req) {
  std::optional<std::string> etcd_down = co_await etcd_health();
  co_return component_status_response(req, etcd_down);
}

Response Api::component_status_response(const Request& req,
                                        const std::optional<std::string>& etcd_down) {
  const api::Resource& r = *req.info.resource_info;
  auto status = [](std::string_view name, bool healthy, std::string_view error) {
    json::object cond{{"type", "Healthy"}, {"status", healthy ? "True" : "False"}};
    if (healthy) cond["message"] = "ok";
    if (!error.empty()) cond["error"] = error;
    return json::value(json::object{{"kind", "ComponentStatus"},
                                    {"apiVersion", "v1"},
                                    {"metadata", json::object{{"name", name}}},
                                    {"conditions", json::array{std::move(cond)}}});
  };
  constexpr std::string_view kNotHere = "not running in this podwarp-control (see --components)";
  std::vector<json::value> items;
  items.push_back(status("scheduler", opts_.scheduler, opts_.scheduler ? "" : kNotHere));
  items.push_back(
      status("controller-manager", opts_.controllers, opts_.controllers ? "" : kNotHere));
  items.push_back(status("etcd-0", !etcd_down, etcd_down ? *etcd_down : ""));
  const std::vector<std::string> warnings = {"v1 ComponentStatus is deprecated in v1.19+"};
  if (!req.info.name.empty()) {
    for (const json::value& item : items) {
      if (name_of(item) == req.info.name) return object_response(req, r, 200, item, warnings);
    }
    return Response::error(not_found(r, req.info.name));
  }
  Response resp;
  resp.status = 200;
  if (negotiate(req.accept) == Format::kTable) {
    std::vector<const json::value*> ptrs;
    for (const json::value& item : items) ptrs.push_back(&item);
    resp.body = to_json(tables::make_table(r, ptrs, "", "", req.param_or("includeObject", "Metadata"),
                                           std::chrono::system_clock::now()));
  } else {
    json::array list;
    for (json::value& item : items) list.push_back(std::move(item));
    resp.body = to_json(json::object{{"kind", "ComponentStatusList"},
                                     {"apiVersion", "v1"},
                                     {"metadata", json::object{}},
                                     {"items", std::move(list)}});
  }
  for (const std::string& w : warnings) {
    resp.headers.emplace_back("Warning", fmt::format("299 - \"{}\"", w));
  }
  return resp;
}

std::vector<const json::value*> Api::cached(std::string_view group, std::string_view plural) const {
  std::vector<const json::value*> out;
  cache_.list(prefix_for(*api::find_resource(group, "v1", plural), ""),
              [&](const std::string&, const ObjectPtr& o) { out.push_back(&o->value); });
  return out;
}

std::optional<ApiError> Api::admit_priority(const api::Resource& r, json::value& obj,
                                            const json::value* old) const {
  // The cache holds the classes and nothing runs between here and the return: plain pointers.
  std::vector<const json::value*> classes = cached("scheduling.k8s.io", "priorityclasses");
  std::optional<std::string> why = r.kind == "Pod"
                                       ? apiserver::admit_priority(obj, classes)
                                       : admit_priority_class(obj, old == nullptr, classes);
  if (!why) return std::nullopt;
  return forbidden(&r, name_of(obj),
                   fmt::format("{} \"{}\" is forbidden: {}", qualified_resource(r), name_of(obj), *why));
}

asio::awaitable<void> Api::ensure_own_object(const api::Resource& r, json::value want) {
  const std::string key = key_for(r, get_string(want, {"metadata", "namespace"}),
                                  get_string(want, {"metadata", "name"}));
  auto cur = co_await etcd_.range(key);
  if (!cur) {
    log::warn("bootstrap {}: {}", key, cur.error().message);
    co_return;
  }
  if (cur->kvs.empty()) {
    prepare_for_create(r, want);
    auto created = co_await etcd_.create(key, encode_for_storage(want));
    if (!created && created.error().code != StorageErrc::kAlreadyExists) {
      log::warn("bootstrap {}: {}", key, created.error().message);
    }
    co_return;
  }
  // Keep it true to this run's address and port.
  auto old = parse_json(cur->kvs[0].value);
  if (!old || !old->is_object()) co_return;
  json::value next = *old;
  for (const auto& [field, value] : want.as_object()) {
    if (field != "metadata") next.as_object()[field] = value;
  }
  json::object& labels = ensure_object(metadata(next), "labels");
  for (const auto& [k, v] : want.at("metadata").at("labels").as_object()) labels[k] = v;
  if (next != *old) {
    auto updated = co_await etcd_.update(key, encode_for_storage(next), cur->kvs[0].mod_revision);
    if (!updated) log::warn("bootstrap {}: {}", key, updated.error().message);
  }
}

asio::awaitable<Reply> Api::handle(Request req, asio::any_io_executor connection) {
  const RequestInfo& info = req.info;
  if (info.resource_info == nullptr) {
    co_return Reply{Response::error(plain_not_found()), nullptr};
  }
  const api::Resource& r = *info.resource_info;
  if (r.namespaced && info.namespace_.empty() && !info.name.empty()) {
    co_return Reply{Response::error(plain_not_found()), nullptr};
  }
  if (!r.namespaced && r.kind != "Namespace" && !info.namespace_.empty()) {
    co_return Reply{Response::error(plain_not_found()), nullptr};
  }
  if (!info.subresource.empty()) {
    bool known = false;
    for (const auto& s : r.subresources) known = known || s.name == info.subresource;
    if (!known) co_return Reply{Response::error(plain_not_found()), nullptr};
  }
  co_return co_await dispatch(req, connection);
}

asio::awaitable<Reply> Api::dispatch(const Request& req, asio::any_io_executor connection) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  const std::string& sub = info.subresource;
  const std::string& verb = info.verb;
  if (r.kind == "ComponentStatus" && r.group.empty()) {
    if ((verb != "get" && verb != "list") || !sub.empty()) {
      co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
    }
    Response resp = co_await component_statuses(req);  // (not inside a braced Reply: g++ 12)
    co_return Reply{std::move(resp), nullptr};
  }
  if (!r.stored) {
    // A create-only kind: one POST on its collection (a namespaced one's only under a
    // namespace).
    if (r.namespaced && info.namespace_.empty()) {
      co_return Reply{Response::error(plain_not_found()), nullptr};
    }
    if (verb != "create" || !info.name.empty() || !sub.empty()) {
      co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
    }
    if (r.kind == "Binding") {
      // POST .../bindings (the Python client's create_namespaced_binding): binding() takes the
      // pod from the body's metadata.name.
      Response resp = co_await binding(req);
      co_return Reply{std::move(resp), nullptr};
    }
    Response resp = co_await review(req);
    co_return Reply{std::move(resp), nullptr};
  }
  if (sub == "binding") {
    if (verb != "create") co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
    {
      Response resp = co_await binding(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (sub == "eviction") {
    if (verb != "create") co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
    {
      Response resp = co_await eviction(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (sub == "token") {
    if (verb != "create") co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
    {
      Response resp = co_await token_request(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (sub == "scale") {
      Response resp = co_await scale(req);
      co_return Reply{std::move(resp), nullptr};
    }
  if (!sub.empty() && verb != "get" && verb != "update" && verb != "patch") {
    co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
  }
  if (verb == "get") {
      Response resp = co_await get(req);
      co_return Reply{std::move(resp), nullptr};
    }
  if (verb == "list") {
      Response resp = co_await list(req);
      co_return Reply{std::move(resp), nullptr};
    }
  if (verb == "watch") co_return co_await watch(req, connection);
  if (verb == "create") {
    if (!info.name.empty()) co_return Reply{Response::error(method_not_supported(r, "create")), nullptr};
    {
      Response resp = co_await create(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (verb == "update") {
    if (info.name.empty()) co_return Reply{Response::error(method_not_supported(r, "update")), nullptr};
    {
      Response resp = co_await update(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (verb == "patch") {
    if (info.name.empty()) co_return Reply{Response::error(method_not_supported(r, "patch")), nullptr};
    {
      Response resp = co_await patch(req);
      co_return Reply{std::move(resp), nullptr};
    }
  }
  if (verb == "delete") {
      Response resp = co_await remove(req);
      co_return Reply{std::move(resp), nullptr};
    }
  if (verb == "deletecollection") {
      Response resp = co_await remove_collection(req);
      co_return Reply{std::move(resp), nullptr};
    }
  co_return Reply{Response::error(method_not_supported(r, verb)), nullptr};
}

asio::awaitable<Response> Api::review(const Request& req) {
  const api::Resource& r = *req.info.resource_info;
  std::vector<std::string> warnings;
  auto obj = decode_body(req, r, &warnings);
  if (!obj) co_return Response::error(obj.error());
  if (r.namespaced && !namespace_matches(*obj, req.info.namespace_)) {
    co_return Response::error(namespace_mismatch());
  }
  auto answer = r.kind == "TokenReview"
                    ? token_review(std::move(*obj))
                    : answer_review(r, std::move(*obj), req.user, req.info.namespace_);
  if (!answer) co_return Response::error(answer.error());
  co_return object_response(req, r, 201, *answer, warnings);
}

Response Api::object_response(const Request& req, const api::Resource& r, unsigned status,
                              const StoredObject& obj, const std::vector<std::string>& warnings) {
  if (negotiate(req.accept) != Format::kJson) {
    return object_response(req, r, status, obj.value, warnings);
  }
  Response resp;
  resp.status = status;
  resp.body = obj.text();
  for (const std::string& w : warnings) {
    resp.headers.emplace_back("Warning", fmt::format("299 - \"{}\"", w));
  }
  return resp;
}

Response Api::object_response(const Request& req, const api::Resource& r, unsigned status,
                              const json::value& obj, const std::vector<std::string>& warnings) {
  Response resp;
  resp.status = status;
  Format f = negotiate(req.accept);
  if (f == Format::kTable) {
    const json::value* ptrs[] = {&obj};
    resp.body = to_json(tables::make_table(
        r, ptrs, get_string(obj, {"metadata", "resourceVersion"}), "",
        req.param_or("includeObject", "Metadata"), std::chrono::system_clock::now()));
  } else if (f == Format::kPartialMetadata) {
    json::object p{{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}};
    if (const json::value* m = find_path(obj, {"metadata"})) p["metadata"] = *m;
    resp.body = to_json(p);
  } else {
    resp.body = to_json(obj);
  }
  for (const std::string& w : warnings) {
    resp.headers.emplace_back("Warning", fmt::format("299 - \"{}\"", w));
  }
  return resp;
}

asio::awaitable<std::expected<Api::Loaded, ApiError>> Api::load(const api::Resource& r,
                                                                 std::string_view ns,
                                                                 std::string_view name) {
  auto res = co_await etcd_.range(key_for(r, ns, name));
  if (!res) co_return std::unexpected(storage_error(r, name, res.error()));
  if (res->kvs.empty()) co_return std::unexpected(not_found(r, name));
  auto parsed = parse_json(res->kvs[0].value);
  if (!parsed || !parsed->is_object()) {
    co_return std::unexpected(internal_error(
        fmt::format("stored object {} is corrupt: {}", key_for(r, ns, name),
                    parsed ? "not an object" : parsed.error())));
  }
  co_return Loaded{with_revision(std::move(*parsed), res->kvs[0].mod_revision),
                   res->kvs[0].mod_revision};
}

asio::awaitable<Response> Api::get(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  if (negotiate(req.accept) == Format::kUnacceptable) {
    co_return Response::error(not_acceptable("only the following media types are accepted: "
                                             "application/json, application/yaml"));
  }
  if (req.param_or("resourceVersion", "") == "0") {
    if (ObjectPtr o = cache_.get(key_for(r, info.namespace_, info.name))) {
      co_return object_response(req, r, 200, o->value);
    }
    co_return Response::error(not_found(r, info.name));
  }
  auto cur = co_await load(r, info.namespace_, info.name);
  if (!cur) co_return Response::error(cur.error());
  co_return object_response(req, r, 200, cur->object);
}

asio::awaitable<std::expected<void, ApiError>> Api::check_namespace(const api::Resource& r,
                                                                   std::string ns,
                                                                   std::string name) {
  if (!r.namespaced) co_return std::expected<void, ApiError>{};
  const api::Resource* ns_res = api::find_resource("", "v1", "namespaces");
  ObjectPtr cached = cache_.get(key_for(*ns_res, "", ns));
  std::expected<Loaded, ApiError> live;
  if (!cached) {
    auto lookup = load(*ns_res, "", ns);  // 404 naming the namespace when etcd has none
    live = co_await std::move(lookup);
    if (!live) co_return std::unexpected(live.error());
  }
  const json::value& nso = cached ? cached->value : live->object;
  if (get_string(nso, {"status", "phase"}) == "Terminating" ||
      find_path(nso, {"metadata", "deletionTimestamp"}) != nullptr) {
    ApiError e = forbidden(&r, name,
                           fmt::format("{} \"{}\" is forbidden: unable to create new content in "
                                       "namespace {} because it is being terminated",
                                       qualified_resource(r), name, ns));
    e.reason = "Forbidden";
    e.causes.push_back({"NamespaceTerminating",
                        fmt::format("namespace {} is being terminated", ns), "metadata.namespace"});
    co_return std::unexpected(e);
  }
  co_return std::expected<void, ApiError>{};
}

std::expected<void, ApiError> Api::check_fields(const Request& req, const api::Resource& r,
                                                const json::value& obj,
                                                std::vector<std::string>* warnings) {
  const schema::Type* type = schema::kind_type(r.group, r.version, r.kind);
  if (type == nullptr) return {};
  std::vector<std::string> type_errs = schema::type_errors(*type, obj);
  if (!type_errs.empty()) {
    return std::unexpected(bad_request(
        fmt::format("{} in version \"{}\" cannot be handled as a {}: {}", r.kind, r.version,
                    r.kind, type_errs.front())));
  }
  std::string_view mode = req.param_or("fieldValidation", "Warn");
  if (mode == "Ignore") return {};
  std::vector<std::string> unknown = schema::unknown_fields(*type, obj);
  if (unknown.empty()) return {};
  if (mode == "Strict") {
    std::string list;
    for (const std::string& u : unknown) {
      if (!list.empty()) list += ", ";
      list += fmt::format("unknown field \"{}\"", u);
    }
    return std::unexpected(bad_request(fmt::format(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}", r.kind,
        r.version, r.kind, list)));
  }
  if (warnings) {
    for (const std::string& u : unknown) warnings->push_back(fmt::format("unknown field \"{}\"", u));
  }
  return {};
}

std::expected<json::value, ApiError> Api::decode_body(const Request& req, const api::Resource& r,
                                                      std::vector<std::string>* warnings) {
  std::string_view ct = req.content_type;
  auto semi = ct.find(';');
  std::string_view media = semi == std::string_view::npos ? ct : ct.substr(0, semi);
  std::expected<json::value, std::string> parsed;
  if (media.empty() || media == "application/json" || media == "*/*") {
    parsed = parse_json(req.body);
    if (!parsed) {
      return std::unexpected(bad_request(fmt::format(
          "couldn't get version/kind; json parse error: {}", parsed.error())));
    }
  } else if (media == "application/yaml") {
    parsed = yaml_to_json(req.body);
    if (!parsed) {
      return std::unexpected(bad_request(fmt::format(
          "couldn't get version/kind; yaml parse error: {}", parsed.error())));
    }
  } else if (media == "application/vnd.kubernetes.protobuf") {
    // Stock kubectl sends built-in kinds as protobuf (kubectl create ...).
    parsed = schema::decode_protobuf(std::string_view(req.body));
    if (!parsed) {
      return std::unexpected(bad_request(fmt::format(
          "{} in version \"{}\" cannot be handled as a {}: {}", r.kind, r.version, r.kind,
          parsed.error())));
    }
  } else {
    return std::unexpected(unsupported_media_type(ct));
  }
  if (!parsed->is_object()) {
    return std::unexpected(bad_request(
        "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of "
        "type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
        "\"json:\\\"kind,omitempty\\\"\" }"));
  }
  json::object& o = parsed->as_object();
  std::string_view kind = get_string(*parsed, {"kind"});
  std::string_view av = get_string(*parsed, {"apiVersion"});
  std::string want_av = r.api_version();
  const bool status_kind = req.info.subresource == "scale";
  if (!status_kind) {
    if (!kind.empty() && kind != r.kind) {
      return std::unexpected(bad_request(fmt::format(
          "the kind of the provided object ({}) does not match the expected kind ({})", kind,
          r.kind)));
    }
    if (!av.empty() && av != want_av) {
      return std::unexpected(bad_request(fmt::format(
          "the API version in the data ({}) does not match the expected API version ({})", av,
          want_av)));
    }
    o["kind"] = r.kind;
    o["apiVersion"] = want_av;
  }
  if (const json::value* m = o.if_contains("metadata"); m && !m->is_object() && !m->is_null()) {
    return std::unexpected(bad_request(fmt::format(
        "{} in version \"{}\" cannot be handled as a {}: json: cannot unmarshal {} into Go "
        "struct field {}.metadata of type v1.ObjectMeta",
        r.kind, r.version, r.kind, m->is_array() ? "array" : "value", r.kind)));
  }
  if (!status_kind) {
    auto ok = check_fields(req, r, *parsed, warnings);
    if (!ok) return std::unexpected(ok.error());
  }
  return std::move(*parsed);
}

asio::awaitable<std::expected<ObjectPtr, ApiError>> Api::store_create(const Request& req,
                                                                      const api::Resource& r,
                                                                      json::value obj) {
  json::object& meta = metadata(obj);
  std::string name(get_string(obj, {"metadata", "name"}));
  std::string ns(get_string(obj, {"metadata", "namespace"}));
  const bool generated = name.empty() && !get_string(obj, {"metadata", "generateName"}).empty();
  if (generated) {
    name = std::string(get_string(obj, {"metadata", "generateName"})) + random_string(5);
    meta["name"] = name;
  }
  if (r.namespaced) {
    auto check = check_namespace(r, ns, name);
    auto ok = co_await std::move(check);
    if (!ok) co_return std::unexpected(ok.error());
  }
  // The Priority admission of pods, after the namespace lifecycle's, as upstream orders them.
  if (r.kind == "Pod" && r.group.empty()) {
    if (auto e = admit_priority(r, obj, nullptr)) co_return std::unexpected(*e);
  }
  // The DefaultStorageClass admission of claims (pointers into the cache, used at once).
  if (r.kind == "PersistentVolumeClaim" && r.group.empty()) {
    admit_default_storage_class(obj, cached("storage.k8s.io", "storageclasses"));
  }
  prepare_for_create(r, obj);
  validation::apply_defaults(r, obj);
  if (r.kind == "Pod") metadata(obj);  // keep metadata present
  const bool dry = dry_run(req);
  // Services get their addresses before validation, as upstream: it checks them.
  if (r.kind == "Service" && !dry) {
    auto alloc = co_await services_->allocate(r, obj, nullptr);
    if (!alloc) co_return std::unexpected(alloc.error());
  }
  auto causes = validation::validate(r, obj, nullptr);
  if (!causes.empty()) {
    if (r.kind == "Service" && !dry) co_await services_->release(obj, nullptr);
    co_return std::unexpected(invalid(r, name, causes));
  }
  if (r.kind == "PriorityClass") {
    if (auto e = admit_priority(r, obj, nullptr)) co_return std::unexpected(*e);
  }
  if (r.kind == "Pod") {
    // QoS depends on defaulted resources.
    obj.as_object()["status"].as_object()["qosClass"] = pod_qos_class(obj);
  }
  if (dry) co_return std::make_shared<const StoredObject>(std::move(obj));
  // Numbers as a parse of the stored text gives them back, so that the object itself can
  // stand for that parse in the watch cache.
  normalize_numbers(obj);
  std::string text = encode_for_storage(obj);
  // Without a resourceVersion in obj the text is its plain serialization, and obj plus a
  // resourceVersion appended to metadata is exactly what the cache would decode from it.
  const bool shareable = find_path(obj, {"metadata", "resourceVersion"}) == nullptr;
  if (text.size() > opts_.max_object_bytes) {
    if (r.kind == "Service") co_await services_->release(obj, nullptr);
    co_return std::unexpected(request_entity_too_large(
        fmt::format("the object is larger than the limit of {} bytes", opts_.max_object_bytes)));
  }
  for (int attempt = 0;; ++attempt) {
    std::string key = key_for(r, ns, name);
    // Registered before it is sent: its watch event often comes in before the reply.
    std::shared_ptr<PendingWrite> pending;
    if (shareable) pending = cache_.expect_write(key, text, std::move(obj));
    auto res = co_await etcd_.create(key, text);
    if (res) {
      if (pending) co_return cache_.write_done(pending, res->mod_revision);
      co_return std::make_shared<const StoredObject>(
          with_revision(std::move(obj), res->mod_revision));
    }
    if (pending) {
      cache_.write_failed(pending);
      obj = std::move(pending->unstored());
    }
    if (res.error().code == StorageErrc::kAlreadyExists && generated && attempt < 3) {
      name = std::string(get_string(obj, {"metadata", "generateName"})) + random_string(5);
      metadata(obj)["name"] = name;
      text = encode_for_storage(obj);
      continue;
    }
    if (r.kind == "Service") co_await services_->release(obj, nullptr);
    co_return std::unexpected(storage_error(r, name, res.error()));
  }
}

asio::awaitable<Response> Api::create(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  std::vector<std::string> warnings;
  auto obj = decode_body(req, r, &warnings);
  if (!obj) co_return Response::error(obj.error());
  json::object& meta = metadata(*obj);
  if (r.namespaced) {
    if (!namespace_matches(*obj, info.namespace_)) co_return Response::error(namespace_mismatch());
    if (info.namespace_.empty()) {
      co_return Response::error(plain_not_found());
    }
    meta["namespace"] = info.namespace_;
  } else {
    meta.erase("namespace");
  }
  if (r.group.empty() && r.kind == "Pod") {
    // The ServiceAccount admission (see admission.h).
    std::string sa_name(get_string(*obj, {"spec", "serviceAccountName"}));
    if (sa_name.empty()) sa_name = "default";
    ObjectPtr sa = cache_.get(key_for(*api::find_resource("", "v1", "serviceaccounts"),
                                      info.namespace_, sa_name));
    admit_service_account(*obj, sa ? &sa->value : nullptr, [] { return random_string(5); });
  }
  auto created = co_await store_create(req, r, std::move(*obj));
  if (!created) co_return Response::error(created.error());
  co_return object_response(req, r, 201, **created, warnings);
}

asio::awaitable<std::expected<std::pair<json::value, bool>, ApiError>> Api::store_update(
    const Request& req, const api::Resource& r, const Loaded& old, json::value next,
    std::string_view subresource) {
  std::string name(name_of(old.object));
  // metadata.uid in an update is a precondition (upstream's rest.BeforeUpdate).
  if (std::string_view uid = get_string(next, {"metadata", "uid"});
      !uid.empty() && uid != uid_of(old.object)) {
    co_return std::unexpected(conflict(
        r, name,
        fmt::format("Precondition failed: UID in precondition: {}, UID in object meta: {}", uid,
                    uid_of(old.object))));
  }
  std::int64_t precondition = resource_version_of(next);
  if (find_path(next, {"metadata", "resourceVersion"}) != nullptr &&
      !get_string(next, {"metadata", "resourceVersion"}).empty() && precondition == 0) {
    co_return std::unexpected(invalid(
        r, name, {{"FieldValueInvalid", "must be specified for an update", "metadata.resourceVersion"}},
        fmt::format("{} \"{}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be "
                    "specified for an update",
                    r.kind, name)));
  }
  if (precondition != 0 && precondition != old.revision) {
    co_return std::unexpected(conflict(
        r, name,
        "the object has been modified; please apply your changes to the latest version and "
        "try again"));
  }
  // From here on the object is an update of old.revision (defaulting tells create from
  // update by the presence of resourceVersion).
  metadata(next)["resourceVersion"] = std::to_string(old.revision);
  if (subresource == "status") {
    prepare_for_status_update(r, next, old.object);
    metadata(next)["resourceVersion"] = std::to_string(old.revision);
  } else if (subresource == "ephemeralcontainers") {
    // Only spec.ephemeralContainers comes from the request (upstream's
    // dropNonEphemeralContainerUpdates).
    json::value kept = old.object;
    json::object& spec = ensure_object(kept.as_object(), "spec");
    if (const json::value* ec = find_path(next, {"spec", "ephemeralContainers"})) {
      spec["ephemeralContainers"] = *ec;
    } else {
      spec.erase("ephemeralContainers");
    }
    metadata(kept)["resourceVersion"] = std::to_string(old.revision);
    next = std::move(kept);
  } else {
    prepare_for_update(r, next, old.object);
    if (r.kind == "Pod" && r.group.empty()) keep_admitted_priority(next, old.object);
  }
  validation::apply_defaults(r, next);
  const bool dry = dry_run(req);
  if (r.kind == "Service" && subresource.empty() && !dry) {
    auto alloc = co_await services_->allocate(r, next, &old.object);
    if (!alloc) co_return std::unexpected(alloc.error());
  }
  std::vector<validation::Cause> causes =
      subresource == "status" ? validation::validate_status(r, next, old.object)
      : subresource == "ephemeralcontainers"
          ? validation::validate_ephemeral_containers(r, next, old.object)
          : validation::validate(r, next, &old.object);
  if (!causes.empty()) {
    if (r.kind == "Service" && subresource.empty() && !dry) {
      co_await services_->release(next, &old.object);
    }
    co_return std::unexpected(invalid(r, name, causes));
  }
  if (r.kind == "PriorityClass" && subresource.empty()) {
    if (auto e = admit_priority(r, next, &old.object)) co_return std::unexpected(*e);
  }
  // Finalizers done on an object being deleted: the update completes the deletion.
  const json::value* fin = find_path(next, {"metadata", "finalizers"});
  const json::value* spec_fin =
      r.kind == "Namespace" ? find_path(next, {"spec", "finalizers"}) : nullptr;
  const bool no_finalizers = (fin == nullptr || !fin->is_array() || fin->as_array().empty()) &&
                             (spec_fin == nullptr || !spec_fin->is_array() ||
                              spec_fin->as_array().empty());
  const bool deleting = find_path(next, {"metadata", "deletionTimestamp"}) != nullptr;
  if (deleting && no_finalizers && get_int(next, {"metadata", "deletionGracePeriodSeconds"}) == 0) {
    if (dry) co_return std::pair{std::move(next), false};
    auto res = co_await etcd_.remove(key_for(r, namespace_of(old.object), name), old.revision);
    if (!res) co_return std::unexpected(storage_error(r, name, res.error()));
    if (r.kind == "Service") co_await services_->release(old.object, nullptr);
    co_return std::pair{with_revision(std::move(next), res->mod_revision), false};
  }
  // A no-op update is not written and keeps the resourceVersion, as upstream.
  json::value cmp_next = next;
  metadata(cmp_next)["resourceVersion"] = std::to_string(old.revision);
  if (cmp_next == old.object) co_return std::pair{old.object, false};
  if (dry) co_return std::pair{std::move(cmp_next), false};
  std::string text = encode_for_storage(next);
  if (text.size() > opts_.max_object_bytes) {
    co_return std::unexpected(request_entity_too_large(
        fmt::format("the object is larger than the limit of {} bytes", opts_.max_object_bytes)));
  }
  auto res = co_await etcd_.update(key_for(r, namespace_of(old.object), name), text, old.revision);
  if (!res) co_return std::unexpected(storage_error(r, name, res.error()));
  if (r.kind == "Service" && subresource.empty()) co_await services_->release(old.object, &next);
  co_return std::pair{with_revision(std::move(next), res->mod_revision), true};
}

asio::awaitable<Response> Api::update(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  std::vector<std::string> warnings;
  auto obj = decode_body(req, r, &warnings);
  if (!obj) co_return Response::error(obj.error());
  std::string_view body_name = name_of(*obj);
  if (body_name != info.name) {
    co_return Response::error(bad_request(fmt::format(
        "the name of the object ({}) does not match the name on the URL ({})", body_name,
        info.name)));
  }
  if (r.namespaced) {
    if (!namespace_matches(*obj, info.namespace_)) co_return Response::error(namespace_mismatch());
    metadata(*obj)["namespace"] = info.namespace_;
  }
  std::string_view sub = info.subresource;
  if (sub == "finalize") {
    // Namespace finalize: only spec.finalizers changes.
    auto cur = co_await load(r, info.namespace_, info.name);
    if (!cur) co_return Response::error(cur.error());
    json::value next = cur->object;
    json::object& spec = ensure_object(next.as_object(), "spec");
    if (const json::value* f = find_path(*obj, {"spec", "finalizers"})) {
      spec["finalizers"] = *f;
    } else {
      spec.erase("finalizers");
    }
    auto res = co_await store_update(req, r, *cur, std::move(next), "");
    if (!res) co_return Response::error(res.error());
    co_return object_response(req, r, 200, res->first);
  }
  auto cur = co_await load(r, info.namespace_, info.name);
  if (!cur) co_return Response::error(cur.error());
  auto res = co_await store_update(req, r, *cur, std::move(*obj), sub);
  if (!res) co_return Response::error(res.error());
  co_return object_response(req, r, 200, res->first, warnings);
}

asio::awaitable<Response> Api::patch(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  std::string_view ct = req.content_type;
  auto semi = ct.find(';');
  std::string_view media = semi == std::string_view::npos ? ct : ct.substr(0, semi);
  enum class Kind { kJson, kMerge, kStrategic } kind;
  if (media == "application/json-patch+json") {
    kind = Kind::kJson;
  } else if (media == "application/merge-patch+json") {
    kind = Kind::kMerge;
  } else if (media == "application/strategic-merge-patch+json") {
    kind = Kind::kStrategic;
  } else {
    ApiError e{415, "UnsupportedMediaType",
               fmt::format("the body of the request was in an unknown format - accepted media "
                           "types include: application/json-patch+json, "
                           "application/merge-patch+json, application/strategic-merge-patch+json")};
    co_return Response::error(e);
  }
  auto patch_doc = parse_json(req.body);
  if (!patch_doc) {
    co_return Response::error(bad_request(fmt::format("error decoding patch: {}", patch_doc.error())));
  }
  if (kind == Kind::kJson && !patch_doc->is_array()) {
    co_return Response::error(bad_request(
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"));
  }
  if (kind == Kind::kJson) {
    if (auto e = json_patch_too_large(*patch_doc)) co_return Response::error(*e);
  }
  if (kind != Kind::kJson && !patch_doc->is_object()) {
    co_return Response::error(bad_request(
        "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of "
        "type map[string]interface {}"));
  }
  const schema::Type* type = schema::kind_type(r.group, r.version, r.kind);
  const patch::PatchMeta* meta = type ? schema::patch_meta(*type) : nullptr;
  std::vector<std::string> warnings;
  // Without a resourceVersion in the patch, a conflict is retried on the fresh object.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = co_await load(r, info.namespace_, info.name);
    if (!cur) co_return Response::error(cur.error());
    std::expected<json::value, std::string> patched;
    if (kind == Kind::kJson) {
      patched = patch::apply_json_patch(cur->object, *patch_doc);
    } else if (kind == Kind::kMerge) {
      patched = patch::apply_merge_patch(cur->object, *patch_doc);
    } else {
      patched = patch::apply_strategic_merge_patch(cur->object, *patch_doc, meta);
    }
    if (!patched) {
      ApiError e = kind == Kind::kJson ? ApiError{422, "Invalid", patched.error()}
                                       : bad_request(patched.error());
      co_return Response::error(e);
    }
    if (!patched->is_object()) {
      co_return Response::error(bad_request("the patch produced a value that is not an object"));
    }
    // The patch may not move the object.
    if (name_of(*patched) != info.name) {
      co_return Response::error(bad_request(fmt::format(
          "the name of the object ({}) does not match the name on the URL ({})",
          name_of(*patched), info.name)));
    }
    json::object& po = patched->as_object();
    po["kind"] = r.kind;
    po["apiVersion"] = r.api_version();
    warnings.clear();
    if (auto ok = check_fields(req, r, *patched, &warnings); !ok) {
      co_return Response::error(ok.error());
    }
    // Keep the precondition only when the patch set one.
    const bool has_precondition =
        kind != Kind::kJson
            ? find_path(*patch_doc, {"metadata", "resourceVersion"}) != nullptr
            : req.body.find("/metadata/resourceVersion") != std::string::npos;
    if (!has_precondition) metadata(*patched)["resourceVersion"] = std::to_string(cur->revision);
    auto res = co_await store_update(req, r, *cur, std::move(*patched), info.subresource);
    if (!res) {
      if (res.error().reason == "Conflict" && !has_precondition) continue;
      co_return Response::error(res.error());
    }
    co_return object_response(req, r, 200, res->first, warnings);
  }
  co_return Response::error(conflict(r, info.name, "too many conflicts while patching"));
}

asio::awaitable<std::expected<json::value, ApiError>> Api::delete_object(
    const Request& req, const api::Resource& r, Loaded current, const json::value& options) {
  json::value& obj = current.object;
  std::string name(name_of(obj));
  // Preconditions.
  if (std::string_view uid = get_string(options, {"preconditions", "uid"}); !uid.empty()) {
    if (uid != uid_of(obj)) {
      co_return std::unexpected(conflict(
          r, name,
          fmt::format("Precondition failed: UID in precondition: {}, UID in object meta: {}", uid,
                      uid_of(obj))));
    }
  }
  if (std::string_view rv = get_string(options, {"preconditions", "resourceVersion"});
      !rv.empty()) {
    if (rv != std::to_string(current.revision)) {
      co_return std::unexpected(conflict(
          r, name,
          fmt::format("Precondition failed: ResourceVersion in precondition: {}, "
                      "ResourceVersion in object meta: {}",
                      rv, current.revision)));
    }
  }
  const bool dry = dry_run(req);
  std::optional<std::int64_t> grace;
  if (const json::value* g = find_path(options, {"gracePeriodSeconds"}); g && g->is_number()) {
    grace = get_int(options, {"gracePeriodSeconds"});
  }
  if (auto q = req.param("gracePeriodSeconds")) {
    if (auto v = parse_int(*q)) grace = *v;
  }
  std::string policy(get_string(options, {"propagationPolicy"}));
  if (auto q = req.param("propagationPolicy")) policy = std::string(*q);
  if (policy.empty() && get_bool(options, {"orphanDependents"}, false)) policy = "Orphan";
  if (policy.empty() && r.kind == "Job") policy = "Orphan";  // batch/v1 default
  if (!policy.empty() && policy != "Orphan" && policy != "Background" &&
      policy != "Foreground") {
    co_return std::unexpected(invalid(
        r, name, {{"FieldValueNotSupported", "Unsupported value", "propagationPolicy"}},
        fmt::format("DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported "
                    "value: \"{}\": supported values: \"Foreground\", \"Background\", "
                    "\"Orphan\", \"nil\"",
                    policy)));
  }

  json::object& meta = metadata(obj);
  json::array finalizers;
  if (const json::value* f = meta.if_contains("finalizers"); f && f->is_array()) {
    finalizers = f->get_array();
  }
  auto add_finalizer = [&](std::string_view f) {
    for (const json::value& v : finalizers) {
      if (v.is_string() && v.get_string() == f) return;
    }
    finalizers.emplace_back(f);
  };
  if (policy == "Foreground") add_finalizer("foregroundDeletion");
  if (policy == "Orphan") add_finalizer("orphan");

  // Pods bound to a node terminate gracefully: the node agent deletes them when done.
  std::int64_t grace_seconds = 0;
  if (r.kind == "Pod") {
    std::string_view phase = get_string(obj, {"status", "phase"});
    const bool bound = !get_string(obj, {"spec", "nodeName"}).empty();
    const bool terminal = phase == "Succeeded" || phase == "Failed";
    grace_seconds = grace.value_or(get_int(obj, {"spec", "terminationGracePeriodSeconds"}, 30));
    if (!bound || terminal) grace_seconds = 0;
    if (grace_seconds < 0) grace_seconds = 1;
  }
  // Namespaces always go through content deletion (spec.finalizers, the namespace
  // controller's), unless nothing is left to finalize.
  const json::value* spec_fin = find_path(obj, {"spec", "finalizers"});
  const bool ns_content = r.kind == "Namespace" && spec_fin && spec_fin->is_array() &&
                          !spec_fin->as_array().empty();
  if (grace_seconds > 0 || !finalizers.empty() || ns_content) {
    // Graceful: mark the object. A second delete may only shorten the grace period.
    auto now = std::chrono::system_clock::now();
    const json::value* existing = meta.if_contains("deletionTimestamp");
    std::int64_t existing_grace = get_int(obj, {"metadata", "deletionGracePeriodSeconds"}, -1);
    json::value next = obj;
    json::object& nm = metadata(next);
    if (!finalizers.empty()) {
      nm["finalizers"] = finalizers;
    }
    if (existing == nullptr || (existing_grace > grace_seconds)) {
      // Saturated: a grace period of 2^63-1 seconds is legal and must not overflow the clock.
      auto grace = saturated_times(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                       std::chrono::seconds(1)),
                                   grace_seconds);
      nm["deletionTimestamp"] = format_rfc3339(now + grace);
      nm["deletionGracePeriodSeconds"] = grace_seconds;
    }
    if (r.kind == "Namespace") {
      ensure_object(next.as_object(), "status")["phase"] = "Terminating";
    }
    if (next == obj) co_return obj;
    if (dry) co_return next;
    std::string text = encode_for_storage(next);
    auto res = co_await etcd_.update(key_for(r, namespace_of(obj), name), text, current.revision);
    if (!res) co_return std::unexpected(storage_error(r, name, res.error()));
    co_return with_revision(std::move(next), res->mod_revision);
  }
  if (dry) co_return obj;
  auto res = co_await etcd_.remove(key_for(r, namespace_of(obj), name), current.revision);
  if (!res) co_return std::unexpected(storage_error(r, name, res.error()));
  if (r.kind == "Service") co_await services_->release(obj, nullptr);
  // Most kinds answer with a Status, pods and namespaces with the object (as upstream).
  if (r.kind == "Pod" || r.kind == "Namespace" || r.kind == "Node") {
    co_return with_revision(std::move(obj), res->mod_revision);
  }
  co_return success_status(r, name, uid_of(obj));
}

asio::awaitable<Response> Api::remove(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  json::value options = json::object();
  if (!req.body.empty()) {
    auto parsed = parse_json(req.body);
    if (!parsed || !parsed->is_object()) {
      co_return Response::error(bad_request(fmt::format(
          "couldn't get version/kind; json parse error: {}", parsed ? "not an object" : parsed.error())));
    }
    options = std::move(*parsed);
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto cur = co_await load(r, info.namespace_, info.name);
    if (!cur) co_return Response::error(cur.error());
    auto res = co_await delete_object(req, r, std::move(*cur), options);
    if (!res) {
      // A write that raced ours: load again and re-check the preconditions (as upstream's
      // GuaranteedUpdate). A failed precondition is final.
      if (res.error().reason == "Conflict" &&
          res.error().message.find("Precondition failed") == std::string::npos) {
        continue;
      }
      co_return Response::error(res.error());
    }
    if (get_string(*res, {"kind"}) == "Status") co_return Response::json(200, to_json(*res));
    co_return object_response(req, r, 200, *res);
  }
  co_return Response::error(conflict(r, info.name, "too many conflicts while deleting"));
}

asio::awaitable<Response> Api::remove_collection(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  auto filter = ObjectFilter::from_request(req, r);
  if (!filter) co_return Response::error(filter.error());
  json::value options = json::object();
  if (!req.body.empty()) {
    if (auto parsed = parse_json(req.body); parsed && parsed->is_object()) options = *parsed;
  }
  std::vector<std::string> names;
  cache_.list(prefix_for(r, info.namespace_), [&](const std::string&, const ObjectPtr& o) {
    if (filter->matches(o->value)) names.emplace_back(name_of(o->value));
  });
  json::array items;
  for (const std::string& name : names) {
    auto cur = co_await load(r, info.namespace_, name);
    if (!cur) continue;
    auto res = co_await delete_object(req, r, std::move(*cur), options);
    if (res && get_string(*res, {"kind"}) != "Status") items.push_back(std::move(*res));
  }
  json::object list{{"kind", std::string(r.kind) + "List"},
                    {"apiVersion", r.api_version()},
                    {"metadata", json::object{{"resourceVersion", std::to_string(cache_.revision())}}},
                    {"items", std::move(items)}};
  co_return Response::json(200, to_json(list));
}

}  // namespace podwarp::apiserver
