#include "lb/service_informers.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "podwarp/api/resources.h"
#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::noded::lb {

struct ServiceLbSync::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor e, client::Client c, ServiceMap& m, std::string node,
       std::chrono::milliseconds retry)
      : ex(std::move(e)), client(std::move(c)), sync(m, std::move(node)), retry_interval(retry),
        timer(ex) {}

  boost::asio::any_io_executor ex;
  client::Client client;
  ServiceSync sync;
  std::chrono::milliseconds retry_interval;
  boost::asio::steady_timer timer;
  std::shared_ptr<client::Informer> services, slices;
  bool stopped = false;

  void check_synced() {
    if (!sync.synced() && services->has_synced() && slices->has_synced()) sync.mark_synced();
  }
  // After the informer's current step: it calls the callbacks of a list before has_synced().
  void post_check_synced() {
    if (sync.synced()) return;
    std::weak_ptr<Impl> weak = weak_from_this();
    boost::asio::post(ex, [weak] {
      if (auto s = weak.lock(); s && !s->stopped) s->check_synced();
    });
  }

  void arm_retry() {
    // Until the first full sync, look often (informers with empty lists call nothing).
    timer.expires_after(sync.synced() ? retry_interval : std::chrono::milliseconds(100));
    std::weak_ptr<Impl> weak = weak_from_this();
    timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || s->stopped) return;
      // Informers synced without any event (empty cluster) are noticed here too.
      s->check_synced();
      if (!s->sync.failed().empty()) s->sync.retry_failed();
      s->arm_retry();
    });
  }

  void start() {
    const api::Resource* svc_res = api::find_resource("", "v1", "services");
    const api::Resource* eps_res = api::find_resource("discovery.k8s.io", "v1", "endpointslices");
    if (svc_res == nullptr || eps_res == nullptr) {
      log::error("service lb: services/endpointslices missing from the resource table");
      return;
    }
    services = client::Informer::create(ex, client, *svc_res, "");
    slices = client::Informer::create(ex, client, *eps_res, "");
    std::weak_ptr<Impl> weak = weak_from_this();
    services->on_add([weak](const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.service_changed(o);
        s->post_check_synced();
      }
    });
    services->on_update([weak](const json::value&, const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.service_changed(o);
        s->post_check_synced();
      }
    });
    services->on_delete([weak](const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.service_deleted(o);
        s->post_check_synced();
      }
    });
    slices->on_add([weak](const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.slice_changed(nullptr, o);
        s->post_check_synced();
      }
    });
    slices->on_update([weak](const json::value& old, const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.slice_changed(&old, o);
        s->post_check_synced();
      }
    });
    slices->on_delete([weak](const json::value& o) {
      if (auto s = weak.lock()) {
        s->sync.slice_deleted(o);
        s->post_check_synced();
      }
    });
    services->start();
    slices->start();
    arm_retry();
  }

  void stop() {
    stopped = true;
    timer.cancel();
    if (services) services->stop();
    if (slices) slices->stop();
  }
};

ServiceLbSync::ServiceLbSync(boost::asio::any_io_executor executor, client::Client client,
                             ServiceMap& map, std::string node_name,
                             std::chrono::milliseconds retry_interval)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(client), map,
                                   std::move(node_name), retry_interval)) {}

ServiceLbSync::~ServiceLbSync() { impl_->stop(); }

void ServiceLbSync::start() { impl_->start(); }
void ServiceLbSync::stop() { impl_->stop(); }
const ServiceSync& ServiceLbSync::sync() const { return impl_->sync; }

}  // namespace podwarp::noded::lb
