/* The kernel<->user ABI of podwarp's service load balancer: bpf/sock_lb.bpf.c (cgroup socket
 * hooks, ClusterIP), bpf/nodeport.bpf.c (tc, NodePort/externalIP) and noded/lb (the map
 * manager). Both sides include this header; the map names here are also the file names of the
 * pins in the pin directory. Changing a layout changes the pinned maps: a noded with another
 * layout refuses the old pins (noded/lb checks key and value sizes) instead of misreading them.
 *
 * Addresses are 16 bytes everywhere: IPv6 as is, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so
 * one service map serves connect4 and connect6 (a dual-stack socket connecting to ::ffff:VIP
 * finds the IPv4 service). Ports are in network byte order, as on the wire and in sockaddr. */
#ifndef PODWARP_BPF_LIB_LB_H
#define PODWARP_BPF_LIB_LB_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* ---- map names (pin file names; at most 15 characters) ---- */
#define PODWARP_LB_MAP_SERVICES "pw_lb_services"
#define PODWARP_LB_MAP_BACKENDS "pw_lb_backends"
#define PODWARP_LB_MAP_MEMBERS "pw_lb_members"
#define PODWARP_LB_MAP_AFFINITY "pw_lb_affinity"
#define PODWARP_LB_MAP_SOCK_REVNAT "pw_lb_sk_revnat"
#define PODWARP_LB_MAP_SOCK_PEER "pw_lb_sk_peer"
#define PODWARP_LB_MAP_SOCK_SLOTS "pw_lb_sk_slots"
#define PODWARP_LB_MAP_CT4 "pw_lb_ct4"
#define PODWARP_LB_MAP_NODE_ADDRS "pw_lb_node_addr"
#define PODWARP_LB_MAP_CONFIG "pw_lb_config"
#define PODWARP_LB_MAP_DROPS "pw_lb_drops"
#define PODWARP_LB_MAP_EVENTS "pw_lb_events"
#define PODWARP_LB_MAP_MASQ_IFS "pw_lb_masq_if"
#define PODWARP_LB_MAP_MASQ_SRC "pw_lb_masq_src"
#define PODWARP_LB_MAP_NO_MASQ "pw_lb_no_masq"

/* Default sizes; noded/lb may set others before the first load (pins keep theirs). */
#define PODWARP_LB_DEFAULT_MAX_SERVICES 262144 /* frontends x (1 + backend slots) */
#define PODWARP_LB_DEFAULT_MAX_BACKENDS 65536
#define PODWARP_LB_DEFAULT_MAX_MEMBERS 262144 /* (backend set, backend) pairs */
#define PODWARP_LB_DEFAULT_MAX_AFFINITY 65536
#define PODWARP_LB_DEFAULT_MAX_SOCK_REVNAT 262144
#define PODWARP_LB_DEFAULT_SOCK_SLOTS 65536 /* a power of two */
#define PODWARP_LB_DEFAULT_MAX_CT4 262144
#define PODWARP_LB_MAX_NODE_ADDRS 256
#define PODWARP_LB_MAX_MASQ_IFS 64
#define PODWARP_LB_MAX_MASQ_CIDRS 256

/* ---- services: key -> struct podwarp_lb_svc (HASH) ----
 * A frontend (address, port, protocol, scope) has one entry at slot 0 (the service entry:
 * backend count, id, affinity, flags) and one entry per backend at slots 1..count (the backend
 * id and a copy of its address, so a pick costs one lookup after the service entry). A backend
 * is picked by looking up a slot in 1..count: O(1), and adding or removing one backend touches
 * O(1) entries (noded/lb keeps positions stable; a removed backend's slot gets the last one).
 * count == 0 means "no backends": connect() is refused, packets are dropped with
 * PODWARP_LB_DROP_NO_BACKEND. */
struct podwarp_lb_svc_key {
  __be32 addr[4]; /* frontend address; for a NodePort the family's wildcard (::ffff:0.0.0.0
                   * or ::), which matches every node address (pw_lb_node_addr) */
  __be16 port;    /* frontend port (network order) */
  __u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
  __u8 scope;     /* PODWARP_LB_SCOPE_* */
  __u16 slot;     /* 0: the service entry; 1..count: backend slots */
  __u16 pad;
};

/* Scopes: a frontend reached from outside the node (tc: NodePort, externalIP, LoadBalancer IP)
 * uses SCOPE_EXTERNAL. When externalTrafficPolicy is Local, its EXTERNAL backend set is only the
 * node's local endpoints while clients on the node (socket LB) get the cluster-wide set, as
 * kube-proxy short-circuits in-cluster traffic: that frontend then also has SCOPE_INTERNAL
 * entries and the flag PODWARP_LB_SVC_F_TWO_SCOPES. ClusterIPs only have SCOPE_EXTERNAL entries
 * (internalTrafficPolicy Local simply narrows that set to local endpoints). */
#define PODWARP_LB_SCOPE_EXTERNAL 0
#define PODWARP_LB_SCOPE_INTERNAL 1

#define PODWARP_LB_SVC_F_CLUSTER_IP (1u << 0)
#define PODWARP_LB_SVC_F_NODEPORT (1u << 1) /* wildcard address: every node address */
#define PODWARP_LB_SVC_F_EXTERNAL_IP (1u << 2)
#define PODWARP_LB_SVC_F_LOADBALANCER (1u << 3)
#define PODWARP_LB_SVC_F_TWO_SCOPES (1u << 4) /* socket LB: use the SCOPE_INTERNAL entries */
#define PODWARP_LB_SVC_F_LOCAL_ONLY (1u << 5) /* this set holds node-local endpoints only */
#define PODWARP_LB_SVC_F_INLINE (1u << 6) /* slot 0 carries all `count` backends in inl[] */

/* Sets of up to PODWARP_LB_INLINE backends also carry them in the service entry itself, so a
 * pick is one lookup (the slot entries stay: sets that grow, recovery, affinity). */
#define PODWARP_LB_INLINE 8

struct podwarp_lb_backend {
  __be32 addr[4]; /* IPv4-mapped for IPv4 */
  __be16 port;    /* network order */
  __u8 proto;
  __u8 flags; /* PODWARP_LB_BE_F_* */
};

struct podwarp_lb_svc {
  /* slot 0: the service entry */
  __u32 count;            /* number of backend slots */
  __u32 set_id;           /* id of this backend set (affinity, members, reverse NAT) */
  __u32 affinity_timeout; /* sessionAffinity ClientIP timeout in seconds; 0 = none */
  __u32 flags;            /* PODWARP_LB_SVC_F_* */
  /* slot > 0: a backend (key of pw_lb_backends, and a copy of that entry) */
  __u32 backend_id;
  struct podwarp_lb_backend backend;
  /* slot 0 with PODWARP_LB_SVC_F_INLINE: the copies of slots 1..count */
  struct {
    __u32 backend_id;
    struct podwarp_lb_backend backend;
  } inl[PODWARP_LB_INLINE];
};

/* ---- backends: __u32 backend id -> struct podwarp_lb_backend (HASH) ----
 * The backend of an id (struct above). Slots carry a copy; session affinity and conntrack
 * resolve ids here. */
#define PODWARP_LB_BE_F_LOCAL (1u << 0)       /* an endpoint on this node (tc: no SNAT) */
#define PODWARP_LB_BE_F_TERMINATING (1u << 1) /* serving but terminating (fallback set) */

/* ---- members: {set id, backend id} -> __u32 1 (HASH; presence is what counts) ----
 * Which backends belong to a backend set right now: session affinity re-checks its remembered
 * backend here (O(1)) and picks again when the backend left the set. */
struct podwarp_lb_member_key {
  __u32 set_id;
  __u32 backend_id;
};

/* ---- affinity: key -> struct podwarp_lb_affinity (LRU_HASH) ----
 * sessionAffinity ClientIP. The socket LB knows no client address at connect() time, so it
 * keys by the network namespace cookie (a pod's sockets share its IP, so the same thing); tc
 * keys by the client's IPv4 address. */
#define PODWARP_LB_AFF_NETNS 1
#define PODWARP_LB_AFF_IPV4 2

struct podwarp_lb_affinity_key {
  __u64 client; /* netns cookie, or the IPv4 address (network order) in the low 32 bits */
  __u32 set_id;
  __u8 kind; /* PODWARP_LB_AFF_* */
  __u8 pad[3];
};

struct podwarp_lb_affinity {
  __u64 last_used_ns; /* bpf_ktime_get_ns() */
  __u32 backend_id;
  __u32 pad;
};

/* ---- socket reverse NAT: key -> struct podwarp_lb_sock_revnat (LRU_HASH) ----
 * Written by connect/sendmsg when they rewrite a service address to a backend; read by recvmsg
 * (UDP source address) and getpeername, which show the service address again. */
struct podwarp_lb_sock_revnat_key {
  __u64 cookie;   /* socket cookie */
  __be32 addr[4]; /* backend address */
  __be16 port;    /* backend port */
  __u16 pad1;
  __u32 pad2;
};

#define PODWARP_LB_REVNAT_F_NODEPORT (1u << 0) /* frontend key has the wildcard address */

struct podwarp_lb_sock_revnat {
  __be32 addr[4]; /* the service address the application used */
  __be16 port;
  __u8 proto;
  __u8 scope;
  __u32 set_id; /* the frontend must still have this set, else the entry is stale */
  __u32 flags;  /* PODWARP_LB_REVNAT_F_* */
  __u32 pad;
};

/* ---- the translation of a connected socket: struct podwarp_lb_sock_peer ----
 * connect() keeps it where getpeername/recvmsg of that socket read it back:
 *  1. pw_lb_sk_slots (ARRAY of struct podwarp_lb_sock_slot), the slot (socket cookie & mask).
 *     Cookies are handed out in sequence (per CPU), so consecutive connects write neighbouring
 *     slots: no allocation, no hashing, no lock; the cheapest write there is. A slot belongs to
 *     the socket whose cookie it holds (claimed by compare-and-swap from 0) until that socket is
 *     released (cgroup/sock_release puts 0 back).
 *  2. when the slot is held by another open socket: socket storage (pw_lb_sk_peer, SK_STORAGE),
 *     which costs an allocation (two, with its memory-cgroup charge) per socket.
 *  3. when that fails too, pw_lb_sk_revnat (LRU), as unconnected UDP (one socket, many
 *     services) always does. */
struct podwarp_lb_sock_peer {
  __be32 backend_addr[4]; /* the backend connect() went to */
  __be16 backend_port;
  __u16 valid;            /* 0: nothing (never set, or found stale) */
  __u32 pad;
  struct podwarp_lb_sock_revnat rv;
};

struct podwarp_lb_sock_slot {
  __u64 cookie; /* the socket that owns the slot; 0: free */
  struct podwarp_lb_sock_peer peer;
};

/* ---- IPv4 connection tracking for tc NodePort/externalIP and egress masquerade: key ->
 * struct podwarp_ct4 (LRU_HASH). A translated flow has two entries:
 *   FWD   keyed by the client's packet as it arrives (client -> frontend); says how to rewrite
 *         it (destination = backend, and source = SNAT address/port for a remote backend);
 *   REPLY keyed by the backend's reply as tc sees it (backend -> client at egress for a local
 *         backend; backend -> SNAT address/port at ingress for a remote one); says how to
 *         rewrite it back (source = frontend, destination = client).
 * Entries with PODWARP_CT_F_REDIRECT are sent on with bpf_redirect_neigh after a FIB lookup
 * (an SNATed packet must not go through the local input path, which would drop a packet from a
 * local source address).
 * A masqueraded flow (a pod talking to an address outside the cluster through a NodePort
 * interface) has
 *   MASQ  keyed by the pod's packet at tc egress (pod -> destination); rewrites the source to
 *         the interface's address and a port from the SNAT range (flags SNAT | MASQ);
 *   REPLY keyed by the answer at tc ingress (destination -> interface address:port); rewrites
 *         the destination back to the pod, then the kernel routes it to the pod.
 * NodePort SNAT and masquerade share the SNAT port range: a port is unique per (remote
 * address, remote port, protocol), because its REPLY key is inserted with BPF_NOEXIST.
 * ICMP echo is tracked like a port pair: the request's "source port" is its identifier
 * (destination port 0), the reply's "destination port" is its identifier (source port 0). */
#define PODWARP_CT_DIR_FWD 0
#define PODWARP_CT_DIR_REPLY 1
#define PODWARP_CT_DIR_MASQ 2

#define PODWARP_CT_F_SNAT (1u << 0)     /* the flow is source-NATed (remote backend) */
#define PODWARP_CT_F_REDIRECT (1u << 1) /* forward with FIB lookup + bpf_redirect_neigh */
#define PODWARP_CT_F_CLOSING (1u << 2)  /* FIN or RST seen: short lifetime */
#define PODWARP_CT_F_MASQ (1u << 3)     /* an egress-masqueraded flow (with SNAT) */

struct podwarp_ct4_key {
  __be32 saddr;
  __be32 daddr;
  __be16 sport;
  __be16 dport;
  __u8 proto;
  __u8 dir; /* PODWARP_CT_DIR_* */
  __u16 pad;
};

struct podwarp_ct4 {
  __be32 nat_saddr; /* the packet's new source address */
  __be32 nat_daddr; /* new destination address */
  __be16 nat_sport;
  __be16 nat_dport;
  __u32 set_id;
  __u32 backend_id;
  __u32 flags; /* PODWARP_CT_F_* */
  __u64 last_seen_ns;
};

/* Lifetimes (seconds since the last packet) of conntrack entries. */
#define PODWARP_CT_LIFETIME_TCP 21600
#define PODWARP_CT_LIFETIME_UDP 300
#define PODWARP_CT_LIFETIME_CLOSING 10
#define PODWARP_CT_LIFETIME_ICMP 30

/* ---- node addresses: 16-byte address -> __u8 (HASH) ----
 * The node's own addresses: a NodePort (wildcard frontend) matches packets to them (tc) and
 * connect() to them or to 127.0.0.0/8 (socket LB). */
struct podwarp_lb_node_addr_key {
  __be32 addr[4];
};

/* ---- config: __u32 0 -> struct podwarp_lb_config (ARRAY of 1) ---- */
struct podwarp_lb_config {
  __be32 snat_addr4;   /* source address towards remote backends; 0: the address the client hit */
  __u16 snat_port_min; /* host order; default 61000..65535 (above ip_local_port_range) */
  __u16 snat_port_max;
  __u32 flags; /* reserved */
  __u32 pad;
};
#define PODWARP_LB_SNAT_PORT_MIN_DEFAULT 61000
#define PODWARP_LB_SNAT_PORT_MAX_DEFAULT 65535

/* ---- egress masquerade (tc egress of the interfaces noded attached) ----
 * pw_lb_masq_if: __u32 ifindex -> struct podwarp_lb_masq_if (HASH). Masquerade happens only on
 *   interfaces listed here, to their address (the node's IPv4 there).
 * pw_lb_masq_src: struct podwarp_lb_lpm4_key -> __u8 (LPM_TRIE). Sources that are masqueraded
 *   (the cluster CIDRs: the pods).
 * pw_lb_no_masq: same layout. Destinations never masqueraded (the cluster CIDRs); the node's
 *   own addresses (pw_lb_node_addr) never are either.
 * A pod packet leaving such an interface from a masq source to any other destination gets the
 * interface's address and a SNAT port (conntrack: PODWARP_CT_DIR_MASQ above). */
struct podwarp_lb_masq_if {
  __be32 addr4; /* source address of masqueraded packets on this interface */
  __u32 flags;  /* reserved */
};

struct podwarp_lb_lpm4_key {
  __u32 prefixlen; /* 0..32 */
  __be32 addr;     /* network order, host bits zero */
};

/* ---- counters: __u32 reason/event -> struct podwarp_lb_counter (PERCPU_ARRAY) ----
 * Every drop (and every refused connect) counts under a named reason in pw_lb_drops; what the
 * datapath translated counts in pw_lb_events. The X-macros give the C++ side the names. */
struct podwarp_lb_counter {
  __u64 packets; /* packets, or socket calls for the socket LB */
  __u64 bytes;
};

#define PODWARP_LB_DROP_REASONS(X)                                                          \
  X(NO_BACKEND, 1, "NoBackend")               /* service without (local) endpoints */      \
  X(BACKEND_MISSING, 2, "BackendMissing")     /* slot names a backend id that is gone */   \
  X(FRAGMENT, 3, "FragmentToService")         /* IPv4 fragment to a service: no L4 ports */ \
  X(CT_CREATE, 4, "ConntrackCreateFailed")    /* conntrack map update failed */            \
  X(SNAT_PORTS, 5, "SnatPortsExhausted")      /* no free SNAT port for a remote backend */ \
  X(REWRITE, 6, "PacketRewriteFailed")        /* bpf_skb_store_bytes or csum helper error */ \
  X(FIB, 7, "FibLookupFailed")                /* no route to a remote backend/client */    \
  X(FAMILY, 8, "AddressFamilyMismatch")       /* IPv4 frontend with an IPv6 backend */    \
  X(MASQ_PORTS, 9, "MasqueradePortsExhausted") /* no free SNAT port for a pod's flow */   \
  X(MASQ_FRAGMENT, 10, "MasqueradeFragment")   /* IP fragment of a pod's masqueraded flow */

enum podwarp_lb_drop_reason {
#define PODWARP_LB_DROP_ENUM_(name, value, text) PODWARP_LB_DROP_##name = value,
  PODWARP_LB_DROP_REASONS(PODWARP_LB_DROP_ENUM_)
#undef PODWARP_LB_DROP_ENUM_
  PODWARP_LB_DROP_MAX = 16
};

#define PODWARP_LB_EVENTS(X)                                                              \
  X(SOCK_CONNECT, 1, "SockConnectTranslated")   /* connect() to a service -> backend */  \
  X(SOCK_SENDMSG, 2, "SockSendmsgTranslated")   /* unconnected UDP send -> backend */    \
  X(SOCK_REVNAT, 3, "SockReverseNat")           /* recvmsg/getpeername show the VIP */   \
  X(NODEPORT_NEW, 4, "NodePortNewFlow")         /* new conntrack flow to a backend */    \
  X(NODEPORT_FWD, 5, "NodePortForward")         /* client packet DNATed (and SNATed) */  \
  X(NODEPORT_REPLY, 6, "NodePortReverseNat")    /* reply rewritten back to the frontend */ \
  X(AFFINITY_HIT, 7, "AffinityHit")             /* sessionAffinity reused a backend */   \
  X(NODEPORT_SNAT, 8, "NodePortSnatFlow")       /* new flow to a remote backend, SNATed */ \
  X(MASQ_NEW, 9, "MasqueradeNewFlow")           /* pod -> outside: new masqueraded flow */ \
  X(MASQ_FWD, 10, "MasqueradeForward")          /* pod packet: source masqueraded */       \
  X(MASQ_REPLY, 11, "MasqueradeReverseNat")     /* reply: destination back to the pod */

enum podwarp_lb_event {
#define PODWARP_LB_EVENT_ENUM_(name, value, text) PODWARP_LB_EV_##name = value,
  PODWARP_LB_EVENTS(PODWARP_LB_EVENT_ENUM_)
#undef PODWARP_LB_EVENT_ENUM_
  PODWARP_LB_EV_MAX = 16
};

/* tc attachment: the handle and priority noded's filters use on clsact ingress/egress. */
#define PODWARP_LB_TC_HANDLE 0x5057 /* "PW" */
#define PODWARP_LB_TC_PRIORITY 1

#endif
