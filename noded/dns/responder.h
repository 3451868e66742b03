// Responder: one DNS query in, what to do about it out. Pure (no sockets): the server calls it
// for every UDP datagram and TCP frame.
//
//   malformed (but a header)        -> FORMERR        (too short, or a response: dropped)
//   opcode != QUERY                 -> NOTIMP;  EDNS version != 0 -> BADVERS
//   class != IN inside the zone     -> REFUSED
//   name inside the cluster zone    -> the answer from ClusterRecords (AA set), never forwarded
//   anything else (and reverse names the cluster does not know) -> forward upstream
//
// UDP answers fit udp_limit(query) (512 without EDNS): the additional section goes first,
// then TC=1 with no records so that the client retries over TCP. An OPT is echoed when the
// query had one.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dns/records.h"
#include "dns/wire.h"

namespace podwarp::noded::dns {

enum class Transport { kUdp, kTcp };

struct Decision {
  enum Kind { kReply, kForward, kDrop } kind = kDrop;
  std::vector<std::uint8_t> reply;  // kReply: the encoded response
  std::uint16_t rcode = 0;          // kReply: for metrics
  std::string reason;               // kDrop / errors: for logs
  Message query;                    // kForward (and kReply when parsed): the parsed query
  // kReply with an ExternalName CNAME to a name outside the zone: the unencoded response, so
  // that the server can resolve `chase` upstream and append (complete_chase).
  bool chase = false;
  Message partial;
  Name chase_target;
};

class Responder {
 public:
  explicit Responder(const ClusterRecords& records) : records_(records) {}

  Decision handle(std::span<const std::uint8_t> wire, Transport t) const;

  // Appends the A/AAAA/CNAME answers of `upstream_reply` (a response for chase_target) to the
  // partial response and encodes it; with no usable reply the CNAME alone is sent.
  static std::vector<std::uint8_t> complete_chase(const Decision& d,
                                                  std::span<const std::uint8_t> upstream_reply,
                                                  Transport t);

  // Helper for the chase: a recursive query for `name`/`qtype` with id `id`.
  static std::vector<std::uint8_t> make_query(const Name& name, std::uint16_t qtype,
                                              std::uint16_t id);

 private:
  const ClusterRecords& records_;
};

}  // namespace podwarp::noded::dns
