#include "core/service_account.h"

#include "podwarp/informer.h"

namespace podwarp::controllers {

namespace {

constexpr std::string_view kDefault = "default";

class ServiceAccountController : public ControllerBase {
 public:
  explicit ServiceAccountController(loop::ControllerContext& ctx)
      : ControllerBase(ctx, "serviceaccount"),
        ns_res_(resource("", "namespaces")),
        sa_res_(resource("", "serviceaccounts")),
        namespaces_(informers_.informer(ns_res_)),
        accounts_(informers_.informer(sa_res_)) {}

  void init() override {
    std::weak_ptr<ServiceAccountController> w =
        std::static_pointer_cast<ServiceAccountController>(shared_from_this());
    using Self = ServiceAccountController;
    using V = const json::value&;
    loop::on_object_change(informers_, ns_res_,
                           guarded(w, [](Self& s, V o) { s.queue().add(std::string(name_of(o))); }),
                           false);
    informers_.on_delete(sa_res_, guarded(w, [](Self& s, V o) {
                           if (name_of(o) == kDefault) s.queue().add(std::string(namespace_of(o)));
                         }));
  }

  void on_start() override {
    for (const client::ObjectPtr& n : namespaces_.list()) queue().add(std::string(name_of(*n)));
  }

  Awaitable<Result<void>> sync(std::string ns) override {
    client::ObjectPtr n = namespaces_.get("", ns);
    if (!n || being_deleted(*n) || get_string(*n, {"status", "phase"}) == "Terminating") {
      co_return Result<void>{};
    }
    if (accounts_.get(ns, kDefault)) co_return Result<void>{};
    json::value sa =
        json::object{{"apiVersion", "v1"},
                     {"kind", "ServiceAccount"},
                     {"metadata", json::object{{"name", kDefault}, {"namespace", ns}}}};
    auto r = co_await loop::api_create(client_, sa_res_, ns, std::move(sa));
    // AlreadyExists: the cache lags; Forbidden/NotFound: the namespace is going away.
    if (!r && r.error().code != 409 && r.error().code != 403 && r.error().code != 404) {
      co_return std::unexpected(r.error());
    }
    co_return Result<void>{};
  }

 private:
  const api::Resource& ns_res_;
  const api::Resource& sa_res_;
  client::Informer& namespaces_;
  client::Informer& accounts_;
};

}  // namespace

std::unique_ptr<loop::Controller> make_service_account_controller(loop::ControllerContext& ctx) {
  return make_controller<ServiceAccountController>(ctx);
}

}  // namespace podwarp::controllers
