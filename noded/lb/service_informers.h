// ServiceLbSync: the informers that feed ServiceSync in noded's API mode. Two informers (all
// namespaces): v1 Services and discovery.k8s.io/v1 EndpointSlices; their events go to
// ServiceSync one by one; once both have completed their first list, ServiceSync::mark_synced()
// (apply all once, prune what the pinned maps held for services that are gone). Failed
// applies are retried every `retry_interval`.
//
// Threading: everything on `executor` (noded's single io_context thread). The ServiceMap must
// outlive the object; stop() (or the destructor) stops the informers and the retry timer.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "lb/service_sync.h"
#include "podwarp/client.h"

namespace podwarp::noded::lb {

class ServiceLbSync {
 public:
  ServiceLbSync(boost::asio::any_io_executor executor, client::Client client, ServiceMap& map,
                std::string node_name,
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
