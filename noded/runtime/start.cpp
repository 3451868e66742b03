// start_container / exec_in: the clone3 child. See runtime.h for the design; the rule here is
// that everything after clone3 in the child is a raw syscall on memory prepared beforehand.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <deque>
#include <memory>

#include "runtime/runtime.h"
#include "seccomp/seccomp.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace podwarp::noded::runtime {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

enum class OpKind : std::uint8_t {
  kMount,      // mount(a, b, fstype, flags, data)
  kMkdirP,     // mkdir -p a
  kTouch,      // create file a if missing (parent must exist)
  kMknod,      // mknod a (mode, dev)
  kSymlink,    // symlink a -> b (target a, link b)
  kPivot,      // pivot_root into a
  kMask,       // masked path a: /dev/null over a file, ro tmpfs over a dir; missing: skipped
  kReadonly,   // read-only path a: bind onto itself + recursive ro; missing: skipped
  kSetattrRo,  // mount_setattr(a, RDONLY), recursive if flags != 0
};

struct Op {
  OpKind kind;
  const char* a = nullptr;
  const char* b = nullptr;
  const char* fstype = nullptr;
  unsigned long flags = 0;
  const char* data = nullptr;
  mode_t mode = 0;
  dev_t dev = 0;
  const char* step = "";  // error context
};

struct ChildError {
  int err;
  char step[200];
};

// Everything the child needs, built before clone3.
struct Plan {
  std::deque<std::string> arena;  // stable storage for every string below
  const char* c(std::string s) { return arena.emplace_back(std::move(s)).c_str(); }

  std::vector<Op> ops;
  std::vector<const char*> argv, envp, exec_candidates;
  const char* exec_step = "";
  const char* workdir = "/";
  const char* hostname = nullptr;
  size_t hostname_len = 0;
  int ns_fds[3] = {-1, -1, -1};  // net, ipc, uts to join
  int ns_types[3] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS};
  int join_pidfd = -1;  // exec: setns(pidfd, mnt|net|ipc|uts)
  int stdio[3] = {-1, -1, -1};
  bool controlling_tty = false;  // setsid + TIOCSCTTY on fd 0
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::uint64_t caps = 0;
  int last_cap = 40;
  bool no_new_privs = false;
  sock_fprog seccomp{};
  bool has_seccomp = false;
  std::shared_ptr<const seccomp::BpfProgram> seccomp_prog;
  int err_fd = -1;
  std::unique_ptr<char[]> child_stack;  // kChildStackSize bytes (vfork path)
};

constexpr size_t kChildStackSize = 256 * 1024;

// ---- child side: raw syscalls only ----

size_t c_strlen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

[[noreturn]] void child_fail(const Plan& p, int err, const char* step,
                             const char* detail = nullptr) {
  ChildError e{};
  e.err = err;
  size_t i = 0;
  for (const char* s = step; *s != '\0' && i + 1 < sizeof e.step; ++s) e.step[i++] = *s;
  if (detail != nullptr) {
    for (const char* s = detail; *s != '\0' && i + 1 < sizeof e.step; ++s) e.step[i++] = *s;
  }
  ssize_t unused = ::write(p.err_fd, &e, sizeof e);
  (void)unused;
  ::_exit(127);
}

int child_mkdir_p(const char* path) {
  char buf[PATH_MAX];
  size_t n = c_strlen(path);
  if (n + 1 > sizeof buf) return ENAMETOOLONG;
  std::memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; ++i) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char saved = buf[i];
      buf[i] = '\0';
      if (::mkdir(buf, 0755) < 0 && errno != EEXIST) return errno;
      buf[i] = saved;
    }
  }
  return 0;
}

int setattr_ro(const char* path, bool recursive) {
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  return static_cast<int>(::syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0,
                                    &attr, sizeof attr));
}

void run_op(const Plan& p, const Op& op) {
  switch (op.kind) {
    case OpKind::kMount:
      if (::mount(op.a, op.b, op.fstype, op.flags, op.data) < 0) child_fail(p, errno, op.step);
      return;
    case OpKind::kMkdirP:
      if (int e = child_mkdir_p(op.a); e != 0) child_fail(p, e, op.step);
      return;
    case OpKind::kTouch: {
      int fd = ::open(op.a, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) child_fail(p, errno, op.step);
      ::close(fd);
      return;
    }
    case OpKind::kMknod:
      if (::mknod(op.a, op.mode, op.dev) < 0) child_fail(p, errno, op.step);
      return;
    case OpKind::kSymlink:
      if (::symlink(op.a, op.b) < 0 && errno != EEXIST) child_fail(p, errno, op.step);
      return;
    case OpKind::kPivot:
      if (::chdir(op.a) < 0) child_fail(p, errno, "chdir rootfs");
      if (::syscall(SYS_pivot_root, ".", ".") < 0) child_fail(p, errno, "pivot_root");
      if (::umount2(".", MNT_DETACH) < 0) child_fail(p, errno, "umount old root");
      if (::chdir("/") < 0) child_fail(p, errno, "chdir /");
      return;
    case OpKind::kMask: {
      struct stat st {};
      if (::stat(op.a, &st) < 0) {
        if (errno == ENOENT) return;
        child_fail(p, errno, op.step);
      }
      int rc = S_ISDIR(st.st_mode) ? ::mount("tmpfs", op.a, "tmpfs", MS_RDONLY, "size=0k")
                                   : ::mount("/dev/null", op.a, nullptr, MS_BIND, nullptr);
      if (rc < 0) child_fail(p, errno, op.step);
      return;
    }
    case OpKind::kReadonly:
      if (::mount(op.a, op.a, nullptr, MS_BIND | MS_REC, nullptr) < 0) {
        if (errno == ENOENT) return;
        child_fail(p, errno, op.step);
      }
      if (setattr_ro(op.a, true) < 0) child_fail(p, errno, op.step);
      return;
    case OpKind::kSetattrRo:
      if (setattr_ro(op.a, op.flags != 0) < 0) child_fail(p, errno, op.step);
      return;
  }
}

// Bounding set, user, capabilities, no_new_privs, seccomp. Order as runc: a seccomp filter
// without no_new_privs needs CAP_SYS_ADMIN, so it goes in before the capabilities drop (the
// profile allows every syscall used after it); with no_new_privs it goes in last.
void child_security(const Plan& p) {
  if (p.has_seccomp && !p.no_new_privs) {
    if (seccomp::install(&p.seccomp) < 0) child_fail(p, errno, "seccomp");
  }
  for (int cap = 0; cap <= p.last_cap; ++cap) {
    if ((p.caps >> cap) & 1) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) child_fail(p, errno, "prctl PR_CAPBSET_DROP");
  }
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) child_fail(p, errno, "prctl PR_SET_KEEPCAPS");
  if (::syscall(SYS_setgroups, p.groups.size(), p.groups.data()) < 0) {
    child_fail(p, errno, "setgroups");
  }
  if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) < 0) child_fail(p, errno, "setresgid");
  if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) < 0) child_fail(p, errno, "setresuid");
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = data[0].permitted = static_cast<std::uint32_t>(p.caps);
  data[1].effective = data[1].permitted = static_cast<std::uint32_t>(p.caps >> 32);
  if (::syscall(SYS_capset, &hdr, data) < 0) child_fail(p, errno, "capset");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    child_fail(p, errno, "prctl PR_CAP_AMBIENT");
  }
  if (p.no_new_privs) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      child_fail(p, errno, "prctl PR_SET_NO_NEW_PRIVS");
    if (p.has_seccomp && seccomp::install(&p.seccomp) < 0) child_fail(p, errno, "seccomp");
  }
}

[[noreturn]] void child_main(const Plan& p) {
  // stdio: move the caller's fds out of the way first, then onto 0/1/2 (dup2 clears CLOEXEC).
  int tmp[3];
  for (int i = 0; i < 3; ++i) {
    tmp[i] = ::fcntl(p.stdio[i], F_DUPFD_CLOEXEC, 10);
    if (tmp[i] < 0) child_fail(p, errno, "dup stdio");
  }
  for (int i = 0; i < 3; ++i) {
    if (::dup2(tmp[i], i) < 0) child_fail(p, errno, "dup2 stdio");
  }
  if (p.controlling_tty) {
    if (::setsid() < 0) child_fail(p, errno, "setsid");
    if (::ioctl(0, TIOCSCTTY, 0) < 0) child_fail(p, errno, "ioctl TIOCSCTTY");
  }
  // Signals: nothing of noded's dispositions or mask reaches the container.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) {
    if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  if (p.join_pidfd >= 0) {
    if (::setns(p.join_pidfd, CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
      child_fail(p, errno, "setns into container");
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (p.ns_fds[i] >= 0 && ::setns(p.ns_fds[i], p.ns_types[i]) < 0) {
      child_fail(p, errno, i == 0 ? "setns net" : i == 1 ? "setns ipc" : "setns uts");
    }
  }
  ::umask(0);
  for (const Op& op : p.ops) run_op(p, op);
  if (p.hostname != nullptr && ::sethostname(p.hostname, p.hostname_len) < 0) {
    child_fail(p, errno, "sethostname");
  }
  ::umask(022);
  child_security(p);
  if (::chdir(p.workdir) < 0) child_fail(p, errno, "chdir ", p.workdir);
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  int last_err = ENOENT;
  for (const char* path : p.exec_candidates) {
    ::execve(path, const_cast<char* const*>(p.argv.data()),
             const_cast<char* const*>(p.envp.data()));
    // Keep looking on the PATH for these; stop on anything else (runc's LookPath is similar).
    if (errno == EACCES) {
      last_err = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      last_err = errno;
      break;
    }
  }
  child_fail(p, last_err, p.exec_step);
}

#if defined(__x86_64__)
// clone3 with a new stack: the child cannot return through a C function's frame, so it calls
// fn(arg) from assembly and exits with its result (glibc's clone does the same).
extern "C" long podwarp_clone3_vm(clone_args* args, size_t size, void (*fn)(void*), void* arg);
asm(R"(
  .text
  .globl podwarp_clone3_vm
  .type podwarp_clone3_vm, @function
podwarp_clone3_vm:
  mov %rdx, %r8
  mov %rcx, %r9
  mov $435, %eax
  syscall
  test %rax, %rax
  jz 1f
  ret
1:
  xor %ebp, %ebp
  mov %r9, %rdi
  call *%r8
  mov $60, %eax
  xor %edi, %edi
  syscall
  hlt
  .size podwarp_clone3_vm, .-podwarp_clone3_vm
)");
static_assert(SYS_clone3 == 435 && SYS_exit == 60);

void child_entry(void* plan) { child_main(*static_cast<const Plan*>(plan)); }
#endif

// ---- parent side ----

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool bad_container_path(std::string_view p) {
  if (p.empty() || p.front() != '/') return true;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (p.substr(i, j - i) == "..") return true;
    i = j + 1;
  }
  return false;
}

std::string parent_dir(const std::string& p) {
  size_t s = p.rfind('/');
  return s == 0 || s == std::string::npos ? "/" : p.substr(0, s);
}

// argv/env/exec candidates/identity/seccomp/stdio, shared by start and exec.
std::expected<void, SysError> plan_process(Plan& plan, const ProcessSpec& proc, Fd& devnull) {
  if (proc.argv.empty() || proc.argv[0].empty()) {
    return std::unexpected(logic_error("no command specified"));
  }
  for (const auto& a : proc.argv) plan.argv.push_back(plan.c(a));
  plan.argv.push_back(nullptr);
  std::string path_env = kDefaultPath;
  for (const auto& e : proc.env) {
    plan.envp.push_back(plan.c(e));
    if (e.starts_with("PATH=")) path_env = e.substr(5);
  }
  plan.envp.push_back(nullptr);
  const std::string& a0 = proc.argv[0];
  plan.exec_step = plan.c("exec " + a0);
  if (a0.find('/') != std::string::npos) {
    plan.exec_candidates.push_back(plan.c(a0));
  } else {
    size_t i = 0;
    while (i <= path_env.size()) {
      size_t j = path_env.find(':', i);
      if (j == std::string::npos) j = path_env.size();
      std::string dir = path_env.substr(i, j - i);
      if (dir.empty()) dir = ".";
      plan.exec_candidates.push_back(plan.c(dir + "/" + a0));
      i = j + 1;
    }
  }
  plan.workdir = plan.c(proc.working_dir.empty() ? "/" : proc.working_dir);
  plan.uid = proc.uid;
  plan.gid = proc.gid;
  plan.groups = proc.supplemental_groups;
  plan.caps = proc.capabilities & all_capabilities();
  plan.last_cap = last_capability();
  plan.no_new_privs = proc.no_new_privs;
  if (proc.seccomp == SeccompProfile::kRuntimeDefault) {
    auto prog = seccomp::runtime_default(plan.caps);
    if (!prog) return std::unexpected(prog.error().wrap("seccomp profile"));
    plan.seccomp_prog = *prog;
    plan.seccomp = plan.seccomp_prog->fprog();
    plan.has_seccomp = true;
  }
  devnull = Fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.fd < 0) return std::unexpected(errno_error("open /dev/null"));
  plan.stdio[0] = proc.stdin_fd >= 0 ? proc.stdin_fd : devnull.fd;
  plan.controlling_tty = proc.controlling_tty && proc.stdin_fd >= 0;
  plan.stdio[1] = proc.stdout_fd >= 0 ? proc.stdout_fd : devnull.fd;
  plan.stdio[2] = proc.stderr_fd >= 0 ? proc.stderr_fd : devnull.fd;
  return {};
}

void add(Plan& p, Op op) { p.ops.push_back(op); }

Op mount_op(Plan& p, const char* src, const std::string& dst, const char* fstype,
            unsigned long flags, const char* data) {
  return Op{.kind = OpKind::kMount,
            .a = src,
            .b = p.c(dst),
            .fstype = fstype,
            .flags = flags,
            .data = data,
            .step = p.c(std::string("mount ") +
                        (fstype ? fstype
                         : src  ? src
                                : "") +
                        " on " + dst)};
}

std::expected<void, SysError> plan_mounts(Plan& p, const ContainerSpec& spec) {
  char real[PATH_MAX];
  if (::realpath(spec.rootfs.c_str(), real) == nullptr) {
    return std::unexpected(errno_error("realpath " + spec.rootfs));
  }
  const std::string root = real;
  if (root == "/") return std::unexpected(logic_error("rootfs must not be /"));
  auto in_root = [&](const std::string& cpath) { return root + cpath; };

  add(p, Op{.kind = OpKind::kMount,
            .a = nullptr,
            .b = "/",
            .fstype = nullptr,
            .flags = MS_REC | MS_PRIVATE,
            .step = "make / rprivate"});
  add(p, mount_op(p, p.c(root), root, nullptr, MS_BIND | MS_REC, nullptr));
  // /proc: a new procfs of the container's pid namespace.
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(in_root("/proc")), .step = "mkdir /proc"});
  add(p, mount_op(p, "proc", in_root("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  // /dev: tmpfs with the usual nodes.
  std::string dev = in_root("/dev");
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(dev), .step = "mkdir /dev"});
  add(p, mount_op(p, "tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  for (Node n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7}, Node{"random", 1, 8},
                 Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    add(p, Op{.kind = OpKind::kMknod,
              .a = p.c(dev + "/" + n.name),
              .mode = S_IFCHR | 0666,
              .dev = makedev(n.major, n.minor),
              .step = p.c(std::string("mknod /dev/") + n.name)});
  }
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(dev + "/pts"), .step = "mkdir /dev/pts"});
  add(p, mount_op(p, "devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  add(p, Op{.kind = OpKind::kSymlink,
            .a = "pts/ptmx",
            .b = p.c(dev + "/ptmx"),
            .step = "symlink /dev/ptmx"});
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(dev + "/shm"), .step = "mkdir /dev/shm"});
  add(p, mount_op(p, "shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=1777,size=65536k"));
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(dev + "/mqueue"), .step = "mkdir /dev/mqueue"});
  add(p,
      mount_op(p, "mqueue", dev + "/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
  struct Link {
    const char* target;
    const char* name;
  };
  for (Link l : {Link{"/proc/self/fd", "fd"}, Link{"/proc/self/fd/0", "stdin"},
                 Link{"/proc/self/fd/1", "stdout"}, Link{"/proc/self/fd/2", "stderr"},
                 Link{"/proc/kcore", "core"}}) {
    add(p, Op{.kind = OpKind::kSymlink,
              .a = l.target,
              .b = p.c(dev + "/" + l.name),
              .step = p.c(std::string("symlink /dev/") + l.name)});
  }
  if (spec.process.controlling_tty && spec.process.stdin_fd >= 0) {
    // As runc: the terminal on fd 0 (a pty of noded's devpts, not of the container's own
    // instance) is bind-mounted on /dev/console, where ttyname(3) finds it.
    // By its path: a bind of the fd itself (/proc/self/fd/0) is refused (EINVAL), its mount
    // being in noded's mount namespace, not the container's copy.
    char tty[PATH_MAX];
    std::string link = "/proc/self/fd/" + std::to_string(spec.process.stdin_fd);
    ssize_t n = ::readlink(link.c_str(), tty, sizeof tty - 1);
    if (n < 0) return std::unexpected(errno_error("readlink " + link));
    tty[n] = '\0';
    add(p, Op{.kind = OpKind::kTouch, .a = p.c(dev + "/console"), .step = "create /dev/console"});
    add(p, mount_op(p, p.c(tty), dev + "/console", nullptr, MS_BIND, nullptr));
  }
  // /sys: read-only sysfs (rw when privileged).
  add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(in_root("/sys")), .step = "mkdir /sys"});
  add(p, mount_op(p, "sysfs", in_root("/sys"), "sysfs",
                  MS_NOSUID | MS_NODEV | MS_NOEXEC | (spec.privileged ? 0 : MS_RDONLY), nullptr));
  // /etc files, then volumes.
  std::vector<BindMount> binds;
  if (!spec.hosts_file.empty())
    binds.push_back({spec.hosts_file, "/etc/hosts", spec.readonly_rootfs});
  if (!spec.hostname_file.empty()) {
    binds.push_back({spec.hostname_file, "/etc/hostname", spec.readonly_rootfs});
  }
  if (!spec.resolv_conf_file.empty()) {
    binds.push_back({spec.resolv_conf_file, "/etc/resolv.conf", spec.readonly_rootfs});
  }
  binds.insert(binds.end(), spec.mounts.begin(), spec.mounts.end());
  for (const auto& b : binds) {
    if (bad_container_path(b.destination)) {
      return std::unexpected(logic_error("mount destination \"" + b.destination +
                                         "\" must be absolute without \"..\""));
    }
    struct stat st {};
    if (::stat(b.source.c_str(), &st) < 0) return std::unexpected(errno_error("stat " + b.source));
    std::string dst = in_root(b.destination);
    if (S_ISDIR(st.st_mode)) {
      add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(dst), .step = p.c("mkdir " + b.destination)});
    } else {
      add(p, Op{.kind = OpKind::kMkdirP,
                .a = p.c(parent_dir(dst)),
                .step = p.c("mkdir " + parent_dir(b.destination))});
      add(p, Op{.kind = OpKind::kTouch, .a = p.c(dst), .step = p.c("create " + b.destination)});
    }
    Op m = mount_op(p, p.c(b.source), dst, nullptr, MS_BIND | MS_REC, nullptr);
    m.step = p.c("bind " + b.source + " on " + b.destination);
    add(p, m);
    if (b.readonly) {
      add(p, Op{.kind = OpKind::kSetattrRo,
                .a = p.c(dst),
                .flags = 1,
                .step = p.c("mount_setattr ro " + b.destination)});
    }
  }
  add(p, Op{.kind = OpKind::kPivot, .a = p.c(root), .step = "pivot_root"});
  if (!spec.privileged) {
    for (const auto& m : spec.masked_paths) {
      add(p, Op{.kind = OpKind::kMask, .a = p.c(m), .step = p.c("mask " + m)});
    }
    for (const auto& r : spec.readonly_paths) {
      add(p, Op{.kind = OpKind::kReadonly, .a = p.c(r), .step = p.c("readonly " + r)});
    }
  }
  const std::string& wd = spec.process.working_dir;
  if (!wd.empty() && wd != "/") {
    add(p, Op{.kind = OpKind::kMkdirP, .a = p.c(wd), .step = p.c("mkdir workingDir " + wd)});
  }
  if (spec.readonly_rootfs) {
    add(p, Op{.kind = OpKind::kSetattrRo, .a = "/", .flags = 0, .step = "mount_setattr ro /"});
  }
  return {};
}

// Enters `pidns_fd`'s pid namespace for this thread's children until destroyed.
class PidNsSwitch {
 public:
  std::expected<void, SysError> enter(int target_fd) {
    own_ = Fd(::open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC));
    if (own_.fd < 0) return std::unexpected(errno_error("open /proc/thread-self/ns/pid"));
    if (::setns(target_fd, CLONE_NEWPID) < 0) return std::unexpected(errno_error("setns pid"));
    active_ = true;
    return {};
  }
  ~PidNsSwitch() {
    if (active_) ::setns(own_.fd, CLONE_NEWPID);
  }

 private:
  Fd own_;
  bool active_ = false;
};

std::expected<Process, SysError> launch(Plan& plan, std::uint64_t flags, int cgroup_fd,
                                        int pidns_fd, const std::string& cgroup,
                                        std::string_view context) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return std::unexpected(errno_error("pipe2"));
  Fd rd(pipefd[0]), wr(pipefd[1]);
  plan.err_fd = wr.fd;
#if defined(__x86_64__)
  // operator new[] of char is 16-byte aligned; the kernel starts the child at the top.
  plan.child_stack.reset(new char[kChildStackSize]);
#endif
  int pidfd = -1;
  clone_args args{};
  args.flags = flags | CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = cgroup_fd >= 0 ? static_cast<std::uint64_t>(cgroup_fd) : 0;
  long pid;
  {
    // No signal handler of noded may run in the child before it resets the dispositions
    // (the child unblocks everything after that, see child_main).
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    struct RestoreMask {
      sigset_t* m;
      ~RestoreMask() { ::pthread_sigmask(SIG_SETMASK, m, nullptr); }
    } restore{&old};
    PidNsSwitch sw;
    if (pidns_fd >= 0) {
      if (auto r = sw.enter(pidns_fd); !r) return std::unexpected(r.error().wrap(context));
    }
#if defined(__x86_64__)
    // vfork-style: the child borrows noded's address space (no page-table copy, no COW faults,
    // whatever noded's size) on its own stack; this thread sleeps until the child execs or
    // exits. Other threads keep running: the child touches only `plan` and its stack.
    args.flags |= CLONE_VM | CLONE_VFORK;
    args.stack = reinterpret_cast<std::uint64_t>(plan.child_stack.get());
    args.stack_size = kChildStackSize;
    pid = podwarp_clone3_vm(&args, sizeof args, &child_entry, &plan);
    if (pid < 0) {
      errno = static_cast<int>(-pid);
      pid = -1;
    }
#else
    pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) child_main(plan);
#endif
  }
  if (pid < 0) return std::unexpected(errno_error("clone3").wrap(context));
  Process proc(static_cast<pid_t>(pid), pidfd, cgroup);
  wr = Fd();
  ChildError err{};
  ssize_t n;
  do {
    n = ::read(rd.fd, &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return proc;  // exec'd: the CLOEXEC pipe closed
  (void)proc.wait();
  if (n != static_cast<ssize_t>(sizeof err)) {
    return std::unexpected(logic_error(std::string(context) + ": child failed without a report"));
  }
  err.step[sizeof err.step - 1] = '\0';
  return std::unexpected(sys_error(err.err, err.step).wrap(context));
}

}  // namespace

std::expected<Process, SysError> start_container(const ContainerSpec& spec) {
  constexpr std::string_view kCtx = "container start";
  Plan plan;
  Fd devnull;
  if (auto r = plan_process(plan, spec.process, devnull); !r)
    return std::unexpected(r.error().wrap(kCtx));
  if (bad_container_path(plan.workdir)) {
    return std::unexpected(logic_error("container start: workingDir \"" + spec.process.working_dir +
                                       "\" must be absolute without \"..\""));
  }
  if (auto r = plan_mounts(plan, spec); !r) return std::unexpected(r.error().wrap(kCtx));
  std::uint64_t flags = CLONE_NEWNS;
  Fd ns[3];
  const std::string* paths[3] = {&spec.net_ns, &spec.ipc_ns, &spec.uts_ns};
  const std::uint64_t own[3] = {CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS};
  for (int i = 0; i < 3; ++i) {
    if (paths[i]->empty()) {
      flags |= own[i];
      continue;
    }
    ns[i] = Fd(::open(paths[i]->c_str(), O_RDONLY | O_CLOEXEC));
    if (ns[i].fd < 0) return std::unexpected(errno_error("open " + *paths[i]).wrap(kCtx));
    plan.ns_fds[i] = ns[i].fd;
  }
  if (spec.uts_ns.empty() && !spec.hostname.empty()) {
    plan.hostname = plan.c(spec.hostname);
    plan.hostname_len = spec.hostname.size();
  }
  Fd pidns;
  if (spec.pid_ns.empty()) {
    flags |= CLONE_NEWPID;
  } else {
    pidns = Fd(::open(spec.pid_ns.c_str(), O_RDONLY | O_CLOEXEC));
    if (pidns.fd < 0) return std::unexpected(errno_error("open " + spec.pid_ns).wrap(kCtx));
  }
  Fd cg;
  if (!spec.cgroup.empty()) {
    cg = Fd(::open(spec.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cg.fd < 0) return std::unexpected(errno_error("open " + spec.cgroup).wrap(kCtx));
  }
  return launch(plan, flags, cg.fd, pidns.fd, spec.cgroup, kCtx);
}

std::expected<Process, SysError> exec_in(const Process& container, const ProcessSpec& proc,
                                         const std::string& cgroup) {
  constexpr std::string_view kCtx = "exec";
  if (container.pidfd() < 0 || container.reaped()) {
    return std::unexpected(logic_error("exec: container process is not running"));
  }
  Plan plan;
  Fd devnull;
  if (auto r = plan_process(plan, proc, devnull); !r) return std::unexpected(r.error().wrap(kCtx));
  plan.join_pidfd = container.pidfd();
  Fd cg;
  if (!cgroup.empty()) {
    cg = Fd(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (cg.fd < 0) return std::unexpected(errno_error("open " + cgroup).wrap(kCtx));
  }
  return launch(plan, 0, cg.fd, container.pidfd(), cgroup, kCtx);
}

}  // namespace podwarp::noded::runtime
