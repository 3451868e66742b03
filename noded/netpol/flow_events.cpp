#include "netpol/flow_events.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netinet/in.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "lib/netpol.h"
#include "podwarp/json.h"
#include "podwarp/time.h"
#include "podwarp/unique_fd.h"

namespace podwarp::noded::netpol {
namespace {

static_assert(sizeof(podwarp_np_flow_event) == 32, "the ring's event layout");

std::int64_t clock_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string ip_string(std::uint32_t addr) {
  char buf[INET_ADDRSTRLEN] = {};
  in_addr a{addr};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// "ns/pod 10.244.0.5:43512", "10.244.0.5:43512", or without ":port".
std::string end_text(const Flow& f, std::uint32_t addr, std::uint16_t port,
                     const std::optional<PodRef>& pod) {
  std::string out;
  if (pod) out = pod->ns + "/" + pod->name + " ";
  out += ip_string(addr);
  if (f.has_ports()) out += ":" + std::to_string(port);
  return out;
}

json::object end_json(const Flow& f, std::uint32_t addr, std::uint16_t port,
                      const std::optional<PodRef>& pod) {
  json::object o;
  o["ip"] = ip_string(addr);
  if (f.has_ports()) o["port"] = port;
  if (pod) {
    o["namespace"] = pod->ns;
    o["pod"] = pod->name;
  }
  return o;
}

}  // namespace

bool Flow::allowed() const {
  return reason != PODWARP_NP_C_DENIED_INGRESS && reason != PODWARP_NP_C_DENIED_EGRESS;
}

std::string_view Flow::verdict() const { return allowed() ? "ALLOWED" : "DENIED"; }

std::string_view Flow::reason_name() const {
  std::string_view n = counter_name(reason);
  return n.empty() ? "Unknown" : n;
}

std::string_view Flow::direction() const {
  return dir == PODWARP_NP_DIR_EGRESS ? "egress" : "ingress";
}

bool Flow::has_ports() const {
  return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

std::int64_t monotonic_to_wall_ns() { return clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC); }

std::optional<Flow> decode_flow(std::span<const std::byte> sample, std::int64_t mono_to_wall_ns) {
  podwarp_np_flow_event e{};
  if (sample.size() < sizeof e) return std::nullopt;
  std::memcpy(&e, sample.data(), sizeof e);
  Flow f;
  f.mono_ns = e.ts_ns;
  f.time = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(static_cast<std::int64_t>(e.ts_ns) + mono_to_wall_ns)));
  f.saddr = e.saddr;
  f.daddr = e.daddr;
  f.sport = e.sport;
  f.dport = e.dport;
  f.proto = e.proto;
  f.dir = e.dir;
  f.reason = e.verdict;
  f.ifindex = e.ifindex;
  f.bytes = e.len;
  return f;
}

std::string protocol_name(std::uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return "TCP";
    case IPPROTO_UDP:
      return "UDP";
    case IPPROTO_SCTP:
      return "SCTP";
    case IPPROTO_ICMP:
      return "ICMP";
    default:
      return std::to_string(proto);
  }
}

std::string format_flow_text(const Flow& f, const std::optional<PodRef>& src,
                             const std::optional<PodRef>& dst) {
  std::string verdict(f.verdict());
  verdict.resize(7, ' ');  // "ALLOWED" / "DENIED "
  return format_rfc3339_micro(f.time) + " " + verdict + " " + std::string(f.direction()) + " " +
         end_text(f, f.saddr, f.sport, src) + " -> " + end_text(f, f.daddr, f.dport, dst) + " " +
         protocol_name(f.proto) + " (" + std::string(f.reason_name()) + ")";
}

std::string format_flow_json(const Flow& f, const std::optional<PodRef>& src,
                             const std::optional<PodRef>& dst) {
  json::object o;
  o["time"] = format_rfc3339_micro(f.time);
  o["verdict"] = f.verdict();
  o["reason"] = f.reason_name();
  o["direction"] = f.direction();
  o["protocol"] = protocol_name(f.proto);
  o["source"] = end_json(f, f.saddr, f.sport, src);
  o["destination"] = end_json(f, f.daddr, f.dport, dst);
  o["bytes"] = f.bytes;
  o["ifindex"] = f.ifindex;
  return to_json(o);
}

struct FlowReader::Impl {
  UniqueFd map;
  ring_buffer* ring = nullptr;
  Callback on_flow;
  std::uint64_t start_ns = 0;
  std::int64_t mono_to_wall = 0;
  std::uint64_t skipped = 0;
  int handed = 0;  // in the current poll

  ~Impl() {
    if (ring != nullptr) ring_buffer__free(ring);
  }

  // libbpf's sample callback: a negative return stops the poll after this sample.
  static int on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<Impl*>(ctx);
    auto f = decode_flow(std::span(static_cast<const std::byte*>(data), size), self->mono_to_wall);
    if (!f || f->mono_ns < self->start_ns) {
      ++self->skipped;
      return 0;
    }
    ++self->handed;
    return self->on_flow(*f) ? 0 : -ECANCELED;
  }
};

FlowReader::~FlowReader() = default;

std::expected<std::unique_ptr<FlowReader>, Error> FlowReader::open(const std::string& path,
                                                                   Callback on_flow) {
  auto impl = std::make_unique<Impl>();
  impl->on_flow = std::move(on_flow);
  impl->map.reset(bpf_obj_get(path.c_str()));
  if (!impl->map) return std::unexpected(errno_error("bpf_obj_get " + path));
  bpf_map_info info{};
  __u32 len = sizeof info;
  if (bpf_obj_get_info_by_fd(impl->map.get(), &info, &len) != 0)
    return std::unexpected(errno_error("bpf_obj_get_info_by_fd " + path));
  if (info.type != BPF_MAP_TYPE_RINGBUF)
    return std::unexpected(sys_error(
        EINVAL, path + " is a map of type " + std::to_string(info.type) + ", not a ring buffer"));
  impl->start_ns = static_cast<std::uint64_t>(clock_ns(CLOCK_MONOTONIC));
  impl->mono_to_wall = monotonic_to_wall_ns();
  impl->ring = ring_buffer__new(impl->map.get(), &Impl::on_sample, impl.get(), nullptr);
  if (impl->ring == nullptr) return std::unexpected(errno_error("ring_buffer__new " + path));
  std::unique_ptr<FlowReader> r(new FlowReader());
  r->impl_ = std::move(impl);
  return r;
}

std::expected<int, Error> FlowReader::poll(std::chrono::milliseconds timeout) {
  impl_->handed = 0;
  int r = ring_buffer__poll(impl_->ring, static_cast<int>(timeout.count()));
  if (r < 0 && r != -EINTR && r != -ECANCELED)
    return std::unexpected(sys_error(-r, "ring_buffer__poll " PODWARP_NP_MAP_FLOWS));
  return impl_->handed;
}

std::uint64_t FlowReader::skipped() const { return impl_->skipped; }

}  // namespace podwarp::noded::netpol
