#include "loop/shared_informers.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace podwarp::loop {

namespace asio = boost::asio;

SharedInformers::SharedInformers(asio::any_io_executor executor, client::Client client,
                                 client::InformerOptions options)
    : executor_(std::move(executor)), client_(std::move(client)), options_(std::move(options)) {}

SharedInformers::~SharedInformers() { stop(); }

SharedInformers::Entry& SharedInformers::entry(const api::Resource& res) {
  std::string key = fmt::format("{}/{}", res.group, res.plural);
  auto it = entries_.find(key);
  if (it != entries_.end()) return *it->second;
  auto e = std::make_unique<Entry>();
  e->informer = client::Informer::create(executor_, client_, res, {}, options_);
  // The fan-out handlers look the entry up through a raw pointer: entries live as long as
  // this object, and stop() (in the destructor) guarantees no callback after it.
  Entry* raw = e.get();
  e->informer->on_add([raw](const json::value& obj) {
    for (auto& h : raw->adds) h(obj);
  });
  e->informer->on_update([raw](const json::value& old_obj, const json::value& obj) {
    for (auto& h : raw->updates) h(old_obj, obj);
  });
  e->informer->on_delete([raw](const json::value& obj) {
    for (auto& h : raw->deletes) h(obj);
  });
  if (started_ && !stopped_) e->informer->start();
  auto [pos, _] = entries_.emplace(std::move(key), std::move(e));
  return *pos->second;
}

client::Informer& SharedInformers::informer(const api::Resource& res) {
  return *entry(res).informer;
}

void SharedInformers::on_add(const api::Resource& res, client::Informer::AddHandler h) {
  entry(res).adds.push_back(std::move(h));
}
void SharedInformers::on_update(const api::Resource& res, client::Informer::UpdateHandler h) {
  entry(res).updates.push_back(std::move(h));
}
void SharedInformers::on_delete(const api::Resource& res, client::Informer::DeleteHandler h) {
  entry(res).deletes.push_back(std::move(h));
}

void SharedInformers::start() {
  if (started_ || stopped_) return;
  started_ = true;
  for (auto& [_, e] : entries_) e->informer->start();
}

void SharedInformers::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [_, e] : entries_) e->informer->stop();
}

bool SharedInformers::synced() const {
  for (const auto& [_, e] : entries_) {
    if (!e->informer->has_synced()) return false;
  }
  return true;
}

Awaitable<bool> SharedInformers::wait_synced() {
  asio::steady_timer timer(executor_);
  while (!stopped_ && !synced()) {
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return !stopped_;
}

}  // namespace podwarp::loop
