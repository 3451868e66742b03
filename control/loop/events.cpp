#include "loop/events.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "loop/api.h"
#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::loop {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxRemembered = 4096;
constexpr auto kAggregationWindow = std::chrono::minutes(10);

}  // namespace

struct EventRecorder::State {
  client::Client client;
  std::string component;
  std::string host;
  EventRecorderOptions opts;
  // One queued write: a create (body = the Event) or an aggregation patch.
  struct Write {
    bool create = true;
    std::string ns, name;
    json::object body;
    std::string key;  // correlation key of a queued create ("" once sent)
  };
  struct Seen {
    std::string ns;
    std::string name;
    std::int64_t count = 1;
    std::chrono::system_clock::time_point last;
    std::list<std::string>::iterator lru;
    Write* queued_create = nullptr;  // its create, while still in the queue
  };
  std::unordered_map<std::string, Seen> seen;  // by correlation key
  std::list<std::string> lru;                  // most recent first
  std::list<Write> queue;                      // oldest first
  bool sending = false;
  double tokens = 0;
  std::chrono::steady_clock::time_point refilled{};

  void enqueue(const std::shared_ptr<State>& self, Write w);
  client::Awaitable<void> send_all(std::shared_ptr<State> keep_alive);
};

void EventRecorder::State::enqueue(const std::shared_ptr<State>& self, Write w) {
  if (queue.size() >= opts.max_queued) {
    log::warn("events ({}): {} writes queued, dropping event {}/{}", component, queue.size(),
              w.ns, w.name);
    return;
  }
  queue.push_back(std::move(w));
  Write& q = queue.back();
  if (q.create && !q.key.empty()) {
    auto it = seen.find(q.key);
    if (it != seen.end()) it->second.queued_create = &q;
  }
  if (sending) return;
  sending = true;
  asio::co_spawn(
      client.get_executor(),
      [self]() -> client::Awaitable<void> { co_await self->send_all(self); }, asio::detached);
}

client::Awaitable<void> EventRecorder::State::send_all([[maybe_unused]] std::shared_ptr<State> keep_alive) {
  while (!queue.empty()) {
    if (opts.qps > 0) {
      auto now = std::chrono::steady_clock::now();
      if (refilled == std::chrono::steady_clock::time_point{}) {
        tokens = opts.burst;
      } else {
        tokens = std::min<double>(
            opts.burst, tokens + opts.qps * std::chrono::duration<double>(now - refilled).count());
      }
      refilled = now;
      if (tokens < 1) {
        auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>((1 - tokens) / opts.qps));
        asio::steady_timer t(client.get_executor(), wait);
        co_await t.async_wait(asio::use_awaitable);
        continue;
      }
      tokens -= 1;
    }
    if (queue.front().create && !queue.front().key.empty()) {
      auto it = seen.find(queue.front().key);
      if (it != seen.end() && it->second.queued_create == &queue.front())
        it->second.queued_create = nullptr;
    }
    Write w = std::move(queue.front());
    queue.pop_front();
    if (w.create) {
      json::value ev = std::move(w.body);
      auto r = co_await api_create(client, resource("", "events"), w.ns, ev);
      if (!r) log::debug("event in {}: {}", w.ns, r.error().to_string());
    } else {
      std::string patch = to_json(w.body);
      auto r = co_await api_patch(client, resource("", "events"), w.ns, w.name, patch);
      if (!r) log::debug("event {}/{}: {}", w.ns, w.name, r.error().to_string());
    }
  }
  sending = false;
}

EventRecorder::EventRecorder(client::Client client, std::string component, std::string host,
                             EventRecorderOptions opts)
    : state_(std::make_shared<State>(State{std::move(client), std::move(component),
                                           std::move(host), opts, {}, {}, {}, false, 0, {}})) {}

json::object EventRecorder::make_event(const json::value& obj, std::string_view type,
                                       std::string_view reason, const std::string& message,
                                       std::chrono::system_clock::time_point now) const {
  std::string_view name = get_string(obj, {"metadata", "name"});
  std::string_view ns = get_string(obj, {"metadata", "namespace"});
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::string ts = format_rfc3339(now);
  json::object involved{{"kind", get_string(obj, {"kind"})},
                        {"name", name},
                        {"uid", get_string(obj, {"metadata", "uid"})},
                        {"apiVersion", get_string(obj, {"apiVersion"})},
                        {"resourceVersion", get_string(obj, {"metadata", "resourceVersion"})}};
  if (!ns.empty()) involved["namespace"] = ns;
  json::object source{{"component", state_->component}};
  if (!state_->host.empty()) source["host"] = state_->host;
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       json::object{{"name", fmt::format("{}.{:x}", name, nanos)},
                    {"namespace", ns.empty() ? std::string_view("default") : ns}}},
      {"involvedObject", std::move(involved)},
      {"reason", reason},
      {"message", message},
      {"source", std::move(source)},
      {"firstTimestamp", ts},
      {"lastTimestamp", ts},
      {"count", 1},
      {"type", type},
      {"eventTime", nullptr},
      {"reportingComponent", state_->component},
      {"reportingInstance", state_->host},
  };
}

void EventRecorder::record(const json::value& obj, std::string_view type, std::string_view reason,
                           std::string message) {
  auto now = std::chrono::system_clock::now();
  std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}", get_string(obj, {"metadata", "uid"}),
                                type, reason, message);
  auto st = state_;
  auto it = st->seen.find(key);
  if (it != st->seen.end() && now - it->second.last < kAggregationWindow) {
    State::Seen& s = it->second;
    s.count++;
    s.last = now;
    st->lru.splice(st->lru.begin(), st->lru, s.lru);
    if (s.queued_create) {  // not sent yet: send it once, with the count
      s.queued_create->body["count"] = s.count;
      s.queued_create->body["lastTimestamp"] = format_rfc3339(now);
      return;
    }
    State::Write w{false, s.ns, s.name,
                   json::object{{"count", s.count}, {"lastTimestamp", format_rfc3339(now)}}, {}};
    st->enqueue(st, std::move(w));
    return;
  }
  json::object ev = make_event(obj, type, reason, message, now);
  std::string ns(get_string(ev, {"metadata", "namespace"}));
  std::string name(get_string(ev, {"metadata", "name"}));
  if (it != st->seen.end()) {
    st->lru.erase(it->second.lru);
    st->seen.erase(it);
  }
  st->lru.push_front(key);
  st->seen.emplace(key, State::Seen{ns, name, 1, now, st->lru.begin(), nullptr});
  while (st->seen.size() > kMaxRemembered) {
    auto& old = st->seen.at(st->lru.back());
    if (old.queued_create) old.queued_create->key.clear();
    st->seen.erase(st->lru.back());
    st->lru.pop_back();
  }
  State::Write w{true, std::move(ns), std::move(name), std::move(ev), key};
  st->enqueue(st, std::move(w));
}

}  // namespace podwarp::loop
