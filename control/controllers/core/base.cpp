#include "core/base.h"

#include <cstdlib>

#include "podwarp/log.h"
#include "podwarp/time.h"

namespace podwarp::controllers {

std::string key_of(const json::value& obj) {
  std::string_view ns = namespace_of(obj);
  std::string k;
  if (!ns.empty()) {
    k = ns;
    k += '/';
  }
  k += name_of(obj);
  return k;
}

bool pod_ready(const json::value& pod) {
  const json::value* conds = find_path(pod, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return false;
  for (const json::value& c : conds->get_array()) {
    if (get_string(c, {"type"}) == "Ready") return get_string(c, {"status"}) == "True";
  }
  return false;
}

const json::value* controller_ref(const json::value& obj) {
  const json::value* refs = find_path(obj, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return nullptr;
  for (const json::value& r : refs->get_array()) {
    if (r.is_object() && get_bool(r, {"controller"})) return &r;
  }
  return nullptr;
}

std::optional<LabelSelector> service_selector(const json::value& svc) {
  const json::value* sel = find_path(svc, {"spec", "selector"});
  if (sel == nullptr || !sel->is_object()) return std::nullopt;
  json::object ls{{"matchLabels", *sel}};
  auto parsed = LabelSelector::from_json(ls);
  if (!parsed) return std::nullopt;
  return std::move(*parsed);
}

std::optional<std::int64_t> scaled_int_or_percent(const json::value& v, std::int64_t total,
                                                  bool round_up) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (s.size() < 2 || s.back() != '%') return std::nullopt;
  std::int64_t pct = 0;
  for (char c : s.substr(0, s.size() - 1)) {
    if (c < '0' || c > '9' || pct > 1'000'000) return std::nullopt;
    pct = pct * 10 + (c - '0');
  }
  std::int64_t prod = pct * total;
  return round_up ? (prod + 99) / 100 : prod / 100;
}

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

ControllerBase::ControllerBase(loop::ControllerContext& ctx, std::string name)
    : client_(ctx.client),
      informers_(ctx.informers),
      options_(ctx.options),
      executor_(ctx.executor),
      name_(std::move(name)) {}

ControllerBase::~ControllerBase() {
  if (queue_) queue_->stop();
}

void ControllerBase::setup() {
  std::weak_ptr<ControllerBase> w = weak_from_this();
  queue_ = std::make_unique<loop::WorkQueue>(
      executor_, name_, [w](std::string key) { return run_sync(w, std::move(key)); },
      options_.workers);
}

Awaitable<Result<void>> ControllerBase::run_sync(std::weak_ptr<ControllerBase> w, std::string key) {
  auto self = w.lock();
  if (!self || self->stopped_) co_return Result<void>{};
  co_return co_await self->sync(std::move(key));
}

void ControllerBase::start() {
  if (started_ || stopped_) return;
  started_ = true;
  queue_->start();
  on_start();
}

void ControllerBase::stop() {
  stopped_ = true;
  if (queue_) queue_->stop();
}

namespace {

class Adapter : public loop::Controller {
 public:
  explicit Adapter(std::shared_ptr<ControllerBase> impl) : impl_(std::move(impl)) {}
  ~Adapter() override { impl_->stop(); }
  std::string_view name() const override { return impl_->name(); }
  void start() override { impl_->start(); }
  void stop() override { impl_->stop(); }

 private:
  std::shared_ptr<ControllerBase> impl_;
};

}  // namespace

std::unique_ptr<loop::Controller> adapt(std::shared_ptr<ControllerBase> impl) {
  return std::make_unique<Adapter>(std::move(impl));
}

}  // namespace podwarp::controllers
