// SPDX-License-Identifier: GPL-2.0
/* nodeport: NodePort, externalIP and LoadBalancer-IP services for clients outside the node,
 * at tc on the node's own interfaces (IPv4, TCP and UDP). Clients on the node never get here:
 * their sockets are translated by sock_lb.bpf.c before a packet exists.
 *
 * A new flow to a frontend gets a backend (lb_pick: random, or the remembered one with
 * sessionAffinity ClientIP keyed by the client address) and two conntrack entries (lib/lb.h,
 * pw_lb_ct4):
 *   - local backend (on this node: externalTrafficPolicy Local always, Cluster sometimes): the
 *     packet is DNATed to the backend and the kernel routes it to the pod; the pod's reply
 *     leaves through an interface's egress, where pw_nodeport_egress rewrites its source back
 *     to the frontend. The client address is kept (externalTrafficPolicy Local's point).
 *   - remote backend (externalTrafficPolicy Cluster): the packet is DNATed and SNATed to the
 *     node (source port from 61000..65535, outside ip_local_port_range) and sent on from tc
 *     itself after a FIB lookup (bpf_redirect_neigh); the reply comes back to this node, where
 *     pw_nodeport_ingress rewrites both addresses back and sends it to the client the same way.
 *
 * Egress masquerade (issue 6: "egress leaving the cluster is masqueraded by BPF"): a pod's
 * packet (source in pw_lb_masq_src, the cluster CIDRs) leaving an interface listed in
 * pw_lb_masq_if towards a destination outside pw_lb_no_masq and not a node address gets the
 * interface's address and a port of the SNAT range at pw_nodeport_egress (TCP, UDP, ICMP echo
 * with the identifier as port); the answer is rewritten back to the pod at pw_nodeport_ingress
 * and routed to it by the kernel (the pod's /32 route). Same conntrack map and port range as
 * the NodePort SNAT.
 *
 * Checksums are fixed incrementally (bpf_l3_csum_replace / bpf_l4_csum_replace with the
 * pseudo-header flag; zero UDP checksums stay zero). Every drop counts under a reason in
 * pw_lb_drops. Not handled here: IPv6, SCTP (ports under a CRC32c), ICMP errors about
 * translated flows, and IPv4 fragments (a fragmented packet to a service is dropped, counted
 * as FragmentToService; fragments of a pod's masqueraded flow as MasqueradeFragment). */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb.h"
#include "lib/lb_maps.h"

/* From headers vmlinux.h does not carry (uapi #defines). */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define AF_INET 2
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define SNAT_TRIES 16
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_CT4);
  __type(key, struct podwarp_ct4_key);
  __type(value, struct podwarp_ct4);
} pw_lb_ct4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_LB_MAX_MASQ_IFS);
  __type(key, __u32);
  __type(value, struct podwarp_lb_masq_if);
} pw_lb_masq_if SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, PODWARP_LB_MAX_MASQ_CIDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct podwarp_lb_lpm4_key);
  __type(value, __u8);
} pw_lb_masq_src SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, PODWARP_LB_MAX_MASQ_CIDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct podwarp_lb_lpm4_key);
  __type(value, __u8);
} pw_lb_no_masq SEC(".maps");

/* What the parser found. */
struct pkt4 {
  __u32 l4_off;
  __u32 csum_off;  /* offset of the L4 checksum */
  __u32 sport_off; /* where sport/dport are in the packet; 0: not there (ICMP echo has one */
  __u32 dport_off; /* identifier: the request's sport, the reply's dport) */
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 tcp_flags;
  __u8 fragment; /* first fragment of a fragmented packet (MF set, offset 0) */
  __u8 pad;
};

enum parse_result {
  PARSE_OK,       /* IPv4 TCP/UDP with ports, or ICMP echo request/reply */
  PARSE_PASS,     /* not ours: other protocols, ICMP other than echo */
  PARSE_SHORT,    /* TCP/UDP/ICMP header cut short */
  PARSE_FRAGMENT  /* a non-first fragment of TCP/UDP/ICMP: addresses and proto only */
};

static __always_inline enum parse_result parse4(struct __sk_buff *skb, struct pkt4 *p)
{
  if (skb->protocol != bpf_htons(ETH_P_IP))
    return PARSE_PASS;
  struct iphdr ip;
  if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof ip))
    return PARSE_PASS;
  if (ip.version != 4 || ip.ihl < 5)
    return PARSE_PASS;
  if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_ICMP)
    return PARSE_PASS;
  p->proto = ip.protocol;
  p->saddr = ip.saddr;
  p->daddr = ip.daddr;
  __u16 frag = bpf_ntohs(ip.frag_off);
  if (frag & IP_OFFSET)
    return PARSE_FRAGMENT;
  p->fragment = (frag & IP_MF) ? 1 : 0;
  p->l4_off = ETH_HLEN + ip.ihl * 4;
  p->tcp_flags = 0;
  if (ip.protocol == IPPROTO_ICMP) {
    __u8 icmp[8]; /* type, code, checksum, identifier, sequence */
    if (bpf_skb_load_bytes(skb, p->l4_off, icmp, sizeof icmp))
      return PARSE_SHORT;
    __be16 id;
    __builtin_memcpy(&id, &icmp[4], sizeof id);
    p->csum_off = p->l4_off + 2;
    if (icmp[0] == ICMP_ECHO && icmp[1] == 0) {
      p->sport = id;
      p->dport = 0;
      p->sport_off = p->l4_off + 4;
      p->dport_off = 0;
    } else if (icmp[0] == ICMP_ECHOREPLY && icmp[1] == 0) {
      p->sport = 0;
      p->dport = id;
      p->sport_off = 0;
      p->dport_off = p->l4_off + 4;
    } else {
      return PARSE_PASS;
    }
    return PARSE_OK;
  }
  p->csum_off = p->l4_off + (ip.protocol == IPPROTO_TCP ? 16 : 6);
  p->sport_off = p->l4_off;
  p->dport_off = p->l4_off + 2;
  __be16 ports[2];
  if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof ports))
    return PARSE_SHORT;
  p->sport = ports[0];
  p->dport = ports[1];
  if (ip.protocol == IPPROTO_TCP) {
    __u8 flags;
    if (bpf_skb_load_bytes(skb, p->l4_off + 13, &flags, 1))
      return PARSE_SHORT;
    p->tcp_flags = flags;
  } else {
    __u8 udp[8];
    if (bpf_skb_load_bytes(skb, p->l4_off, udp, sizeof udp))
      return PARSE_SHORT;
  }
  return PARSE_OK;
}

static __always_inline int rewrite_addr(struct __sk_buff *skb, const struct pkt4 *p, __u32 off,
                                        __be32 from, __be32 to)
{
  /* TCP and UDP checksums cover the addresses (pseudo header); ICMP's does not. */
  __u64 l4 = BPF_F_PSEUDO_HDR | sizeof(to) | (p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);
  if (p->proto != IPPROTO_ICMP && bpf_l4_csum_replace(skb, p->csum_off, from, to, l4))
    return -1;
  if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from, to, sizeof(to)))
    return -1;
  return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0) ? -1 : 0;
}

static __always_inline int rewrite_port(struct __sk_buff *skb, const struct pkt4 *p, __u32 off,
                                        __be16 from, __be16 to)
{
  __u64 l4 = sizeof(to) | (p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);
  if (bpf_l4_csum_replace(skb, p->csum_off, from, to, l4))
    return -1;
  return bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0) ? -1 : 0;
}

/* Rewrites the packet's 4-tuple to the entry's nat_* fields (only what differs). */
static __always_inline int rewrite4(struct __sk_buff *skb, const struct pkt4 *p,
                                    const struct podwarp_ct4 *ct)
{
  if (ct->nat_saddr != p->saddr &&
      rewrite_addr(skb, p, ETH_HLEN + offsetof(struct iphdr, saddr), p->saddr, ct->nat_saddr))
    return -1;
  if (ct->nat_daddr != p->daddr &&
      rewrite_addr(skb, p, ETH_HLEN + offsetof(struct iphdr, daddr), p->daddr, ct->nat_daddr))
    return -1;
  if (ct->nat_sport != p->sport &&
      (!p->sport_off || rewrite_port(skb, p, p->sport_off, p->sport, ct->nat_sport)))
    return -1;
  if (ct->nat_dport != p->dport &&
      (!p->dport_off || rewrite_port(skb, p, p->dport_off, p->dport, ct->nat_dport)))
    return -1;
  return 0;
}

/* Sends a rewritten packet on towards `daddr` from tc: FIB lookup, then redirect with the
 * neighbour's address filled in by the kernel. */
static __always_inline int fib_redirect(struct __sk_buff *skb, const struct podwarp_ct4 *ct,
                                        __u8 proto)
{
  struct bpf_fib_lookup fib = {};
  fib.family = AF_INET;
  fib.l4_protocol = proto;
  fib.tot_len = (__u16)(skb->len - ETH_HLEN);
  fib.ipv4_src = ct->nat_saddr;
  fib.ipv4_dst = ct->nat_daddr;
  __u32 ingress = skb->ingress_ifindex;
  __u32 ifindex = skb->ifindex;
  barrier_var(ingress); /* keep two plain ctx loads: the verifier rejects a selected ctx offset */
  fib.ifindex = ingress ? ingress : ifindex;
  long ret = bpf_fib_lookup(skb, &fib, sizeof fib, 0);
  if (ret == BPF_FIB_LKUP_RET_SUCCESS || ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
    struct bpf_redir_neigh nh = {};
    nh.nh_family = AF_INET;
    nh.ipv4_nh = fib.ipv4_dst; /* the next hop (gateway or the destination itself) */
    return (int)bpf_redirect_neigh(fib.ifindex, &nh, sizeof nh, 0);
  }
  lb_drop(PODWARP_LB_DROP_FIB, skb->len);
  return TC_ACT_SHOT;
}

static __always_inline __u64 ct_lifetime_ns(__u8 proto, __u32 flags)
{
  __u64 s = (flags & PODWARP_CT_F_CLOSING) ? PODWARP_CT_LIFETIME_CLOSING
            : proto == IPPROTO_TCP         ? PODWARP_CT_LIFETIME_TCP
            : proto == IPPROTO_ICMP        ? PODWARP_CT_LIFETIME_ICMP
                                           : PODWARP_CT_LIFETIME_UDP;
  return s * NSEC_PER_SEC;
}

static __always_inline int ct_expired(const struct podwarp_ct4 *ct, __u8 proto, __u64 now)
{
  return now - ct->last_seen_ns > ct_lifetime_ns(proto, ct->flags);
}

static __always_inline void ct_touch(struct podwarp_ct4 *ct, const struct pkt4 *p, __u64 now)
{
  ct->last_seen_ns = now;
  if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
    ct->flags |= PODWARP_CT_F_CLOSING;
}

/* The REPLY key of a FWD entry: the backend's answer to the translated packet. */
static __always_inline void reply_key(struct podwarp_ct4_key *rk, const struct podwarp_ct4 *fwd,
                                      __u8 proto)
{
  rk->saddr = fwd->nat_daddr;
  rk->daddr = fwd->nat_saddr;
  rk->sport = fwd->nat_dport;
  rk->dport = fwd->nat_sport;
  rk->proto = proto;
  rk->dir = PODWARP_CT_DIR_REPLY;
  rk->pad = 0;
}

/* Applies a conntrack entry to the packet: rewrite, then hand to the kernel or redirect. */
static __always_inline int ct_apply(struct __sk_buff *skb, const struct pkt4 *p,
                                    const struct podwarp_ct4 *ct, __u32 event)
{
  if (rewrite4(skb, p, ct)) {
    lb_drop(PODWARP_LB_DROP_REWRITE, skb->len);
    return TC_ACT_SHOT;
  }
  lb_event(event, skb->len);
  if (ct->flags & PODWARP_CT_F_REDIRECT)
    return fib_redirect(skb, ct, p->proto);
  return TC_ACT_OK;
}

/* Reserves a SNAT port for a flow to a remote backend: inserts its REPLY entry under the first
 * free port of the range (starting at a random one). Returns 0 with fwd->nat_sport set. */
static __always_inline int snat_reserve(struct podwarp_ct4 *fwd, struct podwarp_ct4 *rev,
                                        __u8 proto, __u64 now)
{
  __u32 k0 = 0;
  struct podwarp_lb_config *cfg = bpf_map_lookup_elem(&pw_lb_config, &k0);
  __u32 lo = PODWARP_LB_SNAT_PORT_MIN_DEFAULT, hi = PODWARP_LB_SNAT_PORT_MAX_DEFAULT;
  if (cfg && cfg->snat_port_min && cfg->snat_port_max >= cfg->snat_port_min) {
    lo = cfg->snat_port_min;
    hi = cfg->snat_port_max;
  }
  __u32 range = hi - lo + 1;
  __u32 start = bpf_get_prandom_u32();
  struct podwarp_ct4_key rk = {};
#pragma unroll
  for (int i = 0; i < SNAT_TRIES; i++) {
    fwd->nat_sport = bpf_htons((__u16)(lo + (start + i) % range));
    reply_key(&rk, fwd, proto);
    if (bpf_map_update_elem(&pw_lb_ct4, &rk, rev, BPF_NOEXIST) == 0)
      return 0;
    struct podwarp_ct4 *old = bpf_map_lookup_elem(&pw_lb_ct4, &rk);
    if (old && ct_expired(old, proto, now) &&
        bpf_map_update_elem(&pw_lb_ct4, &rk, rev, BPF_ANY) == 0)
      return 0;
  }
  return -1;
}

/* A new flow from a client to a frontend: pick, record, translate. */
static __always_inline int nodeport_new_flow(struct __sk_buff *skb, const struct pkt4 *p,
                                             struct podwarp_ct4_key *fk, __u64 now)
{
  struct podwarp_lb_svc_key key = {};
  lb_addr_set_v4(key.addr, p->daddr);
  key.port = p->dport;
  key.proto = p->proto;
  struct podwarp_lb_svc *svc = lb_lookup_service(&key, 0, 0);
  if (!svc)
    return TC_ACT_OK; /* not a service: the node's own traffic */
  if (p->fragment) {
    lb_drop(PODWARP_LB_DROP_FRAGMENT, skb->len);
    return TC_ACT_SHOT;
  }

  struct podwarp_lb_affinity_key aff = {};
  aff.client = p->saddr;
  aff.kind = PODWARP_LB_AFF_IPV4;
  __u32 backend_id = 0;
  struct podwarp_lb_backend be = {};
  __u32 set_id = svc->set_id;
  int reason = lb_pick(&key, svc, 0, &aff, &backend_id, &be);
  if (reason == 0 && !lb_addr_is_v4(be.addr))
    reason = PODWARP_LB_DROP_FAMILY;
  if (reason) {
    lb_drop(reason, skb->len);
    return TC_ACT_SHOT;
  }

  struct podwarp_ct4 fwd = {};
  fwd.nat_saddr = p->saddr;
  fwd.nat_sport = p->sport;
  fwd.nat_daddr = be.addr[3];
  fwd.nat_dport = be.port;
  fwd.set_id = set_id;
  fwd.backend_id = backend_id;
  fwd.last_seen_ns = now;
  ct_touch(&fwd, p, now);

  /* The reply goes back from the frontend to the client. */
  struct podwarp_ct4 rev = fwd;
  rev.nat_saddr = p->daddr;
  rev.nat_sport = p->dport;
  rev.nat_daddr = p->saddr;
  rev.nat_dport = p->sport;

  __u32 event = PODWARP_LB_EV_NODEPORT_NEW;
  struct podwarp_ct4_key rk = {};
  if (be.flags & PODWARP_LB_BE_F_LOCAL) {
    reply_key(&rk, &fwd, p->proto);
    if (bpf_map_update_elem(&pw_lb_ct4, &rk, &rev, BPF_ANY)) {
      lb_drop(PODWARP_LB_DROP_CT_CREATE, skb->len);
      return TC_ACT_SHOT;
    }
  } else {
    __u32 k0 = 0;
    struct podwarp_lb_config *cfg = bpf_map_lookup_elem(&pw_lb_config, &k0);
    fwd.nat_saddr = (cfg && cfg->snat_addr4) ? cfg->snat_addr4 : p->daddr;
    fwd.flags |= PODWARP_CT_F_SNAT | PODWARP_CT_F_REDIRECT;
    rev.flags |= PODWARP_CT_F_SNAT | PODWARP_CT_F_REDIRECT;
    if (snat_reserve(&fwd, &rev, p->proto, now)) {
      lb_drop(PODWARP_LB_DROP_SNAT_PORTS, skb->len);
      return TC_ACT_SHOT;
    }
    reply_key(&rk, &fwd, p->proto);
    event = PODWARP_LB_EV_NODEPORT_SNAT;
  }
  if (bpf_map_update_elem(&pw_lb_ct4, fk, &fwd, BPF_ANY)) {
    bpf_map_delete_elem(&pw_lb_ct4, &rk);
    lb_drop(PODWARP_LB_DROP_CT_CREATE, skb->len);
    return TC_ACT_SHOT;
  }
  lb_event(event, 0);
  return ct_apply(skb, p, &fwd, PODWARP_LB_EV_NODEPORT_FWD);
}

/* ---- egress masquerade ---- */

static __always_inline int lpm4_has(void *map, __be32 addr)
{
  struct podwarp_lb_lpm4_key k = {.prefixlen = 32, .addr = addr};
  return bpf_map_lookup_elem(map, &k) != NULL;
}

/* Whether a packet from `saddr` to `daddr` leaving through `ifindex` is masqueraded; returns
 * the interface's address (0: no). */
static __always_inline __be32 masq_addr(__u32 ifindex, __be32 saddr, __be32 daddr)
{
  struct podwarp_lb_masq_if *mif = bpf_map_lookup_elem(&pw_lb_masq_if, &ifindex);
  if (!mif || !mif->addr4 || saddr == mif->addr4)
    return 0;
  __be32 snat = mif->addr4;
  if (!lpm4_has(&pw_lb_masq_src, saddr) || lpm4_has(&pw_lb_no_masq, daddr))
    return 0;
  __be32 d[4];
  lb_addr_set_v4(d, daddr);
  if (lb_is_node_addr(d))
    return 0;
  return snat;
}

/* A non-first fragment at egress: it has no ports, so it cannot be translated; one of a pod's
 * masqueraded flow is dropped (counted) rather than leaking the pod's address. */
static __always_inline int masq_fragment(struct __sk_buff *skb, const struct pkt4 *p)
{
  if (!masq_addr(skb->ifindex, p->saddr, p->daddr))
    return TC_ACT_OK;
  lb_drop(PODWARP_LB_DROP_MASQ_FRAGMENT, skb->len);
  return TC_ACT_SHOT;
}

/* A packet leaving a NodePort interface that is no NodePort reply: masquerade a pod's traffic
 * to outside the cluster (an existing flow: one conntrack lookup). */
static __always_inline int masq_egress(struct __sk_buff *skb, const struct pkt4 *p, __u64 now)
{
  __u32 ifindex = skb->ifindex;
  struct podwarp_lb_masq_if *mif = bpf_map_lookup_elem(&pw_lb_masq_if, &ifindex);
  if (!mif || !mif->addr4 || p->saddr == mif->addr4)
    return TC_ACT_OK; /* not a masquerading interface, or the node's own traffic */

  struct podwarp_ct4_key k = {};
  k.saddr = p->saddr;
  k.daddr = p->daddr;
  k.sport = p->sport;
  k.dport = p->dport;
  k.proto = p->proto;
  k.dir = PODWARP_CT_DIR_MASQ;
  struct podwarp_ct4 *ct = bpf_map_lookup_elem(&pw_lb_ct4, &k);
  if (ct && !p->fragment) {
    int syn = p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
    if (!ct_expired(ct, p->proto, now) && !(syn && (ct->flags & PODWARP_CT_F_CLOSING))) {
      ct_touch(ct, p, now);
      struct podwarp_ct4 copy = *ct;
      return ct_apply(skb, p, &copy, PODWARP_LB_EV_MASQ_FWD);
    }
    struct podwarp_ct4_key rk = {};
    reply_key(&rk, ct, p->proto);
    bpf_map_delete_elem(&pw_lb_ct4, &rk);
    bpf_map_delete_elem(&pw_lb_ct4, &k);
  }

  __be32 snat = masq_addr(ifindex, p->saddr, p->daddr);
  if (!snat)
    return TC_ACT_OK; /* not a pod, or a destination inside the cluster / on the node */
  if (p->fragment) {
    lb_drop(PODWARP_LB_DROP_MASQ_FRAGMENT, skb->len);
    return TC_ACT_SHOT;
  }
  /* Only connections the pod opens are masqueraded: a TCP segment other than a first SYN that
   * has no flow belongs to a connection opened towards the pod (a NodePort flow another node
   * SNATed to itself, answered here) and passes untouched. */
  if (p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
    return TC_ACT_OK;

  struct podwarp_ct4 fwd = {};
  fwd.nat_saddr = snat;
  fwd.nat_daddr = p->daddr;
  fwd.nat_dport = p->dport;
  fwd.flags = PODWARP_CT_F_SNAT | PODWARP_CT_F_MASQ;
  fwd.last_seen_ns = now;
  ct_touch(&fwd, p, now);
  /* The answer goes back to the pod. */
  struct podwarp_ct4 rev = fwd;
  rev.nat_saddr = p->daddr;
  rev.nat_sport = p->dport;
  rev.nat_daddr = p->saddr;
  rev.nat_dport = p->sport;
  if (snat_reserve(&fwd, &rev, p->proto, now)) {
    lb_drop(PODWARP_LB_DROP_MASQ_PORTS, skb->len);
    return TC_ACT_SHOT;
  }
  if (bpf_map_update_elem(&pw_lb_ct4, &k, &fwd, BPF_ANY)) {
    struct podwarp_ct4_key rk = {};
    reply_key(&rk, &fwd, p->proto);
    bpf_map_delete_elem(&pw_lb_ct4, &rk);
    lb_drop(PODWARP_LB_DROP_CT_CREATE, skb->len);
    return TC_ACT_SHOT;
  }
  lb_event(PODWARP_LB_EV_MASQ_NEW, 0);
  return ct_apply(skb, p, &fwd, PODWARP_LB_EV_MASQ_FWD);
}

/* Attaches to: tc clsact ingress of the node's interfaces (where clients outside the node
 * reach NodePorts, externalIPs and LoadBalancer IPs). Packets: client -> frontend (DNAT to a
 * backend, SNAT too for a remote one), and remote backend -> node SNAT port (reverse NAT, then
 * redirected to the client). Everything else passes untouched. */
SEC("tc")
int pw_nodeport_ingress(struct __sk_buff *skb)
{
  struct pkt4 p = {};
  /* Without ports (other protocols, later fragments, a cut header) nothing can be matched to
   * a service: the kernel decides. */
  if (parse4(skb, &p) != PARSE_OK)
    return TC_ACT_OK;
  __u64 now = bpf_ktime_get_ns();

  /* A reply from a remote backend to a SNAT port of this node. */
  struct podwarp_ct4_key k = {};
  k.saddr = p.saddr;
  k.daddr = p.daddr;
  k.sport = p.sport;
  k.dport = p.dport;
  k.proto = p.proto;
  k.dir = PODWARP_CT_DIR_REPLY;
  struct podwarp_ct4 *ct = bpf_map_lookup_elem(&pw_lb_ct4, &k);
  if (ct && (ct->flags & PODWARP_CT_F_SNAT) && !ct_expired(ct, p.proto, now)) {
    ct_touch(ct, &p, now);
    struct podwarp_ct4 copy = *ct;
    /* A masqueraded flow's answer: destination back to the pod, then the kernel routes it
     * (no REDIRECT flag); a NodePort SNAT flow's: both addresses, redirected to the client. */
    return ct_apply(skb, &p, &copy,
                    (copy.flags & PODWARP_CT_F_MASQ) ? PODWARP_LB_EV_MASQ_REPLY
                                                     : PODWARP_LB_EV_NODEPORT_REPLY);
  }
  if (p.proto == IPPROTO_ICMP)
    return TC_ACT_OK; /* no ICMP services */

  /* A packet of a flow already translated. A new SYN on a closing flow starts a new one. */
  k.dir = PODWARP_CT_DIR_FWD;
  ct = bpf_map_lookup_elem(&pw_lb_ct4, &k);
  if (ct) {
    int syn = (p.tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
    if (!ct_expired(ct, p.proto, now) && !(syn && (ct->flags & PODWARP_CT_F_CLOSING))) {
      ct_touch(ct, &p, now);
      struct podwarp_ct4 copy = *ct;
      return ct_apply(skb, &p, &copy, PODWARP_LB_EV_NODEPORT_FWD);
    }
    struct podwarp_ct4_key rk = {};
    reply_key(&rk, ct, p.proto);
    bpf_map_delete_elem(&pw_lb_ct4, &rk);
    bpf_map_delete_elem(&pw_lb_ct4, &k);
  }
  return nodeport_new_flow(skb, &p, &k, now);
}

/* Attaches to: tc clsact egress of the node's interfaces. Packets: replies of local backends
 * (pods of this node, or the node itself) to clients whose flow pw_nodeport_ingress DNATed;
 * their source becomes the frontend again. Then egress masquerade: a pod's packet to outside
 * the cluster leaves with the interface's address and a SNAT port. Everything else passes
 * untouched. */
SEC("tc")
int pw_nodeport_egress(struct __sk_buff *skb)
{
  struct pkt4 p = {};
  enum parse_result r = parse4(skb, &p);
  if (r == PARSE_FRAGMENT)
    return masq_fragment(skb, &p);
  if (r != PARSE_OK)
    return TC_ACT_OK;
  __u64 now = bpf_ktime_get_ns();
  struct podwarp_ct4_key k = {};
  k.saddr = p.saddr;
  k.daddr = p.daddr;
  k.sport = p.sport;
  k.dport = p.dport;
  k.proto = p.proto;
  k.dir = PODWARP_CT_DIR_REPLY;
  struct podwarp_ct4 *ct = bpf_map_lookup_elem(&pw_lb_ct4, &k);
  if (ct && !(ct->flags & PODWARP_CT_F_SNAT) && !ct_expired(ct, p.proto, now)) {
    ct_touch(ct, &p, now);
    struct podwarp_ct4 copy = *ct;
    return ct_apply(skb, &p, &copy, PODWARP_LB_EV_NODEPORT_REPLY);
  }
  return masq_egress(skb, &p, now);
}

char LICENSE[] SEC("license") = "GPL";
