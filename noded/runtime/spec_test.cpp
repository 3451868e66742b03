// Pure logic of runtime.h: command resolution, $(VAR) expansion, env, capabilities.
#include <gtest/gtest.h>
#include <linux/capability.h>

#include "runtime/runtime.h"

namespace podwarp::noded::runtime {
namespace {

using V = std::vector<std::string>;

TEST(ResolveCommandTest, KubeletAndContainerdRules) {
  V ep = {"/entry"}, cmd = {"--default"};
  EXPECT_EQ(*resolve_command({"/bin/sh"}, {"-c", "x"}, ep, cmd), (V{"/bin/sh", "-c", "x"}));
  EXPECT_EQ(*resolve_command({"/bin/sh"}, {}, ep, cmd), (V{"/bin/sh"}));  // image cmd ignored
  EXPECT_EQ(*resolve_command({}, {"a"}, ep, cmd), (V{"/entry", "a"}));
  EXPECT_EQ(*resolve_command({}, {}, ep, cmd), (V{"/entry", "--default"}));
  EXPECT_EQ(*resolve_command({}, {}, {}, cmd), (V{"--default"}));
  auto none = resolve_command({}, {}, {}, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), "no command specified");
}

TEST(ExpandTest, UpstreamCases) {
  auto lookup = [](std::string_view n) -> std::optional<std::string> {
    if (n == "VAR_A") return "A";
    if (n == "VAR_B") return "B";
    if (n == "VAR_EMPTY") return "";
    return std::nullopt;
  };
  struct Case {
    std::string in, out;
  };
  // From upstream's third_party/forked/golang/expansion tests.
  for (const auto& c : std::vector<Case>{
           {"$(VAR_A)", "A"},
           {"___$(VAR_B)___", "___B___"},
           {"$(VAR_A)-$(VAR_A)", "A-A"},
           {"$(VAR_EMPTY)", ""},
           {"$(VAR_DNE)", "$(VAR_DNE)"},
           {"$$(VAR_A)", "$(VAR_A)"},
           {"$$$(VAR_A)", "$A"},
           {"$$$$$$(VAR_A)", "$$$(VAR_A)"},
           {"$(VAR_A", "$(VAR_A"},
           {"$(", "$("},
           {"$", "$"},
           {"$VAR_A", "$VAR_A"},
           {"$$", "$"},
           {"f000-$$VAR_A", "f000-$VAR_A"},
           {"$()", "$()"},
           {"$(VAR_A)$(VAR_B)", "AB"},
           {"ends with $", "ends with $"},
       }) {
    EXPECT_EQ(expand_vars(c.in, lookup), c.out) << c.in;
  }
}

TEST(EnvTest, OrderAndOverride) {
  std::vector<EnvVar> env = {
      {"A", "1"}, {"B", "$(A)-x"}, {"C", "$(D)"}, {"D", "4"}, {"PATH", "/opt:$(PATH)"}};
  auto out = build_env({"PATH=/usr/bin", "HOME=/root"}, env);
  // PATH from the image is not visible to $(PATH): only container vars defined earlier are.
  EXPECT_EQ(out, (V{"HOME=/root", "A=1", "B=1-x", "C=$(D)", "D=4", "PATH=/opt:$(PATH)"}));
  EXPECT_EQ(expand_args({"echo", "$(B)", "$(D)", "$$(A)"}, env), (V{"echo", "1-x", "4", "$(A)"}));
}

std::uint64_t bit(int c) { return 1ULL << c; }

TEST(CapabilitiesTest, ContainerdSemantics) {
  auto def = compute_capabilities({}, {}, false);
  ASSERT_TRUE(def);
  EXPECT_EQ(*def, 0xa80425fbULL);  // docker/containerd default CapEff
  EXPECT_EQ(*compute_capabilities({"NET_ADMIN"}, {"KILL", "cap_chown"}, false),
            (*def | bit(CAP_NET_ADMIN)) & ~bit(CAP_KILL) & ~bit(CAP_CHOWN));
  EXPECT_EQ(*compute_capabilities({"NET_BIND_SERVICE"}, {"ALL"}, false), bit(CAP_NET_BIND_SERVICE));
  EXPECT_EQ(*compute_capabilities({"ALL"}, {"SYS_ADMIN"}, false),
            all_capabilities() & ~bit(CAP_SYS_ADMIN));
  EXPECT_EQ(*compute_capabilities({}, {"ALL"}, true), all_capabilities());
  auto bad = compute_capabilities({"FLY"}, {}, false);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "unknown capability \"FLY\"");
  EXPECT_EQ(capability_number("CAP_SYS_ADMIN"), CAP_SYS_ADMIN);
  EXPECT_EQ(capability_number("bpf"), CAP_BPF);
  EXPECT_EQ(capability_number(""), -1);
  EXPECT_GE(last_capability(), CAP_BPF);
}

TEST(ResolveUserTest, ContainerdRules) {
  constexpr std::string_view kPasswd =
      "root:x:0:0:root:/root:/bin/sh\n# comment\nnginx:x:101:101:nginx:/:/sbin/nologin\n"
      "app:x:1000:1000::/home/app:/bin/sh\nbroken:x:notanumber:1\n";
  constexpr std::string_view kGroup =
      "root:x:0:\nnginx:x:101:\nwheel:x:10:root,app\naudio:x:29:app\nstaff:x:50:\n";
  EXPECT_EQ(*resolve_user("", kPasswd, kGroup), (UserIds{}));
  EXPECT_EQ(*resolve_user("nginx", kPasswd, kGroup), (UserIds{101, 101, {}}));
  EXPECT_EQ(*resolve_user("app", kPasswd, kGroup), (UserIds{1000, 1000, {10, 29}}));
  EXPECT_EQ(*resolve_user("1000", kPasswd, kGroup), (UserIds{1000, 1000, {10, 29}}));
  EXPECT_EQ(*resolve_user("4242", kPasswd, kGroup), (UserIds{4242, 0, {}}));
  EXPECT_EQ(*resolve_user("app:staff", kPasswd, kGroup), (UserIds{1000, 50, {10, 29}}));
  EXPECT_EQ(*resolve_user("4242:7", kPasswd, kGroup), (UserIds{4242, 7, {}}));
  EXPECT_EQ(*resolve_user("root", kPasswd, kGroup), (UserIds{0, 0, {10}}));
  EXPECT_EQ(resolve_user("nobody", kPasswd, kGroup).error(), "no users found for \"nobody\"");
  EXPECT_EQ(resolve_user("app:nogroup", kPasswd, kGroup).error(),
            "no groups found for \"nogroup\"");
  EXPECT_EQ(resolve_user("broken", kPasswd, kGroup).error(), "no users found for \"broken\"");
}

TEST(StartContainerTest, BadSpecsFailBeforeClone) {
  ContainerSpec spec;
  spec.rootfs = "/nonexistent-podwarp-rootfs";
  spec.process.argv = {"/bin/true"};
  auto r = start_container(spec);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: realpath /nonexistent-podwarp-rootfs: ENOENT");
  spec.process.argv = {};
  r = start_container(spec);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "container start: no command specified");
  spec.rootfs = "/tmp";
  spec.process.argv = {"/bin/true"};
  spec.mounts = {{"/tmp", "/../etc", false}};
  r = start_container(spec);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("must be absolute without"), std::string::npos);
}

}  // namespace
}  // namespace podwarp::noded::runtime
