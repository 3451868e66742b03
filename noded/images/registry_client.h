// An OCI distribution v2 client: manifests and blobs of one registry repository, with the
// Bearer token challenge flow (401 + WWW-Authenticate: Bearer realm,service,scope -> GET the
// token -> retry) and Basic auth when credentials are configured. HTTPS by default; plain HTTP
// for insecure registries (configured "host:port" entries, and localhost, 127.0.0.0/8 and ::1
// always). Redirects (blob storage backends) are followed without the Authorization header when
// they leave the registry host.
//
// Threading: as the transport (one thread; concurrent coroutines are fine).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "images/http_transport.h"
#include "images/manifest.h"
#include "images/reference.h"

namespace podwarp::images {

struct Credentials {
  std::string username;
  std::string password;
};

struct RegistryOptions {
  // "host:port" (or "host") entries served over plain HTTP.
  std::vector<std::string> insecure_registries;
  // Credentials by registry host ("registry-1.docker.io", "127.0.0.1:5000").
  std::map<std::string, Credentials> credentials;
  std::uint64_t max_manifest_bytes = 4u << 20;
};

// True when `host` ("host[:port]") is served over plain HTTP: listed, or loopback.
bool is_insecure_registry(std::string_view host, const std::vector<std::string>& configured);

// One challenge of a WWW-Authenticate header: Bearer realm="...",service="...",scope="...".
struct AuthChallenge {
  std::string scheme;  // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // lowercased names
};
// Parses a WWW-Authenticate value (several challenges may be comma-separated; quoted strings
// with escapes). Malformed input yields what could be parsed, never a crash.
std::vector<AuthChallenge> parse_www_authenticate(std::string_view header);

struct FetchedManifest {
  std::string body;
  std::string content_type;
  std::string digest;  // sha256 of body (verified against the reference when it is a digest)
};

class RegistryClient {
 public:
  RegistryClient(HttpTransport& transport, RegistryOptions options);

  // GET /v2/<path>/manifests/<tag-or-digest>. A digest reference is verified against the body.
  Awaitable<Result<FetchedManifest>> get_manifest(Reference ref, std::string tag_or_digest);
  // GET /v2/<path>/blobs/<digest> streamed into `dest` through a VerifyingWriter: on a digest or
  // size mismatch nothing is left at dest and the error names the digest.
  Awaitable<Result<void>> get_blob(Reference ref, Descriptor blob, std::filesystem::path dest);
  // GET a small blob (config) into memory, verified.
  Awaitable<Result<std::string>> get_blob_bytes(Reference ref, Descriptor blob);

  // "https://host" or "http://host" for a registry host.
  std::string base_url(std::string_view host) const;

 private:
  // One request with auth challenges answered and redirects followed.
  Awaitable<Result<HttpResponse>> send(Reference ref, std::string url,
                                       std::vector<std::pair<std::string, std::string>> headers,
                                       BodySink sink);
  Awaitable<Result<std::string>> fetch_token(std::string host, AuthChallenge challenge,
                                             std::string default_scope);

  HttpTransport& transport_;
  RegistryOptions options_;
  // Authorization header values by "host/path" (repository scope).
  std::map<std::string, std::string> authorization_;
};

}  // namespace podwarp::images
