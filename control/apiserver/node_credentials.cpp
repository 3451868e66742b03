#include "apiserver/node_credentials.h"

#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "podwarp/kubeconfig.h"
#include "podwarp/pki.h"

namespace podwarp::apiserver {

namespace fs = std::filesystem;

namespace {

// The identity at cert/key when it is signed by `ca`, valid for at least kRenewBefore and
// `fits` its subject; nullopt otherwise.
template <class Fits>
std::optional<pki::Identity> reusable(const pki::Identity& ca, const fs::path& cert,
                                      const fs::path& key, Fits fits) {
  auto id = pki::load_identity(cert, key);
  if (!id) return std::nullopt;
  if (X509_check_private_key(id->cert.get(), id->key.get()) != 1) return std::nullopt;
  if (!pki::verify_cert(id->cert.get(), ca.cert.get())) return std::nullopt;
  const auto renew = std::chrono::system_clock::now() + pki::kRenewBefore;
  time_t t = std::chrono::system_clock::to_time_t(renew);
  if (X509_cmp_time(X509_get0_notAfter(id->cert.get()), &t) <= 0) return std::nullopt;
  if (!fits(id->cert.get())) return std::nullopt;
  return std::move(*id);
}

std::expected<pki::Identity, std::string> ensure_client(const pki::Identity& ca,
                                                        const fs::path& cert, const fs::path& key,
                                                        const std::string& cn,
                                                        const std::vector<std::string>& groups) {
  auto fits = [&](X509* c) {
    auto u = pki::user_from_cert(c);
    return u && u->user == cn && u->groups == groups;
  };
  if (auto id = reusable(ca, cert, key, fits)) return std::move(*id);
  auto id = pki::issue_client_cert(ca, cn, groups);
  if (!id) return std::unexpected(id.error());
  if (auto w = pki::save_identity(*id, cert, key); !w) return std::unexpected(w.error());
  return std::move(*id);
}

}  // namespace

std::expected<void, std::string> ensure_kubelet_client_cert(const fs::path& pki_dir) {
  auto ca = pki::ensure_ca(pki_dir);
  if (!ca) return std::unexpected(ca.error());
  std::vector<std::string> groups = {"system:masters"};
  auto id = ensure_client(*ca, pki::cert_path(pki_dir, "apiserver-kubelet-client"),
                          pki::key_path(pki_dir, "apiserver-kubelet-client"),
                          "kube-apiserver-kubelet-client", groups);
  if (!id) return std::unexpected(id.error());
  return {};
}

std::expected<void, std::string> write_node_credentials(const NodeCredentialsOptions& opts) {
  if (opts.node_name.empty()) return std::unexpected("--node-name is required");
  auto ca = pki::ensure_ca(opts.pki_dir);
  if (!ca) return std::unexpected(ca.error());
  std::error_code ec;
  fs::create_directories(opts.out, ec);
  if (ec) return std::unexpected("create " + opts.out.string() + ": " + ec.message());
  ::chmod(opts.out.c_str(), 0700);
  auto ca_pem = pki::cert_to_pem(ca->cert.get());
  if (!ca_pem) return std::unexpected(ca_pem.error());
  if (auto w = pki::write_file_atomic(opts.out / "ca.crt", *ca_pem, 0644); !w) {
    return std::unexpected(w.error());
  }

  // The node API's serving certificate.
  pki::SubjectAltNames sans;
  sans.dns = {opts.node_name, "localhost"};
  sans.ips = {"127.0.0.1"};
  for (const std::string& ip : opts.node_ips) {
    if (std::find(sans.ips.begin(), sans.ips.end(), ip) == sans.ips.end()) sans.ips.push_back(ip);
  }
  auto same = [](std::vector<std::string> a, std::vector<std::string> b) {
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b;
  };
  auto fits_serving = [&](X509* c) {
    pki::SubjectAltNames have = pki::subject_alt_names(c);
    return same(have.dns, sans.dns) && same(have.ips, sans.ips);
  };
  const fs::path serving_crt = opts.out / "kubelet.crt";
  const fs::path serving_key = opts.out / "kubelet.key";
  if (!reusable(*ca, serving_crt, serving_key, fits_serving)) {
    auto id = pki::issue_serving_cert(*ca, "system:node:" + opts.node_name, sans);
    if (!id) return std::unexpected(id.error());
    if (auto w = pki::save_identity(*id, serving_crt, serving_key); !w) {
      return std::unexpected(w.error());
    }
  }

  // The node's client identity, written into its kubeconfig (the .crt/.key stay beside it so
  // that the next run can reuse them).
  std::vector<std::string> groups = {"system:nodes"};
  auto client = ensure_client(*ca, opts.out / "node.crt", opts.out / "node.key",
                              "system:node:" + opts.node_name, groups);
  if (!client) return std::unexpected(client.error());
  auto cert_pem = pki::cert_to_pem(client->cert.get());
  auto key_pem = pki::key_to_pem(client->key.get());
  if (!cert_pem) return std::unexpected(cert_pem.error());
  if (!key_pem) return std::unexpected(key_pem.error());
  kubeconfig::Config kc;
  kc.server = opts.server;
  kc.ca_pem = *ca_pem;
  kc.client_cert_pem = *cert_pem;
  kc.client_key_pem = *key_pem;
  kc.user_name = "system:node:" + opts.node_name;
  if (auto w = kubeconfig::write(opts.out / "node.kubeconfig", kc); !w) {
    return std::unexpected(w.error());
  }
  return {};
}

}  // namespace podwarp::apiserver
