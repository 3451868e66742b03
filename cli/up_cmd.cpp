// `podwarp up` / `podwarp down` (see up_cmd.h for the layout and the contract).
#include "up_cmd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>   // --- service LB --- (podwarp down: RTM_DELTFILTER)
#include <linux/magic.h>
#include <linux/pkt_sched.h>  // --- service LB ---
#include <linux/netlink.h>   // --- cluster DNS --- (podwarp down: RTM_DELLINK)
#include <linux/rtnetlink.h>  // --- cluster DNS ---
#include <net/if.h>           // --- cluster DNS ---
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fmt/core.h>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_sync.h"
#include "storage/etcd_process.h"  // header only: the etcd flags podwarp uses

namespace podwarp::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct UpOptions {
  std::string data_dir = "/var/lib/podwarp";
  int port = 0;           // 0: 6443 when free, else a free port
  // podwarp-control --bind-address. 0.0.0.0 as kube-apiserver's default: it then advertises the
  // default route's address, which pods reach through the kubernetes Service (10.96.0.1:443);
  // 127.0.0.1 keeps the API on loopback, where no pod can reach it.
  std::string bind_address = "0.0.0.0";
  int node_api_port = 0;  // 0: 10250 when free, else a free port
  int registry_port = 0;  // 0: 5000 when free, else a free port
  std::string node_name;
  bool no_node = false;
  bool no_registry = false;
  int timeout_s = 180;
  bool service_lb = true;  // --- service LB --- noded --service-lb (--service-lb=false: off)
  std::string nodeport_interfaces;  // noded --nodeport-interfaces (tc NodePort + masquerade)
  std::string cluster_dns = "169.254.20.10";  // --- cluster DNS --- noded --cluster-dns ("": off)
  std::string pod_network = "routed";  // noded --pod-network: routed (veth + /32 per pod) or none
  bool network_policy = true;  // noded --network-policy (with the routed pod network)
  bool cri = true;              // noded --cri-socket <data>/run/cri.sock
  std::string eviction_hard;           // noded --eviction-hard ("": the kubelet's defaults)
};

struct DownOptions {
  std::string data_dir = "/var/lib/podwarp";
  bool keep_data = false;
  bool purge = false;
};

struct Layout {
  fs::path data;
  fs::path up() const { return data / "up"; }
  fs::path log() const { return data / "log"; }
  fs::path pidfile(std::string_view name) const { return up() / (std::string(name) + ".pid"); }
  fs::path kubeconfig() const { return data / "control" / "admin.kubeconfig"; }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool write_file(const fs::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::trunc);
  out << content << "\n";
  return static_cast<bool>(out);
}

std::optional<pid_t> running_pid(const Layout& l, std::string_view name) {
  std::string s = read_file(l.pidfile(name));
  if (s.empty()) return std::nullopt;
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(s));
  } catch (...) {
    return std::nullopt;
  }
  if (pid <= 1 || ::kill(pid, 0) != 0) return std::nullopt;
  // A recycled pid is not ours: check the command name against what we started.
  std::string comm = read_file(fs::path("/proc") / std::to_string(pid) / "cmdline");
  std::string want = read_file(l.up() / (std::string(name) + ".cmd"));
  if (!want.empty() && comm.find(want) == std::string::npos) return std::nullopt;
  return pid;
}

// Whether a process we recorded still runs: our own child is reaped when it has exited (a
// zombie would still answer kill(pid, 0)); other processes (from an earlier up) are checked
// with running_pid() by the caller.
bool process_alive(pid_t pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == 0) return true;     // our child, running
  if (r == pid) return false;  // our child, exited
  return ::kill(pid, 0) == 0;  // not our child
}

std::function<bool()> alive_check(const Layout& l, std::string_view name) {
  std::string s = read_file(l.pidfile(name));
  pid_t pid = s.empty() ? -1 : static_cast<pid_t>(std::atol(s.c_str()));
  return [pid] { return pid > 1 && process_alive(pid); };
}

// A port the kernel says is free on loopback (never 8080/2024: the kernel picks ephemeral ones).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

bool port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// GET http://127.0.0.1:port/path; the status line and body, or "" when nothing answered.
std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// This binary's folder (build/bin), where podwarp-control and podwarp-noded are.
fs::path bin_dir() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).parent_path();
}

std::string find_in_path(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

// Starts argv in its own session with stdout+stderr appended to `log`, records its pid.
std::optional<pid_t> spawn(const Layout& l, std::string_view name,
                           const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  write_file(l.pidfile(name), std::to_string(pid));
  write_file(l.up() / (std::string(name) + ".cmd"), fs::path(argv[0]).filename().string());
  return pid;
}

// Runs argv to completion; its output goes to `log`. The exit code, or -1.
int run(const std::vector<std::string>& argv, const fs::path& log) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool wait_for(const std::function<bool()>& ok, std::chrono::seconds timeout,
              const std::function<bool()>& still_alive = {}) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (ok()) return true;
    if (still_alive && !still_alive()) return false;
    std::this_thread::sleep_for(100ms);
  }
  return ok();
}

std::string tail(const fs::path& log, std::size_t lines = 15) {
  std::string all = read_file(log);
  std::size_t pos = all.size();
  for (std::size_t n = 0; n < lines && pos > 0; ++n) {
    pos = all.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return all.substr(pos);
}

// Stops a recorded process: SIGTERM, then SIGKILL after `grace`.
void stop(const Layout& l, std::string_view name, std::chrono::seconds grace = 10s) {
  auto pid = running_pid(l, name);
  std::error_code ec;
  if (pid) {
    ::kill(*pid, SIGTERM);
    if (!wait_for([&] { return ::kill(*pid, 0) != 0; }, grace)) ::kill(*pid, SIGKILL);
    wait_for([&] { return ::kill(*pid, 0) != 0; }, 5s);
    std::cout << "stopped " << name << " (pid " << *pid << ")\n";
  }
  fs::remove(l.pidfile(name), ec);
}

// The Node's Ready condition status ("True", "False", "Unknown") or "" if there is no node.
std::string node_ready(const fs::path& kubeconfig, const std::string& node) {
  auto got = get_object(kubeconfig, *api::find_resource("", "v1", "nodes"), "", node);
  if (!got) return {};
  const json::value* conds = find_path(*got, {"status", "conditions"});
  if (conds == nullptr || !conds->is_array()) return {};
  for (const auto& cnd : conds->as_array())
    if (get_string(cnd, {"type"}) == "Ready") return std::string(get_string(cnd, {"status"}));
  return {};
}

// --- local-path storage --- The default StorageClass "local-path" (the persistentvolume-binder
// of podwarp-control provisions its claims as hostPath directories under <data>/storage on the
// node a claim's first pod runs on), unless a class of that name exists. Returns an error.
std::string ensure_local_path_class(const fs::path& kubeconfig, const fs::path& data) {
  const api::Resource& classes = *api::find_resource("storage.k8s.io", "v1", "storageclasses");
  auto got = get_object(kubeconfig, classes, "", "local-path");
  if (got) return {};
  if (got.error().find("NotFound") == std::string::npos &&
      got.error().find("not found") == std::string::npos) {
    return got.error();
  }
  std::error_code ec;
  fs::create_directories(data / "storage", ec);
  json::value sc = json::object{
      {"apiVersion", "storage.k8s.io/v1"},
      {"kind", "StorageClass"},
      {"metadata",
       json::object{{"name", "local-path"},
                    {"annotations",
                     json::object{{"storageclass.kubernetes.io/is-default-class", "true"}}}}},
      {"provisioner", "podwarp.io/local-path"},
      {"parameters", json::object{{"path", (data / "storage").string()}}},
      {"reclaimPolicy", "Delete"},
      {"volumeBindingMode", "WaitForFirstConsumer"}};
  auto made = create_object(kubeconfig, classes, "", std::move(sc));
  if (!made && made.error().find("AlreadyExists") == std::string::npos &&
      made.error().find("already exists") == std::string::npos) {
    return made.error();
  }
  return {};
}

std::string cluster_hash(const fs::path& data) {
  std::size_t h = std::hash<std::string>{}(data.string());
  return fmt::format("{:08x}", static_cast<std::uint32_t>(h ^ (h >> 32)));
}

int up(const UpOptions& o) {
  Layout l{fs::absolute(o.data_dir).lexically_normal()};
  std::error_code ec;
  for (const char* d : {"", "up", "log", "log/pods", "etcd", "control", "registry"})
    fs::create_directories(l.data / d, ec);
  if (ec) {
    std::cerr << "podwarp up: create " << l.data << ": " << ec.message() << "\n";
    return 1;
  }
  const fs::path bin = bin_dir();
  const std::string id = cluster_hash(l.data);
  std::string node = o.node_name;
  if (node.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node = host;
    std::transform(node.begin(), node.end(), node.begin(), ::tolower);
  }
  const auto timeout = std::chrono::seconds(o.timeout_s);

  // etcd
  std::string etcd_bin = find_in_path("etcd");
  if (etcd_bin.empty()) {
    std::cerr << "podwarp up: etcd not found in PATH (scripts/deps.sh installs it)\n";
    return 1;
  }
  int etcd_port = 0;
  if (auto p = running_pid(l, "etcd")) {
    etcd_port = std::atoi(read_file(l.up() / "etcd.port").c_str());
  } else {
    etcd_port = free_port();
    int peer = free_port();
    while (peer == etcd_port) peer = free_port();
    std::string client = fmt::format("http://127.0.0.1:{}", etcd_port);
    std::string peer_url = fmt::format("http://127.0.0.1:{}", peer);
    write_file(l.up() / "etcd.port", std::to_string(etcd_port));
    std::vector<std::string> argv{etcd_bin, "--name", "podwarp", "--data-dir", (l.data / "etcd").string(),
                                  "--listen-client-urls", client, "--advertise-client-urls", client,
                                  "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls",
                                  peer_url, "--initial-cluster", "podwarp=" + peer_url,
                                  std::string(storage::kEtcdBackendBatchLimit)};
    if (!spawn(l, "etcd", argv, l.log() / "etcd.log")) return 1;
  }
  if (!wait_for([&] { return http_get(etcd_port, "/health").find("\"true\"") != std::string::npos; },
                timeout, alive_check(l, "etcd"))) {
    std::cerr << "podwarp up: etcd did not become healthy:\n" << tail(l.log() / "etcd.log");
    return 1;
  }
  std::cout << "etcd: http://127.0.0.1:" << etcd_port << "\n";

  // podwarp-control
  const fs::path control_log = l.log() / "control.log";
  if (!running_pid(l, "control")) {
    int port = o.port;
    if (port == 0) port = port_free(6443) ? 6443 : free_port();
    std::ofstream(control_log, std::ios::trunc);  // "serving on" below is this run's
    std::vector<std::string> argv{(bin / "podwarp-control").string(), "--etcd-servers",
                                  fmt::format("http://127.0.0.1:{}", etcd_port), "--data-dir",
                                  (l.data / "control").string(), "--bind-address", o.bind_address,
                                  "--secure-port", std::to_string(port)};
    if (!spawn(l, "control", argv, control_log)) return 1;
  }
  if (!wait_for([&] { return read_file(control_log).find("serving on") != std::string::npos; },
                timeout, alive_check(l, "control"))) {
    std::cerr << "podwarp up: podwarp-control did not come up:\n" << tail(control_log);
    return 1;
  }
  std::cout << "podwarp-control: " << l.kubeconfig().string() << "\n";
  if (std::string err = ensure_local_path_class(l.kubeconfig(), l.data); !err.empty()) {
    std::cerr << "podwarp up: StorageClass local-path: " << err << "\n";  // --- local-path ---
    return 1;
  }

  // registry
  int registry_port = 0;
  if (!o.no_registry) {
    std::string reg_bin = find_in_path("docker-registry");
    if (reg_bin.empty()) {
      std::cerr << "podwarp up: docker-registry not found (scripts/deps.sh installs it)\n";
      return 1;
    }
    if (running_pid(l, "registry")) {
      registry_port = std::atoi(read_file(l.up() / "registry.port").c_str());
    } else {
      registry_port = o.registry_port != 0 ? o.registry_port : port_free(5000) ? 5000 : free_port();
      write_file(l.up() / "registry.port", std::to_string(registry_port));
      write_file(l.up() / "registry.yml",
                 fmt::format("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    "
                             "rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: "
                             "127.0.0.1:{}\n",
                             (l.data / "registry").string(), registry_port));
      std::vector<std::string> argv{reg_bin, "serve", (l.up() / "registry.yml").string()};
      if (!spawn(l, "registry", argv, l.log() / "registry.log")) return 1;
    }
    if (!wait_for([&] { return http_get(registry_port, "/v2/").find(" 200 ") != std::string::npos; },
                  timeout, alive_check(l, "registry"))) {
      std::cerr << "podwarp up: the registry did not come up:\n" << tail(l.log() / "registry.log");
      return 1;
    }
    // The test images (busybox, busybox:httpd), when the script is beside the build.
    fs::path script = bin.parent_path().parent_path() / "scripts" / "make-test-images.sh";
    bool have = http_get(registry_port, "/v2/podwarp/busybox/manifests/httpd").find(" 200 ") !=
                std::string::npos;
    if (!have && fs::exists(script)) {
      std::vector<std::string> argv{"/bin/bash", script.string(), (l.up() / "test-images").string(),
                                    "--push", fmt::format("127.0.0.1:{}", registry_port)};
      if (run(argv, l.log() / "test-images.log") != 0)
        std::cerr << "podwarp up: building the test images failed (see "
                  << (l.log() / "test-images.log").string() << "); continuing\n";
    }
    std::cout << "registry: 127.0.0.1:" << registry_port << "\n";
  }

  if (o.no_node) return 0;
  // The node's credentials, issued by podwarp-control from the cluster CA.
  fs::path node_pki = l.data / "node-pki";
  {
    std::vector<std::string> argv{(bin / "podwarp-control").string(), "node-credentials",
                                  "--data-dir", (l.data / "control").string(), "--node-name", node,
                                  "--node-ip", "127.0.0.1", "--out", node_pki.string()};
    if (run(argv, l.log() / "node-credentials.log") != 0) {
      std::cerr << "podwarp up: node credentials:\n" << tail(l.log() / "node-credentials.log");
      return 1;
    }
  }
  if (!running_pid(l, "noded")) {
    int node_port = o.node_api_port != 0 ? o.node_api_port : port_free(10250) ? 10250 : free_port();
    std::vector<std::string> argv{(bin / "podwarp-noded").string(),
                                  "--kubeconfig", (node_pki / "node.kubeconfig").string(),
                                  "--node-name", node,
                                  "--node-ip", "127.0.0.1",
                                  "--node-api-port", std::to_string(node_port),
                                  "--tls-cert-file", (node_pki / "kubelet.crt").string(),
                                  "--tls-private-key-file", (node_pki / "kubelet.key").string(),
                                  "--client-ca-file", (node_pki / "ca.crt").string(),
                                  "--root-dir", l.data.string(),
                                  "--cgroup-root", "podwarp-" + id,
                                  "--pod-log-dir", (l.log() / "pods").string(),
                                  "--bpf-dir", "/sys/fs/bpf/podwarp-" + id};
    if (registry_port != 0) {
      argv.push_back("--insecure-registry");
      argv.push_back(fmt::format("127.0.0.1:{}", registry_port));
    }
    if (o.service_lb) argv.push_back("--service-lb");  // --- service LB ---
    if (o.service_lb && !o.nodeport_interfaces.empty()) {
      // NodePort for clients on other hosts and egress masquerade of the pods (the control
      // plane's default --cluster-cidr) on these interfaces of this machine.
      argv.push_back("--nodeport-interfaces");
      argv.push_back(o.nodeport_interfaces);
      argv.push_back("--cluster-cidr");
      argv.push_back("10.244.0.0/16");
    }
    argv.push_back("--pod-network");
    argv.push_back(o.pod_network);
    if (o.network_policy && o.pod_network == "routed") argv.push_back("--network-policy");
    if (o.cri) {  // --- CRI --- (a unix socket path has at most 107 bytes)
      std::string sock = (l.data / "run" / "cri.sock").string();
      if (sock.size() < 108) {
        argv.push_back("--cri-socket");
        argv.push_back(sock);
      } else {
        std::cerr << "podwarp up: " << sock << " is too long for a unix socket; no CRI socket\n";
      }
    }
    if (!o.eviction_hard.empty()) {
      argv.push_back("--eviction-hard");
      argv.push_back(o.eviction_hard);
    }
    if (!o.cluster_dns.empty()) {  // --- cluster DNS ---
      argv.push_back("--cluster-dns");
      argv.push_back(o.cluster_dns);
    }
    write_file(l.up() / "cgroup-root", "podwarp-" + id);
    write_file(l.up() / "bpf-dir", "/sys/fs/bpf/podwarp-" + id);
    if (!spawn(l, "noded", argv, l.log() / "noded.log")) return 1;
  }
  if (!wait_for([&] { return node_ready(l.kubeconfig(), node) == "True"; }, timeout,
                alive_check(l, "noded"))) {
    std::cerr << "podwarp up: node " << node << " did not become Ready:\n"
              << tail(l.log() / "noded.log");
    return 1;
  }
  std::cout << "node " << node << " is Ready\n\n"
            << "  export KUBECONFIG=" << l.kubeconfig().string() << "\n"
            << "  kubectl get nodes\n";
  if (registry_port != 0)
    std::cout << "  kubectl create deployment web --image=127.0.0.1:" << registry_port
              << "/podwarp/busybox:httpd --replicas=3\n";
  std::cout << "\nLogs: " << l.log().string() << "/   Stop: podwarp down --data-dir "
            << l.data.string() << "\n";
  return 0;
}

// Mount points at or under `dir`, deepest first.
std::vector<std::string> mounts_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string prefix = dir.string() + "/";
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp;
    ls >> id >> parent >> devno >> root >> mp;
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    std::string path;
    for (std::size_t i = 0; i < mp.size(); ++i) {
      if (mp[i] == '\\' && i + 3 < mp.size()) {
        path += static_cast<char>(std::stoi(mp.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        path += mp[i];
      }
    }
    if (path.starts_with(prefix)) out.push_back(path);  // not dir itself: not ours
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

// Where cgroup2 is mounted (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid
// ones), as noded finds it.
fs::path cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, devno, root, mp, fstype;
    pre >> id >> parent >> devno >> root >> mp;
    post >> fstype;
    if (fstype == "cgroup2") return mp;
  }
  return "/sys/fs/cgroup";
}

// Kills every process in the cgroup tree and removes it, deepest first.
void remove_cgroup_tree(const fs::path& cg) {
  std::error_code ec;
  if (!fs::exists(cg, ec)) return;
  std::ofstream(cg / "cgroup.kill") << "1";
  wait_for(
      [&] {
        std::string events = read_file(cg / "cgroup.events");
        return events.find("populated 0") != std::string::npos;
      },
      10s);
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(cg, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec))
    if (it->is_directory(ec)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end(),
            [](const auto& a, const auto& b) { return a.string().size() > b.string().size(); });
  dirs.push_back(cg);
  for (const auto& d : dirs)
    if (::rmdir(d.c_str()) != 0 && errno != ENOENT)
      std::cerr << "podwarp down: rmdir " << d << ": " << std::strerror(errno) << "\n";
}

// --- cluster DNS ---
// Deletes the dummy link noded made for the cluster DNS address (noded records it in
// <root>/run/podwarp-dns.link); only that link name, only a virtual device. Plain rtnetlink:
// the CLI does not link libnl.
void remove_dns_link(const Layout& l) {
  std::string name = read_file(l.data / "run" / "podwarp-dns.link");
  if (name != "podwarp-dns") return;
  unsigned idx = ::if_nametoindex(name.c_str());
  std::error_code ec;
  if (idx == 0 || !fs::exists("/sys/devices/virtual/net/" + name, ec)) return;
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    std::cerr << "podwarp down: netlink socket: " << std::strerror(errno) << "\n";
    return;
  }
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_DELLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = static_cast<int>(idx);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  char buf[512];
  if (::sendto(fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    std::cerr << "podwarp down: delete link " << name << ": " << std::strerror(errno) << "\n";
  } else if (ssize_t n = ::recv(fd, buf, sizeof buf, 0); n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr)))) {
    auto* nh = reinterpret_cast<nlmsghdr*>(buf);
    auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
    if (nh->nlmsg_type == NLMSG_ERROR && err->error != 0 && err->error != -ENODEV)
      std::cerr << "podwarp down: delete link " << name << ": " << std::strerror(-err->error) << "\n";
  }
  ::close(fd);
}
// --- end cluster DNS ---

// --- service LB ---
// Removes podwarp's tc filters (clsact ingress and egress, handle 0x5057, priority 1, as
// noded/lb attaches them) from the interfaces noded recorded in <root>/run/lb-tc-interfaces;
// nothing else. Plain rtnetlink (RTM_DELTFILTER, as `tc filter del ... handle 0x5057 pref 1
// bpf`), with no BPF object to open. Not attached (ENOENT/EINVAL) is fine.
void remove_tc_filters(const Layout& l) {
  fs::path state = l.data / "run" / "lb-tc-interfaces";
  std::ifstream in(state);
  std::string name;
  while (std::getline(in, name)) {
    unsigned idx = name.empty() || name.size() >= IFNAMSIZ ? 0 : ::if_nametoindex(name.c_str());
    if (idx == 0) continue;  // gone with its filters
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
      std::cerr << "podwarp down: netlink socket: " << std::strerror(errno) << "\n";
      return;
    }
    for (std::uint32_t parent : {TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                                 TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)}) {
      struct {
        nlmsghdr nh;
        tcmsg tc;
        char attrs[16];
      } req{};
      req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
      req.nh.nlmsg_type = RTM_DELTFILTER;
      req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
      req.nh.nlmsg_seq = parent;
      req.tc.tcm_family = AF_UNSPEC;
      req.tc.tcm_ifindex = static_cast<int>(idx);
      req.tc.tcm_parent = parent;
      req.tc.tcm_handle = 0x5057;                       // PODWARP_LB_TC_HANDLE
      req.tc.tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL));  // priority 1
      auto* kind = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&req) +
                                             NLMSG_ALIGN(req.nh.nlmsg_len));
      kind->rta_type = TCA_KIND;
      kind->rta_len = RTA_LENGTH(sizeof "bpf");
      std::memcpy(RTA_DATA(kind), "bpf", sizeof "bpf");
      req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(kind->rta_len);
      sockaddr_nl kernel{};
      kernel.nl_family = AF_NETLINK;
      char buf[1024];
      if (::sendto(fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
                   sizeof kernel) < 0) {
        std::cerr << "podwarp down: tc filter del dev " << name << ": " << std::strerror(errno)
                  << "\n";
      } else if (ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                 n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr)))) {
        auto* nh = reinterpret_cast<nlmsghdr*>(buf);
        auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
        if (nh->nlmsg_type == NLMSG_ERROR && err->error != 0 && err->error != -ENOENT &&
            err->error != -EINVAL)
          std::cerr << "podwarp down: tc filter del dev " << name << ": "
                    << std::strerror(-err->error) << "\n";
      }
    }
    ::close(fd);
  }
  std::error_code ec;
  fs::remove(state, ec);
}
// --- end service LB ---

int down(const DownOptions& o) {
  Layout l{fs::absolute(o.data_dir).lexically_normal()};
  std::error_code ec;
  if (!fs::exists(l.data, ec)) {
    std::cout << "nothing to stop: " << l.data << " does not exist\n";
    return 0;
  }
  // noded first: it would restart what we kill. Its pods keep running after SIGTERM (kubelet
  // semantics), so they are killed through their cgroup below.
  stop(l, "noded", 15s);
  remove_tc_filters(l);  // --- service LB ---
  remove_dns_link(l);  // --- cluster DNS ---
  std::string cg = read_file(l.up() / "cgroup-root");
  if (!cg.empty() && cg.find('/') == std::string::npos) {
    remove_cgroup_tree(cgroup2_mount() / cg);
  }
  // Every process before any unmount: their pid files live under the data dir, which may
  // itself be on a mount of the caller's.
  stop(l, "registry");
  stop(l, "control");
  stop(l, "etcd");
  for (int round = 0; round < 5; ++round) {
    auto mps = mounts_under(l.data);
    if (mps.empty()) break;
    for (const auto& m : mps)
      if (::umount2(m.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
        std::cerr << "podwarp down: umount " << m << ": " << std::strerror(errno) << "\n";
  }
  std::string bpf = read_file(l.up() / "bpf-dir");
  if (bpf.starts_with("/sys/fs/bpf/podwarp-")) {
    struct statfs s {};
    if (::statfs(bpf.c_str(), &s) == 0 && static_cast<unsigned long>(s.f_type) == BPF_FS_MAGIC)
      fs::remove_all(bpf, ec);
  }
  if (!o.keep_data) {
    for (const auto& e : fs::directory_iterator(l.data, ec)) {
      std::string name = e.path().filename().string();
      if (!o.purge && (name == "images" || name == "registry")) continue;
      fs::remove_all(e.path(), ec);
      if (ec) std::cerr << "podwarp down: remove " << e.path() << ": " << ec.message() << "\n";
    }
    if (o.purge) fs::remove(l.data, ec);
  }
  std::cout << "podwarp stopped" << (o.keep_data ? " (state kept; podwarp up resumes it)" : "")
            << "\n";
  return 0;
}

}  // namespace

void add_up_commands(CLI::App& app, GlobalOptions& /*globals*/, int& exit_code) {
  auto uo = std::make_shared<UpOptions>();
  CLI::App* upc = app.add_subcommand("up", "start (or resume) a single-node cluster on this machine");
  upc->add_option("--data-dir", uo->data_dir, "where all of the cluster's state lives")
      ->capture_default_str();
  upc->add_option("--port", uo->port, "apiserver port (default 6443, or a free one)");
  upc->add_option("--bind-address", uo->bind_address,
                  "the apiserver's address (0.0.0.0: all, advertising the default route's "
                  "address so that pods reach it as 10.96.0.1:443; 127.0.0.1: loopback only, "
                  "out of the pods' reach)")
      ->capture_default_str();
  upc->add_option("--node-api-port", uo->node_api_port, "noded's API port (default 10250, or a free one)");
  upc->add_option("--registry-port", uo->registry_port, "the local registry's port (default 5000, or a free one)");
  upc->add_option("--node-name", uo->node_name, "the node's name (default: hostname)");
  upc->add_flag("--no-node", uo->no_node, "control plane (and registry) only");
  upc->add_flag("--no-registry", uo->no_registry, "no local registry and test images");
  upc->add_option("--pod-network", uo->pod_network,
                  "pod network: routed (a veth and an address from the node's podCIDR per pod) or "
                  "none (loopback only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"routed", "none"}));
  upc->add_flag("--cri,!--no-cri", uo->cri,
                "run noded with --cri-socket <data-dir>/run/cri.sock: the CRI runtime.v1 API for "
                "crictl and other CRI clients (default on; --no-cri: off)");
  upc->add_flag("--network-policy,!--no-network-policy", uo->network_policy,
                "run noded with --network-policy: NetworkPolicies enforced by eBPF on the pods' "
                "veths (default on with the routed pod network; --no-network-policy: off)");
  upc->add_flag("--service-lb,!--no-service-lb", uo->service_lb,
                "run noded with --service-lb: eBPF ClusterIP load balancing for the pods, in "
                "place of kube-proxy (default on; --no-service-lb: off)");
  upc->add_option("--nodeport-interfaces", uo->nodeport_interfaces,
                  "IF[,IF]: attach the tc NodePort and egress-masquerade programs to these "
                  "interfaces of this machine (default: none; NodePorts then answer only on the "
                  "node itself and pods reach no address outside the cluster)");
  upc->add_option("--eviction-hard", uo->eviction_hard,
                  "noded's hard eviction thresholds, as the kubelet's (default "
                  "memory.available<100Mi,nodefs.available<10%; nodefs.available<0% keeps a "
                  "nearly full disk from tainting the node, as kind does)");
  upc->add_option("--cluster-dns", uo->cluster_dns,  // --- cluster DNS ---
                  "noded's cluster DNS address (pods' nameserver; \"\" disables cluster DNS)")
      ->capture_default_str();
  upc->add_option("--timeout", uo->timeout_s, "seconds to wait for each part")->capture_default_str();
  upc->callback([uo, &exit_code] { exit_code = up(*uo); });

  auto dn = std::make_shared<DownOptions>();
  CLI::App* dc = app.add_subcommand("down", "stop the cluster and remove what it made");
  dc->add_option("--data-dir", dn->data_dir, "the data dir given to up")->capture_default_str();
  dc->add_flag("--keep-data", dn->keep_data, "keep etcd, PKI and pod state: the next up resumes");
  dc->add_flag("--purge", dn->purge, "also remove the image store and the registry's storage");
  dc->callback([dn, &exit_code] { exit_code = down(*dn); });
}

}  // namespace podwarp::cli
