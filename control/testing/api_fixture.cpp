#include "testing/api_fixture.h"

#include "podwarp/asio_run.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "podwarp/kubeconfig.h"
#include "storage/etcd_process.h"

namespace podwarp::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct ApiFixture::Process {
  pid_t pid = 0;
  std::string log_path;
  std::string data_dir;
  std::string url;

  void stop(int sig = SIGTERM) {
    if (pid <= 0) return;
    ::kill(pid, sig);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = 0;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = 0;
  }
  ~Process() { stop(); }
};

struct ApiFixture::Impl {
  std::unique_ptr<storage::EtcdProcess> etcd;
  std::unique_ptr<Process> control;
  std::vector<std::unique_ptr<Process>> extras;
  std::vector<std::string> base_args;
};

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, std::size_t n = 3000) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// Starts podwarp-control with output to log_path and waits for its "serving on" line.
std::expected<std::unique_ptr<ApiFixture::Process>, std::string> spawn_control(
    const std::string& etcd, const std::string& data_dir, const std::string& log_path,
    const std::vector<std::string>& extra) {
  std::vector<std::string> args = {std::string(PODWARP_BIN_DIR) + "/podwarp-control",
                                   "--etcd-servers", etcd, "--data-dir", data_dir,
                                   "--secure-port", "0", "--bind-address", "127.0.0.1",
                                   "--etcd-compaction-interval", "0"};
  // Only the apiserver unless the test asks for more: tests run the components they test.
  if (std::find(extra.begin(), extra.end(), "--components") == extra.end()) {
    args.push_back("--components");
    args.push_back("apiserver");
  }
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  auto p = std::make_unique<ApiFixture::Process>();
  p->pid = pid;
  p->log_path = log_path;
  p->data_dir = data_dir;
  static const std::regex serving(R"(serving on (https://[0-9.]+:[0-9]+))");
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string log = slurp(log_path);
    std::smatch m;
    if (std::regex_search(log, m, serving)) {
      p->url = m[1];
      return p;
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      p->pid = 0;
      return std::unexpected("podwarp-control exited before serving:\n" + tail(log));
    }
    std::this_thread::sleep_for(50ms);
  }
  std::string log = slurp(log_path);
  return std::unexpected("podwarp-control did not serve within 60 s:\n" + tail(log));
}

}  // namespace

ApiFixture::ApiFixture() : impl_(std::make_unique<Impl>()) {}

ApiFixture::~ApiFixture() {
  for (auto& e : impl_->extras) {
    if (e) e->stop();
  }
  if (impl_->control) impl_->control->stop();
  impl_->etcd.reset();
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

std::expected<std::unique_ptr<ApiFixture>, std::string> ApiFixture::start(
    std::vector<std::string> extra_args) {
  std::unique_ptr<ApiFixture> f(new ApiFixture());
  char tmpl[] = "/tmp/podwarp-apifixture-XXXXXX";
  if (!::mkdtemp(tmpl)) return std::unexpected(std::string("mkdtemp: ") + std::strerror(errno));
  f->dir_ = tmpl;
  storage::EtcdOptions eo;
  eo.data_dir = f->dir_ + "/etcd";
  auto etcd = storage::EtcdProcess::start(eo);
  if (!etcd) return std::unexpected(std::string("etcd: ") + etcd.error().what());
  f->impl_->etcd = std::move(*etcd);
  f->impl_->base_args = extra_args;
  auto c = spawn_control(f->impl_->etcd->endpoint(), f->dir_ + "/control", f->dir_ + "/control.log",
                         extra_args);
  if (!c) return std::unexpected(c.error());
  f->impl_->control = std::move(*c);
  f->kubeconfig_ = f->dir_ + "/control/admin.kubeconfig";
  auto kc = kubeconfig::load(f->kubeconfig_);
  if (!kc) return std::unexpected("load " + f->kubeconfig_ + ": " + kc.error());
  f->config_ = client::Config::from_kubeconfig(*kc);
  return f;
}

std::expected<void, std::string> ApiFixture::restart_control(std::vector<std::string> extra_args) {
  impl_->control->stop();
  // The previous process's log keeps its own "serving on" line: start the new one afresh.
  std::error_code ec;
  fs::rename(dir_ + "/control.log", fmt::format("{}/control.log.{}", dir_, ++restarts_), ec);
  auto c = spawn_control(impl_->etcd->endpoint(), dir_ + "/control", dir_ + "/control.log",
                         extra_args);
  if (!c) return std::unexpected(c.error());
  impl_->control = std::move(*c);
  auto kc = kubeconfig::load(kubeconfig_);
  if (!kc) return std::unexpected("load " + kubeconfig_ + ": " + kc.error());
  config_ = client::Config::from_kubeconfig(*kc);
  return {};
}

std::expected<int, std::string> ApiFixture::start_extra_control(std::vector<std::string> extra_args) {
  int index = static_cast<int>(impl_->extras.size());
  std::string data = fmt::format("{}/control-extra-{}", dir_, index);
  std::error_code ec;
  fs::create_directories(data, ec);
  fs::copy(dir_ + "/control/pki", data + "/pki", fs::copy_options::recursive, ec);
  if (ec) return std::unexpected("copy pki: " + ec.message());
  auto c = spawn_control(impl_->etcd->endpoint(), data, fmt::format("{}.log", data), extra_args);
  if (!c) return std::unexpected(c.error());
  impl_->extras.push_back(std::move(*c));
  return index;
}

void ApiFixture::stop_extra_control(int index, int signal) {
  if (index < 0 || index >= static_cast<int>(impl_->extras.size()) || !impl_->extras[index]) return;
  impl_->extras[index]->stop(signal);
}

client::Client ApiFixture::client() { return client::Client(io_.get_executor(), config_); }

const std::string& ApiFixture::etcd_endpoint() const { return impl_->etcd->endpoint(); }

void ApiFixture::run_for(std::chrono::milliseconds d) {
  io_.restart();
  podwarp::run_for(io_, d);
}

bool ApiFixture::eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    run_for(50ms);
  }
  return pred();
}

}  // namespace podwarp::testing
