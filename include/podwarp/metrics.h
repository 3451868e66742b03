// A small Prometheus client: counters, gauges and histograms exposed in text format 0.0.4.
//
// A metric family (Counter, Gauge, Histogram) has a name, help text and optional label
// names; each distinct tuple of label values is a child series, found or created with
// with({"GET", "pods"}). Families are created through a Registry and live as long as it;
// registering the same name again with the same type, labels (and buckets) returns the
// existing family, so `static auto& c = default_registry().counter(...)` is the intended use.
//
// Thread-safety: everything here is safe to use from any number of threads. Registering and
// with() take a lock; the returned child is updated with atomics only, so hot paths should
// keep the child reference (it stays valid for the registry's lifetime, even after
// remove(), which only stops exposing it). expose() reads the atomics without stopping
// writers: a scrape sees each series at some recent moment.
//
// Misuse never throws or crashes: an invalid or conflicting registration is logged and
// yields a working family that is not exposed; with() with the wrong number of values, or
// the unlabeled shortcuts (inc(), set(), observe()) on a labeled family, update a discarded
// series. Counters ignore negative and NaN increments.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::metrics {

namespace detail {

class Series {
 public:
  virtual ~Series() = default;
};

// The label-value -> series map shared by all metric kinds.
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names);
  virtual ~Family();
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  virtual std::string_view type() const = 0;

  // Appends this family in text format; nothing when it has no series.
  void expose(std::string& out) const;

 protected:
  Series& series(std::span<const std::string_view> values);
  bool remove_series(std::span<const std::string_view> values);
  // The series behind the unlabeled shortcuts: the only series of an unlabeled family, a
  // discarded one otherwise. Set by the derived constructor.
  Series* unlabeled_ = nullptr;
  void init();  // call at the end of the derived constructor

  virtual std::unique_ptr<Series> make_series() const = 0;
  // labels is the rendered label set without braces ("a=\"1\",b=\"2\"", possibly empty).
  virtual void write_series(std::string& out, const std::string& labels, const Series& s) const = 0;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Series>> children_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Series>> retired_;  // removed, kept alive; GUARDED_BY(mu_)
  std::unique_ptr<Series> discard_;               // wrong-arity lookups land here
  std::atomic<bool> warned_arity_{false};
};

}  // namespace detail

class CounterChild final : public detail::Series {
 public:
  void inc(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class GaugeChild final : public detail::Series {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void dec(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  void set_to_current_time();  // seconds since the epoch
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class HistogramChild final : public detail::Series {
 public:
  explicit HistogramChild(std::shared_ptr<const std::vector<double>> bounds);
  void observe(double v);

  // Cumulative counts per upper bound, then the +Inf bucket (== count()).
  std::vector<std::uint64_t> cumulative_counts() const;
  std::uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;     // finite upper bounds, increasing
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, non-cumulative, +Inf last
  std::atomic<double> sum_{0.0};
};

class Counter final : public detail::Family {
 public:
  Counter(std::string name, std::string help, std::vector<std::string> label_names);
  std::string_view type() const override { return "counter"; }

  CounterChild& with(std::initializer_list<std::string_view> values);
  CounterChild& with(std::span<const std::string_view> values);
  bool remove(std::initializer_list<std::string_view> values);
  // Unlabeled shortcuts.
  void inc(double v = 1.0) { static_cast<CounterChild*>(unlabeled_)->inc(v); }
  double value() const { return static_cast<const CounterChild*>(unlabeled_)->value(); }

 private:
  std::unique_ptr<detail::Series> make_series() const override;
  void write_series(std::string& out, const std::string& labels,
                    const detail::Series& s) const override;
};

class Gauge final : public detail::Family {
 public:
  Gauge(std::string name, std::string help, std::vector<std::string> label_names);
  std::string_view type() const override { return "gauge"; }

  GaugeChild& with(std::initializer_list<std::string_view> values);
  GaugeChild& with(std::span<const std::string_view> values);
  bool remove(std::initializer_list<std::string_view> values);
  void set(double v) { child().set(v); }
  void inc(double v = 1.0) { child().inc(v); }
  void dec(double v = 1.0) { child().dec(v); }
  double value() const { return static_cast<const GaugeChild*>(unlabeled_)->value(); }

 private:
  GaugeChild& child() { return *static_cast<GaugeChild*>(unlabeled_); }
  std::unique_ptr<detail::Series> make_series() const override;
  void write_series(std::string& out, const std::string& labels,
                    const detail::Series& s) const override;
};

class Histogram final : public detail::Family {
 public:
  // buckets: upper bounds; sorted, deduplicated, and stripped of +Inf/NaN here.
  Histogram(std::string name, std::string help, std::vector<double> buckets,
            std::vector<std::string> label_names);
  std::string_view type() const override { return "histogram"; }

  HistogramChild& with(std::initializer_list<std::string_view> values);
  HistogramChild& with(std::span<const std::string_view> values);
  bool remove(std::initializer_list<std::string_view> values);
  void observe(double v) { static_cast<HistogramChild*>(unlabeled_)->observe(v); }
  const std::vector<double>& buckets() const { return *bounds_; }

 private:
  std::unique_ptr<detail::Series> make_series() const override;
  void write_series(std::string& out, const std::string& labels,
                    const detail::Series& s) const override;

  std::shared_ptr<const std::vector<double>> bounds_;
};

// Prometheus' DefBuckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (seconds).
std::vector<double> default_buckets();
// start, start*factor, ... (count values); empty when the arguments make no sense.
std::vector<double> exponential_buckets(double start, double factor, int count);
std::vector<double> linear_buckets(double start, double width, int count);

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& counter(std::string_view name, std::string_view help,
                   std::vector<std::string> label_names = {});
  Gauge& gauge(std::string_view name, std::string_view help,
               std::vector<std::string> label_names = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> buckets = default_buckets(),
                       std::vector<std::string> label_names = {});

  // Every family with at least one series, sorted by name, in text format 0.0.4
  // (Content-Type: text/plain; version=0.0.4; charset=utf-8).
  std::string expose() const;

 private:
  template <class F, class... Args>
  F& get_or_create(std::string_view name, Args&&... args);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<detail::Family>, std::less<>> families_;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<detail::Family>>
      detached_;  // rejected registrations; GUARDED_BY(mu_)
};

// The process-wide registry served on /metrics.
Registry& default_registry();

}  // namespace podwarp::metrics
