// kubeconfig files: the admin.kubeconfig that stock kubectl and the official Python client
// read, and the files podwarp's own components use to reach the apiserver.
//
// A Config is the flattened view of one context: its cluster (server, CA) and its user
// (client certificate and key, or a bearer token). Writing produces a v1 Config document with
// one cluster, one user and one context (names from the Config), with credentials inline as
// base64 "-data" fields unless only file paths are set. Loading reads any kubeconfig: it picks
// the current context (or the one named), accepts inline data as well as file paths, resolves
// relative paths against the kubeconfig's folder, and reads those files into the *_pem fields.
//
// Files are written atomically with mode 0600 (they hold private keys). Nothing throws; the
// errors name the path. All functions are pure apart from their file access and are safe to
// call from any thread.
#pragma once

#include <expected>
#include <filesystem>
#include <string>
#include <string_view>

namespace podwarp::kubeconfig {

template <class T>
using Result = std::expected<T, std::string>;

struct Config {
  std::string server;  // "https://127.0.0.1:6443"
  // PEM texts. When loading, these are filled from inline data or from the files below.
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;
  // File variants (certificate-authority, client-certificate, client-key, tokenFile). On load
  // they are absolute (resolved against the kubeconfig's folder); empty when the data was
  // inline. On write they are used only when the matching PEM/token field is empty.
  std::filesystem::path ca_file;
  std::filesystem::path client_cert_file;
  std::filesystem::path client_key_file;
  std::filesystem::path token_file;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string default_namespace;  // the context's namespace; empty means "default"
  // Entry names: written as given, filled in on load.
  std::string cluster_name = "podwarp";
  std::string user_name = "admin";
  std::string context_name = "podwarp";
};

// The YAML text of a kubeconfig for `config`.
std::string to_yaml(const Config& config);

// Writes to_yaml(config) to `path` atomically with mode 0600.
Result<void> write(const std::filesystem::path& path, const Config& config);

// Parses a kubeconfig text. `base_dir` resolves relative file paths; `context` picks a context
// by name (empty: current-context).
Result<Config> parse(std::string_view yaml, const std::filesystem::path& base_dir,
                     std::string_view context = {});

// Reads and parses the kubeconfig at `path` (relative paths inside resolve against its folder).
Result<Config> load(const std::filesystem::path& path, std::string_view context = {});

// RFC 4648 base64 (standard alphabet, padded). decode ignores ASCII whitespace.
std::string base64_encode(std::string_view data);
Result<std::string> base64_decode(std::string_view text);

}  // namespace podwarp::kubeconfig
