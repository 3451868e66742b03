#include "podwarp/informer.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <random>
#include <utility>

#include "podwarp/log.h"

namespace podwarp::client {

namespace {

namespace asio = boost::asio;

class ClientListWatch final : public ListWatch {
 public:
  ClientListWatch(Client client, const api::Resource& res, std::string ns)
      : client_(std::move(client)), res_(&res), ns_(std::move(ns)) {}

  Awaitable<Result<json::value>> list(ListOptions opts) override {
    return client_.list(*res_, ns_, std::move(opts));
  }
  Awaitable<Result<std::shared_ptr<WatchStream>>> watch(ListOptions opts) override {
    return client_.open_watch(*res_, ns_, std::move(opts));
  }
  std::string describe() const override {
    std::string what(res_->plural);
    if (!res_->group.empty()) what += fmt::format(".{}", res_->group);
    if (res_->namespaced && !ns_.empty()) what += fmt::format(" in {}", ns_);
    return what;
  }

 private:
  Client client_;
  const api::Resource* res_;
  std::string ns_;
};

// List items come without kind and apiVersion; give them the ones of the list ("PodList" →
// "Pod"), so that cached objects look the same whether they came from a list or a watch.
void fill_type_meta(json::value& item, std::string_view list_kind, std::string_view api_version) {
  json::object* obj = item.if_object();
  if (obj == nullptr) return;
  if (!obj->contains("kind") && list_kind.size() > 4 && list_kind.ends_with("List")) {
    (*obj)["kind"] = list_kind.substr(0, list_kind.size() - 4);
  }
  if (!obj->contains("apiVersion") && !api_version.empty()) (*obj)["apiVersion"] = api_version;
}

}  // namespace

std::shared_ptr<ListWatch> make_list_watch(Client client, const api::Resource& res,
                                           std::string ns) {
  return std::make_shared<ClientListWatch>(std::move(client), res, std::move(ns));
}

Informer::Informer(asio::any_io_executor executor, std::shared_ptr<ListWatch> source,
                   InformerOptions options)
    : executor_(std::move(executor)),
      source_(std::move(source)),
      options_(std::move(options)),
      random_state_(std::random_device{}()),
      timer_(executor_) {}

std::shared_ptr<Informer> Informer::create(asio::any_io_executor executor,
                                           std::shared_ptr<ListWatch> source,
                                           InformerOptions options) {
  return std::make_shared<Informer>(std::move(executor), std::move(source), std::move(options));
}

std::shared_ptr<Informer> Informer::create(asio::any_io_executor executor, Client client,
                                           const api::Resource& res, std::string ns,
                                           InformerOptions options) {
  auto source = make_list_watch(std::move(client), res, std::move(ns));
  return create(std::move(executor), std::move(source), std::move(options));
}

void Informer::start() {
  if (started_ || stopped_) return;
  started_ = true;
  std::string what = source_->describe();
  asio::co_spawn(executor_, run(shared_from_this()), [what](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log::error("informer {}: stopped by an exception: {}", what, x.what());
    } catch (...) {
      log::error("informer {}: stopped by an exception", what);
    }
  });
}

void Informer::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (watch_) watch_->cancel();
}

// A handler may stop the informer: the handlers after it are then not called.
void Informer::emit_add(const json::value& obj) const {
  for (const auto& h : on_add_) {
    if (stopped_) return;
    h(obj);
  }
}

void Informer::emit_update(const json::value& old_obj, const json::value& obj) const {
  for (const auto& h : on_update_) {
    if (stopped_) return;
    h(old_obj, obj);
  }
}

void Informer::emit_delete(const json::value& last_known) const {
  for (const auto& h : on_delete_) {
    if (stopped_) return;
    h(last_known);
  }
}

std::string Informer::key_of(const json::value& obj) {
  std::string_view ns = get_string(obj, {"metadata", "namespace"});
  std::string_view name = get_string(obj, {"metadata", "name"});
  return ns.empty() ? std::string(name) : fmt::format("{}/{}", ns, name);
}

ObjectPtr Informer::get(std::string_view ns, std::string_view name) const {
  auto it = ns.empty() ? cache_.find(name) : cache_.find(fmt::format("{}/{}", ns, name));
  return it == cache_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::list() const {
  std::vector<ObjectPtr> out;
  out.reserve(cache_.size());
  for (const auto& [key, obj] : cache_) out.push_back(obj);
  return out;
}

std::chrono::milliseconds Informer::next_backoff() {
  backoff_ =
      backoff_.count() == 0 ? options_.min_backoff : std::min(backoff_ * 2, options_.max_backoff);
  // Full jitter over the upper half: [backoff/2, backoff].
  random_state_ = random_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
  auto half = backoff_.count() / 2;
  auto jitter = half > 0 ? static_cast<std::int64_t>((random_state_ >> 33) % (half + 1)) : 0;
  return std::chrono::milliseconds(backoff_.count() - half + jitter);
}

Awaitable<void> Informer::sleep(std::chrono::milliseconds d) {
  timer_.expires_after(d);
  boost::system::error_code ec;
  co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

Awaitable<void> Informer::run(std::shared_ptr<Informer> self) {
  bool need_list = true;
  while (!self->stopped_) {
    if (need_list) {
      auto listed = co_await self->relist();
      if (self->stopped_) break;
      if (!listed) {
        log::warn("informer {}: list: {}", self->source_->describe(), listed.error().to_string());
        co_await self->sleep(self->next_backoff());
        continue;
      }
      need_list = false;
    }
    Outcome outcome = co_await self->watch_once();
    switch (outcome) {
      case Outcome::relist:
        need_list = true;
        break;
      case Outcome::rewatch:
        break;
      case Outcome::backoff_rewatch:
        co_await self->sleep(self->next_backoff());
        break;
      case Outcome::stopped:
        co_return;
    }
  }
}

Awaitable<Result<void>> Informer::relist() {
  ListOptions opts;
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  opts.limit = options_.page_size;
  std::map<std::string, ObjectPtr, std::less<>> fresh;
  std::string rv;
  bool restarted = false;
  for (;;) {
    auto page = co_await source_->list(opts);
    if (stopped_) co_return Result<void>();
    if (!page) {
      // An expired continue token (410) means the snapshot is gone: start over, once.
      if (page.error().is_gone() && !opts.continue_token.empty() && !restarted) {
        restarted = true;
        fresh.clear();
        opts.continue_token.clear();
        continue;
      }
      co_return std::unexpected(std::move(page.error()));
    }
    std::string list_kind(get_string(*page, {"kind"}));
    std::string api_version(get_string(*page, {"apiVersion"}));
    if (json::value* items = find_path(*page, {"items"}); items != nullptr && items->is_array()) {
      for (json::value& item : items->get_array()) {
        fill_type_meta(item, list_kind, api_version);
        std::string key = key_of(item);
        fresh[std::move(key)] = std::make_shared<const json::value>(std::move(item));
      }
    }
    rv = std::string(get_string(*page, {"metadata", "resourceVersion"}));
    std::string cont(get_string(*page, {"metadata", "continue"}));
    if (cont.empty()) break;
    opts.continue_token = std::move(cont);
  }

  auto old = std::exchange(cache_, std::move(fresh));
  resource_version_ = rv;
  synced_ = true;
  ++list_count_;
  backoff_ = std::chrono::milliseconds(0);

  // Emit the difference, after the cache holds the new state.
  for (const auto& [key, obj] : cache_) {
    if (stopped_) break;
    auto it = old.find(key);
    if (it == old.end()) {
      emit_add(*obj);
    } else if (get_string(*it->second, {"metadata", "resourceVersion"}) !=
               get_string(*obj, {"metadata", "resourceVersion"})) {
      emit_update(*it->second, *obj);
    }
  }
  for (const auto& [key, obj] : old) {
    if (stopped_) break;
    if (!cache_.contains(key)) emit_delete(*obj);
  }
  co_return Result<void>();
}

Awaitable<Informer::Outcome> Informer::watch_once() {
  ListOptions opts;
  opts.label_selector = options_.label_selector;
  opts.field_selector = options_.field_selector;
  opts.resource_version = resource_version_;
  if (std::int64_t t = options_.watch_timeout_seconds; t > 0) {
    random_state_ = random_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    opts.timeout_seconds = t + static_cast<std::int64_t>((random_state_ >> 33) % t);
  }
  auto opened = co_await source_->watch(std::move(opts));
  if (stopped_) {
    if (opened) (*opened)->cancel();
    co_return Outcome::stopped;
  }
  if (!opened) {
    if (opened.error().is_gone()) co_return Outcome::relist;
    log::warn("informer {}: watch: {}", source_->describe(), opened.error().to_string());
    co_return Outcome::backoff_rewatch;
  }
  watch_ = std::move(*opened);
  std::shared_ptr<WatchStream> stream = watch_;  // stays alive while next() is pending
  bool progressed = false;
  for (;;) {
    auto ev = co_await stream->next();
    if (stopped_) {
      watch_.reset();
      co_return Outcome::stopped;
    }
    if (!ev) {
      watch_.reset();
      if (ev.error().is_gone()) co_return Outcome::relist;
      log::warn("informer {}: watch: {}", source_->describe(), ev.error().to_string());
      co_return Outcome::backoff_rewatch;
    }
    if (!*ev) {
      watch_.reset();
      // A stream that ends without any event may be a server in trouble: do not spin on it.
      co_return progressed ? Outcome::rewatch : Outcome::backoff_rewatch;
    }
    progressed = true;
    backoff_ = std::chrono::milliseconds(0);
    apply(**ev);
  }
}

void Informer::apply(WatchEvent& ev) {
  std::string rv(get_string(ev.object, {"metadata", "resourceVersion"}));
  if (!rv.empty()) resource_version_ = rv;
  if (ev.type == "BOOKMARK") return;
  std::string key = key_of(ev.object);
  if (ev.type == "ADDED" || ev.type == "MODIFIED") {
    auto obj = std::make_shared<const json::value>(std::move(ev.object));
    auto it = cache_.find(key);
    if (it == cache_.end()) {
      cache_.emplace(std::move(key), obj);
      if (!stopped_) emit_add(*obj);
    } else {
      ObjectPtr old = std::exchange(it->second, obj);
      if (!stopped_) emit_update(*old, *obj);
    }
  } else if (ev.type == "DELETED") {
    auto it = cache_.find(key);
    if (it == cache_.end()) return;
    cache_.erase(it);
    if (!stopped_) emit_delete(ev.object);
  } else {
    log::debug("informer {}: ignoring watch event of type {}", source_->describe(), ev.type);
  }
}

}  // namespace podwarp::client
