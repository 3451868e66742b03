// EtcdClient over gRPC's callback API.
//
// Threads: gRPC runs completions on its own threads. Each unary completion is handed to the
// awaiting coroutine's executor with boost::asio::post; the gRPC thread only moves the reply
// into that posted function and never touches caller state. The posted function holds
// outstanding work on the executor from initiation to completion, so io_context::run() does
// not return while an RPC is in flight.
//
// Watch lifetime: the WatchReactor is owned by gRPC from StartCall until OnDone, where it
// deletes itself. The caller's Watch handle and the reactor share a WatchShared: the handle's
// destructor, under `mu`, clears `alive` and cancels the call if the reactor still exists;
// OnDone clears `reactor` under the same mutex before deleting itself, so the handle never
// touches a deleted reactor. The reactor posts only under `mu` while `alive`, so nothing is
// posted after the handle is gone. Callbacks run on a strand (order is kept even on a
// multi-threaded io_context) and each one checks `alive` again before calling the user.
// The client's WatchRegistry lists live reactors: its destructor cancels them and waits for
// their OnDone, so no stream outlives the client and its executor.
#include "storage/etcd_client.h"

#include <absl/synchronization/mutex.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <unordered_set>
#include <utility>

#include "etcd/kv.pb.h"
#include "etcd/rpc.grpc.pb.h"
#include "etcd/rpc.pb.h"
#include "podwarp/log.h"

namespace podwarp::storage {
namespace {

namespace pb = etcdserverpb;
using boost::asio::awaitable;

// Deadline for every unary RPC. Generous: a loaded etcd fsyncs each write.
constexpr auto kUnaryDeadline = std::chrono::seconds(10);

// ---------------------------------------------------------------------------------------------
// Endpoints

// "http://127.0.0.1:2379/" -> "127.0.0.1:2379". gRPC target syntax ("unix:/path",
// "dns:///host:port") passes through.
std::string grpc_target(std::string_view endpoint) {
  while (!endpoint.empty() && (endpoint.front() == ' ' || endpoint.front() == '\t')) {
    endpoint.remove_prefix(1);
  }
  while (!endpoint.empty() && (endpoint.back() == ' ' || endpoint.back() == '\t')) {
    endpoint.remove_suffix(1);
  }
  if (endpoint.starts_with("http://")) {
    endpoint.remove_prefix(7);
  } else if (endpoint.starts_with("https://")) {
    log::warn("etcd: endpoint {}: TLS is not supported, connecting without it", endpoint);
    endpoint.remove_prefix(8);
  }
  while (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  return std::string(endpoint);
}

struct Endpoint {
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
};

// The endpoint list and which one calls go to. Shared by the client and its watches, so a
// watch that outlives a call's failover (or the client) still has its channel.
class Endpoints {
 public:
  // One channel per target for the whole process, never destroyed. gRPC 1.51 shuts its
  // callback completion queue down when the last callback-using channel goes away and races
  // with its own polling thread if another channel starts using callbacks at that moment
  // (assertion "prior > 0" in grpc_cq_internal_unref). Keeping channels for the process's
  // lifetime avoids that cycle; a process talks to very few etcd targets.
  static std::shared_ptr<grpc::Channel> shared_channel(const std::string& target,
                                                       const grpc::ChannelArguments& args) {
    static std::mutex mu;
    static auto* channels = new std::map<std::string, std::shared_ptr<grpc::Channel>>();
    std::lock_guard lock(mu);
    auto [it, inserted] = channels->try_emplace(target);
    if (inserted) {
      it->second = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    }
    return it->second;
  }

  explicit Endpoints(const std::vector<std::string>& endpoints) {
    // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on:
    // every gRPC mutex then records lock-order edges in one global graph (1-2% of the
    // apiserver's CPU under load). Turn it off once, before the first channel.
    static std::once_flag no_deadlock_detection;
    std::call_once(no_deadlock_detection, [] {
      absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    });
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);                // large ranges; etcd bounds requests itself
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);  // notice dead peers under a watch
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
    // The minimal filter stack (no message-size, idle, compression or census filters: none
    // is used here) takes ~15% less of the apiserver's CPU per create in apiserver_bench. It
    // would also drop the client-side deadline timer, which unary calls need (a hung etcd):
    // deadline checks are turned back on explicitly (tested: UnaryCallsTimeOutWhenEtcdHangs).
    args.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
    args.SetInt(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 1);
    for (const std::string& item : endpoints) {
      std::string_view rest = item;
      while (!rest.empty()) {
        const std::size_t comma = rest.find(',');
        std::string target = grpc_target(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (target.empty()) continue;
        Endpoint ep;
        ep.target = std::move(target);
        ep.channel = shared_channel(ep.target, args);
        ep.kv = pb::KV::NewStub(ep.channel);
        ep.watch = pb::Watch::NewStub(ep.channel);
        list_.push_back(std::move(ep));
      }
    }
    if (list_.empty()) throw std::invalid_argument("make_etcd_client: no etcd endpoints given");
  }

  std::size_t current() const { return current_.load(std::memory_order_relaxed); }
  Endpoint& at(std::size_t i) { return list_[i]; }

  // The call that went to endpoint `failed` found it unavailable: the next call goes to the
  // next endpoint (once, however many calls failed at the same time).
  void fail_over(std::size_t failed) {
    if (list_.size() < 2) return;
    const std::size_t next = (failed + 1) % list_.size();
    if (current_.compare_exchange_strong(failed, next)) {
      log::warn("etcd: {} unavailable, next calls go to {}", list_[failed].target,
                list_[next].target);
    }
  }

 private:
  std::vector<Endpoint> list_;  // fixed after construction
  std::atomic<std::size_t> current_{0};
};

// ---------------------------------------------------------------------------------------------
// Conversions and errors

KeyValue from_pb(const mvccpb::KeyValue& kv) {
  return KeyValue{.key = kv.key(),
                  .value = kv.value(),
                  .create_revision = kv.create_revision(),
                  .mod_revision = kv.mod_revision()};
}

std::string_view code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN_CODE";
  }
}

// "etcd Txn(update) /registry/pods/a/b at 127.0.0.1:2379: UNAVAILABLE: failed to connect"
StorageError rpc_error(std::string_view op, std::string_view key, std::string_view target,
                       const grpc::Status& status) {
  StorageError err{.code = StorageErrc::kUnavailable,
                   .message = fmt::format("etcd {} {} at {}: {}: {}", op, key, target,
                                          code_name(status.error_code()), status.error_message())};
  // etcd: "etcdserver: mvcc: required revision has been compacted" (OutOfRange).
  if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE &&
      status.error_message().find("compacted") != std::string::npos) {
    err.code = StorageErrc::kCompacted;
  }
  return err;
}

StorageError not_found(std::string_view op, std::string_view key) {
  return StorageError{.code = StorageErrc::kNotFound,
                      .message = fmt::format("etcd {} {}: key not found", op, key)};
}

// Sets [key, range_end) for "key", "every key under prefix", or an explicit end.
template <typename Request>
void set_range(Request& req, std::string_view key, bool prefix, std::string_view range_end) {
  if (!range_end.empty()) {
    req.set_key(std::string(key));
    req.set_range_end(std::string(range_end));
  } else if (prefix && key.empty()) {
    req.set_key(std::string(1, '\0'));  // every key: etcd rejects an empty key
    req.set_range_end(std::string(1, '\0'));
  } else if (prefix) {
    req.set_key(std::string(key));
    req.set_range_end(prefix_end(key));
  } else {
    req.set_key(std::string(key));
  }
}

// ---------------------------------------------------------------------------------------------
// Unary calls bridged to Asio

template <typename Response>
struct Reply {
  grpc::Status status;
  Response response;
  std::string target;  // which endpoint answered, for error messages
};

template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
  std::shared_ptr<grpc::Channel> channel;  // outlives the call
};

using Done = std::function<void(grpc::Status)>;

// One per RPC: starts it on a stub's callback interface.
constexpr auto kRange = [](pb::KV::Stub& stub, grpc::ClientContext* ctx,
                           const pb::RangeRequest* req, pb::RangeResponse* resp,
                           Done done) { stub.async()->Range(ctx, req, resp, std::move(done)); };
constexpr auto kPut = [](pb::KV::Stub& stub, grpc::ClientContext* ctx, const pb::PutRequest* req,
                         pb::PutResponse* resp,
                         Done done) { stub.async()->Put(ctx, req, resp, std::move(done)); };
constexpr auto kTxn = [](pb::KV::Stub& stub, grpc::ClientContext* ctx, const pb::TxnRequest* req,
                         pb::TxnResponse* resp,
                         Done done) { stub.async()->Txn(ctx, req, resp, std::move(done)); };
constexpr auto kCompact = [](pb::KV::Stub& stub, grpc::ClientContext* ctx,
                             const pb::CompactionRequest* req, pb::CompactionResponse* resp,
                             Done done) { stub.async()->Compact(ctx, req, resp, std::move(done)); };

// ---------------------------------------------------------------------------------------------
// Watch

class WatchReactor;

// The client's live watch streams, so its destructor can cancel them and wait until gRPC is
// done with them (after which nothing posts to the executor any more).
class WatchRegistry {
 public:
  void add(WatchReactor* r) {
    std::lock_guard lock(mu_);
    live_.insert(r);
  }
  void remove(WatchReactor* r) {
    std::lock_guard lock(mu_);
    live_.erase(r);
    if (live_.empty()) idle_.notify_all();
  }
  void cancel_all_and_wait();

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_set<WatchReactor*> live_;  // GUARDED_BY(mu_); each is alive while listed
};

struct WatchShared {
  WatchShared(boost::asio::strand<boost::asio::any_io_executor> s, EtcdClient::EventsFn events,
              EtcdClient::ErrorFn error, std::string p, std::int64_t start)
      : strand(std::move(s)),
        on_events(std::move(events)),
        on_error(std::move(error)),
        prefix(std::move(p)),
        start_revision(start) {}

  std::mutex mu;
  WatchReactor* reactor = nullptr;  // GUARDED_BY(mu); null once OnDone has run
  std::atomic<bool> alive{true};    // written under mu: false once the handle is destroyed
  boost::asio::strand<boost::asio::any_io_executor> strand;
  // Only called on the strand, and only while alive.
  EtcdClient::EventsFn on_events;
  EtcdClient::ErrorFn on_error;
  const std::string prefix;
  const std::int64_t start_revision;
};

class WatchReactor final : public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  WatchReactor(std::shared_ptr<WatchShared> shared, std::shared_ptr<Endpoints> endpoints,
               std::shared_ptr<WatchRegistry> registry, pb::WatchRequest request);
  // Starts the stream. After this returns the reactor may already be gone.
  void start();
  // REQUIRES: the caller holds shared_->mu or the registry's lock, under which this reactor
  // is known to be alive.
  void cancel() { context_.TryCancel(); }

  void OnWriteDone(bool /*ok*/) override {}
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void handle(const pb::WatchResponse& resp);
  void fail(StorageError err);
  // Posts fn(shared) to the strand unless the handle is gone; after the handle's destructor
  // has returned nothing is posted (the check and the post happen under shared_->mu).
  template <typename Fn>
  void post(Fn fn);

  std::shared_ptr<WatchShared> shared_;
  std::shared_ptr<Endpoints> endpoints_;
  std::shared_ptr<WatchRegistry> registry_;
  std::size_t endpoint_;
  grpc::ClientContext context_;
  pb::WatchRequest request_;
  pb::WatchResponse response_;
  bool finished_ = false;  // on_error was posted; only touched by (serialized) reactions
};

void WatchRegistry::cancel_all_and_wait() {
  std::unique_lock lock(mu_);
  for (WatchReactor* r : live_) r->cancel();
  idle_.wait(lock, [&] { return live_.empty(); });
}

class WatchHandle final : public EtcdClient::Watch {
 public:
  explicit WatchHandle(std::shared_ptr<WatchShared> shared) : shared_(std::move(shared)) {}
  ~WatchHandle() override {
    {
      std::lock_guard lock(shared_->mu);
      shared_->alive.store(false);
      if (shared_->reactor != nullptr) shared_->reactor->cancel();
    }
    // Drop the callbacks (and what they captured) on the strand, after any callback running
    // now (which may be the one destroying this handle), never on a gRPC thread.
    auto strand = shared_->strand;
    boost::asio::post(strand, [shared = std::move(shared_)] {
      shared->on_events = nullptr;
      shared->on_error = nullptr;
    });
  }

 private:
  std::shared_ptr<WatchShared> shared_;
};

WatchReactor::WatchReactor(std::shared_ptr<WatchShared> shared,
                           std::shared_ptr<Endpoints> endpoints,
                           std::shared_ptr<WatchRegistry> registry, pb::WatchRequest request)
    : shared_(std::move(shared)),
      endpoints_(std::move(endpoints)),
      registry_(std::move(registry)),
      endpoint_(endpoints_->current()),
      request_(std::move(request)) {
  // A member that lost its leader ends the stream instead of going silent (etcd's
  // "require leader" metadata, as clientv3 and the kube-apiserver use).
  context_.AddMetadata("hasleader", "true");
  {
    std::lock_guard lock(shared_->mu);
    shared_->reactor = this;
  }
  registry_->add(this);
}

void WatchReactor::start() {
  endpoints_->at(endpoint_).watch->async()->Watch(&context_, this);
  StartWrite(&request_);
  StartRead(&response_);
  StartCall();  // last: OnDone may run (and delete this) on another thread from here on
}

template <typename Fn>
void WatchReactor::post(Fn fn) {
  std::lock_guard lock(shared_->mu);
  if (!shared_->alive.load()) return;
  boost::asio::post(shared_->strand, [shared = shared_, fn = std::move(fn)]() mutable {
    if (shared->alive.load()) fn(*shared);
  });
}

void WatchReactor::OnReadDone(bool ok) {
  if (!ok || finished_) return;  // the stream is over; OnDone follows with its status
  handle(response_);
  if (!finished_) StartRead(&response_);
}

void WatchReactor::handle(const pb::WatchResponse& resp) {
  if (resp.compact_revision() != 0) {
    fail(StorageError{
        .code = StorageErrc::kCompacted,
        .message = fmt::format("etcd Watch {} from revision {}: compacted, the "
                               "oldest revision kept is {}",
                               shared_->prefix, shared_->start_revision, resp.compact_revision()),
        .compact_revision = resp.compact_revision()});
    return;
  }
  if (resp.canceled()) {
    fail(StorageError{
        .code = StorageErrc::kUnavailable,
        .message = fmt::format("etcd Watch {} at {}: canceled by etcd: {}", shared_->prefix,
                               endpoints_->at(endpoint_).target, resp.cancel_reason())});
    return;
  }
  if (resp.events().empty()) {
    if (resp.created()) return;  // the ack; its revision promises nothing about the backlog
    // Progress notification: every later event has a higher revision.
    post([rev = resp.header().revision()](WatchShared& s) { s.on_events({}, rev); });
    return;
  }
  std::vector<WatchEvent> events;
  events.reserve(resp.events_size());
  for (const mvccpb::Event& e : resp.events()) {
    events.push_back(WatchEvent{.type = e.type() == mvccpb::Event::DELETE
                                            ? WatchEvent::Type::kDelete
                                            : WatchEvent::Type::kPut,
                                .kv = from_pb(e.kv()),
                                .prev_kv = from_pb(e.prev_kv())});
  }
  // The batch's revision is its last event's; the header revision may run ahead of events
  // that are still to come while etcd catches a watcher up.
  const std::int64_t rev = events.back().kv.mod_revision;
  post([events = std::move(events), rev](WatchShared& s) mutable {
    s.on_events(std::move(events), rev);
  });
}

void WatchReactor::fail(StorageError err) {
  finished_ = true;
  post([err = std::move(err)](WatchShared& s) mutable { s.on_error(std::move(err)); });
  context_.TryCancel();  // ends the stream; OnDone deletes the reactor
}

void WatchReactor::OnDone(const grpc::Status& status) {
  {
    std::lock_guard lock(shared_->mu);
    shared_->reactor = nullptr;
  }
  if (!finished_) {
    const std::string& target = endpoints_->at(endpoint_).target;
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) endpoints_->fail_over(endpoint_);
    StorageError err =
        status.ok()
            ? StorageError{.code = StorageErrc::kUnavailable,
                           .message = fmt::format("etcd Watch {} at {}: stream closed by etcd",
                                                  shared_->prefix, target)}
            : rpc_error("Watch", shared_->prefix, target, status);
    finished_ = true;
    post([err = std::move(err)](WatchShared& s) mutable { s.on_error(std::move(err)); });
  }
  // Release what refers to the executor (the strand) and the client's channels before telling
  // the registry: once it is empty the client, and after it the io_context, may be destroyed.
  // What is left (context, messages) depends on neither.
  shared_.reset();
  endpoints_.reset();
  std::shared_ptr<WatchRegistry> registry = std::move(registry_);
  registry->remove(this);
  delete this;
}

// ---------------------------------------------------------------------------------------------
// The client

class GrpcEtcdClient final : public EtcdClient {
 public:
  GrpcEtcdClient(boost::asio::any_io_executor executor, const std::vector<std::string>& endpoints)
      : executor_(std::move(executor)), endpoints_(std::make_shared<Endpoints>(endpoints)) {}

  // Watches still running are canceled; waits (briefly, on gRPC) until their streams are
  // done, so nothing is posted to the executor afterwards.
  ~GrpcEtcdClient() override { watches_->cancel_all_and_wait(); }

  awaitable<Result<RangeResult>> range(std::string key, RangeOptions opts) override {
    pb::RangeRequest req;
    set_range(req, key, opts.prefix, opts.range_end);
    req.set_limit(opts.limit);
    req.set_revision(opts.revision);
    req.set_count_only(opts.count_only);
    req.set_keys_only(opts.keys_only);
    auto reply = co_await unary<pb::RangeResponse>(std::move(req), kRange);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Range", key, reply.target, reply.status));
    }
    RangeResult out;
    out.revision = reply.response.header().revision();
    out.more = reply.response.more();
    out.count = reply.response.count();
    out.kvs.reserve(reply.response.kvs_size());
    for (const mvccpb::KeyValue& kv : reply.response.kvs()) out.kvs.push_back(from_pb(kv));
    co_return out;
  }

  // Txn: if create_revision(key) == 0 then put else range.
  awaitable<Result<KeyValue>> create(std::string key, std::string value) override {
    pb::TxnRequest txn;
    pb::Compare* cmp = txn.add_compare();
    cmp->set_key(key);
    cmp->set_target(pb::Compare::CREATE);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_create_revision(0);
    pb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    txn.add_failure()->mutable_request_range()->set_key(key);

    auto reply = co_await unary<pb::TxnResponse>(std::move(txn), kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(create)", key, reply.target, reply.status));
    }
    const pb::TxnResponse& resp = reply.response;
    if (resp.succeeded()) {
      const std::int64_t rev = resp.header().revision();
      co_return KeyValue{.key = std::move(key),
                         .value = std::move(value),
                         .create_revision = rev,
                         .mod_revision = rev};
    }
    StorageError err{.code = StorageErrc::kAlreadyExists,
                     .message = fmt::format("etcd Txn(create) {}: key already exists", key)};
    if (std::optional<KeyValue> cur = current_of(resp)) err.current = std::move(cur);
    co_return std::unexpected(std::move(err));
  }

  // Txn: if mod_revision(key) == expected then put(prev_kv) else range. expected == 0: only
  // "the key exists" is compared (create_revision > 0).
  awaitable<Result<KeyValue>> update(std::string key, std::string value,
                                     std::int64_t expected_mod_revision) override {
    pb::TxnRequest txn;
    pb::Compare* cmp = txn.add_compare();
    cmp->set_key(key);
    if (expected_mod_revision != 0) {
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected_mod_revision);
    } else {
      cmp->set_target(pb::Compare::CREATE);
      cmp->set_result(pb::Compare::GREATER);
      cmp->set_create_revision(0);
    }
    pb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    put->set_prev_kv(true);  // for create_revision
    txn.add_failure()->mutable_request_range()->set_key(key);

    auto reply = co_await unary<pb::TxnResponse>(std::move(txn), kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(update)", key, reply.target, reply.status));
    }
    const pb::TxnResponse& resp = reply.response;
    if (resp.succeeded()) {
      std::int64_t created = 0;
      if (resp.responses_size() > 0 && resp.responses(0).has_response_put()) {
        created = resp.responses(0).response_put().prev_kv().create_revision();
      }
      co_return KeyValue{.key = std::move(key),
                         .value = std::move(value),
                         .create_revision = created,
                         .mod_revision = resp.header().revision()};
    }
    std::optional<KeyValue> cur = current_of(resp);
    if (!cur) co_return std::unexpected(not_found("Txn(update)", key));
    StorageError err{.code = StorageErrc::kConflict,
                     .message = fmt::format("etcd Txn(update) {}: mod_revision is {}, expected {}",
                                            key, cur->mod_revision, expected_mod_revision),
                     .current = std::move(cur)};
    co_return std::unexpected(std::move(err));
  }

  // Txn: if (expected == 0 or mod_revision(key) == expected) then delete(prev_kv) else range.
  awaitable<Result<KeyValue>> remove(std::string key, std::int64_t expected_mod_revision) override {
    pb::TxnRequest txn;
    if (expected_mod_revision != 0) {
      pb::Compare* cmp = txn.add_compare();
      cmp->set_key(key);
      cmp->set_target(pb::Compare::MOD);
      cmp->set_result(pb::Compare::EQUAL);
      cmp->set_mod_revision(expected_mod_revision);
    }
    pb::DeleteRangeRequest* del = txn.add_success()->mutable_request_delete_range();
    del->set_key(key);
    del->set_prev_kv(true);
    txn.add_failure()->mutable_request_range()->set_key(key);

    auto reply = co_await unary<pb::TxnResponse>(std::move(txn), kTxn);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Txn(delete)", key, reply.target, reply.status));
    }
    const pb::TxnResponse& resp = reply.response;
    if (resp.succeeded()) {
      if (resp.responses_size() == 0 || !resp.responses(0).has_response_delete_range() ||
          resp.responses(0).response_delete_range().prev_kvs_size() == 0) {
        co_return std::unexpected(not_found("Txn(delete)", key));
      }
      KeyValue kv = from_pb(resp.responses(0).response_delete_range().prev_kvs(0));
      kv.mod_revision = resp.header().revision();
      co_return kv;
    }
    std::optional<KeyValue> cur = current_of(resp);
    if (!cur) co_return std::unexpected(not_found("Txn(delete)", key));
    StorageError err{.code = StorageErrc::kConflict,
                     .message = fmt::format("etcd Txn(delete) {}: mod_revision is {}, expected {}",
                                            key, cur->mod_revision, expected_mod_revision),
                     .current = std::move(cur)};
    co_return std::unexpected(std::move(err));
  }

  awaitable<Result<std::int64_t>> put(std::string key, std::string value) override {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(std::move(value));
    auto reply = co_await unary<pb::PutResponse>(std::move(req), kPut);
    if (!reply.status.ok()) {
      co_return std::unexpected(rpc_error("Put", key, reply.target, reply.status));
    }
    co_return reply.response.header().revision();
  }

  awaitable<Result<std::int64_t>> compact(std::int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    auto reply = co_await unary<pb::CompactionResponse>(std::move(req), kCompact);
    if (!reply.status.ok()) {
      co_return std::unexpected(
          rpc_error("Compact", fmt::format("revision {}", revision), reply.target, reply.status));
    }
    co_return reply.response.header().revision();
  }

  std::unique_ptr<Watch> watch(std::string prefix, std::int64_t start_revision, bool prev_kv,
                               EventsFn on_events,
                               ErrorFn on_error) override {
    pb::WatchRequest req;
    pb::WatchCreateRequest* create = req.mutable_create_request();
    set_range(*create, prefix, /*prefix=*/true, /*range_end=*/{});
    create->set_start_revision(start_revision);
    create->set_prev_kv(prev_kv);
    create->set_progress_notify(true);

    auto shared =
        std::make_shared<WatchShared>(boost::asio::make_strand(executor_), std::move(on_events),
                                      std::move(on_error), std::move(prefix), start_revision);
    auto* reactor =
        new WatchReactor(shared, endpoints_, watches_, std::move(req));  // self-deleting
    reactor->start();
    return std::make_unique<WatchHandle>(std::move(shared));
  }

 private:
  // The kv the failure branch's range found, if any.
  static std::optional<KeyValue> current_of(const pb::TxnResponse& resp) {
    if (resp.responses_size() == 0 || !resp.responses(0).has_response_range()) {
      return std::nullopt;
    }
    const pb::RangeResponse& range = resp.responses(0).response_range();
    if (range.kvs_size() == 0) return std::nullopt;
    return from_pb(range.kvs(0));
  }

  // Runs one unary RPC on the current endpoint and resumes the awaiting coroutine on its own
  // executor. On UNAVAILABLE, later calls go to the next endpoint; this one is not retried
  // (a write may have been applied).
  template <typename Response, typename Request, typename Start>
  awaitable<Reply<Response>> unary(Request request, Start start) {
    const std::size_t index = endpoints_->current();
    Endpoint& ep = endpoints_->at(index);
    auto initiate = [&](auto handler) {
      using Handler = decltype(handler);
      auto call = std::make_shared<UnaryCall<Request, Response>>();
      call->request = std::move(request);
      call->channel = ep.channel;
      call->context.set_deadline(std::chrono::system_clock::now() + kUnaryDeadline);
      // Outstanding work on the handler's executor from now until the handler has run.
      auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler, executor_),
                                      boost::asio::execution::outstanding_work.tracked);
      // gRPC wants a copyable callback; Asio handlers are move-only.
      auto shared_handler = std::make_shared<Handler>(std::move(handler));
      start(*ep.kv, &call->context, &call->request, &call->response,
            [call, shared_handler, work, target = ep.target](grpc::Status status) mutable {
              // On a gRPC thread: hand everything over to the executor, keep nothing here.
              auto ex = work;
              boost::asio::post(ex, [call = std::move(call), handler = std::move(shared_handler),
                                     work = std::move(work), status = std::move(status),
                                     target = std::move(target)]() mutable {
                Reply<Response> reply{std::move(status), std::move(call->response),
                                      std::move(target)};
                call.reset();
                std::move (*handler)(std::move(reply));
              });
            });
    };
    Reply<Response> reply =
        co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                             void(Reply<Response>)>(initiate,
                                                                    boost::asio::use_awaitable);
    if (reply.status.error_code() == grpc::StatusCode::UNAVAILABLE) endpoints_->fail_over(index);
    co_return reply;
  }

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Endpoints> endpoints_;
  std::shared_ptr<WatchRegistry> watches_ = std::make_shared<WatchRegistry>();
};

}  // namespace

std::unique_ptr<EtcdClient> make_etcd_client(boost::asio::any_io_executor executor,
                                             const std::vector<std::string>& endpoints) {
  return std::make_unique<GrpcEtcdClient>(std::move(executor), endpoints);
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // no key is greater: "every key from prefix on"
}

}  // namespace podwarp::storage
