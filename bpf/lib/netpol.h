/* The kernel<->user ABI of podwarp's NetworkPolicy enforcement: bpf/netpol.bpf.c (tc on the
 * host side of every pod veth) and noded/netpol (loads it, writes the maps from the compiled
 * policies of netpolicy/). Both sides include this header; the map names are also the pin file
 * names. Changing a layout changes the pinned maps: noded/netpol refuses pins whose key or value
 * size differs instead of misreading them.
 *
 * IPv4 only (the pod network is IPv4). Addresses are in network order; ports in host order
 * (the BPF side converts), protocols are IPPROTO_* numbers.
 *
 * Model. A local pod ("endpoint", keyed by its IPv4) that some NetworkPolicy isolates in a
 * direction has a `pw_np_ports` entry for (ip, direction): its *port table*. The compiled
 * allow rules of that direction are numbered 0..63; each is a port set (ranges in the table,
 * tagged with the rule's bit) applied to a peer set (prefixes in `pw_np_peers`, each carrying
 * the mask of the rules whose peers contain it; userspace folds the masks of covering prefixes
 * and of ipBlock excepts in, so one longest-prefix lookup gives every rule that allows the
 * peer). A new flow is allowed iff (peer mask & port mask) != 0. No port table = not isolated
 * in that direction = allowed.
 *
 * Always allowed: replies of a flow that was allowed (`pw_np_ct`), traffic to and from the
 * node's own addresses (`pw_np_host`, as upstream: "traffic to and from the node where a Pod is
 * running is always allowed"), non-IPv4 frames (ARP), and non-first IPv4 fragments. */
#ifndef PODWARP_BPF_LIB_NETPOL_H
#define PODWARP_BPF_LIB_NETPOL_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---- map names (pin file names; at most 15 characters) ---- */
#define PODWARP_NP_MAP_PORTS "pw_np_ports"
#define PODWARP_NP_MAP_PEERS "pw_np_peers"
#define PODWARP_NP_MAP_CT "pw_np_ct"
#define PODWARP_NP_MAP_HOST "pw_np_host"
#define PODWARP_NP_MAP_CONFIG "pw_np_config"
#define PODWARP_NP_MAP_COUNTERS "pw_np_counters"
#define PODWARP_NP_MAP_FLOWS "pw_np_flows"

#define PODWARP_NP_DEFAULT_MAX_ENDPOINTS 1024 /* port tables: local pods x 2 directions */
#define PODWARP_NP_DEFAULT_MAX_PEERS 262144   /* prefixes over all tables */
#define PODWARP_NP_DEFAULT_MAX_CT 262144
#define PODWARP_NP_MAX_HOST_ADDRS 256
#define PODWARP_NP_DEFAULT_FLOW_RING_BYTES (256 * 1024) /* a power of 2, pages */

/* tc filters on the host veths: clsact ingress (packets from the pod: its egress) and egress
 * (packets to the pod: its ingress), this handle and priority (NodePort uses 0x5057/1 on other
 * interfaces). */
#define PODWARP_NP_TC_HANDLE 0x5058
#define PODWARP_NP_TC_PRIORITY 1

#define PODWARP_NP_DIR_INGRESS 0 /* to the pod; the local pod is the destination */
#define PODWARP_NP_DIR_EGRESS 1  /* from the pod; the local pod is the source */

#define PODWARP_NP_MAX_RULES 64   /* rule bits in a table (masks are __u64) */
#define PODWARP_NP_MAX_RANGES 128 /* port ranges in a table */

/* proto 0 in a range: every protocol and every port (a rule without `ports`); otherwise the
 * range matches that protocol's destination ports lo..hi (inclusive). */
struct podwarp_np_range {
  __u8 proto;
  __u8 rule; /* bit index 0..63 */
  __u16 lo;
  __u16 hi;
  __u16 pad;
};

/* ---- port tables: (endpoint, direction) -> ranges (HASH) ---- */
struct podwarp_np_ep_key {
  __be32 addr; /* the local pod's IPv4 */
  __u8 dir;    /* PODWARP_NP_DIR_* */
  __u8 pad[3];
};

struct podwarp_np_ports {
  __u32 count; /* valid entries of r[] */
  __u32 pad;
  struct podwarp_np_range r[PODWARP_NP_MAX_RANGES];
};

/* ---- peers: (endpoint, direction, peer prefix) -> rule mask (LPM_TRIE) ----
 * prefixlen = 64 + the peer prefix length (the endpoint address and the direction word are
 * always matched in full); a lookup uses prefixlen 96. */
struct podwarp_np_peer_key {
  __u32 prefixlen;
  __be32 addr; /* the local pod */
  __u8 dir;
  __u8 pad[3];
  __be32 peer; /* the peer prefix, host bits zero */
};

/* ---- connection tracking (LRU_HASH), keyed by the tuple of the flow's first packet ----
 * For ICMP echo both ports are the echo identifier (so the reply's reversed tuple matches);
 * other protocols without ports have 0, 0. */
struct podwarp_np_ct_key {
  __be32 saddr;
  __be32 daddr;
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 pad[3];
};

#define PODWARP_NP_CT_EGRESS_OK (1u << 0)  /* the source pod's egress allowed it */
#define PODWARP_NP_CT_INGRESS_OK (1u << 1) /* the destination pod's ingress allowed it */

struct podwarp_np_ct {
  __u32 flags;
  __u32 generation; /* pw_np_config's generation when the flags were set */
};

/* ---- configuration: ARRAY[1] ----
 * noded bumps `generation` after each batch of table changes; a flow whose entry is of an
 * older generation is evaluated again on its next packet in the original direction, so a
 * policy change applies to established flows too (their replies stay allowed until then). */
struct podwarp_np_config {
  __u32 generation;
  __u32 flags; /* reserved */
};

/* ---- the node's own addresses: HASH __be32 -> __u8 1 ---- */

/* ---- counters: PERCPU_ARRAY index -> {packets, bytes} ---- */
struct podwarp_np_counter {
  __u64 packets;
  __u64 bytes;
};

#define PODWARP_NP_COUNTERS(X)                                                        \
  X(0, ALLOWED_NEW, "AllowedNew")         /* a new flow passed a policy check */       \
  X(1, ALLOWED_ESTABLISHED, "Established") /* a tracked flow, either direction */      \
  X(2, ALLOWED_HOST, "AllowedHost")        /* to or from the node's own address */     \
  X(3, ALLOWED_UNISOLATED, "Unisolated")   /* the pod is not isolated that way */      \
  X(4, DENIED_INGRESS, "DeniedIngress")    /* dropped: no ingress rule allows it */    \
  X(5, DENIED_EGRESS, "DeniedEgress")      /* dropped: no egress rule allows it */     \
  X(6, PASSED_OTHER, "PassedOther")        /* non-IPv4, fragment, malformed: passed */ \
  X(7, CT_FULL, "CtUpdateFailed")          /* allowed, but the flow could not be tracked */ \
  X(8, EVENTS_LOST, "FlowEventsLost")      /* pw_np_flows was full: a flow event is lost */

#define PODWARP_NP_COUNTER_ENUM(n, id, name) PODWARP_NP_C_##id = n,
enum { PODWARP_NP_COUNTERS(PODWARP_NP_COUNTER_ENUM) PODWARP_NP_NUM_COUNTERS };
#undef PODWARP_NP_COUNTER_ENUM
/* A counters map pinned by an older build may have fewer entries: the program's lookups of the
 * newer indexes then find nothing and those outcomes are just not counted. */

/* ---- flow events: RINGBUF of podwarp_np_flow_event ----
 * One event where a NEW flow is decided: a check passing by Unisolated or AllowedNew (where the
 * flow is tracked) and every drop. Never for established, reply, host or other packets. Always
 * on, with or without a reader: when the ring is full the event is lost (FlowEventsLost). The
 * ring has one consumer position: one reader at a time (podwarp trace). */
struct podwarp_np_flow_event {
  __u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
  __be32 saddr;
  __be32 daddr;
  __u16 sport; /* host order, as in the ct key (ICMP echo: the identifier) */
  __u16 dport;
  __u8 proto;
  __u8 dir;     /* PODWARP_NP_DIR_* */
  __u8 verdict; /* the counter index: ALLOWED_NEW, ALLOWED_UNISOLATED, DENIED_INGRESS/EGRESS */
  __u8 pad;
  __u32 ifindex; /* skb->ifindex: the host veth */
  __u32 len;     /* skb->len */
};

#endif
