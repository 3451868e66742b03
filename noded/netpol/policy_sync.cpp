#include "netpol/policy_sync.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <set>
#include <vector>

#include "podwarp/log.h"
#include "podwarp/metrics.h"

namespace podwarp::noded::netpol {

namespace {

std::string ip_text(std::uint32_t ip_net) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{ip_net};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool isolated(const netpolicy::EndpointPolicy& p) { return p.ingress || p.egress; }

enum class Input { kPolicy, kPod, kNamespace };

// Whether an update changes what netpolicy::compile() reads. Pods and Namespaces change mostly
// in ways it does not read (conditions, container states, resourceVersion): those updates
// schedule no recompute. A NetworkPolicy update always does.
bool compile_input_changed(Input input, const json::value& old, const json::value& now) {
  if (input == Input::kPolicy) return true;
  auto same = [&](std::initializer_list<std::string_view> path) {
    const json::value* a = find_path(old, path);
    const json::value* b = find_path(now, path);
    return a == nullptr ? b == nullptr : b != nullptr && *a == *b;
  };
  if (!same({"metadata", "labels"})) return true;
  if (input == Input::kNamespace) return false;
  return !same({"status", "podIP"}) || !same({"status", "podIPs"}) ||
         !same({"status", "phase"}) || !same({"spec", "hostNetwork"}) ||
         !same({"spec", "containers"});
}

metrics::Counter& packets_metric() {
  static auto& c = metrics::default_registry().counter(
      "podwarp_netpol_packets_total",
      "Packets seen by the NetworkPolicy programs on the pods' veths, by verdict (bpf/lib/netpol.h "
      "counters: AllowedNew, Established, AllowedHost, Unisolated, DeniedIngress, DeniedEgress, "
      "PassedOther, CtUpdateFailed, FlowEventsLost).",
      {"verdict"});
  return c;
}
metrics::Gauge& isolated_metric() {
  static auto& g = metrics::default_registry().gauge(
      "podwarp_netpol_isolated_pods", "Pods of this node that a NetworkPolicy isolates.", {});
  return g;
}

}  // namespace

std::vector<std::uint32_t> host_ipv4_addresses() {
  std::vector<std::uint32_t> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    out.push_back(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
  }
  ::freeifaddrs(list);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

struct PolicySync::Impl : std::enable_shared_from_this<Impl> {
  Impl(boost::asio::any_io_executor e, Datapath& d, std::shared_ptr<client::Informer> pol,
       std::shared_ptr<client::Informer> pd, std::shared_ptr<client::Informer> ns,
       PolicySyncOptions o)
      : ex(std::move(e)),
        dp(d),
        policies(std::move(pol)),
        pods(std::move(pd)),
        namespaces(std::move(ns)),
        opts(std::move(o)),
        debounce_timer(ex),
        retry_timer(ex) {}

  boost::asio::any_io_executor ex;
  Datapath& dp;
  std::shared_ptr<client::Informer> policies, pods, namespaces;
  PolicySyncOptions opts;
  boost::asio::steady_timer debounce_timer, retry_timer;
  bool stopped = false;
  bool scheduled = false;
  bool synced = false;  // the first recompute after the informers synced has run
  bool failed = false;  // a write failed: the retry timer recomputes
  // What the maps hold, per endpoint IP (network order).
  std::map<std::uint32_t, netpolicy::EndpointPolicy> written;
  std::set<std::string> last_problems;
  std::vector<std::uint32_t> host_addrs;
  PolicySyncStats stats;
  std::map<std::string, std::uint64_t, std::less<>> counted;  // BPF counters already exported

  bool informers_synced() const {
    return policies->has_synced() && pods->has_synced() && namespaces->has_synced();
  }

  void schedule() {
    if (stopped || scheduled) return;
    scheduled = true;
    debounce_timer.expires_after(opts.debounce);
    std::weak_ptr<Impl> weak = weak_from_this();
    debounce_timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (!s || s->stopped) return;
      s->scheduled = false;
      if (!ec) s->recompute();
    });
  }

  void refresh_host_addresses() {
    auto now = host_ipv4_addresses();
    if (now == host_addrs) return;
    if (auto r = dp.set_host_addresses(now); !r) {
      log::warn("netpol: node addresses: {}", r.error().message);
      return;
    }
    host_addrs = std::move(now);
  }

  // The BPF counters (pinned: they count across noded restarts) into the metrics, as deltas.
  void export_counters() {
    auto now = dp.counters();
    if (!now) return;
    for (const auto& c : *now) {
      auto [it, fresh] = counted.try_emplace(std::string(c.name), 0);
      if (c.packets > it->second) packets_metric().with({c.name}).inc(double(c.packets - it->second));
      else if (fresh) packets_metric().with({c.name}).inc(0);
      it->second = c.packets;
    }
  }

  void arm_retry() {
    // Until the first sync, look often: informers of empty collections call no handler.
    retry_timer.expires_after(synced ? opts.retry_interval : std::chrono::milliseconds(100));
    std::weak_ptr<Impl> weak = weak_from_this();
    retry_timer.async_wait([weak](boost::system::error_code ec) {
      auto s = weak.lock();
      if (ec || !s || s->stopped) return;
      s->refresh_host_addresses();
      if (!s->synced || s->failed) s->recompute();
      s->export_counters();
      s->arm_retry();
    });
  }

  // The pod objects of the local endpoints, by UID (one pass over the informer's cache).
  std::map<std::string, client::ObjectPtr> pods_by_uid(
      const std::map<std::uint32_t, std::string>& locals, std::vector<client::ObjectPtr>& all) {
    std::set<std::string_view> want;
    for (const auto& [ip, uid] : locals) want.insert(uid);
    std::map<std::string, client::ObjectPtr> out;
    for (const auto& p : all) {
      auto uid = get_string(*p, {"metadata", "uid"});
      if (want.contains(uid)) out.emplace(std::string(uid), p);
    }
    return out;
  }

  void note_problems(const std::vector<std::string>& problems) {
    std::set<std::string> now(problems.begin(), problems.end());
    if (now == last_problems) return;
    for (const auto& p : now)
      if (!last_problems.contains(p)) log::warn("netpol: {}", p);
    last_problems = std::move(now);
  }

  // What the maps hold for `ip` before this noded wrote anything there (after a restart).
  const netpolicy::EndpointPolicy* before_of(std::uint32_t ip) {
    auto it = written.find(ip);
    if (it != written.end()) return &it->second;
    auto r = dp.read(ip);
    if (!r) {
      log::warn("netpol: read back {}: {}", ip_text(ip), r.error().message);
      return nullptr;
    }
    return &written.emplace(ip, std::move(*r)).first->second;
  }

  void recompute() {
    if (stopped || !informers_synced()) return;
    ++stats.recomputes;
    auto locals = opts.local_endpoints ? opts.local_endpoints()
                                       : std::map<std::uint32_t, std::string>{};
    auto all_pods = pods->list();
    auto all_policies = policies->list();
    auto all_namespaces = namespaces->list();
    auto local_pods = pods_by_uid(locals, all_pods);

    netpolicy::Cluster cluster;
    for (const auto& p : all_policies) cluster.policies.push_back(p.get());
    for (const auto& p : all_pods) cluster.pods.push_back(p.get());
    for (const auto& n : all_namespaces) cluster.namespaces.push_back(n.get());
    std::vector<netpolicy::LocalPod> local;
    for (const auto& [ip, uid] : locals) {
      auto it = local_pods.find(uid);
      // A pod the informer does not know yet keeps what it has; the pod's ADDED event
      // recomputes again.
      if (it != local_pods.end()) local.push_back({it->second.get(), ip});
    }
    auto compiled = netpolicy::compile(cluster, local);
    note_problems(compiled.problems);

    bool changed = false;
    failed = false;
    const netpolicy::EndpointPolicy open_policy;
    for (const auto& lp : local) {
      auto c = compiled.endpoints.find(lp.ip);
      const netpolicy::EndpointPolicy& now = c != compiled.endpoints.end() ? c->second : open_policy;
      const auto* before = before_of(lp.ip);
      if (before != nullptr && *before == now) continue;
      if (auto r = dp.apply(lp.ip, before, now); !r) {
        log::warn("netpol: write the tables of {}: {}", ip_text(lp.ip), r.error().message);
        failed = true;
        continue;
      }
      for (const auto* t : {&now.ingress, &now.egress})
        if (*t && (*t)->truncated)
          log::warn("netpol: {}: more rules than a table holds (64 port sets, 128 ranges): "
                    "some allowed traffic is denied",
                    ip_text(lp.ip));
      written[lp.ip] = now;
      changed = true;
      ++stats.endpoints_written;
    }
    for (auto it = written.begin(); it != written.end();) {
      if (locals.contains(it->first)) {
        ++it;
        continue;
      }
      if (auto r = dp.remove(it->first, it->second); !r) {
        log::warn("netpol: remove the tables of {}: {}", ip_text(it->first), r.error().message);
        failed = true;
        ++it;
        continue;
      }
      it = written.erase(it);
      changed = true;
      ++stats.endpoints_written;
    }
    if (!synced) {
      std::vector<std::uint32_t> keep;
      for (const auto& [ip, uid] : locals) keep.push_back(ip);
      if (auto r = dp.prune(keep); !r) {
        log::warn("netpol: prune: {}", r.error().message);
        failed = true;
      } else if (*r > 0) {
        log::info("netpol: dropped the tables of {} endpoints that are gone", *r);
        changed = true;
      }
    }
    if (changed) {
      if (auto r = dp.commit(); !r) {
        log::warn("netpol: commit: {}", r.error().message);
        failed = true;
      }
    }
    stats.isolated_endpoints = static_cast<std::size_t>(
        std::count_if(written.begin(), written.end(), [](const auto& e) { return isolated(e.second); }));
    isolated_metric().set(static_cast<double>(stats.isolated_endpoints));
    if (!synced) {
      synced = !failed;
      stats.synced = synced;
      if (synced)
        log::info("netpol: synced: {} policies, {} local pods, {} isolated", all_policies.size(),
                  local.size(), stats.isolated_endpoints);
    }
  }

  void start() {
    std::weak_ptr<Impl> weak = weak_from_this();
    for (auto [inf, input] : {std::pair{&policies, Input::kPolicy}, std::pair{&pods, Input::kPod},
                              std::pair{&namespaces, Input::kNamespace}}) {
      (*inf)->on_add([weak](const json::value&) {
        if (auto s = weak.lock()) s->schedule();
      });
      (*inf)->on_update([weak, input](const json::value& old, const json::value& now) {
        if (auto s = weak.lock(); s && compile_input_changed(input, old, now)) s->schedule();
      });
      (*inf)->on_delete([weak](const json::value&) {
        if (auto s = weak.lock()) s->schedule();
      });
    }
    refresh_host_addresses();
    arm_retry();
  }

  void stop() {
    stopped = true;
    debounce_timer.cancel();
    retry_timer.cancel();
  }
};

PolicySync::PolicySync(boost::asio::any_io_executor executor, Datapath& datapath,
                       std::shared_ptr<client::Informer> policies,
                       std::shared_ptr<client::Informer> pods,
                       std::shared_ptr<client::Informer> namespaces, PolicySyncOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), datapath, std::move(policies),
                                   std::move(pods), std::move(namespaces), std::move(options))) {}

PolicySync::~PolicySync() { impl_->stop(); }

void PolicySync::start() { impl_->start(); }
void PolicySync::stop() { impl_->stop(); }

std::expected<void, std::string> PolicySync::pod_attached(const std::string& pod_uid,
                                                          std::uint32_t ip,
                                                          const std::string& ifname) {
  unsigned idx = ::if_nametoindex(ifname.c_str());
  if (idx == 0) return std::unexpected("network policy: no interface " + ifname);
  if (auto r = impl_->dp.attach_tc(static_cast<int>(idx)); !r)
    return std::unexpected("network policy: " + r.error().message);
  // The tables now, so that the first packet is filtered (when the informers know the pod).
  log::debug("netpol: pod {} at {} on {}", pod_uid, ip_text(ip), ifname);
  impl_->recompute();
  return {};
}

void PolicySync::pod_detached(const std::string&) { impl_->schedule(); }

PolicySyncStats PolicySync::stats() const { return impl_->stats; }

}  // namespace podwarp::noded::netpol
