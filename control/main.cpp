// podwarp-control: apiserver (+ scheduler and controllers, in later components) in one
// process over etcd v3.
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <pthread.h>
#include <signal.h>

#include <cctype>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <iostream>
#include <thread>

#include "apiserver/api.h"
#include "apiserver/etcd_metrics.h"
#include "apiserver/node_credentials.h"
#include "apiserver/server.h"
#include "apiserver/service_allocator.h"
#include "apiserver/tokens.h"
#include "apiserver/watch_cache.h"
#include "manager/components.h"
#include "podwarp/kubeconfig.h"
#include "podwarp/log.h"
#include "podwarp/netaddr.h"
#include "podwarp/pki.h"
#include "schema/schema.h"
#include "storage/etcd_client.h"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace podwarp;

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Compacts etcd history every interval to the revision seen one interval earlier, as
// upstream's apiserver does, so that etcd does not grow without bound.
asio::awaitable<void> compaction_loop(storage::EtcdClient& etcd, std::chrono::seconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::int64_t previous = 0;
  while (true) {
    timer.expires_after(interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    if (previous > 0) {
      auto r = co_await etcd.compact(previous);
      if (!r && r.error().code != storage::StorageErrc::kCompacted) {
        log::warn("etcd compaction at {}: {}", previous, r.error().message);
      }
    }
    const storage::RangeOptions count_only{.count_only = true};
    auto head = co_await etcd.range("/registry/", count_only);
    if (head) previous = head->revision;
  }
}

// A Go duration as the upstream flags take it: "40s", "2m", "1m30s", "500ms", "1h".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total_ms = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return std::nullopt;
    double value = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
    s.remove_prefix(i);
    std::size_t j = 0;
    while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
    std::string_view unit = s.substr(0, j);
    s.remove_prefix(j);
    double scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60'000;
    else if (unit == "h") scale = 3'600'000;
    else return std::nullopt;
    total_ms += value * scale;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(total_ms));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"podwarp-control: the podwarp control plane (apiserver, scheduler, controllers)"};
  std::string etcd_servers = "http://127.0.0.1:2379";
  std::string data_dir = "/var/lib/podwarp/control";
  std::string bind_address = "127.0.0.1";
  int secure_port = 6443;
  std::string service_range = "10.96.0.0/12";
  std::string components = "apiserver,scheduler,controllers";
  std::string token_file;
  std::string advertise_address;
  std::string node_port_range = "30000-32767";
  std::string log_level = "info";
  std::vector<std::string> extra_sans;
  int compaction_interval = 300;
  // Connection threads pay for their hand-offs to the API thread (wake-ups, context switches:
  // ~15% of podwarp-control's CPU per create) only with cores to spare: on a 2-core machine,
  // which etcd shares, everything on the API thread costs less (docs/benchmarks.md, session 14).
  unsigned worker_threads = std::thread::hardware_concurrency() <= 2 ? 0 : 2;
  std::string kubeconfig_path;
  bool leader_elect = true;
  std::string lease_duration = "15s", renew_deadline = "10s", retry_period = "2s";
  std::string cluster_cidr = "10.244.0.0/16";
  int node_cidr_mask_size = 24;
  std::string node_monitor_grace_period = "40s", node_monitor_period = "5s";
  app.add_option("--etcd-servers", etcd_servers, "etcd endpoints, comma separated");
  app.add_option("--data-dir", data_dir, "where the CA, certificates and admin.kubeconfig live");
  app.add_option("--bind-address", bind_address, "address to serve HTTPS on");
  app.add_option("--secure-port", secure_port, "HTTPS port; 0 picks a free one and prints it");
  app.add_option("--service-cluster-ip-range", service_range, "CIDR of ClusterIPs");
  app.add_option("--service-node-port-range", node_port_range, "NodePort range, e.g. 30000-32767");
  app.add_option("--components", components, "which of apiserver,scheduler,controllers to run");
  app.add_option("--token-auth-file", token_file, "CSV of bearer tokens: token,user,uid,\"groups\"");
  app.add_option("--advertise-address", advertise_address, "address of the kubernetes Service's endpoints (default: --bind-address; for 0.0.0.0 the address of the default route's interface)");
  app.add_option("--tls-san", extra_sans, "extra subject alternative names for the serving cert");
  app.add_option("--etcd-compaction-interval", compaction_interval, "seconds; 0 disables");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  int http2_max_streams = 1000;
  app.add_option("--http2-max-streams-per-connection", http2_max_streams,
                 "the limit the server gives HTTP/2 clients for concurrent streams on one connection")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--worker-threads", worker_threads,
                 "threads for TLS, HTTP and watch streaming (0: all on the API thread; default 0 "
                 "on machines with up to 2 CPUs, else 2)");
  app.add_option("--kubeconfig", kubeconfig_path,
                 "API server of the scheduler and controllers when this process runs no apiserver");
  app.add_option("--leader-elect", leader_elect,
                 "elect one leader of the scheduler and of the controllers through Leases");
  app.add_option("--leader-elect-lease-duration", lease_duration, "e.g. 15s");
  app.add_option("--leader-elect-renew-deadline", renew_deadline, "e.g. 10s");
  app.add_option("--leader-elect-retry-period", retry_period, "e.g. 2s");
  app.add_option("--cluster-cidr", cluster_cidr, "CIDR from which nodes get spec.podCIDR");
  app.add_option("--node-cidr-mask-size", node_cidr_mask_size, "prefix length of a node's podCIDR");
  app.add_option("--node-monitor-grace-period", node_monitor_grace_period,
                 "time without a node heartbeat before its Ready condition becomes Unknown");
  app.add_option("--node-monitor-period", node_monitor_period, "how often nodes are checked");
  // `podwarp-control node-credentials`: writes a joining node's certificates and kubeconfig,
  // then exits (no server).
  std::string nc_node_name, nc_out;
  std::vector<std::string> nc_node_ips;
  CLI::App* node_credentials = app.add_subcommand(
      "node-credentials",
      "write ca.crt, node.kubeconfig and kubelet.crt/.key for a node into --out, then exit");
  node_credentials->fallthrough();  // --data-dir is the main command's option
  node_credentials->add_option("--node-name", nc_node_name, "the node's name")->required();
  node_credentials->add_option("--node-ip", nc_node_ips,
                               "an address of the node API (repeatable), a SAN of kubelet.crt");
  node_credentials->add_option("--out", nc_out, "folder to write the files into")->required();
  CLI11_PARSE(app, argc, argv);
  log::set_level(log_level);
  if (node_credentials->parsed()) {
    fs::path admin_kc = fs::path(data_dir) / "admin.kubeconfig";
    auto kc = kubeconfig::load(admin_kc);
    if (!kc) {
      std::cerr << "podwarp-control node-credentials: " << kc.error()
                << " (start podwarp-control with this --data-dir once first)\n";
      return 1;
    }
    apiserver::NodeCredentialsOptions nc;
    nc.pki_dir = fs::path(data_dir) / "pki";
    nc.server = kc->server;
    nc.node_name = nc_node_name;
    nc.node_ips = nc_node_ips;
    nc.out = nc_out;
    for (const std::string& ip : nc_node_ips) {
      if (!apiserver::Ipv4Range::parse_ip(ip) && ip.find(':') == std::string::npos) {
        std::cerr << "podwarp-control node-credentials: --node-ip: not an IP address: " << ip << "\n";
        return 2;
      }
    }
    if (auto w = apiserver::write_node_credentials(nc); !w) {
      std::cerr << "podwarp-control node-credentials: " << w.error() << "\n";
      return 1;
    }
    std::printf("wrote %s/{ca.crt,node.kubeconfig,kubelet.crt,kubelet.key} for node %s\n",
                nc_out.c_str(), nc_node_name.c_str());
    return 0;
  }
  // Every watch holds a connection: allow as many descriptors as the hard limit does.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }

  try {
    schema::load();  // a defect in the built-in schema fails here, not on first use
  } catch (const std::exception& e) {
    std::cerr << "podwarp-control: schema: " << e.what() << "\n";
    return 1;
  }

  auto comps = split(components, ',');
  for (const std::string& c : comps) {
    if (c != "apiserver" && c != "scheduler" && c != "controllers") {
      std::cerr << "podwarp-control: --components: unknown component \"" << c << "\"\n";
      return 2;
    }
  }
  auto has = [&](std::string_view c) { return std::find(comps.begin(), comps.end(), c) != comps.end(); };
  const bool run_apiserver = has("apiserver");
  manager::ComponentOptions comp_opts;
  comp_opts.scheduler = has("scheduler");
  comp_opts.controllers = has("controllers");
  comp_opts.leader_elect = leader_elect;
  {
    auto d_lease = parse_duration(lease_duration), d_renew = parse_duration(renew_deadline),
         d_retry = parse_duration(retry_period), d_grace = parse_duration(node_monitor_grace_period),
         d_period = parse_duration(node_monitor_period);
    if (!d_lease || !d_renew || !d_retry || !d_grace || !d_period) {
      std::cerr << "podwarp-control: invalid duration in --leader-elect-* or --node-monitor-* "
                   "(use e.g. 15s, 500ms, 1m)\n";
      return 2;
    }
    if (*d_renew >= *d_lease || *d_retry >= *d_renew) {
      std::cerr << "podwarp-control: need retry period < renew deadline < lease duration\n";
      return 2;
    }
    comp_opts.election.lease_duration = *d_lease;
    comp_opts.election.renew_deadline = *d_renew;
    comp_opts.election.retry_period = *d_retry;
    comp_opts.controller_options.cluster_cidr = cluster_cidr;
    comp_opts.controller_options.node_cidr_mask_size = node_cidr_mask_size;
    comp_opts.controller_options.node_monitor_grace_period =
        std::chrono::duration_cast<std::chrono::seconds>(*d_grace);
    comp_opts.controller_options.node_monitor_period =
        std::max(std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(*d_period));
  }
  std::unique_ptr<manager::ControlComponents> components_runner;
  if (!run_apiserver) {
    // Scheduler and/or controllers against a remote apiserver.
    if (kubeconfig_path.empty() || (!comp_opts.scheduler && !comp_opts.controllers)) {
      std::cerr << "podwarp-control: without the apiserver component, give --kubeconfig and "
                   "scheduler and/or controllers in --components\n";
      return 2;
    }
    auto kc = kubeconfig::load(kubeconfig_path);
    if (!kc) {
      std::cerr << "podwarp-control: --kubeconfig: " << kc.error() << "\n";
      return 1;
    }
    components_runner = std::make_unique<manager::ControlComponents>(
        client::Config::from_kubeconfig(*kc), comp_opts);
    components_runner->start();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
    log::info("signal {}: shutting down", sig);
    spdlog::shutdown();
    _exit(0);
  }
  int port_min = 30000;
  int port_max = 32767;
  if (std::sscanf(node_port_range.c_str(), "%d-%d", &port_min, &port_max) != 2 ||
      port_min < 1 || port_max > 65535 || port_min > port_max) {
    std::cerr << "podwarp-control: --service-node-port-range: invalid \"" << node_port_range << "\"\n";
    return 2;
  }
  if (auto r = apiserver::Ipv4Range::parse(service_range); !r) {
    std::cerr << "podwarp-control: --service-cluster-ip-range: " << r.error() << "\n";
    return 2;
  }

  // Certificates and the admin kubeconfig.
  std::error_code fec;
  fs::create_directories(data_dir, fec);
  if (fec) {
    std::cerr << "podwarp-control: create " << data_dir << ": " << fec.message() << "\n";
    return 1;
  }
  fs::path pki_dir = fs::path(data_dir) / "pki";
  auto ca = pki::ensure_ca(pki_dir);
  if (!ca) {
    std::cerr << "podwarp-control: " << ca.error() << "\n";
    return 1;
  }
  pki::SubjectAltNames sans;
  sans.dns = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
              "kubernetes.default.svc.cluster.local"};
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0] != '\0') sans.dns.emplace_back(host);
  sans.ips = {"127.0.0.1"};
  auto range = apiserver::Ipv4Range::parse(service_range);
  sans.ips.push_back(apiserver::Ipv4Range::format(range->base + 1));
  if (bind_address != "0.0.0.0" && bind_address != "127.0.0.1" && bind_address != "::") {
    sans.ips.push_back(bind_address);
  }
  // Upstream's default: the bind address, or with a wildcard bind the address of the host's
  // default interface, so that the kubernetes Service's endpoint is one pods can reach.
  if (advertise_address.empty()) {
    if (bind_address != "0.0.0.0" && bind_address != "::") {
      advertise_address = bind_address;
    } else {
      advertise_address = netaddr::default_route_ipv4();
      if (advertise_address.empty()) {
        log::warn("no IPv4 default route to take --advertise-address from: advertising 127.0.0.1");
        advertise_address = "127.0.0.1";
      }
    }
  }
  if (advertise_address != "127.0.0.1" && advertise_address != bind_address) {
    sans.ips.push_back(advertise_address);
  }
  for (const std::string& s : extra_sans) {
    if (apiserver::Ipv4Range::parse_ip(s)) {
      sans.ips.push_back(s);
    } else {
      sans.dns.push_back(s);
    }
  }
  auto serving = pki::ensure_serving_cert(pki_dir, sans);
  if (!serving) {
    std::cerr << "podwarp-control: " << serving.error() << "\n";
    return 1;
  }
  std::vector<std::string> admin_groups = {"system:masters"};
  auto admin = pki::ensure_client_cert(pki_dir, "admin", "kubernetes-admin", admin_groups);
  if (!admin) {
    std::cerr << "podwarp-control: " << admin.error() << "\n";
    return 1;
  }

  if (auto k = apiserver::ensure_kubelet_client_cert(pki_dir); !k) {
    std::cerr << "podwarp-control: " << k.error() << "\n";
    return 1;
  }

  auto token_issuer = apiserver::TokenIssuer::load(pki_dir);
  if (!token_issuer) {
    std::cerr << "podwarp-control: service account key: " << token_issuer.error() << "\n";
    return 1;
  }

  asio::io_context io(1);
  auto etcd_client = storage::make_etcd_client(io.get_executor(), split(etcd_servers, ','));
  // Every request to etcd is timed for upstream's etcd_request_duration_seconds.
  apiserver::MeasuredEtcdClient etcd(*etcd_client);
  apiserver::WatchCache cache(io.get_executor(), etcd, "/registry/");
  apiserver::ApiOptions api_opts;
  api_opts.service_cluster_ip_range = service_range;
  api_opts.node_port_min = port_min;
  api_opts.node_port_max = port_max;
  api_opts.tokens = *token_issuer;
  api_opts.advertise_address = advertise_address;
  api_opts.scheduler = comp_opts.scheduler;
  api_opts.controllers = comp_opts.controllers;
  apiserver::ServerOptions srv_opts;
  srv_opts.bind_address = bind_address;
  srv_opts.port = static_cast<std::uint16_t>(secure_port);
  srv_opts.cert_file = pki::cert_path(pki_dir, "apiserver").string();
  srv_opts.key_file = pki::key_path(pki_dir, "apiserver").string();
  srv_opts.client_ca_file = pki::cert_path(pki_dir, "ca").string();
  srv_opts.token_file = token_file;
  srv_opts.tokens = *token_issuer;
  srv_opts.kubelet_client_cert_file = pki::cert_path(pki_dir, "apiserver-kubelet-client").string();
  srv_opts.kubelet_client_key_file = pki::key_path(pki_dir, "apiserver-kubelet-client").string();
  srv_opts.kubelet_ca_file = pki::cert_path(pki_dir, "ca").string();
  srv_opts.workers = worker_threads;
  srv_opts.http2_max_streams = static_cast<std::uint32_t>(http2_max_streams);

  std::unique_ptr<apiserver::Api> api;
  std::unique_ptr<apiserver::ApiServer> server;
  int exit_code = 0;

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    log::info("signal {}: shutting down", sig);
    if (server) server->stop();
    io.stop();
  });

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Load the cache, listen, bootstrap the system objects, then serve.
        // etcd may still be coming up (or the machine is loaded): retry for a minute, as the
        // upstream apiserver waits for its storage, before giving up.
        auto started = co_await cache.start();
        for (int attempt = 1; !started && attempt < 60; ++attempt) {
          log::warn("etcd at {} not ready ({}); retrying", etcd_servers, started.error().message);
          asio::steady_timer pause(io, std::chrono::seconds(1));
          co_await pause.async_wait(asio::use_awaitable);
          started = co_await cache.start();
        }
        if (!started) {
          log::error("cannot load state from etcd at {}: {}", etcd_servers, started.error().message);
          exit_code = 1;
          io.stop();
          co_return;
        }
        api = std::make_unique<apiserver::Api>(io.get_executor(), etcd, cache, api_opts);
        server = std::make_unique<apiserver::ApiServer>(io, *api, srv_opts);
        auto port = server->listen();
        if (!port) {
          log::error("{}", port.error());
          exit_code = 1;
          io.stop();
          co_return;
        }
        // The bound port goes into the kubernetes service's Endpoints.
        api->set_secure_port(*port);
        std::string host_for_url = bind_address == "0.0.0.0" ? "127.0.0.1" : bind_address;
        server->discovery_options().server_address = fmt::format("{}:{}", host_for_url, *port);
        co_await api->bootstrap();
        kubeconfig::Config kc;
        kc.server = fmt::format("https://{}:{}", host_for_url, *port);
        kc.ca_pem = *pki::read_file(pki::cert_path(pki_dir, "ca"));
        kc.client_cert_pem = *pki::read_file(pki::cert_path(pki_dir, "admin"));
        kc.client_key_pem = *pki::read_file(pki::key_path(pki_dir, "admin"));
        fs::path kc_path = fs::path(data_dir) / "admin.kubeconfig";
        if (auto w = kubeconfig::write(kc_path, kc); !w) log::error("{}", w.error());
        server->set_ready(true);
        if (comp_opts.scheduler || comp_opts.controllers) {
          components_runner = std::make_unique<manager::ControlComponents>(
              client::Config::from_kubeconfig(kc), comp_opts);
          components_runner->start();
        }
        std::printf("podwarp-control: serving on https://%s:%u (kubeconfig %s)\n",
                    host_for_url.c_str(), *port, kc_path.c_str());
        std::fflush(stdout);
        if (compaction_interval > 0) {
          asio::co_spawn(io, compaction_loop(etcd, std::chrono::seconds(compaction_interval)),
                         asio::detached);
        }
        co_await server->run();
      },
      [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("podwarp-control: {}", ex.what());
        }
      });
  io.run();
  if (server) server->stop();  // joins the connection threads
  // Leave without destroying io_contexts that still hold pending socket operations (Boost
  // 1.81's io_uring backend frees them unsafely); etcd holds all state, nothing to flush
  // but the logs.
  spdlog::shutdown();
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(exit_code);
}
