// Upstream's etcd request metrics on /metrics, from an EtcdClient that wraps the real one:
//
//   etcd_request_duration_seconds{operation,type}  histogram of each request's round trip
//   etcd_request_errors_total{operation,type}      requests etcd failed (unavailable, compacted)
//
// `operation` is upstream's verb for the storage call (create, get, list, update, delete, put,
// compact); `type` is the resource of the key as upstream's GroupResource prints it ("pods",
// "deployments.apps"), or the key's first segment under /registry/ when no resource stores
// there (the service allocator's "ipaddresses"). A create that finds its key taken or an update
// that loses its compare is an answer, not an error. Watches are not measured (a watch is a
// stream, not a request).
//
// The wrapper adds one coroutine frame and two clock reads per request; it is as safe to share
// between threads as the client it wraps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podwarp/metrics.h"
#include "storage/etcd_client.h"

namespace podwarp::apiserver {

class MeasuredEtcdClient final : public storage::EtcdClient {
 public:
  // `inner` must outlive this client. Metrics go to `registry`.
  explicit MeasuredEtcdClient(storage::EtcdClient& inner,
                              metrics::Registry& registry = metrics::default_registry());
  ~MeasuredEtcdClient() override;

  boost::asio::awaitable<storage::Result<storage::RangeResult>> range(
      std::string key, storage::RangeOptions opts = storage::RangeOptions()) override;
  boost::asio::awaitable<storage::Result<storage::KeyValue>> create(std::string key,
                                                                    std::string value) override;
  boost::asio::awaitable<storage::Result<storage::KeyValue>> update(
      std::string key, std::string value, std::int64_t expected_mod_revision) override;
  boost::asio::awaitable<storage::Result<storage::KeyValue>> remove(
      std::string key, std::int64_t expected_mod_revision) override;
  boost::asio::awaitable<storage::Result<std::int64_t>> put(std::string key,
                                                            std::string value) override;
  boost::asio::awaitable<storage::Result<std::int64_t>> compact(std::int64_t revision) override;
  std::unique_ptr<Watch> watch(std::string prefix, std::int64_t start_revision, bool prev_kv,
                               EventsFn on_events, ErrorFn on_error) override;

  // The `type` label of a key: "pods", "deployments.apps", "ipaddresses"; "" for a key
  // outside /registry/ or the whole /registry/ prefix.
  static std::string type_of(std::string_view key);

  enum class Op : std::size_t { kCreate, kGet, kList, kUpdate, kDelete, kPut, kCompact, kCount };

 private:
  struct Series;
  // The series of (op, the key's type), made on first use.
  Series& series(Op op, std::string_view key);
  Series& make(Op op, std::string type);  // REQUIRES(mu_)
  template <class T>
  void record(Series& s, std::chrono::steady_clock::time_point start,
              const storage::Result<T>& result);
  // Awaits `call` and records its round trip in `s`.
  template <class T>
  boost::asio::awaitable<storage::Result<T>> timed(Series& s,
                                                   boost::asio::awaitable<storage::Result<T>> call);

  storage::EtcdClient& inner_;
  metrics::Histogram& duration_;
  metrics::Counter& errors_;
  // Per (op, resource): the series once made, read without the lock.
  std::unique_ptr<std::atomic<Series*>[]> slots_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Series>> owned_;                        // GUARDED_BY(mu_)
  std::map<std::pair<Op, std::string>, Series*, std::less<>> other_;  // GUARDED_BY(mu_)
};

}  // namespace podwarp::apiserver
