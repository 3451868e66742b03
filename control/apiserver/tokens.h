// Service-account tokens: the TokenRequest issuer and the bearer-token authenticator of the
// JWTs it signs (ES256 with <data-dir>/pki/sa.key, as upstream's service-account key pair).
//
// Claims as upstream's bound tokens: iss, sub system:serviceaccount:<ns>:<sa>, aud, exp, iat,
// nbf, jti, kubernetes.io {namespace, serviceaccount{name,uid}, pod{name,uid}, node{name,uid}}.
// The authenticator checks the signature, exp/nbf, the issuer and that the apiserver's audience
// is among aud; whether the service account and bound pod still exist (same uid) is checked
// by the caller against the API state (Api::token_objects_current).
//
// Thread-safe: immutable after construction (verification only reads the key).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "podwarp/json.h"
#include "podwarp/pki.h"

namespace podwarp::apiserver {

inline constexpr std::string_view kDefaultIssuer = "https://kubernetes.default.svc.cluster.local";

// What a verified token says.
struct TokenIdentity {
  std::string namespace_;
  std::string service_account;
  std::string service_account_uid;
  std::string pod_name;  // empty: not bound to a pod
  std::string pod_uid;
  std::string secret_name;  // bound to a Secret instead
  std::string secret_uid;
  // The token's audiences that were asked for (the apiserver's, unless a TokenReview named
  // others).
  std::vector<std::string> audiences;
  std::string username() const;
  std::vector<std::string> groups() const;  // serviceaccounts, serviceaccounts:<ns>, authenticated
};

struct TokenClaimsInput {
  std::string namespace_;
  std::string service_account;
  std::string service_account_uid;
  std::vector<std::string> audiences;
  std::int64_t expiration_seconds = 3600;
  // > 0: the token lives expiration_seconds but carries kubernetes.io.warnafter = iat + this
  // (upstream's extended expiry of the kubelet's 3607 s tokens).
  std::int64_t warn_after_seconds = 0;
  std::string pod_name, pod_uid;
  std::string secret_name, secret_uid;
  std::string node_name, node_uid;
};

class TokenIssuer {
 public:
  // Loads or creates <pki_dir>/sa.key and sa.pub.
  static std::expected<std::shared_ptr<TokenIssuer>, std::string> load(
      const std::filesystem::path& pki_dir, std::string issuer = std::string(kDefaultIssuer));
  TokenIssuer(pki::Key key, std::string kid, std::string issuer);

  const std::string& issuer() const { return issuer_; }
  // The audiences of tokens with none requested, and the one every token must carry to be
  // accepted by this apiserver.
  const std::string& api_audience() const { return issuer_; }

  // The signed JWT and its expiry.
  std::expected<std::pair<std::string, std::chrono::system_clock::time_point>, std::string> issue(
      const TokenClaimsInput& in, std::chrono::system_clock::time_point now) const;

  // Signature, times, issuer and audience; error text otherwise. The token must carry one of
  // `audiences` (the apiserver's when empty), as upstream's authenticator with a TokenReview's
  // audiences.
  std::expected<TokenIdentity, std::string> authenticate(
      std::string_view token, std::chrono::system_clock::time_point now,
      const std::vector<std::string>& audiences = {}) const;

  // Cheap pre-check: does this look like a JWT (three base64url parts)?
  static bool looks_like_jwt(std::string_view token);

 private:
  pki::Key key_;
  std::string kid_;
  std::string issuer_;
  std::vector<std::string> api_audiences_;  // {issuer_}: what a request's token must carry
};

}  // namespace podwarp::apiserver
