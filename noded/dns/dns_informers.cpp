#include "dns/dns_informers.h"

#include "podwarp/api/resources.h"
#include "podwarp/informer.h"
#include "podwarp/log.h"

namespace podwarp::noded::dns {

struct DnsInformers::Impl {
  Impl(boost::asio::any_io_executor e, client::Client c, ClusterRecords& r)
      : ex(std::move(e)), client(std::move(c)), records(r) {}

  boost::asio::any_io_executor ex;
  client::Client client;
  ClusterRecords& records;
  std::shared_ptr<client::Informer> services, slices;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void start() {
    const api::Resource* svc_res = api::find_resource("", "v1", "services");
    const api::Resource* eps_res = api::find_resource("discovery.k8s.io", "v1", "endpointslices");
    if (svc_res == nullptr || eps_res == nullptr) {
      log::error("cluster dns: services/endpointslices missing from the resource table");
      return;
    }
    services = client::Informer::create(ex, client, *svc_res, "");
    slices = client::Informer::create(ex, client, *eps_res, "");
    // The callbacks run on the informers' executor; `alive` turns false at stop(), after
    // which the informers call nothing anyway (informer.h), so `records` is never touched late.
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
    services->start();
    slices->start();
  }

  void stop() {
    alive.reset();
    if (services) services->stop();
    if (slices) slices->stop();
  }
};

DnsInformers::DnsInformers(boost::asio::any_io_executor executor, client::Client client,
                           ClusterRecords& records)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(client), records)) {}
DnsInformers::~DnsInformers() { impl_->stop(); }
void DnsInformers::start() { impl_->start(); }
void DnsInformers::stop() { impl_->stop(); }
bool DnsInformers::synced() const {
  return impl_->services && impl_->slices && impl_->services->has_synced() &&
         impl_->slices->has_synced();
}

}  // namespace podwarp::noded::dns
