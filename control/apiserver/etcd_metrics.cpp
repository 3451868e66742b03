#include "apiserver/etcd_metrics.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <utility>

#include "apiserver/api.h"
#include "podwarp/api/resources.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kRoot = "/registry/";

constexpr std::array<std::string_view, static_cast<std::size_t>(MeasuredEtcdClient::Op::kCount)>
    kOpNames = {"create", "get", "list", "update", "delete", "put", "compact"};

// Upstream's buckets for etcd_request_duration_seconds.
std::vector<double> buckets() {
  return {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2,
          3,     4,     5,    6,   8,   10,  15,  20,  30,  45,   60};
}

struct Prefix {
  std::string prefix;  // "/registry/<storage name>/"
  std::string type;    // "pods", "deployments.apps"
};

// Every resource's key prefix, longest first, so that "/registry/services/endpoints/" is
// matched before "/registry/services/".
const std::vector<Prefix>& prefixes() {
  static const std::vector<Prefix> table = [] {
    std::vector<Prefix> out;
    for (const api::Resource& r : api::resources()) {
      if (!r.stored) continue;
      std::string type(r.plural);
      if (!r.group.empty()) type += "." + std::string(r.group);
      out.push_back({Api::prefix_for(r, ""), std::move(type)});
    }
    std::stable_sort(out.begin(), out.end(), [](const Prefix& a, const Prefix& b) {
      return a.prefix.size() > b.prefix.size();
    });
    return out;
  }();
  return table;
}

// Index into prefixes() of the resource that stores `key`; prefixes().size() when none does.
std::size_t resource_of(std::string_view key) {
  const std::vector<Prefix>& table = prefixes();
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (key.starts_with(table[i].prefix)) return i;
  }
  return table.size();
}

}  // namespace

std::string MeasuredEtcdClient::type_of(std::string_view key) {
  const std::size_t i = resource_of(key);
  if (i < prefixes().size()) return prefixes()[i].type;
  if (!key.starts_with(kRoot)) return {};
  std::string_view rest = key.substr(kRoot.size());
  return std::string(rest.substr(0, rest.find('/')));
}

struct MeasuredEtcdClient::Series {
  std::string_view operation;
  std::string type;
  metrics::HistogramChild& duration;
};

MeasuredEtcdClient::MeasuredEtcdClient(storage::EtcdClient& inner, metrics::Registry& registry)
    : inner_(inner),
      duration_(
          registry.histogram("etcd_request_duration_seconds",
                             "Etcd request latency in seconds for each operation and object type.",
                             buckets(), {"operation", "type"})),
      errors_(registry.counter("etcd_request_errors_total",
                               "Etcd failed request counts for each operation and object type.",
                               {"operation", "type"})),
      slots_(std::make_unique<std::atomic<Series*>[]>(kOpNames.size() * prefixes().size())) {}

MeasuredEtcdClient::~MeasuredEtcdClient() = default;

MeasuredEtcdClient::Series& MeasuredEtcdClient::make(Op op, std::string type) {
  const std::string_view name = kOpNames[static_cast<std::size_t>(op)];
  // The error series is made at the first error, as upstream's: none is shown before.
  metrics::HistogramChild& duration = duration_.with({name, type});
  owned_.push_back(std::make_unique<Series>(Series{name, std::move(type), duration}));
  return *owned_.back();
}

MeasuredEtcdClient::Series& MeasuredEtcdClient::series(Op op, std::string_view key) {
  const std::size_t r = resource_of(key);
  if (r < prefixes().size()) {
    std::atomic<Series*>& slot = slots_[static_cast<std::size_t>(op) * prefixes().size() + r];
    if (Series* s = slot.load(std::memory_order_acquire)) return *s;
    std::lock_guard lock(mu_);
    if (Series* s = slot.load(std::memory_order_relaxed)) return *s;
    Series& made = make(op, prefixes()[r].type);
    slot.store(&made, std::memory_order_release);
    return made;
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = other_.try_emplace({op, type_of(key)}, nullptr);
  if (inserted) it->second = &make(op, it->first.second);
  return *it->second;
}

template <class T>
void MeasuredEtcdClient::record(Series& s, Clock::time_point start,
                                const storage::Result<T>& result) {
  s.duration.observe(std::chrono::duration<double>(Clock::now() - start).count());
  if (!result && (result.error().code == storage::StorageErrc::kUnavailable ||
                  result.error().code == storage::StorageErrc::kCompacted)) {
    errors_.with({s.operation, s.type}).inc();
  }
}

template <class T>
asio::awaitable<storage::Result<T>> MeasuredEtcdClient::timed(
    Series& s, asio::awaitable<storage::Result<T>> call) {
  const auto start = Clock::now();
  auto result = co_await std::move(call);
  record(s, start, result);
  co_return result;
}

// Each call below picks its series from the key before the key moves into the inner call,
// which starts (lazily, as every awaitable) when timed() awaits it.
asio::awaitable<storage::Result<storage::RangeResult>> MeasuredEtcdClient::range(
    std::string key, storage::RangeOptions opts) {
  const bool many = opts.prefix || !opts.range_end.empty();
  Series& s = series(many ? Op::kList : Op::kGet, key);
  return timed(s, inner_.range(std::move(key), opts));
}

asio::awaitable<storage::Result<storage::KeyValue>> MeasuredEtcdClient::create(std::string key,
                                                                               std::string value) {
  Series& s = series(Op::kCreate, key);
  return timed(s, inner_.create(std::move(key), std::move(value)));
}

asio::awaitable<storage::Result<storage::KeyValue>> MeasuredEtcdClient::update(
    std::string key, std::string value, std::int64_t expected_mod_revision) {
  Series& s = series(Op::kUpdate, key);
  return timed(s, inner_.update(std::move(key), std::move(value), expected_mod_revision));
}

asio::awaitable<storage::Result<storage::KeyValue>> MeasuredEtcdClient::remove(
    std::string key, std::int64_t expected_mod_revision) {
  Series& s = series(Op::kDelete, key);
  return timed(s, inner_.remove(std::move(key), expected_mod_revision));
}

asio::awaitable<storage::Result<std::int64_t>> MeasuredEtcdClient::put(std::string key,
                                                                       std::string value) {
  Series& s = series(Op::kPut, key);
  return timed(s, inner_.put(std::move(key), std::move(value)));
}

asio::awaitable<storage::Result<std::int64_t>> MeasuredEtcdClient::compact(std::int64_t revision) {
  return timed(series(Op::kCompact, ""), inner_.compact(revision));
}

std::unique_ptr<storage::EtcdClient::Watch> MeasuredEtcdClient::watch(std::string prefix,
                                                                      std::int64_t start_revision,
                                                                      bool prev_kv,
                                                                      EventsFn on_events,
                                                                      ErrorFn on_error) {
  return inner_.watch(std::move(prefix), start_revision, prev_kv, std::move(on_events),
                      std::move(on_error));
}

}  // namespace podwarp::apiserver
