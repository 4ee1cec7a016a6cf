#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdp_smoke(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
