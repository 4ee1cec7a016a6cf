// SPDX-License-Identifier: GPL-2.0
/* A program the verifier accepts at a cost far over bae's budget (250,000 processed
 * instructions) and far under the kernel's limit (1,000,000): only
 * test/bpf/verifier-budget.test.ts loads it, to see the budget check catch it. The loop is not
 * unrolled, and its counter is a known constant in every iteration, so the verifier walks all
 * OVERSIZED_ROUNDS iterations and no two of their states are equal. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* About 9 instructions an iteration: 40,000 rounds are some 360,000 processed instructions. */
#ifndef OVERSIZED_ROUNDS
#define OVERSIZED_ROUNDS 40000
#endif

SEC("xdp")
int oversized(struct xdp_md *ctx)
{
	__u32 h = ctx->ingress_ifindex;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < OVERSIZED_ROUNDS; i++)
		h = (h ^ i) * 0x9E3779B1U + (h >> 7);
	return h == 0x12345678 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
