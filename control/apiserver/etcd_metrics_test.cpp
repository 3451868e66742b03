// MeasuredEtcdClient against a real etcd: each call lands in upstream's
// etcd_request_duration_seconds{operation,type} series, answers (a create that finds its key,
// a lost compare) are not errors, etcd's failures are.
#include "apiserver/etcd_metrics.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "podwarp/asio_run.h"
#include "storage/etcd_process.h"

namespace podwarp::apiserver {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(EtcdMetricsType, IsTheResourceOfTheKey) {
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/pods/default/web-1"), "pods");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/pods/"), "pods");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/deployments/default/web"), "deployments.apps");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/namespaces/kube-system"), "namespaces");
  // Upstream's storage paths of services and endpoints share a first segment.
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/services/specs/default/kubernetes"), "services");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/services/endpoints/default/kubernetes"),
            "endpoints");
  // Keys no resource stores under: the first segment; nothing for the root or outside it.
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/ipaddresses/10.96.0.1"), "ipaddresses");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/registry/"), "");
  EXPECT_EQ(MeasuredEtcdClient::type_of("/other/key"), "");
  EXPECT_EQ(MeasuredEtcdClient::type_of(""), "");
}

class EtcdMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto e = storage::EtcdProcess::start();
    ASSERT_TRUE(e) << e.error().what();
    etcd_ = std::move(*e);
    inner_ = storage::make_etcd_client(io_.get_executor(), {etcd_->endpoint()});
    client_ = std::make_unique<MeasuredEtcdClient>(*inner_, registry_);
  }

  template <typename T>
  T run(asio::awaitable<T> aw) {
    return podwarp::run_to_completion(io_, std::move(aw));
  }

  // The value of one exposed sample, -1 when absent.
  double sample(const std::string& name, std::string_view op, std::string_view type) {
    const std::string text = registry_.expose();
    const std::string head = fmt::format("{}{{operation=\"{}\",type=\"{}\"}} ", name, op, type);
    const std::size_t at = text.find(head);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + head.size()));
  }
  double count(std::string_view op, std::string_view type) {
    return sample("etcd_request_duration_seconds_count", op, type);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  metrics::Registry registry_;
  std::unique_ptr<storage::EtcdProcess> etcd_;
  std::unique_ptr<storage::EtcdClient> inner_;
  std::unique_ptr<MeasuredEtcdClient> client_;
};

TEST_F(EtcdMetricsTest, EachCallIsTimedByOperationAndType) {
  const std::string key = "/registry/pods/default/web-1";
  auto created = run(client_->create(key, "{}"));
  ASSERT_TRUE(created);
  auto again = run(client_->create(key, "{}"));  // taken: an answer, not an error
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, storage::StorageErrc::kAlreadyExists);
  ASSERT_TRUE(run(client_->range(key)));
  const storage::RangeOptions all{.prefix = true};
  ASSERT_TRUE(run(client_->range("/registry/pods/", all)));
  auto stale = run(client_->update(key, "{\"a\":1}", created->mod_revision + 100));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, storage::StorageErrc::kConflict);
  ASSERT_TRUE(run(client_->update(key, "{\"a\":1}", created->mod_revision)));
  ASSERT_TRUE(run(client_->remove(key, 0)));
  ASSERT_TRUE(run(client_->create("/registry/deployments/default/web", "{}")));
  auto put = run(client_->put("/registry/ipaddresses/10.96.0.1", "owner"));
  ASSERT_TRUE(put);

  EXPECT_EQ(count("create", "pods"), 2);
  EXPECT_EQ(count("get", "pods"), 1);
  EXPECT_EQ(count("list", "pods"), 1);
  EXPECT_EQ(count("update", "pods"), 2);
  EXPECT_EQ(count("delete", "pods"), 1);
  EXPECT_EQ(count("create", "deployments.apps"), 1);
  EXPECT_EQ(count("put", "ipaddresses"), 1);
  // Each series has upstream's buckets; the round trips are real, so the sum is above 0.
  EXPECT_GT(sample("etcd_request_duration_seconds_sum", "create", "pods"), 0);
  EXPECT_THAT(registry_.expose(),
              HasSubstr("etcd_request_duration_seconds_bucket{operation=\"create\",type=\"pods\","
                        "le=\"0.005\"}"));
  EXPECT_THAT(registry_.expose(), Not(HasSubstr("etcd_request_errors_total{")));

  // A read at a compacted revision is etcd's failure: counted as an error of that list.
  ASSERT_TRUE(run(client_->compact(*put)));
  EXPECT_EQ(count("compact", ""), 1);
  const storage::RangeOptions old{.revision = created->mod_revision, .prefix = true};
  auto gone = run(client_->range("/registry/pods/", old));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, storage::StorageErrc::kCompacted);
  EXPECT_EQ(count("list", "pods"), 2);
  EXPECT_EQ(sample("etcd_request_errors_total", "list", "pods"), 1);
}

// Watches pass through untimed: events arrive as from the client it wraps.
TEST_F(EtcdMetricsTest, WatchesPassThrough) {
  std::vector<std::string> keys;
  auto w = client_->watch(
      "/registry/configmaps/", 1, false,
      [&](std::vector<storage::WatchEvent> events, std::int64_t) {
        for (const auto& e : events) keys.push_back(e.kv.key);
      },
      [](storage::StorageError) {});
  ASSERT_TRUE(run(client_->create("/registry/configmaps/ns/a", "{}")));
  podwarp::run_until(
      io_, [&] { return !keys.empty(); }, std::chrono::seconds(10));
  EXPECT_EQ(keys, std::vector<std::string>{"/registry/configmaps/ns/a"});
  EXPECT_THAT(registry_.expose(), Not(HasSubstr("operation=\"watch\"")));
}

}  // namespace
}  // namespace podwarp::apiserver
