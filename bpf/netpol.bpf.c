// SPDX-License-Identifier: GPL-2.0
/* netpol: NetworkPolicy enforcement at tc on the host side of every pod veth (IPv4). The ABI
 * and the model (port tables, peer prefixes with rule masks, connection tracking with a
 * generation) are in lib/netpol.h; noded/netpol loads this object and writes the maps.
 *
 * One check per pod and direction: a packet between two pods of this node passes from_pod on
 * the sender's veth (the sender's egress) and to_pod on the receiver's (its ingress). Each
 * check, in order:
 *   1. the flow's entry in pw_np_ct carries this check's flag at the current generation, or
 *      the packet is a reply (the reversed tuple has an entry): pass (Established);
 *   2. the peer is one of the node's addresses (pw_np_host): pass (AllowedHost);
 *   3. no port table for (local pod, direction): pass (Unisolated);
 *   4. the longest prefix of the peer gives a rule mask, the ranges matching (protocol,
 *      destination port) give another; they intersect: pass (AllowedNew), else drop
 *      (DeniedIngress / DeniedEgress).
 * Passing by 3 or 4 records the flow (its flag at the current generation) in pw_np_ct.
 * Passing by 3 or 4 and dropping by 4 also put one event into the pw_np_flows ring (for
 * `podwarp trace`): one per decided new flow, none for the packets of steps 1 and 2.
 * Non-IPv4 frames, non-first fragments and cut-short headers pass (PassedOther). No global
 * variables: all state is in the pinned maps, so a reload keeps it. */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/netpol.h"

/* From headers vmlinux.h does not carry (uapi #defines). */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IP_OFFSET 0x1fff
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_NP_DEFAULT_MAX_ENDPOINTS);
  __type(key, struct podwarp_np_ep_key);
  __type(value, struct podwarp_np_ports);
} pw_np_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, PODWARP_NP_DEFAULT_MAX_PEERS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct podwarp_np_peer_key);
  __type(value, __u64);
} pw_np_peers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PODWARP_NP_DEFAULT_MAX_CT);
  __type(key, struct podwarp_np_ct_key);
  __type(value, struct podwarp_np_ct);
} pw_np_ct SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_NP_MAX_HOST_ADDRS);
  __type(key, __be32);
  __type(value, __u8);
} pw_np_host SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct podwarp_np_config);
} pw_np_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PODWARP_NP_NUM_COUNTERS);
  __type(key, __u32);
  __type(value, struct podwarp_np_counter);
} pw_np_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, PODWARP_NP_DEFAULT_FLOW_RING_BYTES);
} pw_np_flows SEC(".maps");

/* NULL (not counted) for an index beyond a counters map pinned by an older build. */
static __always_inline void np_count(__u32 index, __u64 bytes)
{
  struct podwarp_np_counter *c = bpf_map_lookup_elem(&pw_np_counters, &index);
  if (c) {
    c->packets += 1;
    c->bytes += bytes;
  }
}

/* The flow event of a decided new flow; `verdict` is its counter index. A full ring loses it
 * (counted). */
static __always_inline void np_emit(struct __sk_buff *skb, const struct podwarp_np_ct_key *t,
                                    __u8 dir, __u32 verdict)
{
  struct podwarp_np_flow_event *e = bpf_ringbuf_reserve(&pw_np_flows, sizeof *e, 0);
  if (!e) {
    np_count(PODWARP_NP_C_EVENTS_LOST, skb->len);
    return;
  }
  e->ts_ns = bpf_ktime_get_ns();
  e->saddr = t->saddr;
  e->daddr = t->daddr;
  e->sport = t->sport;
  e->dport = t->dport;
  e->proto = t->proto;
  e->dir = dir;
  e->verdict = (__u8)verdict;
  e->pad = 0;
  e->ifindex = skb->ifindex;
  e->len = skb->len;
  bpf_ringbuf_submit(e, 0);
}

/* Parses an IPv4 packet into its conntrack tuple (ports in host order). Returns 0 when the
 * packet is to be checked, -1 when it passes unchecked (not IPv4, a non-first fragment, a
 * header cut short). */
static __always_inline int np_parse(struct __sk_buff *skb, struct podwarp_np_ct_key *t)
{
  if (skb->protocol != bpf_htons(ETH_P_IP))
    return -1;
  struct iphdr ip;
  if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof ip))
    return -1;
  if (ip.version != 4 || ip.ihl < 5)
    return -1;
  if (bpf_ntohs(ip.frag_off) & IP_OFFSET)
    return -1;
  t->saddr = ip.saddr;
  t->daddr = ip.daddr;
  t->proto = ip.protocol;
  __u32 l4 = ETH_HLEN + ip.ihl * 4;
  if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP || ip.protocol == IPPROTO_SCTP) {
    __be16 ports[2];
    if (bpf_skb_load_bytes(skb, l4, ports, sizeof ports))
      return -1;
    t->sport = bpf_ntohs(ports[0]);
    t->dport = bpf_ntohs(ports[1]);
  } else if (ip.protocol == IPPROTO_ICMP) {
    __u8 icmp[6]; /* type, code, checksum, identifier */
    if (bpf_skb_load_bytes(skb, l4, icmp, sizeof icmp))
      return -1;
    /* Echo: the identifier on both sides, so the reply's reversed tuple is the request's. */
    if ((icmp[0] == ICMP_ECHO || icmp[0] == ICMP_ECHOREPLY) && icmp[1] == 0)
      t->sport = t->dport = (__u16)icmp[4] << 8 | icmp[5];
  }
  return 0;
}

/* Whether the port table of (local, dir) allows a new flow with `peer`: the peer's rule mask
 * (longest prefix; none = 0) and the mask of the ranges matching the protocol and destination
 * port intersect. */
static __always_inline int np_allows(const struct podwarp_np_ports *table, __be32 local, __u8 dir,
                                     __be32 peer, __u8 proto, __u16 dport)
{
  struct podwarp_np_peer_key pk = {};
  pk.prefixlen = 96;
  pk.addr = local;
  pk.dir = dir;
  pk.peer = peer;
  __u64 *pm = bpf_map_lookup_elem(&pw_np_peers, &pk);
  __u64 peer_mask = pm ? *pm : 0;
  if (!peer_mask)
    return 0;
  __u64 port_mask = 0;
  __u32 count = table->count;
  for (__u32 i = 0; i < PODWARP_NP_MAX_RANGES; i++) {
    if (i >= count)
      break;
    const struct podwarp_np_range *r = &table->r[i];
    if (r->proto == 0 || (r->proto == proto && r->lo <= dport && dport <= r->hi))
      port_mask |= 1ull << (r->rule & (PODWARP_NP_MAX_RULES - 1));
  }
  return (peer_mask & port_mask) != 0;
}

/* Records that this check allowed the flow: its flag at the current generation (the flags of
 * an older generation are dropped, so every check of the flow is made again). */
static __always_inline void np_track(const struct podwarp_np_ct_key *t, struct podwarp_np_ct *ct,
                                     __u32 flag, __u32 generation, __u64 bytes)
{
  if (ct && ct->generation == generation) {
    /* Not atomic (32-bit atomics need -mcpu=v3): a lost race loses a flag, and the flow is
     * just checked again on its next packet. */
    ct->flags |= flag;
    return;
  }
  struct podwarp_np_ct v = {.flags = flag, .generation = generation};
  if (bpf_map_update_elem(&pw_np_ct, t, &v, BPF_ANY))
    np_count(PODWARP_NP_C_CT_FULL, bytes);
}

/* The check of one pod in one direction; `local` is that pod, `peer` the other end. */
static __always_inline int np_check(struct __sk_buff *skb, __u8 dir)
{
  __u64 bytes = skb->len;
  struct podwarp_np_ct_key t = {};
  if (np_parse(skb, &t)) {
    np_count(PODWARP_NP_C_PASSED_OTHER, bytes);
    return TC_ACT_OK;
  }
  const __u32 flag = dir == PODWARP_NP_DIR_EGRESS ? PODWARP_NP_CT_EGRESS_OK
                                                  : PODWARP_NP_CT_INGRESS_OK;
  __be32 local = dir == PODWARP_NP_DIR_EGRESS ? t.saddr : t.daddr;
  __be32 peer = dir == PODWARP_NP_DIR_EGRESS ? t.daddr : t.saddr;
  __u32 zero = 0;
  struct podwarp_np_config *cfg = bpf_map_lookup_elem(&pw_np_config, &zero);
  __u32 generation = cfg ? cfg->generation : 0;

  struct podwarp_np_ct *ct = bpf_map_lookup_elem(&pw_np_ct, &t);
  if (ct && (ct->flags & flag) && ct->generation == generation) {
    np_count(PODWARP_NP_C_ALLOWED_ESTABLISHED, bytes);
    return TC_ACT_OK;
  }
  struct podwarp_np_ct_key rev = {};
  rev.saddr = t.daddr;
  rev.daddr = t.saddr;
  rev.sport = t.dport;
  rev.dport = t.sport;
  rev.proto = t.proto;
  if (bpf_map_lookup_elem(&pw_np_ct, &rev)) {
    np_count(PODWARP_NP_C_ALLOWED_ESTABLISHED, bytes);
    return TC_ACT_OK;
  }
  if (bpf_map_lookup_elem(&pw_np_host, &peer)) {
    np_count(PODWARP_NP_C_ALLOWED_HOST, bytes);
    return TC_ACT_OK;
  }

  struct podwarp_np_ep_key ek = {};
  ek.addr = local;
  ek.dir = dir;
  struct podwarp_np_ports *table = bpf_map_lookup_elem(&pw_np_ports, &ek);
  __u32 verdict;
  if (!table)
    verdict = PODWARP_NP_C_ALLOWED_UNISOLATED;
  else if (np_allows(table, local, dir, peer, t.proto, t.dport))
    verdict = PODWARP_NP_C_ALLOWED_NEW;
  else
    verdict = dir == PODWARP_NP_DIR_EGRESS ? PODWARP_NP_C_DENIED_EGRESS
                                           : PODWARP_NP_C_DENIED_INGRESS;
  np_count(verdict, bytes);
  np_emit(skb, &t, dir, verdict);
  if (verdict == PODWARP_NP_C_DENIED_EGRESS || verdict == PODWARP_NP_C_DENIED_INGRESS)
    return TC_ACT_SHOT;
  np_track(&t, ct, flag, generation, bytes);
  return TC_ACT_OK;
}

/* Attaches to: tc clsact ingress of a pod's host-side veth. Packets: from the pod (its egress;
 * the pod is the source, the peer the destination). */
SEC("tc")
int from_pod(struct __sk_buff *skb)
{
  return np_check(skb, PODWARP_NP_DIR_EGRESS);
}

/* Attaches to: tc clsact egress of a pod's host-side veth. Packets: to the pod (its ingress;
 * the pod is the destination, the peer the source). */
SEC("tc")
int to_pod(struct __sk_buff *skb)
{
  return np_check(skb, PODWARP_NP_DIR_INGRESS);
}

char LICENSE[] SEC("license") = "GPL";
