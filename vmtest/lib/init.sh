#!/bin/busybox sh
# /init of the vmtest guest (PID 1). vmtest/run copies this file into the initramfs together with
# /vmtest/plan.sh (the steps to run) and /vmtest/nonce (makes the result line unforgeable by test
# output). It prepares what a node running netprof has (proc, sysfs, cgroup2, bpffs, loopback),
# runs the steps, prints one result line and powers off. It must never exit: PID 1 exiting panics.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /usr/bin /usr/sbin /sbin
/bin/busybox --install -s /bin
# Busybox's sh prefers its applets to PATH (its `ip` lacks netns): tests get dash when it is there.
[ -x /bin/dash ] && /bin/busybox ln -sf dash /bin/sh
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# The initramfs root is already writable; a build tree under /tmp (a CI checkout there) was
# copied in at its own path, so only an empty /tmp gets a fresh tmpfs.
[ -z "$(ls -A /tmp)" ] && mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# Where Kubernetes nodes have them; netprof reads /proc/self/mountinfo, so the path is not assumed.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null   # bpf_printk output, when debugging

nonce=$(cat /vmtest/nonce)
echo "vmtest: guest up: kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime) s, $(nproc) cpu(s)"

# The KVM probe only needs to know that the guest reaches this point.
if grep -q 'vmtest.probe' /proc/cmdline; then
  echo "vmtest-probe-ok $nonce"
  poweroff -f
fi

. /vmtest/env   # --env VAR=VALUE from the host
hostname vmtest
ip link set lo up
ulimit -l unlimited 2>/dev/null   # kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK
ulimit -n 65536 2>/dev/null

# Modules listed by the host in dependency order (each line: a path below /lib/modules/<ver>).
if [ -s /vmtest/modules ]; then
  while read -r ko; do
    insmod "/lib/modules/$(uname -r)/$ko" || echo "vmtest: warning: insmod $ko failed"
  done < /vmtest/modules
fi

failed=0
first_rc=0
failed_names=""
steps=0
# vm_step NAME WORKDIR [VAR=VALUE...] COMMAND [ARGS...]
vm_step() {
  name=$1 wd=$2
  shift 2
  steps=$((steps + 1))
  echo "vmtest: step: $name"
  mkdir -p "$wd"
  (cd "$wd" && exec env "$@") </dev/null 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "vmtest: ok: $name"
  else
    echo "vmtest: FAILED (exit $rc): $name"
    failed=$((failed + 1))
    [ "$first_rc" -ne 0 ] || first_rc=$rc
    failed_names="$failed_names
  $name"
  fi
}

. /vmtest/plan.sh

echo "vmtest: $steps step(s), $failed failed, uptime $(cut -d' ' -f1 /proc/uptime) s$failed_names"
status=$first_rc   # the exit code of the first failed step, so `--cmd "exit 3"` gives 3
[ "$steps" -gt 0 ] || { echo "vmtest: no steps to run"; status=1; }
echo "vmtest-result $nonce status=$status"
sync
poweroff -f
# poweroff -f does not return; if it ever does, do not let PID 1 exit.
sleep 3600
