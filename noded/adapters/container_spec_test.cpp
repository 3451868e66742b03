#include "adapters/container_spec.h"

#include <gtest/gtest.h>

#include "adapters/node_runtime.h"

namespace podwarp::noded::adapters {
namespace {

json::value parse(std::string_view s) { return *parse_json(s); }

pods::ImageInfo image() {
  pods::ImageInfo i;
  i.entrypoint = {"/bin/sh", "-c"};
  i.cmd = {"echo image"};
  i.env = {"PATH=/bin", "A=image"};
  i.working_dir = "/data";
  return i;
}

TEST(ProcessSpec, ImageDefaultsAndCommand) {
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns","uid":"u1"},"spec":{}})j");
  auto c = parse(R"j({"name":"c"})j");
  auto p = process_spec(pod, c, image(), {});
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->argv, (std::vector<std::string>{"/bin/sh", "-c", "echo image"}));
  EXPECT_EQ(p->working_dir, "/data");
  EXPECT_EQ(p->seccomp, runtime::SeccompProfile::kUnconfined);  // kubelet default
  EXPECT_FALSE(p->no_new_privs);

  auto c2 = parse(R"j({"name":"c","command":["echo"],"args":["$(A)","$(NAME)","$$(A)"],
    "workingDir":"/w","env":[{"name":"A","value":"pod"},
    {"name":"NAME","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]})j");
  p = process_spec(pod, c2, image(), {});
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->argv, (std::vector<std::string>{"echo", "pod", "p", "$(A)"}));
  EXPECT_EQ(p->working_dir, "/w");
  EXPECT_EQ(p->env, (std::vector<std::string>{"PATH=/bin", "A=pod", "NAME=p"}));
}

TEST(ProcessSpec, SecurityContext) {
  auto pod = parse(R"j({"spec":{"securityContext":{"runAsUser":1000,"runAsGroup":2000,
    "supplementalGroups":[5],"fsGroup":7,"seccompProfile":{"type":"RuntimeDefault"}}}})j");
  auto c = parse(R"j({"name":"c","securityContext":{"runAsUser":1001,
    "allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"],"add":["NET_ADMIN"]}}})j");
  auto p = process_spec(pod, c, image(), {});
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->uid, 1001u);
  EXPECT_EQ(p->gid, 2000u);
  EXPECT_EQ(p->supplemental_groups, (std::vector<gid_t>{5, 7}));
  EXPECT_TRUE(p->no_new_privs);
  EXPECT_EQ(p->seccomp, runtime::SeccompProfile::kRuntimeDefault);
  EXPECT_EQ(p->capabilities, 1ull << runtime::capability_number("NET_ADMIN"));
}

TEST(ProcessSpec, ErrorsNameTheField) {
  auto pod = parse(R"j({"spec":{}})j");
  auto bad_cap = parse(R"j({"name":"c","securityContext":{"capabilities":{"add":["FOO"]}}})j");
  auto p = process_spec(pod, bad_cap, image(), {});
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("spec.containers[c].securityContext.capabilities"), std::string::npos)
      << p.error();
  auto no_cmd = parse(R"j({"name":"c"})j");
  p = process_spec(pod, no_cmd, pods::ImageInfo{}, {});
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("no command specified"), std::string::npos) << p.error();
  auto bad_env = parse(R"j({"name":"c","command":["x"],"env":[{"name":"S",
    "valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]})j");
  p = process_spec(pod, bad_env, image(), {});
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().find("env[S]"), std::string::npos) << p.error();
}

TEST(NodeRuntime, IdsAndStartTicks) {
  EXPECT_EQ(NodeRuntime::id_hex("podwarp://00ff"), "00ff");
  EXPECT_FALSE(NodeRuntime::id_hex("docker://00ff"));
  EXPECT_FALSE(NodeRuntime::id_hex("podwarp://../x"));
  auto t = NodeRuntime::start_ticks(::getpid());
  ASSERT_TRUE(t);
  EXPECT_GT(*t, 0u);
  EXPECT_FALSE(NodeRuntime::start_ticks(-5));
}

}  // namespace
}  // namespace podwarp::noded::adapters
