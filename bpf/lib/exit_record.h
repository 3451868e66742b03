/* The kernel<->user ABI of bpf/exit_recorder.bpf.c, included by the BPF program and by
 * noded/exitrec/exit_recorder.cpp. Changing a layout here changes the pinned maps: a noded
 * with a new layout refuses pins made by an old one (ExitRecorder::open checks the sizes). */
#ifndef PODWARP_BPF_LIB_EXIT_RECORD_H
#define PODWARP_BPF_LIB_EXIT_RECORD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Map names, which are also the file names of the pins in the pin directory. */
#define PODWARP_EXITREC_WATCHED_MAP "watched"
#define PODWARP_EXITREC_EXITS_MAP "exits"
#define PODWARP_EXITREC_LINK_PIN "link"

/* Both maps hold at most this many entries (one per container process noded watches). */
#define PODWARP_EXITREC_MAX_ENTRIES 16384

/* watched: key __u32 tgid (host pid namespace) -> value __u64 cookie (opaque to the kernel side;
 * noded puts the process start time there). One-shot: the program deletes the entry when it
 * records the exit, so a later process that reuses the pid is not recorded under the old cookie.
 *
 * exits: key __u32 tgid -> value struct podwarp_exit_record. */
struct podwarp_exit_record {
  __u64 cookie;      /* the watched cookie of the process that exited */
  __u32 wait_status; /* as waitpid() returns it: code << 8, or signal (| 0x80 if core dumped) */
  __u32 pad;
  __u64 boottime_ns; /* CLOCK_BOOTTIME of the exit (bpf_ktime_get_boot_ns) */
};

#endif
