// SharedInformers: one informer per resource collection (all namespaces), shared by every
// controller of the process, each of which registers its own handlers.
//
// The scheduler and the controllers of podwarp-control each need pods, nodes, replicasets,
// ... and must not open one list+watch per consumer. SharedInformers hands out one
// client::Informer per resource and fans its callbacks out to every registered handler, in
// registration order.
//
// Threading: like Informer, not locked; every call and every callback happens on the executor
// given at construction (an io_context run by one thread). Register handlers before start().
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "podwarp/informer.h"

namespace podwarp::loop {

using client::Awaitable;
using client::ObjectPtr;

class SharedInformers {
 public:
  SharedInformers(boost::asio::any_io_executor executor, client::Client client,
                  client::InformerOptions options = {});
  ~SharedInformers();

  // The informer of `res` (created on first use). The returned reference stays valid for the
  // lifetime of this object.
  client::Informer& informer(const api::Resource& res);

  // Handlers for `res`; any number per resource, called in registration order.
  void on_add(const api::Resource& res, client::Informer::AddHandler h);
  void on_update(const api::Resource& res, client::Informer::UpdateHandler h);
  void on_delete(const api::Resource& res, client::Informer::DeleteHandler h);

  // Starts every informer created so far; informers created later start at once.
  void start();
  void stop();
  // True when every informer has completed its first list.
  bool synced() const;
  // Waits until synced() (polling every 20 ms); false if stopped first.
  Awaitable<bool> wait_synced();

  const client::Client& client() const { return client_; }
  const boost::asio::any_io_executor& get_executor() const { return executor_; }

 private:
  struct Entry {
    std::shared_ptr<client::Informer> informer;
    std::vector<client::Informer::AddHandler> adds;
    std::vector<client::Informer::UpdateHandler> updates;
    std::vector<client::Informer::DeleteHandler> deletes;
  };
  Entry& entry(const api::Resource& res);

  boost::asio::any_io_executor executor_;
  client::Client client_;
  client::InformerOptions options_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;  // by "<group>/<plural>"
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace podwarp::loop
