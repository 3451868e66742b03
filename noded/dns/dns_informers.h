// DnsInformers: the informer cache behind the cluster DNS. Two informers (all namespaces): v1
// Services and discovery.k8s.io/v1 EndpointSlices, whose events update ClusterRecords, so
// that every answer comes from memory. Mirrors noded/lb's ServiceLbSync (which it does not
// share: the LB reads only what it balances, DNS needs headless and ExternalName services).
//
// Threading: everything on `executor` (noded's io_context thread), the same thread the
// DnsServer reads ClusterRecords on. `records` must outlive the object; stop() (or the
// destructor) stops the informers.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "dns/records.h"
#include "podwarp/client.h"

namespace podwarp::noded::dns {

class DnsInformers {
 public:
  DnsInformers(boost::asio::any_io_executor executor, client::Client client,
               ClusterRecords& records);
  ~DnsInformers();
  DnsInformers(const DnsInformers&) = delete;
  DnsInformers& operator=(const DnsInformers&) = delete;

  void start();
  void stop();
  // Both informers have completed their first list.
  bool synced() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::dns
