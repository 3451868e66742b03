// list and watch of Api: served from the WatchCache, or from etcd for paged and
// exact-revision reads.
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <fmt/format.h>

#include <charconv>
#include <deque>

#include "apiserver/api.h"
#include "apiserver/filter.h"
#include "apiserver/negotiate.h"
#include "apiserver/object_meta.h"
#include "podwarp/log.h"
#include "podwarp/metrics.h"
#include "podwarp/random.h"
#include "tables/tables.h"

namespace podwarp::apiserver {

namespace asio = boost::asio;

namespace {

std::optional<std::int64_t> parse_rv(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::string base64url(std::string_view in) {
  std::string out(boost::beast::detail::base64::encoded_size(in.size()), '\0');
  out.resize(boost::beast::detail::base64::encode(out.data(), in.data(), in.size()));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::optional<std::string> unbase64url(std::string_view in) {
  std::string s(in);
  for (char& c : s) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  std::string out(boost::beast::detail::base64::decoded_size(s.size()) + 3, '\0');
  auto [written, read] = boost::beast::detail::base64::decode(out.data(), s.data(), s.size());
  if (read != s.size()) return std::nullopt;
  out.resize(written);
  return out;
}

// The continue token, as upstream: {"v":"meta.k8s.io/v1","rv":N,"start":"<key suffix>"}.
std::string encode_continue(std::int64_t rv, std::string_view start) {
  json::object o{{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", start}};
  return base64url(json::serialize(o));
}

struct ContinueToken {
  std::int64_t rv;
  std::string start;
};

std::expected<ContinueToken, ApiError> decode_continue(std::string_view token) {
  auto raw = unbase64url(token);
  auto bad = [] {
    return bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                       "(version meta.k8s.io/v1)");
  };
  if (!raw) return std::unexpected(bad());
  auto v = parse_json(*raw);
  if (!v || !v->is_object() || get_string(*v, {"v"}) != "meta.k8s.io/v1") {
    return std::unexpected(bad());
  }
  std::int64_t rv = get_int(*v, {"rv"});
  std::string_view start = get_string(*v, {"start"});
  if (rv <= 0 || start.find("..") != std::string_view::npos) return std::unexpected(bad());
  return ContinueToken{rv, std::string(start)};
}

std::string list_kind(const api::Resource& r) { return std::string(r.kind) + "List"; }

int representation(Format f, std::string_view include_object) {
  if (f == Format::kTable) {
    if (include_object == "Object") return 2;
    if (include_object == "None") return 4;
    return 1;
  }
  if (f == Format::kPartialMetadata) return 3;
  return 0;
}

std::string partial_metadata(const json::value& obj) {
  json::object p{{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}};
  if (const json::value* m = find_path(obj, {"metadata"})) p["metadata"] = *m;
  return json::serialize(p);
}

}  // namespace

asio::awaitable<Response> Api::list(const Request& req) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  const Format format = negotiate(req.accept);
  if (format == Format::kUnacceptable) {
    co_return Response::error(not_acceptable("only the following media types are accepted: "
                                             "application/json, application/yaml"));
  }
  auto filter = ObjectFilter::from_request(req, r);
  if (!filter) co_return Response::error(filter.error());
  std::string_view rv_param = req.param_or("resourceVersion", "");
  std::int64_t limit = 0;
  if (auto l = req.param("limit")) limit = parse_rv(*l).value_or(0);
  std::string_view cont = req.param_or("continue", "");
  const std::string prefix = prefix_for(r, info.namespace_);

  std::vector<ObjectPtr> items;
  std::int64_t list_rv = 0;
  std::string next_continue;
  std::int64_t remaining = -1;

  const bool from_etcd = !cont.empty() || (limit > 0 && rv_param.empty()) ||
                         req.param_or("resourceVersionMatch", "") == "Exact";
  if (from_etcd) {
    std::string start = prefix;
    std::int64_t at = 0;
    if (!cont.empty()) {
      if (!rv_param.empty()) {
        co_return Response::error(bad_request(
            "specifying resource version is not allowed when using continue"));
      }
      auto tok = decode_continue(cont);
      if (!tok) co_return Response::error(tok.error());
      at = tok->rv;
      start = prefix + tok->start;
    } else if (!rv_param.empty()) {
      auto v = parse_rv(rv_param);
      if (!v) co_return Response::error(bad_request(fmt::format("invalid resource version: {}", rv_param)));
      at = *v;
    }
    const std::string end = storage::prefix_end(prefix);
    const std::int64_t want = limit > 0 ? limit : 0;
    while (true) {
      storage::RangeOptions o;
      o.range_end = end;
      o.revision = at;
      o.limit = want > 0 ? std::max<std::int64_t>(want - static_cast<std::int64_t>(items.size()), 1) : 0;
      if (!filter->everything() && o.limit > 0) o.limit = std::max<std::int64_t>(o.limit, 100);
      auto res = co_await etcd_.range(start, o);
      if (!res) {
        if (res.error().code == storage::StorageErrc::kCompacted && !cont.empty()) {
          co_return Response::error(gone(
              "The provided continue parameter is too old to display a consistent list result. "
              "You can start a new list without the continue parameter, or use the continue "
              "token in this response to retrieve the remainder of the results. Continuing "
              "with the provided token results in an inconsistent list - objects that were "
              "created, modified, or deleted between the time the first chunk was returned and "
              "now may show up in the list."));
        }
        if (res.error().code == storage::StorageErrc::kCompacted) {
          co_return Response::error(gone("The resourceVersion for the provided list is too old."));
        }
        co_return Response::error(internal_error(res.error().message));
      }
      if (at == 0) at = res->revision;
      std::string last_key;
      std::size_t consumed = 0;
      bool full = false;
      for (const auto& kv : res->kvs) {
        ++consumed;
        last_key = kv.key;
        ObjectPtr obj = WatchCache::decode(kv.value, kv.mod_revision);
        if (!obj) continue;
        if (!filter->matches(obj->value)) continue;
        items.push_back(std::move(obj));
        if (want > 0 && static_cast<std::int64_t>(items.size()) >= want) {
          full = true;
          break;
        }
      }
      const bool more = res->more || consumed < res->kvs.size();
      if (full && more) {
        next_continue = encode_continue(at, last_key.substr(prefix.size()) + std::string(1, '\0'));
        if (filter->everything()) {
          remaining = res->count - static_cast<std::int64_t>(consumed);
        }
        break;
      }
      if (!more || last_key.empty()) break;
      start = last_key + std::string(1, '\0');
    }
    list_rv = at;
  } else {
    if (rv_param.empty()) {
      // A consistent read from the cache: wait until it has what etcd has now.
      const storage::RangeOptions count_only{.count_only = true};
      auto head = co_await etcd_.range("/registry/", count_only);
      if (head && !co_await cache_.wait_for_revision(head->revision, std::chrono::seconds(3))) {
        // The newest revisions are outside /registry/ or the cache lags: read etcd instead.
        const storage::RangeOptions by_prefix{.prefix = true};
        auto all = co_await etcd_.range(prefix, by_prefix);
        if (!all) co_return Response::error(internal_error(all.error().message));
        for (const auto& kv : all->kvs) {
          ObjectPtr obj = WatchCache::decode(kv.value, kv.mod_revision);
          if (obj && filter->matches(obj->value)) items.push_back(std::move(obj));
        }
        list_rv = all->revision;
      }
    } else if (rv_param != "0") {
      auto v = parse_rv(rv_param);
      if (!v) co_return Response::error(bad_request(fmt::format("invalid resource version: {}", rv_param)));
      if (!co_await cache_.wait_for_revision(*v, std::chrono::seconds(3))) {
        ApiError e{504, "Timeout",
                   fmt::format("Too large resource version: {}, current: {}", *v, cache_.revision())};
        e.retry_after_seconds = 1;
        e.causes.push_back({"ResourceVersionTooLarge", "Too large resource version", ""});
        co_return Response::error(e);
      }
    }
    if (list_rv == 0) {
      cache_.list(prefix, [&](const std::string&, const ObjectPtr& o) {
        if (filter->matches(o->value)) items.push_back(o);
      });
      list_rv = cache_.revision();
    }
  }

  const std::string rv_text = std::to_string(list_rv);
  Response resp;
  if (format == Format::kTable) {
    std::vector<const json::value*> ptrs;
    ptrs.reserve(items.size());
    for (const ObjectPtr& o : items) ptrs.push_back(&o->value);
    resp.body = to_json(tables::make_table(r, ptrs, rv_text, next_continue,
                                           req.param_or("includeObject", "Metadata"),
                                           std::chrono::system_clock::now()));
    co_return resp;
  }
  std::string body;
  std::size_t reserve = 256;
  if (format == Format::kJson) {
    for (const ObjectPtr& o : items) reserve += o->text().size() + 1;
  }
  body.reserve(reserve);
  if (format == Format::kPartialMetadata) {
    body += R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":")";
  } else {
    body += fmt::format(R"({{"kind":"{}","apiVersion":"{}","metadata":{{"resourceVersion":")",
                        list_kind(r), r.api_version());
  }
  body += rv_text;
  body += '"';
  if (!next_continue.empty()) {
    body += R"(,"continue":")";
    body += next_continue;
    body += '"';
    if (remaining >= 0) body += fmt::format(R"(,"remainingItemCount":{})", remaining);
  }
  body += R"(},"items":[)";
  bool first = true;
  for (const ObjectPtr& o : items) {
    if (!first) body += ',';
    first = false;
    body += format == Format::kPartialMetadata ? partial_metadata(o->value) : o->text();
  }
  body += "]}";
  resp.body = std::move(body);
  co_return resp;
}

namespace {

// Upstream's gauge: the watchers alive now, by resource.
metrics::GaugeChild& registered_watchers(const api::Resource& r) {
  static auto& g = metrics::default_registry().gauge(
      "apiserver_registered_watchers",
      "Number of currently registered watchers for a given resources",
      {"group", "version", "kind"});
  return g.with({r.group, r.version, r.kind});
}

// A BOOKMARK frame at revision rv; `initial_end` marks the end of the initial events.
std::string bookmark_frame(const api::Resource& r, std::int64_t rv, bool initial_end) {
  json::object meta{{"resourceVersion", std::to_string(rv)}, {"creationTimestamp", nullptr}};
  if (initial_end) meta["annotations"] = json::object{{"k8s.io/initial-events-end", "true"}};
  json::object obj{{"kind", r.kind}, {"apiVersion", r.api_version()},
                   {"metadata", std::move(meta)}};
  return http_chunk(R"({"type":"BOOKMARK","object":)" + json::serialize(obj) + "}\n");
}

// The cache side of a watch: filters, turns events into frames (serialized once per event
// and representation, shared by all watchers) and pushes them into the connection's feed.
// Owned by the cache (and its WatchGroup) while registered; the feed's callbacks do not
// hold it, so that it and the feed go once the stream has ended and it is removed.
class HttpWatcher final : public CacheWatcher {
 public:
  HttpWatcher(std::string prefix, ObjectFilter filter, const api::Resource& r, Format format,
              std::string include_object, std::int64_t after, std::shared_ptr<WatchFeed> feed)
      : prefix_(std::move(prefix)),
        filter_(std::move(filter)),
        resource_(r),
        include_object_(std::move(include_object)),
        representation_(representation(format, include_object_)),
        after_(after),
        feed_(std::move(feed)),
        registered_(registered_watchers(r)) {
    registered_.inc();
  }
  ~HttpWatcher() override { registered_.dec(); }
  HttpWatcher(const HttpWatcher&) = delete;
  HttpWatcher& operator=(const HttpWatcher&) = delete;

  const std::string& prefix() const override { return prefix_; }
  bool matches(const json::value& obj) const override { return filter_.matches(obj); }

  void deliver(const CacheEvent& ev, EventType as) override {
    if (ev.revision <= after_) return;
    if (!exact_key_.empty() && ev.key != exact_key_) return;
    feed_->push(ev.frame(as, representation_, [&] { return frame(as, *ev.object); }));
  }

  void progress(std::int64_t revision) override { feed_->set_progress(revision); }

  void terminate(std::string reason) override {
    log::debug("watch on {} ended: {}", prefix_, reason);
    feed_->close();
  }

  std::string frame(EventType as, const StoredObject& obj) const {
    std::string out = R"({"type":")";
    out += event_type_name(as);
    out += R"(","object":)";
    switch (representation_) {
      case 0:
        out += obj.text();
        break;
      case 3:
        out += partial_metadata(obj.value);
        break;
      default: {
        const json::value* ptrs[] = {&obj.value};
        out += json::serialize(tables::make_table(
            resource_, ptrs, get_string(obj.value, {"metadata", "resourceVersion"}), "",
            include_object_, std::chrono::system_clock::now()));
      }
    }
    out += "}\n";
    return http_chunk(out);
  }

  std::string exact_key_;  // a watch of one named object

 private:
  std::string prefix_;
  ObjectFilter filter_;
  const api::Resource& resource_;
  std::string include_object_;
  int representation_;
  std::int64_t after_;
  std::shared_ptr<WatchFeed> feed_;
  metrics::GaugeChild& registered_;
};

}  // namespace

asio::awaitable<Reply> Api::watch(const Request& req, asio::any_io_executor connection) {
  const RequestInfo& info = req.info;
  const api::Resource& r = *info.resource_info;
  const Format format = negotiate(req.accept);
  if (format == Format::kUnacceptable) {
    co_return Reply{Response::error(not_acceptable("only the following media types are "
                                                   "accepted: application/json")),
                    nullptr};
  }
  auto filter = ObjectFilter::from_request(req, r);
  if (!filter) co_return Reply{Response::error(filter.error()), nullptr};
  std::string_view rv_param = req.param_or("resourceVersion", "");
  std::int64_t after = 0;
  if (!rv_param.empty() && rv_param != "0") {
    auto v = parse_rv(rv_param);
    if (!v) {
      co_return Reply{Response::error(bad_request(fmt::format("invalid resource version: {}", rv_param))),
                      nullptr};
    }
    after = *v;
  }
  const bool send_initial = req.flag("sendInitialEvents");
  if (send_initial) after = 0;
  std::chrono::seconds timeout{0};
  if (auto t = req.param("timeoutSeconds")) timeout = std::chrono::seconds(parse_rv(*t).value_or(0));
  if (timeout.count() <= 0) {
    unsigned char b = 0;
    random_bytes({&b, 1});
    timeout = std::chrono::seconds(1800 + (b * 1800) / 256);
  }
  std::string prefix = prefix_for(r, info.namespace_);
  if (!info.name.empty()) prefix = key_for(r, info.namespace_, info.name);

  auto feed = std::make_shared<WatchFeed>(connection);
  feed->timeout = timeout;
  feed->bookmarks = req.flag("allowWatchBookmarks");
  auto w = std::make_shared<HttpWatcher>(prefix, std::move(*filter), r, format,
                                         std::string(req.param_or("includeObject", "Metadata")),
                                         after, feed);
  // Pin to exactly the named object (the prefix alone would also match longer names).
  if (!info.name.empty()) w->exact_key_ = prefix;

  if (after == 0) {
    // The current state as ADDED events, then everything after the cache's revision. Both
    // happen in this one step on the cache's executor, so nothing falls in between.
    cache_.list(prefix, [&](const std::string& key, const ObjectPtr& o) {
      if (!info.name.empty() && key != prefix) return;
      if (w->matches(o->value)) {
        feed->push(std::make_shared<const std::string>(w->frame(EventType::kAdded, *o)));
      }
    });
    if (send_initial) {
      feed->push(std::make_shared<const std::string>(bookmark_frame(r, cache_.revision(), true)));
    }
  }
  // Later events are filtered and delivered on the connection's thread (its WatchGroup).
  auto added = cache_.add_watcher(w, after, connection);
  if (!added) {
    // Upstream answers a too-old resourceVersion with 200 and one ERROR event (410).
    feed->push(std::make_shared<const std::string>(
        http_chunk(R"({"type":"ERROR","object":)" + to_json(gone(added.error()).to_json()) +
                   "}\n")));
    feed->close();
    co_return Reply{std::nullopt, feed};
  }
  // Everything up to the cache's revision is in the feed now (the list or the replay).
  feed->set_progress(std::max(after, cache_.revision()));
  WatchCache* cache = &cache_;
  auto api_executor = ex_;
  feed->make_bookmark = [&r](std::int64_t rev) { return bookmark_frame(r, rev, false); };
  // The connection ends the stream: unregister on the cache's executor. (The feed holds no
  // reference to w, which holds the feed: no cycle.)
  feed->on_finish = [weak = std::weak_ptr<HttpWatcher>(w), cache, api_executor] {
    asio::post(api_executor, [weak, cache] {
      if (auto alive = weak.lock()) cache->remove_watcher(alive.get());
    });
  };
  co_return Reply{std::nullopt, feed};
}

}  // namespace podwarp::apiserver
