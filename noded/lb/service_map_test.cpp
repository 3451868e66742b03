// ServiceMap against FakeLbMaps (no root): slot layout, O(changed) updates, traffic policies,
// restart recovery, failure recovery.
#include "lb/service_map.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace podwarp::noded::lb {
namespace {

IpAddr ip(std::string_view s) { return *IpAddr::parse(s); }

Backend be(std::string_view addr, std::uint16_t port = 8080, bool local = false) {
  return Backend{ip(addr), port, Protocol::TCP, local, false};
}

Frontend cip(std::string_view addr, std::uint16_t port = 80) {
  return Frontend{FrontendKind::ClusterIP, ip(addr), port, Protocol::TCP};
}

ServiceDesc service(std::string key, std::vector<Frontend> fes, std::vector<Backend> cluster,
                    std::vector<Backend> local = {}) {
  ServiceDesc d;
  d.key = std::move(key);
  ServicePort p;
  p.name = "http";
  p.frontends = std::move(fes);
  p.cluster_backends = std::move(cluster);
  p.local_backends = std::move(local);
  d.ports.push_back(std::move(p));
  return d;
}

podwarp_lb_svc_key key_of(const Frontend& f, std::uint16_t slot, std::uint8_t scope = 0) {
  podwarp_lb_svc_key k{};
  std::memcpy(k.addr, f.addr.bytes.data(), 16);
  k.port = htons(f.port);
  k.proto = static_cast<__u8>(f.proto);
  k.scope = scope;
  k.slot = slot;
  return k;
}

// What the datapath would see for a frontend: the backends of slots 1..count.
std::vector<std::string> datapath_view(const FakeLbMaps& m, const Frontend& f,
                                       std::uint8_t scope = 0) {
  std::vector<std::string> out;
  auto e = m.services.find(key_of(f, 0, scope));
  if (e == m.services.end()) return {"<none>"};
  for (std::uint16_t s = 1; s <= e->second.count; ++s) {
    auto slot = m.services.find(key_of(f, s, scope));
    if (slot == m.services.end()) {
      out.push_back("<missing slot>");
      continue;
    }
    auto b = m.backends.find(slot->second.backend_id);
    if (b == m.backends.end()) {
      out.push_back("<missing backend>");
      continue;
    }
    IpAddr a;
    std::memcpy(a.bytes.data(), b->second.addr, 16);
    out.push_back(a.to_string() + ":" + std::to_string(ntohs(b->second.port)));
  }
  return out;
}

// The invariants the datapath relies on: every slot 1..count exists and names a backend that
// exists and is a member of the set; no slot beyond count; no member or backend left over.
void expect_consistent(const FakeLbMaps& m) {
  std::set<std::uint32_t> referenced;
  std::set<std::pair<std::uint32_t, std::uint32_t>> want_members;
  for (const auto& [k, v] : m.services) {
    podwarp_lb_svc_key entry = k;
    entry.slot = 0;
    auto e = m.services.find(entry);
    ASSERT_NE(e, m.services.end()) << "slot " << k.slot << " without a service entry";
    if (k.slot == 0) {
      // Small sets carry their slots inline (what the BPF pick reads), and exactly them.
      bool small = v.count > 0 && v.count <= PODWARP_LB_INLINE;
      EXPECT_EQ((v.flags & PODWARP_LB_SVC_F_INLINE) != 0, small) << "inline flag, count " << v.count;
      if (small && (v.flags & PODWARP_LB_SVC_F_INLINE)) {
        for (std::uint16_t p = 1; p <= v.count; ++p) {
          podwarp_lb_svc_key sk = k;
          sk.slot = p;
          auto slot = m.services.find(sk);
          if (slot == m.services.end()) continue;  // reported below
          EXPECT_EQ(v.inl[p - 1].backend_id, slot->second.backend_id) << "inline copy " << p;
          EXPECT_EQ(std::memcmp(&v.inl[p - 1].backend, &slot->second.backend,
                                sizeof slot->second.backend), 0) << "inline copy " << p;
        }
      }
      continue;
    }
    EXPECT_LE(k.slot, e->second.count) << "slot beyond count";
    EXPECT_TRUE(m.backends.contains(v.backend_id)) << "slot names a missing backend";
    if (m.backends.contains(v.backend_id)) {
      EXPECT_EQ(std::memcmp(&m.backends.at(v.backend_id), &v.backend, sizeof v.backend), 0)
          << "slot " << k.slot << " holds a stale copy of backend " << v.backend_id;
    }
    referenced.insert(v.backend_id);
    want_members.emplace(e->second.set_id, v.backend_id);
  }
  std::set<std::pair<std::uint32_t, std::uint32_t>> members;
  for (const auto& [k, v] : m.members) members.emplace(k.set_id, k.backend_id);
  EXPECT_EQ(members, want_members);
  std::set<std::uint32_t> backends;
  for (const auto& [id, v] : m.backends) backends.insert(id);
  EXPECT_EQ(backends, referenced);
}

TEST(ServiceMap, ProgramsSlotsBackendsAndMembers) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  auto r = sm.upsert_service(
      service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2"), be("10.244.1.3")}));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.1.2:8080", "10.244.1.3:8080"}));
  const auto& entry = maps.services.at(key_of(cip("10.96.0.1"), 0));
  EXPECT_EQ(entry.count, 3u);
  EXPECT_NE(entry.set_id, 0u);
  EXPECT_EQ(entry.flags, PODWARP_LB_SVC_F_CLUSTER_IP | PODWARP_LB_SVC_F_INLINE);
  EXPECT_EQ(entry.affinity_timeout, 0u);
  // 3 backends + 3 members + 3 slots + 1 entry.
  EXPECT_EQ(maps.updates, 10);
  expect_consistent(maps);

  // The same again changes nothing.
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(
      service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.3"), be("10.244.1.1"), be("10.244.1.2")})));
  EXPECT_EQ(maps.ops(), 0);
}

TEST(ServiceMap, EndpointChangesCostConstantOperations) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  std::vector<Backend> five;
  for (int i = 1; i <= 5; ++i) five.push_back(be("10.244.1." + std::to_string(i)));
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, five)));

  // Add one: backend, member, slot, count.
  auto six = five;
  six.push_back(be("10.244.1.6"));
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, six)));
  EXPECT_EQ(maps.updates, 4);
  EXPECT_EQ(maps.deletes, 0);
  expect_consistent(maps);

  // Remove one in the middle: the last slot moves into its place, the others stay put.
  auto before = datapath_view(maps, cip("10.96.0.1"));
  auto without2 = six;
  without2.erase(without2.begin() + 1);
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, without2)));
  EXPECT_EQ(maps.updates, 2);  // slot 2 <- last, count
  EXPECT_EQ(maps.deletes, 3);  // slot 6, member, backend
  auto after = datapath_view(maps, cip("10.96.0.1"));
  ASSERT_EQ(after.size(), 5u);
  EXPECT_EQ(after[0], before[0]);
  EXPECT_EQ(after[1], before[5]);
  EXPECT_EQ(after[2], before[2]);
  EXPECT_EQ(after[3], before[3]);
  EXPECT_EQ(after[4], before[4]);
  expect_consistent(maps);

  // Replace one (a pod restarted with a new IP): written in place, the count stays.
  auto replaced = without2;
  replaced[2] = be("10.244.1.99");  // was 10.244.1.4
  auto pos = std::find(after.begin(), after.end(), "10.244.1.4:8080") - after.begin();
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, replaced)));
  EXPECT_EQ(maps.updates, 4);  // backend, member, slot, the entry's inline copy
  EXPECT_EQ(maps.deletes, 2);  // old member, old backend
  auto now = datapath_view(maps, cip("10.96.0.1"));
  EXPECT_EQ(now[pos], "10.244.1.99:8080");
  now[pos] = after[pos];
  EXPECT_EQ(now, after);
  expect_consistent(maps);

  // All gone: count 0 (connections refused), slots and backends deleted.
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {})));
  EXPECT_EQ(maps.services.at(key_of(cip("10.96.0.1"), 0)).count, 0u);
  EXPECT_TRUE(maps.backends.empty());
  expect_consistent(maps);
}

TEST(ServiceMap, OneMoreServiceCostsTheSameWith10000Present) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  auto backends_of = [](int svc) {
    std::vector<Backend> v;
    for (int e = 0; e < 5; ++e) {
      std::uint32_t n = 0x0af40000u + static_cast<std::uint32_t>(svc * 5 + e);
      v.push_back(Backend{IpAddr::v4(n), 8080, Protocol::TCP, false, false});
    }
    return v;
  };
  auto svc = [&](int i) {
    Frontend f{FrontendKind::ClusterIP, IpAddr::v4(0x0a600000u + static_cast<std::uint32_t>(i)), 80,
               Protocol::TCP};
    return service("ns/s" + std::to_string(i), {f}, backends_of(i));
  };
  ASSERT_TRUE(sm.upsert_service(svc(0)));
  int first = maps.updates;
  for (int i = 1; i < 10000; ++i) ASSERT_TRUE(sm.upsert_service(svc(i)));
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(svc(10000)));
  EXPECT_EQ(maps.updates, first);  // 5 backends, 5 members, 5 slots, 1 entry
  EXPECT_EQ(maps.updates, 16);
  EXPECT_EQ(sm.set_count(), 10001u);
}

TEST(ServiceMap, BackendFlagChangeRewritesItsSlotCopy) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  ASSERT_TRUE(
      sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")})));
  auto changed = be("10.244.1.2");
  changed.terminating = true;
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), changed})));
  EXPECT_EQ(maps.updates, 3);  // the backend entry, its slot, the entry's inline copy
  EXPECT_EQ(maps.deletes, 0);
  expect_consistent(maps);
}

TEST(ServiceMap, SharedBackendsAreRefcounted) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1")})));
  maps.reset_counts();
  ASSERT_TRUE(sm.upsert_service(service("ns/b", {cip("10.96.0.2")}, {be("10.244.1.1")})));
  EXPECT_EQ(maps.backends.size(), 1u);
  EXPECT_EQ(maps.updates, 3);  // member, slot, entry: the backend entry exists
  ASSERT_TRUE(sm.delete_service("ns/a"));
  EXPECT_EQ(maps.backends.size(), 1u);
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")), std::vector<std::string>{"<none>"});
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.2")), std::vector<std::string>{"10.244.1.1:8080"});
  expect_consistent(maps);
  ASSERT_TRUE(sm.delete_service("ns/b"));
  EXPECT_TRUE(maps.services.empty());
  EXPECT_TRUE(maps.backends.empty());
  EXPECT_TRUE(maps.members.empty());
  ASSERT_TRUE(sm.delete_service("ns/unknown"));
}

TEST(ServiceMap, TrafficPoliciesAndFamilies) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  Frontend np4{FrontendKind::NodePort, IpAddr::any_v4(), 30080, Protocol::TCP};
  Frontend np6{FrontendKind::NodePort, IpAddr::any_v6(), 30080, Protocol::TCP};
  Frontend ext{FrontendKind::ExternalIP, ip("203.0.113.7"), 80, Protocol::TCP};
  auto d = service("ns/np", {cip("10.96.0.5"), np4, np6, ext},
                   {be("10.244.1.1", 8080, true), be("10.244.2.1"), be("fd00::1")},
                   {be("10.244.1.1", 8080, true)});
  d.external_local = true;
  d.affinity_timeout_s = 60;
  ASSERT_TRUE(sm.upsert_service(d));
  // ClusterIP: the cluster set, IPv4 only.
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.5")),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.2.1:8080"}));
  // NodePort: local endpoints from outside, the cluster set for clients on the node.
  EXPECT_EQ(datapath_view(maps, np4), std::vector<std::string>{"10.244.1.1:8080"});
  EXPECT_EQ(datapath_view(maps, np4, PODWARP_LB_SCOPE_INTERNAL),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.2.1:8080"}));
  EXPECT_TRUE(datapath_view(maps, np6).empty());  // entry with count 0: no local IPv6 endpoint
  EXPECT_EQ(datapath_view(maps, np6, PODWARP_LB_SCOPE_INTERNAL),
            std::vector<std::string>{"fd00::1:8080"});
  EXPECT_EQ(datapath_view(maps, ext), std::vector<std::string>{"10.244.1.1:8080"});
  const auto& e = maps.services.at(key_of(np4, 0));
  EXPECT_EQ(e.flags, PODWARP_LB_SVC_F_NODEPORT | PODWARP_LB_SVC_F_TWO_SCOPES |
                         PODWARP_LB_SVC_F_LOCAL_ONLY | PODWARP_LB_SVC_F_INLINE);
  EXPECT_EQ(e.affinity_timeout, 60u);
  EXPECT_EQ(maps.services.at(key_of(np4, 0, PODWARP_LB_SCOPE_INTERNAL)).flags,
            PODWARP_LB_SVC_F_NODEPORT | PODWARP_LB_SVC_F_TWO_SCOPES | PODWARP_LB_SVC_F_INLINE);
  auto local_be = maps.backends.begin();
  for (; local_be != maps.backends.end(); ++local_be)
    if (ntohl(local_be->second.addr[3]) == 0x0af40101u) break;
  ASSERT_NE(local_be, maps.backends.end());
  EXPECT_EQ(local_be->second.flags, PODWARP_LB_BE_F_LOCAL);
  expect_consistent(maps);

  // internalTrafficPolicy Local narrows the ClusterIP; Cluster policies drop the INTERNAL set.
  d.external_local = false;
  d.internal_local = true;
  ASSERT_TRUE(sm.upsert_service(d));
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.5")), std::vector<std::string>{"10.244.1.1:8080"});
  EXPECT_EQ(datapath_view(maps, np4),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.2.1:8080"}));
  EXPECT_EQ(datapath_view(maps, np4, PODWARP_LB_SCOPE_INTERNAL),
            std::vector<std::string>{"<none>"});
  expect_consistent(maps);

  // A frontend the service no longer has is removed.
  d.ports[0].frontends = {cip("10.96.0.5")};
  ASSERT_TRUE(sm.upsert_service(d));
  EXPECT_EQ(datapath_view(maps, np4), std::vector<std::string>{"<none>"});
  EXPECT_EQ(datapath_view(maps, ext), std::vector<std::string>{"<none>"});
  expect_consistent(maps);
}

TEST(ServiceMap, SetBackendsChangesOnePort) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1")})));
  maps.reset_counts();
  auto r = sm.set_backends("ns/a", "http", Protocol::TCP, {be("10.244.1.1"), be("10.244.1.2")}, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(maps.updates, 4);
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.1.2:8080"}));
  auto missing = sm.set_backends("ns/none", "http", Protocol::TCP, {}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  auto wrong_port = sm.set_backends("ns/a", "grpc", Protocol::TCP, {}, {});
  ASSERT_FALSE(wrong_port);
  EXPECT_EQ(wrong_port.error().code, ENOENT);
}

TEST(ServiceMap, RecoverAfterRestartWritesOnlyDifferencesAndPrunesTheRest) {
  FakeLbMaps maps;
  {
    ServiceMap old(maps);
    ASSERT_TRUE(old.upsert_service(
        service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")})));
    ASSERT_TRUE(old.upsert_service(service("ns/gone", {cip("10.96.0.2")}, {be("10.244.1.3")})));
  }
  auto slot_backend_before = maps.services.at(key_of(cip("10.96.0.1"), 1)).backend_id;
  ServiceMap sm(maps);
  auto r = sm.recover();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(sm.set_count(), 2u);
  maps.reset_counts();
  // The restarted noded syncs: ns/a unchanged (no writes), ns/gone was deleted meanwhile.
  ASSERT_TRUE(
      sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.2"), be("10.244.1.1")})));
  EXPECT_EQ(maps.ops(), 0);
  EXPECT_EQ(sm.lookup(cip("10.96.0.1"))->owner, "ns/a");
  EXPECT_EQ(sm.lookup(cip("10.96.0.2"))->owner, "");
  ASSERT_TRUE(sm.prune_unclaimed());
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.2")), std::vector<std::string>{"<none>"});
  EXPECT_EQ(maps.services.at(key_of(cip("10.96.0.1"), 1)).backend_id, slot_backend_before);
  expect_consistent(maps);
  // New ids do not collide with recovered ones.
  ASSERT_TRUE(sm.upsert_service(service("ns/c", {cip("10.96.0.3")}, {be("10.244.1.9")})));
  std::set<std::uint32_t> set_ids;
  for (const auto& [k, v] : maps.services) {
    if (k.slot == 0) {
      EXPECT_TRUE(set_ids.insert(v.set_id).second) << "set id reused";
    }
  }
  expect_consistent(maps);
}

TEST(ServiceMap, RecoverRepairsInconsistentMaps) {
  FakeLbMaps maps;
  {
    ServiceMap old(maps);
    ASSERT_TRUE(old.upsert_service(
        service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")})));
  }
  // A crash mid-update: a slot beyond count, a member missing, an unreferenced backend.
  podwarp_lb_svc extra{};
  extra.backend_id = maps.services.at(key_of(cip("10.96.0.1"), 1)).backend_id;
  maps.services[key_of(cip("10.96.0.1"), 3)] = extra;
  maps.members.erase(maps.members.begin());
  podwarp_lb_backend stray{};
  stray.addr[3] = htonl(0x0af40909);
  maps.backends[777] = stray;
  ServiceMap sm(maps);
  ASSERT_TRUE(sm.recover());
  ASSERT_TRUE(
      sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")})));
  ASSERT_TRUE(sm.prune_unclaimed());
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")).size(), 2u);
  expect_consistent(maps);
}

TEST(ServiceMap, FailedUpdateIsRepairedByTheNextUpsert) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1")})));
  maps.fail_after = 2;  // the backend goes in, its member fails (map full)
  auto r =
      sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, E2BIG);
  EXPECT_NE(r.error().message.find("10.96.0.1:80/TCP"), std::string::npos) << r.error().message;
  // The datapath still sees the old, consistent set.
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")), std::vector<std::string>{"10.244.1.1:8080"});
  ASSERT_TRUE(
      sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1"), be("10.244.1.2")})));
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")),
            (std::vector<std::string>{"10.244.1.1:8080", "10.244.1.2:8080"}));
  expect_consistent(maps);
}

TEST(ServiceMap, TwoServicesClaimingOneFrontendLastWriterWins) {
  FakeLbMaps maps;
  ServiceMap sm(maps);
  ASSERT_TRUE(sm.upsert_service(service("ns/a", {cip("10.96.0.1")}, {be("10.244.1.1")})));
  ASSERT_TRUE(sm.upsert_service(service("ns/b", {cip("10.96.0.1")}, {be("10.244.1.2")})));
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")), std::vector<std::string>{"10.244.1.2:8080"});
  ASSERT_TRUE(sm.delete_service("ns/a"));  // does not remove b's frontend
  EXPECT_EQ(datapath_view(maps, cip("10.96.0.1")), std::vector<std::string>{"10.244.1.2:8080"});
  expect_consistent(maps);
}

}  // namespace
}  // namespace podwarp::noded::lb
