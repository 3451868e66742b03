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
  EXPECT_EQ(p.error(), std::string(pods::kCreateContainerConfigError) + "secret \"s\" not found");
  auto bad_field = parse(R"j({"name":"c","command":["x"],"env":[{"name":"F",
    "valueFrom":{"fieldRef":{"fieldPath":"spec.nope"}}}]})j");
  p = process_spec(pod, bad_field, image(), {});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), "spec.containers[c].env[F]: unsupported fieldPath: spec.nope");
}

struct EnvFixture {
  std::map<std::string, json::value> objects;  // "Kind/name" in namespace ns
  pods::ObjectLookup lookup = [this](std::string_view kind, std::string_view ns,
                                     std::string_view name) -> std::optional<json::value> {
    if (ns != "ns") return std::nullopt;
    auto it = objects.find(std::string(kind) + "/" + std::string(name));
    if (it == objects.end()) return std::nullopt;
    return it->second;
  };
  std::vector<std::string> events;
  EnvContext ctx() {
    EnvContext c;
    c.lookup = &lookup;
    c.downward.host_ips = {"192.0.2.1"};
    c.downward.pod_ips = {"10.0.0.7", "fd00::7"};
    c.downward.node_allocatable = {{"cpu", "8"}, {"memory", "16Gi"}};
    c.on_event = [this](std::string_view t, std::string_view r, const std::string& m) {
      events.push_back(std::string(t) + " " + std::string(r) + " " + m);
    };
    return c;
  }
  EnvFixture() {
    objects["ConfigMap/cfg"] = json::object{{"data", json::object{{"LEVEL", "debug"}, {"1bad", "x"}, {"url", "$(HOST)"}}}};
    objects["Secret/sec"] = json::object{{"data", json::object{{"PASSWORD", "aHVudGVyMg=="}, {"token", "dA=="}}}};
  }
};

std::map<std::string, std::string> as_map(const std::vector<runtime::EnvVar>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) m[e.name] = e.value;
  return m;
}

TEST(ContainerEnv, SourcesTable) {
  EnvFixture f;
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns","uid":"u1","labels":{"app":"web"},
    "annotations":{"team":"x"}},"spec":{"nodeName":"n1","serviceAccountName":"sa"}})j");
  auto c = parse(R"j({"name":"c","resources":{"limits":{"cpu":"500m"},"requests":{"memory":"64Mi"}},
    "envFrom":[{"configMapRef":{"name":"cfg"}},{"prefix":"S_","secretRef":{"name":"sec"}},
               {"configMapRef":{"name":"absent","optional":true}}],
    "env":[
      {"name":"HOST","value":"db"},
      {"name":"URL","value":"http://$(HOST)/$(LEVEL)/$(NOPE)/$$(HOST)"},
      {"name":"LEVEL","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"LEVEL"}}},
      {"name":"RAW","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"url"}}},
      {"name":"PW","valueFrom":{"secretKeyRef":{"name":"sec","key":"PASSWORD"}}},
      {"name":"OPT","valueFrom":{"secretKeyRef":{"name":"sec","key":"missing","optional":true}}},
      {"name":"OPT2","valueFrom":{"configMapKeyRef":{"name":"absent","key":"k","optional":true}}},
      {"name":"POD","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},
      {"name":"NS","valueFrom":{"fieldRef":{"fieldPath":"metadata.namespace"}}},
      {"name":"UID","valueFrom":{"fieldRef":{"fieldPath":"metadata.uid"}}},
      {"name":"APP","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['app']"}}},
      {"name":"TEAM","valueFrom":{"fieldRef":{"fieldPath":"metadata.annotations['team']"}}},
      {"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}},
      {"name":"SA","valueFrom":{"fieldRef":{"fieldPath":"spec.serviceAccountName"}}},
      {"name":"HOST_IP","valueFrom":{"fieldRef":{"fieldPath":"status.hostIP"}}},
      {"name":"HOST_IPS","valueFrom":{"fieldRef":{"fieldPath":"status.hostIPs"}}},
      {"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},
      {"name":"POD_IPS","valueFrom":{"fieldRef":{"fieldPath":"status.podIPs"}}},
      {"name":"CPU_LIMIT","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"1m"}}},
      {"name":"MEM_LIMIT","valueFrom":{"resourceFieldRef":{"resource":"limits.memory","divisor":"1Mi"}}},
      {"name":"MEM_REQ","valueFrom":{"resourceFieldRef":{"resource":"requests.memory"}}}
    ]})j");
  auto env = container_env(pod, c, f.ctx());
  ASSERT_TRUE(env) << env.error();
  auto m = as_map(*env);
  std::map<std::string, std::string> want{
      {"LEVEL", "debug"}, {"url", "$(HOST)"}, {"S_PASSWORD", "hunter2"}, {"S_token", "t"},
      {"HOST", "db"},
      // envFrom's LEVEL is defined when URL is expanded; NOPE stays; $$ escapes.
      {"URL", "http://db/debug/$(NOPE)/$(HOST)"},
      {"RAW", "$(HOST)"},  // valueFrom values are not expanded
      {"PW", "hunter2"}, {"POD", "p"}, {"NS", "ns"}, {"UID", "u1"}, {"APP", "web"},
      {"TEAM", "x"}, {"NODE", "n1"}, {"SA", "sa"}, {"HOST_IP", "192.0.2.1"},
      {"HOST_IPS", "192.0.2.1"}, {"POD_IP", "10.0.0.7"}, {"POD_IPS", "10.0.0.7,fd00::7"},
      {"CPU_LIMIT", "500"}, {"MEM_LIMIT", "16384"},  // no memory limit: node allocatable
      {"MEM_REQ", "67108864"}};
  EXPECT_EQ(m, want);
  // envFrom keys first (sorted per source), env order after; a redefinition keeps its place.
  EXPECT_EQ((*env)[0].name, "LEVEL");
  // The invalid key was skipped with the kubelet's event.
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0],
            "Warning InvalidEnvironmentVariableNames Keys [1bad] from the EnvFrom configMap ns/cfg "
            "were skipped since they are considered invalid environment variable names.");
}

TEST(ContainerEnv, MissingSourcesAreConfigErrors) {
  EnvFixture f;
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns"},"spec":{}})j");
  const std::string pre(pods::kCreateContainerConfigError);
  struct Case {
    const char* container;
    std::string want;
  } cases[] = {
      {R"j({"name":"c","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"x","key":"k"}}}]})j",
       pre + "configmap \"x\" not found"},
      {R"j({"name":"c","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"k"}}}]})j",
       pre + "couldn't find key k in ConfigMap ns/cfg"},
      {R"j({"name":"c","env":[{"name":"A","valueFrom":{"secretKeyRef":{"name":"x","key":"k"}}}]})j",
       pre + "secret \"x\" not found"},
      {R"j({"name":"c","env":[{"name":"A","valueFrom":{"secretKeyRef":{"name":"sec","key":"k"}}}]})j",
       pre + "couldn't find key k in Secret ns/sec"},
      {R"j({"name":"c","envFrom":[{"configMapRef":{"name":"x"}}]})j", pre + "configmap \"x\" not found"},
      {R"j({"name":"c","envFrom":[{"secretRef":{"name":"x"}}]})j", pre + "secret \"x\" not found"},
  };
  for (const auto& c : cases) {
    auto env = container_env(pod, parse(c.container), f.ctx());
    ASSERT_FALSE(env) << c.container;
    EXPECT_EQ(env.error(), c.want);
  }
  // Without any lookup (static pod without sources) a reference is just as missing.
  auto env = container_env(pod, parse(cases[0].container), EnvContext{});
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error(), cases[0].want);
}

TEST(ContainerEnv, ArgsExpandAgainstTheResolvedEnvOnly) {
  EnvFixture f;
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns"},"spec":{}})j");
  auto c = parse(R"j({"name":"c","command":["echo","$(LEVEL)","$(RAW)","$(PATH)"],
    "envFrom":[{"configMapRef":{"name":"cfg"}}],
    "env":[{"name":"RAW","valueFrom":{"configMapKeyRef":{"name":"cfg","key":"url"}}}]})j");
  auto p = process_spec(pod, c, image(), {}, f.ctx());
  ASSERT_TRUE(p) << p.error();
  // Image env (PATH) is not visible to $(VAR) expansion, as upstream; values are not re-expanded.
  EXPECT_EQ(p->argv, (std::vector<std::string>{"echo", "debug", "$(HOST)", "$(PATH)"}));
  EXPECT_EQ(p->env, (std::vector<std::string>{"PATH=/bin", "A=image", "LEVEL=debug", "url=$(HOST)", "RAW=$(HOST)"}));
}

// Services as the kubelet sees them: default/kubernetes, one in the pod's namespace with two
// ports (the second UDP, both named), a headless one, an ExternalName one, one elsewhere.
std::vector<std::shared_ptr<const json::value>> cluster_services() {
  std::vector<std::shared_ptr<const json::value>> out;
  for (const char* text : {
           R"j({"metadata":{"name":"kubernetes","namespace":"default"},"spec":{"clusterIP":"10.96.0.1",
              "ports":[{"name":"https","port":443,"protocol":"TCP","targetPort":6443}]}})j",
           R"j({"metadata":{"name":"my-db","namespace":"ns"},"spec":{"clusterIP":"10.96.0.20",
              "ports":[{"name":"sql","port":5432},{"name":"dns-udp","port":53,"protocol":"UDP"}]}})j",
           R"j({"metadata":{"name":"headless","namespace":"ns"},"spec":{"clusterIP":"None",
              "ports":[{"port":80}]}})j",
           R"j({"metadata":{"name":"ext","namespace":"ns"},"spec":{"type":"ExternalName",
              "externalName":"example.org"}})j",
           R"j({"metadata":{"name":"other","namespace":"elsewhere"},"spec":{"clusterIP":"10.96.0.30",
              "ports":[{"port":80}]}})j"})
    out.push_back(std::make_shared<const json::value>(parse(text)));
  return out;
}

TEST(ServiceEnv, UpstreamVariables) {
  auto all = cluster_services();
  std::vector<const json::value*> services;
  for (const auto& s : all) services.push_back(s.get());
  auto m = as_map(service_env(services, "ns", true));
  std::map<std::string, std::string> want{
      {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
      {"KUBERNETES_SERVICE_PORT", "443"},
      {"KUBERNETES_SERVICE_PORT_HTTPS", "443"},
      {"KUBERNETES_PORT", "tcp://10.96.0.1:443"},
      {"KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"},
      {"KUBERNETES_PORT_443_TCP_PROTO", "tcp"},
      {"KUBERNETES_PORT_443_TCP_PORT", "443"},
      {"KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"},
      {"MY_DB_SERVICE_HOST", "10.96.0.20"},
      {"MY_DB_SERVICE_PORT", "5432"},  // the first port
      {"MY_DB_SERVICE_PORT_SQL", "5432"},
      {"MY_DB_SERVICE_PORT_DNS_UDP", "53"},
      {"MY_DB_PORT", "tcp://10.96.0.20:5432"},
      {"MY_DB_PORT_5432_TCP", "tcp://10.96.0.20:5432"},
      {"MY_DB_PORT_5432_TCP_PROTO", "tcp"},
      {"MY_DB_PORT_5432_TCP_PORT", "5432"},
      {"MY_DB_PORT_5432_TCP_ADDR", "10.96.0.20"},
      {"MY_DB_PORT_53_UDP", "udp://10.96.0.20:53"},
      {"MY_DB_PORT_53_UDP_PROTO", "udp"},
      {"MY_DB_PORT_53_UDP_PORT", "53"},
      {"MY_DB_PORT_53_UDP_ADDR", "10.96.0.20"}};
  EXPECT_EQ(m, want);
  // enableServiceLinks: false keeps the master service's variables only.
  auto master = service_env(services, "ns", false);
  ASSERT_EQ(master.size(), 8u);
  for (const auto& e : master) EXPECT_TRUE(e.name.starts_with("KUBERNETES_")) << e.name;
  // A Service named kubernetes in the pod's namespace wins over default's.
  auto own = parse(R"j({"metadata":{"name":"kubernetes","namespace":"ns"},"spec":{"clusterIP":"fd00::5",
      "ports":[{"port":8443}]}})j");
  for (bool own_first : {true, false}) {
    std::vector<const json::value*> with = services;
    with.insert(own_first ? with.begin() : with.end(), &own);
    auto k = as_map(service_env(with, "ns", true));
    EXPECT_EQ(k["KUBERNETES_SERVICE_HOST"], "fd00::5");
    EXPECT_EQ(k["KUBERNETES_PORT"], "tcp://[fd00::5]:8443");  // Go's JoinHostPort
    EXPECT_FALSE(k.contains("KUBERNETES_SERVICE_PORT_HTTPS"));
  }
}

TEST(ContainerEnv, ServiceVariablesComeLastAndExpand) {
  EnvFixture f;
  pods::ServiceList list = [] { return cluster_services(); };
  EnvContext ctx = f.ctx();
  ctx.services = &list;
  auto pod = parse(R"j({"metadata":{"name":"p","namespace":"ns"},"spec":{}})j");
  auto c = parse(R"j({"name":"c","env":[
      {"name":"DB","value":"$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT)"},
      {"name":"MY_DB_SERVICE_PORT","value":"1"}]})j");
  auto env = container_env(pod, c, ctx);
  ASSERT_TRUE(env) << env.error();
  // The declared variables first, in order; $(VAR) saw the service's port before the
  // container redefined it, and the redefinition wins over the service's value.
  ASSERT_GE(env->size(), 3u);
  EXPECT_EQ((*env)[0].name, "DB");
  EXPECT_EQ((*env)[0].value, "10.96.0.20:5432");
  EXPECT_EQ((*env)[1].name, "MY_DB_SERVICE_PORT");
  EXPECT_EQ((*env)[1].value, "1");
  auto m = as_map(*env);
  EXPECT_EQ(m.size(), 22u);  // DB and the 21 service variables, one of them redefined
  EXPECT_EQ(m["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
  for (std::size_t i = 3; i < env->size(); ++i) EXPECT_LT((*env)[i - 1].name, (*env)[i].name);

  // enableServiceLinks: false
  auto no_links = parse(R"j({"metadata":{"name":"p","namespace":"ns"},"spec":{"enableServiceLinks":false}})j");
  env = container_env(no_links, parse(R"j({"name":"c"})j"), ctx);
  ASSERT_TRUE(env) << env.error();
  EXPECT_EQ(env->size(), 8u);

  // Services not read yet: the kubelet's CreateContainerConfigError.
  pods::ServiceList unsynced = []()
      -> std::expected<std::vector<std::shared_ptr<const json::value>>, std::string> {
    return std::unexpected(std::string("services have not yet been read at least once, cannot construct envvars"));
  };
  ctx.services = &unsynced;
  env = container_env(pod, c, ctx);
  ASSERT_FALSE(env);
  EXPECT_EQ(env.error(), std::string(pods::kCreateContainerConfigError) +
                             "services have not yet been read at least once, cannot construct envvars");
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
