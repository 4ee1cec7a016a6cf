#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test bae.
# Idempotent and quiet when everything is already there. Run as root.
set -euo pipefail

packages=(
  # build: BPF objects, the addon, vmlinux.h
  clang llvm make g++ pkg-config libbpf-dev libxdp-dev libelf-dev zlib1g-dev bpftool
  # datapath and lab
  iproute2 ethtool xdp-tools procps util-linux
  # traffic and verification in tests and the demo
  iperf3 hping3 python3 python3-scapy tshark tcpreplay iputils-ping
  # the agent's Prometheus endpoint is scraped with curl in the tests
  curl
  # the live view's tests drive Debian's chromium headless (puppeteer-core: no browser download)
  chromium fonts-dejavu-core
  # systemd-analyze checks the agent unit in the tests
  systemd
  # message bus (tests start a real server)
  nats-server
  # kernel matrix (make test-kernels): QEMU boots Debian's kernels; busybox and cpio make the tiny
  # initramfs; kmod's depmod indexes an unpacked kernel's modules and its modprobe, read by the
  # guest from the shared host root, loads them there
  qemu-system-x86 busybox-static cpio kmod xz-utils
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "install-deps: missing Debian packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v node >/dev/null || (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
  echo "install-deps: bae needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
