#include "ns/pod_namespaces.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace podwarp::noded::ns {
namespace {

TEST(PodNamespacesTest, ValidUid) {
  EXPECT_TRUE(valid_pod_uid("0b5c3c1e-1111-2222-3333-444455556666"));
  EXPECT_FALSE(valid_pod_uid(""));
  EXPECT_FALSE(valid_pod_uid(".."));
  EXPECT_FALSE(valid_pod_uid("a/b"));
  auto r = PodNamespaces::create({.run_dir = "/tmp/x", .pod_uid = "../x", .hostname = "h"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "invalid pod uid \"../x\"");
}

std::string ns_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

TEST(PodNamespacesTest, CreatePinJoinRelease) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string run = "/tmp/podwarp-nstest-" + std::to_string(::getpid());
  struct Cleanup {
    std::string run;
    ~Cleanup() { std::filesystem::remove_all(run); }
  } cleanup{run};
  auto pn = PodNamespaces::create({.run_dir = run, .pod_uid = "pod-a", .hostname = "web-0"});
  ASSERT_TRUE(pn) << pn.error().message;
  struct Release {
    PodNamespaces& p;
    ~Release() { (void)p.release(); }
  } release{*pn};
  // The pins are distinct namespaces from ours.
  EXPECT_NE(ns_id(pn->path(NsType::kNet)), ns_id("/proc/self/ns/net"));
  EXPECT_NE(ns_id(pn->path(NsType::kUts)), ns_id("/proc/self/ns/uts"));
  EXPECT_NE(ns_id(pn->path(NsType::kIpc)), ns_id("/proc/self/ns/ipc"));
  EXPECT_FALSE(pn->has_pid_ns());
  // A child joining the UTS pin sees the pod hostname.
  auto fd = pn->open(NsType::kUts);
  ASSERT_TRUE(fd);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setns(*fd, CLONE_NEWUTS) != 0) ::_exit(2);
    utsname u{};
    ::uname(&u);
    ::_exit(std::strcmp(u.nodename, "web-0") == 0 ? 0 : 1);
  }
  ::close(*fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  // pid pin of a process in a new pid namespace.
  pid_t init = ::fork();
  if (init == 0) {
    ::pause();
    ::_exit(0);
  }
  // Our own pid ns is fine for the mechanism: the pin must show that process's namespace.
  ASSERT_TRUE(pn->pin_pid_ns(init));
  EXPECT_TRUE(pn->has_pid_ns());
  EXPECT_EQ(ns_id(pn->path(NsType::kPid)), ns_id("/proc/self/ns/pid"));
  ::kill(init, SIGKILL);
  ::waitpid(init, nullptr, 0);

  auto adopted = PodNamespaces::adopt(run, "pod-a");
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->dir(), pn->dir());
  ASSERT_TRUE(pn->release());
  EXPECT_FALSE(std::filesystem::exists(pn->dir()));
  EXPECT_TRUE(pn->release());  // idempotent
}

}  // namespace
}  // namespace podwarp::noded::ns
