#include "schema/openapi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <functional>
#include <set>
#include <thread>

#include "podwarp/api/resources.h"

namespace podwarp::schema {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

constexpr std::string_view kMethods[] = {"get", "put", "post", "delete", "patch"};

std::string gv_path(std::string_view group, std::string_view version) {
  if (group.empty()) return "api/" + std::string(version);
  return "apis/" + std::string(group) + "/" + std::string(version);
}

json::object v3_doc(std::string_view group, std::string_view version) {
  const std::string* text = openapi_v3_document(group, version);
  if (text == nullptr) throw std::runtime_error("no document for " + gv_path(group, version));
  auto v = parse_json(*text, 256);
  if (!v) throw std::runtime_error(v.error());
  return v->as_object();
}

bool gvk_equals(const json::value& gvk, std::string_view group, std::string_view version,
                std::string_view kind) {
  return gvk.is_object() && get_string(gvk, {"group"}) == group &&
         get_string(gvk, {"version"}) == version && get_string(gvk, {"kind"}) == kind;
}

bool has_query_param(const json::object& op, std::string_view name) {
  const json::value* params = op.if_contains("parameters");
  if (params == nullptr) return false;
  for (const json::value& p : params->as_array()) {
    if (get_string(p, {"name"}) == name && get_string(p, {"in"}) == "query") return true;
  }
  return false;
}

// What kubectl's QueryParamVerifierV3 does: the first patch operation whose GVK matches decides.
// Go iterates the paths map in random order, so every matching operation must pass.
void expect_kubectl_trusts_server(const json::object& doc, std::string_view group,
                                  std::string_view version, std::string_view kind) {
  int matching = 0;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    const json::value* op = item.as_object().if_contains("patch");
    if (op == nullptr) continue;
    const json::value* gvk = op->as_object().if_contains("x-kubernetes-group-version-kind");
    if (gvk == nullptr || !gvk_equals(*gvk, group, version, kind)) continue;
    ++matching;
    EXPECT_TRUE(has_query_param(op->as_object(), "fieldValidation")) << path;
    // kubectl apply builds its strategic merge patch from v3 only when the patch operation
    // accepts application/strategic-merge-patch+json.
    const json::value* content = find_path(*op, {"requestBody", "content"});
    ASSERT_NE(content, nullptr) << path;
    EXPECT_TRUE(content->as_object().contains("application/strategic-merge-patch+json")) << path;
  }
  EXPECT_GT(matching, 0) << "no patch operation for " << group << "/" << version << " " << kind;
}

// Follows allOf[0] and $ref the way kubectl's PatchMetaFromOpenAPIV3 and explain do.
const json::object& resolve(const json::object& doc, const json::object& schema) {
  const json::object* s = &schema;
  if (const json::value* all_of = s->if_contains("allOf")) s = &all_of->as_array()[0].as_object();
  if (const json::value* ref = s->if_contains("$ref")) {
    std::string_view target = ref->as_string();
    constexpr std::string_view kPrefix = "#/components/schemas/";
    EXPECT_TRUE(target.starts_with(kPrefix)) << target;
    return doc.at("components").at("schemas").at(target.substr(kPrefix.size())).as_object();
  }
  return *s;
}

const json::object& property(const json::object& schema, std::string_view name) {
  return schema.at("properties").at(name).as_object();
}

void collect_refs(const json::value& v, std::set<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, child] : v.as_object()) {
      if (k == "$ref") out.insert(std::string(child.as_string()));
      collect_refs(child, out);
    }
  } else if (v.is_array()) {
    for (const json::value& child : v.as_array()) collect_refs(child, out);
  }
}

TEST(OpenApiV3, IndexListsEveryServedGroupVersionWithItsHash) {
  json::value index = openapi_v3_index();
  const json::object& paths = index.at("paths").as_object();
  EXPECT_EQ(paths.size(), api::group_versions().size());
  for (const api::GroupVersion& gv : api::group_versions()) {
    std::string path = gv_path(gv.group, gv.version);
    ASSERT_TRUE(paths.contains(path)) << path;
    std::string_view hash = openapi_v3_hash(gv.group, gv.version);
    EXPECT_EQ(hash.size(), 128u);
    EXPECT_EQ(hash.find_first_not_of("0123456789ABCDEF"), std::string_view::npos);
    EXPECT_EQ(get_string(paths.at(path), {"serverRelativeURL"}),
              "/openapi/v3/" + path + "?hash=" + std::string(hash));
    EXPECT_NE(openapi_v3_document(gv.group, gv.version), nullptr);
  }
  EXPECT_TRUE(paths.contains("api/v1"));
  EXPECT_TRUE(paths.contains("apis/apps/v1"));
  EXPECT_EQ(openapi_v3_document("example.com", "v1"), nullptr);
  EXPECT_EQ(openapi_v3_hash("example.com", "v1"), "");
}

TEST(OpenApiV3, HashIsSha512OfTheDocument) {
  const std::string* text = openapi_v3_document("apps", "v1");
  ASSERT_NE(text, nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(EVP_Digest(text->data(), text->size(), digest, &len, EVP_sha512(), nullptr), 1);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  EXPECT_EQ(openapi_v3_hash("apps", "v1"), hex);
  EXPECT_EQ(openapi_v3_document("apps", "v1"), text);  // cached, same object
}

TEST(OpenApiV3, EveryOperationCarriesGvkAndAction) {
  for (const api::GroupVersion& gv : api::group_versions()) {
    json::object doc = v3_doc(gv.group, gv.version);
    EXPECT_EQ(get_string(doc, {"openapi"}), "3.0.0");
    ASSERT_TRUE(doc.contains("components"));
    int patches = 0;
    for (const auto& [path, item] : doc.at("paths").as_object()) {
      EXPECT_TRUE(path.starts_with("/" + gv_path(gv.group, gv.version) + "/")) << path;
      for (std::string_view method : kMethods) {
        const json::value* op = item.as_object().if_contains(method);
        if (op == nullptr) continue;
        const json::value* gvk = op->as_object().if_contains("x-kubernetes-group-version-kind");
        ASSERT_NE(gvk, nullptr) << method << " " << path;
        EXPECT_FALSE(get_string(*gvk, {"kind"}).empty());
        EXPECT_TRUE(op->as_object().contains("x-kubernetes-action")) << method << " " << path;
        EXPECT_FALSE(get_string(*op, {"operationId"}).empty()) << method << " " << path;
        if (method == "patch") {
          ++patches;
          EXPECT_TRUE(has_query_param(op->as_object(), "fieldValidation")) << path;
          EXPECT_TRUE(has_query_param(op->as_object(), "fieldManager")) << path;
        }
      }
    }
    bool stores = false;  // authorization.k8s.io only has reviews, which have no patch
    for (const api::Resource& r : api::resources()) {
      stores = stores || (r.group == gv.group && r.version == gv.version && r.stored);
    }
    if (stores) {
      EXPECT_GT(patches, 0) << gv_path(gv.group, gv.version);
    }
  }
}

TEST(OpenApiV3, KubectlTrustsServerSideValidationForEveryResource) {
  for (const api::Resource& r : api::resources()) {
    if (!r.stored) continue;  // a review has no patch (upstream's neither)
    json::object doc = v3_doc(r.group, r.version);
    expect_kubectl_trusts_server(doc, r.group, r.version, r.kind);
  }
  // kubectl scale patches deployments/scale, whose GVK is autoscaling/v1 Scale.
  expect_kubectl_trusts_server(v3_doc("apps", "v1"), "autoscaling", "v1", "Scale");
}

TEST(OpenApiV3, EveryKindSchemaCarriesItsGvkAndEveryRefResolves) {
  for (const api::GroupVersion& gv : api::group_versions()) {
    json::object doc = v3_doc(gv.group, gv.version);
    const json::object& schemas = doc.at("components").at("schemas").as_object();
    for (const api::Resource& r : api::resources()) {
      if (r.group != gv.group || r.version != gv.version) continue;
      for (std::string kind : {std::string(r.kind), std::string(r.kind) + "List"}) {
        if (!r.stored && kind.ends_with("List")) continue;  // reviews have no list kind
        int found = 0;
        for (const auto& [name, schema] : schemas) {
          const json::value* gvks =
              schema.as_object().if_contains("x-kubernetes-group-version-kind");
          if (gvks == nullptr) continue;
          for (const json::value& g : gvks->as_array())
            found += gvk_equals(g, r.group, r.version, kind);
        }
        EXPECT_EQ(found, 1) << kind;
      }
    }
    std::set<std::string> refs;
    collect_refs(doc, refs);
    for (const std::string& ref : refs) {
      ASSERT_TRUE(ref.starts_with("#/components/schemas/")) << ref;
      EXPECT_TRUE(schemas.contains(ref.substr(21))) << ref;
    }
  }
}

// kubectl explain (v1.32 plaintext template): the GVK comes from the `get` operation of the
// collection path, the schema from components.schemas by x-kubernetes-group-version-kind, and
// fields are followed through allOf/$ref and items.
TEST(OpenApiV3, ExplainResolvesPodSpecContainers) {
  json::object doc = v3_doc("", "v1");
  const json::object& paths = doc.at("paths").as_object();
  const json::value* item = paths.if_contains("/api/v1/pods");
  if (item == nullptr) item = paths.if_contains("/api/v1/namespaces/{namespace}/pods");
  ASSERT_NE(item, nullptr);
  const json::value& gvk = item->at("get").at("x-kubernetes-group-version-kind");
  ASSERT_TRUE(gvk_equals(gvk, "", "v1", "Pod"));
  const json::object* pod = nullptr;
  for (const auto& [name, schema] : doc.at("components").at("schemas").as_object()) {
    const json::value* gvks = schema.as_object().if_contains("x-kubernetes-group-version-kind");
    if (gvks == nullptr) continue;
    for (const json::value& g : gvks->as_array()) {
      if (gvk_equals(g, "", "v1", "Pod")) pod = &schema.as_object();
    }
  }
  ASSERT_NE(pod, nullptr);
  EXPECT_THAT(std::string(get_string(*pod, {"description"})),
              HasSubstr("collection of containers"));
  const json::object& spec = resolve(doc, property(*pod, "spec"));
  const json::object& containers = property(spec, "containers");
  EXPECT_EQ(get_string(containers, {"type"}), "array");
  EXPECT_THAT(spec.at("required").as_array(), Contains(json::value("containers")));
  const json::object& container = resolve(doc, containers.at("items").as_object());
  const json::object& pull = property(container, "imagePullPolicy");
  EXPECT_EQ(get_string(pull, {"type"}), "string");
  EXPECT_FALSE(get_string(pull, {"description"}).empty());
  EXPECT_THAT(pull.at("enum").as_array(), Contains(json::value("IfNotPresent")));
  // A scalar ref (IntOrString) resolves to a schema without "type: object".
  const json::object& probe = resolve(doc, property(container, "livenessProbe"));
  const json::object& http_get = resolve(doc, property(probe, "httpGet"));
  const json::object& port = resolve(doc, property(http_get, "port"));
  EXPECT_EQ(get_string(port, {"format"}), "int-or-string");
}

// kubectl apply computes its strategic merge patch from the v3 document
// (strategicpatch.PatchMetaFromOpenAPIV3): extensions sit on the property, beside allOf.
TEST(OpenApiV3, StrategicMergeMetadataForApply) {
  json::object doc = v3_doc("apps", "v1");
  const json::object* deployment = nullptr;
  for (const auto& [name, schema] : doc.at("components").at("schemas").as_object()) {
    if (name == "io.k8s.api.apps.v1.Deployment") deployment = &schema.as_object();
  }
  ASSERT_NE(deployment, nullptr);
  const json::object& spec = resolve(doc, property(*deployment, "spec"));
  EXPECT_EQ(get_string(property(spec, "strategy"), {"x-kubernetes-patch-strategy"}), "retainKeys");
  const json::object& tmpl = resolve(doc, property(spec, "template"));
  const json::object& pod_spec = resolve(doc, property(tmpl, "spec"));
  const json::object& containers = property(pod_spec, "containers");
  EXPECT_EQ(get_string(containers, {"x-kubernetes-patch-strategy"}), "merge");
  EXPECT_EQ(get_string(containers, {"x-kubernetes-patch-merge-key"}), "name");
  EXPECT_EQ(get_string(containers, {"x-kubernetes-list-type"}), "map");
  const json::object& volumes = property(pod_spec, "volumes");
  EXPECT_EQ(get_string(volumes, {"x-kubernetes-patch-strategy"}), "merge,retainKeys");
  const json::object& container = resolve(doc, containers.at("items").as_object());
  const json::object& ports = property(container, "ports");
  EXPECT_EQ(get_string(ports, {"x-kubernetes-patch-merge-key"}), "containerPort");
  EXPECT_EQ(ports.at("x-kubernetes-list-map-keys").as_array(),
            (json::array{"containerPort", "protocol"}));
  const json::object& meta = resolve(doc, property(*deployment, "metadata"));
  EXPECT_EQ(get_string(property(meta, "finalizers"), {"x-kubernetes-patch-strategy"}), "merge");
  EXPECT_EQ(get_string(property(meta, "labels"), {"type"}), "object");
  // The scale subresource and its kind are in the apps document.
  const json::value* scale = doc.at("paths").as_object().if_contains(
      "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_TRUE(gvk_equals(scale->at("get").at("x-kubernetes-group-version-kind"), "autoscaling",
                         "v1", "Scale"));
  EXPECT_TRUE(
      doc.at("components").at("schemas").as_object().contains("io.k8s.api.autoscaling.v1.Scale"));
}

TEST(OpenApiV3, PathsCoverCollectionsItemsAndSubresources) {
  // Every resource and subresource of the table has its paths, whatever the table holds.
  for (const api::Resource& r : api::resources()) {
    json::object doc = v3_doc(r.group, r.version);
    const json::object& paths = doc.at("paths").as_object();
    std::string prefix = "/" + gv_path(r.group, r.version);
    std::string collection =
        prefix + (r.namespaced ? "/namespaces/{namespace}/" : "/") + std::string(r.plural);
    ASSERT_TRUE(paths.contains(collection)) << collection;
    if (r.kind == "ComponentStatus") {
      // Computed, not stored: get and list only.
      EXPECT_TRUE(paths.at(collection).as_object().contains("get")) << collection;
      EXPECT_FALSE(paths.at(collection).as_object().contains("post")) << collection;
      ASSERT_TRUE(paths.contains(collection + "/{name}")) << collection;
      EXPECT_EQ(paths.at(collection + "/{name}").as_object().size(), 2u);  // get, parameters
      continue;
    }
    if (!r.stored) {
      // A review is one POST on its collection, as upstream's document has it.
      EXPECT_EQ(paths.at(collection).as_object().size(), 2u) << collection;  // post, parameters
      EXPECT_TRUE(paths.at(collection).as_object().contains("post")) << collection;
      EXPECT_FALSE(paths.contains(collection + "/{name}")) << collection;
      continue;
    }
    ASSERT_TRUE(paths.contains(collection + "/{name}")) << collection;
    EXPECT_TRUE(paths.contains(prefix + "/" + std::string(r.plural))) << r.plural;
    for (const api::Subresource& sub : r.subresources) {
      std::string path = collection + "/{name}/" + std::string(sub.name);
      ASSERT_TRUE(paths.contains(path)) << path;
      size_t ops = 0;
      for (std::string_view method : kMethods) ops += paths.at(path).as_object().contains(method);
      EXPECT_EQ(ops, sub.verbs.size()) << path;
    }
  }
  json::object core = v3_doc("", "v1");
  const json::object& paths = core.at("paths").as_object();
  const json::object& pods = paths.at("/api/v1/namespaces/{namespace}/pods").as_object();
  EXPECT_TRUE(pods.contains("get"));
  EXPECT_TRUE(pods.contains("post"));
  EXPECT_TRUE(pods.contains("delete"));
  EXPECT_TRUE(has_query_param(pods.at("get").as_object(), "watch"));
  EXPECT_TRUE(has_query_param(pods.at("post").as_object(), "fieldValidation"));
  EXPECT_EQ(get_string(pods.at("get"), {"x-kubernetes-action"}), "list");
  EXPECT_TRUE(gvk_equals(pods.at("get").at("x-kubernetes-group-version-kind"), "", "v1", "Pod"));
  const json::object& status =
      paths.at("/api/v1/namespaces/{namespace}/pods/{name}/status").as_object();
  EXPECT_TRUE(
      gvk_equals(status.at("patch").at("x-kubernetes-group-version-kind"), "", "v1", "Pod"));
  const json::object& eviction =
      paths.at("/api/v1/namespaces/{namespace}/pods/{name}/eviction").as_object();
  EXPECT_TRUE(gvk_equals(eviction.at("post").at("x-kubernetes-group-version-kind"), "policy", "v1",
                         "Eviction"));
  // Cluster-scoped kinds have no namespace parameter.
  for (const json::value& p : paths.at("/api/v1/nodes/{name}").at("parameters").as_array()) {
    EXPECT_NE(get_string(p, {"name"}), "namespace");
  }
}

TEST(OpenApiV2, SwaggerDocumentCoversAllGroupVersions) {
  auto v = parse_json(openapi_v2_document(), 256);
  ASSERT_TRUE(v.has_value()) << v.error();
  const json::object& doc = v->as_object();
  EXPECT_EQ(get_string(doc, {"swagger"}), "2.0");
  const json::object& defs = doc.at("definitions").as_object();
  EXPECT_TRUE(defs.contains("io.k8s.api.core.v1.PodSpec"));
  EXPECT_TRUE(defs.contains("io.k8s.api.apps.v1.Deployment"));
  std::set<std::string> refs;
  collect_refs(*v, refs);
  for (const std::string& ref : refs) {
    ASSERT_TRUE(ref.starts_with("#/definitions/")) << ref;
    EXPECT_TRUE(defs.contains(ref.substr(14))) << ref;
  }
  int patches = 0;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    const json::value* op = item.as_object().if_contains("patch");
    if (op == nullptr) continue;
    ++patches;
    EXPECT_TRUE(has_query_param(op->as_object(), "fieldValidation")) << path;
    EXPECT_THAT(op->at("consumes").as_array(),
                Contains(json::value("application/strategic-merge-patch+json")));
    EXPECT_TRUE(op->as_object().contains("x-kubernetes-group-version-kind"));
  }
  EXPECT_GT(patches, static_cast<int>(api::resources().size()));
  // v2 keeps refs beside descriptions (no allOf).
  const json::object& pod = defs.at("io.k8s.api.core.v1.Pod").as_object();
  EXPECT_EQ(get_string(property(pod, "spec"), {"$ref"}),
            "#/definitions/io.k8s.api.core.v1.PodSpec");
}

TEST(OpenApi, ConcurrentFirstUseIsSafe) {
  std::vector<std::thread> threads;
  std::vector<const std::string*> seen(4);
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&seen, i] { seen[i] = openapi_v3_document("", "v1"); });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string* s : seen) EXPECT_EQ(s, seen[0]);
}

}  // namespace
}  // namespace podwarp::schema
