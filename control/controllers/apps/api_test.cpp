// The apps controllers against a real apiserver and etcd (control/testing/api_fixture.h). There
// is no scheduler and no node: the tests play the node by patching pods/status.
#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <iostream>

#include "controllers/apps/apps.h"
#include "controllers/apps/common.h"
#include "controllers/apps/deployment_util.h"
#include "loop/shared_informers.h"
#include "podwarp/time.h"
#include "testing/api_fixture.h"

namespace podwarp::apps {
namespace {

using namespace std::chrono_literals;

json::value J(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << text;
  return v ? *v : json::value();
}

class Cluster {
 public:
  enum Which { kRs = 1, kDeploy = 2, kDs = 4, kSts = 8 };

  explicit Cluster(int which) {
    auto f = testing::ApiFixture::start();
    if (!f) {
      error = f.error();
      return;
    }
    fx = std::move(*f);
    client = std::make_unique<client::Client>(fx->client());
    informers = std::make_unique<loop::SharedInformers>(fx->io().get_executor(), *client);
    ctx = std::make_unique<loop::ControllerContext>(
        loop::ControllerContext{fx->io().get_executor(), *client, *informers, {}});
    if (which & kRs) controllers.push_back(make_replicaset_controller(*ctx));
    if (which & kDeploy) controllers.push_back(make_deployment_controller(*ctx));
    if (which & kDs) controllers.push_back(make_daemonset_controller(*ctx));
    if (which & kSts) controllers.push_back(make_statefulset_controller(*ctx));
    informers->start();
    if (!fx->run(informers->wait_synced())) error = "informers did not sync";
    for (auto& c : controllers) c->start();
  }
  ~Cluster() {
    if (!fx) return;
    for (auto& c : controllers) c->stop();
    informers->stop();
    fx->run_for(300ms);
  }

  json::value create(const api::Resource& res, const std::string& text) {
    json::value obj = J(text);
    auto r = fx->run(loop::api_create(*client, res, "default", obj));
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? *r : json::value();
  }
  json::value get(const api::Resource& res, const std::string& name) {
    client::ListOptions o;
    auto r = fx->run(client->get(res, "default", name, o));
    return r ? *r : json::value();
  }
  std::vector<json::value> list(const api::Resource& res, const std::string& selector = {}) {
    client::ListOptions o;
    o.label_selector = selector;
    auto r = fx->run(client->list(res, "default", o));
    std::vector<json::value> out;
    if (!r) return out;
    for (const json::value& i : r->at("items").as_array()) out.push_back(i);
    return out;
  }
  bool patch(const api::Resource& res, const std::string& name, const std::string& patch,
             const std::string& sub = {}, client::PatchType type = client::PatchType::merge) {
    client::WriteOptions wo;
    auto r = fx->run(client->patch(res, "default", name, type, patch, wo, sub));
    EXPECT_TRUE(r) << r.error().to_string();
    return r.has_value();
  }
  bool remove(const api::Resource& res, const std::string& name) {
    auto r = fx->run(loop::api_delete(*client, res, "default", name));
    return r.has_value();
  }
  // What a node does when the containers run and pass their readiness probe.
  void mark_ready(const json::value& pod) {
    std::string now = format_rfc3339(std::chrono::system_clock::now());
    patch(pods_resource(), std::string(name_of(pod)),
          R"({"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":")" +
              now + R"("}]}})",
          "status");
  }
  void mark_all_ready(const std::string& selector) {
    for (const json::value& p : list(pods_resource(), selector)) {
      if (!pod_ready(p)) mark_ready(p);
    }
  }

  std::string error;
  std::unique_ptr<testing::ApiFixture> fx;
  std::unique_ptr<client::Client> client;
  std::unique_ptr<loop::SharedInformers> informers;
  std::unique_ptr<loop::ControllerContext> ctx;
  loop::ControllerList controllers;
};

std::vector<json::value> events_with_reason(Cluster& c, std::string_view reason) {
  std::vector<json::value> out;
  for (const json::value& e : c.list(*api::find_resource("", "v1", "events"))) {
    if (get_string(e, {"reason"}) == reason) out.push_back(e);
  }
  return out;
}

const std::string kRs = R"({"apiVersion":"apps/v1","kind":"ReplicaSet",
  "metadata":{"name":"web"},
  "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},
    "template":{"metadata":{"labels":{"app":"web"},"annotations":{"a":"b"}},
      "spec":{"containers":[{"name":"c","image":"nginx:1"}]}}}})";

TEST(ReplicaSetApi, CreatesReplacesAndScalesDownByRanking) {
  Cluster c(Cluster::kRs);
  ASSERT_TRUE(c.error.empty()) << c.error;
  // An orphan with matching labels is adopted instead of creating a third pod.
  c.create(pods_resource(), R"({"metadata":{"name":"orphan","labels":{"app":"web"}},
      "spec":{"containers":[{"name":"c","image":"nginx:1"}]}})");
  json::value rs = c.create(replicasets_resource(), kRs);
  ASSERT_TRUE(c.fx->eventually([&] { return c.list(pods_resource(), "app=web").size() == 3; }));
  c.fx->run_for(1s);  // no double creation while the watch lags
  auto pods = c.list(pods_resource(), "app=web");
  ASSERT_EQ(pods.size(), 3u);
  for (const json::value& p : pods) {
    const json::object* ref = controller_ref(p);
    ASSERT_NE(ref, nullptr) << name_of(p);
    EXPECT_EQ(get_string(json::value(*ref), {"uid"}), uid_of(rs));
    EXPECT_TRUE(get_bool(json::value(*ref), {"blockOwnerDeletion"}));
    if (name_of(p) != "orphan") {
      EXPECT_EQ(name_of(p).substr(0, 4), "web-");
      EXPECT_EQ(annotation(p, "a"), "b");
    }
  }
  EXPECT_NE(c.get(pods_resource(), "orphan").is_null(), true);
  auto created_events = events_with_reason(c, "SuccessfulCreate");
  EXPECT_EQ(created_events.size(), 2u);
  for (auto& e : created_events) {
    EXPECT_EQ(get_string(e, {"involvedObject", "kind"}), "ReplicaSet");
    EXPECT_EQ(get_string(e, {"involvedObject", "name"}), "web");
    EXPECT_EQ(get_string(e, {"message"}).substr(0, 17), "Created pod: web-");
  }

  // A deleted pod is replaced.
  std::string victim(name_of(pods[0]));
  ASSERT_TRUE(c.remove(pods_resource(), victim));
  ASSERT_TRUE(c.fx->eventually([&] {
    auto now = c.list(pods_resource(), "app=web");
    if (now.size() != 3) return false;
    for (auto& p : now) {
      if (name_of(p) == victim) return false;
    }
    return true;
  }));

  // Status: one pod Running and Ready.
  pods = c.list(pods_resource(), "app=web");
  std::sort(pods.begin(), pods.end(),
            [](auto& a, auto& b) { return name_of(a) < name_of(b); });
  std::string ready_pod(name_of(pods[1]));
  c.mark_ready(pods[1]);
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value r = c.get(replicasets_resource(), "web");
    return get_int(r, {"status", "replicas"}) == 3 && get_int(r, {"status", "readyReplicas"}) == 1 &&
           get_int(r, {"status", "availableReplicas"}) == 1 &&
           get_int(r, {"status", "fullyLabeledReplicas"}) == 3 &&
           get_int(r, {"status", "observedGeneration"}) == get_int(r, {"metadata", "generation"});
  }));

  // Scale down to 1: the ready pod survives.
  ASSERT_TRUE(c.patch(replicasets_resource(), "web", R"({"spec":{"replicas":1}})"));
  ASSERT_TRUE(c.fx->eventually([&] {
    auto now = c.list(pods_resource(), "app=web");
    return now.size() == 1 && name_of(now[0]) == ready_pod;
  }));
  EXPECT_EQ(events_with_reason(c, "SuccessfulDelete").size(), 2u);

  // A pod whose labels stop matching is released and replaced.
  ASSERT_TRUE(c.patch(pods_resource(), ready_pod, R"({"metadata":{"labels":{"app":"other"}}})"));
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value p = c.get(pods_resource(), ready_pod);
    return controller_ref(p) == nullptr && c.list(pods_resource(), "app=web").size() == 1;
  }));
}

const std::string kDeploy = R"({"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"web"},
  "spec":{"replicas":4,"selector":{"matchLabels":{"app":"web"}},
    "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":1}},
    "template":{"metadata":{"labels":{"app":"web"}},
      "spec":{"containers":[{"name":"c","image":"nginx:1"}]}}}})";

std::string progressing_reason(const json::value& d) {
  const json::value* st = find_path(d, {"status"});
  if (!st) return {};
  const json::object* c = find_condition(*st, "Progressing");
  return c ? std::string(get_string(json::value(*c), {"reason"})) : std::string();
}

bool rollout_complete(Cluster& c, const std::string& name, std::int64_t replicas) {
  json::value d = c.get(deployments_resource(), name);
  return get_int(d, {"status", "observedGeneration"}) >= get_int(d, {"metadata", "generation"}) &&
         get_int(d, {"status", "updatedReplicas"}) == replicas &&
         get_int(d, {"status", "replicas"}) == replicas &&
         get_int(d, {"status", "availableReplicas"}) == replicas;
}

std::int64_t ready_pods(Cluster& c, const std::string& sel) {
  std::int64_t n = 0;
  for (auto& p : c.list(pods_resource(), sel)) n += pod_ready(p) && !being_deleted(p) ? 1 : 0;
  return n;
}

TEST(DeploymentApi, RollingUpdateHoldsSurgeAndUnavailabilityAndRollsBack) {
  Cluster c(Cluster::kRs | Cluster::kDeploy);
  ASSERT_TRUE(c.error.empty()) << c.error;
  c.create(deployments_resource(), kDeploy);
  ASSERT_TRUE(c.fx->eventually([&] {
    c.mark_all_ready("app=web");
    return rollout_complete(c, "web", 4) &&
           progressing_reason(c.get(deployments_resource(), "web")) == "NewReplicaSetAvailable";
  }));
  auto rss = c.list(replicasets_resource());
  ASSERT_EQ(rss.size(), 1u);
  std::string rs1(name_of(rss[0]));
  std::string hash1(get_string(rss[0], {"metadata", "labels", "pod-template-hash"}));
  EXPECT_EQ(rs1, "web-" + hash1);
  EXPECT_EQ(annotation(rss[0], kRevisionAnnotation), "1");
  EXPECT_EQ(annotation(rss[0], kDesiredReplicasAnnotation), "4");
  EXPECT_EQ(annotation(rss[0], kMaxReplicasAnnotation), "5");
  {
    // The revision annotation went through the status subresource, as upstream's controller
    // writes it: the spec never changed, so neither did generation.
    json::value d = c.get(deployments_resource(), "web");
    EXPECT_EQ(annotation(d, kRevisionAnnotation), "1");
    EXPECT_EQ(get_int(d, {"metadata", "generation"}), 1);
    EXPECT_EQ(get_int(d, {"status", "observedGeneration"}), 1);
  }

  // New image: roll step by step, marking one new pod ready at a time.
  ASSERT_TRUE(c.patch(deployments_resource(), "web",
                      R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}})"));
  bool violated = false;
  std::string why;
  auto check = [&] {
    std::int64_t total = 0;
    for (auto& rs : c.list(replicasets_resource())) total += get_int(rs, {"spec", "replicas"});
    if (total > 5) {
      violated = true;
      why = "total replicas " + std::to_string(total);
    }
    std::int64_t ready = ready_pods(c, "app=web");
    if (ready < 3) {
      violated = true;
      why = "ready pods " + std::to_string(ready);
    }
  };
  int steps = 0;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!rollout_complete(c, "web", 4) && std::chrono::steady_clock::now() < deadline) {
    check();
    for (auto& p : c.list(pods_resource(), "app=web")) {
      if (!pod_ready(p) && !being_deleted(p)) {
        c.mark_ready(p);
        ++steps;
        break;
      }
    }
    c.fx->run_for(300ms);
  }
  check();
  EXPECT_FALSE(violated) << why;
  ASSERT_TRUE(rollout_complete(c, "web", 4));
  EXPECT_GE(steps, 4);
  ASSERT_TRUE(c.fx->eventually([&] {
    return progressing_reason(c.get(deployments_resource(), "web")) == "NewReplicaSetAvailable";
  }));
  json::value d = c.get(deployments_resource(), "web");
  EXPECT_EQ(annotation(d, kRevisionAnnotation), "2");
  EXPECT_EQ(get_int(d, {"metadata", "generation"}), 2);  // the one template change
  EXPECT_EQ(get_int(d, {"status", "unavailableReplicas"}), 0);
  const json::object* avail = find_condition(d.at("status"), "Available");
  ASSERT_NE(avail, nullptr);
  EXPECT_EQ(get_string(json::value(*avail), {"reason"}), "MinimumReplicasAvailable");
  rss = c.list(replicasets_resource());
  ASSERT_EQ(rss.size(), 2u);
  for (auto& rs : rss) {
    if (name_of(rs) == rs1) {
      EXPECT_EQ(get_int(rs, {"spec", "replicas"}), 0);
    } else {
      EXPECT_EQ(get_int(rs, {"spec", "replicas"}), 4);
      EXPECT_EQ(annotation(rs, kRevisionAnnotation), "2");
    }
  }
  {
    bool found = false;
    for (auto& e : events_with_reason(c, "ScalingReplicaSet")) {
      found = found || get_string(e, {"message"}) == "Scaled up replica set " + rs1 + " from 0 to 4";
      EXPECT_EQ(get_string(e, {"involvedObject", "kind"}), "Deployment");
    }
    EXPECT_TRUE(found);
  }

  // Rollback as modern kubectl does it: `kubectl rollout undo` patches the template from the
  // old RS (client side). The old RS is reused with revision 3.
  std::string cmd = "kubectl --kubeconfig " + c.fx->kubeconfig_path() +
                    " rollout undo deployment/web -n default >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  std::cerr << "kubectl rollout undo exit code " << rc << ", rolling steps " << steps << "\n";
  if (rc != 0) {
    // Without kubectl: the same JSON patch kubectl sends.
    json::value old_rs = c.get(replicasets_resource(), rs1);
    json::value tmpl = old_rs.at("spec").at("template");
    tmpl.as_object()["metadata"].as_object()["labels"].as_object().erase("pod-template-hash");
    json::array ops;
    ops.push_back(json::object{{"op", "replace"}, {"path", "/spec/template"}, {"value", tmpl}});
    ASSERT_TRUE(c.patch(deployments_resource(), "web", to_json(ops), "", client::PatchType::json));
  }
  ASSERT_TRUE(c.fx->eventually(
      [&] {
        c.mark_all_ready("app=web");
        json::value old_rs = c.get(replicasets_resource(), rs1);
        return get_int(old_rs, {"spec", "replicas"}) == 4 &&
               annotation(old_rs, kRevisionAnnotation) == "3" && rollout_complete(c, "web", 4);
      },
      60s));
  EXPECT_EQ(c.list(replicasets_resource()).size(), 2u);  // no third RS
  EXPECT_EQ(annotation(c.get(deployments_resource(), "web"), kRevisionAnnotation), "3");
  EXPECT_EQ(annotation(c.get(replicasets_resource(), rs1), kRevisionHistoryAnnotation), "1");

  // `kubectl rollout status` agrees (run while the controllers keep running here).
  auto status = std::async(std::launch::async, [&] {
    std::string cmd = "kubectl --kubeconfig " + c.fx->kubeconfig_path() +
                      " rollout status deployment/web -n default --timeout=20s >/dev/null 2>&1";
    return std::system(cmd.c_str());
  });
  c.fx->eventually([&] { return status.wait_for(0s) == std::future_status::ready; }, 30s);
  int status_rc = status.get();
  std::cerr << "kubectl rollout status exit code " << status_rc << "\n";
  if (rc == 0) {
    EXPECT_EQ(status_rc, 0);
  }
}

TEST(DeploymentApi, RecreateScalesOldToZeroBeforeCreatingNew) {
  Cluster c(Cluster::kRs | Cluster::kDeploy);
  ASSERT_TRUE(c.error.empty()) << c.error;
  std::string text = kDeploy;
  text.replace(text.find(R"("type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":1})"),
               std::string(R"("type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":1})").size(),
               R"("type":"Recreate")");
  text.replace(text.find(R"("replicas":4)"), 12, R"("replicas":4,"revisionHistoryLimit":0)");
  c.create(deployments_resource(), text);
  ASSERT_TRUE(c.fx->eventually([&] {
    c.mark_all_ready("app=web");
    return rollout_complete(c, "web", 4);
  }));
  std::string rs1(name_of(c.list(replicasets_resource())[0]));
  ASSERT_TRUE(c.patch(deployments_resource(), "web",
                      R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}})"));
  bool overlap = false;
  ASSERT_TRUE(c.fx->eventually(
      [&] {
        auto pods = c.list(pods_resource(), "app=web");
        bool old_pods = false, new_pods = false;
        for (auto& p : pods) {
          const json::object* ref = controller_ref(p);
          if (!ref) continue;
          (get_string(json::value(*ref), {"name"}) == rs1 ? old_pods : new_pods) = true;
        }
        overlap = overlap || (old_pods && new_pods);
        c.mark_all_ready("app=web");
        return rollout_complete(c, "web", 4);
      },
      30s));
  EXPECT_FALSE(overlap);
  // revisionHistoryLimit 0: the scaled-down old RS is deleted once the rollout is complete.
  ASSERT_TRUE(c.fx->eventually([&] { return c.get(replicasets_resource(), rs1).is_null(); }));
  EXPECT_EQ(c.list(replicasets_resource()).size(), 1u);
}

TEST(DeploymentApi, PauseBlocksRolloutButNotScalingAndResumeRollsOut) {
  Cluster c(Cluster::kRs | Cluster::kDeploy);
  ASSERT_TRUE(c.error.empty()) << c.error;
  c.create(deployments_resource(), kDeploy);
  ASSERT_TRUE(c.fx->eventually([&] {
    c.mark_all_ready("app=web");
    return rollout_complete(c, "web", 4);
  }));
  ASSERT_TRUE(c.patch(deployments_resource(), "web", R"({"spec":{"paused":true}})"));
  ASSERT_TRUE(c.fx->eventually([&] {
    return progressing_reason(c.get(deployments_resource(), "web")) == "DeploymentPaused";
  }));
  ASSERT_TRUE(c.patch(deployments_resource(), "web",
                      R"({"spec":{"replicas":6,"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}})"));
  ASSERT_TRUE(c.fx->eventually([&] {
    auto rss = c.list(replicasets_resource());
    return rss.size() == 1 && get_int(rss[0], {"spec", "replicas"}) == 6;
  }));
  c.fx->run_for(1s);
  EXPECT_EQ(c.list(replicasets_resource()).size(), 1u);
  ASSERT_TRUE(c.patch(deployments_resource(), "web", R"({"spec":{"paused":false}})"));
  ASSERT_TRUE(c.fx->eventually([&] { return c.list(replicasets_resource()).size() == 2; }));
  ASSERT_TRUE(c.fx->eventually(
      [&] {
        c.mark_all_ready("app=web");
        return rollout_complete(c, "web", 6) &&
               progressing_reason(c.get(deployments_resource(), "web")) == "NewReplicaSetAvailable";
      },
      60s));
  EXPECT_FALSE(events_with_reason(c, "ScalingReplicaSet").empty());
}

TEST(DeploymentApi, ProportionalScalingInTheMiddleOfARollout) {
  Cluster c(Cluster::kRs | Cluster::kDeploy);
  ASSERT_TRUE(c.error.empty()) << c.error;
  c.create(deployments_resource(), kDeploy);
  ASSERT_TRUE(c.fx->eventually([&] {
    c.mark_all_ready("app=web");
    return rollout_complete(c, "web", 4);
  }));
  std::string rs1(name_of(c.list(replicasets_resource())[0]));
  ASSERT_TRUE(c.patch(deployments_resource(), "web",
                      R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:2"}]}}}})"));
  // New pods never become ready: the rollout stalls at old 3 + new 2 (surge 1, unavailable 1).
  auto sizes = [&] {
    std::pair<std::int64_t, std::int64_t> out{-1, -1};
    for (auto& rs : c.list(replicasets_resource())) {
      (name_of(rs) == rs1 ? out.first : out.second) = get_int(rs, {"spec", "replicas"});
    }
    return out;
  };
  ASSERT_TRUE(c.fx->eventually([&] { return sizes() == std::pair<std::int64_t, std::int64_t>{3, 2}; }));
  c.fx->run_for(500ms);
  ASSERT_EQ(sizes(), (std::pair<std::int64_t, std::int64_t>{3, 2}));
  // Scale 4 -> 8: 9 allowed (8 + surge 1), 4 to add, split 3:2 by the max-replicas annotation (5):
  // old round(3*9/5)=5, new round(2*9/5)=4.
  ASSERT_TRUE(c.patch(deployments_resource(), "web", R"({"spec":{"replicas":8}})"));
  ASSERT_TRUE(c.fx->eventually([&] { return sizes() == std::pair<std::int64_t, std::int64_t>{5, 4}; }));
  c.fx->run_for(500ms);
  EXPECT_EQ(sizes(), (std::pair<std::int64_t, std::int64_t>{5, 4}));
  for (auto& rs : c.list(replicasets_resource())) {
    EXPECT_EQ(annotation(rs, kDesiredReplicasAnnotation), "8");
    EXPECT_EQ(annotation(rs, kMaxReplicasAnnotation), "9");
  }
}

TEST(DeploymentApi, ProgressDeadlineExceeded) {
  Cluster c(Cluster::kRs | Cluster::kDeploy);
  ASSERT_TRUE(c.error.empty()) << c.error;
  std::string text = kDeploy;
  text.replace(text.find(R"("replicas":4)"), 12, R"("replicas":2,"progressDeadlineSeconds":2)");
  c.create(deployments_resource(), text);
  // Pods never become ready.
  ASSERT_TRUE(c.fx->eventually(
      [&] {
        return progressing_reason(c.get(deployments_resource(), "web")) == "ProgressDeadlineExceeded";
      },
      20s));
  json::value d = c.get(deployments_resource(), "web");
  const json::object* p = find_condition(d.at("status"), "Progressing");
  EXPECT_EQ(get_string(json::value(*p), {"status"}), "False");
  const json::object* a = find_condition(d.at("status"), "Available");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(get_string(json::value(*a), {"reason"}), "MinimumReplicasUnavailable");
}

TEST(DaemonSetApi, OnePodPerEligibleNode) {
  Cluster c(Cluster::kDs);
  ASSERT_TRUE(c.error.empty()) << c.error;
  for (std::string n : {"n1", "n2"}) {
    c.create(nodes_resource(), R"({"metadata":{"name":")" + n + R"(","labels":{"role":"worker"}}})");
  }
  c.create(nodes_resource(), R"({"metadata":{"name":"n3","labels":{"role":"worker"}},
      "spec":{"taints":[{"key":"dedicated","value":"db","effect":"NoSchedule"}]}})");
  c.create(daemonsets_resource(), R"({"apiVersion":"apps/v1","kind":"DaemonSet",
    "metadata":{"name":"agent"},
    "spec":{"selector":{"matchLabels":{"app":"agent"}},
      "template":{"metadata":{"labels":{"app":"agent"}},
        "spec":{"nodeSelector":{"role":"worker"},"containers":[{"name":"c","image":"agent:1"}]}}}})");
  ASSERT_TRUE(c.fx->eventually([&] { return c.list(pods_resource(), "app=agent").size() == 2; }));
  c.fx->run_for(1s);
  auto pods = c.list(pods_resource(), "app=agent");
  ASSERT_EQ(pods.size(), 2u);
  std::set<std::string> nodes;
  for (auto& p : pods) {
    const json::value* vals = find_path(
        p, {"spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"});
    ASSERT_NE(vals, nullptr);
    const json::value& term = vals->at("nodeSelectorTerms").as_array()[0];
    EXPECT_EQ(get_string(term.at("matchFields").as_array()[0], {"key"}), "metadata.name");
    nodes.insert(std::string(term.at("matchFields").as_array()[0].at("values").as_array()[0].as_string()));
    EXPECT_FALSE(get_string(p, {"metadata", "labels", "controller-revision-hash"}).empty());
    bool has_not_ready = false;
    for (auto& t : p.at("spec").at("tolerations").as_array()) {
      has_not_ready = has_not_ready || get_string(t, {"key"}) == "node.kubernetes.io/not-ready";
    }
    EXPECT_TRUE(has_not_ready);
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"n1", "n2"}));
  for (auto& p : pods) c.mark_ready(p);
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value ds = c.get(daemonsets_resource(), "agent");
    return get_int(ds, {"status", "desiredNumberScheduled"}) == 2 &&
           get_int(ds, {"status", "currentNumberScheduled"}) == 2 &&
           get_int(ds, {"status", "numberReady"}) == 2 &&
           get_int(ds, {"status", "numberAvailable"}) == 2 &&
           get_int(ds, {"status", "updatedNumberScheduled"}) == 2 &&
           get_int(ds, {"status", "numberMisscheduled"}) == 0 &&
           get_int(ds, {"status", "observedGeneration"}) == get_int(ds, {"metadata", "generation"});
  }));
  // Tolerating the taint adds n3; a template change rolls one node at a time (maxUnavailable 1).
  ASSERT_TRUE(c.patch(daemonsets_resource(), "agent", R"({"spec":{"template":{"spec":{
      "tolerations":[{"key":"dedicated","operator":"Exists"}],
      "containers":[{"name":"c","image":"agent:2"}]}}}})"));
  ASSERT_TRUE(c.fx->eventually(
      [&] {
        c.mark_all_ready("app=agent");
        json::value ds = c.get(daemonsets_resource(), "agent");
        return get_int(ds, {"status", "desiredNumberScheduled"}) == 3 &&
               get_int(ds, {"status", "updatedNumberScheduled"}) == 3 &&
               get_int(ds, {"status", "numberAvailable"}) == 3 &&
               c.list(pods_resource(), "app=agent").size() == 3;
      },
      30s));
}

TEST(StatefulSetApi, OrderedCreationAndReverseScaleDown) {
  Cluster c(Cluster::kSts);
  ASSERT_TRUE(c.error.empty()) << c.error;
  c.create(statefulsets_resource(), R"({"apiVersion":"apps/v1","kind":"StatefulSet",
    "metadata":{"name":"db"},
    "spec":{"replicas":3,"serviceName":"db","selector":{"matchLabels":{"app":"db"}},
      "template":{"metadata":{"labels":{"app":"db"}},
        "spec":{"containers":[{"name":"c","image":"db:1"}]}}}})");
  for (int i = 0; i < 3; ++i) {
    std::string name = "db-" + std::to_string(i);
    ASSERT_TRUE(c.fx->eventually([&] { return !c.get(pods_resource(), name).is_null(); })) << name;
    c.fx->run_for(500ms);
    EXPECT_EQ(c.list(pods_resource(), "app=db").size(), static_cast<std::size_t>(i + 1))
        << "the next pod must wait for " << name;
    json::value p = c.get(pods_resource(), name);
    EXPECT_EQ(get_string(p, {"spec", "hostname"}), name);
    EXPECT_EQ(get_string(p, {"spec", "subdomain"}), "db");
    EXPECT_EQ(get_string(p, {"metadata", "labels", "statefulset.kubernetes.io/pod-name"}), name);
    EXPECT_EQ(get_string(p, {"metadata", "labels", "apps.kubernetes.io/pod-index"}), std::to_string(i));
    c.mark_ready(p);
  }
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value s = c.get(statefulsets_resource(), "db");
    return get_int(s, {"status", "readyReplicas"}) == 3 && get_int(s, {"status", "replicas"}) == 3 &&
           get_int(s, {"status", "updatedReplicas"}) == 3 &&
           get_int(s, {"status", "currentReplicas"}) == 3 &&
           !get_string(s, {"status", "updateRevision"}).empty() &&
           get_string(s, {"status", "currentRevision"}) == get_string(s, {"status", "updateRevision"});
  }));
  // Scale down to 1: db-2 goes first, then db-1.
  ASSERT_TRUE(c.patch(statefulsets_resource(), "db", R"({"spec":{"replicas":1}})"));
  ASSERT_TRUE(c.fx->eventually([&] { return c.get(pods_resource(), "db-2").is_null(); }));
  ASSERT_TRUE(c.fx->eventually([&] { return c.get(pods_resource(), "db-1").is_null(); }));
  EXPECT_FALSE(c.get(pods_resource(), "db-0").is_null());

  // Rolling update with a template change: db-0 is replaced with the new revision.
  std::string rev0(get_string(c.get(pods_resource(), "db-0"), {"metadata", "labels", "controller-revision-hash"}));
  ASSERT_TRUE(c.patch(statefulsets_resource(), "db",
                      R"({"spec":{"template":{"spec":{"containers":[{"name":"c","image":"db:2"}]}}}})"));
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value p = c.get(pods_resource(), "db-0");
    if (p.is_null()) return false;
    if (!pod_ready(p)) c.mark_ready(p);
    return get_string(p, {"metadata", "labels", "controller-revision-hash"}) != rev0;
  }));
}

TEST(StatefulSetApi, ParallelCreatesAllAtOnce) {
  Cluster c(Cluster::kSts);
  ASSERT_TRUE(c.error.empty()) << c.error;
  c.create(statefulsets_resource(), R"({"apiVersion":"apps/v1","kind":"StatefulSet",
    "metadata":{"name":"p"},
    "spec":{"replicas":3,"podManagementPolicy":"Parallel","serviceName":"p",
      "selector":{"matchLabels":{"app":"p"}},
      "template":{"metadata":{"labels":{"app":"p"}},
        "spec":{"containers":[{"name":"c","image":"db:1"}]}}}})");
  ASSERT_TRUE(c.fx->eventually([&] { return c.list(pods_resource(), "app=p").size() == 3; }, 10s));
  c.mark_all_ready("app=p");
  std::string old_rev(get_string(c.get(pods_resource(), "p-0"), {"metadata", "labels", "controller-revision-hash"}));
  ASSERT_FALSE(old_rev.empty());
  // RollingUpdate with partition 2: only ordinals >= 2 move to the new revision.
  ASSERT_TRUE(c.patch(statefulsets_resource(), "p", R"({"spec":{
      "updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}},
      "template":{"spec":{"containers":[{"name":"c","image":"db:2"}]}}}})"));
  auto rev = [&](const std::string& n) {
    return std::string(get_string(c.get(pods_resource(), n), {"metadata", "labels", "controller-revision-hash"}));
  };
  ASSERT_TRUE(c.fx->eventually([&] {
    c.mark_all_ready("app=p");
    return !rev("p-2").empty() && rev("p-2") != old_rev;
  }));
  c.mark_all_ready("app=p");
  c.fx->run_for(1s);
  EXPECT_EQ(rev("p-0"), old_rev);
  EXPECT_EQ(rev("p-1"), old_rev);
  ASSERT_TRUE(c.fx->eventually([&] {
    json::value s = c.get(statefulsets_resource(), "p");
    return get_int(s, {"status", "updatedReplicas"}) == 1 && get_int(s, {"status", "currentReplicas"}) == 2 &&
           get_string(s, {"status", "currentRevision"}) == old_rev &&
           get_string(s, {"status", "updateRevision"}) == rev("p-2");
  }));
}

TEST(StatefulSetApi, VolumeClaimTemplatesMakeOneClaimPerOrdinal) {
  Cluster c(Cluster::kSts);
  ASSERT_TRUE(c.error.empty()) << c.error;
  // A claim that exists already is reused as it is.
  c.create(pvcs_resource(), R"({"metadata":{"name":"data-vc-1","labels":{"mine":"yes"}},
    "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"5Gi"}}}})");
  json::value set =
      c.create(statefulsets_resource(), R"({"apiVersion":"apps/v1","kind":"StatefulSet",
    "metadata":{"name":"vc"},
    "spec":{"replicas":2,"podManagementPolicy":"Parallel","serviceName":"vc",
      "selector":{"matchLabels":{"app":"vc"}},
      "persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete"},
      "template":{"metadata":{"labels":{"app":"vc"}},
        "spec":{"containers":[{"name":"c","image":"db:1",
                               "volumeMounts":[{"name":"data","mountPath":"/data"}]}],
                "volumes":[{"name":"data","emptyDir":{}},{"name":"scratch","emptyDir":{}}]}},
      "volumeClaimTemplates":[{"metadata":{"name":"data","labels":{"kind":"db"}},
        "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}]}})");
  ASSERT_TRUE(c.fx->eventually([&] { return c.list(pods_resource(), "app=vc").size() == 2; }, 10s));
  json::value claim = c.get(pvcs_resource(), "data-vc-0");
  ASSERT_FALSE(claim.is_null());
  EXPECT_EQ(get_string(claim, {"metadata", "labels", "app"}), "vc");
  EXPECT_EQ(get_string(claim, {"metadata", "labels", "kind"}), "db");
  EXPECT_EQ(get_string(claim, {"spec", "resources", "requests", "storage"}), "1Gi");
  ASSERT_TRUE(controller_ref(claim)) << to_json(claim);
  const json::value ref(*controller_ref(claim));
  EXPECT_EQ(get_string(ref, {"kind"}), "StatefulSet");
  EXPECT_EQ(get_string(ref, {"uid"}), uid_of(set));
  json::value kept = c.get(pvcs_resource(), "data-vc-1");
  EXPECT_EQ(get_string(kept, {"metadata", "labels", "mine"}), "yes");
  EXPECT_EQ(find_path(kept, {"metadata", "ownerReferences"}), nullptr);
  for (int i = 0; i < 2; ++i) {
    json::value p = c.get(pods_resource(), "vc-" + std::to_string(i));
    const json::value* vols = find_path(p, {"spec", "volumes"});
    ASSERT_TRUE(vols && vols->is_array() && vols->get_array().size() >= 2) << to_json(p);
    EXPECT_EQ(get_string(vols->get_array()[0], {"name"}), "data");
    EXPECT_EQ(get_string(vols->get_array()[0], {"persistentVolumeClaim", "claimName"}),
              "data-vc-" + std::to_string(i));
    EXPECT_EQ(find_path(vols->get_array()[0], {"emptyDir"}), nullptr);
    EXPECT_EQ(get_string(vols->get_array()[1], {"name"}), "scratch");
  }
}

}  // namespace
}  // namespace podwarp::apps
