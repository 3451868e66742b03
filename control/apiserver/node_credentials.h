// Credentials of a node joining the cluster (`podwarp-control node-credentials`) and the
// apiserver's own client certificate towards node APIs.
//
// write_node_credentials fills `out` with
//   ca.crt                the cluster CA (trust anchor for the apiserver and for node API clients)
//   node.kubeconfig       client cert CN=system:node:<name> O=system:nodes, server = `server`
//   kubelet.crt/.key      serving cert of the node API, SANs: <name>, localhost, 127.0.0.1 and
//                         every node IP
// Idempotent: files that still fit (signed by the CA, same subject/SANs, not near expiry)
// are kept. Nothing throws; errors name the file.
#pragma once

#include <expected>
#include <filesystem>
#include <string>
#include <vector>

namespace podwarp::apiserver {

struct NodeCredentialsOptions {
  std::filesystem::path pki_dir;  // <data-dir>/pki with ca.crt/ca.key
  std::string server;             // https://host:port of the apiserver
  std::string node_name;
  std::vector<std::string> node_ips;
  std::filesystem::path out;
};

std::expected<void, std::string> write_node_credentials(const NodeCredentialsOptions& opts);

// <pki_dir>/apiserver-kubelet-client.{crt,key}: CN=kube-apiserver-kubelet-client,
// O=system:masters, signed by the cluster CA (created or reused).
std::expected<void, std::string> ensure_kubelet_client_cert(const std::filesystem::path& pki_dir);

}  // namespace podwarp::apiserver
