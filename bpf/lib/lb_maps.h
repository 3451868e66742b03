/* BPF side only: the maps shared by bpf/sock_lb.bpf.c and bpf/nodeport.bpf.c, and the helpers
 * both use (service lookup, backend pick with session affinity, counters). The layouts are in
 * lb.h. Each object defines the maps under the same names; noded/lb pins them once and makes
 * every later load (the other object, a restarted noded) reuse the pins, so both programs and
 * all noded generations work on the same maps. No global variables: everything a program
 * needs survives a reload in pinned maps. */
#ifndef PODWARP_BPF_LIB_LB_MAPS_H
#define PODWARP_BPF_LIB_LB_MAPS_H

#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_SERVICES);
  __type(key, struct podwarp_lb_svc_key);
  __type(value, struct podwarp_lb_svc);
} pw_lb_services SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_BACKENDS);
  __type(key, __u32);
  __type(value, struct podwarp_lb_backend);
} pw_lb_backends SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_MEMBERS);
  __type(key, struct podwarp_lb_member_key);
  __type(value, __u32);
} pw_lb_members SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_AFFINITY);
  __type(key, struct podwarp_lb_affinity_key);
  __type(value, struct podwarp_lb_affinity);
} pw_lb_affinity SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_LB_MAX_NODE_ADDRS);
  __type(key, struct podwarp_lb_node_addr_key);
  __type(value, __u8);
} pw_lb_node_addr SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct podwarp_lb_config);
} pw_lb_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PODWARP_LB_DROP_MAX);
  __type(key, __u32);
  __type(value, struct podwarp_lb_counter);
} pw_lb_drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PODWARP_LB_EV_MAX);
  __type(key, __u32);
  __type(value, struct podwarp_lb_counter);
} pw_lb_events SEC(".maps");

#define NSEC_PER_SEC 1000000000ull

static __always_inline void lb_count(void *map, __u32 index, __u64 bytes)
{
  struct podwarp_lb_counter *c = bpf_map_lookup_elem(map, &index);
  if (c) {
    c->packets += 1;
    c->bytes += bytes;
  }
}

static __always_inline void lb_drop(__u32 reason, __u64 bytes)
{
  lb_count(&pw_lb_drops, reason, bytes);
}

static __always_inline void lb_event(__u32 event, __u64 bytes)
{
  lb_count(&pw_lb_events, event, bytes);
}

static __always_inline void lb_addr_set_v4(__be32 addr[4], __be32 v4)
{
  addr[0] = 0;
  addr[1] = 0;
  addr[2] = bpf_htonl(0xffff);
  addr[3] = v4;
}

static __always_inline int lb_addr_is_v4(const __be32 addr[4])
{
  return addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff);
}

static __always_inline int lb_is_node_addr(const __be32 addr[4])
{
  struct podwarp_lb_node_addr_key k = {};
  k.addr[0] = addr[0];
  k.addr[1] = addr[1];
  k.addr[2] = addr[2];
  k.addr[3] = addr[3];
  return bpf_map_lookup_elem(&pw_lb_node_addr, &k) != NULL;
}

/* Loopback: 127.0.0.0/8 (IPv4-mapped) or ::1. */
static __always_inline int lb_addr_is_loopback(const __be32 addr[4])
{
  if (lb_addr_is_v4(addr))
    return (addr[3] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
  return addr[0] == 0 && addr[1] == 0 && addr[2] == 0 && addr[3] == bpf_htonl(1);
}

/* The service entry (slot 0) of a frontend. `key` must have slot 0; on return it holds the key
 * of the entry found (the wildcard address for a NodePort match, scope INTERNAL when that set
 * applies), so lb_pick() can look up its slots. A destination that is no frontend may be a
 * NodePort when it is a node address (or, with `loopback_nodeport`, a loopback address: the
 * socket LB serves localhost:NodePort); that check only runs after the exact lookup missed, so
 * ClusterIP traffic pays one lookup. `internal` says whether the client is on this node
 * (socket LB), which selects the SCOPE_INTERNAL set of PODWARP_LB_SVC_F_TWO_SCOPES frontends. */
static __always_inline struct podwarp_lb_svc *lb_lookup_service(struct podwarp_lb_svc_key *key,
                                                                int loopback_nodeport, int internal)
{
  key->scope = PODWARP_LB_SCOPE_EXTERNAL;
  key->slot = 0;
  struct podwarp_lb_svc *svc = bpf_map_lookup_elem(&pw_lb_services, key);
  if (!svc && ((loopback_nodeport && lb_addr_is_loopback(key->addr)) || lb_is_node_addr(key->addr))) {
    /* NodePorts are keyed by the family's wildcard: ::ffff:0.0.0.0 or :: */
    if (!lb_addr_is_v4(key->addr)) {
      key->addr[0] = 0;
      key->addr[1] = 0;
      key->addr[2] = 0;
    }
    key->addr[3] = 0;
    svc = bpf_map_lookup_elem(&pw_lb_services, key);
    if (svc && !(svc->flags & PODWARP_LB_SVC_F_NODEPORT))
      svc = NULL;
  }
  if (svc && internal && (svc->flags & PODWARP_LB_SVC_F_TWO_SCOPES)) {
    key->scope = PODWARP_LB_SCOPE_INTERNAL;
    struct podwarp_lb_svc *in = bpf_map_lookup_elem(&pw_lb_services, key);
    if (in)
      return in;
    key->scope = PODWARP_LB_SCOPE_EXTERNAL; /* being reprogrammed: the external set will do */
  }
  return svc;
}

/* Picks a backend of the set `svc` (found under `key`, slot 0). With sessionAffinity and an
 * affinity key, a remembered backend that is still a member and not timed out is reused;
 * otherwise slot (hash % count) + 1, with hash random when `hash` is 0. Returns 0 and fills
 * *backend_id and *backend, or a PODWARP_LB_DROP_* reason. The common case (no affinity) is
 * one lookup: the slot holds a copy of the backend. */
static __always_inline int lb_pick(struct podwarp_lb_svc_key *key, const struct podwarp_lb_svc *svc,
                                   __u32 hash, struct podwarp_lb_affinity_key *aff,
                                   __u32 *backend_id, struct podwarp_lb_backend *backend)
{
  __u32 count = svc->count;
  __u32 set_id = svc->set_id;
  __u32 timeout = svc->affinity_timeout;
  __u64 now = 0;
  if (count == 0)
    return PODWARP_LB_DROP_NO_BACKEND;

  if (timeout && aff) {
    aff->set_id = set_id;
    now = bpf_ktime_get_ns();
    struct podwarp_lb_affinity *a = bpf_map_lookup_elem(&pw_lb_affinity, aff);
    if (a && now - a->last_used_ns <= (__u64)timeout * NSEC_PER_SEC) {
      struct podwarp_lb_member_key mk = {.set_id = set_id, .backend_id = a->backend_id};
      if (bpf_map_lookup_elem(&pw_lb_members, &mk)) {
        struct podwarp_lb_backend *be = bpf_map_lookup_elem(&pw_lb_backends, &mk.backend_id);
        if (be) {
          a->last_used_ns = now;
          *backend_id = mk.backend_id;
          *backend = *be;
          lb_event(PODWARP_LB_EV_AFFINITY_HIT, 0);
          return 0;
        }
      }
    }
  }

  if (hash == 0)
    hash = bpf_get_prandom_u32();
  __u32 id;
  if ((svc->flags & PODWARP_LB_SVC_F_INLINE) && count <= PODWARP_LB_INLINE) {
    /* One lookup: the entry carries the set. */
    __u32 i = (hash % count) & (PODWARP_LB_INLINE - 1);
    id = svc->inl[i].backend_id;
    if (id == 0)
      return PODWARP_LB_DROP_BACKEND_MISSING;
    *backend = svc->inl[i].backend;
  } else {
    key->slot = (__u16)(hash % count + 1);
    struct podwarp_lb_svc *slot = bpf_map_lookup_elem(&pw_lb_services, key);
    key->slot = 0;
    if (!slot || slot->backend_id == 0)
      return PODWARP_LB_DROP_BACKEND_MISSING;
    id = slot->backend_id;
    *backend = slot->backend;
  }

  if (timeout && aff) {
    struct podwarp_lb_affinity v = {.last_used_ns = now, .backend_id = id};
    bpf_map_update_elem(&pw_lb_affinity, aff, &v, BPF_ANY);
  }
  *backend_id = id;
  return 0;
}

/* A 32-bit mix of a 64-bit value (murmur3 finalizer); never 0, so lb_pick() takes it as a hash. */
static __always_inline __u32 lb_hash64(__u64 v)
{
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdull;
  v ^= v >> 33;
  v *= 0xc4ceb9fe1a85ec53ull;
  v ^= v >> 33;
  __u32 h = (__u32)v;
  return h ? h : 1;
}

#endif
