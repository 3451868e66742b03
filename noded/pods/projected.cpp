#include "pods/projected.h"

#include <fmt/format.h>

#include "pods/volumes.h"

namespace podwarp::noded::pods {

namespace {

using Payload = std::map<std::string, FileProjection>;

std::expected<std::optional<std::map<std::string, std::string>>, std::string> source_data(
    const PodDef& pod, bool secret, const std::string& name, const ObjectLookup& lookup) {
  auto obj = lookup ? lookup(secret ? "Secret" : "ConfigMap", pod.ns, name) : std::nullopt;
  if (!obj) return std::nullopt;
  std::map<std::string, std::string> data;
  auto add = [&](const char* field, bool b64) -> std::expected<void, std::string> {
    auto* d = find_path(*obj, {field});
    if (d == nullptr || !d->is_object()) return {};
    for (const auto& kv : d->as_object()) {
      if (!kv.value().is_string()) continue;
      std::string val(kv.value().as_string());
      if (b64) {
        auto dec = base64_decode(val);
        if (!dec) return std::unexpected(fmt::format("key {}: {}", std::string(kv.key()), dec.error()));
        val = std::move(*dec);
      }
      data[std::string(kv.key())] = std::move(val);
    }
    return {};
  };
  if (secret) {
    if (auto e = add("data", true); !e) return std::unexpected(e.error());
    if (auto e = add("stringData", false); !e) return std::unexpected(e.error());
  } else {
    if (auto e = add("data", false); !e) return std::unexpected(e.error());
    if (auto e = add("binaryData", true); !e) return std::unexpected(e.error());
  }
  return data;
}

std::expected<void, std::string> add_keys(const PodDef& pod, const ProjectionSource& s, int mode,
                                          const ObjectLookup& lookup, Payload& out) {
  bool secret = s.kind == ProjectionSource::Kind::kSecret;
  auto data = source_data(pod, secret, s.name, lookup);
  if (!data) return std::unexpected(data.error());
  if (!*data) {
    if (s.optional) return {};
    return std::unexpected(fmt::format("{} \"{}\" not found", secret ? "secret" : "configmap", s.name));
  }
  const auto& d = **data;
  if (s.items.empty()) {
    for (const auto& [k, v] : d) out[k] = {v, mode};
    return {};
  }
  for (const auto& it : s.items) {
    auto f = d.find(it.key);
    if (f == d.end()) {
      if (s.optional) continue;
      return std::unexpected(secret ? fmt::format("references non-existent secret key: {}", it.key)
                                    : fmt::format("configmap references non-existent config key: {}", it.key));
    }
    out[it.path] = {f->second, it.mode.value_or(mode)};
  }
  return {};
}

std::expected<void, std::string> add_downward(const PodDef& pod, const ProjectionSource& s, int mode,
                                              const VolumeInputs& in, Payload& out) {
  for (const auto& it : s.downward) {
    std::expected<std::string, std::string> v;
    if (!it.field_path.empty()) {
      v = pod_field_value(pod.pod, it.field_path, in.downward);
    } else {
      const json::value* c = find_container(pod.pod, it.container_name);
      if (c == nullptr) return std::unexpected(fmt::format("container {} not found", it.container_name));
      v = container_resource_value(*c, it.resource, it.divisor.is_null() ? nullptr : &it.divisor, in.downward);
    }
    if (!v) return std::unexpected(v.error());
    out[it.path] = {std::move(*v), it.mode.value_or(mode)};
  }
  return {};
}

}  // namespace

std::expected<Payload, std::string> volume_payload(const PodDef& pod, const VolumeDef& v,
                                                   const ObjectLookup& lookup,
                                                   const VolumeInputs& in) {
  Payload out;
  for (const auto& s : v.sources) {
    std::expected<void, std::string> r;
    switch (s.kind) {
      case ProjectionSource::Kind::kConfigMap:
      case ProjectionSource::Kind::kSecret:
        r = add_keys(pod, s, v.default_mode, lookup, out);
        break;
      case ProjectionSource::Kind::kDownwardAPI:
        r = add_downward(pod, s, v.default_mode, in, out);
        break;
      case ProjectionSource::Kind::kServiceAccountToken: {
        auto t = in.tokens.find(token_key(v.name, s.path));
        if (t == in.tokens.end())
          return std::unexpected(fmt::format("no token for serviceAccountToken path {}", s.path));
        out[s.path] = {t->second, v.default_mode};
        break;
      }
    }
    if (!r) return std::unexpected(r.error());
  }
  return out;
}

}  // namespace podwarp::noded::pods
