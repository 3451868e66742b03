#include "images/docker_keyring.h"
#include "podwarp/kubeconfig.h"

#include <fnmatch.h>

#include <algorithm>

namespace podwarp::images {

std::optional<std::string> decode_base64(std::string_view in) {
  auto out = kubeconfig::base64_decode(in);
  if (!out) return std::nullopt;
  return std::move(*out);
}

namespace {

// "https://host:port/v1/path" -> "host:port/path" (the keyring's key).
std::string normalize_key(std::string_view loc) {
  for (std::string_view scheme : {"https://", "http://"})
    if (loc.starts_with(scheme)) loc.remove_prefix(scheme.size());
  auto slash = loc.find('/');
  std::string host(loc.substr(0, slash));
  std::string path = slash == std::string_view::npos ? "" : std::string(loc.substr(slash));
  if (path.starts_with("/v2/") || path.starts_with("/v1/")) path = path.substr(3);
  if (path == "/" || path.empty()) return host;
  return host + path;
}

struct Split {
  std::vector<std::string> host_parts;
  std::string port, path;
};

Split split(std::string_view url) {
  Split s;
  auto slash = url.find('/');
  std::string_view hostport = url.substr(0, slash);
  if (slash != std::string_view::npos) s.path = std::string(url.substr(slash));
  auto colon = hostport.rfind(':');
  std::string_view host = hostport;
  if (colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    s.port = std::string(hostport.substr(colon + 1));
  }
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string_view::npos) j = host.size();
    s.host_parts.emplace_back(host.substr(i, j - i));
    i = j + 1;
  }
  return s;
}

bool urls_match(std::string_view glob, std::string_view target) {
  Split g = split(glob), t = split(target);
  if (g.port != t.port) return false;
  if (g.host_parts.size() != t.host_parts.size()) return false;
  if (!t.path.starts_with(g.path)) return false;
  for (size_t i = 0; i < g.host_parts.size(); ++i)
    if (::fnmatch(g.host_parts[i].c_str(), t.host_parts[i].c_str(), 0) != 0) return false;
  return true;
}

bool is_default_registry(std::string_view image) {
  auto slash = image.find('/');
  std::string_view first = image.substr(0, slash);
  if (first.empty()) return false;
  if (slash == std::string_view::npos) return true;
  if (first == "docker.io" || first == "index.docker.io") return true;
  return first.find_first_of(".:") == std::string_view::npos && first != "localhost";
}

}  // namespace

void DockerKeyring::add_config(const json::value& auths) {
  if (!auths.is_object()) return;
  std::vector<Entry> added;
  for (const auto& kv : auths.as_object()) {
    const auto& e = kv.value();
    if (!e.is_object()) continue;
    Credentials c{std::string(get_string(e, {"username"})), std::string(get_string(e, {"password"}))};
    if (auto a = get_string(e, {"auth"}); !a.empty()) {
      auto dec = decode_base64(a);
      if (!dec) continue;
      auto colon = dec->find(':');
      if (colon == std::string::npos) continue;  // "unable to parse auth field"
      c = {dec->substr(0, colon), dec->substr(colon + 1)};
    }
    added.push_back({normalize_key(kv.key()), std::move(c)});
  }
  entries_.insert(entries_.end(), added.begin(), added.end());
}

bool DockerKeyring::add_secret(const json::value& secret) {
  auto type = get_string(secret, {"type"});
  auto raw = [&](std::string_view key) -> std::optional<std::string> {
    if (auto* d = find_path(secret, {"data", key}); d != nullptr && d->is_string())
      return decode_base64(d->as_string());
    if (auto* d = find_path(secret, {"stringData", key}); d != nullptr && d->is_string())
      return std::string(d->as_string());
    return std::nullopt;
  };
  if (type == "kubernetes.io/dockerconfigjson" || type.empty()) {
    if (auto r = raw(".dockerconfigjson")) {
      auto v = parse_json(*r, 16);
      if (!v) return false;
      auto* auths = find_path(*v, {"auths"});
      if (auths == nullptr) return false;
      add_config(*auths);
      return true;
    }
  }
  if (type == "kubernetes.io/dockercfg" || type.empty()) {
    if (auto r = raw(".dockercfg")) {
      auto v = parse_json(*r, 16);
      if (!v) return false;
      add_config(*v);
      return true;
    }
  }
  return false;
}

std::vector<Credentials> DockerKeyring::lookup(std::string_view repository) const {
  std::vector<std::string> keys;
  for (const auto& e : entries_) keys.push_back(e.key);
  std::sort(keys.begin(), keys.end(), std::greater<>());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::vector<Credentials> out;
  for (const auto& k : keys) {
    if (!urls_match(k, repository)) continue;
    for (const auto& e : entries_)
      if (e.key == k) out.push_back(e.creds);
  }
  if (out.empty() && is_default_registry(repository)) {
    for (const auto& e : entries_)
      if (e.key == "index.docker.io") out.push_back(e.creds);
  }
  return out;
}

}  // namespace podwarp::images
