// The registry protocol (challenges, tokens, redirects, digest checks) over a fake HTTP layer:
// these tests exercise RegistryClient without sockets. The real transport is covered by the
// docker-registry integration test (store_integration_test.cpp).
#include "images/registry_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "images/digest.h"

namespace podwarp::images {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

struct FakeTransport : HttpTransport {
  std::function<HttpResponse(const HttpRequest&)> handler;
  std::vector<HttpRequest> requests;

  Awaitable<Result<HttpResponse>> fetch(HttpRequest req, BodySink sink) override {
    requests.push_back(req);
    HttpResponse r = handler(req);
    if (r.status == 200 && sink) {
      std::string body = std::move(r.body);
      r.body.clear();
      // Delivered in pieces, as a socket would.
      for (std::size_t off = 0; off < body.size(); off += 7) {
        if (auto s = sink(std::string_view(body).substr(off, 7)); !s) {
          co_return std::unexpected(s.error());
        }
      }
    }
    co_return r;
  }

  std::string auth_of(std::size_t i) const {
    for (const auto& [k, v] : requests.at(i).headers) {
      if (k == "Authorization") return v;
    }
    return "";
  }
};

HttpResponse reply(int status, std::string body = {},
                   std::vector<std::pair<std::string, std::string>> headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

std::string header(const HttpRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k == name) return v;
  }
  return "";
}

template <class T>
T run(asio::awaitable<T> aw) {
  asio::io_context ctx;
  std::optional<T> out;
  asio::co_spawn(ctx, std::move(aw), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
  ctx.run();
  return std::move(*out);
}

TEST(WwwAuthenticateTest, ParsesChallenges) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params["service"], "registry.docker.io");
  EXPECT_EQ(c[0].params["scope"], "repository:library/busybox:pull");

  auto two = parse_www_authenticate(R"(Basic realm="Registry Realm", BEARER Realm=tok , Scope="a \"b\"")");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].scheme, "basic");
  EXPECT_EQ(two[0].params["realm"], "Registry Realm");
  EXPECT_EQ(two[1].scheme, "bearer");
  EXPECT_EQ(two[1].params["realm"], "tok");
  EXPECT_EQ(two[1].params["scope"], "a \"b\"");

  for (std::string_view junk : {"", "=", ",,,", "\"", "Bearer realm=\"unterminated", "a=b=c",
                                "Bearer ,realm"}) {
    (void)parse_www_authenticate(junk);  // must not crash or hang
  }
}

TEST(RegistryClientTest, InsecureRegistries) {
  std::vector<std::string> none;
  EXPECT_TRUE(is_insecure_registry("127.0.0.1:5000", none));
  EXPECT_TRUE(is_insecure_registry("127.9.8.7", none));
  EXPECT_TRUE(is_insecure_registry("localhost:5000", none));
  EXPECT_TRUE(is_insecure_registry("[::1]:5000", none));
  EXPECT_FALSE(is_insecure_registry("10.0.0.1:5000", none));
  EXPECT_FALSE(is_insecure_registry("registry-1.docker.io", none));
  EXPECT_FALSE(is_insecure_registry("128.0.0.1", none));
  std::vector<std::string> conf{"myreg:5000", "other"};
  EXPECT_TRUE(is_insecure_registry("myreg:5000", conf));
  EXPECT_FALSE(is_insecure_registry("myreg:5001", conf));
  EXPECT_TRUE(is_insecure_registry("other:443", conf));
  FakeTransport t;
  RegistryClient c(t, RegistryOptions{.insecure_registries = conf});
  EXPECT_EQ(c.base_url("myreg:5000"), "http://myreg:5000");
  EXPECT_EQ(c.base_url("quay.io"), "https://quay.io");
}

class RegistryFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podwarp-regclient-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ref_ = *parse_reference("registry.example.com/team/app:1");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A registry with token auth: manifests and blobs need "Bearer T0K"; blobs redirect to a CDN.
  void serve(std::string blob_body) {
    t_.handler = [this, blob_body](const HttpRequest& req) -> HttpResponse {
      const std::string auth = header(req, "Authorization");
      if (req.url.starts_with("https://auth.example.com/token")) {
        ++token_requests_;
        if (req.url != "https://auth.example.com/token?service=registry.example.com&scope="
                       "repository%3Ateam%2Fapp%3Apull") {
          return reply(400, "bad token query: " + req.url);
        }
        return reply(200, R"({"token":"T0K","expires_in":300})");
      }
      if (req.url.starts_with("https://cdn.example.com/")) {
        if (!auth.empty()) return reply(400, "credentials leaked to the CDN");
        return reply(200, blob_body);
      }
      if (!req.url.starts_with("https://registry.example.com/v2/team/app/")) return reply(404);
      if (auth != "Bearer T0K") {
        return reply(401, R"({"errors":[{"code":"UNAUTHORIZED"}]})",
                     {{"www-authenticate",
                       R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull")"}});
      }
      if (req.url.ends_with("/manifests/1")) {
        if (header(req, "Accept").find("application/vnd.oci.image.index.v1+json") ==
            std::string::npos) {
          return reply(406);
        }
        return reply(200, manifest_, {{"content-type", "application/vnd.oci.image.manifest.v1+json"}});
      }
      if (req.url.find("/blobs/sha256:") != std::string::npos) {
        return reply(307, "", {{"location", "https://cdn.example.com/blob?sig=abc"}});
      }
      return reply(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})");
    };
  }

  FakeTransport t_;
  fs::path dir_;
  Reference ref_;
  int token_requests_ = 0;
  std::string manifest_ = R"({"schemaVersion":2})";
};

TEST_F(RegistryFlowTest, BearerChallengeThenTokenThenRetry) {
  serve("blob");
  RegistryClient client(t_, {});
  auto m = run(client.get_manifest(ref_, "1"));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->body, manifest_);
  EXPECT_EQ(m->digest, sha256_digest(manifest_));
  EXPECT_EQ(m->content_type, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_EQ(t_.requests.size(), 3u);  // 401, token, retry
  EXPECT_EQ(t_.auth_of(0), "");
  EXPECT_EQ(t_.auth_of(2), "Bearer T0K");
  EXPECT_EQ(token_requests_, 1);

  // The token is reused for the repository: the blob needs no new challenge. The redirect to the
  // CDN goes without the Authorization header (the fake answers 400 otherwise).
  const std::string blob = "layer bytes, verified while streaming";
  serve(blob);
  Descriptor d;
  d.digest = sha256_digest(blob);
  d.size = blob.size();
  auto got = run(client.get_blob(ref_, d, dir_ / "blob"));
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(token_requests_, 1);
  std::ifstream in(dir_ / "blob");
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), blob);
}

TEST_F(RegistryFlowTest, TamperedBlobIsRejectedAndDeleted) {
  serve("tampered bytes");
  RegistryClient client(t_, {});
  Descriptor d;
  d.digest = sha256_digest("the real bytes");
  d.size = 14;
  auto got = run(client.get_blob(ref_, d, dir_ / "blob"));
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::kDigestMismatch);
  EXPECT_NE(got.error().message.find("blob " + d.digest + ": digest mismatch"), std::string::npos)
      << got.error().message;
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(RegistryFlowTest, ManifestByDigestIsVerified) {
  serve("");
  RegistryClient client(t_, {});
  // The fake answers any manifest path with 404 except "1"; make it serve a body for a digest.
  auto base = t_.handler;
  t_.handler = [&](const HttpRequest& req) {
    if (req.url.find("/manifests/sha256:") != std::string::npos &&
        header(req, "Authorization") == "Bearer T0K") {
      return reply(200, "something else");
    }
    return base(req);
  };
  auto m = run(client.get_manifest(ref_, sha256_digest(manifest_)));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kDigestMismatch);
}

TEST_F(RegistryFlowTest, NotFoundAndTokenRefusal) {
  serve("");
  RegistryClient client(t_, {});
  auto m = run(client.get_manifest(ref_, "2"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(m.error().message.find("MANIFEST_UNKNOWN"), std::string::npos) << m.error().message;

  FakeTransport refusing;
  refusing.handler = [](const HttpRequest& req) {
    if (req.url.starts_with("https://auth.example.com/")) return reply(401, "go away");
    return reply(401, "", {{"www-authenticate", R"(Bearer realm="https://auth.example.com/t")"}});
  };
  RegistryClient c2(refusing, {});
  auto r = run(c2.get_manifest(ref_, "1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnauthorized);
  EXPECT_EQ(r.error().message, "get token from https://auth.example.com/t: HTTP 401: go away");
}

TEST_F(RegistryFlowTest, BasicChallengeUsesConfiguredCredentials) {
  t_.handler = [](const HttpRequest& req) {
    if (header(req, "Authorization") == "Basic dXNlcjpwYXNz") return reply(200, "{}");
    return reply(401, "", {{"www-authenticate", R"(Basic realm="registry")"}});
  };
  RegistryOptions opts;
  opts.credentials["registry.example.com"] = Credentials{"user", "pass"};
  RegistryClient client(t_, opts);
  auto m = run(client.get_manifest(ref_, "1"));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(t_.requests.size(), 2u);

  // Without credentials the 401 is the answer.
  FakeTransport t2;
  t2.handler = t_.handler;
  RegistryClient anon(t2, {});
  auto r = run(anon.get_manifest(ref_, "1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnauthorized);
}

TEST_F(RegistryFlowTest, BearerTokenServiceGetsTheCredentials) {
  // The token service (as Docker Hub's auth.docker.io) logs the client in with Basic
  // credentials of the registry host, then the registry accepts the issued token.
  t_.handler = [](const HttpRequest& req) {
    const std::string auth = header(req, "Authorization");
    if (req.url.starts_with("https://auth.example.com/token")) {
      if (auth != "Basic dXNlcjpwYXNz") return reply(401, "bad login");
      return reply(200, R"({"token":"PRIVATE"})");
    }
    if (auth == "Bearer PRIVATE") return reply(200, "{}");
    return reply(401, "", {{"www-authenticate",
                            R"(Bearer realm="https://auth.example.com/token",service="registry.example.com")"}});
  };
  RegistryOptions opts;
  opts.credentials["registry.example.com"] = Credentials{"user", "pass"};
  RegistryClient client(t_, opts);
  auto m = run(client.get_manifest(ref_, "1"));
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(t_.requests.size(), 3u);  // 401, token, retry with Bearer
  EXPECT_EQ(t_.auth_of(1), "Basic dXNlcjpwYXNz");

  FakeTransport t2;
  t2.handler = t_.handler;
  RegistryClient anon(t2, {});
  auto r = run(anon.get_manifest(ref_, "1"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnauthorized);
}

}  // namespace
}  // namespace podwarp::images
