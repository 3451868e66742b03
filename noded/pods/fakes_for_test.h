// Fakes of ContainerRuntime and ImageService for the pod lifecycle tests: containers are
// timers, scripted per container name and attempt. Test-only.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <memory>

#include "podwarp/asio_run.h"
#include "pods/runtime_service.h"

namespace podwarp::noded::pods::testing {

namespace asio = boost::asio;

struct Behavior {
  int exit_code = 0;
  std::chrono::milliseconds run_for{-1};  // <0: until signalled
  bool fail_start = false;
  bool ignore_sigterm = false;
  bool oom = false;
  std::string output;  // written to stdout at start
};

struct FakeContainer {
  std::string id, name;
  int attempt = 0;
  bool exited = false;
  ExitInfo exit;
  Behavior b;
  std::unique_ptr<asio::steady_timer> done;
};

class FakeRuntime : public ContainerRuntime {
 public:
  explicit FakeRuntime(asio::io_context& io) : io_(io) {}

  std::function<Behavior(const std::string& name, int attempt)> script = [](const std::string&, int) {
    return Behavior{};
  };
  std::function<ExecResult(const std::string& id, const std::vector<std::string>&)> exec_script =
      [](const std::string&, const std::vector<std::string>&) { return ExecResult{0, false, ""}; };
  std::map<std::string, AdoptResult> adopt_results;  // by container id; default kGone
  int sandbox_failures = 0;
  // Sees every start request; a returned message fails the start with it.
  std::function<std::optional<std::string>(const ContainerStartRequest&)> start_hook;

  std::vector<std::string> starts;                    // container names in start order
  std::vector<std::pair<std::string, int>> signals;   // (name, signal)
  std::vector<std::string> released, removed;
  std::vector<std::string> events;  // "start:<name>", "signal:<name>:<sig>", "exec:<argv0>"

  int sandboxes = 0;
  std::map<std::string, std::shared_ptr<FakeContainer>> containers;

  Awaitable<std::expected<Sandbox, std::string>> create_sandbox(const SandboxRequest&) override {
    if (sandbox_failures > 0) {
      --sandbox_failures;
      co_return std::unexpected("fake sandbox failure");
    }
    ++sandboxes;
    co_return Sandbox{"", ""};
  }
  Awaitable<std::expected<void, std::string>> release_sandbox(const std::string& uid) override {
    released.push_back(uid);
    co_return std::expected<void, std::string>{};
  }
  Awaitable<std::expected<ContainerHandle, std::string>> start_container(
      const ContainerStartRequest& req) override {
    if (start_hook)
      if (auto e = start_hook(req)) co_return std::unexpected(*e);
    Behavior b = script(req.container_name, req.attempt);
    if (b.fail_start) co_return std::unexpected("container start: exec /bin/nope: ENOENT");
    starts.push_back(req.container_name);
    events.push_back("start:" + req.container_name);
    auto c = std::make_shared<FakeContainer>();
    c->id = "fake://" + std::to_string(++next_id_);
    c->name = req.container_name;
    c->attempt = req.attempt;
    c->b = b;
    c->done = std::make_unique<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    if (!b.output.empty() && req.stdout_fd >= 0) (void)!::write(req.stdout_fd, b.output.data(), b.output.size());
    containers[c->id] = c;
    if (b.run_for.count() >= 0) {
      auto t = std::make_shared<asio::steady_timer>(io_, b.run_for);
      t->async_wait([this, c, t](boost::system::error_code) { finish(*c, c->b.exit_code, 0, c->b.oom); });
    }
    co_return ContainerHandle{c->id, 4242, 99};
  }
  Awaitable<ExitInfo> wait_container(const std::string& id) override {
    auto c = containers.at(id);
    while (!c->exited) co_await c->done->async_wait(asio::as_tuple(asio::use_awaitable));
    co_return c->exit;
  }
  std::expected<void, std::string> signal_container(const std::string& id, int sig) override {
    auto it = containers.find(id);
    if (it == containers.end()) return std::unexpected("no such container");
    auto& c = *it->second;
    signals.push_back({c.name, sig});
    events.push_back("signal:" + c.name + ":" + std::to_string(sig));
    if (c.exited) return {};
    if (sig == SIGTERM && c.b.ignore_sigterm) return {};
    finish(c, 128 + sig, sig, false);
    return {};
  }
  void remove_container(const std::string& id) override { removed.push_back(id); }
  Awaitable<ExecResult> exec_in_container(const std::string& id, const std::vector<std::string>& argv,
                                          std::chrono::milliseconds) override {
    events.push_back("exec:" + (argv.empty() ? std::string() : argv[0]));
    co_return exec_script(id, argv);
  }
  Awaitable<AdoptResult> adopt_container(const std::string&, const ContainerHandle& h) override {
    auto it = adopt_results.find(h.id);
    AdoptResult r = it == adopt_results.end() ? AdoptResult{} : it->second;
    if (r.state == AdoptState::kRunning) {
      auto c = std::make_shared<FakeContainer>();
      c->id = h.id;
      c->name = "adopted";
      c->done = std::make_unique<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
      containers[c->id] = c;
    }
    co_return r;
  }

  void finish(FakeContainer& c, int code, int sig, bool oom) {
    if (c.exited) return;
    c.exited = true;
    c.exit = ExitInfo{true, code, sig, oom, std::chrono::system_clock::now()};
    c.done->cancel();
  }
  std::shared_ptr<FakeContainer> running(const std::string& name) {
    for (auto& [id, c] : containers)
      if (c->name == name && !c->exited) return c;
    return nullptr;
  }

 private:
  asio::io_context& io_;
  int next_id_ = 0;
};

class FakeImages : public ImageService {
 public:
  int failures = 0;  // first N pulls fail
  std::vector<std::string> pulls;
  Awaitable<std::expected<ImageInfo, std::string>> ensure_image(const std::string& image,
                                                                PullPolicy) override {
    pulls.push_back(image);
    if (failures > 0) {
      --failures;
      co_return std::unexpected("fake registry: connection refused");
    }
    ImageInfo i;
    i.image_ref = image;
    i.image_id = "sha256:0123";
    i.cmd = {"/bin/sh"};
    co_return i;
  }
};

// Runs the loop until pred() or the timeout; returns pred().
template <class P>
bool run_until(asio::io_context& io, P pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    podwarp::run_for(io, std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace podwarp::noded::pods::testing
