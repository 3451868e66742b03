#include "manager/components.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <thread>

#include "controllers/apps/apps.h"
#include "controllers/batch/batch.h"
#include "controllers/core/core.h"
#include "controllers/node/node.h"
#include "podwarp/log.h"
#include "scheduler/scheduler.h"

namespace podwarp::manager {

namespace asio = boost::asio;

namespace {

// One term of leadership: what runs while the lease is held.
class Term {
 public:
  virtual ~Term() = default;
  virtual void stop() = 0;
};

class SchedulerTerm : public Term {
 public:
  SchedulerTerm(asio::any_io_executor ex, client::Client c)
      : scheduler_(std::move(ex), std::move(c), scheduler::SchedulerOptions{}) {
    scheduler_.start();
  }
  void stop() override { scheduler_.stop(); }

 private:
  scheduler::Scheduler scheduler_;
};

class ControllersTerm : public Term {
 public:
  ControllersTerm(asio::any_io_executor ex, client::Client c, const loop::ControllerOptions& opts)
      : informers_(ex, c), ctx_{ex, c, informers_, opts} {
    for (auto* make : {&apps::make_apps_controllers, &controllers::make_core_controllers,
                       &controllers::make_node_controllers}) {
      for (auto& ctl : make(ctx_)) controllers_.push_back(std::move(ctl));
    }
    for (auto& ctl : controllers::make_batch_controllers(ctx_)) controllers_.push_back(std::move(ctl));
    informers_.start();
    asio::co_spawn(
        ex,
        [this]() -> client::Awaitable<void> {
          if (!co_await informers_.wait_synced() || stopped_) co_return;
          for (auto& ctl : controllers_) {
            log::info("controller manager: starting {} controller", ctl->name());
            ctl->start();
          }
        },
        asio::detached);
  }
  void stop() override {
    stopped_ = true;
    for (auto& ctl : controllers_) ctl->stop();
    informers_.stop();
  }

 private:
  loop::SharedInformers informers_;
  loop::ControllerContext ctx_;
  loop::ControllerList controllers_;
  bool stopped_ = false;
};

// A component thread: io_context, client, election, terms.
class ComponentRunner {
 public:
  using MakeTerm = std::function<std::unique_ptr<Term>(asio::any_io_executor, client::Client)>;

  ComponentRunner(std::string name, client::Config api, const ComponentOptions& opts,
                  std::string lease_name, MakeTerm make)
      : name_(std::move(name)),
        client_(io_.get_executor(), std::move(api)),
        leader_elect_(opts.leader_elect),
        election_(opts.election),
        make_(std::move(make)) {
    election_.lease_name = std::move(lease_name);
    if (election_.identity.empty()) election_.identity = loop::default_identity();
  }

  void start() {
    asio::post(io_, [this] { begin(); });
    thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(io_);
      io_.run();
    });
  }

  void stop() {
    asio::post(io_, [this] {
      if (elector_) elector_->stop();
      for (auto& t : terms_) t->stop();
      io_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }

 private:
  void begin() {
    if (!leader_elect_) {
      terms_.push_back(make_(io_.get_executor(), client_));
      return;
    }
    if (elector_) retired_.push_back(std::move(elector_));
    elector_ = std::make_unique<loop::LeaderElector>(client_, election_);
    elector_->run(
        [this] {
          log::info("{}: leading (lease {}/{})", name_, election_.lease_namespace,
                    election_.lease_name);
          terms_.push_back(make_(io_.get_executor(), client_));
        },
        [this] {
          log::warn("{}: lost leadership; stopping until elected again", name_);
          if (!terms_.empty()) terms_.back()->stop();
          asio::post(io_, [this] { begin(); });
        });
  }

  std::string name_;
  asio::io_context io_{1};
  client::Client client_;
  bool leader_elect_;
  loop::LeaderElectionOptions election_;
  MakeTerm make_;
  std::unique_ptr<loop::LeaderElector> elector_;
  std::vector<std::unique_ptr<loop::LeaderElector>> retired_;
  std::vector<std::unique_ptr<Term>> terms_;
  std::thread thread_;
};

}  // namespace

struct ControlComponents::Impl {
  std::vector<std::unique_ptr<ComponentRunner>> runners;
};

ControlComponents::ControlComponents(client::Config api, ComponentOptions options)
    : impl_(std::make_unique<Impl>()) {
  if (options.scheduler) {
    impl_->runners.push_back(std::make_unique<ComponentRunner>(
        "scheduler", api, options, "kube-scheduler",
        [](asio::any_io_executor ex, client::Client c) -> std::unique_ptr<Term> {
          return std::make_unique<SchedulerTerm>(std::move(ex), std::move(c));
        }));
  }
  if (options.controllers) {
    loop::ControllerOptions copts = options.controller_options;
    impl_->runners.push_back(std::make_unique<ComponentRunner>(
        "controller-manager", api, options, "kube-controller-manager",
        [copts](asio::any_io_executor ex, client::Client c) -> std::unique_ptr<Term> {
          return std::make_unique<ControllersTerm>(std::move(ex), std::move(c), copts);
        }));
  }
}

ControlComponents::~ControlComponents() { stop(); }

void ControlComponents::start() {
  for (auto& r : impl_->runners) r->start();
}

void ControlComponents::stop() {
  for (auto& r : impl_->runners) r->stop();
  impl_->runners.clear();
}

}  // namespace podwarp::manager
