// `podwarp trace` (see trace_cmd.h for what it shows).
#include "trace_cmd.h"

#include <arpa/inet.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api_sync.h"
#include "lib/netpol.h"
#include "netpol/flow_events.h"

namespace podwarp::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using noded::netpol::Flow;
using noded::netpol::FlowReader;
using noded::netpol::PodRef;

struct TraceOptions {
  std::string data_dir = "/var/lib/podwarp";
  std::string pin_dir;     // overrides the data dir's
  std::string kubeconfig;  // overrides the data dir's
  std::string verdict = "all";
  std::vector<std::string> pods;  // NS/NAME
  std::string output = "text";
  int count = 0;    // 0: unlimited
  int timeout = 0;  // seconds; 0: until SIGINT/SIGTERM
};

volatile std::sig_atomic_t stop_requested = 0;

void on_stop_signal(int) { stop_requested = 1; }

// Without SA_RESTART: the ring's epoll_wait returns at once.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &sa, nullptr);
}

// <pin dir>/pw_np_flows: --pin-dir, else <the bpffs dir `podwarp up` recorded in
// <data>/up/bpf-dir, or noded's default /sys/fs/bpf>/podwarp-noded/netpol.
fs::path ring_path(const TraceOptions& o) {
  fs::path pins = o.pin_dir;
  if (pins.empty()) {
    std::string bpf_dir;
    std::ifstream in(fs::path(o.data_dir) / "up" / "bpf-dir");
    std::getline(in, bpf_dir);
    if (bpf_dir.empty()) bpf_dir = "/sys/fs/bpf";
    pins = fs::path(bpf_dir) / "podwarp-noded" / "netpol";
  }
  return pins / PODWARP_NP_MAP_FLOWS;
}

// --kubeconfig, else <data>/control/admin.kubeconfig when there is one, else none.
fs::path kubeconfig_path(const TraceOptions& o) {
  if (!o.kubeconfig.empty()) return o.kubeconfig;
  fs::path admin = fs::path(o.data_dir) / "control" / "admin.kubeconfig";
  std::error_code ec;
  return fs::exists(admin, ec) ? admin : fs::path();
}

// Pod IPv4 addresses (network order) -> pods, from a pod list of every namespace. Listed again
// when an address is not known, at most once a second (every 10 s while listing fails).
class PodNames {
 public:
  explicit PodNames(fs::path kubeconfig) : kubeconfig_(std::move(kubeconfig)) {}

  std::optional<PodRef> find(std::uint32_t ip) {
    if (auto it = by_ip_.find(ip); it != by_ip_.end()) return it->second;
    if (kubeconfig_.empty() || Clock::now() < next_list_) return std::nullopt;
    list();
    if (auto it = by_ip_.find(ip); it != by_ip_.end()) return it->second;
    return std::nullopt;
  }

  void list() {
    if (kubeconfig_.empty()) return;
    auto pods = list_objects(kubeconfig_, *api::find_resource("", "v1", "pods"), "");
    next_list_ = Clock::now() + (pods ? 1s : 10s);
    if (!pods) {
      if (!warned_)
        std::fprintf(stderr, "podwarp trace: listing pods: %s (pod names unknown)\n",
                     pods.error().c_str());
      warned_ = true;
      return;
    }
    by_ip_.clear();
    const json::value* items = find_path(*pods, {"items"});
    if (items == nullptr || !items->is_array()) return;
    for (const auto& p : items->as_array()) {
      // Host-network pods have the node's address; finished pods may have lent theirs on.
      std::string_view phase = get_string(p, {"status", "phase"});
      if (get_bool(p, {"spec", "hostNetwork"}) || phase == "Succeeded" || phase == "Failed")
        continue;
      PodRef ref{std::string(get_string(p, {"metadata", "namespace"})),
                 std::string(get_string(p, {"metadata", "name"}))};
      std::vector<std::string_view> ips{get_string(p, {"status", "podIP"})};
      if (const json::value* all = find_path(p, {"status", "podIPs"}); all && all->is_array())
        for (const auto& a : all->as_array()) ips.push_back(get_string(a, {"ip"}));
      for (std::string_view ip : ips) {
        in_addr a{};
        if (::inet_pton(AF_INET, std::string(ip).c_str(), &a) == 1) by_ip_[a.s_addr] = ref;
      }
    }
  }

 private:
  fs::path kubeconfig_;
  std::unordered_map<std::uint32_t, PodRef> by_ip_;
  Clock::time_point next_list_{};
  bool warned_ = false;
};

bool same_pod(const std::optional<PodRef>& p, const PodRef& want) {
  return p && p->ns == want.ns && p->name == want.name;
}

int trace(const TraceOptions& o) {
  std::vector<PodRef> only;
  for (const auto& p : o.pods) {
    auto slash = p.find('/');
    if (slash == std::string::npos)
      only.push_back({"default", p});
    else
      only.push_back({p.substr(0, slash), p.substr(slash + 1)});
  }
  const fs::path ring = ring_path(o);
  PodNames names(kubeconfig_path(o));
  int printed = 0;
  bool done = false;
  auto on_flow = [&](const Flow& f) {
    if ((o.verdict == "allowed" && !f.allowed()) || (o.verdict == "denied" && f.allowed()))
      return true;
    const auto src = names.find(f.saddr), dst = names.find(f.daddr);
    if (!only.empty() && std::none_of(only.begin(), only.end(), [&](const PodRef& w) {
          return same_pod(src, w) || same_pod(dst, w);
        }))
      return true;
    std::string line = o.output == "json" ? noded::netpol::format_flow_json(f, src, dst)
                                          : noded::netpol::format_flow_text(f, src, dst);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    done = o.count > 0 && ++printed >= o.count;
    return !done;
  };
  // The reader first (events from here on are kept in the ring), then the names.
  auto reader = FlowReader::open(ring.string(), on_flow);
  if (!reader) {
    if (reader.error().code == ENOENT)
      std::fprintf(stderr,
                   "podwarp trace: no flow ring at %s (is noded running with --network-policy?)\n",
                   ring.c_str());
    else
      std::fprintf(stderr, "podwarp trace: %s\n", reader.error().message.c_str());
    return 1;
  }
  names.list();
  catch_stop_signals();
  const auto deadline =
      o.timeout > 0 ? Clock::now() + std::chrono::seconds(o.timeout) : Clock::time_point::max();
  while (!done && !stop_requested) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    auto wait = std::min<Clock::duration>(200ms, deadline - now);
    auto r = (*reader)->poll(std::chrono::ceil<std::chrono::milliseconds>(wait));
    if (!r) {
      std::fprintf(stderr, "podwarp trace: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

void add_trace_command(CLI::App& app, GlobalOptions& /*globals*/, int& exit_code) {
  auto o = std::make_shared<TraceOptions>();
  CLI::App* tc = app.add_subcommand(
      "trace", "print NetworkPolicy flow events of this node (new flows allowed or denied)");
  tc->add_option("--data-dir", o->data_dir,
                 "the data dir of `podwarp up` (its bpf-dir and admin.kubeconfig)")
      ->capture_default_str();
  tc->add_option("--pin-dir", o->pin_dir,
                 "noded's netpol pin dir (default <bpf-dir>/podwarp-noded/netpol)");
  tc->add_option("--kubeconfig", o->kubeconfig,
                 "for pod names (default <data-dir>/control/admin.kubeconfig when present; "
                 "without one: addresses only)");
  tc->add_option("--verdict", o->verdict, "which flows: all, allowed or denied")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "allowed", "denied"}));
  tc->add_option("--pod", o->pods, "NS/NAME: only flows with this pod at either end (repeatable)");
  tc->add_option("-o,--output", o->output, "text (one line per flow) or json (one object per line)")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  tc->add_option("--count", o->count, "exit after this many events (0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  tc->add_option("--timeout", o->timeout, "exit after this many seconds (0: at SIGINT/SIGTERM)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  tc->callback([o, &exit_code] { exit_code = trace(*o); });
}

}  // namespace podwarp::cli
