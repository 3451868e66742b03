// ServiceLbSync: feeds ServiceSync from two informers (all namespaces) in noded's API mode:
// v1 Services and discovery.k8s.io/v1 EndpointSlices. Their events go to ServiceSync one by
// one; once both have completed their first list, ServiceSync::mark_synced() (apply all once,
// prune what the pinned maps held for services that are gone). Failed applies are retried
// every `retry_interval`.
//
// The informers are shared with the cluster DNS (one list, one watch, one cache each): the
// caller creates them, calls start() here (which registers the handlers) and then starts them.
//
// Threading: everything on `executor` (noded's single io_context thread), the informers'
// executor too. The ServiceMap must outlive the object; stop() (or the destructor) silences
// the handlers and stops the retry timer; the informers are the caller's to stop.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "lb/service_sync.h"
#include "podwarp/informer.h"

namespace podwarp::noded::lb {

class ServiceLbSync {
 public:
  ServiceLbSync(boost::asio::any_io_executor executor, std::shared_ptr<client::Informer> services,
                std::shared_ptr<client::Informer> slices, ServiceMap& map, std::string node_name,
                std::chrono::milliseconds retry_interval = std::chrono::milliseconds(2000));
  ~ServiceLbSync();
  ServiceLbSync(const ServiceLbSync&) = delete;
  ServiceLbSync& operator=(const ServiceLbSync&) = delete;

  void start();
  void stop();
  const ServiceSync& sync() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::lb
