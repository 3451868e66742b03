// Registry credentials from imagePullSecrets, matched to an image as the kubelet's credential
// keyring does (pkg/credentialprovider: BasicDockerKeyring, URLsMatch, isDefaultRegistryMatch):
//
//  * Secrets of type kubernetes.io/dockerconfigjson (key .dockerconfigjson: {"auths": {...}})
//    and the legacy kubernetes.io/dockercfg (key .dockercfg: {...} directly). Each entry has
//    username/password, or auth = base64("user:pass") which takes precedence.
//  * An entry key is a schemeless URL: "https://" / "http://" is stripped, "/v1/" and "/v2/"
//    path prefixes are dropped ("https://index.docker.io/v1/" is "index.docker.io").
//  * An image's repository ("127.0.0.1:5000/team/app", "docker.io/library/busybox") matches a
//    key when the ports are equal, the host has the same number of dot-separated parts, each
//    part matches as a glob ("*.example.com"), and the key's path is a prefix of the image path.
//    Keys are tried most specific first (reverse-sorted); every match is returned in order,
//    Secrets in spec.imagePullSecrets order. Docker Hub images also match an "index.docker.io"
//    entry.
// Pure; bad input (undecodable secret) is skipped, never a crash.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "images/registry_client.h"
#include "podwarp/json.h"

namespace podwarp::images {

class DockerKeyring {
 public:
  // Adds the entries of one Secret object (JSON as from the API; data base64-encoded).
  // Returns false when the secret carries no usable docker config.
  bool add_secret(const json::value& secret);
  // Adds a docker config map ({"registry": {"username":..,"password":..,"auth":..}}).
  void add_config(const json::value& auths);

  // Credentials for an image repository (normalized, without tag/digest), best match first.
  std::vector<Credentials> lookup(std::string_view repository) const;

 private:
  struct Entry {
    std::string key;  // host[:port][/path]
    Credentials creds;
  };
  std::vector<Entry> entries_;
};

// base64 (standard alphabet, padding optional) -> bytes; nullopt when malformed.
std::optional<std::string> decode_base64(std::string_view in);

}  // namespace podwarp::images
