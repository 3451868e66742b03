// The Job and CronJob controllers against a real apiserver and etcd. No scheduler or node
// exists: the test plays the node, setting pod phases through pods/status.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "batch/batch.h"
#include "batch/job_logic.h"
#include "loop/shared_informers.h"
#include "podwarp/time.h"
#include "testing/api_fixture.h"

namespace podwarp::controllers {
namespace {

using namespace std::chrono_literals;

const api::Resource& R(std::string_view group, std::string_view plural) {
  return *api::find_resource(group, "v1", plural);
}

struct Harness {
  std::unique_ptr<testing::ApiFixture> fx;
  std::unique_ptr<loop::SharedInformers> informers;
  std::unique_ptr<loop::ControllerContext> ctx;
  loop::ControllerList controllers;
  std::chrono::system_clock::duration offset{0};  // the controllers' clock = real + offset

  void start(BatchOptions opts = {}) {
    auto f = testing::ApiFixture::start();
    ASSERT_TRUE(f) << f.error();
    fx = std::move(*f);
    informers = std::make_unique<loop::SharedInformers>(fx->io().get_executor(), fx->client());
    ctx = std::make_unique<loop::ControllerContext>(
        loop::ControllerContext{fx->io().get_executor(), fx->client(), *informers, {}});
    opts.now = [this] { return std::chrono::system_clock::now() + offset; };
    controllers = make_batch_controllers(*ctx, opts);
    informers->start();
    ASSERT_TRUE(fx->eventually([&] { return informers->synced(); }));
    for (auto& c : controllers) c->start();
  }
  ~Harness() {
    for (auto& c : controllers) c->stop();
    if (informers) informers->stop();
    if (fx) fx->run_for(50ms);
  }

  json::value create(const api::Resource& r, const char* text) {
    auto v = fx->run(fx->client().create(r, "default", json::parse(text)));
    EXPECT_TRUE(v) << v.error().to_string();
    return v ? *v : json::value();
  }
  std::optional<json::value> get(const api::Resource& r, std::string name) {
    auto v = fx->run(fx->client().get(r, "default", std::move(name)));
    if (!v) return std::nullopt;
    return *v;
  }
  std::vector<json::value> list(const api::Resource& r, std::string selector = {}) {
    client::ListOptions o;
    o.label_selector = std::move(selector);
    auto v = fx->run(fx->client().list(r, "default", o));
    std::vector<json::value> out;
    if (v) {
      for (auto& i : v->at("items").as_array()) out.push_back(i);
    }
    return out;
  }
  // Plays the kubelet: the pod ends with `phase`.
  void finish_pod(const json::value& pod, const char* phase) {
    std::string patch = fmt::format(R"({{"status":{{"phase":"{}"}}}})", phase);
    auto r = fx->run(fx->client().patch(R("", "pods"), "default",
                                        std::string(get_string(pod, {"metadata", "name"})),
                                        client::PatchType::merge, patch, {}, "status"));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  bool has_condition(const json::value& obj, std::string_view type, std::string_view reason = {}) {
    const json::value* st = find_path(obj, {"status"});
    if (st == nullptr) return false;
    const json::object* c = job::find_condition(*st, type);
    return c && c->at("status") == "True" &&
           (reason.empty() || get_string(json::value(*c), {"reason"}) == reason);
  }
  bool has_event(std::string_view object, std::string_view reason) {
    for (const auto& e : list(R("", "events"))) {
      if (get_string(e, {"involvedObject", "name"}) == object && get_string(e, {"reason"}) == reason) {
        return true;
      }
    }
    return false;
  }
};

bool terminal(const json::value& pod) {
  std::string_view phase = get_string(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed";
}

TEST(JobController, CompletionsFiveParallelismTwoNeverRunsMoreThanTwo) {
  Harness h;
  h.start();
  if (HasFatalFailure()) return;
  json::value job = h.create(R("batch", "jobs"), R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"five"},
    "spec":{"completions":5,"parallelism":2,"ttlSecondsAfterFinished":3,
      "template":{"spec":{"restartPolicy":"Never",
        "containers":[{"name":"c","image":"busybox"}]}}}})");
  std::string uid(get_string(job, {"metadata", "uid"}));
  int max_active = 0, finished = 0;
  auto deadline = std::chrono::steady_clock::now() + 40s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto pods = h.list(R("", "pods"), "batch.kubernetes.io/job-name=five");
    int active = 0;
    for (const auto& p : pods) active += terminal(p) ? 0 : 1;
    max_active = std::max(max_active, active);
    ASSERT_LE(active, 2);
    auto j = h.get(R("batch", "jobs"), "five");
    ASSERT_TRUE(j);
    if (h.has_condition(*j, "Complete")) break;
    // Finish one running pod at a time, as a node would.
    for (const auto& p : pods) {
      if (terminal(p)) continue;
      EXPECT_EQ(get_string(p, {"metadata", "labels", job::kControllerUid}), uid);
      EXPECT_EQ(get_string(p, {"metadata", "labels", job::kLegacyJobName}), "five");
      const auto& ref = p.at("metadata").at("ownerReferences").at(0);
      EXPECT_EQ(ref.at("kind"), "Job");
      EXPECT_EQ(ref.at("uid"), uid.c_str());
      EXPECT_EQ(ref.at("controller"), true);
      h.finish_pod(p, "Succeeded");
      ++finished;
      break;
    }
    h.fx->run_for(100ms);
  }
  auto j = h.get(R("batch", "jobs"), "five");
  ASSERT_TRUE(j);
  EXPECT_TRUE(h.has_condition(*j, "Complete", "CompletionsReached")) << json::serialize(*j);
  EXPECT_TRUE(h.has_condition(*j, "SuccessCriteriaMet"));
  EXPECT_EQ(get_int(*j, {"status", "succeeded"}), 5);
  EXPECT_EQ(get_int(*j, {"status", "active"}), 0);
  EXPECT_FALSE(get_string(*j, {"status", "completionTime"}).empty());
  EXPECT_FALSE(get_string(*j, {"status", "startTime"}).empty());
  EXPECT_EQ(max_active, 2);
  EXPECT_EQ(finished, 5);
  EXPECT_EQ(h.list(R("", "pods"), "batch.kubernetes.io/job-name=five").size(), 5u);
  EXPECT_TRUE(h.fx->eventually([&] { return h.has_event("five", "Completed"); }, 5s));
  EXPECT_TRUE(h.has_event("five", "SuccessfulCreate"));
  // ttlSecondsAfterFinished: 3 → the Job goes away.
  EXPECT_TRUE(h.fx->eventually([&] { return !h.get(R("batch", "jobs"), "five"); }, 10s));
}

TEST(JobController, BackoffLimitExceeded) {
  Harness h;
  BatchOptions o;
  o.pod_failure_backoff = 200ms;
  h.start(o);
  if (HasFatalFailure()) return;
  h.create(R("batch", "jobs"), R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"flaky"},
    "spec":{"backoffLimit":1,
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})");
  auto deadline = std::chrono::steady_clock::now() + 30s;
  int failed = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto j = h.get(R("batch", "jobs"), "flaky");
    ASSERT_TRUE(j);
    if (h.has_condition(*j, "Failed")) break;
    for (const auto& p : h.list(R("", "pods"), "job-name=flaky")) {
      if (!terminal(p)) {
        h.finish_pod(p, "Failed");
        ++failed;
      }
    }
    h.fx->run_for(100ms);
  }
  auto j = h.get(R("batch", "jobs"), "flaky");
  ASSERT_TRUE(j);
  EXPECT_TRUE(h.has_condition(*j, "Failed", "BackoffLimitExceeded")) << json::serialize(*j);
  EXPECT_TRUE(h.has_condition(*j, "FailureTarget", "BackoffLimitExceeded"));
  EXPECT_FALSE(h.has_condition(*j, "Complete"));
  EXPECT_EQ(get_int(*j, {"status", "failed"}), 2);
  EXPECT_EQ(failed, 2);
  EXPECT_EQ(h.list(R("", "pods"), "job-name=flaky").size(), 2u);  // no third pod
  EXPECT_TRUE(h.fx->eventually([&] { return h.has_event("flaky", "BackoffLimitExceeded"); }, 5s));
}

TEST(JobController, IndexedAndDeadline) {
  Harness h;
  h.start();
  if (HasFatalFailure()) return;
  h.create(R("batch", "jobs"), R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"idx"},
    "spec":{"completions":3,"parallelism":3,"completionMode":"Indexed",
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})");
  std::vector<json::value> pods;
  ASSERT_TRUE(h.fx->eventually([&] {
    pods = h.list(R("", "pods"), "job-name=idx");
    return pods.size() == 3;
  }));
  std::set<std::string> hostnames;
  for (const auto& p : pods) {
    std::string idx(get_string(p, {"metadata", "annotations", job::kCompletionIndex}));
    EXPECT_EQ(get_string(p, {"metadata", "labels", job::kCompletionIndex}), idx);
    EXPECT_EQ(get_string(p, {"metadata", "name"}).substr(0, 6), "idx-" + idx + "-");
    hostnames.insert(std::string(get_string(p, {"spec", "hostname"})));
    const auto& env = p.at("spec").at("containers").at(0).at("env").at(0);
    EXPECT_EQ(env.at("name"), "JOB_COMPLETION_INDEX");
    h.finish_pod(p, "Succeeded");
  }
  EXPECT_EQ(hostnames, (std::set<std::string>{"idx-0", "idx-1", "idx-2"}));
  ASSERT_TRUE(h.fx->eventually([&] {
    auto j = h.get(R("batch", "jobs"), "idx");
    return j && h.has_condition(*j, "Complete");
  }));
  EXPECT_EQ(get_string(*h.get(R("batch", "jobs"), "idx"), {"status", "completedIndexes"}), "0-2");

  // activeDeadlineSeconds: the running pod is deleted and the Job fails.
  h.create(R("batch", "jobs"), R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"slow"},
    "spec":{"activeDeadlineSeconds":2,
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})");
  ASSERT_TRUE(h.fx->eventually([&] { return h.list(R("", "pods"), "job-name=slow").size() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.fx->eventually([&] {
    auto j = h.get(R("batch", "jobs"), "slow");
    return j && h.has_condition(*j, "Failed", "DeadlineExceeded");
  }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_TRUE(h.fx->eventually([&] { return h.list(R("", "pods"), "job-name=slow").empty(); }, 5s));
}

TEST(JobController, SuspendAndResume) {
  Harness h;
  h.start();
  if (HasFatalFailure()) return;
  h.create(R("batch", "jobs"), R"({"apiVersion":"batch/v1","kind":"Job",
    "metadata":{"name":"later"},
    "spec":{"suspend":true,"parallelism":2,"completions":2,
      "template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})");
  ASSERT_TRUE(h.fx->eventually([&] {
    auto j = h.get(R("batch", "jobs"), "later");
    return j && h.has_condition(*j, "Suspended", "JobSuspended");
  }));
  h.fx->run_for(300ms);
  EXPECT_TRUE(h.list(R("", "pods"), "job-name=later").empty());
  EXPECT_TRUE(get_string(*h.get(R("batch", "jobs"), "later"), {"status", "startTime"}).empty());
  auto r = h.fx->run(h.fx->client().patch(R("batch", "jobs"), "default", "later",
                                          client::PatchType::merge, R"({"spec":{"suspend":false}})"));
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_TRUE(h.fx->eventually([&] { return h.list(R("", "pods"), "job-name=later").size() == 2; }));
  ASSERT_TRUE(h.fx->eventually([&] {
    auto j = h.get(R("batch", "jobs"), "later");
    return j && get_int(*j, {"status", "active"}) == 2;
  }));
  auto j = *h.get(R("batch", "jobs"), "later");
  const json::object* c = job::find_condition(j.at("status"), "Suspended");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->at("status"), "False");
  EXPECT_EQ(c->at("reason"), "JobResumed");
}

TEST(CronJobController, SchedulesEveryMinuteWithAMovedClock) {
  Harness h;
  BatchOptions o;
  o.pod_failure_backoff = 200ms;
  // The controllers' clock: 4 s before a minute boundary, an hour from now.
  auto real = std::chrono::system_clock::now();
  auto boundary = std::chrono::floor<std::chrono::minutes>(real + 1h) + 1min;
  h.offset = boundary - 4s - real;
  h.start(o);
  if (HasFatalFailure()) return;
  h.create(R("batch", "cronjobs"), R"({"apiVersion":"batch/v1","kind":"CronJob",
    "metadata":{"name":"tick"},
    "spec":{"schedule":"*/1 * * * *","successfulJobsHistoryLimit":1,
      "jobTemplate":{"metadata":{"labels":{"app":"tick"}},
        "spec":{"template":{"spec":{"restartPolicy":"Never",
          "containers":[{"name":"c","image":"busybox"}]}}}}}})");
  auto minutes = [](auto t) {
    return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
  };
  std::string first = fmt::format("tick-{}", minutes(boundary - 1min));
  std::string second = fmt::format("tick-{}", minutes(boundary));
  // The missed schedules since creation: only the most recent one runs, at once.
  ASSERT_TRUE(h.fx->eventually([&] { return h.get(R("batch", "jobs"), first).has_value(); }, 10s));
  auto j1 = *h.get(R("batch", "jobs"), first);
  EXPECT_EQ(get_string(j1, {"metadata", "annotations", "batch.kubernetes.io/cronjob-scheduled-timestamp"}),
            format_rfc3339(boundary - 1min));
  EXPECT_EQ(get_string(j1, {"metadata", "labels", "app"}), "tick");
  EXPECT_EQ(j1.at("metadata").at("ownerReferences").at(0).at("kind"), "CronJob");
  // The boundary passes (4 s later): the next one.
  ASSERT_TRUE(h.fx->eventually([&] { return h.get(R("batch", "jobs"), second).has_value(); }, 10s));
  EXPECT_EQ(h.list(R("batch", "jobs")).size(), 2u);
  auto cj = *h.get(R("batch", "cronjobs"), "tick");
  EXPECT_EQ(get_string(cj, {"status", "lastScheduleTime"}), format_rfc3339(boundary));
  ASSERT_TRUE(h.fx->eventually([&] {
    auto c = h.get(R("batch", "cronjobs"), "tick");
    const json::value* a = c ? find_path(*c, {"status", "active"}) : nullptr;
    return a && a->is_array() && a->as_array().size() == 2;
  }));
  // Both Jobs' pods succeed: the Jobs complete, leave status.active, and the history limit
  // of 1 deletes the older one.
  ASSERT_TRUE(h.fx->eventually([&] { return h.list(R("", "pods")).size() == 2; }));
  for (const auto& p : h.list(R("", "pods"))) h.finish_pod(p, "Succeeded");
  ASSERT_TRUE(h.fx->eventually([&] {
    auto c = h.get(R("batch", "cronjobs"), "tick");
    return c && find_path(*c, {"status", "active"}) == nullptr &&
           !get_string(*c, {"status", "lastSuccessfulTime"}).empty();
  }, 10s));
  EXPECT_TRUE(h.fx->eventually([&] { return !h.get(R("batch", "jobs"), first).has_value(); }, 10s));
  EXPECT_TRUE(h.get(R("batch", "jobs"), second).has_value());
  EXPECT_TRUE(h.has_event("tick", "SuccessfulCreate"));
  EXPECT_TRUE(h.has_event("tick", "SawCompletedJob"));
  EXPECT_TRUE(h.has_event("tick", "SuccessfulDelete"));

  // Forbid: a new schedule time while a Job runs starts nothing.
  auto cj2 = h.create(R("batch", "cronjobs"), R"({"apiVersion":"batch/v1","kind":"CronJob",
    "metadata":{"name":"solo"},
    "spec":{"schedule":"* * * * *","concurrencyPolicy":"Forbid",
      "jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never",
          "containers":[{"name":"c","image":"busybox"}]}}}}}})");
  ASSERT_TRUE(h.fx->eventually([&] {
    for (const auto& j : h.list(R("batch", "jobs"))) {
      if (get_string(j, {"metadata", "name"}).starts_with("solo-")) return true;
    }
    return false;
  }, 10s));
  h.offset += 2min;  // two more schedule times pass
  h.fx->run_for(std::chrono::milliseconds(0));
  // Touch the CronJob so that it is synced at once with the moved clock.
  h.fx->run(h.fx->client().patch(R("batch", "cronjobs"), "default", "solo", client::PatchType::merge,
                                 R"({"metadata":{"labels":{"touched":"1"}}})"));
  EXPECT_TRUE(h.fx->eventually([&] { return h.has_event("solo", "JobAlreadyActive"); }, 10s));
  int solo = 0;
  for (const auto& j : h.list(R("batch", "jobs"))) {
    solo += get_string(j, {"metadata", "name"}).starts_with("solo-") ? 1 : 0;
  }
  EXPECT_EQ(solo, 1);
}

TEST(CronJobController, AJobMadeByHandFromTheCronJobIsNotAdopted) {
  Harness h;
  h.start();
  if (HasFatalFailure()) return;
  // Scheduled once a year and suspended: the controller starts nothing itself.
  auto cj = h.create(R("batch", "cronjobs"), R"({"apiVersion":"batch/v1","kind":"CronJob",
    "metadata":{"name":"yearly"},
    "spec":{"schedule":"0 0 1 1 *","suspend":true,
      "jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"Never",
          "containers":[{"name":"c","image":"busybox"}]}}}}}})");
  // What `kubectl create job manual --from=cronjob/yearly` posts: the template, owned by the
  // CronJob as its controller.
  std::string job = fmt::format(R"({{"apiVersion":"batch/v1","kind":"Job",
    "metadata":{{"name":"manual","annotations":{{"cronjob.kubernetes.io/instantiate":"manual"}},
      "ownerReferences":[{{"apiVersion":"batch/v1","kind":"CronJob","name":"yearly",
        "uid":"{}","controller":true}}]}},
    "spec":{{"template":{{"spec":{{"restartPolicy":"Never",
      "containers":[{{"name":"c","image":"busybox"}}]}}}}}}}})",
                                get_string(cj, {"metadata", "uid"}));
  h.create(R("batch", "jobs"), job.c_str());
  ASSERT_TRUE(h.fx->eventually([&] { return h.has_event("yearly", "UnexpectedJob"); }, 10s));
  h.fx->run_for(300ms);
  auto now = h.get(R("batch", "cronjobs"), "yearly");
  ASSERT_TRUE(now);
  EXPECT_EQ(find_path(*now, {"status", "active"}), nullptr) << json::serialize(*now);
}

}  // namespace
}  // namespace podwarp::controllers
