#!/usr/bin/env bash
# The kernel matrix (`make test-kernels`): boots Debian 12's kernels, the stock 6.1 line and the
# 6.12 line, under QEMU (TCG: these machines have no KVM) and runs tests inside each guest. The
# guest's root is the host's root, read-only over virtio-9p with a tmpfs overlay, so it runs the
# same node, tools and built checkout as the host, and nothing it does reaches the host.
#
#   scripts/kernel-matrix.sh                 the default steps (scripts/kernel-matrix/guest.sh)
#   scripts/kernel-matrix.sh 'CMD' ...       these commands instead, one step each, run from the
#                                            repo checkout in the guest
#   KERNELS=6.1 scripts/kernel-matrix.sh     one kernel line only (6.1, 6.12 or both)
#
# Kernels come from Debian's apt repositories with `apt-get download` and are unpacked, never
# installed: installing pulls in initramfs-tools and rewrites the host's boot files. The newest
# of each line that apt offers is used (old ABI versions vanish from the mirror), cached outside
# the checkout because CI runs in a fresh clone. Exits non-zero when a step failed in any guest,
# when a guest did not report (it crashed or could not start the tests) or ran out of time.
# shared/notes/kernel-matrix.md has the measurements behind these choices.
set -euo pipefail
shopt -s inherit_errexit # a failure inside $(...) stops the run too
cd "$(dirname "$0")/.."
REPO=$PWD

CACHE_DIR=${BAE_KERNEL_CACHE:-/var/cache/bae/kernels}
read -r -a SERIES <<<"${KERNELS:-6.1 6.12}"
# Per kernel, boot to poweroff. The guests run side by side, so this also bounds the whole run
# (plus a first download of about a minute a kernel), within CI's 20 minutes. Measured: 12-13
# minutes a kernel for the 28 steps of the first matrix on an idle machine; the capture and
# escalation steps add about half a minute and the demo now takes 6-7 minutes there (it was 3-4),
# so the bound is 20 minutes. The offline replay's test (2 minutes under TCG) runs on the host only.
GUEST_TIMEOUT_S=${BAE_KERNEL_TIMEOUT:-1200}
# Of that, what boot, mounts and poweroff get: the guest stops its steps that much earlier, so
# that it still prints its summary when a step hangs.
GUEST_BOOT_MARGIN_S=45
QEMU_KILL_GRACE_S=10
GUEST_MEMORY=3G # the demo's lab, iperf3 and node need more than 2G beside the tmpfs overlay
GUEST_CPUS=2    # the machine's cores; TCG runs one host thread per guest CPU
# What the initramfs loads to reach the host root, with their dependencies; built-in ones are
# skipped (6.12 has virtio_pci built in, 6.1 does not).
INITRAMFS_MODULES=(virtio_pci 9pnet_virtio 9p overlay)
INITRAMFS_APPLETS=(sh mount insmod mkdir sleep cat switch_root poweroff)
GUEST_MARKER=bae_kernel_matrix_guest=1 # guest.sh runs only when the kernel command line has it
STEP_MARKER=BAE-KERNEL-MATRIX-STEP
RESULT_MARKER=BAE-KERNEL-MATRIX-RESULT

log() { printf 'kernel-matrix: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The package name of a kernel line: Debian 12's stock kernel and its 6.12 line (source
# linux-6.12, from bookworm-security), the unsigned flavour (the signed one only adds a Secure
# Boot signature).
package_pattern() {
  case $1 in
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$' ;;
    *) return 1 ;;
  esac
}

[[ $EUID -eq 0 ]] || die "run as root (apt-get download, the kernel cache, mknod in the initramfs)"
for s in "${SERIES[@]}"; do package_pattern "$s" >/dev/null || die "unknown kernel line '$s' in KERNELS (known: 6.1 6.12)"; done
((${#SERIES[@]})) || die "KERNELS names no kernel line"
[[ $REPO != *[[:space:]]* ]] || die "the repo path '$REPO' has white space: it cannot go on a kernel command line"
for tool in qemu-system-x86_64 busybox cpio depmod apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
for f in build/bpf/bae.o addon/build/Release/bae.node dist/.stamp; do
  [[ -e $f ]] || die "$f is missing: run make first (make test-kernels builds)"
done
NODE_DIR=$(dirname "$(command -v node)") || die "node is not on PATH"

work=$(mktemp -d /tmp/bae-kernel-matrix.XXXXXX)
# On an early exit (Ctrl-C, a failed fetch): stop the guests still running (timeout passes the
# TERM on to QEMU) and their console followers.
cleanup() {
  local pids
  pids=$(jobs -p)
  [[ -n $pids ]] && kill $pids 2>/dev/null && wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Steps given on the command line go to the guest in a file: it sees the host's /tmp over 9p.
steps_file=
if (($#)); then
  steps_file=$work/steps
  printf '%s\n' "$@" >"$steps_file"
fi

# Prints the newest package of a kernel line that apt knows, by name. With stale package lists
# the newest named may already be gone from the mirror: kernel_fetch then refreshes them.
newest_package() {
  apt-cache search --names-only "$(package_pattern "$1")" | awk '{ print $1 }' | sort -V | tail -1
}

# Makes sure the newest kernel of a line is unpacked in the cache and prints its directory,
# which holds boot/vmlinuz-* and lib/modules/<release> with modules.dep. Unpacks once per package
# version and removes older versions of the line. Stale package lists can name a version the
# mirror no longer has: then the lists are refreshed once; when the download still fails, the
# newest version already in the cache is used. A lock keeps two runs on one machine apart.
kernel_fetch() {
  local series=$1 retry=${2:-} package version dir tmp old release
  package=$(newest_package "$series")
  [[ -n $package ]] || { apt-get update -qq && package=$(newest_package "$series"); }
  [[ -n $package ]] || die "[$series] apt offers no package matching $(package_pattern "$series")"
  version=$(apt-cache show --no-all-versions "$package" | awk '/^Version:/ { print $2; exit }')
  dir=$CACHE_DIR/${package}_$version
  mkdir -p "$CACHE_DIR"
  exec {lock}>"$CACHE_DIR/.lock"
  flock "$lock"
  rm -rf "$CACHE_DIR"/.unpack.* # left by a run that was killed while unpacking
  if [[ -f $dir/.complete ]]; then
    log "[$series] $package $version: cached in $dir"
  else
    log "[$series] $package $version: downloading and unpacking into $dir"
    tmp=$(mktemp -d "$CACHE_DIR/.unpack.XXXXXX")
    # apt drops root for downloads; let its sandbox user write here (else it warns, then works).
    chown _apt "$tmp" 2>/dev/null || true
    if ! (cd "$tmp" && apt-get download -qq "$package=$version"); then
      rm -rf "$tmp"
      if [[ -z $retry ]]; then
        log "[$series] download failed; refreshing the package lists once"
        flock -u "$lock"
        apt-get update -qq || true
        kernel_fetch "$series" retry
        return
      fi
      dir=$(cached_kernels "$series" | tail -1)
      [[ -n $dir ]] || die "[$series] cannot download $package $version and none of the line is cached"
      log "[$series] cannot download $package $version; using the cached $(basename "$dir")"
      flock -u "$lock"
      echo "$dir"
      return
    fi
    dpkg-deb -x "$tmp"/*.deb "$tmp/root"
    release=$(ls "$tmp/root/lib/modules")
    depmod -b "$tmp/root" "$release"
    rm -rf "$dir" && mv "$tmp/root" "$dir" && rm -rf "$tmp"
    touch "$dir/.complete"
  fi
  while IFS= read -r old; do
    [[ $old == "$dir" ]] && continue
    log "[$series] removing the older $(basename "$old") from the cache"
    rm -rf "$old"
  done < <(cached_kernels "$series")
  flock -u "$lock"
  echo "$dir"
}

# Prints the complete cache directories of a kernel line, oldest first.
cached_kernels() {
  local d package pattern
  pattern=$(package_pattern "$1")
  for d in "$CACHE_DIR"/*_*/; do
    d=${d%/} package=${d##*/} && package=${package%%_*}
    if [[ -f $d/.complete ]] && grep -qE "$pattern" <<<"$package"; then echo "$d"; fi
  done | sort -V
}

# Prints "name path" for each module of the tree at MODDIR that the named modules need, with
# themselves, dependencies first, leaving out those built into the kernel.
module_load_order() {
  local moddir=$1; shift
  local -A deps path loaded builtin
  local line file rest name
  # kernel/fs/9p/9p.ko.xz -> 9p; modprobe treats - and _ alike. No basename: thousands of lines.
  module_name() { name=${1##*/} && name=${name%%.ko*} && name=${name//-/_}; }
  while IFS= read -r line; do
    file=${line%%:*} rest=${line#*:}
    module_name "$file"
    path[$name]=$file deps[$name]=$rest
  done <"$moddir/modules.dep"
  while IFS= read -r file; do
    module_name "$file"
    builtin[$name]=1
  done <"$moddir/modules.builtin"
  visit() {
    local m=${1//-/_} d
    [[ -n ${loaded[$m]:-} || -n ${builtin[$m]:-} ]] && return
    [[ -n ${path[$m]:-} ]] || die "module $m is neither built in nor in $moddir"
    loaded[$m]=1
    for d in ${deps[$m]}; do
      module_name "$d"
      visit "$name"
    done
    echo "$m ${path[$m]}"
  }
  for name in "$@"; do visit "$name"; done
}

# Builds the initramfs for one kernel: static busybox, ./kernel-matrix/init and the modules it
# loads, decompressed (busybox insmod takes plain .ko; 6.12 ships .ko.xz).
initramfs_build() {
  local kdir=$1 release=$2 out=$3 stage=$work/initramfs-$2 name file applet
  mkdir -p "$stage"/{bin,dev,proc,sys,lower,rw,newroot,modules}
  cp "$(command -v busybox)" "$stage/bin/busybox"
  for applet in "${INITRAMFS_APPLETS[@]}"; do ln -s busybox "$stage/bin/$applet"; done
  # The kernel opens /dev/console of the initramfs for PID 1's stdio, before devtmpfs exists.
  mknod -m 600 "$stage/dev/console" c 5 1
  install -m 755 scripts/kernel-matrix/init "$stage/init"
  local order
  order=$(module_load_order "$kdir/lib/modules/$release" "${INITRAMFS_MODULES[@]}")
  : >"$stage/modules/order"
  while read -r name file; do
    case $file in
      *.ko) cp "$kdir/lib/modules/$release/$file" "$stage/modules/$name.ko" ;;
      *.ko.xz) xz -dc "$kdir/lib/modules/$release/$file" >"$stage/modules/$name.ko" ;;
      *.ko.zst) zstd -qdc "$kdir/lib/modules/$release/$file" >"$stage/modules/$name.ko" ;;
      *.ko.gz) gzip -dc "$kdir/lib/modules/$release/$file" >"$stage/modules/$name.ko" ;;
      *) die "unknown module format: $file" ;;
    esac
    echo "$name" >>"$stage/modules/order"
  done <<<"$order"
  (cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out"
  log "[$release] initramfs: $(tr '\n' ' ' <"$stage/modules/order")($(du -k "$out" | cut -f1) KiB)"
}

# Per kernel line: its release, its QEMU (timeout) pid, console log and start time.
declare -A release_of qemu_pid_of console_of started_of

# Fetches one kernel, builds its initramfs and boots it in the background. The console goes
# to a log file and, prefixed with the kernel line, to our stdout as it comes.
kernel_boot() {
  local series=$1 kdir release console
  kdir=$(kernel_fetch "$series")
  release=$(ls "$kdir/lib/modules")
  initramfs_build "$kdir" "$release" "$work/initrd-$release.gz"
  console=$work/console-$release.log
  local append=(
    console=ttyS0 quiet panic=-1 "$GUEST_MARKER"
    "bae_repo=$REPO" "bae_modules=$kdir/lib/modules/$release" "bae_node_dir=$NODE_DIR"
    "bae_deadline=$((GUEST_TIMEOUT_S - GUEST_BOOT_MARGIN_S))"
  )
  [[ -n ${CI:-} && $CI != *[[:space:]]* ]] && append+=("bae_ci=$CI")
  [[ -n $steps_file ]] && append+=("bae_steps=$steps_file")

  log "[$series] booting $release under QEMU TCG (-smp $GUEST_CPUS -m $GUEST_MEMORY, timeout ${GUEST_TIMEOUT_S} s)"
  : >"$console"
  # QEMU's stdout is the guest's serial console. The host root goes read-only to the guest;
  # remap: it spans several host mounts, whose inode numbers could clash.
  timeout --kill-after="$QEMU_KILL_GRACE_S" "$GUEST_TIMEOUT_S" \
    qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$GUEST_CPUS" -m "$GUEST_MEMORY" \
    -nodefaults -display none -no-reboot -serial stdio \
    -kernel "$kdir/boot/vmlinuz-$release" -initrd "$work/initrd-$release.gz" \
    -append "${append[*]}" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    </dev/null >"$console" 2>&1 &
  qemu_pid_of[$series]=$!
  started_of[$series]=$SECONDS
  release_of[$series]=$release
  console_of[$series]=$console
  # tail ends by itself after QEMU, once it printed the last lines.
  tail -n +1 --pid="$!" -f "$console" | sed -u -e 's/\r$//' -e "s/^/[$series] /" &
}

# The verdict on one finished guest from QEMU's exit code RC and the guest's own result line.
# Adds it and the guest's step lines to the summary; sets failed unless the guest passed.
kernel_verdict() {
  local series=$1 rc=$2 elapsed=$((SECONDS - ${started_of[$1]})) console=${console_of[$1]}
  local result headline step passed=0
  result=$(tr -d '\r' <"$console" | grep -ao "$RESULT_MARKER rc=[0-9].*" | tail -1 || true)
  # 124: timeout's TERM stopped QEMU; 137: its KILL after the grace period.
  if ((rc == 124 || rc == 137)); then headline="FAIL: timed out after $GUEST_TIMEOUT_S s"
  elif [[ -z $result ]]; then headline="FAIL: the guest did not report a result (QEMU exit $rc) after $elapsed s"
  elif [[ $result == "$RESULT_MARKER rc=0 "* ]]; then headline="PASS in $elapsed s (${result#"$RESULT_MARKER "})" passed=1
  else headline="FAIL in $elapsed s (${result#"$RESULT_MARKER "})"; fi
  log "[$series] ${release_of[$series]}: $headline"
  summary+=("$series (${release_of[$series]}): $headline")
  while IFS= read -r step; do
    summary+=("    $step")
  done < <(tr -d '\r' <"$console" | grep -ao "$STEP_MARKER rc=.*" |
    sed -E "s/^$STEP_MARKER rc=0 secs=([0-9.]+) /ok      \1 s  /; s/^$STEP_MARKER rc=([0-9]+) secs=([0-9.]+) /FAIL(\1) \2 s  /")
  ((passed)) || failed=1
}

# The guests run side by side: one guest keeps about one host core busy (the tests run one file
# at a time, mostly in one node process), so two take little longer than one.
started=$SECONDS
for s in "${SERIES[@]}"; do
  kernel_boot "$s"
done
summary=()
failed=0
declare -A series_of
for s in "${SERIES[@]}"; do series_of[${qemu_pid_of[$s]}]=$s; done
while ((${#series_of[@]})); do
  rc=0
  wait -n -p done_pid "${!series_of[@]}" || rc=$?
  kernel_verdict "${series_of[$done_pid]}" "$rc"
  unset "series_of[$done_pid]"
done
wait # the console followers
log "summary ($((SECONDS - started)) s in all)"
printf '  %s\n' "${summary[@]}" >&2
((failed == 0)) && log "all kernels passed" || log "FAILED"
exit "$failed"
