#include "schema/protobuf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

namespace podwarp::schema {
namespace {

using ::testing::HasSubstr;

// A tiny protobuf writer. Field numbers in the tests are upstream's (k8s.io/api and
// k8s.io/apimachinery generated.proto); the comments name the fields.
class Msg {
 public:
  Msg& varint(std::uint32_t field, std::uint64_t v) {
    tag(field, 0);
    put_varint(v);
    return *this;
  }
  Msg& int64(std::uint32_t field, std::int64_t v) {
    return varint(field, static_cast<std::uint64_t>(v));
  }
  Msg& boolean(std::uint32_t field, bool v) { return varint(field, v ? 1 : 0); }
  Msg& str(std::uint32_t field, std::string_view s) {
    tag(field, 2);
    put_varint(s.size());
    data_.append(s);
    return *this;
  }
  Msg& msg(std::uint32_t field, const Msg& m) { return str(field, m.data_); }
  Msg& fixed64(std::uint32_t field, std::uint64_t v) {
    tag(field, 1);
    for (int i = 0; i < 8; ++i) data_ += static_cast<char>(v >> (8 * i));
    return *this;
  }
  Msg& fixed32(std::uint32_t field, std::uint32_t v) {
    tag(field, 5);
    for (int i = 0; i < 4; ++i) data_ += static_cast<char>(v >> (8 * i));
    return *this;
  }
  // map<string, string>: an entry {key = 1, value = 2}.
  Msg& entry(std::uint32_t field, std::string_view key, std::string_view value) {
    return msg(field, Msg().str(1, key).str(2, value));
  }
  Msg& entry(std::uint32_t field, std::string_view key, const Msg& value) {
    return msg(field, Msg().str(1, key).msg(2, value));
  }
  Msg& append(std::string_view raw) {
    data_.append(raw);
    return *this;
  }
  const std::string& data() const { return data_; }

 private:
  void tag(std::uint32_t field, int wire_type) {
    put_varint((std::uint64_t{field} << 3) | static_cast<std::uint64_t>(wire_type));
  }
  void put_varint(std::uint64_t v) {
    while (v >= 0x80) {
      data_ += static_cast<char>(v | 0x80);
      v >>= 7;
    }
    data_ += static_cast<char>(v);
  }
  std::string data_;
};

// magic + runtime.Unknown {typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2,
// contentEncoding = 3, contentType = 4}, as client-go writes it.
std::string envelope(std::string_view api_version, std::string_view kind, std::string_view raw) {
  Msg unknown;
  unknown.msg(1, Msg().str(1, api_version).str(2, kind)).str(2, raw).str(3, "").str(4, "");
  return std::string("k8s\0", 4) + unknown.data();
}
std::string envelope(std::string_view api_version, std::string_view kind, const Msg& object) {
  return envelope(api_version, kind, object.data());
}

Msg quantity(std::string_view q) { return Msg().str(1, q); }                    // string = 1
Msg int_or_string(std::int32_t v) { return Msg().varint(1, 0).int64(2, v); }    // type, intVal
Msg int_or_string(std::string_view s) { return Msg().varint(1, 1).str(3, s); }  // type, strVal
Msg timestamp(std::int64_t seconds, std::int32_t nanos = 0) {
  Msg m;
  m.int64(1, seconds);
  if (nanos != 0) m.int64(2, nanos);
  return m;
}

// ObjectMeta the way Go writes it: every non-pointer field, zero or not, and an empty message
// for the zero creationTimestamp. name = 1, generateName = 2, namespace = 3, selfLink = 4,
// uid = 5, resourceVersion = 6, generation = 7, creationTimestamp = 8.
Msg go_meta(std::string_view name, std::string_view ns = "") {
  return Msg().str(1, name).str(2, "").str(3, ns).str(4, "").str(5, "").str(6, "").varint(7, 0).msg(
      8, Msg());
}

json::value parse(std::string_view text) { return json::parse(text); }

json::value decoded(std::string_view body) {
  auto v = decode_protobuf(body);
  EXPECT_TRUE(v.has_value()) << v.error();
  return v ? *v : json::value();
}

std::string error_of(std::string_view body) {
  auto v = decode_protobuf(body);
  EXPECT_FALSE(v.has_value()) << "decoded to " << json::serialize(*v);
  return v ? std::string() : v.error();
}

std::string from_hex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// ------------------------------------------------------------------ kinds

TEST(DecodeProtobuf, Namespace) {
  Msg ns;
  ns.msg(1, go_meta("x").entry(11, "team", "a"))  // metadata, labels = 11
      .msg(2, Msg().str(1, "kubernetes"))         // spec {finalizers = 1}
      .msg(3, Msg().str(1, ""));                  // status {phase = 1}
  EXPECT_EQ(decoded(envelope("v1", "Namespace", ns)), parse(R"({
    "apiVersion": "v1", "kind": "Namespace",
    "metadata": {"name": "x", "labels": {"team": "a"}},
    "spec": {"finalizers": ["kubernetes"]},
    "status": {}})"));
}

TEST(DecodeProtobuf, ConfigMapWithDataAndBinaryData) {
  Msg cm;
  cm.msg(1, go_meta("cm", "default"))
      .entry(2, "a", "1")                                    // data
      .entry(2, "empty", "")                                 // map values keep their zero
      .entry(2, "bad", "x\xff")                              // invalid UTF-8 → U+FFFD
      .entry(3, "bin", std::string_view("\x00\xff\x10", 3))  // binaryData: bytes → base64
      .boolean(4, false);                                    // immutable: *bool, kept
  EXPECT_EQ(decoded(envelope("v1", "ConfigMap", cm)), parse(R"({
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "cm", "namespace": "default"},
    "data": {"a": "1", "empty": "", "bad": "x\ufffd"},
    "binaryData": {"bin": "AP8Q"},
    "immutable": false})"));
}

TEST(DecodeProtobuf, Secret) {
  Msg secret;
  secret.msg(1, go_meta("s", "default"))
      .entry(2, "password", "hunter2")  // data: bytes
      .entry(2, "one", "a")
      .entry(2, "two", "ab")
      .str(3, "Opaque")           // type
      .entry(4, "user", "admin")  // stringData
      .boolean(5, true);          // immutable
  EXPECT_EQ(decoded(envelope("v1", "Secret", secret)), parse(R"({
    "apiVersion": "v1", "kind": "Secret",
    "metadata": {"name": "s", "namespace": "default"},
    "data": {"password": "aHVudGVyMg==", "one": "YQ==", "two": "YWI="},
    "type": "Opaque", "stringData": {"user": "admin"}, "immutable": true})"));
}

// A Deployment with a full pod template, written the way Go writes it (zero non-pointer fields
// included).
Msg full_deployment() {
  Msg container;
  container
      .str(1, "web")         // name
      .str(2, "nginx:1.27")  // image
      .str(3, "nginx")       // command
      .str(4, "-g")          // args
      .str(4, "daemon off;")
      .str(5, "")  // workingDir
      .msg(6, Msg().str(1, "http").varint(2, 0).varint(3, 80).str(4, "TCP").str(5, ""))
      .msg(6, Msg().str(1, "").varint(2, 0).varint(3, 9090).str(4, "UDP").str(5, ""))
      .msg(7, Msg().str(1, "A").str(2, "1"))  // env {name, value}
      .msg(7, Msg()
                  .str(1, "FROM_CM")
                  .str(2, "")
                  .msg(3,                                                    // valueFrom
                       Msg().msg(3, Msg()                                    // configMapKeyRef
                                        .msg(1, Msg().str(1, "app-config"))  // LocalObjectReference
                                        .str(2, "a")                         // key
                                        .boolean(3, false))))                // optional: *bool
      .msg(7, Msg().str(1, "POD").str(2, "").msg(
                  3, Msg().msg(1, Msg().str(1, "v1").str(2, "metadata.name"))))  // fieldRef
      .msg(8, Msg()                                                              // resources
                  .entry(1, "cpu", quantity("500m"))                             // limits
                  .entry(1, "memory", quantity("128Mi"))
                  .entry(2, "cpu", quantity("250m")))  // requests
      .msg(9, Msg().str(1, "config").boolean(2, true).str(3, "/etc/app").str(4, ""))
      .msg(10, Msg()                           // livenessProbe
                   .msg(1, Msg().msg(2, Msg()  // handler.httpGet
                                            .str(1, "/healthz")
                                            .msg(2, int_or_string("http"))
                                            .str(3, "")
                                            .str(4, "HTTP")))
                   .varint(2, 5)   // initialDelaySeconds
                   .varint(3, 1)   // timeoutSeconds
                   .varint(4, 10)  // periodSeconds
                   .varint(5, 1)   // successThreshold
                   .varint(6, 3))  // failureThreshold
      .msg(11, Msg()               // readinessProbe
                   .msg(1, Msg().msg(3, Msg().msg(1, int_or_string(8080)).str(2, "")))
                   .varint(2, 0)
                   .varint(4, 0))
      .str(13, "/dev/termination-log")
      .str(14, "")                               // imagePullPolicy: zero, dropped
      .msg(15, Msg()                             // securityContext
                   .msg(1, Msg().str(2, "ALL"))  // capabilities.drop
                   .int64(4, 0)                  // runAsUser: *int64 0, kept
                   .boolean(7, false))           // allowPrivilegeEscalation: kept
      .boolean(16, false)
      .boolean(17, false)
      .boolean(18, false)
      .str(20, "File")
      .msg(22, Msg()                                                                // startupProbe
                   .msg(1, Msg().msg(1, Msg().str(1, "cat").str(1, "/tmp/ready")))  // exec
                   .varint(6, 30));

  Msg pod_spec;
  pod_spec
      .msg(1, Msg()
                  .str(1, "config")
                  .msg(2, Msg().msg(19, Msg()  // volumes: configMap = 19
                                            .msg(1, Msg().str(1, "app-config"))
                                            .msg(2, Msg().str(1, "a").str(2, "a.txt"))
                                            .varint(3, 420))))
      .msg(1, Msg()
                  .str(1, "scratch")
                  .msg(2, Msg().msg(2, Msg()  // emptyDir = 2
                                           .str(1, "Memory")
                                           .msg(2, quantity("64Mi")))))
      .msg(2, container)
      .str(3, "Always")  // restartPolicy
      .int64(4, 30)      // terminationGracePeriodSeconds
      .str(6, "ClusterFirst")
      .str(8, "")  // serviceAccountName
      .str(9, "")
      .str(10, "")
      .boolean(11, false)  // hostNetwork
      .boolean(12, false)
      .boolean(13, false)
      .msg(14, Msg()                                            // securityContext
                   .int64(2, 0)                                 // runAsUser: kept
                   .boolean(3, false)                           // runAsNonRoot: kept
                   .str(4, std::string("\xe8\x07\xd0\x0f", 4))  // supplementalGroups, packed
                   .int64(4, 3000)                              // ... and one unpacked
                   .int64(5, 2000))                             // fsGroup
      .str(16, "")
      .str(17, "")
      .str(19, "default-scheduler")
      .int64(25, -5);  // priority: negative int32, a 10-byte varint

  Msg spec;
  spec.varint(1, 0)  // replicas: *int32 0, kept
      .msg(2, Msg()
                  .entry(1, "app", "web")
                  .msg(2, Msg().str(1, "tier").str(2, "In").str(3, "fe").str(3, "be")))
      .msg(3, Msg().msg(1, go_meta("").entry(11, "app", "web")).msg(2, pod_spec))
      .msg(4, Msg()
                  .str(1, "RollingUpdate")
                  .msg(2, Msg().msg(1, int_or_string(0)).msg(2, int_or_string("25%"))))
      .varint(5, 0)   // minReadySeconds: zero, dropped
      .varint(6, 10)  // revisionHistoryLimit
      .boolean(7, false)
      .varint(9, 600);

  Msg status;
  for (std::uint32_t n : {1, 2, 3, 4, 5, 7}) status.varint(n, 0);
  return Msg().msg(1, go_meta("web", "default")).msg(2, spec).msg(3, status);
}

TEST(DecodeProtobuf, DeploymentWithAFullPodTemplate) {
  EXPECT_EQ(decoded(envelope("apps/v1", "Deployment", full_deployment())), parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
      "replicas": 0,
      "selector": {"matchLabels": {"app": "web"},
                   "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
          "volumes": [
            {"name": "config",
             "configMap": {"name": "app-config", "items": [{"key": "a", "path": "a.txt"}],
                           "defaultMode": 420}},
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
          "containers": [{
            "name": "web", "image": "nginx:1.27",
            "command": ["nginx"], "args": ["-g", "daemon off;"],
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                      {"containerPort": 9090, "protocol": "UDP"}],
            "env": [{"name": "A", "value": "1"},
                    {"name": "FROM_CM", "valueFrom": {"configMapKeyRef":
                        {"name": "app-config", "key": "a", "optional": false}}},
                    {"name": "POD", "valueFrom": {"fieldRef":
                        {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                          "requests": {"cpu": "250m"}},
            "volumeMounts": [{"name": "config", "readOnly": true, "mountPath": "/etc/app"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                              "initialDelaySeconds": 5, "timeoutSeconds": 1, "periodSeconds": 10,
                              "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": 8080}},
            "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsUser": 0,
                                "allowPrivilegeEscalation": false}}],
          "restartPolicy": "Always",
          "terminationGracePeriodSeconds": 30,
          "dnsPolicy": "ClusterFirst",
          "securityContext": {"runAsUser": 0, "runAsNonRoot": false,
                              "supplementalGroups": [1000, 2000, 3000], "fsGroup": 2000},
          "schedulerName": "default-scheduler",
          "priority": -5}},
      "strategy": {"type": "RollingUpdate",
                   "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
      "revisionHistoryLimit": 10,
      "progressDeadlineSeconds": 600},
    "status": {}})"));
}

TEST(DecodeProtobuf, ServiceWithIntOrStringTargetPorts) {
  Msg spec;
  spec.msg(1, Msg()
                  .str(1, "http")
                  .str(2, "TCP")
                  .varint(3, 80)
                  .msg(4, int_or_string(8080))
                  .varint(5, 0))  // nodePort: zero, dropped
      .msg(1, Msg()
                  .str(1, "metrics")
                  .str(2, "TCP")
                  .varint(3, 9090)
                  .msg(4, int_or_string("metrics"))
                  .varint(5, 0)
                  .str(6, "http"))
      .entry(2, "app", "web")  // selector
      .str(3, "")              // clusterIP
      .str(4, "ClusterIP")     // type
      .str(7, "None")          // sessionAffinity
      .str(8, "")
      .str(10, "")
      .str(11, "")
      .varint(12, 0)
      .boolean(13, false)
      .str(17, "SingleStack")  // ipFamilyPolicy
      .str(19, "IPv4");        // ipFamilies
  Msg svc;
  svc.msg(1, go_meta("svc", "default")).msg(2, spec).msg(3, Msg().msg(1, Msg()));
  EXPECT_EQ(decoded(envelope("v1", "Service", svc)), parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "svc", "namespace": "default"},
    "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                       {"name": "metrics", "protocol": "TCP", "port": 9090,
                        "targetPort": "metrics", "appProtocol": "http"}],
             "selector": {"app": "web"}, "type": "ClusterIP", "sessionAffinity": "None",
             "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]},
    "status": {"loadBalancer": {}}})"));
}

TEST(DecodeProtobuf, CronJob) {
  Msg pod_spec;
  pod_spec.msg(2, Msg().str(1, "c").str(2, "busybox").str(3, "date")).str(3, "OnFailure");
  Msg job_spec;
  job_spec
      .varint(7, 0)                                        // backoffLimit: *int32 0, kept
      .msg(6, Msg().msg(1, go_meta("")).msg(2, pod_spec))  // template
      .varint(8, 100);                                     // ttlSecondsAfterFinished
  Msg spec;
  spec.str(1, "*/5 * * * *")                               // schedule
      .str(3, "Forbid")                                    // concurrencyPolicy
      .boolean(4, false)                                   // suspend: *bool, kept
      .msg(5, Msg().msg(1, go_meta("")).msg(2, job_spec))  // jobTemplate
      .varint(6, 3)
      .varint(7, 1)
      .str(8, "Etc/UTC");  // timeZone
  Msg status;
  status
      .msg(1, Msg()
                  .str(1, "Job")
                  .str(2, "default")
                  .str(3, "cj-1")
                  .str(4, "u-1")
                  .str(5, "batch/v1")
                  .str(6, "")
                  .str(7, ""))        // active
      .msg(4, timestamp(1715000000))  // lastScheduleTime
      .msg(5, Msg());                 // lastSuccessfulTime: zero
  Msg cj;
  cj.msg(1, go_meta("cj", "default")).msg(2, spec).msg(3, status);
  EXPECT_EQ(decoded(envelope("batch/v1", "CronJob", cj)), parse(R"({
    "apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": "cj", "namespace": "default"},
    "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Forbid", "suspend": false,
             "jobTemplate": {"metadata": {}, "spec": {
               "backoffLimit": 0, "ttlSecondsAfterFinished": 100,
               "template": {"metadata": {}, "spec": {
                 "containers": [{"name": "c", "image": "busybox", "command": ["date"]}],
                 "restartPolicy": "OnFailure"}}}},
             "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
             "timeZone": "Etc/UTC"},
    "status": {"active": [{"kind": "Job", "namespace": "default", "name": "cj-1", "uid": "u-1",
                           "apiVersion": "batch/v1"}],
               "lastScheduleTime": "2024-05-06T12:53:20Z"}})"));
}

TEST(DecodeProtobuf, TimeAndMicroTime) {
  Msg event;
  event
      .msg(1, go_meta("e", "default").msg(9, timestamp(-1)))  // deletionTimestamp: before the epoch
      .msg(2, Msg().str(1, "Pod").str(3, "p"))                // involvedObject
      .msg(6, timestamp(1700000000, 999))                     // firstTimestamp: nanos dropped
      .msg(7, timestamp(-62135596800))                        // lastTimestamp: Go's zero time
      .varint(8, 0)                                           // count: zero, dropped
      .str(9, "Normal")
      .msg(10, timestamp(1700000000, 123456789))          // eventTime: MicroTime
      .msg(11, Msg().varint(1, 2).msg(2, timestamp(0)));  // series
  EXPECT_EQ(decoded(envelope("v1", "Event", event)), parse(R"({
    "apiVersion": "v1", "kind": "Event",
    "metadata": {"name": "e", "namespace": "default",
                 "deletionTimestamp": "1969-12-31T23:59:59Z"},
    "involvedObject": {"kind": "Pod", "name": "p"},
    "firstTimestamp": "2023-11-14T22:13:20Z",
    "type": "Normal",
    "eventTime": "2023-11-14T22:13:20.123456Z",
    "series": {"count": 2, "lastObservedTime": "1970-01-01T00:00:00.000000Z"}})"));

  Msg bad;
  bad.msg(1, go_meta("e").msg(9, timestamp(253402300800)));  // year 10000
  EXPECT_THAT(error_of(envelope("v1", "Event", bad)),
              HasSubstr("metadata.deletionTimestamp: time 253402300800s is outside"));
}

TEST(DecodeProtobuf, MapsOfMessagesAndPodDisruptionBudget) {
  Msg pdb;
  pdb.msg(1, go_meta("pdb", "default"))
      .msg(2, Msg()
                  .msg(1, int_or_string("50%"))
                  .msg(2, Msg().entry(1, "app", "web"))
                  .str(4, "AlwaysAllow"))
      .msg(3, Msg()
                  .varint(1, 0)
                  .entry(2, "p1", timestamp(1700000000))  // disruptedPods: map<string, Time>
                  .msg(2, Msg().str(1, "p2"))             // an entry without value
                  .varint(3, 0)
                  .varint(4, 0)
                  .varint(5, 0)
                  .varint(6, 0));
  EXPECT_EQ(decoded(envelope("policy/v1", "PodDisruptionBudget", pdb)), parse(R"({
    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
    "metadata": {"name": "pdb", "namespace": "default"},
    "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}},
             "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    "status": {"disruptedPods": {"p1": "2023-11-14T22:13:20Z", "p2": null},
               "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
               "expectedPods": 0}})"));
}

TEST(DecodeProtobuf, EmbeddedObjectsInRawExtension) {
  std::string pod = envelope("v1", "Pod", Msg().msg(1, go_meta("p")));
  Msg added;
  added.str(1, "ADDED").msg(2, Msg().str(1, pod));  // WatchEvent {type, object {raw}}
  EXPECT_EQ(decoded(envelope("v1", "WatchEvent", added)), parse(R"({
    "apiVersion": "v1", "kind": "WatchEvent", "type": "ADDED",
    "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}})"));
  Msg json_object;
  json_object.str(1, "MODIFIED").msg(2, Msg().str(1, R"({"kind": "Pod", "x": [1, 2]})"));
  EXPECT_EQ(decoded(envelope("v1", "WatchEvent", json_object)), parse(R"({
    "apiVersion": "v1", "kind": "WatchEvent", "type": "MODIFIED",
    "object": {"kind": "Pod", "x": [1, 2]}})"));
  Msg not_json;
  not_json.str(1, "ADDED").msg(2, Msg().str(1, "{nope"));
  EXPECT_THAT(error_of(envelope("v1", "WatchEvent", not_json)),
              HasSubstr("protobuf: object: embedded object:"));
}

TEST(DecodeProtobuf, ManagedFieldsCarryFieldsV1AsJson) {
  Msg meta = go_meta("cm");
  meta.msg(17, Msg()
                   .str(1, "kubectl")                                 // manager
                   .str(2, "Update")                                  // operation
                   .str(3, "v1")                                      // apiVersion
                   .msg(4, timestamp(1700000000))                     // time
                   .str(6, "FieldsV1")                                // fieldsType
                   .msg(7, Msg().str(1, R"({"f:data":{"f:a":{}}})"))  // fieldsV1 {Raw}
                   .str(8, ""));                                      // subresource
  EXPECT_EQ(decoded(envelope("v1", "ConfigMap", Msg().msg(1, meta))), parse(R"({
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "cm", "managedFields": [{
      "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
      "time": "2023-11-14T22:13:20Z", "fieldsType": "FieldsV1",
      "fieldsV1": {"f:data": {"f:a": {}}}}]}})"));
}

TEST(DecodeProtobuf, UnknownFieldsAreSkippedAndRepeatsMerge) {
  Msg ns;
  ns.varint(99, 7)
      .str(100, "\x08\x01 anything")
      .fixed32(101, 1)
      .fixed64(102, 2)
      .msg(1, Msg().str(1, "first").varint(50, 1))
      .msg(1, Msg().entry(11, "a", "b").str(1, "second"))  // merged into metadata
      .msg(1, Msg().str(3, "ns").str(3, ""));              // the last namespace, "", wins
  EXPECT_EQ(decoded(envelope("v1", "Namespace", ns)), parse(R"({
    "apiVersion": "v1", "kind": "Namespace",
    "metadata": {"name": "second", "labels": {"a": "b"}}})"));
}

TEST(DecodeProtobuf, ListKinds) {
  Msg list;
  list.msg(1, Msg().str(2, "42"))  // metadata {resourceVersion = 2}
      .msg(2, Msg().msg(1, go_meta("a")))
      .msg(2, Msg().msg(1, go_meta("b")));
  EXPECT_EQ(decoded(envelope("v1", "ConfigMapList", list)), parse(R"({
    "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "42"},
    "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]})"));
}

TEST(DecodeProtobuf, MessageWithoutEnvelope) {
  const Type* cm = kind_type("", "v1", "ConfigMap");
  ASSERT_NE(cm, nullptr);
  std::string raw = Msg().msg(1, go_meta("m")).entry(2, "k", "v").data();
  auto v = decode_protobuf_message(
      *cm, std::span(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size()));
  ASSERT_TRUE(v.has_value()) << v.error();
  EXPECT_EQ(*v, parse(R"({"metadata": {"name": "m"}, "data": {"k": "v"}})"));
}

// ------------------------------------------------------------------ what kubectl 1.32 sends

// Captured from stock kubectl v1.32.4 (kubectl create ... against a fake HTTPS server that
// logged the request bodies; every one was sent as application/vnd.kubernetes.protobuf).
// `kubectl create namespace x`
constexpr std::string_view kKubectlNamespace =
    "6b3873000a0f0a02763112094e616d65737061636512190a110a017812001a0022002a0032003800420012001a02"
    "0a001a002200";

// `kubectl create configmap cm --from-literal=a=1 --from-literal=b=two`
constexpr std::string_view kKubectlConfigMap =
    "6b3873000a0f0a0276311209436f6e6669674d617012260a120a02636d12001a0022002a0032003800420012060a"
    "016112013112080a0162120374776f1a002200";

// `kubectl create deployment web --image=nginx:1.27`
constexpr std::string_view kKubectlDeployment =
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b0010a1f0a0377656212001a0022002a0032"
    "00380042005a0a0a036170701203776562127f0801120c0a0a0a0361707012037765621a650a1c0a0012001a0022"
    "002a003200380042005a0a0a036170701203776562124512270a056e67696e78120a6e67696e783a312e32372a00"
    "42006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c20100"
    "22020a00280038001a0c0800100018002000280038001a002200";

// `kubectl create deployment web0 --image=nginx --replicas=0 --port=80`
constexpr std::string_view kKubectlDeploymentZeroReplicas =
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bc010a210a047765623012001a0022002a00"
    "3200380042005a0b0a036170701204776562301288010800120d0a0b0a036170701204776562301a6d0a1d0a0012"
    "001a0022002a003200380042005a0b0a03617070120477656230124c122e0a056e67696e7812056e67696e782a00"
    "320a0a001000185022002a0042006a007200800100880100900100a201001a00320042004a005200580060006800"
    "8201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200";

// `kubectl create secret generic s1 --from-literal=password=hunter2`
constexpr std::string_view kKubectlSecret =
    "6b3873000a0c0a0276311206536563726574122b0a120a02733112001a0022002a0032003800420012130a087061"
    "7373776f7264120768756e746572321a001a002200";

// `kubectl create service clusterip svc1 --tcp=80:8080`
constexpr std::string_view kKubectlService =
    "6b3873000a0d0a027631120753657276696365126c0a210a047376633112001a0022002a003200380042005a0b0a"
    "0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a002800120b0a0361"
    "70701204737663311a002209436c757374657249503a00420052005a00600068001a020a001a002200";

// `kubectl create cronjob cj1 --image=busybox --schedule="*/5 * * * *" -- date`
constexpr std::string_view kKubectlCronJob =
    "6b3873000a130a0862617463682f7631120743726f6e4a6f6212a7010a130a03636a3112001a0022002a00320038"
    "004200128d010a0b2a2f35202a202a202a202a1a002a7c0a130a03636a3112001a0022002a003200380042001265"
    "32630a100a0012001a0022002a00320038004200124f12280a03636a31120762757379626f781a04646174652a00"
    "42006a007200800100880100900100a201001a094f6e4661696c757265320042004a005200580060006800820100"
    "8a01009a0100c201001a001a002200";

// `kubectl create poddisruptionbudget pdb1 --selector=app=web --min-available=1`
constexpr std::string_view kKubectlPodDisruptionBudget =
    "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123a0a140a047064"
    "623112001a0022002a0032003800420012160a06080010011a00120c0a0a0a0361707012037765621a0a08001800"
    "2000280030001a002200";

// `kubectl create ingress ing1 --rule="foo.com/bar=svc1:80"`
constexpr std::string_view kKubectlIngress =
    "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e6772657373124a0a140a04696e67"
    "3112001a0022002a00320038004200122e1a2c0a07666f6f2e636f6d12210a1f0a1d0a042f626172120e220c0a04"
    "7376633112040a0010501a0545786163741a020a001a002200";
// `kubectl create token sa1` (authentication.k8s.io/v1 TokenRequest)
constexpr std::string_view kKubectlTokenRequest =
    "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52657175657374"
    "121a0a100a0012001a0022002a0032003800420012001a040a0012001a002200";

TEST(DecodeProtobuf, KubectlCreateNamespace) {
  EXPECT_EQ(decoded(from_hex(kKubectlNamespace)), parse(R"({
    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"},
    "spec": {}, "status": {}})"));
}

TEST(DecodeProtobuf, KubectlCreateConfigMap) {
  EXPECT_EQ(decoded(from_hex(kKubectlConfigMap)), parse(R"({
    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
    "data": {"a": "1", "b": "two"}})"));
}

TEST(DecodeProtobuf, KubectlCreateDeployment) {
  EXPECT_EQ(decoded(from_hex(kKubectlDeployment)), parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
      "replicas": 1,
      "selector": {"matchLabels": {"app": "web"}},
      "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27", "resources": {}}]}},
      "strategy": {}},
    "status": {}})"));
}

TEST(DecodeProtobuf, KubectlCreateDeploymentKeepsZeroReplicas) {
  EXPECT_EQ(decoded(from_hex(kKubectlDeploymentZeroReplicas)), parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web0", "labels": {"app": "web0"}},
    "spec": {
      "replicas": 0,
      "selector": {"matchLabels": {"app": "web0"}},
      "template": {
        "metadata": {"labels": {"app": "web0"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {},
                                 "ports": [{"containerPort": 80}]}]}},
      "strategy": {}},
    "status": {}})"));
}

TEST(DecodeProtobuf, KubectlCreateSecretServiceCronJobPdbIngressToken) {
  EXPECT_EQ(decoded(from_hex(kKubectlSecret)), parse(R"({
    "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"},
    "data": {"password": "aHVudGVyMg=="}})"));
  EXPECT_EQ(decoded(from_hex(kKubectlService)), parse(R"({
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "svc1", "labels": {"app": "svc1"}},
    "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
             "selector": {"app": "svc1"}, "type": "ClusterIP"},
    "status": {"loadBalancer": {}}})"));
  EXPECT_EQ(decoded(from_hex(kKubectlCronJob)), parse(R"({
    "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj1"},
    "spec": {"schedule": "*/5 * * * *",
             "jobTemplate": {"metadata": {"name": "cj1"}, "spec": {"template": {
               "metadata": {},
               "spec": {"containers": [{"name": "cj1", "image": "busybox", "command": ["date"],
                                        "resources": {}}],
                        "restartPolicy": "OnFailure"}}}}},
    "status": {}})"));
  EXPECT_EQ(decoded(from_hex(kKubectlPodDisruptionBudget)), parse(R"({
    "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb1"},
    "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
               "expectedPods": 0}})"));
  EXPECT_EQ(decoded(from_hex(kKubectlIngress)), parse(R"({
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing1"},
    "spec": {"rules": [{"host": "foo.com", "http": {"paths": [
      {"path": "/bar", "pathType": "Exact",
       "backend": {"service": {"name": "svc1", "port": {"number": 80}}}}]}}]},
    "status": {"loadBalancer": {}}})"));
  // The required status.token keeps its "" (Go writes it too); the zero expirationTimestamp is
  // dropped.
  EXPECT_EQ(decoded(from_hex(kKubectlTokenRequest)), parse(R"({
    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
    "metadata": {}, "spec": {}, "status": {"token": ""}})"));
}

// What the decoder makes passes the apiserver's strict decoding: no unknown fields, no type
// errors.
TEST(DecodeProtobuf, OutputPassesStrictValidation) {
  std::vector<std::string> bodies = {from_hex(kKubectlNamespace),
                                     from_hex(kKubectlConfigMap),
                                     from_hex(kKubectlDeployment),
                                     from_hex(kKubectlDeploymentZeroReplicas),
                                     from_hex(kKubectlSecret),
                                     from_hex(kKubectlService),
                                     from_hex(kKubectlCronJob),
                                     from_hex(kKubectlPodDisruptionBudget),
                                     from_hex(kKubectlIngress),
                                     from_hex(kKubectlTokenRequest),
                                     envelope("apps/v1", "Deployment", full_deployment())};
  for (const std::string& body : bodies) {
    json::value v = decoded(body);
    std::string_view api_version = v.at("apiVersion").as_string();
    size_t slash = api_version.find('/');
    const Type* type = slash == std::string_view::npos
                           ? kind_type("", api_version, v.at("kind").as_string())
                           : kind_type(api_version.substr(0, slash), api_version.substr(slash + 1),
                                       v.at("kind").as_string());
    ASSERT_NE(type, nullptr) << json::serialize(v);
    EXPECT_THAT(unknown_fields(*type, v), ::testing::IsEmpty()) << json::serialize(v);
    EXPECT_THAT(type_errors(*type, v), ::testing::IsEmpty()) << json::serialize(v);
  }
}

// ------------------------------------------------------------------ hostile input

TEST(DecodeProtobufHostile, MagicAndEnvelope) {
  EXPECT_THAT(error_of(""), HasSubstr("does not start with the magic"));
  EXPECT_THAT(error_of("k8s"), HasSubstr("does not start with the magic"));
  EXPECT_THAT(error_of(R"({"kind": "Namespace"})"), HasSubstr("does not start with the magic"));
  std::string wrong = envelope("v1", "Namespace", Msg());
  wrong[2] = 'x';
  EXPECT_THAT(error_of(wrong), HasSubstr("does not start with the magic"));
  EXPECT_THAT(error_of(envelope("v1", "Frobnicator", Msg())),
              HasSubstr(R"(no kind "Frobnicator" is registered for version "v1")"));
  EXPECT_THAT(error_of(envelope("nope.example.com/v9", "Namespace", Msg())),
              HasSubstr(R"(no kind "Namespace" is registered for version "nope.example.com/v9")"));
  EXPECT_THAT(error_of(envelope("", "", Msg())), HasSubstr("names no apiVersion and kind"));
  std::string gzip = std::string("k8s\0", 4) +
                     Msg().msg(1, Msg().str(1, "v1").str(2, "Namespace")).str(3, "gzip").data();
  EXPECT_THAT(error_of(gzip), HasSubstr(R"(content encoding "gzip" is not supported)"));
  std::string typemeta_varint = std::string("k8s\0", 4) + Msg().varint(1, 3).data();
  EXPECT_THAT(error_of(typemeta_varint), HasSubstr("envelope: field 1 has wire type varint"));
  std::string too_big(kMaxBodyBytes + 1, '\0');
  too_big.replace(0, 4, std::string("k8s\0", 4));
  EXPECT_THAT(error_of(too_big), HasSubstr("exceeds the limit"));
}

TEST(DecodeProtobufHostile, MalformedWire) {
  auto ns = [](std::string_view raw) { return envelope("v1", "Namespace", raw); };
  EXPECT_THAT(error_of(ns("\x0a")), HasSubstr("protobuf: field 1 at byte 0: truncated varint"));
  EXPECT_THAT(error_of(ns("\x08\x80")), HasSubstr("truncated varint at byte 1"));
  EXPECT_THAT(error_of(ns("\x0a\x05"
                          "ab")),
              HasSubstr("field 1 at byte 0: length 5 runs past the end of its message (2 bytes "
                        "left)"));
  EXPECT_THAT(error_of(ns("\x0a\x03\x0a\x09x")),
              HasSubstr("protobuf: metadata: field 1 at byte 2: length 9 runs past the end"));
  EXPECT_THAT(error_of(ns("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02")),
              HasSubstr("overflows 64 bits"));
  EXPECT_THAT(error_of(ns("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")),
              HasSubstr("overflows 64 bits"));
  EXPECT_THAT(error_of(ns("\x0b")), HasSubstr("groups are not supported"));
  EXPECT_THAT(error_of(ns("\x0c")), HasSubstr("groups are not supported"));
  EXPECT_THAT(error_of(ns("\x0e")), HasSubstr("invalid wire type 6"));
  EXPECT_THAT(error_of(ns(std::string_view("\x00", 1))), HasSubstr("invalid field number 0"));
  EXPECT_THAT(error_of(ns("\x0d\x01\x02")), HasSubstr("truncated fixed32"));
  EXPECT_THAT(error_of(ns("\x09\x01\x02\x03")), HasSubstr("truncated fixed64"));
  // A known field with the wrong wire type.
  EXPECT_THAT(error_of(ns("\x08\x01")),
              HasSubstr("field 1 at byte 0 has wire type varint, want length-delimited"));
  EXPECT_THAT(error_of(ns(Msg().msg(1, Msg().str(7, "x")).data())),
              HasSubstr("protobuf: metadata.generation: field 7 at byte 2 has wire type "
                        "length-delimited, want varint"));
  // IntOrString with a type that is neither int nor string.
  Msg pdb;
  pdb.msg(2, Msg().msg(1, Msg().varint(1, 7)));
  EXPECT_THAT(error_of(envelope("policy/v1", "PodDisruptionBudget", pdb)),
              HasSubstr("spec.minAvailable: IntOrString type 7 is neither 0 (int) nor 1 (string)"));
  // Errors inside lists name the element.
  Msg bad_port;
  bad_port.msg(2, Msg().msg(2, Msg().str(1, "c").msg(6, Msg().str(3, "x"))));
  EXPECT_THAT(error_of(envelope("v1", "Pod", bad_port)),
              HasSubstr("protobuf: spec.containers[0].ports[0].containerPort: field 3"));
}

TEST(DecodeProtobufHostile, HugeNesting) {
  // WatchEvents embedding WatchEvents through RawExtension, far deeper than any real object.
  std::string body = envelope("v1", "Pod", Msg());
  for (int i = 0; i < 200; ++i) {
    body = envelope("v1", "WatchEvent", Msg().str(1, "ADDED").msg(2, Msg().str(1, body)));
  }
  EXPECT_THAT(error_of(body), HasSubstr("nesting deeper than 64"));
  // Deeply nested JSON inside a RawExtension.
  std::string deep = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_THAT(error_of(envelope("v1", "WatchEvent", Msg().msg(2, Msg().str(1, deep)))),
              HasSubstr("protobuf: object: embedded object:"));
}

TEST(DecodeProtobufHostile, TooManyValues) {
  Msg container;
  container.str(1, "c");
  for (size_t i = 0; i <= kMaxValues; ++i) container.str(4, "");  // args
  EXPECT_THAT(error_of(envelope("v1", "Pod", Msg().msg(2, Msg().msg(2, container)))),
              HasSubstr("more than 1048576 values"));
}

// Every prefix and many random corruptions of real bodies decode or fail cleanly (run under
// ASan/UBSan to catch reads out of bounds).
TEST(DecodeProtobufHostile, TruncationsAndMutationsNeverCrash) {
  std::vector<std::string> seeds = {from_hex(kKubectlDeployment), from_hex(kKubectlService),
                                    from_hex(kKubectlCronJob),
                                    envelope("apps/v1", "Deployment", full_deployment())};
  std::mt19937 rng(42);
  size_t ok = 0, failed = 0;
  for (const std::string& seed : seeds) {
    for (size_t n = 0; n <= seed.size(); ++n) {
      decode_protobuf(std::string_view(seed).substr(0, n)) ? ++ok : ++failed;
    }
    for (int round = 0; round < 3000; ++round) {
      std::string m = seed;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t at = 4 + rng() % (m.size() - 4);
        switch (rng() % 3) {
          case 0:
            m[at] = static_cast<char>(rng());
            break;
          case 1:
            m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8)));
            break;
          default:
            m.insert(at, 1, static_cast<char>(rng()));
            break;
        }
      }
      decode_protobuf(m) ? ++ok : ++failed;
    }
  }
  EXPECT_GT(ok, 0u);
  EXPECT_GT(failed, 0u);
}

}  // namespace
}  // namespace podwarp::schema
