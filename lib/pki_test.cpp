#include "podwarp/pki.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace podwarp::pki {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "podwarp-pki-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

mode_t file_mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

bool ext_critical(X509* cert, int nid) {
  int idx = X509_get_ext_by_NID(cert, nid, -1);
  return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

// Verifies with an explicit purpose, as a TLS peer would.
int verify_with_purpose(X509* cert, X509* ca, int purpose) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  int ok = X509_verify_cert(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

std::string common_name(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

TEST(Pki, CaHasConstraintsUsageAndTenYears) {
  auto ca = create_ca();
  ASSERT_TRUE(ca) << ca.error();
  X509* cert = ca->cert.get();
  EXPECT_EQ(common_name(cert), "podwarp-ca");
  EXPECT_GE(X509_check_ca(cert), 1);
  EXPECT_TRUE(ext_critical(cert, NID_basic_constraints));
  EXPECT_TRUE(ext_critical(cert, NID_key_usage));
  std::uint32_t ku = X509_get_key_usage(cert);
  EXPECT_TRUE(ku & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(ku & KU_CRL_SIGN);
  EXPECT_EQ(X509_get_version(cert), X509_VERSION_3);
  // Self-signed and valid for about ten years.
  EXPECT_TRUE(verify_cert(cert, cert)) << verify_cert(cert, cert).error();
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
  EXPECT_GE(days, 3649);
  EXPECT_LE(days, 3651);
  EXPECT_EQ(EVP_PKEY_get_base_id(ca->key.get()), EVP_PKEY_EC);
}

TEST(Pki, ServingCertChainsToCaWithSans) {
  auto ca = create_ca();
  ASSERT_TRUE(ca) << ca.error();
  SubjectAltNames sans{{"localhost", "kubernetes.default.svc"}, {"127.0.0.1", "::1"}};
  auto srv = issue_serving_cert(*ca, "podwarp-apiserver", sans);
  ASSERT_TRUE(srv) << srv.error();
  X509* cert = srv->cert.get();

  auto ok = verify_cert(cert, ca->cert.get());
  EXPECT_TRUE(ok) << ok.error();
  EXPECT_EQ(verify_with_purpose(cert, ca->cert.get(), X509_PURPOSE_SSL_SERVER), 1);
  EXPECT_EQ(verify_with_purpose(cert, ca->cert.get(), X509_PURPOSE_SSL_CLIENT), 0);
  EXPECT_EQ(X509_check_host(cert, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert, "kubernetes.default.svc", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert, "example.com", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert, "10.0.0.1", 0), 0);
  EXPECT_EQ(X509_check_ca(cert), 0);

  SubjectAltNames got = subject_alt_names(cert);
  EXPECT_EQ(got.dns, sans.dns);
  EXPECT_EQ(got.ips, sans.ips);

  // Another CA does not vouch for it.
  auto other = create_ca();
  ASSERT_TRUE(other);
  auto bad = verify_cert(cert, other->cert.get());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("verify certificate"), std::string::npos) << bad.error();
}

TEST(Pki, ServingCertRejectsBadInput) {
  auto ca = create_ca();
  ASSERT_TRUE(ca);
  EXPECT_FALSE(issue_serving_cert(*ca, "x", {}));
  auto bad_ip = issue_serving_cert(*ca, "x", {{}, {"300.1.1.1"}});
  ASSERT_FALSE(bad_ip);
  EXPECT_NE(bad_ip.error().find("300.1.1.1"), std::string::npos) << bad_ip.error();
}

TEST(Pki, ClientCertCarriesUserAndGroups) {
  auto ca = create_ca();
  ASSERT_TRUE(ca);
  std::vector<std::string> groups{"system:nodes", "podwarp:extra"};
  auto node = issue_client_cert(*ca, "system:node:worker-1", groups);
  ASSERT_TRUE(node) << node.error();
  EXPECT_EQ(verify_with_purpose(node->cert.get(), ca->cert.get(), X509_PURPOSE_SSL_CLIENT), 1);
  EXPECT_EQ(verify_with_purpose(node->cert.get(), ca->cert.get(), X509_PURPOSE_SSL_SERVER), 0);

  auto user = user_from_cert(node->cert.get());
  ASSERT_TRUE(user) << user.error();
  EXPECT_EQ(user->user, "system:node:worker-1");
  EXPECT_EQ(user->groups, groups);

  std::vector<std::string> masters{"system:masters"};
  auto admin = issue_client_cert(*ca, "admin", masters);
  ASSERT_TRUE(admin);
  auto admin_user = user_from_cert(admin->cert.get());
  ASSERT_TRUE(admin_user);
  EXPECT_EQ(admin_user->user, "admin");
  EXPECT_EQ(admin_user->groups, masters);
}

TEST(Pki, UserFromCertNeedsCn) {
  EXPECT_FALSE(user_from_cert(nullptr));
  // A certificate whose subject has only an O.
  auto key = generate_key();
  ASSERT_TRUE(key);
  X509* x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("org"), -1, -1, 0);
  X509_set_pubkey(x, key->get());
  auto user = user_from_cert(x);
  X509_free(x);
  EXPECT_FALSE(user);
}

TEST(Pki, SerialsAreRandomAndPositive) {
  auto ca = create_ca();
  ASSERT_TRUE(ca);
  auto a = issue_client_cert(*ca, "a", {});
  auto b = issue_client_cert(*ca, "a", {});
  ASSERT_TRUE(a && b);
  const ASN1_INTEGER* sa = X509_get0_serialNumber(a->cert.get());
  const ASN1_INTEGER* sb = X509_get0_serialNumber(b->cert.get());
  EXPECT_NE(ASN1_INTEGER_cmp(sa, sb), 0);
  BIGNUM* bn = ASN1_INTEGER_to_BN(sa, nullptr);
  EXPECT_FALSE(BN_is_negative(bn));
  EXPECT_GE(BN_num_bits(bn), 120);
  BN_free(bn);
}

TEST(Pki, PemRoundTrip) {
  auto ca = create_ca();
  ASSERT_TRUE(ca);
  auto cert_pem = cert_to_pem(ca->cert.get());
  auto key_pem = key_to_pem(ca->key.get());
  ASSERT_TRUE(cert_pem && key_pem);
  EXPECT_EQ(cert_pem->rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  EXPECT_EQ(key_pem->rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  auto cert = cert_from_pem(*cert_pem);
  auto key = key_from_pem(*key_pem);
  ASSERT_TRUE(cert) << cert.error();
  ASSERT_TRUE(key) << key.error();
  EXPECT_EQ(X509_cmp(cert->get(), ca->cert.get()), 0);
  EXPECT_EQ(EVP_PKEY_eq(key->get(), ca->key.get()), 1);
  EXPECT_EQ(X509_check_private_key(cert->get(), key->get()), 1);

  auto garbage = cert_from_pem("not a pem");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().find("PEM decode certificate"), std::string::npos);
  EXPECT_FALSE(key_from_pem(""));
}

TEST(Pki, EnsureCreatesThenReuses) {
  TempDir tmp;
  fs::path dir = tmp.path() / "pki";
  auto ca = ensure_ca(dir);
  ASSERT_TRUE(ca) << ca.error();
  EXPECT_EQ(file_mode(dir), 0700u);
  EXPECT_EQ(file_mode(dir / "ca.key"), 0600u);
  EXPECT_EQ(file_mode(dir / "ca.crt"), 0644u);

  SubjectAltNames sans{{"localhost"}, {"127.0.0.1", "::1"}};
  auto srv = ensure_serving_cert(dir, sans);
  ASSERT_TRUE(srv) << srv.error();
  EXPECT_EQ(file_mode(dir / "apiserver.key"), 0600u);
  EXPECT_EQ(common_name(srv->cert.get()), "podwarp-apiserver");
  std::vector<std::string> masters{"system:masters"};
  auto admin = ensure_client_cert(dir, "admin", "admin", masters);
  ASSERT_TRUE(admin) << admin.error();
  EXPECT_EQ(file_mode(dir / "admin.key"), 0600u);

  // Second round: the same certificates come back.
  auto ca2 = ensure_ca(dir);
  auto srv2 = ensure_serving_cert(dir, sans);
  auto admin2 = ensure_client_cert(dir, "admin", "admin", masters);
  ASSERT_TRUE(ca2 && srv2 && admin2);
  EXPECT_EQ(X509_cmp(ca->cert.get(), ca2->cert.get()), 0);
  EXPECT_EQ(X509_cmp(srv->cert.get(), srv2->cert.get()), 0);
  EXPECT_EQ(X509_cmp(admin->cert.get(), admin2->cert.get()), 0);
  EXPECT_EQ(EVP_PKEY_eq(srv->key.get(), srv2->key.get()), 1);

  // The same SANs in another order and spelling still match.
  auto srv3 = ensure_serving_cert(dir, {{"localhost"}, {"0:0:0:0:0:0:0:1", "127.0.0.1"}});
  ASSERT_TRUE(srv3) << srv3.error();
  EXPECT_EQ(X509_cmp(srv->cert.get(), srv3->cert.get()), 0);

  // No temp files are left behind.
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
  }
}

TEST(Pki, EnsureReissuesWhenSubjectOrSansChange) {
  TempDir tmp;
  SubjectAltNames sans{{"localhost"}, {"127.0.0.1"}};
  auto srv = ensure_serving_cert(tmp.path(), sans);
  ASSERT_TRUE(srv) << srv.error();
  SubjectAltNames more{{"localhost", "podwarp.local"}, {"127.0.0.1"}};
  auto srv2 = ensure_serving_cert(tmp.path(), more);
  ASSERT_TRUE(srv2) << srv2.error();
  EXPECT_NE(X509_cmp(srv->cert.get(), srv2->cert.get()), 0);
  EXPECT_EQ(subject_alt_names(srv2->cert.get()).dns, more.dns);

  std::vector<std::string> nodes{"system:nodes"};
  auto a = ensure_client_cert(tmp.path(), "node", "system:node:a", nodes);
  auto b = ensure_client_cert(tmp.path(), "node", "system:node:b", nodes);
  ASSERT_TRUE(a && b);
  EXPECT_NE(X509_cmp(a->cert.get(), b->cert.get()), 0);
  EXPECT_EQ(user_from_cert(b->cert.get())->user, "system:node:b");
  std::vector<std::string> more_groups{"system:nodes", "x"};
  auto c = ensure_client_cert(tmp.path(), "node", "system:node:b", more_groups);
  ASSERT_TRUE(c);
  EXPECT_EQ(user_from_cert(c->cert.get())->groups, more_groups);
}

TEST(Pki, EnsureReissuesCorruptOrForeignFiles) {
  TempDir tmp;
  SubjectAltNames sans{{"localhost"}, {}};
  auto srv = ensure_serving_cert(tmp.path(), sans);
  ASSERT_TRUE(srv);

  // A corrupt key is replaced by a fresh pair.
  ASSERT_TRUE(write_file_atomic(key_path(tmp.path(), "apiserver"), "garbage", 0600));
  auto srv2 = ensure_serving_cert(tmp.path(), sans);
  ASSERT_TRUE(srv2) << srv2.error();
  EXPECT_NE(X509_cmp(srv->cert.get(), srv2->cert.get()), 0);
  EXPECT_EQ(X509_check_private_key(srv2->cert.get(), srv2->key.get()), 1);

  // A new CA makes the old leaf untrusted, so it is reissued under the new CA.
  fs::remove(cert_path(tmp.path(), "ca"));
  fs::remove(key_path(tmp.path(), "ca"));
  auto ca = ensure_ca(tmp.path());
  ASSERT_TRUE(ca);
  auto srv3 = ensure_serving_cert(tmp.path(), sans);
  ASSERT_TRUE(srv3);
  EXPECT_TRUE(verify_cert(srv3->cert.get(), ca->cert.get()));
  EXPECT_FALSE(verify_cert(srv2->cert.get(), ca->cert.get()));

  // Files on disk match what was returned.
  auto loaded =
      load_identity(cert_path(tmp.path(), "apiserver"), key_path(tmp.path(), "apiserver"));
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(X509_cmp(loaded->cert.get(), srv3->cert.get()), 0);
}

TEST(Pki, ExpiredLeafIsReissued) {
  TempDir tmp;
  auto ca = ensure_ca(tmp.path());
  ASSERT_TRUE(ca);
  // A leaf that expires in 10 days is inside the renewal window.
  std::vector<std::string> groups{"g"};
  auto short_lived = issue_client_cert(*ca, "u", groups, std::chrono::days(10));
  ASSERT_TRUE(short_lived);
  ASSERT_TRUE(save_identity(*short_lived, cert_path(tmp.path(), "u"), key_path(tmp.path(), "u")));
  auto renewed = ensure_client_cert(tmp.path(), "u", "u", groups);
  ASSERT_TRUE(renewed);
  EXPECT_NE(X509_cmp(renewed->cert.get(), short_lived->cert.get()), 0);
  std::time_t in_300_days = std::time(nullptr) + 300 * 86400;
  EXPECT_GT(X509_cmp_time(X509_get0_notAfter(renewed->cert.get()), &in_300_days), 0);
}

TEST(Pki, FileErrorsNameThePath) {
  TempDir tmp;
  fs::path missing = tmp.path() / "no" / "such" / "dir" / "ca.key";
  auto w = write_file_atomic(missing, "x", 0600);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().find(missing.string()), std::string::npos) << w.error();
  auto r = read_file(tmp.path() / "absent");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("open " + (tmp.path() / "absent").string()), std::string::npos);
  EXPECT_NE(r.error().find("No such file"), std::string::npos) << r.error();

  if (::geteuid() != 0) {
    // Unreadable files are an error, not a reason to overwrite.
    ASSERT_TRUE(ensure_ca(tmp.path()));
    ::chmod((tmp.path() / "ca.key").c_str(), 0);
    EXPECT_FALSE(ensure_ca(tmp.path()));
  }
}

TEST(Pki, WriteFileAtomicReplacesContentAndMode) {
  TempDir tmp;
  fs::path p = tmp.path() / "f";
  ASSERT_TRUE(write_file_atomic(p, "one", 0644));
  ASSERT_TRUE(write_file_atomic(p, "two", 0600));
  EXPECT_EQ(*read_file(p), "two");
  EXPECT_EQ(file_mode(p), 0600u);
}

// One in-memory TLS handshake between contexts made as podwarp makes them; the client offers
// `resume` when given. Returns whether it completed, whether it was a resumption, the user
// the server read from the client's certificate, and the client's session afterwards.
struct Handshake {
  bool ok = false;
  bool reused = false;
  std::string user;
  SSL_SESSION* session = nullptr;  // owned by the caller
};
Handshake handshake(SSL_CTX* client, SSL_CTX* server, SSL_SESSION* resume) {
  SSL* c = SSL_new(client);
  SSL* s = SSL_new(server);
  BIO* bc = nullptr;
  BIO* bs = nullptr;
  BIO_new_bio_pair(&bc, 0, &bs, 0);
  SSL_set_bio(c, bc, bc);
  SSL_set_bio(s, bs, bs);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  if (resume != nullptr) SSL_set_session(c, resume);
  bool c_done = false, s_done = false, failed = false;
  auto step = [&](SSL* ssl, bool& done) {
    if (done) return;
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
      done = true;
    } else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ) {
      failed = true;
    }
  };
  for (int i = 0; i < 20 && !(c_done && s_done) && !failed; ++i) {
    step(c, c_done);
    step(s, s_done);
  }
  Handshake out;
  out.ok = c_done && s_done && !failed;
  if (out.ok) {
    char b;
    SSL_read(c, &b, 1);  // takes in the server's session tickets (TLS 1.3)
    out.reused = SSL_session_reused(c) == 1;
    if (X509* peer = SSL_get0_peer_certificate(s)) {
      if (auto u = user_from_cert(peer)) out.user = u->user;
    }
    out.session = SSL_get1_session(c);
    SSL_shutdown(c);  // a session of a connection not shut down is not resumed
    SSL_shutdown(s);
  }
  SSL_free(c);
  SSL_free(s);
  return out;
}

// A server context set up by request_client_certs resumes a client's session, and the
// resumed connection still carries the client's certificate. (Without a session id context
// OpenSSL refuses such a resumption with an internal-error alert.)
TEST(Pki, RequestClientCertsAllowsResumption) {
  TempDir dir;
  auto ca = create_ca();
  ASSERT_TRUE(ca);
  auto srv = issue_serving_cert(*ca, "server", {{"localhost"}, {}});
  ASSERT_TRUE(srv);
  auto cli = issue_client_cert(*ca, "alice", {});
  ASSERT_TRUE(cli);
  const fs::path ca_file = dir.path() / "ca.crt";
  {
    auto pem = cert_to_pem(ca->cert.get());
    ASSERT_TRUE(pem);
    std::ofstream(ca_file) << *pem;
  }
  SSL_CTX* server = SSL_CTX_new(TLS_server_method());
  SSL_CTX_use_certificate(server, srv->cert.get());
  SSL_CTX_use_PrivateKey(server, srv->key.get());
  ASSERT_TRUE(request_client_certs(server, ca_file.string(), "pki-test"));
  EXPECT_FALSE(request_client_certs(server, (dir.path() / "missing.crt").string(), "pki-test"));
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  SSL_CTX_use_certificate(client, cli->cert.get());
  SSL_CTX_use_PrivateKey(client, cli->key.get());
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SSL_CTX_set_max_proto_version(client, version);
    Handshake first = handshake(client, server, nullptr);
    ASSERT_TRUE(first.ok) << version;
    EXPECT_FALSE(first.reused);
    EXPECT_EQ(first.user, "alice");
    ASSERT_NE(first.session, nullptr);
    Handshake again = handshake(client, server, first.session);
    EXPECT_TRUE(again.ok) << version;
    EXPECT_TRUE(again.reused) << version;
    EXPECT_EQ(again.user, "alice") << version;
    SSL_SESSION_free(first.session);
    SSL_SESSION_free(again.session);
  }
  SSL_CTX_free(client);
  SSL_CTX_free(server);
}

}  // namespace
}  // namespace podwarp::pki
