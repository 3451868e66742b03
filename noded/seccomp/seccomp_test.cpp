#include "seccomp/seccomp.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace podwarp::noded::seccomp {
namespace {

// Runs `probe` in a forked child under the filter; returns the child's exit code.
int run_filtered(const BpfProgram& prog, int (*probe)()) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(100);
    auto f = prog.fprog();
    if (install(&f) != 0) ::_exit(101);
    ::_exit(probe());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

constexpr std::uint64_t kDefaultCaps =
    (1ULL << CAP_CHOWN) | (1ULL << CAP_SETUID) | (1ULL << CAP_SYS_CHROOT);

TEST(SeccompTest, DefaultDeniesOutsideTheAllowList) {
  auto prog = runtime_default(kDefaultCaps);
  ASSERT_TRUE(prog) << prog.error().message;
  EXPECT_GT((*prog)->insns.size(), 50u);
  // keyctl is outside the list whatever the capabilities: EPERM, not ENOSYS or a kill.
  EXPECT_EQ(run_filtered(**prog,
                         [] {
                           long r = ::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID,
                                              KEY_SPEC_SESSION_KEYRING, 0);
                           return r < 0 && errno == EPERM ? 0 : 1;
                         }),
            0);
  // Common syscalls work.
  EXPECT_EQ(run_filtered(**prog, [] { return ::getpid() > 0 && ::write(-1, "", 0) < 0 ? 0 : 1; }),
            0);
  // unshare needs CAP_SYS_ADMIN in the profile (even for a user namespace).
  EXPECT_EQ(
      run_filtered(**prog, [] { return ::unshare(CLONE_NEWUSER) < 0 && errno == EPERM ? 0 : 1; }),
      0);
  // personality: query allowed, ADDR_NO_RANDOMIZE denied.
  EXPECT_EQ(run_filtered(**prog,
                         [] {
                           return ::personality(0xffffffff) >= 0 &&
                                          ::personality(ADDR_NO_RANDOMIZE) < 0 && errno == EPERM
                                      ? 0
                                      : 1;
                         }),
            0);
  // clone3 reports ENOSYS so libc falls back to clone; fork (clone without ns flags) works.
  EXPECT_EQ(run_filtered(**prog,
                         [] {
                           long r = ::syscall(SYS_clone3, nullptr, 0);
                           if (!(r < 0 && errno == ENOSYS)) return 1;
                           pid_t p = ::fork();
                           if (p == 0) ::_exit(0);
                           return p > 0 ? 0 : 2;
                         }),
            0);
}

TEST(SeccompTest, CapabilityGroups) {
  auto with_admin = runtime_default(kDefaultCaps | (1ULL << CAP_SYS_ADMIN));
  ASSERT_TRUE(with_admin);
  EXPECT_EQ(run_filtered(**with_admin,
                         [] {
                           // The profile allows unshare; the kernel decides (root here: it
                           // succeeds).
                           return ::unshare(CLONE_NEWUTS) == 0 ? 0 : 1;
                         }),
            ::geteuid() == 0 ? 0 : 1);
  // Cached per capability set.
  auto again = runtime_default(kDefaultCaps);
  auto first = runtime_default(kDefaultCaps);
  ASSERT_TRUE(again && first);
  EXPECT_EQ(again->get(), first->get());
  EXPECT_NE(with_admin->get(), first->get());
}

}  // namespace
}  // namespace podwarp::noded::seccomp
