// Compact JWS (RFC 7515) / JWT (RFC 7519) with ES256 (ECDSA P-256 + SHA-256), as the
// Kubernetes service-account tokens use. The apiserver signs TokenRequest tokens with the
// private key <data-dir>/pki/sa.key and verifies bearer tokens with sa.pub.
//
// Nothing here throws; fallible calls return Result<T> with a message. Thread-safe (no shared
// state; the EVP keys are only read).
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "podwarp/json.h"
#include "podwarp/pki.h"

namespace podwarp::jwt {

template <class T>
using Result = std::expected<T, std::string>;

// base64url without padding (RFC 4648 §5) and its inverse (padding tolerated; nullopt on a
// character outside the alphabet).
std::string base64url_encode(std::string_view data);
std::optional<std::string> base64url_decode(std::string_view text);

// The key id upstream uses: base64url(SHA-256(DER SubjectPublicKeyInfo)).
Result<std::string> key_id(EVP_PKEY* key);

// Header {"alg":"ES256","kid":kid} . payload(claims) . signature (r||s, 64 bytes).
// REQUIRES: key is an EC P-256 private key; claims is an object.
Result<std::string> sign_es256(EVP_PKEY* key, std::string_view kid, const json::value& claims);

// Checks the header (alg ES256), the signature against `key` (public or private) and returns
// the claims object. Times and audiences are not checked here (see check_claims).
Result<json::value> verify_es256(EVP_PKEY* key, std::string_view token);

// Whether `audience` is among the claims' aud (a string or an array of strings).
bool has_audience(const json::value& claims, std::string_view audience);

// exp/nbf against `now` (seconds since the epoch; exp is exclusive, leeway applied to both),
// iss equal to `issuer` when non-empty, and `audience` among aud (a string or an array).
Result<void> check_claims(const json::value& claims, std::int64_t now, std::string_view issuer,
                          std::string_view audience, std::int64_t leeway_seconds = 0);

// The signing key pair <dir>/sa.key (PKCS#8, 0600) and <dir>/sa.pub (SubjectPublicKeyInfo
// PEM, 0644): loaded when present and matching, created otherwise.
Result<pki::Key> ensure_signing_key(const std::filesystem::path& dir);

// SubjectPublicKeyInfo PEM ("PUBLIC KEY") of a key.
Result<std::string> public_key_pem(EVP_PKEY* key);

}  // namespace podwarp::jwt
