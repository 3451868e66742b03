#include "apiserver/watch_cache.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "apiserver/http.h"
#include "podwarp/log.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

std::string_view event_type_name(EventType t) {
  switch (t) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
  }
  return "ERROR";
}

namespace {

// Delivers ev to w as w's filter sees it: an object that stops matching is deleted for w,
// one that starts matching is added.
void deliver_filtered(CacheWatcher& w, const CacheEvent& ev) {
  bool before = ev.prev && w.matches(ev.prev->value);
  if (ev.type == EventType::kDeleted) {
    if (before) w.deliver(ev, EventType::kDeleted);
    return;
  }
  bool now = w.matches(ev.object->value);
  if (now && before) {
    w.deliver(ev, EventType::kModified);
  } else if (now) {
    w.deliver(ev, EventType::kAdded);
  } else if (before) {
    w.deliver(ev, EventType::kDeleted);
  }
}

template <typename Owner>
std::mutex& stripe(const Owner* owner) {
  static std::array<std::mutex, 64> locks;  // one set per Owner type
  return locks[(reinterpret_cast<std::uintptr_t>(owner) / alignof(std::max_align_t)) % locks.size()];
}

}  // namespace

std::mutex& fill_lock(const StoredObject* owner) { return stripe(owner); }
std::mutex& fill_lock(const CacheEvent* owner) { return stripe(owner); }

// The watchers of one consumer executor (a connection thread). The cache's thread hands it
// each event once (and the joins and leaves of its watchers, in order with the events); on
// its own thread it filters each event for each of its watchers and delivers it. Their
// feeds' consumers run on that same thread, so a delivery crosses no thread.
class WatchGroup : public std::enable_shared_from_this<WatchGroup> {
 public:
  explicit WatchGroup(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  const asio::any_io_executor& executor() const { return ex_; }

  // The cache's thread.
  std::size_t registered = 0;  // watchers joined and not yet left: 0 means no events needed
  void join(std::shared_ptr<CacheWatcher> w) {
    ++registered;
    enqueue({.join = std::move(w)});
  }
  void leave(CacheWatcher* w) {
    --registered;
    enqueue({.leave = w});
  }
  void publish(std::shared_ptr<const CacheEvent> ev) { enqueue({.event = std::move(ev)}); }
  // The end of a batch of etcd events: everything up to revision has been published.
  void progress(std::int64_t revision) { enqueue({.progress = revision}); }

 private:
  struct Entry {
    std::shared_ptr<CacheWatcher> join;
    CacheWatcher* leave = nullptr;
    std::shared_ptr<const CacheEvent> event;
    std::int64_t progress = 0;
  };

  void enqueue(Entry e) {
    {
      std::lock_guard lock(mu_);
      inbox_.push_back(std::move(e));
      if (posted_) return;
      posted_ = true;
    }
    // Inside the cache's batch of etcd events: posted once, when the batch is in.
    NotifyBatch::run([self = shared_from_this()] {
      asio::post(self->ex_, [self] { self->run(); });
    });
  }

  void run() {
    {
      std::lock_guard lock(mu_);
      work_.swap(inbox_);  // both keep their capacity
      posted_ = false;
    }
    // Only whole batches: events after the last batch end (a batch the cache's thread is
    // still publishing) wait for the next run, which that batch's end posts. So a feed never
    // gets part of a revision's events in one take and the rest in a later one.
    std::size_t cut = 0;
    for (std::size_t i = 0; i < work_.size(); ++i) {
      if (work_[i].progress != 0) cut = i + 1;
    }
    while (cut < work_.size() && !work_[cut].event) ++cut;
    NotifyBatch batch;  // HTTP/2 connections on this thread are woken once, after all of it
    for (std::size_t i = 0; i < cut; ++i) {
      Entry& e = work_[i];
      if (e.progress != 0) {
        members_.for_each([&](CacheWatcher& m) { m.progress(e.progress); });
      } else if (e.join) {
        members_.add(std::move(e.join));
      } else if (e.leave != nullptr) {
        members_.remove(e.leave);
      } else {
        const CacheEvent& ev = *e.event;
        members_.for_key(ev.key, [&](CacheWatcher& m) { deliver_filtered(m, ev); });
      }
    }
    if (cut < work_.size()) {
      std::lock_guard lock(mu_);
      inbox_.insert(inbox_.begin(), std::make_move_iterator(work_.begin() + cut),
                    std::make_move_iterator(work_.end()));
    }
    work_.clear();
  }

  asio::any_io_executor ex_;
  std::mutex mu_;
  std::vector<Entry> inbox_;  // GUARDED_BY(mu_)
  bool posted_ = false;       // GUARDED_BY(mu_)
  // The group's thread only.
  std::vector<Entry> work_;
  PrefixIndex members_;
};

void PrefixIndex::add(std::shared_ptr<CacheWatcher> w) {
  auto b = std::find_if(buckets_.begin(), buckets_.end(),
                        [&](const Bucket& b) { return b.prefix == w->prefix(); });
  if (b == buckets_.end()) b = buckets_.insert(b, Bucket{w->prefix(), {}});
  b->watchers.push_back(std::move(w));
}

void PrefixIndex::remove(const CacheWatcher* w) {
  auto b = std::find_if(buckets_.begin(), buckets_.end(),
                        [&](const Bucket& b) { return b.prefix == w->prefix(); });
  if (b == buckets_.end()) return;
  auto d = std::find_if(b->watchers.begin(), b->watchers.end(),
                        [&](const auto& m) { return m.get() == w; });
  if (d == b->watchers.end()) return;
  if (passes_ > 0) {
    departed_.push_back(std::move(*d));  // blanks the slot; kept alive until the pass ends
    blanks_ = true;
    return;
  }
  b->watchers.erase(d);
  if (b->watchers.empty()) buckets_.erase(b);
}

void PrefixIndex::end_pass() {
  if (--passes_ > 0 || !blanks_) return;
  for (Bucket& b : buckets_) std::erase(b.watchers, nullptr);
  std::erase_if(buckets_, [](const Bucket& b) { return b.watchers.empty(); });
  blanks_ = false;
  departed_.clear();
}

WatchCache::WatchCache(asio::any_io_executor ex, storage::EtcdClient& etcd, std::string root)
    : ex_(std::move(ex)), etcd_(etcd), root_(std::move(root)) {}

WatchCache::~WatchCache() {
  *alive_ = false;
  watch_.reset();
  for (auto& [rev, timer] : revision_waiters_) timer->cancel();
}

ObjectPtr WatchCache::decode(std::string_view value, std::int64_t rev) {
  auto parsed = parse_json(value);
  if (!parsed || !parsed->is_object()) return nullptr;
  json::object& meta = ensure_object(parsed->get_object(), "metadata");
  meta["resourceVersion"] = std::to_string(rev);
  return std::make_shared<const StoredObject>(std::move(*parsed));
}

asio::awaitable<storage::Result<std::int64_t>> WatchCache::start() {
  // The current revision.
  // Named, not braced in the co_await: g++ 12 destroys such temporaries twice.
  const storage::RangeOptions head_opts{.limit = 1, .count_only = true};
  auto head = co_await etcd_.range(root_, head_opts);
  if (!head) co_return std::unexpected(head.error());
  const std::int64_t current = head->revision;

  // State at an older revision, then replay of the events since, so that history covers
  // the last kStartupHistory revisions. When that revision was compacted, start from now.
  std::int64_t base = std::max<std::int64_t>(1, current - kStartupHistory);
  const storage::RangeOptions at_base{.revision = base, .prefix = true};
  storage::Result<storage::RangeResult> snapshot = co_await etcd_.range(root_, at_base);
  if (!snapshot && snapshot.error().code == storage::StorageErrc::kCompacted) {
    base = current;
    const storage::RangeOptions at_current{.revision = current, .prefix = true};
    snapshot = co_await etcd_.range(root_, at_current);
  }
  if (!snapshot) co_return std::unexpected(snapshot.error());
  for (const storage::KeyValue& kv : snapshot->kvs) {
    if (ObjectPtr obj = decode(kv.value, kv.mod_revision)) objects_[kv.key] = std::move(obj);
  }
  revision_ = base;
  history_start_ = base;
  restart_watch();
  bool reached = co_await wait_for_revision(current, std::chrono::milliseconds(1500));
  if (!reached) {
    // The newest revisions touched keys outside root_; nothing is missing below it.
    set_revision(current);
  }
  ready_ = true;
  log::info("watch cache: {} objects at revision {}, history from {}", objects_.size(),
            revision_, history_start_);
  co_return revision_;
}

void WatchCache::restart_watch() {
  std::weak_ptr<bool> alive = alive_;
  // No prev_kv: the cache holds every key's current object, so a deletion finds its last
  // value here, and etcd is spared a read per event.
  watch_ = etcd_.watch(
      root_, revision_ + 1, /*prev_kv=*/false,
      [this, alive](std::vector<storage::WatchEvent> events, std::int64_t rev) {
        if (alive.expired()) return;
        on_events(std::move(events), rev);
      },
      [this, alive](storage::StorageError err) {
        if (alive.expired()) return;
        on_error(std::move(err));
      });
}

void WatchCache::on_error(storage::StorageError err) {
  log::warn("watch cache: etcd watch ended: {}", err.message);
  if (err.code == storage::StorageErrc::kCompacted) {
    // Our position was compacted away: we cannot know what changed. Tell every watcher to
    // start over and rebuild from a fresh list.
    std::vector<CacheWatcher*> all;
    for (const auto& [w, reg] : watchers_) all.push_back(w);
    for (CacheWatcher* w : all) {
      w->terminate("watch cache reset: etcd history compacted");
      remove_watcher(w);
    }
    history_.clear();
    objects_.clear();
    pending_.clear();
    std::weak_ptr<bool> alive = alive_;
    asio::co_spawn(
        ex_,
        [this, alive]() -> asio::awaitable<void> {
          const storage::RangeOptions all{.prefix = true};
          auto snap = co_await etcd_.range(root_, all);
          if (alive.expired() || !snap) co_return;
          for (const auto& kv : snap->kvs) {
            if (ObjectPtr obj = decode(kv.value, kv.mod_revision)) objects_[kv.key] = obj;
          }
          revision_ = snap->revision;
          history_start_ = snap->revision;
          restart_watch();
        },
        asio::detached);
    return;
  }
  // Transient: retry from where we are after a short pause.
  auto timer = std::make_shared<asio::steady_timer>(ex_, std::chrono::milliseconds(500));
  std::weak_ptr<bool> alive = alive_;
  timer->async_wait([this, alive, timer](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    restart_watch();
  });
}

void WatchCache::on_events(std::vector<storage::WatchEvent> events, std::int64_t revision) {
  NotifyBatch batch;  // HTTP/2 connections are woken once, after the whole batch
  for (const storage::WatchEvent& ev : events) apply(ev);
  if (events.empty() && revision > revision_) set_revision(revision);
  // The batch is in: every watcher may now name revision_ in a BOOKMARK.
  for (const auto& group : groups_) {
    if (group->registered > 0) group->progress(revision_);
  }
  direct_.for_each([&](CacheWatcher& w) { w.progress(revision_); });
}

void WatchCache::apply(const storage::WatchEvent& ev) {
  // The service allocator's reservations (owner name, not an object) share the prefix.
  if (ev.kv.key.starts_with("/registry/ipaddresses/") ||
      ev.kv.key.starts_with("/registry/servicenodeports/")) {
    set_revision(ev.kv.mod_revision);
    return;
  }
  auto event = std::make_shared<CacheEvent>();
  event->key = ev.kv.key;
  event->revision = ev.kv.mod_revision;
  auto it = objects_.find(ev.kv.key);
  ObjectPtr prev = it == objects_.end() ? nullptr : it->second;
  if (ev.type == storage::WatchEvent::Type::kPut) {
    ObjectPtr obj = object_of(ev.kv);
    if (!obj) {
      log::error("watch cache: undecodable value at {} (revision {}), skipped", ev.kv.key,
                 ev.kv.mod_revision);
      set_revision(ev.kv.mod_revision);
      return;
    }
    event->type = prev ? EventType::kModified : EventType::kAdded;
    event->object = obj;
    event->prev = prev;
    objects_[ev.kv.key] = std::move(obj);
  } else {
    if (it != objects_.end()) objects_.erase(it);
    if (!prev) {
      set_revision(ev.kv.mod_revision);
      return;
    }
    // The deleted object carries the deletion revision, as upstream.
    json::value last = prev->value;
    ensure_object(last.get_object(), "metadata")["resourceVersion"] =
        std::to_string(ev.kv.mod_revision);
    event->type = EventType::kDeleted;
    event->object = std::make_shared<const StoredObject>(std::move(last));
    event->prev = prev;
  }
  history_.push_back(event);
  if (history_.size() > kHistoryCapacity) {
    history_start_ = history_.front()->revision;
    history_.pop_front();
  }
  set_revision(event->revision);
  dispatch(event);
}

ObjectPtr WatchCache::object_of(const storage::KeyValue& kv) {
  // This apiserver's own write of exactly these bytes: its object, not a parse.
  if (pending_.empty()) return decode(kv.value, kv.mod_revision);
  if (auto p = pending_.find(kv.key); p != pending_.end() && p->second->text() == kv.value) {
    std::shared_ptr<PendingWrite> written = std::move(p->second);
    pending_.erase(p);
    return written->at(kv.mod_revision);
  }
  return decode(kv.value, kv.mod_revision);
}

ObjectPtr PendingWrite::at(std::int64_t rev) {
  if (stored_ && revision_ == rev) return stored_;
  json::value v = stored_ ? stored_->value : std::move(obj_);
  ensure_object(v.as_object(), "metadata")["resourceVersion"] = std::to_string(rev);
  stored_ = std::make_shared<const StoredObject>(std::move(v));
  revision_ = rev;
  return stored_;
}

json::value& PendingWrite::unstored() {
  if (stored_ && obj_.is_null()) {
    obj_ = stored_->value;
    ensure_object(obj_.as_object(), "metadata").erase("resourceVersion");
  }
  return obj_;
}

std::shared_ptr<PendingWrite> WatchCache::expect_write(std::string key, std::string text,
                                                       json::value obj) {
  // Entries left by a restarted etcd watch would never be taken; keep the map small.
  if (pending_.size() >= 4096) pending_.clear();
  auto w = std::make_shared<PendingWrite>(std::move(key), std::move(text), std::move(obj));
  pending_[w->key()] = w;
  return w;
}

ObjectPtr WatchCache::write_done(const std::shared_ptr<PendingWrite>& w, std::int64_t rev) {
  if (rev <= revision_) drop_pending(w);  // its event is in already (and did not match)
  return w->at(rev);
}

void WatchCache::write_failed(const std::shared_ptr<PendingWrite>& w) { drop_pending(w); }

void WatchCache::drop_pending(const std::shared_ptr<PendingWrite>& w) {
  if (auto p = pending_.find(w->key()); p != pending_.end() && p->second == w) pending_.erase(p);
}

void WatchCache::dispatch(const std::shared_ptr<const CacheEvent>& ev) {
  for (const auto& group : groups_) {
    if (group->registered > 0) group->publish(ev);
  }
  // A watcher may remove itself (terminate) while it is delivered to: PrefixIndex allows it.
  direct_.for_key(ev->key, [&](CacheWatcher& w) { deliver_filtered(w, *ev); });
}

void WatchCache::set_revision(std::int64_t rev) {
  if (rev <= revision_) return;
  revision_ = rev;
  while (!revision_waiters_.empty() && revision_waiters_.begin()->first <= revision_) {
    revision_waiters_.begin()->second->cancel();
    revision_waiters_.erase(revision_waiters_.begin());
  }
}

void WatchCache::list(std::string_view prefix,
                      const std::function<void(const std::string&, const ObjectPtr&)>& fn) const {
  for (auto it = objects_.lower_bound(prefix); it != objects_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    fn(it->first, it->second);
  }
}

ObjectPtr WatchCache::get(const std::string& key) const {
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

asio::awaitable<bool> WatchCache::wait_for_revision(std::int64_t rev,
                                                    std::chrono::milliseconds timeout) {
  if (revision_ >= rev) co_return true;
  asio::steady_timer timer(ex_, timeout);
  auto pos = revision_waiters_.emplace(rev, &timer);
  std::weak_ptr<bool> alive = alive_;
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (alive.expired()) co_return false;
  if (!ec) {
    // Timed out: still registered.
    revision_waiters_.erase(pos);
  }
  co_return revision_ >= rev;
}

std::expected<void, std::string> WatchCache::add_watcher(std::shared_ptr<CacheWatcher> w,
                                                         std::int64_t after_revision,
                                                         asio::any_io_executor consumer) {
  if (after_revision != 0 && after_revision < history_start_) {
    return std::unexpected(fmt::format("too old resource version: {} ({})", after_revision,
                                       history_start_ + 1));
  }
  if (after_revision != 0) {
    // Replay history after after_revision. History is sorted by revision.
    auto it = std::lower_bound(history_.begin(), history_.end(), after_revision + 1,
                               [](const std::shared_ptr<const CacheEvent>& e, std::int64_t r) {
                                 return e->revision < r;
                               });
    for (; it != history_.end(); ++it) {
      const CacheEvent& ev = **it;
      if (ev.key.starts_with(w->prefix())) deliver_filtered(*w, ev);
    }
  }
  WatchGroup* group = nullptr;
  if (consumer && consumer != ex_) {
    auto it = std::find_if(groups_.begin(), groups_.end(),
                           [&](const auto& g) { return g->executor() == consumer; });
    if (it == groups_.end()) it = groups_.insert(it, std::make_shared<WatchGroup>(consumer));
    group = it->get();
    group->join(w);  // after the replay above, before any later event
  } else {
    direct_.add(w);
  }
  CacheWatcher* key = w.get();
  watchers_[key] = {std::move(w), group};
  return {};
}

void WatchCache::remove_watcher(CacheWatcher* w) {
  auto it = watchers_.find(w);
  if (it == watchers_.end()) return;
  if (WatchGroup* group = it->second.second) {
    group->leave(w);
  } else {
    direct_.remove(w);
  }
  watchers_.erase(it);
}

}  // namespace podwarp::apiserver
