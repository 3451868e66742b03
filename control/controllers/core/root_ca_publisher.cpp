#include "core/root_ca_publisher.h"

#include "podwarp/informer.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kDescription =
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.";

class RootCaPublisher : public ControllerBase {
 public:
  explicit RootCaPublisher(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "root-ca-cert-publisher"),
        ns_res_(resource("", "namespaces")),
        cm_res_(resource("", "configmaps")),
        namespaces_(informers_.informer(ns_res_)),
        configmaps_(informers_.informer(cm_res_)),
        ca_pem_(ctx.client.config().ca_pem) {}

  void init() override {
    std::weak_ptr<RootCaPublisher> w = std::static_pointer_cast<RootCaPublisher>(shared_from_this());
    using Self = RootCaPublisher;
    using V = const json::value&;
    loop::on_object_change(informers_, ns_res_,
                           guarded(w, [](Self& s, V o) { s.queue().add(std::string(name_of(o))); }),
                           false);
    loop::on_object_change(informers_, cm_res_, guarded(w, [](Self& s, V o) {
                             if (name_of(o) == kRootCaConfigMap) {
                               s.queue().add(std::string(namespace_of(o)));
                             }
                           }));
  }

  void on_start() override {
    for (const client::ObjectPtr& n : namespaces_.list()) queue().add(std::string(name_of(*n)));
  }

  Awaitable<Result<void>> sync(std::string ns) override {
    if (ca_pem_.empty()) co_return Result<void>{};
    client::ObjectPtr n = namespaces_.get("", ns);
    if (!n || being_deleted(*n) || get_string(*n, {"status", "phase"}) == "Terminating") {
      co_return Result<void>{};
    }
    client::ObjectPtr cm = configmaps_.get(ns, kRootCaConfigMap);
    if (!cm) {
      json::value obj = json::object{
          {"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", json::object{{"name", kRootCaConfigMap},
                                    {"namespace", ns},
                                    {"annotations",
                                     json::object{{"kubernetes.io/description", kDescription}}}}},
          {"data", json::object{{"ca.crt", ca_pem_}}}};
      auto r = co_await loop::api_create(client_, cm_res_, ns, std::move(obj));
      // AlreadyExists: the cache lags; Forbidden/NotFound: the namespace is going away.
      if (!r && r.error().code != 409 && r.error().code != 403 && r.error().code != 404) {
        co_return std::unexpected(r.error());
      }
      co_return Result<void>{};
    }
    const json::value* data = find_path(*cm, {"data"});
    const bool current = data && data->is_object() && data->get_object().size() == 1 &&
                         get_string(*data, {"ca.crt"}) == ca_pem_;
    if (current) co_return Result<void>{};
    json::value next = *cm;
    next.as_object()["data"] = json::object{{"ca.crt", ca_pem_}};
    next.as_object().erase("binaryData");
    json::object& meta = next.as_object()["metadata"].as_object();
    ensure_object(meta, "annotations")["kubernetes.io/description"] = kDescription;
    auto r = co_await loop::api_update(client_, cm_res_, ns, std::move(next));
    if (!r && r.error().code != 409 && r.error().code != 404) co_return std::unexpected(r.error());
    if (!r && r.error().code == 409) queue().add(ns);
    co_return Result<void>{};
  }

 private:
  const api::Resource& ns_res_;
  const api::Resource& cm_res_;
  client::Informer& namespaces_;
  client::Informer& configmaps_;
  std::string ca_pem_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_root_ca_publisher(loop::ControllerContext& ctx) {
  return make_controller<RootCaPublisher>(ctx);
}

}  // namespace podwarp::controllers
