// Pure parts of the CRI server: ids, filters, transitions, records <-> JSON, CRI messages and
// the objects handed to noded's runtime.
#include "cri/cri_state.h"

#include <gtest/gtest.h>

#include <cctype>

namespace podwarp::cri {
namespace {

SandboxRecord sandbox(std::string id, v1::PodSandboxState state,
                      std::map<std::string, std::string> labels = {}) {
  SandboxRecord s;
  s.id = std::move(id);
  s.pod_uid = pod_uid_for(s.id);
  s.state = state;
  s.config.mutable_metadata()->set_name("web");
  s.config.mutable_metadata()->set_namespace_("demo");
  s.config.mutable_metadata()->set_uid("u-1");
  for (const auto& [k, v] : labels) (*s.config.mutable_labels())[k] = v;
  return s;
}

ContainerRecord container(std::string id, std::string sandbox_id, v1::ContainerState state) {
  ContainerRecord c;
  c.id = std::move(id);
  c.sandbox_id = std::move(sandbox_id);
  c.state = state;
  c.config.mutable_metadata()->set_name("app");
  c.config.mutable_image()->set_image("busybox");
  (*c.config.mutable_labels())["app"] = "web";
  return c;
}

TEST(CriIds, NewIdIs64HexAndUidIsDerived) {
  std::string a = new_id(), b = new_id();
  ASSERT_EQ(a.size(), 64u);
  for (char ch : a) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(ch)) && !std::isupper(ch));
  EXPECT_NE(a, b);
  EXPECT_EQ(pod_uid_for(a), "cri-" + a.substr(0, 32));
  EXPECT_TRUE(is_cri_pod_uid(pod_uid_for(a)));
  EXPECT_FALSE(is_cri_pod_uid("3f2c9a8e-1b2d-4c5e-8f90-123456789abc"));
}

TEST(CriIds, ResolveFullIdOrUniquePrefix) {
  std::vector<std::string> ids = {"abc123", "abd456", "ff00"};
  EXPECT_EQ(resolve_id("abc123", ids), "abc123");
  EXPECT_EQ(resolve_id("abd", ids), "abd456");
  EXPECT_EQ(resolve_id("ab", ids), "");  // ambiguous
  EXPECT_EQ(resolve_id("zz", ids), "");
  EXPECT_EQ(resolve_id("", ids), "");
}

TEST(CriFilters, SandboxByIdStateAndLabels) {
  auto s = sandbox(std::string(64, 'a'), v1::SANDBOX_READY, {{"app", "web"}, {"tier", "fe"}});
  v1::PodSandboxFilter f;
  EXPECT_TRUE(matches(s, f));
  f.set_id("aaaa");
  EXPECT_TRUE(matches(s, f));
  f.set_id("b");
  EXPECT_FALSE(matches(s, f));
  f.clear_id();
  f.mutable_state()->set_state(v1::SANDBOX_NOTREADY);
  EXPECT_FALSE(matches(s, f));
  f.mutable_state()->set_state(v1::SANDBOX_READY);  // READY is 0: set explicitly still filters
  EXPECT_TRUE(matches(s, f));
  (*f.mutable_label_selector())["app"] = "web";
  EXPECT_TRUE(matches(s, f));
  (*f.mutable_label_selector())["tier"] = "be";
  EXPECT_FALSE(matches(s, f));
}

TEST(CriFilters, ContainerBySandboxStateAndLabels) {
  auto c = container(std::string(64, 'c'), std::string(64, 'a'), v1::CONTAINER_RUNNING);
  v1::ContainerFilter f;
  EXPECT_TRUE(matches(c, f));
  f.set_pod_sandbox_id(std::string(64, 'a'));
  EXPECT_TRUE(matches(c, f));
  f.set_pod_sandbox_id("b");
  EXPECT_FALSE(matches(c, f));
  f.clear_pod_sandbox_id();
  f.mutable_state()->set_state(v1::CONTAINER_EXITED);
  EXPECT_FALSE(matches(c, f));
  f.mutable_state()->set_state(v1::CONTAINER_RUNNING);
  EXPECT_TRUE(matches(c, f));
  (*f.mutable_label_selector())["app"] = "db";
  EXPECT_FALSE(matches(c, f));
}

TEST(CriTransitions, StartedThenExited) {
  auto c = container(std::string(64, 'c'), std::string(64, 'a'), v1::CONTAINER_CREATED);
  mark_started(c, {"podwarp://0123", 42, 7}, 1000);
  EXPECT_EQ(c.state, v1::CONTAINER_RUNNING);
  EXPECT_EQ(c.started_at, 1000);
  EXPECT_EQ(c.handle.pid, 42);
  pods::ExitInfo e;
  e.exit_code = 0;
  e.finished_at = pods::WallTime(std::chrono::seconds(5));
  mark_exited(c, e);
  EXPECT_EQ(c.state, v1::CONTAINER_EXITED);
  EXPECT_EQ(c.reason, "Completed");
  EXPECT_EQ(c.finished_at, 5'000'000'000);

  e.exit_code = 137;
  mark_exited(c, e);
  EXPECT_EQ(c.reason, "Error");
  EXPECT_EQ(c.exit_code, 137);
  e.oom_killed = true;
  mark_exited(c, e);
  EXPECT_EQ(c.reason, "OOMKilled");
  e.code_known = false;
  mark_exited(c, e);
  EXPECT_EQ(c.state, v1::CONTAINER_UNKNOWN);
}

TEST(CriTransitions, StartFailure) {
  auto c = container(std::string(64, 'c'), std::string(64, 'a'), v1::CONTAINER_CREATED);
  mark_start_failed(c, "exec: ENOENT", 9);
  EXPECT_EQ(c.state, v1::CONTAINER_EXITED);
  EXPECT_EQ(c.exit_code, 128);
  EXPECT_EQ(c.reason, "StartError");
  EXPECT_EQ(c.message, "exec: ENOENT");
  EXPECT_EQ(c.finished_at, 9);
}

TEST(CriRecords, JsonRoundTrip) {
  auto s = sandbox(new_id(), v1::SANDBOX_NOTREADY, {{"a", "b"}});
  s.created_at = 123;
  s.ip = "10.1.0.5";
  s.config.set_log_directory("/var/log/pods/x");
  auto s2 = sandbox_from_json(to_json_value(s));
  ASSERT_TRUE(s2) << s2.error();
  EXPECT_EQ(s2->id, s.id);
  EXPECT_EQ(s2->pod_uid, s.pod_uid);
  EXPECT_EQ(s2->state, v1::SANDBOX_NOTREADY);
  EXPECT_EQ(s2->created_at, 123);
  EXPECT_EQ(s2->ip, "10.1.0.5");
  EXPECT_EQ(s2->config.SerializeAsString(), s.config.SerializeAsString());

  auto c = container(new_id(), s.id, v1::CONTAINER_EXITED);
  c.config.add_command("sh");
  c.exit_code = 2;
  c.reason = "Error";
  c.handle = {"podwarp://ab", 99, 123456789012ull};
  c.log_path = "/var/log/pods/x/app/0.log";
  auto c2 = container_from_json(to_json_value(c));
  ASSERT_TRUE(c2) << c2.error();
  EXPECT_EQ(c2->id, c.id);
  EXPECT_EQ(c2->state, v1::CONTAINER_EXITED);
  EXPECT_EQ(c2->exit_code, 2);
  EXPECT_EQ(c2->handle.id, "podwarp://ab");
  EXPECT_EQ(c2->handle.pid, 99);
  EXPECT_EQ(c2->handle.start_ticks, 123456789012ull);
  EXPECT_EQ(c2->log_path, c.log_path);
  EXPECT_EQ(c2->config.SerializeAsString(), c.config.SerializeAsString());

  EXPECT_FALSE(sandbox_from_json(json::object{{"id", "short"}}));
  EXPECT_FALSE(container_from_json(json::object{{"id", std::string(64, 'a')}, {"state", 9}}));
}

TEST(CriMessages, StatusCarriesWhatCrictlShows) {
  auto s = sandbox(std::string(64, 'a'), v1::SANDBOX_READY, {{"app", "web"}});
  s.ip = "10.1.0.5";
  (*s.config.mutable_annotations())["k"] = "v";
  auto st = to_sandbox_status(s);
  EXPECT_EQ(st.id(), s.id);
  EXPECT_EQ(st.metadata().name(), "web");
  EXPECT_EQ(st.network().ip(), "10.1.0.5");
  EXPECT_EQ(st.labels().at("app"), "web");
  EXPECT_EQ(st.annotations().at("k"), "v");
  s.state = v1::SANDBOX_NOTREADY;
  EXPECT_EQ(to_sandbox_status(s).network().ip(), "");  // released with the sandbox
  EXPECT_EQ(to_pod_sandbox(s).state(), v1::SANDBOX_NOTREADY);

  auto c = container(std::string(64, 'c'), s.id, v1::CONTAINER_EXITED);
  c.image_id = "sha256:abc";
  c.image_ref = "docker.io/library/busybox@sha256:idx";
  c.exit_code = 1;
  c.reason = "Error";
  c.started_at = 1;
  c.finished_at = 2;
  c.log_path = "/l/app/0.log";
  auto cs = to_container_status(c);
  EXPECT_EQ(cs.state(), v1::CONTAINER_EXITED);
  EXPECT_EQ(cs.exit_code(), 1);
  EXPECT_EQ(cs.reason(), "Error");
  EXPECT_EQ(cs.image().image(), "busybox");
  EXPECT_EQ(cs.image_ref(), "docker.io/library/busybox@sha256:idx");
  EXPECT_EQ(cs.image_id(), "sha256:abc");
  EXPECT_EQ(cs.log_path(), "/l/app/0.log");
  EXPECT_EQ(cs.started_at(), 1);
  EXPECT_EQ(cs.finished_at(), 2);
  auto lc = to_container(c);
  EXPECT_EQ(lc.pod_sandbox_id(), s.id);
  EXPECT_EQ(lc.labels().at("app"), "web");
}

TEST(CriMessages, ImageTagsAndDigests) {
  images::ImageRef a, b;
  a.name = "docker.io/library/busybox:latest";
  a.id = "sha256:cfg";
  a.repo_digest = "sha256:idx";
  a.size = 10;
  b.name = "localhost:5000/busybox:1";
  b.id = "sha256:cfg";
  auto img = to_image({a, b});
  EXPECT_EQ(img.id(), "sha256:cfg");
  EXPECT_EQ(img.size(), 10u);
  ASSERT_EQ(img.repo_tags_size(), 2);
  EXPECT_EQ(img.repo_tags(1), "localhost:5000/busybox:1");
  ASSERT_EQ(img.repo_digests_size(), 1);
  EXPECT_EQ(img.repo_digests(0), "docker.io/library/busybox@sha256:idx");
}

TEST(CriObjects, PodAndContainerForTheRuntime) {
  auto s = sandbox(std::string(64, 'a'), v1::SANDBOX_READY);
  s.config.set_hostname("h1");
  auto pod = pod_object(s);
  EXPECT_EQ(get_string(pod, {"metadata", "uid"}), s.pod_uid);
  EXPECT_EQ(get_string(pod, {"metadata", "namespace"}), "demo");
  EXPECT_EQ(get_string(pod, {"spec", "hostname"}), "h1");

  auto c = container(std::string(64, 'c'), s.id, v1::CONTAINER_CREATED);
  c.config.add_command("sh");
  c.config.add_args("-c");
  c.config.add_args("echo hi");
  c.config.set_working_dir("/tmp");
  auto* kv = c.config.add_envs();
  kv->set_key("A");
  kv->set_value("1");
  auto* m = c.config.add_mounts();
  m->set_host_path("/h");
  m->set_container_path("/c");
  m->set_readonly(true);
  auto obj = container_object(c);
  EXPECT_EQ(get_string(obj, {"name"}), "app");
  EXPECT_EQ(to_json(*find_path(obj, {"command"})), R"(["sh"])");
  EXPECT_EQ(to_json(*find_path(obj, {"args"})), R"(["-c","echo hi"])");
  EXPECT_EQ(get_string(obj, {"workingDir"}), "/tmp");
  EXPECT_EQ(to_json(*find_path(obj, {"env"})), R"([{"name":"A","value":"1"}])");
  auto mounts = mount_requests(c.config);
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].host_path, "/h");
  EXPECT_EQ(mounts[0].container_path, "/c");
  EXPECT_TRUE(mounts[0].read_only);
}

}  // namespace
}  // namespace podwarp::cri
