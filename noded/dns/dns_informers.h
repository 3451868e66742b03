// DnsInformers: the informer cache behind the cluster DNS. Two informers (all namespaces): v1
// Services and discovery.k8s.io/v1 EndpointSlices, whose events update ClusterRecords, so
// that every answer comes from memory. The informers are shared with noded/lb's ServiceLbSync
// (one list, one watch, one cache each): the caller creates them, calls start() here (which
// registers the handlers) and then starts them.
//
// Threading: everything on the informers' executor (noded's io_context thread), the same
// thread the DnsServer reads ClusterRecords on. `records` must outlive the object; stop() (or
// the destructor) silences the handlers; the informers are the caller's to stop.
#pragma once

#include <memory>

#include "dns/records.h"
#include "podwarp/informer.h"

namespace podwarp::noded::dns {

class DnsInformers {
 public:
  DnsInformers(std::shared_ptr<client::Informer> services,
               std::shared_ptr<client::Informer> slices, ClusterRecords& records);
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
