#include "agent/node_status.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <fstream>
#include <sstream>

#include "podwarp/quantity.h"
#include "podwarp/time.h"

namespace podwarp::noded::agent {

namespace {

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

std::int64_t read_int(const std::string& path) {
  auto s = read_first_line(path);
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (...) {
    return 0;
  }
}

// PRETTY_NAME from os-release, unquoted.
std::string os_pretty_name() {
  for (const char* p : {"/etc/os-release", "/usr/lib/os-release"}) {
    std::ifstream f(p);
    std::string line;
    while (std::getline(f, line)) {
      if (!line.starts_with("PRETTY_NAME=")) continue;
      std::string v = line.substr(12);
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "Linux";
}

std::string ki(std::int64_t bytes) {
  return fmt::format("{}Ki", std::max<std::int64_t>(0, bytes) / 1024);
}

json::object condition(std::string type, bool status, std::string reason, std::string message,
                       const json::value& previous, const std::string& now, bool heartbeat) {
  std::string st = status ? "True" : "False";
  std::string transition = now, beat = now;
  if (const auto* conds = find_path(previous, {"conditions"}); conds && conds->is_array()) {
    for (const auto& c : conds->as_array()) {
      if (get_string(c, {"type"}) != type) continue;
      if (get_string(c, {"status"}) == st) {
        auto t = get_string(c, {"lastTransitionTime"});
        if (!t.empty()) transition = std::string(t);
      }
      auto hb = get_string(c, {"lastHeartbeatTime"});
      if (!heartbeat && !hb.empty()) beat = std::string(hb);
    }
  }
  return json::object{{"type", type},
                      {"status", st},
                      {"lastHeartbeatTime", beat},
                      {"lastTransitionTime", transition},
                      {"reason", reason},
                      {"message", message}};
}

}  // namespace

std::string go_arch(std::string_view m) {
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "i686" || m == "i386") return "386";
  return std::string(m);
}

HostFacts read_host_facts(const std::string& root_dir) {
  HostFacts h;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus = n > 0 ? n : 0;
  {
    std::ifstream f("/proc/meminfo");
    std::string key;
    std::int64_t value = 0;
    std::string unit;
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream ls(line);
      if (!(ls >> key >> value)) continue;
      ls >> unit;
      std::int64_t bytes = unit == "kB" ? value * 1024 : value;
      if (key == "MemTotal:") h.memory_total = bytes;
      if (key == "MemAvailable:") h.memory_available = bytes;
    }
  }
  h.hugepages_2mi =
      read_int("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") * (2LL << 20);
  h.hugepages_1gi =
      read_int("/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages") * (1LL << 30);
  struct statvfs v {};
  if (::statvfs(root_dir.c_str(), &v) == 0) {
    h.fs_capacity = static_cast<std::int64_t>(v.f_blocks) * static_cast<std::int64_t>(v.f_frsize);
    h.fs_available = static_cast<std::int64_t>(v.f_bavail) * static_cast<std::int64_t>(v.f_frsize);
  }
  std::int64_t pid_max = read_int("/proc/sys/kernel/pid_max");
  std::int64_t threads_max = read_int("/proc/sys/kernel/threads-max");
  h.pid_limit = pid_max > 0 && threads_max > 0 ? std::min(pid_max, threads_max)
                                               : std::max(pid_max, threads_max);
  {
    // /proc/loadavg: "0.00 0.01 0.05 1/234 5678": runnable/total scheduling entities.
    std::ifstream f("/proc/loadavg");
    std::string a, b, c, rt;
    if (f >> a >> b >> c >> rt) {
      auto slash = rt.find('/');
      if (slash != std::string::npos) {
        try {
          h.pids_in_use = std::stoll(rt.substr(slash + 1));
        } catch (...) {
        }
      }
    }
  }
  h.machine_id = read_first_line("/etc/machine-id");
  h.system_uuid = read_first_line("/sys/class/dmi/id/product_uuid");
  std::transform(h.system_uuid.begin(), h.system_uuid.end(), h.system_uuid.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  h.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  struct utsname u {};
  if (::uname(&u) == 0) {
    h.kernel_version = u.release;
    h.architecture = go_arch(u.machine);
  }
  h.os_image = os_pretty_name();
  return h;
}

json::object node_labels(const NodeConfig& c, const HostFacts& h) {
  std::string arch = h.architecture.empty() ? "amd64" : h.architecture;
  return json::object{{"beta.kubernetes.io/arch", arch},
                      {"beta.kubernetes.io/os", "linux"},
                      {"kubernetes.io/arch", arch},
                      {"kubernetes.io/hostname", c.hostname.empty() ? c.name : c.hostname},
                      {"kubernetes.io/os", "linux"}};
}

json::object node_object(const NodeConfig& c, const HostFacts& h) {
  return json::object{
      {"apiVersion", "v1"},
      {"kind", "Node"},
      {"metadata",
       json::object{
           {"name", c.name},
           {"labels", node_labels(c, h)},
           {"annotations",
            json::object{{"volumes.kubernetes.io/controller-managed-attach-detach", "true"},
                         {"node.alpha.kubernetes.io/ttl", "0"}}}}},
      {"spec", json::object()}};
}

std::string cgroup_warning(const std::vector<std::string>& not_enforced) {
  if (not_enforced.empty()) return {};
  return fmt::format("WARNING: cgroup v2 controllers missing, pod limits not enforced: {}",
                     fmt::join(not_enforced, "; "));
}

std::expected<void, std::string> parse_eviction_hard(std::string_view spec, NodeConfig& c) {
  NodeConfig out = c;
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const auto lt = item.find('<');
    if (lt == std::string_view::npos) {
      return std::unexpected(fmt::format("eviction threshold \"{}\": want <signal><<value>", item));
    }
    const std::string_view signal = item.substr(0, lt), value = item.substr(lt + 1);
    if (signal == "nodefs.available") {
      int percent = -1;
      if (value.ends_with('%')) {
        auto digits = value.substr(0, value.size() - 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), percent);
        if (ec != std::errc{} || end != digits.data() + digits.size()) percent = -1;
      }
      if (percent < 0 || percent > 100) {
        return std::unexpected(fmt::format("eviction threshold \"{}\": nodefs.available takes a percentage", item));
      }
      out.nodefs_eviction_percent = percent;
    } else if (signal == "memory.available") {
      auto q = Quantity::parse(value);
      if (!q || q->value() < 0) {
        return std::unexpected(fmt::format("eviction threshold \"{}\": memory.available takes a quantity", item));
      }
      out.memory_eviction_bytes = q->value();
    } else {
      return std::unexpected(fmt::format("eviction threshold \"{}\": unsupported signal (memory.available, nodefs.available)", item));
    }
  }
  c = std::move(out);
  return {};
}

json::object node_status(const NodeConfig& c, const HostFacts& h, const json::value& previous,
                         std::chrono::system_clock::time_point now_tp, bool heartbeat) {
  std::string now = format_rfc3339(now_tp);
  json::object capacity{{"cpu", std::to_string(h.cpus)},
                        {"ephemeral-storage", ki(h.fs_capacity)},
                        {"hugepages-1Gi", std::to_string(h.hugepages_1gi)},
                        {"hugepages-2Mi", std::to_string(h.hugepages_2mi)},
                        {"memory", ki(h.memory_total)},
                        {"pods", std::to_string(c.max_pods)}};
  // Allocatable: capacity minus the hard eviction thresholds (and the hugepages from memory).
  std::int64_t fs_reserved = h.fs_capacity / 100 * c.nodefs_eviction_percent;
  json::object allocatable{
      {"cpu", std::to_string(h.cpus)},
      {"ephemeral-storage", std::to_string(std::max<std::int64_t>(0, h.fs_capacity - fs_reserved))},
      {"hugepages-1Gi", std::to_string(h.hugepages_1gi)},
      {"hugepages-2Mi", std::to_string(h.hugepages_2mi)},
      {"memory", ki(h.memory_total - c.memory_eviction_bytes - h.hugepages_1gi - h.hugepages_2mi)},
      {"pods", std::to_string(c.max_pods)}};

  bool mem_pressure = h.memory_total > 0 && h.memory_available < c.memory_eviction_bytes;
  bool disk_pressure =
      h.fs_capacity > 0 && h.fs_available * 100 < h.fs_capacity * c.nodefs_eviction_percent;
  bool pid_pressure =
      h.pid_limit > 0 && (h.pid_limit - h.pids_in_use) * 100 < h.pid_limit * kPidEvictionPercent;
  std::string ready_msg = "kubelet is posting ready status";
  if (auto w = cgroup_warning(c.cgroup_not_enforced); !w.empty()) ready_msg += ". " + w;

  json::array conds;
  conds.push_back(
      condition("MemoryPressure", mem_pressure,
                mem_pressure ? "KubeletHasInsufficientMemory" : "KubeletHasSufficientMemory",
                mem_pressure ? "kubelet has insufficient memory available"
                             : "kubelet has sufficient memory available",
                previous, now, heartbeat));
  conds.push_back(
      condition("DiskPressure", disk_pressure,
                disk_pressure ? "KubeletHasDiskPressure" : "KubeletHasNoDiskPressure",
                disk_pressure ? "kubelet has disk pressure" : "kubelet has no disk pressure",
                previous, now, heartbeat));
  conds.push_back(condition("PIDPressure", pid_pressure,
                            pid_pressure ? "KubeletHasInsufficientPID" : "KubeletHasSufficientPID",
                            pid_pressure ? "kubelet has insufficient PID available"
                                         : "kubelet has sufficient PID available",
                            previous, now, heartbeat));
  conds.push_back(condition("Ready", true, "KubeletReady", ready_msg, previous, now, heartbeat));

  json::array addresses;
  if (!c.internal_ip.empty())
    addresses.push_back(json::object{{"type", "InternalIP"}, {"address", c.internal_ip}});
  addresses.push_back(
      json::object{{"type", "Hostname"}, {"address", c.hostname.empty() ? c.name : c.hostname}});

  json::object info{{"machineID", h.machine_id},
                    {"systemUUID", h.system_uuid},
                    {"bootID", h.boot_id},
                    {"kernelVersion", h.kernel_version},
                    {"osImage", h.os_image},
                    {"containerRuntimeVersion", c.runtime_version},
                    {"kubeletVersion", c.kubelet_version},
                    {"kubeProxyVersion", ""},
                    {"operatingSystem", "linux"},
                    {"architecture", h.architecture.empty() ? "amd64" : h.architecture}};

  return json::object{{"capacity", std::move(capacity)},
                      {"allocatable", std::move(allocatable)},
                      {"conditions", std::move(conds)},
                      {"addresses", std::move(addresses)},
                      {"daemonEndpoints",
                       json::object{{"kubeletEndpoint", json::object{{"Port", c.kubelet_port}}}}},
                      {"nodeInfo", std::move(info)}};
}

json::value status_change_key(const json::value& status) {
  json::value v = status;
  if (auto* conds = find_path(v, {"conditions"}); conds && conds->is_array())
    for (auto& c : conds->as_array())
      if (c.is_object()) c.as_object().erase("lastHeartbeatTime");
  return v;
}

}  // namespace podwarp::noded::agent
