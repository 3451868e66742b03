// ensure_machine_bpffs: runs in a forked child inside its own mount namespace (mounts
// private), where the machine's /sys/fs/bpf is unmounted first, so the machine's own mount
// is never touched. Root only (skipped otherwise).
#include "bpfutil/bpf_util.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace podwarp::noded::bpfutil {
namespace {

// Runs `body` in a child in a new mount namespace with /sys/fs/bpf not a bpffs; the child's
// exit code is body's result (0 = pass), 100 when the namespace could not be set up.
int in_namespace_without_bpffs(const std::function<int()>& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(100);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(100);
    for (int i = 0; i < 8 && is_bpffs(kMachineBpffs); ++i) ::umount2(kMachineBpffs, MNT_DETACH);
    if (is_bpffs(kMachineBpffs)) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

class MachineBpffs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount namespaces, mount)";
  }
};

TEST_F(MachineBpffs, MountedWhenMissingForAPathBelowIt) {
  int rc = in_namespace_without_bpffs([] {
    if (!ensure_machine_bpffs("/sys/fs/bpf/podwarp-x/lb")) return 1;
    if (!is_bpffs(kMachineBpffs)) return 2;
    // Once there, a second call mounts nothing more (no stacked instance).
    if (::mkdir("/sys/fs/bpf/pin-probe", 0700) != 0) return 3;
    if (!ensure_machine_bpffs("/sys/fs/bpf")) return 4;
    if (::access("/sys/fs/bpf/pin-probe", F_OK) != 0) return 5;
    return 0;
  });
  ASSERT_NE(rc, 100) << "could not make a mount namespace without /sys/fs/bpf";
  EXPECT_EQ(rc, 0);
}

TEST_F(MachineBpffs, OtherPathsAreLeftAlone) {
  int rc = in_namespace_without_bpffs([] {
    for (const char* p : {"/tmp/podwarp-bpf", "/sys/fs/bpfx/a", "/sys/fs", "relative/sys/fs/bpf"}) {
      if (!ensure_machine_bpffs(p)) return 1;
      if (is_bpffs(kMachineBpffs)) return 2;
    }
    return 0;
  });
  ASSERT_NE(rc, 100) << "could not make a mount namespace without /sys/fs/bpf";
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace podwarp::noded::bpfutil
