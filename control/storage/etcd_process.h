// EtcdProcess: one real etcd server (/usr/bin/etcd), started and owned by this process, for
// tests, benchmarks and `podwarp up`.
//
// start() picks two free loopback ports (client and peer; never 8080 or 2024), starts a
// single-member cluster on them with the space quota and auto-compaction off, and blocks
// until the member serves a linearizable read (which needs a leader). etcd's output goes to
// <data_dir>/etcd.log. stop() signals only the pid this object started (through a pidfd, so
// a reused pid is never hit) and reaps it. The destructor stops etcd and removes the data dir
// if start() created it.
//
// start() and stop() block (fork/exec, polling, waiting for exit): call them at setup and
// teardown, not on an event loop thread. An EtcdProcess is not shared between threads.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace podwarp::storage {

// etcd's backend commits its write buffer every 10,000 operations or 100 ms by default. Until
// then the uncommitted writes sit in a read buffer that etcd 3.4 (Debian's 3.4.23) copies for
// every Txn, even a write Txn (3.5 stopped doing that); a Put copies nothing. Every write of
// an apiserver is a Txn (compare, then put), so at a few thousand writes/s each one copies
// hundreds of entries. A limit of 1,000 operations (~500 writes: each also updates etcd's
// consistent index) bounds that copy and adds at most one bbolt commit per 1,000 operations.
// In apiserver_bench (3 runs each, medians): raw create Txns/s 6,123 -> 8,530 with 16 in
// flight and 7,492 -> 12,861 with 64, while raw puts stayed where they were (10,330 -> 10,964,
// 18,255 -> 20,364). Every etcd that podwarp starts gets it (EtcdProcess, `podwarp up`).
inline constexpr std::string_view kEtcdBackendBatchLimit = "--backend-batch-limit=1000";

struct EtcdOptions {
  std::string binary = "/usr/bin/etcd";
  // Empty: a fresh mkdtemp under /tmp ("/tmp/podwarp-etcd-XXXXXX"), removed by the destructor.
  // Given: created if missing, kept.
  std::string data_dir;
  // How long start() waits for the member to serve (a loaded 2-core machine is slow).
  std::chrono::milliseconds start_timeout = std::chrono::seconds(60);
  // --experimental-watch-progress-notify-interval; 0 keeps etcd's default (10 min).
  std::chrono::milliseconds progress_notify_interval{0};
  // The kernel kills etcd (SIGKILL) when the thread that started it exits, so a crashed test
  // leaves nothing behind. Turn off when the starting thread is not the process's lifetime.
  bool die_with_parent = true;
  std::vector<std::string> extra_args;  // appended to etcd's command line
  // Also serve clients on a unix socket in the data dir (see unix_endpoint()): no loopback
  // TCP between client and etcd.
  bool client_unix_socket = false;
};

class EtcdProcess {
 public:
  // Starts etcd and waits until it serves. On failure the error names the step, and for an
  // etcd that exited or never answered, includes the tail of its log.
  static std::expected<std::unique_ptr<EtcdProcess>, std::system_error> start(
      EtcdOptions options = {});

  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // "http://127.0.0.1:<client port>", for make_etcd_client.
  const std::string& endpoint() const { return endpoint_; }
  // "unix:<data dir>/client.sock:0" (gRPC target syntax, for make_etcd_client) when started
  // with client_unix_socket, else empty. etcd wants "host:port" in a unix:// listen URL and
  // takes it as a path relative to its working directory, hence the odd name; etcd runs in
  // its data dir.
  const std::string& unix_endpoint() const { return unix_endpoint_; }
  // etcd's pid; 0 once stopped.
  pid_t pid() const { return pid_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string log_path() const { return data_dir_ + "/etcd.log"; }

  // SIGTERM, then SIGKILL if etcd has not exited within grace; waits for and reaps it.
  // Idempotent. Returns etcd's exit code, or 128 + the signal that ended it (shell style).
  std::expected<int, std::system_error> stop(
      std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  EtcdProcess() = default;

  std::string endpoint_;
  std::string unix_endpoint_;
  std::string data_dir_;
  bool owns_data_dir_ = false;
  pid_t pid_ = 0;
  int pidfd_ = -1;
  int exit_status_ = 0;
};

}  // namespace podwarp::storage
