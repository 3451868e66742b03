#include "dns/responder.h"

namespace podwarp::noded::dns {

namespace {

std::size_t limit_for(const Message& q, Transport t) {
  return t == Transport::kUdp ? udp_limit(q) : 65535;
}

Decision reply(Message m, const Message& q, Transport t) {
  Decision d;
  d.kind = Decision::kReply;
  d.rcode = m.rcode;
  d.reply = encode(m, limit_for(q, t));
  d.query = q;
  return d;
}

}  // namespace

Decision Responder::handle(std::span<const std::uint8_t> wire, Transport t) const {
  QueryCheck c = check_query(wire);
  switch (c.kind) {
    case QueryCheck::kDrop: {
      Decision d;
      d.kind = Decision::kDrop;
      d.reason = c.reason;
      return d;
    }
    case QueryCheck::kFormErr: {
      Decision d = reply(error_response(c.msg, rcode::kFormErr), c.msg, t);
      d.reason = c.reason;
      return d;
    }
    case QueryCheck::kNotImp:
      return reply(error_response(c.msg, rcode::kNotImp), c.msg, t);
    case QueryCheck::kBadVers:
      return reply(error_response(c.msg, rcode::kBadVers), c.msg, t);
    case QueryCheck::kOk:
      break;
  }
  const Message& q = c.msg;
  const Question& question = q.questions.front();
  bool ours = records_.in_zone(question.name);
  if (ours && question.qclass != kClassIN && question.qclass != 255)
    return reply(error_response(q, rcode::kRefused), q, t);
  LookupResult res;
  if (ours || question.qtype == type::kPTR) res = records_.lookup(question.name, question.qtype);
  else res.kind = LookupResult::kNotOurs;
  if (res.kind == LookupResult::kNotOurs) {
    Decision d;
    d.kind = Decision::kForward;
    d.query = q;
    return d;
  }
  Message m;
  m.id = q.id;
  m.qr = true;
  m.aa = true;
  m.rd = q.rd;
  m.ra = true;
  m.cd = q.cd;
  m.rcode = res.rcode;
  m.questions = q.questions;
  m.answer = std::move(res.answer);
  m.authority = std::move(res.authority);
  m.additional = std::move(res.additional);
  if (q.edns) {
    Edns e;
    e.udp_size = static_cast<std::uint16_t>(kMaxUdpPayload);
    e.do_bit = q.edns->do_bit;
    m.edns = e;
  }
  if (res.external_target && q.rd) {
    Decision d;
    d.kind = Decision::kReply;
    d.rcode = m.rcode;
    d.query = q;
    d.chase = true;
    d.chase_target = *res.external_target;
    d.reply = encode(m, limit_for(q, t));  // what to send if the chase fails
    d.partial = std::move(m);
    return d;
  }
  return reply(std::move(m), q, t);
}

std::vector<std::uint8_t> Responder::complete_chase(const Decision& d,
                                                    std::span<const std::uint8_t> upstream_reply,
                                                    Transport t) {
  Message m = d.partial;
  auto up = parse_message(upstream_reply);
  if (up && up->qr) {
    // The upstream's answer is not authoritative for our zone's CNAME: clear AA, as a
    // recursive server does for a chased chain.
    m.aa = false;
    for (auto& rr : up->answer)
      if (rr.type == type::kA || rr.type == type::kAAAA || rr.type == type::kCNAME)
        m.answer.push_back(std::move(rr));
    if (up->rcode == rcode::kNxDomain) m.rcode = rcode::kNxDomain;
  }
  return encode(m, limit_for(d.query, t));
}

std::vector<std::uint8_t> Responder::make_query(const Name& name, std::uint16_t qtype,
                                                std::uint16_t id) {
  Message q;
  q.id = id;
  q.rd = true;
  q.questions.push_back(Question{name, qtype, kClassIN});
  Edns e;
  e.udp_size = static_cast<std::uint16_t>(kMaxUdpPayload);
  q.edns = e;
  return encode(q);
}

}  // namespace podwarp::noded::dns
