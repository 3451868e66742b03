#!/usr/bin/env bash
# Boots Debian's kernel under qemu (TCG) with an initramfs holding limits_check, a busybox and
# a busybox container rootfs, and checks noded's cgroup v2 limits there (see README.md).
#
#   tests/vm/run.sh [--binary PATH] [--kernel PATH] [--timeout SECONDS] [--keep]
#
# --binary  limits_check (default: $BUILD_DIR/tests/podwarp_vm_limits_check, BUILD_DIR=build)
# --kernel  default: $PODWARP_VM_KERNEL or the newest readable /boot/vmlinuz-*
# Exit: 0 PASS, 1 FAIL or timeout, 77 skipped (no qemu, kernel, busybox-static or binary).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
binary="${src}/${BUILD_DIR:-build}/tests/podwarp_vm_limits_check"
kernel="${PODWARP_VM_KERNEL:-}"
timeout_s=300
keep=0
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--binary PATH] [--kernel PATH] [--timeout S] [--keep]" >&2; exit 2 ;;
  esac
done

skip() { echo "vm test SKIPPED: $*"; exit 77; }
qemu=$(command -v qemu-system-x86_64 || true)
[[ -n $qemu ]] || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
if [[ -z $kernel ]]; then
  kernel=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1 || true)
fi
[[ -n $kernel && -r $kernel ]] ||
  skip "no readable kernel ${kernel:-/boot/vmlinuz-*} (apt-get install linux-image-amd64)"
busybox=/bin/busybox
[[ -x $busybox ]] || skip "no $busybox (apt-get install busybox-static)"
# The guest has no libc outside limits_check's own libraries: busybox must be static.
if ldd "$busybox" >/dev/null 2>&1; then skip "$busybox is dynamic; install busybox-static"; fi
[[ -x $binary ]] || skip "limits_check binary $binary not built (ninja podwarp_vm_limits_check)"
command -v cpio >/dev/null || skip "cpio not installed"

work=$(mktemp -d /tmp/podwarp-vm-XXXXXX)
qemu_pid=
cleanup() {
  if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null || true
    wait "$qemu_pid" 2>/dev/null || true
  fi
  if ((keep)); then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$(date +%s.%N)
# ---- the initramfs
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/local/bin,containers/busybox/bin,containers/busybox/tmp}
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
  [[ $a == busybox ]] || ln -sf busybox "$root/bin/$a"
done
cp "$here/init.sh" "$root/init"
chmod 0755 "$root/init"
cp "$binary" "$root/usr/local/bin/limits_check"
strip "$root/usr/local/bin/limits_check" 2>/dev/null || true
# Every shared library limits_check needs, at the same path, and the dynamic loader.
ldd "$binary" | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]*ld-linux/ {print $1}' |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
[[ -e $root/lib64/ld-linux-x86-64.so.2 ]] || {
  mkdir -p "$root/lib64"
  cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
}
# The container's rootfs: a static busybox.
cp "$busybox" "$root/containers/busybox/bin/busybox"
for a in sh dd sleep echo cat true; do ln -sf busybox "$root/containers/busybox/bin/$a"; done
(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$work/initrd.gz"
echo "vm: initramfs $(du -h "$work/initrd.gz" | cut -f1), kernel $kernel"

# ---- boot
log=$work/console.log
# qemu dies with this script even if the script is SIGKILLed (a ctest timeout, say).
pdeath=()
if setpriv --help 2>/dev/null | grep -q pdeathsig; then pdeath=(setpriv --pdeathsig KILL --); fi
"${pdeath[@]}" "$qemu" -accel tcg -cpu max -smp 1 -m 512M -nodefaults -display none -no-reboot \
  -serial "file:$log" -kernel "$kernel" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null >"$work/qemu.out" 2>&1 &
qemu_pid=$!
timed_out=0
deadline=$(($(date +%s) + timeout_s))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if (($(date +%s) >= deadline)); then
    timed_out=1
    kill "$qemu_pid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
wait "$qemu_pid" 2>/dev/null || true
qemu_pid=
t1=$(date +%s.%N)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')

tr -d '\r' <"$log" >"$work/console.txt" || true
if ((timed_out)); then
  echo "vm: TIMEOUT after ${timeout_s} s; console tail:"
  tail -n 60 "$work/console.txt"
  cat "$work/qemu.out"
  exit 1
fi
if grep -q '^PODWARP-VM-RESULT: PASS' "$work/console.txt"; then
  sed -n '/^init: kernel/,$p' "$work/console.txt"
  echo "vm: PASS in ${elapsed} s (initramfs + boot + checks)"
  exit 0
fi
echo "vm: FAIL after ${elapsed} s; console tail:"
tail -n 80 "$work/console.txt"
cat "$work/qemu.out"
exit 1
