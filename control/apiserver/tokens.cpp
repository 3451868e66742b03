#include "apiserver/tokens.h"

#include <fmt/format.h>

#include <algorithm>

#include "podwarp/jwt.h"
#include "podwarp/random.h"

namespace podwarp::apiserver {

namespace {

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

std::string TokenIdentity::username() const {
  return fmt::format("system:serviceaccount:{}:{}", namespace_, service_account);
}

std::vector<std::string> TokenIdentity::groups() const {
  return {"system:serviceaccounts", "system:serviceaccounts:" + namespace_,
          "system:authenticated"};
}

std::expected<std::shared_ptr<TokenIssuer>, std::string> TokenIssuer::load(
    const std::filesystem::path& pki_dir, std::string issuer) {
  auto key = jwt::ensure_signing_key(pki_dir);
  if (!key) return std::unexpected(key.error());
  auto kid = jwt::key_id(key->get());
  if (!kid) return std::unexpected(kid.error());
  return std::make_shared<TokenIssuer>(std::move(*key), std::move(*kid), std::move(issuer));
}

TokenIssuer::TokenIssuer(pki::Key key, std::string kid, std::string issuer)
    : key_(std::move(key)), kid_(std::move(kid)), issuer_(std::move(issuer)),
      api_audiences_{issuer_} {}

bool TokenIssuer::looks_like_jwt(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2 && token.size() > 16;
}

std::expected<std::pair<std::string, std::chrono::system_clock::time_point>, std::string>
TokenIssuer::issue(const TokenClaimsInput& in, std::chrono::system_clock::time_point now) const {
  const std::int64_t iat = unix_seconds(now);
  const std::int64_t exp = iat + in.expiration_seconds;
  json::array aud;
  for (const std::string& a : in.audiences) aud.emplace_back(a);
  if (aud.empty()) aud.emplace_back(api_audience());
  json::object k8s{{"namespace", in.namespace_},
                   {"serviceaccount", json::object{{"name", in.service_account},
                                                   {"uid", in.service_account_uid}}}};
  if (!in.pod_name.empty()) {
    k8s["pod"] = json::object{{"name", in.pod_name}, {"uid", in.pod_uid}};
  }
  if (!in.secret_name.empty()) {
    k8s["secret"] = json::object{{"name", in.secret_name}, {"uid", in.secret_uid}};
  }
  if (in.warn_after_seconds > 0) k8s["warnafter"] = iat + in.warn_after_seconds;
  if (!in.node_name.empty()) {
    k8s["node"] = json::object{{"name", in.node_name}, {"uid", in.node_uid}};
  }
  json::object claims{{"aud", std::move(aud)},
                      {"exp", exp},
                      {"iat", iat},
                      {"iss", issuer_},
                      {"jti", random_uuid()},
                      {"kubernetes.io", std::move(k8s)},
                      {"nbf", iat},
                      {"sub", fmt::format("system:serviceaccount:{}:{}", in.namespace_,
                                          in.service_account)}};
  auto token = jwt::sign_es256(key_.get(), kid_, claims);
  if (!token) return std::unexpected(token.error());
  return std::pair{std::move(*token), std::chrono::system_clock::time_point(std::chrono::seconds(exp))};
}

std::expected<TokenIdentity, std::string> TokenIssuer::authenticate(
    std::string_view token, std::chrono::system_clock::time_point now,
    const std::vector<std::string>& audiences) const {
  auto claims = jwt::verify_es256(key_.get(), token);
  if (!claims) return std::unexpected(claims.error());
  // The requested audiences the token carries; check_claims then checks the first of them
  // (or the apiserver's, which fails as it should when there is none).
  std::vector<std::string> matched;
  const std::vector<std::string>& wanted = audiences.empty() ? api_audiences_ : audiences;
  for (const std::string& a : wanted) {
    if (jwt::has_audience(*claims, a)) matched.push_back(a);
  }
  const std::string& check = matched.empty() ? wanted.front() : matched.front();
  if (auto c = jwt::check_claims(*claims, unix_seconds(now), issuer_, check); !c) {
    return std::unexpected(c.error());
  }
  TokenIdentity id;
  id.audiences = std::move(matched);
  id.namespace_ = get_string(*claims, {"kubernetes.io", "namespace"});
  id.service_account = get_string(*claims, {"kubernetes.io", "serviceaccount", "name"});
  id.service_account_uid = get_string(*claims, {"kubernetes.io", "serviceaccount", "uid"});
  id.pod_name = get_string(*claims, {"kubernetes.io", "pod", "name"});
  id.pod_uid = get_string(*claims, {"kubernetes.io", "pod", "uid"});
  id.secret_name = get_string(*claims, {"kubernetes.io", "secret", "name"});
  id.secret_uid = get_string(*claims, {"kubernetes.io", "secret", "uid"});
  if (id.namespace_.empty() || id.service_account.empty() ||
      get_string(*claims, {"sub"}) != id.username()) {
    return std::unexpected("token lacks the service account claims");
  }
  return id;
}

}  // namespace podwarp::apiserver
