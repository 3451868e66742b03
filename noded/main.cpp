// podwarp-noded: the node daemon (kubelet + container runtime in one io_uring-driven process).
//
// API mode (the default): registers the Node with the API server, renews its Lease, runs the
// pods bound to it and writes their status (noded/agent):
//
//   podwarp-noded --kubeconfig FILE [--node-name NAME] [--node-ip IP] [--root-dir DIR]
//       [--node-api-address 0.0.0.0] [--node-api-port 10250] [--tls-cert-file F
//       --tls-private-key-file F --client-ca-file F] [--manifest-dir DIR (static pods)] ...
//
// Standalone: pods come from a manifest folder only (as the kubelet's static pods):
//
//   podwarp-noded --standalone --manifest-dir DIR --root-dir DIR --api-socket PATH
//       [--cgroup-root podwarp] [--pod-log-dir /var/log/pods] [--insecure-registry H:P]...
//       [--node-name NAME] [--log-level info] [--crash-backoff-ms 10000]
//
// State lives under --root-dir: images/ (the image store), pods/<uid>/ (persisted pod state,
// volumes, log FIFOs), run/ (namespace pins and /etc files of sandboxes), net/ (pod IPs, with
// --pod-network=routed).
//
// SIGTERM/SIGINT: noded exits WITHOUT stopping pods, as the kubelet does: containers keep
// running and the next noded re-adopts them (restart-safe upgrades). Stop pods by removing
// their manifests. The process ends with _exit() (never destroying an io_context with io_uring
// operations in flight).
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "agent/agent.h"
#include "bpfutil/bpf_util.h"
#include "adapters/node_images.h"
#include "adapters/node_runtime.h"
#include "cgroup/cgroup.h"
#include "cgroup/sys_error.h"
#include "cri/cri_server.h"
#include "exitrec/exit_recorder.h"
#include "images/image_store.h"
// --- service LB ---
#include "lb/datapath.h"
#include "lb/nodeport_setup.h"
#include "lb/service_informers.h"
#include "lb/service_map.h"
#include "netpol/datapath.h"
#include "netpol/policy_sync.h"
// --- end service LB ---
// --- cluster DNS ---
#include "dns/dns_informers.h"
#include "dns/local_address.h"
#include "dns/records.h"
#include "dns/resolv_conf.h"
#include "dns/server.h"
// --- end cluster DNS ---
#include "nodeapi/node_api.h"
#include "net/node_network.h"
#include "nodeapi/node_https.h"
#include "pods/pod_manager.h"
#include "pods/volumes.h"
#include "podwarp/api/resources.h"
#include "podwarp/client.h"
#include "podwarp/informer.h"
#include "podwarp/netaddr.h"
#include "podwarp/kubeconfig.h"
#include "podwarp/log.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace podwarp;
using namespace podwarp::noded;

namespace {

[[noreturn]] void finish(int code) {
  spdlog::default_logger()->flush();
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

[[noreturn]] void fatal(const std::string& msg) {
  log::error("noded: {}", msg);
  finish(1);
}

// Makes `dir` a bpffs mount point unless it already is on one. Below /sys/fs/bpf (which is
// sysfs, where nothing can be created, until a bpffs is mounted on it) the machine's bpffs is
// mounted first when it is missing.
std::expected<void, SysError> ensure_bpffs(const std::string& dir) {
  if (auto m = noded::bpfutil::ensure_machine_bpffs(dir); !m) return std::unexpected(m.error());
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected(SysError{ec.value(), "mkdir " + dir + ": " + ec.message()});
  struct statfs sfs {};
  if (::statfs(dir.c_str(), &sfs) != 0) return std::unexpected(errno_error("statfs " + dir));
  if (static_cast<unsigned long>(sfs.f_type) == BPF_FS_MAGIC) return {};
  if (::mount("bpf", dir.c_str(), "bpf", 0, "mode=0700") != 0)
    return std::unexpected(errno_error("mount bpf on " + dir));
  return {};
}

}  // namespace

// <root-dir>/run holds runtime state that dies with the machine (namespace pins, the files
// bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname): a tmpfs, as /run is for
// containerd and runc, so that starting a pod creates fewer inodes on the node's disk. Mounted
// only when run/ is empty (a first start, or after a reboot): a restarted noded finds it
// mounted, and the pins of an older noded that kept run/ on disk are never hidden.
static void mount_run_tmpfs(const std::string& root_dir) {
  if (::geteuid() != 0) return;
  std::string run = root_dir + "/run";
  if (pods::is_mount_point(run)) return;  // mounted already
  std::error_code ec;
  if (!fs::is_empty(run, ec) || ec) {
    log::info("noded: {} is not empty: runtime state stays on disk", run);
    return;
  }
  if (auto m = pods::ensure_tmpfs(run, "mode=0755,size=64m", MS_NOEXEC); !m)
    log::warn("noded: {} (runtime state stays on disk)", m.error());
}

int main(int argc, char** argv) {
  CLI::App app{"podwarp-noded: the podwarp node daemon (kubelet + container runtime)"};
  bool standalone = false;
  std::string manifest_dir, root_dir = "/var/lib/podwarp/noded", api_socket;
  std::string cgroup_root = "podwarp", pod_log_dir = "/var/log/pods", log_level = "info";
  std::vector<std::string> insecure;
  std::string node_name;
  bool node_name_set = false;
  std::int64_t crash_backoff_ms = 10'000;
  std::string bpf_dir;
  int gc_high = 85;
  std::int64_t gc_period_s = 300;
  std::string kubeconfig_path, node_ip, node_api_address = "0.0.0.0";
  int node_api_port = 10250;
  std::string tls_cert, tls_key, client_ca;
  std::string pod_network = "none", pod_cidr;
  std::string eviction_hard;
  bool allow_ip_forward = false;
  app.add_flag("--standalone", standalone, "run pods from --manifest-dir, without an apiserver");
  app.add_option("--kubeconfig", kubeconfig_path, "API mode: kubeconfig of the node's credentials");
  app.add_option("--node-ip", node_ip,
                 "API mode: the node's InternalIP (default: the IPv4 of the default-route interface)");
  app.add_option("--node-api-address", node_api_address, "API mode: address of the node API (HTTPS)");
  app.add_option("--node-api-port", node_api_port,
                 "API mode: port of the node API (0: a free port; reported in the Node status)");
  app.add_option("--tls-cert-file", tls_cert, "API mode: serving certificate of the node API");
  app.add_option("--tls-private-key-file", tls_key, "API mode: its private key");
  app.add_option("--client-ca-file", client_ca, "API mode: CA of the node API's client certificates");
  app.add_option("--manifest-dir", manifest_dir, "folder of pod (and ConfigMap/Secret) manifests");
  app.add_option("--root-dir", root_dir, "where all state lives (images, pods, namespace pins)");
  app.add_option("--api-socket", api_socket,
                 "unix socket of the local API (default <root>/noded.sock)");
  app.add_option("--cgroup-root", cgroup_root,
                 "cgroup of all pods, relative to the cgroup2 mount (or absolute under it)");
  app.add_option("--pod-log-dir", pod_log_dir, "root of the CRI container log files");
  app.add_option("--insecure-registry", insecure,
                 "registry host:port served over plain HTTP (repeatable; loopback always is)");
  auto* nn = app.add_option("--node-name", node_name,
                            "node name; static pod names get -<node-name> (default: hostname)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option(
      "--crash-backoff-ms", crash_backoff_ms,
      "first CrashLoopBackOff delay (upstream: 10000); doubles up to 30x, at most 5 min");
  app.add_option("--bpf-dir", bpf_dir,
                 "bpffs where the exit recorder is pinned (in <dir>/podwarp-noded); a bpffs is "
                 "mounted there when it is not one (default /sys/fs/bpf)");
  app.add_option("--image-gc-high-threshold", gc_high,
                 "disk usage percent of the root's filesystem above which unused images are "
                 "removed (kubelet's imageGCHighThresholdPercent; 100 disables)");
  app.add_option("--image-gc-period", gc_period_s, "seconds between image GC checks");
  app.add_option("--eviction-hard", eviction_hard,
                 "API mode: hard eviction thresholds as the kubelet's, "
                 "e.g. memory.available<100Mi,nodefs.available<10% (the default): allocatable "
                 "leaves them out, and MemoryPressure / DiskPressure turn True below them");
  app.add_option("--pod-network", pod_network,
                 "none: pods have loopback only (default); routed: a veth and a /32 podIP per pod "
                 "from the node's podCIDR, routes to other nodes' podCIDRs (noded/net/README.md)")
      ->check(CLI::IsMember({"none", "routed"}));
  app.add_option("--pod-cidr", pod_cidr,
                 "with --pod-network=routed: this podCIDR instead of Node.spec.podCIDR (required "
                 "in standalone mode)");
  app.add_flag("--allow-ip-forward", allow_ip_forward,
               "with --pod-network=routed: set net.ipv4.ip_forward=1 (needed for traffic from "
               "other nodes to pods; pod-to-pod on one node does not need it)");
  // --- network policy ---
  bool network_policy = false;
  app.add_flag("--network-policy", network_policy,
               "API mode, --pod-network=routed: enforce NetworkPolicies with tc BPF programs on "
               "the pods' veths (maps pinned in <bpf-dir>/podwarp-noded/netpol; "
               "noded/netpol/README.md)");
  // --- service LB ---
  bool service_lb = false;
  app.add_flag("--service-lb", service_lb,
               "API mode: balance ClusterIP services for the pods with the eBPF socket load "
               "balancer (pinned in <bpf-dir>/podwarp-noded/lb, attached to --cgroup-root); no "
               "kube-proxy, no iptables (noded/lb/README.md)");
  std::vector<std::string> nodeport_ifaces, cluster_cidrs;
  app.add_option("--nodeport-interfaces", nodeport_ifaces,
                 "with --service-lb: interfaces (of noded's network namespace) that get the tc "
                 "NodePort/externalIP programs, for clients outside the node (default: none)")
      ->delimiter(',');
  app.add_option("--cluster-cidr", cluster_cidrs,
                 "with --nodeport-interfaces: the pods' CIDRs; pod traffic to anywhere else (but "
                 "the node's addresses) leaving a nodeport interface is masqueraded to its IPv4 "
                 "address by BPF")
      ->delimiter(',');
  // --- end service LB ---
  // --- cluster DNS ---
  std::string cluster_dns, cluster_domain = "cluster.local", resolv_conf_path = "/etc/resolv.conf";
  app.add_option("--cluster-dns", cluster_dns,
                 "API mode: serve cluster DNS on IP:53 (UDP+TCP) from the Services/EndpointSlices "
                 "cache (a dummy link podwarp-dns holds IP/32 when it is not local) and give pods "
                 "with dnsPolicy ClusterFirst `nameserver IP` (default: none; pods get the host's "
                 "resolv.conf; noded/dns/README.md)");
  app.add_option("--cluster-domain", cluster_domain, "the cluster's DNS domain")
      ->capture_default_str();
  app.add_option("--resolv-conf", resolv_conf_path,
                 "resolver configuration: upstream servers for names outside the cluster domain, "
                 "and the base of pods' resolv.conf (dnsPolicy Default, host search domains)")
      ->capture_default_str();
  // --- end cluster DNS ---
  // --- CRI ---
  std::string cri_socket;
  app.add_option("--cri-socket", cri_socket,
                 "serve the CRI runtime.v1 API (crictl, critest, a kubelet) on this unix socket; "
                 "empty: off");
  // --- end CRI ---
  CLI11_PARSE(app, argc, argv);
  agent::NodeConfig node_config;  // --eviction-hard, checked before anything is set up
  if (auto ok = agent::parse_eviction_hard(eviction_hard, node_config); !ok) {
    std::cerr << "podwarp-noded: --eviction-hard: " << ok.error() << "\n";
    return 2;
  }
  node_name_set = nn->count() > 0;
  log::set_level(log_level);
  if (!standalone && kubeconfig_path.empty()) {
    std::cerr << "podwarp-noded: --kubeconfig is required (or run --standalone)\n";
    return 2;
  }
  if (standalone && manifest_dir.empty()) {
    std::cerr << "podwarp-noded: --manifest-dir is required with --standalone\n";
    return 2;
  }
  if (node_api_port < 0 || node_api_port > 65535) {
    std::cerr << "podwarp-noded: --node-api-port must be 0..65535\n";
    return 2;
  }
  if (crash_backoff_ms <= 0) {
    std::cerr << "podwarp-noded: --crash-backoff-ms must be > 0\n";
    return 2;
  }
  if (!node_name_set) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) node_name = host;
  }
  std::error_code ec;
  root_dir = fs::absolute(root_dir, ec).lexically_normal().string();
  if (!root_dir.empty() && root_dir.back() == '/') root_dir.pop_back();
  if (api_socket.empty()) api_socket = root_dir + "/noded.sock";
  if (bpf_dir.empty()) bpf_dir = "/sys/fs/bpf";
  fs::create_directories(root_dir, ec);
  if (ec) fatal("mkdir " + root_dir + ": " + ec.message());
  // One noded per root: a second one would adopt and kill the first one's containers.
  int lock_fd = ::open((root_dir + "/noded.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    fatal("another podwarp-noded uses " + root_dir + " (flock " + root_dir +
          "/noded.lock: " + errno_name(errno) + ")");
  for (const std::string& d : {root_dir + "/run", pod_log_dir}) {
    fs::create_directories(d, ec);
    if (ec) fatal("mkdir " + d + ": " + ec.message());
  }
  mount_run_tmpfs(root_dir);
  // Every container holds pipe fds and pidfds.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  auto store = images::ImageStore::open(root_dir);
  if (!store) fatal("image store: " + store.error().message);
  auto cgroups = cgroup::CgroupManager::open(cgroup::CgroupFs::real(), cgroup_root);
  if (!cgroups) fatal("cgroups: " + cgroups.error().message);
  auto report = cgroups->ensure_root();
  if (!report) fatal("cgroups: " + report.error().message);
  std::optional<kubeconfig::Config> kc;
  if (!standalone) {
    auto k = kubeconfig::load(kubeconfig_path);
    if (!k) fatal("kubeconfig: " + k.error());
    kc = std::move(*k);
    if (node_ip.empty()) node_ip = netaddr::default_route_ipv4();
  }
  for (const auto& n : report->not_enforced)
    log::warn("noded: cgroup limit not enforceable: {}", n);
  log::info("noded: cgroup root {}", cgroups->root());

  // Exit codes of containers that end while noded is down (or after it re-adopted them).
  std::optional<exitrec::ExitRecorder> exits;
  if (auto m = ensure_bpffs(bpf_dir); !m) {
    log::warn(
        "noded: exit recorder: {}: exit codes of containers that end while noded is "
        "down will be unknown",
        m.error().message);
  } else if (auto r = exitrec::ExitRecorder::open(bpf_dir + "/podwarp-noded")) {
    exits.emplace(std::move(*r));
  } else {
    log::warn(
        "noded: exit recorder: {}: exit codes of containers that end while noded is "
        "down will be unknown",
        r.error().message);
  }

  // --- network policy --- (created below, once the informers can be; the pod network's
  // hooks forward to it: sandboxes are only made after io.run() starts)
  std::unique_ptr<netpol::Datapath> np_datapath;
  std::unique_ptr<netpol::PolicySync> np_sync;
  if (network_policy && (standalone || pod_network != "routed"))
    fatal("--network-policy needs API mode and --pod-network=routed");
  std::optional<net::NodeNetwork> pod_net;
  if (pod_network == "routed") {
    net::NodeNetworkOptions no;
    if (network_policy) {
      no.on_attached = [&np_sync](const std::string& uid, const net::PodAttachment& a)
          -> std::expected<void, std::string> {
        if (!np_sync) return std::unexpected("network policy: not ready");
        return np_sync->pod_attached(uid, htonl(a.ip.value), a.host_ifname);
      };
      no.on_detached = [&np_sync](const std::string& uid) {
        if (np_sync) np_sync->pod_detached(uid);
      };
    }
    no.node_name = node_name;
    no.state_dir = root_dir + "/net";
    no.allow_ip_forward = allow_ip_forward;
    if (!pod_cidr.empty()) {
      no.static_pod_cidr = net::parse_cidr4(pod_cidr);
      if (!no.static_pod_cidr) fatal("--pod-cidr " + pod_cidr + ": not an IPv4 CIDR");
    } else if (standalone) {
      fatal("--pod-network=routed in standalone mode needs --pod-cidr");
    }
    auto n = net::NodeNetwork::open(no);
    if (!n) fatal("pod network: " + n.error());
    pod_net.emplace(std::move(*n));
    // Addresses of pods whose sandbox is gone (noded died between the two removals): freed.
    // A running or adopted pod always has its namespace pins under run/ns/<uid>.
    std::set<std::string> with_sandbox;
    std::error_code list_ec;
    for (const auto& e : fs::directory_iterator(root_dir + "/run/ns", list_ec))
      with_sandbox.insert(e.path().filename().string());
    if (list_ec && list_ec != std::errc::no_such_file_or_directory) {
      log::warn("noded: pod network: list {}/run/ns: {} (orphaned addresses kept)", root_dir,
                list_ec.message());
    } else if (int gone = pod_net->pods().release_orphans(with_sandbox); gone > 0) {
      log::info("noded: pod network: released the addresses of {} pods without a sandbox", gone);
    }
  }

  asio::io_context io(1);
  images::PullOptions pull;
  pull.registry.insecure_registries = insecure;
  adapters::NodeImages image_service(**store, pull);
  adapters::NodeRuntimeOptions ro{
      .run_dir = root_dir + "/run", .resolv_conf = {}, .exits = exits ? &*exits : nullptr};
  if (pod_net) {
    auto ex = io.get_executor();
    ro.attach_network = [&pod_net, ex](const std::string& uid, const std::string& netns)
        -> pods::Awaitable<std::expected<std::string, std::string>> {
      // Until the node has a podCIDR (the controllers' node IPAM sets it right after the Node
      // is registered) the pod waits here; then the pod worker retries with its backoff.
      for (int i = 0; i < 300 && !pod_net->has_pod_cidr(); ++i) {
        asio::steady_timer t(ex, std::chrono::milliseconds(100));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      co_return pod_net->attach(uid, netns);
    };
    ro.detach_network = [&pod_net](const std::string& uid) { pod_net->detach(uid); };
  }
  // --- cluster DNS ---
  // Pods' /etc/resolv.conf per dnsPolicy/dnsConfig, as the kubelet composes it; the host file
  // is read at every sandbox creation (the kubelet does too) and copied as is when the policy
  // leaves it unchanged.
  {
    auto read_text = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      return ss.str();
    };
    ro.resolv_conf = read_text(resolv_conf_path);
    ro.pod_resolv_conf = [read_text, resolv_conf_path, cluster_dns, cluster_domain](
                             const json::value& pod) -> std::expected<std::string, std::string> {
      dns::PodDnsSettings ds;
      if (!cluster_dns.empty()) ds.cluster_dns = {cluster_dns};
      ds.cluster_domain = cluster_domain;
      std::string host = read_text(resolv_conf_path);
      ds.host = dns::parse_resolv_conf(host);
      auto r = dns::pod_dns_config(pod, ds);
      if (!r) return std::unexpected(r.error());
      for (const auto& w : r->warnings)
        log::warn("noded: pod {}/{}: DNS config: {}", get_string(pod, {"metadata", "namespace"}),
                  get_string(pod, {"metadata", "name"}), w);
      if (r->host_as_is || r->conf.empty()) return host;
      return dns::format_resolv_conf(r->conf);
    };
  }
  // --- end cluster DNS ---
  adapters::NodeRuntime runtime(io.get_executor(), std::move(ro), *cgroups, **store);
  // --- CRI ---
  // The same runtime and image store behind the CRI socket; its sandboxes are pods with uid
  // "cri-<hex>" (cri/README.md), records under <root>/cri.
  std::unique_ptr<cri::CriServer> cri_server;
  if (!cri_socket.empty()) {
    auto c = cri::CriServer::start(io.get_executor(),
                                   {.socket_path = cri_socket,
                                    .state_dir = root_dir + "/cri",
                                    .network_ready = pod_net.has_value()},
                                   runtime, image_service, **store);
    if (!c) fatal(c.error());
    cri_server = std::move(*c);
  }
  // --- end CRI ---

  pods::PodManagerOptions po;
  po.manifest_dir = manifest_dir;
  po.root_dir = root_dir;
  po.pod_log_dir = pod_log_dir;
  po.node_name = node_name;
  po.timings.backoff_base = std::chrono::milliseconds(crash_backoff_ms);
  po.timings.backoff_max = std::min(std::chrono::milliseconds(300'000),
                                    std::chrono::milliseconds(crash_backoff_ms * 30));
  std::unique_ptr<agent::NodeAgent> node_agent;
  // Set by the service LB block when it masquerades: other nodes' addresses are exempt.
  std::function<void(const std::vector<const json::value*>&)> lb_on_nodes;
  if (!standalone) {
    po.host_ip = node_ip;
    client::Config cc = client::Config::from_kubeconfig(*kc);
    cc.user_agent = "podwarp-noded/" PODWARP_VERSION;
    client::Client api_client(io.get_executor(), cc);
    if (api_client.setup_error()) fatal("API client: " + api_client.setup_error()->to_string());
    agent::AgentOptions ao;
    ao.node = std::move(node_config);
    ao.node.name = node_name;
    ao.node.internal_ip = node_ip;
    ao.node.hostname = node_name;
    ao.node.kubelet_port = node_api_port;
    ao.node.runtime_version = "podwarp://" PODWARP_VERSION;
    ao.node.kubelet_version = "v1.32.0-podwarp";
    ao.node.cgroup_not_enforced = report->not_enforced;
    // Controllers the root's subtree lacks (a hybrid host binds cpu/memory/pids to v1): pod
    // limits of those kinds are not enforced, and the Node's Ready message says so.
    if (auto have = cgroups->controllers(cgroups->root())) {
      for (auto c : cgroup::kWantedControllers)
        if (!have->contains(std::string(c)))
          ao.node.cgroup_not_enforced.push_back(
              fmt::format("{} (controller not available in cgroup2 at {})", c, cgroups->mount()));
    }
    ao.root_dir = root_dir;
    if (pod_net || service_lb)
      ao.on_nodes = [&pod_net, &lb_on_nodes](const std::vector<const json::value*>& nodes) {
        if (pod_net) pod_net->on_nodes(nodes);
        if (lb_on_nodes) lb_on_nodes(nodes);
      };
    node_agent = std::make_unique<agent::NodeAgent>(io.get_executor(), api_client, std::move(ao));
    node_agent->configure(po);
  }
  auto manager = pods::make_pod_manager(io.get_executor(), po, runtime, image_service);
  std::unique_ptr<nodeapi::NodeHttpsServer> https;
  if (!standalone && !tls_cert.empty()) {
    nodeapi::NodeHttpsOptions ho;
    ho.address = node_api_address;
    ho.port = static_cast<std::uint16_t>(node_api_port);
    ho.cert_file = tls_cert;
    ho.key_file = tls_key;
    ho.client_ca_file = client_ca;
    auto h = nodeapi::start_node_https(io.get_executor(), ho, *manager, runtime);
    if (!h) fatal("node API: " + h.error());
    https = std::move(*h);
    node_agent->set_kubelet_port((*https).port());
    log::info("noded: node API on https://{}:{}", node_api_address, (*https).port());
  } else if (!standalone) {
    log::warn("noded: no --tls-cert-file: the node API (logs, exec, port-forward) is not served");
    node_agent->set_kubelet_port(0);
  }

  // --- service LB ---
  // Socket programs on the pods' parent cgroup (noded's own, never the machine's root), maps
  // pinned so that a restart reuses them: the old programs keep serving meanwhile, the new
  // ones are swapped in by attach_cgroup, recover() + the first sync write only differences.
  // tc programs (NodePort from outside the node, egress masquerade) only on
  // --nodeport-interfaces (noded/lb/nodeport_setup.h).
  // Services and EndpointSlices (all namespaces): one informer each, shared by the service LB,
  // the cluster DNS and (Services) the pods' service environment variables; started once all
  // have registered their handlers.
  std::shared_ptr<client::Informer> svc_informer, eps_informer;
  auto informer_of = [&](std::shared_ptr<client::Informer>& inf, const char* group,
                         const char* resource) {
    if (!inf) {
      const api::Resource* res = api::find_resource(group, "v1", resource);
      if (res == nullptr) fatal(fmt::format("{} missing from the resource table", resource));
      client::Config cc = client::Config::from_kubeconfig(*kc);
      cc.user_agent = "podwarp-noded/" PODWARP_VERSION;
      client::Client c(io.get_executor(), cc);
      inf = client::Informer::create(io.get_executor(), c, *res, "");
    }
    return inf;
  };
  auto service_informers = [&] {
    return std::pair{informer_of(svc_informer, "", "services"),
                     informer_of(eps_informer, "discovery.k8s.io", "endpointslices")};
  };
  std::unique_ptr<lb::Datapath> lb_datapath;
  std::unique_ptr<lb::ServiceMap> lb_map;
  std::unique_ptr<lb::ServiceLbSync> lb_sync;
  if (!service_lb && !nodeport_ifaces.empty()) fatal("--nodeport-interfaces needs --service-lb");
  if (service_lb) {
    if (standalone) fatal("--service-lb needs API mode (Services come from the API server)");
    if (auto m = ensure_bpffs(bpf_dir); !m) fatal("service lb: " + m.error().message);
    lb::DatapathOptions lo;
    lo.pin_dir = bpf_dir + "/podwarp-noded/lb";
    auto dp = lb::Datapath::open(lo);
    if (!dp) fatal("service lb: " + dp.error().message);
    lb_datapath = std::move(*dp);
    if (cgroups->root() == cgroups->mount() || cgroups->root().size() <= cgroups->mount().size())
      fatal("service lb: refusing to attach to the machine's root cgroup " + cgroups->root());
    if (auto a = lb_datapath->attach_cgroup(cgroups->root()); !a)
      fatal("service lb: " + a.error().message);
    if (auto pr = lb_datapath->prune_cgroup_links(); !pr)
      log::warn("service lb: {}", pr.error().message);
    lb_map = std::make_unique<lb::ServiceMap>(lb_datapath->maps());
    if (auto r = lb_map->recover(); !r) fatal("service lb: recover: " + r.error().message);
    // Node addresses, NodePort SNAT address, tc programs on --nodeport-interfaces (atomic
    // replace of a previous noded's filters; interfaces it attached and that are no longer
    // named are detached) and egress masquerade for --cluster-cidr.
    lb::NodePortSetupOptions nso;
    nso.interfaces = nodeport_ifaces;
    nso.node_ip = node_ip;
    nso.cluster_cidrs = cluster_cidrs;
    nso.pod_cidr = pod_cidr;
    nso.state_file = root_dir + "/run/lb-tc-interfaces";
    auto nps = lb::setup_nodeport(*lb_datapath, nso);
    if (!nps) fatal("service lb: " + nps.error().message);
    if (!cluster_cidrs.empty() && nodeport_ifaces.empty())
      log::warn("service lb: --cluster-cidr without --nodeport-interfaces: no masquerade");
    if (nps->masquerade)
      lb_on_nodes = [dp = lb_datapath.get(), base = nps->masq_config](
                        const std::vector<const json::value*>& nodes) {
        if (auto r = dp->set_masquerade(lb::with_node_exemptions(base, nodes)); !r)
          log::warn("service lb: masquerade exemptions of the nodes: {}", r.error().message);
      };
    for (const auto& i : nps->detached) log::info("service lb: tc programs removed from {}", i);
    for (const auto& i : nps->attached)
      log::info("service lb: tc programs on {} (masquerade {})", i,
                nps->masquerade ? "on" : "off");
    auto [services, slices] = service_informers();
    lb_sync = std::make_unique<lb::ServiceLbSync>(io.get_executor(), services, slices, *lb_map,
                                                  node_name);
    lb_sync->start();
    log::info("service lb: socket programs on {}, maps in {}, {} frontends recovered",
              cgroups->root(), lo.pin_dir, lb_map->set_count());
  }
  // --- end service LB ---
  // --- network policy ---
  // tc programs on every pod's host veth (attached as the pod network wires it), maps pinned
  // so that a restarted noded's programs take over with the tables intact.
  std::shared_ptr<client::Informer> pods_informer, ns_informer, np_informer;
  if (network_policy) {
    if (auto m = ensure_bpffs(bpf_dir); !m) fatal("network policy: " + m.error().message);
    netpol::DatapathOptions npo;
    npo.pin_dir = bpf_dir + "/podwarp-noded/netpol";
    auto dp = netpol::Datapath::open(npo);
    if (!dp) fatal("network policy: " + dp.error().message);
    np_datapath = std::move(*dp);
    netpol::PolicySyncOptions pso;
    pso.local_endpoints = [&pod_net] {
      std::map<std::uint32_t, std::string> out;
      for (const auto& [ip, uid] : pod_net->pods().ipam().allocations())
        out.emplace(htonl(ip.value), uid);
      return out;
    };
    np_sync = std::make_unique<netpol::PolicySync>(
        io.get_executor(), *np_datapath,
        informer_of(np_informer, "networking.k8s.io", "networkpolicies"),
        informer_of(pods_informer, "", "pods"), informer_of(ns_informer, "", "namespaces"),
        std::move(pso));
    np_sync->start();
    log::info("network policy: tc programs on the pods' veths, maps in {}", npo.pin_dir);
  }
  // --- end network policy ---
  // --- cluster DNS ---
  // Answers for the cluster domain come from this informer cache; other names go to the
  // resolv.conf's nameservers. The address is made local first (dummy link podwarp-dns),
  // recorded in <root-dir>/run/podwarp-dns.link so that `podwarp down` removes that link.
  std::unique_ptr<dns::ClusterRecords> dns_records;
  std::unique_ptr<dns::DnsInformers> dns_informers;
  std::unique_ptr<dns::DnsServer> dns_server;
  if (!cluster_dns.empty()) {
    if (standalone) fatal("--cluster-dns needs API mode (Services come from the API server)");
    auto local = dns::ensure_local_address(cluster_dns);
    if (!local) fatal("cluster dns: " + local.error());
    if (local->on_dummy_link) {
      std::ofstream(root_dir + "/run/podwarp-dns.link") << dns::kDnsLinkName << "\n";
      if (local->created_link)
        log::info("cluster dns: created link {} ({}) with {}/32", dns::kDnsLinkName,
                  local->fallback_kind.empty() ? "dummy" : local->fallback_kind, cluster_dns);
    }
    dns_records = std::make_unique<dns::ClusterRecords>(cluster_domain);
    std::ifstream rin(resolv_conf_path);
    std::stringstream rss;
    rss << rin.rdbuf();
    dns::DnsServerOptions dso;
    dso.address = cluster_dns;
    dso.upstreams = dns::upstreams_from(dns::parse_resolv_conf(rss.str()), {cluster_dns});
    if (dso.upstreams.empty())
      log::warn("cluster dns: no usable nameserver in {}: names outside {} get SERVFAIL",
                resolv_conf_path, cluster_domain);
    auto srv = dns::DnsServer::start(io.get_executor(), dso, *dns_records);
    if (!srv) fatal("cluster dns: " + srv.error());
    dns_server = std::move(*srv);
    auto [services, slices] = service_informers();
    dns_informers = std::make_unique<dns::DnsInformers>(services, slices, *dns_records);
    dns_informers->start();
    log::info("cluster dns: serving {} on {}:53 (udp, tcp), {} upstreams from {}", cluster_domain,
              cluster_dns, dso.upstreams.size(), resolv_conf_path);
  }
  // --- end cluster DNS ---
  if (node_agent) node_agent->set_services(informer_of(svc_informer, "", "services"));
  for (auto* inf : {&svc_informer, &eps_informer, &pods_informer, &ns_informer, &np_informer})
    if (*inf) (*inf)->start();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::unique_ptr<nodeapi::NodeApiServer> api;
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    // Pods keep running: the next noded re-adopts them (kubelet semantics).
    log::info("noded: signal {}: exiting; pods keep running and are re-adopted on restart", sig);
    if (api) api->stop();
    ::unlink(api_socket.c_str());
    if (cri_server) cri_server->stop();  // CRI
    finish(0);
  });
  auto server = nodeapi::start_node_api(io.get_executor(), {.socket_path = api_socket}, *manager);
  if (!server) fatal("local API on " + api_socket + ": " + server.error());
  api = std::move(*server);
  // Image GC: when the root's filesystem is fuller than the threshold, remove the images no
  // pod names (the kubelet frees down to a low threshold image by image, LRU first; the store
  // removes every unused image at once).
  asio::steady_timer gc_timer(io);
  std::function<void()> arm_gc = [&] {
    gc_timer.expires_after(std::chrono::seconds(std::max<std::int64_t>(1, gc_period_s)));
    gc_timer.async_wait([&](boost::system::error_code e) {
      if (e) return;
      struct statvfs v {};
      if (gc_high < 100 && ::statvfs((*store)->dir().c_str(), &v) == 0 && v.f_blocks > 0) {
        double used =
            100.0 * static_cast<double>(v.f_blocks - v.f_bavail) / static_cast<double>(v.f_blocks);
        if (used >= gc_high) {
          std::set<std::string> in_use;
          const json::value pods = manager->pod_list();  // (not a temporary in the for-range)
          const json::value* items = find_path(pods, {"items"});
          static const json::array kNone;
          for (const auto& pod :
               items != nullptr && items->is_array() ? items->as_array() : kNone) {
            for (const char* kind : {"containers", "initContainers"}) {
              const auto* list = find_path(pod, {"spec", kind});
              if (list == nullptr || !list->is_array()) continue;
              for (const auto& c : list->as_array())
                in_use.insert(std::string(get_string(c, {"image"})));
            }
          }
          if (cri_server) in_use.merge(cri_server->images_in_use());  // CRI containers' images
          auto r = (*store)->gc(in_use);
          if (!r) {
            log::warn("noded: image gc: {}", r.error().message);
          } else if (!r->removed_images.empty() || r->removed_blobs > 0) {
            log::info(
                "noded: image gc ({:.0f}% used >= {}%): removed {} images, {} blobs, {} "
                "layers, {} bytes",
                used, gc_high, r->removed_images.size(), r->removed_blobs, r->removed_layers,
                r->freed_bytes);
          }
        }
      }
      arm_gc();
    });
  };
  arm_gc();
  runtime.release_orphan_rootfs();
  manager->start();
  if (node_agent) {
    node_agent->start(*manager);
    log::info("noded: API mode, node {} ({}), server {}, root {}, local API {}", node_name, node_ip,
              kc->server, root_dir, api_socket);
  } else {
    log::info("noded: standalone, manifests {}, root {}, API {}", manifest_dir, root_dir, api_socket);
  }
  try {
    io.run();
  } catch (const std::exception& e) {
    fatal(std::string("event loop: ") + e.what());
  }
  finish(0);
}
