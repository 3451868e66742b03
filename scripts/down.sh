#!/usr/bin/env bash
# Stops the cluster scripts/up.sh started and removes every process, mount, cgroup, namespace
# pin and BPF pin it made (`podwarp down`). --keep-data keeps etcd, PKI and pod state so that
# the next up resumes; --purge also removes the image store and the registry's storage.
set -euo pipefail
cd "$(dirname "$0")/.."
exec build/bin/podwarp down "$@"
