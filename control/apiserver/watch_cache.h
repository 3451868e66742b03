// WatchCache: the apiserver's in-memory mirror of everything under /registry/ in etcd.
//
// One etcd watch feeds it. It holds the current object of every key (parsed, with
// metadata.resourceVersion set to the etcd mod revision) and a bounded history of events,
// so that list and watch are served from memory and a watch can resume from any revision
// still in the history (older ones get 410 Gone). At start it replays up to
// kStartupHistory revisions of etcd history so that watchers that reconnect after a
// restart of podwarp-control miss no event.
//
// Each event is serialized at most once per (event type, format) for all its watchers.
//
// Threading: the cache runs on the one executor it was built with. A watcher registered for
// another executor (a connection thread) gets its events on that thread: the cache hands
// each event once to that thread's WatchGroup, which filters it for each of its watchers, so
// one event for 1,000 watchers costs the cache's thread one handoff per connection thread.
// Objects and events are immutable once published; their lazy serializations are locked.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "podwarp/json.h"
#include "storage/etcd_client.h"

namespace podwarp::apiserver {

class StoredObject;
struct CacheEvent;
// Serialize the lazy fills below (StoredObject::text, CacheEvent::frame): a lock picked by
// address, so that objects need no mutex of their own. Each kind has its own set, because an
// event's frame is made with its lock held and takes the object's text.
std::mutex& fill_lock(const StoredObject* owner);
std::mutex& fill_lock(const CacheEvent* owner);

// Runs fill() once for a lazily made value, whichever thread asks first: `ready` is read
// alone on the fast path; fill() runs under `lock` and is published by setting `ready`.
template <typename Fill>
void fill_once(std::atomic<bool>& ready, std::mutex& lock, Fill&& fill) {
  if (ready.load(std::memory_order_acquire)) return;
  std::lock_guard guard(lock);
  if (ready.load(std::memory_order_relaxed)) return;
  fill();
  ready.store(true, std::memory_order_release);
}

// An object as stored: the parsed value (resourceVersion set) and its serialization, made
// once on first use and shared by every list and watch that sends it. Safe from any thread:
// watch groups serialize on the connections' threads while the cache's thread lists.
class StoredObject {
 public:
  explicit StoredObject(json::value v) : value(std::move(v)) {}
  const json::value value;
  const std::string& text() const {
    fill_once(has_text_, fill_lock(this), [&] { text_ = json::serialize(value); });
    return text_;
  }

 private:
  mutable std::string text_;
  mutable std::atomic<bool> has_text_{false};
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

// A write this apiserver is about to send to etcd: the key, the exact bytes, and the object
// they encode without resourceVersion (the same members in the same order as a parse of the
// bytes gives; see rest.cpp). Whichever comes first, the watch event carrying those bytes or
// etcd's reply to the writer, makes the stored object at that revision, and the other takes
// the same one. So the cache need not parse what this apiserver wrote: its event usually
// comes in before the reply is handled. Used on the cache's thread only.
class PendingWrite {
 public:
  PendingWrite(std::string key, std::string text, json::value obj)
      : key_(std::move(key)), text_(std::move(text)), obj_(std::move(obj)) {}
  const std::string& key() const { return key_; }
  const std::string& text() const { return text_; }
  // The object stored at revision rev (resourceVersion set): made once, from the object
  // itself the first time (the same bytes stored twice get a copy for the second revision).
  ObjectPtr at(std::int64_t rev);
  // The object without resourceVersion, for a writer whose write failed (to retry or undo).
  json::value& unstored();

 private:
  std::string key_;
  std::string text_;
  json::value obj_;  // moved into stored_ by the first at()
  ObjectPtr stored_;
  std::int64_t revision_ = 0;
};

enum class EventType { kAdded, kModified, kDeleted };
std::string_view event_type_name(EventType t);

// One change of one key. `object` is the new state (for kDeleted: the last state, with
// resourceVersion set to the deletion revision); `prev` the state before (null on add).
struct CacheEvent {
  EventType type = EventType::kAdded;
  std::string key;
  std::int64_t revision = 0;
  ObjectPtr object;
  ObjectPtr prev;

  // The serialized frame for the event seen as `as` in `representation` (0-4), made by
  // make() on first use, from any thread, and shared by every watcher that sends it.
  template <typename Make>
  const std::shared_ptr<const std::string>& frame(EventType as, int representation,
                                                  Make&& make) const {
    Slot& slot = frames_[static_cast<int>(as)][representation];
    fill_once(slot.ready, fill_lock(this),
              [&] { slot.frame = std::make_shared<const std::string>(make()); });
    return slot.frame;
  }

 private:
  struct Slot {
    std::shared_ptr<const std::string> frame;
    std::atomic<bool> ready{false};
  };
  mutable Slot frames_[3][5];
};

// A registered watch. The cache calls deliver() for each event under prefix, in revision
// order, with the event type as this watcher sees it (after its filter: an object that
// stops matching is seen as deleted, one that starts matching as added). A watcher
// registered with a consumer executor gets its calls on that executor's thread, so
// matches() and deliver() must be safe there (they only read the event and its objects).
class CacheWatcher {
 public:
  virtual ~CacheWatcher() = default;
  virtual const std::string& prefix() const = 0;
  virtual bool matches(const json::value& obj) const = 0;
  virtual void deliver(const CacheEvent& ev, EventType as) = 0;
  // Every event up to `revision` that this watcher gets has been delivered: called after each
  // batch of etcd events, on the thread that delivers them. Events of one revision (the
  // creates of one grouped Txn share one) are never split by it, so a watch resumed from the
  // revision a BOOKMARK names misses nothing.
  virtual void progress(std::int64_t /*revision*/) {}
  // The cache stopped (or this watcher fell too far behind): close the stream. Called on the
  // cache's thread.
  virtual void terminate(std::string reason) = 0;
};

// Watchers by prefix, in the order they came within each prefix: an event's key is compared
// once per distinct prefix, not once per watcher (a cold string each). One thread's. A
// watcher may leave, or another join, while an event is delivered: the leaver's slot is
// blanked (the watcher kept alive) until the outermost pass ends; the joiner gets the next
// event.
class PrefixIndex {
 public:
  void add(std::shared_ptr<CacheWatcher> w);
  void remove(const CacheWatcher* w);
  // fn(watcher) for each watcher whose prefix `key` starts with.
  template <typename Fn>
  void for_key(std::string_view key, Fn&& fn) {
    ++passes_;
    const std::size_t buckets = buckets_.size();  // by index, re-read: fn may add or remove
    for (std::size_t b = 0; b < buckets; ++b) {
      if (!key.starts_with(buckets_[b].prefix)) continue;
      const std::size_t n = buckets_[b].watchers.size();
      for (std::size_t i = 0; i < n; ++i) {
        if (CacheWatcher* w = buckets_[b].watchers[i].get()) fn(*w);
      }
    }
    end_pass();
  }
  template <typename Fn>
  void for_each(Fn&& fn) {
    for (const Bucket& b : buckets_) {
      for (const auto& w : b.watchers) {
        if (w) fn(*w);
      }
    }
  }

 private:
  struct Bucket {
    std::string prefix;
    std::vector<std::shared_ptr<CacheWatcher>> watchers;
  };
  void end_pass();

  std::vector<Bucket> buckets_;
  int passes_ = 0;       // for_key() passes under way (a delivery may nest one)
  bool blanks_ = false;  // slots blanked during a pass
  std::vector<std::shared_ptr<CacheWatcher>> departed_;  // their watchers, until it ends
};

class WatchGroup;

class WatchCache {
 public:
  static constexpr std::size_t kHistoryCapacity = 100000;
  static constexpr std::int64_t kStartupHistory = 10000;

  WatchCache(boost::asio::any_io_executor ex, storage::EtcdClient& etcd, std::string root);
  ~WatchCache();

  // Loads the state and history from etcd and starts following it. Returns once the cache
  // holds the state at the etcd revision current when it was called.
  boost::asio::awaitable<storage::Result<std::int64_t>> start();

  std::int64_t revision() const { return revision_; }
  bool ready() const { return ready_; }

  // Current objects whose key starts with prefix, in key order.
  void list(std::string_view prefix, const std::function<void(const std::string& key,
                                                             const ObjectPtr& obj)>& fn) const;
  ObjectPtr get(const std::string& key) const;

  // Waits until revision() >= rev or the timeout passes; returns whether it got there.
  boost::asio::awaitable<bool> wait_for_revision(std::int64_t rev,
                                                 std::chrono::milliseconds timeout);

  // Registers w to get every event after `after_revision`. after_revision == 0 means "now":
  // the caller has to send the current state itself. Fails with a 410-style message when
  // the history does not reach back to after_revision. The history replay is delivered
  // here, on the cache's thread.
  // With a `consumer` executor other than the cache's (a connection thread), later events
  // are delivered on that executor's thread: the cache hands each event once to one
  // WatchGroup per consumer executor, whose thread filters it for each of its watchers. That
  // takes the per-watcher work of a fan-out off the cache's thread and spreads it over the
  // connection threads. Without one, deliver() runs on the cache's thread. The group holds
  // its watchers until they are removed, so `consumer`'s context must outlive the cache.
  std::expected<void, std::string> add_watcher(std::shared_ptr<CacheWatcher> w,
                                               std::int64_t after_revision,
                                               boost::asio::any_io_executor consumer = {});
  void remove_watcher(CacheWatcher* w);
  std::size_t watcher_count() const { return watchers_.size(); }

  // The oldest revision from which the cache can replay every later event.
  std::int64_t oldest_revision() const { return history_start_; }

  // Parses a stored value into an object with resourceVersion = rev. Null on corrupt data.
  static ObjectPtr decode(std::string_view value, std::int64_t rev);

  // A write through this apiserver, registered before it is sent (see PendingWrite). Its
  // watch event, if it carries exactly w's bytes, takes w's object instead of parsing them.
  // A second registration for the same key replaces the first (whose event is then parsed).
  std::shared_ptr<PendingWrite> expect_write(std::string key, std::string text, json::value obj);
  // etcd stored w at revision rev: the stored object, the same one the event takes. The
  // registration stays until that event comes, unless it came already.
  ObjectPtr write_done(const std::shared_ptr<PendingWrite>& w, std::int64_t rev);
  // etcd did not store w: drops its registration.
  void write_failed(const std::shared_ptr<PendingWrite>& w);

 private:
  void on_events(std::vector<storage::WatchEvent> events, std::int64_t revision);
  void on_error(storage::StorageError err);
  void apply(const storage::WatchEvent& ev);
  // The object a put stored: the registered write's (expect_write) if kv carries exactly its
  // bytes, else decode(); null on corrupt data.
  ObjectPtr object_of(const storage::KeyValue& kv);
  void dispatch(const std::shared_ptr<const CacheEvent>& ev);
  void set_revision(std::int64_t rev);
  void restart_watch();

  boost::asio::any_io_executor ex_;
  storage::EtcdClient& etcd_;
  std::string root_;
  std::map<std::string, ObjectPtr, std::less<>> objects_;
  std::deque<std::shared_ptr<const CacheEvent>> history_;
  std::int64_t history_start_ = 0;
  std::int64_t revision_ = 0;
  bool ready_ = false;
  std::unique_ptr<storage::EtcdClient::Watch> watch_;
  // Every registered watcher, with its group (null: delivered here).
  std::unordered_map<CacheWatcher*, std::pair<std::shared_ptr<CacheWatcher>, WatchGroup*>> watchers_;
  // One per consumer executor, created on its first watcher.
  std::vector<std::shared_ptr<WatchGroup>> groups_;
  PrefixIndex direct_;  // those without a group
  // expect_write(): key -> the write, until its event comes or it fails.
  std::unordered_map<std::string, std::shared_ptr<PendingWrite>> pending_;
  void drop_pending(const std::shared_ptr<PendingWrite>& w);
  std::multimap<std::int64_t, boost::asio::steady_timer*> revision_waiters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace podwarp::apiserver
