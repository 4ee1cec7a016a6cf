#!/usr/bin/env bash
# Runs the kernel matrix's tests inside a QEMU guest, as PID 1 on the host's root (read-only 9p
# with a tmpfs overlay, see ./init), and reports each step's result on the console, where
# scripts/kernel-matrix.sh reads it: QEMU exits 0 on poweroff whatever happened in here.
#
# Parameters come from the kernel command line (key=value reaches PID 1 as an environment
# variable; values have no spaces):
#   bae_repo      the repo checkout on the host root (the guest's working directory)
#   bae_modules   the unpacked kernel's lib/modules/<release> on the host root
#   bae_node_dir  the directory of the host's node, put first on PATH
#   bae_deadline  seconds the steps may take in all; a step still running then is stopped, so
#                 that the guest reports before the host's timeout kills it
#   bae_ci        the host's CI variable (the tests fail instead of skipping under CI=true)
#   bae_steps     optional: a file with one command per line, run instead of the list below

# What runs in each guest, in this order, from the repo checkout (make test-kernels builds it on
# the host first): each test file as a step of its own, so that the summary names the file that
# failed on a kernel and how long each took, the verifier's cost on this kernel last of them;
# then the other steps. Every step runs even after one failed. Patterns are bash's, extglob on;
# one that matches nothing stays as it is, so run-tests.sh fails on a renamed file.
# Measured under TCG (docs/development.md): the tests take about 8 minutes a kernel, the demo
# about 4 (each `bae` command takes 4 s to start there).
TEST_FILES=(
  'dist/test/bpf/!(verifier-budget).test.js'
  dist/test/policy/kernel.test.js
  dist/test/policy/differential.test.js
  dist/test/policy/actions.test.js
  dist/test/policy/actions-differential.test.js
  dist/test/policy/http.test.js
  dist/test/policy/blocks.test.js
  dist/test/policy/escalate.test.js
  dist/test/reconstruct/capture-kernel.test.js
  'dist/test/addon/*.test.js'
  dist/test/bpf/verifier-budget.test.js
)
OTHER_STEPS=(
  'bash scripts/demo.sh'
)

GUEST_MARKER=bae_kernel_matrix_guest=1
STEP_MARKER=BAE-KERNEL-MATRIX-STEP
RESULT_MARKER=BAE-KERNEL-MATRIX-RESULT
STEP_KILL_GRACE_S=10 # after the deadline's TERM, before KILL
POWEROFF_WAIT_S=30   # for the kernel to power off before PID 1 gives up and exits (a panic)

# Guard: this script mounts, creates namespaces and attaches XDP programs. It runs only as PID 1
# of a kernel booted by scripts/kernel-matrix.sh, never on a host.
read -r cmdline </proc/cmdline 2>/dev/null || cmdline=
if [[ $$ -ne 1 || " $cmdline " != *" $GUEST_MARKER "* ]]; then
  echo "kernel-matrix guest: refusing to run: not PID 1 of a kernel-matrix guest ($GUEST_MARKER not on the kernel command line)" >&2
  exit 2
fi

set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
[[ -n ${bae_node_dir:-} && ":$PATH:" != *":$bae_node_dir:"* ]] && PATH=$bae_node_dir:$PATH
export HOME=/root LANG=C.UTF-8 TERM=dumb
[[ -n ${bae_ci:-} ]] && export CI=$bae_ci

power_off() {
  echo o >/proc/sysrq-trigger
  sleep "$POWEROFF_WAIT_S"
  exit 1
}

# Read before /tmp is replaced below: the host may have written the file under its /tmp.
steps=()
if [[ -n ${bae_steps:-} ]]; then
  mapfile -t steps <"$bae_steps" || { echo "kernel-matrix guest: cannot read $bae_steps"; power_off; }
fi

# The rest of a normal root. /run and /tmp are fresh tmpfs so the host's netns and pin files
# (visible through the 9p share) do not leak in.
mount_fs() { mkdir -p "$3" && mount -t "$1" "$2" "$3" || echo "kernel-matrix guest: cannot mount $1 on $3"; }
mount_fs devpts devpts /dev/pts
mount_fs tmpfs shm /dev/shm
# The checkout may itself live under /tmp or /run (CI clones wherever it likes): it is kept
# through a bind mount, put back at its own path on the fresh tmpfs.
kept_repo=
case ${bae_repo:-} in
  /tmp/* | /run/*) mkdir -p /mnt/bae-repo && mount --bind "$bae_repo" /mnt/bae-repo && kept_repo=/mnt/bae-repo ;;
esac
mount_fs tmpfs run /run
mount_fs tmpfs tmp /tmp
if [[ -n $kept_repo ]]; then
  mkdir -p "$bae_repo" && mount --bind "$kept_repo" "$bae_repo" || echo "kernel-matrix guest: cannot put $bae_repo back"
fi
mount_fs bpf bpf /sys/fs/bpf
mount_fs cgroup2 cgroup2 /sys/fs/cgroup
mount_fs tracefs tracefs /sys/kernel/tracing
# Module autoloading (veth, ...) runs /sbin/modprobe, which looks here.
release=$(uname -r)
mkdir -p "/lib/modules/$release" && mount --bind "${bae_modules:-}" "/lib/modules/$release" ||
  echo "kernel-matrix guest: cannot bind ${bae_modules:-(bae_modules unset)} on /lib/modules/$release"
ip link set lo up
# A machine has a network interface besides lo, and tests count on it (policy/kernel.test.js
# takes one's ifindex as "another port"); QEMU's -nodefaults gives the guest none.
ip link add dummy0 type dummy && ip link set dummy0 up
hostname bae-kernel-matrix

cd "${bae_repo:?}" || power_off

if ((${#steps[@]} == 0)); then
  shopt -s extglob
  for pattern in "${TEST_FILES[@]}"; do
    for file in $pattern; do steps+=("bash scripts/run-tests.sh $file"); done
  done
  steps+=("${OTHER_STEPS[@]}")
fi

deadline=$((SECONDS + ${bae_deadline:-600}))
results=()
failed=0
for i in "${!steps[@]}"; do
  cmd=${steps[i]}
  left=$((deadline - SECONDS))
  printf '\n=== kernel-matrix [%s] step %d/%d: %s\n' "$release" $((i + 1)) ${#steps[@]} "$cmd"
  start=$EPOCHREALTIME
  if ((left > 0)); then
    timeout --kill-after="$STEP_KILL_GRACE_S" "$left" bash -O extglob -c "$cmd" </dev/null
    rc=$?
    ((SECONDS >= deadline)) && echo "=== kernel-matrix [$release]: stopped at the deadline (bae_deadline=${bae_deadline:-600} s)"
  else
    echo "=== kernel-matrix [$release]: not run, the deadline has passed"
    rc=124
  fi
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  ((rc == 0)) || failed=$((failed + 1))
  results+=("$STEP_MARKER rc=$rc secs=$secs $cmd")
done

# The summary and the marker the host looks for, each on its own line (kernel messages may
# interleave with console output).
echo
printf '%s\n' "${results[@]}"
echo "$RESULT_MARKER rc=$((failed > 0)) steps=${#steps[@]} failed=$failed kernel=$release"
power_off
