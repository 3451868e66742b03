#!/usr/bin/env bash
# Brings up a single-node podwarp cluster on this machine: installs what is missing,
# builds, starts etcd and podwarp-control with all state under one data dir, waits until
# the API answers, and prints how to use it.
#   scripts/up.sh [--data-dir DIR] [--port PORT]     (defaults: /var/lib/podwarp, 6443 or a free port)
#   scripts/down.sh [--data-dir DIR]                 stops it again
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data_dir=/var/lib/podwarp
port=""
while (($#)); do
  case $1 in
    --data-dir) data_dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/deps.sh
scripts/build.sh >/dev/null
mkdir -p "$data_dir"/{etcd,control,log,run}
data_dir=$(cd "$data_dir" && pwd)

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

if alive "$data_dir/run/control.pid"; then
  echo "podwarp is already running (pid $(cat "$data_dir/run/control.pid")); scripts/down.sh --data-dir $data_dir stops it"
  echo "export KUBECONFIG=$data_dir/control/admin.kubeconfig"
  exit 0
fi

# etcd on free loopback ports, its data kept across restarts.
if ! alive "$data_dir/run/etcd.pid"; then
  cport=$(free_port); pport=$(free_port)
  while [[ $pport == "$cport" ]]; do pport=$(free_port); done
  echo "http://127.0.0.1:$cport" >"$data_dir/run/etcd.endpoint"
  setsid etcd --name podwarp --data-dir "$data_dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "podwarp=http://127.0.0.1:$pport" \
    >"$data_dir/log/etcd.log" 2>&1 </dev/null &
  echo $! >"$data_dir/run/etcd.pid"
fi
endpoint=$(cat "$data_dir/run/etcd.endpoint")
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

if [[ -z $port ]]; then
  if python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",6443))' 2>/dev/null; then port=6443; else port=$(free_port); fi
fi
setsid "$root/build/bin/podwarp-control" --etcd-servers "$endpoint" --data-dir "$data_dir/control" \
  --bind-address 127.0.0.1 --secure-port "$port" \
  >"$data_dir/log/control.log" 2>&1 </dev/null &
echo $! >"$data_dir/run/control.pid"
for _ in $(seq 200); do
  grep -q 'serving on' "$data_dir/log/control.log" 2>/dev/null && break
  alive "$data_dir/run/control.pid" || { echo "podwarp-control failed to start:" >&2; tail -20 "$data_dir/log/control.log" >&2; exit 1; }
  sleep 0.1
done
grep -q 'serving on' "$data_dir/log/control.log" || { echo "podwarp-control did not come up" >&2; exit 1; }
export KUBECONFIG=$data_dir/control/admin.kubeconfig
kubectl version >/dev/null 2>&1 || { echo "the API does not answer kubectl" >&2; exit 1; }
cat <<TXT
podwarp control plane is up (etcd $endpoint, apiserver https://127.0.0.1:$port).
  export KUBECONFIG=$data_dir/control/admin.kubeconfig
  kubectl get namespaces
Logs: $data_dir/log/   Stop: scripts/down.sh --data-dir $data_dir
TXT
