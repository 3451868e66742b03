// SPDX-License-Identifier: GPL-2.0
/* exit_recorder: the wait status of watched processes, recorded in the kernel so that it
 * survives the death of the process's parent. noded watches each container process (tgid ->
 * cookie in map `watched`); when such a process dies, the status its parent would get from
 * waitpid() goes into map `exits`. The program's link and both maps are pinned in bpffs, so
 * recording goes on while noded is down: the container is reparented, reaped by init or a
 * subreaper, and the restarted noded still reads its exit code.
 *
 * Works on any kernel with BTF and tp_btf (5.5+; bpf_ktime_get_boot_ns needs 5.8): built
 * here on 6.18, run on Debian 12's 6.1 too. Every field access is a CO-RE read. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lib/exit_record.h"

/* include/linux/sched/signal.h: a macro, so not in vmlinux.h. Same value since 2.6. */
#define SIGNAL_GROUP_EXIT 0x00000004

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PODWARP_EXITREC_MAX_ENTRIES);
  __type(key, __u32);
  __type(value, __u64);
} watched SEC(".maps");

/* LRU: records that noded never takes (a container it forgot) age out instead of filling it. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, PODWARP_EXITREC_MAX_ENTRIES);
  __type(key, __u32);
  __type(value, struct podwarp_exit_record);
} exits SEC(".maps");

/* Attaches to: the BTF tracepoint sched_process_exit, fired by every exiting task (thread) in
 * do_exit(), after signal->live was decremented and task->exit_code set, and before
 * exit_notify() makes the task a zombie and wakes the parent. Its first argument is the task on
 * every kernel (6.16+ adds a `bool group_dead` after it, which is not used here).
 *
 * A process is dead when its last thread exits (signal->live == 0): that thread is usually the
 * leader, but may be another thread when the leader called exit(2) alone earlier. The status
 * is the one wait_task_zombie() reports: signal->group_exit_code when the group exited as a
 * whole (exit_group(2), a fatal signal, a core dump: SIGNAL_GROUP_EXIT), else the leader's
 * exit_code (exit(2) of a single-threaded process). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(record_exit, struct task_struct *task)
{
  __u32 tgid = BPF_CORE_READ(task, tgid);
  __u64 *cookie = bpf_map_lookup_elem(&watched, &tgid);
  if (!cookie)
    return 0;
  struct signal_struct *sig = BPF_CORE_READ(task, signal);
  if (BPF_CORE_READ(sig, live.counter) != 0)
    return 0; /* other threads of the process still run */

  struct podwarp_exit_record rec = {};
  rec.cookie = *cookie;
  if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
    rec.wait_status = (__u32)BPF_CORE_READ(sig, group_exit_code);
  else
    rec.wait_status = (__u32)BPF_CORE_READ(task, group_leader, exit_code);
  rec.boottime_ns = bpf_ktime_get_boot_ns();
  bpf_map_update_elem(&exits, &tgid, &rec, BPF_ANY);
  bpf_map_delete_elem(&watched, &tgid);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
