#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "runtime/runtime.h"

namespace podwarp::noded::runtime {
namespace {

std::expected<void, SysError> write_file(const std::string& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(errno_error("open " + path));
  ssize_t n = ::write(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(content.size()))
    return std::unexpected(sys_error(err, "write " + path));
  return {};
}

}  // namespace

std::expected<PodSandbox, SysError> PodSandbox::create(cgroup::CgroupManager& cgroups,
                                                       const SandboxConfig& cfg) {
  if (!ns::valid_pod_uid(cfg.pod_uid)) {
    return std::unexpected(logic_error("invalid pod uid \"" + cfg.pod_uid + "\""));
  }
  std::string files = cfg.run_dir + "/pods/" + cfg.pod_uid;
  std::error_code ec;
  std::filesystem::create_directories(files, ec);
  if (ec) return std::unexpected(SysError{ec.value(), "mkdir " + files + ": " + ec.message()});
  std::string hosts = cfg.hosts;
  if (hosts.empty()) {
    // The kubelet's managed hosts file, without the "<podIP>\t<hostname>" line: the pod IP is
    // not known here; callers that know it pass the whole file in cfg.hosts.
    hosts =
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
        "ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n";
  }
  auto cleanup_files = [&] { std::filesystem::remove_all(files, ec); };
  for (auto [name, content] :
       {std::pair<const char*, std::string>{"hosts", hosts}, {"hostname", cfg.hostname + "\n"}}) {
    if (auto r = write_file(files + "/" + name, content); !r) {
      cleanup_files();
      return std::unexpected(r.error());
    }
  }
  if (!cfg.resolv_conf.empty()) {
    if (auto r = write_file(files + "/resolv.conf", cfg.resolv_conf); !r) {
      cleanup_files();
      return std::unexpected(r.error());
    }
  }
  auto pins = ns::PodNamespaces::create({cfg.run_dir, cfg.pod_uid, cfg.hostname});
  if (!pins) {
    cleanup_files();
    return std::unexpected(pins.error());
  }
  std::string rel = "pod" + cfg.pod_uid;
  auto report = cgroups.create(rel, cfg.limits, true);
  if (!report) {
    (void)pins->release();
    cleanup_files();
    return std::unexpected(report.error());
  }
  PodSandbox sb(cgroups, std::move(*pins), rel, files, cfg.share_pid_ns);
  sb.report_ = std::move(*report);
  sb.has_resolv_ = !cfg.resolv_conf.empty();
  return sb;
}

std::expected<cgroup::ApplyReport, SysError> PodSandbox::create_container_cgroup(
    std::string_view name, const cgroup::Limits& limits) {
  if (!ns::valid_pod_uid(name)) {
    return std::unexpected(logic_error("invalid container name \"" + std::string(name) + "\""));
  }
  return cgroups_->create(cgroup_rel_ + "/" + std::string(name), limits, false);
}

void PodSandbox::configure(ContainerSpec& spec, std::string_view container_name) const {
  spec.net_ns = ns_.path(ns::NsType::kNet);
  spec.ipc_ns = ns_.path(ns::NsType::kIpc);
  spec.uts_ns = ns_.path(ns::NsType::kUts);
  spec.pid_ns = share_pid_ && ns_.has_pid_ns() ? ns_.path(ns::NsType::kPid) : "";
  spec.cgroup = cgroups_->path_of(cgroup_rel_ + "/" + std::string(container_name));
  spec.hosts_file = files_dir_ + "/hosts";
  spec.hostname_file = files_dir_ + "/hostname";
  spec.resolv_conf_file = has_resolv_ ? files_dir_ + "/resolv.conf" : "";
}

std::expected<void, SysError> PodSandbox::adopt_first_container(const Process& p) {
  if (!share_pid_ || ns_.has_pid_ns()) return {};
  // An unreaped child's pid cannot be reused, so /proc/<pid> is this process (a zombie has no
  // namespace links: the mount then fails with ENOENT).
  if (p.reaped()) return std::unexpected(logic_error("first container already exited"));
  return ns_.pin_pid_ns(p.pid());
}

std::expected<void, SysError> PodSandbox::remove_container_cgroup(std::string_view name) {
  return cgroups_->destroy(cgroup_rel_ + "/" + std::string(name));
}

std::expected<void, SysError> PodSandbox::release() {
  auto cg = cgroups_->destroy(cgroup_rel_);
  auto pins = ns_.release();
  std::error_code ec;
  std::filesystem::remove_all(files_dir_, ec);
  if (!cg) return cg;
  if (!pins) return pins;
  if (ec)
    return std::unexpected(SysError{ec.value(), "remove " + files_dir_ + ": " + ec.message()});
  return {};
}

}  // namespace podwarp::noded::runtime
