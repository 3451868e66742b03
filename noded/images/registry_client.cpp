#include "images/registry_client.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include "images/digest.h"
#include "podwarp/json.h"
#include "podwarp/log.h"

namespace podwarp::images {

namespace {

constexpr int kMaxRedirects = 5;
constexpr std::uint64_t kMaxConfigBytes = 16u << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string percent_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// "host[:port]" of an absolute URL, or "" when it does not parse.
std::string url_authority(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return {};
  return std::string(u->encoded_host_and_port());
}

std::string excerpt(std::string_view body) {
  std::string s(body.substr(0, 300));
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Maps a non-2xx reply to an error naming what was asked for.
Error http_error(const HttpResponse& r, std::string_view what) {
  ErrorKind kind = ErrorKind::kRegistry;
  if (r.status == 404) kind = ErrorKind::kNotFound;
  if (r.status == 401 || r.status == 403) kind = ErrorKind::kUnauthorized;
  std::string msg = fmt::format("{}: HTTP {}", what, r.status);
  if (!r.body.empty()) msg += ": " + excerpt(r.body);
  return Error{kind, std::move(msg)};
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

bool is_insecure_registry(std::string_view host, const std::vector<std::string>& configured) {
  for (const auto& c : configured) {
    if (c == host) return true;
  }
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    auto close = name.find(']');
    name = close == std::string_view::npos ? name : name.substr(1, close - 1);
  } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  for (const auto& c : configured) {
    if (c == name) return true;
  }
  if (name == "localhost" || name == "::1") return true;
  in_addr a{};
  std::string n(name);
  if (inet_pton(AF_INET, n.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

std::vector<AuthChallenge> parse_www_authenticate(std::string_view h) {
  std::vector<AuthChallenge> out;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  auto is_token_char = [](char c) {
    return c != ' ' && c != '\t' && c != ',' && c != '=' && c != '"';
  };
  auto read_token = [&] {
    std::size_t start = i;
    while (i < h.size() && is_token_char(h[i])) ++i;
    return h.substr(start, i - start);
  };
  skip_ws();
  while (i < h.size()) {
    std::string_view scheme = read_token();
    if (scheme.empty()) {
      ++i;  // stray '=' or quote: skip it
      skip_ws();
      continue;
    }
    AuthChallenge ch;
    ch.scheme = lower(scheme);
    for (;;) {
      skip_ws();
      std::size_t mark = i;
      std::string_view name = read_token();
      std::size_t j = i;
      while (j < h.size() && (h[j] == ' ' || h[j] == '\t')) ++j;
      if (name.empty() || j >= h.size() || h[j] != '=') {
        i = mark;  // the next challenge's scheme (or the end)
        break;
      }
      i = j + 1;
      while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;  // closing quote
      } else {
        value = std::string(read_token());
      }
      ch.params[lower(name)] = std::move(value);
    }
    out.push_back(std::move(ch));
    skip_ws();
  }
  return out;
}

RegistryClient::RegistryClient(HttpTransport& transport, RegistryOptions options)
    : transport_(transport), options_(std::move(options)) {}

std::string RegistryClient::base_url(std::string_view host) const {
  return fmt::format("{}://{}", is_insecure_registry(host, options_.insecure_registries) ? "http" : "https",
                     host);
}

Awaitable<Result<std::string>> RegistryClient::fetch_token(std::string host, AuthChallenge ch,
                                                           std::string default_scope) {
  std::string realm = ch.params["realm"];
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    co_return fail(ErrorKind::kUnauthorized,
                   fmt::format("registry {}: Bearer challenge without a usable realm \"{}\"", host,
                               realm));
  }
  std::string url = realm;
  char sep = realm.find('?') == std::string::npos ? '?' : '&';
  if (auto it = ch.params.find("service"); it != ch.params.end()) {
    url += fmt::format("{}service={}", sep, percent_encode(it->second));
    sep = '&';
  }
  std::string scope = ch.params.count("scope") ? ch.params["scope"] : default_scope;
  if (!scope.empty()) url += fmt::format("{}scope={}", sep, percent_encode(scope));
  HttpRequest req;
  req.url = url;
  req.headers.emplace_back("Accept", "application/json");
  if (auto c = options_.credentials.find(host); c != options_.credentials.end()) {
    req.headers.emplace_back("Authorization",
                             "Basic " + base64(c->second.username + ":" + c->second.password));
  }
  BodySink no_sink;
  auto r = co_await transport_.fetch(std::move(req), no_sink);
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->status != 200) {
    Error e = http_error(*r, fmt::format("get token from {}", realm));
    if (r->status == 401 || r->status == 403) e.kind = ErrorKind::kUnauthorized;
    co_return std::unexpected(std::move(e));
  }
  auto v = parse_json(r->body, 16);
  if (!v) co_return fail(ErrorKind::kUnauthorized, "token reply from " + realm + ": " + v.error());
  std::string token(get_string(*v, {"token"}));
  if (token.empty()) token = std::string(get_string(*v, {"access_token"}));
  if (token.empty()) co_return fail(ErrorKind::kUnauthorized, "token reply from " + realm + " has no token");
  co_return token;
}

Awaitable<Result<HttpResponse>> RegistryClient::send(
    Reference ref, std::string url, std::vector<std::pair<std::string, std::string>> headers,
    BodySink sink) {
  const std::string host = ref.registry_host();
  const std::string key = host + "/" + ref.path;
  bool answered_challenge = false;
  for (int redirects = 0;;) {
    HttpRequest req;
    req.url = url;
    req.headers = headers;
    const bool to_registry = url_authority(url) == host;
    if (to_registry) {
      if (auto a = authorization_.find(key); a != authorization_.end()) {
        req.headers.emplace_back("Authorization", a->second);
      }
    }
    auto r = co_await transport_.fetch(std::move(req), sink);
    if (!r) co_return r;
    if (r->status == 401 && to_registry && !answered_challenge) {
      answered_challenge = true;
      std::vector<AuthChallenge> challenges;
      for (auto v : r->header_values("www-authenticate")) {
        auto parsed = parse_www_authenticate(v);
        challenges.insert(challenges.end(), parsed.begin(), parsed.end());
      }
      auto bearer = std::find_if(challenges.begin(), challenges.end(),
                                 [](const AuthChallenge& c) { return c.scheme == "bearer"; });
      if (bearer != challenges.end()) {
        const std::string scope = fmt::format("repository:{}:pull", ref.path);
        const AuthChallenge challenge = *bearer;
        auto token = co_await fetch_token(host, challenge, scope);
        if (!token) co_return std::unexpected(std::move(token.error()));
        authorization_[key] = "Bearer " + *token;
        continue;
      }
      auto basic = std::find_if(challenges.begin(), challenges.end(),
                                [](const AuthChallenge& c) { return c.scheme == "basic"; });
      auto creds = options_.credentials.find(host);
      if (basic != challenges.end() && creds != options_.credentials.end()) {
        authorization_[key] =
            "Basic " + base64(creds->second.username + ":" + creds->second.password);
        continue;
      }
      co_return r;
    }
    if (is_redirect(r->status)) {
      if (++redirects > kMaxRedirects) {
        co_return fail(ErrorKind::kRegistry, fmt::format("GET {}: too many redirects", url));
      }
      std::string_view location = r->header("location");
      auto base = boost::urls::parse_uri(url);
      auto loc = boost::urls::parse_uri_reference(location);
      if (!base || !loc || location.empty()) {
        co_return fail(ErrorKind::kRegistry,
                       fmt::format("GET {}: redirect to a bad Location \"{}\"", url, location));
      }
      boost::urls::url next;
      auto resolved = boost::urls::resolve(*base, *loc, next);
      if (!resolved || (next.scheme() != "https" && next.scheme() != "http")) {
        co_return fail(ErrorKind::kRegistry,
                       fmt::format("GET {}: redirect to a bad Location \"{}\"", url, location));
      }
      url = std::string(next.buffer());
      continue;
    }
    co_return r;
  }
}

Awaitable<Result<FetchedManifest>> RegistryClient::get_manifest(Reference ref,
                                                                std::string tag_or_digest) {
  std::string url =
      fmt::format("{}/v2/{}/manifests/{}", base_url(ref.registry_host()), ref.path, tag_or_digest);
  std::string what = fmt::format("manifest {}:{}", ref.repository(), tag_or_digest);
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Accept", std::string(media_type::kManifestAccept));
  std::string body;
  const std::uint64_t limit = options_.max_manifest_bytes;
  BodySink sink = [&body, limit, what](std::string_view chunk) -> Result<void> {
    if (body.size() + chunk.size() > limit) {
      return fail(ErrorKind::kBadContent, fmt::format("{}: larger than {} bytes", what, limit));
    }
    body.append(chunk);
    return {};
  };
  auto r = co_await send(ref, url, std::move(headers), sink);
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->status != 200) co_return std::unexpected(http_error(*r, "GET " + what));
  FetchedManifest m;
  m.body = std::move(body);
  m.content_type = std::string(r->header("content-type"));
  m.digest = sha256_digest(m.body);
  if (tag_or_digest.starts_with("sha256:") && m.digest != tag_or_digest) {
    co_return fail(ErrorKind::kDigestMismatch,
                   fmt::format("{}: digest mismatch: got {}", what, m.digest));
  }
  std::string_view header_digest = r->header("docker-content-digest");
  if (header_digest.starts_with("sha256:") && header_digest != m.digest) {
    co_return fail(ErrorKind::kDigestMismatch,
                   fmt::format("{}: Docker-Content-Digest {} but the body hashes to {}", what,
                               header_digest, m.digest));
  }
  co_return m;
}

Awaitable<Result<void>> RegistryClient::get_blob(Reference ref, Descriptor blob,
                                                 std::filesystem::path dest) {
  std::string url =
      fmt::format("{}/v2/{}/blobs/{}", base_url(ref.registry_host()), ref.path, blob.digest);
  auto writer = VerifyingWriter::create(dest, blob.digest, blob.size);
  if (!writer) co_return std::unexpected(std::move(writer.error()));
  VerifyingWriter w = std::move(*writer);
  BodySink sink = [&w](std::string_view chunk) { return w.write(chunk); };
  std::vector<std::pair<std::string, std::string>> headers;
  auto r = co_await send(ref, url, std::move(headers), sink);
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->status != 200) {
    co_return std::unexpected(
        http_error(*r, fmt::format("GET blob {} of {}", blob.digest, ref.repository())));
  }
  co_return w.commit();
}

Awaitable<Result<std::string>> RegistryClient::get_blob_bytes(Reference ref, Descriptor blob) {
  if (blob.size > kMaxConfigBytes) {
    co_return fail(ErrorKind::kBadContent,
                   fmt::format("blob {}: {} bytes is too large", blob.digest, blob.size));
  }
  std::string url =
      fmt::format("{}/v2/{}/blobs/{}", base_url(ref.registry_host()), ref.path, blob.digest);
  std::string body;
  const std::uint64_t limit = blob.size;
  const std::string digest = blob.digest;
  BodySink sink = [&body, limit, digest](std::string_view chunk) -> Result<void> {
    if (body.size() + chunk.size() > limit) {
      return fail(ErrorKind::kDigestMismatch,
                  fmt::format("blob {}: more than the expected {} bytes", digest, limit));
    }
    body.append(chunk);
    return {};
  };
  std::vector<std::pair<std::string, std::string>> headers;
  auto r = co_await send(ref, url, std::move(headers), sink);
  if (!r) co_return std::unexpected(std::move(r.error()));
  if (r->status != 200) {
    co_return std::unexpected(
        http_error(*r, fmt::format("GET blob {} of {}", blob.digest, ref.repository())));
  }
  if (std::string got = sha256_digest(body); got != blob.digest) {
    co_return fail(ErrorKind::kDigestMismatch,
                   fmt::format("blob {}: digest mismatch: got {}", blob.digest, got));
  }
  co_return body;
}

std::string_view HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

std::vector<std::string_view> HttpResponse::header_values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

}  // namespace podwarp::images
