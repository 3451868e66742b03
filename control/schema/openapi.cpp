#include "schema/openapi.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <vector>

#include "podwarp/api/resources.h"
#include "schema/schema.h"

namespace podwarp::schema {
namespace {

constexpr std::string_view kMetaV1 = "io.k8s.apimachinery.pkg.apis.meta.v1.";
constexpr std::string_view kTitle = "Kubernetes";
constexpr std::string_view kVersion = "v1.32.0";

std::string upper_hex_sha512(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha512(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest sha512 failed");
  }
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out(s);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

// "" → "Core", "coordination.k8s.io" → "Coordination", "rbac.authorization.k8s.io" →
// "RbacAuthorization"; with the version: "CoreV1".
std::string group_camel(std::string_view group) {
  if (group.empty()) return "Core";
  if (group.ends_with(".k8s.io")) group.remove_suffix(7);
  std::string out;
  for (std::size_t start = 0; start <= group.size();) {
    std::size_t dot = std::min(group.find('.', start), group.size());
    out += capitalize(group.substr(start, dot - start));
    start = dot + 1;
  }
  return out;
}

std::string gv_path(std::string_view group, std::string_view version) {
  if (group.empty()) return "api/" + std::string(version);
  return "apis/" + std::string(group) + "/" + std::string(version);
}

json::object gvk_object(std::string_view group, std::string_view version, std::string_view kind) {
  return json::object{{"group", group}, {"kind", kind}, {"version", version}};
}

// ------------------------------------------------------------------------- query parameters

struct Param {
  std::string_view name;
  std::string_view type;  // string, integer, boolean
  std::string_view description;
};

constexpr Param kPretty{"pretty", "string",
                        "If 'true', then the output is pretty printed. Defaults to 'false' unless "
                        "the user-agent indicates a browser or command-line HTTP tool (curl and "
                        "wget)."};
constexpr Param kAllowWatchBookmarks{
    "allowWatchBookmarks", "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not "
    "implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion."};
constexpr Param kContinue{"continue", "string",
                          "The continue option should be set when retrieving more results from "
                          "the server. Since this value is server defined, clients may only use "
                          "the continue value from a previous query result."};
constexpr Param kFieldSelector{"fieldSelector", "string",
                               "A selector to restrict the list of returned objects by their "
                               "fields. Defaults to everything."};
constexpr Param kLabelSelector{"labelSelector", "string",
                               "A selector to restrict the list of returned objects by their "
                               "labels. Defaults to everything."};
constexpr Param kLimit{"limit", "integer",
                       "limit is a maximum number of responses to return for a list call. If more "
                       "items exist, the server will set the `continue` field on the list "
                       "metadata to a value that can be used with the same initial query to "
                       "retrieve the next set of results."};
constexpr Param kResourceVersion{"resourceVersion", "string",
                                 "resourceVersion sets a constraint on what resource versions a "
                                 "request may be served from. Defaults to unset."};
constexpr Param kResourceVersionMatch{"resourceVersionMatch", "string",
                                      "resourceVersionMatch determines how resourceVersion is "
                                      "applied to list calls. Defaults to unset."};
constexpr Param kSendInitialEvents{
    "sendInitialEvents", "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch "
    "stream will begin with synthetic events to produce the current state of objects in the "
    "collection."};
constexpr Param kTimeoutSeconds{"timeoutSeconds", "integer",
                                "Timeout for the list/watch call. This limits the duration of "
                                "the call, regardless of any activity or inactivity."};
constexpr Param kWatch{"watch", "boolean",
                       "Watch for changes to the described resources and return them as a stream "
                       "of add, update, and remove notifications. Specify resourceVersion."};
constexpr Param kDryRun{"dryRun", "string",
                        "When present, indicates that modifications should not be persisted. An "
                        "invalid or unrecognized dryRun directive will result in an error "
                        "response and no further processing of the request. Valid values are: - "
                        "All: all dry run stages will be processed"};
constexpr Param kFieldManager{"fieldManager", "string",
                              "fieldManager is a name associated with the actor or entity that "
                              "is making these changes. The value must be less than or 128 "
                              "characters long, and only contain printable characters."};
constexpr Param kFieldValidation{
    "fieldValidation", "string",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This "
    "will ignore any unknown fields that are silently dropped from the object, and will ignore "
    "all but the last duplicate field that the decoder encounters. - Warn: This will send a "
    "warning via the standard warning response header for each unknown field that is dropped "
    "from the object, and for each duplicate field that is encountered. - Strict: This will "
    "fail the request with a BadRequest error if any unknown fields would be dropped from the "
    "object, or if any duplicate fields are present."};
constexpr Param kForce{"force", "boolean",
                       "Force is going to \"force\" Apply requests. It means user will re-acquire "
                       "conflicting fields owned by other people. Force flag must be unset for "
                       "non-apply patch requests."};
constexpr Param kGracePeriodSeconds{"gracePeriodSeconds", "integer",
                                    "The duration in seconds before the object should be "
                                    "deleted. Value must be non-negative integer. The value "
                                    "zero indicates delete immediately."};
constexpr Param kIgnoreStoreReadError{
    "ignoreStoreReadErrorWithClusterBreakingPotential", "boolean",
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal "
    "deletion flow fails with a corrupt object error."};
constexpr Param kOrphanDependents{"orphanDependents", "boolean",
                                  "Deprecated: please use the PropagationPolicy, this field will "
                                  "be deprecated in 1.7. Should the dependent objects be "
                                  "orphaned."};
constexpr Param kPropagationPolicy{"propagationPolicy", "string",
                                   "Whether and how garbage collection will be performed. "
                                   "Acceptable values are: 'Orphan', 'Background', "
                                   "'Foreground'."};

const std::vector<Param> kListParams = {kAllowWatchBookmarks,
                                        kContinue,
                                        kFieldSelector,
                                        kLabelSelector,
                                        kLimit,
                                        kResourceVersion,
                                        kResourceVersionMatch,
                                        kSendInitialEvents,
                                        kTimeoutSeconds,
                                        kWatch};
const std::vector<Param> kWriteParams = {kDryRun, kFieldManager, kFieldValidation};
const std::vector<Param> kPatchParams = {kDryRun, kFieldManager, kFieldValidation, kForce};
const std::vector<Param> kDeleteParams = {kDryRun, kGracePeriodSeconds, kIgnoreStoreReadError,
                                          kOrphanDependents, kPropagationPolicy};
const std::vector<Param> kDeleteCollectionParams = {kContinue,
                                                    kDryRun,
                                                    kFieldSelector,
                                                    kGracePeriodSeconds,
                                                    kIgnoreStoreReadError,
                                                    kLabelSelector,
                                                    kLimit,
                                                    kOrphanDependents,
                                                    kPropagationPolicy,
                                                    kResourceVersion,
                                                    kResourceVersionMatch,
                                                    kSendInitialEvents,
                                                    kTimeoutSeconds};
const std::vector<Param> kLogParams = {
    {"container", "string",
     "The container for which to stream logs. Defaults to only container "
     "if there is one container in the pod."},
    {"follow", "boolean", "Follow the log stream of the pod. Defaults to false."},
    {"insecureSkipTLSVerifyBackend", "boolean",
     "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity "
     "of the serving certificate of the backend it is connecting to."},
    {"limitBytes", "integer",
     "If set, the number of bytes to read from the server before "
     "terminating the log output."},
    {"previous", "boolean", "Return previous terminated container logs. Defaults to false."},
    {"sinceSeconds", "integer",
     "A relative time in seconds before the current time from which "
     "to show logs."},
    {"stream", "string",
     "Specify which container log stream to return to the client. "
     "Acceptable values are \"All\", \"Stdout\" and \"Stderr\"."},
    {"tailLines", "integer", "If set, the number of lines from the end of the logs to show."},
    {"timestamps", "boolean",
     "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning "
     "of every line of log output. Defaults to false."}};
const Param kCommand{"command", "string",
                     "Command is the remote command to execute. argv "
                     "array. Not executed within a shell."};
const Param kContainer{"container", "string",
                       "The container in which to execute the command. "
                       "Defaults to only container if there is only one "
                       "container in the pod."};
const Param kStderr{"stderr", "boolean",
                    "Redirect the standard error stream of the pod for this "
                    "call."};
const Param kStdin{"stdin", "boolean",
                   "Redirect the standard input stream of the pod for this "
                   "call. Defaults to false."};
const Param kStdout{"stdout", "boolean",
                    "Redirect the standard output stream of the pod for "
                    "this call."};
const Param kTty{"tty", "boolean",
                 "TTY if true indicates that a tty will be allocated for the "
                 "exec call. Defaults to false."};
const std::vector<Param> kExecParams = {kCommand, kContainer, kStderr, kStdin, kStdout, kTty};
const std::vector<Param> kAttachParams = {kContainer, kStderr, kStdin, kStdout, kTty};
const std::vector<Param> kPortForwardParams = {
    {"ports", "integer", "List of ports to forward Required when using WebSockets"}};

const std::vector<std::string_view> kPatchMediaTypes = {
    "application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json"};
const std::vector<std::string_view> kObjectMediaTypes = {"application/json", "application/yaml",
                                                         "application/vnd.kubernetes.protobuf"};
const std::vector<std::string_view> kListMediaTypes = {
    "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"};

// ------------------------------------------------------------------------- generator

// Builds one document: schemas (definitions) for every type a path refers to, and the paths.
// `v3_` selects OpenAPI 3.0 (components/schemas, allOf-wrapped refs, requestBody, content)
// over Swagger 2.0 (definitions, plain refs, body parameters, produces/consumes).
class Generator {
 public:
  explicit Generator(bool v3) : v3_(v3) {}

  void add_resources(std::string_view group, std::string_view version) {
    for (const api::Resource& r : api::resources()) {
      if (r.group == group && r.version == version) add_resource(r);
    }
  }

  json::value document() {
    json::object paths;
    for (auto& [path, item] : paths_) paths.emplace(path, std::move(item));
    json::object schemas;
    for (auto& [name, schema] : schemas_) schemas.emplace(name, std::move(schema));
    json::object security_scheme{{"type", "apiKey"},
                                 {"name", "authorization"},
                                 {"in", "header"},
                                 {"description", "Bearer Token authentication"}};
    json::object doc;
    if (v3_) {
      doc["openapi"] = "3.0.0";
      doc["info"] = json::object{{"title", kTitle}, {"version", kVersion}};
      doc["paths"] = std::move(paths);
      doc["components"] = json::object{
          {"schemas", std::move(schemas)},
          {"securitySchemes", json::object{{"BearerToken", std::move(security_scheme)}}}};
    } else {
      doc["swagger"] = "2.0";
      doc["info"] = json::object{{"title", kTitle}, {"version", kVersion}};
      doc["paths"] = std::move(paths);
      doc["definitions"] = std::move(schemas);
      doc["securityDefinitions"] = json::object{{"BearerToken", std::move(security_scheme)}};
    }
    doc["security"] = json::array{json::object{{"BearerToken", json::array{}}}};
    return doc;
  }

 private:
  // --------------------------------------------------------------- schemas

  std::string ref_target(const Type& t) {
    define(t);
    return (v3_ ? "#/components/schemas/" : "#/definitions/") + t.name;
  }

  json::object ref(const Type& t) { return json::object{{"$ref", ref_target(t)}}; }

  // The schema of an anonymous type or, for a named one, a reference to its definition. As
  // list items and map values, v3 wraps a struct reference the way upstream does.
  json::object shape(const Type& t, bool as_item) {
    if (t.is_named()) {
      if (v3_ && as_item && t.kind == TypeKind::kStruct) {
        return json::object{{"allOf", json::array{ref(t)}}, {"default", json::object{}}};
      }
      return ref(t);
    }
    json::object s;
    switch (t.kind) {
      case TypeKind::kArray:
        s["type"] = "array";
        s["items"] = shape(*t.items, true);
        break;
      case TypeKind::kMap:
        s["type"] = "object";
        s["additionalProperties"] = shape(*t.items, true);
        break;
      default:
        // IntOrString and Quantity are always named, so this is a primitive or free-form.
        s["type"] = primitive_type(t.kind);
        break;
    }
    if (!t.format.empty()) s["format"] = t.format;
    return s;
  }

  static std::string_view primitive_type(TypeKind kind) {
    switch (kind) {
      case TypeKind::kInteger:
        return "integer";
      case TypeKind::kNumber:
        return "number";
      case TypeKind::kBoolean:
        return "boolean";
      case TypeKind::kString:
        return "string";
      default:
        return "object";
    }
  }

  json::object property(const Field& f) {
    const Type& t = *f.type;
    json::object s;
    bool wraps = t.is_named() && (!f.description.empty() || f.default_value);
    if (t.is_named() && v3_ && wraps) {
      // OpenAPI 3.0 ignores siblings of $ref: upstream wraps the reference in allOf.
      s["allOf"] = json::array{ref(t)};
    } else {
      s = shape(t, false);
    }
    if (f.default_value) s["default"] = *f.default_value;
    if (!f.description.empty()) s["description"] = f.description;
    if (!f.enum_values.empty()) {
      json::array values;
      for (const std::string& v : f.enum_values) values.emplace_back(v);
      s["enum"] = std::move(values);
    }
    if (!f.list_map_keys.empty()) {
      json::array keys;
      for (const std::string& k : f.list_map_keys) keys.emplace_back(k);
      s["x-kubernetes-list-map-keys"] = std::move(keys);
    }
    if (!f.list_type.empty()) s["x-kubernetes-list-type"] = f.list_type;
    if (!f.map_type.empty()) s["x-kubernetes-map-type"] = f.map_type;
    if (!f.patch_merge_key.empty()) s["x-kubernetes-patch-merge-key"] = f.patch_merge_key;
    if (!f.patch_strategy.empty()) s["x-kubernetes-patch-strategy"] = f.patch_strategy;
    return s;
  }

  void define(const Type& t) {
    if (!schemas_.emplace(t.name, json::object()).second) return;  // done or in progress
    json::object s;
    if (!t.description.empty()) s["description"] = t.description;
    switch (t.kind) {
      case TypeKind::kStruct: {
        json::object props;
        json::array required;
        for (const Field& f : t.fields) {
          props[f.name] = property(f);
          if (f.required) required.emplace_back(f.name);
        }
        s["type"] = "object";
        if (!props.empty()) s["properties"] = std::move(props);
        if (!required.empty()) s["required"] = std::move(required);
        if (!t.gvks.empty()) {
          json::array gvks;
          for (const GroupVersionKind& g : t.gvks)
            gvks.push_back(gvk_object(g.group, g.version, g.kind));
          s["x-kubernetes-group-version-kind"] = std::move(gvks);
        }
        if (!t.map_type.empty()) s["x-kubernetes-map-type"] = t.map_type;
        break;
      }
      case TypeKind::kIntOrString:
        s["format"] = "int-or-string";
        if (v3_) {
          s["oneOf"] =
              json::array{json::object{{"type", "integer"}}, json::object{{"type", "string"}}};
        } else {
          s["type"] = "string";
        }
        break;
      case TypeKind::kQuantity:
        if (v3_) {
          s["oneOf"] =
              json::array{json::object{{"type", "string"}}, json::object{{"type", "number"}}};
        } else {
          s["type"] = "string";
        }
        break;
      case TypeKind::kFreeForm:
        s["type"] = "object";
        break;
      default:
        s["type"] = primitive_type(t.kind);
        if (!t.format.empty()) s["format"] = t.format;
        break;
    }
    schemas_[t.name] = std::move(s);
  }

  const Type& must_type(std::string_view group, std::string_view version, std::string_view kind) {
    const Type* t = kind_type(group, version, kind);
    if (t == nullptr) {
      throw std::logic_error("openapi: no schema for kind " + std::string(group) + "/" +
                             std::string(version) + "/" + std::string(kind));
    }
    return *t;
  }

  const Type& meta(std::string_view name) {
    const Type* t = find_type(std::string(kMetaV1) + std::string(name));
    if (t == nullptr) throw std::logic_error("openapi: no schema for meta/v1 " + std::string(name));
    return *t;
  }

  // --------------------------------------------------------------- operations

  json::object param(const Param& p, std::string_view in = "query", bool required = false) {
    json::object o{{"name", p.name}, {"in", in}, {"description", p.description}};
    if (required) o["required"] = true;
    if (v3_) {
      json::object schema{{"type", p.type}};
      if (in == "query") schema["uniqueItems"] = true;
      o["schema"] = std::move(schema);
    } else {
      o["type"] = p.type;
      if (in == "query") o["uniqueItems"] = true;
    }
    return o;
  }

  // A 2xx/401 response map; a null `body` means a plain-text (string) body.
  json::object responses(std::initializer_list<std::pair<std::string_view, std::string_view>> codes,
                         const Type* body, const std::vector<std::string_view>& media) {
    json::object out;
    for (auto [code, text] : codes) {
      json::object r{{"description", text}};
      if (v3_) {
        json::object content;
        if (body != nullptr) {
          for (std::string_view m : media) content[m] = json::object{{"schema", ref(*body)}};
        } else {
          content["*/*"] = json::object{{"schema", json::object{{"type", "string"}}}};
        }
        r["content"] = std::move(content);
      } else {
        r["schema"] = body != nullptr ? json::value(ref(*body))
                                      : json::value(json::object{{"type", "string"}});
      }
      out[code] = std::move(r);
    }
    out["401"] = json::object{{"description", "Unauthorized"}};
    return out;
  }

  struct Op {
    std::string method;  // get, post, put, patch, delete
    std::string operation_id;
    std::string description;
    std::string action;  // x-kubernetes-action
    api::GroupVersion gvk_gv;
    std::string_view gvk_kind;
    const std::vector<Param>* params = nullptr;
    const Type* body = nullptr;  // request body type
    bool body_required = true;
    bool patch = false;
    json::object responses;
  };

  void add_op(const std::string& path, bool namespaced, bool has_name, Op op) {
    json::object& item = path_item(path, namespaced, has_name);
    json::object o;
    o["description"] = op.description;
    o["operationId"] = op.operation_id;
    o["tags"] = json::array{tag_};
    json::array params;
    if (op.params != nullptr) {
      for (const Param& p : *op.params) params.push_back(param(p));
    }
    if (op.body != nullptr) {
      std::vector<std::string_view> consumes = {"*/*"};
      if (op.patch) consumes = kPatchMediaTypes;
      if (v3_) {
        json::object content;
        for (std::string_view m : consumes) content[m] = json::object{{"schema", ref(*op.body)}};
        json::object body{{"content", std::move(content)}};
        if (op.body_required) body["required"] = true;
        o["requestBody"] = std::move(body);
      } else {
        json::object p{{"name", "body"}, {"in", "body"}, {"schema", ref(*op.body)}};
        if (op.body_required) p["required"] = true;
        params.insert(params.begin(), std::move(p));
        json::array c;
        for (std::string_view m : consumes) c.emplace_back(m);
        o["consumes"] = std::move(c);
      }
    } else if (!v3_) {
      o["consumes"] = json::array{"*/*"};
    }
    if (!params.empty()) o["parameters"] = std::move(params);
    if (!v3_) {
      json::array produces;
      for (std::string_view m : kObjectMediaTypes) produces.emplace_back(m);
      o["produces"] = std::move(produces);
      o["schemes"] = json::array{"https"};
    }
    o["responses"] = std::move(op.responses);
    o["x-kubernetes-action"] = op.action;
    o["x-kubernetes-group-version-kind"] =
        gvk_object(op.gvk_gv.group, op.gvk_gv.version, op.gvk_kind);
    item[op.method] = std::move(o);
  }

  json::object& path_item(const std::string& path, bool namespaced, bool has_name) {
    auto [it, fresh] = paths_.try_emplace(path);
    if (fresh) {
      json::array params;
      if (has_name) {
        params.push_back(param({"name", "string", "name of the resource"}, "path", true));
      }
      if (namespaced) {
        params.push_back(param({"namespace", "string",
                                "object name and auth scope, such as for "
                                "teams and projects"},
                               "path", true));
      }
      params.push_back(param(kPretty));
      it->second["parameters"] = std::move(params);
    }
    return it->second;
  }

  void add_resource(const api::Resource& r) {
    const Type& kind = must_type(r.group, r.version, r.kind);
    // A kind without the list verb (the create-only reviews) has no list kind.
    const bool listed = std::find(r.verbs.begin(), r.verbs.end(), "list") != r.verbs.end();
    const Type* list =
        listed ? &must_type(r.group, r.version, std::string(r.kind) + "List") : nullptr;
    const Type& status = meta("Status");
    const Type& delete_options = meta("DeleteOptions");
    const Type& patch = meta("Patch");
    std::string gv = group_camel(r.group) + capitalize(r.version);
    // "core_v1", "apps_v1", "rbacAuthorization_v1"
    tag_ = group_camel(r.group) + "_" + std::string(r.version);
    tag_[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(tag_[0])));
    std::string prefix = "/" + gv_path(r.group, r.version);
    std::string scope = r.namespaced ? "Namespaced" : "";
    std::string collection =
        prefix + (r.namespaced ? "/namespaces/{namespace}/" : "/") + std::string(r.plural);
    std::string item = collection + "/{name}";
    std::string kind_name(r.kind);
    api::GroupVersion self{r.group, r.version};
    auto has = [&](std::string_view verb) {
      for (std::string_view v : r.verbs) {
        if (v == verb) return true;
      }
      return false;
    };
    auto op = [&](std::string method, std::string id, std::string desc, std::string action) {
      Op o;
      o.method = std::move(method);
      o.operation_id = std::move(id);
      o.description = std::move(desc);
      o.action = std::move(action);
      o.gvk_gv = self;
      o.gvk_kind = r.kind;
      return o;
    };

    if (has("list")) {
      Op o = op("get", "list" + gv + scope + kind_name,
                "list or watch objects of kind " + kind_name, "list");
      o.params = &kListParams;
      o.responses = responses({{"200", "OK"}}, list, kListMediaTypes);
      add_op(collection, r.namespaced, false, std::move(o));
      if (r.namespaced) {
        Op all = op("get", "list" + gv + kind_name + "ForAllNamespaces",
                    "list or watch objects of kind " + kind_name, "list");
        all.params = &kListParams;
        all.responses = responses({{"200", "OK"}}, list, kListMediaTypes);
        add_op(prefix + "/" + std::string(r.plural), false, false, std::move(all));
      }
    }
    if (has("create")) {
      Op o = op("post", "create" + gv + scope + kind_name, "create a " + kind_name, "post");
      o.params = &kWriteParams;
      o.body = &kind;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}, {"202", "Accepted"}}, &kind,
                              kObjectMediaTypes);
      add_op(collection, r.namespaced, false, std::move(o));
    }
    if (has("deletecollection")) {
      Op o = op("delete", "deleteCollection" + gv + scope + kind_name,
                "delete collection of " + kind_name, "deletecollection");
      o.params = &kDeleteCollectionParams;
      o.body = &delete_options;
      o.body_required = false;
      o.responses = responses({{"200", "OK"}}, &status, kObjectMediaTypes);
      add_op(collection, r.namespaced, false, std::move(o));
    }
    if (has("get")) {
      Op o = op("get", "read" + gv + scope + kind_name, "read the specified " + kind_name, "get");
      o.responses = responses({{"200", "OK"}}, &kind, kObjectMediaTypes);
      add_op(item, r.namespaced, true, std::move(o));
    }
    if (has("update")) {
      Op o = op("put", "replace" + gv + scope + kind_name, "replace the specified " + kind_name,
                "put");
      o.params = &kWriteParams;
      o.body = &kind;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}}, &kind, kObjectMediaTypes);
      add_op(item, r.namespaced, true, std::move(o));
    }
    if (has("patch")) {
      Op o = op("patch", "patch" + gv + scope + kind_name,
                "partially update the specified " + kind_name, "patch");
      o.params = &kPatchParams;
      o.body = &patch;
      o.patch = true;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}}, &kind, kObjectMediaTypes);
      add_op(item, r.namespaced, true, std::move(o));
    }
    if (has("delete")) {
      Op o = op("delete", "delete" + gv + scope + kind_name, "delete a " + kind_name, "delete");
      o.params = &kDeleteParams;
      o.body = &delete_options;
      o.body_required = false;
      o.responses = responses({{"200", "OK"}, {"202", "Accepted"}}, &status, kObjectMediaTypes);
      add_op(item, r.namespaced, true, std::move(o));
    }
    for (const api::Subresource& sub : r.subresources) {
      add_subresource(r, sub, gv, scope, item);
    }
  }

  void add_subresource(const api::Resource& r, const api::Subresource& sub, const std::string& gv,
                       const std::string& scope, const std::string& item) {
    std::string path = item + "/" + std::string(sub.name);
    std::string kind_name(r.kind);
    std::string suffix = capitalize(sub.name);
    if (sub.name == "portforward") suffix = "Portforward";
    // The kind of the subresource's body: the parent's for status/log/finalize.
    api::GroupVersion gvk_gv{r.group, r.version};
    std::string_view gvk_kind = r.kind;
    if (!sub.kind.empty()) {
      gvk_gv = {sub.group, sub.version};
      gvk_kind = sub.kind;
    }
    const Type* body = kind_type(gvk_gv.group, gvk_gv.version, gvk_kind);
    bool connect = gvk_kind.ends_with("Options");
    auto has = [&](std::string_view verb) {
      for (std::string_view v : sub.verbs) {
        if (v == verb) return true;
      }
      return false;
    };
    auto make = [&](std::string method, std::string id, std::string desc, std::string action) {
      Op o;
      o.method = std::move(method);
      o.operation_id = std::move(id);
      o.description = std::move(desc);
      o.action = std::move(action);
      o.gvk_gv = gvk_gv;
      o.gvk_kind = gvk_kind;
      return o;
    };
    if (connect) {
      const std::vector<Param>* params = sub.name == "exec"     ? &kExecParams
                                         : sub.name == "attach" ? &kAttachParams
                                                                : &kPortForwardParams;
      for (std::string_view verb : sub.verbs) {
        std::string method = verb == "create" ? "post" : "get";
        Op o = make(method, "connect" + gv + capitalize(method) + scope + kind_name + suffix,
                    "connect " + capitalize(method) + " requests to " + std::string(sub.name) +
                        " of " + kind_name,
                    "connect");
        o.params = params;
        o.responses = responses({{"200", "OK"}}, nullptr, {});
        add_op(path, r.namespaced, true, std::move(o));
      }
      return;
    }
    if (sub.name == "log") {
      Op o = make("get", "read" + gv + scope + kind_name + "Log",
                  "read log of the specified " + kind_name, "get");
      o.params = &kLogParams;
      o.responses = responses({{"200", "OK"}}, nullptr, {});
      add_op(path, r.namespaced, true, std::move(o));
      return;
    }
    if (body == nullptr) {
      throw std::logic_error("openapi: no schema for subresource " + std::string(r.plural) + "/" +
                             std::string(sub.name));
    }
    std::string what = std::string(sub.name) + " of the specified " + kind_name;
    if (has("get")) {
      Op o = make("get", "read" + gv + scope + kind_name + suffix, "read " + what, "get");
      o.responses = responses({{"200", "OK"}}, body, kObjectMediaTypes);
      add_op(path, r.namespaced, true, std::move(o));
    }
    if (has("update")) {
      Op o = make("put", "replace" + gv + scope + kind_name + suffix, "replace " + what, "put");
      o.params = &kWriteParams;
      o.body = body;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}}, body, kObjectMediaTypes);
      add_op(path, r.namespaced, true, std::move(o));
    }
    if (has("patch")) {
      Op o = make("patch", "patch" + gv + scope + kind_name + suffix, "partially update " + what,
                  "patch");
      o.params = &kPatchParams;
      o.body = &meta("Patch");
      o.patch = true;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}}, body, kObjectMediaTypes);
      add_op(path, r.namespaced, true, std::move(o));
    }
    if (has("create")) {
      Op o = make("post", "create" + gv + scope + kind_name + suffix,
                  "create " + std::string(sub.name) + " of a " + kind_name, "post");
      o.params = &kWriteParams;
      o.body = body;
      o.responses = responses({{"200", "OK"}, {"201", "Created"}, {"202", "Accepted"}}, body,
                              kObjectMediaTypes);
      add_op(path, r.namespaced, true, std::move(o));
    }
  }

  bool v3_;
  std::string tag_;
  std::map<std::string, json::object> schemas_;  // sorted by name
  std::map<std::string, json::object> paths_;    // sorted by path
};

struct Documents {
  struct V3 {
    std::string group, version, path, text, hash;
  };
  std::vector<V3> v3;
  std::string v2;
  json::value index;

  Documents() {
    json::object paths;
    Generator v2_gen(false);
    for (const api::GroupVersion& gv : api::group_versions()) {
      Generator gen(true);
      gen.add_resources(gv.group, gv.version);
      v2_gen.add_resources(gv.group, gv.version);
      V3 doc;
      doc.group = std::string(gv.group);
      doc.version = std::string(gv.version);
      doc.path = gv_path(gv.group, gv.version);
      doc.text = json::serialize(gen.document());
      doc.hash = upper_hex_sha512(doc.text);
      paths[doc.path] =
          json::object{{"serverRelativeURL", "/openapi/v3/" + doc.path + "?hash=" + doc.hash}};
      v3.push_back(std::move(doc));
    }
    v2 = json::serialize(v2_gen.document());
    index = json::object{{"paths", std::move(paths)}};
  }

  const V3* find(std::string_view group, std::string_view version) const {
    for (const V3& d : v3) {
      if (d.group == group && d.version == version) return &d;
    }
    return nullptr;
  }
};

const Documents& documents() {
  static const Documents kDocs;
  return kDocs;
}

}  // namespace

json::value openapi_v3_index() { return documents().index; }

const std::string* openapi_v3_document(std::string_view group, std::string_view version) {
  const Documents::V3* d = documents().find(group, version);
  return d == nullptr ? nullptr : &d->text;
}

std::string_view openapi_v3_hash(std::string_view group, std::string_view version) {
  const Documents::V3* d = documents().find(group, version);
  return d == nullptr ? std::string_view() : std::string_view(d->hash);
}

const std::string& openapi_v2_document() { return documents().v2; }

}  // namespace podwarp::schema
