#include "dns/dns_informers.h"

#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::noded::dns {

struct DnsInformers::Impl {
  Impl(std::shared_ptr<client::Informer> svc, std::shared_ptr<client::Informer> eps,
       ClusterRecords& r)
      : services(std::move(svc)), slices(std::move(eps)), records(r) {}

  std::shared_ptr<client::Informer> services, slices;
  ClusterRecords& records;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void start() {
    if (!services || !slices) {
      log::error("cluster dns: no services/endpointslices informers");
      return;
    }
    // The callbacks run on the informers' executor; `alive` turns false at stop(), after
    // which they touch nothing, so `records` is never touched late.
    std::weak_ptr<bool> weak = alive;
    ClusterRecords* r = &records;
    services->on_add([weak, r](const json::value& o) {
      if (weak.lock()) r->upsert_service(o);
    });
    services->on_update([weak, r](const json::value&, const json::value& o) {
      if (weak.lock()) r->upsert_service(o);
    });
    services->on_delete([weak, r](const json::value& o) {
      if (weak.lock()) r->delete_service(o);
    });
    slices->on_add([weak, r](const json::value& o) {
      if (weak.lock()) r->upsert_slice(o);
    });
    slices->on_update([weak, r](const json::value&, const json::value& o) {
      if (weak.lock()) r->upsert_slice(o);
    });
    slices->on_delete([weak, r](const json::value& o) {
      if (weak.lock()) r->delete_slice(o);
    });
  }

  void stop() { alive.reset(); }
};

DnsInformers::DnsInformers(std::shared_ptr<client::Informer> services,
                           std::shared_ptr<client::Informer> slices, ClusterRecords& records)
    : impl_(std::make_shared<Impl>(std::move(services), std::move(slices), records)) {}
DnsInformers::~DnsInformers() { impl_->stop(); }
void DnsInformers::start() { impl_->start(); }
void DnsInformers::stop() { impl_->stop(); }
bool DnsInformers::synced() const {
  return impl_->services && impl_->slices && impl_->services->has_synced() &&
         impl_->slices->has_synced();
}

}  // namespace podwarp::noded::dns
