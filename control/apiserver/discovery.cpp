#include "apiserver/discovery.h"

#include <fmt/format.h>
#include <openssl/sha.h>
#include <sys/utsname.h>

#include <ranges>

namespace podwarp::apiserver {

namespace {

constexpr std::string_view kAggregatedType =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
constexpr std::string_view kAggregatedTypeBeta =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

json::array verbs_of(const std::vector<std::string_view>& verbs) {
  json::array a;
  for (auto v : verbs) a.emplace_back(v);
  return a;
}

json::array strings(const std::vector<std::string_view>& xs) {
  json::array a;
  for (auto v : xs) a.emplace_back(v);
  return a;
}

// upstream: base64 of the first 8 bytes of sha256("<group>/<version>/<kind>") of the
// storage version; clients only compare it for equality.
std::string storage_version_hash(const api::Resource& r) {
  std::string in = fmt::format("{}/{}/{}", r.group, r.version, r.kind);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  static constexpr char kB64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (int i = 0; i < 6; i += 3) {
    unsigned v = (md[i] << 16) | (md[i + 1] << 8) | md[i + 2];
    for (int k = 3; k >= 0; --k) out += kB64[(v >> (6 * k)) & 63];
  }
  unsigned v = (md[6] << 16) | (md[7] << 8);
  out += kB64[(v >> 18) & 63];
  out += kB64[(v >> 12) & 63];
  out += kB64[(v >> 6) & 63];
  out += '=';
  return out;
}

json::object resource_list(std::string_view group, std::string_view version) {
  json::array resources;
  for (const api::Resource& r : api::resources()) {
    if (r.group != group || r.version != version) continue;
    json::object o{{"name", r.plural},
                   {"singularName", r.singular},
                   {"namespaced", r.namespaced},
                   {"kind", r.kind},
                   {"verbs", verbs_of(r.verbs)}};
    if (r.stored) o["storageVersionHash"] = storage_version_hash(r);
    if (!r.short_names.empty()) o["shortNames"] = strings(r.short_names);
    if (!r.categories.empty()) o["categories"] = strings(r.categories);
    resources.push_back(std::move(o));
    for (const api::Subresource& s : r.subresources) {
      json::object so{{"name", fmt::format("{}/{}", r.plural, s.name)},
                      {"singularName", ""},
                      {"namespaced", r.namespaced},
                      {"kind", s.kind.empty() ? r.kind : s.kind},
                      {"verbs", verbs_of(s.verbs)}};
      if (!s.group.empty()) so["group"] = s.group;
      if (!s.version.empty() && !s.kind.empty()) so["version"] = s.version;
      resources.push_back(std::move(so));
    }
  }
  std::string gv = group.empty() ? std::string(version) : fmt::format("{}/{}", group, version);
  return json::object{{"kind", "APIResourceList"},
                      {"apiVersion", "v1"},
                      {"groupVersion", gv},
                      {"resources", std::move(resources)}};
}

json::object discovery_group(std::string_view group) {
  json::array versions;
  for (const api::GroupVersion& gv : api::group_versions()) {
    if (gv.group != group) continue;
    json::array resources;
    for (const api::Resource& r : api::resources()) {
      if (r.group != gv.group || r.version != gv.version) continue;
      json::object o{{"resource", r.plural},
                     {"responseKind",
                      json::object{{"group", r.group}, {"version", r.version}, {"kind", r.kind}}},
                     {"scope", r.namespaced ? "Namespaced" : "Cluster"},
                     {"singularResource", r.singular},
                     {"verbs", verbs_of(r.verbs)}};
      if (!r.short_names.empty()) o["shortNames"] = strings(r.short_names);
      if (!r.categories.empty()) o["categories"] = strings(r.categories);
      if (!r.subresources.empty()) {
        json::array subs;
        for (const api::Subresource& s : r.subresources) {
          json::object so{{"subresource", s.name}, {"verbs", verbs_of(s.verbs)}};
          if (!s.kind.empty()) {
            so["responseKind"] = json::object{{"group", s.group}, {"version", s.version}, {"kind", s.kind}};
          } else {
            so["responseKind"] =
                json::object{{"group", r.group}, {"version", r.version}, {"kind", r.kind}};
          }
          subs.push_back(std::move(so));
        }
        o["subresources"] = std::move(subs);
      }
      resources.push_back(std::move(o));
    }
    versions.push_back(json::object{{"version", gv.version},
                                    {"resources", std::move(resources)},
                                    {"freshness", "Current"}});
  }
  json::object meta{{"creationTimestamp", nullptr}};
  if (!group.empty()) meta["name"] = group;
  return json::object{{"metadata", std::move(meta)}, {"versions", std::move(versions)}};
}

json::object aggregated(bool core) {
  json::array items;
  if (core) {
    items.push_back(discovery_group(""));
  } else {
    std::vector<std::string_view> seen;
    for (const api::GroupVersion& gv : api::group_versions()) {
      if (gv.group.empty() || std::ranges::find(seen, gv.group) != seen.end()) continue;
      seen.push_back(gv.group);
      items.push_back(discovery_group(gv.group));
    }
  }
  return json::object{{"kind", "APIGroupDiscoveryList"},
                      {"apiVersion", "apidiscovery.k8s.io/v2"},
                      {"metadata", json::object()},
                      {"items", std::move(items)}};
}

json::object group_object(std::string_view group) {
  json::array versions;
  for (const api::GroupVersion& gv : api::group_versions()) {
    if (gv.group != group) continue;
    versions.push_back(json::object{{"groupVersion", fmt::format("{}/{}", group, gv.version)},
                                    {"version", gv.version}});
  }
  json::object preferred = versions.empty() ? json::object() : versions.front().as_object();
  return json::object{{"name", group}, {"versions", std::move(versions)},
                      {"preferredVersion", std::move(preferred)}};
}

// Which discovery form the client asked for; the aggregated one wins when listed first.
std::string_view aggregated_type(std::string_view accept) {
  for (auto part : std::views::split(accept, ',')) {
    std::string_view media(part.begin(), part.end());
    if (media.find("as=APIGroupDiscoveryList") != std::string_view::npos &&
        media.find("g=apidiscovery.k8s.io") != std::string_view::npos) {
      if (media.find("v=v2beta1") != std::string_view::npos) return kAggregatedTypeBeta;
      if (media.find("v=v2") != std::string_view::npos) return kAggregatedType;
    }
    std::string_view trimmed = media.substr(0, media.find(';'));
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
    if (trimmed == "application/json" && media.find("as=") == std::string_view::npos) return {};
  }
  return {};
}

Response json_response(const json::value& v, std::string_view content_type = "application/json") {
  Response r = Response::json(200, json::serialize(v));
  r.content_type = std::string(content_type);
  return r;
}

}  // namespace

std::string version_json() {
  static const std::string kVersion = [] {
    utsname u{};
    uname(&u);
    json::object v{{"major", "1"},
                   {"minor", "32"},
                   {"gitVersion", "v1.32.0-podwarp." PODWARP_VERSION},
                   {"gitCommit", "podwarp"},
                   {"gitTreeState", "clean"},
                   {"buildDate", "2026-11-21T00:00:00Z"},
                   {"goVersion", "none (C++23)"},
                   {"compiler", "g++"},
                   {"platform", fmt::format("linux/{}", std::string_view(u.machine) == "x86_64"
                                                            ? "amd64"
                                                            : u.machine)}};
    return json::serialize(v);
  }();
  return kVersion;
}

std::optional<Response> discovery(const Request& req, const DiscoveryOptions& opts) {
  std::string_view path = req.path;
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/version") return Response::json(200, version_json());
  if (path == "/api") {
    if (auto t = aggregated_type(req.accept); !t.empty()) return json_response(aggregated(true), t);
    return json_response(json::object{
        {"kind", "APIVersions"},
        {"versions", json::array{"v1"}},
        {"serverAddressByClientCIDRs",
         json::array{json::object{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", opts.server_address}}}}});
  }
  if (path == "/apis") {
    if (auto t = aggregated_type(req.accept); !t.empty()) {
      return json_response(aggregated(false), t);
    }
    json::array groups;
    std::vector<std::string_view> seen;
    for (const api::GroupVersion& gv : api::group_versions()) {
      if (gv.group.empty() || std::ranges::find(seen, gv.group) != seen.end()) continue;
      seen.push_back(gv.group);
      groups.push_back(group_object(gv.group));
    }
    return json_response(
        json::object{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(groups)}});
  }
  if (path == "/api/v1") return json_response(resource_list("", "v1"));
  if (path.starts_with("/apis/")) {
    std::string_view rest = path.substr(6);
    auto slash = rest.find('/');
    std::string_view group = rest.substr(0, slash);
    if (slash == std::string_view::npos) {
      for (const api::GroupVersion& gv : api::group_versions()) {
        if (gv.group == group && !group.empty()) {
          json::object g = group_object(group);
          g["kind"] = "APIGroup";
          g["apiVersion"] = "v1";
          return json_response(g);
        }
      }
      return std::nullopt;
    }
    std::string_view version = rest.substr(slash + 1);
    if (version.find('/') != std::string_view::npos) return std::nullopt;
    for (const api::GroupVersion& gv : api::group_versions()) {
      if (gv.group == group && gv.version == version) {
        return json_response(resource_list(group, version));
      }
    }
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace podwarp::apiserver
