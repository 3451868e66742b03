#include "podwarp/kubeconfig.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "podwarp/pki.h"

namespace podwarp::kubeconfig {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The scalar at n[key] when n is a map holding a scalar there, else "".
std::string scalar(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap()) return {};
  const YAML::Node v = n[key];
  if (!v || !v.IsScalar()) return {};
  return v.Scalar();
}

// The "cluster"/"user"/"context" body of the entry named `name` in the list n[list_key].
std::optional<YAML::Node> named_entry(const YAML::Node& root, const char* list_key,
                                      const char* body_key, std::string_view name) {
  const YAML::Node list = root[list_key];
  if (!list || !list.IsSequence()) return std::nullopt;
  for (const YAML::Node& entry : list) {
    if (scalar(entry, "name") == name) {
      const YAML::Node body = entry[body_key];
      if (body && body.IsMap()) return body;
      return YAML::Node(YAML::NodeType::Map);
    }
  }
  return std::nullopt;
}

fs::path resolve(const fs::path& base_dir, const std::string& p) {
  fs::path path(p);
  if (path.is_relative() && !base_dir.empty()) path = base_dir / path;
  return path.lexically_normal();
}

// Fills `pem` from the inline base64 field or the file field of `body`.
Result<void> read_credential(const YAML::Node& body, const char* data_key, const char* file_key,
                             const fs::path& base_dir, std::string& pem, fs::path& file) {
  if (std::string data = scalar(body, data_key); !data.empty()) {
    auto decoded = base64_decode(data);
    if (!decoded) return std::unexpected(fmt::format("{}: {}", data_key, decoded.error()));
    pem = std::move(*decoded);
    return {};
  }
  if (std::string p = scalar(body, file_key); !p.empty()) {
    file = resolve(base_dir, p);
    auto text = pki::read_file(file);
    if (!text) return std::unexpected(fmt::format("{}: {}", file_key, text.error()));
    pem = std::move(*text);
  }
  return {};
}

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(data[k]));
  };
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (std::size_t rest = data.size() - i; rest > 0) {
    std::uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::array<int, 256> value;
  value.fill(-1);
  for (std::size_t k = 0; k < kAlphabet.size(); ++k) {
    value[static_cast<unsigned char>(kAlphabet[k])] = static_cast<int>(k);
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  int padding = 0;
  std::size_t symbols = 0;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      ++symbols;
      continue;
    }
    int v = value[static_cast<unsigned char>(c)];
    if (v < 0 || padding > 0) return std::unexpected("invalid base64 data");
    ++symbols;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  if (symbols % 4 != 0 || padding > 2) return std::unexpected("invalid base64 length");
  return out;
}

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  auto q = [&](const std::string& s) -> YAML::Emitter& { return out << YAML::DoubleQuoted << s; };
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "v1";
  out << YAML::Key << "kind" << YAML::Value << "Config";

  out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  q(c.cluster_name);
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "server" << YAML::Value;
  q(c.server);
  if (!c.ca_pem.empty()) {
    out << YAML::Key << "certificate-authority-data" << YAML::Value << base64_encode(c.ca_pem);
  } else if (!c.ca_file.empty()) {
    out << YAML::Key << "certificate-authority" << YAML::Value;
    q(c.ca_file.string());
  }
  if (c.insecure_skip_tls_verify) {
    out << YAML::Key << "insecure-skip-tls-verify" << YAML::Value << true;
  }
  if (!c.tls_server_name.empty()) {
    out << YAML::Key << "tls-server-name" << YAML::Value;
    q(c.tls_server_name);
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;

  out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  q(c.user_name);
  out << YAML::Key << "user" << YAML::Value << YAML::BeginMap;
  if (!c.client_cert_pem.empty()) {
    out << YAML::Key << "client-certificate-data" << YAML::Value
        << base64_encode(c.client_cert_pem);
  } else if (!c.client_cert_file.empty()) {
    out << YAML::Key << "client-certificate" << YAML::Value;
    q(c.client_cert_file.string());
  }
  if (!c.client_key_pem.empty()) {
    out << YAML::Key << "client-key-data" << YAML::Value << base64_encode(c.client_key_pem);
  } else if (!c.client_key_file.empty()) {
    out << YAML::Key << "client-key" << YAML::Value;
    q(c.client_key_file.string());
  }
  if (!c.token.empty()) {
    out << YAML::Key << "token" << YAML::Value;
    q(c.token);
  } else if (!c.token_file.empty()) {
    out << YAML::Key << "tokenFile" << YAML::Value;
    q(c.token_file.string());
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;

  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value;
  q(c.context_name);
  out << YAML::Key << "context" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "cluster" << YAML::Value;
  q(c.cluster_name);
  out << YAML::Key << "user" << YAML::Value;
  q(c.user_name);
  if (!c.default_namespace.empty()) {
    out << YAML::Key << "namespace" << YAML::Value;
    q(c.default_namespace);
  }
  out << YAML::EndMap << YAML::EndMap << YAML::EndSeq;

  out << YAML::Key << "current-context" << YAML::Value;
  q(c.context_name);
  out << YAML::Key << "preferences" << YAML::Value << YAML::BeginMap << YAML::EndMap;
  out << YAML::EndMap;
  std::string text = out.c_str();
  text += '\n';
  return text;
}

Result<void> write(const fs::path& path, const Config& config) {
  return pki::write_file_atomic(path, to_yaml(config), 0600);
}

Result<Config> parse(std::string_view yaml, const fs::path& base_dir, std::string_view context) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return std::unexpected(fmt::format("parse YAML: {}", e.what()));
  }
  if (!root.IsMap()) return std::unexpected("not a kubeconfig: top level is not a map");

  Config c;
  try {
    c.context_name = context.empty() ? scalar(root, "current-context") : std::string(context);
    if (c.context_name.empty()) return std::unexpected("no current-context and no context given");
    const auto ctx_entry = named_entry(root, "contexts", "context", c.context_name);
    if (!ctx_entry) return std::unexpected(fmt::format("context \"{}\" not found", c.context_name));
    const YAML::Node& ctx = *ctx_entry;
    c.cluster_name = scalar(ctx, "cluster");
    c.user_name = scalar(ctx, "user");
    c.default_namespace = scalar(ctx, "namespace");

    const auto cluster_entry = named_entry(root, "clusters", "cluster", c.cluster_name);
    if (!cluster_entry) {
      return std::unexpected(
          fmt::format("context \"{}\": cluster \"{}\" not found", c.context_name, c.cluster_name));
    }
    const YAML::Node& cluster = *cluster_entry;
    c.server = scalar(cluster, "server");
    if (c.server.empty()) {
      return std::unexpected(fmt::format("cluster \"{}\" has no server", c.cluster_name));
    }
    c.insecure_skip_tls_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";
    c.tls_server_name = scalar(cluster, "tls-server-name");
    if (auto r = read_credential(cluster, "certificate-authority-data", "certificate-authority",
                                 base_dir, c.ca_pem, c.ca_file);
        !r) {
      return std::unexpected(fmt::format("cluster \"{}\": {}", c.cluster_name, r.error()));
    }

    // A context without a user (or a user entry without credentials) is anonymous.
    if (!c.user_name.empty()) {
      const auto user_entry = named_entry(root, "users", "user", c.user_name);
      if (!user_entry) {
        return std::unexpected(
            fmt::format("context \"{}\": user \"{}\" not found", c.context_name, c.user_name));
      }
      const YAML::Node& user = *user_entry;
      auto user_error = [&](const std::string& e) {
        return std::unexpected(fmt::format("user \"{}\": {}", c.user_name, e));
      };
      if (auto r = read_credential(user, "client-certificate-data", "client-certificate", base_dir,
                                   c.client_cert_pem, c.client_cert_file);
          !r) {
        return user_error(r.error());
      }
      if (auto r = read_credential(user, "client-key-data", "client-key", base_dir,
                                   c.client_key_pem, c.client_key_file);
          !r) {
        return user_error(r.error());
      }
      c.token = scalar(user, "token");
      if (std::string tf = scalar(user, "tokenFile"); c.token.empty() && !tf.empty()) {
        c.token_file = resolve(base_dir, tf);
        auto text = pki::read_file(c.token_file);
        if (!text) return user_error(fmt::format("tokenFile: {}", text.error()));
        std::string& t = *text;
        while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) {
          t.pop_back();
        }
        c.token = std::move(t);
      }
    }
  } catch (const YAML::Exception& e) {
    return std::unexpected(fmt::format("read kubeconfig: {}", e.what()));
  }
  return c;
}

Result<Config> load(const fs::path& path, std::string_view context) {
  auto text = pki::read_file(path);
  if (!text) return std::unexpected(text.error());
  fs::path base = path.parent_path();
  if (base.empty()) base = ".";
  std::error_code ec;
  if (fs::path abs = fs::absolute(base, ec); !ec) base = abs;
  auto config = parse(*text, base, context);
  if (!config)
    return std::unexpected(fmt::format("kubeconfig {}: {}", path.string(), config.error()));
  return config;
}

}  // namespace podwarp::kubeconfig
