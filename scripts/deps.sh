#!/usr/bin/env bash
# Installs every Debian 12 package podwarp needs to build, test and run.
# Idempotent and quiet: it only calls apt-get when something is missing.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # core libraries
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libnghttp2-dev liburing-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev zlib1g-dev
  # protobuf (etcd client, CRI); gRPC (CRI server, noded's gRPC probes)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # noded: layers, sandbox, processes, network
  libarchive-dev libzstd-dev zstd libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev
  libbpf-dev bpftool clang llvm
  # tests and benchmarks (iptables: the kube-proxy-style peer of tests/bench/lb_bench, used
  # only inside the benchmark's own network namespace; nft: tests list the rules of their own
  # namespaces, never the machine's)
  libgtest-dev libgmock-dev libbenchmark-dev iptables nftables
  # real peers for integration tests
  etcd-server etcd-client python3-kubernetes python3-yaml python3-h2 openssl curl
  docker-registry skopeo umoci busybox-static runc containerd cpio iproute2 strace
  # tests/vm: cgroup v2 limits in a qemu (TCG) guest booting Debian's kernel
  qemu-system-x86 linux-image-amd64 util-linux gzip
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The etcd-server package starts a system etcd on 2379; podwarp runs its own etcd on free
# ports, so the packaged service is not needed. Stop it only if this script just installed it.
if printf '%s\n' "${missing[@]}" | grep -qx etcd-server; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl stop etcd || true
    systemctl disable etcd >/dev/null 2>&1 || true
  fi
fi
