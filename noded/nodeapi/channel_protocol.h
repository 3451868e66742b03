// The Kubernetes channel protocols of the node API's WebSocket streams (pure, no I/O):
//
//   exec / attach   subprotocols channel.k8s.io (v1), v2/v3/v4/v5.channel.k8s.io. Every binary
//                   message is <channel byte><payload>: 0 stdin, 1 stdout, 2 stderr, 3 error,
//                   4 resize (v3+, JSON {"Width":w,"Height":h}). v4+ write a metav1.Status as
//                   JSON on channel 3 when the command ends (Success, or Failure with reason
//                   NonZeroExitCode and details.causes[{reason: ExitCode, message: "N"}]);
//                   v1-v3 write only an error text there. v5 adds the client's half-close:
//                   the message {255, channel} (stdin closed).
//   port-forward    v4.channel.k8s.io / portforward.k8s.io: for the i-th requested port,
//                   channel 2i carries data and 2i+1 errors; the server's first message on each
//                   of the two carries the port as 2 bytes little-endian.
//   SPDY tunnel     SPDY/3.1+portforward.k8s.io: binary messages are slices of a SPDY/3.1 byte
//                   stream (spdy.h), no channel byte.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podwarp::noded::nodeapi {

enum class Channel : std::uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kError = 3, kResize = 4 };
inline constexpr std::uint8_t kStreamClose = 255;  // v5: {255, channel}

// Subprotocol versions of the exec/attach streams (1 = "channel.k8s.io").
inline constexpr std::string_view kExecProtocols[] = {"v5.channel.k8s.io", "v4.channel.k8s.io",
                                                      "v3.channel.k8s.io", "v2.channel.k8s.io",
                                                      "channel.k8s.io"};
inline constexpr std::string_view kPortForwardTunnelProtocol = "SPDY/3.1+portforward.k8s.io";
inline constexpr std::string_view kPortForwardProtocols[] = {"v4.channel.k8s.io",
                                                             "portforward.k8s.io"};

// The tokens of a Sec-WebSocket-Protocol header (comma separated, trimmed).
std::vector<std::string> split_protocols(std::string_view header);
// The first of the client's offered protocols (in its order) that is in `supported`.
std::optional<std::string> choose_protocol(std::string_view header,
                                           const std::vector<std::string_view>& supported);
// 1..5 for the exec protocols above; 0 for anything else.
int exec_protocol_version(std::string_view protocol);

// One channel message: <channel><data>.
std::string channel_frame(std::uint8_t channel, std::string_view data);

// The v4+ status messages of channel 3 (json.Marshal of a metav1.Status without TypeMeta).
std::string status_success_json();
std::string status_exit_code_json(int exit_code);
std::string status_failure_json(std::string_view message, std::string_view reason = "",
                                int code = 0);
// What v1-v3 write on the error channel for a non-zero exit.
std::string exit_code_error_text(int exit_code);

// {"Width":w,"Height":h} (resize channel); nullopt when malformed or out of range.
struct TermSize {
  std::uint16_t width = 0, height = 0;
};
std::optional<TermSize> parse_resize(std::string_view json);

// Query booleans as the kubelet reads them (strconv.ParseBool, plus a bare key as true).
bool query_bool(std::string_view v);

// The ports of a port-forward request: every "port"/"ports" value, each a comma separated list
// of 1..65535. Errors name the bad value.
std::expected<std::vector<std::uint16_t>, std::string> parse_ports(
    const std::vector<std::string>& values);
// The 2-byte little-endian port prefix of the first message of a port-forward channel.
std::string port_prefix(std::uint16_t port);

}  // namespace podwarp::noded::nodeapi
