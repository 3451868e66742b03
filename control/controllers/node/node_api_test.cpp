// The node controllers against a real apiserver and etcd. No node agent exists: the test
// renews the node's Lease and posts its status as the kubelet would, and stops doing so.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "loop/shared_informers.h"
#include "node/node.h"
#include "node/taints.h"
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

  void start(loop::ControllerOptions opts) {
    auto f = testing::ApiFixture::start();
    ASSERT_TRUE(f) << f.error();
    fx = std::move(*f);
    informers = std::make_unique<loop::SharedInformers>(fx->io().get_executor(), fx->client());
    ctx = std::make_unique<loop::ControllerContext>(
        loop::ControllerContext{fx->io().get_executor(), fx->client(), *informers, opts});
    controllers = make_node_controllers(*ctx);
    informers->start();
    ASSERT_TRUE(fx->eventually([&] { return informers->synced(); }));
    for (auto& c : controllers) c->start();
  }
  ~Harness() {
    for (auto& c : controllers) c->stop();
    if (informers) informers->stop();
    if (fx) fx->run_for(50ms);
  }
  client::Result<json::value> create(const api::Resource& r, std::string ns, const std::string& text) {
    return fx->run(fx->client().create(r, std::move(ns), json::parse(text)));
  }
  std::optional<json::value> get(const api::Resource& r, std::string ns, std::string name) {
    auto v = fx->run(fx->client().get(r, std::move(ns), std::move(name)));
    if (!v) return std::nullopt;
    return *v;
  }
  // What the kubelet does: renew the Lease, and post Ready=True with a fresh heartbeat.
  void renew_lease(const std::string& node) {
    std::string patch = fmt::format(R"({{"spec":{{"renewTime":"{}"}}}})",
                                    format_rfc3339_micro(std::chrono::system_clock::now()));
    auto r = fx->run(fx->client().patch(R("coordination.k8s.io", "leases"), "kube-node-lease", node,
                                        client::PatchType::merge, patch));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  // Retried on a conflict as the kubelet's node status update is: the node IPAM controller
  // writes the node's podCIDR at the same time.
  void post_ready(const std::string& node) {
    for (int attempt = 1;; ++attempt) {
      auto r = try_post_ready(node);
      if (r || !r.error().is_conflict() || attempt == 5) {
        ASSERT_TRUE(r) << r.error().to_string();
        return;
      }
    }
  }
  client::Result<json::value> try_post_ready(const std::string& node) {
    auto n = get(R("", "nodes"), "", node);
    if (!n) return std::unexpected(client::Error{.code = 404, .reason = "NotFound"});
    std::string now = format_rfc3339(std::chrono::system_clock::now());
    json::array conds;
    for (const char* t : {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}) {
      bool ready = std::string_view(t) == "Ready";
      conds.push_back(json::object{{"type", t},
                                   {"status", ready ? "True" : "False"},
                                   {"lastHeartbeatTime", now},
                                   {"lastTransitionTime", now},
                                   {"reason", ready ? "KubeletReady" : "KubeletHasSufficientResources"},
                                   {"message", "ok"}});
    }
    ensure_object(n->as_object(), "status")["conditions"] = std::move(conds);
    return fx->run(fx->client().update_status(R("", "nodes"), "", *n));
  }
  std::string ready(const std::string& node) {
    auto n = get(R("", "nodes"), "", node);
    const json::value* cs = n ? find_path(*n, {"status", "conditions"}) : nullptr;
    if (cs == nullptr || !cs->is_array()) return "?";
    for (const auto& c : cs->as_array()) {
      if (c.at("type") == "Ready") return std::string(get_string(c, {"status"}));
    }
    return "?";
  }
  bool has_taint(const std::string& node, std::string_view key, std::string_view effect) {
    auto n = get(R("", "nodes"), "", node);
    const json::value* ts = n ? find_path(*n, {"spec", "taints"}) : nullptr;
    if (ts == nullptr || !ts->is_array()) return false;
    for (const auto& t : ts->as_array()) {
      if (get_string(t, {"key"}) == key && get_string(t, {"effect"}) == effect) return true;
    }
    return false;
  }
  bool deleting(const std::string& pod) {
    auto p = get(R("", "pods"), "default", pod);
    return !p || find_path(*p, {"metadata", "deletionTimestamp"}) != nullptr;
  }
};

TEST(NodeControllers, LeaseTimeoutUnreachableTaintEvictionAndRecovery) {
  Harness h;
  loop::ControllerOptions o;
  o.node_monitor_grace_period = 3s;
  o.node_monitor_period = 1s;
  h.start(o);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(h.create(R("", "nodes"), "", R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}})"));
  ASSERT_TRUE(h.create(R("coordination.k8s.io", "leases"), "kube-node-lease",
                       fmt::format(R"({{"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
                         "metadata":{{"name":"n1"}},
                         "spec":{{"holderIdentity":"n1","leaseDurationSeconds":40,"renewTime":"{}"}}}})",
                                   format_rfc3339_micro(std::chrono::system_clock::now()))));
  h.post_ready("n1");

  // Node IPAM: the first subnet of the default cluster CIDR.
  ASSERT_TRUE(h.fx->eventually([&] {
    auto n = h.get(R("", "nodes"), "", "n1");
    return n && get_string(*n, {"spec", "podCIDR"}) == "10.244.0.0/24";
  }));
  EXPECT_EQ(h.get(R("", "nodes"), "", "n1")->at("spec").at("podCIDRs").at(0), "10.244.0.0/24");

  // Pods bound to n1 (DefaultTolerationSeconds gives each 300 s for unreachable/not-ready
  // unless they say otherwise).
  auto pod = [&](const char* name, const char* tolerations) {
    auto r = h.create(R("", "pods"), "default",
                      fmt::format(R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{}"}},
                        "spec":{{"nodeName":"n1","tolerations":{},
                          "containers":[{{"name":"c","image":"busybox"}}]}}}})",
                                  name, tolerations));
    ASSERT_TRUE(r) << r.error().to_string();
    std::string now = format_rfc3339(std::chrono::system_clock::now());
    auto s = h.fx->run(h.fx->client().patch(
        R("", "pods"), "default", name, client::PatchType::merge,
        fmt::format(R"({{"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True","lastTransitionTime":"{}"}}]}}}})", now),
        {}, "status"));
    ASSERT_TRUE(s) << s.error().to_string();
  };
  pod("forever", R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute"}])");
  pod("two-seconds", R"([{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":2}])");
  pod("default-tolerations", "[]");

  // The kubelet keeps renewing for a while: nothing happens. (Renewals run in the background
  // on the test's io_context, so slow requests of the test itself do not delay them.)
  auto renewing = std::make_shared<bool>(true);
  auto done = std::make_shared<bool>(false);
  boost::asio::co_spawn(
      h.fx->io(),
      [client = h.fx->client(), renewing, done]() mutable -> boost::asio::awaitable<void> {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        const std::string ns = "kube-node-lease", name = "n1", none;
        const client::WriteOptions wo;
        while (*renewing) {
          std::string patch = fmt::format(R"({{"spec":{{"renewTime":"{}"}}}})",
                                          format_rfc3339_micro(std::chrono::system_clock::now()));
          auto r = co_await client.patch(R("coordination.k8s.io", "leases"), ns, name,
                                         client::PatchType::merge, patch, wo, none);
          (void)r;
          timer.expires_after(300ms);
          co_await timer.async_wait(boost::asio::use_awaitable);
        }
        *done = true;
      },
      boost::asio::detached);
  h.fx->run_for(4s);
  EXPECT_EQ(h.ready("n1"), "True");
  EXPECT_FALSE(h.has_taint("n1", taints::kUnreachable, "NoExecute"));

  // The kubelet stops: after the grace period the node is Unknown and tainted.
  *renewing = false;
  ASSERT_TRUE(h.fx->eventually([&] { return *done; }, 5s));
  auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(h.fx->eventually([&] { return h.ready("n1") == "Unknown"; }, 10s));
  auto unknown_after = std::chrono::steady_clock::now() - stopped;
  EXPECT_GE(unknown_after, 2500ms);
  auto n = *h.get(R("", "nodes"), "", "n1");
  for (const auto& c : n.at("status").at("conditions").as_array()) {
    EXPECT_EQ(c.at("status"), "Unknown");
    EXPECT_EQ(c.at("reason"), "NodeStatusUnknown");
    EXPECT_EQ(c.at("message"), "Kubelet stopped posting node status.");
  }
  ASSERT_TRUE(h.fx->eventually([&] { return h.has_taint("n1", taints::kUnreachable, "NoExecute"); }, 5s));
  auto tainted = std::chrono::steady_clock::now();
  EXPECT_TRUE(h.has_taint("n1", taints::kUnreachable, "NoSchedule"));
  // Pods on it are marked not ready.
  ASSERT_TRUE(h.fx->eventually([&] {
    auto p = h.get(R("", "pods"), "default", "default-tolerations");
    for (const auto& c : p->at("status").at("conditions").as_array()) {
      if (c.at("type") == "Ready") return c.at("status") == "False";
    }
    return false;
  }, 5s));
  // The pod tolerating for 2 s goes after about 2 s; the others stay.
  ASSERT_TRUE(h.fx->eventually([&] { return h.deleting("two-seconds"); }, 10s));
  EXPECT_LE(std::chrono::steady_clock::now() - tainted, 4s);
  {
    // Counted from the taint's timeAdded (second precision): not before timeAdded + 2 s.
    auto seen = std::chrono::system_clock::now();
    auto node = *h.get(R("", "nodes"), "", "n1");
    std::optional<std::chrono::system_clock::time_point> added;
    for (const auto& t : node.at("spec").at("taints").as_array()) {
      if (get_string(t, {"key"}) == taints::kUnreachable && get_string(t, {"effect"}) == "NoExecute") {
        if (auto a = parse_rfc3339(get_string(t, {"timeAdded"}))) added = *a;
      }
    }
    ASSERT_TRUE(added);
    auto p = h.get(R("", "pods"), "default", "two-seconds");
    ASSERT_TRUE(p);
    auto deleted_at = parse_rfc3339(get_string(*p, {"metadata", "deletionTimestamp"}));
    ASSERT_TRUE(deleted_at);
    // deletionTimestamp = deletion time + grace period (30 s), in seconds.
    EXPECT_GE(*deleted_at - std::chrono::seconds(30), *added + 2s);
    EXPECT_LE(seen - *added, 5s);
  }
  auto p2 = h.get(R("", "pods"), "default", "two-seconds");
  ASSERT_TRUE(p2);
  bool disruption = false;
  for (const auto& c : p2->at("status").at("conditions").as_array()) {
    if (c.at("type") == "DisruptionTarget") disruption = c.at("reason") == "DeletionByTaintManager";
  }
  EXPECT_TRUE(disruption);
  h.fx->run_for(1s);
  EXPECT_FALSE(h.deleting("forever"));
  EXPECT_FALSE(h.deleting("default-tolerations"));

  // A NoExecute taint neither tolerates: both deleted at once.
  {
    auto node = *h.get(R("", "nodes"), "", "n1");
    node.as_object()["spec"].as_object()["taints"].as_array().push_back(
        json::object{{"key", "example.com/maintenance"}, {"effect", "NoExecute"}});
    ASSERT_TRUE(h.fx->run(h.fx->client().update(R("", "nodes"), "", node)));
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(h.fx->eventually(
        [&] { return h.deleting("forever") && h.deleting("default-tolerations"); }, 5s));
    EXPECT_LE(std::chrono::steady_clock::now() - t0, 1500ms);
  }
  bool event = false;
  auto events = h.fx->run(h.fx->client().list(R("", "events"), "default"));
  ASSERT_TRUE(events);
  for (const auto& e : events->at("items").as_array()) {
    if (get_string(e, {"reason"}) == "TaintManagerEviction" &&
        get_string(e, {"message"}) == "Marking for deletion Pod default/two-seconds") {
      event = true;
    }
  }
  EXPECT_TRUE(event);

  // The kubelet comes back: Ready again, the unreachable taints go (the foreign one stays).
  h.renew_lease("n1");
  h.post_ready("n1");
  ASSERT_TRUE(h.fx->eventually([&] {
    return !h.has_taint("n1", taints::kUnreachable, "NoExecute") &&
           !h.has_taint("n1", taints::kUnreachable, "NoSchedule");
  }, 5s));
  EXPECT_TRUE(h.has_taint("n1", "example.com/maintenance", "NoExecute"));
  EXPECT_EQ(h.ready("n1"), "True");
}

TEST(NodeControllers, IpamRebuildsAllocatesAndReleases) {
  Harness h;
  loop::ControllerOptions o;
  o.cluster_cidr = "10.50.0.0/23";
  o.node_cidr_mask_size = 24;  // two subnets
  // A node that already has a subnet before the controller starts.
  auto f = testing::ApiFixture::start();
  ASSERT_TRUE(f) << f.error();
  {
    auto& fx = **f;
    auto r = fx.run(fx.client().create(R("", "nodes"), "",
                                       json::parse(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"old"},
                                         "spec":{"podCIDR":"10.50.0.0/24","podCIDRs":["10.50.0.0/24"]}})")));
    ASSERT_TRUE(r) << r.error().to_string();
  }
  h.fx = std::move(*f);
  h.informers = std::make_unique<loop::SharedInformers>(h.fx->io().get_executor(), h.fx->client());
  h.ctx = std::make_unique<loop::ControllerContext>(
      loop::ControllerContext{h.fx->io().get_executor(), h.fx->client(), *h.informers, o});
  h.controllers = make_node_controllers(*h.ctx);
  h.informers->start();
  ASSERT_TRUE(h.fx->eventually([&] { return h.informers->synced(); }));
  for (auto& c : h.controllers) c->start();

  auto cidr = [&](const std::string& name) {
    auto n = h.get(R("", "nodes"), "", name);
    return n ? std::string(get_string(*n, {"spec", "podCIDR"})) : std::string("?");
  };
  ASSERT_TRUE(h.create(R("", "nodes"), "", R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}})"));
  ASSERT_TRUE(h.fx->eventually([&] { return cidr("a") == "10.50.1.0/24"; }));
  ASSERT_TRUE(h.create(R("", "nodes"), "", R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"b"}})"));
  // Exhausted: an event, no subnet.
  ASSERT_TRUE(h.fx->eventually([&] {
    auto events = h.fx->run(h.fx->client().list(R("", "events"), "default"));
    if (!events) return false;
    for (const auto& e : events->at("items").as_array()) {
      if (get_string(e, {"reason"}) == "CIDRNotAvailable" &&
          get_string(e, {"involvedObject", "name"}) == "b") {
        return true;
      }
    }
    return false;
  }));
  EXPECT_EQ(cidr("b"), "");
  // Deleting "old" frees its subnet for "b".
  ASSERT_TRUE(h.fx->run(h.fx->client().remove(R("", "nodes"), "", "old")));
  ASSERT_TRUE(h.fx->eventually([&] { return cidr("b") == "10.50.0.0/24"; }));
}

}  // namespace
}  // namespace podwarp::controllers
