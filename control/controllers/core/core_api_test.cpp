// The core controllers against a real apiserver and etcd (control/testing/api_fixture.h). The
// controllers run in-process on the fixture's io_context; no scheduler and no node run, so
// tests set pod status (podIP, phase, Ready) themselves, as a node would.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/core.h"
#include "core/endpoint_slice.h"
#include "testing/api_fixture.h"

namespace podwarp::controllers {
namespace {

using namespace std::chrono_literals;

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  EXPECT_TRUE(v) << v.error() << ": " << text;
  return v ? *v : json::value();
}

const api::Resource& kPods = resource("", "pods");
const api::Resource& kNamespaces = resource("", "namespaces");
const api::Resource& kServices = resource("", "services");
const api::Resource& kEndpoints = resource("", "endpoints");
const api::Resource& kConfigMaps = resource("", "configmaps");
const api::Resource& kServiceAccounts = resource("", "serviceaccounts");
const api::Resource& kNodes = resource("", "nodes");
const api::Resource& kReplicaSets = resource("apps", "replicasets");
const api::Resource& kDeployments = resource("apps", "deployments");
const api::Resource& kSlices = resource("discovery.k8s.io", "endpointslices");
const api::Resource& kClusterRoles = resource("rbac.authorization.k8s.io", "clusterroles");
const api::Resource& kPdbs = resource("policy", "poddisruptionbudgets");
const api::Resource& kPvs = resource("", "persistentvolumes");
const api::Resource& kClaims = resource("", "persistentvolumeclaims");
const api::Resource& kClasses = resource("storage.k8s.io", "storageclasses");
const api::Resource& kEvents = resource("", "events");

// A fixture running the core controllers on fx.io().
class Cluster {
 public:
  static std::unique_ptr<Cluster> start() {
    auto f = testing::ApiFixture::start();
    EXPECT_TRUE(f) << (f ? "" : f.error());
    if (!f) return nullptr;
    return std::unique_ptr<Cluster>(new Cluster(std::move(*f)));
  }
  ~Cluster() {
    for (auto& c : controllers_) c->stop();
    informers_->stop();
    fx_->run_for(200ms);
    controllers_.clear();
  }

  testing::ApiFixture& fx() { return *fx_; }
  client::Client& client() { return client_; }

  Result<json::value> create(const api::Resource& r, std::string ns, std::string_view text) {
    return fx_->run(client_.create(r, std::move(ns), parse(text)));
  }
  Result<json::value> get(const api::Resource& r, std::string ns, std::string name) {
    return fx_->run(client_.get(r, std::move(ns), std::move(name)));
  }
  Result<json::value> list(const api::Resource& r, std::string ns, std::string selector = {}) {
    client::ListOptions o;
    o.label_selector = std::move(selector);
    return fx_->run(client_.list(r, std::move(ns), o));
  }
  std::size_t count(const api::Resource& r, std::string ns, std::string selector = {}) {
    auto l = list(r, std::move(ns), std::move(selector));
    return l ? find_path(*l, {"items"})->as_array().size() : 999;
  }
  bool gone(const api::Resource& r, std::string ns, std::string name) {
    auto g = get(r, std::move(ns), std::move(name));
    return !g && g.error().is_not_found();
  }
  Result<json::value> remove(const api::Resource& r, std::string ns, std::string name,
                             std::string policy = {}, std::optional<std::int64_t> grace = {}) {
    client::DeleteOptions o;
    o.propagation_policy = std::move(policy);
    o.grace_period_seconds = grace;
    return fx_->run(client_.remove(r, std::move(ns), std::move(name), o));
  }
  Result<json::value> patch_status(std::string ns, std::string name, std::string_view patch) {
    return fx_->run(client_.patch(kPods, std::move(ns), std::move(name), client::PatchType::merge,
                                  std::string(patch), {}, "status"));
  }
  Result<json::value> patch(const api::Resource& r, std::string ns, std::string name,
                            std::string_view patch) {
    return fx_->run(client_.patch(r, std::move(ns), std::move(name), client::PatchType::merge,
                                  std::string(patch)));
  }
  // Makes a pod Running with `ip`, ready or not.
  void set_pod_status(const std::string& ns, const std::string& name, const std::string& ip,
                      bool ready) {
    auto r = patch_status(
        ns, name,
        fmt::format(R"({{"status":{{"phase":"Running","podIP":"{}","podIPs":[{{"ip":"{}"}}],
                 "conditions":[{{"type":"Ready","status":"{}"}}]}}}})",
                    ip, ip, ready ? "True" : "False"));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  Result<client::Response> evict(const std::string& ns, const std::string& name) {
    std::string body = fmt::format(
        R"({{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{}","namespace":"{}"}}}})",
        name, ns);
    return fx_->run(client_.request("POST", client::resource_path(kPods, ns, name, "eviction"),
                                    body, "application/json"));
  }

 private:
  explicit Cluster(std::unique_ptr<testing::ApiFixture> fx)
      : fx_(std::move(fx)), client_(fx_->client()) {
    informers_ = std::make_unique<loop::SharedInformers>(fx_->io().get_executor(), client_);
    ctx_ = std::make_unique<loop::ControllerContext>(
        loop::ControllerContext{fx_->io().get_executor(), client_, *informers_, {}});
    controllers_ = make_core_controllers(*ctx_);
    informers_->start();
    bool synced = fx_->run(informers_->wait_synced());
    EXPECT_TRUE(synced);
    for (auto& c : controllers_) c->start();
  }

  std::unique_ptr<testing::ApiFixture> fx_;
  client::Client client_;
  std::unique_ptr<loop::SharedInformers> informers_;
  std::unique_ptr<loop::ControllerContext> ctx_;
  loop::ControllerList controllers_;
};

std::string pod_json(std::string_view name, std::string_view labels, std::string_view owner = "",
                     std::string_view node = "", std::string_view finalizers = "") {
  return fmt::format(
      R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}","labels":{}{}{}}},
          "spec":{{{}"containers":[{{"name":"c","image":"busybox","ports":[{{"name":"http","containerPort":8080}}]}}]}}}})",
      name, labels, owner.empty() ? "" : fmt::format(R"(,"ownerReferences":[{}])", owner),
      finalizers.empty() ? "" : fmt::format(R"(,"finalizers":{})", finalizers),
      node.empty() ? "" : fmt::format(R"("nodeName":"{}",)", node));
}

std::string rs_json(std::string_view name, std::string_view app, int replicas = 2) {
  return fmt::format(
      R"({{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{{"name":"{}"}},
          "spec":{{"replicas":{},"selector":{{"matchLabels":{{"app":"{}"}}}},
                  "template":{{"metadata":{{"labels":{{"app":"{}"}}}},
                              "spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}}}}})",
      name, replicas, app, app);
}

std::string owner_ref(const json::value& owner) {
  return fmt::format(
      R"({{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"{}","uid":"{}","controller":true,"blockOwnerDeletion":true}})",
      name_of(owner), uid_of(owner));
}

// An RS with `n` pods it owns, in "default".
json::value rs_with_pods(Cluster& c, const std::string& name, int n,
                         std::string_view pod_finalizers = "") {
  auto rs = c.create(kReplicaSets, "default", rs_json(name, name, n));
  EXPECT_TRUE(rs) << rs.error().to_string();
  if (!rs) return {};
  for (int i = 0; i < n; ++i) {
    auto p =
        c.create(kPods, "default",
                 pod_json(fmt::format("{}-{}", name, i), fmt::format(R"({{"app":"{}"}})", name),
                          owner_ref(*rs), "", i == 0 ? pod_finalizers : ""));
    EXPECT_TRUE(p) << p.error().to_string();
  }
  return *rs;
}

TEST(CoreControllersApi, GarbageCollectorBackgroundForegroundOrphan) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();

  // Background: the owner goes at once, then its pods.
  rs_with_pods(*c, "bg", 3);
  ASSERT_EQ(c->count(kPods, "default", "app=bg"), 3u);
  ASSERT_TRUE(c->remove(kReplicaSets, "default", "bg", "Background"));
  EXPECT_TRUE(fx.eventually([&] { return c->count(kPods, "default", "app=bg") == 0; }));

  // Foreground: the owner stays (deletionTimestamp + finalizer) while a blocking dependent
  // exists; the first pod carries a test finalizer that holds it.
  rs_with_pods(*c, "fg", 2, R"(["example.com/hold"])");
  ASSERT_TRUE(c->remove(kReplicaSets, "default", "fg", "Foreground"));
  ASSERT_TRUE(fx.eventually([&] { return c->count(kPods, "default", "app=fg") == 1; }));
  fx.run_for(500ms);
  auto owner = c->get(kReplicaSets, "default", "fg");
  ASSERT_TRUE(owner) << "the owner must wait for its blocking dependent";
  EXPECT_TRUE(has_finalizer(*owner, "foregroundDeletion"));
  EXPECT_TRUE(being_deleted(*owner));
  auto held = c->get(kPods, "default", "fg-0");
  ASSERT_TRUE(held);
  EXPECT_TRUE(being_deleted(*held));
  ASSERT_TRUE(c->patch(kPods, "default", "fg-0", R"({"metadata":{"finalizers":null}})"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kReplicaSets, "default", "fg"); }));
  EXPECT_EQ(c->count(kPods, "default", "app=fg"), 0u);

  // Orphan: the owner goes, its pods stay without the reference.
  rs_with_pods(*c, "or", 2);
  ASSERT_TRUE(c->remove(kReplicaSets, "default", "or", "Orphan"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kReplicaSets, "default", "or"); }));
  auto pods = c->list(kPods, "default", "app=or");
  ASSERT_TRUE(pods);
  ASSERT_EQ(find_path(*pods, {"items"})->as_array().size(), 2u);
  for (const json::value& p : find_path(*pods, {"items"})->as_array()) {
    EXPECT_EQ(find_path(p, {"metadata", "ownerReferences"}), nullptr) << to_json(p);
    EXPECT_FALSE(being_deleted(p));
  }

  // A dependent created with an owner that never existed is collected.
  auto ghost = c->create(
      kConfigMaps, "default",
      R"({"metadata":{"name":"ghost-child","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet",
          "name":"nobody","uid":"00000000-0000-0000-0000-000000000001"}]}})");
  ASSERT_TRUE(ghost) << ghost.error().to_string();
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kConfigMaps, "default", "ghost-child"); }));

  // A cluster-scoped owner of a namespaced dependent: the dependent lives while the owner does.
  auto node = c->create(kNodes, "", R"({"metadata":{"name":"owner-node"}})");
  ASSERT_TRUE(node);
  ASSERT_TRUE(c->create(
      kConfigMaps, "default",
      fmt::format(R"({{"metadata":{{"name":"node-child","ownerReferences":[{{"apiVersion":"v1",
                            "kind":"Node","name":"owner-node","uid":"{}"}}]}}}})",
                  uid_of(*node))));
  // A cluster-scoped dependent naming a namespaced owner kind: that reference is invalid.
  ASSERT_TRUE(c->create(
      kNodes, "",
      fmt::format(R"({{"metadata":{{"name":"bad-child","ownerReferences":[{{"apiVersion":"apps/v1",
                            "kind":"ReplicaSet","name":"bg","uid":"{}"}}]}}}})",
                  "00000000-0000-0000-0000-000000000002")));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kNodes, "", "bad-child"); }));
  fx.run_for(300ms);
  EXPECT_TRUE(c->get(kConfigMaps, "default", "node-child"));
  ASSERT_TRUE(c->remove(kNodes, "", "owner-node"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kConfigMaps, "default", "node-child"); }));
}

TEST(CoreControllersApi, NamespaceDeletionRemovesContentThenTheNamespace) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ASSERT_TRUE(c->create(kNamespaces, "", R"({"metadata":{"name":"doomed"}})"));
  // serviceaccount controller: "default" appears.
  ASSERT_TRUE(fx.eventually([&] { return !!c->get(kServiceAccounts, "doomed", "default"); }));
  auto sa = c->get(kServiceAccounts, "doomed", "default");
  std::string sa_uid(uid_of(*sa));
  ASSERT_TRUE(c->remove(kServiceAccounts, "doomed", "default"));
  ASSERT_TRUE(fx.eventually([&] {
    auto again = c->get(kServiceAccounts, "doomed", "default");
    return again && uid_of(*again) != sa_uid;
  })) << "the default ServiceAccount is recreated";

  ASSERT_TRUE(c->create(kPods, "doomed", pod_json("p", R"({"app":"x"})")));
  ASSERT_TRUE(c->create(kConfigMaps, "doomed", R"({"metadata":{"name":"cm"},"data":{"a":"b"}})"));
  ASSERT_TRUE(c->create(kConfigMaps, "doomed",
                        R"({"metadata":{"name":"held","finalizers":["example.com/hold"]}})"));
  ASSERT_TRUE(c->create(
      kServices, "doomed",
      R"({"metadata":{"name":"svc"},"spec":{"selector":{"app":"x"},"ports":[{"port":80}]}})"));
  ASSERT_TRUE(c->create(
      kDeployments, "doomed",
      R"({"metadata":{"name":"d"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"x"}},
          "template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}})"));

  ASSERT_TRUE(c->remove(kNamespaces, "", "doomed"));
  // Everything but the held configmap goes; the namespace reports what remains.
  ASSERT_TRUE(fx.eventually([&] {
    auto ns = c->get(kNamespaces, "", "doomed");
    if (!ns) return false;
    const json::value* conds = find_path(*ns, {"status", "conditions"});
    if (conds == nullptr) return false;
    for (const json::value& cnd : conds->as_array()) {
      if (get_string(cnd, {"type"}) == "NamespaceFinalizersRemaining" &&
          get_string(cnd, {"status"}) == "True") {
        return get_string(cnd, {"message"}) ==
               "Some content in the namespace has finalizers remaining: example.com/hold in 1 "
               "resource instances";
      }
    }
    return false;
  }));
  EXPECT_TRUE(fx.eventually([&] {
    return c->count(kPods, "doomed") == 0 && c->count(kServices, "doomed") == 0 &&
           c->count(kDeployments, "doomed") == 0 && c->count(kConfigMaps, "doomed") == 1;
  }));
  auto ns = c->get(kNamespaces, "", "doomed");
  ASSERT_TRUE(ns);
  EXPECT_EQ(get_string(*ns, {"status", "phase"}), "Terminating");

  ASSERT_TRUE(c->patch(kConfigMaps, "doomed", "held", R"({"metadata":{"finalizers":null}})"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kNamespaces, "", "doomed"); }));
  EXPECT_EQ(c->count(kConfigMaps, "doomed"), 0u);
}

// The Endpoints' subsets, "" when absent.
std::string ips(const json::value& ep, std::string_view field) {
  std::vector<std::string> out;
  const json::value* subsets = find_path(ep, {"subsets"});
  if (subsets == nullptr || !subsets->is_array()) return "";
  for (const json::value& s : subsets->get_array()) {
    const json::value* a = s.as_object().if_contains(field);
    if (a == nullptr) continue;
    for (const json::value& x : a->as_array()) out.emplace_back(get_string(x, {"ip"}));
  }
  std::sort(out.begin(), out.end());
  std::string j;
  for (auto& s : out) j += (j.empty() ? "" : ",") + s;
  return j;
}

// "<ip>:<ready><serving><terminating>" of every endpoint of the service's slices.
std::string slice_state(Cluster& c, const std::string& svc) {
  auto l = c.list(kSlices, "default", fmt::format("kubernetes.io/service-name={}", svc));
  if (!l) return "error";
  std::vector<std::string> out;
  for (const json::value& s : find_path(*l, {"items"})->as_array()) {
    for (const json::value& e : find_path(s, {"endpoints"})->as_array()) {
      out.push_back(fmt::format(
          "{}:{}{}{}@{}", std::string(e.as_object().at("addresses").as_array()[0].as_string()),
          get_bool(e, {"conditions", "ready"}) ? "R" : "r",
          get_bool(e, {"conditions", "serving"}) ? "S" : "s",
          get_bool(e, {"conditions", "terminating"}) ? "T" : "t", get_string(e, {"zone"})));
    }
  }
  std::sort(out.begin(), out.end());
  std::string j;
  for (auto& s : out) j += (j.empty() ? "" : ",") + s;
  return j;
}

TEST(CoreControllersApi, EndpointsAndSlicesFollowPodReadiness) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ASSERT_TRUE(
      c->create(kNodes, "",
                R"({"metadata":{"name":"node-a","labels":{"topology.kubernetes.io/zone":"z1"}}})"));
  auto svc = c->create(kServices, "default",
                       R"({"metadata":{"name":"web","labels":{"tier":"front"}},
                           "spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":"http"}]}})");
  ASSERT_TRUE(svc) << svc.error().to_string();
  // Services without selector are left alone.
  ASSERT_TRUE(c->create(kServices, "default",
                        R"({"metadata":{"name":"manual"},"spec":{"ports":[{"port":80}]}})"));

  // No pods: an Endpoints without subsets and one placeholder slice.
  ASSERT_TRUE(fx.eventually([&] { return !!c->get(kEndpoints, "default", "web"); }));
  ASSERT_TRUE(fx.eventually(
      [&] { return c->count(kSlices, "default", "kubernetes.io/service-name=web") == 1; }));

  for (const char* name : {"web-1", "web-2"}) {
    ASSERT_TRUE(c->create(kPods, "default", pod_json(name, R"({"app":"web"})", "", "node-a")));
  }
  c->set_pod_status("default", "web-1", "10.244.0.11", true);
  c->set_pod_status("default", "web-2", "10.244.0.12", false);
  ASSERT_TRUE(fx.eventually([&] {
    auto ep = c->get(kEndpoints, "default", "web");
    return ep && ips(*ep, "addresses") == "10.244.0.11" &&
           ips(*ep, "notReadyAddresses") == "10.244.0.12";
  }));
  auto ep = c->get(kEndpoints, "default", "web");
  EXPECT_EQ(get_string(*ep, {"metadata", "labels", "tier"}), "front");
  EXPECT_FALSE(get_string(*ep, {"metadata", "annotations",
                                "endpoints.kubernetes.io/last-change-trigger-time"})
                   .empty());
  const json::value& subset = find_path(*ep, {"subsets"})->as_array()[0];
  EXPECT_EQ(subset.as_object().at("ports"),
            parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  const json::value& addr = subset.as_object().at("addresses").as_array()[0];
  EXPECT_EQ(get_string(addr, {"nodeName"}), "node-a");
  EXPECT_EQ(get_string(addr, {"targetRef", "name"}), "web-1");
  EXPECT_EQ(get_string(addr, {"targetRef", "kind"}), "Pod");

  ASSERT_TRUE(fx.eventually([&] {
    return slice_state(*c, "web") == "10.244.0.11:RSt@z1,10.244.0.12:rst@z1";
  })) << slice_state(*c, "web");
  auto slices = c->list(kSlices, "default", "kubernetes.io/service-name=web");
  ASSERT_EQ(find_path(*slices, {"items"})->as_array().size(), 1u);
  const json::value& slice = find_path(*slices, {"items"})->as_array()[0];
  EXPECT_EQ(get_string(slice, {"metadata", "labels", "endpointslice.kubernetes.io/managed-by"}),
            "endpointslice-controller.k8s.io");
  EXPECT_TRUE(std::string(name_of(slice)).starts_with("web-"));
  EXPECT_EQ(get_string(find_path(slice, {"metadata", "ownerReferences"})->as_array()[0], {"uid"}),
            uid_of(*svc));
  EXPECT_EQ(slice.as_object().at("ports"),
            parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  std::string slice_name(name_of(slice));

  // Both ready.
  c->set_pod_status("default", "web-2", "10.244.0.12", true);
  ASSERT_TRUE(fx.eventually([&] {
    auto e = c->get(kEndpoints, "default", "web");
    return e && ips(*e, "addresses") == "10.244.0.11,10.244.0.12" &&
           ips(*e, "notReadyAddresses").empty();
  }));
  ASSERT_TRUE(fx.eventually([&] {
    return slice_state(*c, "web") == "10.244.0.11:RSt@z1,10.244.0.12:RSt@z1";
  })) << slice_state(*c, "web");

  // Steady state: no rewrites (nothing the apiserver defaults makes the controllers churn).
  auto rv_of = [&](const Result<json::value>& l) {
    std::string out;
    if (!l) return out;
    const json::value* items = find_path(*l, {"items"});
    for (const json::value& i : items ? items->as_array() : json::array{*l}) {
      out += std::string(get_string(i, {"metadata", "resourceVersion"})) + ",";
    }
    return out;
  };
  std::string before = rv_of(c->get(kEndpoints, "default", "web")) +
                       rv_of(c->list(kSlices, "default", "kubernetes.io/service-name=web"));
  fx.run_for(1s);
  EXPECT_EQ(before, rv_of(c->get(kEndpoints, "default", "web")) +
                        rv_of(c->list(kSlices, "default", "kubernetes.io/service-name=web")));

  // web-1 terminates (bound to a node: it stays until the node confirms): it leaves the
  // Endpoints and is listed as serving + terminating in the slice.
  ASSERT_TRUE(c->remove(kPods, "default", "web-1"));
  ASSERT_TRUE(fx.eventually([&] {
    auto e = c->get(kEndpoints, "default", "web");
    return e && ips(*e, "addresses") == "10.244.0.12" && ips(*e, "notReadyAddresses").empty();
  }));
  ASSERT_TRUE(fx.eventually([&] {
    return slice_state(*c, "web") == "10.244.0.11:rST@z1,10.244.0.12:RSt@z1";
  })) << slice_state(*c, "web");
  ASSERT_TRUE(c->remove(kPods, "default", "web-1", "", 0));
  ASSERT_TRUE(fx.eventually([&] { return slice_state(*c, "web") == "10.244.0.12:RSt@z1"; }))
      << slice_state(*c, "web");
  // Updated in place: still the same single slice.
  slices = c->list(kSlices, "default", "kubernetes.io/service-name=web");
  ASSERT_EQ(find_path(*slices, {"items"})->as_array().size(), 1u);
  EXPECT_EQ(name_of(find_path(*slices, {"items"})->as_array()[0]), slice_name);

  EXPECT_TRUE(c->gone(kEndpoints, "default", "manual"));
  EXPECT_EQ(c->count(kSlices, "default", "kubernetes.io/service-name=manual"), 0u);

  // The service goes: its Endpoints (endpoints controller) and slices (garbage collector).
  ASSERT_TRUE(c->remove(kServices, "default", "web"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kEndpoints, "default", "web"); }));
  EXPECT_TRUE(fx.eventually(
      [&] { return c->count(kSlices, "default", "kubernetes.io/service-name=web") == 0; }));
  ASSERT_TRUE(c->remove(kPods, "default", "web-2", "", 0));
}

TEST(CoreControllersApi, DisruptionBudgetStatusAndEviction) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  auto rs = c->create(kReplicaSets, "default", rs_json("db", "db", 3));
  ASSERT_TRUE(rs);
  for (int i = 0; i < 3; ++i) {
    std::string name = fmt::format("db-{}", i);
    ASSERT_TRUE(
        c->create(kPods, "default", pod_json(name, R"({"app":"db"})", owner_ref(*rs), "node-a")));
    c->set_pod_status("default", name, fmt::format("10.244.1.{}", i + 1), true);
  }
  ASSERT_TRUE(c->create(
      kPdbs, "default",
      R"({"metadata":{"name":"db"},"spec":{"minAvailable":"60%","selector":{"matchLabels":{"app":"db"}}}})"));
  ASSERT_TRUE(fx.eventually([&] {
    auto p = c->get(kPdbs, "default", "db");
    return p && get_int(*p, {"status", "disruptionsAllowed"}, -1) == 1;
  })) << to_json(*c->get(kPdbs, "default", "db"));
  auto p = c->get(kPdbs, "default", "db");
  EXPECT_EQ(get_int(*p, {"status", "expectedPods"}), 3);
  EXPECT_EQ(get_int(*p, {"status", "desiredHealthy"}), 2);  // 60% of 3, rounded up
  EXPECT_EQ(get_int(*p, {"status", "currentHealthy"}), 3);
  EXPECT_EQ(get_int(*p, {"status", "observedGeneration"}), get_int(*p, {"metadata", "generation"}));
  const json::value& cond = find_path(*p, {"status", "conditions"})->as_array()[0];
  EXPECT_EQ(get_string(cond, {"type"}), "DisruptionAllowed");
  EXPECT_EQ(get_string(cond, {"status"}), "True");
  EXPECT_EQ(get_string(cond, {"reason"}), "SufficientPods");

  // One eviction is allowed; the next one right after is refused (the budget was taken).
  auto first = c->evict("default", "db-0");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 201) << first->body;
  auto second = c->evict("default", "db-1");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 429) << second->body;
  auto err = client::error_from_response(*second, "evict");
  EXPECT_EQ(err.reason, "TooManyRequests");

  // The controller recomputes: db-0 is terminating, 2 healthy, nothing more may go.
  ASSERT_TRUE(fx.eventually([&] {
    auto q = c->get(kPdbs, "default", "db");
    return q && get_int(*q, {"status", "currentHealthy"}) == 2 &&
           get_int(*q, {"status", "disruptionsAllowed"}, -1) == 0 &&
           find_path(*q, {"status", "disruptedPods"}) == nullptr;
  }));
  p = c->get(kPdbs, "default", "db");
  const json::value& cond2 = find_path(*p, {"status", "conditions"})->as_array()[0];
  EXPECT_EQ(get_string(cond2, {"status"}), "False");
  EXPECT_EQ(get_string(cond2, {"reason"}), "InsufficientPods");
  auto third = c->evict("default", "db-2");
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 429) << third->body;

  // Scaling the RS up raises expectedPods (60% of 5 = 3 desired).
  ASSERT_TRUE(c->patch(kReplicaSets, "default", "db", R"({"spec":{"replicas":5}})"));
  EXPECT_TRUE(fx.eventually([&] {
    auto q = c->get(kPdbs, "default", "db");
    return q && get_int(*q, {"status", "expectedPods"}) == 5 &&
           get_int(*q, {"status", "desiredHealthy"}) == 3;
  }));
  for (int i = 0; i < 3; ++i) c->remove(kPods, "default", fmt::format("db-{}", i), "", 0);
}

}  // namespace
}  // namespace podwarp::controllers

namespace podwarp::controllers {
namespace {

TEST(CoreControllersApi, RootCaConfigMapInEveryNamespaceKeptCurrent) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  const std::string ca = fx.client_config().ca_pem;
  ASSERT_FALSE(ca.empty());
  auto current = [&](const std::string& ns) {
    auto cm = c->get(kConfigMaps, ns, "kube-root-ca.crt");
    return cm && get_string(*cm, {"data", "ca.crt"}) == ca &&
           !get_string(*cm, {"metadata", "annotations", "kubernetes.io/description"}).empty();
  };
  EXPECT_TRUE(fx.eventually([&] { return current("default"); }));
  ASSERT_TRUE(c->create(kNamespaces, "", R"({"metadata":{"name":"rootca"}})"));
  EXPECT_TRUE(fx.eventually([&] { return current("rootca"); })) << "published in a new namespace";
  auto cm = c->get(kConfigMaps, "rootca", "kube-root-ca.crt");
  ASSERT_TRUE(cm);
  json::value changed = *cm;
  changed.as_object()["data"] = json::object{{"ca.crt", "tampered"}, {"extra", "x"}};
  ASSERT_TRUE(fx.run(c->client().update(kConfigMaps, "rootca", changed)));
  EXPECT_TRUE(fx.eventually([&] {
    auto now = c->get(kConfigMaps, "rootca", "kube-root-ca.crt");
    return current("rootca") && now && now->at("data").as_object().size() == 1;
  })) << "a changed bundle is put back";
  ASSERT_TRUE(c->remove(kConfigMaps, "rootca", "kube-root-ca.crt"));
  EXPECT_TRUE(fx.eventually([&] { return current("rootca"); })) << "a deleted one is re-created";
}

TEST(CoreControllersApi, ClusterRoleAggregationFollowsTheLabelledRoles) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ASSERT_TRUE(c->create(kClusterRoles, "", R"({"metadata":{"name":"monitoring"},
      "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"example.com/aggregate-to-monitoring":"true"}}]}})"));
  ASSERT_TRUE(c->create(kClusterRoles, "", R"({"metadata":{"name":"b-metrics",
      "labels":{"example.com/aggregate-to-monitoring":"true"}},
      "rules":[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]},
               {"nonResourceURLs":["/metrics"],"verbs":["get"]}]})"));
  ASSERT_TRUE(c->create(kClusterRoles, "", R"({"metadata":{"name":"a-nodes",
      "labels":{"example.com/aggregate-to-monitoring":"true"}},
      "rules":[{"apiGroups":[""],"resources":["nodes"],"verbs":["get"]},
               {"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]})"));
  ASSERT_TRUE(c->create(kClusterRoles, "", R"({"metadata":{"name":"unrelated"},
      "rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]})"));
  // The matched roles by name, duplicates once.
  const json::value want = parse(R"([
      {"apiGroups":[""],"resources":["nodes"],"verbs":["get"]},
      {"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]},
      {"nonResourceURLs":["/metrics"],"verbs":["get"]}])");
  auto rules = [&] {
    auto r = c->get(kClusterRoles, "", "monitoring");
    const json::value* v = r ? find_path(*r, {"rules"}) : nullptr;
    return v ? *v : json::value();
  };
  EXPECT_TRUE(fx.eventually([&] { return rules() == want; })) << rules();
  // A role that stops matching takes its rules with it.
  ASSERT_TRUE(c->patch(kClusterRoles, "", "b-metrics",
                       R"({"metadata":{"labels":{"example.com/aggregate-to-monitoring":null}}})"));
  const json::value fewer = parse(R"([
      {"apiGroups":[""],"resources":["nodes"],"verbs":["get"]},
      {"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}])");
  EXPECT_TRUE(fx.eventually([&] { return rules() == fewer; })) << rules();
  ASSERT_TRUE(c->remove(kClusterRoles, "", "a-nodes"));
  EXPECT_TRUE(fx.eventually([&] { return rules() == json::value(json::array()); })) << rules();
}

// --- persistentvolume-binder ------------------------------------------------------------------

std::string pv_json(std::string_view name, std::string_view size, std::string_view policy,
                    std::string_view extra_spec = "") {
  return fmt::format(
      R"({{"metadata":{{"name":"{}"}},"spec":{{"capacity":{{"storage":"{}"}},
          "accessModes":["ReadWriteOnce"],"persistentVolumeReclaimPolicy":"{}",
          "hostPath":{{"path":"/srv/{}"}}{}}}}})",
      name, size, policy, name, extra_spec);
}

std::string claim_json(std::string_view name, std::string_view cls, std::string_view extra = "") {
  return fmt::format(
      R"({{"metadata":{{"name":"{}"}},"spec":{{"accessModes":["ReadWriteOnce"],
          "storageClassName":"{}","resources":{{"requests":{{"storage":"1Gi"}}}}{}}}}})",
      name, cls, extra);
}

std::string phase_of(Cluster& c, const api::Resource& r, std::string ns, std::string name) {
  auto got = c.get(r, std::move(ns), std::move(name));
  return got ? std::string(get_string(*got, {"status", "phase"})) : std::string("<none>");
}

// A node the binder sees as Ready (the test plays its noded).
void ready_node(Cluster& c, std::string_view name) {
  ASSERT_TRUE(c.create(kNodes, "",
                       fmt::format(R"({{"metadata":{{"name":"{}","labels":{{
                           "kubernetes.io/hostname":"{}"}}}}}})",
                                   name, name)));
  auto r = c.fx().run(c.client().patch(
      kNodes, "", std::string(name), client::PatchType::merge,
      R"({"status":{"conditions":[{"type":"Ready","status":"True"}]}})", {}, "status"));
  ASSERT_TRUE(r) << r.error().to_string();
}

bool has_event(Cluster& c, std::string_view object, std::string_view reason) {
  auto l = c.list(kEvents, "default");
  if (!l) return false;
  for (const json::value& e : find_path(*l, {"items"})->as_array()) {
    if (get_string(e, {"involvedObject", "name"}) == object &&
        get_string(e, {"reason"}) == reason) {
      return true;
    }
  }
  return false;
}

TEST(CoreControllersApi, PersistentVolumeStaticBindingAndRelease) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ASSERT_TRUE(c->create(kPvs, "", pv_json("pv-big", "5Gi", "Retain")));
  ASSERT_TRUE(c->create(kPvs, "", pv_json("pv-small", "2Gi", "Retain")));
  ASSERT_TRUE(c->create(kPvs, "", pv_json("pv-tiny", "500Mi", "Retain")));
  ASSERT_TRUE(c->create(kPvs, "", pv_json("pv-named", "3Gi", "Delete")));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", "pv-tiny") == "Available"; }));

  // The smallest volume that fits.
  ASSERT_TRUE(c->create(kClaims, "default", claim_json("small", "")));
  ASSERT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "small") == "Bound"; }));
  auto claim = c->get(kClaims, "default", "small");
  ASSERT_TRUE(claim);
  EXPECT_EQ(get_string(*claim, {"spec", "volumeName"}), "pv-small");
  EXPECT_EQ(get_string(*claim, {"metadata", "annotations", "pv.kubernetes.io/bind-completed"}),
            "yes");
  EXPECT_EQ(get_string(*claim, {"metadata", "annotations", "pv.kubernetes.io/bound-by-controller"}),
            "yes");
  EXPECT_EQ(get_string(*claim, {"status", "capacity", "storage"}), "2Gi");
  EXPECT_EQ(*find_path(*claim, {"status", "accessModes"}), parse(R"(["ReadWriteOnce"])"));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", "pv-small") == "Bound"; }));
  auto vol = c->get(kPvs, "", "pv-small");
  ASSERT_TRUE(vol);
  EXPECT_EQ(get_string(*vol, {"spec", "claimRef", "uid"}), uid_of(*claim));
  EXPECT_EQ(get_string(*vol, {"spec", "claimRef", "kind"}), "PersistentVolumeClaim");
  EXPECT_EQ(get_string(*vol, {"spec", "claimRef", "namespace"}), "default");

  // Pre-bound by the claim (spec.volumeName) and by the volume (claimRef without uid).
  ASSERT_TRUE(
      c->create(kClaims, "default", claim_json("named", "", R"(,"volumeName":"pv-named")")));
  ASSERT_TRUE(c->create(kPvs, "",
                        pv_json("pv-for-ref", "9Gi", "Retain",
                                R"(,"claimRef":{"namespace":"default","name":"ref"})")));
  ASSERT_TRUE(c->create(kClaims, "default", claim_json("ref", "")));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "named") == "Bound"; }));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "ref") == "Bound"; }));
  auto ref = c->get(kClaims, "default", "ref");
  ASSERT_TRUE(ref);
  EXPECT_EQ(get_string(*ref, {"spec", "volumeName"}), "pv-for-ref");
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", "pv-named") == "Bound"; }));

  // Released on claim deletion; Retain keeps the volume, Delete on a volume podwarp did not
  // provision keeps it too (no deleter for hostPath volumes).
  ASSERT_TRUE(c->remove(kClaims, "default", "small"));
  ASSERT_TRUE(c->remove(kClaims, "default", "named"));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", "pv-small") == "Released"; }));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", "pv-named") == "Released"; }));
  fx.run_for(300ms);
  EXPECT_EQ(phase_of(*c, kPvs, "", "pv-small"), "Released");
  EXPECT_EQ(phase_of(*c, kPvs, "", "pv-tiny"), "Available");
  // A released volume is not bound again.
  ASSERT_TRUE(c->create(kClaims, "default", claim_json("again", "")));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "again") == "Bound"; }));
  auto again = c->get(kClaims, "default", "again");
  ASSERT_TRUE(again);
  EXPECT_EQ(get_string(*again, {"spec", "volumeName"}), "pv-big");
}

TEST(CoreControllersApi, LocalPathProvisioningWaitsForTheFirstConsumer) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ready_node(*c, "n1");
  ready_node(*c, "n2");
  ASSERT_TRUE(c->create(kClasses, "", R"({"metadata":{"name":"local-path"},
      "provisioner":"podwarp.io/local-path","parameters":{"path":"/var/lib/podwarp/storage"},
      "volumeBindingMode":"WaitForFirstConsumer"})"));
  ASSERT_TRUE(c->create(kClaims, "default", claim_json("wffc", "local-path")));
  EXPECT_TRUE(fx.eventually([&] { return has_event(*c, "wffc", "WaitForFirstConsumer"); }));
  EXPECT_EQ(c->count(kPvs, ""), 0u);
  EXPECT_EQ(phase_of(*c, kClaims, "default", "wffc"), "Pending");

  // The pod is scheduled to n2: the volume is made there and bound.
  ASSERT_TRUE(c->create(kPods, "default", R"({"metadata":{"name":"user"},
      "spec":{"nodeName":"n2","containers":[{"name":"c","image":"busybox"}],
              "volumes":[{"name":"d","persistentVolumeClaim":{"claimName":"wffc"}}]}})"));
  ASSERT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "wffc") == "Bound"; }));
  auto claim = c->get(kClaims, "default", "wffc");
  ASSERT_TRUE(claim);
  const std::string pv_name = fmt::format("pvc-{}", uid_of(*claim));
  EXPECT_EQ(get_string(*claim, {"spec", "volumeName"}), pv_name);
  EXPECT_EQ(
      get_string(*claim, {"metadata", "annotations", "volume.kubernetes.io/storage-provisioner"}),
      "podwarp.io/local-path");
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", pv_name) == "Bound"; }));
  auto pv = c->get(kPvs, "", pv_name);
  ASSERT_TRUE(pv);
  EXPECT_EQ(get_string(*pv, {"spec", "hostPath", "path"}),
            fmt::format("/var/lib/podwarp/storage/{}_default_wffc", pv_name));
  EXPECT_EQ(get_string(*pv, {"spec", "hostPath", "type"}), "DirectoryOrCreate");
  EXPECT_EQ(*find_path(*pv, {"spec", "nodeAffinity"}),
            parse(R"({"required":{"nodeSelectorTerms":[{"matchExpressions":[
                {"key":"kubernetes.io/hostname","operator":"In","values":["n2"]}]}]}})"));
  EXPECT_EQ(get_string(*pv, {"spec", "claimRef", "uid"}), uid_of(*claim));
  EXPECT_EQ(get_string(*pv, {"spec", "storageClassName"}), "local-path");
  EXPECT_EQ(get_string(*pv, {"spec", "persistentVolumeReclaimPolicy"}), "Delete");
  EXPECT_EQ(get_string(*pv, {"spec", "capacity", "storage"}), "1Gi");
  EXPECT_TRUE(fx.eventually([&] { return has_event(*c, "wffc", "ProvisioningSucceeded"); }));

  EXPECT_EQ(*find_path(*pv, {"metadata", "finalizers"}),
            parse(R"(["podwarp.io/local-path-cleanup"])"));

  // Delete + provisioned by podwarp: the volume is released and deleted with the claim, and
  // waits for n2's noded to remove its directory (the cleanup finalizer)...
  ASSERT_TRUE(c->remove(kPods, "default", "user", "", 0));
  ASSERT_TRUE(c->remove(kClaims, "default", "wffc"));
  EXPECT_TRUE(fx.eventually([&] {
    auto v = c->get(kPvs, "", pv_name);
    return v && !get_string(*v, {"metadata", "deletionTimestamp"}).empty() &&
           phase_of(*c, kPvs, "", pv_name) == "Released";
  }));
  // ... unless n2 is gone: then nobody is left to, and the controller lets it go.
  ASSERT_TRUE(c->remove(kNodes, "", "n2"));
  EXPECT_TRUE(fx.eventually([&] { return c->gone(kPvs, "", pv_name); }));
}

TEST(CoreControllersApi, LocalPathImmediateAndRetain) {
  auto c = Cluster::start();
  ASSERT_TRUE(c);
  auto& fx = c->fx();
  ASSERT_TRUE(c->create(kClasses, "", R"({"metadata":{"name":"now"},
      "provisioner":"podwarp.io/local-path","parameters":{"path":"/srv/pv"},
      "reclaimPolicy":"Retain","volumeBindingMode":"Immediate"})"));
  ASSERT_TRUE(c->create(kClaims, "default", claim_json("imm", "now")));
  // No Ready node yet: nothing is provisioned until one appears.
  fx.run_for(300ms);
  EXPECT_EQ(c->count(kPvs, ""), 0u);
  ready_node(*c, "b-node");
  ready_node(*c, "a-node");
  ASSERT_TRUE(fx.eventually([&] { return phase_of(*c, kClaims, "default", "imm") == "Bound"; }));
  auto claim = c->get(kClaims, "default", "imm");
  ASSERT_TRUE(claim);
  const std::string pv_name(get_string(*claim, {"spec", "volumeName"}));
  auto pv = c->get(kPvs, "", pv_name);
  ASSERT_TRUE(pv);
  const json::value* values =
      find_path(*pv, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  ASSERT_TRUE(values);
  EXPECT_NE(to_json(*values).find("-node"), std::string::npos) << to_json(*values);
  EXPECT_EQ(get_string(*pv, {"spec", "persistentVolumeReclaimPolicy"}), "Retain");
  ASSERT_TRUE(c->remove(kClaims, "default", "imm"));
  EXPECT_TRUE(fx.eventually([&] { return phase_of(*c, kPvs, "", pv_name) == "Released"; }));
  fx.run_for(300ms);
  EXPECT_EQ(phase_of(*c, kPvs, "", pv_name), "Released");
}

}  // namespace
}  // namespace podwarp::controllers
