#include "dns/records.h"

#include <gtest/gtest.h>

#include "dns/responder.h"

namespace podwarp::noded::dns {
namespace {

json::value js(std::string_view text) { return *parse_json(text); }

std::string ip_text(const ResourceRecord& rr) {
  const auto& b = std::get<RawData>(rr.data).bytes;
  if (b.size() == 4)
    return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
           std::to_string(b[3]);
  return dashed_ip(b);
}

std::vector<std::string> addrs(const LookupResult& r) {
  std::vector<std::string> out;
  for (const auto& rr : r.answer)
    if (rr.type == type::kA || rr.type == type::kAAAA) out.push_back(ip_text(rr));
  std::sort(out.begin(), out.end());
  return out;
}

class RecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rec.upsert_service(js(R"({"metadata":{"namespace":"default","name":"web"},
      "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10","fd00::10"],
      "ports":[{"name":"http","protocol":"TCP","port":80},{"protocol":"UDP","port":53}]}})"));
    rec.upsert_service(js(R"({"metadata":{"namespace":"db","name":"pg"},
      "spec":{"clusterIP":"None","ports":[{"name":"pg","port":5432}]}})"));
    rec.upsert_slice(js(R"({"metadata":{"namespace":"db","name":"pg-abc",
      "labels":{"kubernetes.io/service-name":"pg"}},"addressType":"IPv4",
      "ports":[{"name":"pg","protocol":"TCP","port":5432}],
      "endpoints":[{"addresses":["10.244.1.5"],"hostname":"pg-0","conditions":{"ready":true}},
                   {"addresses":["10.244.2.6"],"conditions":{}},
                   {"addresses":["10.244.3.7"],"conditions":{"ready":false}}]})"));
    rec.upsert_service(js(R"({"metadata":{"namespace":"default","name":"ext"},
      "spec":{"type":"ExternalName","externalName":"www.example.com."}})"));
    rec.upsert_service(js(R"({"metadata":{"namespace":"default","name":"alias"},
      "spec":{"type":"ExternalName","externalName":"web.default.svc.cluster.local"}})"));
    rec.upsert_service(js(R"({"metadata":{"namespace":"db","name":"empty"},"spec":{"clusterIP":"None"}})"));
  }
  LookupResult q(std::string_view name, std::uint16_t t) { return rec.lookup(name_from_text(name), t); }
  ClusterRecords rec{"cluster.local"};
};

TEST_F(RecordsTest, ClusterIpByFamily) {
  auto a = q("web.default.svc.cluster.local", type::kA);
  EXPECT_EQ(a.rcode, rcode::kNoError);
  EXPECT_EQ(addrs(a), (std::vector<std::string>{"10.96.0.10"}));
  EXPECT_EQ(a.answer[0].ttl, kTtl);
  auto aaaa = q("web.default.svc.cluster.local", type::kAAAA);
  EXPECT_EQ(addrs(aaaa), (std::vector<std::string>{"fd00--10"}));
}

TEST_F(RecordsTest, CaseInsensitiveAndOwnerKeepsSpelling) {
  auto a = q("WEB.Default.SVC.Cluster.Local", type::kA);
  ASSERT_EQ(a.answer.size(), 1u);
  EXPECT_EQ(name_to_text(a.answer[0].name), "WEB.Default.SVC.Cluster.Local.");
}

TEST_F(RecordsTest, NxDomainWithSoaAndNoData) {
  auto nx = q("nope.default.svc.cluster.local", type::kA);
  EXPECT_EQ(nx.rcode, rcode::kNxDomain);
  ASSERT_EQ(nx.authority.size(), 1u);
  EXPECT_EQ(nx.authority[0].type, type::kSOA);
  EXPECT_EQ(nx.authority[0].ttl, kNegativeTtl);
  EXPECT_EQ(std::get<SoaData>(nx.authority[0].data).minimum, kNegativeTtl);
  EXPECT_EQ(q("a.b.c.d.e.f.cluster.local", type::kA).rcode, rcode::kNxDomain);
  EXPECT_EQ(q("web.nons.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
  auto nodata = q("web.default.svc.cluster.local", type::kTXT);
  EXPECT_EQ(nodata.rcode, rcode::kNoError);
  EXPECT_TRUE(nodata.answer.empty());
  EXPECT_EQ(nodata.authority.size(), 1u);
  EXPECT_EQ(q("default.svc.cluster.local", type::kA).rcode, rcode::kNoError);
  EXPECT_EQ(q("svc.cluster.local", type::kA).rcode, rcode::kNoError);
  EXPECT_EQ(q("unknown.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
  auto soa = q("cluster.local", type::kSOA);
  ASSERT_EQ(soa.answer.size(), 1u);
  EXPECT_EQ(soa.answer[0].type, type::kSOA);
}

TEST_F(RecordsTest, SrvForNamedPortsOnly) {
  auto s = q("_http._tcp.web.default.svc.cluster.local", type::kSRV);
  ASSERT_EQ(s.answer.size(), 1u);
  const auto& d = std::get<SrvData>(s.answer[0].data);
  EXPECT_EQ(d.port, 80);
  EXPECT_EQ(name_to_text(d.target), "web.default.svc.cluster.local.");
  EXPECT_EQ(s.additional.size(), 2u);  // A and AAAA of the target
  EXPECT_EQ(q("_http._udp.web.default.svc.cluster.local", type::kSRV).rcode, rcode::kNxDomain);
  EXPECT_EQ(q("_dns._udp.web.default.svc.cluster.local", type::kSRV).rcode, rcode::kNxDomain);
  EXPECT_EQ(q("_tcp.web.default.svc.cluster.local", type::kA).rcode, rcode::kNoError);
  // SRV on the service name itself: every named port.
  EXPECT_EQ(q("web.default.svc.cluster.local", type::kSRV).answer.size(), 1u);
}

TEST_F(RecordsTest, HeadlessReadyEndpoints) {
  auto a = q("pg.db.svc.cluster.local", type::kA);
  EXPECT_EQ(addrs(a), (std::vector<std::string>{"10.244.1.5", "10.244.2.6"}));  // not the unready
  EXPECT_EQ(addrs(q("pg-0.pg.db.svc.cluster.local", type::kA)),
            (std::vector<std::string>{"10.244.1.5"}));
  EXPECT_EQ(addrs(q("10-244-2-6.pg.db.svc.cluster.local", type::kA)),
            (std::vector<std::string>{"10.244.2.6"}));
  EXPECT_EQ(q("10-244-3-7.pg.db.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
  auto srv = q("_pg._tcp.pg.db.svc.cluster.local", type::kSRV);
  ASSERT_EQ(srv.answer.size(), 2u);
  std::vector<std::string> targets;
  for (const auto& rr : srv.answer) targets.push_back(name_to_text(std::get<SrvData>(rr.data).target));
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(targets, (std::vector<std::string>{"10-244-2-6.pg.db.svc.cluster.local.",
                                               "pg-0.pg.db.svc.cluster.local."}));
  EXPECT_EQ(srv.additional.size(), 2u);
  // No ready endpoints at all: NXDOMAIN (specification 2.4.1).
  EXPECT_EQ(q("empty.db.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
}

TEST_F(RecordsTest, EndpointChangesAndDeletes) {
  rec.upsert_slice(js(R"({"metadata":{"namespace":"db","name":"pg-abc",
      "labels":{"kubernetes.io/service-name":"pg"}},"addressType":"IPv4",
      "endpoints":[{"addresses":["10.244.9.9"]}]})"));
  EXPECT_EQ(addrs(q("pg.db.svc.cluster.local", type::kA)), (std::vector<std::string>{"10.244.9.9"}));
  rec.delete_slice(js(R"({"metadata":{"namespace":"db","name":"pg-abc"}})"));
  EXPECT_EQ(q("pg.db.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
  rec.delete_service(js(R"({"metadata":{"namespace":"default","name":"web"}})"));
  EXPECT_EQ(q("web.default.svc.cluster.local", type::kA).rcode, rcode::kNxDomain);
}

TEST_F(RecordsTest, PublishNotReadyAddresses) {
  rec.upsert_service(js(R"({"metadata":{"namespace":"db","name":"pg"},
      "spec":{"clusterIP":"None","publishNotReadyAddresses":true}})"));
  EXPECT_EQ(addrs(q("pg.db.svc.cluster.local", type::kA)).size(), 3u);
}

TEST_F(RecordsTest, ExternalNameCname) {
  auto r = q("ext.default.svc.cluster.local", type::kA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(r.answer[0].type, type::kCNAME);
  EXPECT_EQ(name_to_text(std::get<Name>(r.answer[0].data)), "www.example.com.");
  ASSERT_TRUE(r.external_target);
  // A target inside the zone is resolved here.
  auto in = q("alias.default.svc.cluster.local", type::kA);
  ASSERT_EQ(in.answer.size(), 2u);
  EXPECT_EQ(in.answer[1].type, type::kA);
  EXPECT_FALSE(in.external_target);
}

TEST_F(RecordsTest, PodRecords) {
  EXPECT_EQ(addrs(q("10-244-1-5.default.pod.cluster.local", type::kA)),
            (std::vector<std::string>{"10.244.1.5"}));
  EXPECT_EQ(addrs(q("fd00--5.default.pod.cluster.local", type::kAAAA)),
            (std::vector<std::string>{"fd00--5"}));
  EXPECT_EQ(q("10-244-1-300.default.pod.cluster.local", type::kA).rcode, rcode::kNxDomain);
  EXPECT_EQ(q("10-244-1-5.default.pod.cluster.local", type::kAAAA).rcode, rcode::kNoError);
}

TEST_F(RecordsTest, OutsideZoneAndPtr) {
  EXPECT_EQ(q("example.com", type::kA).kind, LookupResult::kNotOurs);
  EXPECT_EQ(q("cluster.local.example.com", type::kA).kind, LookupResult::kNotOurs);
  auto ptr = q("10.0.96.10.in-addr.arpa", type::kPTR);
  ASSERT_EQ(ptr.kind, LookupResult::kAnswer);
  ASSERT_EQ(ptr.answer.size(), 1u);
  EXPECT_EQ(name_to_text(std::get<Name>(ptr.answer[0].data)), "web.default.svc.cluster.local.");
  auto pet = q("5.1.244.10.in-addr.arpa", type::kPTR);
  ASSERT_EQ(pet.answer.size(), 1u);
  EXPECT_EQ(name_to_text(std::get<Name>(pet.answer[0].data)), "pg-0.pg.db.svc.cluster.local.");
  EXPECT_EQ(q("1.1.168.192.in-addr.arpa", type::kPTR).kind, LookupResult::kNotOurs);
  EXPECT_EQ(addrs(q("dns-version.cluster.local", type::kTXT)).size(), 0u);
  EXPECT_EQ(q("dns-version.cluster.local", type::kTXT).answer.size(), 1u);
}

TEST_F(RecordsTest, OtherDomain) {
  ClusterRecords other("corp.example");
  other.upsert_service(js(R"({"metadata":{"namespace":"a","name":"b"},"spec":{"clusterIP":"10.0.0.1"}})"));
  EXPECT_EQ(addrs(other.lookup(name_from_text("b.a.svc.corp.example"), type::kA)),
            (std::vector<std::string>{"10.0.0.1"}));
  EXPECT_EQ(other.lookup(name_from_text("b.a.svc.cluster.local"), type::kA).kind,
            LookupResult::kNotOurs);
}

// Through the responder: wire in, wire out.
TEST_F(RecordsTest, ResponderEndToEnd) {
  Responder r(rec);
  Message qm;
  qm.id = 77;
  qm.rd = true;
  qm.questions.push_back({name_from_text("web.default.svc.cluster.local"), type::kA, kClassIN});
  auto d = r.handle(encode(qm), Transport::kUdp);
  ASSERT_EQ(d.kind, Decision::kReply);
  auto m = parse_message(d.reply);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 77);
  EXPECT_TRUE(m->qr);
  EXPECT_TRUE(m->aa);
  EXPECT_TRUE(m->ra);
  EXPECT_EQ(m->answer.size(), 1u);
  EXPECT_FALSE(m->edns);
  qm.questions[0].name = name_from_text("example.com");
  EXPECT_EQ(r.handle(encode(qm), Transport::kUdp).kind, Decision::kForward);
  // Cluster zone, class CH: refused, never forwarded.
  qm.questions[0] = {name_from_text("web.default.svc.cluster.local"), type::kA, 3};
  auto ch = r.handle(encode(qm), Transport::kUdp);
  ASSERT_EQ(ch.kind, Decision::kReply);
  EXPECT_EQ(ch.rcode, rcode::kRefused);
  // Big headless answer: TC over UDP without EDNS, full over TCP and with EDNS 4096.
  std::string eps;
  for (int i = 0; i < 60; ++i)
    eps += std::string(i ? "," : "") + R"({"addresses":["10.1.0.)" + std::to_string(i) + R"("]})";
  rec.upsert_slice(js(R"({"metadata":{"namespace":"db","name":"big",
      "labels":{"kubernetes.io/service-name":"empty"}},"addressType":"IPv4","endpoints":[)" + eps + "]}"));
  qm.questions[0] = {name_from_text("empty.db.svc.cluster.local"), type::kA, kClassIN};
  auto udp = parse_message(r.handle(encode(qm), Transport::kUdp).reply);
  ASSERT_TRUE(udp);
  EXPECT_TRUE(udp->tc);
  EXPECT_TRUE(udp->answer.empty());
  auto tcp = parse_message(r.handle(encode(qm), Transport::kTcp).reply);
  ASSERT_TRUE(tcp);
  EXPECT_FALSE(tcp->tc);
  EXPECT_EQ(tcp->answer.size(), 60u);
  qm.edns = Edns{4096, 0, 0, false};
  auto big = parse_message(r.handle(encode(qm), Transport::kUdp).reply);
  ASSERT_TRUE(big);
  EXPECT_FALSE(big->tc);
  EXPECT_EQ(big->answer.size(), 60u);
  ASSERT_TRUE(big->edns);
}

TEST(DashedIp, RoundTrip) {
  EXPECT_EQ(dashed_ip(*parse_dashed_ip("1-2-3-4")), "1-2-3-4");
  EXPECT_EQ(dashed_ip(*parse_dashed_ip("fd00--1")), "fd00--1");
  EXPECT_FALSE(parse_dashed_ip("1-2-3"));
  EXPECT_FALSE(parse_dashed_ip("web"));
  EXPECT_FALSE(parse_dashed_ip(""));
}

}  // namespace
}  // namespace podwarp::noded::dns
