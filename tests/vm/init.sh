#!/bin/sh
# /init of the podwarp VM test (busybox sh). Runs as pid 1 of a qemu guest.
#
# Stage 1 (on the initramfs): copies itself to a tmpfs and switch_roots into it, because
# pivot_root(2), which every container start uses, refuses to move the initramfs (EINVAL).
# Stage 2 (on the tmpfs): mounts proc, sys, devtmpfs and a unified cgroup2 at /sys/fs/cgroup,
# enables +cpu +memory +pids, runs limits_check and prints
#   PODWARP-VM-RESULT: PASS|FAIL
# then powers off (the host's run.sh greps the serial console log for that line).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

if [ ! -e /.stage2 ]; then
  /bin/busybox mkdir -p /proc /sys /dev /newroot
  mount -t tmpfs -o mode=0755,size=256m tmpfs /newroot
  for d in /*; do
    case "$d" in
      /newroot | /proc | /sys | /dev) ;;
      *) cp -a "$d" /newroot/ ;;
    esac
  done
  mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/tmp
  touch /newroot/.stage2
  exec switch_root /newroot /init
  echo "PODWARP-VM-RESULT: FAIL (switch_root failed)"
  poweroff -f
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in cpu memory pids; do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "init: cannot enable +$c"
done
echo "init: kernel $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "init: subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

start=$(cut -d' ' -f1 /proc/uptime)
/usr/local/bin/limits_check --rootfs /containers/busybox --run-dir /run/podwarp-vm
rc=$?
echo "init: limits_check exit code $rc, guest uptime $start s -> $(cut -d' ' -f1 /proc/uptime) s"
if [ "$rc" = 0 ]; then
  echo "PODWARP-VM-RESULT: PASS"
else
  echo "PODWARP-VM-RESULT: FAIL"
fi
sync
poweroff -f
echo o > /proc/sysrq-trigger
