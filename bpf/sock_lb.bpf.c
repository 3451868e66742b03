// SPDX-License-Identifier: GPL-2.0
/* sock_lb: ClusterIP (and NodePort/externalIP from the node itself) load balancing at the
 * socket layer, for the processes of the cgroups noded attaches it to (pods, and the node's
 * own services if noded attaches it there). A connect() or an unconnected UDP sendmsg() to a
 * service address is rewritten to a backend before any packet exists: no per-packet NAT, no
 * conntrack, and the application still sees the service address through getpeername() and in
 * the source of UDP replies (recvmsg()).
 *
 * Services with no backends refuse connect() (and UDP sendmsg()) with ECONNREFUSED at once,
 * like kube-proxy's REJECT rule: bpf_set_retval(-ECONNREFUSED) with a rejecting return (Linux
 * 5.18+; Debian 12's 6.1 has it). The call is guarded by a CO-RE check of the helper's id, so
 * the object still loads on an older kernel, where the rejection reads EPERM (still at once).
 *
 * Maps and helpers: lib/lb_maps.h; layouts: lib/lb.h. Works on both address families: IPv4 is
 * kept as IPv4-mapped IPv6, so connect6 of a dual-stack socket to ::ffff:VIP is balanced too. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/lb.h"
#include "lib/lb_maps.h"

#define ECONNREFUSED 111
#define SOCK_ALLOW 1
#define SOCK_REJECT 0

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PODWARP_LB_DEFAULT_MAX_SOCK_REVNAT);
  __type(key, struct podwarp_lb_sock_revnat_key);
  __type(value, struct podwarp_lb_sock_revnat);
} pw_lb_sk_revnat SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct podwarp_lb_sock_peer);
} pw_lb_sk_peer SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, PODWARP_LB_DEFAULT_SOCK_SLOTS);
  __type(key, __u32);
  __type(value, struct podwarp_lb_sock_slot);
} pw_lb_sk_slots SEC(".maps");

/* pw_lb_sk_slots' max_entries - 1 (a power of two minus one); set by the loader. */
const volatile __u32 pw_lb_sk_slot_mask = PODWARP_LB_DEFAULT_SOCK_SLOTS - 1;

static __always_inline struct podwarp_lb_sock_slot *sock_slot(__u64 cookie)
{
  __u32 idx = (__u32)cookie & pw_lb_sk_slot_mask;
  return bpf_map_lookup_elem(&pw_lb_sk_slots, &idx);
}

/* Where connect() keeps its translation for this socket (lib/lb.h): the socket's slot when it
 * is free or already this socket's, else socket storage; NULL when neither can be had. */
static __always_inline struct podwarp_lb_sock_peer *sock_peer_for_write(struct bpf_sock_addr *ctx,
                                                                        __u64 cookie)
{
  struct podwarp_lb_sock_slot *slot = sock_slot(cookie);
  if (slot) {
    __u64 owner = slot->cookie;
    if (owner == cookie)
      return &slot->peer; /* connect() again (UDP): the slot is already ours */
    if (owner == 0 && __sync_val_compare_and_swap(&slot->cookie, 0, cookie) == 0)
      return &slot->peer;
  }
  if (!ctx->sk)
    return NULL;
  return bpf_sk_storage_get(&pw_lb_sk_peer, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

/* The destination of the call as a 16-byte address (IPv4 mapped). */
static __always_inline void ctx_dst(struct bpf_sock_addr *ctx, int v6, __be32 addr[4])
{
  if (v6) {
    addr[0] = ctx->user_ip6[0];
    addr[1] = ctx->user_ip6[1];
    addr[2] = ctx->user_ip6[2];
    addr[3] = ctx->user_ip6[3];
  } else {
    lb_addr_set_v4(addr, ctx->user_ip4);
  }
}

/* Rewrites the destination of a connect()/sendmsg() to a service into a backend. Returns
 * SOCK_ALLOW (translated, or not a service) or SOCK_REJECT with the error set. */
static __always_inline int sock_xlate(struct bpf_sock_addr *ctx, int v6, int sendmsg)
{
  struct podwarp_lb_svc_key key = {};
  __be32 dst[4];
  ctx_dst(ctx, v6, dst);
  key.addr[0] = dst[0];
  key.addr[1] = dst[1];
  key.addr[2] = dst[2];
  key.addr[3] = dst[3];
  key.port = (__be16)ctx->user_port;
  key.proto = (__u8)ctx->protocol;

  struct podwarp_lb_svc *svc = lb_lookup_service(&key, 1, 1);
  if (!svc)
    return SOCK_ALLOW;

  struct podwarp_lb_affinity_key aff = {};
  if (svc->affinity_timeout) {
    aff.client = bpf_get_netns_cookie(ctx);
    aff.kind = PODWARP_LB_AFF_NETNS;
  }
  __u64 cookie = bpf_get_socket_cookie(ctx);
  /* connect(): random. Unconnected UDP: a hash of the socket, so one socket's datagrams go to
   * one backend and its replies keep coming from that backend. */
  __u32 hash = sendmsg ? lb_hash64(cookie) : 0;
  __u32 backend_id = 0;
  struct podwarp_lb_backend be = {};
  __u32 set_id = svc->set_id;
  int reason = lb_pick(&key, svc, hash, &aff, &backend_id, &be);
  if (reason == 0 && !v6 && !lb_addr_is_v4(be.addr))
    reason = PODWARP_LB_DROP_FAMILY;
  if (reason) {
    lb_drop(reason, 0);
    if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_set_retval))
      bpf_set_retval(-ECONNREFUSED);
    return SOCK_REJECT;
  }

  struct podwarp_lb_sock_revnat_key rk = {};
  rk.cookie = cookie;
  rk.addr[0] = be.addr[0];
  rk.addr[1] = be.addr[1];
  rk.addr[2] = be.addr[2];
  rk.addr[3] = be.addr[3];
  rk.port = be.port;
  struct podwarp_lb_sock_revnat rv = {};
  rv.addr[0] = dst[0];
  rv.addr[1] = dst[1];
  rv.addr[2] = dst[2];
  rv.addr[3] = dst[3];
  rv.port = (__be16)ctx->user_port;
  rv.proto = key.proto;
  rv.scope = key.scope;
  rv.set_id = set_id;
  if (svc->flags & PODWARP_LB_SVC_F_NODEPORT)
    rv.flags = PODWARP_LB_REVNAT_F_NODEPORT;

  if (v6) {
    ctx->user_ip6[0] = be.addr[0];
    ctx->user_ip6[1] = be.addr[1];
    ctx->user_ip6[2] = be.addr[2];
    ctx->user_ip6[3] = be.addr[3];
  } else {
    ctx->user_ip4 = be.addr[3];
  }
  ctx->user_port = (__u32)be.port;
  /* connect(): with the socket. A full LRU evicts old entries; a failed update only loses the
   * VIP in getpeername(). */
  struct podwarp_lb_sock_peer *peer = NULL;
  if (!sendmsg)
    peer = sock_peer_for_write(ctx, cookie);
  if (peer) {
    peer->backend_addr[0] = be.addr[0];
    peer->backend_addr[1] = be.addr[1];
    peer->backend_addr[2] = be.addr[2];
    peer->backend_addr[3] = be.addr[3];
    peer->backend_port = be.port;
    peer->rv = rv;
    peer->valid = 1;
  } else {
    bpf_map_update_elem(&pw_lb_sk_revnat, &rk, &rv, BPF_ANY);
  }
  lb_event(sendmsg ? PODWARP_LB_EV_SOCK_SENDMSG : PODWARP_LB_EV_SOCK_CONNECT, 0);
  return SOCK_ALLOW;
}

/* Shows the service address instead of the backend's in the peer address of recvmsg() and
 * getpeername(), when this socket was translated to that backend. */
static __always_inline int sock_revnat(struct bpf_sock_addr *ctx, int v6)
{
  struct podwarp_lb_sock_revnat_key rk = {};
  ctx_dst(ctx, v6, rk.addr);
  rk.port = (__be16)ctx->user_port;
  struct podwarp_lb_sock_revnat *rv = NULL;
  struct podwarp_lb_sock_peer *peer = NULL;
  __u64 cookie = bpf_get_socket_cookie(ctx);
  struct podwarp_lb_sock_slot *slot = sock_slot(cookie);
  if (slot && slot->cookie == cookie)
    peer = &slot->peer;
  else if (ctx->sk)
    peer = bpf_sk_storage_get(&pw_lb_sk_peer, ctx->sk, 0, 0);
  if (peer && peer->valid && peer->backend_port == rk.port &&
      peer->backend_addr[0] == rk.addr[0] && peer->backend_addr[1] == rk.addr[1] &&
      peer->backend_addr[2] == rk.addr[2] && peer->backend_addr[3] == rk.addr[3]) {
    rv = &peer->rv;
  } else {
    peer = NULL;
    rk.cookie = cookie;
    rv = bpf_map_lookup_elem(&pw_lb_sk_revnat, &rk);
  }
  if (!rv)
    return SOCK_ALLOW;

  /* Stale when the frontend is gone or now has another backend set. */
  struct podwarp_lb_svc_key key = {};
  key.addr[0] = rv->addr[0];
  key.addr[1] = rv->addr[1];
  key.addr[2] = rv->addr[2];
  key.addr[3] = rv->addr[3];
  if (rv->flags & PODWARP_LB_REVNAT_F_NODEPORT) {
    if (!lb_addr_is_v4(key.addr)) {
      key.addr[0] = 0;
      key.addr[1] = 0;
      key.addr[2] = 0;
    }
    key.addr[3] = 0;
  }
  key.port = rv->port;
  key.proto = rv->proto;
  key.scope = rv->scope;
  struct podwarp_lb_svc *svc = bpf_map_lookup_elem(&pw_lb_services, &key);
  if (!svc || svc->set_id != rv->set_id) {
    if (peer)
      peer->valid = 0;
    else
      bpf_map_delete_elem(&pw_lb_sk_revnat, &rk);
    return SOCK_ALLOW;
  }

  if (v6) {
    ctx->user_ip6[0] = rv->addr[0];
    ctx->user_ip6[1] = rv->addr[1];
    ctx->user_ip6[2] = rv->addr[2];
    ctx->user_ip6[3] = rv->addr[3];
  } else {
    if (!lb_addr_is_v4(rv->addr))
      return SOCK_ALLOW;
    ctx->user_ip4 = rv->addr[3];
  }
  ctx->user_port = (__u32)rv->port;
  lb_event(PODWARP_LB_EV_SOCK_REVNAT, 0);
  return SOCK_ALLOW;
}

/* Attaches to: cgroup/connect4 of a pod (or node) cgroup. Runs in connect() of IPv4 TCP, UDP
 * and SCTP sockets, before routing: the destination becomes a backend. */
SEC("cgroup/connect4")
int pw_connect4(struct bpf_sock_addr *ctx)
{
  return sock_xlate(ctx, 0, 0);
}

/* Attaches to: cgroup/sendmsg4. Runs in sendmsg()/sendto() with a destination on an
 * unconnected IPv4 UDP socket: the datagram goes to a backend. */
SEC("cgroup/sendmsg4")
int pw_sendmsg4(struct bpf_sock_addr *ctx)
{
  return sock_xlate(ctx, 0, 1);
}

/* Attaches to: cgroup/recvmsg4. Runs in recvmsg()/recvfrom() on IPv4 UDP sockets that ask for
 * the source address: a reply from a backend shows the service address it was sent to. */
SEC("cgroup/recvmsg4")
int pw_recvmsg4(struct bpf_sock_addr *ctx)
{
  return sock_revnat(ctx, 0);
}

/* Attaches to: cgroup/getpeername4. The peer of a translated socket is the service. */
SEC("cgroup/getpeername4")
int pw_getpeername4(struct bpf_sock_addr *ctx)
{
  return sock_revnat(ctx, 0);
}

/* Attaches to: cgroup/connect6 (IPv6 services, and IPv4 ones through ::ffff:VIP). */
SEC("cgroup/connect6")
int pw_connect6(struct bpf_sock_addr *ctx)
{
  return sock_xlate(ctx, 1, 0);
}

/* Attaches to: cgroup/sendmsg6, unconnected IPv6 UDP sockets. */
SEC("cgroup/sendmsg6")
int pw_sendmsg6(struct bpf_sock_addr *ctx)
{
  return sock_xlate(ctx, 1, 1);
}

/* Attaches to: cgroup/recvmsg6, IPv6 UDP replies. */
SEC("cgroup/recvmsg6")
int pw_recvmsg6(struct bpf_sock_addr *ctx)
{
  return sock_revnat(ctx, 1);
}

/* Attaches to: cgroup/getpeername6. */
SEC("cgroup/getpeername6")
int pw_getpeername6(struct bpf_sock_addr *ctx)
{
  return sock_revnat(ctx, 1);
}

/* Attaches to: cgroup/sock_release (IPv4 and IPv6 sockets alike). A socket that held a slot of
 * pw_lb_sk_slots gives it back when it is released; socket storage goes with the socket. */
SEC("cgroup/sock_release")
int pw_sock_release(struct bpf_sock *ctx)
{
  __u64 cookie = bpf_get_socket_cookie(ctx);
  struct podwarp_lb_sock_slot *slot = sock_slot(cookie);
  if (slot && slot->cookie == cookie) {
    slot->peer.valid = 0;
    __sync_val_compare_and_swap(&slot->cookie, cookie, 0);
  }
  return SOCK_ALLOW;
}

char LICENSE[] SEC("license") = "GPL";
