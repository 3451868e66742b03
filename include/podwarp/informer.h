// Informer: a local, eventually consistent cache of one resource collection (optionally one
// namespace and label/field selectors), kept current by list + watch, with change callbacks.
// It is what the scheduler, the controllers and noded read instead of polling the apiserver.
//
// The loop:
//   1. LIST, paged (limit/continue), into a fresh map keyed "<ns>/<name>" ("<name>" for
//      cluster-scoped objects). The map replaces the cache, and the difference to the previous
//      cache is emitted: on_add for new keys, on_update(old, new) for keys whose
//      resourceVersion changed, on_delete for keys that disappeared. has_synced() turns true
//      after the first complete list and stays true.
//   2. WATCH from the list's resourceVersion with bookmarks. ADDED/MODIFIED/DELETED update the
//      cache and call the callbacks; every event (bookmarks too) advances resource_version().
//   3. When the server ends the stream normally, watch again from resource_version().
//      When it answers 410 Gone (HTTP 410 or an ERROR event with code 410), go to 1.
//      On any other failure, wait (exponential backoff with jitter, reset by progress) and
//      watch again, or list again if the failure happened while listing.
//
// Threading: an Informer runs as a coroutine on its executor and is not locked. All public
// member functions, and the callbacks, run on that executor: use an io_context run by one
// thread, or a strand. REQUIRES: every call is made from the informer's executor.
//
// Lifetime: create() returns a shared_ptr; the running loop holds a reference, so dropping
// yours does not stop it: call stop(). After stop() no callback is called again; the loop
// ends at its next step (an open watch is closed at once; a request in flight finishes first,
// bounded by the client's request timeout).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/json.h"

namespace podwarp::client {

// What an informer needs from the API server: list and watch one collection. A Client
// provides it (make_list_watch); tests substitute a scripted source.
class ListWatch {
 public:
  virtual ~ListWatch() = default;
  virtual Awaitable<Result<json::value>> list(ListOptions opts) = 0;
  virtual Awaitable<Result<std::shared_ptr<WatchStream>>> watch(ListOptions opts) = 0;
  // For log lines: "pods in default".
  virtual std::string describe() const { return "objects"; }
};

// List and watch `res` in namespace `ns` ("" = all namespaces) through `client`.
std::shared_ptr<ListWatch> make_list_watch(Client client, const api::Resource& res, std::string ns);

struct InformerOptions {
  std::string label_selector;
  std::string field_selector;
  std::int64_t page_size = 500;  // list limit per page
  std::chrono::milliseconds min_backoff{250};
  std::chrono::milliseconds max_backoff{30'000};
  // Each watch asks the server to end it after a random time in [min, 2*min), so that many
  // informers do not re-watch at once. 0 disables timeoutSeconds.
  std::int64_t watch_timeout_seconds = 300;
};

// Cached objects are immutable and shared: a snapshot stays valid after the cache changes.
using ObjectPtr = std::shared_ptr<const json::value>;

class Informer : public std::enable_shared_from_this<Informer> {
 public:
  using AddHandler = std::function<void(const json::value& obj)>;
  using UpdateHandler = std::function<void(const json::value& old_obj, const json::value& obj)>;
  using DeleteHandler = std::function<void(const json::value& last_known)>;

  static std::shared_ptr<Informer> create(boost::asio::any_io_executor executor,
                                          std::shared_ptr<ListWatch> source,
                                          InformerOptions options = {});
  static std::shared_ptr<Informer> create(boost::asio::any_io_executor executor, Client client,
                                          const api::Resource& res, std::string ns = {},
                                          InformerOptions options = {});

  // Register before start(). Each call adds a handler; several consumers can share one
  // informer (one list, one watch, one cache). Handlers run in the order they were added.
  void on_add(AddHandler h) { on_add_.push_back(std::move(h)); }
  void on_update(UpdateHandler h) { on_update_.push_back(std::move(h)); }
  void on_delete(DeleteHandler h) { on_delete_.push_back(std::move(h)); }

  // Starts the loop (once). REQUIRES: not stopped.
  void start();
  // Stops the loop; idempotent.
  void stop();

  bool has_synced() const { return synced_; }
  bool stopped() const { return stopped_; }
  // The last resourceVersion seen (list, event or bookmark).
  const std::string& resource_version() const { return resource_version_; }
  // Completed lists so far (the first sync counts as 1): relists show up here.
  std::uint64_t list_count() const { return list_count_; }

  // Snapshots; nullptr when absent. Pass ns "" for cluster-scoped objects.
  ObjectPtr get(std::string_view ns, std::string_view name) const;
  std::vector<ObjectPtr> list() const;
  std::size_t size() const { return cache_.size(); }

  // "<ns>/<name>", or "<name>" when the object has no namespace.
  static std::string key_of(const json::value& obj);

  Informer(boost::asio::any_io_executor executor, std::shared_ptr<ListWatch> source,
           InformerOptions options);  // use create()

 private:
  enum class Outcome { relist, rewatch, backoff_rewatch, stopped };

  // The loop; `self` keeps the informer alive while it runs.
  static Awaitable<void> run(std::shared_ptr<Informer> self);
  Awaitable<Result<void>> relist();
  Awaitable<Outcome> watch_once();
  Awaitable<void> sleep(std::chrono::milliseconds d);
  void apply(WatchEvent& ev);
  std::chrono::milliseconds next_backoff();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<ListWatch> source_;
  InformerOptions options_;
  std::map<std::string, ObjectPtr, std::less<>> cache_;
  std::string resource_version_;
  bool started_ = false;
  bool stopped_ = false;
  bool synced_ = false;
  std::uint64_t list_count_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::uint64_t random_state_;  // for jitter
  boost::asio::steady_timer timer_;
  std::shared_ptr<WatchStream> watch_;  // the open watch, for stop()
  void emit_add(const json::value& obj) const;
  void emit_update(const json::value& old_obj, const json::value& obj) const;
  void emit_delete(const json::value& last_known) const;

  std::vector<AddHandler> on_add_;
  std::vector<UpdateHandler> on_update_;
  std::vector<DeleteHandler> on_delete_;
};

}  // namespace podwarp::client
