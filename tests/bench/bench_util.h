// Small helpers shared by the C++ benchmarks: timing, medians and percentiles, and running an
// iptables-restore style tool on a rules file (the peers of the network benchmarks).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace podwarp::bench {

using Clock = std::chrono::steady_clock;

inline double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1)))];
}

// Runs `tool [--noflush]` with `file` as stdin; its exit status (128 when it did not exit).
inline int run_restore(const std::string& tool, const std::string& file, bool noflush) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open(file.c_str(), O_RDONLY);
    if (in < 0) ::_exit(126);
    ::dup2(in, 0);
    if (noflush)
      ::execlp(tool.c_str(), tool.c_str(), "--noflush", static_cast<char*>(nullptr));
    else
      ::execlp(tool.c_str(), tool.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

namespace detail {
inline pid_t g_bench_child = -1;
inline void kill_bench_child(int) {
  if (g_bench_child > 0) ::kill(g_bench_child, SIGKILL);
}
}  // namespace detail

// Runs `body` in a forked child (it may unshare namespaces, start threads, move cgroups) and
// waits; SIGINT/SIGTERM/SIGHUP of this parent kill the child. Then `cleanup` runs here, also
// when the child crashed or was killed. The child ends with _exit (its threads may still run:
// no static destructors). Returns the child's exit status (1 when killed by a signal).
inline int run_in_child(const char* name, const std::function<int()>& body,
                        const std::function<void()>& cleanup) {
  std::fflush(stdout);
  detail::g_bench_child = ::fork();
  if (detail::g_bench_child == 0) {
    int rc = body();
    std::fflush(stdout);
    ::_exit(rc);
  }
  struct sigaction sa {};
  sa.sa_handler = detail::kill_bench_child;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  int status = 0;
  while (::waitpid(detail::g_bench_child, &status, 0) < 0 && errno == EINTR) {
  }
  cleanup();
  if (WIFSIGNALED(status)) {
    std::printf("%s: killed by signal %d (cleaned up)\n", name, WTERMSIG(status));
    return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace podwarp::bench
