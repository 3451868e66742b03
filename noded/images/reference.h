// Image references, parsed and normalized as upstream docker does (distribution/reference's
// ParseNormalizedNamed + TagNameOnly): "busybox" -> "docker.io/library/busybox:latest",
// "quay.io/a/b@sha256:..." keeps its digest, "localhost:5000/x:1" keeps host and port.
// Pure functions, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "images/error.h"

namespace podwarp::images {

struct Reference {
  std::string domain;  // "docker.io", "127.0.0.1:5000", "[::1]:5000"
  std::string path;    // "library/busybox"
  std::string tag;     // as given; "" when the reference had none
  std::string digest;  // "sha256:<64 hex>" or ""

  // "docker.io/library/busybox"
  std::string repository() const { return domain + "/" + path; }
  // The tag to show and to pull: the given one, "latest" when neither tag nor digest was given,
  // "" for a digest-only reference.
  std::string effective_tag() const;
  // The canonical string: "docker.io/library/busybox:latest", "repo@sha256:...",
  // "repo:tag@sha256:...". Store index keys are this string.
  std::string string() const;
  // What to ask the registry for: the digest when there is one, else the effective tag.
  std::string manifest_reference() const { return digest.empty() ? effective_tag() : digest; }
  // The host to connect to: docker.io is served by registry-1.docker.io.
  std::string registry_host() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

// Parses and normalizes. Errors (kind kInvalidReference) read like docker's:
// "invalid reference format: repository name (library/Busybox) must be lowercase".
Result<Reference> parse_reference(std::string_view text);

// True for "sha256:<64 hex>" (what OCI descriptors and image IDs hold).
bool is_sha256_digest(std::string_view s);

}  // namespace podwarp::images
