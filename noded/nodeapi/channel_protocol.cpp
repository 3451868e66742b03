#include "nodeapi/channel_protocol.h"

#include <fmt/format.h>

#include <charconv>

#include "podwarp/json.h"

namespace podwarp::noded::nodeapi {

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

std::vector<std::string> split_protocols(std::string_view header) {
  std::vector<std::string> out;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto tok = trim(header.substr(0, comma));
    if (!tok.empty()) out.emplace_back(tok);
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<std::string> choose_protocol(std::string_view header,
                                           const std::vector<std::string_view>& supported) {
  for (const auto& p : split_protocols(header))
    for (auto s : supported)
      if (p == s) return p;
  return std::nullopt;
}

int exec_protocol_version(std::string_view p) {
  if (p == "channel.k8s.io") return 1;
  if (p == "v2.channel.k8s.io") return 2;
  if (p == "v3.channel.k8s.io") return 3;
  if (p == "v4.channel.k8s.io") return 4;
  if (p == "v5.channel.k8s.io") return 5;
  return 0;
}

std::string channel_frame(std::uint8_t channel, std::string_view data) {
  std::string f;
  f.reserve(data.size() + 1);
  f.push_back(static_cast<char>(channel));
  f.append(data);
  return f;
}

std::string status_success_json() {
  return to_json(json::object{{"metadata", json::object()}, {"status", "Success"}});
}

std::string status_exit_code_json(int exit_code) {
  json::object cause{{"reason", "ExitCode"}, {"message", std::to_string(exit_code)}};
  return to_json(json::object{
      {"metadata", json::object()},
      {"status", "Failure"},
      {"message", exit_code_error_text(exit_code)},
      {"reason", "NonZeroExitCode"},
      {"details", json::object{{"causes", json::array{cause}}}}});
}

std::string status_failure_json(std::string_view message, std::string_view reason, int code) {
  json::object o{{"metadata", json::object()}, {"status", "Failure"}, {"message", message}};
  if (!reason.empty()) o["reason"] = reason;
  if (code != 0) o["code"] = code;
  return to_json(o);
}

std::string exit_code_error_text(int exit_code) {
  return fmt::format("command terminated with non-zero exit code: exit status {}", exit_code);
}

std::optional<TermSize> parse_resize(std::string_view text) {
  auto v = parse_json(text);
  if (!v || !v->is_object()) return std::nullopt;
  auto num = [&](std::string_view k) -> std::optional<std::uint16_t> {
    const auto* f = v->as_object().if_contains(k);
    if (f == nullptr) return std::uint16_t{0};
    std::int64_t n;
    if (f->is_int64()) {
      n = f->as_int64();
    } else if (f->is_uint64()) {
      n = static_cast<std::int64_t>(std::min<std::uint64_t>(f->as_uint64(), 1u << 20));
    } else {
      return std::nullopt;
    }
    if (n < 0 || n > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(n);
  };
  auto w = num("Width"), h = num("Height");
  if (!w || !h) return std::nullopt;
  return TermSize{*w, *h};
}

bool query_bool(std::string_view v) {
  return v.empty() || v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" ||
         v == "True";
}

std::expected<std::vector<std::uint16_t>, std::string> parse_ports(
    const std::vector<std::string>& values) {
  std::vector<std::uint16_t> out;
  for (const auto& value : values) {
    if (value.empty()) return std::unexpected("query parameter \"port\" cannot be empty");
    std::string_view rest = value;
    for (;;) {
      auto comma = rest.find(',');
      auto tok = trim(rest.substr(0, comma));
      unsigned n = 0;
      auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), n);
      if (ec != std::errc() || p != tok.data() + tok.size() || tok.empty() || n > 65535)
        return std::unexpected(fmt::format("unable to parse \"{}\" as a port: invalid syntax", tok));
      if (n < 1) return std::unexpected(fmt::format("port \"{}\" must be > 0", tok));
      out.push_back(static_cast<std::uint16_t>(n));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

std::string port_prefix(std::uint16_t port) {
  std::string s(2, '\0');
  s[0] = static_cast<char>(port & 0xff);
  s[1] = static_cast<char>(port >> 8);
  return s;
}

}  // namespace podwarp::noded::nodeapi
