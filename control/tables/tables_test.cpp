// The public API: column definitions for every served kind, and the Table document.
#include "tables/tables.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tables/test_util.h"

namespace podwarp::tables {
namespace {

using testing::now;
using testing::parse;

// "Name" for priority 0 columns, "Name*" for -o wide ones.
std::vector<std::string> column_names(const json::array& columns) {
  std::vector<std::string> out;
  for (const json::value& c : columns) {
    std::string name(c.at("name").as_string());
    if (c.at("priority").as_int64() != 0) name += '*';
    out.push_back(name);
  }
  return out;
}

// Upstream's columns (printers.go, v1.32), wide ones starred.
TEST(ColumnDefinitions, MatchUpstreamForEveryServedKind) {
  const std::map<std::string, std::vector<std::string>> want = {
      {"Namespace", {"Name", "Status", "Age"}},
      {"Pod",
       {"Name", "Ready", "Status", "Restarts", "Age", "IP*", "Node*", "Nominated Node*",
        "Readiness Gates*"}},
      {"Node",
       {"Name", "Status", "Roles", "Age", "Version", "Internal-IP*", "External-IP*", "OS-Image*",
        "Kernel-Version*", "Container-Runtime*"}},
      {"Service", {"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector*"}},
      {"Endpoints", {"Name", "Endpoints", "Age"}},
      {"ConfigMap", {"Name", "Data", "Age"}},
      {"Secret", {"Name", "Type", "Data", "Age"}},
      {"ServiceAccount", {"Name", "Secrets", "Age"}},
      {"Event",
       {"Last Seen", "Type", "Reason", "Object", "Subobject*", "Source*", "Message", "First Seen*",
        "Count*", "Name*"}},
      {"Deployment",
       {"Name", "Ready", "Up-to-date", "Available", "Age", "Containers*", "Images*", "Selector*"}},
      {"ReplicaSet",
       {"Name", "Desired", "Current", "Ready", "Age", "Containers*", "Images*", "Selector*"}},
      {"DaemonSet",
       {"Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
        "Containers*", "Images*", "Selector*"}},
      {"StatefulSet", {"Name", "Ready", "Age", "Containers*", "Images*"}},
      {"Job",
       {"Name", "Status", "Completions", "Duration", "Age", "Containers*", "Images*", "Selector*"}},
      {"CronJob",
       {"Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers*",
        "Images*", "Selector*"}},
      {"Lease", {"Name", "Holder", "Age"}},
      {"EndpointSlice", {"Name", "AddressType", "Ports", "Endpoints", "Age"}},
      {"NetworkPolicy", {"Name", "Pod-Selector", "Age"}},
      {"Ingress", {"Name", "Class", "Hosts", "Address", "Ports", "Age"}},
      {"PodDisruptionBudget",
       {"Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"}},
      {"PriorityClass", {"Name", "Value", "Global-Default", "Age", "PreemptionPolicy"}},
      {"Role", {"Name", "Created At"}},
      {"ClusterRole", {"Name", "Created At"}},
      {"RoleBinding", {"Name", "Role", "Age", "Users*", "Groups*", "ServiceAccounts*"}},
      {"ClusterRoleBinding", {"Name", "Role", "Age", "Users*", "Groups*", "ServiceAccounts*"}},
      {"PersistentVolume",
       {"Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
        "VolumeAttributesClass", "Reason", "Age", "VolumeMode*"}},
      {"PersistentVolumeClaim",
       {"Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
        "VolumeAttributesClass", "Age", "VolumeMode*"}},
      {"StorageClass",
       {"Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion",
        "Age"}},
  };
  std::size_t seen = 0;
  for (const api::Resource& r : api::resources()) {
    if (!r.stored) continue;  // reviews are answered, never listed or printed
    auto it = want.find(std::string(r.kind));
    if (it == want.end()) {
      ADD_FAILURE() << "no expected columns for served kind " << r.kind;
      continue;
    }
    ++seen;
    EXPECT_EQ(column_names(column_definitions(r)), it->second) << r.kind;
  }
  EXPECT_EQ(seen, want.size());
}

TEST(ColumnDefinitions, AreCompleteTableColumnDefinitions) {
  for (const api::Resource& r : api::resources()) {
    if (!r.stored) continue;
    for (const json::value& c : column_definitions(r)) {
      const json::object& o = c.as_object();
      ASSERT_EQ(o.size(), 5u) << r.kind << " " << c;
      EXPECT_TRUE(o.at("name").is_string());
      const std::string_view type = o.at("type").as_string();
      EXPECT_TRUE(type == "string" || type == "integer" || type == "boolean" || type == "date")
          << r.kind << " " << c;
      EXPECT_TRUE(o.at("format").is_string());
      EXPECT_FALSE(o.at("description").as_string().empty()) << r.kind << " " << c;
      EXPECT_TRUE(o.at("priority").is_int64());
      // Exactly the object's name column carries format "name".
      const bool is_name = o.at("name") == "Name";
      EXPECT_EQ(o.at("format") == "name", is_name) << r.kind << " " << c;
    }
  }
}

TEST(ColumnDefinitions, UpstreamTypes) {
  const json::array& pod = column_definitions(testing::resource("", "Pod"));
  EXPECT_EQ(pod[0], parse(R"({"name": "Name", "type": "string", "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0})"));
  EXPECT_EQ(pod[3].at("type"), "string");  // Restarts: "3 (5m ago)"
  EXPECT_EQ(pod[5].at("priority"), 1);
  const json::array& rs = column_definitions(testing::resource("apps", "ReplicaSet"));
  EXPECT_EQ(rs[1].at("type"), "integer");
  const json::array& cj = column_definitions(testing::resource("batch", "CronJob"));
  EXPECT_EQ(cj[3].at("type"), "boolean");
}

// Every printer copes with an object that has nothing but a name, and prints one cell per
// column.
TEST(RowCells, OneCellPerColumnEvenForBareObjects) {
  const json::value bare = parse(R"({"metadata": {"name": "x"}})");
  const json::value empty = parse("{}");
  for (const api::Resource& r : api::resources()) {
    if (!r.stored) continue;
    EXPECT_EQ(row_cells(r, bare, now()).size(), column_definitions(r).size()) << r.kind;
    EXPECT_EQ(row_cells(r, empty, now()).size(), column_definitions(r).size()) << r.kind;
  }
}

TEST(RowCells, UnknownKindsGetTheDefaultTable) {
  api::Resource widget;
  widget.group = "example.com";
  widget.version = "v1";
  widget.kind = "Widget";
  widget.plural = "widgets";
  EXPECT_EQ(column_names(column_definitions(widget)),
            (std::vector<std::string>{"Name", "Created At"}));
  EXPECT_EQ(column_definitions(widget)[1].at("type"), "date");
  EXPECT_EQ(row_cells(widget, parse(R"({"metadata": {"name": "w1",
                                             "creationTimestamp": "2025-01-15T13:00:00+02:00"}})"),
                      now()),
            parse(R"(["w1", "2025-01-15T11:00:00Z"])"));
  EXPECT_EQ(row_cells(widget, parse(R"({"metadata": {"name": "w2"}})"), now()),
            parse(R"(["w2", "0001-01-01T00:00:00Z"])"));
}

const json::value& web() {
  static const json::value kWeb = parse(R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "web", "namespace": "shop", "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
               "resourceVersion": "41", "creationTimestamp": "2025-01-15T11:55:00Z",
               "labels": {"app": "web"}},
  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]},
  "status": {"phase": "Running", "containerStatuses": [
    {"name": "nginx", "ready": true, "state": {"running": {}}}]}
})");
  return kWeb;
}

TEST(MakeTable, DefaultIncludesPartialObjectMetadata) {
  const json::value* objects[] = {&web()};
  json::value table = make_table(testing::resource("", "Pod"), objects, "42", "", "", now());
  const json::object& t = table.as_object();
  EXPECT_EQ(t.at("kind"), "Table");
  EXPECT_EQ(t.at("apiVersion"), "meta.k8s.io/v1");
  EXPECT_EQ(t.at("metadata"), parse(R"({"resourceVersion": "42"})"));
  EXPECT_EQ(t.at("columnDefinitions"),
            json::value(column_definitions(testing::resource("", "Pod"))));
  ASSERT_EQ(t.at("rows").as_array().size(), 1u);
  const json::value& row = t.at("rows").as_array()[0];
  EXPECT_EQ(row.at("cells"),
            parse(R"(["web", "1/1", "Running", "0", "5m", "<none>", "<none>", "<none>",
                      "<none>"])"));
  EXPECT_EQ(row.at("object"), json::value({{"kind", "PartialObjectMetadata"},
                                           {"apiVersion", "meta.k8s.io/v1"},
                                           {"metadata", web().at("metadata")}}));
  EXPECT_FALSE(row.as_object().contains("conditions"));
  // The same with includeObject=Metadata spelled out.
  EXPECT_EQ(make_table(testing::resource("", "Pod"), objects, "42", "", "Metadata", now()), table);
}

TEST(MakeTable, IncludeObjectNoneAndObject) {
  const json::value* objects[] = {&web()};
  json::value none = make_table(testing::resource("", "Pod"), objects, "", "", "None", now());
  EXPECT_TRUE(none.at("rows").as_array()[0].at("object").is_null());
  EXPECT_EQ(none.at("metadata"), json::object());

  json::value full = make_table(testing::resource("", "Pod"), objects, "", "", "Object", now());
  EXPECT_EQ(full.at("rows").as_array()[0].at("object"), web());

  // kind and apiVersion are filled in when the stored object lacks them.
  json::value bare = parse(R"({"metadata": {"name": "web"}, "spec": {"replicas": 1}})");
  const json::value* bare_objects[] = {&bare};
  json::value filled =
      make_table(testing::resource("apps", "Deployment"), bare_objects, "", "", "Object", now());
  EXPECT_EQ(filled.at("rows").as_array()[0].at("object"),
            parse(R"({"kind": "Deployment", "apiVersion": "apps/v1",
                      "metadata": {"name": "web"}, "spec": {"replicas": 1}})"));
}

TEST(MakeTable, ContinueTokenAndWatchEventsWithoutColumns) {
  const json::value* objects[] = {&web()};
  json::value page =
      make_table(testing::resource("", "Pod"), objects, "42", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "",
                 now(), /*include_column_definitions=*/false);
  EXPECT_EQ(page.at("metadata"),
            parse(R"({"resourceVersion": "42", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"})"));
  EXPECT_TRUE(page.at("columnDefinitions").is_null());
  EXPECT_EQ(page.at("rows").as_array().size(), 1u);
}

TEST(MakeTable, EmptyList) {
  json::value table = make_table(testing::resource("apps", "Deployment"), {}, "100", "", "", now());
  EXPECT_EQ(table.at("rows"), json::array());
  EXPECT_EQ(table.at("columnDefinitions").as_array().size(), 8u);
  // Serialized, the document is what kubectl decodes as a metav1.Table.
  auto text = to_json(table);
  EXPECT_NE(
      text.find(
          R"("kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"100"},"columnDefinitions":[{"name":"Name","type":"string","format":"name")"),
      std::string::npos)
      << text;
}

TEST(MakeTable, ValidIncludeObject) {
  for (std::string_view ok : {"", "None", "Metadata", "Object"}) {
    EXPECT_TRUE(valid_include_object(ok)) << ok;
  }
  for (std::string_view bad : {"none", "metadata", "All"}) {
    EXPECT_FALSE(valid_include_object(bad)) << bad;
  }
}

}  // namespace
}  // namespace podwarp::tables
