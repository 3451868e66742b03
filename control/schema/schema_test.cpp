#include "schema/schema.h"

#include <algorithm>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "podwarp/api/resources.h"
#include "schema/dsl.h"
#include "schema/embedded_defs.h"

namespace podwarp::schema {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

json::value parse(std::string_view text) {
  auto v = parse_json(text);
  if (!v) throw std::runtime_error("test JSON: " + v.error());
  return *v;
}

const Type& kind(std::string_view group, std::string_view version, std::string_view k) {
  const Type* t = kind_type(group, version, k);
  if (t == nullptr) throw std::runtime_error("no kind " + std::string(k));
  return *t;
}

// ------------------------------------------------------------------ model integrity

TEST(SchemaModel, LoadsAndEveryReferenceResolves) {
  ASSERT_NO_THROW(load());
  ASSERT_FALSE(named_types().empty());
  std::set<const Type*> seen;
  std::vector<const Type*> todo(named_types().begin(), named_types().end());
  while (!todo.empty()) {
    const Type* t = todo.back();
    todo.pop_back();
    ASSERT_NE(t, nullptr);
    if (!seen.insert(t).second) continue;
    if (t->kind == TypeKind::kArray || t->kind == TypeKind::kMap) {
      ASSERT_NE(t->items, nullptr);
      todo.push_back(t->items);
    }
    for (const Field& f : t->fields) {
      ASSERT_NE(f.type, nullptr) << t->name << "." << f.name;
      todo.push_back(f.type);
    }
    if (t->is_named()) {
      EXPECT_EQ(find_type(t->name), t);
    }
  }
}

TEST(SchemaModel, EveryResourceAndSubresourceHasAKindType) {
  for (const api::Resource& r : api::resources()) {
    const Type* t = kind_type(r.group, r.version, r.kind);
    ASSERT_NE(t, nullptr) << r.api_version() << " " << r.kind;
    EXPECT_EQ(t->kind, TypeKind::kStruct);
    EXPECT_NE(t->find_field("metadata"), nullptr) << r.kind;
    const bool listed = std::find(r.verbs.begin(), r.verbs.end(), "list") != r.verbs.end();
    if (!r.stored && !listed) {
      // A review is answered, never listed: upstream has no list kind for it either.
      EXPECT_EQ(kind_type(r.group, r.version, std::string(r.kind) + "List"), nullptr) << r.kind;
      continue;
    }
    const Type* list = kind_type(r.group, r.version, std::string(r.kind) + "List");
    ASSERT_NE(list, nullptr) << r.kind << "List";
    const Field* items = list->find_field("items");
    ASSERT_NE(items, nullptr);
    EXPECT_EQ(items->type->items, t);
    for (const api::Subresource& sub : r.subresources) {
      if (sub.kind.empty() || sub.kind.ends_with("Options")) continue;
      EXPECT_NE(kind_type(sub.group, sub.version, sub.kind), nullptr)
          << r.plural << "/" << sub.name << " → " << sub.kind;
    }
  }
  EXPECT_NE(kind_type("", "v1", "Status"), nullptr);
  EXPECT_NE(kind_type("apps", "v1", "DeleteOptions"), nullptr);
  EXPECT_EQ(kind_type("apps", "v1", "Nope"), nullptr);
}

TEST(SchemaModel, MergeAndListMapKeysAreFieldsOfTheItems) {
  int merged = 0;
  for (const Type* t : named_types()) {
    for (const Field& f : t->fields) {
      if (!f.patch_merge_key.empty()) {
        ASSERT_EQ(f.type->kind, TypeKind::kArray) << t->name << "." << f.name;
        EXPECT_NE(f.type->items->find_field(f.patch_merge_key), nullptr)
            << t->name << "." << f.name << " merge key " << f.patch_merge_key;
        ++merged;
      }
      for (const std::string& key : f.list_map_keys) {
        EXPECT_NE(f.type->items->find_field(key), nullptr)
            << t->name << "." << f.name << " " << key;
      }
      if (f.list_type == "map") {
        EXPECT_FALSE(f.list_map_keys.empty()) << t->name << "." << f.name;
      }
    }
  }
  EXPECT_GT(merged, 20);
}

TEST(SchemaModel, EveryNamedTypeAndFieldIsDescribed) {
  for (const Type* t : named_types()) {
    EXPECT_FALSE(t->description.empty()) << t->name;
    for (const Field& f : t->fields) {
      EXPECT_FALSE(f.description.empty()) << t->name << "." << f.name;
    }
  }
}

TEST(SchemaModel, UpstreamListMetadata) {
  const Type& spec = *find_type("io.k8s.api.core.v1.PodSpec");
  const Field* containers = spec.find_field("containers");
  ASSERT_NE(containers, nullptr);
  EXPECT_TRUE(containers->required);
  EXPECT_EQ(containers->patch_strategy, "merge");
  EXPECT_EQ(containers->patch_merge_key, "name");
  EXPECT_EQ(containers->list_type, "map");
  EXPECT_THAT(containers->list_map_keys, ElementsAre("name"));
  const Field* ports = find_type("io.k8s.api.core.v1.Container")->find_field("ports");
  EXPECT_EQ(ports->patch_merge_key, "containerPort");
  EXPECT_THAT(ports->list_map_keys, ElementsAre("containerPort", "protocol"));
  const Field* protocol = find_type("io.k8s.api.core.v1.ContainerPort")->find_field("protocol");
  ASSERT_TRUE(protocol->default_value.has_value());
  EXPECT_EQ(*protocol->default_value, json::value("TCP"));
  EXPECT_THAT(protocol->enum_values, ElementsAre("SCTP", "TCP", "UDP"));
  const Field* spread = spec.find_field("topologySpreadConstraints");
  EXPECT_THAT(spread->list_map_keys, ElementsAre("topologyKey", "whenUnsatisfiable"));
  const Field* tolerations = spec.find_field("tolerations");
  EXPECT_EQ(tolerations->list_type, "atomic");
  EXPECT_EQ(tolerations->patch_strategy, "");
  EXPECT_EQ(find_type("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")->map_type, "atomic");
  const Type* host_path = find_type("io.k8s.api.core.v1.HostPathVolumeSource");
  EXPECT_THAT(host_path->find_field("type")->enum_values, ::testing::Contains(""));
}

TEST(SchemaModel, ScalarsKeepUpstreamNamesAndGoSpellings) {
  const Type* ios = find_type("io.k8s.apimachinery.pkg.util.intstr.IntOrString");
  ASSERT_NE(ios, nullptr);
  EXPECT_EQ(ios->kind, TypeKind::kIntOrString);
  EXPECT_EQ(ios->go_name(), "intstr.IntOrString");
  const Type* q = find_type("io.k8s.apimachinery.pkg.api.resource.Quantity");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind, TypeKind::kQuantity);
  const Type* time = find_type("io.k8s.apimachinery.pkg.apis.meta.v1.Time");
  EXPECT_EQ(time->kind, TypeKind::kString);
  EXPECT_EQ(time->format, "date-time");
  EXPECT_EQ(find_type("io.k8s.api.core.v1.PodSpec")->find_field("containers")->type->go_name(),
            "[]v1.Container");
  EXPECT_EQ(
      find_type("io.k8s.api.core.v1.ConfigMap")->find_field("binaryData")->type->items->format,
      "byte");
}

// ------------------------------------------------------------------ DSL failure modes

// Builds a model from meta.schema (for ListMeta and ObjectHead) plus `text` as test.schema.
void check(std::string_view text) {
  std::vector<detail::EmbeddedFile> files;
  for (const detail::EmbeddedFile& f : detail::embedded_defs()) {
    if (f.name == "meta.schema") files.push_back(f);
  }
  files.push_back({"test.schema", text});
  detail::check_definitions(files);
}

std::string failure(std::string_view text) {
  try {
    check(text);
  } catch (const std::logic_error& e) {
    return e.what();
  }
  return "";
}

TEST(SchemaDsl, AcceptsAWellFormedFile) {
  EXPECT_NO_THROW(
      check("package io.example.v1\n"
            "import io.k8s.apimachinery.pkg.apis.meta.v1\n"
            "type Widget gvk=example.io/v1/Widget withlist -- A widget.\n"
            "  +ObjectHead\n"
            "  parts []Part merge=name list=map #2 -- Parts.\n"
            "type Part -- A part.\n"
            "  name! string default=\"\" #1 -- Name.\n"
            "  size Quantity #2* -- Size.\n"
            "  note string #3.1 -- Note, in an embedded message.\n"
            "  tag string #3.2\n"
            "  secret string #- -- Not on the wire.\n"
            "scalar Quantity quantity -- Local quantity.\n"));
}

TEST(SchemaDsl, ProtobufNumbersReachTheModel) {
  const Type* probe = find_type("io.k8s.api.core.v1.Probe");
  ASSERT_NE(probe, nullptr);
  EXPECT_EQ(probe->find_field("exec")->protobuf_path, (std::vector<std::uint32_t>{1, 1}));
  EXPECT_EQ(probe->find_field("timeoutSeconds")->protobuf_path, (std::vector<std::uint32_t>{3}));
  EXPECT_FALSE(probe->find_field("timeoutSeconds")->protobuf_pointer);
  EXPECT_TRUE(probe->find_field("terminationGracePeriodSeconds")->protobuf_pointer);
  // TypeMeta is carried by the envelope; <Kind>List is metadata = 1, items = 2.
  const Type* pod = kind_type("", "v1", "Pod");
  EXPECT_TRUE(pod->find_field("apiVersion")->protobuf_path.empty());
  EXPECT_EQ(pod->find_field("metadata")->protobuf_path, (std::vector<std::uint32_t>{1}));
  const Type* list = kind_type("", "v1", "PodList");
  EXPECT_EQ(list->find_field("items")->protobuf_path, (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(list->find_field("metadata")->protobuf_path, (std::vector<std::uint32_t>{1}));
  // `+ContainerFields #1`: EphemeralContainerCommon sits at field 1 of EphemeralContainer.
  const Type* eph = find_type("io.k8s.api.core.v1.EphemeralContainer");
  EXPECT_EQ(eph->find_field("image")->protobuf_path, (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(eph->find_field("targetContainerName")->protobuf_path, (std::vector<std::uint32_t>{2}));
  EXPECT_EQ(find_type("io.k8s.api.core.v1.Container")->find_field("image")->protobuf_path,
            (std::vector<std::uint32_t>{2}));
}

TEST(SchemaDsl, EveryStructFieldHasAProtobufNumber) {
  size_t numbered = 0;
  for (const Type* t : named_types()) {
    if (t->kind != TypeKind::kStruct) continue;
    for (const Field& f : t->fields) {
      if (!f.protobuf_path.empty()) {
        ++numbered;
      } else {
        EXPECT_TRUE(f.name == "apiVersion" || f.name == "kind") << t->name << "." << f.name;
      }
    }
  }
  EXPECT_GT(numbered, 1000u);
}

TEST(SchemaDsl, RejectsMissingOrCollidingProtobufNumbers) {
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #1 -- a\n  b string -- b\n"),
              HasSubstr("test.schema:4: field b of io.example.v1.W has no protobuf field number"));
  EXPECT_THAT(
      failure("package io.example.v1\ntype W -- w\n  a string #1 -- a\n  b int32 #1\n"),
      HasSubstr("test.schema:4: fields a and b of io.example.v1.W share protobuf number #1"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #2 -- a\n  b string #2.1\n"),
              HasSubstr("collide"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #0 -- a\n"),
              HasSubstr("test.schema:3: bad protobuf number `#0`"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #x -- a\n"),
              HasSubstr("bad protobuf number `#x`"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #536870912 -- a\n"),
              HasSubstr("bad protobuf number"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  a string #1 #2 -- a\n"),
              HasSubstr("two protobuf numbers"));
  // A mixin's fields are numbered once; each type that includes it is checked.
  EXPECT_THAT(failure("package io.example.v1\nmixin M\n  x string #1 -- x\n"
                      "type W -- w\n  +M\n  y string #1 -- y\n"),
              HasSubstr("fields x and y of io.example.v1.W share protobuf number #1"));
  EXPECT_NO_THROW(
      check("package io.example.v1\nmixin M\n  x string #1 -- x\n"
            "type W -- w\n  +M #3\n  y string #1 -- y\n"));
  EXPECT_THAT(failure("package io.example.v1\nmixin M\n  x string #1 -- x\n"
                      "type W -- w\n  +M #3*\n"),
              HasSubstr("protobuf prefix"));
}

TEST(SchemaDsl, RejectsUndefinedReferencesWithFileAndLine) {
  EXPECT_THAT(failure("package io.example.v1\n"
                      "type Widget -- A widget.\n"
                      "  part Gadget -- The part.\n"),
              HasSubstr("test.schema:3: undefined type Gadget"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  +Nope\n"),
              HasSubstr("test.schema:3: undefined mixin Nope"));
}

TEST(SchemaDsl, RejectsBadMetadata) {
  EXPECT_THAT(failure("package io.example.v1\n"
                      "type W -- w\n"
                      "  parts []P merge=id -- p\n"
                      "type P -- p\n"
                      "  name string -- n\n"),
              HasSubstr("test.schema:3: parts: merge key id is not a field of P"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  n int32 default=\"x\" -- n\n"),
              HasSubstr("default does not fit"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  n string bogus=1 -- n\n"),
              HasSubstr("test.schema:3: unknown attribute `bogus`"));
  EXPECT_THAT(failure("package io.example.v1\ntype W -- w\n  n string -- a\n  n int32 -- b\n"),
              HasSubstr("field n declared twice"));
  EXPECT_THAT(failure("package io.example.v1\ntype W gvk=v1/W -- w\ntype X gvk=v1/W -- x\n"),
              HasSubstr("also declared by"));
  EXPECT_THAT(failure("  orphan string -- x\n"), HasSubstr("test.schema:1:"));
}

// ------------------------------------------------------------------ unknown fields

constexpr std::string_view kDeployment = R"({
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "web", "namespace": "default",
    "labels": {"app": "web"},
    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    "finalizers": ["example.com/hold"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u1",
                         "controller": false, "blockOwnerDeletion": true}],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                       "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                       "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
  },
  "spec": {
    "replicas": 3,
    "revisionHistoryLimit": 5,
    "progressDeadlineSeconds": 600,
    "minReadySeconds": 2,
    "selector": {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "serviceAccountName": "web",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "priorityClassName": "high",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "imagePullSecrets": [{"name": "regcred"}],
        "securityContext": {"runAsNonRoot": true, "runAsUser": 1000, "fsGroup": 2000,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1 2"}]},
        "affinity": {
          "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
              {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
              {"weight": 10, "preference": {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}}]},
          "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
              {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash"]}}]},
          "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
              {"topologyKey": "zone", "namespaceSelector": {}, "namespaces": ["default"]}]}
        },
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
                        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
          "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}},
          "minDomains": 2, "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore"}],
        "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"],
                            "restartPolicy": "Always"}],
        "containers": [{
          "name": "web",
          "image": "nginx:1.27",
          "imagePullPolicy": "IfNotPresent",
          "args": ["-g", "daemon off;"],
          "workingDir": "/srv",
          "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                    {"containerPort": 9090, "hostPort": 9090, "hostIP": "0.0.0.0"}],
          "env": [{"name": "MODE", "value": "prod"},
                  {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                  {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                  {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": true}}},
                  {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}],
          "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "db"}}],
          "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": 1, "memory": "256Mi"}},
          "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
          "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                                        "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                            "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 2,
                            "failureThreshold": 3, "successThreshold": 1},
          "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
          "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30,
                           "terminationGracePeriodSeconds": 10},
          "lifecycle": {"preStop": {"sleep": {"seconds": 5}},
                        "postStart": {"exec": {"command": ["sh", "-c", "echo hi"]}}},
          "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                              "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                              "appArmorProfile": {"type": "RuntimeDefault"}},
          "volumeMounts": [{"name": "data", "mountPath": "/data"},
                           {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true, "subPath": "x"}],
          "terminationMessagePath": "/dev/termination-log",
          "terminationMessagePolicy": "FallbackToLogsOnError",
          "stdin": false, "tty": false
        }, {
          "name": "grpc", "image": "example/grpc:1",
          "livenessProbe": {"grpc": {"port": 9000, "service": "health"}}
        }],
        "volumes": [
          {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
          {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420,
                                        "items": [{"key": "a", "path": "a.conf", "mode": 256}]}},
          {"name": "sec", "secret": {"secretName": "db", "optional": true}},
          {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
          {"name": "claim", "persistentVolumeClaim": {"claimName": "data", "readOnly": false}},
          {"name": "proj", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600, "audience": "api"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}},
          {"name": "dapi", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
          {"name": "nfs", "nfs": {"server": "10.0.0.1", "path": "/exports"}},
          {"name": "csi", "csi": {"driver": "csi.example.com", "volumeAttributes": {"a": "b"},
                                  "nodePublishSecretRef": {"name": "s"}}},
          {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"metadata": {"labels": {"a": "b"}},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                      "resources": {"requests": {"storage": "1Gi"}}}}}},
          {"name": "img", "image": {"reference": "example/data:1", "pullPolicy": "IfNotPresent"}}
        ]
      }
    }
  },
  "status": {"replicas": 3, "readyReplicas": 3, "observedGeneration": 4,
             "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                             "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
})";

TEST(UnknownFields, FullDeploymentHasNone) {
  EXPECT_THAT(unknown_fields(kind("apps", "v1", "Deployment"), parse(kDeployment)), IsEmpty());
  EXPECT_THAT(type_errors(kind("apps", "v1", "Deployment"), parse(kDeployment)), IsEmpty());
}

TEST(UnknownFields, ReportsTyposWithUpstreamPaths) {
  json::value d = parse(kDeployment);
  d.as_object()["metadata"].as_object()["foo"] = 1;
  auto& containers = d.at("spec").at("template").at("spec").at("containers").as_array();
  containers[0].as_object()["imagePullPolicyy"] = "Always";
  containers[1].as_object()["livenessProbe"].as_object()["grpc"].as_object()["svc"] = "x";
  d.at("spec")
      .at("template")
      .at("spec")
      .at("volumes")
      .as_array()[1]
      .at("configMap")
      .at("items")
      .as_array()[0]
      .as_object()["mod"] = 1;
  d.as_object()["extra"] = true;
  EXPECT_THAT(
      unknown_fields(kind("apps", "v1", "Deployment"), d),
      UnorderedElementsAre("metadata.foo", "spec.template.spec.containers[0].imagePullPolicyy",
                           "spec.template.spec.containers[1].livenessProbe.grpc.svc",
                           "spec.template.spec.volumes[1].configMap.items[0].mod", "extra"));
}

TEST(UnknownFields, FreeFormAndMapsAcceptAnything) {
  json::value d = parse(kDeployment);
  // fieldsV1 is free-form; labels and annotations are maps.
  d.at("metadata").at("managedFields").as_array()[0].as_object()["fieldsV1"] =
      parse(R"({"f:anything": {"k:{\"x\":1}": {}}})");
  d.at("metadata").at("labels").as_object()["new-label"] = "v";
  EXPECT_THAT(unknown_fields(kind("apps", "v1", "Deployment"), d), IsEmpty());
  // The embedded object of a WatchEvent is RawExtension.
  json::value ev = parse(R"({"type": "ADDED", "object": {"kind": "Pod", "whatever": [1, 2]}})");
  EXPECT_THAT(unknown_fields(kind("", "v1", "WatchEvent"), ev), IsEmpty());
}

TEST(UnknownFields, ApiVersionAndKindAreKnownOnlyAtTheTop) {
  json::value v = parse(R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x",
                             "kind": "nope"}, "data": {"a": "b"}, "binaryData": {"c": "ZA=="},
                             "immutable": true})");
  EXPECT_THAT(unknown_fields(kind("", "v1", "ConfigMap"), v), ElementsAre("metadata.kind"));
}

TEST(UnknownFields, PodWithStatusAndEphemeralContainers) {
  json::value pod = parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "uid": "1", "resourceVersion": "5",
                 "creationTimestamp": "2024-01-01T00:00:00Z", "generateName": "p-"},
    "spec": {
      "nodeName": "n1", "hostNetwork": false, "hostPID": false, "hostIPC": false,
      "hostUsers": false, "shareProcessNamespace": true, "hostname": "p", "subdomain": "s",
      "setHostnameAsFQDN": false, "enableServiceLinks": false, "automountServiceAccountToken": false,
      "restartPolicy": "Never", "schedulerName": "default-scheduler", "priority": 0,
      "preemptionPolicy": "PreemptLowerPriority", "runtimeClassName": "runc",
      "activeDeadlineSeconds": 600, "overhead": {"cpu": "10m"},
      "os": {"name": "linux"},
      "schedulingGates": [{"name": "example.com/gate"}],
      "readinessGates": [{"conditionType": "example.com/ready"}],
      "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpu-template"}],
      "hostAliases": [{"ip": "10.0.0.2", "hostnames": ["db.local"]}],
      "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["svc"], "options": [{"name": "ndots", "value": "2"}]},
      "containers": [{"name": "c", "image": "busybox", "resources": {"claims": [{"name": "gpu"}]},
                      "volumeDevices": [{"name": "blk", "devicePath": "/dev/xvda"}],
                      "stdinOnce": true,
                      "securityContext": {"privileged": false, "procMount": "Default", "runAsGroup": 3,
                                          "seLinuxOptions": {"level": "s0:c1"},
                                          "windowsOptions": {"hostProcess": false}}}],
      "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "c",
                               "stdin": true, "tty": true}],
      "securityContext": {"supplementalGroups": [1, 2], "supplementalGroupsPolicy": "Merge",
                          "fsGroupChangePolicy": "OnRootMismatch", "seLinuxChangePolicy": "Recursive"},
      "volumes": [{"name": "blk", "persistentVolumeClaim": {"claimName": "blk"}},
                  {"name": "git", "gitRepo": {"repository": "https://example.com/r.git"}},
                  {"name": "iscsi", "iscsi": {"targetPortal": "10.0.0.3:3260", "iqn": "iqn.x", "lun": 0,
                   "secretRef": {"name": "chap"}, "chapAuthSession": true}},
                  {"name": "rbd", "rbd": {"monitors": ["m1"], "image": "img", "pool": "p"}},
                  {"name": "ct", "projected": {"sources": [{"clusterTrustBundle": {"path": "b.pem",
                   "signerName": "example.com/s", "labelSelector": {}}}]}}]
    },
    "status": {
      "phase": "Running", "qosClass": "Burstable", "hostIP": "10.0.0.1",
      "hostIPs": [{"ip": "10.0.0.1"}], "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
      "startTime": "2024-01-01T00:00:01Z", "resize": "InProgress", "nominatedNodeName": "",
      "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                      "lastTransitionTime": "2024-01-01T00:00:05Z"}],
      "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "busybox",
        "imageID": "sha256:1", "containerID": "containerd://1", "started": true,
        "state": {"running": {"startedAt": "2024-01-01T00:00:02Z"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "signal": 9,
                      "startedAt": "2024-01-01T00:00:00Z", "finishedAt": "2024-01-01T00:00:01Z"}},
        "allocatedResources": {"cpu": "100m"},
        "user": {"linux": {"uid": 0, "gid": 0, "supplementalGroups": [10]}},
        "volumeMounts": [{"name": "blk", "mountPath": "/d", "readOnly": false, "recursiveReadOnly": "Disabled"}],
        "allocatedResourcesStatus": [{"name": "claim:gpu", "resources": [{"resourceID": "g0", "health": "Healthy"}]}]}],
      "ephemeralContainerStatuses": [{"name": "debug", "ready": false, "restartCount": 0, "image": "busybox",
        "imageID": "", "state": {"waiting": {"reason": "PodInitializing"}}}],
      "resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "p-gpu-x"}]
    }
  })");
  EXPECT_THAT(unknown_fields(kind("", "v1", "Pod"), pod), IsEmpty());
  EXPECT_THAT(type_errors(kind("", "v1", "Pod"), pod), IsEmpty());
}

TEST(UnknownFields, OtherKindsRoundTrip) {
  struct Case {
    std::string_view group, version, kind, json;
  };
  const Case cases[] = {
      {"", "v1", "Service", R"({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "clusterIP": "10.96.0.10",
          "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
          "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080,
                     "appProtocol": "http"}],
          "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
          "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Cluster", "healthCheckNodePort": 31000,
          "loadBalancerSourceRanges": ["0.0.0.0/0"], "allocateLoadBalancerNodePorts": true,
          "publishNotReadyAddresses": false, "trafficDistribution": "PreferClose", "externalIPs": []},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP",
          "ports": [{"port": 80, "protocol": "TCP"}]}]},
          "conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "",
                          "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": 1}]}})"},
      {"", "v1", "Endpoints",
       R"({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "s"},
        "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "n1", "hostname": "h",
          "targetRef": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "1"}}],
          "notReadyAddresses": [], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]})"},
      {"", "v1", "Namespace",
       R"({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active",
        "conditions": [{"type": "NamespaceDeletionContentFailure", "status": "False"}]}})"},
      {"", "v1", "Node", R"({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"], "providerID": "podwarp://n1",
          "unschedulable": false, "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"}, "allocatable": {"cpu": "2"},
          "phase": "Running",
          "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                          "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "KubeletReady",
                          "message": "ok"}],
          "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
          "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
          "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1",
            "osImage": "Debian", "containerRuntimeVersion": "podwarp://0.1", "kubeletVersion": "v1.32.0",
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
          "images": [{"names": ["busybox"], "sizeBytes": 1000}], "volumesInUse": [],
          "volumesAttached": [{"name": "v", "devicePath": "/dev/x"}],
          "runtimeHandlers": [{"name": "", "features": {"recursiveReadOnlyMounts": true, "userNamespaces": false}}],
          "features": {"supplementalGroupsPolicy": true},
          "config": {"error": ""}}})"},
      {"", "v1", "Secret", R"({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "type": "Opaque", "data": {"a": "YQ=="}, "stringData": {"b": "b"}, "immutable": false})"},
      {"", "v1", "ServiceAccount", R"({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "sa"}, "automountServiceAccountToken": false,
        "secrets": [{"name": "tok"}], "imagePullSecrets": [{"name": "reg"}]})"},
      {"", "v1", "Event", R"({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "1",
                           "apiVersion": "v1", "resourceVersion": "3", "fieldPath": "spec.containers{c}"},
        "reason": "Pulled", "message": "ok", "type": "Normal", "count": 2,
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
        "eventTime": "2024-01-01T00:00:00.000001Z", "action": "Pull",
        "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:00.000001Z"},
        "reportingComponent": "kubelet", "reportingInstance": "n1",
        "related": {"kind": "Node", "name": "n1"}})"},
      {"", "v1", "Binding", R"({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}})"},
      {"apps", "v1", "StatefulSet", R"({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 3, "podManagementPolicy": "Parallel",
          "selector": {"matchLabels": {"app": "db"}},
          "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}},
          "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
          "ordinals": {"start": 1},
          "template": {"metadata": {"labels": {"app": "db"}},
                       "spec": {"containers": [{"name": "db", "image": "postgres"}]}},
          "volumeClaimTemplates": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "10Gi"}, "limits": {"storage": "20Gi"}},
                     "selector": {"matchLabels": {"tier": "db"}},
                     "dataSource": {"kind": "VolumeSnapshot", "name": "snap", "apiGroup": "snapshot.storage.k8s.io"},
                     "dataSourceRef": {"kind": "VolumeSnapshot", "name": "snap", "namespace": "x"}},
            "status": {"phase": "Pending"}}]},
        "status": {"replicas": 3, "currentRevision": "db-1", "updateRevision": "db-1",
                   "availableReplicas": 3, "collisionCount": 0}})"},
      {"apps", "v1", "DaemonSet",
       R"({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
          "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
          "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
                   "numberReady": 1, "numberAvailable": 1, "updatedNumberScheduled": 1}})"},
      {"apps", "v1", "ReplicaSet",
       R"({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
          "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1}})"},
      {"batch", "v1", "CronJob",
       R"({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
          "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1, "startingDeadlineSeconds": 100,
          "suspend": false,
          "jobTemplate": {"spec": {"backoffLimit": 2, "completions": 5, "parallelism": 2,
            "completionMode": "Indexed", "backoffLimitPerIndex": 1, "maxFailedIndexes": 2,
            "ttlSecondsAfterFinished": 100, "podReplacementPolicy": "Failed",
            "managedBy": "kubernetes.io/job-controller",
            "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                                           {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
            "successPolicy": {"rules": [{"succeededIndexes": "0-2", "succeededCount": 1}]},
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}},
        "status": {"active": [{"kind": "Job", "name": "c-1"}], "lastScheduleTime": "2024-01-01T00:00:00Z"}})"},
      {"batch", "v1", "Job", R"({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "OnFailure"}}},
        "status": {"active": 1, "ready": 1, "terminating": 0, "succeeded": 0, "failed": 0,
          "startTime": "2024-01-01T00:00:00Z", "completedIndexes": "", "failedIndexes": "",
          "uncountedTerminatedPods": {"succeeded": [], "failed": []},
          "conditions": [{"type": "Complete", "status": "True", "lastProbeTime": "2024-01-01T00:00:00Z"}]}})"},
      {"coordination.k8s.io", "v1", "Lease",
       R"({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
        "acquireTime": "2024-01-01T00:00:00.000000Z", "renewTime": "2024-01-01T00:00:10.000000Z",
        "leaseTransitions": 1}})"},
      {"discovery.k8s.io", "v1", "EndpointSlice", R"({"apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice", "metadata": {"name": "s-1", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
          "nodeName": "n1", "zone": "a", "hostname": "h", "hints": {"forZones": [{"name": "a"}]},
          "targetRef": {"kind": "Pod", "name": "p", "namespace": "default"}}],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"}]})"},
      {"networking.k8s.io", "v1", "NetworkPolicy", R"({"apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy", "metadata": {"name": "np"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress", "Egress"],
          "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}},
                                {"namespaceSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                       "ports": [{"protocol": "TCP", "port": 5432, "endPort": 5440}]}],
          "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "dns", "protocol": "UDP"}]}]}})"},
      {"networking.k8s.io", "v1", "Ingress",
       R"({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "i"},
        "spec": {"ingressClassName": "nginx",
          "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}},
          "tls": [{"hosts": ["example.com"], "secretName": "tls"}],
          "rules": [{"host": "example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
            {"path": "/static", "pathType": "Exact",
             "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "b"}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ports": [{"port": 443, "protocol": "TCP", "error": ""}]}]}}})"},
      {"policy", "v1", "PodDisruptionBudget",
       R"({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "pdb"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "status": {"currentHealthy": 2, "desiredHealthy": 1, "disruptionsAllowed": 1, "expectedPods": 2,
                   "observedGeneration": 1, "disruptedPods": {"p": "2024-01-01T00:00:00Z"},
                   "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                                   "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})"},
      {"policy", "v1", "Eviction", R"({"apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": "p", "namespace": "default"},
        "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "1"}, "dryRun": ["All"]}})"},
      {"autoscaling", "v1", "Scale", R"({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "web"}, "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}})"},
      {"", "v1", "DeleteOptions", R"({"kind": "DeleteOptions", "apiVersion": "v1",
        "propagationPolicy": "Background", "orphanDependents": false})"},
      {"", "v1", "Status",
       R"({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "m", "reason": "NotFound", "code": 404,
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "field": "spec"}]}})"},
      {"", "v1", "PodList", R"({"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "10", "continue": "", "remainingItemCount": 0},
        "items": [{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}]})"},
  };
  for (const Case& c : cases) {
    const Type& t = kind(c.group, c.version, c.kind);
    json::value v = parse(c.json);
    EXPECT_THAT(unknown_fields(t, v), IsEmpty()) << c.kind;
    EXPECT_THAT(type_errors(t, v), IsEmpty()) << c.kind;
  }
}

// ------------------------------------------------------------------ type errors

TEST(TypeErrors, WordedLikeUpstreamDecodeErrors) {
  const Type& deploy = kind("apps", "v1", "Deployment");
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"replicas": "3"}})")),
              ElementsAre("json: cannot unmarshal string into Go struct field "
                          "DeploymentSpec.spec.replicas of type int32"));
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"template": {"spec": {"containers": {}}}}})")),
              ElementsAre("json: cannot unmarshal object into Go struct field "
                          "PodSpec.spec.template.spec.containers of type []v1.Container"));
  EXPECT_THAT(
      type_errors(deploy, parse(R"({"spec": {"template": {"spec": {"containers": [
                                   {"name": "c", "ports": [{"containerPort": "80"}]}]}}}})")),
      ElementsAre("json: cannot unmarshal string into Go struct field "
                  "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"));
  EXPECT_THAT(type_errors(deploy, parse(R"({"metadata": {"labels": {"a": 1}}})")),
              ElementsAre("json: cannot unmarshal number into Go struct field "
                          "ObjectMeta.metadata.labels of type string"));
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": "x"})")),
              ElementsAre("json: cannot unmarshal string into Go struct field Deployment.spec of "
                          "type v1.DeploymentSpec"));
  EXPECT_THAT(type_errors(deploy, parse(R"([1])")),
              ElementsAre("json: cannot unmarshal array into Go value of type v1.Deployment"));
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"paused": "yes"}})")),
              ElementsAre(HasSubstr("cannot unmarshal string into Go struct field "
                                    "DeploymentSpec.spec.paused of type bool")));
}

TEST(TypeErrors, IntegersRejectFractionsAndOverflow) {
  const Type& deploy = kind("apps", "v1", "Deployment");
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"replicas": 1.5}})")),
              ElementsAre(HasSubstr("cannot unmarshal number 1.5 into")));
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"replicas": 3000000000}})")),
              ElementsAre(HasSubstr("cannot unmarshal number 3000000000 into")));
  EXPECT_THAT(type_errors(deploy, parse(R"({"metadata": {"generation": 3000000000}})")), IsEmpty());
  // The scale subresource checks its body with the Scale kind (it read 1e300 with get_int).
  const Type& scale = kind("autoscaling", "v1", "Scale");
  EXPECT_THAT(type_errors(scale, parse(R"({"spec": {"replicas": 1e300}})")),
              ElementsAre("json: cannot unmarshal number 1e+300 into Go struct field "
                          "ScaleSpec.spec.replicas of type int32"));
  EXPECT_THAT(type_errors(scale, parse(R"({"spec": {"replicas": 9223372036854775807}})")),
              ElementsAre(HasSubstr("cannot unmarshal number 9223372036854775807 into")));
  EXPECT_THAT(type_errors(scale, parse(R"({"spec": {"replicas": 5}, "status": {"replicas": 3}})")),
              IsEmpty());
}

TEST(TypeErrors, IntOrStringQuantityAndNull) {
  const Type& deploy = kind("apps", "v1", "Deployment");
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"strategy": {"rollingUpdate":
                                             {"maxSurge": 1, "maxUnavailable": "10%"}}}})")),
              IsEmpty());
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"strategy": {"rollingUpdate":
                                             {"maxSurge": true}}}})")),
              ElementsAre("json: cannot unmarshal bool into Go struct field "
                          "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type "
                          "intstr.IntOrString"));
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"template": {"spec": {"containers": [
                 {"name": "c", "resources": {"limits": {"cpu": 0.5, "memory": "1Gi"}}}]}}}})")),
              IsEmpty());
  EXPECT_THAT(type_errors(deploy, parse(R"({"spec": {"template": {"spec": {"containers": [
                 {"name": "c", "resources": {"limits": {"cpu": [1]}}}]}}}})")),
              ElementsAre(HasSubstr("of type resource.Quantity")));
  EXPECT_THAT(type_errors(deploy, parse(R"({"metadata": null, "spec": {"replicas": null,
                                             "selector": null, "template": {"spec": null}}})")),
              IsEmpty());
}

// ------------------------------------------------------------------ patch metadata

TEST(PatchMeta, StrategiesFollowTheSchema) {
  const patch::PatchMeta* root = patch_meta(kind("apps", "v1", "Deployment"));
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->patch_strategy(), "");
  const patch::PatchMeta* spec = root->field("spec");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->field("strategy")->patch_strategy(), "retainKeys");
  const patch::PatchMeta* pod = spec->field("template")->field("spec");
  ASSERT_NE(pod, nullptr);
  const patch::PatchMeta* containers = pod->field("containers");
  ASSERT_NE(containers, nullptr);
  EXPECT_EQ(containers->patch_strategy(), "merge");
  EXPECT_EQ(containers->patch_merge_key(), "name");
  EXPECT_EQ(containers->field("name"), nullptr);
  const patch::PatchMeta* container = containers->items();
  ASSERT_NE(container, nullptr);
  EXPECT_EQ(container->patch_strategy(), "");
  EXPECT_EQ(container->field("ports")->patch_merge_key(), "containerPort");
  EXPECT_EQ(container->field("env")->patch_merge_key(), "name");
  EXPECT_EQ(container->field("volumeMounts")->patch_merge_key(), "mountPath");
  EXPECT_EQ(container->field("args")->patch_strategy(), "");
  EXPECT_EQ(container->field("nope"), nullptr);
  EXPECT_EQ(pod->field("volumes")->patch_strategy(), "merge,retainKeys");
  EXPECT_EQ(pod->field("tolerations")->patch_strategy(), "");
  EXPECT_EQ(pod->field("hostAliases")->patch_merge_key(), "ip");
  EXPECT_EQ(pod->field("imagePullSecrets")->patch_merge_key(), "name");
  EXPECT_EQ(pod->field("topologySpreadConstraints")->patch_merge_key(), "topologyKey");
  EXPECT_EQ(pod->field("ephemeralContainers")->patch_merge_key(), "name");

  const patch::PatchMeta* meta = root->field("metadata");
  EXPECT_EQ(meta->field("finalizers")->patch_strategy(), "merge");
  EXPECT_EQ(meta->field("finalizers")->patch_merge_key(), "");
  EXPECT_EQ(meta->field("ownerReferences")->patch_merge_key(), "uid");
  // Maps: field() is the value type, whatever the key.
  const patch::PatchMeta* labels = meta->field("labels");
  ASSERT_NE(labels, nullptr);
  ASSERT_NE(labels->field("any-key"), nullptr);
  EXPECT_EQ(labels->field("any-key")->field("x"), nullptr);
  EXPECT_EQ(root->field("status")->field("conditions")->patch_merge_key(), "type");

  const patch::PatchMeta* svc = patch_meta(kind("", "v1", "Service"));
  EXPECT_EQ(svc->field("spec")->field("ports")->patch_merge_key(), "port");
  const patch::PatchMeta* pdb = patch_meta(kind("policy", "v1", "PodDisruptionBudget"));
  EXPECT_EQ(pdb->field("spec")->field("selector")->patch_strategy(), "replace");
  // Free-form values have no metadata below them.
  const patch::PatchMeta* mf = meta->field("managedFields")->items()->field("fieldsV1");
  ASSERT_NE(mf, nullptr);
  EXPECT_EQ(mf->field("f:spec"), nullptr);
}

// The patch engine (podwarp/patch.h) driven by this schema: what kubectl apply sends for an
// image change in one of two containers.
TEST(PatchMeta, DrivesStrategicMergeOfADeployment) {
  json::value live = parse(R"({"spec": {"template": {"spec": {
      "containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                     {"name": "side", "image": "busybox"}],
      "tolerations": [{"key": "a", "operator": "Exists"}],
      "volumes": [{"name": "v", "emptyDir": {}}]}}}})");
  json::value patch = parse(R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
      "containers": [{"name": "web", "image": "nginx:1.28"}],
      "tolerations": [{"key": "b", "operator": "Exists"}]}}}})");
  auto merged =
      patch::apply_strategic_merge_patch(live, patch, patch_meta(kind("apps", "v1", "Deployment")));
  ASSERT_TRUE(merged.has_value()) << merged.error();
  const json::value& spec = merged->at("spec").at("template").at("spec");
  EXPECT_EQ(spec.at("containers"),
            parse(R"([{"name": "web", "image": "nginx:1.28", "ports": [{"containerPort": 80}]},
                      {"name": "side", "image": "busybox"}])"));
  EXPECT_EQ(spec.at("tolerations"), parse(R"([{"key": "b", "operator": "Exists"}])"));
  EXPECT_EQ(spec.at("volumes"), parse(R"([{"name": "v", "emptyDir": {}}])"));
}

}  // namespace
}  // namespace podwarp::schema
