// SPDX-License-Identifier: GPL-2.0
/* Bench baseline: an XDP program that does nothing but pass, the floor of BPF_PROG_TEST_RUN. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
