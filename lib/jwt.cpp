#include "podwarp/jwt.h"

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <array>
#include <memory>

namespace podwarp::jwt {

namespace {

std::string ssl_error(std::string_view what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return std::string(what);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return fmt::format("{}: {}", what, buf);
}

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct SigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

bool is_p256(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) return false;
  return std::string_view(group, len) == "prime256v1" || std::string_view(group, len) == "P-256";
}

}  // namespace

std::string base64url_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(data[k]); };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (data.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (data.size() - i == 2) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  unsigned acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Result<std::string> key_id(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return std::unexpected(ssl_error("encode public key"));
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(der, static_cast<size_t>(len), digest.data());
  OPENSSL_free(der);
  return base64url_encode(
      std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

Result<std::string> public_key_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return std::unexpected(ssl_error("encode public key"));
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> sign_es256(EVP_PKEY* key, std::string_view kid, const json::value& claims) {
  if (!is_p256(key)) return std::unexpected("sign ES256: the key is not an EC P-256 key");
  if (!claims.is_object()) return std::unexpected("sign ES256: the claims are not an object");
  json::object header{{"alg", "ES256"}};
  if (!kid.empty()) header["kid"] = kid;
  std::string input = base64url_encode(to_json(header)) + "." + base64url_encode(to_json(claims));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t der_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return std::unexpected(ssl_error("sign ES256"));
  }
  std::string der(der_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &der_len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return std::unexpected(ssl_error("sign ES256"));
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, SigFree> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return std::unexpected(ssl_error("decode ECDSA signature"));
  std::string raw(64, '\0');
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  if (BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
      BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32) {
    return std::unexpected("sign ES256: signature component too large");
  }
  return input + "." + base64url_encode(raw);
}

Result<json::value> verify_es256(EVP_PKEY* key, std::string_view token) {
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return std::unexpected("not a compact JWS (want 3 parts)");
  }
  auto header_text = base64url_decode(token.substr(0, dot1));
  auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto raw = base64url_decode(token.substr(dot2 + 1));
  if (!header_text || !payload_text || !raw) return std::unexpected("invalid base64url");
  auto header = parse_json(*header_text, 8);
  if (!header || !header->is_object()) return std::unexpected("invalid JWS header");
  if (get_string(*header, {"alg"}) != "ES256") {
    return std::unexpected(fmt::format("unsupported alg \"{}\"", get_string(*header, {"alg"})));
  }
  if (raw->size() != 64) return std::unexpected("invalid ES256 signature length");
  if (!is_p256(key)) return std::unexpected("verify ES256: the key is not an EC P-256 key");
  std::unique_ptr<ECDSA_SIG, SigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::unexpected(ssl_error("decode ECDSA signature"));
  }
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  if (der_len <= 0) return std::unexpected(ssl_error("encode ECDSA signature"));
  std::string der_copy(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_len));
  OPENSSL_free(der);
  std::string_view input = token.substr(0, dot2);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1) {
    return std::unexpected(ssl_error("verify ES256"));
  }
  int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der_copy.data()),
                            der_copy.size(), reinterpret_cast<const unsigned char*>(input.data()),
                            input.size());
  ERR_clear_error();
  if (ok != 1) return std::unexpected("invalid signature");
  auto claims = parse_json(*payload_text, 16);
  if (!claims || !claims->is_object()) return std::unexpected("invalid JWT claims");
  return std::move(*claims);
}

Result<void> check_claims(const json::value& claims, std::int64_t now, std::string_view issuer,
                          std::string_view audience, std::int64_t leeway_seconds) {
  const json::value* exp = find_path(claims, {"exp"});
  if (exp == nullptr || !exp->is_number()) return std::unexpected("token has no expiry");
  auto as_int = [](const json::value& v) -> std::int64_t {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64()) return static_cast<std::int64_t>(v.get_uint64());
    return static_cast<std::int64_t>(v.get_double());
  };
  if (now >= as_int(*exp) + leeway_seconds) return std::unexpected("token has expired");
  if (const json::value* nbf = find_path(claims, {"nbf"}); nbf && nbf->is_number()) {
    if (now + leeway_seconds < as_int(*nbf)) return std::unexpected("token is not valid yet");
  }
  if (!issuer.empty() && get_string(claims, {"iss"}) != issuer) {
    return std::unexpected("token has an unknown issuer");
  }
  if (!has_audience(claims, audience)) return std::unexpected("token audiences is invalid");
  return {};
}

bool has_audience(const json::value& claims, std::string_view audience) {
  const json::value* aud = find_path(claims, {"aud"});
  if (aud == nullptr) return false;
  if (aud->is_string()) return aud->get_string() == audience;
  if (aud->is_array()) {
    for (const json::value& a : aud->get_array()) {
      if (a.is_string() && a.get_string() == audience) return true;
    }
  }
  return false;
}

Result<pki::Key> ensure_signing_key(const std::filesystem::path& dir) {
  const auto key_file = dir / "sa.key";
  const auto pub_file = dir / "sa.pub";
  if (auto text = pki::read_file(key_file)) {
    if (auto key = pki::key_from_pem(*text); key && is_p256(key->get())) {
      auto want = public_key_pem(key->get());
      auto have = pki::read_file(pub_file);
      if (want && (!have || *have != *want)) {
        if (auto w = pki::write_file_atomic(pub_file, *want, 0644); !w) {
          return std::unexpected(w.error());
        }
      }
      return std::move(*key);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return std::unexpected(fmt::format("create {}: {}", dir.string(), ec.message()));
  auto key = pki::generate_key();
  if (!key) return std::unexpected(key.error());
  auto pem = pki::key_to_pem(key->get());
  if (!pem) return std::unexpected(pem.error());
  auto pub = public_key_pem(key->get());
  if (!pub) return std::unexpected(pub.error());
  if (auto w = pki::write_file_atomic(key_file, *pem, 0600); !w) return std::unexpected(w.error());
  if (auto w = pki::write_file_atomic(pub_file, *pub, 0644); !w) return std::unexpected(w.error());
  return std::move(*key);
}

}  // namespace podwarp::jwt
