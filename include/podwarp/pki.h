// The cluster PKI: one self-signed CA, serving certificates for the apiserver (and later the
// node API), and client certificates whose subject carries the Kubernetes identity
// (CN = user name, O = groups), e.g. CN=admin O=system:masters or
// CN=system:node:<name> O=system:nodes.
//
// Keys are ECDSA P-256. Certificates are X.509 v3 signed with SHA-256, with random 127-bit
// serials, subject/authority key identifiers, and validity backdated by 5 minutes for clock
// skew. Private keys are written as PKCS#8 PEM with mode 0600, certificates with mode 0644;
// every file is written atomically (temp file in the same folder, fsync, rename), so a crash
// never leaves a torn key or certificate behind.
//
// The ensure_* helpers are idempotent: they reuse the files in `dir` when they parse, the key
// matches the certificate, the certificate is signed by the current CA, is not near expiry,
// and its subject/SANs are the requested ones; otherwise they issue new ones.
//
// Nothing here throws; every fallible call returns Result<T> whose error names the operation
// and path ("write /etc/podwarp/pki/ca.key: Permission denied"). Functions are safe to call
// concurrently on distinct objects; the ensure_* helpers are not safe to run concurrently on
// the same folder from several processes (last rename wins, both results are valid pairs).
#pragma once

#include <openssl/types.h>
#include <sys/types.h>

#include <chrono>
#include <expected>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::pki {

template <class T>
using Result = std::expected<T, std::string>;

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept;
};
struct CertDeleter {
  void operator()(X509* c) const noexcept;
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

// A certificate with its private key.
struct Identity {
  Cert cert;
  Key key;
};

// Subject alternative names of a serving certificate. IPs are textual v4 or v6 addresses.
struct SubjectAltNames {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
};

// The Kubernetes identity carried by a client certificate.
struct UserInfo {
  std::string user;                 // subject CN
  std::vector<std::string> groups;  // subject O entries, in order
};

inline constexpr std::string_view kCaCommonName = "podwarp-ca";
inline constexpr std::chrono::days kCaValidity{3650};
inline constexpr std::chrono::days kLeafValidity{365};
// Leaf certificates closer than this to expiry are reissued by the ensure_* helpers.
inline constexpr std::chrono::days kRenewBefore{30};

// ---- keys and certificates in memory ----

// A fresh ECDSA P-256 key.
Result<Key> generate_key();

// A self-signed CA: basicConstraints critical CA:TRUE, keyUsage critical
// keyCertSign,cRLSign,digitalSignature.
Result<Identity> create_ca(std::string_view common_name = kCaCommonName,
                           std::chrono::days validity = kCaValidity);

// A serving certificate (extendedKeyUsage serverAuth) for the given names, signed by `ca`.
// REQUIRES: sans has at least one entry; every ip parses as an IPv4 or IPv6 address.
Result<Identity> issue_serving_cert(const Identity& ca, std::string_view common_name,
                                    const SubjectAltNames& sans,
                                    std::chrono::days validity = kLeafValidity);

// A client certificate (extendedKeyUsage clientAuth) with CN = user and one O per group.
Result<Identity> issue_client_cert(const Identity& ca, std::string_view user,
                                   std::span<const std::string> groups,
                                   std::chrono::days validity = kLeafValidity);

// PEM encoding (certificates as "CERTIFICATE", keys as unencrypted PKCS#8 "PRIVATE KEY").
Result<std::string> cert_to_pem(X509* cert);
Result<std::string> key_to_pem(EVP_PKEY* key);
// Decoding: the first certificate or key in the text. Encrypted keys are refused (no prompt).
Result<Cert> cert_from_pem(std::string_view pem);
Result<Key> key_from_pem(std::string_view pem);

// Verifies `cert` against the single trust anchor `ca` with X509_verify_cert (signature chain,
// validity period, CA constraints). The error is OpenSSL's verify message.
Result<void> verify_cert(X509* cert, X509* ca);

// The identity in a (verified) peer certificate: CN → user, O entries → groups.
// Fails when the subject has no CN.
Result<UserInfo> user_from_cert(X509* cert);

// The DNS and IP SANs of a certificate (IPs in canonical text form).
SubjectAltNames subject_alt_names(X509* cert);

// Makes a server context ask for client certificates signed by the CAs in ca_file (a
// connection without one is still accepted; the caller decides what an anonymous peer may
// do). Also names the context's sessions, which OpenSSL requires before it resumes a session
// of a context that verifies peers: without it, a client that resumes (curl, the JDK) gets
// an "internal error" alert.
Result<void> request_client_certs(SSL_CTX* ctx, const std::string& ca_file,
                                  std::string_view session_context);

// ---- files ----

// <dir>/<name>.crt and <dir>/<name>.key.
std::filesystem::path cert_path(const std::filesystem::path& dir, std::string_view name);
std::filesystem::path key_path(const std::filesystem::path& dir, std::string_view name);

// Reads a PEM certificate and key pair from files.
Result<Identity> load_identity(const std::filesystem::path& cert_file,
                               const std::filesystem::path& key_file);
// Writes the key (0600) then the certificate (0644), each atomically.
Result<void> save_identity(const Identity& id, const std::filesystem::path& cert_file,
                           const std::filesystem::path& key_file);

// Loads <dir>/ca.{crt,key} or creates them (and `dir`, mode 0700) when absent or unusable.
Result<Identity> ensure_ca(const std::filesystem::path& dir);

// Loads or issues <dir>/<name>.{crt,key}, a serving certificate for exactly these SANs signed
// by the CA in `dir` (created by ensure_ca when missing). The CN is "podwarp-<name>".
Result<Identity> ensure_serving_cert(const std::filesystem::path& dir, const SubjectAltNames& sans,
                                     std::string_view name = "apiserver");

// Loads or issues <dir>/<name>.{crt,key}, a client certificate CN=cn O=groups signed by the CA
// in `dir` (created by ensure_ca when missing).
Result<Identity> ensure_client_cert(const std::filesystem::path& dir, std::string_view name,
                                    std::string_view cn, std::span<const std::string> groups);

// How long a file written by write_file_atomic must last: kSynced survives a power loss
// (fsync of the file and of the folder); kProcess only a crash of the writer (no fsync: for
// state that a reboot makes moot anyway, written on a hot path).
enum class Durability { kSynced, kProcess };

// Writes `data` to `path` atomically: a temp file `.<name>.tmp.XXXXXX` in the same folder created
// with `mode`, (fsync,) rename over `path`(, fsync of the folder). Shared with kubeconfig, which
// also holds keys.
Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view data,
                               mode_t mode, Durability durability = Durability::kSynced);

// Reads a whole file; the error names the path.
Result<std::string> read_file(const std::filesystem::path& path);

}  // namespace podwarp::pki
