#include "adapters/node_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "adapters/container_spec.h"
#include "adapters/loopback.h"
#include "cgroup/qos.h"
#include "console/console.h"
#include "podwarp/log.h"
#include "podwarp/random.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::adapters {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using pods::Awaitable;

struct NodeRuntime::PodSandboxState {
  std::optional<ns::PodNamespaces> pins;
  std::string files_dir;
  bool has_resolv = false;
  bool share_pid = false;
  std::string pod_ip;  // "" without a pod network
};

struct NodeRuntime::Container {
  std::string id, hex, pod_uid, name, cgroup_rel;
  runtime::Process proc;
  bool child = true;                   // false: adopted after a noded restart
  std::uint64_t ticks = 0;             // start time of the pid (field 22 of /proc/<pid>/stat)
  runtime::ProcessSpec exec_template;  // identity and env for exec_in_container
};

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Fields of /proc/<pid>/stat after "(comm)": [0] is field 3 (state).
std::vector<std::string> stat_fields(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = s.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream in(s.substr(close + 1));
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

std::string random_hex() {
  unsigned char b[16];
  random_bytes(b);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

runtime::ExitStatus from_wait_status(int status) {
  runtime::ExitStatus st;
  if (WIFSIGNALED(status)) {
    st.signaled = true;
    st.signal = WTERMSIG(status);
  } else {
    st.code = WEXITSTATUS(status);
  }
  return st;
}

pods::ExitInfo exit_info(const runtime::ExitStatus& st) {
  pods::ExitInfo e;
  e.code_known = true;
  e.signal = st.signaled ? st.signal : 0;
  e.exit_code = st.signaled ? 128 + st.signal : st.code;
  e.finished_at = std::chrono::system_clock::now();
  return e;
}

// A zombie's exit status (field 52 of /proc/<pid>/stat, waitpid format), if the pid is still
// the recorded process and not reaped yet by its new parent.
std::optional<pods::ExitInfo> zombie_status(pid_t pid, std::uint64_t ticks) {
  auto f = stat_fields(pid);
  if (f.size() < 50 || f[0] != "Z" || std::to_string(ticks) != f[19]) return std::nullopt;
  return exit_info(from_wait_status(std::atoi(f[49].c_str())));
}

// Identity and env of a running process, for exec into a container adopted after a restart.
runtime::ProcessSpec process_template(pid_t pid) {
  runtime::ProcessSpec p;
  std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  for (std::size_t i = 0; i < env.size();) {
    auto end = env.find('\0', i);
    if (end == std::string::npos) end = env.size();
    if (end > i) p.env.push_back(env.substr(i, end - i));
    i = end + 1;
  }
  std::istringstream st(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(st, line)) {
    if (line.starts_with("Uid:"))
      p.uid = static_cast<uid_t>(std::strtoul(line.c_str() + 4, nullptr, 10));
    if (line.starts_with("Gid:"))
      p.gid = static_cast<gid_t>(std::strtoul(line.c_str() + 4, nullptr, 10));
    if (line.starts_with("CapBnd:")) p.capabilities = std::strtoull(line.c_str() + 7, nullptr, 16);
  }
  return p;
}

}  // namespace

NodeRuntime::NodeRuntime(asio::any_io_executor ex, NodeRuntimeOptions opts,
                         cgroup::CgroupManager& cgroups, images::ImageStore& images)
    : ex_(std::move(ex)), opts_(std::move(opts)), cgroups_(cgroups), images_(images),
      starters_(std::make_unique<asio::thread_pool>(2)) {
  if (opts_.resolv_conf.empty()) opts_.resolv_conf = read_file("/etc/resolv.conf");
}

NodeRuntime::~NodeRuntime() = default;

std::optional<std::uint64_t> NodeRuntime::start_ticks(pid_t pid) {
  auto f = stat_fields(pid);
  if (f.size() < 20) return std::nullopt;
  return std::strtoull(f[19].c_str(), nullptr, 10);
}

std::optional<std::string> NodeRuntime::id_hex(std::string_view id) {
  constexpr std::string_view kPrefix = "podwarp://";
  if (!id.starts_with(kPrefix)) return std::nullopt;
  std::string hex(id.substr(kPrefix.size()));
  if (hex.empty() || hex.size() > 64) return std::nullopt;
  for (char c : hex) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return hex;
}

NodeRuntime::PodSandboxState* NodeRuntime::sandbox(const std::string& uid) {
  auto it = sandboxes_.find(uid);
  return it == sandboxes_.end() ? nullptr : it->second.get();
}

Awaitable<std::expected<pods::Sandbox, std::string>> NodeRuntime::create_sandbox(
    const pods::SandboxRequest& req) {
  if (auto* s = sandbox(req.pod_uid)) {
    co_return pods::Sandbox{s->pins->path(ns::NsType::kNet), s->pod_ip};
  }
  static const json::value kEmpty = json::object();
  const json::value& pod = req.pod != nullptr ? *req.pod : kEmpty;
  if (get_bool(pod, {"spec", "hostNetwork"})) {
    co_return std::unexpected("create sandbox: hostNetwork pods are not supported yet");
  }
  auto st = std::make_unique<PodSandboxState>();
  st->share_pid = get_bool(pod, {"spec", "shareProcessNamespace"});
  st->files_dir = opts_.run_dir + "/pods/" + req.pod_uid;
  std::string resolv_conf = opts_.resolv_conf;
  if (opts_.pod_resolv_conf) {
    auto rc = opts_.pod_resolv_conf(pod);
    if (!rc) co_return std::unexpected("create sandbox: DNS config: " + rc.error());
    if (!rc->empty()) resolv_conf = std::move(*rc);
  }
  st->has_resolv = !resolv_conf.empty();
  bool adopted = false;
  if (auto pins = ns::PodNamespaces::adopt(opts_.run_dir, req.pod_uid)) {
    adopted = true;
    // A sandbox left by the previous noded: keep its namespaces (the running containers are
    // in them); make sure its cgroup is there.
    auto cg = cgroups_.create("pod" + req.pod_uid, cgroup::pod_limits(pod), true);
    if (!cg) co_return std::unexpected("create sandbox: " + cg.error().message);
    st->pins.emplace(std::move(*pins));
    log::info("runtime: pod {}: re-adopted sandbox {}", req.pod_uid, st->pins->dir());
  } else {
    runtime::SandboxConfig cfg;
    cfg.run_dir = opts_.run_dir;
    cfg.pod_uid = req.pod_uid;
    cfg.hostname = req.hostname;
    cfg.share_pid_ns = st->share_pid;
    cfg.limits = cgroup::pod_limits(pod);
    cfg.resolv_conf = resolv_conf;
    auto sb = runtime::PodSandbox::create(cgroups_, cfg);
    if (!sb) co_return std::unexpected("create sandbox: " + sb.error().message);
    for (const auto& n : sb->cgroup_report().not_enforced)
      log::debug("runtime: pod {}: not enforced: {}", req.pod_uid, n);
    // PodSandbox has no adopt(); this adapter keeps its own handle on the pins (same layout).
    auto again = ns::PodNamespaces::adopt(opts_.run_dir, req.pod_uid);
    if (!again) {
      (void)sb->release();
      co_return std::unexpected("create sandbox: " + again.error().message);
    }
    st->pins.emplace(std::move(*again));
  }
  std::string netns = st->pins->path(ns::NsType::kNet);
  if (auto lo = bring_up_loopback(netns); !lo) {
    co_return std::unexpected("create sandbox: " + lo.error().message);
  }
  if (opts_.attach_network) {
    // Before any container starts; for an adopted sandbox this finds the same veth and address.
    auto ip = co_await opts_.attach_network(req.pod_uid, netns);
    if (!ip) {
      // A new sandbox keeps no half-made network (its address is not held while the pod
      // waits); an adopted one is left alone: its containers are running in it.
      if (!adopted && opts_.detach_network) opts_.detach_network(req.pod_uid);
      co_return std::unexpected("create sandbox: network: " + ip.error());
    }
    st->pod_ip = *ip;
  }
  std::string pod_ip = st->pod_ip;
  sandboxes_[req.pod_uid] = std::move(st);
  co_return pods::Sandbox{netns, pod_ip};
}

int NodeRuntime::release_orphan_rootfs() {
  std::set<std::string> with_cgroup;
  std::error_code ec;
  for (const auto& pod : std::filesystem::directory_iterator(cgroups_.root(), ec)) {
    if (!pod.is_directory() || !pod.path().filename().string().starts_with("pod")) continue;
    std::error_code ec2;
    for (const auto& c : std::filesystem::directory_iterator(pod.path(), ec2)) {
      if (c.is_directory()) with_cgroup.insert(c.path().filename().string());
    }
  }
  int released = 0;
  for (const std::string& hex : images_.prepared_containers()) {
    if (with_cgroup.contains(hex) || containers_.contains("podwarp://" + hex)) continue;
    if (auto r = images_.release_rootfs(hex); !r) {
      log::warn("runtime: release orphan rootfs {}: {}", hex, r.error().message);
    } else {
      log::info(
          "runtime: released the rootfs of {} (no container cgroup: its start never "
          "completed)",
          hex);
      ++released;
    }
  }
  return released;
}

void NodeRuntime::cleanup_container_files(const std::string& uid, const std::string& hex) {
  std::string rel = "pod" + uid + "/" + hex;
  if (auto d = cgroups_.destroy(rel, 2000); !d)
    log::warn("runtime: remove cgroup {}: {}", rel, d.error().message);
  if (auto r = images_.release_rootfs(hex); !r)
    log::warn("runtime: release rootfs of {}: {}", hex, r.error().message);
}

Awaitable<std::expected<void, std::string>> NodeRuntime::release_sandbox(const std::string& uid) {
  std::vector<std::string> errors;
  for (auto it = containers_.begin(); it != containers_.end();) {
    if (it->second->pod_uid != uid) {
      ++it;
      continue;
    }
    (void)cgroups_.kill(it->second->cgroup_rel);
    if (it->second->child && !it->second->proc.reaped()) {
      (void)it->second->proc.wait();
      if (opts_.exits) (void)opts_.exits->take(it->second->proc.pid(), it->second->ticks);
    }
    cleanup_container_files(uid, it->second->hex);
    it = containers_.erase(it);
  }
  if (auto d = cgroups_.destroy("pod" + uid); !d) errors.push_back(d.error().message);
  if (opts_.detach_network) opts_.detach_network(uid);  // before the netns pin goes
  std::optional<ns::PodNamespaces> pins;
  if (auto* s = sandbox(uid)) {
    pins = std::move(s->pins);
  } else if (auto p = ns::PodNamespaces::adopt(opts_.run_dir, uid)) {
    pins.emplace(std::move(*p));
  }
  if (pins) {
    if (auto r = pins->release(); !r) errors.push_back(r.error().message);
  }
  std::error_code ec;
  std::filesystem::remove_all(opts_.run_dir + "/pods/" + uid, ec);
  if (ec) errors.push_back("remove " + opts_.run_dir + "/pods/" + uid + ": " + ec.message());
  sandboxes_.erase(uid);
  if (!errors.empty()) {
    std::string msg = "release sandbox:";
    for (auto& e : errors) msg += " " + e + ";";
    msg.pop_back();
    co_return std::unexpected(msg);
  }
  co_return std::expected<void, std::string>{};
}

Awaitable<std::expected<pods::ContainerHandle, std::string>> NodeRuntime::start_container(
    const pods::ContainerStartRequest& req) {
  auto* sb = sandbox(req.pod_uid);
  if (sb == nullptr)
    co_return std::unexpected("container start: no sandbox for pod " + req.pod_uid);
  if (req.image == nullptr || req.container == nullptr || req.pod == nullptr)
    co_return std::unexpected("container start: incomplete request");
  auto ref = images_.find(req.image->image_id);
  if (!ref) ref = images_.find(req.image->image_ref);
  if (!ref)
    co_return std::unexpected("container start: image " + req.image->image_id +
                              " is not in the store");
  auto c = std::make_unique<Container>();
  c->hex = random_hex();
  c->id = "podwarp://" + c->hex;
  c->pod_uid = req.pod_uid;
  c->name = req.container_name;
  c->cgroup_rel = "pod" + req.pod_uid + "/" + c->hex;
  auto fail = [&](std::string msg) {
    cleanup_container_files(c->pod_uid, c->hex);
    return std::unexpected(std::move(msg));
  };
  auto rootfs = images_.prepare_rootfs(c->hex, *ref);
  if (!rootfs) co_return fail("container start: " + rootfs.error().message);
  auto user = runtime::resolve_user_in_rootfs(rootfs->string(), req.image->user);
  if (!user) co_return fail("container start: image user: " + user.error().message);
  auto proc = process_spec(*req.pod, *req.container, *req.image, *user, env_context(req));
  if (!proc) co_return fail(proc.error());

  runtime::ContainerSpec spec;
  spec.name = req.container_name;
  spec.rootfs = rootfs->string();
  spec.process = std::move(*proc);
  spec.net_ns = sb->pins->path(ns::NsType::kNet);
  spec.ipc_ns = sb->pins->path(ns::NsType::kIpc);
  spec.uts_ns = sb->pins->path(ns::NsType::kUts);
  if (sb->share_pid && sb->pins->has_pid_ns()) spec.pid_ns = sb->pins->path(ns::NsType::kPid);
  if (!req.target_container_id.empty()) {
    auto t = containers_.find(req.target_container_id);
    if (t == containers_.end() || t->second->proc.reaped())
      co_return fail("container start: target container " + req.target_container_id + " is not running");
    spec.pid_ns = fmt::format("/proc/{}/ns/pid", t->second->proc.pid());
  }
  spec.hosts_file = sb->files_dir + "/hosts";
  spec.hostname_file = sb->files_dir + "/hostname";
  if (sb->has_resolv && std::filesystem::exists(sb->files_dir + "/resolv.conf"))
    spec.resolv_conf_file = sb->files_dir + "/resolv.conf";
  spec.readonly_rootfs = container_readonly_rootfs(*req.container);
  spec.privileged = container_privileged(*req.container);
  spec.mounts = bind_mounts(req.mounts);
  auto cg = cgroups_.create(c->cgroup_rel, cgroup::container_limits(*req.container), false);
  if (!cg) co_return fail("container start: " + cg.error().message);
  spec.cgroup = cgroups_.path_of(c->cgroup_rel);
  if (req.tty) console::ensure_term(spec.process.env);
  c->exec_template = spec.process;
  spec.process.stdout_fd = req.stdout_fd;
  spec.process.stderr_fd = req.stderr_fd;
  spec.process.stdin_fd = req.stdin_fd;
  // setsid + TIOCSCTTY: the pty on fd 0 becomes the container's controlling terminal (runc's
  // terminal: true).
  spec.process.controlling_tty = req.tty && req.stdin_fd >= 0;

  // The blocking clone3 start on a starter thread; this coroutine resumes on the loop.
  auto start_on_pool = [&spec]() -> Awaitable<std::expected<runtime::Process, SysError>> {
    co_return runtime::start_container(spec);
  };
  auto started = asio::co_spawn(starters_->get_executor(), start_on_pool(), asio::use_awaitable);
  std::expected<runtime::Process, SysError> p = co_await std::move(started);
  if (!p) co_return fail(p.error().message);
  c->proc = std::move(*p);
  sb = sandbox(req.pod_uid);  // the pod may have been released while the start ran
  if (sb == nullptr) {
    (void)c->proc.kill_cgroup();
    (void)c->proc.wait();
    co_return fail("container start: pod " + req.pod_uid + " was stopped during the start");
  }
  if (sb->share_pid && !sb->pins->has_pid_ns()) {
    if (auto r = sb->pins->pin_pid_ns(c->proc.pid()); !r)
      log::warn("runtime: pod {}: pin pid namespace: {}", req.pod_uid, r.error().message);
  }
  c->ticks = start_ticks(c->proc.pid()).value_or(0);
  // Not reaped yet, so the pid cannot have been reused: safe to watch.
  if (opts_.exits) {
    if (auto w = opts_.exits->watch(c->proc.pid(), c->ticks); !w)
      log::warn("runtime: exit recorder: watch pid {}: {}", c->proc.pid(), w.error().message);
  }
  pods::ContainerHandle h{c->id, c->proc.pid(), c->ticks};
  log::debug("runtime: pod {}: container {} started as {} (pid {})", req.pod_uid,
             req.container_name, c->id, h.pid);
  containers_[c->id] = std::move(c);
  co_return h;
}

Awaitable<pods::ExitInfo> NodeRuntime::wait_container(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    co_return pods::ExitInfo{false, 137, 0, false, std::chrono::system_clock::now()};
  }
  Container& c = *it->second;
  pods::ExitInfo e{false, 137, 0, false, {}};
  if (c.child) {
    auto st = co_await c.proc.async_wait();
    if (st) {
      e = exit_info(*st);
    } else {
      log::warn("runtime: wait {}: {}", id, st.error().message);
    }
    if (opts_.exits) (void)opts_.exits->take(c.proc.pid(), c.ticks);  // reaped: drop the record
  } else {
    // Not our child: the pidfd turns readable at exit; the status may still be readable from
    // the zombie before its new parent reaps it.
    int fd = ::fcntl(c.proc.pidfd(), F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) {
      asio::posix::stream_descriptor sd(ex_, fd);
      co_await sd.async_wait(asio::posix::stream_descriptor::wait_read,
                             asio::as_tuple(asio::use_awaitable));
    }
    const char* source = "unknown";
    if (auto st = opts_.exits ? opts_.exits->take(c.proc.pid(), c.ticks) : std::nullopt) {
      e = exit_info(from_wait_status(st->wait_status));
      source = "from the BPF exit recorder";
    } else if (auto z = zombie_status(c.proc.pid(), c.ticks)) {
      e = *z;
      source = "from its zombie";
    }
    log::info("runtime: adopted container {} (pid {}) exited: exit code {} ({})", id, c.proc.pid(),
              e.code_known ? std::to_string(e.exit_code) : "?", source);
  }
  e.finished_at = std::chrono::system_clock::now();
  if (auto n = cgroups_.oom_kill_count(c.cgroup_rel); n && n->has_value() && **n > 0)
    e.oom_killed = true;
  co_return e;
}

std::expected<void, std::string> NodeRuntime::signal_container(const std::string& id, int sig) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return std::unexpected("no such container " + id);
  Container& c = *it->second;
  if (c.proc.reaped()) return {};
  if (sig == SIGKILL) {
    if (auto r = cgroups_.kill(c.cgroup_rel); !r) return std::unexpected(r.error().message);
    return {};
  }
  if (auto r = c.proc.kill(sig); !r && r.error().code != ESRCH)
    return std::unexpected(r.error().message);
  return {};
}

void NodeRuntime::remove_container(const std::string& id) {
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  cleanup_container_files(it->second->pod_uid, it->second->hex);
  containers_.erase(it);
}

Awaitable<pods::ExecResult> NodeRuntime::exec_in_container(const std::string& id,
                                                           const std::vector<std::string>& argv,
                                                           std::chrono::milliseconds timeout) {
  pods::ExecResult res;
  auto it = containers_.find(id);
  if (it == containers_.end() || it->second->proc.reaped()) {
    res.output = "container " + id + " is not running";
    co_return res;
  }
  Container& c = *it->second;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    res.output = "pipe2: " + errno_name(errno);
    co_return res;
  }
  runtime::ProcessSpec ps = c.exec_template;
  ps.argv = argv;
  ps.working_dir = "/";
  ps.stdout_fd = p[1];
  ps.stderr_fd = p[1];
  auto proc = runtime::exec_in(c.proc, ps, cgroups_.path_of(c.cgroup_rel));
  ::close(p[1]);
  if (!proc) {
    ::close(p[0]);
    res.output = proc.error().message;
    co_return res;
  }
  asio::steady_timer timer(ex_, timeout);
  auto outcome =
      co_await (proc->async_wait() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 0) {
    auto& st = std::get<0>(outcome);
    if (st) res.exit_code = st->signaled ? 128 + st->signal : st->code;
  } else {
    res.timed_out = true;
    (void)proc->kill(SIGKILL);
    (void)proc->wait();
  }
  // What the process wrote (its children may keep the pipe open: never block on it).
  ::fcntl(p[0], F_SETFL, O_NONBLOCK);
  char buf[4096];
  while (res.output.size() < 10240) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    res.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  if (res.output.size() > 10240) res.output.resize(10240);
  co_return res;
}

Awaitable<pods::AdoptResult> NodeRuntime::adopt_container(const std::string& pod_uid,
                                                          const pods::ContainerHandle& h) {
  pods::AdoptResult r;
  auto hex = id_hex(h.id);
  if (!hex || h.pid <= 0 || !ns::valid_pod_uid(pod_uid)) co_return r;  // kGone
  if (containers_.contains(h.id)) {
    r.state = pods::AdoptState::kRunning;
    co_return r;
  }
  std::string rel = "pod" + pod_uid + "/" + *hex;
  if (start_ticks(h.pid) == h.start_ticks) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, h.pid, 0));
    // Re-check after opening: the pidfd now pins this very process (or its zombie).
    auto f = fd >= 0 ? stat_fields(h.pid) : std::vector<std::string>{};
    if (fd >= 0 && f.size() >= 20 && f[19] == std::to_string(h.start_ticks) && f[0] != "Z") {
      auto c = std::make_unique<Container>();
      c->id = h.id;
      c->hex = *hex;
      c->pod_uid = pod_uid;
      c->cgroup_rel = rel;
      c->child = false;
      c->ticks = h.start_ticks;
      c->exec_template = process_template(h.pid);
      c->proc = runtime::Process(h.pid, fd, cgroups_.path_of(rel));
      containers_[h.id] = std::move(c);
      r.state = pods::AdoptState::kRunning;
      co_return r;
    }
    if (fd >= 0) ::close(fd);
  }
  // It exited while noded was down.
  r.state = pods::AdoptState::kExited;
  r.exit = pods::ExitInfo{false, 137, 0, false, std::chrono::system_clock::now()};
  const char* source = "unknown";
  if (auto st = opts_.exits ? opts_.exits->take(h.pid, h.start_ticks) : std::nullopt) {
    r.exit = exit_info(from_wait_status(st->wait_status));
    source = "from the BPF exit recorder";
  } else if (auto z = zombie_status(h.pid, h.start_ticks)) {
    r.exit = *z;
    source = "from its zombie";
  }
  log::info("runtime: container {} (pid {}) exited while noded was down: exit code {} ({})", h.id,
            h.pid, r.exit.code_known ? std::to_string(r.exit.exit_code) : "?", source);
  if (auto n = cgroups_.oom_kill_count(rel); n && n->has_value() && **n > 0)
    r.exit.oom_killed = true;
  cleanup_container_files(pod_uid, *hex);
  co_return r;
}

// ---------------------------------------------------------------- exec sessions (node API)

namespace {

using Fd = UniqueFd;

using console::open_pipe;
using console::set_nonblock;

class NodeExecSession final : public pods::ExecSession {
 public:
  NodeExecSession(runtime::Process p, Fd in, Fd out, Fd err, bool tty)
      : proc_(std::move(p)), in_(std::move(in)), out_(std::move(out)), err_(std::move(err)),
        tty_(tty) {}
  ~NodeExecSession() override {
    if (!proc_.reaped()) {
      (void)proc_.kill(SIGKILL);
      (void)proc_.wait();  // SIGKILLed: returns at once
    }
  }
  int stdin_fd() const override { return tty_ ? out_.get() : in_.get(); }
  int stdout_fd() const override { return out_.get(); }
  int stderr_fd() const override { return err_.get(); }
  void close_stdin() override {
    if (!tty_) {
      in_.reset();
      return;
    }
    console::send_eof(out_.get());
  }
  std::expected<void, std::string> resize(std::uint16_t width, std::uint16_t height) override {
    if (!tty_) return {};
    return console::set_window_size(out_.get(), width, height);
  }
  Awaitable<int> wait() override {
    auto st = co_await proc_.async_wait();
    if (!st) co_return st.error().code == ECANCELED ? -1 : 128 + SIGKILL;  // -1: cancelled
    co_return st->signaled ? 128 + st->signal : st->code;
  }
  void kill() override {
    if (!proc_.reaped()) (void)proc_.kill(SIGKILL);
  }

 private:
  runtime::Process proc_;
  Fd in_, out_, err_;
  bool tty_;
};

}  // namespace

Awaitable<std::expected<std::unique_ptr<pods::ExecSession>, std::string>>
NodeRuntime::start_exec_session(const std::string& id, const pods::ExecSessionRequest& req) {
  using Result = std::expected<std::unique_ptr<pods::ExecSession>, std::string>;
  auto it = containers_.find(id);
  if (it == containers_.end() || it->second->proc.reaped() || it->second->proc.pidfd() < 0)
    co_return Result(std::unexpected("container not found (\"" + id + "\")"));
  Container& c = *it->second;
  runtime::ProcessSpec ps = c.exec_template;
  ps.argv = req.argv;
  if (ps.working_dir.empty()) ps.working_dir = "/";
  Fd keep_in, keep_out, keep_err;  // our ends
  Fd child_in, child_out, child_err;  // the process's ends, closed once it started
  if (req.tty) {
    auto pty = console::open_pty();
    if (!pty) co_return Result(std::unexpected(pty.error()));
    keep_out = std::move(pty->master);
    ps.stdin_fd = ps.stdout_fd = ps.stderr_fd = pty->slave.get();
    ps.controlling_tty = true;
    console::ensure_term(ps.env);
    child_in = std::move(pty->slave);
  } else {
    if (req.want_stdin) {
      auto p = open_pipe();
      if (!p) co_return Result(std::unexpected(p.error()));
      child_in = std::move(p->first);
      keep_in = std::move(p->second);
      set_nonblock(keep_in.get());
      ps.stdin_fd = child_in.get();
    }
    if (req.want_stdout) {
      auto p = open_pipe();
      if (!p) co_return Result(std::unexpected(p.error()));
      keep_out = std::move(p->first);
      child_out = std::move(p->second);
      set_nonblock(keep_out.get());
      ps.stdout_fd = child_out.get();
    }
    if (req.want_stderr) {
      auto p = open_pipe();
      if (!p) co_return Result(std::unexpected(p.error()));
      keep_err = std::move(p->first);
      child_err = std::move(p->second);
      set_nonblock(keep_err.get());
      ps.stderr_fd = child_err.get();
    }
  }
  auto proc = runtime::exec_in(c.proc, ps, cgroups_.path_of(c.cgroup_rel));
  if (!proc) co_return Result(std::unexpected(proc.error().message));
  co_return Result(std::make_unique<NodeExecSession>(std::move(*proc), std::move(keep_in),
                                                     std::move(keep_out), std::move(keep_err),
                                                     req.tty));
}

std::expected<std::string, std::string> NodeRuntime::sandbox_netns(
    const std::string& pod_uid) const {
  auto it = sandboxes_.find(pod_uid);
  if (it == sandboxes_.end() || !it->second->pins)
    return std::unexpected("pod " + pod_uid + " has no sandbox");
  return it->second->pins->path(ns::NsType::kNet);
}

}  // namespace podwarp::noded::adapters
