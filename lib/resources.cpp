#include "podwarp/api/resources.h"

#include <algorithm>
#include <tuple>

namespace podwarp::api {
namespace {

const std::vector<std::string_view> kAllVerbs = {"create", "delete", "deletecollection", "get",
                                                 "list",   "patch",  "update",           "watch"};
const std::vector<std::string_view> kStatusVerbs = {"get", "patch", "update"};

Subresource status() { return {"status", "", "", "", kStatusVerbs}; }
Subresource scale() { return {"scale", "autoscaling", "v1", "Scale", kStatusVerbs}; }

Resource make(std::string_view group, std::string_view version, std::string_view kind,
              std::string_view plural, std::string_view singular, bool namespaced,
              std::vector<std::string_view> short_names, std::vector<std::string_view> categories,
              std::vector<Subresource> subs, std::string_view storage = {}) {
  Resource r;
  r.group = group;
  r.version = version;
  r.kind = kind;
  r.plural = plural;
  r.singular = singular;
  r.namespaced = namespaced;
  r.short_names = std::move(short_names);
  r.categories = std::move(categories);
  r.subresources = std::move(subs);
  r.verbs = kAllVerbs;
  r.storage_name_ = storage.empty() ? plural : storage;
  return r;
}

// A create-only kind (the reviews, bindings): answered or applied elsewhere, never stored.
Resource create_only(std::string_view group, std::string_view kind, std::string_view plural,
                     std::string_view singular, bool namespaced) {
  Resource r = make(group, "v1", kind, plural, singular, namespaced, {}, {}, {});
  r.verbs = {"create"};
  r.stored = false;
  return r;
}

const std::vector<Resource>& table() {
  static const std::vector<Resource> kTable = [] {
    std::vector<Resource> t;
    // core/v1
    t.push_back(make("", "v1", "Namespace", "namespaces", "namespace", false, {"ns"}, {},
                     {status(), {"finalize", "", "", "", {"update"}}}));
    t.push_back(make("", "v1", "Pod", "pods", "pod", true, {"po"}, {"all"},
                     {status(),
                      {"binding", "", "v1", "Binding", {"create"}},
                      {"eviction", "policy", "v1", "Eviction", {"create"}},
                      {"log", "", "", "", {"get"}},
                      {"exec", "", "v1", "PodExecOptions", {"create", "get"}},
                      {"attach", "", "v1", "PodAttachOptions", {"create", "get"}},
                      {"portforward", "", "v1", "PodPortForwardOptions", {"create", "get"}},
                      {"ephemeralcontainers", "", "v1", "Pod", {"get", "patch", "update"}}}));
    t.push_back(make("", "v1", "Node", "nodes", "node", false, {"no"}, {}, {status()},
                     "minions"));
    t.push_back(create_only("", "Binding", "bindings", "binding", true));
    t.push_back(make("", "v1", "Service", "services", "service", true, {"svc"}, {"all"},
                     {status()}, "services/specs"));
    t.push_back(make("", "v1", "Endpoints", "endpoints", "endpoints", true, {"ep"}, {}, {},
                     "services/endpoints"));
    t.push_back(make("", "v1", "ConfigMap", "configmaps", "configmap", true, {"cm"}, {}, {}));
    t.push_back(make("", "v1", "Secret", "secrets", "secret", true, {}, {}, {}));
    t.push_back(make("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true,
                     {"sa"}, {},
                     {{"token", "authentication.k8s.io", "v1", "TokenRequest", {"create"}}}));
    t.push_back(make("", "v1", "Event", "events", "event", true, {"ev"}, {}, {}));
    t.push_back(make("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", false,
                     {"pv"}, {}, {status()}));
    t.push_back(make("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
                     "persistentvolumeclaim", true, {"pvc"}, {}, {status()}));
    {
      // Computed on each read (apiserver Api::component_statuses), never stored.
      Resource cs = make("", "v1", "ComponentStatus", "componentstatuses", "componentstatus",
                         false, {"cs"}, {}, {});
      cs.verbs = {"get", "list"};
      cs.stored = false;
      t.push_back(std::move(cs));
    }
    // apps/v1
    t.push_back(make("apps", "v1", "Deployment", "deployments", "deployment", true, {"deploy"},
                     {"all"}, {status(), scale()}));
    t.push_back(make("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, {"rs"},
                     {"all"}, {status(), scale()}));
    t.push_back(make("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true, {"ds"}, {"all"},
                     {status()}));
    t.push_back(make("apps", "v1", "StatefulSet", "statefulsets", "statefulset", true, {"sts"},
                     {"all"}, {status(), scale()}));
    // batch/v1
    t.push_back(make("batch", "v1", "Job", "jobs", "job", true, {}, {"all"}, {status()}));
    t.push_back(make("batch", "v1", "CronJob", "cronjobs", "cronjob", true, {"cj"}, {"all"},
                     {status()}));
    // coordination.k8s.io/v1
    t.push_back(make("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, {}, {}, {}));
    // discovery.k8s.io/v1
    t.push_back(make("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                     "endpointslice", true, {}, {}, {}));
    // networking.k8s.io/v1
    t.push_back(make("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies",
                     "networkpolicy", true, {"netpol"}, {}, {}));
    t.push_back(make("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, {"ing"},
                     {}, {status()}));
    // policy/v1
    t.push_back(make("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                     "poddisruptionbudget", true, {"pdb"}, {}, {status()}));
    // rbac.authorization.k8s.io/v1: stored and served as upstream's are; requests are not
    // authorized by them (upstream's --authorization-mode=AlwaysAllow)
    for (auto [kind, plural, singular, namespaced] :
         {std::tuple{"ClusterRole", "clusterroles", "clusterrole", false},
          std::tuple{"ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", false},
          std::tuple{"Role", "roles", "role", true},
          std::tuple{"RoleBinding", "rolebindings", "rolebinding", true}}) {
      t.push_back(make("rbac.authorization.k8s.io", "v1", kind, plural, singular, namespaced, {},
                       {}, {}));
    }
    // scheduling.k8s.io/v1
    t.push_back(make("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses",
                     "priorityclass", false, {"pc"}, {}, {}));
    // storage.k8s.io/v1
    t.push_back(make("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass",
                     false, {"sc"}, {}, {}));
    // authentication.k8s.io/v1, authorization.k8s.io/v1: reviews
    t.push_back(create_only("authentication.k8s.io", "SelfSubjectReview", "selfsubjectreviews",
                            "selfsubjectreview", false));
    t.push_back(create_only("authentication.k8s.io", "TokenReview", "tokenreviews", "tokenreview",
                            false));
    t.push_back(create_only("authorization.k8s.io", "LocalSubjectAccessReview",
                            "localsubjectaccessreviews", "localsubjectaccessreview", true));
    t.push_back(create_only("authorization.k8s.io", "SelfSubjectAccessReview",
                            "selfsubjectaccessreviews", "selfsubjectaccessreview", false));
    t.push_back(create_only("authorization.k8s.io", "SelfSubjectRulesReview",
                            "selfsubjectrulesreviews", "selfsubjectrulesreview", false));
    t.push_back(create_only("authorization.k8s.io", "SubjectAccessReview", "subjectaccessreviews",
                            "subjectaccessreview", false));
    return t;
  }();
  return kTable;
}

}  // namespace

std::string Resource::api_version() const {
  if (group.empty()) return std::string(version);
  std::string s(group);
  s += '/';
  s += version;
  return s;
}

std::span<const Resource> resources() { return table(); }

const Resource* find_resource(std::string_view group, std::string_view version,
                              std::string_view plural) {
  for (const Resource& r : table()) {
    if (r.group == group && r.version == version && r.plural == plural) return &r;
  }
  return nullptr;
}

const Resource* find_kind(std::string_view group, std::string_view version,
                          std::string_view kind) {
  for (const Resource& r : table()) {
    if (r.group == group && r.version == version && r.kind == kind) return &r;
  }
  return nullptr;
}

std::pair<std::string_view, std::string_view> split_api_version(std::string_view api_version) {
  auto slash = api_version.find('/');
  if (slash == std::string_view::npos) return {std::string_view{}, api_version};
  return {api_version.substr(0, slash), api_version.substr(slash + 1)};
}

std::span<const GroupVersion> group_versions() {
  static const std::vector<GroupVersion> kGroups = [] {
    std::vector<GroupVersion> g;
    for (const Resource& r : table()) {
      bool seen = std::any_of(g.begin(), g.end(), [&](const GroupVersion& x) {
        return x.group == r.group && x.version == r.version;
      });
      if (!seen) g.push_back({r.group, r.version});
    }
    return g;
  }();
  return kGroups;
}

}  // namespace podwarp::api
