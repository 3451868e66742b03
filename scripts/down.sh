#!/usr/bin/env bash
# Stops what scripts/up.sh started (by the pids it recorded). --purge also removes the data.
set -euo pipefail
data_dir=/var/lib/podwarp
purge=0
while (($#)); do
  case $1 in
    --data-dir) data_dir=$2; shift 2 ;;
    --purge) purge=1; shift ;;
    *) echo "down.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
stop() {
  local f=$data_dir/run/$1.pid
  [[ -f $f ]] || return 0
  local pid; pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$f"
}
stop control
stop etcd
if ((purge)); then rm -rf "$data_dir"; fi
echo "podwarp stopped"
