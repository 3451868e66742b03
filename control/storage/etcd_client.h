// EtcdClient: the apiserver's only path to etcd v3 (gRPC over HTTP/2, our own proto subset
// with etcd's package names and field numbers, see proto/etcd/).
//
// Every operation is an Asio awaitable that completes on the executor the client was built
// with. That executor must be single-threaded (an io_context run by one thread): the client's
// connection, its streams and the watch callbacks all live on it, and calls are made from
// coroutines running there, several at once if need be. Writes are compare-and-swap
// transactions on mod_revision, which is what resourceVersion is. Destroy the client only
// after its calls have finished; an open connection is a pending read, so io_context::run()
// returns only once the client is destroyed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::storage {

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
};

enum class StorageErrc {
  kNotFound,       // the key does not exist (or the CAS found it gone)
  kAlreadyExists,  // create: the key exists
  kConflict,       // update/delete: mod_revision did not match
  kCompacted,      // watch/range: revision was compacted away
  kUnavailable,    // etcd unreachable or the RPC failed
};

struct StorageError {
  StorageErrc code;
  std::string message;
  std::optional<KeyValue> current;  // the key's current value, for kAlreadyExists/kConflict
  std::int64_t compact_revision = 0;  // for kCompacted
};

template <typename T>
using Result = std::expected<T, StorageError>;

struct RangeResult {
  std::vector<KeyValue> kvs;
  std::int64_t revision = 0;  // the store revision the read was served at
  bool more = false;
  std::int64_t count = 0;
};

struct RangeOptions {
  std::int64_t limit = 0;     // 0 = no limit
  std::int64_t revision = 0;  // 0 = latest
  bool prefix = false;        // key is a prefix: range [key, prefix_end(key))
  std::string range_end;      // explicit range end (overrides prefix when set)
  bool count_only = false;
  bool keys_only = false;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;       // for kDelete: key and mod_revision (the deletion revision) only
  KeyValue prev_kv;  // previous value when the watch asked for it
};

class EtcdClient {
 public:
  virtual ~EtcdClient() = default;

  // GCC 12.2 miscompiles a braced aggregate temporary with non-trivial members (such as
  // RangeOptions, which holds a std::string) in a full-expression that contains co_await: the
  // temporary is destroyed twice (double free). So do not write
  //   co_await etcd.range(key, {.prefix = true});          // crashes under GCC 12.2
  // but name the options first:
  //   RangeOptions opts{.prefix = true};
  //   co_await etcd.range(key, opts);
  // The default argument is written RangeOptions() (value-initialized) for the same reason.
  virtual boost::asio::awaitable<Result<RangeResult>> range(std::string key,
                                                            RangeOptions opts = RangeOptions()) = 0;
  // Creates key only if absent. Returns the new KeyValue (mod_revision set). Concurrent
  // creates may be applied in one Txn (EtcdClientOptions::create_txns_in_flight) and then
  // share its revision.
  virtual boost::asio::awaitable<Result<KeyValue>> create(std::string key, std::string value) = 0;
  // Puts key only if its mod_revision equals expected_mod_revision. kConflict (with current)
  // when it differs, kNotFound when the key is gone. expected_mod_revision == 0 means
  // "unconditionally, but only if the key exists" (never creates). The result's
  // create_revision is the key's.
  virtual boost::asio::awaitable<Result<KeyValue>> update(std::string key, std::string value,
                                                          std::int64_t expected_mod_revision) = 0;
  // Deletes key, if expected_mod_revision != 0 only when it matches. Returns the deleted
  // value with mod_revision set to the revision of the deletion.
  virtual boost::asio::awaitable<Result<KeyValue>> remove(std::string key,
                                                          std::int64_t expected_mod_revision) = 0;
  // Unconditional put (benchmarks and tests: the raw-etcd peer).
  virtual boost::asio::awaitable<Result<std::int64_t>> put(std::string key, std::string value) = 0;
  // Compacts history before revision. Returns the store's current revision. kCompacted if
  // revision is already compacted.
  virtual boost::asio::awaitable<Result<std::int64_t>> compact(std::int64_t revision) = 0;

  // Watches every key under prefix from start_revision (inclusive). on_events is called on
  // the client's executor with each batch, in order; on_error once if the watch fails (e.g.
  // kCompacted, with compact_revision) after which no more calls happen. Progress
  // notifications arrive as an empty batch with the header revision in `revision`; for a
  // batch of events `revision` is the last event's mod_revision. With prev_kv, events carry
  // the key's previous value (etcd reads it for every event: a caller that keeps the values
  // itself, like the watch cache, does not ask).
  // One gRPC stream per watch; on a stream failure on_error gets kUnavailable (the caller
  // re-watches from its last revision).
  // Destroying the handle cancels the stream; no callback runs after the destructor returns.
  // A callback may destroy its own handle.
  class Watch {
   public:
    virtual ~Watch() = default;  // cancels the watch
  };
  using EventsFn = std::function<void(std::vector<WatchEvent> events, std::int64_t revision)>;
  using ErrorFn = std::function<void(StorageError)>;
  virtual std::unique_ptr<Watch> watch(std::string prefix, std::int64_t start_revision,
                                       bool prev_kv, EventsFn on_events, ErrorFn on_error) = 0;
};

struct EtcdClientOptions {
  // Group commit of creates. With N > 0, at most N create Txns are out at a time; creates
  // made meanwhile wait and then go together as one Txn of nested create Txns (each with its
  // own compare, so one existing key fails only its own create). That Txn is one etcd
  // revision, so the creates in it share a mod_revision (the resourceVersion): etcd 3.4
  // spends most of a small Txn's cost per Txn, not per key (its read view is copied for every
  // Txn), so this takes about 40% of etcd's CPU off each create under load (apiserver_bench).
  // A create that finds nothing out goes at once. 0: every create is its own Txn.
  int create_txns_in_flight = 1;
};

// Connects to the first reachable of endpoints ("http://127.0.0.1:2379,..."), falling over
// to the next on failure. Completions run on executor.
// Each element may itself be a comma-separated list; "http://" is optional, TLS is not
// supported. A call that finds its endpoint UNAVAILABLE fails with kUnavailable (it is not
// retried: a write may have been applied) and later calls go to the next endpoint. Every
// unary call has a 10 s deadline. Throws std::invalid_argument if no endpoint is given.
std::unique_ptr<EtcdClient> make_etcd_client(boost::asio::any_io_executor executor,
                                             const std::vector<std::string>& endpoints,
                                             const EtcdClientOptions& options = {});

// The end of the key range that holds exactly the keys starting with prefix.
std::string prefix_end(std::string_view prefix);

}  // namespace podwarp::storage
