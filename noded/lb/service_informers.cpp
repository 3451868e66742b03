#include "lb/service_informers.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::noded::lb {

struct ServiceLbSync::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor e, std::shared_ptr<client::Informer> svc,
       std::shared_ptr<client::Informer> eps, ServiceMap& m, std::string node,
       std::chrono::milliseconds retry)
      : ex(std::move(e)),
        services(std::move(svc)),
        slices(std::move(eps)),
        sync(m, std::move(node)),
        retry_interval(retry),
        timer(ex) {}

  boost::asio::any_io_executor ex;
  std::shared_ptr<client::Informer> services, slices;
  ServiceSync sync;
  std::chrono::milliseconds retry_interval;
  boost::asio::steady_timer timer;
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
    if (!services || !slices) {
      log::error("service lb: no services/endpointslices informers");
      return;
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    services->on_add([weak](const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.service_changed(o);
        s->post_check_synced();
      }
    });
    services->on_update([weak](const json::value&, const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.service_changed(o);
        s->post_check_synced();
      }
    });
    services->on_delete([weak](const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.service_deleted(o);
        s->post_check_synced();
      }
    });
    slices->on_add([weak](const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.slice_changed(nullptr, o);
        s->post_check_synced();
      }
    });
    slices->on_update([weak](const json::value& old, const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.slice_changed(&old, o);
        s->post_check_synced();
      }
    });
    slices->on_delete([weak](const json::value& o) {
      if (auto s = weak.lock(); s && !s->stopped) {
        s->sync.slice_deleted(o);
        s->post_check_synced();
      }
    });
    arm_retry();
  }

  void stop() {
    stopped = true;
    timer.cancel();
  }
};

ServiceLbSync::ServiceLbSync(boost::asio::any_io_executor executor,
                             std::shared_ptr<client::Informer> services,
                             std::shared_ptr<client::Informer> slices, ServiceMap& map,
                             std::string node_name, std::chrono::milliseconds retry_interval)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(services), std::move(slices),
                                   map, std::move(node_name), retry_interval)) {}

ServiceLbSync::~ServiceLbSync() { impl_->stop(); }

void ServiceLbSync::start() { impl_->start(); }
void ServiceLbSync::stop() { impl_->stop(); }
const ServiceSync& ServiceLbSync::sync() const { return impl_->sync; }

}  // namespace podwarp::noded::lb
