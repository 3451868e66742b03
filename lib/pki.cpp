#include "podwarp/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <optional>
#include <set>
#include <system_error>
#include <utility>

#include "podwarp/log.h"

namespace podwarp::pki {

void KeyDeleter::operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
void CertDeleter::operator()(X509* c) const noexcept { X509_free(c); }

namespace {

namespace fs = std::filesystem;

template <auto Free>
struct FreeFn {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
template <class T, auto Free>
using Owned = std::unique_ptr<T, FreeFn<Free>>;

using Bio = Owned<BIO, BIO_free_all>;
using Name = Owned<X509_NAME, X509_NAME_free>;
using GeneralNames = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;
using BigNum = Owned<BIGNUM, BN_free>;
using Extension = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using Store = Owned<X509_STORE, X509_STORE_free>;
using StoreCtx = Owned<X509_STORE_CTX, X509_STORE_CTX_free>;

constexpr long kBackdateSeconds = 300;

// Drains OpenSSL's thread-local error queue into "op: reason".
std::string openssl_error(std::string_view op) {
  unsigned long first = ERR_get_error();
  std::string reason = "unknown error";
  if (first != 0) {
    char buf[256];
    ERR_error_string_n(first, buf, sizeof buf);
    reason = buf;
  }
  ERR_clear_error();
  return fmt::format("{}: {}", op, reason);
}

std::string errno_message(int err) {
  return std::error_code(err, std::system_category()).message();
}

Bio mem_bio(std::string_view data) {
  return Bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

// Never prompt on a terminal for a passphrase: encrypted keys are simply refused.
int no_password(char*, int, int, void*) { return -1; }

std::optional<std::string> canonical_ip(std::string_view text) {
  std::string s(text);
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, s.c_str(), bytes) == 1) {
    return std::string(inet_ntop(AF_INET, bytes, out, sizeof out));
  }
  if (inet_pton(AF_INET6, s.c_str(), bytes) == 1) {
    return std::string(inet_ntop(AF_INET6, bytes, out, sizeof out));
  }
  return std::nullopt;
}

Result<Name> make_name(std::string_view cn, std::span<const std::string> orgs) {
  Name name(X509_NAME_new());
  if (!name) return std::unexpected(openssl_error("X509_NAME_new"));
  auto add = [&](int nid, std::string_view v) {
    return X509_NAME_add_entry_by_NID(name.get(), nid, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(v.data()),
                                      static_cast<int>(v.size()), -1, 0) == 1;
  };
  for (const std::string& o : orgs) {
    if (!add(NID_organizationName, o)) {
      return std::unexpected(openssl_error(fmt::format("subject O={}", o)));
    }
  }
  if (!add(NID_commonName, cn)) {
    return std::unexpected(openssl_error(fmt::format("subject CN={}", cn)));
  }
  return name;
}

Result<GeneralNames> make_sans(const SubjectAltNames& sans) {
  GeneralNames names(sk_GENERAL_NAME_new_null());
  if (!names) return std::unexpected(openssl_error("subjectAltName"));
  for (const std::string& dns : sans.dns) {
    GENERAL_NAME* gn = GENERAL_NAME_new();
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    if (gn == nullptr || s == nullptr ||
        ASN1_STRING_set(s, dns.data(), static_cast<int>(dns.size())) != 1) {
      GENERAL_NAME_free(gn);
      ASN1_IA5STRING_free(s);
      return std::unexpected(openssl_error(fmt::format("subjectAltName DNS:{}", dns)));
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    sk_GENERAL_NAME_push(names.get(), gn);
  }
  for (const std::string& ip : sans.ips) {
    ASN1_OCTET_STRING* os = a2i_IPADDRESS(ip.c_str());
    if (os == nullptr) {
      ERR_clear_error();
      return std::unexpected(fmt::format("subjectAltName IP:{}: not an IP address", ip));
    }
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (gn == nullptr) {
      ASN1_OCTET_STRING_free(os);
      return std::unexpected(openssl_error("subjectAltName"));
    }
    GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
    sk_GENERAL_NAME_push(names.get(), gn);
  }
  return names;
}

Result<void> set_random_serial(X509* x) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return std::unexpected(openssl_error("RAND_bytes"));
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);  // positive, full length
  BigNum bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)) == nullptr) {
    return std::unexpected(openssl_error("serial number"));
  }
  return {};
}

Result<void> add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  Extension ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(x, ext.get(), -1) != 1) {
    return std::unexpected(openssl_error(fmt::format("extension {}={}", OBJ_nid2sn(nid), value)));
  }
  return {};
}

struct CertSpec {
  X509_NAME* subject = nullptr;
  EVP_PKEY* subject_key = nullptr;  // its public half goes into the certificate
  X509* issuer = nullptr;           // nullptr: self-signed
  EVP_PKEY* signer = nullptr;
  std::chrono::days validity{0};
  std::vector<std::pair<int, const char*>> extensions;
  GENERAL_NAMES* sans = nullptr;
};

Result<Cert> build_cert(const CertSpec& spec) {
  Cert x(X509_new());
  if (!x) return std::unexpected(openssl_error("X509_new"));
  if (X509_set_version(x.get(), X509_VERSION_3) != 1) {
    return std::unexpected(openssl_error("X509_set_version"));
  }
  if (auto r = set_random_serial(x.get()); !r) return std::unexpected(r.error());
  if (X509_gmtime_adj(X509_getm_notBefore(x.get()), -kBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(x.get()), static_cast<int>(spec.validity.count()), 0,
                       nullptr) == nullptr) {
    return std::unexpected(openssl_error("validity"));
  }
  X509_NAME* issuer_name =
      spec.issuer != nullptr ? X509_get_subject_name(spec.issuer) : spec.subject;
  if (X509_set_subject_name(x.get(), spec.subject) != 1 ||
      X509_set_issuer_name(x.get(), issuer_name) != 1 ||
      X509_set_pubkey(x.get(), spec.subject_key) != 1) {
    return std::unexpected(openssl_error("X509 subject/issuer/key"));
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, spec.issuer != nullptr ? spec.issuer : x.get(), x.get(), nullptr, nullptr,
                 0);
  for (const auto& [nid, value] : spec.extensions) {
    if (auto r = add_ext(x.get(), &ctx, nid, value); !r) return std::unexpected(r.error());
  }
  if (spec.sans != nullptr &&
      X509_add1_ext_i2d(x.get(), NID_subject_alt_name, spec.sans, 0, X509V3_ADD_DEFAULT) != 1) {
    return std::unexpected(openssl_error("extension subjectAltName"));
  }
  if (X509_sign(x.get(), spec.signer, EVP_sha256()) <= 0) {
    return std::unexpected(openssl_error("X509_sign"));
  }
  return x;
}

std::string asn1_to_utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  int len = ASN1_STRING_to_UTF8(&out, s);
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string result(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
  OPENSSL_free(out);
  return result;
}

// True when the certificate stays valid for at least `margin` from now.
bool valid_for(X509* cert, std::chrono::seconds margin) {
  std::time_t now = std::time(nullptr);
  std::time_t until = now + static_cast<std::time_t>(margin.count());
  return X509_cmp_time(X509_get0_notBefore(cert), &now) < 0 &&
         X509_cmp_time(X509_get0_notAfter(cert), &until) > 0;
}

bool has_files(const fs::path& dir, std::string_view name) {
  std::error_code ec;
  return fs::exists(cert_path(dir, name), ec) && fs::exists(key_path(dir, name), ec);
}

// Loads <dir>/<name>.{crt,key}: a value when usable, an empty optional when absent or
// unusable (the reason is logged), an error when the files cannot be read at all.
template <class Check>
Result<std::optional<Identity>> load_reusable(const fs::path& dir, std::string_view name,
                                              Check check) {
  if (!has_files(dir, name)) return std::optional<Identity>();
  std::string cert_pem, key_pem;
  if (auto r = read_file(cert_path(dir, name)); r) {
    cert_pem = std::move(*r);
  } else {
    return std::unexpected(r.error());
  }
  if (auto r = read_file(key_path(dir, name)); r) {
    key_pem = std::move(*r);
  } else {
    return std::unexpected(r.error());
  }
  auto cert = cert_from_pem(cert_pem);
  auto key = key_from_pem(key_pem);
  std::string why;
  if (!cert) {
    why = cert.error();
  } else if (!key) {
    why = key.error();
  } else if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    why = "key does not match certificate";
  } else {
    why = check(cert->get());
  }
  if (!why.empty()) {
    log::warn("pki: reissuing {}: {}", cert_path(dir, name).string(), why);
    return std::optional<Identity>();
  }
  return std::optional<Identity>(Identity{std::move(*cert), std::move(*key)});
}

Result<Identity> store(Identity id, const fs::path& dir, std::string_view name) {
  if (auto r = save_identity(id, cert_path(dir, name), key_path(dir, name)); !r) {
    return std::unexpected(r.error());
  }
  return id;
}

Result<void> ensure_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return {};
  fs::create_directories(dir, ec);
  if (ec) return std::unexpected(fmt::format("mkdir {}: {}", dir.string(), ec.message()));
  if (::chmod(dir.c_str(), 0700) != 0) {
    return std::unexpected(fmt::format("chmod {}: {}", dir.string(), errno_message(errno)));
  }
  return {};
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

std::string check_leaf(X509* cert, X509* ca) {
  if (auto r = verify_cert(cert, ca); !r) return r.error();
  if (!valid_for(cert, kRenewBefore)) return "expires soon";
  return {};
}

}  // namespace

Result<Key> generate_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return std::unexpected(openssl_error("generate P-256 key"));
  return key;
}

Result<Identity> create_ca(std::string_view common_name, std::chrono::days validity) {
  auto key = generate_key();
  if (!key) return std::unexpected(key.error());
  auto name = make_name(common_name, {});
  if (!name) return std::unexpected(name.error());
  CertSpec spec;
  spec.subject = name->get();
  spec.subject_key = key->get();
  spec.signer = key->get();
  spec.validity = validity;
  spec.extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                     {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"},
                     {NID_subject_key_identifier, "hash"}};
  auto cert = build_cert(spec);
  if (!cert) return std::unexpected(fmt::format("create CA: {}", cert.error()));
  return Identity{std::move(*cert), std::move(*key)};
}

Result<Identity> issue_serving_cert(const Identity& ca, std::string_view common_name,
                                    const SubjectAltNames& sans, std::chrono::days validity) {
  if (sans.dns.empty() && sans.ips.empty()) {
    return std::unexpected(fmt::format("issue serving cert {}: no SANs", common_name));
  }
  auto key = generate_key();
  if (!key) return std::unexpected(key.error());
  auto name = make_name(common_name, {});
  if (!name) return std::unexpected(name.error());
  auto names = make_sans(sans);
  if (!names) return std::unexpected(fmt::format("issue serving cert: {}", names.error()));
  CertSpec spec;
  spec.subject = name->get();
  spec.subject_key = key->get();
  spec.issuer = ca.cert.get();
  spec.signer = ca.key.get();
  spec.validity = validity;
  spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "serverAuth"},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}};
  spec.sans = names->get();
  auto cert = build_cert(spec);
  if (!cert) return std::unexpected(fmt::format("issue serving cert: {}", cert.error()));
  return Identity{std::move(*cert), std::move(*key)};
}

Result<Identity> issue_client_cert(const Identity& ca, std::string_view user,
                                   std::span<const std::string> groups,
                                   std::chrono::days validity) {
  auto key = generate_key();
  if (!key) return std::unexpected(key.error());
  auto name = make_name(user, groups);
  if (!name) return std::unexpected(name.error());
  CertSpec spec;
  spec.subject = name->get();
  spec.subject_key = key->get();
  spec.issuer = ca.cert.get();
  spec.signer = ca.key.get();
  spec.validity = validity;
  spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                     {NID_key_usage, "critical,digitalSignature"},
                     {NID_ext_key_usage, "clientAuth"},
                     {NID_subject_key_identifier, "hash"},
                     {NID_authority_key_identifier, "keyid:always"}};
  auto cert = build_cert(spec);
  if (!cert) return std::unexpected(fmt::format("issue client cert {}: {}", user, cert.error()));
  return Identity{std::move(*cert), std::move(*key)};
}

Result<std::string> cert_to_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return std::unexpected(openssl_error("PEM encode certificate"));
  }
  return bio_contents(bio.get());
}

Result<std::string> key_to_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return std::unexpected(openssl_error("PEM encode private key"));
  }
  return bio_contents(bio.get());
}

Result<Cert> cert_from_pem(std::string_view pem) {
  Bio bio = mem_bio(pem);
  Cert cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!cert) return std::unexpected(openssl_error("PEM decode certificate"));
  return cert;
}

Result<Key> key_from_pem(std::string_view pem) {
  Bio bio = mem_bio(pem);
  Key key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) return std::unexpected(openssl_error("PEM decode private key"));
  return key;
}

Result<void> verify_cert(X509* cert, X509* ca) {
  Store store(X509_STORE_new());
  StoreCtx ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return std::unexpected(openssl_error("verify certificate"));
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return std::unexpected(
        fmt::format("verify certificate: {}", X509_verify_cert_error_string(err)));
  }
  return {};
}

Result<void> request_client_certs(SSL_CTX* ctx, const std::string& ca_file,
                                  std::string_view session_context) {
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return std::unexpected(openssl_error("load client CA " + ca_file));
  }
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str());
  if (names == nullptr) return std::unexpected(openssl_error("read client CA names from " + ca_file));
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const auto len = std::min<std::size_t>(session_context.size(), SSL_MAX_SID_CTX_LENGTH);
  if (SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(session_context.data()),
                                     static_cast<unsigned>(len)) != 1) {
    return std::unexpected(openssl_error("SSL_CTX_set_session_id_context"));
  }
  return {};
}

Result<UserInfo> user_from_cert(X509* cert) {
  if (cert == nullptr) return std::unexpected("no client certificate");
  X509_NAME* subject = X509_get_subject_name(cert);
  UserInfo info;
  int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn < 0) return std::unexpected("client certificate has no subject CN");
  info.user = asn1_to_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)));
  for (int i = X509_NAME_get_index_by_NID(subject, NID_organizationName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_organizationName, i)) {
    info.groups.push_back(asn1_to_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))));
  }
  if (info.user.empty()) return std::unexpected("client certificate has an empty subject CN");
  return info;
}

SubjectAltNames subject_alt_names(X509* cert) {
  SubjectAltNames out;
  GeneralNames names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      const ASN1_STRING* s = gn->d.dNSName;
      out.dns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                           static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (gn->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = gn->d.iPAddress;
      char text[INET6_ADDRSTRLEN];
      int len = ASN1_STRING_length(s);
      int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text)) {
        out.ips.emplace_back(text);
      }
    }
  }
  return out;
}

fs::path cert_path(const fs::path& dir, std::string_view name) {
  return dir / fmt::format("{}.crt", name);
}

fs::path key_path(const fs::path& dir, std::string_view name) {
  return dir / fmt::format("{}.key", name);
}

Result<Identity> load_identity(const fs::path& cert_file, const fs::path& key_file) {
  auto cert_pem = read_file(cert_file);
  if (!cert_pem) return std::unexpected(cert_pem.error());
  auto key_pem = read_file(key_file);
  if (!key_pem) return std::unexpected(key_pem.error());
  auto cert = cert_from_pem(*cert_pem);
  if (!cert) return std::unexpected(fmt::format("{}: {}", cert_file.string(), cert.error()));
  auto key = key_from_pem(*key_pem);
  if (!key) return std::unexpected(fmt::format("{}: {}", key_file.string(), key.error()));
  return Identity{std::move(*cert), std::move(*key)};
}

Result<void> save_identity(const Identity& id, const fs::path& cert_file,
                           const fs::path& key_file) {
  auto key_pem = key_to_pem(id.key.get());
  if (!key_pem) return std::unexpected(key_pem.error());
  auto cert_pem = cert_to_pem(id.cert.get());
  if (!cert_pem) return std::unexpected(cert_pem.error());
  // Key first: a crash in between leaves a mismatched pair, which ensure_* detects and reissues.
  if (auto r = write_file_atomic(key_file, *key_pem, 0600); !r) return r;
  return write_file_atomic(cert_file, *cert_pem, 0644);
}

Result<Identity> ensure_ca(const fs::path& dir) {
  if (auto r = ensure_dir(dir); !r) return std::unexpected(r.error());
  auto existing = load_reusable(dir, "ca", [](X509* cert) -> std::string {
    if (X509_check_ca(cert) < 1) return "not a CA certificate";
    if (auto r = verify_cert(cert, cert); !r) return r.error();
    return {};
  });
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return std::move(**existing);
  auto ca = create_ca();
  if (!ca) return std::unexpected(ca.error());
  return store(std::move(*ca), dir, "ca");
}

Result<Identity> ensure_serving_cert(const fs::path& dir, const SubjectAltNames& sans,
                                     std::string_view name) {
  auto ca = ensure_ca(dir);
  if (!ca) return std::unexpected(ca.error());
  SubjectAltNames wanted;
  wanted.dns = sans.dns;
  for (const std::string& ip : sans.ips) {
    auto c = canonical_ip(ip);
    if (!c) return std::unexpected(fmt::format("serving cert {}: not an IP address: {}", name, ip));
    wanted.ips.push_back(*c);
  }
  auto existing = load_reusable(dir, name, [&](X509* cert) -> std::string {
    if (auto why = check_leaf(cert, ca->cert.get()); !why.empty()) return why;
    SubjectAltNames have = subject_alt_names(cert);
    if (as_set(have.dns) != as_set(wanted.dns) || as_set(have.ips) != as_set(wanted.ips)) {
      return "subject alternative names changed";
    }
    return {};
  });
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return std::move(**existing);
  auto id = issue_serving_cert(*ca, fmt::format("podwarp-{}", name), wanted);
  if (!id) return std::unexpected(id.error());
  return store(std::move(*id), dir, name);
}

Result<Identity> ensure_client_cert(const fs::path& dir, std::string_view name, std::string_view cn,
                                    std::span<const std::string> groups) {
  auto ca = ensure_ca(dir);
  if (!ca) return std::unexpected(ca.error());
  auto existing = load_reusable(dir, name, [&](X509* cert) -> std::string {
    if (auto why = check_leaf(cert, ca->cert.get()); !why.empty()) return why;
    auto user = user_from_cert(cert);
    if (!user) return user.error();
    if (user->user != cn ||
        !std::equal(user->groups.begin(), user->groups.end(), groups.begin(), groups.end())) {
      return "subject changed";
    }
    return {};
  });
  if (!existing) return std::unexpected(existing.error());
  if (*existing) return std::move(**existing);
  auto id = issue_client_cert(*ca, cn, groups);
  if (!id) return std::unexpected(id.error());
  return store(std::move(*id), dir, name);
}

Result<void> write_file_atomic(const fs::path& path, std::string_view data, mode_t mode,
                               Durability durability) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmp = (dir / fmt::format(".{}.tmp.XXXXXX", path.filename().string())).string();
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(fmt::format("write {}: {}", path.string(), errno_message(errno)));
  }
  auto fail = [&](std::string_view op) -> Result<void> {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return std::unexpected(fmt::format("{} {}: {}", op, path.string(), errno_message(err)));
  };
  if (::fchmod(fd, mode) != 0) return fail("chmod");
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (durability == Durability::kSynced && ::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return std::unexpected(fmt::format("close {}: {}", path.string(), errno_message(err)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return std::unexpected(fmt::format("rename {}: {}", path.string(), errno_message(err)));
  }
  // Make the rename durable; failure here does not undo a completed write, so ignore it.
  if (durability != Durability::kSynced) return {};
  if (int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<std::string> read_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::unexpected(fmt::format("open {}: {}", path.string(), errno_message(errno)));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return std::unexpected(fmt::format("read {}: {}", path.string(), errno_message(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace podwarp::pki
