#!/usr/bin/env bash
# Runs every benchmark against its peer in the same run and prints their tables.
# Builds first. Arguments go to each benchmark (e.g. --pods 2000 for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh >/dev/null
ulimit -n 65536 2>/dev/null || true
build/bin/apiserver_bench "$@"

# noded (issue 3): container start through podwarp-noded against runc and containerd, 100 pods
# at once, RSS. Root only (namespaces, cgroups, mounts); it says so and skips otherwise.
# Its own flags: --noded-runs N --noded-pods N.
PODWARP_BIN=build/bin python3 tests/bench/noded_bench.py "$@"

# pod start latency (issue 5): a whole single-node cluster from `podwarp up` (etcd,
# podwarp-control, local registry, podwarp-noded), created -> all containers running as seen on
# a watch (upstream SLO definition), one at a time and a burst of 100, per-phase split, RSS
# idle and with 100 pods. Root only; it says so and skips otherwise. Its own flags:
# --seq-pods N --batch N --burst N --burst-conns N --tmpfs --nice N --json FILE --no-containerd.
PODWARP_BIN=build/bin /usr/bin/python3 tests/bench/pod_start_bench.py "$@"

# scheduler (issue 4): in-process scheduling (upstream scheduler_perf SchedulingBasic shape,
# 5,000 nodes / 10,000 pods, basic and anti-affinity + zone spread; medians of 3), then
# create -> bound through etcd + podwarp-control (apiserver,scheduler) against the create-only
# rate with the scheduler off. Its own flags: --nodes N --pods M --concurrency C --runs R --split.
build/bin/scheduler_bench 5000 10000
build/bin/scheduler_e2e_bench --split "$@"

# service load balancing (issue 6): one more service with 10,000 x 5 present (BPF map updates vs
# iptables-restore) and first-connect latency, all in a private netns. Root only.
build/bin/lb_bench

# network policy: programming a policy with 1,000 allowed peer pods (and one more) and the
# latency of new and established pod-to-pod connections, BPF vs an iptables per-pod chain, all
# in private netns. Root only. Run it alone for its flags: --peers N --connects N --roundtrips N.
build/bin/netpol_bench
