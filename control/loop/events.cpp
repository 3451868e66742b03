#include "loop/events.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

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
  struct Seen {
    std::string ns;
    std::string name;
    std::int64_t count = 1;
    std::chrono::system_clock::time_point last;
    std::list<std::string>::iterator lru;
  };
  std::unordered_map<std::string, Seen> seen;  // by correlation key
  std::list<std::string> lru;                  // most recent first
};

EventRecorder::EventRecorder(client::Client client, std::string component, std::string host)
    : state_(std::make_shared<State>(
          State{std::move(client), std::move(component), std::move(host), {}, {}})) {}

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
    std::string patch = to_json(json::object{{"count", s.count},
                                             {"lastTimestamp", format_rfc3339(now)}});
    asio::co_spawn(
        st->client.get_executor(),
        [st, ns = s.ns, name = s.name, patch = std::move(patch)]() -> client::Awaitable<void> {
          auto r = co_await api_patch(st->client, resource("", "events"), ns, name, patch);
          if (!r) log::debug("event {}/{}: {}", ns, name, r.error().to_string());
        },
        asio::detached);
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
  st->seen.emplace(key, State::Seen{ns, name, 1, now, st->lru.begin()});
  while (st->seen.size() > kMaxRemembered) {
    st->seen.erase(st->lru.back());
    st->lru.pop_back();
  }
  asio::co_spawn(
      st->client.get_executor(),
      [st, ns = std::move(ns), ev = json::value(std::move(ev))]() -> client::Awaitable<void> {
        auto r = co_await api_create(st->client, resource("", "events"), ns, ev);
        if (!r) log::debug("event in {}: {}", ns, r.error().to_string());
      },
      asio::detached);
}

}  // namespace podwarp::loop
