// scheduler_bench: pods/s through the scheduler's core, shaped like upstream scheduler_perf
// SchedulingBasic: 5,000 nodes (4 cpu, 32Gi, 110 pods, like upstream's node-default.yaml) and
// 10,000 pods with small requests (100m cpu, 500Mi memory as pod-default.yaml). Measured: pod
// JSON -> compiled PodInfo, queue add, pop, filter + score, assume into the snapshot. Binding
// (an API call) is excluded.
//
// Scenario "affinity+spread": the same cluster in 10 zones; pods in 100 apps of 100 pods, each
// with required pod anti-affinity to its app on kubernetes.io/hostname and a zone topology
// spread constraint (maxSkew 1, DoNotSchedule).
//
// Prints the median of 3 runs per scenario. Usage: scheduler_bench [nodes] [pods]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "podwarp/json.h"
#include "scheduler/algorithm.h"
#include "scheduler/queue.h"
#include "scheduler/snapshot.h"

using namespace podwarp;
using namespace podwarp::scheduler;

namespace {

json::value make_node(int i, int zones) {
  std::string name = "node-" + std::to_string(i);
  json::object labels{{"kubernetes.io/hostname", name}};
  if (zones > 0) labels["topology.kubernetes.io/zone"] = "zone-" + std::to_string(i % zones);
  json::object res{{"cpu", "4"}, {"memory", "32Gi"}, {"pods", "110"}};
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Node"},
                      {"metadata", json::object{{"name", name}, {"labels", labels}}},
                      {"status", json::object{{"capacity", res}, {"allocatable", res}}}};
}

json::value make_pod(int i, bool affinity) {
  std::string name = "pod-" + std::to_string(i);
  json::object labels{{"app", affinity ? "a" + std::to_string(i % 100) : "basic"}};
  json::object container{
      {"name", "c"},
      {"image", "registry.k8s.io/pause:3.9"},
      {"resources",
       json::object{{"requests", json::object{{"cpu", "100m"}, {"memory", "500Mi"}}}}}};
  json::object spec{{"containers", json::array{container}}, {"schedulerName", "default-scheduler"}};
  if (affinity) {
    json::object sel{{"matchLabels", labels}};
    spec["affinity"] = json::object{
        {"podAntiAffinity",
         json::object{{"requiredDuringSchedulingIgnoredDuringExecution",
                       json::array{json::object{{"labelSelector", sel},
                                                {"topologyKey", "kubernetes.io/hostname"}}}}}}};
    spec["topologySpreadConstraints"] =
        json::array{json::object{{"maxSkew", 1},
                                 {"topologyKey", "topology.kubernetes.io/zone"},
                                 {"whenUnsatisfiable", "DoNotSchedule"},
                                 {"labelSelector", sel}}};
  }
  return json::object{{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", json::object{{"name", name},
                                                {"namespace", "default"},
                                                {"uid", "uid-" + std::to_string(i)},
                                                {"labels", labels},
                                                {"creationTimestamp", "2026-11-22T00:00:00Z"}}},
                      {"spec", spec}};
}

struct RunResult {
  double pods_per_second;
  int scheduled;
  int failed;
};

RunResult run(int num_nodes, int num_pods, bool affinity) {
  Snapshot snap;
  for (int i = 0; i < num_nodes; ++i)
    snap.upsert_node(compile_node(make_node(i, 10), snap.interner()));
  std::vector<json::value> pods;
  pods.reserve(num_pods);
  for (int i = 0; i < num_pods; ++i) pods.push_back(make_pod(i, affinity));

  Algorithm algo(snap);
  SchedulingQueue queue;
  auto now = SchedulingQueue::Clock::now();
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& p : pods) queue.add(compile_pod(p, snap.interner()), now);
  RunResult r{0, 0, 0};
  while (auto pod = queue.pop(now)) {
    ScheduleResult res = algo.schedule(**pod);
    if (res.scheduled) {
      snap.add_pod(*pod, res.node_name);  // assume
      queue.done((*pod)->uid);
      ++r.scheduled;
    } else {
      queue.unschedulable((*pod)->uid, now);
      ++r.failed;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.pods_per_second = num_pods / secs;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = argc > 1 ? std::atoi(argv[1]) : 5000;
  int pods = argc > 2 ? std::atoi(argv[2]) : 10000;
  for (bool affinity : {false, true}) {
    std::vector<double> rates;
    RunResult last{};
    for (int i = 0; i < 3; ++i) {
      last = run(nodes, pods, affinity);
      rates.push_back(last.pods_per_second);
    }
    std::sort(rates.begin(), rates.end());
    std::printf(
        "%-16s nodes=%d pods=%d scheduled=%d unschedulable=%d  median %.0f pods/s "
        "(runs: %.0f %.0f %.0f)\n",
        affinity ? "affinity+spread" : "basic", nodes, pods, last.scheduled, last.failed, rates[1],
        rates[0], rates[1], rates[2]);
  }
  return 0;
}
