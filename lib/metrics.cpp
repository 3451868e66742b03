#include "podwarp/metrics.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace podwarp::metrics {
namespace {

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) {
  if (s.empty() || s.starts_with("__")) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && (i == 0 || c < '0' || c > '9')) return false;
  }
  return true;
}

std::string escape_help(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_label_value(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void write_sample(std::string& out, std::string_view name, std::string_view suffix,
                  const std::string& labels, std::string_view extra_label, double value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra_label.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra_label.empty()) out += ',';
    out += extra_label;
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

std::vector<std::string_view> as_views(std::initializer_list<std::string_view> values) {
  return {values.begin(), values.end()};
}

std::vector<double> sanitize_buckets(std::vector<double> b) {
  std::erase_if(b, [](double v) { return std::isnan(v) || std::isinf(v); });
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

// --- detail::Family ---

namespace detail {

Family::Family(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

Family::~Family() = default;

void Family::init() {
  discard_ = make_series();
  if (label_names_.empty()) {
    unlabeled_ = &series({});
  } else {
    unlabeled_ = discard_.get();
  }
}

Series& Family::series(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) {
    if (!warned_arity_.exchange(true, std::memory_order_relaxed)) {
      spdlog::warn("metric {}: {} label values given for {} label names; updates discarded", name_,
                   values.size(), label_names_.size());
    }
    return *discard_;
  }
  std::vector<std::string> key(values.begin(), values.end());
  {
    std::shared_lock lock(mu_);
    if (auto it = children_.find(key); it != children_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto [it, inserted] = children_.try_emplace(std::move(key));
  if (inserted) it->second = make_series();
  return *it->second;
}

bool Family::remove_series(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) return false;
  std::vector<std::string> key(values.begin(), values.end());
  std::unique_lock lock(mu_);
  auto it = children_.find(key);
  if (it == children_.end()) return false;
  // Callers may still hold a reference: keep the series alive, just stop exposing it.
  retired_.push_back(std::move(it->second));
  children_.erase(it);
  return true;
}

void Family::expose(std::string& out) const {
  std::shared_lock lock(mu_);
  if (children_.empty()) return;
  out += "# HELP ";
  out += name_;
  out += ' ';
  out += escape_help(help_);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type();
  out += '\n';
  std::string labels;
  for (const auto& [values, series] : children_) {
    labels.clear();
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) labels += ',';
      labels += label_names_[i];
      labels += "=\"";
      labels += escape_label_value(values[i]);
      labels += '"';
    }
    write_series(out, labels, *series);
  }
}

}  // namespace detail

// --- children ---

void CounterChild::inc(double v) {
  if (!(v >= 0)) return;  // negative or NaN: a counter only goes up
  value_.fetch_add(v, std::memory_order_relaxed);
}

void GaugeChild::set_to_current_time() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  set(std::chrono::duration<double>(now).count());
}

HistogramChild::HistogramChild(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_->size() + 1)) {}

void HistogramChild::observe(double v) {
  // The first bucket whose upper bound is >= v; NaN and values above every bound go to +Inf.
  const auto& b = *bounds_;
  const std::size_t i =
      static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), v) - b.begin());
  counts_[std::isnan(v) ? b.size() : i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<std::uint64_t> HistogramChild::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_->size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

std::uint64_t HistogramChild::count() const { return cumulative_counts().back(); }

// --- families ---

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), std::move(label_names)) {
  init();
}

CounterChild& Counter::with(std::initializer_list<std::string_view> values) {
  return with(std::span<const std::string_view>(as_views(values)));
}
CounterChild& Counter::with(std::span<const std::string_view> values) {
  return static_cast<CounterChild&>(series(values));
}
bool Counter::remove(std::initializer_list<std::string_view> values) {
  return remove_series(as_views(values));
}
std::unique_ptr<detail::Series> Counter::make_series() const {
  return std::make_unique<CounterChild>();
}
void Counter::write_series(std::string& out, const std::string& labels,
                           const detail::Series& s) const {
  write_sample(out, name(), "", labels, "", static_cast<const CounterChild&>(s).value());
}

Gauge::Gauge(std::string name, std::string help, std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), std::move(label_names)) {
  init();
}

GaugeChild& Gauge::with(std::initializer_list<std::string_view> values) {
  return with(std::span<const std::string_view>(as_views(values)));
}
GaugeChild& Gauge::with(std::span<const std::string_view> values) {
  return static_cast<GaugeChild&>(series(values));
}
bool Gauge::remove(std::initializer_list<std::string_view> values) {
  return remove_series(as_views(values));
}
std::unique_ptr<detail::Series> Gauge::make_series() const {
  return std::make_unique<GaugeChild>();
}
void Gauge::write_series(std::string& out, const std::string& labels,
                         const detail::Series& s) const {
  write_sample(out, name(), "", labels, "", static_cast<const GaugeChild&>(s).value());
}

Histogram::Histogram(std::string name, std::string help, std::vector<double> buckets,
                     std::vector<std::string> label_names)
    : Family(std::move(name), std::move(help), std::move(label_names)),
      bounds_(std::make_shared<const std::vector<double>>(sanitize_buckets(std::move(buckets)))) {
  init();
}

HistogramChild& Histogram::with(std::initializer_list<std::string_view> values) {
  return with(std::span<const std::string_view>(as_views(values)));
}
HistogramChild& Histogram::with(std::span<const std::string_view> values) {
  return static_cast<HistogramChild&>(series(values));
}
bool Histogram::remove(std::initializer_list<std::string_view> values) {
  return remove_series(as_views(values));
}
std::unique_ptr<detail::Series> Histogram::make_series() const {
  return std::make_unique<HistogramChild>(bounds_);
}
void Histogram::write_series(std::string& out, const std::string& labels,
                             const detail::Series& s) const {
  const auto& h = static_cast<const HistogramChild&>(s);
  const std::vector<std::uint64_t> counts = h.cumulative_counts();
  const auto& bounds = *bounds_;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    write_sample(out, name(), "_bucket", labels, "le=\"" + format_value(bounds[i]) + "\"",
                 static_cast<double>(counts[i]));
  }
  write_sample(out, name(), "_bucket", labels, "le=\"+Inf\"", static_cast<double>(counts.back()));
  write_sample(out, name(), "_sum", labels, "", h.sum());
  write_sample(out, name(), "_count", labels, "", static_cast<double>(counts.back()));
}

// --- buckets ---

std::vector<double> default_buckets() { return {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}; }

std::vector<double> exponential_buckets(double start, double factor, int count) {
  if (count < 1 || count > 10000 || !(start > 0) || !(factor > 1)) return {};
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    out.push_back(start);
    start *= factor;
  }
  return out;
}

std::vector<double> linear_buckets(double start, double width, int count) {
  if (count < 1 || count > 10000 || !(width > 0) || !std::isfinite(start)) return {};
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

// --- Registry ---

Registry::Registry() = default;
Registry::~Registry() = default;

namespace {

// Why a registration is refused; empty when it is fine.
std::string check_names(std::string_view name, const std::vector<std::string>& labels,
                        bool histogram) {
  if (!valid_metric_name(name)) return fmt::format("invalid metric name \"{}\"", name);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (!valid_label_name(labels[i])) return fmt::format("invalid label name \"{}\"", labels[i]);
    if (histogram && labels[i] == "le") return "label name \"le\" is reserved for histograms";
    for (std::size_t j = 0; j < i; ++j) {
      if (labels[j] == labels[i]) return fmt::format("duplicate label name \"{}\"", labels[i]);
    }
  }
  return {};
}

}  // namespace

template <class F, class... Args>
F& Registry::get_or_create(std::string_view name, Args&&... args) {
  auto fresh = std::make_unique<F>(std::string(name), std::forward<Args>(args)...);
  std::string problem = check_names(name, fresh->label_names(), std::is_same_v<F, Histogram>);
  std::lock_guard lock(mu_);
  if (problem.empty()) {
    auto it = families_.find(name);
    if (it == families_.end()) {
      F& f = *fresh;
      families_.emplace(std::string(name), std::move(fresh));
      return f;
    }
    auto* existing = dynamic_cast<F*>(it->second.get());
    const bool same_labels = existing != nullptr && existing->label_names() == fresh->label_names();
    bool same_buckets = true;
    if constexpr (std::is_same_v<F, Histogram>) {
      same_buckets = same_labels && existing->buckets() == fresh->buckets();
    }
    if (same_labels && same_buckets) return *existing;
    problem = fmt::format("already registered as a {} with labels [{}]{}", it->second->type(),
                          fmt::join(it->second->label_names(), ","),
                          same_labels ? " and other buckets" : "");
  }
  spdlog::error("metric {}: {}; the new {} will not be exposed", name, problem, fresh->type());
  F& f = *fresh;
  detached_.push_back(std::move(fresh));
  return f;
}

Counter& Registry::counter(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names) {
  return get_or_create<Counter>(name, std::string(help), std::move(label_names));
}

Gauge& Registry::gauge(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names) {
  return get_or_create<Gauge>(name, std::string(help), std::move(label_names));
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> buckets, std::vector<std::string> label_names) {
  return get_or_create<Histogram>(name, std::string(help), std::move(buckets),
                                  std::move(label_names));
}

std::string Registry::expose() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, family] : families_) family->expose(out);
  return out;
}

Registry& default_registry() {
  // Never destroyed: static metric references may be used during process exit.
  static Registry* registry = new Registry();
  return *registry;
}

}  // namespace podwarp::metrics
