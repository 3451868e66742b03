// Flow events of NetworkPolicy enforcement: what bpf/netpol.bpf.c puts into its pw_np_flows
// ring (struct podwarp_np_flow_event, bpf/lib/netpol.h) when it decides a new flow (allowed by
// a rule, allowed because no policy isolates the pod, or dropped), decoded and formatted, and a
// reader of the pinned ring. `podwarp trace` (cli/trace_cmd.cpp) is built on these.
//
// The pure part (decode_flow, format_flow_text, format_flow_json, protocol_name) is safe from
// any thread. A FlowReader is for one thread. The ring has a single consumer position in the
// kernel: two readers of one ring take events from each other, so read with one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "netpol/datapath.h"

namespace podwarp::noded::netpol {

// One decided new flow.
struct Flow {
  std::uint64_t mono_ns = 0;  // when, CLOCK_MONOTONIC (the BPF side's bpf_ktime_get_ns)
  std::chrono::system_clock::time_point time;  // the same instant on the wall clock
  std::uint32_t saddr = 0, daddr = 0;          // network order
  std::uint16_t sport = 0, dport = 0;          // host order (ICMP echo: the identifier)
  std::uint8_t proto = 0;                      // IPPROTO_*
  std::uint8_t dir = 0;                        // PODWARP_NP_DIR_*
  std::uint8_t reason = 0;                     // the counter index (PODWARP_NP_C_*)
  std::uint32_t ifindex = 0;                   // the host veth it was seen on
  std::uint32_t bytes = 0;                     // the first packet's length

  bool allowed() const;
  std::string_view verdict() const;      // "ALLOWED" / "DENIED"
  std::string_view reason_name() const;  // "AllowedNew", "Unisolated", "DeniedIngress", ...
  std::string_view direction() const;    // "ingress" / "egress" (of the pod the check is for)
  bool has_ports() const;                // TCP, UDP, SCTP
};

// A pod at one end of a flow.
struct PodRef {
  std::string ns;
  std::string name;
};

// CLOCK_REALTIME - CLOCK_MONOTONIC now, in ns: add it to a monotonic time to get the wall time.
// Measured once per reader (a later clock step does not move events already read).
std::int64_t monotonic_to_wall_ns();

// A ring sample into a Flow; nullopt when it is shorter than the event struct.
std::optional<Flow> decode_flow(std::span<const std::byte> sample, std::int64_t mono_to_wall_ns);

// "TCP", "UDP", "SCTP", "ICMP", else the number.
std::string protocol_name(std::uint8_t proto);

// One line, like `hubble observe`:
//   2026-11-24T00:31:02.123456Z DENIED  ingress default/client 10.244.0.5:43512 -> default/web
//   10.244.0.4:8081 TCP (DeniedIngress)
// An end without a pod shows its address only; protocols without ports show no ports.
std::string format_flow_text(const Flow& f, const std::optional<PodRef>& src,
                             const std::optional<PodRef>& dst);
// One JSON object (no newline): time (RFC 3339, microseconds, UTC), verdict, reason,
// direction, protocol, source and destination {ip, port (TCP/UDP/SCTP only), namespace, pod
// (when known)}, bytes, ifindex.
std::string format_flow_json(const Flow& f, const std::optional<PodRef>& src,
                             const std::optional<PodRef>& dst);

// Reads the pinned ring (<pin_dir>/pw_np_flows). Events older than open() (a backlog kept while
// nobody read) are skipped.
class FlowReader {
 public:
  // Gets each event; returns false to stop handing events in this poll (the rest stay in the
  // ring for the next one).
  using Callback = std::function<bool(const Flow&)>;

  // ENOENT when nothing is pinned at `path`; EINVAL when it is no ring buffer.
  static std::expected<std::unique_ptr<FlowReader>, Error> open(const std::string& path,
                                                                Callback on_flow);
  ~FlowReader();
  FlowReader(const FlowReader&) = delete;
  FlowReader& operator=(const FlowReader&) = delete;

  // Waits up to `timeout` for events and hands the new ones to the callback. Returns how many
  // it handed; 0 also when a signal interrupted the wait.
  std::expected<int, Error> poll(std::chrono::milliseconds timeout);
  // Events skipped as older than open().
  std::uint64_t skipped() const;

 private:
  FlowReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podwarp::noded::netpol
